// The model file of an AmortizedPosterior and the samples / observation files (design/formats.md).
#include <cmath>
#include <sstream>

#include "impl.h"
#include "varflow/amortized/files.h"
#include "varflow/core/error.h"
#include "varflow/core/hash.h"
#include "varflow/io/netcdf_file.h"
#include "varflow/version.h"

namespace varflow::amortized {

namespace {

constexpr const char* kModelType = "varflow_amortized_posterior";
constexpr int kModelFormatVersion = 1;
constexpr const char* kSamplesType = "varflow_posterior_samples";
constexpr int kSamplesFormatVersion = 1;

std::string path_text(const std::filesystem::path& p) { return p.string(); }

// Checksum of everything that defines the model's function: FNV-1a 64 over the configuration text,
// the problem shape, the normalisation vectors and the weights (raw little-endian doubles).
std::string model_checksum(const std::string& config, const ProblemShape& s, const Normalization& n, const Vector& w) {
  std::uint64_t h = fnv1a(config);
  h = fnv1a(format_message(s.state_size, " ", s.obs_size, " ", s.obs_slots, " ", s.obs_grid), h);
  h = fnv1a(n.x_mean, h);
  h = fnv1a(n.x_std, h);
  h = fnv1a(n.y_mean, h);
  h = fnv1a(n.y_std, h);
  if (n.gain.size() != 0) {  // linear_gain = oracle (files without a gain keep their checksum)
    h = fnv1a(n.y_ref, h);
    h = fnv1a(n.gain.data(), static_cast<std::size_t>(n.gain.size()) * sizeof(double), h);
  }
  h = fnv1a(w, h);
  return hex64(h);
}

}  // namespace

namespace {
// The problem definition as "key: value" lines (empty when there is none).
std::string definition_text(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string out;
  for (const auto& [k, v] : entries) out += k + ": " + v + "\n";
  return out;
}
// What the checksum covers besides shape, normalisation and weights: the configuration text, then the
// problem definition when the file has one (files without it keep their original checksum).
std::string checked_text(const std::string& config, const std::string& definition) {
  return definition.empty() ? config : config + "problem_definition\n" + definition;
}
}  // namespace

std::string AmortizedPosterior::checksum() const {
  const Impl& im = *impl_;
  return model_checksum(checked_text(config_text(im.config), definition_text(im.problem_definition)), im.shape,
                        im.norm, im.replicas[0]->params.values());
}

void AmortizedPosterior::save(const std::filesystem::path& file) const {
  const Impl& im = *impl_;
  NetcdfWriter f(file);
  const std::string config = config_text(im.config);
  f.attribute("title", std::string("varflow amortized posterior q(x | y)"));
  f.attribute("varflow_file_type", std::string(kModelType));
  f.attribute("format_version", kModelFormatVersion);
  f.attribute("varflow_version", std::string(VARFLOW_VERSION_STRING));
  f.attribute("problem", im.problem);
  f.attribute("head", to_string(im.config.head));
  f.attribute("config", config);
  const std::string definition = definition_text(im.problem_definition);
  if (!definition.empty()) f.attribute("problem_definition", definition);
  f.attribute("architecture", describe());
  f.attribute("state_size", static_cast<long long>(im.shape.state_size));
  f.attribute("obs_size", static_cast<long long>(im.shape.obs_size));
  f.attribute("obs_slots", static_cast<long long>(im.shape.obs_slots));
  f.attribute("obs_grid", static_cast<long long>(im.shape.obs_grid));
  f.attribute("trained", im.trained ? 1 : 0);
  const auto& s = im.summary;
  f.attribute("training_status", nn::to_string(s.status));
  f.attribute("training_message", s.message);
  f.attribute("epochs_run", static_cast<long long>(s.epochs_run));
  f.attribute("best_epoch", static_cast<long long>(s.best_epoch));
  f.attribute("weights_epoch", static_cast<long long>(s.weights_epoch));  // the epoch of the stored weights
  f.attribute("training_stop_reason", s.stop_reason());
  f.attribute("best_validation_loss", s.best_validation_loss);
  f.attribute("train_pairs", static_cast<long long>(s.train_pairs));
  f.attribute("validation_pairs", static_cast<long long>(s.validation_pairs));
  f.attribute("training_seconds", s.seconds);
  f.attribute("pairs_per_second", s.pairs_per_second);
  f.attribute("checksum_algorithm",
              std::string("fnv1a-64 over the config text (followed by 'problem_definition' and its text when present), "
                          "'state_size obs_size obs_slots obs_grid', x_mean, x_std, y_mean, y_std and weights "
                          "(little-endian doubles)"));
  f.attribute("checksum", model_checksum(checked_text(config, definition), im.shape, im.norm,
                                         im.replicas[0]->params.values()));

  const nn::ParameterSet& ps = im.replicas[0]->params;
  Index name_len = 1;
  std::vector<std::string> names;
  std::vector<long long> offsets, rows, cols;
  for (const auto& b : ps.blocks()) {
    name_len = std::max(name_len, static_cast<Index>(b.name.size()));
    names.push_back(b.name);
    offsets.push_back(b.offset);
    rows.push_back(b.rows);
    cols.push_back(b.cols);
  }
  f.add_dimension("state", im.shape.state_size);
  f.add_dimension("obs", im.shape.obs_size);
  f.add_dimension("parameter", ps.size());
  f.add_dimension("block", static_cast<Index>(ps.blocks().size()));
  f.add_dimension("block_name_length", name_len);
  f.add_unlimited_dimension("epoch");  // zero epochs is allowed

  f.write("x_mean", "state", im.norm.x_mean, "mean of the state over the training split (z-scoring)", "1");
  f.write("x_std", "state", im.norm.x_std, "standard deviation of the state over the training split", "1");
  f.write("y_mean", "obs", im.norm.y_mean, "mean of the observations over the training split (missing values ignored)",
          "1");
  f.write("y_std", "obs", im.norm.y_std, "standard deviation of the observations over the training split",
          "1");
  if (im.norm.gain.size() != 0) {
    f.write("oracle_gain_y_ref", "obs", im.norm.y_ref,
            "linear_gain = oracle: the reference observation (mean over the training pairs; NaN: never observed)", "1");
    f.write("oracle_gain", "obs", "state", im.norm.gain,
            "linear_gain = oracle: the oracle's d mean / dy at oracle_gain_y_ref (the head models x - gain (y - y_ref))",
            "1");
  }
  f.write("weights", "parameter", ps.values(), "all network parameters, blocks laid out as in block_*", "1");
  f.write_text("block_name", "block", "block_name_length", names, "name of each parameter block", "1");
  f.write_int("block_offset", "block", offsets, "offset of the block in weights", "1");
  f.write_int("block_rows", "block", rows, "rows of the block (a column-major rows x cols matrix)", "1");
  f.write_int("block_cols", "block", cols, "columns of the block", "1");

  auto curve = [](const std::vector<double>& v) { return Vector(Eigen::Map<const Vector>(v.data(), static_cast<Index>(v.size()))); };
  f.write("train_loss", "epoch", curve(s.train_loss), "mean training loss per epoch (normalised units)", "1");
  f.write("validation_loss", "epoch", curve(s.validation_loss), "validation loss after each epoch (normalised units)",
          "1");
  f.write("learning_rate", "epoch", curve(s.learning_rate), "learning rate at the end of each epoch", "1");

  im.replicas[0]->head->save_extra_state(f);  // e.g. the flow's permutations
  f.commit();
}

AmortizedPosterior AmortizedPosterior::load(const std::filesystem::path& file) {
  const std::string where = "model file " + path_text(file);
  if (!std::filesystem::is_regular_file(file)) throw InvalidArgument(format_message(where, ": no such file"));
  const NetcdfReader f(file, where);
  if (f.string_attribute("varflow_file_type").value_or("") != kModelType) {
    throw InvalidArgument(format_message(where, ": not a varflow amortized posterior (varflow_file_type is not '",
                                         kModelType, "')"));
  }
  const long long version = f.require_int("format_version");
  if (version != kModelFormatVersion) {
    throw InvalidArgument(format_message(where, ": format_version = ", version, " is not supported (this build reads ",
                                         kModelFormatVersion, ")"));
  }
  // Configuration and shape.
  AmortizedSetup setup;
  const std::string config = f.require_string("config");
  std::istringstream lines(config);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const auto colon = line.find(": ");
    if (colon == std::string::npos) throw InvalidArgument(format_message(where, ": config line '", line, "' is malformed"));
    apply_entry(setup, line.substr(0, colon), line.substr(colon + 2), where + " config");
  }
  ProblemShape shape;
  shape.state_size = static_cast<Index>(f.require_int("state_size"));
  shape.obs_size = static_cast<Index>(f.require_int("obs_size"));
  shape.obs_slots = static_cast<Index>(f.require_int("obs_slots"));
  shape.obs_grid = static_cast<Index>(f.require_int("obs_grid"));
  AmortizedPosterior q;
  q.impl_ = std::make_unique<Impl>(setup.network, shape, f.require_string("problem"));
  Impl& im = *q.impl_;
  nn::ParameterSet& ps = im.params();

  // The parameter layout must be this build's.
  const Index blocks = f.has_dimension("block") ? f.dimension("block") : 0;
  if (!f.has_dimension("block_name_length") || blocks != static_cast<Index>(ps.blocks().size())) {
    throw InvalidArgument(format_message(where, ": the file has ", blocks, " parameter blocks, this architecture has ",
                                         ps.blocks().size()));
  }
  const std::vector<std::string> names = f.read_text("block_name");
  const std::vector<long long> offsets = f.read_int("block_offset"), rows = f.read_int("block_rows"),
                               cols = f.read_int("block_cols");
  auto check_length = [&](const char* name, std::size_t size) {
    check_size(format_message(where, ": variable '", name, "'"), "length", static_cast<Index>(size), blocks);
  };
  check_length("block_name", names.size());
  check_length("block_offset", offsets.size());
  check_length("block_rows", rows.size());
  check_length("block_cols", cols.size());
  for (std::size_t i = 0; i < ps.blocks().size(); ++i) {
    const auto& b = ps.blocks()[i];
    if (names[i] != b.name || offsets[i] != b.offset || rows[i] != b.rows || cols[i] != b.cols) {
      throw InvalidArgument(format_message(where, ": parameter block ", i, " is '", names[i], "' (", rows[i], " x ",
                                           cols[i], " at ", offsets[i], "), this architecture expects '", b.name, "' (",
                                           b.rows, " x ", b.cols, " at ", b.offset, ")"));
    }
  }
  ps.values() = f.read_vector("weights", ps.size());
  im.norm.x_mean = f.read_vector("x_mean", shape.state_size);
  im.norm.x_std = f.read_vector("x_std", shape.state_size);
  im.norm.y_mean = f.read_vector("y_mean", shape.obs_size);
  im.norm.y_std = f.read_vector("y_std", shape.obs_size);
  if (f.has_variable("oracle_gain")) {
    im.norm.y_ref = f.read_vector("oracle_gain_y_ref", shape.obs_size);
    im.norm.gain = f.read_matrix("oracle_gain", shape.obs_size, shape.state_size);
  }
  im.sync_constants();
  const std::string definition = f.string_attribute("problem_definition").value_or("");
  std::istringstream definition_lines(definition);
  for (std::string line; std::getline(definition_lines, line);) {
    if (line.empty()) continue;
    const auto colon = line.find(": ");
    if (colon == std::string::npos) {
      throw InvalidArgument(format_message(where, ": problem_definition line '", line, "' is malformed"));
    }
    im.problem_definition.emplace_back(line.substr(0, colon), line.substr(colon + 2));
  }
  const std::string stored = f.require_string("checksum");
  const std::string computed = model_checksum(checked_text(config, definition), shape, im.norm, ps.values());
  if (stored != computed) {
    throw InvalidArgument(format_message(where, ": checksum mismatch (stored ", stored, ", computed ", computed,
                                         "): the file is corrupted"));
  }
  im.head().load_extra_state(f);  // e.g. checks the flow's permutations
  // Training record.
  im.trained = f.require_int("trained") != 0;
  if (im.trained && im.config.linear_gain == LinearGain::kOracle && im.norm.gain.size() == 0) {
    throw InvalidArgument(format_message(where, ": linear_gain = oracle, but the file has no 'oracle_gain' variable"));
  }
  auto& s = im.summary;
  const std::string status = f.require_string("training_status");
  s.status = nn::training_status_from_string(status, format_message(where, ": training_status"));
  s.message = f.require_string("training_message");
  s.epochs_run = static_cast<Index>(f.require_int("epochs_run"));
  s.best_epoch = static_cast<Index>(f.require_int("best_epoch"));
  // Files before weights_epoch was recorded kept the best epoch's weights (restore_best was the default).
  s.weights_epoch = static_cast<Index>(f.int_attribute("weights_epoch").value_or(s.best_epoch));
  s.best_validation_loss = f.require_double("best_validation_loss");
  s.train_pairs = static_cast<Index>(f.require_int("train_pairs"));
  s.validation_pairs = static_cast<Index>(f.require_int("validation_pairs"));
  s.seconds = f.require_double("training_seconds");
  s.pairs_per_second = f.require_double("pairs_per_second");
  const Index ne = f.dimension("epoch");
  auto curve = [&](const char* name) {
    const Vector v = f.read_vector(name, ne);
    return std::vector<double>(v.data(), v.data() + v.size());
  };
  s.train_loss = curve("train_loss");
  s.validation_loss = curve("validation_loss");
  s.learning_rate = curve("learning_rate");
  return q;
}

// ---- observation and samples files -----------------------------------------------------------------

Vector read_observation_file(const std::filesystem::path& file) {
  const std::string where = "observation file " + path_text(file);
  if (!std::filesystem::is_regular_file(file)) throw InvalidArgument(format_message(where, ": no such file"));
  const NetcdfReader f(file, where);
  // `observations` (the name `varflow simulate` writes, any rank: read in C order, so a simulate file's
  // (obs_time, obs) values come time after time) or `observation` (1-D, older observation files).
  const char* name = f.has_variable("observations") ? "observations" : "observation";
  if (!f.has_variable(name)) {
    throw InvalidArgument(format_message(where, ": no variable 'observations' (or 'observation') holding the "
                                                "observation vector"));
  }
  const std::vector<double> values = f.read_array(name);
  Vector y = Eigen::Map<const Vector>(values.data(), static_cast<Index>(values.size()));
  if (const auto fill = f.variable_double_attribute(name, "_FillValue")) {
    for (Index i = 0; i < y.size(); ++i) {
      if (y[i] == *fill) y[i] = std::nan("");
    }
  }
  return y;
}

void write_observation_file(const std::filesystem::path& file, const Vector& y) {
  NetcdfWriter f(file);
  f.attribute("varflow_file_type", std::string("varflow_observation"));
  f.attribute("title", std::string("an observation vector for varflow sample --obs-file"));
  f.attribute("format_version", 1);
  f.add_dimension("obs", y.size());
  f.write("observations", "obs", y, "observation vector (NaN = missing)", "1");
  f.commit();
}

void write_samples_file(const std::filesystem::path& file, const Matrix& draws, const Vector& observation,
                        const Vector& mean, const SamplesFileInfo& info) {
  const std::string where = "samples file " + path_text(file);
  check_size(where, "mean", mean.size(), draws.rows());
  NetcdfWriter f(file);
  f.attribute("title", std::string("draws from a varflow amortized posterior"));
  f.attribute("varflow_file_type", std::string(kSamplesType));
  f.attribute("format_version", kSamplesFormatVersion);
  f.attribute("varflow_version", std::string(VARFLOW_VERSION_STRING));
  f.attribute("model", info.model);
  f.attribute("problem", info.problem);
  f.attribute("head", info.head);
  f.attribute("seed", static_cast<std::uint64_t>(info.seed));
  f.add_dimension("sample", draws.cols());
  f.add_dimension("state", draws.rows());
  f.add_dimension("obs", observation.size());
  // samples(sample, state) is row-major in netCDF: one draw per row = one column of `draws`
  // (column-major), so the memory layouts agree.
  f.write("samples", "sample", "state", draws, "posterior draws, one per row", "1");
  f.write("observation", "obs", observation, "the observation conditioned on (NaN = missing)", "1");
  f.write("mean", "state", mean, "the model's posterior mean at the observation", "1");
  f.commit();
}

SamplesFile read_samples_file(const std::filesystem::path& file) {
  const std::string where = "samples file " + path_text(file);
  if (!std::filesystem::is_regular_file(file)) throw InvalidArgument(format_message(where, ": no such file"));
  const NetcdfReader f(file, where);
  if (f.string_attribute("varflow_file_type").value_or("") != kSamplesType) {
    throw InvalidArgument(format_message(where, ": not a varflow samples file"));
  }
  const long long version = f.require_int("format_version");
  if (version != kSamplesFormatVersion) {
    throw InvalidArgument(format_message(where, ": format_version = ", version, " is not supported"));
  }
  SamplesFile s;
  const Index d = f.dimension("state");
  s.draws = f.read_matrix("samples", f.dimension("sample"), d);
  s.observation = f.read_vector("observation", f.dimension("obs"));
  s.mean = f.read_vector("mean", d);
  s.info.model = f.require_string("model");
  s.info.problem = f.require_string("problem");
  s.info.head = f.require_string("head");
  s.info.seed = f.require_unsigned("seed");
  return s;
}

}  // namespace varflow::amortized
