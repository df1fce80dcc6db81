#include "services/kv/kv_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace bevrpc::kv {
namespace {

// Page tokens are the last key returned, base64-encoded with a marker so
// that arbitrary strings are rejected.
constexpr char kTokenMarker[] = "kv1:";

std::string EncodeToken(const std::string& last_key) {
  return absl::WebSafeBase64Escape(absl::StrCat(kTokenMarker, last_key));
}

bool DecodeToken(const std::string& token, std::string* last_key) {
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw) ||
      !absl::StartsWith(raw, kTokenMarker)) {
    return false;
  }
  *last_key = raw.substr(sizeof(kTokenMarker) - 1);
  return true;
}

absl::Status VersionMismatch(const std::string& key, uint64_t expected,
                             uint64_t actual, bool exists) {
  return absl::FailedPreconditionError(absl::StrCat(
      "key \"", key, "\": expected_version ", expected, " but the key ",
      exists ? absl::StrCat("has version ", actual) : "does not exist"));
}

}  // namespace

absl::Status KeyValueService::CheckKey(const std::string& key) const {
  if (key.empty()) return absl::InvalidArgumentError("key is empty");
  if (key.size() > limits_.max_key_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("key of ", key.size(), " bytes exceeds max_key_bytes ",
                     limits_.max_key_bytes));
  }
  return absl::OkStatus();
}

absl::Status KeyValueService::Get(const GetRequest& request,
                                  GetResponse* response) {
  absl::Status s = CheckKey(request.key());
  if (!s.ok()) return s;
  MutexLock lock(&mu_);
  auto it = entries_.find(request.key());
  if (it == entries_.end()) {
    return absl::NotFoundError(
        absl::StrCat("key \"", request.key(), "\" not found"));
  }
  Entry* e = response->mutable_entry();
  e->set_key(it->first);
  e->set_value(it->second.value);
  e->set_version(it->second.version);
  return absl::OkStatus();
}

absl::Status KeyValueService::Put(const PutRequest& request,
                                  PutResponse* response) {
  absl::Status s = CheckKey(request.key());
  if (!s.ok()) return s;
  if (request.value().size() > limits_.max_value_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "value of ", request.value().size(), " bytes exceeds max_value_bytes ",
        limits_.max_value_bytes));
  }
  MutexLock lock(&mu_);
  auto it = entries_.find(request.key());
  if (request.has_expected_version()) {
    uint64_t actual = it == entries_.end() ? 0 : it->second.version;
    if (actual != request.expected_version()) {
      return VersionMismatch(request.key(), request.expected_version(), actual,
                             it != entries_.end());
    }
  }
  uint64_t version = ++last_version_;
  if (it == entries_.end()) {
    entries_.emplace(request.key(), Value{request.value(), version});
  } else {
    it->second = Value{request.value(), version};
  }
  Entry* e = response->mutable_entry();
  e->set_key(request.key());
  e->set_value(request.value());
  e->set_version(version);
  return absl::OkStatus();
}

absl::Status KeyValueService::Delete(const DeleteRequest& request) {
  absl::Status s = CheckKey(request.key());
  if (!s.ok()) return s;
  MutexLock lock(&mu_);
  auto it = entries_.find(request.key());
  if (it == entries_.end()) {
    if (request.has_expected_version() && request.expected_version() != 0) {
      return VersionMismatch(request.key(), request.expected_version(), 0,
                             false);
    }
    return absl::NotFoundError(
        absl::StrCat("key \"", request.key(), "\" not found"));
  }
  if (request.has_expected_version() &&
      request.expected_version() != it->second.version) {
    return VersionMismatch(request.key(), request.expected_version(),
                           it->second.version, true);
  }
  entries_.erase(it);
  return absl::OkStatus();
}

void KeyValueService::GetAsync(ServerContext&, const GetRequest& request,
                               GetResponse* response, Completion done) {
  std::move(done).Finish(Get(request, response));
}

void KeyValueService::PutAsync(ServerContext&, const PutRequest& request,
                               PutResponse* response, Completion done) {
  std::move(done).Finish(Put(request, response));
}

void KeyValueService::DeleteAsync(ServerContext&, const DeleteRequest& request,
                                  DeleteResponse*, Completion done) {
  std::move(done).Finish(Delete(request));
}

absl::Status KeyValueService::List(ServerContext&, const ListRequest& request,
                                   ListResponse* response) {
  uint32_t page_size = request.page_size() == 0
                           ? limits_.default_page_size
                           : std::min(request.page_size(), limits_.max_page_size);
  std::string after;
  bool has_token = !request.page_token().empty();
  if (has_token && !DecodeToken(request.page_token(), &after)) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token \"", request.page_token(),
                     "\" is not a token from a previous List response"));
  }
  MutexLock lock(&mu_);
  auto it = has_token ? entries_.upper_bound(after)
                      : entries_.lower_bound(request.prefix());
  for (; it != entries_.end() && absl::StartsWith(it->first, request.prefix());
       ++it) {
    if (static_cast<uint32_t>(response->entries_size()) == page_size) {
      response->set_next_page_token(
          EncodeToken(response->entries(page_size - 1).key()));
      break;
    }
    Entry* e = response->add_entries();
    e->set_key(it->first);
    e->set_value(it->second.value);
    e->set_version(it->second.version);
  }
  return absl::OkStatus();
}

}  // namespace bevrpc::kv
