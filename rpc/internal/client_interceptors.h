// Runs a channel's client interceptors (rpc/interceptor.h) around one
// logical call: unary calls from Channel::CallAsync(), streams from
// ClientStreamBase::Start(). Internal to rpc/.
//
//   absl::Status refused = InterceptClientCall(chain, target, method,
//       /*streaming=*/false, &metadata, timeout, &done);
//   if (!refused.ok()) { fail the call with it; }
//
// Threading: the caller's thread; the wrapped `done` runs wherever the
// call's callback runs (the channel's loop).
#ifndef BEVRPC_RPC_INTERNAL_CLIENT_INTERCEPTORS_H_
#define BEVRPC_RPC_INTERNAL_CLIENT_INTERCEPTORS_H_

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "rpc/call_options.h"
#include "rpc/interceptor.h"

namespace bevrpc::internal {

// Calls each interceptor's OnCallStart in order (they may change
// `*metadata`). All OK: wraps `*done` so that, when the call ends, every
// OnCallEnd runs (in reverse order) with its status before the caller's
// callback, and returns OK. A refusal: the interceptors that had said OK
// hear OnCallEnd with it at once, `*done` is left as it was, and the
// refusal is returned for the caller to fail the call with.
absl::Status InterceptClientCall(
    const ClientInterceptors& chain, absl::string_view target,
    absl::string_view method, bool streaming, Metadata* metadata,
    absl::Duration timeout, absl::AnyInvocable<void(absl::Status)>* done);

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_CLIENT_INTERCEPTORS_H_
