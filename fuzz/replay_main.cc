// Replays a fuzz target without libFuzzer (fuzz/CMakeLists.txt): its
// built-in seeds, the corpus files and directories named on the command
// line, then seeded mutations of them, so the gcc build and the ASan build
// in CI re-run what fuzzing found and a little more, deterministically.
//
//   NAME_replay [--mutations N] [--seconds S] [--seed X] [--only I]
//               [--write-seeds DIR] [FILE|DIR ...]
//
// The seeds and corpus files all run; mutations then stop after N inputs or
// once S seconds have passed since the start (corpus included), whichever
// comes first (the count reached is printed), so a growing corpus does not
// lengthen the test. An input that crashes is written to
// $TMPDIR/NAME-crash.bin (ASan reports go through the death callback, abort()
// through a SIGABRT handler) and its index printed; `--only I` re-runs just
// that mutation.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "fuzz/fuzz_seeds.h"

extern "C" void __sanitizer_set_death_callback(void (*)(void)) __attribute__((weak));

namespace {

std::vector<uint8_t> g_current;  // the input being run
char g_crash_path[4096];
int64_t g_index = -1;  // mutation number, -1 for seeds and corpus files

void DumpCurrent() {
  const int fd = open(g_crash_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    ssize_t off = 0;
    while (off < static_cast<ssize_t>(g_current.size())) {
      const ssize_t n = write(fd, g_current.data() + off, g_current.size() - off);
      if (n <= 0) break;
      off += n;
    }
    close(fd);
  }
  char msg[4300];
  const int n = std::snprintf(msg, sizeof(msg), "replay: input %lld crashed; saved to %s\n",
                              static_cast<long long>(g_index), g_crash_path);
  if (n > 0) (void)!write(2, msg, static_cast<size_t>(n));
}

void OnFatalSignal(int sig) {
  DumpCurrent();
  signal(sig, SIG_DFL);
  raise(sig);
}

void Run(const std::vector<uint8_t>& in) {
  g_current = in;
  LLVMFuzzerTestOneInput(g_current.data(), g_current.size());
}

bool ReadFile(const std::filesystem::path& p, std::vector<uint8_t>* out) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return false;
  out->assign(std::istreambuf_iterator<char>(f), {});
  return true;
}

// One random edit of the kinds libFuzzer's mutator makes most often.
void Mutate(std::mt19937_64& rng, std::vector<uint8_t>* in) {
  static const uint64_t kInteresting[] = {0,          1,          2,          7,
                                          16,         64,         127,        128,
                                          255,        256,        1023,       4096,
                                          65535,      65536,      0x7fffffff, 0x80000000,
                                          0xffffffff, 1ull << 32, ~0ull};
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  std::vector<uint8_t>& v = *in;
  switch (pick(8)) {
    case 0:  // flip a bit
      if (!v.empty()) v[pick(v.size())] ^= static_cast<uint8_t>(1u << pick(8));
      break;
    case 1:  // a random byte
      if (!v.empty()) v[pick(v.size())] = static_cast<uint8_t>(rng());
      break;
    case 2:    // an interesting little-endian integer of 1, 2, 4 or 8 bytes
    case 3: {  // (twice as likely: counts and lengths are what parsers trust)
      const size_t width = size_t{1} << pick(4);
      if (v.size() < width) break;
      const size_t at = pick(v.size() - width + 1);
      uint64_t x = kInteresting[pick(std::size(kInteresting))];
      if (rng() % 4 == 0) x = x + 1 - 2 * (rng() % 2);  // off by one
      for (size_t i = 0; i < width; ++i) v[at + i] = static_cast<uint8_t>(x >> (8 * i));
      break;
    }
    case 4:  // truncate
      if (!v.empty()) v.resize(pick(v.size()));
      break;
    case 5: {  // erase a range
      if (v.size() < 2) break;
      const size_t at = pick(v.size());
      const size_t n = 1 + pick(std::min<size_t>(v.size() - at, 64));
      v.erase(v.begin() + static_cast<ptrdiff_t>(at), v.begin() + static_cast<ptrdiff_t>(at + n));
      break;
    }
    case 6: {  // duplicate a range
      if (v.empty() || v.size() > (1u << 20)) break;
      const size_t at = pick(v.size());
      const size_t n = 1 + pick(std::min<size_t>(v.size() - at, 64));
      std::vector<uint8_t> chunk(v.begin() + static_cast<ptrdiff_t>(at),
                                 v.begin() + static_cast<ptrdiff_t>(at + n));
      v.insert(v.begin() + static_cast<ptrdiff_t>(pick(v.size() + 1)), chunk.begin(), chunk.end());
      break;
    }
    default: {  // insert random bytes
      const size_t n = 1 + pick(8);
      const size_t at = pick(v.size() + 1);
      for (size_t i = 0; i < n; ++i) {
        v.insert(v.begin() + static_cast<ptrdiff_t>(at), static_cast<uint8_t>(rng()));
      }
      break;
    }
  }
}

int Usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--mutations N] [--seconds S] [--seed X] [--only I] "
               "[--write-seeds DIR] [FILE|DIR ...]\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string name = std::filesystem::path(argv[0]).filename().string();
  uint64_t mutations = 1000, seed = 1;
  int64_t only = -1;
  double seconds = 60;
  std::string write_seeds;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--mutations" && (v = value())) {
      mutations = std::strtoull(v, nullptr, 10);
    } else if (a == "--seconds" && (v = value())) {
      seconds = std::strtod(v, nullptr);
    } else if (a == "--seed" && (v = value())) {
      seed = std::strtoull(v, nullptr, 10);
    } else if (a == "--only" && (v = value())) {
      only = std::strtoll(v, nullptr, 10);
    } else if (a == "--write-seeds" && (v = value())) {
      write_seeds = v;
    } else if (!a.empty() && a[0] == '-') {
      return Usage(argv[0]);
    } else {
      paths.push_back(a);
    }
  }
  const char* tmp = std::getenv("TMPDIR");
  std::snprintf(g_crash_path, sizeof(g_crash_path), "%s/%s-crash.bin", tmp ? tmp : "/tmp",
                name.c_str());

  std::vector<std::vector<uint8_t>> inputs = VexfsFuzzSeeds();
  if (!write_seeds.empty()) {
    std::filesystem::create_directories(write_seeds);
    for (size_t i = 0; i < inputs.size(); ++i) {
      std::ofstream f(std::filesystem::path(write_seeds) / ("seed-" + std::to_string(i)),
                      std::ios::binary);
      f.write(reinterpret_cast<const char*>(inputs[i].data()),
              static_cast<std::streamsize>(inputs[i].size()));
      if (!f) {
        std::fprintf(stderr, "%s: cannot write seeds to %s\n", name.c_str(), write_seeds.c_str());
        return 1;
      }
    }
    std::printf("%s: wrote %zu seeds to %s\n", name.c_str(), inputs.size(), write_seeds.c_str());
    return 0;
  }
  for (const std::string& p : paths) {
    std::error_code ec;
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(p, ec)) {
      for (const auto& e : std::filesystem::directory_iterator(p)) {
        if (e.is_regular_file()) files.push_back(e.path());
      }
      std::sort(files.begin(), files.end());
    } else {
      files.push_back(p);
    }
    for (const auto& f : files) {
      std::vector<uint8_t> in;
      if (!ReadFile(f, &in)) {
        std::fprintf(stderr, "%s: cannot read %s\n", name.c_str(), f.c_str());
        return 1;
      }
      inputs.push_back(std::move(in));
    }
  }
  if (inputs.empty()) inputs.emplace_back();

  if (__sanitizer_set_death_callback != nullptr) __sanitizer_set_death_callback(DumpCurrent);
  for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) signal(sig, OnFatalSignal);

  const auto start = std::chrono::steady_clock::now();
  if (only < 0) {
    for (const auto& in : inputs) Run(in);
  }
  uint64_t done = 0;
  for (uint64_t i = 0; i < mutations; ++i) {
    if (only >= 0 && static_cast<int64_t>(i) != only) continue;
    // Each mutation derives from its own index, so --only I reproduces it.
    std::mt19937_64 rng(seed * 0x9e3779b97f4a7c15ull + i);
    std::vector<uint8_t> in = inputs[rng() % inputs.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) Mutate(rng, &in);
    g_index = static_cast<int64_t>(i);
    Run(in);
    ++done;
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > seconds) {
      break;
    }
  }
  std::printf("%s: %zu seed and corpus inputs, %llu mutations, no failure\n", name.c_str(),
              inputs.size(), static_cast<unsigned long long>(done));
  return 0;
}
