#!/usr/bin/env bash
# The CUDA tests on the CPU emulator (tests/cuda_emulator) built with AddressSanitizer and
# UndefinedBehaviorSanitizer: every read or write past a device allocation, use after free and
# undefined arithmetic in the kernels and the CUDA model is reported where it happens (what
# compute-sanitizer's memcheck does on a GPU). Builds into build-memcheck/.
set -euo pipefail
cd "$(dirname "$0")/.."
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S . -B build-memcheck -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAMBADNA_CUDA_EMULATOR=ON \
  -DCMAKE_CXX_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san" "$@"
cmake --build build-memcheck -j"$(nproc)" --target mambadna mambadna_tests
# Fibers switch stacks under the sanitizer: no stack-use-after-return tracking; leaks are not
# the question here.
ASAN_OPTIONS=detect_stack_use_after_return=0:detect_leaks=0:abort_on_error=1 \
  ctest --test-dir build-memcheck --output-on-failure -j"$(nproc)"
