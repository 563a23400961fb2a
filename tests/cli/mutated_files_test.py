#!/usr/bin/env python3
"""Replays byte-mutated varflow files through the real readers of the varflow program.

From valid outputs (truth_obs.nc for `assimilate --obs`, analysis.nc for `assimilate --background`,
a trained model for `sample --model`), the test makes COUNT mutated files, deterministically from
SEED: bytes overwritten with random values, bit flips, a run of bytes zeroed or set to 0xff,
truncations, and inserted bytes. Half of them are replayed with their checksum trailer removed, so
that they reach the netCDF library (through the child-process probe) instead of being refused by
the checksum. Every run must end by itself with status 0, 1 or 2: a signal (a crash) or a run
still going after the time limit (a hang) is a failure, reported with the seed and mutation that
reproduce it. The counts of each outcome are printed.

Usage: mutated_files_test.py VARFLOW COUNT SEED
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile

TRAILER = 64
RUN_TIMEOUT = 120  # seconds; the program's own probe limit is set far lower (below)


def run(args, env, timeout=RUN_TIMEOUT):
    try:
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=timeout)
        return p.returncode, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired:
        return None, "timeout"


def sealed(data):
    return len(data) >= TRAILER and data[-TRAILER:].startswith(b"varflow-sum1 fnv1a64=")


def mutate(data, rng):
    """One random mutation of bytes `data`; returns (new bytes, description)."""
    data = bytearray(data)
    n = len(data)
    kind = rng.choice(["overwrite", "flip", "zero_run", "ff_run", "truncate", "insert", "overwrite_many"])
    if kind == "overwrite":
        i = rng.randrange(n)
        data[i] = rng.randrange(256)
        return bytes(data), f"overwrite byte {i}"
    if kind == "flip":
        i = rng.randrange(n)
        data[i] ^= 1 << rng.randrange(8)
        return bytes(data), f"flip a bit of byte {i}"
    if kind in ("zero_run", "ff_run"):
        i = rng.randrange(n)
        length = rng.randint(1, 64)
        value = 0 if kind == "zero_run" else 0xFF
        for k in range(i, min(n, i + length)):
            data[k] = value
        return bytes(data), f"{kind} of {length} at {i}"
    if kind == "truncate":
        i = rng.randrange(1, n)
        return bytes(data[:i]), f"truncate to {i}"
    if kind == "insert":
        i = rng.randrange(n)
        extra = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        return bytes(data[:i] + extra + data[i:]), f"insert {len(extra)} at {i}"
    count = rng.randint(2, 20)
    where = []
    for _ in range(count):
        i = rng.randrange(n)
        data[i] = rng.randrange(256)
        where.append(i)
    return bytes(data), f"overwrite {count} bytes at {where}"


def main():
    varflow, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    work = tempfile.mkdtemp(prefix="varflow_mutated_")
    env = dict(os.environ, VARFLOW_UNTRUSTED_READ_TIMEOUT="5", OMP_NUM_THREADS="1")
    try:
        cfg = os.path.join(work, "short.yaml")
        default = subprocess.run([varflow, "config", "--print-default"], stdout=subprocess.PIPE, check=True).stdout.decode()
        with open(cfg, "w") as f:
            f.write(default.replace("  cycles: 100\n", "  cycles: 3\n").replace("  burn_in: 20\n", "  burn_in: 1\n")
                    .replace("  spin_up_steps: 1000\n", "  spin_up_steps: 100\n"))
        truth = os.path.join(work, "truth_obs.nc")
        analysis = os.path.join(work, "analysis.nc")
        model = os.path.join(work, "model.nc")
        setup = [
            [varflow, "simulate", "--config", cfg, "--out", truth],
            [varflow, "assimilate", "--config", cfg, "--out", analysis, "--quiet"],
            [varflow, "train", "--problem", "linear-gaussian", "--head", "gaussian", "--pairs", "200", "--epochs", "1",
             "--threads", "1", "--quiet", "--out", model],
        ]
        for args in setup:
            status, out = run(args, env)
            if status != 0:
                print(f"FAIL: setup {' '.join(args)} exited {status}: {out}")
                return 1
        probe_obs = run([varflow, "sample", "--model", model, "--obs", "0", "--n", "2", "--out",
                         os.path.join(work, "s0.nc")], env)[1]
        # The model's observation size, from the error message of a one-value --obs when it is not 1.
        obs_size = 1
        if "expects" in probe_obs:
            obs_size = int(probe_obs.rsplit("expects", 1)[1].split()[0])
        obs_text = ",".join(["0.5"] * obs_size)

        targets = [
            ("truth_obs.nc", truth, lambda f: [varflow, "assimilate", "--config", cfg, "--obs", f, "--out",
                                               os.path.join(work, "out_a.nc"), "--quiet"]),
            ("analysis.nc", analysis, lambda f: [varflow, "assimilate", "--config", cfg, "--background", f, "--out",
                                                 os.path.join(work, "out_b.nc"), "--quiet"]),
            ("model.nc", model, lambda f: [varflow, "sample", "--model", f, "--obs", obs_text, "--n", "4", "--out",
                                           os.path.join(work, "out_s.nc")]),
        ]
        originals = {name: open(path, "rb").read() for name, path, _ in targets}
        for name, data in originals.items():
            if not sealed(data):
                print(f"FAIL: {name} written by varflow has no checksum trailer")
                return 1

        rng = random.Random(seed)
        outcomes = {}
        failures = 0
        probe_crashes = probe_hangs = 0
        for i in range(count):
            name, _, command = targets[i % len(targets)]
            data = originals[name]
            unseal = rng.random() < 0.5
            if unseal:
                data = data[:-TRAILER]
            mutated, what = mutate(data, rng)
            path = os.path.join(work, f"m{i}_{name}")
            with open(path, "wb") as f:
                f.write(mutated)
            status, out = run(command(path), env)
            key = f"{name} {'unsealed' if unseal else 'sealed'}: " + ("hang" if status is None else f"exit {status}")
            outcomes[key] = outcomes.get(key, 0) + 1
            if "netCDF library crashed" in out:
                probe_crashes += 1
            if "did not finish reading" in out:
                probe_hangs += 1
            if status is None or status not in (0, 1, 2):
                failures += 1
                kept = os.path.join(tempfile.gettempdir(), f"varflow_mutated_failure_{seed}_{i}_{name}")
                shutil.copyfile(path, kept)
                print(f"FAIL: mutation {i} (seed {seed}, {what}, {'unsealed' if unseal else 'sealed'}) of {name}: "
                      f"{'no end after ' + str(RUN_TIMEOUT) + ' s' if status is None else 'status ' + str(status)}; "
                      f"file kept as {kept}\n{out[-2000:]}")
            os.remove(path)
        for key in sorted(outcomes):
            print(f"  {key}: {outcomes[key]}")
        print(f"mutated files replayed: {count}; crashes of the netCDF library contained in the probe: {probe_crashes}; "
              f"probe time-outs (hangs contained): {probe_hangs}; signal exits or hangs of varflow: {failures}")
        return 1 if failures else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
