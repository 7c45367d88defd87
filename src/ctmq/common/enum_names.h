// Names of enum values: one table per enum, next to the enum, and the two
// lookups every option parser and file reader uses.
//
//   inline constexpr EnumTable<Block, 2> kBlockNames{{
//       {Block::kBiReal, "bi-real"}, {Block::kTorchvision, "torchvision"}}};
//   parse_enum(kBlockNames, "relu", "block")
//     -> ctmq::Error "block 'relu' is not known; use one of: bi-real, torchvision"
//   enum_name(kBlockNames, Block::kBiReal) -> "bi-real"
//
// The first entry of a value is its name; a later entry with the same value is
// an alias that parse_enum accepts but neither lists nor returns.
#pragma once

#include <array>
#include <cstddef>
#include <string>

#include "ctmq/common/error.h"

namespace ctmq {

template <typename E>
struct EnumName {
  E value;
  const char* name;
};

template <typename E, std::size_t N>
using EnumTable = std::array<EnumName<E>, N>;

// The names of `table` without aliases, in table order: "a, b, c".
template <typename E, std::size_t N>
std::string enum_choices(const EnumTable<E, N>& table) {
  std::string out;
  for (std::size_t i = 0; i < N; ++i) {
    bool alias = false;
    for (std::size_t j = 0; j < i; ++j) alias = alias || table[j].value == table[i].value;
    if (!alias) out += (out.empty() ? "" : ", ") + std::string(table[i].name);
  }
  return out;
}

// The value named `text`. Otherwise throws ctmq::Error
// "WHAT 'TEXT' is not known; use one of: a, b" (then " (NOTE)" when given):
// `what` names the option, key or field being read.
template <typename E, std::size_t N>
E parse_enum(const EnumTable<E, N>& table, const std::string& text, const std::string& what,
             const std::string& note = "") {
  for (const EnumName<E>& entry : table) {
    if (text == entry.name) return entry.value;
  }
  CTMQ_FAIL(what << " '" << text << "' is not known; use one of: " << enum_choices(table)
                 << (note.empty() ? "" : " (" + note + ")"));
}

// The name of `value`; a value missing from its table is a programmer bug.
template <typename E, std::size_t N>
std::string enum_name(const EnumTable<E, N>& table, E value) {
  for (const EnumName<E>& entry : table) {
    if (entry.value == value) return entry.name;
  }
  CTMQ_ASSERT(false && "enum value missing from its name table");
  return {};
}

}  // namespace ctmq
