#include "rpc/naming/etcd_client.h"

#include <google/protobuf/util/json_util.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/naming/etcd_gateway.pb.h"

namespace bevrpc::naming {
namespace {

namespace pb = ::bevrpc::naming::etcd;

std::string ToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;  // range_end, TTL, ID
  std::string out;
  // Only fails for messages with Any fields, which ours have none of.
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

absl::Status FromJson(absl::string_view json, google::protobuf::Message* m,
                      absl::string_view what) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto s = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), m, options);
  if (!s.ok()) {
    return absl::InternalError(absl::StrCat(
        "cannot parse etcd's answer to ", what, ": ", s.ToString(), ": ",
        json.substr(0, 256)));
  }
  return absl::OkStatus();
}

EtcdKeyValue FromProto(const pb::KeyValue& kv) {
  return EtcdKeyValue{kv.key(), kv.value(), kv.create_revision(),
                      kv.mod_revision(), kv.lease()};
}

EtcdWatchUpdate FromProto(const pb::WatchResponse& r) {
  EtcdWatchUpdate u;
  u.header_revision = r.header().revision();
  u.created = r.created();
  u.canceled = r.canceled();
  u.compact_revision = r.compact_revision();
  u.cancel_reason = r.cancel_reason();
  for (const pb::Event& e : r.events()) {
    EtcdEvent ev;
    ev.type = e.type() == pb::Event::DELETE ? EtcdEvent::Type::kDelete
                                            : EtcdEvent::Type::kPut;
    ev.kv = FromProto(e.kv());
    u.events.push_back(std::move(ev));
  }
  return u;
}

absl::Status GrpcStatus(int code, absl::string_view message) {
  if (code <= 0 || code > 16) code = static_cast<int>(absl::StatusCode::kUnknown);
  return absl::Status(static_cast<absl::StatusCode>(code),
                      absl::StrCat("etcd: ", message));
}

}  // namespace

std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

// A watch: its own HTTP connection and a line buffer (the gateway streams
// one JSON object per line; HTTP chunks do not follow lines).
class EtcdClient::WatchImpl : public EtcdWatch {
 public:
  WatchImpl(EtcdClient* client, size_t member, UpdateCallback on_update,
            EndCallback on_end)
      : client_(client),
        client_alive_(client->alive_),
        member_(member),
        on_update_(std::move(on_update)),
        on_end_(std::move(on_end)) {}

  absl::Status Start(const std::string& body, transport::EventLoop* loop,
                     const HostPort& member,
                     const transport::HttpClientOptions& options) {
    auto http = transport::HttpClient::Create(loop, member.host, member.port,
                                              options);
    if (!http.ok()) return http.status();
    http_ = *std::move(http);
    request_ = http_->PostStreaming(
        "/v3/watch", body, {},
        [this](absl::string_view data) { OnData(data); },
        [this](absl::Status s) { End(s.ok() ? absl::UnavailableError(
                                                  "etcd closed the watch")
                                            : std::move(s)); });
    return absl::OkStatus();
  }

 private:
  void OnData(absl::string_view data) {
    buffer_.append(data.data(), data.size());
    std::weak_ptr<int> alive = alive_;
    size_t start = 0;
    for (size_t nl; (nl = buffer_.find('\n', start)) != std::string::npos;
         start = nl + 1) {
      absl::string_view line(buffer_.data() + start, nl - start);
      if (line.find_first_not_of(" \r\t") == absl::string_view::npos) continue;
      pb::WatchStreamLine msg;
      absl::Status s = FromJson(line, &msg, "/v3/watch");
      if (s.ok() && msg.has_error()) {
        s = GrpcStatus(msg.error().grpc_code(), msg.error().message());
      }
      if (!s.ok()) {
        http_->Cancel(request_);
        End(std::move(s));
        return;
      }
      on_update_(FromProto(msg.result()));
      if (alive.expired()) return;  // destroyed by the callback
    }
    buffer_.erase(0, start);
    // One watch message without its newline: bounded, not grown forever
    // (etcd's own messages are far smaller; its request limit is 1.5 MiB).
    constexpr size_t kMaxWatchMessageBytes = 64 << 20;
    if (buffer_.size() > kMaxWatchMessageBytes) {
      http_->Cancel(request_);
      End(absl::ResourceExhaustedError(absl::StrCat(
          "/v3/watch: a message over ", kMaxWatchMessageBytes,
          " bytes without its newline")));
    }
  }

  void End(absl::Status s) {
    if (s.code() == absl::StatusCode::kUnavailable &&
        !client_alive_.expired() && client_->current_ == member_) {
      client_->current_ = (member_ + 1) % client_->members_.size();
    }
    EndCallback cb = std::move(on_end_);
    cb(std::move(s));  // may destroy this
  }

  EtcdClient* client_;
  std::weak_ptr<int> client_alive_;
  size_t member_;
  UpdateCallback on_update_;
  EndCallback on_end_;
  std::unique_ptr<transport::HttpClient> http_;
  uint64_t request_ = 0;
  std::string buffer_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(
    transport::EventLoop* loop, std::vector<HostPort> members,
    const EtcdClientOptions& options) {
  if (members.empty()) {
    return absl::InvalidArgumentError("EtcdClient needs at least one member");
  }
  return std::unique_ptr<EtcdClient>(
      new EtcdClient(loop, std::move(members), options));
}

EtcdClient::EtcdClient(transport::EventLoop* loop,
                       std::vector<HostPort> members,
                       const EtcdClientOptions& options)
    : loop_(loop), members_(std::move(members)), options_(options) {
  clients_.resize(members_.size());
}

EtcdClient::~EtcdClient() = default;

std::string EtcdClient::current_member() const {
  return members_[current_].ToString();
}

transport::HttpClient* EtcdClient::ClientFor(size_t member) {
  if (clients_[member] == nullptr) {
    transport::HttpClientOptions options;
    options.io_timeout = options_.http_io_timeout;
    // Fails only when out of memory; the caller reports the null.
    auto c = transport::HttpClient::Create(loop_, members_[member].host,
                                           members_[member].port, options);
    if (c.ok()) clients_[member] = *std::move(c);
  }
  return clients_[member].get();
}

void EtcdClient::Call(std::string path, std::string body,
                      size_t attempts_left, absl::Duration timeout,
                      BodyCallback done) {
  size_t member = current_;
  transport::HttpClient* http = ClientFor(member);
  if (http == nullptr) {
    loop_->Post([alive = std::weak_ptr<int>(alive_), done = std::move(done)]()
                    mutable {
      if (!alive.expired()) done(absl::ResourceExhaustedError("no memory"));
    });
    return;
  }
  std::string p = path, b = body;
  http->Post(
      p, b, {}, timeout,
      [this, path = std::move(path), body = std::move(body), attempts_left,
       timeout, member, done = std::move(done)](
          absl::StatusOr<transport::HttpResponse> r) mutable {
        if (!r.ok()) {
          if (r.status().code() == absl::StatusCode::kUnavailable &&
              attempts_left > 1) {
            if (current_ == member) current_ = (member + 1) % members_.size();
            Call(std::move(path), std::move(body), attempts_left - 1, timeout,
                 std::move(done));
            return;
          }
          done(absl::Status(r.status().code(),
                            absl::StrCat("etcd ", members_[member].ToString(),
                                         path, ": ", r.status().message())));
          return;
        }
        if (r->status != 200) {
          pb::ErrorBody err;
          if (FromJson(r->body, &err, path).ok() && err.code() != 0) {
            done(GrpcStatus(err.code(), err.message().empty()
                                            ? err.error()
                                            : err.message()));
          } else {
            done(transport::HttpStatusToStatus(r->status, r->body));
          }
          return;
        }
        done(std::move(r->body));
      });
}

void EtcdClient::Range(absl::string_view key, absl::string_view range_end,
                       Callback<EtcdRange> done) {
  pb::RangeRequest req;
  req.set_key(std::string(key));
  req.set_range_end(std::string(range_end));
  Call("/v3/kv/range", ToJson(req), members_.size(), options_.request_timeout,
       [done = std::move(done)](absl::StatusOr<std::string> body) mutable {
         if (!body.ok()) return done(body.status());
         pb::RangeResponse resp;
         if (absl::Status s = FromJson(*body, &resp, "/v3/kv/range");
             !s.ok()) {
           return done(s);
         }
         EtcdRange out;
         out.revision = resp.header().revision();
         for (const pb::KeyValue& kv : resp.kvs()) {
           out.kvs.push_back(FromProto(kv));
         }
         done(std::move(out));
       });
}

void EtcdClient::Put(absl::string_view key, absl::string_view value,
                     int64_t lease, Callback<int64_t> done) {
  pb::PutRequest req;
  req.set_key(std::string(key));
  req.set_value(std::string(value));
  req.set_lease(lease);
  Call("/v3/kv/put", ToJson(req), members_.size(), options_.request_timeout,
       [done = std::move(done)](absl::StatusOr<std::string> body) mutable {
         if (!body.ok()) return done(body.status());
         pb::PutResponse resp;
         if (absl::Status s = FromJson(*body, &resp, "/v3/kv/put"); !s.ok()) {
           return done(s);
         }
         done(resp.header().revision());
       });
}

void EtcdClient::DeleteRange(absl::string_view key,
                             absl::string_view range_end,
                             Callback<int64_t> done) {
  pb::DeleteRangeRequest req;
  req.set_key(std::string(key));
  req.set_range_end(std::string(range_end));
  Call("/v3/kv/deleterange", ToJson(req), members_.size(),
       options_.request_timeout,
       [done = std::move(done)](absl::StatusOr<std::string> body) mutable {
         if (!body.ok()) return done(body.status());
         pb::DeleteRangeResponse resp;
         if (absl::Status s = FromJson(*body, &resp, "/v3/kv/deleterange");
             !s.ok()) {
           return done(s);
         }
         done(resp.deleted());
       });
}

void EtcdClient::LeaseGrant(int64_t ttl_seconds, Callback<EtcdLease> done) {
  pb::LeaseGrantRequest req;
  req.set_ttl(ttl_seconds);
  Call("/v3/lease/grant", ToJson(req), members_.size(),
       options_.request_timeout,
       [done = std::move(done)](absl::StatusOr<std::string> body) mutable {
         if (!body.ok()) return done(body.status());
         pb::LeaseGrantResponse resp;
         if (absl::Status s = FromJson(*body, &resp, "/v3/lease/grant");
             !s.ok()) {
           return done(s);
         }
         if (!resp.error().empty() || resp.id() == 0) {
           return done(absl::UnavailableError(
               absl::StrCat("etcd refused a lease: ", resp.error())));
         }
         done(EtcdLease{resp.id(), resp.ttl()});
       });
}

void EtcdClient::LeaseKeepAlive(int64_t id, Callback<int64_t> done) {
  pb::LeaseKeepAliveRequest req;
  req.set_id(id);
  Call("/v3/lease/keepalive", ToJson(req), members_.size(),
       options_.request_timeout,
       [done = std::move(done)](absl::StatusOr<std::string> body) mutable {
         if (!body.ok()) return done(body.status());
         // A stream endpoint: the first line is the answer.
         absl::string_view line(*body);
         line = line.substr(0, line.find('\n'));
         pb::LeaseKeepAliveStreamLine resp;
         if (absl::Status s = FromJson(line, &resp, "/v3/lease/keepalive");
             !s.ok()) {
           return done(s);
         }
         if (resp.has_error()) {
           return done(
               GrpcStatus(resp.error().grpc_code(), resp.error().message()));
         }
         done(resp.result().ttl());
       });
}

void EtcdClient::LeaseRevoke(int64_t id, absl::Duration timeout,
                             absl::AnyInvocable<void(absl::Status)> done) {
  pb::LeaseRevokeRequest req;
  req.set_id(id);
  Call("/v3/lease/revoke", ToJson(req), 1, timeout,
       [done = std::move(done)](absl::StatusOr<std::string> body) mutable {
         done(body.status());
       });
}

absl::StatusOr<std::unique_ptr<EtcdWatch>> EtcdClient::Watch(absl::string_view key,
                                             absl::string_view range_end,
                                             int64_t start_revision,
                                             UpdateCallback on_update,
                                             EndCallback on_end) {
  pb::WatchRequest req;
  pb::WatchCreateRequest* create = req.mutable_create_request();
  create->set_key(std::string(key));
  create->set_range_end(std::string(range_end));
  create->set_start_revision(start_revision);
  auto watch = std::make_unique<WatchImpl>(this, current_, std::move(on_update),
                                           std::move(on_end));
  transport::HttpClientOptions options;
  options.io_timeout = options_.http_io_timeout;
  absl::Status s =
      watch->Start(ToJson(req), loop_, members_[current_], options);
  if (!s.ok()) return s;
  return watch;
}

}  // namespace bevrpc::naming
