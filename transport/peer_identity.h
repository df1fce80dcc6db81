// PeerIdentity: who is on the other end of a connection, as far as TLS
// verified it: the subject and subject alternative names of the peer's
// certificate. Plain data with no libevent or OpenSSL types, so that rpc/
// and handlers can read it (rpc/server_context.h re-exports it as
// bevrpc::PeerIdentity).
//
// A connection without TLS, or whose peer sent no certificate, has no
// identity (Connection::peer_identity() is null). A connection holds its
// identity in a shared_ptr that calls share, so it stays valid for as long
// as any call started on that connection.
//
// Threading: immutable once made; any thread may read it.
#ifndef BEVRPC_TRANSPORT_PEER_IDENTITY_H_
#define BEVRPC_TRANSPORT_PEER_IDENTITY_H_

#include <string>
#include <vector>

namespace bevrpc::transport {

struct PeerIdentity {
  // The certificate's subject in OpenSSL's one-line RFC 2253 form, e.g.
  // "CN=client-a,O=Acme".
  std::string subject;
  // The subject's common name alone ("client-a"); empty if it has none.
  std::string common_name;
  // Subject alternative names by kind: "svc.example.com", "127.0.0.1" or
  // "::1", "spiffe://example.com/ns/a".
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  std::vector<std::string> uris;
  // The negotiated TLS version ("TLSv1.3") and ALPN protocol ("bevrpc").
  std::string tls_version;
  std::string alpn;
};

}  // namespace bevrpc::transport

#endif  // BEVRPC_TRANSPORT_PEER_IDENTITY_H_
