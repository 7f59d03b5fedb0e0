#include "vexfs/filter.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace vexfs {
namespace {

enum class Op : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };

const char* OpText(Op op) {
  switch (op) {
    case Op::kEq:
      return "=";
    case Op::kNe:
      return "!=";
    case Op::kLt:
      return "<";
    case Op::kLe:
      return "<=";
    case Op::kGt:
      return ">";
    case Op::kGe:
      return ">=";
  }
  return "?";
}

// `cmp` is <0, 0 or >0 as in memcmp.
bool ApplyOp(Op op, int cmp) {
  switch (op) {
    case Op::kEq:
      return cmp == 0;
    case Op::kNe:
      return cmp != 0;
    case Op::kLt:
      return cmp < 0;
    case Op::kLe:
      return cmp <= 0;
    case Op::kGt:
      return cmp > 0;
    case Op::kGe:
      return cmp >= 0;
  }
  return false;
}

template <typename T>
int Compare3(T a, T b) {
  return a < b ? -1 : (a > b ? 1 : 0);
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char ToLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
// Characters of a bare word: keywords, field names, numbers, dates.
bool IsWordChar(char c) {
  return IsAlpha(c) || IsDigit(c) || c == '_' || c == '.' || c == ':' || c == '+' || c == '-';
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ToLower(a[i]) != ToLower(b[i])) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Exact decimal numbers: NUMBER := '-'? DIGIT+ ('.' DIGIT+)?
// Compared digit-wise, so any length is exact and no NaN/inf can appear.

struct Decimal {
  bool neg = false;
  std::string_view int_digits;   // no leading zeros
  std::string_view frac_digits;  // no trailing zeros
};

std::optional<Decimal> ParseDecimal(std::string_view s) {
  size_t i = 0;
  Decimal d;
  if (i < s.size() && s[i] == '-') {
    d.neg = true;
    ++i;
  }
  const size_t int_start = i;
  while (i < s.size() && IsDigit(s[i])) ++i;
  if (i == int_start) return std::nullopt;
  d.int_digits = s.substr(int_start, i - int_start);
  if (i < s.size() && s[i] == '.') {
    const size_t frac_start = ++i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    if (i == frac_start) return std::nullopt;
    d.frac_digits = s.substr(frac_start, i - frac_start);
  }
  if (i != s.size()) return std::nullopt;
  while (!d.int_digits.empty() && d.int_digits.front() == '0') d.int_digits.remove_prefix(1);
  while (!d.frac_digits.empty() && d.frac_digits.back() == '0') d.frac_digits.remove_suffix(1);
  if (d.int_digits.empty() && d.frac_digits.empty()) d.neg = false;  // -0 == 0
  return d;
}

int CompareDecimal(const Decimal& a, const Decimal& b) {
  if (a.neg != b.neg) return a.neg ? -1 : 1;
  int mag = Compare3(a.int_digits.size(), b.int_digits.size());
  if (mag == 0) mag = a.int_digits.compare(b.int_digits);
  // Trailing zeros are stripped, so lexicographic order is numeric order.
  if (mag == 0) mag = a.frac_digits.compare(b.frac_digits);
  mag = mag < 0 ? -1 : (mag > 0 ? 1 : 0);
  return a.neg ? -mag : mag;
}

int CompareBytes(std::string_view a, std::string_view b) {
  // char_traits<char>::compare orders as unsigned char, i.e. memcmp order.
  const int c = a.compare(b);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

// ---------------------------------------------------------------------------
// Time and size literals.

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  // Howard Hinnant's days_from_civil (proleptic Gregorian).
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool ParseFixedDigits(std::string_view s, size_t pos, size_t n, unsigned* out) {
  if (pos + n > s.size()) return false;
  unsigned v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!IsDigit(s[i])) return false;
    v = v * 10 + static_cast<unsigned>(s[i] - '0');
  }
  *out = v;
  return true;
}

bool ParseInt64(std::string_view s, int64_t* out) {
  size_t i = 0;
  const bool neg = !s.empty() && s[0] == '-';
  if (neg) ++i;
  if (i == s.size()) return false;
  // Accumulate negatively so INT64_MIN is representable.
  int64_t v = 0;
  for (; i < s.size(); ++i) {
    if (!IsDigit(s[i])) return false;
    if (__builtin_mul_overflow(v, 10, &v)) return false;
    if (__builtin_sub_overflow(v, s[i] - '0', &v)) return false;
  }
  if (!neg) {
    if (v == INT64_MIN) return false;
    v = -v;
  }
  *out = v;
  return true;
}

// Epoch seconds or ISO-8601 (see filter.h). Returns nullopt if malformed.
std::optional<int64_t> ParseTime(std::string_view s) {
  int64_t epoch;
  if (ParseInt64(s, &epoch)) return epoch;
  unsigned year, month, day, hour = 0, minute = 0, second = 0;
  if (!ParseFixedDigits(s, 0, 4, &year) || s.size() < 10 || s[4] != '-' ||
      !ParseFixedDigits(s, 5, 2, &month) || s[7] != '-' || !ParseFixedDigits(s, 8, 2, &day)) {
    return std::nullopt;
  }
  size_t i = 10;
  if (i < s.size() && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
    if (!ParseFixedDigits(s, i + 1, 2, &hour) || i + 3 >= s.size() || s[i + 3] != ':' ||
        !ParseFixedDigits(s, i + 4, 2, &minute)) {
      return std::nullopt;
    }
    i += 6;
    if (i < s.size() && s[i] == ':') {
      if (!ParseFixedDigits(s, i + 1, 2, &second)) return std::nullopt;
      i += 3;
    }
  }
  int64_t offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    unsigned oh, om;
    if (!ParseFixedDigits(s, i + 1, 2, &oh) || i + 3 >= s.size() || s[i + 3] != ':' ||
        !ParseFixedDigits(s, i + 4, 2, &om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = (s[i] == '+' ? 1 : -1) * static_cast<int64_t>(oh * 3600 + om * 60);
    i += 6;
  }
  if (i != s.size()) return std::nullopt;
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1) return std::nullopt;
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (day > kDays[month - 1] + (month == 2 && leap ? 1 : 0)) return std::nullopt;
  if (hour > 23 || minute > 59 || second > 59) return std::nullopt;
  // Local time = UTC + offset, so UTC = local - offset.
  return DaysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset;
}

std::optional<uint64_t> ParseSize(std::string_view s) {
  uint64_t mult = 1;
  if (!s.empty()) {
    switch (ToLower(s.back())) {
      case 'k':
        mult = uint64_t{1} << 10;
        break;
      case 'm':
        mult = uint64_t{1} << 20;
        break;
      case 'g':
        mult = uint64_t{1} << 30;
        break;
      default:
        break;
    }
    if (mult != 1) s.remove_suffix(1);
  }
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (!IsDigit(c)) return std::nullopt;
    if (__builtin_mul_overflow(v, 10, &v)) return std::nullopt;
    if (__builtin_add_overflow(v, static_cast<uint64_t>(c - '0'), &v)) return std::nullopt;
  }
  if (__builtin_mul_overflow(v, mult, &v)) return std::nullopt;
  return v;
}

// ---------------------------------------------------------------------------
// Globs: fnmatch(3) with flags 0, bytewise, without glibc's recursion (whose
// cost is exponential in the number of '*'): the single-backtrack algorithm
// is O(pattern * name) because every non-'*' element consumes one byte.

bool MatchClass(std::string_view name, unsigned char c, bool* known) {
  *known = true;
  const bool upper = c >= 'A' && c <= 'Z', lower = c >= 'a' && c <= 'z';
  const bool digit = c >= '0' && c <= '9';
  if (name == "alpha") return upper || lower;
  if (name == "digit") return digit;
  if (name == "alnum") return upper || lower || digit;
  if (name == "upper") return upper;
  if (name == "lower") return lower;
  if (name == "space") return c == ' ' || (c >= '\t' && c <= '\r');
  if (name == "blank") return c == ' ' || c == '\t';
  if (name == "punct") return c > 32 && c < 127 && !upper && !lower && !digit;
  if (name == "xdigit") return digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  if (name == "cntrl") return c < 32 || c == 127;
  if (name == "print") return c >= 32 && c < 127;
  if (name == "graph") return c > 32 && c < 127;
  *known = false;
  return false;
}

// Scans the bracket expression at p[*i] == '['. On success advances *i past
// the closing ']' and sets *matched for byte `c`. Returns an error text for
// a malformed bracket (used by validation; matching only sees valid ones).
const char* ScanBracket(std::string_view p, size_t* i, unsigned char c, bool* matched) {
  size_t j = *i + 1;
  bool negate = false;
  if (j < p.size() && (p[j] == '!' || p[j] == '^')) {
    negate = true;
    ++j;
  }
  bool hit = false;
  bool first = true;
  for (;;) {
    if (j >= p.size()) return "unterminated '[' in glob";
    if (p[j] == ']' && !first) {
      ++j;
      break;
    }
    first = false;
    if (p[j] == '[' && j + 1 < p.size() && (p[j + 1] == '=' || p[j + 1] == '.')) {
      return "collating elements [= =] and [. .] are not supported in globs";
    }
    if (p[j] == '[' && j + 1 < p.size() && p[j + 1] == ':') {
      const size_t end = p.find(":]", j + 2);
      if (end == std::string_view::npos) return "unterminated [: :] class in glob";
      bool known;
      if (MatchClass(p.substr(j + 2, end - j - 2), c, &known)) hit = true;
      if (!known) return "unknown character class in glob";
      j = end + 2;
      continue;
    }
    if (p[j] == '\\' && ++j >= p.size()) return "unterminated '[' in glob";
    const unsigned char lo = static_cast<unsigned char>(p[j++]);
    if (j + 1 < p.size() && p[j] == '-' && p[j + 1] != ']') {
      ++j;
      if (p[j] == '\\' && ++j >= p.size()) return "unterminated '[' in glob";
      const unsigned char hi = static_cast<unsigned char>(p[j++]);
      if (lo <= c && c <= hi) hit = true;
    } else if (lo == c) {
      hit = true;
    }
  }
  *i = j;
  *matched = hit != negate;
  return nullptr;
}

const char* ValidateGlob(std::string_view p) {
  for (size_t i = 0; i < p.size();) {
    if (p[i] == '\\') {
      if (i + 1 >= p.size()) return "trailing '\\' in glob";
      i += 2;
    } else if (p[i] == '[') {
      bool unused;
      if (const char* err = ScanBracket(p, &i, 0, &unused)) return err;
    } else {
      ++i;
    }
  }
  return nullptr;
}

// REQUIRES: ValidateGlob(p) == nullptr.
bool GlobMatch(std::string_view p, std::string_view s) {
  size_t pi = 0, si = 0;
  size_t star_p = std::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size()) {
      const char pc = p[pi];
      const unsigned char sc = static_cast<unsigned char>(s[si]);
      if (pc == '*') {
        star_p = ++pi;
        star_s = si;
        continue;
      }
      if (pc == '?') {
        ++pi;
        ++si;
        continue;
      }
      size_t next = pi;
      bool hit;
      if (pc == '[') {
        ScanBracket(p, &next, sc, &hit);
      } else {
        if (pc == '\\') ++next;
        hit = static_cast<unsigned char>(p[next++]) == sc;
      }
      if (hit) {
        pi = next;
        ++si;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    pi = star_p;
    si = ++star_s;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

// ---------------------------------------------------------------------------
// Paths: '/'-separated components, empty ones ignored.

class Components {
 public:
  explicit Components(std::string_view p) : p_(p) {}
  // Next non-empty component, or nullopt at the end.
  std::optional<std::string_view> Next() {
    while (!p_.empty() && p_.front() == '/') p_.remove_prefix(1);
    if (p_.empty()) return std::nullopt;
    const size_t end = std::min(p_.find('/'), p_.size());
    std::string_view c = p_.substr(0, end);
    p_.remove_prefix(end);
    return c;
  }

 private:
  std::string_view p_;
};

// ---------------------------------------------------------------------------
// Quoting for ToString and error messages.

void AppendQuoted(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '\r':
        *out += "\\r";
        break;
      default:
        if (c < 0x20) {
          *out += "\\u00";
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 15]);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

// A short printable rendering of user text for error messages.
std::string Excerpt(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  const size_t n = std::min<size_t>(s.size(), 32);
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  if (s.size() > n) out += "...";
  return out;
}

bool IsBareName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), IsWordChar);
}

// ---------------------------------------------------------------------------
// Lexer.

enum class Tok : uint8_t { kEnd, kWord, kString, kLParen, kRParen, kComma, kOp };

struct Token {
  Tok kind = Tok::kEnd;
  size_t pos = 0;    // byte offset of the first character
  size_t end = 0;    // byte offset past the last character
  std::string text;  // word text or decoded string
  Op op = Op::kEq;
};

Status LexError(size_t pos, const std::string& what) {
  return Status::InvalidArgument("column " + std::to_string(pos + 1) + ": " + what);
}

int HexValue(char c) {
  if (IsDigit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// Reads \uXXXX at s[*i] == '\\'; advances *i past it.
bool ReadU16(std::string_view s, size_t* i, uint32_t* out) {
  if (*i + 6 > s.size() || s[*i] != '\\' || s[*i + 1] != 'u') return false;
  uint32_t v = 0;
  for (size_t k = *i + 2; k < *i + 6; ++k) {
    const int h = HexValue(s[k]);
    if (h < 0) return false;
    v = v * 16 + static_cast<uint32_t>(h);
  }
  *i += 6;
  *out = v;
  return true;
}

// Lexes the string literal at s[*i] == '"'.
Status LexString(std::string_view s, size_t* i, std::string* out) {
  const size_t start = *i;
  size_t j = start + 1;
  for (;;) {
    if (j >= s.size()) return LexError(start, "unterminated string literal");
    const char c = s[j];
    if (c == '"') {
      ++j;
      break;
    }
    if (static_cast<unsigned char>(c) < 0x20) {
      return LexError(j, "control character in string literal; use an escape such as \\n");
    }
    if (c != '\\') {
      out->push_back(c);
      ++j;
    } else {
      if (j + 1 >= s.size()) return LexError(start, "unterminated string literal");
      switch (s[j + 1]) {
        case '"':
          out->push_back('"');
          j += 2;
          break;
        case '\\':
          out->push_back('\\');
          j += 2;
          break;
        case 'n':
          out->push_back('\n');
          j += 2;
          break;
        case 't':
          out->push_back('\t');
          j += 2;
          break;
        case 'r':
          out->push_back('\r');
          j += 2;
          break;
        case 'u': {
          const size_t esc = j;
          uint32_t cp;
          if (!ReadU16(s, &j, &cp)) {
            return LexError(esc, "expected 4 hex digits after \\u");
          }
          if (cp >= 0xdc00 && cp <= 0xdfff) {
            return LexError(esc, "unpaired UTF-16 low surrogate in \\u escape");
          }
          if (cp >= 0xd800 && cp <= 0xdbff) {
            uint32_t lo;
            if (!ReadU16(s, &j, &lo) || lo < 0xdc00 || lo > 0xdfff) {
              return LexError(esc, "UTF-16 high surrogate must be followed by \\uDC00-\\uDFFF");
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          AppendUtf8(cp, out);
          break;
        }
        default:
          return LexError(j, "unknown escape '\\" + Excerpt(s.substr(j + 1, 1)) +
                                 "' (use \\\" \\\\ \\n \\t \\r or \\uXXXX)");
      }
    }
    if (out->size() > Filter::kMaxStringBytes) {
      return LexError(start, "string literal longer than " +
                                 std::to_string(Filter::kMaxStringBytes) + " bytes");
    }
  }
  *i = j;
  return Status::Ok();
}

Status Lex(std::string_view s, std::vector<Token>* out) {
  size_t i = 0;
  for (;;) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
    Token t;
    t.pos = i;
    if (i == s.size()) {
      t.kind = Tok::kEnd;
      t.end = i;
      out->push_back(std::move(t));
      return Status::Ok();
    }
    const char c = s[i];
    if (IsWordChar(c)) {
      t.kind = Tok::kWord;
      while (i < s.size() && IsWordChar(s[i])) ++i;
      t.text.assign(s.substr(t.pos, i - t.pos));
    } else if (c == '"') {
      t.kind = Tok::kString;
      VEXFS_RETURN_IF_ERROR(LexString(s, &i, &t.text));
    } else if (c == '(' || c == ')' || c == ',') {
      t.kind = c == '(' ? Tok::kLParen : (c == ')' ? Tok::kRParen : Tok::kComma);
      ++i;
    } else if (c == '=' || c == '!' || c == '<' || c == '>') {
      t.kind = Tok::kOp;
      const bool eq_next = i + 1 < s.size() && s[i + 1] == '=';
      if (c == '!' && !eq_next) return LexError(i, "expected '!=', found '!'");
      switch (c) {
        case '=':
          t.op = Op::kEq;
          break;
        case '!':
          t.op = Op::kNe;
          break;
        case '<':
          t.op = eq_next ? Op::kLe : Op::kLt;
          break;
        default:
          t.op = eq_next ? Op::kGe : Op::kGt;
          break;
      }
      i += eq_next ? 2 : 1;
    } else {
      return LexError(i, "unexpected character '" + Excerpt(s.substr(i, 1)) + "'");
    }
    t.end = i;
    out->push_back(std::move(t));
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// The parsed tree.

struct Filter::Node {
  enum class Kind : uint8_t {
    kAnd,
    kOr,
    kNot,
    kXattrCmp,
    kXattrIn,
    kHas,
    kSize,
    kMtime,
    kNameGlob,
    kNameCmp,
    kPathUnder
  };
  struct Literal {
    enum class Kind : uint8_t { kString, kNumber, kBool } kind;
    std::string text;  // decoded string, number as written, "true"/"false"
    bool numeric;      // ParseDecimal(text) succeeds
  };

  Kind kind;
  Op op = Op::kEq;
  bool needs_xattr = false;                     // this subtree may call FileFacts::xattr
  std::vector<std::unique_ptr<Node>> children;  // kAnd, kOr (>= 2), kNot (1)
  uint32_t xattr_slot = 0;                      // kXattrCmp, kXattrIn, kHas
  std::vector<Literal> values;                  // kXattrCmp (1), kXattrIn (>= 1)
  uint64_t size = 0;                            // kSize
  int64_t mtime = 0;                            // kMtime
  std::string text;                             // kNameGlob pattern, kNameCmp name
  std::vector<std::string> components;          // kPathUnder
};

namespace {

using Node = Filter::Node;
using NodePtr = std::unique_ptr<Node>;

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : toks_(std::move(toks)) {}

  Result<NodePtr> ParseTop() {
    if (Peek().kind == Tok::kEnd) return NodePtr();
    VEXFS_ASSIGN_OR_RETURN(NodePtr root, ParseOr(0));
    if (Peek().kind != Tok::kEnd) return Expected("'and', 'or' or end of filter");
    return root;
  }

  std::vector<std::string> TakeXattrNames() { return std::move(names_); }

 private:
  const Token& Peek() const { return toks_[pos_]; }
  const Token& Advance() { return toks_[pos_ == toks_.size() - 1 ? pos_ : pos_++]; }
  bool PeekKeyword(std::string_view kw) const {
    return Peek().kind == Tok::kWord && IEquals(Peek().text, kw);
  }

  static std::string Describe(const Token& t) {
    switch (t.kind) {
      case Tok::kEnd:
        return "end of filter";
      case Tok::kWord:
        return "'" + Excerpt(t.text) + "'";
      case Tok::kString:
        return "string \"" + Excerpt(t.text) + "\"";
      case Tok::kLParen:
        return "'('";
      case Tok::kRParen:
        return "')'";
      case Tok::kComma:
        return "','";
      case Tok::kOp:
        return std::string("'") + OpText(t.op) + "'";
    }
    return "?";
  }

  Status ErrorAt(const Token& t, const std::string& what) const { return LexError(t.pos, what); }
  Status Expected(const std::string& what) const {
    return ErrorAt(Peek(), "expected " + what + ", found " + Describe(Peek()));
  }

  Result<NodePtr> ParseOr(int depth) { return ParseChain(depth, Node::Kind::kOr, "or"); }

  // or/and chains; nested chains of the same kind are flattened so that
  // ToString is canonical.
  Result<NodePtr> ParseChain(int depth, Node::Kind kind, std::string_view kw) {
    VEXFS_ASSIGN_OR_RETURN(NodePtr first, kind == Node::Kind::kOr
                                              ? ParseChain(depth, Node::Kind::kAnd, "and")
                                              : ParseUnary(depth));
    if (!PeekKeyword(kw)) return first;
    auto chain = std::make_unique<Node>();
    chain->kind = kind;
    auto add = [&chain, kind](NodePtr child) {
      chain->needs_xattr |= child->needs_xattr;
      if (child->kind == kind) {
        for (auto& c : child->children) chain->children.push_back(std::move(c));
      } else {
        chain->children.push_back(std::move(child));
      }
    };
    add(std::move(first));
    while (PeekKeyword(kw)) {
      Advance();
      VEXFS_ASSIGN_OR_RETURN(NodePtr next, kind == Node::Kind::kOr
                                               ? ParseChain(depth, Node::Kind::kAnd, "and")
                                               : ParseUnary(depth));
      add(std::move(next));
    }
    return chain;
  }

  Status CheckDepth(int depth) const {
    if (depth >= Filter::kMaxDepth) {
      return ErrorAt(Peek(), "nesting of '(' and 'not' deeper than " +
                                 std::to_string(Filter::kMaxDepth) + " levels");
    }
    return Status::Ok();
  }

  Result<NodePtr> ParseUnary(int depth) {
    if (PeekKeyword("not")) {
      VEXFS_RETURN_IF_ERROR(CheckDepth(depth));
      Advance();
      VEXFS_ASSIGN_OR_RETURN(NodePtr child, ParseUnary(depth + 1));
      auto n = std::make_unique<Node>();
      n->kind = Node::Kind::kNot;
      n->needs_xattr = child->needs_xattr;
      n->children.push_back(std::move(child));
      return n;
    }
    if (Peek().kind == Tok::kLParen) {
      VEXFS_RETURN_IF_ERROR(CheckDepth(depth));
      Advance();
      VEXFS_ASSIGN_OR_RETURN(NodePtr inner, ParseOr(depth + 1));
      if (Peek().kind != Tok::kRParen) return Expected("')' or 'and'/'or'");
      Advance();
      return inner;
    }
    return ParseComparison();
  }

  // `first` is the term's first token, named in the error.
  Result<NodePtr> NewTerm(const Token& first, Node::Kind kind) {
    if (++terms_ > Filter::kMaxTerms) {
      return ErrorAt(first, "more than " + std::to_string(Filter::kMaxTerms) + " comparisons");
    }
    auto n = std::make_unique<Node>();
    n->kind = kind;
    return n;
  }

  Result<Op> ParseOp(const std::string& after) {
    if (Peek().kind != Tok::kOp) {
      return Expected("an operator (= != < <= > >=) after " + after);
    }
    return Advance().op;
  }

  // After 'xattr.' (in the same word) or a word 'xattr.' followed directly
  // by a string. Returns the slot of the name.
  Result<uint32_t> ParseXattrName() {
    const Token& word = Peek();
    if (word.kind != Tok::kWord || word.text.size() < 6 ||
        !IEquals(std::string_view(word.text).substr(0, 6), "xattr.")) {
      return Expected("xattr.NAME");
    }
    Advance();
    std::string name = word.text.substr(6);
    if (name.empty()) {
      if (Peek().kind != Tok::kString || Peek().pos != word.end) {
        return ErrorAt(word,
                       "expected an xattr name after 'xattr.' (xattr.NAME or xattr.\"NAME\")");
      }
      name = Advance().text;
    }
    if (name.empty() || name.size() > Filter::kMaxXattrNameBytes ||
        name.find('\0') != std::string::npos) {
      return ErrorAt(word, "xattr name must be 1 to " + std::to_string(Filter::kMaxXattrNameBytes) +
                               " bytes without NUL");
    }
    for (size_t i = 0; i < names_.size(); ++i) {
      if (names_[i] == name) return static_cast<uint32_t>(i);
    }
    names_.push_back(std::move(name));
    return static_cast<uint32_t>(names_.size() - 1);
  }

  Result<Node::Literal> ParseValue() {
    const Token& t = Peek();
    Node::Literal lit;
    if (t.kind == Tok::kString) {
      lit.kind = Node::Literal::Kind::kString;
      lit.text = t.text;
    } else if (t.kind == Tok::kWord && (IEquals(t.text, "true") || IEquals(t.text, "false"))) {
      lit.kind = Node::Literal::Kind::kBool;
      lit.text = ToLower(t.text[0]) == 't' ? "true" : "false";
    } else if (t.kind == Tok::kWord && ParseDecimal(t.text)) {
      lit.kind = Node::Literal::Kind::kNumber;
      lit.text = t.text;
    } else {
      return Expected("a value (\"string\", number, true or false)");
    }
    Advance();
    lit.numeric = ParseDecimal(lit.text).has_value();
    return lit;
  }

  Result<NodePtr> ParseComparison() {
    const Token& t = Peek();
    if (t.kind != Tok::kWord) {
      return Expected("a comparison (xattr.NAME, size, mtime, name, path or has), 'not' or '('");
    }
    if (IEquals(t.text, "has")) {
      Advance();
      VEXFS_ASSIGN_OR_RETURN(NodePtr n, NewTerm(t, Node::Kind::kHas));
      VEXFS_ASSIGN_OR_RETURN(n->xattr_slot, ParseXattrName());
      n->needs_xattr = true;
      return n;
    }
    if (t.text.size() >= 6 && IEquals(std::string_view(t.text).substr(0, 6), "xattr.")) {
      VEXFS_ASSIGN_OR_RETURN(NodePtr n, NewTerm(t, Node::Kind::kXattrCmp));
      VEXFS_ASSIGN_OR_RETURN(n->xattr_slot, ParseXattrName());
      n->needs_xattr = true;
      const std::string shown = "xattr." + Excerpt(names_[n->xattr_slot]);
      if (PeekKeyword("in")) {
        Advance();
        n->kind = Node::Kind::kXattrIn;
        if (Peek().kind != Tok::kLParen) return Expected("'(' after 'in'");
        Advance();
        for (;;) {
          if (n->values.size() >= Filter::kMaxListItems) {
            return ErrorAt(Peek(), "'in' list longer than " +
                                       std::to_string(Filter::kMaxListItems) + " items");
          }
          VEXFS_ASSIGN_OR_RETURN(Node::Literal v, ParseValue());
          n->values.push_back(std::move(v));
          if (Peek().kind == Tok::kRParen) break;
          if (Peek().kind != Tok::kComma) return Expected("',' or ')' in 'in' list");
          Advance();
        }
        Advance();
        return n;
      }
      if (Peek().kind != Tok::kOp) {
        return Expected("an operator (= != < <= > >=) or 'in' after " + shown);
      }
      n->op = Advance().op;
      VEXFS_ASSIGN_OR_RETURN(Node::Literal v, ParseValue());
      n->values.push_back(std::move(v));
      return n;
    }
    if (IEquals(t.text, "size")) {
      Advance();
      VEXFS_ASSIGN_OR_RETURN(NodePtr n, NewTerm(t, Node::Kind::kSize));
      VEXFS_ASSIGN_OR_RETURN(n->op, ParseOp("size"));
      const std::optional<uint64_t> v =
          Peek().kind == Tok::kWord ? ParseSize(Peek().text) : std::nullopt;
      if (!v) return Expected("a size in bytes (integer with optional K, M or G suffix)");
      Advance();
      n->size = *v;
      return n;
    }
    if (IEquals(t.text, "mtime")) {
      Advance();
      VEXFS_ASSIGN_OR_RETURN(NodePtr n, NewTerm(t, Node::Kind::kMtime));
      VEXFS_ASSIGN_OR_RETURN(n->op, ParseOp("mtime"));
      const Tok k = Peek().kind;
      const std::optional<int64_t> v =
          k == Tok::kWord || k == Tok::kString ? ParseTime(Peek().text) : std::nullopt;
      if (!v) {
        return Expected("a time (epoch seconds or YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM])");
      }
      Advance();
      n->mtime = *v;
      return n;
    }
    if (IEquals(t.text, "name")) {
      Advance();
      VEXFS_ASSIGN_OR_RETURN(NodePtr n, NewTerm(t, Node::Kind::kNameGlob));
      if (PeekKeyword("glob")) {
        Advance();
      } else if (Peek().kind == Tok::kOp && (Peek().op == Op::kEq || Peek().op == Op::kNe)) {
        n->kind = Node::Kind::kNameCmp;
        n->op = Advance().op;
      } else {
        return Expected("'glob', '=' or '!=' after name");
      }
      if (Peek().kind != Tok::kString) return Expected("a quoted pattern or name");
      const Token& lit = Advance();
      if (n->kind == Node::Kind::kNameGlob) {
        if (const char* err = ValidateGlob(lit.text)) return ErrorAt(lit, err);
      }
      n->text = lit.text;
      return n;
    }
    if (IEquals(t.text, "path")) {
      Advance();
      VEXFS_ASSIGN_OR_RETURN(NodePtr n, NewTerm(t, Node::Kind::kPathUnder));
      if (!PeekKeyword("under")) return Expected("'under' after path");
      Advance();
      if (Peek().kind != Tok::kString) return Expected("a quoted path");
      const Token& lit = Advance();
      Components comps(lit.text);
      while (std::optional<std::string_view> c = comps.Next()) {
        if (*c == "." || *c == "..") {
          return ErrorAt(lit, "'.' and '..' are not allowed in a path");
        }
        if (c->find('\0') != std::string_view::npos) {
          return ErrorAt(lit, "NUL byte in path");
        }
        n->components.emplace_back(*c);
      }
      return n;
    }
    return Expected("a comparison (xattr.NAME, size, mtime, name, path or has), 'not' or '('");
  }

  std::vector<Token> toks_;  // ends with kEnd
  size_t pos_ = 0;
  size_t terms_ = 0;
  std::vector<std::string> names_;
};

// ---------------------------------------------------------------------------
// Evaluation.

struct XattrSlot {
  bool fetched = false;
  std::optional<std::string> value;
  // Numeric form of *value (views into it), computed on first use.
  int numeric_state = 0;  // 0 unknown, 1 numeric, 2 not numeric
  Decimal num;
};

class Evaluator {
 public:
  Evaluator(const FileFacts& facts, const std::vector<std::string>& names)
      : facts_(facts), names_(names) {}

  bool Eval(const Node& n) {
    switch (n.kind) {
      case Node::Kind::kAnd:
      case Node::Kind::kOr: {
        // Children are pure, so evaluate the ones that read no xattrs first:
        // a cheap false (and) / true (or) avoids the xattr reads.
        const bool stop_on = n.kind == Node::Kind::kOr;
        for (int pass = 0; pass < 2; ++pass) {
          for (const NodePtr& c : n.children) {
            if (c->needs_xattr != (pass == 1)) continue;
            if (Eval(*c) == stop_on) return stop_on;
          }
        }
        return !stop_on;
      }
      case Node::Kind::kNot:
        return !Eval(*n.children[0]);
      case Node::Kind::kHas:
        return Slot(n.xattr_slot).value.has_value();
      case Node::Kind::kXattrCmp: {
        XattrSlot& s = Slot(n.xattr_slot);
        return s.value && ApplyOp(n.op, CompareValue(s, n.values[0]));
      }
      case Node::Kind::kXattrIn: {
        XattrSlot& s = Slot(n.xattr_slot);
        if (!s.value) return false;
        for (const Node::Literal& v : n.values) {
          if (CompareValue(s, v) == 0) return true;
        }
        return false;
      }
      case Node::Kind::kSize:
        return ApplyOp(n.op, Compare3(facts_.size, n.size));
      case Node::Kind::kMtime:
        return ApplyOp(n.op, Compare3(facts_.mtime_sec, n.mtime));
      case Node::Kind::kNameGlob:
        return GlobMatch(n.text, facts_.name);
      case Node::Kind::kNameCmp:
        return ApplyOp(n.op, CompareBytes(facts_.name, n.text));
      case Node::Kind::kPathUnder: {
        Components comps(facts_.rel_path);
        for (const std::string& want : n.components) {
          const std::optional<std::string_view> c = comps.Next();
          if (!c || *c != want) return false;
        }
        return true;
      }
    }
    return false;
  }

 private:
  XattrSlot& Slot(uint32_t i) {
    if (slots_.empty()) slots_.resize(names_.size());  // once; views stay valid
    XattrSlot& s = slots_[i];
    if (!s.fetched) {
      s.fetched = true;
      if (facts_.xattr) s.value = facts_.xattr(names_[i]);
    }
    return s;
  }

  static int CompareValue(XattrSlot& s, const Node::Literal& lit) {
    if (lit.numeric) {
      if (s.numeric_state == 0) {
        const std::optional<Decimal> d = ParseDecimal(*s.value);
        s.numeric_state = d ? 1 : 2;
        if (d) s.num = *d;
      }
      if (s.numeric_state == 1) return CompareDecimal(s.num, *ParseDecimal(lit.text));
    }
    return CompareBytes(*s.value, lit.text);
  }

  const FileFacts& facts_;
  const std::vector<std::string>& names_;
  std::vector<XattrSlot> slots_;
};

// ---------------------------------------------------------------------------
// Printing. Precedence: or < and < not/atom.

int Precedence(const Node& n) {
  return n.kind == Node::Kind::kOr ? 0 : (n.kind == Node::Kind::kAnd ? 1 : 2);
}

void AppendLiteral(const Node::Literal& lit, std::string* out) {
  if (lit.kind == Node::Literal::Kind::kString) {
    AppendQuoted(lit.text, out);
  } else {
    *out += lit.text;
  }
}

void Print(const Node& n, const std::vector<std::string>& names, int min_prec, std::string* out) {
  const bool parens = Precedence(n) < min_prec;
  if (parens) out->push_back('(');
  auto xattr = [&] {
    const std::string& name = names[n.xattr_slot];
    *out += "xattr.";
    if (IsBareName(name)) {
      *out += name;
    } else {
      AppendQuoted(name, out);
    }
  };
  switch (n.kind) {
    case Node::Kind::kAnd:
    case Node::Kind::kOr:
      for (size_t i = 0; i < n.children.size(); ++i) {
        if (i) *out += n.kind == Node::Kind::kAnd ? " and " : " or ";
        // Children are never the same kind (flattened), so min_prec = own+1
        // only parenthesizes an 'or' inside an 'and'.
        Print(*n.children[i], names, Precedence(n) + 1, out);
      }
      break;
    case Node::Kind::kNot:
      *out += "not ";
      Print(*n.children[0], names, 2, out);
      break;
    case Node::Kind::kHas:
      *out += "has ";
      xattr();
      break;
    case Node::Kind::kXattrCmp:
      xattr();
      *out += ' ';
      *out += OpText(n.op);
      *out += ' ';
      AppendLiteral(n.values[0], out);
      break;
    case Node::Kind::kXattrIn:
      xattr();
      *out += " in (";
      for (size_t i = 0; i < n.values.size(); ++i) {
        if (i) *out += ", ";
        AppendLiteral(n.values[i], out);
      }
      *out += ')';
      break;
    case Node::Kind::kSize:
      *out += "size ";
      *out += OpText(n.op);
      *out += ' ';
      *out += std::to_string(n.size);
      break;
    case Node::Kind::kMtime:
      *out += "mtime ";
      *out += OpText(n.op);
      *out += ' ';
      *out += std::to_string(n.mtime);
      break;
    case Node::Kind::kNameGlob:
      *out += "name glob ";
      AppendQuoted(n.text, out);
      break;
    case Node::Kind::kNameCmp:
      *out += "name ";
      *out += OpText(n.op);
      *out += ' ';
      AppendQuoted(n.text, out);
      break;
    case Node::Kind::kPathUnder: {
      std::string p;
      for (const std::string& c : n.components) p += "/" + c;
      *out += "path under ";
      AppendQuoted(p.empty() ? "/" : p, out);
      break;
    }
  }
  if (parens) out->push_back(')');
}

}  // namespace

Filter::Filter() = default;

Filter::Filter(std::shared_ptr<const Node> root, std::vector<std::string> xattr_names)
    : root_(std::move(root)), xattr_names_(std::move(xattr_names)) {}

Result<Filter> Filter::Parse(std::string_view text) {
  if (text.size() > kMaxTextBytes) {
    return Status::InvalidArgument("filter is " + std::to_string(text.size()) +
                                   " bytes; the limit is " + std::to_string(kMaxTextBytes));
  }
  std::vector<Token> toks;
  VEXFS_RETURN_IF_ERROR(Lex(text, &toks));
  Parser parser(std::move(toks));
  VEXFS_ASSIGN_OR_RETURN(NodePtr root, parser.ParseTop());
  if (!root) return Filter();
  return Filter(std::shared_ptr<const Node>(std::move(root)), parser.TakeXattrNames());
}

bool Filter::Matches(const FileFacts& facts) const {
  if (!root_) return true;
  Evaluator ev(facts, xattr_names_);
  return ev.Eval(*root_);
}

std::vector<std::string> Filter::XattrNames() const {
  std::vector<std::string> names = xattr_names_;
  std::sort(names.begin(), names.end());
  return names;
}

std::string Filter::ToString() const {
  std::string out;
  if (root_) Print(*root_, xattr_names_, 0, &out);
  return out;
}

}  // namespace vexfs
