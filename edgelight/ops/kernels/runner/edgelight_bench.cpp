// edgelight-bench: a native ExecuTorch runner, the C++ counterpart of edgelight.bench.child.
//
//   edgelight-bench --plan PLAN.json [--results R.json]
//       Plan mode (docs/native-runner.md): every artifact of a bench plan measured, one bench record each,
//       the results file rewritten after every record. What runs on a phone (adb push + adb shell).
//   edgelight-bench --model M.pte --inputs X.f32 --shape N,C,H,W --result R.json
//                   [--count K] [--warmup W] [--runs R] [--threads T] [--logits L.f32]
//       Job mode: one artifact, the raw figures the harness's child returns (load_ms, first_ms, samples_ms,
//       peak_rss_bytes, nan_outputs, notes; or ok=false with the stage that failed) and the logits of all K
//       inputs. What edgelight.arm64.lane runs under qemu-user.
//
// Exit codes: 0 measured, 1 an artifact failed (its record or result says why), 2 a bad command line or plan.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "measure.h"
#include "plan.h"

namespace {

using edgelight::bench::Measurement;

struct Job {
  std::string model, inputs, result, logits;
  std::vector<int64_t> shape;
  long count = 1, warmup = 5, runs = 20, threads = 0;
};

const char* kUsage =
    "usage: edgelight-bench --plan PLAN.json [--results R.json]\n"
    "       edgelight-bench --model M.pte --inputs X.f32 --shape N,C,H,W --result R.json [--count K] [--warmup W] [--runs R] [--threads T] [--logits L.f32]";

bool parse_shape(const std::string& text, std::vector<int64_t>& shape) {
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    char* end = nullptr;
    const long v = std::strtol(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || v <= 0) return false;
    shape.push_back(v);
  }
  return shape.size() == 4;
}

bool parse_job(int argc, char** argv, Job& job, std::string& error) {
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return error = "missing a value after " + flag, false;
    const std::string value = argv[i + 1];
    char* end = nullptr;
    const long number = std::strtol(value.c_str(), &end, 10);
    const bool whole = !value.empty() && *end == '\0' && number >= 0;
    if (flag == "--model") job.model = value;
    else if (flag == "--inputs") job.inputs = value;
    else if (flag == "--result") job.result = value;
    else if (flag == "--logits") job.logits = value;
    else if (flag == "--shape") {
      if (!parse_shape(value, job.shape)) return error = "--shape wants 4 positive sizes such as 1,3,32,32, got '" + value + "'", false;
    } else if (flag == "--count" || flag == "--warmup" || flag == "--runs" || flag == "--threads") {
      if (!whole) return error = flag + " wants a whole number >= 0, got '" + value + "'", false;
      (flag == "--count" ? job.count : flag == "--warmup" ? job.warmup : flag == "--runs" ? job.runs : job.threads) = number;
    } else {
      return error = "unknown option " + flag, false;
    }
  }
  if (job.model.empty() || job.inputs.empty() || job.result.empty() || job.shape.empty()) return error = kUsage, false;
  if (job.runs < 2 || job.count < 1) return error = "--runs must be >= 2 and --count >= 1", false;
  return true;
}

int run_job(const Job& job) {
  using nlohmann::json;
  auto fail = [&](const std::string& error) {
    std::fprintf(stderr, "edgelight-bench: %s\n", error.c_str());
    edgelight::bench::write_atomically(job.result, json({{"ok", false}, {"error", error}}).dump() + "\n");
    return 1;
  };
  int64_t per_input = 1;
  for (int64_t d : job.shape) per_input *= d;
  std::vector<float> x(static_cast<size_t>(per_input * job.count));
  std::ifstream in(job.inputs, std::ios::binary);
  if (!in || !in.read(reinterpret_cast<char*>(x.data()), static_cast<std::streamsize>(x.size() * sizeof(float))))
    return fail("cannot read " + std::to_string(job.count) + " inputs of " + std::to_string(per_input) + " float32 values from '" + job.inputs + "'");
  edgelight::bench::set_threads(job.threads);
  const Measurement m = edgelight::bench::measure(job.model, x, job.shape, job.count, job.warmup, job.runs);
  if (!m.ok) return fail(m.error + " ('" + job.model + "')");
  if (!job.logits.empty() &&
      !edgelight::bench::write_atomically(job.logits, std::string(reinterpret_cast<const char*>(m.logits.data()), m.logits.size() * sizeof(float))))
    return fail("cannot write the logits to '" + job.logits + "'");
  const json result = {{"ok", true}, {"load_ms", m.load_ms}, {"first_ms", m.first_ms}, {"samples_ms", m.samples_ms}, {"peak_rss_bytes", m.peak_rss_bytes},
                       {"planned_arena_bytes", m.planned_arena_bytes}, {"samples", job.count}, {"outputs_per_input", m.outputs_per_input},
                       {"nan_outputs", m.nan_outputs}, {"notes", m.notes}};
  if (!edgelight::bench::write_atomically(job.result, result.dump() + "\n")) return fail("cannot write '" + job.result + "'");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "--plan") {
    if (argc != 3 && !(argc == 5 && std::string(argv[3]) == "--results")) {
      std::fprintf(stderr, "edgelight-bench: %s\n", kUsage);
      return 2;
    }
    return edgelight::bench::run_plan(argv[2], argc == 5 ? argv[4] : "");
  }
  Job job;
  std::string error;
  if (!parse_job(argc, argv, job, error)) {
    std::fprintf(stderr, "edgelight-bench: %s\n", error.c_str());
    return 2;
  }
  return run_job(job);
}
