// edgelight's shift and channel shuffle as LiteRT custom ops (the CompiledModel custom-op kernel API of
// libLiteRt.so), and a small C entry point that runs a .tflite holding them through LiteRT's CompiledModel on
// the CPU, where XNNPACK takes every other op.
//
// A custom op's name carries its arguments ("EdgelightShift2d_k3_d1", "EdgelightChannelShuffle_g4"): LiteRT
// registers one kernel per name and hands Run() no per-node options, so each argument set is its own name. The
// runner registers the names the model's operator codes list. Tensors arrive in LiteRT's layout, NHWC.
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "edgelight_kernels.h"
#include "litert_c_api.h"

#define EDGELIGHT_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

struct OpSpec {
  bool shift;  // else channel shuffle
  int a = 0, b = 0;  // shift: kernel size, dilation; shuffle: groups
  bool int8 = false;  // an int8 shift: its name carries the zero point, the border's fill
  int zero_point = 0;
  LiteRtStatus* error = nullptr;  // the runner's: LiteRT 2.3 drops a custom kernel's returned status
};

bool parse_name(const char* name, OpSpec* spec) {
  int a = 0, b = 0, used = 0;
  if (std::sscanf(name, "EdgelightShift2d_k%d_d%d%n", &a, &b, &used) == 2) {
    if (a < 1 || a % 2 == 0 || b == 0) return false;
    *spec = {true, a, b};
    if (name[used] == '\0') return true;
    int z = 0, more = 0;
    if (std::sscanf(name + used, "_z%d%n", &z, &more) != 1 || name[used + more] != '\0' || z < -128 || z > 127) return false;
    spec->int8 = true;
    spec->zero_point = z;
    return true;
  }
  if (std::sscanf(name, "EdgelightChannelShuffle_g%d%n", &a, &used) == 1 && name[used] == '\0') {
    if (a < 1) return false;
    *spec = {false, a, 0};
    return true;
  }
  return false;
}

LiteRtStatus Init(void*, const void*, size_t) { return kLiteRtStatusOk; }
LiteRtStatus Destroy(void*) { return kLiteRtStatusOk; }

LiteRtStatus OutputLayouts(void*, size_t num_inputs, const LiteRtLayout* inputs, size_t num_outputs,
                           LiteRtLayout* outputs) {
  if (num_inputs != 1 || num_outputs != 1 || inputs[0].rank != 4) return kLiteRtStatusErrorInvalidArgument;
  outputs[0] = inputs[0];
  return kLiteRtStatusOk;
}

template <typename T>
void run_op(const OpSpec& op, const T* in, T* out, const int32_t* d) {
  if (op.shift)
    edgelight::shift2d_nhwc_copy(in, out, d[0], d[3], d[1], d[2], op.a, op.b, T(op.zero_point));
  else
    edgelight::channel_shuffle_nhwc(in, out, int64_t(d[0]) * d[1] * d[2], d[3], op.a);
}

LiteRtStatus RunOp(const OpSpec& op, size_t num_inputs, const LiteRtTensorBuffer* inputs, size_t num_outputs,
                   LiteRtTensorBuffer* outputs) {
  if (num_inputs != 1 || num_outputs != 1) return kLiteRtStatusErrorInvalidArgument;
  LiteRtRankedTensorType type;
  if (LiteRtStatus s = LiteRtGetTensorBufferTensorType(inputs[0], &type); s != kLiteRtStatusOk) return s;
  const int32_t* dims = type.layout.dimensions;
  if (type.layout.rank != 4 || (!op.shift && dims[3] % op.a != 0)) return kLiteRtStatusErrorInvalidArgument;
  // a shift's name says its precision (the zero point is the int8 border); a shuffle takes either
  const bool f32 = type.element_type == kLiteRtElementTypeFloat32;
  if (!f32 && type.element_type != kLiteRtElementTypeInt8) return kLiteRtStatusErrorUnsupported;
  if (op.shift && op.int8 == f32) return kLiteRtStatusErrorInvalidArgument;
  void *src = nullptr, *dst = nullptr;
  if (LiteRtStatus s = LiteRtLockTensorBuffer(inputs[0], &src, kLiteRtTensorBufferLockModeRead); s != kLiteRtStatusOk)
    return s;
  LiteRtStatus s = LiteRtLockTensorBuffer(outputs[0], &dst, kLiteRtTensorBufferLockModeWrite);
  if (s == kLiteRtStatusOk) {
    if (f32)
      run_op(op, static_cast<const float*>(src), static_cast<float*>(dst), dims);
    else
      run_op(op, static_cast<const int8_t*>(src), static_cast<int8_t*>(dst), dims);
    s = LiteRtUnlockTensorBuffer(outputs[0]);
  }
  LiteRtUnlockTensorBuffer(inputs[0]);
  return s;
}

// LiteRT's CustomOpDispatcher (2.3) ignores what Run returns, so a failure is also recorded where
// edgelight_litert_run looks after each forward pass.
LiteRtStatus Run(void* user_data, size_t num_inputs, const LiteRtTensorBuffer* inputs, size_t num_outputs,
                 LiteRtTensorBuffer* outputs) {
  const OpSpec& op = *static_cast<const OpSpec*>(user_data);
  const LiteRtStatus s = RunOp(op, num_inputs, inputs, num_outputs, outputs);
  if (s != kLiteRtStatusOk && op.error && *op.error == kLiteRtStatusOk) *op.error = s;
  return s;
}

const LiteRtCustomOpKernel kKernel = {Init, OutputLayouts, Run, Destroy};

size_t element_bytes(const LiteRtRankedTensorType& t) {
  size_t n = t.element_type == kLiteRtElementTypeFloat32 ? 4 : t.element_type == kLiteRtElementTypeInt8 ? 1 : 0;
  for (unsigned i = 0; i < t.layout.rank; ++i) n *= size_t(t.layout.dimensions[i]);
  return n;
}

}  // namespace

struct EdgelightLiteRt {
  LiteRtEnvironment env = nullptr;
  LiteRtModel model = nullptr;
  LiteRtCompiledModel compiled = nullptr;
  std::vector<std::unique_ptr<OpSpec>> ops;  // the kernels' user data: lives as long as the compiled model
  LiteRtTensorBuffer input = nullptr, output = nullptr;
  size_t input_bytes = 0, output_bytes = 0;
  LiteRtStatus kernel_error = kLiteRtStatusOk;  // set by a failing edgelight kernel during a forward pass
  ~EdgelightLiteRt() {
    if (input) LiteRtDestroyTensorBuffer(input);
    if (output) LiteRtDestroyTensorBuffer(output);
    if (compiled) LiteRtDestroyCompiledModel(compiled);
    if (model) LiteRtDestroyModel(model);
    if (env) LiteRtDestroyEnvironment(env);
  }
};

namespace {

int fail(char* err, size_t len, const std::string& what, LiteRtStatus status) {
  std::snprintf(err, len, "%s (LiteRT status %d)", what.c_str(), status);
  return status == kLiteRtStatusOk ? -1 : status;
}

LiteRtStatus make_buffer(EdgelightLiteRt& h, LiteRtSubgraph graph, bool input, LiteRtTensorBuffer* buffer, size_t* bytes) {
  LiteRtTensor tensor;
  LiteRtRankedTensorType type;
  LiteRtStatus s = input ? LiteRtGetSubgraphInput(graph, 0, &tensor) : LiteRtGetSubgraphOutput(graph, 0, &tensor);
  if (s == kLiteRtStatusOk) s = LiteRtGetRankedTensorType(tensor, &type);
  if (s != kLiteRtStatusOk) return s;
  *bytes = element_bytes(type);
  if (*bytes == 0) return kLiteRtStatusErrorUnsupported;
  return LiteRtCreateManagedTensorBuffer(h.env, kLiteRtTensorBufferTypeHostMemory, &type, *bytes, buffer);
}

}  // namespace

// Loads `path` on the CPU with edgelight's kernels registered under `names`. `cpu_options` is LiteRT's CPU
// options as its CpuOptions serialize them (an opaque "xnnpack" payload of TOML text: "num_threads = 2\n",
// "weight_cache_file_path = \":memory\"\n"); empty: LiteRT's defaults. Returns 0 and a handle, or non-zero with
// a one-line reason in `err`.
EDGELIGHT_EXPORT int edgelight_litert_open(const char* path, const char* cpu_options, const char* const* names, int num_names,
                                           EdgelightLiteRt** out, char* err, size_t err_len) {
  auto h = std::make_unique<EdgelightLiteRt>();
  LiteRtStatus s = LiteRtCreateEnvironment(0, nullptr, &h->env);
  if (s != kLiteRtStatusOk) return fail(err, err_len, "LiteRtCreateEnvironment failed", s);
  if ((s = LiteRtCreateModelFromFile(h->env, path, &h->model)) != kLiteRtStatusOk)
    return fail(err, err_len, std::string("LiteRT could not read ") + path, s);
  LiteRtOptions options;
  if ((s = LiteRtCreateOptions(&options)) != kLiteRtStatusOk) return fail(err, err_len, "LiteRtCreateOptions failed", s);
  std::unique_ptr<LiteRtOptionsT, void (*)(LiteRtOptions)> owned(options, LiteRtDestroyOptions);
  if ((s = LiteRtSetOptionsHardwareAccelerators(options, kLiteRtHwAcceleratorCpu)) != kLiteRtStatusOk)
    return fail(err, err_len, "could not select the CPU accelerator", s);
  if (cpu_options && *cpu_options) {
    const std::string toml = cpu_options;
    char* payload = new char[toml.size() + 1];
    std::memcpy(payload, toml.c_str(), toml.size() + 1);
    LiteRtOpaqueOptions cpu;
    s = LiteRtCreateOpaqueOptions("xnnpack", payload, [](void* p) { delete[] static_cast<char*>(p); }, &cpu);
    if (s != kLiteRtStatusOk) {
      delete[] payload;
      return fail(err, err_len, "could not create the CPU options", s);
    }
    if ((s = LiteRtAddOpaqueOptions(options, cpu)) != kLiteRtStatusOk) {
      LiteRtDestroyOpaqueOptions(cpu);
      return fail(err, err_len, "could not set the CPU thread count", s);
    }
  }
  for (int i = 0; i < num_names; ++i) {
    auto spec = std::make_unique<OpSpec>();
    if (!parse_name(names[i], spec.get()))
      return fail(err, err_len, std::string("not an edgelight custom op: ") + names[i], kLiteRtStatusErrorInvalidArgument);
    spec->error = &h->kernel_error;
    if ((s = LiteRtAddCustomOpKernelOption(options, names[i], 1, &kKernel, spec.get())) != kLiteRtStatusOk)
      return fail(err, err_len, std::string("could not register ") + names[i], s);
    h->ops.push_back(std::move(spec));
  }
  if ((s = LiteRtCreateCompiledModel(h->env, h->model, options, &h->compiled)) != kLiteRtStatusOk)
    return fail(err, err_len, "LiteRT could not compile the model (an op without a kernel?)", s);
  LiteRtSubgraph graph;
  LiteRtParamIndex num_in = 0, num_out = 0;
  if ((s = LiteRtGetModelSubgraph(h->model, 0, &graph)) != kLiteRtStatusOk ||
      (s = LiteRtGetNumSubgraphInputs(graph, &num_in)) != kLiteRtStatusOk ||
      (s = LiteRtGetNumSubgraphOutputs(graph, &num_out)) != kLiteRtStatusOk)
    return fail(err, err_len, "could not read the model's signature", s);
  if (num_in != 1 || num_out != 1)
    return fail(err, err_len, "the edgelight runner takes models of one input and one output", kLiteRtStatusErrorUnsupported);
  if ((s = make_buffer(*h, graph, true, &h->input, &h->input_bytes)) != kLiteRtStatusOk ||
      (s = make_buffer(*h, graph, false, &h->output, &h->output_bytes)) != kLiteRtStatusOk)
    return fail(err, err_len, "could not allocate the I/O buffers (float32 or int8 tensors only)", s);
  *out = h.release();
  return 0;
}

EDGELIGHT_EXPORT size_t edgelight_litert_io_bytes(const EdgelightLiteRt* h, int output) {
  return output ? h->output_bytes : h->input_bytes;
}

// One forward pass: `input` holds the input tensor's bytes, `output` receives the output's. Returns 0, a LiteRT
// status, or -2 when one of edgelight's kernels refused its tensors (wrong rank, or precision against its name).
EDGELIGHT_EXPORT int edgelight_litert_run(EdgelightLiteRt* h, const void* input, void* output) {
  h->kernel_error = kLiteRtStatusOk;
  void* at = nullptr;
  LiteRtStatus s = LiteRtLockTensorBuffer(h->input, &at, kLiteRtTensorBufferLockModeWrite);
  if (s != kLiteRtStatusOk) return s;
  std::memcpy(at, input, h->input_bytes);
  LiteRtUnlockTensorBuffer(h->input);
  if ((s = LiteRtRunCompiledModel(h->compiled, 0, 1, &h->input, 1, &h->output)) != kLiteRtStatusOk) return s;
  if (h->kernel_error != kLiteRtStatusOk) return -2;
  if ((s = LiteRtLockTensorBuffer(h->output, &at, kLiteRtTensorBufferLockModeRead)) != kLiteRtStatusOk) return s;
  std::memcpy(output, at, h->output_bytes);
  return LiteRtUnlockTensorBuffer(h->output);
}

EDGELIGHT_EXPORT void edgelight_litert_close(EdgelightLiteRt* h) { delete h; }
