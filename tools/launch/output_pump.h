// OutputPump: one thread that reads the children's output pipes with
// poll(2) and hands over complete lines.
//
//   OutputPump pump({.max_line_bytes = 16384},
//                   [](uint64_t key, absl::string_view line) { ... });
//   pump.Add(child.output_fd, key);    // takes the descriptor
//
// A line longer than max_line_bytes is cut there and handed over with
// " [line truncated]" appended; the rest, up to its newline, is dropped. At
// end of file a last unterminated line is handed over and the descriptor
// closed. `on_line` runs on the pump's thread only, never with the pump's
// lock held, and never after the destructor returns. Thread-safe.
#ifndef BEVRPC_TOOLS_LAUNCH_OUTPUT_PUMP_H_
#define BEVRPC_TOOLS_LAUNCH_OUTPUT_PUMP_H_

#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "transport/sync.h"

namespace bevrpc::launch {

struct OutputPumpOptions {
  // Longest line handed over whole. Default: 16 KiB.
  size_t max_line_bytes = 16 * 1024;
};

class OutputPump {
 public:
  using LineFn = std::function<void(uint64_t key, absl::string_view line)>;

  OutputPump(OutputPumpOptions options, LineFn on_line);
  // Stops the thread and closes every descriptor still open.
  ~OutputPump();
  OutputPump(const OutputPump&) = delete;
  OutputPump& operator=(const OutputPump&) = delete;

  // Reads `fd` (owned from now on) until end of file; its lines carry `key`.
  void Add(int fd, uint64_t key);

 private:
  struct Stream {
    int fd;
    uint64_t key;
    std::string partial;
    bool discarding = false;  // Dropping the rest of a truncated line.
  };

  void Run();
  void Wake();
  void TakeNewStreams();
  // Reads what `s` has; false at end of file or error.
  bool ReadStream(Stream& s);
  void SplitLines(Stream& s, const char* data, size_t n);

  const OutputPumpOptions options_;
  const LineFn on_line_;
  int wake_fds_[2] = {-1, -1};
  Mutex mu_;
  std::vector<Stream> added_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Stream> streams_;  // Pump thread only.
  std::thread thread_;
};

}  // namespace bevrpc::launch

#endif  // BEVRPC_TOOLS_LAUNCH_OUTPUT_PUMP_H_
