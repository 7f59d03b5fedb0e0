/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * Build-time check of the ioctl ABI tables in docs/ioctl.md: every offset,
 * field size, struct size and command number written there is asserted
 * here, compiled as C11 against the plain-C UAPI header (as the kernel
 * module will be). A change to include/uapi/vexfs/vexfs_ioctl.h that moves
 * a field fails the build until the doc and this file are updated.
 * No code: this unit only holds static assertions.
 */
#include <stddef.h>

#include "uapi/vexfs/vexfs_ioctl.h"

#define ABI_FIELD(s, f, off, size)                                         \
	_Static_assert(offsetof(struct s, f) == (off), #s "." #f " offset"); \
	_Static_assert(sizeof(((struct s *)0)->f) == (size), #s "." #f " size")
#define ABI_SIZE(s, size) _Static_assert(sizeof(struct s) == (size), #s " size")
#define ABI_CMD(cmd, value) _Static_assert((cmd) == (value), #cmd " number")

/* FUSE carries "restricted" ioctls only when _IOC_SIZE fits 14 bits. */
_Static_assert(sizeof(struct vexfs_ioc_search) < (1u << _IOC_SIZEBITS), "search fits _IOC_SIZE");
_Static_assert(sizeof(struct vexfs_ioc_results) < (1u << _IOC_SIZEBITS), "results fit _IOC_SIZE");
_Static_assert(sizeof(struct vexfs_ioc_put) < (1u << _IOC_SIZEBITS), "put fits _IOC_SIZE");
_Static_assert(sizeof(struct vexfs_ioc_stage) < (1u << _IOC_SIZEBITS), "stage fits _IOC_SIZE");
_Static_assert(sizeof(struct vexfs_ioc_import) < (1u << _IOC_SIZEBITS), "import fits _IOC_SIZE");
/* 64-bit fields sit at multiples of 8, so i386 and x86_64 agree (no compat ioctl). */
_Static_assert(offsetof(struct vexfs_ioc_collection, vi_count) % 8 == 0, "vi_count alignment");
_Static_assert(sizeof(struct vexfs_ioc_collection) % 8 == 0, "collection padding");

ABI_FIELD(vexfs_ioc_collection, vi_size, 0, 4);
ABI_FIELD(vexfs_ioc_collection, vi_flags, 4, 4);
ABI_FIELD(vexfs_ioc_collection, vi_dim, 8, 4);
ABI_FIELD(vexfs_ioc_collection, vi_metric, 12, 1);
ABI_FIELD(vexfs_ioc_collection, vi_element_type, 13, 1);
ABI_FIELD(vexfs_ioc_collection, vi_index_kind, 14, 1);
ABI_FIELD(vexfs_ioc_collection, vi_reserved0, 15, 1);
ABI_FIELD(vexfs_ioc_collection, vi_param, 16, 8);
ABI_FIELD(vexfs_ioc_collection, vi_state, 24, 4);
ABI_FIELD(vexfs_ioc_collection, vi_reserved1, 28, 4);
ABI_FIELD(vexfs_ioc_collection, vi_count, 32, 8);
ABI_FIELD(vexfs_ioc_collection, vi_indexed, 40, 8);
ABI_FIELD(vexfs_ioc_collection, vi_pending, 48, 8);
ABI_FIELD(vexfs_ioc_collection, vi_memory_bytes, 56, 8);
ABI_FIELD(vexfs_ioc_collection, vi_dir_ino, 64, 8);
ABI_FIELD(vexfs_ioc_collection, vi_reserved, 72, 32);
ABI_SIZE(vexfs_ioc_collection, 104);

ABI_FIELD(vexfs_ioc_stage, vs_size, 0, 4);
ABI_FIELD(vexfs_ioc_stage, vs_offset, 4, 4);
ABI_FIELD(vexfs_ioc_stage, vs_count, 8, 4);
ABI_FIELD(vexfs_ioc_stage, vs_reserved, 12, 4);
ABI_FIELD(vexfs_ioc_stage, vs_data, 16, 16000);
ABI_SIZE(vexfs_ioc_stage, 16016);

ABI_FIELD(vexfs_ioc_put, vp_size, 0, 4);
ABI_FIELD(vexfs_ioc_put, vp_flags, 4, 4);
ABI_FIELD(vexfs_ioc_put, vp_dim, 8, 4);
ABI_FIELD(vexfs_ioc_put, vp_reserved, 12, 4);
ABI_FIELD(vexfs_ioc_put, vp_data, 16, 16000);
ABI_SIZE(vexfs_ioc_put, 16016);

ABI_FIELD(vexfs_ioc_search, sq_size, 0, 4);
ABI_FIELD(vexfs_ioc_search, sq_flags, 4, 4);
ABI_FIELD(vexfs_ioc_search, sq_k, 8, 4);
ABI_FIELD(vexfs_ioc_search, sq_dim, 12, 4);
ABI_FIELD(vexfs_ioc_search, sq_nq, 16, 4);
ABI_FIELD(vexfs_ioc_search, sq_effort, 20, 4);
ABI_FIELD(vexfs_ioc_search, sq_max_distance, 24, 4);
ABI_FIELD(vexfs_ioc_search, sq_filter_len, 28, 4);
ABI_FIELD(vexfs_ioc_search, sq_total, 32, 4);
ABI_FIELD(vexfs_ioc_search, sq_returned, 36, 4);
ABI_FIELD(vexfs_ioc_search, sq_bytes, 40, 4);
ABI_FIELD(vexfs_ioc_search, sq_reserved, 44, 20);
ABI_FIELD(vexfs_ioc_search, sq_buf, 64, 16256);
ABI_SIZE(vexfs_ioc_search, 16320);

ABI_FIELD(vexfs_search_hit, vh_ino, 0, 8);
ABI_FIELD(vexfs_search_hit, vh_distance, 8, 4);
ABI_FIELD(vexfs_search_hit, vh_query, 12, 2);
ABI_FIELD(vexfs_search_hit, vh_path_len, 14, 2);
ABI_SIZE(vexfs_search_hit, 16);

ABI_FIELD(vexfs_ioc_results, vr_size, 0, 4);
ABI_FIELD(vexfs_ioc_results, vr_first, 4, 4);
ABI_FIELD(vexfs_ioc_results, vr_total, 8, 4);
ABI_FIELD(vexfs_ioc_results, vr_returned, 12, 4);
ABI_FIELD(vexfs_ioc_results, vr_bytes, 16, 4);
ABI_FIELD(vexfs_ioc_results, vr_reserved, 20, 12);
ABI_FIELD(vexfs_ioc_results, vr_buf, 32, 16256);
ABI_SIZE(vexfs_ioc_results, 16288);

ABI_FIELD(vexfs_ioc_import, vm_size, 0, 4);
ABI_FIELD(vexfs_ioc_import, vm_flags, 4, 4);
ABI_FIELD(vexfs_ioc_import, vm_count, 8, 4);
ABI_FIELD(vexfs_ioc_import, vm_dim, 12, 4);
ABI_FIELD(vexfs_ioc_import, vm_mode, 16, 4);
ABI_FIELD(vexfs_ioc_import, vm_names_len, 20, 4);
ABI_FIELD(vexfs_ioc_import, vm_done, 24, 4);
ABI_FIELD(vexfs_ioc_import, vm_error, 28, 4);
ABI_FIELD(vexfs_ioc_import, vm_names, 32, 16320);
ABI_SIZE(vexfs_ioc_import, 16352);

ABI_CMD(VEXFS_IOC_COLL_CREATE, 0x4068e501u);
ABI_CMD(VEXFS_IOC_COLL_INFO, 0x8068e502u);
ABI_CMD(VEXFS_IOC_COLL_DROP, 0xe503u);
ABI_CMD(VEXFS_IOC_COLL_REINDEX, 0x4068e504u);
ABI_CMD(VEXFS_IOC_STAGE, 0x7e90e505u);
ABI_CMD(VEXFS_IOC_PUT, 0x7e90e506u);
ABI_CMD(VEXFS_IOC_SEARCH, 0xffc0e507u);
ABI_CMD(VEXFS_IOC_RESULTS, 0xffa0e508u);
ABI_CMD(VEXFS_IOC_IMPORT, 0xffe0e509u);
/* Constants of docs/ioctl.md. */
_Static_assert(VEXFS_IOC_MAGIC == 0xE5, "magic");
_Static_assert(VEXFS_IOC_INLINE_FLOATS == 4000u, "inline floats");
_Static_assert(VEXFS_STAGE_MAX_FLOATS == 1048576u, "stage max");
_Static_assert(VEXFS_SEARCH_MAX_K == 10000u, "max k");
_Static_assert(VEXFS_SEARCH_MAX_NQ == 1024u, "max nq");
_Static_assert(VEXFS_QUERY_MAX_THREADS == 64u, "max query threads");
_Static_assert(VEXFS_SEARCH_BUF == 16256u, "search buffer");
_Static_assert(VEXFS_FILTER_MAX == 4096u, "filter max");
_Static_assert(VEXFS_PUT_STAGED == 1u && VEXFS_PUT_REMOVE == 2u, "put flags");
_Static_assert(VEXFS_SEARCH_STAGED == 1u && VEXFS_SEARCH_RANGE == 2u, "search flags");
_Static_assert(VEXFS_COLL_LOADED == 1u && VEXFS_COLL_REBUILT == 2u, "collection flags");
_Static_assert(VEXFS_COLL_STATE_READY == 0u && VEXFS_COLL_STATE_INDEXING == 1u, "collection states");

/* Binary requests on the query file (docs/ioctl.md, section 10). */
ABI_FIELD(vexfs_query_req, qq_magic, 0, 4);
ABI_FIELD(vexfs_query_req, qq_size, 4, 4);
ABI_FIELD(vexfs_query_req, qq_flags, 8, 4);
ABI_FIELD(vexfs_query_req, qq_k, 12, 4);
ABI_FIELD(vexfs_query_req, qq_dim, 16, 4);
ABI_FIELD(vexfs_query_req, qq_nq, 20, 4);
ABI_FIELD(vexfs_query_req, qq_effort, 24, 4);
ABI_FIELD(vexfs_query_req, qq_max_distance, 28, 4);
ABI_FIELD(vexfs_query_req, qq_filter_len, 32, 4);
ABI_FIELD(vexfs_query_req, qq_threads, 36, 4);
ABI_FIELD(vexfs_query_req, qq_reserved, 40, 24);
ABI_SIZE(vexfs_query_req, 64);
ABI_FIELD(vexfs_query_ans, qa_magic, 0, 4);
ABI_FIELD(vexfs_query_ans, qa_size, 4, 4);
ABI_FIELD(vexfs_query_ans, qa_errno, 8, 4);
ABI_FIELD(vexfs_query_ans, qa_nq, 12, 4);
ABI_FIELD(vexfs_query_ans, qa_total, 16, 4);
ABI_FIELD(vexfs_query_ans, qa_bytes, 20, 4);
ABI_FIELD(vexfs_query_ans, qa_reserved, 24, 8);
ABI_SIZE(vexfs_query_ans, 32);
_Static_assert(VEXFS_QUERY_REQ_MAGIC == 0x31515856u && VEXFS_QUERY_ANS_MAGIC == 0x31415856u, "query file magics");
