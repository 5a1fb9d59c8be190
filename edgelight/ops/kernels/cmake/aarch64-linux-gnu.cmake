# Cross build for aarch64 Linux with Debian's cross compiler (apt-get install g++-aarch64-linux-gnu), against the
# aarch64 executorch wheel given as CMAKE_PREFIX_PATH (edgelight device setup arm64 unpacks it). The binaries run
# on an ARM64 Linux machine or under qemu-user (edgelight.arm64).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# the wheel lives outside any sysroot: look for packages on the host paths given, programs on the host
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
