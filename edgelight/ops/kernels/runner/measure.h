// One .pte measured the way edgelight.bench.child measures an artifact: load, first run, warm-up, timed runs on
// the first input, then every input's outputs; peak RSS above the pre-load baseline; planned memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace edgelight::bench {

struct Measurement {
  bool ok = false;
  std::string error;  // "<stage> failed: <why>" when !ok
  double load_ms = 0, first_ms = 0;
  std::vector<double> samples_ms;
  long peak_rss_bytes = 0;
  long planned_arena_bytes = -1;  // -1: the program does not say
  std::vector<float> logits;  // count * outputs_per_input values
  size_t outputs_per_input = 0;
  bool nan_outputs = false;
  std::vector<std::string> notes;
};

// `inputs` holds `count` inputs of `shape` (N, C, H, W), float32, one after another.
Measurement measure(const std::string& model, const std::vector<float>& inputs, const std::vector<int64_t>& shape, long count, long warmup, long runs);

// Runs the first input max(runs, 2) times on a separately loaded program with ETDump on and writes the ETDump to
// `path`. Returns why it could not ("" when written).
std::string trace_etdump(const std::string& model, const std::vector<float>& inputs, const std::vector<int64_t>& shape, long runs, const std::string& path);

// Sizes XNNPACK's thread pool (0: leave the runtime's default).
void set_threads(long threads);

// Writes `bytes` to `path` through a temporary file and a rename: a reader never sees half a file.
bool write_atomically(const std::string& path, const std::string& bytes);

}  // namespace edgelight::bench
