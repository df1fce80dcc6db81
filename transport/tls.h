// TlsContext: the TLS configuration (OpenSSL 3 SSL_CTX) that TLS
// connections are made from, server side or client side, with certificate
// reload without restart; and PeekFirstByte(), which lets a server tell a
// TLS ClientHello (0x16) from plaintext before choosing how to adopt a
// socket.
//
//   TlsServerOptions o;
//   o.cert_file = "server.pem"; o.key_file = "server.key";
//   o.client_ca_file = "ca.pem";             // optional: mutual TLS
//   auto ctx = TlsContext::CreateServer(o);  // StatusOr<shared_ptr<...>>
//   auto conn = Connection::AdoptTls(loop, fd, {}, **ctx, timeout, cb);
//   ...
//   (*ctx)->Reload();  // e.g. on SIGHUP: new connections get new files
//
// What is enforced: TLS 1.2 at least (1.3 preferred); ALPN "bevrpc" (a
// server refuses a client that offers ALPN without "bevrpc" or "http/1.1"
// -- the latter for the admin pages over https -- and accepts a client that
// offers none); a client verifies the server's chain against
// ca_file (or the system store) and its host name (SSL_set1_host) or IP
// address (X509_VERIFY_PARAM_set1_ip_asc), and sends SNI for host names;
// a server with client_ca_file requires and verifies a client certificate.
// SSL_OP_IGNORE_UNEXPECTED_EOF is set: libevent never sends close_notify,
// and with OpenSSL 3 a peer's plain FIN would otherwise be an error.
//
// Ownership: a TlsContext owns its current SSL_CTX; each connection's SSL
// holds a reference to the SSL_CTX it was made from, so a context may be
// destroyed or reloaded while its connections live on.
// Threading: thread-safe; one context may serve connections on many loops.
#ifndef BEVRPC_TRANSPORT_TLS_H_
#define BEVRPC_TRANSPORT_TLS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "transport/event_loop.h"
#include "transport/peer_identity.h"
#include "transport/sync.h"

struct ssl_st;
struct ssl_ctx_st;

namespace bevrpc::transport {

// The ALPN protocol id both sides offer and require.
inline constexpr absl::string_view kAlpnProtocol = "bevrpc";

// A server's TLS settings. Empty cert_file: no TLS (plaintext).
struct TlsServerOptions {
  // PEM certificate chain (leaf first) and its private key. Default: empty.
  std::string cert_file;
  std::string key_file;
  // PEM CA certificates client certificates must chain to. Set: every
  // client must present a certificate that verifies against them
  // (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT). Empty: clients
  // are not asked for one. Default: empty.
  std::string client_ca_file;

  bool enabled() const { return !cert_file.empty(); }
};

// A client's TLS settings. TLS is on when `enable` is set or any file is.
struct TlsClientOptions {
  // Use TLS even with every file empty (verify against the system store,
  // no client certificate). Default: false.
  bool enable = false;
  // PEM CA certificates the server's chain must verify against. Empty: the
  // system's default store. Default: empty.
  std::string ca_file;
  // PEM client certificate chain and key, for servers that require one
  // (mutual TLS). Both or neither. Default: empty.
  std::string cert_file;
  std::string key_file;
  // The name sent as SNI and verified in the server's certificate instead
  // of the target's host (e.g. when dialing an IP address of a server
  // whose certificate names a host). Default: empty (the target's host).
  std::string server_name;

  bool enabled() const {
    return enable || !ca_file.empty() || !cert_file.empty() ||
           !key_file.empty() || !server_name.empty();
  }
};

class TlsContext {
 public:
  // Loads the files. Errors (INVALID_ARGUMENT) name the file and
  // OpenSSL's reason: "cannot load certificate file /x/server.pem: no
  // such file".
  static absl::StatusOr<std::shared_ptr<TlsContext>> CreateServer(
      const TlsServerOptions& options);
  static absl::StatusOr<std::shared_ptr<TlsContext>> CreateClient(
      const TlsClientOptions& options);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // Re-reads the files into a new SSL_CTX and swaps it in: connections
  // made afterwards use it, existing ones keep theirs. On error the old
  // context stays in use and the error says which file failed and why.
  absl::Status Reload() ABSL_LOCKS_EXCLUDED(mu_);

  bool is_server() const { return server_; }
  // How many times Reload() succeeded (tests, logs).
  uint64_t generation() const ABSL_LOCKS_EXCLUDED(mu_);

  // For Connection: a new SSL object from the current SSL_CTX (caller owns
  // it). Client side: `host` is the target's host name or IP address; it
  // becomes SNI (names only) and what the certificate is verified against,
  // unless TlsClientOptions::server_name overrides it. Empty host and no
  // override: the chain is verified, no name is.
  absl::StatusOr<ssl_st*> NewSsl(absl::string_view host) const
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  TlsContext(bool server, TlsServerOptions s, TlsClientOptions c)
      : server_(server), server_options_(std::move(s)),
        client_options_(std::move(c)) {}
  // A new SSL_CTX from the files as they are now.
  absl::StatusOr<std::shared_ptr<ssl_ctx_st>> Build() const;

  const bool server_;
  const TlsServerOptions server_options_;
  const TlsClientOptions client_options_;
  // transport/sync.h (pthreads): TSan sees its ordering, unlike absl::Mutex.
  mutable Mutex mu_;
  std::shared_ptr<ssl_ctx_st> ctx_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
};

// The first byte a TLS client sends (a handshake record).
inline constexpr uint8_t kTlsHandshakeByte = 0x16;

// Waits (on `loop`, at most `timeout`) until `fd` has input, then peeks
// one byte without consuming it (recv MSG_PEEK) and calls `done` on the
// loop thread exactly once with that byte, or with UNAVAILABLE (peer closed
// or failed) or DEADLINE_EXCEEDED. The caller keeps owning `fd` and must
// keep it open until `done` runs. Call on the loop thread.
void PeekFirstByte(EventLoop* loop, int fd, absl::Duration timeout,
                   absl::AnyInvocable<void(absl::StatusOr<uint8_t>)> done);

namespace internal {
// For Connection (transport/connection.cc), which owns the SSL objects.
// The peer's certificate as a PeerIdentity (null without one), with the
// negotiated version and ALPN.
std::shared_ptr<const transport::PeerIdentity> ReadPeerIdentity(ssl_st* ssl);
// Why a TLS connection failed, from the errors libevent collected
// (`errors`, most recent first, 0-terminated), the SSL's verify result and,
// for hostname mismatches, the peer's certificate: "certificate has
// expired", "hostname mismatch (certificate is for localhost, not
// example.com)", "server speaks plaintext, not TLS", ...
std::string DescribeTlsFailure(ssl_st* ssl, const unsigned long* errors,
                               bool server, bool handshake_done);
}  // namespace internal

}  // namespace bevrpc::transport

#endif  // BEVRPC_TRANSPORT_TLS_H_
