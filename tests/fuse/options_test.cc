#include "fuse/options.h"
#include "fuse/vexfs_fuse.h"

#include <gtest/gtest.h>

#include <initializer_list>

namespace vexfs::fusefs {
namespace {

Result<CommandLine> Parse(std::initializer_list<const char*> args) {
  std::vector<const char*> argv = {"vexfs-fuse"};
  argv.insert(argv.end(), args);
  return ParseCommandLine(static_cast<int>(argv.size()), argv.data());
}

bool Has(const CommandLine& cl, const std::string& o) {
  for (const auto& x : cl.fuse_options) {
    if (x == o) return true;
  }
  return false;
}

TEST(FuseOptions, TargetMountpointAndFlags) {
  auto cl = Parse({"img", "/mnt", "-f", "-d", "-s"});
  ASSERT_TRUE(cl.ok()) << cl.status().ToString();
  EXPECT_EQ(cl->target, "img");
  EXPECT_EQ(cl->mountpoint, "/mnt");
  EXPECT_TRUE(cl->foreground);
  EXPECT_TRUE(cl->debug);
  EXPECT_TRUE(cl->single_thread);
  EXPECT_FALSE(cl->mount.read_only);
  EXPECT_TRUE(cl->mount.check_permissions);
}

TEST(FuseOptions, VexfsOptionsGoToTheLibrary) {
  auto cl = Parse({"-o", "ro,cache_mb=64", "img", "/mnt", "-ocommit_ms=250"});
  ASSERT_TRUE(cl.ok()) << cl.status().ToString();
  EXPECT_TRUE(cl->mount.read_only);
  EXPECT_EQ(cl->mount.cache_mb, 64u);
  EXPECT_EQ(cl->mount.commit_interval_ms, 250u);
  EXPECT_EQ(cl->start_writeback_mb, 8u);
  EXPECT_TRUE(Has(*cl, "ro"));
  EXPECT_FALSE(Has(*cl, "cache_mb=64"));
  cl = Parse({"-o", "start_writeback_mb=0", "img", "/mnt"});
  ASSERT_TRUE(cl.ok()) << cl.status().ToString();
  EXPECT_EQ(cl->start_writeback_mb, 0u);
  EXPECT_TRUE(cl->fuse_options.empty());
  EXPECT_EQ(cl->readahead_kb, 4096u);
  EXPECT_FALSE(cl->readahead_given);
  cl = Parse({"-o", "readahead_kb=512", "img", "/mnt"});
  ASSERT_TRUE(cl.ok()) << cl.status().ToString();
  EXPECT_EQ(cl->readahead_kb, 512u);
  EXPECT_TRUE(cl->readahead_given);
  EXPECT_TRUE(cl->fuse_options.empty());
}

TEST(FuseOptions, DefaultPermissionsTurnsLibraryChecksOff) {
  auto cl = Parse({"img", "/mnt", "-o", "default_permissions,allow_other,nosuid,fsname=a,b"});
  ASSERT_FALSE(cl.ok());  // "b" is not an option: commas separate options
  cl = Parse({"img", "/mnt", "-o", "default_permissions,allow_other,nosuid,fsname=a"});
  ASSERT_TRUE(cl.ok()) << cl.status().ToString();
  EXPECT_TRUE(cl->default_permissions);
  EXPECT_FALSE(cl->mount.check_permissions);
  EXPECT_TRUE(Has(*cl, "default_permissions"));
  EXPECT_TRUE(Has(*cl, "allow_other"));
  EXPECT_TRUE(Has(*cl, "nosuid"));
  EXPECT_TRUE(Has(*cl, "fsname=a"));
}

TEST(FuseOptions, FstabWordsAreIgnored) {
  auto cl =
      Parse({"img", "/mnt", "-o", "defaults,rw,nofail,_netdev,x-systemd.automount,noauto,user"});
  ASSERT_TRUE(cl.ok()) << cl.status().ToString();
  EXPECT_EQ(cl->fuse_options, std::vector<std::string>{"rw"});
}

TEST(FuseOptions, Errors) {
  EXPECT_EQ(Parse({"img"}).status().err(), EINVAL);
  EXPECT_EQ(Parse({"img", "/mnt", "extra"}).status().err(), EINVAL);
  EXPECT_EQ(Parse({"img", "/mnt", "-o", "bogus"}).status().err(), EINVAL);
  EXPECT_EQ(Parse({"img", "/mnt", "-o", "cache_mb=x"}).status().err(), EINVAL);
  EXPECT_EQ(Parse({"img", "/mnt", "-o", "cache_mb=0"}).status().err(), EINVAL);
  EXPECT_EQ(Parse({"img", "/mnt", "-o", "commit_ms=-1"}).status().err(), EINVAL);
  EXPECT_EQ(Parse({"img", "/mnt", "-o", "start_writeback_mb=2000000"}).status().err(), EINVAL);
  EXPECT_EQ(Parse({"img", "/mnt", "-o", "readahead_kb=65537"}).status().err(), EINVAL);
  EXPECT_EQ(Parse({"img", "/mnt", "-o", "readahead_kb=4k"}).status().err(), EINVAL);
  EXPECT_EQ(Parse({"img", "/mnt", "-o"}).status().err(), EINVAL);
  EXPECT_EQ(Parse({"img", "/mnt", "-x"}).status().err(), EINVAL);
  EXPECT_TRUE(Parse({"--help"}).ok());
  EXPECT_TRUE(Parse({"-V"}).ok());
}

// The INIT reply gains what libfuse 3.14 leaves out, only where the kernel
// offered it.
TEST(FuseInit, AmendsOnlyOfferedFlags) {
  const uint32_t reply = FUSE_ASYNC_READ | FUSE_BIG_WRITES;
  EXPECT_EQ(AmendInitFlags(0, reply), reply);
  EXPECT_EQ(AmendInitFlags(FUSE_PARALLEL_DIROPS | FUSE_POSIX_ACL, reply),
            reply | FUSE_PARALLEL_DIROPS);
  EXPECT_EQ(AmendInitFlags(0xffffffffu, reply),
            reply | FUSE_PARALLEL_DIROPS | FUSE_HANDLE_KILLPRIV_V2);
}

}  // namespace
}  // namespace vexfs::fusefs
