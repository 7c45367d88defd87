// Crash-safe file replacement.
//
// Contract: a reader of `path` sees either the old complete file or the new
// complete file, never a partial one, even if the process dies or the node
// loses power mid-write. Writers go to a temporary name in the same
// directory, fsync it, rename it over `path`, and fsync the directory.
#pragma once

#include <string>

namespace ctmq {

// Writes `bytes` to `path` atomically (see above). Creates missing parent
// directories. Throws ctmq::Error naming the path on any I/O failure; on
// failure `path` is untouched.
void write_file_atomically(const std::string& path, const std::string& bytes);

// Publishes a file that the caller has already written at `temporary_path`
// (for example with torch::save): fsyncs it, renames it to `final_path`
// (same directory required), fsyncs the directory.
void commit_file_atomically(const std::string& temporary_path, const std::string& final_path);

// A temporary name next to `final_path`, unique per process and call.
std::string temporary_path_for(const std::string& final_path);

// Removes the temporary files (NAME.tmp.*) that interrupted writes (kill -9,
// a node failure) left in `directory`, not recursing; returns how many.
// REQUIRES: no writer is active in `directory` (the caller holds its lock).
int remove_temporaries_in(const std::string& directory);

// Reads a whole file; throws ctmq::Error naming the path if it cannot.
std::string read_file(const std::string& path);

}  // namespace ctmq
