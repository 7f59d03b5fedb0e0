#include "core/xattr.h"

#include <sys/stat.h>
#include <sys/xattr.h>

#include <algorithm>

namespace vexfs::core {
namespace {

struct Prefix {
  uint8_t index;
  std::string_view text;
};
constexpr Prefix kPrefixes[] = {
    {VEXFS_XATTR_INDEX_USER, "user."},
    {VEXFS_XATTR_INDEX_TRUSTED, "trusted."},
    {VEXFS_XATTR_INDEX_SECURITY, "security."},
    {VEXFS_XATTR_INDEX_SYSTEM, "system."},
};

size_t EntrySize(const XattrItem& it, bool inline_value) {
  size_t n = sizeof(vexfs_xattr_entry) + (it.ea_ino ? 8 : 0) + it.name.size();
  if (inline_value) n += it.value.size();
  return (n + 3) & ~size_t{3};
}

// Decodes packed entries from [p, p + len). `count` < 0: until a zero
// name length or the end (inline area).
Status DecodeEntries(const uint8_t* p, size_t len, long count, std::vector<XattrItem>* out) {
  size_t off = 0;
  for (long i = 0; count < 0 || i < count; i++) {
    if (off + sizeof(vexfs_xattr_entry) > len) {
      if (count < 0) break;
      return Status::Corruption("xattr entry overflows its area");
    }
    vexfs_xattr_entry e;
    std::memcpy(&e, p + off, sizeof(e));
    if (e.xe_name_len == 0) {
      if (count < 0) break;
      return Status::Corruption("xattr entry with an empty name");
    }
    XattrItem it;
    it.index = e.xe_name_index;
    if (it.index < VEXFS_XATTR_INDEX_USER || it.index > VEXFS_XATTR_INDEX_SYSTEM) {
      return Status::Corruption("xattr entry with a bad name index");
    }
    it.value_len = Le32(e.xe_value_len);
    if (it.value_len > VEXFS_XATTR_VALUE_MAX) return Status::Corruption("xattr value too large");
    size_t q = off + sizeof(e);
    if (e.xe_flags & VEXFS_XATTR_FL_EA_INODE) {
      if (q + 8 > len) return Status::Corruption("xattr entry overflows its area");
      uint64_t v;
      std::memcpy(&v, p + q, 8);
      it.ea_ino = le64toh(v);
      if (it.ea_ino == 0) return Status::Corruption("xattr entry with a zero EA inode");
      q += 8;
    }
    if (q + e.xe_name_len > len) return Status::Corruption("xattr name overflows its area");
    it.name.assign(reinterpret_cast<const char*>(p + q), e.xe_name_len);
    q += e.xe_name_len;
    if (!it.ea_ino) {
      if (q + it.value_len > len) return Status::Corruption("xattr value overflows its area");
      it.value.assign(p + q, p + q + it.value_len);
      q += it.value_len;
    }
    off = (q + 3) & ~size_t{3};
    out->push_back(std::move(it));
  }
  return Status::Ok();
}

size_t EncodeEntry(const XattrItem& it, uint8_t* p) {
  vexfs_xattr_entry e{};
  e.xe_name_index = it.index;
  e.xe_name_len = static_cast<uint8_t>(it.name.size());
  e.xe_flags = it.ea_ino ? VEXFS_XATTR_FL_EA_INODE : 0;
  e.xe_value_len = ToLe32(it.value_len);
  std::memcpy(p, &e, sizeof(e));
  size_t q = sizeof(e);
  if (it.ea_ino) {
    uint64_t v = htole64(it.ea_ino);
    std::memcpy(p + q, &v, 8);
    q += 8;
  }
  std::memcpy(p + q, it.name.data(), it.name.size());
  q += it.name.size();
  if (!it.ea_ino && !it.value.empty()) {
    std::memcpy(p + q, it.value.data(), it.value.size());
    q += it.value.size();
  }
  return (q + 3) & ~size_t{3};
}

}  // namespace

Status ParseXattrName(std::string_view full, uint8_t* index, std::string* suffix) {
  for (const Prefix& p : kPrefixes) {
    if (full.substr(0, p.text.size()) == p.text) {
      std::string_view rest = full.substr(p.text.size());
      if (rest.empty()) return Status::InvalidArgument("empty attribute name");
      if (rest.size() > VEXFS_XATTR_NAME_MAX) return Status::Error(ERANGE, "attribute name too long");
      *index = p.index;
      *suffix = std::string(rest);
      return Status::Ok();
    }
  }
  return Status::Error(EOPNOTSUPP, "unsupported attribute namespace");
}

std::string XattrFullName(uint8_t index, const std::string& suffix) {
  for (const Prefix& p : kPrefixes) {
    if (p.index == index) return std::string(p.text) + suffix;
  }
  return suffix;
}

Status XattrStore::Load(std::vector<XattrItem>* items) {
  items->clear();
  VEXFS_RETURN_IF_ERROR(DecodeEntries(r_.raw->i_xattr, VEXFS_XATTR_INLINE, -1, items));
  const uint64_t blk = Le64(r_.raw->i_xattr_block);
  if (blk != 0) {
    if (blk < fs_->geo_.data_start || blk >= fs_->geo_.block_count - 1) {
      return Status::Corruption("xattr block pointer out of range");
    }
    bool fresh = false;
    VEXFS_ASSIGN_OR_RETURN(Buffer * b, fs_->cache_->Get(blk, &fresh));
    if (fresh) {
      if (Status s = VerifyBlock(b->data, VEXFS_XATTR_MAGIC, blk); !s.ok()) {
        fs_->cache_->Forget(blk);
        return s;
      }
    }
    const auto* xb = reinterpret_cast<const vexfs_xattr_block*>(b->data);
    if (Le64(xb->xb_hdr.bh_owner) != r_.ino || Le32(xb->xb_used) > VEXFS_XATTR_BLOCK_SPACE) {
      return Status::Corruption("xattr block: wrong owner or size");
    }
    VEXFS_RETURN_IF_ERROR(DecodeEntries(xb->xb_space, Le32(xb->xb_used), Le32(xb->xb_count), items));
  }
  return Status::Ok();
}

Result<std::vector<uint8_t>> XattrStore::ValueOf(const XattrItem& item) {
  if (!item.ea_ino) return item.value;
  VEXFS_ASSIGN_OR_RETURN(InodeRef ea, fs_->GetInode(item.ea_ino));
  if (!(Le32(ea.raw->i_flags) & VEXFS_INODE_FL_EA) || Le64(ea.raw->i_size) != item.value_len) {
    return Status::Corruption("EA inode does not match its xattr entry");
  }
  std::vector<uint8_t> v(item.value_len);
  VEXFS_ASSIGN_OR_RETURN(size_t n, fs_->ReadData(ea, 0, v));
  if (n != v.size()) return Status::Corruption("short EA inode");
  return v;
}

Result<uint64_t> XattrStore::CreateEaInode(const std::vector<uint8_t>& value) {
  VEXFS_ASSIGN_OR_RETURN(InodeRef ea, fs_->AllocInode(r_.ino));
  ea.raw->i_mode = ToLe16(S_IFREG | 0600);
  ea.raw->i_links = ToLe32(1);
  ea.raw->i_flags = ToLe32(VEXFS_INODE_FL_EA);
  ea.raw->i_parent = ToLe64(r_.ino);
  ExtentMap::InitEmpty(ea.raw);
  fs_->SetTimes(ea, true, true, true);
  if (!value.empty()) VEXFS_RETURN_IF_ERROR(fs_->WriteChunk(ea, 0, value));
  return ea.ino;
}

Status XattrStore::FreeEaInode(uint64_t ino) {
  VEXFS_ASSIGN_OR_RETURN(InodeRef ea, fs_->GetInode(ino));
  if (!(Le32(ea.raw->i_flags) & VEXFS_INODE_FL_EA)) return Status::Corruption("xattr points at a non-EA inode");
  fs_->Dirty(ea);
  bool done = false;
  VEXFS_RETURN_IF_ERROR(fs_->Extents(ea).Remove(0, VEXFS_MAX_FILE_BLOCKS + 1, SIZE_MAX, &done));
  std::memset(ea.raw, 0, sizeof(*ea.raw));
  return fs_->inodes_->Free(ino - 1, 1);
}

Status XattrStore::Store(std::vector<XattrItem>& items) {
  fs_->Dirty(r_);
  // Inline area first (small entries), then the block.
  std::vector<const XattrItem*> inl, blk;
  size_t inl_used = 0, blk_used = 0;
  std::vector<const XattrItem*> order;
  for (const auto& it : items) order.push_back(&it);
  std::stable_sort(order.begin(), order.end(), [](const XattrItem* a, const XattrItem* b) {
    return EntrySize(*a, !a->ea_ino) < EntrySize(*b, !b->ea_ino);
  });
  for (const XattrItem* it : order) {
    const size_t sz = EntrySize(*it, !it->ea_ino);
    if (inl_used + sz <= VEXFS_XATTR_INLINE) {
      inl.push_back(it);
      inl_used += sz;
    } else if (blk_used + sz <= VEXFS_XATTR_BLOCK_SPACE) {
      blk.push_back(it);
      blk_used += sz;
    } else {
      return Status::NoSpace("no room left for extended attributes of this inode");
    }
  }
  std::memset(r_.raw->i_xattr, 0, VEXFS_XATTR_INLINE);
  size_t off = 0;
  for (const XattrItem* it : inl) off += EncodeEntry(*it, r_.raw->i_xattr + off);
  uint64_t bno = Le64(r_.raw->i_xattr_block);
  if (blk.empty()) {
    if (bno != 0) {
      VEXFS_RETURN_IF_ERROR(fs_->blocks_->Free(bno, 1));
      r_.raw->i_xattr_block = 0;
      r_.raw->i_blocks = ToLe64(Le64(r_.raw->i_blocks) - 1);
    }
    return Status::Ok();
  }
  Buffer* b;
  if (bno == 0) {
    VEXFS_ASSIGN_OR_RETURN(Extent e, fs_->blocks_->Alloc(fs_->geo_.data_start, 1));
    bno = e.start;
    b = fs_->cache_->GetNew(bno, SealKind::kBlockHeader);
    r_.raw->i_xattr_block = ToLe64(bno);
    r_.raw->i_blocks = ToLe64(Le64(r_.raw->i_blocks) + 1);
  } else {
    VEXFS_ASSIGN_OR_RETURN(b, fs_->cache_->Get(bno));
    fs_->cache_->MarkDirty(b, SealKind::kBlockHeader);
  }
  InitBlockHeader(b->data, VEXFS_XATTR_MAGIC, bno, r_.ino);
  auto* xb = reinterpret_cast<vexfs_xattr_block*>(b->data);
  off = 0;
  for (const XattrItem* it : blk) off += EncodeEntry(*it, xb->xb_space + off);
  xb->xb_count = ToLe32(static_cast<uint32_t>(blk.size()));
  xb->xb_used = ToLe32(static_cast<uint32_t>(off));
  return Status::Ok();
}

Status XattrStore::Set(uint8_t index, const std::string& name, const std::vector<uint8_t>* value,
                       int flags) {
  std::vector<XattrItem> items;
  VEXFS_RETURN_IF_ERROR(Load(&items));
  auto it = std::find_if(items.begin(), items.end(),
                         [&](const XattrItem& x) { return x.index == index && x.name == name; });
  const bool exists = it != items.end();
  if (value == nullptr) {
    if (!exists) return Status::Error(ENODATA, "no such attribute");
    if (it->ea_ino) VEXFS_RETURN_IF_ERROR(FreeEaInode(it->ea_ino));
    items.erase(it);
    return Store(items);
  }
  if ((flags & XATTR_CREATE) && exists) return Status::Error(EEXIST, "attribute exists");
  if ((flags & XATTR_REPLACE) && !exists) return Status::Error(ENODATA, "no such attribute");
  if (value->size() > VEXFS_XATTR_VALUE_MAX) return Status::Error(E2BIG, "attribute value too large");
  XattrItem nv;
  nv.index = index;
  nv.name = name;
  nv.value_len = static_cast<uint32_t>(value->size());
  if (value->size() > VEXFS_XATTR_BLOCK_VALUE_MAX) {
    VEXFS_ASSIGN_OR_RETURN(nv.ea_ino, CreateEaInode(*value));
  } else {
    nv.value = *value;
  }
  if (exists) {
    if (it->ea_ino) VEXFS_RETURN_IF_ERROR(FreeEaInode(it->ea_ino));
    *it = std::move(nv);
  } else {
    items.push_back(std::move(nv));
  }
  return Store(items);
}

Status XattrStore::DropAll() {
  std::vector<XattrItem> items;
  VEXFS_RETURN_IF_ERROR(Load(&items));
  for (const auto& it : items) {
    if (it.ea_ino) VEXFS_RETURN_IF_ERROR(FreeEaInode(it.ea_ino));
  }
  items.clear();
  return Store(items);
}

}  // namespace vexfs::core
