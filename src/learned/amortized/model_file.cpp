// The model file of an AmortizedPosterior and the samples / observation files (design/formats.md).
#include <netcdf>

#include <cmath>
#include <cstring>
#include <sstream>

#include "impl.h"
#include "varflow/amortized/files.h"
#include "varflow/core/error.h"
#include "varflow/core/hash.h"
#include "varflow/io/atomic_file.h"
#include "varflow/version.h"

namespace varflow::amortized {

namespace {

constexpr const char* kModelType = "varflow_amortized_posterior";
constexpr int kModelFormatVersion = 1;
constexpr const char* kSamplesType = "varflow_posterior_samples";
constexpr int kSamplesFormatVersion = 1;

std::string path_text(const std::filesystem::path& p) { return p.string(); }

bool has_att(const netCDF::NcFile& f, const std::string& name) { return f.getAtts().count(name) > 0; }

std::string text_att(const netCDF::NcFile& f, const std::string& name, const std::string& where) {
  if (!has_att(f, name)) throw InvalidArgument(format_message(where, ": attribute '", name, "' is missing"));
  std::string v;
  f.getAtt(name).getValues(v);
  // Strip trailing NULs some writers add.
  while (!v.empty() && v.back() == '\0') v.pop_back();
  return v;
}

long long int_att(const netCDF::NcFile& f, const std::string& name, const std::string& where) {
  if (!has_att(f, name)) throw InvalidArgument(format_message(where, ": attribute '", name, "' is missing"));
  long long v = 0;
  f.getAtt(name).getValues(&v);
  return v;
}

double double_att(const netCDF::NcFile& f, const std::string& name, const std::string& where) {
  if (!has_att(f, name)) throw InvalidArgument(format_message(where, ": attribute '", name, "' is missing"));
  double v = 0.0;
  f.getAtt(name).getValues(&v);
  return v;
}

netCDF::NcVar get_var(const netCDF::NcFile& f, const std::string& name, const std::string& where) {
  netCDF::NcVar v = f.getVar(name);
  if (v.isNull()) throw InvalidArgument(format_message(where, ": variable '", name, "' is missing"));
  return v;
}

// Reads a 1-D double variable of the expected length.
Vector read_vector(const netCDF::NcFile& f, const std::string& name, Index expected, const std::string& where) {
  netCDF::NcVar v = get_var(f, name, where);
  if (v.getDimCount() != 1 || static_cast<Index>(v.getDim(0).getSize()) != expected) {
    throw InvalidArgument(format_message(where, ": variable '", name, "' has ",
                                         v.getDimCount() == 1 ? v.getDim(0).getSize() : 0, " values, expected ",
                                         expected));
  }
  Vector out(expected);
  if (expected > 0) v.getVar(out.data());
  return out;
}

// Checksum of everything that defines the model's function: FNV-1a 64 over the configuration text,
// the problem shape, the normalisation vectors and the weights (raw little-endian doubles).
std::string model_checksum(const std::string& config, const ProblemShape& s, const Normalization& n, const Vector& w) {
  std::uint64_t h = fnv1a(config);
  h = fnv1a(format_message(s.state_size, " ", s.obs_size, " ", s.obs_slots, " ", s.obs_grid), h);
  h = fnv1a(n.x_mean, h);
  h = fnv1a(n.x_std, h);
  h = fnv1a(n.y_mean, h);
  h = fnv1a(n.y_std, h);
  h = fnv1a(w, h);
  return hex64(h);
}

template <typename F>
auto with_netcdf_errors(const std::string& where, F&& f) {
  try {
    return f();
  } catch (const netCDF::exceptions::NcException& e) {
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));  // drop the "file: ncFile.cpp line: ..." trailer
    throw InvalidArgument(format_message(where, ": ", what));
  }
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
  AtomicOutput out(file);
  const std::string where = "model file " + path_text(file);
  with_netcdf_errors(where, [&] {
    netCDF::NcFile f(out.temporary_path().string(), netCDF::NcFile::replace, netCDF::NcFile::nc4);
    const std::string config = config_text(im.config);
    f.putAtt("title", "varflow amortized posterior q(x | y)");
    f.putAtt("varflow_file_type", kModelType);
    f.putAtt("format_version", netCDF::ncInt, kModelFormatVersion);
    f.putAtt("varflow_version", VARFLOW_VERSION_STRING);
    f.putAtt("problem", im.problem);
    f.putAtt("head", to_string(im.config.head));
    f.putAtt("config", config);
    const std::string definition = definition_text(im.problem_definition);
    if (!definition.empty()) f.putAtt("problem_definition", definition);
    f.putAtt("architecture", describe());
    f.putAtt("state_size", netCDF::ncInt64, static_cast<long long>(im.shape.state_size));
    f.putAtt("obs_size", netCDF::ncInt64, static_cast<long long>(im.shape.obs_size));
    f.putAtt("obs_slots", netCDF::ncInt64, static_cast<long long>(im.shape.obs_slots));
    f.putAtt("obs_grid", netCDF::ncInt64, static_cast<long long>(im.shape.obs_grid));
    f.putAtt("trained", netCDF::ncInt, im.trained ? 1 : 0);
    const auto& s = im.summary;
    f.putAtt("training_status", nn::to_string(s.status));
    f.putAtt("training_message", s.message);
    f.putAtt("epochs_run", netCDF::ncInt64, static_cast<long long>(s.epochs_run));
    f.putAtt("best_epoch", netCDF::ncInt64, static_cast<long long>(s.best_epoch));
    f.putAtt("best_validation_loss", netCDF::ncDouble, s.best_validation_loss);
    f.putAtt("train_pairs", netCDF::ncInt64, static_cast<long long>(s.train_pairs));
    f.putAtt("validation_pairs", netCDF::ncInt64, static_cast<long long>(s.validation_pairs));
    f.putAtt("training_seconds", netCDF::ncDouble, s.seconds);
    f.putAtt("pairs_per_second", netCDF::ncDouble, s.pairs_per_second);
    f.putAtt("checksum_algorithm",
             "fnv1a-64 over the config text (followed by 'problem_definition' and its text when present), "
             "'state_size obs_size obs_slots obs_grid', x_mean, x_std, y_mean, y_std and weights (little-endian "
             "doubles)");
    f.putAtt("checksum", model_checksum(checked_text(config, definition), im.shape, im.norm,
                                        im.replicas[0]->params.values()));

    const auto state = f.addDim("state", static_cast<std::size_t>(im.shape.state_size));
    const auto obs = f.addDim("obs", static_cast<std::size_t>(im.shape.obs_size));
    const nn::ParameterSet& ps = im.replicas[0]->params;
    const auto param = f.addDim("parameter", static_cast<std::size_t>(ps.size()));
    std::size_t name_len = 1;
    for (const auto& b : ps.blocks()) name_len = std::max(name_len, b.name.size());
    const auto block = f.addDim("block", ps.blocks().size());
    const auto name_dim = f.addDim("block_name_length", name_len);
    const auto epoch = f.addDim("epoch");  // unlimited: zero epochs is allowed

    auto put = [&](const char* name, const netCDF::NcDim& d, const Vector& v, const char* long_name,
                   const char* units) {
      auto var = f.addVar(name, netCDF::ncDouble, d);
      var.putAtt("long_name", long_name);
      var.putAtt("units", units);
      if (v.size() > 0) var.putVar(v.data());
    };
    put("x_mean", state, im.norm.x_mean, "mean of the state over the training split (z-scoring)", "model units");
    put("x_std", state, im.norm.x_std, "standard deviation of the state over the training split", "model units");
    put("y_mean", obs, im.norm.y_mean, "mean of the observations over the training split (missing values ignored)",
        "observation units");
    put("y_std", obs, im.norm.y_std, "standard deviation of the observations over the training split",
        "observation units");
    put("weights", param, ps.values(), "all network parameters, blocks laid out as in block_*", "1");

    std::vector<char> names(ps.blocks().size() * name_len, '\0');
    std::vector<long long> offsets, rows, cols;
    for (std::size_t i = 0; i < ps.blocks().size(); ++i) {
      const auto& b = ps.blocks()[i];
      std::memcpy(names.data() + i * name_len, b.name.data(), b.name.size());
      offsets.push_back(b.offset);
      rows.push_back(b.rows);
      cols.push_back(b.cols);
    }
    auto vname = f.addVar("block_name", netCDF::ncChar, {block, name_dim});
    vname.putAtt("long_name", "name of each parameter block");
    vname.putAtt("units", "1");
    if (!names.empty()) vname.putVar(names.data());
    auto put_int = [&](const char* name, const std::vector<long long>& v, const char* long_name) {
      auto var = f.addVar(name, netCDF::ncInt64, block);
      var.putAtt("long_name", long_name);
      var.putAtt("units", "1");
      if (!v.empty()) var.putVar(v.data());
    };
    put_int("block_offset", offsets, "offset of the block in weights");
    put_int("block_rows", rows, "rows of the block (a column-major rows x cols matrix)");
    put_int("block_cols", cols, "columns of the block");

    const std::size_t ne = s.train_loss.size();
    auto put_curve = [&](const char* name, const std::vector<double>& v, const char* long_name) {
      auto var = f.addVar(name, netCDF::ncDouble, epoch);
      var.putAtt("long_name", long_name);
      var.putAtt("units", "1");
      if (ne > 0) var.putVar({0}, {ne}, v.data());
    };
    put_curve("train_loss", s.train_loss, "mean training loss per epoch (normalised units)");
    put_curve("validation_loss", s.validation_loss, "validation loss after each epoch (normalised units)");
    put_curve("learning_rate", s.learning_rate, "learning rate at the end of each epoch");

    if (const auto* flow = dynamic_cast<const FlowHead*>(&*im.replicas[0]->head)) {
      const auto layers = f.addDim("flow_layer", flow->permutations().size());
      std::vector<long long> p;
      for (const auto& perm : flow->permutations()) p.insert(p.end(), perm.begin(), perm.end());
      auto var = f.addVar("flow_permutation", netCDF::ncInt64, {layers, state});
      var.putAtt("long_name", "coordinate permutation before each coupling: y[i] = x[perm[i]]");
      var.putAtt("units", "1");
      var.putVar(p.data());
    }
    return 0;
  });
  out.commit();
}

AmortizedPosterior AmortizedPosterior::load(const std::filesystem::path& file) {
  const std::string where = "model file " + path_text(file);
  if (!std::filesystem::is_regular_file(file)) throw InvalidArgument(format_message(where, ": no such file"));
  return with_netcdf_errors(where, [&] {
    netCDF::NcFile f(file.string(), netCDF::NcFile::read);
    if (!has_att(f, "varflow_file_type") || text_att(f, "varflow_file_type", where) != kModelType) {
      throw InvalidArgument(format_message(where, ": not a varflow amortized posterior (varflow_file_type is not '",
                                           kModelType, "')"));
    }
    const long long version = int_att(f, "format_version", where);
    if (version != kModelFormatVersion) {
      throw InvalidArgument(format_message(where, ": format_version = ", version, " is not supported (this build reads ",
                                           kModelFormatVersion, ")"));
    }
    // Configuration and shape.
    AmortizedSetup setup;
    const std::string config = text_att(f, "config", where);
    std::istringstream lines(config);
    for (std::string line; std::getline(lines, line);) {
      if (line.empty()) continue;
      const auto colon = line.find(": ");
      if (colon == std::string::npos) throw InvalidArgument(format_message(where, ": config line '", line, "' is malformed"));
      apply_entry(setup, line.substr(0, colon), line.substr(colon + 2), where + " config");
    }
    ProblemShape shape;
    shape.state_size = static_cast<Index>(int_att(f, "state_size", where));
    shape.obs_size = static_cast<Index>(int_att(f, "obs_size", where));
    shape.obs_slots = static_cast<Index>(int_att(f, "obs_slots", where));
    shape.obs_grid = static_cast<Index>(int_att(f, "obs_grid", where));
    AmortizedPosterior q;
    q.impl_ = std::make_unique<Impl>(setup.network, shape, text_att(f, "problem", where));
    Impl& im = *q.impl_;
    nn::ParameterSet& ps = im.params();

    // The parameter layout must be this build's.
    const auto blocks = f.getDim("block");
    const auto name_dim = f.getDim("block_name_length");
    if (blocks.isNull() || name_dim.isNull() || blocks.getSize() != ps.blocks().size()) {
      throw InvalidArgument(format_message(where, ": the file has ", blocks.isNull() ? 0 : blocks.getSize(),
                                           " parameter blocks, this architecture has ", ps.blocks().size()));
    }
    const std::size_t name_len = name_dim.getSize();
    std::vector<char> names(blocks.getSize() * name_len);
    get_var(f, "block_name", where).getVar(names.data());
    std::vector<long long> offsets(blocks.getSize()), rows(blocks.getSize()), cols(blocks.getSize());
    get_var(f, "block_offset", where).getVar(offsets.data());
    get_var(f, "block_rows", where).getVar(rows.data());
    get_var(f, "block_cols", where).getVar(cols.data());
    for (std::size_t i = 0; i < blocks.getSize(); ++i) {
      std::string name(names.data() + i * name_len, name_len);
      name = name.substr(0, name.find('\0'));
      const auto& b = ps.blocks()[i];
      if (name != b.name || offsets[i] != b.offset || rows[i] != b.rows || cols[i] != b.cols) {
        throw InvalidArgument(format_message(where, ": parameter block ", i, " is '", name, "' (", rows[i], " x ", cols[i],
                                             " at ", offsets[i], "), this architecture expects '", b.name, "' (",
                                             b.rows, " x ", b.cols, " at ", b.offset, ")"));
      }
    }
    ps.values() = read_vector(f, "weights", ps.size(), where);
    im.norm.x_mean = read_vector(f, "x_mean", shape.state_size, where);
    im.norm.x_std = read_vector(f, "x_std", shape.state_size, where);
    im.norm.y_mean = read_vector(f, "y_mean", shape.obs_size, where);
    im.norm.y_std = read_vector(f, "y_std", shape.obs_size, where);
    im.sync_constants();
    const std::string definition = has_att(f, "problem_definition") ? text_att(f, "problem_definition", where) : "";
    std::istringstream definition_lines(definition);
    for (std::string line; std::getline(definition_lines, line);) {
      if (line.empty()) continue;
      const auto colon = line.find(": ");
      if (colon == std::string::npos) {
        throw InvalidArgument(format_message(where, ": problem_definition line '", line, "' is malformed"));
      }
      im.problem_definition.emplace_back(line.substr(0, colon), line.substr(colon + 2));
    }
    const std::string stored = text_att(f, "checksum", where);
    const std::string computed = model_checksum(checked_text(config, definition), shape, im.norm, ps.values());
    if (stored != computed) {
      throw InvalidArgument(format_message(where, ": checksum mismatch (stored ", stored, ", computed ", computed,
                                           "): the file is corrupted"));
    }
    if (const auto* flow = dynamic_cast<const FlowHead*>(&im.head())) {
      const auto& perms = flow->permutations();
      std::vector<long long> p(perms.size() * static_cast<std::size_t>(shape.state_size));
      get_var(f, "flow_permutation", where).getVar(p.data());
      std::size_t k = 0;
      for (const auto& perm : perms) {
        for (Index v : perm) {
          if (p[k++] != v) throw InvalidArgument(format_message(where, ": flow_permutation differs from this build's"));
        }
      }
    }
    // Training record.
    im.trained = int_att(f, "trained", where) != 0;
    auto& s = im.summary;
    const std::string status = text_att(f, "training_status", where);
    s.status = status == "completed"         ? nn::TrainingStatus::kCompleted
               : status == "early_stopped"   ? nn::TrainingStatus::kEarlyStopped
               : status == "non_finite_loss" ? nn::TrainingStatus::kNonFiniteLoss
               : throw InvalidArgument(format_message(where, ": training_status = '", status,
                                                      "' is not one of: completed, early_stopped, non_finite_loss"));
    s.message = text_att(f, "training_message", where);
    s.epochs_run = static_cast<Index>(int_att(f, "epochs_run", where));
    s.best_epoch = static_cast<Index>(int_att(f, "best_epoch", where));
    s.best_validation_loss = double_att(f, "best_validation_loss", where);
    s.train_pairs = static_cast<Index>(int_att(f, "train_pairs", where));
    s.validation_pairs = static_cast<Index>(int_att(f, "validation_pairs", where));
    s.seconds = double_att(f, "training_seconds", where);
    s.pairs_per_second = double_att(f, "pairs_per_second", where);
    const auto ne = static_cast<Index>(f.getDim("epoch").getSize());
    auto curve = [&](const char* name) {
      const Vector v = read_vector(f, name, ne, where);
      return std::vector<double>(v.data(), v.data() + v.size());
    };
    s.train_loss = curve("train_loss");
    s.validation_loss = curve("validation_loss");
    s.learning_rate = curve("learning_rate");
    return q;
  });
}

// ---- observation and samples files -----------------------------------------------------------------

Vector read_observation_file(const std::filesystem::path& file) {
  const std::string where = "observation file " + path_text(file);
  if (!std::filesystem::is_regular_file(file)) throw InvalidArgument(format_message(where, ": no such file"));
  return with_netcdf_errors(where, [&] {
    netCDF::NcFile f(file.string(), netCDF::NcFile::read);
    netCDF::NcVar v = get_var(f, "observation", where);
    if (v.getDimCount() != 1) {
      throw InvalidArgument(format_message(where, ": variable 'observation' has ", v.getDimCount(), " dimensions, expected 1"));
    }
    Vector y(static_cast<Index>(v.getDim(0).getSize()));
    if (y.size() > 0) v.getVar(y.data());
    if (v.getAtts().count("_FillValue") > 0) {
      double fill = 0.0;
      v.getAtt("_FillValue").getValues(&fill);
      for (Index i = 0; i < y.size(); ++i) {
        if (y[i] == fill) y[i] = std::nan("");
      }
    }
    return y;
  });
}

void write_observation_file(const std::filesystem::path& file, const Vector& y) {
  AtomicOutput out(file);
  with_netcdf_errors("observation file " + path_text(file), [&] {
    netCDF::NcFile f(out.temporary_path().string(), netCDF::NcFile::replace, netCDF::NcFile::nc4);
    f.putAtt("varflow_file_type", "varflow_observation");
    f.putAtt("format_version", netCDF::ncInt, 1);
    const auto obs = f.addDim("obs", static_cast<std::size_t>(y.size()));
    auto v = f.addVar("observation", netCDF::ncDouble, obs);
    v.putAtt("long_name", "observation vector (NaN = missing)");
    v.putAtt("units", "observation units");
    if (y.size() > 0) v.putVar(y.data());
    return 0;
  });
  out.commit();
}

void write_samples_file(const std::filesystem::path& file, const Matrix& draws, const Vector& observation,
                        const Vector& mean, const SamplesFileInfo& info) {
  const std::string where = "samples file " + path_text(file);
  check_size(where, "mean", mean.size(), draws.rows());
  AtomicOutput out(file);
  with_netcdf_errors(where, [&] {
    netCDF::NcFile f(out.temporary_path().string(), netCDF::NcFile::replace, netCDF::NcFile::nc4);
    f.putAtt("title", "draws from a varflow amortized posterior");
    f.putAtt("varflow_file_type", kSamplesType);
    f.putAtt("format_version", netCDF::ncInt, kSamplesFormatVersion);
    f.putAtt("varflow_version", VARFLOW_VERSION_STRING);
    f.putAtt("model", info.model);
    f.putAtt("problem", info.problem);
    f.putAtt("head", info.head);
    f.putAtt("seed", netCDF::ncUint64, static_cast<unsigned long long>(info.seed));
    const auto sample = f.addDim("sample", static_cast<std::size_t>(draws.cols()));
    const auto state = f.addDim("state", static_cast<std::size_t>(draws.rows()));
    const auto obs = f.addDim("obs", static_cast<std::size_t>(observation.size()));
    // samples(sample, state) is row-major in netCDF: one draw per row = one column of `draws`
    // (column-major), so the memory layouts agree.
    auto vs = f.addVar("samples", netCDF::ncDouble, {sample, state});
    vs.putAtt("long_name", "posterior draws, one per row");
    vs.putAtt("units", "model units");
    if (draws.size() > 0) vs.putVar(draws.data());
    auto vo = f.addVar("observation", netCDF::ncDouble, obs);
    vo.putAtt("long_name", "the observation conditioned on (NaN = missing)");
    vo.putAtt("units", "observation units");
    if (observation.size() > 0) vo.putVar(observation.data());
    auto vm = f.addVar("mean", netCDF::ncDouble, state);
    vm.putAtt("long_name", "the model's posterior mean at the observation");
    vm.putAtt("units", "model units");
    if (mean.size() > 0) vm.putVar(mean.data());
    return 0;
  });
  out.commit();
}

SamplesFile read_samples_file(const std::filesystem::path& file) {
  const std::string where = "samples file " + path_text(file);
  if (!std::filesystem::is_regular_file(file)) throw InvalidArgument(format_message(where, ": no such file"));
  return with_netcdf_errors(where, [&] {
    netCDF::NcFile f(file.string(), netCDF::NcFile::read);
    if (!has_att(f, "varflow_file_type") || text_att(f, "varflow_file_type", where) != kSamplesType) {
      throw InvalidArgument(format_message(where, ": not a varflow samples file"));
    }
    const long long version = int_att(f, "format_version", where);
    if (version != kSamplesFormatVersion) {
      throw InvalidArgument(format_message(where, ": format_version = ", version, " is not supported"));
    }
    SamplesFile s;
    const auto n = static_cast<Index>(f.getDim("sample").getSize()), d = static_cast<Index>(f.getDim("state").getSize());
    s.draws.resize(d, n);
    if (s.draws.size() > 0) get_var(f, "samples", where).getVar(s.draws.data());
    s.observation = read_vector(f, "observation", static_cast<Index>(f.getDim("obs").getSize()), where);
    s.mean = read_vector(f, "mean", d, where);
    s.info.model = text_att(f, "model", where);
    s.info.problem = text_att(f, "problem", where);
    s.info.head = text_att(f, "head", where);
    unsigned long long seed = 0;
    f.getAtt("seed").getValues(&seed);
    s.info.seed = seed;
    return s;
  });
}

}  // namespace varflow::amortized
