#include "vexfs/filter.h"

#include <fnmatch.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace vexfs {
namespace {

struct File {
  std::string name = "notes.md";
  std::string path = "docs/notes.md";
  uint64_t size = 1000;
  int64_t mtime = 1700000000;
  std::map<std::string, std::string> xattrs;
  std::map<std::string, int> lookups;  // per xattr suffix

  FileFacts Facts() {
    FileFacts f;
    f.name = name;
    f.rel_path = path;
    f.size = size;
    f.mtime_sec = mtime;
    f.xattr = [this](std::string_view n) -> std::optional<std::string> {
      ++lookups[std::string(n)];
      auto it = xattrs.find(std::string(n));
      if (it == xattrs.end()) return std::nullopt;
      return it->second;
    };
    return f;
  }
  int TotalLookups() const {
    int t = 0;
    for (const auto& [k, v] : lookups) t += v;
    return t;
  }
};

Filter MustParse(std::string_view text) {
  Result<Filter> r = Filter::Parse(text);
  EXPECT_TRUE(r.ok()) << text << " -> " << r.status().ToString();
  if (!r.ok()) return Filter();
  // Every successful parse must round-trip through the canonical form.
  const std::string canon = r->ToString();
  Result<Filter> again = Filter::Parse(canon);
  EXPECT_TRUE(again.ok()) << canon << " -> " << again.status().ToString();
  if (again.ok()) {
    EXPECT_EQ(again->ToString(), canon) << text;
  }
  return std::move(r).value();
}

bool Match(std::string_view text, File& file) { return MustParse(text).Matches(file.Facts()); }

// The error message of a failing parse; "" (and a test failure) on success.
std::string Error(std::string_view text) {
  Result<Filter> r = Filter::Parse(text);
  EXPECT_FALSE(r.ok()) << text << " parsed as " << (r.ok() ? r->ToString() : "");
  if (r.ok()) return "";
  EXPECT_EQ(r.status().err(), EINVAL) << text;
  return r.status().message();
}

File Doc() {
  File f;
  f.xattrs = {{"lang", "en"},   {"year", "2021"}, {"score", "0.75"},
              {"flag", "true"}, {"code", "007"},  {"note", "hello world"}};
  return f;
}

TEST(FilterTest, EmptyMatchesEverything) {
  File f = Doc();
  for (const char* text : {"", "   ", "\t\n "}) {
    Filter flt = MustParse(text);
    EXPECT_TRUE(flt.MatchesAll());
    EXPECT_TRUE(flt.Matches(f.Facts()));
    EXPECT_EQ(flt.ToString(), "");
    EXPECT_TRUE(flt.XattrNames().empty());
  }
  EXPECT_TRUE(Filter().Matches(f.Facts()));
  EXPECT_EQ(f.TotalLookups(), 0);
}

TEST(FilterTest, XattrOperatorsOnStrings) {
  File f = Doc();
  EXPECT_TRUE(Match(R"(xattr.lang = "en")", f));
  EXPECT_TRUE(Match(R"(xattr.lang == "en")", f));
  EXPECT_FALSE(Match(R"(xattr.lang = "EN")", f));
  EXPECT_TRUE(Match(R"(xattr.lang != "fr")", f));
  EXPECT_FALSE(Match(R"(xattr.lang != "en")", f));
  EXPECT_TRUE(Match(R"(xattr.lang < "fr")", f));
  EXPECT_TRUE(Match(R"(xattr.lang <= "en")", f));
  EXPECT_FALSE(Match(R"(xattr.lang < "en")", f));
  EXPECT_TRUE(Match(R"(xattr.lang > "de")", f));
  EXPECT_TRUE(Match(R"(xattr.lang >= "en")", f));
  EXPECT_FALSE(Match(R"(xattr.lang > "en")", f));
  EXPECT_TRUE(Match(R"(xattr.lang < "en_US")", f));  // prefix sorts first
  EXPECT_TRUE(Match(R"(xattr.note = "hello world")", f));
}

TEST(FilterTest, XattrOperatorsOnNumbers) {
  File f = Doc();
  EXPECT_TRUE(Match("xattr.year = 2021", f));
  EXPECT_TRUE(Match("xattr.year >= 2020", f));
  EXPECT_TRUE(Match("xattr.year > 2020", f));
  EXPECT_FALSE(Match("xattr.year < 2021", f));
  EXPECT_TRUE(Match("xattr.year <= 2021", f));
  EXPECT_TRUE(Match("xattr.year != 2020", f));
  EXPECT_TRUE(Match("xattr.year > 999", f));  // bytewise "2021" < "999"
  EXPECT_TRUE(Match("xattr.year = 2021.000", f));
  EXPECT_TRUE(Match("xattr.score > 0.5", f));
  EXPECT_TRUE(Match("xattr.score < 0.8", f));
  EXPECT_TRUE(Match("xattr.score > -1", f));
  EXPECT_TRUE(Match("xattr.code = 7", f));       // both numeric: 007 == 7
  EXPECT_TRUE(Match(R"(xattr.code = "7")", f));  // the literal's form does not matter
  EXPECT_TRUE(Match(R"(xattr.code != "7x")", f));
}

TEST(FilterTest, TypedComparisonRules) {
  File f;
  auto cmp = [&f](const std::string& stored, const std::string& expr) {
    f.xattrs["v"] = stored;
    return Match("xattr.v " + expr, f);
  };
  // Numeric when both sides are numbers, exact at any length.
  EXPECT_TRUE(cmp("10", "> 9"));
  EXPECT_TRUE(cmp("-0", "= 0"));
  EXPECT_TRUE(cmp("-1.5", "< -1.25"));
  EXPECT_TRUE(cmp("-10", "< -9"));
  EXPECT_TRUE(cmp("0.1", "< 0.10000000000000000000001"));
  EXPECT_TRUE(cmp("9007199254740993", "> 9007199254740992"));  // beyond double
  EXPECT_TRUE(cmp("123456789012345678901234567890", "> 123456789012345678901234567889"));
  // Otherwise bytewise: a non-number on either side.
  EXPECT_TRUE(cmp("10 ", "< 9"));  // not trimmed: "10 " vs "9"
  EXPECT_TRUE(cmp("12\n", "!= 12"));
  EXPECT_TRUE(cmp("1e3", "> 100"));  // exponents are not numbers: "1e3" > "100"
  EXPECT_TRUE(cmp("+5", "!= 5"));
  EXPECT_TRUE(cmp("abc", "> 3"));
  EXPECT_TRUE(cmp("\xc3\xa9", "> \"z\""));  // bytes >= 0x80 sort after ASCII
  EXPECT_TRUE(cmp("true", "= true"));
  EXPECT_TRUE(cmp("true", "= TRUE"));
  EXPECT_FALSE(cmp("1", "= true"));
  EXPECT_TRUE(cmp("false", "= false"));
  EXPECT_TRUE(cmp(std::string("a\0b", 3), "= \"a\\u0000b\""));
}

TEST(FilterTest, MissingXattrIsFalseForEveryOperator) {
  File f = Doc();
  for (const char* op : {"=", "!=", "<", "<=", ">", ">="}) {
    EXPECT_FALSE(Match(std::string("xattr.absent ") + op + " \"x\"", f)) << op;
    EXPECT_FALSE(Match(std::string("xattr.absent ") + op + " 1", f)) << op;
    EXPECT_TRUE(Match(std::string("not xattr.absent ") + op + " 1", f)) << op;
  }
  EXPECT_FALSE(Match(R"(xattr.absent in ("x", 1))", f));
  EXPECT_FALSE(Match("has xattr.absent", f));
  EXPECT_TRUE(Match("has xattr.lang", f));
  EXPECT_TRUE(Match("not has xattr.absent", f));
  // An empty callback means no xattrs at all.
  Filter flt = MustParse("has xattr.lang or xattr.lang = \"en\"");
  FileFacts facts = f.Facts();
  facts.xattr = nullptr;
  EXPECT_FALSE(flt.Matches(facts));
}

TEST(FilterTest, InList) {
  File f = Doc();
  EXPECT_TRUE(Match(R"(xattr.lang in ("de", "en"))", f));
  EXPECT_FALSE(Match(R"(xattr.lang in ("de", "fr"))", f));
  EXPECT_TRUE(Match(R"(xattr.lang IN ("en"))", f));
  EXPECT_TRUE(Match(R"(xattr.year in ("x", 2021.0, 3))", f));
  EXPECT_TRUE(Match(R"(xattr.flag in (false, true))", f));
  EXPECT_TRUE(Match(R"(not xattr.lang in ("de"))", f));
  EXPECT_EQ(MustParse(R"(xattr.a in ( 1 ,"b",true ))").ToString(), R"(xattr.a in (1, "b", true))");
}

TEST(FilterTest, QuotedXattrNames) {
  File f;
  f.xattrs = {{"my name", "1"}, {"a.b-c:d+e_f", "2"}, {"ü", "3"}};
  EXPECT_TRUE(Match(R"(xattr."my name" = 1)", f));
  EXPECT_TRUE(Match("xattr.a.b-c:d+e_f = 2", f));
  EXPECT_TRUE(Match("XATTR.a.b-c:d+e_f = 2", f));  // prefix is case-insensitive
  EXPECT_TRUE(Match(R"(xattr."\u00fc" = 3)", f));
  EXPECT_TRUE(Match(R"(has xattr."my name")", f));
  EXPECT_EQ(MustParse(R"(xattr."my name" = 1)").ToString(), R"(xattr."my name" = 1)");
  EXPECT_EQ(MustParse(R"(xattr."plain" = 1)").ToString(), "xattr.plain = 1");
  EXPECT_FALSE(Match("xattr.Lang = \"en\"", f));  // names are case-sensitive
}

TEST(FilterTest, Size) {
  File f;
  f.size = 10 * 1024;
  EXPECT_TRUE(Match("size = 10240", f));
  EXPECT_TRUE(Match("size = 10K", f));
  EXPECT_TRUE(Match("size = 10k", f));
  EXPECT_TRUE(Match("size >= 10K", f));
  EXPECT_FALSE(Match("size > 10K", f));
  EXPECT_TRUE(Match("size < 1M", f));
  EXPECT_TRUE(Match("size <= 1m", f));
  EXPECT_TRUE(Match("size != 0", f));
  f.size = 3ull << 30;
  EXPECT_TRUE(Match("size = 3G", f));
  EXPECT_TRUE(Match("size > 2g", f));
  f.size = UINT64_MAX;
  EXPECT_TRUE(Match("size = 18446744073709551615", f));
  EXPECT_EQ(MustParse("size>=2M").ToString(), "size >= 2097152");
  EXPECT_EQ(MustParse("SIZE < 0").ToString(), "size < 0");
}

TEST(FilterTest, MtimeEpochAndIso) {
  File f;
  f.mtime = 1705276800;  // 2024-01-15T00:00:00Z
  EXPECT_TRUE(Match("mtime = 1705276800", f));
  EXPECT_TRUE(Match("mtime = 2024-01-15", f));
  EXPECT_TRUE(Match("mtime = \"2024-01-15\"", f));
  EXPECT_TRUE(Match("mtime = 2024-01-15T00:00:00Z", f));
  EXPECT_TRUE(Match("mtime = 2024-01-15t00:00z", f));
  EXPECT_TRUE(Match("mtime = \"2024-01-15 00:00:00\"", f));
  EXPECT_TRUE(Match("mtime = 2024-01-15T02:00:00+02:00", f));
  EXPECT_TRUE(Match("mtime = 2024-01-14T19:00-05:00", f));
  EXPECT_TRUE(Match("mtime > 2024-01-14T23:59:59", f));
  EXPECT_TRUE(Match("mtime < 2024-01-15T00:00:01", f));
  EXPECT_TRUE(Match("mtime >= 2024-01-15 and mtime < 2024-01-16", f));
  f.mtime = 0;
  EXPECT_TRUE(Match("mtime = 1970-01-01", f));
  f.mtime = -86400;
  EXPECT_TRUE(Match("mtime = 1969-12-31", f));
  EXPECT_TRUE(Match("mtime = -86400", f));
  f.mtime = 951782400;  // leap day
  EXPECT_TRUE(Match("mtime = 2000-02-29", f));
  f.mtime = 4107542399;
  EXPECT_TRUE(Match("mtime = 2100-02-28T23:59:59Z", f));
  f.mtime = INT64_MIN;
  EXPECT_TRUE(Match("mtime = -9223372036854775808", f));
  EXPECT_EQ(MustParse("mtime >= 2024-01-15").ToString(), "mtime >= 1705276800");
}

TEST(FilterTest, NameGlobAndEquality) {
  File f;
  f.name = "Report-2024.md";
  EXPECT_TRUE(Match(R"(name glob "*.md")", f));
  EXPECT_FALSE(Match(R"(name glob "*.txt")", f));
  EXPECT_TRUE(Match(R"(name GLOB "Report-????.md")", f));
  EXPECT_TRUE(Match(R"(name glob "[A-Z]*")", f));
  EXPECT_FALSE(Match(R"(name glob "[!A-Z]*")", f));
  EXPECT_FALSE(Match(R"(name glob "[^A-Z]*")", f));
  EXPECT_TRUE(Match(R"(name glob "[[:upper:]]*[[:digit:]].md")", f));
  EXPECT_TRUE(Match(R"(name glob "*")", f));
  EXPECT_TRUE(Match(R"(name glob "**.md")", f));
  EXPECT_FALSE(Match(R"(name glob "*.MD")", f));
  EXPECT_TRUE(Match(R"(name = "Report-2024.md")", f));
  EXPECT_TRUE(Match(R"(name != "report-2024.md")", f));
  f.name = ".hidden";
  EXPECT_TRUE(Match(R"(name glob "*")", f));  // no FNM_PERIOD
  f.name = "a*b";
  EXPECT_TRUE(Match(R"(name glob "a\\*b")", f));
  EXPECT_FALSE(Match(R"(name glob "a\\*c")", f));
  f.name = "]";
  EXPECT_TRUE(Match(R"(name glob "[]]")", f));
  EXPECT_FALSE(Match(R"(name glob "[!]]")", f));
  f.name = "-";
  EXPECT_TRUE(Match(R"(name glob "[a-]")", f));
  f.name = "";
  EXPECT_TRUE(Match(R"(name glob "*")", f));
  EXPECT_FALSE(Match(R"(name glob "?")", f));
}

// The hand-written matcher agrees with glibc's fnmatch(flags 0) on patterns
// it accepts, and stays fast where naive backtracking is exponential.
TEST(FilterTest, GlobAgreesWithFnmatch) {
  std::mt19937 rng(7);
  const std::string pat_chars = "ab*?[]!^-\\";
  const std::string name_chars = "ab-]\\[!";
  int compared = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string pat, name;
    for (int i = rng() % 8; i > 0; --i) pat += pat_chars[rng() % pat_chars.size()];
    for (int i = rng() % 8; i > 0; --i) name += name_chars[rng() % name_chars.size()];
    std::string quoted = "\"";
    for (char c : pat) {
      if (c == '\\' || c == '"') quoted += '\\';
      quoted += c;
    }
    Result<Filter> flt = Filter::Parse("name glob " + quoted + "\"");
    if (!flt.ok()) continue;
    File f;
    f.name = name;
    EXPECT_EQ(flt->Matches(f.Facts()), fnmatch(pat.c_str(), name.c_str(), 0) == 0)
        << "pattern " << pat << " name " << name;
    ++compared;
  }
  EXPECT_GT(compared, 5000);

  const auto start = std::chrono::steady_clock::now();
  std::string pat = "\"";
  for (int i = 0; i < 300; ++i) pat += "*a";
  File f;
  f.name = std::string(255, 'a');
  EXPECT_FALSE(Match("name glob " + pat + "b\"", f));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST(FilterTest, PathUnder) {
  File f;
  auto under = [&f](const std::string& rel, const std::string& arg) {
    f.path = rel;
    return Match("path under \"" + arg + "\"", f);
  };
  EXPECT_TRUE(under("a/b/c.md", "/a"));
  EXPECT_TRUE(under("a/b/c.md", "a"));
  EXPECT_TRUE(under("a/b/c.md", "/a/b/"));
  EXPECT_TRUE(under("a/b/c.md", "//a//b"));
  EXPECT_TRUE(under("/a/b/c.md", "/a/b"));
  EXPECT_TRUE(under("a/b/c.md", "/a/b/c.md"));  // the path itself
  EXPECT_FALSE(under("ab/c.md", "/a"));         // not a string prefix
  EXPECT_FALSE(under("a", "/a/b"));
  EXPECT_FALSE(under("a/bc/d", "/a/b"));
  EXPECT_FALSE(under("b/a/c", "/a"));
  EXPECT_TRUE(under("anything/at/all", "/"));
  EXPECT_TRUE(under("x", ""));
  EXPECT_TRUE(under("", "/"));
  EXPECT_FALSE(under("", "/a"));
  EXPECT_TRUE(under("a b/c", "/a b"));
  EXPECT_EQ(MustParse(R"(path under "a//b/")").ToString(), R"(path under "/a/b")");
  EXPECT_EQ(MustParse(R"(path under "")").ToString(), R"(path under "/")");
}

TEST(FilterTest, PrecedenceNotAndParentheses) {
  File f = Doc();  // lang=en, size 1000
  // and binds tighter than or: true or (false and false)
  EXPECT_TRUE(Match(R"(xattr.lang = "en" or size > 5000 and size < 10)", f));
  // (true or false) and false
  EXPECT_FALSE(Match(R"((xattr.lang = "en" or size > 5000) and size < 10)", f));
  // false and false or true = (false and false) or true
  EXPECT_TRUE(Match(R"(size > 5000 and size < 10 or xattr.lang = "en")", f));
  EXPECT_FALSE(Match(R"(size > 5000 and (size < 10 or xattr.lang = "en"))", f));
  EXPECT_FALSE(Match(R"(not xattr.lang = "en")", f));
  EXPECT_TRUE(Match(R"(not not xattr.lang = "en")", f));
  // not binds tighter than and/or
  EXPECT_TRUE(Match(R"(not size > 5000 and xattr.lang = "en")", f));
  EXPECT_FALSE(Match(R"(not (size < 5000 and xattr.lang = "en"))", f));
  EXPECT_TRUE(Match(R"(NOT size > 5000 AND xattr.lang = "en" Or size = 1)", f));
  EXPECT_TRUE(Match("((((size = 1000))))", f));

  EXPECT_EQ(MustParse("size=1 or size=2 and size=3").ToString(),
            "size = 1 or size = 2 and size = 3");
  EXPECT_EQ(MustParse("(size=1 or size=2) and size=3").ToString(),
            "(size = 1 or size = 2) and size = 3");
  EXPECT_EQ(MustParse("size=1 and (size=2 and (size=3 and size=4))").ToString(),
            "size = 1 and size = 2 and size = 3 and size = 4");
  EXPECT_EQ(MustParse("(size=1 or (size=2 or size=3)) or size=4").ToString(),
            "size = 1 or size = 2 or size = 3 or size = 4");
  EXPECT_EQ(MustParse("not (size=1 and size=2)").ToString(), "not (size = 1 and size = 2)");
  EXPECT_EQ(MustParse("not (not (size=1))").ToString(), "not not size = 1");
  EXPECT_EQ(MustParse("((size=1))").ToString(), "size = 1");
  EXPECT_EQ(MustParse("size=1 and not (size=2 or size=3) or size=4").ToString(),
            "size = 1 and not (size = 2 or size = 3) or size = 4");
}

TEST(FilterTest, LazyXattrLookup) {
  File f = Doc();
  EXPECT_TRUE(Match("size > 10", f));
  EXPECT_TRUE(Match("size > 10 and mtime > 0 and name glob \"*\" and path under \"/\"", f));
  EXPECT_EQ(f.TotalLookups(), 0);

  // A cheap false term short-circuits the xattr read even when written last.
  EXPECT_FALSE(Match(R"(xattr.lang = "en" and size > 5000)", f));
  EXPECT_FALSE(Match(R"(xattr.lang = "en" and not size = 1000)", f));
  EXPECT_TRUE(Match(R"(xattr.lang = "de" or size = 1000)", f));
  EXPECT_EQ(f.TotalLookups(), 0);

  // Repeated names are looked up once per Matches call.
  Filter flt = MustParse(
      R"(xattr.year > 2000 and xattr.year < 2100 and xattr.year in (2021, 2022) and has xattr.year
         and xattr.lang = "en")");
  EXPECT_EQ(flt.XattrNames(), (std::vector<std::string>{"lang", "year"}));
  EXPECT_TRUE(flt.Matches(f.Facts()));
  EXPECT_EQ(f.lookups["year"], 1);
  EXPECT_EQ(f.lookups["lang"], 1);
  EXPECT_TRUE(flt.Matches(f.Facts()));  // the cache is per call
  EXPECT_EQ(f.lookups["year"], 2);

  // Short-circuit among xattr terms: the second name is never needed.
  f.lookups.clear();
  EXPECT_FALSE(Match(R"(xattr.lang = "de" and xattr.year = 2021)", f));
  EXPECT_EQ(f.lookups["lang"], 1);
  EXPECT_EQ(f.lookups.count("year"), 0u);
}

TEST(FilterTest, XattrNames) {
  EXPECT_TRUE(MustParse("size > 1").XattrNames().empty());
  EXPECT_EQ(MustParse(R"(has xattr.z or xattr."a b" = 1 or not xattr.m in (1) or xattr.z = 2)")
                .XattrNames(),
            (std::vector<std::string>{"a b", "m", "z"}));
}

TEST(FilterTest, CanonicalFormRoundTrips) {
  const char* cases[] = {
      R"(xattr.lang = "en" and xattr.year >= 2020)",
      R"(size > 10K and (name glob "*.md" or name glob "*.txt"))",
      R"(mtime >= 2024-01-15 and not path under "/archive")",
      R"(xattr.tag in ("draft", "review", 3) or has xattr.pinned)",
      R"(xattr.s = "quote\" backslash\\ nl\n tab\t cr\r ctl\u0001 bmp\u00e9 astral\ud83d\ude00")",
      R"(xattr.n = -0.500 and xattr.b != FALSE)",
      R"(xattr."sp ace" = "" and name != "x" and name glob "[[:alpha:]]\\?")",
  };
  for (const char* text : cases) {
    Filter a = MustParse(text);
    Filter b = MustParse(a.ToString());
    EXPECT_EQ(a.ToString(), b.ToString());
    EXPECT_EQ(a.XattrNames(), b.XattrNames());
  }
  EXPECT_EQ(MustParse(R"(xattr.s = "\ud83d\ude00 \u00e9")").ToString(),
            "xattr.s = \"\xf0\x9f\x98\x80 \xc3\xa9\"");
  EXPECT_EQ(MustParse("xattr.s = \"\xc3\xa9\"").ToString(), "xattr.s = \"\xc3\xa9\"");
}

TEST(FilterTest, CopiesShareTheTree) {
  Filter a = MustParse("size > 1");
  Filter b = a;
  File f;
  EXPECT_TRUE(b.Matches(f.Facts()));
  EXPECT_EQ(a.ToString(), b.ToString());
}

TEST(FilterTest, SyntaxErrors) {
  EXPECT_EQ(Error("size > 10 & size < 3"), "column 11: unexpected character '&'");
  EXPECT_EQ(Error("size ! 3"), "column 6: expected '!=', found '!'");
  EXPECT_EQ(Error("colour = 3"),
            "column 1: expected a comparison (xattr.NAME, size, mtime, name, path or has), "
            "'not' or '(', found 'colour'");
  EXPECT_EQ(Error(")"),
            "column 1: expected a comparison (xattr.NAME, size, mtime, name, path or has), "
            "'not' or '(', found ')'");
  EXPECT_EQ(Error("size > 1 and"),
            "column 13: expected a comparison (xattr.NAME, size, mtime, name, path or has), "
            "'not' or '(', found end of filter");
  EXPECT_EQ(Error("not"),
            "column 4: expected a comparison (xattr.NAME, size, mtime, name, path or has), "
            "'not' or '(', found end of filter");
  EXPECT_EQ(Error("()"),
            "column 2: expected a comparison (xattr.NAME, size, mtime, name, path or has), "
            "'not' or '(', found ')'");
  EXPECT_EQ(Error("xattr.lang \"en\""),
            "column 12: expected an operator (= != < <= > >=) or 'in' after xattr.lang, found "
            "string \"en\"");
  EXPECT_EQ(Error("xattr.lang = en"),
            "column 14: expected a value (\"string\", number, true or false), found 'en'");
  EXPECT_EQ(Error("xattr.lang ="),
            "column 13: expected a value (\"string\", number, true or false), found end of "
            "filter");
  EXPECT_EQ(Error("xattr.lang = 1e5"),
            "column 14: expected a value (\"string\", number, true or false), found '1e5'");
  EXPECT_EQ(Error("xattr.lang = .5"),
            "column 14: expected a value (\"string\", number, true or false), found '.5'");
  EXPECT_EQ(Error("xattr. = 1"),
            "column 1: expected an xattr name after 'xattr.' (xattr.NAME or xattr.\"NAME\")");
  EXPECT_EQ(Error("xattr. \"a\" = 1"),
            "column 1: expected an xattr name after 'xattr.' (xattr.NAME or xattr.\"NAME\")");
  EXPECT_EQ(Error("xattr.\"\" = 1"), "column 1: xattr name must be 1 to 250 bytes without NUL");
  EXPECT_EQ(Error("xattr.\"a\\u0000\" = 1"),
            "column 1: xattr name must be 1 to 250 bytes without NUL");
  EXPECT_EQ(Error("xattr." + std::string(251, 'n') + " = 1"),
            "column 1: xattr name must be 1 to 250 bytes without NUL");
  EXPECT_TRUE(Filter::Parse("xattr." + std::string(250, 'n') + " = 1").ok());
  EXPECT_EQ(Error("has size"), "column 5: expected xattr.NAME, found 'size'");
  EXPECT_EQ(Error("xattr = 1"),
            "column 1: expected a comparison (xattr.NAME, size, mtime, name, path or has), "
            "'not' or '(', found 'xattr'");
  EXPECT_EQ(Error("size > 1 size < 2"),
            "column 10: expected 'and', 'or' or end of filter, found 'size'");
  EXPECT_EQ(Error("(size > 1"), "column 10: expected ')' or 'and'/'or', found end of filter");
  EXPECT_EQ(Error("size > 1)"), "column 9: expected 'and', 'or' or end of filter, found ')'");
  EXPECT_EQ(Error("size > 1 and or size < 2"),
            "column 14: expected a comparison (xattr.NAME, size, mtime, name, path or has), "
            "'not' or '(', found 'or'");
}

TEST(FilterTest, FieldErrors) {
  EXPECT_EQ(Error("size 3"),
            "column 6: expected an operator (= != < <= > >=) after size, found '3'");
  EXPECT_EQ(Error("size > -1"),
            "column 8: expected a size in bytes (integer with optional K, "
            "M or G suffix), found '-1'");
  EXPECT_EQ(Error("size > 1.5K"),
            "column 8: expected a size in bytes (integer with optional K, "
            "M or G suffix), found '1.5K'");
  EXPECT_EQ(Error("size > 10T"),
            "column 8: expected a size in bytes (integer with optional K, "
            "M or G suffix), found '10T'");
  EXPECT_EQ(Error("size > \"10\""),
            "column 8: expected a size in bytes (integer with optional "
            "K, M or G suffix), found string \"10\"");
  EXPECT_FALSE(Filter::Parse("size > 18446744073709551616").ok());  // overflow
  EXPECT_FALSE(Filter::Parse("size > 17179869184G").ok());          // overflow by suffix
  EXPECT_TRUE(Filter::Parse("size > 17179869183G").ok());

  const std::string kTime = "expected a time (epoch seconds or YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM])";
  EXPECT_EQ(Error("mtime > yesterday"), "column 9: " + kTime + ", found 'yesterday'");
  for (const char* bad : {"2024-13-01",
                          "2024-00-10",
                          "2024-02-30",
                          "2023-02-29",
                          "1900-02-29",
                          "2024-01-32",
                          "2024-01-00",
                          "2024-1-15",
                          "24-01-15",
                          "2024-01-15T24:00",
                          "2024-01-15T10:60",
                          "2024-01-15T10:00:60",
                          "2024-01-15T10",
                          "2024-01-15T10:00:00.5",
                          "2024-01-15X",
                          "2024-01-15T10:00+2",
                          "2024-01-15T10:00+24:00",
                          "2024-01-15T10:00ZZ",
                          "1.5",
                          "9223372036854775808",
                          "--1"}) {
    EXPECT_EQ(Error(std::string("mtime > ") + bad), "column 9: " + kTime + ", found '" + bad + "'");
  }
  EXPECT_EQ(Error("mtime > \"2024-01-15  \""),
            "column 9: " + kTime + ", found string \"2024-01-15  \"");

  EXPECT_EQ(Error("name < \"a\""), "column 6: expected 'glob', '=' or '!=' after name, found '<'");
  EXPECT_EQ(Error("name glob md"), "column 11: expected a quoted pattern or name, found 'md'");
  EXPECT_EQ(Error("name glob \"[abc\""), "column 11: unterminated '[' in glob");
  EXPECT_EQ(Error("name glob \"[!]\""), "column 11: unterminated '[' in glob");
  EXPECT_EQ(Error("name glob \"abc\\\\\""), "column 11: trailing '\\' in glob");
  EXPECT_EQ(Error("name glob \"[[:foo:]]\""), "column 11: unknown character class in glob");
  EXPECT_EQ(Error("name glob \"[[:alpha]\""), "column 11: unterminated [: :] class in glob");
  EXPECT_EQ(Error("name glob \"[[=a=]]\""),
            "column 11: collating elements [= =] and [. .] are not supported in globs");
  EXPECT_EQ(Error("path = \"/a\""), "column 6: expected 'under' after path, found '='");
  EXPECT_EQ(Error("path under /a"), "column 12: unexpected character '/'");
  EXPECT_EQ(Error("path under a"), "column 12: expected a quoted path, found 'a'");
  EXPECT_EQ(Error("path under \"/a/../b\""), "column 12: '.' and '..' are not allowed in a path");
  EXPECT_EQ(Error("path under \"./a\""), "column 12: '.' and '..' are not allowed in a path");
  EXPECT_EQ(Error("path under \"a\\u0000\""), "column 12: NUL byte in path");
  EXPECT_EQ(Error("xattr.a in \"x\""), "column 12: expected '(' after 'in', found string \"x\"");
  EXPECT_EQ(Error("xattr.a in ()"),
            "column 13: expected a value (\"string\", number, true or false), found ')'");
  EXPECT_EQ(Error("xattr.a in (1,)"),
            "column 15: expected a value (\"string\", number, true or false), found ')'");
  EXPECT_EQ(Error("xattr.a in (1 2)"), "column 15: expected ',' or ')' in 'in' list, found '2'");
  EXPECT_EQ(Error("xattr.a in (1"),
            "column 14: expected ',' or ')' in 'in' list, found end of filter");
}

TEST(FilterTest, StringErrors) {
  EXPECT_EQ(Error("name = \"abc"), "column 8: unterminated string literal");
  EXPECT_EQ(Error("name = \"abc\\"), "column 8: unterminated string literal");
  EXPECT_EQ(Error("name = \"a\\x\""),
            "column 10: unknown escape '\\x' (use \\\" \\\\ \\n \\t \\r or \\uXXXX)");
  EXPECT_EQ(Error("name = \"a\\u12\""), "column 10: expected 4 hex digits after \\u");
  EXPECT_EQ(Error("name = \"a\\u12g4\""), "column 10: expected 4 hex digits after \\u");
  EXPECT_EQ(Error("name = \"\\udc00\""), "column 9: unpaired UTF-16 low surrogate in \\u escape");
  EXPECT_EQ(Error("name = \"\\ud800\""),
            "column 9: UTF-16 high surrogate must be followed by \\uDC00-\\uDFFF");
  EXPECT_EQ(Error("name = \"\\ud800\\u0041\""),
            "column 9: UTF-16 high surrogate must be followed by \\uDC00-\\uDFFF");
  EXPECT_EQ(Error("name = \"a\nb\""),
            "column 10: control character in string literal; use an escape such as \\n");
  EXPECT_EQ(Error(std::string("size = 1\0", 9)), "column 9: unexpected character '\\x00'");
  EXPECT_EQ(Error("size = 1 \xff"), "column 10: unexpected character '\\xff'");
}

TEST(FilterTest, Limits) {
  // Text length.
  std::string text = "size > 1";
  text.resize(Filter::kMaxTextBytes, ' ');
  EXPECT_TRUE(Filter::Parse(text).ok());
  text.push_back(' ');
  EXPECT_EQ(Error(text), "filter is 4097 bytes; the limit is 4096");
  EXPECT_EQ(Filter::Parse(std::string(1 << 20, '(')).status().err(), EINVAL);

  // Nesting depth, by parentheses and by 'not', and their mix.
  auto parens = [](int n) { return std::string(n, '(') + "size > 1" + std::string(n, ')'); };
  EXPECT_TRUE(Filter::Parse(parens(32)).ok());
  EXPECT_EQ(Error(parens(33)), "column 33: nesting of '(' and 'not' deeper than 32 levels");
  EXPECT_EQ(Filter::Parse(std::string(4000, '(')).status().err(), EINVAL);
  auto nots = [](int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += "not ";
    return s + "size > 1";
  };
  EXPECT_TRUE(Filter::Parse(nots(32)).ok());
  EXPECT_EQ(Error(nots(33)), "column 129: nesting of '(' and 'not' deeper than 32 levels");
  EXPECT_EQ(Filter::Parse(nots(1000)).status().err(), EINVAL);
  EXPECT_EQ(Filter::Parse(std::string(16, '(') + nots(17) + "size > 1").status().err(), EINVAL);

  // Terms.
  auto terms = [](int n) {
    std::string s = "size=1";
    for (int i = 1; i < n; ++i) s += " or size=1";
    return s;
  };
  EXPECT_TRUE(Filter::Parse(terms(256)).ok());
  EXPECT_EQ(Error(terms(257)), "column 2561: more than 256 comparisons");

  // String literal length (decoded bytes).
  EXPECT_TRUE(Filter::Parse("name = \"" + std::string(1024, 'x') + "\"").ok());
  EXPECT_EQ(Error("name = \"" + std::string(1025, 'x') + "\""),
            "column 8: string literal longer than 1024 bytes");
  std::string escaped = "name = \"";
  for (int i = 0; i < 342; ++i) escaped += "\\u00e9";  // 684 escapes -> 1026 bytes
  for (int i = 0; i < 342; ++i) escaped += "\\n";
  EXPECT_FALSE(Filter::Parse(escaped + "\"").ok());

  // In-list items.
  auto list = [](int n) {
    std::string s = "xattr.a in (0";
    for (int i = 1; i < n; ++i) s += ",1";
    return s + ")";
  };
  EXPECT_TRUE(Filter::Parse(list(256)).ok());
  EXPECT_EQ(Error(list(257)), "column 525: 'in' list longer than 256 items");
}

// Random and mutated inputs: Parse returns Ok or EINVAL, never crashes; what
// parses round-trips and evaluates.
TEST(FilterTest, RandomizedRobustness) {
  const std::vector<std::string> vocab = {
      "xattr.lang", "xattr.year", "xattr.\"a b\"",
      "size",       "mtime",      "name",
      "path",       "has",        "and",
      "or",         "not",        "in",
      "glob",       "under",      "(",
      ")",          ",",          "=",
      "!=",         "<",          "<=",
      ">",          ">=",         "\"en\"",
      "\"*.md\"",   "\"/a\"",     "2020",
      "-1.5",       "10K",        "2024-01-15",
      "true",       "FALSE",      "\"\\u00e9\"",
      "\"[a-\"",    "\"",         "\\",
      "!",          "xattr.",     "1e9",
      "\x01",       "\xff",
  };
  const std::vector<std::string> seeds = {
      R"(xattr.lang = "en" and xattr.year >= 2020)",
      R"(size > 10K and (name glob "*.md" or name glob "*.txt"))",
      R"(mtime >= 2024-01-15T10:00:00+02:00 and not path under "/archive")",
      R"(xattr.tag in ("draft", "review", 3) or has xattr."x y")",
      R"(not (not (size = 1 or size = 2)) and name = "a\u00e9\n")",
  };
  std::mt19937 rng(20240115);
  File f = Doc();
  int ok = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int iter = 0; iter < 4000; ++iter) {
    std::string text;
    const int mode = iter % 3;
    if (mode == 0) {
      for (int n = rng() % 24; n > 0; --n) text += vocab[rng() % vocab.size()] + " ";
    } else {
      text = seeds[rng() % seeds.size()];
      for (int n = 1 + rng() % 4; n > 0; --n) {
        const size_t at = text.empty() ? 0 : rng() % (text.size() + 1);
        switch (rng() % 5) {
          case 0:
            if (at < text.size()) text[at] = static_cast<char>(rng());
            break;
          case 1:
            text.insert(at, 1, static_cast<char>(rng()));
            break;
          case 2:
            if (at < text.size()) text.erase(at, 1 + rng() % 8);
            break;
          case 3:
            text.insert(at, vocab[rng() % vocab.size()]);
            break;
          default:
            text.resize(at);
            break;
        }
      }
      if (mode == 2) text = std::string(rng() % 40, '(') + text;
    }
    Result<Filter> r = Filter::Parse(text);
    if (!r.ok()) {
      ASSERT_EQ(r.status().err(), EINVAL) << text;
      ASSERT_FALSE(r.status().message().empty());
      continue;
    }
    ++ok;
    const std::string canon = r->ToString();
    Result<Filter> again = Filter::Parse(canon);
    ASSERT_TRUE(again.ok()) << text << " -> " << canon << ": " << again.status().ToString();
    ASSERT_EQ(again->ToString(), canon);
    for (int k = 0; k < 3; ++k) {
      f.size = rng() % 20000;
      f.mtime = 1705276800 + static_cast<int>(rng() % 100) - 50;
      f.name = k == 0 ? "x.md" : "y.txt";
      f.path = k == 2 ? "archive/y.txt" : "a/x.md";
      ASSERT_EQ(r->Matches(f.Facts()), again->Matches(f.Facts())) << text;
    }
  }
  EXPECT_GT(ok, 100);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace
}  // namespace vexfs
