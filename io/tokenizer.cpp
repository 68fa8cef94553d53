#include "io/tokenizer.h"

#include <cctype>
#include <cstdio>
#include <cstring>

#include "io/error.h"

namespace mambadna::io {

namespace {
constexpr const char kIupac[] = "ACGTUNRYKMSWBDHV";
}

CaseMode parse_case_mode(const std::string& text) {
  if (text == "upper") return CaseMode::upper;
  if (text == "keep") return CaseMode::keep;
  throw UsageError("invalid case mode '" + text + "' (expected 'upper' or 'keep')");
}

InvalidMode parse_invalid_mode(const std::string& text) {
  std::string t = text;  // either case, as "N" and "n" were always both taken
  for (char& c : t) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (t == "error") return InvalidMode::error;
  if (t == "skip") return InvalidMode::skip;
  if (t == "n") return InvalidMode::to_n;
  throw UsageError("--invalid " + text + ": choose error, skip or N (what to do with a character that is "
                   "not an IUPAC nucleotide code)");
}

const char* case_mode_name(CaseMode mode) { return mode == CaseMode::keep ? "keep" : "upper"; }

const char* invalid_mode_name(InvalidMode mode) {
  switch (mode) {
    case InvalidMode::skip: return "skip";
    case InvalidMode::to_n: return "N";
    default: return "error";
  }
}

bool is_iupac_base(uint8_t byte) {
  int up = std::toupper(byte);
  return byte != 0 && std::strchr(kIupac, up) != nullptr;
}

Tokenizer::Tokenizer(const TokenizerOptions& options) : options_(options) {
  uint8_t invalid = options.invalid == InvalidMode::error  ? kInvalid
                    : options.invalid == InvalidMode::skip ? kDrop
                                                           : uint8_t('N');
  for (int b = 0; b < 256; ++b) {
    uint8_t byte = uint8_t(b);
    if (byte == ' ' || byte == '\t' || byte == '\r' || byte == '\n' || byte == '\v' || byte == '\f')
      table_[b] = kIgnore;
    else if (is_iupac_base(byte))
      table_[b] = options.case_mode == CaseMode::upper ? uint8_t(std::toupper(byte)) : byte;
    else
      table_[b] = invalid;
  }
}

std::string describe_byte(uint8_t byte) {
  char buf[32];
  if (std::isprint(byte))
    std::snprintf(buf, sizeof buf, "'%c' (0x%02X)", byte, unsigned(byte));
  else
    std::snprintf(buf, sizeof buf, "byte 0x%02X", unsigned(byte));
  return buf;
}

int32_t aligned_token(const Tokenizer& tok, uint8_t byte, const std::string& file,
                      const std::string& contig, int64_t pos, const char* hint) {
  const uint8_t t = tok[byte];
  if (t >= Tokenizer::kFirstToken) return t;
  if (t == Tokenizer::kInvalid)
    throw InputError(where(file, contig, pos) + ": invalid character " + describe_byte(byte) + (hint ? hint : ""));
  return 'N';
}

}  // namespace mambadna::io
