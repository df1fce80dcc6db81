// kv_server: serves bevrpc.kv.KeyValue, an in-memory key-value store.
//
//   kv_server --port=0
//   bevrpc call 127.0.0.1:PORT bevrpc.kv.KeyValue/Put '{"key":"a","value":"1"}'
//
// Prints "listening on 127.0.0.1:PORT" once ready; on SIGTERM or SIGINT
// drains gracefully and exits 0. See services/builtin/server_main.h.
#include "services/builtin/server_main.h"
#include "services/kv/kv_service.h"

int main(int argc, char** argv) {
  bevrpc::kv::KeyValueService kv;
  return bevrpc::builtin::ServerMain(
      argc, argv, "kv_server",
      [&](bevrpc::Server& server, bevrpc::builtin::HealthService&) {
        return server.RegisterService(&kv);
      });
}
