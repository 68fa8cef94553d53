#!/usr/bin/env bash
# Builds mambadna (Release, CUDA when nvcc is present) and runs the whole test suite with ctest.
# First it builds the CUDA backend against the CPU emulator (tests/cuda_emulator, in build-emu/)
# and runs the CUDA tests there, so that the CUDA kernels and model are tested on machines
# without a GPU too. Both suites always run; the main suite's summary comes last, and the exit
# status is non-zero when either failed.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-emu -DCMAKE_BUILD_TYPE=Release -DMAMBADNA_CUDA_EMULATOR=ON "$@"
cmake --build build-emu -j"$(nproc)" --target mambadna mambadna_tests
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build -j"$(nproc)"

status=0
ctest --test-dir build-emu --output-on-failure -j"$(nproc)" || status=1
ctest --test-dir build --output-on-failure -j"$(nproc)" || status=1
exit "$status"
