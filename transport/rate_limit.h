// Byte-rate limits for connections, on libevent's token buckets.
//
//   RateLimit per_conn{.read_bytes_per_sec = 1 << 20};
//   auto bucket = TokenBucket::Create(per_conn).value();   // shared config
//   auto group = RateLimitGroup::Create(loop, {.write_bytes_per_sec = 8 << 20});
//   connection->SetRateLimits(bucket.get(), group->get());
//
// A TokenBucket and a RateLimitGroup must outlive every connection that uses
// them (libevent does not reference-count either). Both are thread-safe once
// created; create and destroy them on any thread while no connection uses
// them. Limits are best-effort: libevent refills every tick (100 ms here) and
// a bucket may briefly go negative.
#ifndef BEVRPC_TRANSPORT_RATE_LIMIT_H_
#define BEVRPC_TRANSPORT_RATE_LIMIT_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"

struct ev_token_bucket_cfg;
struct bufferevent_rate_limit_group;

namespace bevrpc::transport {

class EventLoop;

struct RateLimit {
  // Bytes per second read from the socket; 0 = unlimited. Default: 0.
  uint64_t read_bytes_per_sec = 0;
  // Bytes per second written to the socket; 0 = unlimited. Default: 0.
  uint64_t write_bytes_per_sec = 0;

  bool enabled() const {
    return read_bytes_per_sec != 0 || write_bytes_per_sec != 0;
  }
};

// A per-connection limit: each connection using it gets its own bucket.
class TokenBucket {
 public:
  static absl::StatusOr<std::unique_ptr<TokenBucket>> Create(
      const RateLimit& limit);
  ~TokenBucket();

  ev_token_bucket_cfg* cfg() const { return cfg_; }

 private:
  explicit TokenBucket(ev_token_bucket_cfg* cfg) : cfg_(cfg) {}
  ev_token_bucket_cfg* cfg_;
};

// A limit shared by every connection in the group (e.g. server-wide). Its
// refill timer runs on `loop`, which must outlive the group.
class RateLimitGroup {
 public:
  static absl::StatusOr<std::unique_ptr<RateLimitGroup>> Create(
      EventLoop* loop, const RateLimit& limit);
  ~RateLimitGroup();

  bufferevent_rate_limit_group* get() const { return group_; }
  // Bytes read and written by the group's connections so far (libevent's
  // group totals). Thread-safe.
  void Totals(uint64_t* read, uint64_t* written) const;

 private:
  RateLimitGroup() = default;
  std::unique_ptr<TokenBucket> bucket_;
  bufferevent_rate_limit_group* group_ = nullptr;
};

}  // namespace bevrpc::transport

#endif  // BEVRPC_TRANSPORT_RATE_LIMIT_H_
