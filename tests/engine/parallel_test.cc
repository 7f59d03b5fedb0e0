#include "vexfs/engine/parallel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace vexfs::engine {
namespace {

struct Call {
  size_t part, begin, end;
  std::thread::id thread;
};

std::vector<Call> Calls(size_t n, size_t threads) {
  std::mutex mu;
  std::vector<Call> calls;
  ParallelFor(n, threads, [&](size_t part, size_t b, size_t e) {
    std::lock_guard<std::mutex> lock(mu);
    calls.push_back({part, b, e, std::this_thread::get_id()});
  });
  std::sort(calls.begin(), calls.end(), [](const Call& a, const Call& b) { return a.part < b.part; });
  return calls;
}

TEST(ParallelForTest, PartsCoverTheRangeInOrder) {
  for (auto [n, threads] : {std::pair<size_t, size_t>{10, 3}, {7, 7}, {64, 4}, {5, 1}, {1, 8}}) {
    const std::vector<Call> calls = Calls(n, threads);
    ASSERT_EQ(calls.size(), std::min(n, threads)) << n << " " << threads;
    size_t next = 0;
    for (size_t p = 0; p < calls.size(); p++) {
      EXPECT_EQ(calls[p].part, p);
      EXPECT_EQ(calls[p].begin, next);
      EXPECT_EQ(calls[p].begin, n * p / calls.size());
      EXPECT_LT(calls[p].begin, calls[p].end);
      next = calls[p].end;
    }
    EXPECT_EQ(next, n);
  }
}

TEST(ParallelForTest, PartZeroRunsOnTheCallerAndTheRestOnOtherThreads) {
  const std::vector<Call> calls = Calls(100, 4);
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[0].thread, std::this_thread::get_id());
  std::set<std::thread::id> others;
  for (size_t p = 1; p < calls.size(); p++) others.insert(calls[p].thread);
  EXPECT_EQ(others.count(std::this_thread::get_id()), 0u);
  EXPECT_EQ(others.size(), 3u);
}

TEST(ParallelForTest, EmptyRangeAndZeroThreads) {
  EXPECT_TRUE(Calls(0, 4).empty());
  const std::vector<Call> one = Calls(9, 0);  // 0 threads counts as 1
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].begin, 0u);
  EXPECT_EQ(one[0].end, 9u);
  EXPECT_EQ(one[0].thread, std::this_thread::get_id());
}

}  // namespace
}  // namespace vexfs::engine
