// HttpClient against a small evhttp server running in the test, on its own
// loop thread: unary POSTs, streamed chunks, a peer closing mid-stream,
// cancel (also from inside a callback), destruction inside a callback,
// timeouts and the idle-read-timeout workaround for quiet streams.
#include "transport/http_client.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "transport/sync.h"
#include "transport/testing/loop_thread.h"

namespace bevrpc::transport {
namespace {

constexpr absl::Duration kWait = absl::Seconds(10);

// The test server. Loop thread only.
class TestServer {
 public:
  explicit TestServer(EventLoop* loop) : loop_(loop) {
    http_ = evhttp_new(loop->base());
    handle_ = evhttp_bind_socket_with_handle(http_, "127.0.0.1", 0);
    sockaddr_in sin{};
    socklen_t len = sizeof(sin);
    getsockname(evhttp_bound_socket_get_fd(handle_),
                reinterpret_cast<sockaddr*>(&sin), &len);
    port_ = ntohs(sin.sin_port);
    evhttp_set_gencb(http_, &TestServer::OnRequest, this);
  }
  ~TestServer() {
    // Frees every connection; each close callback forgets its step.
    evhttp_free(http_);
    while (!steps_.empty()) Forget(steps_.back());
  }
  uint16_t port() const { return port_; }

 private:
  struct Step {
    TestServer* server;
    evhttp_request* req;
    std::vector<std::string> chunks;
    size_t next = 0;
    absl::Duration every;
    bool close_at_end = false;  // drop the connection instead of ending
    bool forever = false;
    event* ev = nullptr;
  };

  static void OnRequest(evhttp_request* req, void* arg) {
    auto* self = static_cast<TestServer*>(arg);
    std::string uri = evhttp_request_get_uri(req);
    evbuffer* in = evhttp_request_get_input_buffer(req);
    std::string body(evbuffer_get_length(in), '\0');
    evbuffer_remove(in, body.data(), body.size());
    const char* host =
        evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
    if (uri == "/method?x=1") {
      const char* m =
          evhttp_request_get_command(req) == EVHTTP_REQ_GET ? "GET" : "other";
      self->Reply(req, 200, absl::StrCat(m, " body=", body));
    } else if (uri == "/echo") {
      self->Reply(req, 200, absl::StrCat("host=", host ? host : "(none)",
                                         " body=", body));
    } else if (uri == "/missing") {
      self->Reply(req, 404, "no such thing");
    } else if (uri == "/stream") {
      self->Stream(req, {"one\n", "two\n", "three\n"}, absl::Milliseconds(20),
                   false, false);
    } else if (uri == "/stream_then_close") {
      self->Stream(req, {"first\n"}, absl::Milliseconds(20), true, false);
    } else if (uri == "/stream_forever") {
      self->Stream(req, {"tick\n"}, absl::Milliseconds(20), false, true);
    } else if (uri == "/quiet_stream") {
      // Silent for much longer than the client's 300 ms idle timeout.
      self->Stream(req, {"late\n"}, absl::Milliseconds(1500), false, false);
    } else if (uri == "/slow") {
      self->Later(req, absl::Milliseconds(1500));
    } else if (uri == "/hang") {
      self->Hang(req);  // never answered
    }
  }

  void Reply(evhttp_request* req, int code, const std::string& body) {
    evbuffer* out = evbuffer_new();
    evbuffer_add(out, body.data(), body.size());
    evhttp_send_reply(req, code, "X", out);
    evbuffer_free(out);
  }

  void Later(evhttp_request* req, absl::Duration after) {
    auto* step = new Step{this, req, {}, 0, after};
    step->ev = evtimer_new(
        loop_->base(),
        [](evutil_socket_t, short, void* arg) {
          auto* s = static_cast<Step*>(arg);
          evhttp_request* req = s->req;
          TestServer* server = s->server;
          server->Forget(s);
          server->Reply(req, 200, "finally");
        },
        step);
    Arm(step);
  }

  void Stream(evhttp_request* req, std::vector<std::string> chunks,
              absl::Duration every, bool close_at_end, bool forever) {
    evhttp_send_reply_start(req, 200, "OK");
    auto* step = new Step{this, req, std::move(chunks), 0, every, close_at_end,
                          forever};
    step->ev = evtimer_new(loop_->base(), &TestServer::OnStep, step);
    Arm(step);
  }

  void Hang(evhttp_request* req) {
    auto* step = new Step{this, req};
    step->ev = evtimer_new(loop_->base(), &TestServer::OnStep, step);
    Track(step);
  }

  // The client may close the connection first. evhttp then detaches a
  // request the handler has not finished (evhttp_connection_incoming_fail)
  // and leaves freeing it to us; the close callback does that and forgets
  // the step. On evhttp_free() the request is still attached: evhttp frees
  // it.
  void Track(Step* step) {
    steps_.push_back(step);
    evhttp_connection_set_closecb(
        evhttp_request_get_connection(step->req),
        [](evhttp_connection*, void* arg) {
          auto* s = static_cast<Step*>(arg);
          evhttp_request* req = s->req;
          s->req = nullptr;
          s->server->Forget(s);
          if (evhttp_request_get_connection(req) == nullptr) {
            evhttp_request_free(req);
          }
        },
        step);
  }

  void Arm(Step* step) {
    Track(step);
    timeval tv = absl::ToTimeval(step->every);
    evtimer_add(step->ev, &tv);
  }

  void Forget(Step* step) {
    if (step->req != nullptr) {
      evhttp_connection_set_closecb(evhttp_request_get_connection(step->req),
                                    nullptr, nullptr);
    }
    steps_.erase(std::find(steps_.begin(), steps_.end(), step));
    event_free(step->ev);
    delete step;
  }

  static void OnStep(evutil_socket_t, short, void* arg) {
    auto* s = static_cast<Step*>(arg);
    if (s->next < s->chunks.size() || s->forever) {
      const std::string& c = s->chunks[s->next % s->chunks.size()];
      ++s->next;
      evbuffer* out = evbuffer_new();
      evbuffer_add(out, c.data(), c.size());
      evhttp_send_reply_chunk(s->req, out);
      evbuffer_free(out);
      timeval tv = absl::ToTimeval(s->every);
      evtimer_add(s->ev, &tv);
      return;
    }
    if (s->close_at_end) {
      // The reply never ends: the close callback frees the request.
      evhttp_connection* conn = evhttp_request_get_connection(s->req);
      shutdown(bufferevent_getfd(evhttp_connection_get_bufferevent(conn)),
               SHUT_RDWR);
      return;
    }
    // Forget first: that clears the close callback.
    evhttp_request* req = s->req;
    s->server->Forget(s);
    evhttp_send_reply_end(req);
  }

  EventLoop* loop_;
  evhttp* http_;
  evhttp_bound_socket* handle_;
  uint16_t port_ = 0;
  std::vector<Step*> steps_;
};

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(lt_.RunOnLoop([&] {
      server_ = std::make_unique<TestServer>(lt_.loop());
      HttpClientOptions options;
      options.io_timeout = absl::Milliseconds(300);
      client_ =
          HttpClient::Create(lt_.loop(), "127.0.0.1", server_->port(), options)
              .value();
    }));
  }
  void TearDown() override {
    ASSERT_TRUE(lt_.RunOnLoop([&] {
      client_.reset();
      server_.reset();
    }));
  }

  // Posts to `path` on the loop and waits for the response.
  absl::StatusOr<HttpResponse> PostAndWait(const std::string& path,
                                           const std::string& body,
                                           absl::Duration timeout = kWait) {
    Notification done;
    absl::StatusOr<HttpResponse> result;
    lt_.loop()->Post([&] {
      client_->Post(path, body, {}, timeout,
                    [&](absl::StatusOr<HttpResponse> r) {
                      result = std::move(r);
                      done.Notify();
                    });
    });
    if (!done.WaitForNotificationWithTimeout(kWait)) {
      return absl::InternalError("no callback");
    }
    return result;
  }

  testing::LoopThread lt_;
  std::unique_ptr<TestServer> server_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(HttpClientTest, PostSendsBodyAndHostHeader) {
  absl::StatusOr<HttpResponse> r = PostAndWait("/echo", R"({"k":1})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, absl::StrCat("host=127.0.0.1:", server_->port(),
                                  R"( body={"k":1})"));
  // The connection is reused for the next request.
  r = PostAndWait("/echo", "again");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, absl::StrCat("host=127.0.0.1:", server_->port(),
                                  " body=again"));
}

TEST_F(HttpClientTest, GetSendsNoBodyAndKeepsTheQuery) {
  Notification done;
  absl::StatusOr<HttpResponse> r;
  lt_.loop()->Post([&] {
    client_->Get("/method?x=1", {}, kWait, [&](absl::StatusOr<HttpResponse> x) {
      r = std::move(x);
      done.Notify();
    });
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "GET body=");
}

TEST_F(HttpClientTest, NonOkStatusIsAResponse) {
  absl::StatusOr<HttpResponse> r = PostAndWait("/missing", "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, "no such thing");
  EXPECT_EQ(HttpStatusToStatus(404, "x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(HttpStatusToStatus(503, "x").code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(HttpClientTest, ConnectRefusedIsUnavailable) {
  // A bound socket that does not listen: connecting to it is refused.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  socklen_t len = sizeof(sin);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
  ASSERT_TRUE(lt_.RunOnLoop([&] {
    client_ = HttpClient::Create(lt_.loop(), "127.0.0.1", ntohs(sin.sin_port))
                  .value();
  }));
  absl::StatusOr<HttpResponse> r = PostAndWait("/echo", "x");
  close(fd);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

TEST_F(HttpClientTest, RequestTimeoutIsDeadlineExceeded) {
  absl::StatusOr<HttpResponse> r =
      PostAndWait("/hang", "", absl::Milliseconds(100));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded)
      << r.status();
  // The client still works afterwards (a new connection).
  r = PostAndWait("/echo", "after");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpClientTest, IdleTimeoutEndsSlowUnaryResponse) {
  // io_timeout is 300 ms and /slow answers after 1.5 s.
  absl::StatusOr<HttpResponse> r = PostAndWait("/slow", "");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded)
      << r.status();
}

struct StreamResult {
  Mutex mu;
  std::string data ABSL_GUARDED_BY(mu);
  int chunks ABSL_GUARDED_BY(mu) = 0;
  absl::Status end ABSL_GUARDED_BY(mu);
  Notification done;
  Notification first;
};

TEST_F(HttpClientTest, StreamDeliversChunksThenOk) {
  StreamResult s;
  lt_.loop()->Post([&] {
    client_->PostStreaming(
        "/stream", "", {},
        [&](absl::string_view d) {
          MutexLock l(&s.mu);
          s.data.append(d.data(), d.size());
          ++s.chunks;
        },
        [&](absl::Status st) {
          {
            MutexLock l(&s.mu);
            s.end = st;
          }
          s.done.Notify();
        });
  });
  ASSERT_TRUE(s.done.WaitForNotificationWithTimeout(kWait));
  MutexLock l(&s.mu);
  EXPECT_TRUE(s.end.ok()) << s.end;
  EXPECT_EQ(s.data, "one\ntwo\nthree\n");
  EXPECT_EQ(s.chunks, 3);
}

TEST_F(HttpClientTest, QuietStreamOutlivesIdleTimeout) {
  // The server is silent for 1.5 s after the headers, five times the
  // client's 300 ms idle timeout (IdleTimeoutEndsSlowUnaryResponse shows
  // that timeout is real for a unary response).
  StreamResult s;
  lt_.loop()->Post([&] {
    client_->PostStreaming(
        "/quiet_stream", "", {},
        [&](absl::string_view d) {
          MutexLock l(&s.mu);
          s.data.append(d.data(), d.size());
        },
        [&](absl::Status st) {
          {
            MutexLock l(&s.mu);
            s.end = st;
          }
          s.done.Notify();
        });
  });
  ASSERT_TRUE(s.done.WaitForNotificationWithTimeout(kWait));
  MutexLock l(&s.mu);
  EXPECT_TRUE(s.end.ok()) << s.end;
  EXPECT_EQ(s.data, "late\n");
}

TEST_F(HttpClientTest, PeerClosingMidStreamIsUnavailable) {
  StreamResult s;
  lt_.loop()->Post([&] {
    client_->PostStreaming(
        "/stream_then_close", "", {},
        [&](absl::string_view d) {
          MutexLock l(&s.mu);
          s.data.append(d.data(), d.size());
        },
        [&](absl::Status st) {
          {
            MutexLock l(&s.mu);
            s.end = st;
          }
          s.done.Notify();
        });
  });
  ASSERT_TRUE(s.done.WaitForNotificationWithTimeout(kWait));
  {
    MutexLock l(&s.mu);
    EXPECT_EQ(s.end.code(), absl::StatusCode::kUnavailable) << s.end;
    EXPECT_EQ(s.data, "first\n");
  }
  // The same client reconnects for the next request.
  absl::StatusOr<HttpResponse> r = PostAndWait("/echo", "next");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpClientTest, CancelFromChunkCallbackStopsTheStream) {
  StreamResult s;
  bool done_called = false;  // loop thread only
  lt_.loop()->Post([&] {
    auto id = std::make_shared<uint64_t>(0);
    *id = client_->PostStreaming(
        "/stream_forever", "", {},
        [&, id](absl::string_view d) {
          {
            MutexLock l(&s.mu);
            ++s.chunks;
          }
          client_->Cancel(*id);
          s.first.Notify();
        },
        [&](absl::Status) { done_called = true; });
  });
  ASSERT_TRUE(s.first.WaitForNotificationWithTimeout(kWait));
  // A request after the cancel works, and by the time it has, the cancelled
  // stream (which ticks every 20 ms) would have delivered more chunks.
  absl::StatusOr<HttpResponse> r = PostAndWait("/echo", "x");
  ASSERT_TRUE(r.ok()) << r.status();
  r = PostAndWait("/slow", "", absl::Milliseconds(200));  // waits 200 ms
  ASSERT_TRUE(lt_.RunOnLoop([&] {
    EXPECT_FALSE(done_called);
    EXPECT_EQ(client_->pending(), 0u);
  }));
  MutexLock l(&s.mu);
  EXPECT_EQ(s.chunks, 1);
}

TEST_F(HttpClientTest, CancelPendingUnaryRequest) {
  bool called = false;
  ASSERT_TRUE(lt_.RunOnLoop([&] {
    uint64_t id = client_->Post("/hang", "", {}, kWait,
                                [&](absl::StatusOr<HttpResponse>) {
                                  called = true;
                                });
    // A second request queued behind it, cancelled before it ran.
    uint64_t queued = client_->Post("/echo", "", {}, kWait,
                                    [&](absl::StatusOr<HttpResponse>) {
                                      called = true;
                                    });
    client_->Cancel(queued);
    client_->Cancel(id);
    client_->Cancel(id);  // twice is harmless
  }));
  absl::StatusOr<HttpResponse> r = PostAndWait("/echo", "y");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(lt_.RunOnLoop([&] { EXPECT_FALSE(called); }));
}

TEST_F(HttpClientTest, DestroyingClientInsideCallbacksIsSafe) {
  Notification done;
  lt_.loop()->Post([&] {
    // A unary request queued behind the stream never gets its callback.
    client_->PostStreaming(
        "/stream_forever", "", {},
        [&](absl::string_view) {
          client_.reset();
          done.Notify();
        },
        [&](absl::Status) { ADD_FAILURE() << "done after destruction"; });
    client_->Post("/echo", "", {}, kWait, [](absl::StatusOr<HttpResponse>) {
      ADD_FAILURE() << "callback after destruction";
    });
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));

  Notification done2;
  lt_.loop()->Post([&] {
    client_ = HttpClient::Create(lt_.loop(), "127.0.0.1", server_->port())
                  .value();
    client_->Post("/echo", "", {}, kWait, [&](absl::StatusOr<HttpResponse> r) {
      EXPECT_TRUE(r.ok()) << r.status();
      client_.reset();  // inside the completion callback
      done2.Notify();
    });
  });
  ASSERT_TRUE(done2.WaitForNotificationWithTimeout(kWait));
  // Let the deferred frees run before the loop goes away.
  ASSERT_TRUE(lt_.RunOnLoop([] {}));
}

}  // namespace
}  // namespace bevrpc::transport
