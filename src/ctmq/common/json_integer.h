// Integers read from JSON files, checked. nlohmann's get<T>() converts a JSON
// float to an integer type with a C++ cast: undefined behaviour out of range
// (found by fuzz/manifest_fuzz.cc and fuzz/packed_model_fuzz.cc), a silent
// truncation in range. Every reader of an integer field in a file ctmq did
// not just write itself goes through json_integer.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <type_traits>
#include <vector>

namespace ctmq {

// v as T when v is a JSON integer within T's range; nullopt otherwise (a
// float, a string, null, out of range). T: an integer type other than bool.
template <typename T>
std::optional<T> json_integer(const nlohmann::json& v) {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>);
  if (v.is_number_unsigned()) {  // nlohmann stores non-negative integers here
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<T>::max())) return std::nullopt;
    return static_cast<T>(u);
  }
  if (v.is_number_integer()) {  // negative
    const int64_t s = v.get<int64_t>();
    if constexpr (std::is_unsigned_v<T>) {
      return std::nullopt;
    } else {
      if (s < static_cast<int64_t>(std::numeric_limits<T>::min())) return std::nullopt;
      return static_cast<T>(s);
    }
  }
  return std::nullopt;
}

// v as a vector of T when v is an array of such integers; nullopt otherwise.
template <typename T>
std::optional<std::vector<T>> json_integers(const nlohmann::json& v) {
  if (!v.is_array()) return std::nullopt;
  std::vector<T> out;
  out.reserve(v.size());
  for (const nlohmann::json& e : v) {
    const std::optional<T> x = json_integer<T>(e);
    if (!x) return std::nullopt;
    out.push_back(*x);
  }
  return out;
}

// object[key] as T when present and such an integer; `fallback` when absent;
// nullopt when present but not such an integer.
template <typename T>
std::optional<T> json_integer_or(const nlohmann::json& object, const char* key, T fallback) {
  if (!object.is_object() || !object.contains(key)) return fallback;
  return json_integer<T>(object.at(key));
}

}  // namespace ctmq
