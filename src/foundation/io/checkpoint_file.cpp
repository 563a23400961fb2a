#include "varflow/io/checkpoint_file.h"

#include <fstream>
#include <sstream>

#include "varflow/core/hash.h"
#include "varflow/io/atomic_file.h"

namespace varflow {

void write_checkpoint(const std::filesystem::path& file, std::string_view kind, const std::string& fingerprint,
                      const std::string& payload) {
  ByteWriter w;
  w.bytes = std::string(kind) + "\n";
  w.put(fingerprint);
  w.bytes += payload;
  w.put(fnv1a(w.bytes.data(), w.bytes.size()));
  write_text_atomically(file, w.bytes);
}

ByteReader read_checkpoint(const std::filesystem::path& file, std::string_view kind, const std::string& fingerprint) {
  const std::string where = format_message("checkpoint ", file.string());
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InvalidArgument(where + ": cannot be read");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  const std::string magic = std::string(kind) + "\n";
  if (bytes.size() < magic.size() + 8 || bytes.compare(0, magic.size(), magic) != 0) {
    // kind is "<name> <format>": the same name with another format is a checkpoint of another varflow.
    const std::size_t space = kind.find(' ');
    const std::string_view name = kind.substr(0, space);
    if (space != std::string_view::npos && bytes.compare(0, space + 1, kind.substr(0, space + 1)) == 0) {
      const std::string found = bytes.substr(space + 1, bytes.find('\n') - space - 1);
      throw InvalidArgument(format_message(where, ": format ", found, ", this varflow reads format ",
                                           kind.substr(space + 1), ": remove it or drop --resume"));
    }
    throw InvalidArgument(format_message(where, ": not a ", name, " file"));
  }
  std::uint64_t stored = 0;
  std::memcpy(&stored, bytes.data() + bytes.size() - 8, 8);
  if (fnv1a(bytes.data(), bytes.size() - 8) != stored) throw InvalidArgument(where + ": damaged (checksum mismatch)");
  ByteReader r(bytes.substr(magic.size(), bytes.size() - 8 - magic.size()), where);
  if (r.get_string() != fingerprint) {
    throw InvalidArgument(where + " was written by a run of other settings (config, seed, inputs, threads or "
                          "varflow version): remove it or drop --resume");
  }
  return r;
}

}  // namespace varflow
