/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * VexFS ioctl ABI, shared by user space, the FUSE daemon and the kernel
 * module. Plain C, no dependencies beyond <linux/ioctl.h> and
 * <linux/types.h>. See docs/ioctl.md for the full contract.
 *
 * Every struct has a fixed size below 16 KiB so that FUSE can carry it as a
 * "restricted" ioctl (the kernel copies _IOC_SIZE(cmd) bytes in and out;
 * pointers inside the argument are never followed). Larger inputs (vectors
 * of more than VEXFS_IOC_INLINE_FLOATS components, batches of queries) are
 * sent in pieces with VEXFS_IOC_STAGE; larger outputs (many results) are
 * fetched in pages with VEXFS_IOC_RESULTS. Staged input and the last
 * search's results belong to the open file description the ioctl was
 * issued on (not to the process), and live until it is closed.
 *
 * All integers are in the CPU's byte order (the ioctl never crosses
 * machines); floats are IEEE-754 binary32. Reserved fields must be zero on
 * input (EINVAL otherwise) and are zero on output. The first field of each
 * struct is its size as the caller knows it; a size the implementation does
 * not know is EINVAL, so the ABI can grow by adding new commands.
 *
 * Errors (errno):
 *   ENOTTY   not a VexFS file, or unknown command
 *   ENOTDIR  a collection command on a non-directory
 *   ENOTSUP  the directory is not inside a collection (search, info, put)
 *   EEXIST   COLL_CREATE on a directory that already is a collection
 *   EINVAL   bad size/flags/reserved field, dimension mismatch, NaN or Inf,
 *            k = 0 or k > VEXFS_SEARCH_MAX_K, malformed filter, bad
 *            parameters; nothing is changed
 *   EPERM    COLL_CREATE/DROP/REINDEX by a caller that neither owns the
 *            directory nor is root
 *   EACCES   PUT without write permission on the file
 *   EBUSY    COLL_CREATE on a directory holding vectors of an enclosing
 *            collection (drop or move them first)
 *   E2BIG    the staged input is larger than VEXFS_STAGE_MAX_FLOATS
 *   ENODATA  VEXFS_IOC_RESULTS before any search on this file
 *   EBADF    PUT/SEARCH/IMPORT with STAGED input on a descriptor the daemon
 *            no longer tracks (FUSE: an fd opened before the mount
 *            restarted)
 *   EROFS    PUT/IMPORT/COLL_* that change a read-only mount
 */
#ifndef _UAPI_VEXFS_IOCTL_H
#define _UAPI_VEXFS_IOCTL_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define VEXFS_IOC_MAGIC 0xE5

/* Floats that fit inline in VEXFS_IOC_PUT and VEXFS_IOC_STAGE. */
#define VEXFS_IOC_INLINE_FLOATS 4000u
/* Upper bound of the staging buffer: 64 queries of 16384 components. */
#define VEXFS_STAGE_MAX_FLOATS (1u << 20)
#define VEXFS_SEARCH_MAX_K 10000u
#define VEXFS_SEARCH_MAX_NQ 1024u
#define VEXFS_SEARCH_BUF 16256u
#define VEXFS_FILTER_MAX 4096u

/* Name of the query file present in every collection directory. */
#define VEXFS_QUERY_FILE ".vexfs-query"

/* ---- Collections: issued on a directory ----------------------------------- */

/* vi_state (output of COLL_INFO) */
#define VEXFS_COLL_STATE_READY 0u    /* every vector is in the index */
#define VEXFS_COLL_STATE_INDEXING 1u /* the background indexer is catching up;
                                      * pending vectors are searched exactly */

/* vi_flags (output of COLL_INFO) */
#define VEXFS_COLL_LOADED 0x1u  /* index loaded from the persisted blob at mount */
#define VEXFS_COLL_REBUILT 0x2u /* index rebuilt from the vector slots at mount
                                 * (the blob was missing or stale, e.g. after a crash) */

struct vexfs_ioc_collection {
	__u32 vi_size;          /* in: sizeof(struct vexfs_ioc_collection) */
	__u32 vi_flags;         /* in: 0; out: VEXFS_COLL_* */
	__u32 vi_dim;           /* 1..16384; REINDEX: 0 or the current value */
	__u8 vi_metric;         /* VEXFS_METRIC_* (vexfs_format.h); REINDEX: ignored */
	__u8 vi_element_type;   /* VEXFS_ELEM_* */
	__u8 vi_index_kind;     /* VEXFS_INDEX_* */
	__u8 vi_reserved0;
	__u16 vi_param[4];      /* HNSW: M, ef_construction, ef_search, 0
	                         * LSH: tables, bits, probes, 0; 0 = default */
	__u32 vi_state;         /* out: VEXFS_COLL_STATE_* */
	__u32 vi_reserved1;
	__u64 vi_count;         /* out: vectors stored in the collection */
	__u64 vi_indexed;       /* out: vectors in the ANN index */
	__u64 vi_pending;       /* out: vectors waiting for the indexer */
	__u64 vi_memory_bytes;  /* out: resident bytes of the index */
	__u64 vi_dir_ino;       /* out: inode of the collection directory */
	__u64 vi_reserved[4];
};

/* Makes the directory a collection. Files below it that already carry a
 * user.vexfs.vector of the right dimension join it; one of another
 * dimension makes the call fail with EINVAL before anything changes. */
#define VEXFS_IOC_COLL_CREATE _IOW(VEXFS_IOC_MAGIC, 1, struct vexfs_ioc_collection)
/* The collection the directory belongs to (nearest collection ancestor). */
#define VEXFS_IOC_COLL_INFO _IOR(VEXFS_IOC_MAGIC, 2, struct vexfs_ioc_collection)
/* Removes the collection, its index and every vector stored in it; the
 * files stay. Only on the collection directory itself. */
#define VEXFS_IOC_COLL_DROP _IO(VEXFS_IOC_MAGIC, 3)
/* Rebuilds the index, optionally with another index kind/element type/params. */
#define VEXFS_IOC_COLL_REINDEX _IOW(VEXFS_IOC_MAGIC, 4, struct vexfs_ioc_collection)

/* ---- Staging: issued on any VexFS file or directory ---------------------- */

struct vexfs_ioc_stage {
	__u32 vs_size;     /* sizeof(struct vexfs_ioc_stage) */
	__u32 vs_offset;   /* float index of vs_data[0]; 0 clears the buffer first */
	__u32 vs_count;    /* floats in vs_data, 1..VEXFS_IOC_INLINE_FLOATS */
	__u32 vs_reserved;
	float vs_data[VEXFS_IOC_INLINE_FLOATS];
};
#define VEXFS_IOC_STAGE _IOW(VEXFS_IOC_MAGIC, 5, struct vexfs_ioc_stage)

/* ---- Vectors: issued on a regular file ------------------------------------ */

#define VEXFS_PUT_STAGED 0x1u /* the vector is the staging buffer (vp_dim floats) */
#define VEXFS_PUT_REMOVE 0x2u /* remove the file's vector (ENODATA if none) */

struct vexfs_ioc_put {
	__u32 vp_size;     /* sizeof(struct vexfs_ioc_put) */
	__u32 vp_flags;    /* VEXFS_PUT_* */
	__u32 vp_dim;      /* components; must equal the collection's dimension */
	__u32 vp_reserved;
	float vp_data[VEXFS_IOC_INLINE_FLOATS]; /* unless STAGED or REMOVE */
};
/* Same effect as setxattr("user.vexfs.vector") / removexattr. Durable at
 * the next fsync of the file or syncfs; searchable when the call returns. */
#define VEXFS_IOC_PUT _IOW(VEXFS_IOC_MAGIC, 6, struct vexfs_ioc_put)

/* ---- Search: issued on a directory inside a collection --------------------
 * Searches the collection, returning only files below the directory the
 * ioctl was issued on, that the caller may open for reading and reach
 * (search permission on every directory from there down).
 */
#define VEXFS_SEARCH_STAGED 0x1u /* queries are the staging buffer */
#define VEXFS_SEARCH_RANGE 0x2u  /* only results with distance <= sq_max_distance */

struct vexfs_ioc_search {
	__u32 sq_size;         /* sizeof(struct vexfs_ioc_search) */
	__u32 sq_flags;        /* VEXFS_SEARCH_* */
	__u32 sq_k;            /* results per query, 1..VEXFS_SEARCH_MAX_K */
	__u32 sq_dim;          /* components per query: the collection's dim */
	__u32 sq_nq;           /* queries, 1..VEXFS_SEARCH_MAX_NQ */
	__u32 sq_effort;       /* HNSW ef_search / LSH probes; 0 = collection default */
	float sq_max_distance; /* with VEXFS_SEARCH_RANGE */
	__u32 sq_filter_len;   /* bytes of filter text at sq_buf[0], <= VEXFS_FILTER_MAX */
	/* out */
	__u32 sq_total;        /* results of all queries */
	__u32 sq_returned;     /* result records in sq_buf (the first ones) */
	__u32 sq_bytes;        /* bytes of sq_buf they use */
	__u32 sq_reserved[5];
	/* in: filter text (not NUL-terminated), then, unless STAGED, at the
	 * next multiple of 4 bytes, sq_nq * sq_dim floats.
	 * out: result records (struct vexfs_search_hit), query by query, best
	 * first within a query. */
	__u8 sq_buf[VEXFS_SEARCH_BUF];
};

/* One result: followed by vh_path_len bytes of path (relative to the
 * directory searched, no leading '/', not NUL-terminated) and zero padding
 * to a multiple of 8 bytes. */
struct vexfs_search_hit {
	__u64 vh_ino;
	float vh_distance;  /* smaller is closer: L2 squared, -dot, 1 - cos */
	__u16 vh_query;     /* index of the query in the batch */
	__u16 vh_path_len;
};

static inline __u32 vexfs_search_hit_bytes(const struct vexfs_search_hit *h)
{
	return (__u32)((sizeof(*h) + h->vh_path_len + 7u) & ~7u);
}

#define VEXFS_IOC_SEARCH _IOWR(VEXFS_IOC_MAGIC, 7, struct vexfs_ioc_search)

/* Pages through the results of the last VEXFS_IOC_SEARCH on this file. */
struct vexfs_ioc_results {
	__u32 vr_size;      /* sizeof(struct vexfs_ioc_results) */
	__u32 vr_first;     /* in: index of the first record wanted */
	__u32 vr_total;     /* out: as sq_total */
	__u32 vr_returned;  /* out: records in vr_buf */
	__u32 vr_bytes;     /* out: bytes used */
	__u32 vr_reserved[3];
	__u8 vr_buf[VEXFS_SEARCH_BUF];
};
#define VEXFS_IOC_RESULTS _IOWR(VEXFS_IOC_MAGIC, 8, struct vexfs_ioc_results)

/* ---- Bulk import: issued on a directory inside a collection ---------------
 * Creates vm_count files in the directory, each with a vector from the
 * staging buffer (vm_count * vm_dim floats, row i for name i): one call
 * instead of open + setxattr + close per file. The effect per file is that
 * of open(O_CREAT, vm_mode) by the caller (owner and group as for open;
 * the caller applies its umask) followed by setxattr("user.vexfs.vector").
 * Without VEXFS_IMPORT_EXCL an existing regular file gets the vector
 * (write permission on it needed). Needs write and search permission on
 * the directory. Durable at the next fsync of the directory or syncfs;
 * searchable when the call returns.
 *
 * Every name and vector is checked before anything changes (EINVAL for a
 * bad name, dimension, NaN or Inf, a zero vector under cosine; the call
 * then fails as a whole). Errors met while storing (ENOSPC, EEXIST, EACCES
 * on one file, ...) stop the batch: the call still succeeds, vm_done files
 * were stored (the first ones, in order) and vm_error is the errno of file
 * number vm_done.
 */
#define VEXFS_IMPORT_EXCL 0x1u /* EEXIST for a name that exists */
#define VEXFS_IMPORT_NAMES 16320u

struct vexfs_ioc_import {
	__u32 vm_size;      /* sizeof(struct vexfs_ioc_import) */
	__u32 vm_flags;     /* VEXFS_IMPORT_* */
	__u32 vm_count;     /* files, >= 1; vm_count * vm_dim <= VEXFS_STAGE_MAX_FLOATS */
	__u32 vm_dim;       /* components per vector: the collection's dimension */
	__u32 vm_mode;      /* permission bits of created files (<= 07777) */
	__u32 vm_names_len; /* bytes of vm_names used */
	__u32 vm_done;      /* out: files stored */
	__u32 vm_error;     /* out: 0, or the errno that stopped the batch */
	/* vm_count file names (no '/', not "." or "..", at most 255 bytes, not
	 * VEXFS_QUERY_FILE, no duplicates), each followed by a NUL */
	char vm_names[VEXFS_IMPORT_NAMES];
};
#define VEXFS_IOC_IMPORT _IOWR(VEXFS_IOC_MAGIC, 9, struct vexfs_ioc_import)

/* ---- Binary requests on the query file (VEXFS_QUERY_FILE) -----------------
 * Besides a JSON text request, the query file takes one binary request: a
 * struct vexfs_query_req, then qq_filter_len bytes of filter text, zero
 * padding to the next multiple of 4 bytes, then qq_nq * qq_dim float32
 * (little-endian), all in one or more write(2)s. The next read(2) returns a
 * struct vexfs_query_ans, then qa_bytes bytes: qa_total records (struct
 * vexfs_search_hit and its path, as in sq_buf) query by query, best first,
 * or, if qa_errno != 0, an error message (UTF-8, not NUL-terminated). */
/* qq_flags of a binary request: VEXFS_SEARCH_RANGE, and these bits, which
 * the query file alone knows (never given to VEXFS_IOC_SEARCH). Any other
 * bit makes the answer EINVAL.
 *
 * VEXFS_QUERY_AT_WRITE: search when the request's last byte arrives, not
 * at the first read. The daemon replies to the write(2) that completes
 * the request, then searches at once, so the search is under way while
 * the client turns around to read; the read waits for it and returns the
 * answer. Changes completed before that write returned are in the
 * answer; changes made after it returned may or may not be (without the
 * flag, every change completed before the read is). The answer is
 * filtered by the credentials of the thread that made that write
 * (uid, gid, supplementary groups); a read by other credentials fails
 * with EACCES. Until the answer is read, a write to the descriptor fails
 * with EBUSY while the search runs and starts a new request after it.
 * See docs/ioctl.md section 10. */
#define VEXFS_QUERY_AT_WRITE 0x100u

#define VEXFS_QUERY_REQ_MAGIC 0x31515856u /* "VXQ1" */
#define VEXFS_QUERY_ANS_MAGIC 0x31415856u /* "VXA1" */
#define VEXFS_QUERY_MAX_THREADS 64u

struct vexfs_query_req {
	__u32 qq_magic;        /* VEXFS_QUERY_REQ_MAGIC */
	__u32 qq_size;         /* sizeof(struct vexfs_query_req) */
	__u32 qq_flags;        /* VEXFS_SEARCH_RANGE, VEXFS_QUERY_AT_WRITE */
	__u32 qq_k;            /* results per query, 1..VEXFS_SEARCH_MAX_K */
	__u32 qq_dim;
	__u32 qq_nq;           /* queries, 1..VEXFS_SEARCH_MAX_NQ */
	__u32 qq_effort;       /* ef_search / probes; 0 = collection default */
	float qq_max_distance; /* with VEXFS_SEARCH_RANGE */
	__u32 qq_filter_len;   /* 0..VEXFS_FILTER_MAX */
	__u32 qq_threads;      /* 0 or 1: one thread; 2..VEXFS_QUERY_MAX_THREADS:
	                        * the batch may be split over that many
	                        * threads (see docs/ioctl.md) */
	__u32 qq_reserved[6];  /* zero */
};

struct vexfs_query_ans {
	__u32 qa_magic;        /* VEXFS_QUERY_ANS_MAGIC */
	__u32 qa_size;         /* sizeof(struct vexfs_query_ans) */
	__u32 qa_errno;        /* 0, or the errno VEXFS_IOC_SEARCH would fail with */
	__u32 qa_nq;           /* qq_nq of the request */
	__u32 qa_total;        /* records that follow */
	__u32 qa_bytes;        /* bytes that follow this header */
	__u32 qa_reserved[2];  /* zero */
};

#endif /* _UAPI_VEXFS_IOCTL_H */
