// libFuzzer target for the search filter language (vexfs/filter.h).
//
// Input: the first line is the filter text; the bytes after it seed the file
// the filter is evaluated against. Checks: Parse returns Ok or EINVAL; an
// accepted filter's canonical form parses to the same canonical form and
// gives the same Matches() answer; XattrNames covers every lookup.
//
//   fuzz/filter_fuzz -dict=fuzz/filter.dict -max_len=4200 fuzz/corpus/filter
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz/fuzz_seeds.h"
#include "vexfs/filter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nl = in.find('\n');
  const std::string_view text = in.substr(0, nl);
  const std::string_view rest = nl == std::string_view::npos ? "" : in.substr(nl + 1);

  vexfs::Result<vexfs::Filter> f = vexfs::Filter::Parse(text);
  if (!f.ok()) {
    if (f.status().err() != EINVAL || f.status().message().empty()) abort();
    return 0;
  }
  const std::string canon = f->ToString();
  // The canonical form may be longer than the text (dates become seconds,
  // paths get their leading '/'): past the text limit it cannot reparse.
  if (canon.size() > vexfs::Filter::kMaxTextBytes) return 0;
  vexfs::Result<vexfs::Filter> g = vexfs::Filter::Parse(canon);
  if (!g.ok() || g->ToString() != canon) abort();
  const std::vector<std::string> names = f->XattrNames();
  if (names != g->XattrNames()) abort();

  // A file derived from the remaining bytes: every xattr has the value
  // `rest`, or is missing when rest is empty.
  uint64_t n = 0;
  for (unsigned char c : rest.substr(0, 8)) n = n << 8 | c;
  const std::string name(rest.substr(0, 16));
  vexfs::FileFacts facts;
  facts.name = name;
  facts.rel_path = rest;
  facts.size = n;
  facts.mtime_sec = static_cast<int64_t>(n);
  facts.xattr = [&](std::string_view x) -> std::optional<std::string> {
    bool known = false;
    for (const std::string& s : names) known |= s == x;
    if (!known) abort();  // XattrNames must list every name Matches reads
    if (rest.empty()) return std::nullopt;
    return std::string(rest);
  };
  if (f->Matches(facts) != g->Matches(facts)) abort();
  return 0;
}

std::vector<std::vector<uint8_t>> VexfsFuzzSeeds() {
  std::vector<std::vector<uint8_t>> seeds;
  for (const char* s : {
           "xattr.lang = \"en\" and xattr.year >= 2020\nen",
           "size < 4096 or (mtime > 2020-01-01 and name glob \"*.txt\")\n12345678",
           "not has xattr.tag and path under \"docs/a\"\n",
           "xattr.n in (1, 2.5, \"x\") or xattr.s != \"\"\n2.5",
       }) {
    seeds.emplace_back(s, s + std::char_traits<char>::length(s));
  }
  return seeds;
}
