// vexctl info: superblock, geometry, usage, features, state, journal.
#include <fmt/core.h>

#include <bit>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/journal.h"
#include "core/layout.h"
#include "vexctl.h"

namespace vexctl {
namespace {

using vexfs::core::Le16;
using vexfs::core::Le32;
using vexfs::core::Le64;

std::vector<std::string> FeatureNames(uint32_t compat, uint32_t incompat, uint32_t ro) {
  std::vector<std::string> out;
  auto add = [&](uint32_t word, uint32_t bit, const char* name) {
    if (word & bit) out.push_back(name);
  };
  add(compat, VEXFS_FEATURE_COMPAT_DIR_INDEX_SIPHASH, "dir_index_siphash");
  add(incompat, VEXFS_FEATURE_INCOMPAT_EXTENTS, "extents");
  add(incompat, VEXFS_FEATURE_INCOMPAT_JOURNAL, "journal");
  add(incompat, VEXFS_FEATURE_INCOMPAT_EA_INODE, "ea_inode");
  add(incompat, VEXFS_FEATURE_INCOMPAT_VECTORS, "vectors");
  add(ro, VEXFS_FEATURE_RO_COMPAT_METADATA_CSUM, "metadata_csum");
  const uint32_t kc = compat & ~VEXFS_FEATURE_COMPAT_DIR_INDEX_SIPHASH;
  const uint32_t ki = incompat & ~(VEXFS_FEATURE_INCOMPAT_SUPP | VEXFS_FEATURE_INCOMPAT_VECTORS);
  const uint32_t kr = ro & ~VEXFS_FEATURE_RO_COMPAT_METADATA_CSUM;
  if (kc) out.push_back(fmt::format("compat_unknown_{:#x}", kc));
  if (ki) out.push_back(fmt::format("incompat_unknown_{:#x}", ki));
  if (kr) out.push_back(fmt::format("ro_compat_unknown_{:#x}", kr));
  return out;
}

std::string Hex(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; i++) s += fmt::format("{:02x}", p[i]);
  return s;
}

std::string Uuid(const uint8_t* u) {
  const std::string h = Hex(u, 16);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

// Counts set bits of a bitmap region for items [0, items). -1 when a
// bitmap block does not verify.
int64_t CountBits(vexfs::offline::VolumeReader& r, uint64_t start, uint64_t nblocks,
                  uint64_t items) {
  std::vector<uint8_t> buf(VEXFS_BLOCK_SIZE);
  int64_t n = 0;
  for (uint64_t b = 0; b < nblocks; b++) {
    if (!r.ReadBlock(start + b, buf.data()).ok()) return -1;
    if (!vexfs::core::VerifyBlock(buf.data(), VEXFS_BITMAP_MAGIC, start + b).ok()) return -1;
    const uint64_t first = b * VEXFS_BITMAP_BITS;
    const uint64_t count = std::min<uint64_t>(VEXFS_BITMAP_BITS, items - first);
    const uint8_t* bits = buf.data() + VEXFS_BITMAP_HDR;
    for (uint64_t i = 0; i < count / 8; i++) n += std::popcount(bits[i]);
    for (uint64_t i = count / 8 * 8; i < count; i++) n += (bits[i / 8] >> (i % 8)) & 1;
  }
  return n;
}

int RunInfo(const std::string& target, bool json) {
  Volume v;
  if (!OpenVolume(target, &v)) return 1;
  const vexfs_super_block& sb = v.reader->super();
  const vexfs::core::Geometry& g = v.reader->geometry();
  const int64_t used_blocks =
      CountBits(*v.reader, g.bbitmap_start, g.bbitmap_blocks, g.block_count);
  const int64_t used_inodes =
      CountBits(*v.reader, g.ibitmap_start, g.ibitmap_blocks, g.inode_count);
  vexfs::core::Journal j(v.dev.get(), g.journal_start, g.journal_blocks, sb.s_uuid, g.block_count);
  auto scan = j.Scan();
  const uint32_t state = Le32(sb.s_state);
  std::string state_s = (state & VEXFS_STATE_CLEAN) ? "clean" : "not clean";
  if (state & VEXFS_STATE_ERRORS) state_s += ", errors";
  char label[65] = {};
  std::memcpy(label, sb.s_label, 64);
  std::vector<offline::Issue> cat_issues;
  const auto colls = offline::ListCollections(*v.reader, /*count_live=*/false, &cat_issues);
  const auto features = FeatureNames(Le32(sb.s_feature_compat), Le32(sb.s_feature_incompat),
                                     Le32(sb.s_feature_ro_compat));

  if (json) {
    nlohmann::json o;
    o["version"] = fmt::format("{}.{}", Le16(sb.s_version_major), Le16(sb.s_version_minor));
    o["uuid"] = Uuid(sb.s_uuid);
    o["label"] = std::string(label);
    o["block_size"] = VEXFS_BLOCK_SIZE;
    o["block_count"] = g.block_count;
    o["inode_count"] = g.inode_count;
    o["free_blocks_hint"] = Le64(sb.s_free_blocks);
    o["free_inodes_hint"] = Le64(sb.s_free_inodes);
    if (used_blocks >= 0) o["used_blocks"] = used_blocks;
    if (used_inodes >= 0) o["used_inodes"] = used_inodes;
    o["state"] = state_s;
    o["state_raw"] = state;
    o["features"] = features;
    o["feature_compat"] = Le32(sb.s_feature_compat);
    o["feature_incompat"] = Le32(sb.s_feature_incompat);
    o["feature_ro_compat"] = Le32(sb.s_feature_ro_compat);
    o["regions"] = {
        {"journal", {{"start", g.journal_start}, {"blocks", g.journal_blocks}}},
        {"inode_bitmap", {{"start", g.ibitmap_start}, {"blocks", g.ibitmap_blocks}}},
        {"block_bitmap", {{"start", g.bbitmap_start}, {"blocks", g.bbitmap_blocks}}},
        {"inode_table", {{"start", g.itable_start}, {"blocks", g.itable_blocks}}},
        {"data", {{"start", g.data_start}, {"blocks", g.block_count - g.data_start}}},
    };
    o["root_ino"] = Le64(sb.s_root_ino);
    o["orphan_head"] = Le64(sb.s_orphan_head);
    o["mkfs_time"] = Le64(sb.s_mkfs_time);
    o["mount_time"] = Le64(sb.s_mount_time);
    o["write_time"] = Le64(sb.s_write_time);
    o["mount_count"] = Le32(sb.s_mount_count);
    o["hash_seed"] = Hex(sb.s_hash_seed, 16);
    o["vector_root"] = Le64(sb.s_vector_root);
    o["collections"] = nlohmann::json::array();
    for (const auto& c : colls) {
      nlohmann::json e = {{"dir", c.dir}, {"segment", c.segment}, {"valid", c.config_ok}};
      if (c.config_ok) {
        const auto& k = c.config;
        e["dim"] = Le32(k.vc_dim);
        e["metric"] = offline::MetricName(k.vc_metric);
        e["element_type"] = offline::ElementTypeName(k.vc_element_type);
        e["index_kind"] = offline::IndexKindName(k.vc_index_kind);
        e["params"] = {Le16(k.vc_param[0]), Le16(k.vc_param[1]), Le16(k.vc_param[2]),
                       Le16(k.vc_param[3])};
        e["slots"] = c.slots;
        e["index"] = {{"ino", Le64(k.vc_index_ino)},
                      {"bytes", Le64(k.vc_index_bytes)},
                      {"valid", Le32(k.vc_index_state) == VEXFS_INDEX_STATE_VALID}};
      }
      o["collections"].push_back(e);
    }
    if (scan.ok()) {
      o["journal"] = {{"start_sequence", scan->start_sequence},
                      {"next_sequence", scan->next_sequence},
                      {"valid_transactions", scan->txns.size()},
                      {"end_block", scan->end_block},
                      {"needs_recovery", !scan->txns.empty()}};
    } else {
      o["journal"] = {{"error", scan.status().message()}};
    }
    fmt::print("{}\n", o.dump(2));
    return 0;
  }
  fmt::print("Volume:            {}\n", target);
  fmt::print("Format version:    {}.{}\n", Le16(sb.s_version_major), Le16(sb.s_version_minor));
  fmt::print("UUID:              {}\n", Uuid(sb.s_uuid));
  fmt::print("Label:             {}\n", label);
  fmt::print("State:             {}\n", state_s);
  std::string feat;
  for (const auto& f : features) feat += (feat.empty() ? "" : " ") + f;
  fmt::print("Features:          {}\n", feat);
  fmt::print("Block size:        {}\n", VEXFS_BLOCK_SIZE);
  fmt::print("Blocks:            {} ({} MiB)\n", g.block_count,
             g.block_count * VEXFS_BLOCK_SIZE >> 20);
  fmt::print("Inodes:            {}\n", g.inode_count);
  if (used_blocks >= 0) fmt::print("Used blocks:       {}\n", used_blocks);
  if (used_inodes >= 0) fmt::print("Used inodes:       {}\n", used_inodes);
  fmt::print("Free hint:         {} blocks, {} inodes\n", Le64(sb.s_free_blocks),
             Le64(sb.s_free_inodes));
  fmt::print("Journal:           blocks {}..{} ({})\n", g.journal_start,
             g.journal_start + g.journal_blocks - 1, g.journal_blocks);
  fmt::print("Inode bitmap:      blocks {}..{}\n", g.ibitmap_start,
             g.ibitmap_start + g.ibitmap_blocks - 1);
  fmt::print("Block bitmap:      blocks {}..{}\n", g.bbitmap_start,
             g.bbitmap_start + g.bbitmap_blocks - 1);
  fmt::print("Inode table:       blocks {}..{}\n", g.itable_start,
             g.itable_start + g.itable_blocks - 1);
  fmt::print("Data area:         blocks {}..{} (backup superblock in {})\n", g.data_start,
             g.block_count - 2, g.block_count - 1);
  fmt::print("Root inode:        {}\n", Le64(sb.s_root_ino));
  fmt::print("Orphan list head:  {}\n", Le64(sb.s_orphan_head));
  fmt::print("Collections:       {}\n", colls.size());
  for (const auto& c : colls) {
    if (c.config_ok) {
      fmt::print("  dir {:<8} segment {:<8} {} slot(s); {}\n", c.dir, c.segment, c.slots,
                 offline::DescribeCollection(c.config));
    } else {
      fmt::print("  segment {}: {}\n", c.segment,
                 c.issues.empty() ? std::string("unreadable") : c.issues[0].message);
    }
  }
  for (const auto& i : cat_issues) fmt::print("  ! {}: {}\n", i.code, i.message);
  fmt::print("Mount count:       {}\n", Le32(sb.s_mount_count));
  fmt::print("Times:             mkfs {} mount {} write {}\n", Le64(sb.s_mkfs_time),
             Le64(sb.s_mount_time), Le64(sb.s_write_time));
  if (scan.ok()) {
    fmt::print("Journal sequence:  {} (next {})\n", scan->start_sequence, scan->next_sequence);
    fmt::print("Journal txns:      {} valid{}\n", scan->txns.size(),
               scan->txns.empty() ? "" : " (needs recovery)");
  } else {
    fmt::print("Journal:           {}\n", scan.status().message());
  }
  return 0;
}

}  // namespace

void AddInfoCommands(CLI::App& app, std::function<int()>* run) {
  auto* cmd = app.add_subcommand("info", "Show the superblock, geometry, usage and journal state");
  auto target = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("TARGET", *target, "Image file or block device")->required();
  cmd->add_flag("--json", *json, "Machine-readable output");
  cmd->callback([=] { *run = [=] { return RunInfo(*target, *json); }; });
}

}  // namespace vexctl
