// Backend options of the ExecuTorch runtime this library is loaded into, callable from Python (ctypes).
//
// The pip runtime's Python API has no way to set a backend option; executorch::runtime::set_option does,
// on the same registry the pybindings' backends live in (both link the wheel's libexecutorch.so). edgelight
// uses it for XNNPACK's weights cache ("weight_cache_enabled"): with it on, a conv weight that several
// delegate calls use is packed once per process instead of once per use (LruNet's layer reuse).
#include <cstring>

#include <executorch/runtime/backend/interface.h>
#include <executorch/runtime/backend/options.h>

using executorch::runtime::BackendOption;
using executorch::runtime::Error;
using executorch::runtime::Span;

namespace {
int set_one(const char* backend, const char* key, executorch::runtime::OptionValue value) {
  BackendOption option;
  std::strncpy(option.key, key, executorch::runtime::kMaxOptionKeyLength - 1);
  option.value = value;
  return static_cast<int>(executorch::runtime::set_option(backend, Span<BackendOption>(&option, 1)));
}
}  // namespace

extern "C" {
// 0 on success, else the runtime's Error code (e.g. 0x12 NotSupported for an unknown key, 0x20 NotFound).
int edgelight_set_backend_option_bool(const char* backend, const char* key, int value) {
  return set_one(backend, key, static_cast<bool>(value != 0));
}

int edgelight_set_backend_option_int(const char* backend, const char* key, int value) {
  return set_one(backend, key, value);
}

// Reads a bool or int option into *value; returns 0 on success, else the Error code.
int edgelight_get_backend_option(const char* backend, const char* key, int* value) {
  BackendOption option;
  std::strncpy(option.key, key, executorch::runtime::kMaxOptionKeyLength - 1);
  option.value = false;
  Error err = executorch::runtime::get_option(backend, Span<BackendOption>(&option, 1));
  if (err != Error::Ok) return static_cast<int>(err);
  if (auto* b = std::get_if<bool>(&option.value)) *value = *b ? 1 : 0;
  else if (auto* i = std::get_if<int>(&option.value)) *value = *i;
  else return static_cast<int>(Error::InvalidArgument);
  return 0;
}
}
