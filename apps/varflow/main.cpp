// varflow: the command-line program. One program, one subcommand per job; `varflow <command> --help`.
#include <CLI/CLI.hpp>

#include <iostream>
#include <new>

#include "command.h"
#include "varflow/core/error.h"
#include "varflow/io/provenance.h"
#include "varflow/version.h"

int main(int argc, char** argv) {
  CLI::App app{"varflow: variational and amortized data assimilation with validation gates"};
  app.set_version_flag("--version", std::string("varflow ") + VARFLOW_VERSION_STRING);
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
  for (const auto& command : commands) {
    if (!command.subcommand->parsed()) continue;
    try {
      return command.run();
    } catch (const varflow::InvalidArgument& e) {
      std::cerr << "varflow " << command.subcommand->get_name() << ": error: " << e.what() << "\n";
      return 2;
    } catch (const std::bad_alloc&) {
      // Sizes are checked against the memory before the large allocations (design/reliability.md,
      // "Bounds"); this is the rest: the machine ran out of memory at run time.
      std::cerr << "varflow " << command.subcommand->get_name()
                << ": failed: out of memory (an allocation failed; the run holds more than this machine has "
                   "free: reduce the sizes, e.g. model.n, cycling.cycles, pairs)\n";
      return 1;
    } catch (const std::exception& e) {
      std::cerr << "varflow " << command.subcommand->get_name() << ": failed: " << e.what() << "\n";
      return 1;
    }
  }
  return 0;
}
