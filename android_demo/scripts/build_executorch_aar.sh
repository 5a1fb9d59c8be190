#!/usr/bin/env bash
# Rebuild ExecuTorch's Android library (AAR) with the edgelight native kernels linked in.
#
# Why: the Maven AAR (org.pytorch:executorch-android) holds only ExecuTorch's own kernels, and an app cannot
# dlopen an extra kernel library into it. ExecuTorch's extension/android/CMakeLists.txt links whatever
# EXECUTORCH_JNI_CUSTOM_LIBRARY names into libexecutorch.so with --whole-archive, so the kernels' static
# registrations run when the app loads the runtime. This script mirrors ExecuTorch's
# scripts/build_android_library.sh, adding that one variable.
#
# Needs (not available on the edgelight CI machine; see android_demo/README.md):
#   EXECUTORCH_SRC  a checkout of pytorch/executorch at tag v1.5.1 with submodules, in a folder named "executorch"
#                   (its headers are included as <executorch/...>, so the kernels build includes its parent folder)
#   ANDROID_NDK     NDK r27b or newer;  ANDROID_HOME  the Android SDK;  cmake >= 3.28, ninja, python3 on PATH
#   ANDROID_ABIS    optional, default "arm64-v8a" (space-separated, e.g. "arm64-v8a x86_64")
# Output: android_demo/app/libs/executorch-edgelight.aar. Then build the app with
#   ./gradlew :app:assembleRelease -Pedgelight.customExecutorchAar=true
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
kernels="$repo/edgelight/ops/kernels"
: "${EXECUTORCH_SRC:?set EXECUTORCH_SRC to an executorch v1.5.1 checkout}"
: "${ANDROID_NDK:?set ANDROID_NDK to the NDK root}"
: "${ANDROID_HOME:?set ANDROID_HOME to the Android SDK}"
abis="${ANDROID_ABIS:-arm64-v8a}"
et="$(cd "$EXECUTORCH_SRC" && pwd)"
[ "$(basename "$et")" = "executorch" ] || { echo "error: the checkout folder must be named 'executorch' (got $et)" >&2; exit 2; }
[ -f "$kernels/CMakeLists.txt" ] || { echo "error: $kernels/CMakeLists.txt not found" >&2; exit 2; }
jobs="$(( $(nproc 2>/dev/null || sysctl -n hw.ncpu) ))"

for abi in $abis; do
  # 1. The edgelight kernels as a static library, compiled against this ExecuTorch's headers.
  kbuild="$repo/android_demo/build/kernels-$abi"
  cmake -S "$kernels" -B "$kbuild" -G Ninja \
    -DCMAKE_TOOLCHAIN_FILE="$ANDROID_NDK/build/cmake/android.toolchain.cmake" \
    -DANDROID_ABI="$abi" -DANDROID_PLATFORM=android-26 -DCMAKE_BUILD_TYPE=Release \
    -DEDGELIGHT_KERNELS_STATIC=ON -DEDGELIGHT_EXECUTORCH_INCLUDE_DIR="$(dirname "$et")"
  cmake --build "$kbuild" -j "$jobs"
  kernels_lib="$kbuild/libedgelight_kernels.a"
  [ -f "$kernels_lib" ] || { echo "error: $kernels_lib was not built" >&2; exit 1; }

  # 2. ExecuTorch's Android runtime with the kernels whole-archive linked into libexecutorch.so.
  out="cmake-out-android-$abi"
  (cd "$et" && cmake . -DCMAKE_INSTALL_PREFIX="$out" \
    -DCMAKE_TOOLCHAIN_FILE="$ANDROID_NDK/build/cmake/android.toolchain.cmake" \
    --preset "android-$abi" -DANDROID_PLATFORM=android-26 \
    -DEXECUTORCH_BUILD_EXTENSION_LLM=OFF -DEXECUTORCH_BUILD_EXTENSION_LLM_RUNNER=OFF \
    -DEXECUTORCH_BUILD_LLAMA_JNI=OFF -DEXECUTORCH_BUILD_WHISPER_JNI=OFF -DEXECUTORCH_BUILD_EXTENSION_TRAINING=OFF \
    -DEXECUTORCH_JNI_CUSTOM_LIBRARY="$kernels_lib" \
    -DCMAKE_BUILD_TYPE=Release -B"$out" \
    && cmake --build "$out" -j "$jobs" --target install --config Release \
    && mkdir -p "cmake-out-android-so/$abi" \
    && cp "$out"/extension/android/*.so "cmake-out-android-so/$abi/libexecutorch.so")
done

# 3. Package the AAR the way ExecuTorch's script does (its Gradle project picks up cmake-out-android-so/).
(cd "$et/extension/android" && ./gradlew :executorch_android:assembleRelease)
mkdir -p "$repo/android_demo/app/libs"
cp "$et/extension/android/executorch_android/build/outputs/aar/executorch_android-release.aar" \
   "$repo/android_demo/app/libs/executorch-edgelight.aar"
echo "wrote android_demo/app/libs/executorch-edgelight.aar; build the app with -Pedgelight.customExecutorchAar=true"
