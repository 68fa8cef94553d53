#!/usr/bin/env bash
# Every check that needs an NVIDIA GPU, in one go, with a report.
#
#   scripts/gpu-check.sh build  [BUILD=build-cuda]
#       Release build with the CUDA backend (sm_80 and sm_90), tests and benchmarks included.
#   scripts/gpu-check.sh bundle [BUILD=build-cuda] [OUT=gpu-bundle.tar.xz]
#       Packs the built test and benchmark programs, the shared libraries they need beyond the C
#       library and CUDA's own, and the test data, for a GPU machine that lacks the build
#       dependencies (CUDA's libcudart and libcublas must be there).
#   scripts/gpu-check.sh run    [BUILD_OR_BUNDLE=build-cuda] [REPORT=gpu-report]
#       On the GPU machine: the device, every CUDA test (kernels against the references, the
#       model against the golden values, training against the CPU run), compute-sanitizer
#       memcheck over the kernel tests, bench_cuda, and (where python3 has torch) the PyTorch
#       version of the model (bench/torch_mamba.py) checked against the golden values and timed
#       beside ours at the same training shape; everything goes to REPORT/report.txt.
#       Exits non-zero when a test fails.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
case "$mode" in
  build)
    B=${2:-build-cuda}
    cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DMAMBADNA_PORTABLE=ON -DMAMBADNA_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES="80;90" || exit 1
    cmake --build "$B" -j"$(nproc)" || exit 1
    grep -q "MAMBADNA_HAVE_CUDA" "$B/compile_commands.json" || { echo "no CUDA backend: is nvcc on the PATH?"; exit 1; }
    ;;
  bundle)
    B=${2:-build-cuda}
    OUT=${3:-gpu-bundle.tar.xz}
    T=$(mktemp -d)
    trap 'rm -rf "$T"' EXIT
    mkdir -p "$T/bundle/lib" "$T/bundle/shared" "$T/bundle/source/data"
    cp "$B/tests/mambadna_tests" "$B/bench/bench_cuda" "$B/mambadna" "$T/bundle/"
    for bin in "$T"/bundle/mambadna_tests "$T"/bundle/bench_cuda "$T"/bundle/mambadna; do
      ldd "$bin" | awk '$3 ~ /^\// {print $3}'
    done | sort -u | grep -v -E '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*|libcudart|libcublas|libcublasLt)\.so' \
      | while read -r lib; do cp -L "$lib" "$T/bundle/lib/"; done
    cp -r ../shared/golden "$T/bundle/shared/"
    cp data/* "$T/bundle/source/data/"
    cp scripts/gpu-check.sh bench/torch_mamba.py "$T/bundle/"
    tar -C "$T" -cJf "$OUT" bundle
    ls -l "$OUT"
    ;;
  run)
    SRC=${2:-build-cuda}
    R=${3:-gpu-report}
    mkdir -p "$R"
    LIBS=""  # the bundle's libraries, for our programs only (python3 keeps its own)
    if [ -x "$SRC/mambadna_tests" ]; then  # an unpacked bundle
      TESTS=$SRC/mambadna_tests BENCH=$SRC/bench_cuda TORCH=$SRC/torch_mamba.py GOLDEN=$SRC/shared/golden
      LIBS="$SRC/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
      export MAMBADNA_SHARED_DIR="$SRC/shared" MAMBADNA_SOURCE_DIR="$SRC/source" MAMBADNA_BINARY="$SRC/mambadna"
    else
      TESTS=$SRC/tests/mambadna_tests BENCH=$SRC/bench/bench_cuda TORCH=bench/torch_mamba.py
      GOLDEN=${MAMBADNA_SHARED_DIR:-../shared}/golden
    fi
    ours() { if [ -n "$LIBS" ]; then LD_LIBRARY_PATH="$LIBS" "$@"; else "$@"; fi; }
    status=0
    {
      echo "== device"; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
      echo "== CUDA tests"
      ours "$TESTS" "[cuda]" --durations yes || status=1
      echo "== compute-sanitizer memcheck, kernel tests"
      if command -v compute-sanitizer > /dev/null; then
        ours compute-sanitizer --tool memcheck --leak-check full --error-exitcode 3 \
          "$TESTS" "[kernels][cuda]" || status=1
      else
        echo "compute-sanitizer not found"
      fi
      echo "== bench_cuda"
      ours "$BENCH" all 0 bf16 || status=1
      echo "== PyTorch reference (mamba_ssm's model with its reference scan), same GPU"
      if python3 -c "import torch, h5py" 2> /dev/null; then
        python3 "$TORCH" golden "$GOLDEN" || status=1
        ours "$BENCH" train 0 fp32 8 512 || status=1
        python3 "$TORCH" train-bench --shape 130m -b 8 -L 512 --steps 2 --device cuda || status=1
      else
        echo "python3 with torch and h5py not found"
      fi
      echo "== status $status"
    } 2>&1 | tee "$R/report.txt"
    exit "$(grep -o '== status [0-9]' "$R/report.txt" | tail -1 | cut -d' ' -f3)"
    ;;
  *)
    sed -n 2,16p "$0"
    exit 2
    ;;
esac
