// EdgelightBackend: the ExecuTorch delegate that runs edgelight's ops (edgelight/targets/executorch/delegate.py
// claims them ahead of XNNPACK). Each delegate call is one op; its processed blob is
//   "ELB1" | u32 op | i64 ints[8] | f64 reals[8] | u64 n_tensors | n x (i64 dtype, i64 dim, i64 sizes[4], u64 nbytes,
//   data padded to 16 bytes)
// (little-endian; delegate.py::serialize writes it). The math is the registered kernels' (edgelight_ops.cpp),
// called directly, so the delegate and ops=native cannot disagree. int8 stays int8: the claimed int8 ops take
// and return the int8 tensors the neighbouring XNNPACK partitions produce and consume.
#include <cstring>
#include <new>

#include <executorch/runtime/backend/interface.h>
#include <executorch/runtime/core/exec_aten/exec_aten.h>

#include "edgelight_ops.h"

namespace edgelight {
namespace et {
namespace {

using executorch::aten::ScalarType;
using executorch::aten::TensorImpl;
using executorch::runtime::ArrayRef;
using executorch::runtime::BackendExecutionContext;
using executorch::runtime::BackendInitContext;
using executorch::runtime::CompileSpec;
using executorch::runtime::DelegateHandle;
using executorch::runtime::Error;
using executorch::runtime::EValue;
using executorch::runtime::FreeableBuffer;
using executorch::runtime::Result;
using executorch::runtime::Span;

// must match delegate.py's OP_CODES
enum class Op : uint32_t { kShift = 0, kQuantizedShift = 1, kShuffle = 2, kShiftConv = 3, kQuantizedShiftConv = 4 };
constexpr int kMaxTensors = 3;
constexpr size_t kHeader = 8 + 8 * 8 + 8 * 8 + 8;

// a constant tensor of the blob, copied out of it (the processed buffer is freed after init)
struct Constant {
  executorch::aten::SizesType sizes[4];
  executorch::aten::DimOrderType dim_order[4];
  executorch::aten::StridesType strides[4];
  TensorImpl impl;
  Tensor tensor;
  Constant(ScalarType dtype, int dim, const int64_t* shape, void* data)
      : impl(dtype, dim, fill(dim, shape), data, dim_order, strides), tensor(&impl) {}
  executorch::aten::SizesType* fill(int dim, const int64_t* shape) {
    executorch::aten::StridesType stride = 1;
    for (int i = dim - 1; i >= 0; --i) {
      sizes[i] = static_cast<executorch::aten::SizesType>(shape[i]);
      dim_order[i] = static_cast<executorch::aten::DimOrderType>(i);
      strides[i] = stride;
      stride *= sizes[i];
    }
    return sizes;
  }
};

struct Handle {
  Op op;
  int64_t ints[8];
  double reals[8];
  int n_tensors = 0;
  Constant* tensors[kMaxTensors] = {};
};

template <typename T>
T read(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

bool valid_dtype(int64_t code) {
  return code == int64_t(ScalarType::Float) || code == int64_t(ScalarType::Char) || code == int64_t(ScalarType::Int);
}

class EdgelightBackend final : public executorch::runtime::BackendInterface {
 public:
  bool is_available() const override { return true; }

  Result<DelegateHandle*> init(BackendInitContext& context, FreeableBuffer* processed,
                               ArrayRef<CompileSpec>) const override {
    const auto* blob = static_cast<const uint8_t*>(processed->data());
    const size_t size = processed->size();
    if (size < kHeader || std::memcmp(blob, "ELB1", 4) != 0) {
      ET_LOG(Error, "EdgelightBackend: not an edgelight delegate blob (%zu bytes)", size);
      return Error::InvalidProgram;
    }
    auto* allocator = context.get_runtime_allocator();
    auto* handle = allocator->allocateInstance<Handle>();
    if (handle == nullptr) return Error::MemoryAllocationFailed;
    new (handle) Handle();
    handle->op = static_cast<Op>(read<uint32_t>(blob + 4));
    if (static_cast<uint32_t>(handle->op) > static_cast<uint32_t>(Op::kQuantizedShiftConv)) {
      ET_LOG(Error, "EdgelightBackend: unknown op %u (a newer edgelight wrote this program)", unsigned(handle->op));
      return Error::NotSupported;
    }
    std::memcpy(handle->ints, blob + 8, sizeof(handle->ints));
    std::memcpy(handle->reals, blob + 72, sizeof(handle->reals));
    const uint64_t n = read<uint64_t>(blob + 136);
    if (n > kMaxTensors) return Error::InvalidProgram;
    size_t at = kHeader;
    for (uint64_t i = 0; i < n; ++i) {
      if (at + 56 > size) return Error::InvalidProgram;
      const int64_t dtype = read<int64_t>(blob + at), dim = read<int64_t>(blob + at + 8);
      int64_t shape[4];
      std::memcpy(shape, blob + at + 16, sizeof(shape));
      const uint64_t nbytes = read<uint64_t>(blob + at + 48);
      at += 56;
      if (!valid_dtype(dtype) || dim < 1 || dim > 4 || at + nbytes > size) return Error::InvalidProgram;
      void* data = allocator->allocate(nbytes, 16);
      auto* constant = allocator->allocateInstance<Constant>();
      if (data == nullptr || constant == nullptr) return Error::MemoryAllocationFailed;
      std::memcpy(data, blob + at, nbytes);
      handle->tensors[handle->n_tensors++] = new (constant) Constant(ScalarType(dtype), int(dim), shape, data);
      at += (nbytes + 15) / 16 * 16;
    }
    processed->Free();
    return handle;
  }

  Error execute(BackendExecutionContext& context, DelegateHandle* raw, Span<EValue*> args) const override {
    auto* h = static_cast<Handle*>(raw);
    if (args.size() != 2 || !args[0]->isTensor() || !args[1]->isTensor()) {
      ET_LOG(Error, "EdgelightBackend: expected one input and one output tensor, got %zu values", args.size());
      return Error::InvalidArgument;
    }
    const Tensor& x = args[0]->toTensor();
    Tensor& out = args[1]->toTensor();
    KernelRuntimeContext ctx(context.event_tracer(), context.get_temp_allocator());
    const int64_t* i = h->ints;
    const double* r = h->reals;
    auto bias = [&](int index) -> std::optional<Tensor> {
      return index < h->n_tensors ? std::optional<Tensor>(h->tensors[index]->tensor) : std::nullopt;
    };
    switch (h->op) {
      case Op::kShift:
        shift2d_out(ctx, x, i[0], i[1], out);
        break;
      case Op::kQuantizedShift:
        quantized_shift2d_out(ctx, x, r[0], i[0], r[1], i[1], i[2], i[3], out);
        break;
      case Op::kShuffle:
        channel_shuffle_out(ctx, x, i[0], out);
        break;
      case Op::kShiftConv:  // tensors: weight [, bias]; ints: stride, k, d, relu
        if (h->n_tensors < 1) return Error::InvalidProgram;
        shift_conv1x1_out(ctx, x, h->tensors[0]->tensor, bias(1), i[0], i[1], i[2], i[3] != 0, out);
        break;
      case Op::kQuantizedShiftConv:  // tensors: weight, weight scales [, bias]; ints: in_zp, mid_zp, out_zp, stride, k, d, relu
        if (h->n_tensors < 2) return Error::InvalidProgram;
        quantized_shift_conv1x1_out(ctx, x, r[0], i[0], r[1], i[1], h->tensors[0]->tensor, h->tensors[1]->tensor, bias(2),
                                    r[2], i[2], i[3], i[4], i[5], i[6] != 0, out);
        break;
    }
    return ctx.failure_state();
  }
};

EdgelightBackend backend;
const executorch::runtime::Backend entry{"EdgelightBackend", &backend};
// registered when the library is loaded (dlopen in Python, whole-archive in the apps and edgelight-bench)
const Error registered = executorch::runtime::register_backend(entry);

}  // namespace
}  // namespace et
}  // namespace edgelight
