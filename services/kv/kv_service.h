// KeyValueService: an in-memory implementation of bevrpc.kv.KeyValue.
//
//   bevrpc::kv::KeyValueService kv;     // must outlive the server
//   server.RegisterService(&kv);
//
// Get, Put and Delete take one short lock and run inline on the I/O loop
// (callback flavour); List copies up to a page under the lock and runs on
// the worker pool (sync flavour). Thread-safe.
#ifndef BEVRPC_SERVICES_KV_KV_SERVICE_H_
#define BEVRPC_SERVICES_KV_KV_SERVICE_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "services/kv/kv.bevrpc.h"
#include "transport/sync.h"

namespace bevrpc::kv {

struct KeyValueLimits {
  // Longest key accepted. Default: 1024.
  size_t max_key_bytes = 1024;
  // Largest value accepted. Default: 1 MiB.
  size_t max_value_bytes = 1024 * 1024;
  // List page size when the request asks for 0. Default: 100.
  uint32_t default_page_size = 100;
  // Largest List page; bigger requests are clamped. Default: 1000.
  uint32_t max_page_size = 1000;
};

class KeyValueService : public KeyValue::Service {
 public:
  explicit KeyValueService(KeyValueLimits limits = {}) : limits_(limits) {}

  void GetAsync(ServerContext& ctx, const GetRequest& request,
                GetResponse* response, Completion done) override;
  void PutAsync(ServerContext& ctx, const PutRequest& request,
                PutResponse* response, Completion done) override;
  void DeleteAsync(ServerContext& ctx, const DeleteRequest& request,
                   DeleteResponse* response, Completion done) override;
  absl::Status List(ServerContext& ctx, const ListRequest& request,
                    ListResponse* response) override;

  // The same operations without RPC, for tests and embedding.
  absl::Status Get(const GetRequest& request, GetResponse* response);
  absl::Status Put(const PutRequest& request, PutResponse* response);
  absl::Status Delete(const DeleteRequest& request);

 private:
  struct Value {
    std::string value;
    uint64_t version;
  };

  absl::Status CheckKey(const std::string& key) const;

  const KeyValueLimits limits_;
  Mutex mu_;
  absl::btree_map<std::string, Value> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t last_version_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace bevrpc::kv

#endif  // BEVRPC_SERVICES_KV_KV_SERVICE_H_
