#include "tests/testing/test_certs.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace bevrpc::testing {
namespace {

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* x) const { X509_free(x); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using CertPtr = std::unique_ptr<X509, CertFree>;

absl::Status OpenSslError(absl::string_view what) {
  char buf[256] = "unknown";
  if (unsigned long e = ERR_get_error()) ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return absl::InternalError(absl::StrCat(what, ": ", buf));
}

struct Issued {
  KeyPtr key;
  CertPtr cert;
};

bool AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A certificate for `subject` (pairs of field, value) signed by `issuer`
// (self-signed when null). `ca` makes a CA; `sans` is an
// subjectAltName value ("DNS:localhost,IP:127.0.0.1") or empty.
absl::StatusOr<Issued> Issue(
    std::initializer_list<std::pair<const char*, const char*>> subject,
    const Issued* issuer, bool ca, const char* sans, long not_before_s,
    long not_after_s, long serial) {
  Issued out;
  out.key.reset(EVP_EC_gen("P-256"));
  if (out.key == nullptr) return OpenSslError("EVP_EC_gen");
  out.cert.reset(X509_new());
  X509* x = out.cert.get();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_gmtime_adj(X509_getm_notBefore(x), not_before_s);
  X509_gmtime_adj(X509_getm_notAfter(x), not_after_s);
  X509_set_pubkey(x, out.key.get());
  X509_NAME* name = X509_get_subject_name(x);
  for (const auto& [field, value] : subject) {
    X509_NAME_add_entry_by_txt(name, field, MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(value),
                               -1, -1, 0);
  }
  X509* issuer_cert = issuer != nullptr ? issuer->cert.get() : x;
  EVP_PKEY* issuer_key = issuer != nullptr ? issuer->key.get() : out.key.get();
  X509_set_issuer_name(x, X509_get_subject_name(issuer_cert));
  bool ok = AddExtension(x, issuer_cert, NID_subject_key_identifier, "hash");
  if (ca) {
    ok = ok && AddExtension(x, issuer_cert, NID_basic_constraints, "critical,CA:TRUE") &&
         AddExtension(x, issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    ok = ok && AddExtension(x, issuer_cert, NID_basic_constraints, "CA:FALSE") &&
         AddExtension(x, issuer_cert, NID_authority_key_identifier, "keyid") &&
         AddExtension(x, issuer_cert, NID_key_usage, "critical,digitalSignature") &&
         AddExtension(x, issuer_cert, NID_ext_key_usage, "serverAuth,clientAuth");
    if (sans != nullptr && *sans != '\0') {
      ok = ok && AddExtension(x, issuer_cert, NID_subject_alt_name, sans);
    }
  }
  if (!ok) return OpenSslError("adding a certificate extension");
  if (X509_sign(x, issuer_key, EVP_sha256()) == 0) return OpenSslError("X509_sign");
  return out;
}

absl::Status WritePem(const Issued& issued, const std::string& cert_path,
                      const std::string* key_path) {
  BIO* bio = BIO_new_file(cert_path.c_str(), "w");
  if (bio == nullptr) return OpenSslError(absl::StrCat("open ", cert_path));
  bool ok = PEM_write_bio_X509(bio, issued.cert.get()) == 1;
  BIO_free(bio);
  if (!ok) return OpenSslError(absl::StrCat("write ", cert_path));
  if (key_path == nullptr) return absl::OkStatus();
  bio = BIO_new_file(key_path->c_str(), "w");
  if (bio == nullptr) return OpenSslError(absl::StrCat("open ", *key_path));
  ok = PEM_write_bio_PrivateKey(bio, issued.key.get(), nullptr, nullptr, 0,
                                nullptr, nullptr) == 1;
  BIO_free(bio);
  if (!ok) return OpenSslError(absl::StrCat("write ", *key_path));
  return absl::OkStatus();
}

constexpr long kHour = 3600;
constexpr long kDay = 24 * kHour;
constexpr long kTenYears = 3650 * kDay;
constexpr char kServerSans[] = "DNS:localhost,IP:127.0.0.1,IP:::1";

}  // namespace

absl::StatusOr<TestCerts> WriteTestCerts(const std::string& dir) {
  TestCerts c;
  c.dir = dir;
  auto path = [&](const char* name) { return absl::StrCat(dir, "/", name); };
  c.ca_cert = path("ca.pem");
  c.server_cert = path("server.pem");
  c.server_key = path("server.key");
  c.server2_cert = path("server2.pem");
  c.server2_key = path("server2.key");
  c.client_cert = path("client.pem");
  c.client_key = path("client.key");
  c.expired_cert = path("expired.pem");
  c.expired_key = path("expired.key");
  c.untrusted_ca_cert = path("untrusted_ca.pem");
  c.untrusted_cert = path("untrusted.pem");
  c.untrusted_key = path("untrusted.key");

  absl::StatusOr<Issued> ca = Issue({{"CN", "bevrpc test CA"}}, nullptr, true,
                                    nullptr, -kHour, kTenYears, 1);
  if (!ca.ok()) return ca.status();
  absl::StatusOr<Issued> other_ca = Issue({{"CN", "untrusted test CA"}},
                                          nullptr, true, nullptr, -kHour,
                                          kTenYears, 2);
  if (!other_ca.ok()) return other_ca.status();
  struct Leaf {
    std::initializer_list<std::pair<const char*, const char*>> subject;
    const Issued* issuer;
    const char* sans;
    long not_before, not_after;
    const std::string* cert;
    const std::string* key;
  };
  const Leaf leaves[] = {
      {{{"CN", "localhost"}}, &*ca, kServerSans, -kHour, kTenYears,
       &c.server_cert, &c.server_key},
      {{{"O", "second"}, {"CN", "localhost"}}, &*ca, kServerSans, -kHour,
       kTenYears, &c.server2_cert, &c.server2_key},
      {{{"O", "bevrpc test"}, {"CN", "client-a"}}, &*ca,
       "URI:spiffe://bevrpc.test/client-a", -kHour, kTenYears, &c.client_cert,
       &c.client_key},
      {{{"CN", "localhost"}}, &*ca, kServerSans, -2 * kDay, -kDay,
       &c.expired_cert, &c.expired_key},
      {{{"CN", "localhost"}}, &*other_ca, kServerSans, -kHour, kTenYears,
       &c.untrusted_cert, &c.untrusted_key},
  };
  long serial = 10;
  for (const Leaf& leaf : leaves) {
    absl::StatusOr<Issued> issued = Issue(leaf.subject, leaf.issuer, false,
                                          leaf.sans, leaf.not_before,
                                          leaf.not_after, ++serial);
    if (!issued.ok()) return issued.status();
    absl::Status s = WritePem(*issued, *leaf.cert, leaf.key);
    if (!s.ok()) return s;
  }
  absl::Status s = WritePem(*ca, c.ca_cert, nullptr);
  if (s.ok()) s = WritePem(*other_ca, c.untrusted_ca_cert, nullptr);
  if (!s.ok()) return s;
  return c;
}

}  // namespace bevrpc::testing
