#include "tools/launch/replica_log.h"

#include <cerrno>
#include <cstring>
#include <iostream>

namespace bevrpc::launch {

ReplicaLog::ReplicaLog(std::string path, size_t max_bytes)
    : path_(std::move(path)), max_bytes_(max_bytes) {
  Open("a");
}

ReplicaLog::~ReplicaLog() {
  if (file_ != nullptr) std::fclose(file_);
}

void ReplicaLog::Open(const char* mode) {
  file_ = std::fopen(path_.c_str(), mode);
  if (file_ == nullptr) {
    if (!reported_) {
      std::cerr << "bevrpc-launch: cannot write " << path_ << ": "
                << std::strerror(errno) << "\n";
      reported_ = true;
    }
    return;
  }
  std::fseek(file_, 0, SEEK_END);
  long at = std::ftell(file_);
  size_ = at > 0 ? static_cast<size_t>(at) : 0;
}

void ReplicaLog::Rotate() {
  if (file_ != nullptr) std::fclose(file_);
  file_ = nullptr;
  std::rename(path_.c_str(), (path_ + ".1").c_str());
  Open("w");
}

void ReplicaLog::Append(absl::string_view line) {
  if (size_ > 0 && size_ + line.size() + 1 > max_bytes_) Rotate();
  if (file_ == nullptr) return;
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fputc('\n', file_);
  std::fflush(file_);
  size_ += line.size() + 1;
}

}  // namespace bevrpc::launch
