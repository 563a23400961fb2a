#pragma once
// Subcommands of the varflow program. Each subcommand lives in its own file and registers itself
// with add_<name>_command(app, commands): it adds a CLI11 subcommand with its options and a runner.
// main.cpp runs the one that was parsed. Exit status: 0 success, 1 failure (numerical failure, a gate
// failed), 2 bad input (bad option, config or file; the message names the field and the value).
#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

#include "varflow/core/communicator.h"
#include "varflow/experiment/experiment_config.h"

namespace varflow::cli {

struct Command {
  CLI::App* subcommand;
  std::function<int()> run;
};
using CommandList = std::vector<Command>;

// The job's communicator, made by main (MPI's world under mpirun, else serial). A command that
// distributes work passes it to the library; every output is written by rank 0 only.
const varflow::Communicator& communicator();

// The experiment config of --config (the built-in default when path is empty); InvalidArgument
// naming the file when it cannot be read or parsed. Shared by simulate, assimilate and vi.
varflow::ExperimentConfig load_experiment_config(const std::string& path);

void add_forecast_command(CLI::App& app, CommandList& commands);
void add_experiment_commands(CLI::App& app, CommandList& commands);  // config, simulate, assimilate
void add_train_command(CLI::App& app, CommandList& commands);
void add_sample_command(CLI::App& app, CommandList& commands);
void add_validate_command(CLI::App& app, CommandList& commands);
void add_six_step_command(CLI::App& app, CommandList& commands);
void add_vi_command(CLI::App& app, CommandList& commands);  // per-event variational inference

}  // namespace varflow::cli
