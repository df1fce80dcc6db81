#include "tools/launch/topology.h"

#include <unistd.h>

#include <algorithm>
#include <map>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "rpc/internal/read_file.h"
#include "rpc/naming/target.h"

namespace bevrpc::launch {
namespace {

class FirstError : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (error_.empty()) {
      error_ = absl::StrCat("line ", line + 1, " column ", column + 1, ": ",
                            message);
    }
  }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

absl::Status ServiceError(absl::string_view service, absl::string_view field,
                          absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("service \"", service, "\": ", field, ": ", what));
}

bool ValidName(absl::string_view name) {
  return !name.empty() &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
         });
}

// "" -> `fallback`; otherwise a positive duration.
absl::Status ParsePositiveDuration(absl::string_view service,
                                   absl::string_view field,
                                   const std::string& text,
                                   absl::Duration fallback,
                                   absl::Duration* out) {
  if (text.empty()) {
    *out = fallback;
    return absl::OkStatus();
  }
  if (!absl::ParseDuration(text, out) || *out <= absl::ZeroDuration() ||
      *out == absl::InfiniteDuration()) {
    return ServiceError(service, field,
                        absl::StrCat("\"", text,
                                     "\" is not a positive duration (e.g. "
                                     "10s, 500ms, 1m)"));
  }
  return absl::OkStatus();
}

std::string AbsolutePath(absl::string_view path) {
  if (absl::StartsWith(path, "/")) return std::string(path);
  char cwd[4096];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) return std::string(path);
  return absl::StrCat(cwd, "/", path);
}

absl::Status ResolveBinary(const Service& s, absl::string_view bin_dir,
                           std::string* out) {
  if (s.binary().empty()) return ServiceError(s.name(), "binary", "missing");
  *out = absl::StartsWith(s.binary(), "/")
             ? s.binary()
             : AbsolutePath(absl::StrCat(bin_dir, "/", s.binary()));
  if (access(out->c_str(), X_OK) != 0) {
    return ServiceError(
        s.name(), "binary",
        absl::StrCat("\"", s.binary(), "\": no executable file at ", *out,
                     " (relative paths resolve against --bin_dir=", bin_dir,
                     "; build it first)"));
  }
  return absl::OkStatus();
}

absl::Status CheckReadiness(const Service& s, ServiceSpec* spec) {
  const Readiness& r = s.readiness();
  if (!r.health_service().empty() && !r.log_line().empty()) {
    return ServiceError(s.name(), "readiness",
                        "set health_service or log_line, not both");
  }
  spec->health_service = r.health_service();
  spec->log_line = r.log_line();
  return ParsePositiveDuration(s.name(), "readiness.timeout", r.timeout(),
                               absl::Seconds(30), &spec->ready_timeout);
}

absl::StatusOr<ServiceSpec> CheckService(const Service& s,
                                         absl::string_view bin_dir) {
  if (!ValidName(s.name())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "service name \"", s.name(), "\": must be non-empty [a-z0-9_-]+"));
  }
  ServiceSpec spec;
  spec.name = s.name();
  if (absl::Status st = ResolveBinary(s, bin_dir, &spec.binary); !st.ok()) {
    return st;
  }
  spec.args.assign(s.args().begin(), s.args().end());
  std::map<std::string, std::string> env(s.env().begin(), s.env().end());
  for (const auto& [name, unused] : env) {
    if (name.empty() || name.find('=') != std::string::npos) {
      return ServiceError(s.name(), "env",
                          absl::StrCat("bad variable name \"", name, "\""));
    }
  }
  spec.env.assign(env.begin(), env.end());
  spec.replicas = s.replicas() == 0 ? 1 : static_cast<int>(s.replicas());
  if (s.replicas() > 1000) {
    return ServiceError(s.name(), "replicas",
                        absl::StrCat(s.replicas(), " is more than 1000"));
  }
  if (s.port() != 0 && s.port() + spec.replicas - 1 > 65535) {
    return ServiceError(s.name(), "port",
                        absl::StrCat(s.port(), " + replicas - 1 exceeds 65535"));
  }
  spec.base_port = static_cast<int>(s.port());
  spec.depends_on.assign(s.depends_on().begin(), s.depends_on().end());
  spec.restart = s.restart();
  if (absl::Status st = CheckReadiness(s, &spec); !st.ok()) return st;
  if (absl::Status st = ParsePositiveDuration(s.name(), "stop_grace",
                                              s.stop_grace(), absl::Seconds(10),
                                              &spec.stop_grace);
      !st.ok()) {
    return st;
  }
  return spec;
}

// Depth-first: appends `i` after its dependencies; `path` is the current
// chain (for the cycle message).
absl::Status Visit(int i, const std::vector<ServiceSpec>& in,
                   const absl::flat_hash_map<std::string, int>& index,
                   std::vector<int>* mark, std::vector<std::string>* path,
                   std::vector<ServiceSpec>* out) {
  if ((*mark)[i] == 2) return absl::OkStatus();
  path->push_back(in[i].name);
  if ((*mark)[i] == 1) {
    auto first = std::find(path->begin(), path->end(), in[i].name);
    return ServiceError(
        in[i].name, "depends_on",
        absl::StrCat("dependency cycle: ",
                     absl::StrJoin(first, path->end(), " -> ")));
  }
  (*mark)[i] = 1;
  for (const std::string& dep : in[i].depends_on) {
    absl::Status s = Visit(index.at(dep), in, index, mark, path, out);
    if (!s.ok()) return s;
  }
  (*mark)[i] = 2;
  path->pop_back();
  out->push_back(in[i]);
  return absl::OkStatus();
}

absl::Status CheckDependencies(const std::vector<ServiceSpec>& in,
                               absl::flat_hash_map<std::string, int>* index) {
  for (int i = 0; i < static_cast<int>(in.size()); ++i) {
    if (!index->emplace(in[i].name, i).second) {
      return ServiceError(in[i].name, "name", "duplicate service name");
    }
  }
  for (const ServiceSpec& s : in) {
    for (const std::string& dep : s.depends_on) {
      if (!index->contains(dep)) {
        return ServiceError(s.name, "depends_on",
                            absl::StrCat("unknown service \"", dep, "\""));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ServiceSpec>> OrderByDependencies(
    const std::vector<ServiceSpec>& in) {
  absl::flat_hash_map<std::string, int> index;
  if (absl::Status s = CheckDependencies(in, &index); !s.ok()) return s;
  std::vector<int> mark(in.size(), 0);
  std::vector<ServiceSpec> out;
  for (int i = 0; i < static_cast<int>(in.size()); ++i) {
    std::vector<std::string> path;
    absl::Status s = Visit(i, in, index, &mark, &path, &out);
    if (!s.ok()) return s;
  }
  return out;
}

absl::Status CheckRegistry(const std::string& registry) {
  if (registry.empty()) return absl::OkStatus();
  absl::StatusOr<naming::Target> t = naming::ParseTarget(registry);
  if (!t.ok() || t->scheme != naming::Target::Scheme::kEtcd) {
    return absl::InvalidArgumentError(absl::StrCat(
        "registry: \"", registry, "\": ",
        t.ok() ? "not an etcd target" : t.status().message(),
        "; expected \"\" (endpoints files) or etcd://H:P[,H:P...]/PREFIX"));
  }
  return absl::OkStatus();
}

// Expands every arg and env value of every service with placeholder values,
// so that a bad substitution fails before anything starts.
absl::Status CheckSubstitutions(const LaunchPlan& plan) {
  for (const ServiceSpec& s : plan.services) {
    SubstitutionValues v = ReplicaValues(
        plan, s, ReplicaPlace{0, 1, "/dir"},
        [](absl::string_view svc) { return std::string(svc); });
    if (auto args = ExpandArgs(s, v); !args.ok()) return args.status();
    if (auto env = ExpandEnv(s, v); !env.ok()) return env.status();
  }
  return absl::OkStatus();
}

}  // namespace

int LaunchPlan::Find(absl::string_view name) const {
  for (int i = 0; i < static_cast<int>(services.size()); ++i) {
    if (services[i].name == name) return i;
  }
  return -1;
}

absl::StatusOr<Topology> ParseTopologyText(absl::string_view text,
                                           absl::string_view filename) {
  Topology topology;
  google::protobuf::TextFormat::Parser parser;
  FirstError errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &topology)) {
    return absl::InvalidArgumentError(
        absl::StrCat(filename, ": ", errors.error()));
  }
  return topology;
}

absl::StatusOr<LaunchPlan> BuildPlan(const Topology& topology,
                                     absl::string_view bin_dir) {
  LaunchPlan plan;
  if (absl::Status s = CheckRegistry(topology.registry()); !s.ok()) return s;
  plan.registry = std::string(absl::StripSuffix(topology.registry(), "/"));
  if (!topology.host().empty()) plan.host = topology.host();
  if (topology.services().empty()) {
    return absl::InvalidArgumentError("services: the topology has none");
  }
  std::vector<ServiceSpec> specs;
  for (const Service& s : topology.services()) {
    absl::StatusOr<ServiceSpec> spec = CheckService(s, bin_dir);
    if (!spec.ok()) return spec.status();
    specs.push_back(*std::move(spec));
  }
  absl::StatusOr<std::vector<ServiceSpec>> ordered = OrderByDependencies(specs);
  if (!ordered.ok()) return ordered.status();
  plan.services = *std::move(ordered);
  if (absl::Status s = CheckSubstitutions(plan); !s.ok()) return s;
  return plan;
}

absl::StatusOr<LaunchPlan> LoadTopology(absl::string_view path,
                                        absl::string_view bin_dir) {
  absl::StatusOr<std::string> text =
      internal::ReadFileToString(std::string(path));
  if (!text.ok()) {
    return absl::NotFoundError(
        absl::StrCat("cannot read topology file ", path));
  }
  absl::StatusOr<Topology> topology = ParseTopologyText(*text, path);
  if (!topology.ok()) return topology.status();
  absl::StatusOr<LaunchPlan> plan = BuildPlan(*topology, bin_dir);
  if (!plan.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", plan.status().message()));
  }
  return plan;
}

std::string RegistryTarget(const LaunchPlan& plan, absl::string_view name) {
  return absl::StrCat(plan.registry, "/", name);
}

SubstitutionValues ReplicaValues(
    const LaunchPlan& plan, const ServiceSpec& service,
    const ReplicaPlace& place,
    std::function<std::string(absl::string_view)> target_of) {
  SubstitutionValues v;
  v.values = {
      {"port", absl::StrCat(place.port)},
      {"host", plan.host},
      {"replica", absl::StrCat(place.replica)},
      {"name", service.name},
      {"id", absl::StrCat(service.name, "/", place.replica)},
      {"dir", place.dir},
      {"register",
       plan.etcd_mode() ? RegistryTarget(plan, service.name) : ""},
  };
  const LaunchPlan* p = &plan;
  v.target = [p, target_of = std::move(target_of)](
                 absl::string_view svc) -> absl::StatusOr<std::string> {
    if (p->Find(svc) < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("{target:", svc, "}: no service \"", svc, "\""));
    }
    return target_of(svc);
  };
  return v;
}

absl::StatusOr<std::vector<std::string>> ExpandArgs(
    const ServiceSpec& service, const SubstitutionValues& values) {
  std::vector<std::string> out;
  for (size_t i = 0; i < service.args.size(); ++i) {
    absl::StatusOr<std::string> arg = Expand(service.args[i], values);
    if (!arg.ok()) {
      return ServiceError(service.name, absl::StrCat("args[", i, "]"),
                          absl::StrCat("\"", service.args[i], "\": ",
                                       arg.status().message()));
    }
    out.push_back(*std::move(arg));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> ExpandEnv(
    const ServiceSpec& service, const SubstitutionValues& values) {
  std::vector<std::string> out;
  for (const auto& [name, text] : service.env) {
    absl::StatusOr<std::string> value = Expand(text, values);
    if (!value.ok()) {
      return ServiceError(service.name, absl::StrCat("env[\"", name, "\"]"),
                          absl::StrCat("\"", text, "\": ",
                                       value.status().message()));
    }
    out.push_back(absl::StrCat(name, "=", *value));
  }
  return out;
}

}  // namespace bevrpc::launch
