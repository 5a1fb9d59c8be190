// The subset of LiteRT's C API (ai-edge-litert 2.3's libLiteRt.so) that edgelight's custom ops and runner use.
// Declared here from LiteRT's published headers (litert/c/litert_common.h, litert_layout.h, litert_model_types.h,
// litert_environment.h, litert_model.h, litert_options.h, litert_opaque_options.h, litert_custom_op_kernel.h,
// litert_compiled_model.h, litert_tensor_buffer.h; identical in v2.2.0 and the current tree): the wheel ships the
// library but no headers. Every struct below is one the headers mark "part of the public API and ABI stable",
// and the static_asserts repeat theirs.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {

typedef int LiteRtStatus;  // enum: 0 = kLiteRtStatusOk
constexpr LiteRtStatus kLiteRtStatusOk = 0;
constexpr LiteRtStatus kLiteRtStatusErrorInvalidArgument = 1;
constexpr LiteRtStatus kLiteRtStatusErrorUnsupported = 5;

typedef struct LiteRtEnvironmentT* LiteRtEnvironment;
typedef struct LiteRtModelT* LiteRtModel;
typedef struct LiteRtSubgraphT* LiteRtSubgraph;
typedef struct LiteRtTensorT* LiteRtTensor;
typedef struct LiteRtOptionsT* LiteRtOptions;
typedef struct LiteRtOpaqueOptionsT* LiteRtOpaqueOptions;
typedef struct LiteRtCompiledModelT* LiteRtCompiledModel;
typedef struct LiteRtTensorBufferT* LiteRtTensorBuffer;
typedef struct LiteRtEnvOption LiteRtEnvOption;  // only passed as a null array here
typedef size_t LiteRtParamIndex;
typedef int LiteRtHwAcceleratorSet;
constexpr int kLiteRtHwAcceleratorCpu = 1;

typedef int LiteRtElementType;  // enum, the TfLiteType values
constexpr LiteRtElementType kLiteRtElementTypeFloat32 = 1;
constexpr LiteRtElementType kLiteRtElementTypeInt8 = 9;

typedef int LiteRtTensorBufferType;
constexpr LiteRtTensorBufferType kLiteRtTensorBufferTypeHostMemory = 1;
typedef int LiteRtTensorBufferLockMode;
constexpr LiteRtTensorBufferLockMode kLiteRtTensorBufferLockModeRead = 0;
constexpr LiteRtTensorBufferLockMode kLiteRtTensorBufferLockModeWrite = 1;

#define LITERT_TENSOR_MAX_RANK 8
typedef struct {
  unsigned int rank : 7;
  unsigned int has_strides : 1;
  int32_t dimensions[LITERT_TENSOR_MAX_RANK];
  uint32_t strides[LITERT_TENSOR_MAX_RANK];
} LiteRtLayout;
static_assert(sizeof(LiteRtLayout) == 68, "LiteRtLayout size mismatch");

typedef struct {
  LiteRtElementType element_type;
  LiteRtLayout layout;
} LiteRtRankedTensorType;
static_assert(sizeof(LiteRtRankedTensorType) == 72, "LiteRtRankedTensorType size mismatch");

typedef struct {
  LiteRtStatus (*Init)(void* user_data, const void* init_data, size_t init_data_size);
  LiteRtStatus (*GetOutputLayouts)(void* user_data, size_t num_inputs, const LiteRtLayout* input_layouts,
                                   size_t num_outputs, LiteRtLayout* output_layouts);
  LiteRtStatus (*Run)(void* user_data, size_t num_inputs, const LiteRtTensorBuffer* inputs, size_t num_outputs,
                      LiteRtTensorBuffer* outputs);
  LiteRtStatus (*Destroy)(void* user_data);
} LiteRtCustomOpKernel;

LiteRtStatus LiteRtCreateEnvironment(int num_options, const LiteRtEnvOption* options, LiteRtEnvironment* environment);
void LiteRtDestroyEnvironment(LiteRtEnvironment environment);
LiteRtStatus LiteRtCreateModelFromFile(LiteRtEnvironment environment, const char* filename, LiteRtModel* model);
void LiteRtDestroyModel(LiteRtModel model);
LiteRtStatus LiteRtGetModelSubgraph(LiteRtModel model, LiteRtParamIndex subgraph_index, LiteRtSubgraph* subgraph);
LiteRtStatus LiteRtGetNumSubgraphInputs(LiteRtSubgraph subgraph, LiteRtParamIndex* num_inputs);
LiteRtStatus LiteRtGetNumSubgraphOutputs(LiteRtSubgraph subgraph, LiteRtParamIndex* num_outputs);
LiteRtStatus LiteRtGetSubgraphInput(LiteRtSubgraph subgraph, LiteRtParamIndex input_index, LiteRtTensor* input);
LiteRtStatus LiteRtGetSubgraphOutput(LiteRtSubgraph subgraph, LiteRtParamIndex output_index, LiteRtTensor* output);
LiteRtStatus LiteRtGetRankedTensorType(LiteRtTensor tensor, LiteRtRankedTensorType* ranked_tensor_type);

LiteRtStatus LiteRtCreateOptions(LiteRtOptions* options);
void LiteRtDestroyOptions(LiteRtOptions options);
LiteRtStatus LiteRtSetOptionsHardwareAccelerators(LiteRtOptions options, LiteRtHwAcceleratorSet hardware_accelerators);
LiteRtStatus LiteRtAddCustomOpKernelOption(LiteRtOptions options, const char* custom_op_name, int custom_op_version,
                                           const LiteRtCustomOpKernel* custom_op_kernel, void* custom_op_kernel_user_data);
LiteRtStatus LiteRtCreateOpaqueOptions(const char* payload_identifier, void* payload_data,
                                       void (*payload_destructor)(void* payload_data), LiteRtOpaqueOptions* options);
void LiteRtDestroyOpaqueOptions(LiteRtOpaqueOptions options);
LiteRtStatus LiteRtAddOpaqueOptions(LiteRtOptions options, LiteRtOpaqueOptions opaque_options);

LiteRtStatus LiteRtCreateCompiledModel(LiteRtEnvironment environment, LiteRtModel model, LiteRtOptions compilation_options,
                                       LiteRtCompiledModel* compiled_model);
void LiteRtDestroyCompiledModel(LiteRtCompiledModel compiled_model);
LiteRtStatus LiteRtRunCompiledModel(LiteRtCompiledModel compiled_model, LiteRtParamIndex signature_index,
                                    size_t num_input_buffers, LiteRtTensorBuffer* input_buffers,
                                    size_t num_output_buffers, LiteRtTensorBuffer* output_buffers);

LiteRtStatus LiteRtCreateManagedTensorBuffer(LiteRtEnvironment env, LiteRtTensorBufferType buffer_type,
                                             const LiteRtRankedTensorType* tensor_type, size_t buffer_size,
                                             LiteRtTensorBuffer* buffer);
void LiteRtDestroyTensorBuffer(LiteRtTensorBuffer buffer);
LiteRtStatus LiteRtGetTensorBufferTensorType(LiteRtTensorBuffer tensor_buffer, LiteRtRankedTensorType* tensor_type);
LiteRtStatus LiteRtLockTensorBuffer(LiteRtTensorBuffer tensor_buffer, void** host_mem_addr,
                                    LiteRtTensorBufferLockMode lock_mode);
LiteRtStatus LiteRtUnlockTensorBuffer(LiteRtTensorBuffer buffer);

}  // extern "C"
