// Filter: the metadata predicate language of vector search.
//
// `vexctl search --filter EXPR`, query files and the search ioctl all carry
// a filter string written by an untrusted user. Filter::Parse turns it into
// an immutable predicate over one file's metadata; Filter::Matches evaluates
// it. This module depends on nothing but vexfs_common: no storage, no engine.
//
// Grammar (keywords and field names are case-insensitive; xattr names and
// string values are case-sensitive; whitespace separates tokens):
//
//   filter  := <empty> | expr                 (empty matches every file)
//   expr    := or
//   or      := and ('or' and)*
//   and     := unary ('and' unary)*           ('and' binds tighter than 'or')
//   unary   := 'not' unary | '(' expr ')' | cmp
//   cmp     := xattr OP value
//            | xattr 'in' '(' value (',' value)* ')'
//            | 'has' xattr
//            | 'size'  OP SIZE
//            | 'mtime' OP TIME
//            | 'name'  'glob' STRING          (fnmatch(3) semantics, flags 0)
//            | 'name'  ('=' | '!=') STRING    (exact basename)
//            | 'path'  'under' STRING         (subtree of the collection root)
//   xattr   := 'xattr.' NAME | 'xattr.' STRING
//   OP      := '=' | '==' | '!=' | '<' | '<=' | '>' | '>='
//   value   := STRING | NUMBER | 'true' | 'false'
//   NUMBER  := '-'? DIGIT+ ('.' DIGIT+)?
//   SIZE    := DIGIT+ ('K' | 'M' | 'G')?      (binary: 1K = 1024 bytes)
//   TIME    := '-'? DIGIT+                    (seconds since the epoch)
//            | YYYY-MM-DD [('T' | ' ') HH:MM [':' SS]] ['Z' | ('+'|'-') HH:MM]
//              (ISO-8601, UTC unless an offset is given; may be quoted;
//               the ' ' separator only inside a quoted string)
//   STRING  := '"' ... '"' with escapes \" \\ \n \t \r \uXXXX (UTF-16 pairs
//              for characters beyond U+FFFF); raw bytes >= 0x80 pass through,
//              raw control characters (< 0x20) are rejected
//   NAME    := one or more of [A-Za-z0-9_.:+-]: the xattr name without its
//              "user." prefix. Other names use the quoted form: xattr."a b".
//
// Examples:
//   xattr.lang = "en" and xattr.year >= 2020
//   size > 10K and (name glob "*.md" or name glob "*.txt")
//   mtime >= 2024-01-15 and not path under "/archive"
//   xattr.tag in ("draft", "review", 3) or has xattr.pinned
//   mtime < "2024-01-15T12:30:00+02:00"
//
// Semantics:
//  * xattr comparisons are typed per file: when both the stored value and
//    the literal's text are NUMBERs they compare as exact decimals (no
//    floating point; "2020" = "2020.0", "-0" = "0"); otherwise both compare
//    bytewise (memcmp order; shorter prefix first). The literal's form does
//    not matter: "3" and 3 behave the same. true/false are the strings
//    "true"/"false". Stored values are not trimmed: "12\n" is a string.
//  * A comparison or 'in' on an xattr the file does not have is false, for
//    every operator including '!='. Use `not` or `has` to select such files:
//    `not xattr.lang = "en"` matches files without user.lang.
//  * size and mtime compare as unsigned / signed 64-bit integers.
//  * name glob: '*', '?', '[...]' with '!' or '^' negation, ranges and
//    [:class:] (C locale, bytewise), '\' escapes the next byte. '*' matches
//    '/' and leading dots. Malformed patterns (unterminated '[', trailing
//    '\', unknown class, [= =] and [. .]) are parse errors.
//  * path under "P": P and FileFacts::rel_path are split on '/' ignoring
//    empty components (so leading, trailing and repeated slashes do not
//    matter); a file matches when P's components are a prefix of its
//    rel_path's components: "/a" contains "a" and "a/b" but not "ab".
//    "/" contains everything. "." and ".." in P are parse errors.
//
// Limits (each violation is EINVAL, never a crash): text <= 4096 bytes,
// nesting of '(' and 'not' <= 32 levels, <= 256 comparisons, decoded string
// literal <= 1024 bytes, 'in' list <= 256 items, xattr NAME 1..250 bytes
// without NUL. Parse errors name the 1-based column and what was expected:
//   "column 12: expected an operator (= != < <= > >=) or 'in' after
//    xattr.lang, found 'en'"
//
// Canonical form: ToString() prints lowercase keywords, single spaces,
// minimal parentheses, flattened and/or chains, sizes in bytes and times in
// epoch seconds; Parse(f.ToString()) yields a filter with the same
// ToString() and the same Matches() on every file.
//
// Thread safety: a Filter is immutable after Parse; Matches, XattrNames and
// ToString may run concurrently on one Filter. Copies share the parsed tree.
#ifndef VEXFS_FILTER_H_
#define VEXFS_FILTER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vexfs/status.h"

namespace vexfs {

// The metadata of one file as Filter::Matches sees it. Views must stay valid
// for the duration of the Matches call.
struct FileFacts {
  std::string_view name;      // basename
  std::string_view rel_path;  // path from the collection root, name included
  uint64_t size = 0;
  int64_t mtime_sec = 0;
  // Returns the value of "user." + xattr_suffix, or nullopt if the file has
  // no such attribute. Called lazily: only for names the filter still needs
  // after cheaper terms were evaluated, at most once per name per Matches
  // call, in an unspecified order. May be empty (every xattr is missing).
  std::function<std::optional<std::string>(std::string_view xattr_suffix)> xattr;
};

class Filter {
 public:
  static constexpr size_t kMaxTextBytes = 4096;
  static constexpr int kMaxDepth = 32;
  static constexpr size_t kMaxTerms = 256;
  static constexpr size_t kMaxStringBytes = 1024;
  static constexpr size_t kMaxListItems = 256;
  static constexpr size_t kMaxXattrNameBytes = 250;  // XATTR_NAME_MAX - "user."

  // The empty filter: matches every file.
  Filter();

  // Parses `text` (see the grammar above). Errors are EINVAL with a message
  // naming the column and what was expected.
  static Result<Filter> Parse(std::string_view text);

  // True if the file satisfies the filter. Never fails: a missing xattr
  // makes the comparisons on it false.
  bool Matches(const FileFacts& facts) const;

  // Distinct xattr suffixes (without "user.") Matches may look up, sorted.
  std::vector<std::string> XattrNames() const;

  // Canonical text; "" for the empty filter.
  std::string ToString() const;

  // True for the empty filter.
  bool MatchesAll() const { return root_ == nullptr; }

  struct Node;  // internal

 private:
  Filter(std::shared_ptr<const Node> root, std::vector<std::string> xattr_names);

  std::shared_ptr<const Node> root_;      // null: match everything
  std::vector<std::string> xattr_names_;  // indexed by Node::xattr_slot
};

}  // namespace vexfs

#endif  // VEXFS_FILTER_H_
