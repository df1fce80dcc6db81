#include "rpc/naming/file_resolver.h"

#include <cstdio>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "rpc/internal/config_lines.h"
#include "rpc/internal/file_stamp.h"
#include "rpc/internal/read_file.h"
#include "rpc/naming/static_resolver.h"

namespace bevrpc::naming {
namespace {

using ::bevrpc::internal::ConfigLineOptions;
using ::bevrpc::internal::FileStamp;
using ::bevrpc::internal::ForEachConfigLine;
using ::bevrpc::internal::ReadFileToString;

class FileResolver : public Resolver {
 public:
  FileResolver(std::string path, transport::EventLoop* loop,
               absl::Duration poll)
      : path_(std::move(path)), loop_(loop), poll_(poll), timer_(loop) {}

  void Start(Listener listener) override {
    listener_ = std::move(listener);
    // The first check runs from the loop, never inline.
    timer_.Start(absl::ZeroDuration(), [this] { Check(); });
  }

 private:
  void Check() {
    timer_.Start(poll_, [this] { Check(); });
    absl::StatusOr<FileStamp> stamp = FileStamp::Of(path_);
    if (!stamp.ok()) {
      // "endpoints file PATH: strerror".
      Fail(absl::UnavailableError(
          absl::StrCat("endpoints file ", stamp.status().message())));
      return;
    }
    if (have_stamp_ && *stamp == stamp_) return;
    absl::StatusOr<std::string> text = ReadFileToString(path_);
    if (!text.ok()) {
      Fail(absl::UnavailableError(
          absl::StrCat("endpoints file ", path_, " could not be read")));
      return;
    }
    stamp_ = *stamp;
    have_stamp_ = true;
    ParsedEndpointFile parsed = ParseEndpointFile(*text);
    for (const std::string& e : parsed.errors) {
      std::fprintf(stderr, "bevrpc: endpoints file %s: %s (line skipped)\n",
                   path_.c_str(), e.c_str());
    }
    last_error_ = absl::OkStatus();
    if (have_list_ && parsed.endpoints == list_) return;
    have_list_ = true;
    list_ = parsed.endpoints;
    listener_(std::move(parsed.endpoints));
  }

  void Fail(absl::Status why) {
    have_stamp_ = false;  // Re-read once it is back.
    if (why == last_error_) return;
    last_error_ = why;
    if (have_list_) {
      std::fprintf(stderr, "bevrpc: %s; keeping the last %zu endpoints\n",
                   std::string(why.message()).c_str(), list_.size());
      return;
    }
    listener_(std::move(why));
  }

  const std::string path_;
  transport::EventLoop* const loop_;
  const absl::Duration poll_;
  transport::Timer timer_;
  Listener listener_;
  FileStamp stamp_;
  bool have_stamp_ = false;
  bool have_list_ = false;
  EndpointList list_;
  absl::Status last_error_;
};

// The endpoints one line names: "HOST:PORT [key=value]...", resolved.
// The error says why the line is bad.
absl::StatusOr<EndpointList> ParseEndpointLine(absl::string_view line) {
  std::vector<absl::string_view> fields =
      absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  absl::StatusOr<HostPort> hp = ParseHostPort(fields[0]);
  if (!hp.ok()) return hp.status();
  EndpointInfo meta;
  for (size_t i = 1; i < fields.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(fields[i], absl::MaxSplits('=', 1));
    if (kv.first == "weight") {
      uint32_t w;
      if (!absl::SimpleAtoi(kv.second, &w) || w == 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "weight \"", kv.second, "\" is not a positive integer"));
      }
      meta.weight = w;
    } else if (kv.first == "zone") {
      meta.zone = std::string(kv.second);
    } else if (kv.first == "id") {
      meta.id = std::string(kv.second);
    } else if (kv.first == "version") {
      meta.version = std::string(kv.second);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown field \"", fields[i],
                       "\" (known: weight=N, zone=Z, id=I, version=V)"));
    }
  }
  absl::StatusOr<EndpointList> addrs = ResolveHostPort(*hp);
  if (!addrs.ok()) return addrs.status();
  EndpointList out;
  for (EndpointInfo& e : *addrs) {
    EndpointInfo info = meta;
    info.address = std::move(e.address);
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace

ParsedEndpointFile ParseEndpointFile(absl::string_view text) {
  ParsedEndpointFile out;
  absl::flat_hash_set<std::string> seen;
  ConfigLineOptions options;
  options.trailing_comments = true;
  // Never fails: a bad line is reported and skipped, the others count.
  (void)ForEachConfigLine(
      text,
      [&](int line_no, absl::string_view line) {
        absl::StatusOr<EndpointList> endpoints = ParseEndpointLine(line);
        if (!endpoints.ok()) {
          out.errors.push_back(absl::StrCat("line ", line_no, ": ",
                                            endpoints.status().message()));
          return absl::OkStatus();
        }
        for (EndpointInfo& e : *endpoints) {
          if (seen.insert(e.address).second) {
            out.endpoints.push_back(std::move(e));
          }
        }
        return absl::OkStatus();
      },
      options);
  return out;
}

absl::StatusOr<std::unique_ptr<Resolver>> NewFileResolver(
    const Target& target, transport::EventLoop* loop,
    const ResolverOptions& options) {
  if (target.scheme != Target::Scheme::kFile) {
    return absl::InvalidArgumentError(
        absl::StrCat("target \"", target.ToString(), "\" is not file:///"));
  }
  return std::unique_ptr<Resolver>(
      new FileResolver(target.path, loop, options.file_poll_interval));
}

}  // namespace bevrpc::naming
