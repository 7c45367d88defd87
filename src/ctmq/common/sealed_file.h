// A sealed file: the payload, then a 24-byte footer that lets a reader verify
// every byte before any parser (zip, pickle, TorchScript) sees them.
//
//   offset 0          payload (any bytes)
//   offset n          magic, 8 bytes, names the kind (e.g. "CTMQCKP1")
//   offset n + 8      payload size n, uint64 little-endian
//   offset n + 16     CRC-32 (zlib) of the payload, uint32 little-endian
//   offset n + 20     format version, uint32 little-endian
//
// Used by checkpoints (train/checkpoint.h) and network files
// (model/weights_io.h); docs/run-directory.md.
#pragma once

#include <cstdint>
#include <string>

namespace ctmq {

constexpr size_t kSealBytes = 24;

// What a kind of sealed file is called in messages and the magic it carries.
struct SealKind {
  const char* name;   // e.g. "checkpoint", "network file"
  const char* magic;  // exactly 8 characters
};

// Appends the footer to `payload`.
std::string seal(std::string payload, const SealKind& kind, uint32_t version);

// True when `bytes` ends with a footer carrying kind.magic (not verified).
bool has_seal(const std::string& bytes, const SealKind& kind);

struct Unsealed {
  size_t payload_size = 0;  // the payload is bytes[0, payload_size)
  uint32_t version = 0;
};

// Verifies the footer of `bytes` (the contents of `path`): magic, size, CRC-32,
// and a version in [oldest_version, newest_version] (the CRC does not cover the
// footer; a narrow range makes a flipped version bit show). Throws
// ctmq::Error "KIND PATH ..." saying what is wrong: truncated, no valid footer,
// size or CRC-32 mismatch, unknown version.
Unsealed unseal(const std::string& bytes, const SealKind& kind, const std::string& path,
                uint32_t oldest_version, uint32_t newest_version);

}  // namespace ctmq
