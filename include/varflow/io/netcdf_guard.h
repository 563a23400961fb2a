#pragma once
// Protection of the program against damaged and hostile netCDF files (design/reliability.md,
// "Damaged and hostile files"). The netCDF-4 library (HDF5 underneath) can crash or hang on a
// corrupted file, so no file reaches it in this process before it has passed one of two checks:
//
//  - a sealed file (every file varflow writes): a 64-byte checksum trailer appended after the HDF5
//    content, `varflow-sum1 fnv1a64=<16 hex digits> size=<20 digits>\n`, the FNV-1a 64 hash and
//    length of every byte before it. HDF5 ignores bytes after its end-of-file address, so ncdump,
//    netCDF4-python and xarray read a sealed file as before. A trailer that does not match its
//    content is refused (the file was damaged or changed after varflow wrote it).
//  - an unsealed file (a user's own netCDF, files of earlier versions, a file whose trailer was
//    damaged): it is parsed in full (every group, dimension, attribute and variable) in a forked
//    child process with a time limit; a child that dies of a signal or runs out of time is a refused
//    file, and only a file the child got through is opened here.
//
// Errors are InvalidArgument naming the file (exit status 2 in the program).
#include <cstdint>
#include <filesystem>
#include <string>

namespace varflow {

// Size of the checksum trailer in bytes.
inline constexpr std::size_t kChecksumTrailerBytes = 64;

// Appends the checksum trailer to `file` (closed, complete) and flushes nothing: the caller's
// AtomicOutput::commit() does. Throws Error naming the file when reading or writing fails.
void append_checksum_trailer(const std::filesystem::path& file);

enum class ChecksumSeal { kAbsent, kIntact };

// kIntact when `file` ends in a trailer that matches its content; kAbsent when it has no trailer.
// Throws InvalidArgument "<where>: ... damaged" when the trailer does not match (another size or
// hash), Error when the file cannot be read.
ChecksumSeal verify_checksum_trailer(const std::filesystem::path& file, const std::string& where);

// Parses every group, dimension, attribute and variable of `file` with the netCDF library in a
// forked child process (its output discarded). Returns when the child exits by itself (also when
// the library reported an error: the same error then appears, as an exception, in this process).
// Throws InvalidArgument naming `where` when the child dies of a signal or is still running after
// untrusted_read_timeout_seconds(file) (it is then killed).
void probe_netcdf_in_child(const std::filesystem::path& file, const std::string& where);

// The time limit of the probe: 30 s plus 1 s per 10 MB of the file, or the number of seconds in
// the environment variable VARFLOW_UNTRUSTED_READ_TIMEOUT when it is set (> 0).
double untrusted_read_timeout_seconds(const std::filesystem::path& file);

// What NetcdfReader does before opening a file: a sealed file passes when its trailer matches, an
// unsealed one when the probe passes. Throws as the two functions above.
void check_netcdf_before_open(const std::filesystem::path& file, const std::string& where);

}  // namespace varflow
