// The requests of the query file (VEXFS_QUERY_FILE, docs/ioctl.md section
// 10) and of VEXFS_IOC_SEARCH, parsed into a SearchRequest. Pure functions
// of their input: no FUSE, no filesystem; the FUSE daemon calls them and a
// fuzz target (fuzz/query_request_fuzz.cc) drives them.
//
// Every error is EINVAL with a message for the person who wrote the
// request. A parsed request is checked only as far as its text goes: the
// search itself checks the dimension against the collection and the
// queries for NaN, Inf and (cosine) zero vectors, and parses the filter.
#ifndef VEXFS_SRC_VECTOR_QUERY_REQUEST_H_
#define VEXFS_SRC_VECTOR_QUERY_REQUEST_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "vexfs/collections.h"
#include "vexfs/status.h"

namespace vexfs {

// The fields VEXFS_IOC_SEARCH and the binary request share, checked as
// VEXFS_IOC_SEARCH documents (k 1..VEXFS_SEARCH_MAX_K, nq
// 1..VEXFS_SEARCH_MAX_NQ, dim 1..VEXFS_VECTOR_MAX_DIM, filter_len <=
// VEXFS_FILTER_MAX); on success sets r's dim, nq, k, effort and
// max_distance (only if `range`), and leaves its queries and filter alone.
Status SearchFieldsFrom(uint32_t k, uint32_t dim, uint32_t nq, uint32_t effort, uint32_t filter_len,
                        bool range, float max_distance, SearchRequest* r);

// A binary request arrives in pieces. Its queries need not pass through a
// byte buffer: BinaryHeadBytes(head) is how many bytes of the request
// belong to its head (struct vexfs_query_req, the filter and its padding),
// given the first bytes of the request, `head`; the bytes after that are
// its queries. Call it again after appending: the answer grows from 4 (the
// magic) to the header's size to the whole head. SIZE_MAX when the request
// is not binary (it is then all JSON text).
size_t BinaryHeadBytes(std::string_view head);

// True when `head` is the whole head of a binary request (BinaryHeadBytes
// bytes) whose qq_flags carry VEXFS_QUERY_AT_WRITE, and `float_bytes` is
// exactly the qq_nq * qq_dim floats it announces: the request is complete
// and asks to be searched now. Only the head's announced length is
// checked; ParseBinaryRequest still judges every field (a request with
// unknown flag bits, k out of range, ... answers EINVAL as usual).
bool SearchAtWrite(std::string_view head, size_t float_bytes);

// Parses a binary request whose head (BinaryHeadBytes bytes, or fewer if
// the request is shorter) is `head`, followed by `float_bytes` bytes of
// queries. On success sets every field of *r but `queries`, which the
// caller fills with the float_bytes / 4 floats (== r->nq * r->dim).
// *nq is the header's qq_nq whenever the header is complete (the answer
// echoes it, also on error), else 0.
Status ParseBinaryRequest(std::string_view head, size_t float_bytes, SearchRequest* r,
                          uint32_t* nq);

// Parses a JSON request: an object with "vector" (an array of numbers) or
// "vectors" (an array of them), and optionally "k", "ef", "filter",
// "max_distance". *batch tells which of the two forms it was (the answer
// nests results per query only for "vectors"). On success *r is complete.
Status ParseJsonRequest(std::string_view text, SearchRequest* r, bool* batch);

}  // namespace vexfs

#endif  // VEXFS_SRC_VECTOR_QUERY_REQUEST_H_
