#include "tools/launch/launch_flags.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"

namespace bevrpc::launch {
namespace {

absl::Status SetFlag(const std::string& name, const std::string& value,
                     LaunchFlags* flags) {
  if (name == "control") {
    size_t colon = value.rfind(':');
    int port = -1;
    if (colon == std::string::npos || colon == 0 ||
        !absl::SimpleAtoi(value.substr(colon + 1), &port) || port < 0 ||
        port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--control=", value,
          ": expected HOST:PORT with PORT 0 (a free one) to 65535"));
    }
    flags->control = value;
  } else if (name == "bin_dir") {
    flags->bin_dir = value;
  } else if (name == "state_dir") {
    flags->state_dir = value;
  } else if (name == "emit_systemd") {
    flags->emit_systemd = value;
  } else if (name == "drain_delay") {
    if (!absl::ParseDuration(value, &flags->drain_delay) ||
        flags->drain_delay < absl::ZeroDuration() ||
        flags->drain_delay == absl::InfiniteDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--drain_delay=", value, ": expected a duration >= 0 (e.g. 2s)"));
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
  }
  if (value.empty() && name != "state_dir") {
    return absl::InvalidArgumentError(absl::StrCat("--", name, ": empty"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LaunchFlags> ParseLaunchFlags(
    const std::vector<std::string>& args) {
  LaunchFlags flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!absl::StartsWith(arg, "--")) {
      if (!flags.topology.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "a second topology \"", arg, "\" (one only, first: ",
            flags.topology, ")"));
      }
      flags.topology = arg;
      continue;
    }
    std::string name = arg.substr(2), value;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat(arg, ": needs a value"));
    }
    if (absl::Status s = SetFlag(name, value, &flags); !s.ok()) return s;
  }
  if (flags.topology.empty()) {
    return absl::InvalidArgumentError("no TOPOLOGY.textproto given");
  }
  return flags;
}

}  // namespace bevrpc::launch
