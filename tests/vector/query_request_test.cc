// The query file's request parsers (vector/query_request.h): the binary
// form, split into head and queries as the daemon receives it, and the
// JSON form; every malformed request is EINVAL with a message.
#include "vector/query_request.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "uapi/vexfs/vexfs_format.h"
#include "uapi/vexfs/vexfs_ioctl.h"

namespace vexfs {
namespace {

struct Binary {
  std::string head;
  std::vector<float> floats;
};

// A binary request cut as the daemon cuts it: head per BinaryHeadBytes.
Binary MakeBinary(uint32_t k, uint32_t dim, uint32_t nq, const std::string& filter = "",
                  void (*edit)(vexfs_query_req*) = nullptr) {
  vexfs_query_req h{};
  h.qq_magic = VEXFS_QUERY_REQ_MAGIC;
  h.qq_size = sizeof(h);
  h.qq_k = k;
  h.qq_dim = dim;
  h.qq_nq = nq;
  h.qq_effort = 24;
  h.qq_filter_len = static_cast<uint32_t>(filter.size());
  if (edit) edit(&h);
  Binary b;
  b.head.assign(reinterpret_cast<const char*>(&h), sizeof(h));
  b.head += filter;
  b.head.resize((b.head.size() + 3) & ~size_t{3}, '\0');
  for (size_t i = 0; i < size_t{dim} * nq; i++) b.floats.push_back(static_cast<float>(i));
  return b;
}

Status ParseBinary(const Binary& b, SearchRequest* r, uint32_t* nq, ptrdiff_t extra_bytes = 0) {
  return ParseBinaryRequest(b.head, b.floats.size() * 4 + extra_bytes, r, nq);
}

TEST(BinaryHeadBytesTest, GrowsFromMagicToHeaderToHead) {
  const Binary b = MakeBinary(10, 3, 2, "name glob \"*.md\"");  // 16 bytes of filter
  EXPECT_EQ(BinaryHeadBytes(""), 4u);
  EXPECT_EQ(BinaryHeadBytes(b.head.substr(0, 3)), 4u);
  EXPECT_EQ(BinaryHeadBytes(b.head.substr(0, 4)), sizeof(vexfs_query_req));
  EXPECT_EQ(BinaryHeadBytes(b.head.substr(0, sizeof(vexfs_query_req) - 1)),
            sizeof(vexfs_query_req));
  EXPECT_EQ(BinaryHeadBytes(b.head.substr(0, sizeof(vexfs_query_req))), b.head.size());
  EXPECT_EQ(b.head.size(), sizeof(vexfs_query_req) + 16);
  EXPECT_EQ(BinaryHeadBytes(MakeBinary(1, 1, 1, "size > 1").head), sizeof(vexfs_query_req) + 8);
  EXPECT_EQ(BinaryHeadBytes(MakeBinary(1, 1, 1, "size > 10").head), sizeof(vexfs_query_req) + 12);
  EXPECT_EQ(BinaryHeadBytes("{\"vector\": [1]}"), SIZE_MAX);  // JSON
  EXPECT_EQ(BinaryHeadBytes("VXQ0"), SIZE_MAX);
}

TEST(ParseBinaryRequestTest, AcceptsAWellFormedRequest) {
  const Binary b = MakeBinary(7, 3, 2, "size > 10");
  SearchRequest r;
  uint32_t nq = 0;
  ASSERT_TRUE(ParseBinary(b, &r, &nq).ok());
  EXPECT_EQ(nq, 2u);
  EXPECT_EQ(r.nq, 2u);
  EXPECT_EQ(r.dim, 3u);
  EXPECT_EQ(r.k, 7u);
  EXPECT_EQ(r.effort, 24u);
  EXPECT_EQ(r.filter, "size > 10");
  EXPECT_FALSE(r.max_distance.has_value());
  const Binary ranged = MakeBinary(1, 3, 1, "", [](vexfs_query_req* h) {
    h->qq_flags = VEXFS_SEARCH_RANGE;
    h->qq_max_distance = 0.5f;
  });
  ASSERT_TRUE(ParseBinary(ranged, &r, &nq).ok());
  EXPECT_EQ(r.max_distance, 0.5f);
  EXPECT_EQ(r.filter, "");
}

TEST(ParseBinaryRequestTest, RejectsEveryMalformedRequest) {
  SearchRequest r;
  uint32_t nq = 99;
  auto einval = [](const Status& s) { return s.err() == EINVAL && !s.message().empty(); };
  const Binary good = MakeBinary(10, 3, 2);
  // Shorter than the header: nq unknown.
  EXPECT_TRUE(einval(ParseBinaryRequest(good.head.substr(0, 10), 0, &r, &nq)));
  EXPECT_EQ(nq, 0u);
  EXPECT_TRUE(einval(ParseBinary(MakeBinary(0, 3, 2), &r, &nq)));  // k = 0
  EXPECT_EQ(nq, 2u);  // echoed once the header is complete
  EXPECT_TRUE(einval(ParseBinary(MakeBinary(VEXFS_SEARCH_MAX_K + 1, 3, 1), &r, &nq)));
  EXPECT_TRUE(einval(ParseBinary(MakeBinary(10, 0, 1), &r, &nq)));  // dim 0
  EXPECT_TRUE(
      einval(ParseBinaryRequest(MakeBinary(10, VEXFS_VECTOR_MAX_DIM + 1, 1).head, 0, &r, &nq)));
  EXPECT_TRUE(einval(ParseBinary(MakeBinary(10, 3, 0), &r, &nq)));  // nq 0
  EXPECT_TRUE(
      einval(ParseBinaryRequest(MakeBinary(10, 1, VEXFS_SEARCH_MAX_NQ + 1).head, 0, &r, &nq)));
  EXPECT_TRUE(einval(
      ParseBinary(MakeBinary(10, 3, 1, "", [](vexfs_query_req* h) { h->qq_size = 60; }), &r, &nq)));
  EXPECT_TRUE(einval(
      ParseBinary(MakeBinary(10, 3, 1, "", [](vexfs_query_req* h) { h->qq_flags = 4; }), &r, &nq)));
  EXPECT_TRUE(einval(ParseBinary(
      MakeBinary(10, 3, 1, "", [](vexfs_query_req* h) { h->qq_reserved[3] = 1; }), &r, &nq)));
  EXPECT_TRUE(einval(ParseBinary(
      MakeBinary(10, 3, 1, "", [](vexfs_query_req* h) { h->qq_filter_len = VEXFS_FILTER_MAX + 1; }),
      &r, &nq)));
  EXPECT_TRUE(einval(ParseBinary(
      MakeBinary(10, 3, 1, "", [](vexfs_query_req* h) { h->qq_threads = VEXFS_QUERY_MAX_THREADS + 1; }), &r,
      &nq)));
  EXPECT_TRUE(einval(
      ParseBinary(MakeBinary(10, 3, 1, "", [](vexfs_query_req* h) { h->qq_threads = UINT32_MAX; }), &r, &nq)));
  // One float short, one byte long, one float long.
  EXPECT_TRUE(einval(ParseBinary(good, &r, &nq, -4)));
  EXPECT_TRUE(einval(ParseBinary(good, &r, &nq, 1)));
  const Status s = ParseBinary(good, &r, &nq, 4);
  EXPECT_TRUE(einval(s));
  EXPECT_NE(s.message().find("header makes it"), std::string::npos) << s.message();
  // The right total, split in the wrong place.
  std::string whole = good.head;
  whole.append(reinterpret_cast<const char*>(good.floats.data()), good.floats.size() * 4);
  EXPECT_TRUE(einval(ParseBinaryRequest(whole, 0, &r, &nq)));
}

TEST(ParseBinaryRequestTest, AtWriteIsAKnownFlag) {
  SearchRequest r;
  uint32_t nq = 0;
  ASSERT_TRUE(ParseBinary(MakeBinary(5, 3, 2, "", [](vexfs_query_req* h) { h->qq_flags = VEXFS_QUERY_AT_WRITE; }),
                          &r, &nq)
                  .ok());
  EXPECT_EQ(r.k, 5u);
  EXPECT_FALSE(r.max_distance.has_value());
  ASSERT_TRUE(ParseBinary(MakeBinary(5, 3, 2, "",
                                     [](vexfs_query_req* h) {
                                       h->qq_flags = VEXFS_QUERY_AT_WRITE | VEXFS_SEARCH_RANGE;
                                       h->qq_max_distance = 2.0f;
                                     }),
                          &r, &nq)
                  .ok());
  EXPECT_EQ(r.max_distance, 2.0f);
  // Any other bit, alone or beside it, stays EINVAL.
  for (uint32_t bad : {VEXFS_QUERY_AT_WRITE << 1, VEXFS_QUERY_AT_WRITE >> 1, VEXFS_SEARCH_STAGED, 0x80000000u}) {
    static uint32_t flags;  // read by the edit function below
    flags = bad | VEXFS_QUERY_AT_WRITE;
    const Status s = ParseBinary(MakeBinary(5, 3, 2, "", [](vexfs_query_req* h) { h->qq_flags = flags; }), &r, &nq);
    EXPECT_EQ(s.err(), EINVAL) << std::hex << flags;
  }
}

TEST(SearchAtWriteTest, TrueExactlyAtTheLastByteOfAFlaggedRequest) {
  const Binary b =
      MakeBinary(5, 3, 2, "size > 1", [](vexfs_query_req* h) { h->qq_flags = VEXFS_QUERY_AT_WRITE; });
  const size_t floats = b.floats.size() * 4;
  EXPECT_TRUE(SearchAtWrite(b.head, floats));
  EXPECT_FALSE(SearchAtWrite(b.head, floats - 1));
  EXPECT_FALSE(SearchAtWrite(b.head, floats + 1));
  EXPECT_FALSE(SearchAtWrite(b.head, 0));
  EXPECT_FALSE(SearchAtWrite(b.head.substr(0, b.head.size() - 1), 0));  // head incomplete
  EXPECT_FALSE(SearchAtWrite(b.head.substr(0, 4), 0));
  EXPECT_FALSE(SearchAtWrite("", 0));
  EXPECT_FALSE(SearchAtWrite("{\"vector\": [1]}", 0));  // JSON
  // Without the flag the search waits for the read.
  EXPECT_FALSE(SearchAtWrite(MakeBinary(5, 3, 2, "size > 1").head, floats));
  // A flagged request the parser refuses still completes (its answer is
  // the error): unknown flag bits, k = 0, nq = 0.
  EXPECT_TRUE(SearchAtWrite(MakeBinary(5, 3, 2, "", [](vexfs_query_req* h) { h->qq_flags = 0xffffffffu; }).head,
                            floats));
  EXPECT_TRUE(
      SearchAtWrite(MakeBinary(0, 3, 2, "", [](vexfs_query_req* h) { h->qq_flags = VEXFS_QUERY_AT_WRITE; }).head,
                    floats));
  EXPECT_TRUE(
      SearchAtWrite(MakeBinary(5, 3, 0, "", [](vexfs_query_req* h) { h->qq_flags = VEXFS_QUERY_AT_WRITE; }).head, 0));
}

TEST(ParseBinaryRequestTest, Threads) {
  SearchRequest r;
  uint32_t nq;
  ASSERT_TRUE(ParseBinary(MakeBinary(10, 3, 2), &r, &nq).ok());
  EXPECT_EQ(r.threads, 1u);  // 0: one thread
  static uint32_t want;  // read by the edit function below
  for (uint32_t t : {1u, 2u, 7u, VEXFS_QUERY_MAX_THREADS}) {
    want = t;
    ASSERT_TRUE(
        ParseBinary(MakeBinary(10, 3, 2, "", [](vexfs_query_req* h) { h->qq_threads = want; }), &r, &nq).ok());
    EXPECT_EQ(r.threads, t);
  }
  // A reused request goes back to one thread.
  ASSERT_TRUE(ParseBinary(MakeBinary(10, 3, 2), &r, &nq).ok());
  EXPECT_EQ(r.threads, 1u);
}

TEST(ParseJsonRequestTest, SingleAndBatch) {
  SearchRequest r;
  bool batch = true;
  ASSERT_TRUE(ParseJsonRequest(R"({"vector": [1, 2.5, -3], "k": 4, "ef": 0, "filter": "size > 1",
                                   "max_distance": 0.25})",
                               &r, &batch)
                  .ok());
  EXPECT_FALSE(batch);
  EXPECT_EQ(r.nq, 1u);
  EXPECT_EQ(r.dim, 3u);
  EXPECT_EQ(r.queries, (std::vector<float>{1, 2.5f, -3}));
  EXPECT_EQ(r.k, 4u);
  EXPECT_EQ(r.effort, 0u);
  EXPECT_EQ(r.filter, "size > 1");
  EXPECT_EQ(r.max_distance, 0.25f);
  ASSERT_TRUE(
      ParseJsonRequest(R"({"vectors": [[1, 2], [3, 4], [5, 6]], "ef": 32})", &r, &batch).ok());
  EXPECT_TRUE(batch);
  EXPECT_EQ(r.nq, 3u);
  EXPECT_EQ(r.dim, 2u);
  EXPECT_EQ(r.queries, (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(r.k, 10u);  // the default
  EXPECT_EQ(r.effort, 32u);
  EXPECT_EQ(r.filter, "");  // nothing left over from the last request
  EXPECT_FALSE(r.max_distance.has_value());
}

TEST(ParseJsonRequestTest, RejectsEveryMalformedRequest) {
  std::string many = R"({"vectors": [)";
  for (int i = 0; i <= 1024; i++) many += i ? ",[1]" : "[1]";
  many += "]}";
  for (const std::string& text :
       std::vector<std::string>{"",
                                "{not json",
                                "[1, 2]",
                                "\"vector\"",
                                R"({"k": 3})",
                                R"({"vector": [1], "vectors": [[1]]})",
                                R"({"vector": []})",
                                R"({"vector": 1})",
                                R"({"vector": [1, "2"]})",
                                R"({"vector": [[1]]})",
                                R"({"vectors": []})",
                                R"({"vectors": [[1, 2], [3]]})",
                                R"({"vectors": [1, 2]})",
                                many,
                                R"({"vector": [1], "k": 0})",
                                R"({"vector": [1], "k": 10001})",
                                R"({"vector": [1], "k": 1.5})",
                                R"({"vector": [1], "k": "3"})",
                                R"({"vector": [1], "k": 18446744073709551615})",
                                R"({"vector": [1], "ef": -1})",
                                R"({"vector": [1], "ef": 100001})",
                                R"({"vector": [1], "filter": 3})",
                                R"({"vector": [1], "max_distance": "x"})",
                                R"({"vector": [1], "K": 3})",
                                R"({"vector": [1]} x)"}) {
    SearchRequest r;
    bool batch;
    const Status s = ParseJsonRequest(text, &r, &batch);
    EXPECT_EQ(s.err(), EINVAL) << text;
    EXPECT_FALSE(s.message().empty()) << text;
  }
}

}  // namespace
}  // namespace vexfs
