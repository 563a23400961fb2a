#!/usr/bin/env python3
"""PyTorch peer of bench/nn_throughput_bench.cpp: the same networks in torch, timed the same way.

Run by the bench, once per network, thread count and repeat (alternating with varflow's own runs):

    nn_torch_peer.py --network flow --threads 1 --batch 256 --batches 200 --seed 7 d=10 obs=10 ...

The key=value words are the architecture as varflow built it (sizes, widths, activations, head, the
optimizer's weight decay, clip norm and learning rate). Prints one line

    result network=flow params=10552 pairs_per_s=... mean_ms=... draws_ms=... threads=1 torch=1.13.0

or "torch=missing ..." (exit 0) when torch cannot be imported. float64 throughout, like varflow
(--dtype float32: float32 throughout, against varflow's float32 products).

Timing (as the bench): training steps in chunks of 20, the rate of the fastest chunk; latencies the
fastest of repeated calls; wall or CPU clock (--clock).

Training step (as varflow's): zero the gradients, normalise the batch, the loss (the flow's negative
log-likelihood, the Gaussian head's NLL) and its gradient, clip the gradient norm, one AdamW step
(weight decay on weight matrices only). Latency: one observation, the posterior mean (flow: the
average of the sampling map over mean_samples fixed base draws; Gaussian: one network evaluation)
and 1000 draws, under torch.no_grad().
"""
import argparse
import math
import sys
import time

try:
    import torch
    from torch import nn
except Exception as e:  # noqa: BLE001 - any import failure means: no peer
    print(f"torch=missing {type(e).__name__}: {e}")
    sys.exit(0)

LOG_SCALE_CLAMP = 7.0  # varflow's GaussianHead: diagonal of L in [e^-7, e^7]


def activation(name):
    return {"silu": nn.SiLU, "tanh": nn.Tanh, "relu": nn.ReLU, "softplus": nn.Softplus, "identity": nn.Identity}[name]()


def mlp(n_in, width, depth, n_out, act):
    layers, prev = [], n_in
    for _ in range(depth):
        layers += [nn.Linear(prev, width), activation(act)]
        prev = width
    layers.append(nn.Linear(prev, n_out))
    return nn.Sequential(*layers)


class LinearSkip(nn.Module):
    def __init__(self, branch, n_in, n_out):
        super().__init__()
        self.branch, self.skip = branch, nn.Linear(n_in, n_out)

    def forward(self, x):
        return self.branch(x) + self.skip(x)


class LocalEncoder(nn.Module):
    """[value, mask] channels per slot, constant channels, periodic convolutions, a pointwise one to 2."""

    def __init__(self, a):
        super().__init__()
        self.slots, self.n = a["slots"], a["grid"]
        constants = 2 + 2 * self.slots
        self.register_buffer("constants", torch.zeros(1, constants, self.n))
        layers, ch = [], 2 * self.slots + constants
        for _ in range(a["conv_layers"]):
            k = a["kernel"]
            layers += [nn.Conv1d(ch, a["channels"], k, padding=(k - 1) // 2, padding_mode="circular"),
                       activation(a["act"])]
            ch = a["channels"]
        layers.append(nn.Conv1d(ch, 2, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, y):
        b = y.shape[0]
        y = y.view(b, self.slots, self.n)
        present = torch.isfinite(y)
        values = torch.where(present, y, torch.zeros_like(y))
        masked = torch.stack((values, present.to(y.dtype)), dim=2).view(b, 2 * self.slots, self.n)
        h = torch.cat((masked, self.constants.expand(b, -1, -1)), dim=1)
        return self.net(h).reshape(b, 2 * self.n)  # channel-major: mean then log-sd per point


def make_encoder(a):
    if a["encoder"] == "local":
        return LocalEncoder(a)
    net = mlp(a["obs"], a["enc_width"], a["enc_depth"], a["context"], a["act"])
    return LinearSkip(net, a["obs"], a["context"]) if a["enc_skip"] else net


class AffineCoupling(nn.Module):
    def __init__(self, d, c, a):
        super().__init__()
        self.da, self.db, self.clamp = d // 2, d - d // 2, a["clamp"]
        self.cond = mlp(self.da + c, a["head_width"], a["head_depth"], self.db * 2, a["head_act"])

    def theta(self, first, ctx):
        t = self.cond(torch.cat((first, ctx), dim=1)).view(-1, self.db, 2)  # per element: shift, raw log-scale
        return t[..., 0], self.clamp * torch.tanh(t[..., 1] / self.clamp)

    def forward(self, u, ctx):
        shift, s = self.theta(u[:, : self.da], ctx)
        v = torch.cat((u[:, : self.da], u[:, self.da:] * torch.exp(s) + shift), dim=1)
        return v, s.sum(dim=1)

    def inverse(self, v, ctx):
        shift, s = self.theta(v[:, : self.da], ctx)
        return torch.cat((v[:, : self.da], (v[:, self.da:] - shift) * torch.exp(-s)), dim=1)


class FlowHead(nn.Module):
    def __init__(self, a):
        super().__init__()
        d, c = a["d"], a["context"]
        self.d, self.actnorm = d, bool(a["actnorm"])
        g = torch.Generator().manual_seed(0)
        self.perms = [torch.randperm(d, generator=g) for _ in range(a["layers"])]
        self.inverse_perms = [torch.argsort(p) for p in self.perms]
        if self.actnorm:
            self.log_scale = nn.ParameterList([nn.Parameter(torch.zeros(d)) for _ in range(a["layers"])])
            self.bias = nn.ParameterList([nn.Parameter(torch.zeros(d)) for _ in range(a["layers"])])
        self.couplings = nn.ModuleList([AffineCoupling(d, c, a) for _ in range(a["layers"])])
        self.mean_draws = torch.randn(a["mean_samples"], d, generator=torch.Generator().manual_seed(1))

    def loss(self, x, ctx):
        h, logdet = x, torch.zeros(x.shape[0])
        for l, coupling in enumerate(self.couplings):
            if self.actnorm:
                h = h * torch.exp(self.log_scale[l]) + self.bias[l]
                logdet = logdet + self.log_scale[l].sum()
            h = h[:, self.perms[l]]
            h, ld = coupling(h, ctx)
            logdet = logdet + ld
        log_q = -0.5 * (h * h).sum(dim=1) - 0.5 * self.d * math.log(2.0 * math.pi) + logdet
        return -log_q.mean()

    def push(self, z, ctx):
        h = z
        for l in reversed(range(len(self.couplings))):
            h = self.couplings[l].inverse(h, ctx)
            h = h[:, self.inverse_perms[l]]
            if self.actnorm:
                h = (h - self.bias[l]) * torch.exp(-self.log_scale[l])
        return h

    def mean(self, ctx):
        z = self.mean_draws
        return self.push(z, ctx.expand(z.shape[0], -1)).mean(dim=0)

    def sample(self, ctx, n):
        return self.push(torch.randn(n, self.d), ctx.expand(n, -1))


class GaussianHead(nn.Module):
    def __init__(self, a):
        super().__init__()
        d = a["d"]
        self.d, self.full, self.direct = d, a["covariance"] == "full", a["encoder"] == "local"
        out = 2 * d + (d * (d - 1) // 2 if self.full else 0)
        if not self.direct:
            net = mlp(a["context"], a["head_width"], a["head_depth"], out, a["head_act"])
            self.net = LinearSkip(net, a["context"], out) if a["head_skip"] else net
        if self.full:
            rows, cols = torch.tril_indices(d, d, offset=-1)  # row-major (i, k < i), varflow's order
            self.register_buffer("rows", rows)
            self.register_buffer("cols", cols)

    def moments(self, ctx):
        out = ctx if self.direct else self.net(ctx)
        mu, s_raw = out[:, : self.d], out[:, self.d: 2 * self.d]
        sd = torch.exp(LOG_SCALE_CLAMP * torch.tanh(s_raw / LOG_SCALE_CLAMP))
        if not self.full:
            return mu, sd, None
        lower = torch.diag_embed(sd)
        lower[:, self.rows, self.cols] = out[:, 2 * self.d:]
        return mu, sd, lower

    def loss(self, x, ctx):
        mu, sd, lower = self.moments(ctx)
        e = x - mu
        if lower is None:
            r = e / sd
        else:
            r = torch.linalg.solve_triangular(lower, e.unsqueeze(2), upper=False).squeeze(2)
        nll = 0.5 * (r * r).sum(dim=1) + torch.log(sd).sum(dim=1) + 0.5 * self.d * math.log(2.0 * math.pi)
        return nll.mean()

    def mean(self, ctx):
        return self.moments(ctx)[0][0]

    def sample(self, ctx, n):
        mu, sd, lower = self.moments(ctx)
        z = torch.randn(n, self.d)
        return mu + (z * sd if lower is None else z @ lower[0].T)


class Posterior(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.encoder = make_encoder(a)
        self.head = FlowHead(a) if a["head"] == "flow" else GaussianHead(a)
        self.x_mean, self.x_std = torch.zeros(a["d"]), torch.ones(a["d"])
        self.y_mean, self.y_std = torch.zeros(a["obs"]), torch.ones(a["obs"])

    def loss(self, x, y):
        xn, yn = (x - self.x_mean) / self.x_std, (y - self.y_mean) / self.y_std
        return self.head.loss(xn, self.encoder(yn))

    def mean(self, y):
        ctx = self.encoder(((y - self.y_mean) / self.y_std).unsqueeze(0))
        return self.head.mean(ctx) * self.x_std + self.x_mean

    def sample(self, y, n):
        ctx = self.encoder(((y - self.y_mean) / self.y_std).unsqueeze(0))
        return self.head.sample(ctx, n) * self.x_std + self.x_mean


clock = time.perf_counter


CHUNK = 20  # training steps per timed chunk, as the bench


def latency_ms(f):
    """The fastest of repeated calls over at least 0.3 s (and 5 calls), as the bench."""
    f()
    f()
    reps, fastest, start = 0, float("inf"), clock()
    while True:
        t0 = clock()
        f()
        fastest = min(fastest, clock() - t0)
        reps += 1
        if clock() - start >= 0.3 and reps >= 5:
            break
    return 1e3 * fastest


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--network", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall: elapsed time; cpu: the process's CPU time (as the bench's --clock)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="torch's default dtype (the bench's --precision)")
    p.add_argument("spec", nargs="*", help="key=value architecture words")
    args = p.parse_args()
    global clock
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    a = {}
    for word in args.spec:
        key, value = word.split("=", 1)
        try:
            a[key] = int(value)
        except ValueError:
            try:
                a[key] = float(value)
            except ValueError:
                a[key] = value
    if a.get("head") == "flow" and a.get("coupling") != "affine":
        sys.exit(f"nn_torch_peer.py: coupling = {a.get('coupling')} is not implemented here (affine only)")

    torch.set_default_dtype(getattr(torch, args.dtype))
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = Posterior(a)
    decay = [q for q in model.parameters() if q.dim() >= 2]
    no_decay = [q for q in model.parameters() if q.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-4, betas=(0.9, 0.999), eps=1e-8)
    params = sum(q.numel() for q in model.parameters())

    pool, b = 8, args.batch
    xs = torch.randn(pool, b, a["d"])
    ys = torch.randn(pool, b, a["obs"])

    def step(k):
        opt.zero_grad(set_to_none=False)
        loss = model.loss(xs[k % pool], ys[k % pool])
        loss.backward()
        if a["clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), a["clip"])
        opt.step()

    for k in range(3):
        step(k)
    pairs_per_s = 0.0  # the fastest chunk of CHUNK steps, as the bench
    for k in range(0, args.batches, CHUNK):
        steps = min(CHUNK, args.batches - k)
        t0 = clock()
        for j in range(k, k + steps):
            step(j)
        pairs_per_s = max(pairs_per_s, steps * b / (clock() - t0))

    y = torch.randn(a["obs"])
    with torch.no_grad():
        mean_ms = latency_ms(lambda: model.mean(y))
        draws_ms = latency_ms(lambda: model.sample(y, 1000))
    print(f"result network={args.network} params={params} pairs_per_s={pairs_per_s:.1f} mean_ms={mean_ms:.4f} "
          f"draws_ms={draws_ms:.4f} threads={torch.get_num_threads()} torch={torch.__version__}")


if __name__ == "__main__":
    main()
