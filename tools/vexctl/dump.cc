// vexctl dump: one inode (fields, extents or directory entries, xattrs),
// or the journal's transactions.
#include <fmt/core.h>
#include <sys/stat.h>

#include <cctype>
#include <charconv>
#include <cstring>
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
namespace core = vexfs::core;

std::string Printable(const std::string& s, size_t max = 64) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; i++) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    out += std::isprint(c) ? std::string(1, static_cast<char>(c)) : fmt::format("\\x{:02x}", c);
  }
  if (s.size() > max) out += "...";
  return out;
}

void PrintIssues(const std::vector<offline::Issue>& issues) {
  for (const auto& i : issues) fmt::print("  ! {}: {}\n", i.code, i.message);
}

int DumpJournal(Volume& v) {
  const auto& sb = v.reader->super();
  const auto& g = v.reader->geometry();
  core::Journal j(v.dev.get(), g.journal_start, g.journal_blocks, sb.s_uuid, g.block_count);
  auto scan = j.Scan();
  if (!scan.ok()) {
    fmt::print(stderr, "vexctl: journal: {}\n", scan.status().message());
    return 1;
  }
  fmt::print(
      "journal: blocks {}..{}, start sequence {}, next sequence {}, {} valid transaction(s)\n",
      g.journal_start, g.journal_start + g.journal_blocks - 1, scan->start_sequence,
      scan->next_sequence, scan->txns.size());
  for (const auto& t : scan->txns) {
    fmt::print("txn {}: journal blocks {}..{} ({} blocks), {} target(s):", t.sequence,
               t.first_block, t.first_block + t.nblocks - 1, t.nblocks, t.targets.size());
    size_t shown = 0;
    for (uint64_t b : t.targets) {
      if (shown++ == 32) {
        fmt::print(" ...");
        break;
      }
      fmt::print(" {}", b);
    }
    fmt::print("\n");
  }
  return 0;
}

void PrintCollection(const offline::CollectionInfo& ci) {
  if (!ci.config_ok) {
    PrintIssues(ci.issues);
    return;
  }
  fmt::print("  collection  {}\n", offline::DescribeCollection(ci.config));
  fmt::print("  segment     {}: {} slot(s) of {} bytes", ci.segment, ci.slots,
             Le32(ci.config.vc_slot_size));
  fmt::print(", {} live vector(s)\n", ci.live);
  PrintIssues(ci.issues);
}

// What the vector layer (docs/format.md section 15) says about this inode.
void DumpVectorLayer(offline::VolumeReader& r, uint64_t ino, const vexfs_inode& in) {
  const uint32_t mode = Le16(in.i_mode), flags = Le32(in.i_flags);
  const uint64_t vec = Le64(in.i_vector);
  if (S_ISDIR(mode) && (flags & VEXFS_INODE_FL_COLLECTION)) {
    PrintCollection(offline::ReadCollection(r, vec, /*count_live=*/true));
    return;
  }
  if (flags & VEXFS_INODE_FL_VSEGMENT) {
    fmt::print("  segment of collection {}; next segment {}\n", Le64(in.i_parent), vec);
    PrintCollection(offline::ReadCollection(r, ino, /*count_live=*/true));
    return;
  }
  if (flags & VEXFS_INODE_FL_VINDEX) {
    fmt::print("  index blob of segment {}\n", Le64(in.i_parent));
    return;
  }
  if (!S_ISREG(mode) || vec == 0) return;
  const uint64_t dir = offline::FindCollection(r, ino);
  vexfs_inode d;
  if (dir == 0 || !r.ReadInode(dir, &d).ok()) {
    fmt::print("  ! vector slot {} but the file is in no collection\n", vec - 1);
    return;
  }
  const uint64_t seg = Le64(d.i_vector);
  const offline::CollectionInfo ci = offline::ReadCollection(r, seg, /*count_live=*/false);
  vexfs_inode s;
  if (!ci.config_ok || !r.ReadInode(seg, &s).ok()) {
    fmt::print("  vector slot {} of collection {} (unreadable)\n", vec - 1, dir);
    PrintIssues(ci.issues);
    return;
  }
  const uint32_t ss = Le32(ci.config.vc_slot_size), dim = Le32(ci.config.vc_dim);
  fmt::print("  vector slot {} of collection {} (segment {})", vec - 1, dir, seg);
  if (vec - 1 >= ci.slots) {
    fmt::print(": ! past the {} slots\n", ci.slots);
    return;
  }
  offline::ExtentMap m;
  offline::ReadExtents(r, seg, s, &m);
  offline::FileBytes fb(r, m.extents);
  std::vector<uint8_t> slot(ss);
  if (auto st = fb.Read((vec - 1) * ss, ss, slot.data()); !st.ok()) {
    fmt::print(": ! {}\n", st.message());
    return;
  }
  vexfs_vslot h;
  std::memcpy(&h, slot.data(), sizeof(h));
  const bool owner_ok = Le64(h.vs_owner) == ino && Le32(h.vs_generation) == Le32(in.i_generation);
  const bool crc_ok = offline::SlotCrc(slot.data(), dim) == Le32(h.vs_crc);
  fmt::print("{}{}\n", owner_ok ? "" : fmt::format(": ! slot names inode {} generation {}",
                                                     Le64(h.vs_owner), Le32(h.vs_generation)),
             crc_ok ? "" : ": ! checksum mismatch");
  fmt::print("  components  [");
  for (uint32_t i = 0; i < dim && i < 8; i++) {
    float f;
    std::memcpy(&f, slot.data() + sizeof(h) + 4 * i, 4);
    fmt::print("{}{:g}", i ? ", " : "", f);
  }
  fmt::print("{}]\n", dim > 8 ? ", ..." : "");
}

int DumpInode(Volume& v, const std::string& what) {
  offline::VolumeReader& r = *v.reader;
  uint64_t ino = 0;
  if (!what.empty() && what.find_first_not_of("0123456789") == std::string::npos) {
    const auto [end, ec] = std::from_chars(what.data(), what.data() + what.size(), ino);
    if (ec != std::errc() || end != what.data() + what.size()) {
      fmt::print(stderr, "vexctl: {}: not an inode number\n", what);
      return 1;
    }
  } else {
    auto res = offline::ResolvePath(r, what.empty() ? "/" : what);
    if (!res.ok()) {
      fmt::print(stderr, "vexctl: {}: {}\n", what, res.status().message());
      return 1;
    }
    ino = *res;
  }
  vexfs_inode in;
  if (auto s = r.ReadInode(ino, &in); !s.ok()) {
    fmt::print(stderr, "vexctl: inode {}: {}\n", ino, s.message());
    return 1;
  }
  if (offline::InodeIsZero(in)) {
    fmt::print("inode {}: free\n", ino);
    return 0;
  }
  const uint32_t mode = Le16(in.i_mode), flags = Le32(in.i_flags);
  fmt::print("inode {}{}\n", ino, core::InodeCrcOk(in) ? "" : "  (CHECKSUM MISMATCH)");
  fmt::print("  mode        {:06o} ({})\n", mode, offline::ModeTypeName(mode));
  fmt::print("  uid/gid     {}/{}\n", Le32(in.i_uid), Le32(in.i_gid));
  fmt::print("  links       {}\n", Le32(in.i_links));
  fmt::print("  size        {}\n", Le64(in.i_size));
  fmt::print("  blocks      {}\n", Le64(in.i_blocks));
  fmt::print("  atime       {}.{:09}\n", static_cast<int64_t>(Le64(in.i_atime)),
             Le32(in.i_atime_ns));
  fmt::print("  mtime       {}.{:09}\n", static_cast<int64_t>(Le64(in.i_mtime)),
             Le32(in.i_mtime_ns));
  fmt::print("  ctime       {}.{:09}\n", static_cast<int64_t>(Le64(in.i_ctime)),
             Le32(in.i_ctime_ns));
  fmt::print("  crtime      {}.{:09}\n", static_cast<int64_t>(Le64(in.i_crtime)),
             Le32(in.i_crtime_ns));
  std::string fl;
  if (flags & VEXFS_INODE_FL_EA) fl += " ea";
  if (flags & VEXFS_INODE_FL_INLINE_SYMLINK) fl += " inline_symlink";
  if (flags & VEXFS_INODE_FL_APPEND) fl += " append";
  if (flags & VEXFS_INODE_FL_IMMUTABLE) fl += " immutable";
  if (flags & VEXFS_INODE_FL_ORPHAN) fl += " orphan";
  if (flags & VEXFS_INODE_FL_COLLECTION) fl += " collection";
  if (flags & VEXFS_INODE_FL_VSEGMENT) fl += " vsegment";
  if (flags & VEXFS_INODE_FL_VINDEX) fl += " vindex";
  fmt::print("  flags       {:#x}{}\n", flags, fl);
  fmt::print("  generation  {}\n", Le32(in.i_generation));
  if (S_ISCHR(mode) || S_ISBLK(mode)) fmt::print("  rdev        {:#x}\n", Le32(in.i_rdev));
  fmt::print("  parent      {}\n", Le64(in.i_parent));
  fmt::print("  xattr block {}\n", Le64(in.i_xattr_block));
  fmt::print("  orphan next {}\n", Le64(in.i_orphan_next));
  fmt::print("  vector      {}\n", Le64(in.i_vector));
  DumpVectorLayer(r, ino, in);

  if (S_ISDIR(mode)) {
    offline::DirListing l;
    offline::ReadDir(r, ino, in, &l);
    fmt::print("  directory: {} entries recorded, {} found, {} node(s) recorded, {} found\n",
               l.dr_entries, l.entries.size(), l.tr_nodes, l.nodes.size());
    for (const auto& e : l.entries) {
      fmt::print("    {:>10}  type {:>2}  hash {:016x}  {}\n", e.ino, e.type, e.hash,
                 Printable(e.name, 255));
    }
    PrintIssues(l.issues);
  } else if (S_ISLNK(mode) && (flags & VEXFS_INODE_FL_INLINE_SYMLINK)) {
    const size_t n = std::min<uint64_t>(Le64(in.i_size), VEXFS_INODE_DATA);
    fmt::print(
        "  target      {}\n",
        Printable(std::string(reinterpret_cast<const char*>(in.i_data), n), VEXFS_INODE_DATA));
  } else if (S_ISREG(mode) || S_ISLNK(mode)) {
    offline::ExtentMap m;
    offline::ReadExtents(r, ino, in, &m);
    if (m.tree) {
      fmt::print("  extent tree: depth {}, {} node(s) recorded, {} found:", m.tr_depth, m.tr_nodes,
                 m.nodes.size());
      for (uint64_t n : m.nodes) fmt::print(" {}", n);
      fmt::print("\n");
    }
    fmt::print("  extents ({}, {} data blocks):\n", m.extents.size(), m.data_blocks());
    for (const auto& e : m.extents) {
      fmt::print("    logical {:>10}..{:<10} -> {:>10}..{:<10}{}\n", e.logical,
                 uint64_t{e.logical} + e.len - 1, e.start, e.start + e.len - 1,
                 e.unwritten ? " unwritten" : "");
    }
    PrintIssues(m.issues);
    if (S_ISLNK(mode)) {
      auto t = offline::ReadFileHead(r, ino, in, VEXFS_SYMLINK_MAX);
      if (t.ok()) fmt::print("  target      {}\n", Printable(*t, VEXFS_SYMLINK_MAX));
    }
  }
  offline::XattrList xl;
  offline::ReadXattrs(r, ino, in, &xl);
  if (!xl.entries.empty() || !xl.issues.empty()) {
    fmt::print("  xattrs ({}):\n", xl.entries.size());
    for (const auto& e : xl.entries) {
      std::string where = e.in_block ? "block" : "inline";
      if (e.flags & VEXFS_XATTR_FL_EA_INODE) where = fmt::format("ea inode {}", e.ea_ino);
      fmt::print("    {}{}  {} bytes  [{}]", offline::XattrPrefix(e.index), Printable(e.name, 255),
                 e.value_len, where);
      if (!(e.flags & VEXFS_XATTR_FL_EA_INODE)) {
        fmt::print("  \"{}\"", Printable(std::string(e.value.begin(), e.value.end()), 48));
      }
      fmt::print("\n");
    }
    PrintIssues(xl.issues);
  }
  return 0;
}

}  // namespace

void AddDumpCommands(CLI::App& app, std::function<int()>* run) {
  auto* cmd = app.add_subcommand("dump", "Dump one inode (by number or path) or the journal");
  auto target = std::make_shared<std::string>();
  auto what = std::make_shared<std::string>();
  auto journal = std::make_shared<bool>(false);
  cmd->add_option("TARGET", *target, "Image file or block device")->required();
  cmd->add_option("WHAT", *what, "Inode number or path from the root (default: /)");
  cmd->add_flag("--journal", *journal, "List the journal's valid transactions");
  cmd->callback([=] {
    *run = [=] {
      Volume v;
      if (!OpenVolume(*target, &v)) return 1;
      return *journal ? DumpJournal(v) : DumpInode(v, *what);
    };
  });
}

}  // namespace vexctl
