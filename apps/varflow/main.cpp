// varflow: the command-line program. One program, one subcommand per job; `varflow <command> --help`.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <new>
#include <sstream>

#include "command.h"
#include "varflow/core/communicator.h"
#include "varflow/core/error.h"
#include "varflow/io/provenance.h"
#include "varflow/version.h"

namespace {
const varflow::Communicator* program_communicator = nullptr;
}  // namespace

const varflow::Communicator& varflow::cli::communicator() {
  return program_communicator ? *program_communicator : varflow::serial_communicator();
}

namespace {
// "vi condition" for a nested subcommand: the names from below the program down to `sub`.
std::string command_path(const CLI::App* sub) {
  std::string path = sub->get_name();
  for (const CLI::App* p = sub->get_parent(); p != nullptr && p->get_parent() != nullptr; p = p->get_parent()) {
    path = p->get_name() + " " + path;
  }
  return path;
}
}  // namespace

int main(int argc, char** argv) {
  // The job's communicator: MPI's world under mpirun (the only place that touches it), otherwise
  // serial. Ranks other than 0 print nothing on stdout: one rank reports, errors still reach stderr.
  std::unique_ptr<varflow::ProgramCommunicator> job;
  try {
    job = std::make_unique<varflow::ProgramCommunicator>(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "varflow: failed: " << e.what() << "\n";
    return 1;
  }
  program_communicator = &job->get();
  if (!job->get().is_root() && std::freopen("/dev/null", "w", stdout) == nullptr) return 1;
  CLI::App app{"varflow: variational and amortized data assimilation with validation gates"};
  app.set_version_flag("--version", std::string("varflow ") + VARFLOW_VERSION_STRING + " (instruction set: " + VARFLOW_BUILD_ARCH + ")");
  app.require_subcommand(1);

  varflow::cli::CommandList commands;
  varflow::cli::add_forecast_command(app, commands);
  varflow::cli::add_experiment_commands(app, commands);
  varflow::cli::add_train_command(app, commands);
  varflow::cli::add_sample_command(app, commands);
  varflow::cli::add_validate_command(app, commands);
  varflow::cli::add_six_step_command(app, commands);
  varflow::cli::add_vi_command(app, commands);

  varflow::set_run_command_line(argc, argv);  // in the history of every file written
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  // A failure that only this rank knows of ends the whole job (the others may be waiting for it in a
  // collective); one that every rank threw together (is_agreed_failure) ends each rank normally.
  const varflow::Communicator& comm = job->get();
  auto fail = [&](const std::exception& e, int status) {
    if (comm.size() > 1 && !varflow::is_agreed_failure(e)) {
      std::cerr.flush();
      comm.abort(status);
    }
    return status;
  };
  // An agreed failure is printed once, by rank 0.
  std::ostringstream silenced;
  auto err = [&](const std::exception& e) -> std::ostream& {
    return comm.is_root() || !varflow::is_agreed_failure(e) ? std::cerr : silenced;
  };
  for (const auto& command : commands) {
    if (!command.subcommand->parsed()) continue;
    try {
      return command.run();
    } catch (const varflow::InvalidArgument& e) {
      err(e) << "varflow " << command_path(command.subcommand) << ": error: " << e.what() << "\n";
      return fail(e, 2);
    } catch (const std::bad_alloc& e) {
      // Sizes are checked against the memory before the large allocations (design/reliability.md,
      // "Bounds"); this is the rest: the machine ran out of memory at run time.
      err(e) << "varflow " << command_path(command.subcommand)
                << ": failed: out of memory (an allocation failed; the run holds more than this machine has "
                   "free: reduce the sizes, e.g. model.n, cycling.cycles, pairs)\n";
      return fail(e, 1);
    } catch (const std::exception& e) {
      err(e) << "varflow " << command_path(command.subcommand) << ": failed: " << e.what() << "\n";
      return fail(e, 1);
    }
  }
  return 0;
}
