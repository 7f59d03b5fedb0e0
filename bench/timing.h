// Clocks shared by the benchmark drivers.
#ifndef VEXFS_BENCH_TIMING_H_
#define VEXFS_BENCH_TIMING_H_

#include <time.h>

#include <chrono>

namespace vexfs::bench {

using Clock = std::chrono::steady_clock;

inline double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// CPU time of the calling thread or of the process (CLOCK_THREAD_CPUTIME_ID,
// CLOCK_PROCESS_CPUTIME_ID, or a clock of another process), in seconds. On
// a shared machine it excludes the time the benchmark spent descheduled.
inline double CpuSeconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

}  // namespace vexfs::bench

#endif  // VEXFS_BENCH_TIMING_H_
