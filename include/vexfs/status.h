// Status and Result<T>: how every VexFS library call reports failure.
//
// The library never throws across a module boundary and never prints.
// A failed Status carries a POSIX errno value (so FUSE, the ioctl handler
// and the CLI tools can convert it exactly once at their boundary) and a
// human-readable message for logs and tool output.
//
// Thread safety: Status and Result are values; distinct objects may be used
// from different threads freely.
#ifndef VEXFS_STATUS_H_
#define VEXFS_STATUS_H_

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace vexfs {

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK

  static Status Ok() { return Status(); }
  // `err` is a positive errno value (EIO, ENOENT, ...). 0 is not allowed.
  static Status Error(int err, std::string msg) { return Status(err, std::move(msg)); }
  static Status IoError(std::string msg) { return Status(EIO, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(EUCLEAN, std::move(msg)); }
  static Status InvalidArgument(std::string msg) { return Status(EINVAL, std::move(msg)); }
  static Status NotFound(std::string msg) { return Status(ENOENT, std::move(msg)); }
  static Status NoSpace(std::string msg) { return Status(ENOSPC, std::move(msg)); }
  static Status NotSupported(std::string msg) { return Status(ENOTSUP, std::move(msg)); }

  bool ok() const { return err_ == 0; }
  // Positive errno, 0 when ok().
  int err() const { return err_; }
  bool IsCorruption() const { return err_ == EUCLEAN; }
  const std::string& message() const { return msg_; }
  // "EIO: message" style text for tools and logs.
  std::string ToString() const;

  // Explicitly discard a status (for best-effort cleanup paths).
  void IgnoreError() const {}

 private:
  Status(int err, std::string msg) : err_(err), msg_(std::move(msg)) {}
  int err_ = 0;
  std::string msg_;
};

// Result<T>: either a value or a failed Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT(runtime/explicit)
  Result(Status status) : v_(std::move(status)) {}   // NOLINT(runtime/explicit)

  bool ok() const { return std::holds_alternative<T>(v_); }
  // REQUIRES: !ok() for a meaningful status; returns Ok() when ok().
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }
  // REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace vexfs

// Propagate a failed Status from an expression returning Status.
#define VEXFS_RETURN_IF_ERROR(expr)        \
  do {                                     \
    ::vexfs::Status _vexfs_st = (expr);    \
    if (!_vexfs_st.ok()) return _vexfs_st; \
  } while (0)

#define VEXFS_CONCAT_INNER_(a, b) a##b
#define VEXFS_CONCAT_(a, b) VEXFS_CONCAT_INNER_(a, b)
// Assign the value of a Result expression to `lhs` or return its Status.
#define VEXFS_ASSIGN_OR_RETURN(lhs, expr) \
  VEXFS_ASSIGN_OR_RETURN_IMPL_(VEXFS_CONCAT_(_vexfs_res, __LINE__), lhs, expr)
#define VEXFS_ASSIGN_OR_RETURN_IMPL_(res, lhs, expr) \
  auto res = (expr);                                 \
  if (!res.ok()) return res.status();                \
  lhs = std::move(res).value()

#endif  // VEXFS_STATUS_H_
