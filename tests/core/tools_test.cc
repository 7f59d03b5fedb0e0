// End-to-end tests of the fsck.vexfs and vexctl binaries: exit codes of
// fsck(8), messages for unusable targets, vexctl output (text and JSON).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "fs_image_util.h"
#include "fsck_test_util.h"

namespace vexfs::testing {
namespace {

struct ExecResult {
  int rc;
  std::string out;
};

ExecResult Exec(const std::string& cmd) {
  ExecResult r{-1, ""};
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

class ToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vexfs_tools_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    image_ = dir_ + "/vol.img";
    MemoryDevice dev(4096);
    ASSERT_TRUE(BuildFsImage(&dev));
    Save(dev.image());
  }
  void TearDown() override { (void)Exec("rm -rf '" + dir_ + "'"); }
  void Save(const std::vector<uint8_t>& img) {
    std::ofstream(image_, std::ios::binary)
        .write(reinterpret_cast<const char*>(img.data()), img.size());
  }
  std::vector<uint8_t> Load() {
    std::ifstream f(image_, std::ios::binary);
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), {});
  }
  std::string Fsck(const std::string& args) {
    return std::string(VEXFS_BIN_DIR) + "/fsck.vexfs " + args;
  }
  std::string Ctl(const std::string& args) {
    return std::string(VEXFS_BIN_DIR) + "/vexctl " + args;
  }

  std::string dir_, image_;
};

TEST_F(ToolsTest, FsckExitCodes) {
  EXPECT_EQ(Exec(Fsck("-f -n " + image_)).rc, 0);
  EXPECT_EQ(Exec(Fsck(image_)).rc, 0);  // clean: skipped without -f
  EXPECT_EQ(Exec(Fsck("-n -y " + image_)).rc, 16);
  EXPECT_EQ(Exec(Fsck("")).rc, 16);
  ExecResult missing = Exec(Fsck(dir_ + "/missing.img"));
  EXPECT_EQ(missing.rc, 8);
  EXPECT_NE(missing.out.find("No such file"), std::string::npos) << missing.out;
  // Leak one block: 4 with -n, 1 with -y, then clean.
  auto img = Load();
  MemoryDevice dev(img);
  vexfs_super_block sb;
  std::memcpy(&sb, img.data(), sizeof(sb));
  const Geometry g = GeometryOf(sb);
  uint8_t* bm = dev.image().data() + g.bbitmap_start * VEXFS_BLOCK_SIZE;
  bm[VEXFS_BITMAP_HDR + (g.block_count - 3) / 8] |= 1u << ((g.block_count - 3) % 8);
  SealBlock(bm);
  Save(dev.image());
  ExecResult n = Exec(Fsck("-f -n " + image_));
  EXPECT_EQ(n.rc, 4) << n.out;
  EXPECT_NE(n.out.find("block.leak"), std::string::npos) << n.out;
  ExecResult y = Exec(Fsck("-f -y " + image_));
  EXPECT_EQ(y.rc, 1) << y.out;
  EXPECT_NE(y.out.find("FIXED block.leak"), std::string::npos) << y.out;
  EXPECT_EQ(Exec(Fsck("-f -n " + image_)).rc, 0);
}

TEST_F(ToolsTest, FsckGarbageAndTruncatedImages) {
  std::vector<uint8_t> junk(64 * VEXFS_BLOCK_SIZE);
  for (size_t i = 0; i < junk.size(); i++) junk[i] = static_cast<uint8_t>(i * 7 + i / 4096);
  Save(junk);
  ExecResult r = Exec(Fsck("-f -n " + image_));
  EXPECT_EQ(r.rc, 8);
  EXPECT_NE(r.out.find("no valid superblock"), std::string::npos) << r.out;
  EXPECT_EQ(Exec(Ctl("info " + image_)).rc, 1);
  Save(std::vector<uint8_t>(100, 0));  // shorter than one block
  EXPECT_EQ(Exec(Fsck("-f -n " + image_)).rc, 8);
  EXPECT_EQ(Exec(Ctl("dump " + image_)).rc, 1);
}

TEST_F(ToolsTest, VexctlInfo) {
  ExecResult t = Exec(Ctl("info " + image_));
  ASSERT_EQ(t.rc, 0) << t.out;
  EXPECT_NE(t.out.find("Journal txns:      0 valid"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("ea_inode"), std::string::npos) << t.out;
  ExecResult j = Exec(Ctl("info --json " + image_));
  ASSERT_EQ(j.rc, 0) << j.out;
  auto o = nlohmann::json::parse(j.out, nullptr, false);
  ASSERT_FALSE(o.is_discarded()) << j.out;
  EXPECT_EQ(o["block_count"], 4096);
  EXPECT_EQ(o["state"], "clean");
  EXPECT_EQ(o["journal"]["valid_transactions"], 0);
  EXPECT_GT(o["used_blocks"].get<int64_t>(), 100);
}

TEST_F(ToolsTest, VexctlDump) {
  ExecResult root = Exec(Ctl("dump " + image_));
  ASSERT_EQ(root.rc, 0) << root.out;
  EXPECT_NE(root.out.find("lost+found"), std::string::npos) << root.out;
  ExecResult f = Exec(Ctl("dump " + image_ + " /d1/d2/moved.bin"));
  ASSERT_EQ(f.rc, 0) << f.out;
  EXPECT_NE(f.out.find("user.large"), std::string::npos) << f.out;
  EXPECT_NE(f.out.find("ea inode"), std::string::npos) << f.out;
  ExecResult l = Exec(Ctl("dump " + image_ + " /d1/long"));
  ASSERT_EQ(l.rc, 0) << l.out;
  EXPECT_NE(l.out.find("target      pppp"), std::string::npos) << l.out;
  EXPECT_EQ(Exec(Ctl("dump " + image_ + " 1")).rc, 0);
  EXPECT_EQ(Exec(Ctl("dump " + image_ + " /no/such")).rc, 1);
  ExecResult jr = Exec(Ctl("dump --journal " + image_));
  ASSERT_EQ(jr.rc, 0) << jr.out;
  EXPECT_NE(jr.out.find("valid transaction"), std::string::npos) << jr.out;
}

std::string Mkfs(const std::string& args) { return std::string(VEXFS_BIN_DIR) + "/mkfs.vexfs " + args; }

TEST_F(ToolsTest, MkfsCreatesRefusesAndForces) {
  const std::string img = dir_ + "/new.img";
  auto r = Exec(Mkfs("-q -s 8M -L lbl '" + img + "'"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(Exec(Fsck("-f '" + img + "'")).rc, 0);
  r = Exec(Mkfs("-q '" + img + "'"));
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("use -f"), std::string::npos) << r.out;
  EXPECT_EQ(Exec(Mkfs("-q -f '" + img + "'")).rc, 0);
  EXPECT_EQ(Exec(Mkfs("-q -b 1024 -f '" + img + "'")).rc, 1);
  EXPECT_EQ(Exec(Mkfs("-q -s 12Q '" + dir_ + "/bad.img'")).rc, 1);
  EXPECT_EQ(Exec(Mkfs("-q '" + dir_ + "/missing.img'")).rc, 1);
  EXPECT_EQ(Exec(Mkfs("-q -s 100K '" + dir_ + "/tiny.img'")).rc, 1);
}

TEST_F(ToolsTest, VexctlSampleAndSearch) {
  const std::string img = dir_ + "/vec.img";
  ASSERT_EQ(Exec(Mkfs("-q -s 64M '" + img + "'")).rc, 0);
  auto r = Exec(Ctl("sample '" + img + "' --dir /docs --count 300 --dim 16"));
  ASSERT_EQ(r.rc, 0) << r.out;
  r = Exec(Ctl("search '" + img + "' /docs --like /docs/doc-000007.txt -k 5 --json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_array()) << r.out;
  ASSERT_EQ(j.size(), 5u);
  EXPECT_EQ(j[0]["path"], "/docs/doc-000007.txt");
  EXPECT_LT(j[0]["distance"].get<double>(), 1e-5);
  for (size_t i = 1; i < j.size(); i++) {
    EXPECT_GE(j[i]["distance"].get<double>(), j[i - 1]["distance"].get<double>());
  }
  // A vector put on a new file is found by an exact query.
  r = Exec(Ctl("put '" + img + "' /docs/doc-000001.txt --vector '[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]'"));
  ASSERT_EQ(r.rc, 0) << r.out;
  r = Exec(Ctl("search '" + img + "' / --vector '[1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]' -k 1 --metric l2"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("/docs/doc-000001.txt"), std::string::npos) << r.out;
  // Bad input: clear errors, non-zero exits, nothing changed.
  EXPECT_EQ(Exec(Ctl("search '" + img + "' /docs --vector '[1,2]'")).rc, 1);        // wrong dimension
  EXPECT_EQ(Exec(Ctl("search '" + img + "' /docs --vector '[1,\"x\"]'")).rc, 2);   // not a number
  EXPECT_EQ(Exec(Ctl("search '" + img + "' /docs --vector 'nan'")).rc, 2);          // not JSON
  EXPECT_EQ(Exec(Ctl("search '" + img + "' /docs --vector '[]'")).rc, 2);           // empty
  EXPECT_EQ(Exec(Ctl("search '" + img + "' /docs --like /docs/doc-000002.txt -k 0")).rc, 2);
  EXPECT_EQ(Exec(Ctl("search '" + img + "' /docs --like /docs/doc-000002.txt -k 10001")).rc, 2);
  EXPECT_EQ(Exec(Ctl("search '" + img + "' /docs --like /docs/doc-000002.txt --metric cheb")).rc, 2);
  EXPECT_EQ(Exec(Ctl("search '" + img + "' /nope --like /docs/doc-000002.txt")).rc, 1);
  EXPECT_EQ(Exec(Ctl("put '" + img + "' /docs/doc-000003.txt --vector '[1e999]'")).rc, 2);
  EXPECT_EQ(Exec(Ctl("put '" + img + "' /docs/missing --vector '[1]'")).rc, 1);
  EXPECT_EQ(Exec(Ctl("sample '" + img + "' --count 0")).rc, 2);
  EXPECT_EQ(Exec(Fsck("-f '" + img + "'")).rc, 0);
}

}  // namespace
}  // namespace vexfs::testing
