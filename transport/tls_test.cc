// Tests for TlsContext, Connection::AdoptTls/ConnectTls and PeekFirstByte
// over real loopback sockets, with certificates made by
// tests/testing:test_certs in the test's temp dir. The server and the
// client run on loops of their own; every wait is bounded.
#include "transport/tls.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_certs.h"
#include "transport/address.h"
#include "transport/connection.h"
#include "transport/listener.h"
#include "transport/rate_limit.h"
#include "transport/sync.h"
#include "transport/testing/loop_thread.h"

namespace bevrpc::transport {
namespace {

using ::bevrpc::testing::TestCerts;
using ::bevrpc::transport::testing::LoopThread;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(20);

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7) % 26);
  return s;
}

void CopyFile(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  std::stringstream data;
  data << in.rdbuf();
  std::ofstream out(to, std::ios::binary | std::ios::trunc);
  out << data.str();
}

// One end of a test connection: records what arrives, optionally echoes it,
// and records how it ended. Callbacks on the loop; getters from any thread.
class Peer : public ConnectionHandler {
 public:
  // `echo`: writes back what arrives. `reply_once`: written back once,
  // after the first bytes arrive (a plaintext server's answer).
  explicit Peer(bool echo, std::string reply_once = "")
      : echo_(echo), reply_once_(std::move(reply_once)) {}

  Connection* conn = nullptr;  // Set before Start(), on the loop.
  // When set (before Start()): the first call consumes nothing and asks
  // for this many bytes before the next.
  size_t first_want = 0;

  size_t OnReadable(Buffer& input) override {
    if (first_want != 0) {
      size_t want = first_want;
      first_want = 0;
      return want;
    }
    std::string got = input.TakeString(input.size());
    if (echo_) conn->Write([&](Buffer& out) { out.Append(got); });
    if (!reply_once_.empty() && !replied_) {
      replied_ = true;
      conn->Write([&](Buffer& out) { out.Append(reply_once_); });
    }
    MutexLock l(&mu_);
    if (identity_ == nullptr) identity_ = conn->peer_identity();
    received_ += got;
    cv_.SignalAll();
    return 1;
  }
  void OnClosed(const absl::Status& why) override {
    MutexLock l(&mu_);
    closed_ = true;
    close_status_ = why;
    cv_.SignalAll();
  }
  void SetHandshake(absl::Status s) {
    MutexLock l(&mu_);
    identity_ = conn != nullptr && s.ok() ? conn->peer_identity() : nullptr;
    handshake_ = std::move(s);
    handshake_done_ = true;
    cv_.SignalAll();
  }

  // Waits until `n` bytes arrived.
  bool WaitReceived(size_t n) {
    MutexLock l(&mu_);
    return cv_.WaitUntil(&mu_, kWait, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return received_.size() >= n;
    });
  }
  absl::Status WaitHandshake() {
    MutexLock l(&mu_);
    if (!cv_.WaitUntil(&mu_, kWait, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return handshake_done_;
        })) {
      return absl::DeadlineExceededError("test: no handshake result");
    }
    return handshake_;
  }
  absl::Status WaitClosed() {
    MutexLock l(&mu_);
    if (!cv_.WaitUntil(&mu_, kWait, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return closed_;
        })) {
      return absl::DeadlineExceededError("test: not closed");
    }
    return close_status_;
  }
  std::string received() {
    MutexLock l(&mu_);
    return received_;
  }
  std::shared_ptr<const PeerIdentity> identity() {
    MutexLock l(&mu_);
    return identity_;
  }

 private:
  const bool echo_;
  const std::string reply_once_;
  bool replied_ = false;  // Loop thread only.
  Mutex mu_;
  CondVar cv_;
  std::string received_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status close_status_ ABSL_GUARDED_BY(mu_);
  bool handshake_done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status handshake_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const PeerIdentity> identity_ ABSL_GUARDED_BY(mu_);
};

struct Side {
  std::unique_ptr<Connection> conn;
  std::unique_ptr<Peer> peer;
};

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string dir = absl::StrCat(::testing::TempDir(), "/tls_test_certs");
    mkdir(dir.c_str(), 0700);
    absl::StatusOr<TestCerts> c = bevrpc::testing::WriteTestCerts(dir);
    ASSERT_TRUE(c.ok()) << c.status();
    certs_ = new TestCerts(*c);
  }
  static void TearDownTestSuite() {
    delete certs_;
    certs_ = nullptr;
  }

  ~TlsTest() override {
    server_lt_.RunOnLoop([&] {
      listener_.reset();
      accepted_.clear();
    });
    client_lt_.RunOnLoop([&] { clients_.clear(); });
  }

  TlsServerOptions ServerOpts(bool mutual) const {
    TlsServerOptions o;
    o.cert_file = certs_->server_cert;
    o.key_file = certs_->server_key;
    if (mutual) o.client_ca_file = certs_->ca_cert;
    return o;
  }
  TlsClientOptions ClientOpts(bool with_cert) const {
    TlsClientOptions o;
    o.ca_file = certs_->ca_cert;
    if (with_cert) {
      o.cert_file = certs_->client_cert;
      o.key_file = certs_->client_key;
    }
    return o;
  }

  // Listens on 127.0.0.1; each accepted socket is first sniffed with
  // PeekFirstByte() (recorded), then adopted with TLS when `tls` is set
  // (or plaintext otherwise), as an echoing Peer.
  void Listen(std::shared_ptr<TlsContext> tls) {
    server_tls_ = std::move(tls);
    ASSERT_TRUE(server_lt_.RunOnLoop([&] {
      auto l = Listener::Create(
          server_lt_.loop(), SocketAddress::Parse("127.0.0.1:0").value(), {},
          [this](int fd) {
            PeekFirstByte(server_lt_.loop(), fd, kWait,
                          [this, fd](absl::StatusOr<uint8_t> b) {
                            {
                              MutexLock l(&mu_);
                              sniffed_.push_back(b.ok() ? *b : -1);
                            }
                            Adopt(fd);
                          });
          });
      ASSERT_TRUE(l.ok()) << l.status();
      listener_ = *std::move(l);
    }));
  }
  void Adopt(int fd) {
    auto side = std::make_unique<Side>();
    side->peer = server_tls_ != nullptr
                     ? std::make_unique<Peer>(/*echo=*/true)
                     : std::make_unique<Peer>(false, "BEVR\x01 plaintext answer");
    Peer* peer = side->peer.get();
    absl::StatusOr<std::unique_ptr<Connection>> conn;
    if (server_tls_ != nullptr) {
      conn = Connection::AdoptTls(server_lt_.loop(), fd, ConnectionOptions(),
                                  *server_tls_, kWait,
                                  [peer](absl::Status s) { peer->SetHandshake(s); });
    } else {
      conn = Connection::Adopt(server_lt_.loop(), fd, ConnectionOptions());
      peer->SetHandshake(absl::OkStatus());
    }
    ASSERT_TRUE(conn.ok()) << conn.status();
    side->conn = *std::move(conn);
    peer->conn = side->conn.get();
    peer->first_want = server_first_want_;
    if (server_bucket_ != nullptr) {
      ASSERT_TRUE(side->conn->SetRateLimits(server_bucket_.get(), nullptr).ok());
    }
    side->conn->Start(peer);
    MutexLock l(&mu_);
    accepted_.push_back(std::move(side));
    cv_.SignalAll();
  }
  // The n-th accepted connection's Peer (waits for it).
  Peer* Accepted(size_t n) {
    MutexLock l(&mu_);
    if (!cv_.WaitUntil(&mu_, kWait, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return accepted_.size() > n;
        })) {
      return nullptr;
    }
    return accepted_[n]->peer.get();
  }
  std::vector<int> sniffed() {
    MutexLock l(&mu_);
    return sniffed_;
  }

  // Connects to the listener; with `tls` over TLS to `host`.
  Side* Dial(std::shared_ptr<TlsContext> tls, const std::string& host) {
    auto side = std::make_unique<Side>();
    side->peer = std::make_unique<Peer>(/*echo=*/false);
    Peer* peer = side->peer.get();
    Side* raw = side.get();
    SocketAddress addr =
        SocketAddress::Parse(absl::StrCat("127.0.0.1:", listener_->port()))
            .value();
    EXPECT_TRUE(client_lt_.RunOnLoop([&] {
      auto done = [peer](absl::Status s) { peer->SetHandshake(s); };
      absl::StatusOr<std::unique_ptr<Connection>> conn =
          tls != nullptr
              ? Connection::ConnectTls(client_lt_.loop(), addr,
                                       ConnectionOptions(), kWait, *tls, host,
                                       done)
              : Connection::Connect(client_lt_.loop(), addr,
                                    ConnectionOptions(), kWait, done);
      ASSERT_TRUE(conn.ok()) << conn.status();
      raw->conn = *std::move(conn);
      peer->conn = raw->conn.get();
      raw->conn->Start(peer);
    }));
    clients_.push_back(std::move(side));
    return raw;
  }
  // Applied to each accepted connection right after adopting it (as
  // rpc/server.cc does). Set before Listen().
  std::unique_ptr<TokenBucket> server_bucket_;
  // Peer::first_want of each accepted connection. Set before Listen().
  size_t server_first_want_ = 0;

  void Send(Side* side, const std::string& bytes) {
    ASSERT_TRUE(client_lt_.RunOnLoop([&] {
      side->conn->Write([&](Buffer& out) { out.Append(bytes); });
    }));
  }
  std::string Port() const { return absl::StrCat(listener_->port()); }

  static TestCerts* certs_;
  LoopThread server_lt_;
  LoopThread client_lt_;
  std::shared_ptr<TlsContext> server_tls_;
  std::unique_ptr<Listener> listener_;
  Mutex mu_;
  CondVar cv_;
  std::vector<std::unique_ptr<Side>> accepted_ ABSL_GUARDED_BY(mu_);
  std::vector<int> sniffed_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Side>> clients_;  // Client loop only.
};

TestCerts* TlsTest::certs_ = nullptr;

std::shared_ptr<TlsContext> Server(const TlsServerOptions& o) {
  auto ctx = TlsContext::CreateServer(o);
  EXPECT_TRUE(ctx.ok()) << ctx.status();
  return ctx.ok() ? *ctx : nullptr;
}
std::shared_ptr<TlsContext> Client(const TlsClientOptions& o) {
  auto ctx = TlsContext::CreateClient(o);
  EXPECT_TRUE(ctx.ok()) << ctx.status();
  return ctx.ok() ? *ctx : nullptr;
}

TEST_F(TlsTest, MutualTlsEchoesBothWaysWithAlpnAndPeerIdentity) {
  Listen(Server(ServerOpts(/*mutual=*/true)));
  Side* c = Dial(Client(ClientOpts(/*with_cert=*/true)), "localhost");
  ASSERT_TRUE(c->peer->WaitHandshake().ok()) << c->peer->WaitHandshake();
  // More than the watermarks and many TLS records, both ways.
  const std::string big = Pattern(3 * 1024 * 1024 + 17);
  Send(c, big);
  ASSERT_TRUE(c->peer->WaitReceived(big.size()));
  EXPECT_TRUE(c->peer->received() == big);

  Peer* s = Accepted(0);
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->WaitHandshake().ok());
  std::shared_ptr<const PeerIdentity> id = s->identity();
  ASSERT_NE(id, nullptr);
  EXPECT_EQ(id->subject, "CN=client-a,O=bevrpc test");
  EXPECT_EQ(id->common_name, "client-a");
  EXPECT_THAT(id->uris, ::testing::ElementsAre("spiffe://bevrpc.test/client-a"));
  EXPECT_TRUE(id->dns_names.empty());
  EXPECT_EQ(id->alpn, "bevrpc");
  EXPECT_EQ(id->tls_version, "TLSv1.3");

  std::shared_ptr<const PeerIdentity> server_id = c->peer->identity();
  ASSERT_NE(server_id, nullptr);
  EXPECT_EQ(server_id->common_name, "localhost");
  EXPECT_THAT(server_id->dns_names, ::testing::ElementsAre("localhost"));
  EXPECT_THAT(server_id->ip_addresses,
              ::testing::ElementsAre("127.0.0.1", "::1"));
  EXPECT_EQ(server_id->alpn, "bevrpc");
  EXPECT_THAT(sniffed(), ::testing::ElementsAre(kTlsHandshakeByte));
}

TEST_F(TlsTest, VerifiesAnIpAddressTarget) {
  Listen(Server(ServerOpts(false)));
  Side* ok = Dial(Client(ClientOpts(false)), "127.0.0.1");
  EXPECT_TRUE(ok->peer->WaitHandshake().ok()) << ok->peer->WaitHandshake();
  Side* bad = Dial(Client(ClientOpts(false)), "10.1.2.3");
  EXPECT_THAT(bad->peer->WaitHandshake().message(),
              HasSubstr("IP address mismatch (certificate is for localhost, "
                        "127.0.0.1, ::1, not 10.1.2.3)"));
}

TEST_F(TlsTest, HostnameMismatchIsNamed) {
  Listen(Server(ServerOpts(false)));
  Side* c = Dial(Client(ClientOpts(false)), "example.com");
  absl::Status s = c->peer->WaitHandshake();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(),
            absl::StrCat("TLS handshake with 127.0.0.1:", Port(),
                         " failed: hostname mismatch (certificate is for "
                         "localhost, 127.0.0.1, ::1, not example.com)"));
  // server_name overrides the target's host.
  TlsClientOptions o = ClientOpts(false);
  o.server_name = "localhost";
  Side* c2 = Dial(Client(o), "example.com");
  EXPECT_TRUE(c2->peer->WaitHandshake().ok()) << c2->peer->WaitHandshake();
}

TEST_F(TlsTest, ExpiredServerCertificate) {
  TlsServerOptions o = ServerOpts(false);
  o.cert_file = certs_->expired_cert;
  o.key_file = certs_->expired_key;
  Listen(Server(o));
  Side* c = Dial(Client(ClientOpts(false)), "localhost");
  absl::Status s = c->peer->WaitHandshake();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), absl::StrCat("TLS handshake with 127.0.0.1:", Port(),
                                      " failed: certificate has expired"));
}

TEST_F(TlsTest, UntrustedCa) {
  TlsServerOptions o = ServerOpts(false);
  o.cert_file = certs_->untrusted_cert;
  o.key_file = certs_->untrusted_key;
  Listen(Server(o));
  Side* c = Dial(Client(ClientOpts(false)), "localhost");
  absl::Status s = c->peer->WaitHandshake();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(),
            absl::StrCat("TLS handshake with 127.0.0.1:", Port(),
                         " failed: certificate verify failed (unable to get "
                         "local issuer certificate)"));
  // The server hears that the client refused it.
  Peer* server = Accepted(0);
  ASSERT_NE(server, nullptr);
  EXPECT_THAT(server->WaitHandshake().message(), HasSubstr("TLS handshake with"));
}

TEST_F(TlsTest, MissingClientCertificateWhenRequired) {
  Listen(Server(ServerOpts(/*mutual=*/true)));
  Side* c = Dial(Client(ClientOpts(/*with_cert=*/false)), "localhost");
  Peer* server = Accepted(0);
  ASSERT_NE(server, nullptr);
  absl::Status s = server->WaitHandshake();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()), ::testing::MatchesRegex(
                               "TLS handshake with 127.0.0.1:[0-9]+ failed: "
                               "peer did not return a certificate"));
  // TLS 1.3: the client finishes its side of the handshake first and
  // learns of the refusal from the server's alert.
  absl::Status hs = c->peer->WaitHandshake();
  absl::Status closed = hs.ok() ? c->peer->WaitClosed() : hs;
  EXPECT_EQ(closed.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(closed.message(),
              HasSubstr("the server requires a client certificate"));
}

TEST_F(TlsTest, ClientCertificateFromAnotherCaIsRefused) {
  Listen(Server(ServerOpts(/*mutual=*/true)));
  TlsClientOptions o = ClientOpts(false);
  o.cert_file = certs_->untrusted_cert;
  o.key_file = certs_->untrusted_key;
  Side* c = Dial(Client(o), "localhost");
  Peer* server = Accepted(0);
  ASSERT_NE(server, nullptr);
  EXPECT_THAT(server->WaitHandshake().message(),
              HasSubstr("failed: certificate verify failed (unable to get "
                        "local issuer certificate)"));
  absl::Status hs = c->peer->WaitHandshake();
  absl::Status closed = hs.ok() ? c->peer->WaitClosed() : hs;
  EXPECT_EQ(closed.code(), absl::StatusCode::kUnavailable);
}

TEST_F(TlsTest, PlaintextClientOnTlsServer) {
  Listen(Server(ServerOpts(false)));
  Side* c = Dial(nullptr, "");
  ASSERT_TRUE(c->peer->WaitHandshake().ok());
  Send(c, "BEVR plaintext frame");
  Peer* server = Accepted(0);
  ASSERT_NE(server, nullptr);
  EXPECT_THAT(std::string(server->WaitHandshake().message()),
              ::testing::MatchesRegex("TLS handshake with 127.0.0.1:[0-9]+ "
                                      "failed: client speaks plaintext, not TLS"));
  EXPECT_EQ(c->peer->WaitClosed().code(), absl::StatusCode::kUnavailable);
  // The sniffer saw the plaintext byte (a server refuses it before OpenSSL).
  EXPECT_THAT(sniffed(), ::testing::ElementsAre('B'));
}

TEST_F(TlsTest, TlsClientOnPlaintextServer) {
  Listen(nullptr);  // Plaintext: answers the ClientHello with "BEVR...".
  Side* c = Dial(Client(ClientOpts(false)), "localhost");
  absl::Status s = c->peer->WaitHandshake();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), absl::StrCat("TLS handshake with 127.0.0.1:", Port(),
                                      " failed: server speaks plaintext, not TLS"));
  EXPECT_THAT(sniffed(), ::testing::ElementsAre(kTlsHandshakeByte));
}

TEST_F(TlsTest, HandshakeTimesOutWithoutAClientHello) {
  // A client that connects and never speaks: the server-side peek waits.
  // (Here: AdoptTls directly on one end of a socket pair.)
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  auto ctx = Server(ServerOpts(false));
  Peer peer(false);
  std::unique_ptr<Connection> conn;
  ASSERT_TRUE(server_lt_.RunOnLoop([&] {
    auto c = Connection::AdoptTls(server_lt_.loop(), sv[0], {}, *ctx,
                                  absl::Milliseconds(200),
                                  [&peer](absl::Status s) { peer.SetHandshake(s); });
    ASSERT_TRUE(c.ok());
    conn = *std::move(c);
    peer.conn = conn.get();
    conn->Start(&peer);
  }));
  absl::Status s = peer.WaitHandshake();
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(s.message(), HasSubstr("TLS handshake with"));
  ASSERT_TRUE(server_lt_.RunOnLoop([&] { conn.reset(); }));
  close(sv[1]);
}

TEST_F(TlsTest, PeekFirstByteTimesOutAndSeesEof) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  Mutex mu;
  CondVar cv;
  std::vector<absl::StatusOr<uint8_t>> got;
  auto record = [&](absl::StatusOr<uint8_t> b) {
    MutexLock l(&mu);
    got.push_back(b);
    cv.SignalAll();
  };
  ASSERT_TRUE(server_lt_.RunOnLoop(
      [&] { PeekFirstByte(server_lt_.loop(), sv[0], absl::Milliseconds(100), record); }));
  {
    MutexLock l(&mu);
    ASSERT_TRUE(cv.WaitUntil(&mu, kWait, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return got.size() == 1;
    }));
    EXPECT_EQ(got[0].status().code(), absl::StatusCode::kDeadlineExceeded);
  }
  ASSERT_EQ(write(sv[1], "\x16z", 2), 2);
  ASSERT_TRUE(server_lt_.RunOnLoop(
      [&] { PeekFirstByte(server_lt_.loop(), sv[0], kWait, record); }));
  {
    MutexLock l(&mu);
    ASSERT_TRUE(cv.WaitUntil(&mu, kWait, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return got.size() == 2;
    }));
    ASSERT_TRUE(got[1].ok());
    EXPECT_EQ(*got[1], kTlsHandshakeByte);
  }
  // Peeking consumed nothing.
  char buf[2];
  ASSERT_EQ(read(sv[0], buf, 2), 2);
  EXPECT_EQ(buf[1], 'z');
  close(sv[1]);
  ASSERT_TRUE(server_lt_.RunOnLoop(
      [&] { PeekFirstByte(server_lt_.loop(), sv[0], kWait, record); }));
  MutexLock l(&mu);
  ASSERT_TRUE(cv.WaitUntil(&mu, kWait, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return got.size() == 3;
  }));
  EXPECT_EQ(got[2].status().code(), absl::StatusCode::kUnavailable);
  close(sv[0]);
}

TEST_F(TlsTest, ReloadServesNewCertificateToNewConnectionsOnly) {
  const std::string cert = certs_->dir + "/live.pem";
  const std::string key = certs_->dir + "/live.key";
  CopyFile(certs_->server_cert, cert);
  CopyFile(certs_->server_key, key);
  TlsServerOptions o;
  o.cert_file = cert;
  o.key_file = key;
  std::shared_ptr<TlsContext> ctx = Server(o);
  Listen(ctx);
  auto client = Client(ClientOpts(false));
  Side* old_conn = Dial(client, "localhost");
  ASSERT_TRUE(old_conn->peer->WaitHandshake().ok());
  EXPECT_EQ(old_conn->peer->identity()->subject, "CN=localhost");

  CopyFile(certs_->server2_cert, cert);
  CopyFile(certs_->server2_key, key);
  ASSERT_TRUE(ctx->Reload().ok());
  EXPECT_EQ(ctx->generation(), 2u);
  Side* new_conn = Dial(client, "localhost");
  ASSERT_TRUE(new_conn->peer->WaitHandshake().ok());
  EXPECT_EQ(new_conn->peer->identity()->subject, "CN=localhost,O=second");

  // The old connection still works, with its old session.
  Send(old_conn, "still here");
  ASSERT_TRUE(old_conn->peer->WaitReceived(10));
  EXPECT_EQ(old_conn->peer->received(), "still here");

  // A broken file keeps the context in use and says which file and why.
  { std::ofstream(cert, std::ios::trunc) << "not a certificate\n"; }
  absl::Status bad = ctx->Reload();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message(),
              HasSubstr(absl::StrCat("cannot load certificate file ", cert, ": ")));
  EXPECT_THAT(std::string(bad.message()), HasSubstr("no start line"));
  EXPECT_EQ(ctx->generation(), 2u);
  Side* after = Dial(client, "localhost");
  ASSERT_TRUE(after->peer->WaitHandshake().ok());
  EXPECT_EQ(after->peer->identity()->subject, "CN=localhost,O=second");

  // A key that does not match the certificate is caught too.
  CopyFile(certs_->server_cert, cert);
  CopyFile(certs_->client_key, key);
  EXPECT_EQ(ctx->Reload().message(),
            absl::StrCat("cannot load key file ", key, ": key values mismatch"));
}

TEST_F(TlsTest, CreateNamesTheMissingFile) {
  TlsServerOptions o = ServerOpts(false);
  o.cert_file = certs_->dir + "/nope.pem";
  auto ctx = TlsContext::CreateServer(o);
  ASSERT_FALSE(ctx.ok());
  EXPECT_THAT(ctx.status().message(),
              HasSubstr(absl::StrCat("cannot load certificate file ",
                                     certs_->dir, "/nope.pem: ")));
  TlsClientOptions c = ClientOpts(false);
  c.ca_file = certs_->dir + "/nope-ca.pem";
  auto cctx = TlsContext::CreateClient(c);
  ASSERT_FALSE(cctx.ok());
  EXPECT_THAT(cctx.status().message(), HasSubstr("cannot load CA file "));
}

// Token buckets on OpenSSL bufferevents: libevent 2.1.12 keeps the allowance
// in an int there, so an "unlimited" direction must fit one
// (transport/rate_limit.cc); with EV_RATE_LIMIT_MAX nothing was ever read.
TEST_F(TlsTest, RateLimitsCountTlsBytes) {
  // The server's answers are limited (per-connection bucket, as
  // ServerOptions::per_connection_rate_limit sets it).
  auto bucket = TokenBucket::Create(RateLimit{0, 64 * 1024});
  ASSERT_TRUE(bucket.ok());
  server_bucket_ = *std::move(bucket);
  Listen(Server(ServerOpts(false)));
  Side* c = Dial(Client(ClientOpts(false)), "localhost");
  ASSERT_TRUE(c->peer->WaitHandshake().ok());
  const absl::Time start = absl::Now();
  const std::string data = Pattern(192 * 1024);
  Send(c, data);
  ASSERT_TRUE(c->peer->WaitReceived(data.size()))
      << "client got " << c->peer->received().size() << ", server got "
      << Accepted(0)->received().size();
  // 192 KiB at 64 KiB/s (burst one second's worth): at least ~2 s.
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(1800));
  EXPECT_TRUE(c->peer->received() == data);
}

TEST_F(TlsTest, ReadResumesWithBytesOpenSslAlreadyDecrypted) {
  // The server first waits for `want` bytes, a size that ends inside a TLS
  // record: libevent's OpenSSL reader stops at the read high watermark
  // (= want) with the rest of that record decrypted inside OpenSSL, and the
  // socket empty (the client sent exactly `data`). Those bytes must still
  // arrive once the handler has consumed what it asked for; libevent alone
  // would wait for the socket to become readable again, which it never
  // does (the client waits for nothing).
  const size_t want = 1024 * 1024 - 5000;  // Read high watermark > 256 KiB.
  server_first_want_ = want;
  Listen(Server(ServerOpts(false)));
  Side* c = Dial(Client(ClientOpts(false)), "localhost");
  ASSERT_TRUE(c->peer->WaitHandshake().ok());
  const std::string data = Pattern(1024 * 1024);
  Send(c, data);
  Peer* server = Accepted(0);
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(server->WaitReceived(data.size()))
      << "server got " << server->received().size() << " of " << data.size();
  EXPECT_TRUE(server->received() == data);
}

}  // namespace
}  // namespace bevrpc::transport
