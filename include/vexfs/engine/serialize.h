// The container every serialized vector-engine index uses, plus small
// little-endian byte writer/reader helpers.
//
// Blob layout (all integers little-endian, 24-byte header + payload):
//
//   offset  size  field
//        0     4  magic           "VXIX" (bytes 0x56 0x58 0x49 0x58)
//        4     2  version         per-kind payload format version, >= 1
//        6     1  kind            IndexKind (0 flat, 1 hnsw, 2 lsh, 3 ivf)
//        7     1  reserved        must be 0
//        8     8  payload_len     number of payload bytes that follow
//       16     4  payload_crc     crc32c of the payload bytes
//       20     4  header_crc      crc32c of header bytes [0, 20)
//       24     n  payload
//
// The blob must be exactly 24 + payload_len bytes long; trailing bytes are
// corruption. What the payload holds is defined by each index (see e.g.
// flat_index.h); payloads must be written with ByteWriter so that the byte
// order is explicit.
//
// Errors: malformed input is reported as Status::Corruption (EUCLEAN), a
// version newer than the reader supports as NotSupported (ENOTSUP), a blob
// of another index kind as InvalidArgument (EINVAL). Nothing here crashes or
// reads out of bounds on hostile input.
//
// Thread safety: ByteWriter/ByteReader objects are not thread-safe; the free
// functions are pure.
#ifndef VEXFS_ENGINE_SERIALIZE_H_
#define VEXFS_ENGINE_SERIALIZE_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "vexfs/engine/index.h"
#include "vexfs/status.h"

namespace vexfs::engine {

inline constexpr uint8_t kBlobMagic[4] = {'V', 'X', 'I', 'X'};
inline constexpr size_t kBlobHeaderSize = 24;

// Appends little-endian values to a growing byte buffer.
class ByteWriter {
 public:
  ByteWriter() = default;

  void PutU8(uint8_t v);
  void PutU16(uint16_t v);
  void PutU32(uint32_t v);
  void PutU64(uint64_t v);
  void PutI32(int32_t v) { PutU32(static_cast<uint32_t>(v)); }
  // IEEE 754 bit pattern, little-endian.
  void PutF32(float v);
  void PutBytes(const void* data, size_t n);
  // Arrays of scalars, each element little-endian.
  void PutU16Array(std::span<const uint16_t> v);
  void PutU32Array(std::span<const uint32_t> v);
  void PutU64Array(std::span<const uint64_t> v);
  void PutF32Array(std::span<const float> v);

  size_t size() const { return buf_.size(); }
  const std::vector<uint8_t>& data() const { return buf_; }
  // Moves the buffer out; the writer is empty afterwards.
  std::vector<uint8_t> Release() { return std::move(buf_); }

 private:
  std::vector<uint8_t> buf_;
};

// Reads little-endian values from a borrowed byte span with bounds checks.
// Every read either fills its output and advances, or returns Corruption
// and leaves the position unchanged.
// The span must outlive the reader.
class ByteReader {
 public:
  explicit ByteReader(std::span<const uint8_t> data) : data_(data) {}

  [[nodiscard]] Status ReadU8(uint8_t* v);
  [[nodiscard]] Status ReadU16(uint16_t* v);
  [[nodiscard]] Status ReadU32(uint32_t* v);
  [[nodiscard]] Status ReadU64(uint64_t* v);
  [[nodiscard]] Status ReadI32(int32_t* v);
  [[nodiscard]] Status ReadF32(float* v);
  // Copies n bytes to dst.
  [[nodiscard]] Status ReadBytes(void* dst, size_t n);
  // Returns a view of the next n bytes (no copy) and advances.
  [[nodiscard]] Status ReadSpan(size_t n, std::span<const uint8_t>* out);
  // Reads n little-endian elements into dst[0, n).
  [[nodiscard]] Status ReadU16Array(uint16_t* dst, size_t n);
  [[nodiscard]] Status ReadU32Array(uint32_t* dst, size_t n);
  [[nodiscard]] Status ReadU64Array(uint64_t* dst, size_t n);
  [[nodiscard]] Status ReadF32Array(float* dst, size_t n);

  // Corruption unless count * elem_size bytes remain (overflow-safe). Use it
  // to validate element counts read from the input BEFORE allocating.
  [[nodiscard]] Status CheckAvailable(uint64_t count, size_t elem_size) const;
  // Corruption if any bytes remain unread.
  [[nodiscard]] Status ExpectEnd() const;

  size_t position() const { return pos_; }
  size_t remaining() const { return data_.size() - pos_; }

 private:
  std::span<const uint8_t> data_;
  size_t pos_ = 0;
};

// Prepends the 24-byte header to `payload`. REQUIRES: version >= 1.
std::vector<uint8_t> WrapBlob(IndexKind kind, uint16_t version, std::span<const uint8_t> payload);

struct BlobView {
  IndexKind kind;
  uint16_t version;                  // 1 <= version <= max_version
  std::span<const uint8_t> payload;  // points into the input blob
};

// Validates magic, reserved byte, header crc, version (1..max_version),
// kind == expected_kind, exact length and payload crc.
Result<BlobView> UnwrapBlob(std::span<const uint8_t> blob, IndexKind expected_kind,
                            uint16_t max_version);

}  // namespace vexfs::engine

#endif  // VEXFS_ENGINE_SERIALIZE_H_
