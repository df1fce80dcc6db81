#include "transport/tls.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <cerrno>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace bevrpc::transport {
namespace {

// ALPN wire form: length-prefixed "bevrpc".
constexpr unsigned char kAlpnWire[] = {6, 'b', 'e', 'v', 'r', 'p', 'c'};
// What a server accepts, in its order of preference: bevrpc, and HTTP/1.1
// for the admin pages (/metrics, /status) from browsers and curl.
constexpr unsigned char kServerAlpnWire[] = {
    6, 'b', 'e', 'v', 'r', 'p', 'c',
    8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

constexpr char kTls13Suites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

// OpenSSL's reason for the most recent error on this thread's queue (then
// clears the queue): "no such file", "no start line", ...
std::string TakeOpenSslReason() {
  // The first error queued is the cause ("no start line"); later ones
  // are the layers above it ("PEM lib").
  unsigned long last = ERR_get_error();
  ERR_clear_error();
  if (last == 0) return "unknown OpenSSL error";
  const char* reason = ERR_reason_error_string(last);
  if (reason != nullptr) return reason;
  char buf[256];
  ERR_error_string_n(last, buf, sizeof(buf));
  return buf;
}

absl::Status FileError(absl::string_view what, const std::string& file) {
  return absl::InvalidArgumentError(
      absl::StrCat("cannot load ", what, " ", file, ": ", TakeOpenSslReason()));
}

int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen,
               const unsigned char* in, unsigned int inlen, void*) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kServerAlpnWire,
                            sizeof(kServerAlpnWire), in,
                            inlen) == OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  // The client offers ALPN, but neither bevrpc nor HTTP/1.1 (h2 only, say).
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string Asn1Text(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

void FillFromCertificate(X509* cert, PeerIdentity* id) {
  X509_NAME* subject = X509_get_subject_name(cert);
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    X509_NAME_print_ex(bio, subject, 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    if (n > 0) id->subject.assign(data, static_cast<size_t>(n));
    BIO_free(bio);
  }
  int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (idx >= 0) {
    ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, cn);
    if (n >= 0) {
      id->common_name.assign(reinterpret_cast<char*>(utf8), n);
      OPENSSL_free(utf8);
    }
  }
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS) {
      id->dns_names.push_back(Asn1Text(name->d.dNSName));
    } else if (name->type == GEN_URI) {
      id->uris.push_back(Asn1Text(name->d.uniformResourceIdentifier));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {};
      int len = ASN1_STRING_length(ip);
      int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
      if (family != 0 &&
          inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof(text))) {
        id->ip_addresses.push_back(text);
      }
    }
  }
  GENERAL_NAMES_free(names);
}

// The names a certificate is for: its DNS and IP SANs, else its CN.
std::string CertificateNames(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) {
    // A client that failed verification has the chain, not the leaf.
    STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl);
    if (chain != nullptr && sk_X509_num(chain) > 0) cert = sk_X509_value(chain, 0);
  }
  if (cert == nullptr) return "another name";
  PeerIdentity id;
  FillFromCertificate(cert, &id);
  std::vector<std::string> names = id.dns_names;
  names.insert(names.end(), id.ip_addresses.begin(), id.ip_addresses.end());
  if (names.empty() && !id.common_name.empty()) names.push_back(id.common_name);
  if (names.empty()) return "no name";
  return absl::StrJoin(names, ", ");
}

std::string DescribeVerifyFailure(SSL* ssl, long verify) {
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  switch (verify) {
    case X509_V_ERR_HOSTNAME_MISMATCH: {
      const char* host = X509_VERIFY_PARAM_get0_host(param, 0);
      return absl::StrCat("hostname mismatch (certificate is for ",
                          CertificateNames(ssl), ", not ",
                          host != nullptr ? host : "?", ")");
    }
    case X509_V_ERR_IP_ADDRESS_MISMATCH: {
      char* ip = X509_VERIFY_PARAM_get1_ip_asc(param);
      std::string out = absl::StrCat("IP address mismatch (certificate is for ",
                                     CertificateNames(ssl), ", not ",
                                     ip != nullptr ? ip : "?", ")");
      OPENSSL_free(ip);
      return out;
    }
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return X509_verify_cert_error_string(verify);
    default:
      return absl::StrCat("certificate verify failed (",
                          X509_verify_cert_error_string(verify), ")");
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// TlsContext

absl::StatusOr<std::shared_ptr<TlsContext>> TlsContext::CreateServer(
    const TlsServerOptions& options) {
  if (options.cert_file.empty() || options.key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS server needs both a certificate file and a key file");
  }
  std::shared_ptr<TlsContext> ctx(
      new TlsContext(true, options, TlsClientOptions()));
  absl::Status s = ctx->Reload();
  if (!s.ok()) return s;
  return ctx;
}

absl::StatusOr<std::shared_ptr<TlsContext>> TlsContext::CreateClient(
    const TlsClientOptions& options) {
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS client certificate needs both a certificate file and a key file");
  }
  std::shared_ptr<TlsContext> ctx(
      new TlsContext(false, TlsServerOptions(), options));
  absl::Status s = ctx->Reload();
  if (!s.ok()) return s;
  return ctx;
}

TlsContext::~TlsContext() = default;

absl::StatusOr<std::shared_ptr<ssl_ctx_st>> TlsContext::Build() const {
  ERR_clear_error();
  std::shared_ptr<SSL_CTX> ctx(
      SSL_CTX_new(server_ ? TLS_server_method() : TLS_client_method()),
      SSL_CTX_free);
  if (ctx == nullptr) {
    return absl::InternalError(
        absl::StrCat("SSL_CTX_new failed: ", TakeOpenSslReason()));
  }
  SSL_CTX* raw = ctx.get();
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  // TLS 1.3 suites, cheapest first: AES-128-GCM costs about 8 % less CPU
  // than AES-256-GCM with AES-NI (docs/performance.md, "TLS cost"), and is
  // the suite every TLS 1.3 peer must implement (RFC 8446, 9.1).
  if (SSL_CTX_set_ciphersuites(raw, kTls13Suites) != 1) {
    return absl::InternalError(
        absl::StrCat("SSL_CTX_set_ciphersuites failed: ", TakeOpenSslReason()));
  }
  // libevent never sends close_notify; a peer's FIN must be an EOF, not an
  // "unexpected eof while reading" error (docs/security.md).
  SSL_CTX_set_options(raw, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
  const std::string& cert = server_ ? server_options_.cert_file
                                    : client_options_.cert_file;
  const std::string& key = server_ ? server_options_.key_file
                                   : client_options_.key_file;
  if (!cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(raw, cert.c_str()) != 1) {
      return FileError("certificate file", cert);
    }
    if (SSL_CTX_use_PrivateKey_file(raw, key.c_str(), SSL_FILETYPE_PEM) != 1) {
      return FileError("key file", key);
    }
    if (SSL_CTX_check_private_key(raw) != 1) {
      ERR_clear_error();
      return absl::InvalidArgumentError(absl::StrCat(
          "key file ", key, " does not match certificate file ", cert));
    }
  }
  if (server_) {
    const std::string& ca = server_options_.client_ca_file;
    if (!ca.empty()) {
      if (SSL_CTX_load_verify_locations(raw, ca.c_str(), nullptr) != 1) {
        return FileError("client CA file", ca);
      }
      // Tell clients which CAs we accept (their certificate choice).
      if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca.c_str())) {
        SSL_CTX_set_client_CA_list(raw, names);
      }
      SSL_CTX_set_verify(raw, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                         nullptr);
    }
    // Resumed sessions with client verification need a session id context.
    static const unsigned char kSessionContext[] = "bevrpc";
    SSL_CTX_set_session_id_context(raw, kSessionContext,
                                   sizeof(kSessionContext) - 1);
    SSL_CTX_set_alpn_select_cb(raw, &SelectAlpn, nullptr);
    // Pick by our order (kTls13Suites), not the client's.
    SSL_CTX_set_options(raw, SSL_OP_CIPHER_SERVER_PREFERENCE);
  } else {
    const std::string& ca = client_options_.ca_file;
    if (ca.empty()) {
      if (SSL_CTX_set_default_verify_paths(raw) != 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "cannot load the system CA store: ", TakeOpenSslReason()));
      }
    } else if (SSL_CTX_load_verify_locations(raw, ca.c_str(), nullptr) != 1) {
      return FileError("CA file", ca);
    }
    SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
    // Returns 0 on success (unlike most of OpenSSL).
    if (SSL_CTX_set_alpn_protos(raw, kAlpnWire, sizeof(kAlpnWire)) != 0) {
      return absl::InternalError("SSL_CTX_set_alpn_protos failed");
    }
  }
  return ctx;
}

absl::Status TlsContext::Reload() {
  absl::StatusOr<std::shared_ptr<SSL_CTX>> ctx = Build();
  if (!ctx.ok()) return ctx.status();
  MutexLock lock(&mu_);
  ctx_ = *std::move(ctx);
  ++generation_;
  return absl::OkStatus();
}

uint64_t TlsContext::generation() const {
  MutexLock lock(&mu_);
  return generation_;
}

absl::StatusOr<ssl_st*> TlsContext::NewSsl(absl::string_view host) const {
  std::shared_ptr<SSL_CTX> ctx;
  {
    MutexLock lock(&mu_);
    ctx = ctx_;
  }
  SSL* ssl = SSL_new(ctx.get());  // Holds its own reference to ctx.
  if (ssl == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("SSL_new failed: ", TakeOpenSslReason()));
  }
  if (server_) return ssl;
  std::string name = client_options_.server_name.empty()
                         ? std::string(host)
                         : client_options_.server_name;
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') {
    name = name.substr(1, name.size() - 2);
  }
  if (name.empty()) return ssl;
  bool ok;
  if (IsIpLiteral(name)) {
    // No SNI for addresses (RFC 6066); verify the IP SAN instead.
    ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1;
  } else {
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    ok = SSL_set_tlsext_host_name(ssl, name.c_str()) == 1 &&
         SSL_set1_host(ssl, name.c_str()) == 1;
  }
  if (!ok) {
    SSL_free(ssl);
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot verify TLS server name \"", name, "\": ", TakeOpenSslReason()));
  }
  return ssl;
}

// ---------------------------------------------------------------------------
// Connection helpers

namespace internal {

std::shared_ptr<const PeerIdentity> ReadPeerIdentity(ssl_st* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return nullptr;
  auto id = std::make_shared<PeerIdentity>();
  FillFromCertificate(cert, id.get());
  X509_free(cert);
  id->tls_version = SSL_get_version(ssl);
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  if (alpn != nullptr) id->alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  return id;
}

std::string DescribeTlsFailure(ssl_st* ssl, const unsigned long* errors,
                               bool server, bool handshake_done) {
  std::string fallback;
  bool verify_failed = false;
  for (const unsigned long* e = errors; *e != 0; ++e) {
    if (ERR_GET_LIB(*e) != ERR_LIB_SSL) {
      if (fallback.empty() && ERR_GET_LIB(*e) != 0) {
        const char* r = ERR_reason_error_string(*e);
        if (r != nullptr) fallback = r;
      }
      continue;
    }
    switch (ERR_GET_REASON(*e)) {
      case SSL_R_CERTIFICATE_VERIFY_FAILED:
        verify_failed = true;
        break;
      case SSL_R_WRONG_VERSION_NUMBER:
      case SSL_R_PACKET_LENGTH_TOO_LONG:
        return server ? "client speaks plaintext, not TLS"
                      : "server speaks plaintext, not TLS";
      case SSL_R_HTTP_REQUEST:
        return "client sent a plaintext HTTP request, not TLS";
      case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        return "peer did not return a certificate";
      case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        return "the server requires a client certificate (tlsv13 alert "
               "certificate required)";
      case SSL_R_NO_APPLICATION_PROTOCOL:
      case SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL:
        return absl::StrCat("no common ALPN protocol (", kAlpnProtocol,
                            " required)");
      default:
        if (fallback.empty()) {
          const char* r = ERR_reason_error_string(*e);
          if (r != nullptr) fallback = r;
        }
    }
  }
  long verify = ssl != nullptr ? SSL_get_verify_result(ssl) : X509_V_OK;
  if (verify != X509_V_OK && (verify_failed || fallback.empty())) {
    return DescribeVerifyFailure(ssl, verify);
  }
  if (verify_failed) return "certificate verify failed";
  if (!fallback.empty()) return fallback;
  if (!handshake_done) return "connection closed during the handshake";
  if (!server && ssl != nullptr && SSL_get_certificate(ssl) == nullptr) {
    // TLS 1.3: a server that requires a client certificate says so after
    // the client's handshake is done; a write can meet its reset first.
    return "the connection failed right after the handshake (the server "
           "may require a client certificate)";
  }
  return "TLS error";
}

}  // namespace internal

// ---------------------------------------------------------------------------
// PeekFirstByte

namespace {

struct Peek {
  EventPtr event;
  absl::AnyInvocable<void(absl::StatusOr<uint8_t>)> done;
  absl::Duration timeout;
};

void OnPeek(int fd, short what, void* arg) {
  std::unique_ptr<Peek> peek(static_cast<Peek*>(arg));
  absl::StatusOr<uint8_t> result;
  if (what & EV_TIMEOUT) {
    result = absl::DeadlineExceededError(absl::StrCat(
        "no bytes from the peer within ", absl::FormatDuration(peek->timeout)));
  } else {
    uint8_t byte = 0;
    ssize_t n = recv(fd, &byte, 1, MSG_PEEK);
    if (n == 1) {
      result = byte;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      // Spurious wake-up: wait again (the deadline restarts; rare).
      timeval tv = absl::ToTimeval(peek->timeout);
      if (event_add(peek->event.get(), &tv) == 0) {
        peek.release();
        return;
      }
      result = absl::InternalError("event_add failed");
    } else {
      result = absl::UnavailableError(
          n == 0 ? std::string("peer closed before sending anything")
                 : absl::StrCat("peek failed: ", evutil_socket_error_to_string(errno)));
    }
  }
  auto done = std::move(peek->done);
  peek.reset();  // Frees the event first.
  done(std::move(result));
}

}  // namespace

void PeekFirstByte(EventLoop* loop, int fd, absl::Duration timeout,
                   absl::AnyInvocable<void(absl::StatusOr<uint8_t>)> done) {
  auto peek = std::make_unique<Peek>();
  peek->timeout = timeout;
  peek->done = std::move(done);
  Peek* raw = peek.get();
  raw->event.reset(event_new(loop->base(), fd, EV_READ, &OnPeek, raw));
  timeval tv = absl::ToTimeval(timeout);
  if (raw->event == nullptr ||
      event_add(raw->event.get(), timeout == absl::InfiniteDuration() ? nullptr : &tv) != 0) {
    auto cb = std::move(raw->done);
    peek.reset();
    cb(absl::ResourceExhaustedError("cannot watch the socket (event_add)"));
    return;
  }
  peek.release();  // OnPeek owns it now.
}

}  // namespace bevrpc::transport
