/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * VexFS on-disk format, version 1.
 *
 * This is the ONE definition of every on-disk structure, shared verbatim by
 * the userspace library, the tools and the Linux kernel module. Plain C11,
 * no dependencies beyond <linux/types.h>. docs/format.md is the prose spec
 * (byte diagrams, invariants, recovery rules); change both together.
 *
 * Conventions:
 *  - All multi-byte integers are little-endian (__le16/__le32/__le64).
 *  - Block numbers are 64-bit; block 0 holds the superblock.
 *  - Every metadata block begins with struct vexfs_block_header: a magic,
 *    a CRC-32C of the whole block computed with bh_crc = 0, its own block
 *    number (catches misdirected writes) and its owner inode (0 = the
 *    filesystem).
 *  - Inodes carry their own CRC-32C (i_crc, computed with i_crc = 0).
 *  - Reserved fields are written as zero and ignored on read.
 */
#ifndef VEXFS_UAPI_FORMAT_H
#define VEXFS_UAPI_FORMAT_H

#include <linux/types.h>

#ifdef __cplusplus
#define VEXFS_STATIC_ASSERT(e, m) static_assert(e, m)
#else
#define VEXFS_STATIC_ASSERT(e, m) _Static_assert(e, m)
#endif

/* ---- Geometry ----------------------------------------------------------- */

#define VEXFS_BLOCK_SIZE_LOG2 12
#define VEXFS_BLOCK_SIZE 4096u
#define VEXFS_INODE_SIZE 256u
#define VEXFS_INODES_PER_BLOCK (VEXFS_BLOCK_SIZE / VEXFS_INODE_SIZE)
#define VEXFS_NAME_MAX 255
#define VEXFS_SYMLINK_MAX 4095 /* PATH_MAX - 1 */
#define VEXFS_XATTR_NAME_MAX 255
#define VEXFS_XATTR_VALUE_MAX 65536u /* XATTR_SIZE_MAX */
/* Largest file: 2^32 - 1 blocks of 4 KiB, just under 16 TiB (logical block
 * numbers are 32-bit in extents): an extent ends at or before this block
 * count, and i_size of a regular file or symlink is at most this many
 * blocks' bytes. */
#define VEXFS_MAX_FILE_BLOCKS 0xFFFFFFFFull

/* ---- Magics ---------------------------------------------------------------- */

#define VEXFS_SUPER_MAGIC 0x53465856u      /* "VXFS" */
#define VEXFS_BITMAP_MAGIC 0x50414D42u     /* "BMAP" */
#define VEXFS_EXTENT_MAGIC 0x544E5845u     /* "EXNT" extent tree node */
#define VEXFS_DIR_MAGIC 0x52494458u        /* "XDIR" directory tree node */
#define VEXFS_XATTR_MAGIC 0x52545841u      /* "AXTR" xattr block */
#define VEXFS_JSB_MAGIC 0x534A5856u        /* "VXJS" journal superblock */
#define VEXFS_JDESC_MAGIC 0x444A5856u      /* "VXJD" journal descriptor */
#define VEXFS_JCOMMIT_MAGIC 0x434A5856u    /* "VXJC" journal commit */
#define VEXFS_EXTENT_HDR_MAGIC 0xF30Au     /* in-inode / in-node extent header */

#define VEXFS_VERSION_MAJOR 1
#define VEXFS_VERSION_MINOR 0

/* ---- Feature bits -------------------------------------------------------- */
/* compat: an old implementation may mount read-write ignoring these. */
#define VEXFS_FEATURE_COMPAT_DIR_INDEX_SIPHASH 0x0001u /* always set in v1 */
/* incompat: an implementation that does not know one must refuse to mount. */
#define VEXFS_FEATURE_INCOMPAT_EXTENTS 0x0001u      /* always set in v1 */
#define VEXFS_FEATURE_INCOMPAT_JOURNAL 0x0002u      /* always set in v1 */
#define VEXFS_FEATURE_INCOMPAT_EA_INODE 0x0004u     /* large xattr values in inodes */
#define VEXFS_FEATURE_INCOMPAT_VECTORS 0x0008u      /* vector segments/index blobs */
/* ro_compat: unknown bits allow a read-only mount only. */
#define VEXFS_FEATURE_RO_COMPAT_METADATA_CSUM 0x0001u /* always set in v1 */

#define VEXFS_FEATURE_COMPAT_SUPP VEXFS_FEATURE_COMPAT_DIR_INDEX_SIPHASH
#define VEXFS_FEATURE_INCOMPAT_SUPP                                      \
	(VEXFS_FEATURE_INCOMPAT_EXTENTS | VEXFS_FEATURE_INCOMPAT_JOURNAL | \
	 VEXFS_FEATURE_INCOMPAT_EA_INODE | VEXFS_FEATURE_INCOMPAT_VECTORS)
#define VEXFS_FEATURE_RO_COMPAT_SUPP VEXFS_FEATURE_RO_COMPAT_METADATA_CSUM

/* ---- Superblock (block 0, bytes 0..1023; a backup copy of block 0 in the
 * last block, written by mkfs and refreshed at every clean unmount) */

#define VEXFS_STATE_CLEAN 0x0001u  /* unmounted cleanly, journal empty */
#define VEXFS_STATE_ERRORS 0x0002u /* an error was detected; run fsck */

#define VEXFS_ROOT_INO 1ull
#define VEXFS_VECTOR_INO 2ull   /* reserved for the vector layer */
#define VEXFS_FIRST_INO 8ull    /* first inode for ordinary files */

struct vexfs_super_block {
	__le32 s_magic;             /* 0   VEXFS_SUPER_MAGIC */
	__le32 s_crc;               /* 4   crc32c of the 1024 bytes, s_crc = 0 */
	__le16 s_version_major;     /* 8   */
	__le16 s_version_minor;     /* 10  */
	__le32 s_block_size_log2;   /* 12  12 in v1 */
	__le32 s_feature_compat;    /* 16  */
	__le32 s_feature_incompat;  /* 20  */
	__le32 s_feature_ro_compat; /* 24  */
	__le32 s_state;             /* 28  VEXFS_STATE_* */
	__le64 s_block_count;       /* 32  blocks in the volume */
	__le64 s_inode_count;       /* 40  inode slots (inode numbers 1..count) */
	__le64 s_free_blocks;       /* 48  hint; exact after a clean unmount */
	__le64 s_free_inodes;       /* 56  hint; exact after a clean unmount */
	__le64 s_journal_start;     /* 64  first block of the journal region */
	__le64 s_journal_blocks;    /* 72  */
	__le64 s_ibitmap_start;     /* 80  inode bitmap region */
	__le64 s_ibitmap_blocks;    /* 88  */
	__le64 s_bbitmap_start;     /* 96  block bitmap region */
	__le64 s_bbitmap_blocks;    /* 104 */
	__le64 s_itable_start;      /* 112 inode table region */
	__le64 s_itable_blocks;     /* 120 */
	__le64 s_data_start;        /* 128 first block of the data area */
	__le64 s_root_ino;          /* 136 VEXFS_ROOT_INO */
	__le64 s_orphan_head;       /* 144 first inode of the orphan list (unlinked inodes to
	                               release, files to finish truncating), 0 = none */
	__le64 s_mkfs_time;         /* 152 seconds since the epoch */
	__le64 s_mount_time;        /* 160 */
	__le64 s_write_time;        /* 168 */
	__le32 s_mount_count;       /* 176 */
	__le32 s_reserved0;         /* 180 */
	__u8 s_uuid[16];            /* 184 */
	__u8 s_hash_seed[16];       /* 200 SipHash-2-4 key for directory names */
	char s_label[64];           /* 216 NUL-padded volume label */
	/* Vector layer (VEXFS_FEATURE_INCOMPAT_VECTORS). */
	__le64 s_vector_root;       /* 280 first segment inode of the collection
	                             *     catalogue (linked through i_vector), 0 = none */
	__le64 s_vector_reserved[7];/* 288 */
	__le64 s_reserved[84];      /* 344 */
};                                  /* 1016 */
VEXFS_STATIC_ASSERT(sizeof(struct vexfs_super_block) == 1016, "superblock size");
#define VEXFS_SUPER_SIZE 1024u /* on disk: the struct plus zero padding */

/* ---- Common metadata block header ---------------------------------------- */

struct vexfs_block_header {
	__le32 bh_magic;   /* 0  type magic */
	__le32 bh_crc;     /* 4  crc32c of the whole block with bh_crc = 0 */
	__le64 bh_blocknr; /* 8  this block's own number */
	__le64 bh_owner;   /* 16 owning inode, 0 for filesystem metadata */
};                         /* 24 */
VEXFS_STATIC_ASSERT(sizeof(struct vexfs_block_header) == 24, "block header size");

/* ---- Bitmaps --------------------------------------------------------------
 * Inode and block bitmaps are arrays of blocks, each a block header followed
 * by VEXFS_BITMAP_BITS bits (bit i of byte j = item j * 8 + i). Bitmap block
 * b of a region covers items [b * VEXFS_BITMAP_BITS, (b + 1) * ...). A set
 * bit means allocated. Bits past the last item (s_block_count blocks,
 * s_inode_count inodes) are set.
 * Inode bit n covers inode number n + 1.
 */
#define VEXFS_BITMAP_HDR 32u
#define VEXFS_BITMAP_BYTES (VEXFS_BLOCK_SIZE - VEXFS_BITMAP_HDR)
#define VEXFS_BITMAP_BITS (VEXFS_BITMAP_BYTES * 8u) /* 32512 */

struct vexfs_bitmap_block {
	struct vexfs_block_header bm_hdr; /* 0  owner = 0 */
	__le32 bm_index;                  /* 24 index within the region */
	__le32 bm_reserved;               /* 28 */
	__u8 bm_bits[VEXFS_BITMAP_BYTES]; /* 32 */
};
VEXFS_STATIC_ASSERT(sizeof(struct vexfs_bitmap_block) == VEXFS_BLOCK_SIZE, "bitmap size");

/* ---- Trees -----------------------------------------------------------------
 * File extent maps and directories are B+trees of 4 KiB node blocks
 * (struct vexfs_tree_node). Internal nodes (tn_level > 0) hold tn_count
 * index entries (key, child) sorted by key; child i covers keys >= key_i
 * and < key_{i+1}, except that child 0 also covers every key below key_1
 * (key_0 is only a lower bound hint). Leaves (tn_level == 0) hold records
 * sorted by key: fixed 16-byte extents in extent trees (magic EXTENT),
 * variable directory records in directory trees (magic DIR). All leaves
 * are at the same depth. An empty tree is a single empty leaf.
 * tn_used is 16 * tn_count for index nodes and extent leaves, and the sum
 * of the record sizes for directory leaves.
 */
#define VEXFS_TREE_NODE_HDR 40u
#define VEXFS_TREE_NODE_SPACE (VEXFS_BLOCK_SIZE - VEXFS_TREE_NODE_HDR) /* 4056 */
#define VEXFS_TREE_INDEX_MAX (VEXFS_TREE_NODE_SPACE / 16u)            /* 253 */
#define VEXFS_TREE_MAX_DEPTH 8

struct vexfs_tree_node {
	struct vexfs_block_header tn_hdr; /* 0  owner = inode */
	__le16 tn_level;     /* 24 0 = leaf */
	__le16 tn_count;     /* 26 records or index entries */
	__le16 tn_used;      /* 28 bytes of tn_space in use */
	__le16 tn_reserved0; /* 30 */
	__le64 tn_reserved1; /* 32 */
	__u8 tn_space[VEXFS_TREE_NODE_SPACE]; /* 40 */
};
VEXFS_STATIC_ASSERT(sizeof(struct vexfs_tree_node) == VEXFS_BLOCK_SIZE, "tree node size");

struct vexfs_tree_index {
	__le64 ti_key;
	__le64 ti_child;
};
VEXFS_STATIC_ASSERT(sizeof(struct vexfs_tree_index) == 16, "tree index size");

struct vexfs_tree_root {
	__le64 tr_root;     /* root node block */
	__le16 tr_depth;    /* levels above the leaves; 0 = the root is a leaf */
	__le16 tr_reserved[3];
	__le64 tr_nodes;    /* node blocks in the tree */
};
VEXFS_STATIC_ASSERT(sizeof(struct vexfs_tree_root) == 24, "tree root size");

/* ---- Extents ----------------------------------------------------------------
 * A regular file, a long symlink or an EA inode maps logical blocks to
 * physical blocks. i_data starts with a vexfs_extent_header. With
 * eh_depth == 0 up to VEXFS_EXTENT_INLINE extents follow inline; with
 * eh_depth == 1 a vexfs_tree_root follows and the extents live in an
 * extent tree. Extents never overlap; a gap is a hole (reads as zeros).
 */
#define VEXFS_EXTENT_UNWRITTEN 0x80000000u /* ee_len flag: allocated, reads zero */
#define VEXFS_EXTENT_LEN_MASK 0x7FFFFFFFu
#define VEXFS_EXTENT_MAX_LEN 32768u /* blocks per extent (128 MiB) */
#define VEXFS_EXTENT_INLINE 3

struct vexfs_extent_header {
	__le16 eh_magic;   /* VEXFS_EXTENT_HDR_MAGIC */
	__le16 eh_entries; /* inline extents in use (eh_depth == 0), else 0 */
	__le16 eh_max;     /* VEXFS_EXTENT_INLINE */
	__le16 eh_depth;   /* 0 = inline, 1 = tree */
};
VEXFS_STATIC_ASSERT(sizeof(struct vexfs_extent_header) == 8, "extent header size");

struct vexfs_extent { /* leaf record, key = ee_logical */
	__le32 ee_logical; /* first logical block */
	__le32 ee_len;     /* length in blocks | VEXFS_EXTENT_UNWRITTEN */
	__le64 ee_start;   /* first physical block */
};
VEXFS_STATIC_ASSERT(sizeof(struct vexfs_extent) == 16, "extent size");

/* ---- Directories ------------------------------------------------------------
 * A directory is a tree keyed by hash(name): the 64-bit SipHash-2-4 of the
 * name bytes under s_hash_seed, shifted right by one; a result below
 * VEXFS_DIR_HASH_MIN has VEXFS_DIR_HASH_MIN added. Records with equal hashes are kept in one leaf,
 * sorted by name; the hash is also the readdir cookie (cookies below
 * VEXFS_DIR_HASH_MIN are ".", ".." and the start). "." and ".." are not
 * stored: ".." is the directory's i_parent. i_data holds vexfs_dir_root.
 */
#define VEXFS_DIR_HASH_MIN 16ull

struct vexfs_dir_root { /* in i_data of a directory */
	struct vexfs_tree_root dr_tree; /* 0  */
	__le64 dr_entries;              /* 24 entries, "." and ".." excluded */
	__le64 dr_reserved[4];          /* 32 */
};
VEXFS_STATIC_ASSERT(sizeof(struct vexfs_dir_root) == 64, "dir root size");

/* file types stored in directory records (same values as DT_* in dirent.h) */
#define VEXFS_FT_UNKNOWN 0
#define VEXFS_FT_FIFO 1
#define VEXFS_FT_CHR 2
#define VEXFS_FT_DIR 4
#define VEXFS_FT_BLK 6
#define VEXFS_FT_REG 8
#define VEXFS_FT_LNK 10
#define VEXFS_FT_SOCK 12

/* Directory leaf record, packed in tn_space, each padded to 8 bytes:
 *   0  __le64 hash      key
 *   8  __le64 ino
 *  16  __u8   name_len  1..255
 *  17  __u8   type      VEXFS_FT_*
 *  18  name bytes (no NUL)
 */
#define VEXFS_DIR_REC_HDR 18u
#define VEXFS_DIR_REC_SIZE(name_len) ((VEXFS_DIR_REC_HDR + (name_len) + 7u) & ~7u)

/* ---- Extended attributes -----------------------------------------------------
 * Entries live in the inode (i_xattr, up to VEXFS_XATTR_INLINE bytes) and in
 * one xattr block per inode (i_xattr_block). A value larger than
 * VEXFS_XATTR_BLOCK_VALUE_MAX (2048 bytes) is stored as the data of an EA
 * inode (VEXFS_INODE_FL_EA, i_parent = the owning inode, one link) and the
 * entry carries its number; smaller values are stored in the entry. Entries are packed,
 * each 4-byte aligned; a zero xe_name_len ends the list.
 */
#define VEXFS_XATTR_INDEX_USER 1
#define VEXFS_XATTR_INDEX_TRUSTED 2
#define VEXFS_XATTR_INDEX_SECURITY 3
#define VEXFS_XATTR_INDEX_SYSTEM 4 /* "system." (POSIX ACLs) */

#define VEXFS_XATTR_FL_EA_INODE 0x01 /* value lives in inode xe_value_ino */

struct vexfs_xattr_entry {
	__u8 xe_name_index;  /* VEXFS_XATTR_INDEX_* */
	__u8 xe_name_len;    /* bytes of name after the prefix */
	__u8 xe_flags;       /* VEXFS_XATTR_FL_* */
	__u8 xe_reserved;
	__le32 xe_value_len; /* value bytes */
	/* followed by: __le64 value inode if EA_INODE, then name, then the
	 * value bytes if stored inline; the whole entry padded to 4 bytes */
};
VEXFS_STATIC_ASSERT(sizeof(struct vexfs_xattr_entry) == 8, "xattr entry size");

#define VEXFS_XATTR_BLOCK_HDR 32u
#define VEXFS_XATTR_BLOCK_SPACE (VEXFS_BLOCK_SIZE - VEXFS_XATTR_BLOCK_HDR)
#define VEXFS_XATTR_BLOCK_VALUE_MAX 2048u

struct vexfs_xattr_block {
	struct vexfs_block_header xb_hdr; /* 0  owner = inode */
	__le32 xb_count;                  /* 24 entries */
	__le32 xb_used;                   /* 28 bytes of xb_space used */
	__u8 xb_space[VEXFS_XATTR_BLOCK_SPACE];
};
VEXFS_STATIC_ASSERT(sizeof(struct vexfs_xattr_block) == VEXFS_BLOCK_SIZE, "xattr block size");

/* ---- Inodes ---------------------------------------------------------------
 * Inode n lives at byte ((n - 1) % VEXFS_INODES_PER_BLOCK) * 256 of block
 * s_itable_start + (n - 1) / VEXFS_INODES_PER_BLOCK. A free inode is all
 * zero (and its bitmap bit is clear).
 */
#define VEXFS_INODE_FL_EA 0x0001u          /* holds one xattr value */
#define VEXFS_INODE_FL_INLINE_SYMLINK 0x0002u /* target stored in i_data */
#define VEXFS_INODE_FL_APPEND 0x0004u      /* FS_APPEND_FL */
#define VEXFS_INODE_FL_IMMUTABLE 0x0008u   /* FS_IMMUTABLE_FL */
#define VEXFS_INODE_FL_ORPHAN 0x0010u      /* on the orphan list: unlinked (i_links 0), to be
                                              released; or a regular file with i_links > 0
                                              whose truncation a crash cut: blocks past
                                              i_size still to unmap (format.md section 11) */
#define VEXFS_INODE_FL_COLLECTION 0x0100u  /* directory is a collection; i_vector = segment */
#define VEXFS_INODE_FL_VSEGMENT 0x0200u    /* vector segment of a collection (hidden) */
#define VEXFS_INODE_FL_VINDEX 0x0400u      /* persisted index blob of a collection (hidden) */

#define VEXFS_INODE_DATA 64u
#define VEXFS_XATTR_INLINE 60u

struct vexfs_inode {
	__le16 i_mode;        /* 0   S_IFMT | permission bits; 0 = free */
	__le16 i_reserved0;   /* 2   */
	__le32 i_uid;         /* 4   */
	__le32 i_gid;         /* 8   */
	__le32 i_links;       /* 12  hard links (directories: 2 + subdirs) */
	__le64 i_size;        /* 16  bytes */
	__le64 i_blocks;      /* 24  4 KiB blocks owned: data, tree, xattr */
	__le64 i_atime;       /* 32  seconds since the epoch (signed) */
	__le64 i_mtime;       /* 40  */
	__le64 i_ctime;       /* 48  */
	__le64 i_crtime;      /* 56  */
	__le32 i_atime_ns;    /* 64  */
	__le32 i_mtime_ns;    /* 68  */
	__le32 i_ctime_ns;    /* 72  */
	__le32 i_crtime_ns;   /* 76  */
	__le32 i_flags;       /* 80  VEXFS_INODE_FL_* */
	__le32 i_generation;  /* 84  NFS-style generation */
	__le32 i_rdev;        /* 88  device number, Linux new_encode_dev() */
	__le32 i_reserved1;   /* 92  */
	__le64 i_parent;      /* 96  directories: parent directory inode */
	__le64 i_xattr_block; /* 104 0 = none */
	__le64 i_orphan_next; /* 112 next inode on the orphan list */
	__le64 i_vector;      /* 120 see "Vector layer" below; 0 = none */
	__u8 i_data[VEXFS_INODE_DATA];    /* 128 extent root | dir root | symlink */
	__u8 i_xattr[VEXFS_XATTR_INLINE]; /* 192 inline xattr entries */
	__le32 i_crc;         /* 252 crc32c of the 256 bytes with i_crc = 0 */
};
VEXFS_STATIC_ASSERT(sizeof(struct vexfs_inode) == VEXFS_INODE_SIZE, "inode size");

/* ---- Vector layer (VEXFS_FEATURE_INCOMPAT_VECTORS) ---------------------------
 * A collection is a directory with VEXFS_INODE_FL_COLLECTION whose i_vector
 * names its segment inode. The segment is a hidden regular inode
 * (VEXFS_INODE_FL_VSEGMENT, mode S_IFREG, i_links 1, i_parent = the
 * collection directory, i_vector = next segment of the catalogue list that
 * starts at s_vector_root, 0 = end). Its xattr "trusted.vexfs.collection"
 * holds struct vexfs_collection (journaled metadata). Its data is an array
 * of fixed-size slots (ordered data, like file contents): slot i at byte
 * i * vc_slot_size. A regular file in the collection carries a vector when
 * its i_vector = slot + 1; the slot is live iff its vs_owner/vs_generation
 * name that file and that file's i_vector points back at it. A non-directory's
 * i_parent names a directory holding one of its links (or the collection
 * root after that link was removed) and decides its collection: the nearest
 * ancestor directory with VEXFS_INODE_FL_COLLECTION. An update writes a new
 * slot (copy on write) and then journals the inode; the old slot is reused
 * only after a checkpoint.
 */
#define VEXFS_COLLECTION_MAGIC 0x4C4F4356u /* "VCOL" */
#define VEXFS_COLLECTION_XATTR "trusted.vexfs.collection"
#define VEXFS_VECTOR_XATTR "user.vexfs.vector"
#define VEXFS_VECTOR_MAX_DIM 16384u

#define VEXFS_METRIC_L2 0u      /* squared Euclidean distance */
#define VEXFS_METRIC_IP 1u      /* negative inner product */
#define VEXFS_METRIC_COSINE 2u  /* 1 - cosine similarity */

#define VEXFS_ELEM_F32 0u       /* in-memory index element type; slots are f32 */
#define VEXFS_ELEM_F16 1u
#define VEXFS_ELEM_I8 2u

#define VEXFS_INDEX_FLAT 0u
#define VEXFS_INDEX_HNSW 1u
#define VEXFS_INDEX_LSH 2u

/* vc_index_state */
#define VEXFS_INDEX_STATE_STALE 0u /* blob absent or older than the slots */
#define VEXFS_INDEX_STATE_VALID 1u /* blob matches the slots (written at unmount) */

struct vexfs_collection {
	__le32 vc_magic;          /* 0  VEXFS_COLLECTION_MAGIC */
	__le16 vc_version;        /* 4  1 */
	__le16 vc_size;           /* 6  sizeof(struct vexfs_collection) */
	__le32 vc_dim;            /* 8  1..VEXFS_VECTOR_MAX_DIM */
	__u8 vc_metric;           /* 12 VEXFS_METRIC_* */
	__u8 vc_element_type;     /* 13 VEXFS_ELEM_* */
	__u8 vc_index_kind;       /* 14 VEXFS_INDEX_* */
	__u8 vc_reserved0;        /* 15 */
	__le32 vc_slot_size;      /* 16 16 + 4 * dim rounded up to 16 */
	__le16 vc_param[4];       /* 20 HNSW: M, ef_construction, ef_search, 0;
	                           *    LSH: tables, bits, probes, 0; flat: 0 */
	__le32 vc_reserved1;      /* 28 */
	__le64 vc_dir;            /* 32 the collection directory */
	__le64 vc_index_ino;      /* 40 index blob inode, 0 = none */
	__le64 vc_index_bytes;    /* 48 blob length */
	__le32 vc_index_crc;      /* 56 crc32c of the blob */
	__le32 vc_index_state;    /* 60 VEXFS_INDEX_STATE_* */
	__le64 vc_created;        /* 64 seconds since the epoch */
	__le64 vc_reserved[6];    /* 72 */
	__le32 vc_reserved2;      /* 120 */
	__le32 vc_crc;            /* 124 crc32c of the struct with vc_crc = 0 */
};
VEXFS_STATIC_ASSERT(sizeof(struct vexfs_collection) == 128, "collection size");

struct vexfs_vslot {
	__le64 vs_owner;      /* 0  inode number of the file, 0 = never used */
	__le32 vs_generation; /* 8  the file's i_generation */
	__le32 vs_crc;        /* 12 crc32c of the slot (header with vs_crc = 0,
	                       *    then the vector) */
	/* followed by vc_dim little-endian IEEE-754 float32 */
};
VEXFS_STATIC_ASSERT(sizeof(struct vexfs_vslot) == 16, "vslot size");

static inline __u32 vexfs_slot_size(__u32 dim)
{
	return (16u + 4u * dim + 15u) & ~15u;
}

/* ---- Journal ------------------------------------------------------------------
 * A physical block journal in s_journal_blocks blocks at s_journal_start.
 * Journal block 0 is the journal superblock. A transaction is one or more
 * descriptor blocks, each followed by the blocks it lists (full images of
 * the target blocks), then one commit block. All blocks of a transaction
 * carry its sequence number. A transaction is valid when every descriptor
 * and the commit check out (magic, crc, sequence) and jc_data_hash matches
 * the hash of all listed images in order (see below). Replay starts at
 * js_start with sequence js_sequence and applies valid transactions in
 * order until the first invalid one. js_start = 0 means the journal is
 * empty. See docs/format.md for the write and checkpoint rules.
 */
struct vexfs_journal_super {
	struct vexfs_block_header js_hdr; /* 0  blocknr = absolute block */
	__le64 js_blocks;    /* 24 journal length including this block */
	__le64 js_start;     /* 32 relative block of the first transaction: 1 in v1 (0 is read as 1) */
	__le64 js_sequence;  /* 40 sequence expected at js_start (or next to write) */
	__u8 js_uuid[16];    /* 48 copy of s_uuid */
	__le64 js_reserved[64];
};
VEXFS_STATIC_ASSERT(sizeof(struct vexfs_journal_super) == 576, "journal super size");

#define VEXFS_JDESC_HDR 48u
#define VEXFS_JDESC_MAX ((VEXFS_BLOCK_SIZE - VEXFS_JDESC_HDR) / 8u) /* 506 */

struct vexfs_journal_desc {
	struct vexfs_block_header jd_hdr; /* 0  blocknr = absolute block */
	__le64 jd_sequence; /* 24 */
	__le32 jd_count;    /* 32 target blocks listed */
	__le32 jd_reserved0;
	__le64 jd_reserved1; /* 40 */
	__le64 jd_targets[VEXFS_JDESC_MAX]; /* 48 home block numbers */
};
VEXFS_STATIC_ASSERT(sizeof(struct vexfs_journal_desc) == VEXFS_BLOCK_SIZE, "jdesc size");

struct vexfs_journal_commit {
	struct vexfs_block_header jc_hdr; /* 0 */
	__le64 jc_sequence;  /* 24 */
	__le32 jc_nblocks;   /* 32 descriptor + image blocks before this one */
	__le32 jc_reserved0; /* 36 */
	__le64 jc_data_hash; /* 40 VEXFS_JOURNAL_HASH over the images, in order */
	__le64 jc_time;      /* 48 commit time, seconds */
	__le32 jc_time_ns;   /* 56 */
	__le32 jc_reserved1; /* 60 */
};
VEXFS_STATIC_ASSERT(sizeof(struct vexfs_journal_commit) == 64, "journal commit size");

/*
 * Image hash of a transaction (jc_data_hash). A CRC cannot be used here:
 * inode-table images are sequences of records that end in their own
 * CRC-32C, and CRC residues make a CRC over such records independent of
 * their contents. With k = s_uuid as the SipHash-2-4 key:
 *   h = sequence
 *   for each image i in order:
 *     h = SipHash24(k, le64(h) || le64(target_i) || le64(SipHash24(k, image_i)))
 */

#endif /* VEXFS_UAPI_FORMAT_H */
