#include "measure.h"

#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor.h>
#ifdef EDGELIGHT_HAS_ETDUMP
#include <executorch/devtools/etdump/etdump_flatcc.h>
#endif

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

// The wheel ships libexecutorch_threadpool.so but not extension/threadpool/threadpool.h; these two declarations
// are that header's (ExecuTorch 1.5), enough to size XNNPACK's pool.
namespace executorch::extension::threadpool {
class ThreadPool {
 public:
  bool _unsafe_reset_threadpool(uint32_t new_thread_count);
};
ThreadPool* get_threadpool();
}  // namespace executorch::extension::threadpool

namespace edgelight::bench {
namespace {

using executorch::extension::Module;
using executorch::runtime::Error;

long status_kb(const char* field) {  // a /proc/self/status line such as VmHWM; -1 where there is none
  std::ifstream in("/proc/self/status");
  std::string line;
  const size_t n = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') return std::atol(line.c_str() + n + 1);
  }
  return -1;
}

long peak_rss_bytes() {
  const long hwm = status_kb("VmHWM");
  if (hwm >= 0) return hwm * 1024;
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss * 1024;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

void set_threads(long threads) {
  if (threads > 0) executorch::extension::threadpool::get_threadpool()->_unsafe_reset_threadpool(static_cast<uint32_t>(threads));
}

bool write_atomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".partial";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out || !out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())) || !out.flush()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

Measurement measure(const std::string& model, const std::vector<float>& inputs, const std::vector<int64_t>& shape, long count, long warmup, long runs) {
  Measurement m;
  int64_t per_input = 1;
  for (int64_t d : shape) per_input *= d;
  std::ofstream("/proc/self/clear_refs") << "5";  // VmHWM := current RSS, so the peak is the model's
  const long baseline_kb = status_kb("VmRSS");
  if (baseline_kb < 0) m.notes.push_back("no /proc/self/status: peak RSS includes the runtime's own start-up");

  auto t0 = std::chrono::steady_clock::now();
  Module module(model, Module::LoadMode::File);
  const Error loaded = module.load_method("forward");
  if (loaded != Error::Ok) {
    m.error = std::string("load failed: ") + executorch::runtime::to_string(loaded);
    if (loaded == Error::OperatorMissing) m.error += " (the program needs a kernel this runner does not link)";
    return m;
  }
  m.load_ms = ms_since(t0);
  if (auto meta = module.method_meta("forward"); meta.ok()) {
    m.planned_arena_bytes = 0;
    for (size_t i = 0; i < meta->num_memory_planned_buffers(); ++i) m.planned_arena_bytes += meta->memory_planned_buffer_size(i).get();
  }

  std::vector<float> input(inputs.begin(), inputs.begin() + per_input);  // from_blob wants a mutable buffer
  auto run = [&](const float* x, bool keep) -> std::string {
    std::copy(x, x + per_input, input.begin());
    auto tensor = executorch::extension::from_blob(input.data(), std::vector<executorch::aten::SizesType>(shape.begin(), shape.end()));
    auto out = module.forward(tensor);
    if (!out.ok()) return executorch::runtime::to_string(out.error());
    if (out->empty() || !out->at(0).isTensor()) return "the program returned no tensor";
    const auto& y = out->at(0).toTensor();
    if (y.scalar_type() != executorch::aten::ScalarType::Float) return "the program's output is not float32";
    const float* data = y.const_data_ptr<float>();
    for (ssize_t i = 0; i < y.numel(); ++i) m.nan_outputs |= !std::isfinite(data[i]);
    if (keep) {
      m.outputs_per_input = static_cast<size_t>(y.numel());
      m.logits.insert(m.logits.end(), data, data + y.numel());
    }
    return "";
  };

  t0 = std::chrono::steady_clock::now();
  if (auto e = run(inputs.data(), false); !e.empty()) return m.error = "first inference failed: " + e, m;
  m.first_ms = ms_since(t0);
  for (long i = 0; i < warmup; ++i) {
    if (auto e = run(inputs.data(), false); !e.empty()) return m.error = "warm-up failed: " + e, m;
  }
  for (long i = 0; i < runs; ++i) {
    t0 = std::chrono::steady_clock::now();
    if (auto e = run(inputs.data(), false); !e.empty()) return m.error = "timed runs failed: " + e, m;
    m.samples_ms.push_back(ms_since(t0));
  }
  for (long k = 0; k < count; ++k) {
    if (auto e = run(inputs.data() + k * per_input, true); !e.empty()) return m.error = "outputs failed at input " + std::to_string(k) + ": " + e, m;
  }
  m.peak_rss_bytes = baseline_kb >= 0 ? std::max(0L, peak_rss_bytes() - baseline_kb * 1024) : peak_rss_bytes();
  if (m.nan_outputs) m.notes.push_back("NaN or Inf in the outputs");
  m.ok = true;
  return m;
}

std::string trace_etdump(const std::string& model, const std::vector<float>& input, const std::vector<int64_t>& shape, long runs, const std::string& path) {
#ifdef EDGELIGHT_HAS_ETDUMP
  // A second load with ETDumpGen as its event tracer, as edgelight.targets.executorch.profile does: tracing
  // never touches the figures measure() took. The host turns the file into op rows with the devtools Inspector.
  auto tracer = std::make_unique<executorch::etdump::ETDumpGen>();
  executorch::etdump::ETDumpGen* gen = tracer.get();
  Module traced(model, Module::LoadMode::File, std::move(tracer));
  if (const Error e = traced.load_method("forward"); e != Error::Ok) return std::string("load failed: ") + executorch::runtime::to_string(e);
  int64_t per_input = 1;
  for (int64_t d : shape) per_input *= d;
  std::vector<float> x(input.begin(), input.begin() + per_input);
  for (long i = 0; i < std::max(runs, 2L); ++i) {
    auto tensor = executorch::extension::from_blob(x.data(), std::vector<executorch::aten::SizesType>(shape.begin(), shape.end()));
    if (auto out = traced.forward(tensor); !out.ok()) return std::string("traced run failed: ") + executorch::runtime::to_string(out.error());
  }
  const executorch::etdump::ETDumpResult dump = gen->get_etdump_data();
  if (dump.buf == nullptr || dump.size == 0) return "the runtime wrote an empty ETDump (its event tracer is compiled out)";
  const bool written = write_atomically(path, std::string(static_cast<const char*>(dump.buf), dump.size));
  std::free(dump.buf);  // ETDumpGen without a caller's buffer mallocs the result
  return written ? "" : "cannot write '" + path + "'";
#else
  (void)model, (void)input, (void)shape, (void)runs, (void)path;
  return "this runner was built without ExecuTorch's etdump library";
#endif
}

}  // namespace edgelight::bench
