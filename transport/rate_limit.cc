#include "transport/rate_limit.h"

#include <event2/bufferevent.h>
#include <event2/util.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "transport/event_loop.h"

namespace bevrpc::transport {
namespace {

constexpr int kTickMs = 100;
constexpr int kTicksPerSecond = 1000 / kTickMs;

// "Unlimited", and the most any bucket holds: 1 GiB. Not EV_RATE_LIMIT_MAX:
// libevent 2.1.12's OpenSSL bufferevent keeps the bucket's allowance in an
// int (do_read/do_write), where EV_SSIZE_MAX becomes -1 and the connection
// never reads again.
constexpr uint64_t kUnlimited = uint64_t{1} << 30;

// Rate per tick, and a burst of one second's worth, for one direction.
void PerTick(uint64_t bytes_per_sec, size_t* rate, size_t* burst) {
  if (bytes_per_sec == 0) {
    *rate = kUnlimited;
    *burst = kUnlimited;
    return;
  }
  uint64_t capped = std::min<uint64_t>(bytes_per_sec, kUnlimited);
  *rate = std::max<uint64_t>(1, capped / kTicksPerSecond);
  *burst = std::max<uint64_t>(*rate, capped);
}

}  // namespace

absl::StatusOr<std::unique_ptr<TokenBucket>> TokenBucket::Create(
    const RateLimit& limit) {
  if (!limit.enabled()) {
    return absl::InvalidArgumentError("rate limit has no read or write rate");
  }
  size_t read_rate, read_burst, write_rate, write_burst;
  PerTick(limit.read_bytes_per_sec, &read_rate, &read_burst);
  PerTick(limit.write_bytes_per_sec, &write_rate, &write_burst);
  timeval tick{0, kTickMs * 1000};
  ev_token_bucket_cfg* cfg = ev_token_bucket_cfg_new(
      read_rate, read_burst, write_rate, write_burst, &tick);
  if (cfg == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid rate limit: read ", limit.read_bytes_per_sec,
        " B/s, write ", limit.write_bytes_per_sec, " B/s"));
  }
  return std::unique_ptr<TokenBucket>(new TokenBucket(cfg));
}

TokenBucket::~TokenBucket() { ev_token_bucket_cfg_free(cfg_); }

absl::StatusOr<std::unique_ptr<RateLimitGroup>> RateLimitGroup::Create(
    EventLoop* loop, const RateLimit& limit) {
  absl::StatusOr<std::unique_ptr<TokenBucket>> bucket = TokenBucket::Create(limit);
  if (!bucket.ok()) return bucket.status();
  std::unique_ptr<RateLimitGroup> group(new RateLimitGroup());
  group->bucket_ = *std::move(bucket);
  group->group_ =
      bufferevent_rate_limit_group_new(loop->base(), group->bucket_->cfg());
  if (group->group_ == nullptr) {
    return absl::InternalError("bufferevent_rate_limit_group_new failed");
  }
  return group;
}

void RateLimitGroup::Totals(uint64_t* read, uint64_t* written) const {
  ev_uint64_t r = 0, w = 0;
  // Takes the group's lock (libevent is built with threading on).
  bufferevent_rate_limit_group_get_totals(group_, &r, &w);
  *read = r;
  *written = w;
}

RateLimitGroup::~RateLimitGroup() {
  if (group_ != nullptr) bufferevent_rate_limit_group_free(group_);
}

}  // namespace bevrpc::transport
