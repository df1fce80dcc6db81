// RPCs through the real Server and Channel over mutual TLS, in one process
// over loopback: a handler reads ServerContext::peer_identity() (the client
// certificate's subject, CN, URI SAN, TLS version and ALPN); a TLS server
// without client_ca_file gives handlers no identity; a client without a
// certificate, a plaintext client and a client that does not trust the
// server fail with UNAVAILABLE naming the cause; Server::ReloadTls() keeps
// serving; rate-limited TLS connections answer.
#include <memory>
#include <string>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/server.h"
#include "rpc/server_context.h"
#include "rpc/server_options.h"
#include "services/echo/echo.bevrpc.h"
#include "services/echo/echo_service.h"
#include "tests/testing/test_certs.h"

namespace bevrpc {
namespace {

using ::testing::HasSubstr;

// Echo whose answer is the caller's identity as the handler sees it.
class WhoAmI : public echo::EchoService {
 public:
  void EchoAsync(ServerContext& ctx, const echo::EchoRequest& request,
                 echo::EchoResponse* response, Completion done) override {
    const PeerIdentity* id = ctx.peer_identity();
    if (id == nullptr) {
      response->set_message("anonymous");
    } else {
      response->set_message(absl::StrJoin(
          {id->subject, id->common_name, absl::StrJoin(id->uris, ","),
           id->tls_version, id->alpn},
          "|"));
    }
    std::move(done).Finish(absl::OkStatus());
  }
};

class MtlsRpcTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string dir = absl::StrCat(::testing::TempDir(), "/mtls_rpc_certs");
    mkdir(dir.c_str(), 0700);
    auto c = testing::WriteTestCerts(dir);
    ASSERT_TRUE(c.ok()) << c.status();
    certs_ = new testing::TestCerts(*c);
  }
  static void TearDownTestSuite() { delete certs_; }

  void StartServer(bool mutual) {
    ServerOptions o;
    o.tls.cert_file = certs_->server_cert;
    o.tls.key_file = certs_->server_key;
    if (mutual) o.tls.client_ca_file = certs_->ca_cert;
    server_ = std::make_unique<Server>(o);
    ASSERT_TRUE(server_->RegisterService(&service_).ok());
    ASSERT_TRUE(server_->Start().ok());
  }
  ChannelOptions Tls(bool with_cert) const {
    ChannelOptions o;
    o.tls.ca_file = certs_->ca_cert;
    if (with_cert) {
      o.tls.cert_file = certs_->client_cert;
      o.tls.key_file = certs_->client_key;
    }
    return o;
  }
  absl::StatusOr<echo::EchoResponse> Call(const std::string& host,
                                          const ChannelOptions& options) {
    auto channel = Channel::Create(absl::StrCat(host, ":", server_->port()),
                                   options);
    if (!channel.ok()) return channel.status();
    echo::Echo::Stub stub(channel->get());
    echo::EchoRequest req;
    req.set_message("who");
    CallOptions call;
    call.timeout = absl::Seconds(20);  // A hang guard.
    return stub.Echo(req, call);
  }

  static testing::TestCerts* certs_;
  WhoAmI service_;
  std::unique_ptr<Server> server_;
};

testing::TestCerts* MtlsRpcTest::certs_ = nullptr;

TEST_F(MtlsRpcTest, HandlerSeesTheClientCertificate) {
  StartServer(/*mutual=*/true);
  for (const char* host : {"localhost", "127.0.0.1"}) {
    absl::StatusOr<echo::EchoResponse> r = Call(host, Tls(true));
    ASSERT_TRUE(r.ok()) << host << ": " << r.status();
    EXPECT_EQ(r->message(),
              "CN=client-a,O=bevrpc test|client-a|spiffe://bevrpc.test/"
              "client-a|TLSv1.3|bevrpc");
  }
}

TEST_F(MtlsRpcTest, TlsWithoutClientCertificatesHasNoIdentity) {
  StartServer(/*mutual=*/false);
  absl::StatusOr<echo::EchoResponse> r = Call("localhost", Tls(false));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->message(), "anonymous");
}

TEST_F(MtlsRpcTest, RefusalsSayWhy) {
  StartServer(/*mutual=*/true);
  absl::StatusOr<echo::EchoResponse> no_cert = Call("localhost", Tls(false));
  EXPECT_EQ(no_cert.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(no_cert.status().message()),
              HasSubstr("client certificate"));

  absl::StatusOr<echo::EchoResponse> plain = Call("127.0.0.1", ChannelOptions());
  EXPECT_EQ(plain.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(plain.status().message()),
              HasSubstr("server requires TLS"));

  ChannelOptions untrusting = Tls(true);
  untrusting.tls.ca_file = certs_->untrusted_ca_cert;
  absl::StatusOr<echo::EchoResponse> untrusted = Call("localhost", untrusting);
  EXPECT_EQ(untrusted.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(untrusted.status().message()),
              HasSubstr("failed: certificate verify failed ("));
  // (A mutual-TLS server sends its CA along: OpenSSL builds its chain from
  // the client CA store, so this reads "self-signed certificate in
  // certificate chain" rather than "unable to get local issuer".)

  ChannelOptions wrong_name = Tls(true);
  wrong_name.tls.server_name = "example.com";
  absl::StatusOr<echo::EchoResponse> mismatch = Call("localhost", wrong_name);
  EXPECT_THAT(std::string(mismatch.status().message()),
              HasSubstr("hostname mismatch (certificate is for localhost, "
                        "127.0.0.1, ::1, not example.com)"));
}

TEST_F(MtlsRpcTest, ReloadKeepsServing) {
  StartServer(/*mutual=*/true);
  ASSERT_TRUE(Call("localhost", Tls(true)).ok());
  EXPECT_TRUE(server_->ReloadTls().ok());
  absl::StatusOr<echo::EchoResponse> r = Call("localhost", Tls(true));
  EXPECT_TRUE(r.ok()) << r.status();
  Server plain;
  EXPECT_EQ(plain.ReloadTls().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(MtlsRpcTest, RateLimitedTlsConnectionsAnswer) {
  ServerOptions o;
  o.tls.cert_file = certs_->server_cert;
  o.tls.key_file = certs_->server_key;
  o.tls.client_ca_file = certs_->ca_cert;
  o.per_connection_rate_limit.write_bytes_per_sec = 1 << 20;
  o.server_rate_limit.read_bytes_per_sec = 1 << 20;
  server_ = std::make_unique<Server>(o);
  ASSERT_TRUE(server_->RegisterService(&service_).ok());
  ASSERT_TRUE(server_->Start().ok());
  absl::StatusOr<echo::EchoResponse> r = Call("localhost", Tls(true));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->message(), HasSubstr("CN=client-a"));
}

}  // namespace
}  // namespace bevrpc
