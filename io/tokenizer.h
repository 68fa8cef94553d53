// Byte-level DNA tokenizer: one 256-entry table maps every input byte to its token (the byte of
// the base after case handling) or to what to do with it. A token is always a printable letter,
// so the small values below cannot collide with tokens.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace mambadna::io {

enum class CaseMode : uint8_t {
  upper,  // fold lower case (soft-masked bases) to upper case [default]
  keep,   // keep the case of the input
};

enum class InvalidMode : uint8_t {
  error,  // a byte that is not an IUPAC nucleotide code is an InputError [default]
  skip,   // drop it (it still counts as a position of the record)
  to_n,   // replace it with 'N'
};

struct TokenizerOptions {
  CaseMode case_mode = CaseMode::upper;
  InvalidMode invalid = InvalidMode::error;
};

// Parses "upper"/"keep" and "error"/"skip"/"N" (as written on the command line); throws UsageError.
CaseMode parse_case_mode(const std::string& text);
InvalidMode parse_invalid_mode(const std::string& text);
// The names parse_case_mode and parse_invalid_mode read: "upper", "keep"; "error", "skip", "N".
const char* case_mode_name(CaseMode mode);
const char* invalid_mode_name(InvalidMode mode);

// True for A, C, G and T in either case: the bases that log-likelihood totals count.
inline bool is_acgt(int32_t token) {
  switch (token) {
    case 'A': case 'C': case 'G': case 'T': case 'a': case 'c': case 'g': case 't': return true;
    default: return false;
  }
}

// True for the IUPAC nucleotide codes A C G T U N R Y K M S W B D H V in either case.
bool is_iupac_base(uint8_t byte);

class Tokenizer {
 public:
  // Table values below kFirstToken; every value >= kFirstToken is the token itself.
  static constexpr uint8_t kIgnore = 0;   // whitespace inside sequence text: not a position
  static constexpr uint8_t kDrop = 1;     // invalid byte under InvalidMode::skip: a position, no token
  static constexpr uint8_t kInvalid = 2;  // invalid byte under InvalidMode::error
  static constexpr uint8_t kFirstToken = 3;

  explicit Tokenizer(const TokenizerOptions& options = {});

  uint8_t operator[](uint8_t byte) const { return table_[byte]; }
  const TokenizerOptions& options() const { return options_; }

  // Why a run of tokenize() stopped.
  enum class Stop : uint8_t {
    end,      // consumed the whole span
    full,     // the output is full and the next byte would be a token (left unconsumed)
    invalid,  // the next byte is invalid under InvalidMode::error (left unconsumed)
  };

  // Tokenizes bytes from `p` (advanced) up to `end` into out[n..room), advancing `n` and `pos`
  // (the record position of the next byte; whitespace is not a position). `first` is set to the
  // position of the first token written when n was 0 on entry. Bytes that produce no token are
  // consumed even when the output is full, so `full` means another token really follows.
  Stop tokenize(const uint8_t*& p, const uint8_t* end, uint8_t* out, size_t& n, size_t room,
                int64_t& pos, int64_t& first) const {
    const uint8_t* q = p;
    size_t k = n;
    int64_t at = pos;
    Stop stop = Stop::end;
    while (q < end) {
      uint8_t t = table_[*q];
      if (t >= kFirstToken) [[likely]] {
        if (k == room) {
          stop = Stop::full;
          break;
        }
        if (k == 0) first = at;
        out[k++] = t;
        ++at;
      } else if (t == kDrop) {
        ++at;
      } else if (t == kInvalid) {
        stop = Stop::invalid;
        break;
      }
      ++q;
    }
    p = q;
    n = k;
    pos = at;
    return stop;
  }

 private:
  TokenizerOptions options_;
  std::array<uint8_t, 256> table_{};
};

// "'#' (0x23)" for error messages; non-printable bytes as "byte 0x07".
std::string describe_byte(uint8_t byte);

// The token of a base read by random access (io::FastaIndex), where positions must stay
// aligned: a byte the tokenizer would drop becomes 'N'. An invalid byte under
// InvalidMode::error throws InputError naming the file, contig and 0-based position `pos`, and
// then `hint` (what the caller's command offers instead, " (use --invalid N ...)") when given.
int32_t aligned_token(const Tokenizer& tok, uint8_t byte, const std::string& file,
                      const std::string& contig, int64_t pos, const char* hint = nullptr);

}  // namespace mambadna::io
