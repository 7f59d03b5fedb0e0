#include "vexfs/status.h"

#include <cstring>

namespace vexfs {

std::string Status::ToString() const {
  if (ok()) return "OK";
  const char* name = strerrorname_np(err_);
  std::string out = name ? name : ("errno " + std::to_string(err_));
  if (!msg_.empty()) {
    out += ": ";
    out += msg_;
  }
  return out;
}

}  // namespace vexfs
