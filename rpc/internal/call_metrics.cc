#include "rpc/internal/call_metrics.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace bevrpc::internal {
namespace {

metrics::MetricSpec Spec(absl::string_view side, absl::string_view name,
                         std::string help, std::string unit = "") {
  metrics::MetricSpec spec;
  spec.name = absl::StrCat("bevrpc_", side, "_", name);
  spec.help = std::move(help);
  spec.unit = std::move(unit);
  spec.label_names = {"service", "method"};
  return spec;
}

template <typename T>
absl::Status Take(absl::StatusOr<T*> family, T** out) {
  if (!family.ok()) return family.status();
  *out = *family;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CallMetricFamilies> CallMetricFamilies::Register(
    metrics::MetricsRegistry* registry, Side side) {
  const bool server = side == kServer;
  const absl::string_view s = server ? "server" : "client";
  const absl::string_view where = server ? "on the server" : "by the client";
  CallMetricFamilies f;
  metrics::MetricSpec handled =
      Spec(s, "handled", absl::StrCat("RPCs completed ", where,
                                      ", by status code."));
  handled.label_names.push_back("code");
  absl::Status st;
  // Stops at the first error (`st` then keeps it).
  auto ok = [&st](absl::Status s2) {
    if (st.ok()) st = std::move(s2);
    return st.ok();
  };
  ok(Take(registry->RegisterCounterFamily(
              Spec(s, "started", absl::StrCat("RPCs started ", where, "."))),
          &f.started)) &&
      ok(Take(registry->RegisterCounterFamily(handled), &f.handled)) &&
      ok(Take(registry->RegisterGaugeFamily(Spec(
                  s, "in_flight",
                  absl::StrCat("RPCs started and not yet completed ", where,
                               "."))),
              &f.in_flight)) &&
      ok(Take(registry->RegisterHistogramFamily(Spec(
                  s, "handling_seconds",
                  server ? "Time from reading the REQUEST to queuing the "
                           "RESPONSE on the connection."
                         : "Time from starting the call to reading its "
                           "RESPONSE (or to its failure), retries included.",
                  "seconds")),
              &f.handling)) &&
      ok(Take(registry->RegisterCounterFamily(Spec(
                  s, "received_bytes",
                  absl::StrCat("Message payload bytes received ", where, "."),
                  "bytes")),
              &f.received_bytes)) &&
      ok(Take(registry->RegisterCounterFamily(Spec(
                  s, "sent_bytes",
                  absl::StrCat("Message payload bytes sent ", where, "."),
                  "bytes")),
              &f.sent_bytes)) &&
      ok(Take(registry->RegisterCounterFamily(Spec(
                  s, "stream_messages_received",
                  absl::StrCat("Stream messages received ", where, "."))),
              &f.stream_received)) &&
      ok(Take(registry->RegisterCounterFamily(Spec(
                  s, "stream_messages_sent",
                  absl::StrCat("Stream messages sent ", where, "."))),
              &f.stream_sent));
  if (st.ok() && !server) {
    ok(Take(registry->RegisterCounterFamily(Spec(
                s, "retries", "Attempts of unary calls after their first.")),
            &f.retries)) &&
        ok(Take(registry->RegisterCounterFamily(Spec(
                    s, "hedges",
                    "Hedged attempts of unary calls after their first.")),
                &f.hedges));
  }
  if (!st.ok()) return st;
  return f;
}

void SplitMethodName(absl::string_view full_name, absl::string_view* service,
                     absl::string_view* method) {
  const size_t slash = full_name.find('/');
  if (slash == absl::string_view::npos) {
    *service = full_name;
    *method = absl::string_view();
    return;
  }
  *service = full_name.substr(0, slash);
  *method = full_name.substr(slash + 1);
}

CallMetrics::CallMetrics(const CallMetricFamilies& f, absl::string_view service,
                         absl::string_view method)
    : handled_family_(f.handled),
      service_(service),
      method_(method),
      started_(f.started->Get({service, method})),
      in_flight_(f.in_flight->Get({service, method})),
      handling_(f.handling->Get({service, method})),
      received_bytes_(f.received_bytes->Get({service, method})),
      sent_bytes_(f.sent_bytes->Get({service, method})),
      stream_received_(f.stream_received->Get({service, method})),
      stream_sent_(f.stream_sent->Get({service, method})),
      retries_(f.retries == nullptr ? nullptr
                                    : f.retries->Get({service, method})),
      hedges_(f.hedges == nullptr ? nullptr
                                  : f.hedges->Get({service, method})) {}

metrics::Counter* CallMetrics::ResolveHandled(int code) {
  // Racing threads get the same series from the family; either store wins.
  const std::string name =
      absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  metrics::Counter* c = handled_family_->Get({service_, method_, name});
  handled_[code].store(c, std::memory_order_release);
  return c;
}

}  // namespace bevrpc::internal
