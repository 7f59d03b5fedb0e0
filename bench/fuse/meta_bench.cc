// meta_bench: the metadata half of bench/fuse (fio does the data half).
//
//   meta_bench PHASE DIR N
//   meta_bench unlink DIR N FIRST LAST
//
// PHASE is one of
//   create   mkdir DIR, then open(O_CREAT|O_EXCL|O_WRONLY)+close N empty files
//   stat     stat(2) the N files, in creation order
//   readdir  opendir/readdir DIR to the end, N entries expected
//   unlink   unlink the N files, then rmdir DIR; with FIRST LAST, only
//            files FIRST .. LAST-1 of the N, and rmdir DIR only if LAST is N
//            (run.sh unlinks in slices, the systems taking turns)
//   release  mkdir DIR, create and keep open N files, unlink them all, then
//            close them oldest first; only the closes are timed (each
//            releases an unlinked inode; needs N free file descriptors).
//            Not in run.sh: it measures the orphan list's release order.
//
// Each phase runs in its own process so that run.sh can drop the page,
// dentry and inode caches between phases (so stat, readdir and unlink reach
// the filesystem instead of the kernel's caches). Prints one line:
//   {"phase":"stat","n":100000,"seconds":1.23,"ops_per_s":81300.0}
// where n counts the files this run handled (LAST - FIRST for a slice).
// Exit status 0 on success, 1 on any failed call (message on stderr).
// Files are named f0000000 .. f(N-1), fixed width, so every phase walks the
// same names and no phase formats more than one number per operation.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

// When the timed part of a phase starts; a phase may move it later.
std::chrono::steady_clock::time_point g_start;
// unlink's slice: files [g_first, g_last) of the N (g_last -1: all N).
long g_first = 0, g_last = -1;

void FileName(const std::string& dir, long i, char* buf, size_t len) {
  std::snprintf(buf, len, "%s/f%07ld", dir.c_str(), i);
}

int Fail(const char* what, const char* path) {
  std::fprintf(stderr, "meta_bench: %s %s: %s\n", what, path, std::strerror(errno));
  return 1;
}

int Create(const std::string& dir, long n) {
  if (mkdir(dir.c_str(), 0755) != 0) return Fail("mkdir", dir.c_str());
  char path[4096];
  for (long i = 0; i < n; ++i) {
    FileName(dir, i, path, sizeof path);
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) return Fail("create", path);
    close(fd);
  }
  return 0;
}

int Stat(const std::string& dir, long n) {
  char path[4096];
  struct stat st;
  for (long i = 0; i < n; ++i) {
    FileName(dir, i, path, sizeof path);
    if (stat(path, &st) != 0) return Fail("stat", path);
  }
  return 0;
}

int Readdir(const std::string& dir, long n) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return Fail("opendir", dir.c_str());
  long seen = 0;
  errno = 0;
  while (struct dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) ++seen;
  }
  int err = errno;
  closedir(d);
  if (err != 0) {
    errno = err;
    return Fail("readdir", dir.c_str());
  }
  if (seen != n) {
    std::fprintf(stderr, "meta_bench: readdir %s: %ld entries, expected %ld\n", dir.c_str(), seen,
                 n);
    return 1;
  }
  return 0;
}

int Unlink(const std::string& dir, long n) {
  char path[4096];
  const long last = g_last < 0 ? n : g_last;
  for (long i = g_first; i < last; ++i) {
    FileName(dir, i, path, sizeof path);
    if (unlink(path) != 0) return Fail("unlink", path);
  }
  if (last == n && rmdir(dir.c_str()) != 0) return Fail("rmdir", dir.c_str());
  return 0;
}

int Release(const std::string& dir, long n) {
  if (mkdir(dir.c_str(), 0755) != 0) return Fail("mkdir", dir.c_str());
  char path[4096];
  std::vector<int> fds;
  fds.reserve(static_cast<size_t>(n));
  for (long i = 0; i < n; ++i) {
    FileName(dir, i, path, sizeof path);
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) return Fail("create", path);
    fds.push_back(fd);
  }
  for (long i = 0; i < n; ++i) {
    FileName(dir, i, path, sizeof path);
    if (unlink(path) != 0) return Fail("unlink", path);
  }
  g_start = std::chrono::steady_clock::now();
  for (int fd : fds) {
    if (close(fd) != 0) return Fail("close", dir.c_str());
  }
  if (rmdir(dir.c_str()) != 0) return Fail("rmdir", dir.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 && !(argc == 6 && std::strcmp(argv[1], "unlink") == 0)) {
    std::fprintf(stderr,
                 "usage: meta_bench create|stat|readdir|unlink|release DIR N\n"
                 "       meta_bench unlink DIR N FIRST LAST\n");
    return 2;
  }
  const std::string phase = argv[1];
  const std::string dir = argv[2];
  const long n = std::strtol(argv[3], nullptr, 10);
  if (n <= 0 || n > 9999999) {
    std::fprintf(stderr, "meta_bench: N must be in 1..9999999\n");
    return 2;
  }
  if (argc == 6) {
    char* end1 = nullptr;
    char* end2 = nullptr;
    g_first = std::strtol(argv[4], &end1, 10);
    g_last = std::strtol(argv[5], &end2, 10);
    if (*end1 != '\0' || *end2 != '\0' || g_first < 0 || g_first >= g_last || g_last > n) {
      std::fprintf(stderr, "meta_bench: want 0 <= FIRST < LAST <= N\n");
      return 2;
    }
  }
  int (*fn)(const std::string&, long) = nullptr;
  if (phase == "create") fn = Create;
  else if (phase == "stat") fn = Stat;
  else if (phase == "readdir") fn = Readdir;
  else if (phase == "unlink") fn = Unlink;
  else if (phase == "release") fn = Release;
  if (fn == nullptr) {
    std::fprintf(stderr, "meta_bench: unknown phase %s\n", phase.c_str());
    return 2;
  }
  g_start = std::chrono::steady_clock::now();
  int rc = fn(dir, n);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - g_start).count();
  if (rc != 0) return rc;
  const long done = g_last < 0 ? n : g_last - g_first;
  std::printf("{\"phase\":\"%s\",\"n\":%ld,\"seconds\":%.6f,\"ops_per_s\":%.1f}\n", phase.c_str(),
              done, s, done / s);
  return 0;
}
