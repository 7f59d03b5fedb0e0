#include "vexfs/engine/serialize.h"

#include <bit>
#include <cstring>
#include <string>

#include "vexfs/crc32c.h"

namespace vexfs::engine {
namespace {

constexpr bool kLittleHost = std::endian::native == std::endian::little;

template <typename T>
void StoreLe(uint8_t* p, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

template <typename T>
T LoadLe(const uint8_t* p) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(p[i]) << (8 * i);
  return v;
}

template <typename T>
void PutArray(std::vector<uint8_t>* buf, const T* v, size_t n) {
  const size_t off = buf->size();
  buf->resize(off + n * sizeof(T));
  uint8_t* p = buf->data() + off;
  if constexpr (kLittleHost) {
    if (n != 0) std::memcpy(p, v, n * sizeof(T));
  } else {
    for (size_t i = 0; i < n; ++i) StoreLe<T>(p + i * sizeof(T), v[i]);
  }
}

template <typename T>
void GetArray(const uint8_t* p, T* dst, size_t n) {
  if constexpr (kLittleHost) {
    if (n != 0) std::memcpy(dst, p, n * sizeof(T));
  } else {
    for (size_t i = 0; i < n; ++i) dst[i] = LoadLe<T>(p + i * sizeof(T));
  }
}

Status Short(size_t want, size_t have, size_t pos) {
  return Status::Corruption("truncated input: need " + std::to_string(want) + " bytes at offset " +
                            std::to_string(pos) + ", " + std::to_string(have) + " left");
}

}  // namespace

// ---- ByteWriter ----

void ByteWriter::PutU8(uint8_t v) { buf_.push_back(v); }
void ByteWriter::PutU16(uint16_t v) {
  uint8_t b[2];
  StoreLe(b, v);
  buf_.insert(buf_.end(), b, b + 2);
}
void ByteWriter::PutU32(uint32_t v) {
  uint8_t b[4];
  StoreLe(b, v);
  buf_.insert(buf_.end(), b, b + 4);
}
void ByteWriter::PutU64(uint64_t v) {
  uint8_t b[8];
  StoreLe(b, v);
  buf_.insert(buf_.end(), b, b + 8);
}
void ByteWriter::PutF32(float v) { PutU32(std::bit_cast<uint32_t>(v)); }
void ByteWriter::PutBytes(const void* data, size_t n) {
  if (n == 0) return;
  const auto* p = static_cast<const uint8_t*>(data);
  buf_.insert(buf_.end(), p, p + n);
}
void ByteWriter::PutU16Array(std::span<const uint16_t> v) { PutArray(&buf_, v.data(), v.size()); }
void ByteWriter::PutU32Array(std::span<const uint32_t> v) { PutArray(&buf_, v.data(), v.size()); }
void ByteWriter::PutU64Array(std::span<const uint64_t> v) { PutArray(&buf_, v.data(), v.size()); }
void ByteWriter::PutF32Array(std::span<const float> v) {
  static_assert(sizeof(float) == sizeof(uint32_t));
  const size_t off = buf_.size();
  buf_.resize(off + v.size() * 4);
  uint8_t* p = buf_.data() + off;
  if constexpr (kLittleHost) {
    if (!v.empty()) std::memcpy(p, v.data(), v.size() * 4);
  } else {
    for (size_t i = 0; i < v.size(); ++i)
      StoreLe<uint32_t>(p + 4 * i, std::bit_cast<uint32_t>(v[i]));
  }
}

// ---- ByteReader ----

Status ByteReader::CheckAvailable(uint64_t count, size_t elem_size) const {
  const size_t rem = remaining();
  if (elem_size != 0 && count > rem / elem_size) {
    return Status::Corruption("count " + std::to_string(count) + " of " +
                              std::to_string(elem_size) + "-byte elements exceeds the " +
                              std::to_string(rem) + " bytes left");
  }
  return Status::Ok();
}

Status ByteReader::ExpectEnd() const {
  if (remaining() != 0) {
    return Status::Corruption(std::to_string(remaining()) + " unexpected trailing bytes");
  }
  return Status::Ok();
}

Status ByteReader::ReadSpan(size_t n, std::span<const uint8_t>* out) {
  if (n > remaining()) return Short(n, remaining(), pos_);
  *out = data_.subspan(pos_, n);
  pos_ += n;
  return Status::Ok();
}

Status ByteReader::ReadBytes(void* dst, size_t n) {
  std::span<const uint8_t> s;
  VEXFS_RETURN_IF_ERROR(ReadSpan(n, &s));
  if (n != 0) std::memcpy(dst, s.data(), n);
  return Status::Ok();
}

Status ByteReader::ReadU8(uint8_t* v) {
  std::span<const uint8_t> s;
  VEXFS_RETURN_IF_ERROR(ReadSpan(1, &s));
  *v = s[0];
  return Status::Ok();
}
Status ByteReader::ReadU16(uint16_t* v) {
  std::span<const uint8_t> s;
  VEXFS_RETURN_IF_ERROR(ReadSpan(2, &s));
  *v = LoadLe<uint16_t>(s.data());
  return Status::Ok();
}
Status ByteReader::ReadU32(uint32_t* v) {
  std::span<const uint8_t> s;
  VEXFS_RETURN_IF_ERROR(ReadSpan(4, &s));
  *v = LoadLe<uint32_t>(s.data());
  return Status::Ok();
}
Status ByteReader::ReadU64(uint64_t* v) {
  std::span<const uint8_t> s;
  VEXFS_RETURN_IF_ERROR(ReadSpan(8, &s));
  *v = LoadLe<uint64_t>(s.data());
  return Status::Ok();
}
Status ByteReader::ReadI32(int32_t* v) {
  uint32_t u;
  VEXFS_RETURN_IF_ERROR(ReadU32(&u));
  *v = static_cast<int32_t>(u);
  return Status::Ok();
}
Status ByteReader::ReadF32(float* v) {
  uint32_t u;
  VEXFS_RETURN_IF_ERROR(ReadU32(&u));
  *v = std::bit_cast<float>(u);
  return Status::Ok();
}

Status ByteReader::ReadU16Array(uint16_t* dst, size_t n) {
  VEXFS_RETURN_IF_ERROR(CheckAvailable(n, 2));
  GetArray(data_.data() + pos_, dst, n);
  pos_ += n * 2;
  return Status::Ok();
}
Status ByteReader::ReadU32Array(uint32_t* dst, size_t n) {
  VEXFS_RETURN_IF_ERROR(CheckAvailable(n, 4));
  GetArray(data_.data() + pos_, dst, n);
  pos_ += n * 4;
  return Status::Ok();
}
Status ByteReader::ReadU64Array(uint64_t* dst, size_t n) {
  VEXFS_RETURN_IF_ERROR(CheckAvailable(n, 8));
  GetArray(data_.data() + pos_, dst, n);
  pos_ += n * 8;
  return Status::Ok();
}
Status ByteReader::ReadF32Array(float* dst, size_t n) {
  VEXFS_RETURN_IF_ERROR(CheckAvailable(n, 4));
  const uint8_t* p = data_.data() + pos_;
  if constexpr (kLittleHost) {
    if (n != 0) std::memcpy(dst, p, n * 4);
  } else {
    for (size_t i = 0; i < n; ++i) dst[i] = std::bit_cast<float>(LoadLe<uint32_t>(p + 4 * i));
  }
  pos_ += n * 4;
  return Status::Ok();
}

// ---- Blob container ----

std::vector<uint8_t> WrapBlob(IndexKind kind, uint16_t version, std::span<const uint8_t> payload) {
  std::vector<uint8_t> out(kBlobHeaderSize + payload.size());
  uint8_t* h = out.data();
  std::memcpy(h, kBlobMagic, 4);
  StoreLe<uint16_t>(h + 4, version);
  h[6] = static_cast<uint8_t>(kind);
  h[7] = 0;
  StoreLe<uint64_t>(h + 8, payload.size());
  StoreLe<uint32_t>(h + 16, Crc32c(payload.data(), payload.size()));
  StoreLe<uint32_t>(h + 20, Crc32c(h, 20));
  if (!payload.empty()) std::memcpy(h + kBlobHeaderSize, payload.data(), payload.size());
  return out;
}

Result<BlobView> UnwrapBlob(std::span<const uint8_t> blob, IndexKind expected_kind,
                            uint16_t max_version) {
  if (blob.size() < kBlobHeaderSize) {
    return Status::Corruption("blob shorter than its " + std::to_string(kBlobHeaderSize) +
                              "-byte header (" + std::to_string(blob.size()) + " bytes)");
  }
  const uint8_t* h = blob.data();
  if (std::memcmp(h, kBlobMagic, 4) != 0) return Status::Corruption("bad blob magic");
  if (LoadLe<uint32_t>(h + 20) != Crc32c(h, 20)) {
    return Status::Corruption("blob header checksum mismatch");
  }
  if (h[7] != 0) return Status::Corruption("blob header reserved byte is not zero");
  const uint16_t version = LoadLe<uint16_t>(h + 4);
  if (version == 0) return Status::Corruption("blob version 0 is invalid");
  if (version > max_version) {
    return Status::NotSupported("blob version " + std::to_string(version) +
                                " is newer than supported " + std::to_string(max_version));
  }
  if (h[6] != static_cast<uint8_t>(expected_kind)) {
    return Status::InvalidArgument("blob holds index kind " + std::to_string(h[6]) + ", expected " +
                                   std::to_string(static_cast<unsigned>(expected_kind)));
  }
  const uint64_t len = LoadLe<uint64_t>(h + 8);
  if (len != blob.size() - kBlobHeaderSize) {
    return Status::Corruption("blob payload length " + std::to_string(len) + " but " +
                              std::to_string(blob.size() - kBlobHeaderSize) + " bytes present");
  }
  std::span<const uint8_t> payload = blob.subspan(kBlobHeaderSize);
  if (LoadLe<uint32_t>(h + 16) != Crc32c(payload.data(), payload.size())) {
    return Status::Corruption("blob payload checksum mismatch");
  }
  return BlobView{expected_kind, version, payload};
}

}  // namespace vexfs::engine
