#include "rpc/naming/target.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace bevrpc::naming {
namespace {

absl::Status Bad(absl::string_view target, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("target \"", absl::CEscape(target), "\" does not parse: ",
                   why, " (accepted: ", kTargetForms, ")"));
}

// "a:1,b:2" -> HostPorts; `what` names the list in errors.
absl::StatusOr<std::vector<HostPort>> ParseHostPortList(
    absl::string_view list, absl::string_view what) {
  std::vector<HostPort> out;
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    if (item.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " has an empty entry"));
    }
    absl::StatusOr<HostPort> hp = ParseHostPort(item);
    if (!hp.ok()) return hp.status();
    out.push_back(*std::move(hp));
  }
  return out;
}

// Splits "AUTHORITY/REST" (the text after "scheme://").
void SplitAuthority(absl::string_view rest, absl::string_view* authority,
                    absl::string_view* path) {
  size_t slash = rest.find('/');
  if (slash == absl::string_view::npos) {
    *authority = rest;
    *path = absl::string_view();
    return;
  }
  *authority = rest.substr(0, slash);
  *path = rest.substr(slash);  // Keeps the leading '/'.
}

std::string JoinHostPorts(const std::vector<HostPort>& list) {
  return absl::StrJoin(list, ",", [](std::string* out, const HostPort& hp) {
    out->append(hp.ToString());
  });
}

}  // namespace

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) {
    return absl::StrCat("[", host, "]:", port);
  }
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<HostPort> ParseHostPort(absl::string_view text) {
  HostPort hp;
  absl::string_view port;
  if (absl::ConsumePrefix(&text, "[")) {
    size_t close = text.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"[", text, "\" lacks the closing ']'"));
    }
    hp.host = std::string(text.substr(0, close));
    absl::string_view after = text.substr(close + 1);
    if (!absl::ConsumePrefix(&after, ":")) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"[", text, "\" needs :PORT after ']'"));
    }
    port = after;
  } else {
    size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", text, "\" needs a port (HOST:PORT)"));
    }
    hp.host = std::string(text.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", text, "\": an IPv6 address needs brackets ([V6]:PORT)"));
    }
    port = text.substr(colon + 1);
  }
  if (hp.host.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" has an empty host"));
  }
  for (char c : hp.host) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c)) || c == '/' ||
        c == ',' || c == '[' || c == ']') {
      return absl::InvalidArgumentError(absl::StrCat(
          "host \"", absl::CEscape(hp.host), "\" contains '",
          absl::CEscape(std::string(1, c)), "'"));
    }
  }
  uint32_t number = 0;
  if (port.empty() ||
      !std::all_of(port.begin(), port.end(),
                   [](char c) { return c >= '0' && c <= '9'; }) ||
      !absl::SimpleAtoi(port, &number) || number == 0 || number > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "port \"", absl::CEscape(port), "\" is not a number from 1 to 65535"));
  }
  hp.port = static_cast<uint16_t>(number);
  return hp;
}

absl::StatusOr<Target> ParseTarget(absl::string_view text) {
  if (text.empty()) return Bad(text, "it is empty");
  Target t;
  size_t sep = text.find("://");
  if (sep == absl::string_view::npos) {
    absl::StatusOr<HostPort> hp = ParseHostPort(text);
    if (!hp.ok()) return Bad(text, hp.status().message());
    t.scheme = Target::Scheme::kHostPort;
    t.endpoints.push_back(*std::move(hp));
    return t;
  }
  const absl::string_view scheme = text.substr(0, sep);
  absl::string_view authority, path;
  SplitAuthority(text.substr(sep + 3), &authority, &path);
  if (scheme == "dns") {
    t.scheme = Target::Scheme::kDns;
    if (!authority.empty()) {
      HostPort server;
      absl::StatusOr<HostPort> hp = ParseHostPort(authority);
      if (hp.ok()) {
        server = *std::move(hp);
      } else if (authority.find(':') == absl::string_view::npos) {
        server.host = std::string(authority);  // Port 53.
        server.port = 53;
      } else {
        return Bad(text, absl::StrCat("DNS server: ", hp.status().message()));
      }
      t.dns_server = std::move(server);
    }
    absl::StatusOr<HostPort> hp = ParseHostPort(absl::StripPrefix(path, "/"));
    if (!hp.ok()) return Bad(text, hp.status().message());
    t.endpoints.push_back(*std::move(hp));
    return t;
  }
  if (scheme == "list") {
    t.scheme = Target::Scheme::kList;
    if (!authority.empty()) {
      return Bad(text, "list:/// takes no authority (three slashes)");
    }
    absl::string_view list = absl::StripPrefix(path, "/");
    if (list.empty()) return Bad(text, "the list is empty");
    absl::StatusOr<std::vector<HostPort>> hps =
        ParseHostPortList(list, "the list");
    if (!hps.ok()) return Bad(text, hps.status().message());
    t.endpoints = *std::move(hps);
    return t;
  }
  if (scheme == "file") {
    t.scheme = Target::Scheme::kFile;
    if (!authority.empty()) {
      return Bad(text, "file:/// takes an absolute path (three slashes)");
    }
    if (path.size() < 2) return Bad(text, "the path is empty");
    t.path = std::string(path);
    return t;
  }
  if (scheme == "etcd") {
    t.scheme = Target::Scheme::kEtcd;
    if (authority.empty()) {
      return Bad(text, "etcd:// needs the etcd members (HOST:PORT,...)");
    }
    absl::StatusOr<std::vector<HostPort>> members =
        ParseHostPortList(authority, "the etcd member list");
    if (!members.ok()) return Bad(text, members.status().message());
    t.etcd_members = *std::move(members);
    absl::string_view prefix = absl::StripPrefix(path, "/");
    if (prefix.empty()) return Bad(text, "etcd:// needs a key PREFIX");
    t.prefix = std::string(prefix);
    if (t.prefix.back() != '/') t.prefix.push_back('/');
    return t;
  }
  return Bad(text, absl::StrCat("unknown scheme \"", absl::CEscape(scheme),
                                "\""));
}

std::string Target::ToString() const {
  switch (scheme) {
    case Scheme::kHostPort:
      return endpoints.empty() ? "" : endpoints[0].ToString();
    case Scheme::kDns:
      return absl::StrCat(
          "dns://", dns_server.host.empty() ? "" : dns_server.ToString(), "/",
          endpoints.empty() ? "" : endpoints[0].ToString());
    case Scheme::kList:
      return absl::StrCat("list:///", JoinHostPorts(endpoints));
    case Scheme::kFile:
      return absl::StrCat("file://", path);
    case Scheme::kEtcd:
      return absl::StrCat("etcd://", JoinHostPorts(etcd_members), "/", prefix);
  }
  return "";
}

}  // namespace bevrpc::naming
