#include "plan.h"

#include <nlohmann/json.hpp>
#include <sched.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <stdexcept>

#include "measure.h"

#ifndef EDGELIGHT_EXECUTORCH_VERSION
#define EDGELIGHT_EXECUTORCH_VERSION "unknown"
#endif

namespace edgelight::bench {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr int kSchemaVersion = 2;
const std::set<std::string> kPlanKeys = {"schema_version", "runs", "warmup", "threads", "results", "artifacts", "device"};
const std::set<std::string> kArtifactKeys = {"file", "model", "runtime", "precision", "input_shape", "params", "macs", "inputs", "labels", "dataset", "logits", "etdump"};
const std::set<std::string> kRuntimes = {"executorch", "tflite", "coreml", "onnx"};
const std::set<std::string> kPrecisions = {"fp32", "fp16", "w8a8", "w8"};

struct PlanError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void only_keys(const json& obj, const std::set<std::string>& allowed, const std::string& where) {
  for (const auto& [key, _] : obj.items()) {
    if (!allowed.count(key)) throw PlanError(where + ": unknown field '" + key + "'");
  }
}

long integer(const json& obj, const std::string& key, long minimum, const std::string& where) {
  if (!obj.contains(key) || !obj[key].is_number_integer() || obj[key].get<long>() < minimum)
    throw PlanError(where + "." + key + ": required, an integer >= " + std::to_string(minimum));
  return obj[key].get<long>();
}

std::string text(const json& obj, const std::string& key, const std::string& where) {
  if (!obj.contains(key) || !obj[key].is_string() || obj[key].get<std::string>().empty()) throw PlanError(where + "." + key + ": required, a non-empty string");
  return obj[key].get<std::string>();
}

void check_plan(const json& plan) {
  if (!plan.is_object()) throw PlanError("the plan must be a JSON object");
  only_keys(plan, kPlanKeys, "plan");
  if (integer(plan, "schema_version", 0, "plan") != kSchemaVersion) throw PlanError("plan.schema_version: must be " + std::to_string(kSchemaVersion));
  integer(plan, "runs", 2, "plan");
  integer(plan, "warmup", 0, "plan");
  integer(plan, "threads", 0, "plan");
  if (plan.contains("results")) {
    const std::string name = text(plan, "results", "plan");
    if (name.find('/') != std::string::npos || name[0] == '.') throw PlanError("plan.results: must be a plain file name, got '" + name + "'");
  }
  if (plan.contains("device") && !plan["device"].is_object()) throw PlanError("plan.device: must be an object");
  if (!plan.contains("artifacts") || !plan["artifacts"].is_array() || plan["artifacts"].empty()) throw PlanError("plan.artifacts: required, a non-empty array");
  for (size_t i = 0; i < plan["artifacts"].size(); ++i) {
    const json& a = plan["artifacts"][i];
    const std::string where = "plan.artifacts[" + std::to_string(i) + "]";
    if (!a.is_object()) throw PlanError(where + ": must be an object");
    only_keys(a, kArtifactKeys, where);
    text(a, "file", where);
    text(a, "model", where);
    if (!kRuntimes.count(text(a, "runtime", where))) throw PlanError(where + ".runtime: one of executorch, tflite, coreml, onnx");
    if (!kPrecisions.count(text(a, "precision", where))) throw PlanError(where + ".precision: one of fp32, fp16, w8a8, w8");
    const json& shape = a.value("input_shape", json());
    if (!shape.is_array() || shape.size() != 4 || !std::all_of(shape.begin(), shape.end(), [](const json& d) { return d.is_number_integer() && d.get<long>() >= 1; }))
      throw PlanError(where + ".input_shape: required, 4 integers >= 1 [N, C, H, W]");
    if (a.contains("inputs")) {
      const json& in = a["inputs"];
      if (!in.is_object()) throw PlanError(where + ".inputs: an object {file, count, samples}");
      only_keys(in, {"file", "count", "samples"}, where + ".inputs");
      text(in, "file", where + ".inputs");
      const long count = integer(in, "count", 1, where + ".inputs");
      const long samples = integer(in, "samples", 1, where + ".inputs");
      if (samples > count * shape[0].get<long>()) throw PlanError(where + ".inputs.samples: more than count x N");
    }
    if (a.contains("labels") && (!a.contains("inputs") || !a["labels"].is_string())) throw PlanError(where + ".labels: a file name, and only with inputs");
  }
}

// Linear-interpolation percentile: numpy's default, as edgelight.bench.stats.percentile.
double percentile(std::vector<double> xs, double q) {
  std::sort(xs.begin(), xs.end());
  const double pos = q / 100.0 * static_cast<double>(xs.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos)), hi = static_cast<size_t>(std::ceil(pos));
  return xs[lo] + (xs[hi] - xs[lo]) * (pos - static_cast<double>(lo));
}

json latency(const Measurement& m, long warmup) {
  const auto& xs = m.samples_ms;
  double mean = 0, var = 0;
  for (double x : xs) mean += x;
  mean /= static_cast<double>(xs.size());
  for (double x : xs) var += (x - mean) * (x - mean);
  return {{"load", m.load_ms}, {"first", m.first_ms}, {"mean", mean}, {"std", std::sqrt(var / static_cast<double>(xs.size() - 1))},
          {"p50", percentile(xs, 50)}, {"p90", percentile(xs, 90)}, {"p99", percentile(xs, 99)},
          {"min", *std::min_element(xs.begin(), xs.end())}, {"max", *std::max_element(xs.begin(), xs.end())},
          {"runs", static_cast<long>(xs.size())}, {"warmup", warmup}};
}

std::string cpu_model() {  // as edgelight.bench.records.cpu_model reads it
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::string lower = line;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    if (lower.rfind("model name", 0) == 0 || lower.rfind("hardware", 0) == 0 || lower.rfind("cpu model", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  struct utsname u {};
  return uname(&u) == 0 ? u.machine : "unknown";
}

json device_fields(const json& given) {
  json device = {{"kind", "host"}, {"serial", nullptr}, {"soc", nullptr}, {"compute_units", nullptr}};
  char host[256] = {0};
  device["name"] = gethostname(host, sizeof(host) - 1) == 0 ? host : "device";
  for (const auto& [key, value] : given.items()) device[key] = value;  // what the harness knows: kind, name, serial, soc
  device["cpu"] = given.contains("cpu") && given["cpu"].is_string() ? given["cpu"].get<std::string>() : cpu_model();  // read here unless the harness knows better (an emulated core)
  struct utsname u {};
  device["os"] = uname(&u) == 0 ? std::string(u.sysname) + " " + u.release : "unknown";
  cpu_set_t set;
  CPU_ZERO(&set);
  std::string cores;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) cores += (cores.empty() ? "" : ",") + std::to_string(c);
    }
  }
  device["cores_pinned"] = cores.empty() ? json(nullptr) : json(cores);
  return device;
}

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

template <typename T>
std::vector<T> read_raw(const fs::path& path, size_t n, const std::string& what) {
  std::vector<T> values(n);
  std::ifstream in(path, std::ios::binary);
  if (!in || !in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(n * sizeof(T))))
    throw std::runtime_error("cannot read " + std::to_string(n) + " " + what + " from '" + path.string() + "'");
  return values;
}

// What is known before measuring; status "error" until a figure lands.
json new_record(const json& plan, const json& a, const fs::path& folder, const json& device) {
  json record = {{"schema_version", kSchemaVersion}, {"model", a["model"]}, {"runtime", a["runtime"]}, {"precision", a["precision"]}, {"device", device},
                 {"threads", plan["threads"]}, {"status", "error"}, {"error", nullptr}, {"latency_ms", nullptr}, {"memory", nullptr}, {"accuracy", nullptr},
                 {"params", a.value("params", json())}, {"macs", a.value("macs", json())}, {"nan_outputs", false}, {"op_profile", nullptr},
                 {"versions", {{"executorch", EDGELIGHT_EXECUTORCH_VERSION}, {"edgelight-bench", "1"}}}, {"timestamp", now_utc()}};
  std::error_code ec;
  const auto bytes = fs::file_size(folder / a["file"].get<std::string>(), ec);
  record["artifact"] = {{"path", a["file"]}, {"bytes", ec ? 0 : static_cast<long>(bytes)}, {"sha256", nullptr}};
  return record;
}

// One artifact's record; any failure is the record's error, never the run's.
json run_artifact(const json& plan, const json& a, const fs::path& folder, const json& device) {
  const long warmup = plan["warmup"].get<long>(), runs = plan["runs"].get<long>();
  const fs::path file = folder / a["file"].get<std::string>();
  json record = new_record(plan, a, folder, device);
  if (a["runtime"] != "executorch") {
    record["status"] = "not_runnable";
    record["error"] = "edgelight-bench runs ExecuTorch programs; this artifact is " + a["runtime"].get<std::string>();
    return record;
  }
  if (!fs::is_regular_file(file)) {
    record["error"] = "cannot read the artifact: '" + file.string() + "' does not exist";
    return record;
  }
  std::vector<int64_t> shape = a["input_shape"].get<std::vector<int64_t>>();
  int64_t per_input = 1;
  for (int64_t d : shape) per_input *= d;
  try {
    std::vector<float> x;
    long count = 1, samples = 0;
    std::vector<std::string> notes;
    if (a.contains("inputs")) {
      count = a["inputs"]["count"].get<long>();
      samples = a["inputs"]["samples"].get<long>();
      x = read_raw<float>(folder / a["inputs"]["file"].get<std::string>(), static_cast<size_t>(count * per_input), "float32 inputs");
    } else {  // latency and memory only
      std::mt19937 rng(0);
      std::normal_distribution<float> normal;
      x.resize(static_cast<size_t>(per_input));
      for (float& v : x) v = normal(rng);
      notes.push_back("no inputs in the plan: latency and memory on random inputs");
    }
    set_threads(plan["threads"].get<long>());
    Measurement m = measure(file.string(), x, shape, count, warmup, runs);
    if (!m.ok) {
      record["error"] = m.error;
      return record;
    }
    record["latency_ms"] = latency(m, warmup);
    record["memory"] = {{"peak_rss_bytes", m.peak_rss_bytes}, {"planned_arena_bytes", m.planned_arena_bytes >= 0 ? json(m.planned_arena_bytes) : json(nullptr)}};
    record["nan_outputs"] = m.nan_outputs;
    if (a.contains("labels")) {
      const auto labels = read_raw<int32_t>(folder / a["labels"].get<std::string>(), static_cast<size_t>(samples), "int32 labels");
      long correct = 0;
      for (long i = 0; i < samples; ++i) {
        const float* row = m.logits.data() + i * static_cast<long>(m.outputs_per_input);
        correct += (std::max_element(row, row + m.outputs_per_input) - row) == labels[static_cast<size_t>(i)];
      }
      record["accuracy"] = {{"dataset", a.value("dataset", "plan-inputs")}, {"top1", static_cast<double>(correct) / static_cast<double>(samples)}, {"samples", samples}};
    }
    if (a.contains("logits")) {
      const size_t n = static_cast<size_t>(samples ? samples : count * shape[0]) * m.outputs_per_input;
      if (!write_atomically((folder / a["logits"].get<std::string>()).string(), std::string(reinterpret_cast<const char*>(m.logits.data()), n * sizeof(float))))
        throw std::runtime_error("cannot write the logits file");
    }
    if (a.contains("etdump")) {  // the op profile, traced after the measurement; the host reads the file
      const std::string why = trace_etdump(file.string(), x, shape, runs, (folder / a["etdump"].get<std::string>()).string());
      if (!why.empty()) notes.push_back("no op profile: " + why);
    }
    notes.insert(notes.end(), m.notes.begin(), m.notes.end());
    if (!notes.empty()) record["notes"] = notes;
    record["status"] = "ok";
  } catch (const std::exception& e) {
    record["error"] = e.what();
  }
  return record;
}

// run_artifact in a forked child, as the Python harness runs each artifact in a fresh process: a crash (SIGSEGV
// in a kernel, an abort in the runtime) ends that record only, and each artifact's peak RSS has its own baseline.
json run_forked(const json& plan, const json& a, const fs::path& folder, const json& device, const fs::path& scratch) {
  std::remove(scratch.c_str());
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return run_artifact(plan, a, folder, device);
  if (pid == 0) {
    const bool written = write_atomically(scratch.string(), run_artifact(plan, a, folder, device).dump());
    std::fflush(nullptr);
    _exit(written ? 0 : 3);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  std::ifstream in(scratch);
  if (in) {
    try {
      json record = json::parse(in);
      std::remove(scratch.c_str());
      return record;
    } catch (const json::exception&) {
    }
  }
  json record = new_record(plan, a, folder, device);
  record["error"] = WIFSIGNALED(status) ? "runtime crashed (signal " + std::to_string(WTERMSIG(status)) + ") before writing a record"
                                        : "the measuring process exited with code " + std::to_string(WEXITSTATUS(status)) + " before writing a record";
  return record;
}

}  // namespace

int run_plan(const std::string& plan_path, const std::string& results_path) {
  json plan;
  try {
    std::ifstream in(plan_path);
    if (!in) throw PlanError("cannot open it");
    plan = json::parse(in);
    check_plan(plan);
  } catch (const std::exception& e) {  // json::parse_error or PlanError: one line
    std::fprintf(stderr, "edgelight-bench: bad plan '%s': %s\n", plan_path.c_str(), e.what());
    return 2;
  }
  const fs::path folder = fs::absolute(plan_path).parent_path();
  const fs::path out = results_path.empty() ? folder / plan.value("results", std::string("bench_results.json")) : fs::path(results_path);
  const json device = device_fields(plan.value("device", json::object()));
  json doc = {{"schema_version", kSchemaVersion}, {"records", json::array()}};
  bool failed = false;
  for (const json& a : plan["artifacts"]) {
    json record = run_forked(plan, a, folder, device, out.string() + ".record");
    failed |= record["status"] == "error";
    if (record["status"] == "error") std::fprintf(stderr, "edgelight-bench: %s: %s\n", a["file"].get<std::string>().c_str(), record["error"].get<std::string>().c_str());
    doc["records"].push_back(std::move(record));
    if (!write_atomically(out.string(), doc.dump(1) + "\n")) {  // after every record: a run cut short keeps what it finished
      std::fprintf(stderr, "edgelight-bench: cannot write '%s'\n", out.string().c_str());
      return 1;
    }
  }
  return failed ? 1 : 0;
}

}  // namespace edgelight::bench
