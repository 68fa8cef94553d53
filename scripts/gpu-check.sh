#!/usr/bin/env bash
# Every check that needs an NVIDIA GPU, in one go, with a report.
#
#   scripts/gpu-check.sh build  [BUILD=build-cuda]
#       Release build with the CUDA backend (sm_80 and sm_90), tests and benchmarks included.
#   scripts/gpu-check.sh baselines OUT_DIR COMMIT...
#       bench_cuda as each COMMIT builds it (a worktree and one build folder under OUT_DIR, so
#       consecutive commits build incrementally), as OUT_DIR/bench_cuda_<NN>_<short hash> in the
#       order given: to time several changes side by side in one GPU call (the report ends with
#       a table of their scan and training figures beside this build's).
#   scripts/gpu-check.sh bundle [BUILD=build-cuda] [OUT=gpu-bundle.tar.xz] [BASELINE...]
#       Packs the built test and benchmark programs, the shared libraries they need beyond the C
#       library and CUDA's own, and the test data, for a GPU machine that lacks the build
#       dependencies (CUDA's libcudart and libcublas must be there). BASELINE: bench_cuda
#       programs built from earlier commits (same libraries, e.g. from `baselines`), which
#       `run` times beside this build's: `bench_cuda scan` and `train` (GPU_CHECK_BASELINE
#       lists others).
#   scripts/gpu-check.sh run    [BUILD_OR_BUNDLE=build-cuda] [REPORT=gpu-report]
#       On the GPU machine: the device, every CUDA test (kernels against the references, the
#       model against the golden values, training against the CPU run), bench_cuda, (where
#       python3 has torch) the PyTorch version of the model (bench/torch_mamba.py) checked
#       against the golden values and timed beside ours at the same training shape, then
#       compute-sanitizer memcheck over the kernel tests; everything goes to REPORT/report.txt
#       as it comes. Exits non-zero when a test fails. GPU_CHECK_TORCH=0 skips PyTorch.
#   scripts/gpu-check.sh profile [BUILD_OR_BUNDLE=build-cuda] [REPORT=gpu-report]
#       After `run` (the same call or a second one): Nsight Compute on the scan kernels (with
#       each SASS instruction's counts and stall samples, summarised), a kernel time summary
#       of a training step (Nsight Systems, else Nsight Compute), compute-sanitizer racecheck
#       and synccheck on the scan tests, where the tools are installed; into
#       REPORT/profile.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
# The CUDA toolkit's tools (compute-sanitizer, ncu, nsys) where they are installed off the PATH.
for d in /usr/local/cuda/bin /usr/local/cuda/compute-sanitizer /opt/nvidia/nsight-compute/* /opt/nvidia/nsight-systems/*/bin; do
  [ -d "$d" ] && PATH="$PATH:$d"
done

# The programs of a build folder or of an unpacked bundle: sets TESTS, BENCH, TORCH, GOLDEN and
# LIBS (the bundle's libraries, for our programs only: python3 keeps its own).
locate() {
  local src=$1
  LIBS=""
  if [ -x "$src/mambadna_tests" ]; then  # an unpacked bundle
    TESTS=$src/mambadna_tests BENCH=$src/bench_cuda TORCH=$src/torch_mamba.py GOLDEN=$src/shared/golden
    LIBS="$src/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
    export MAMBADNA_SHARED_DIR="$src/shared" MAMBADNA_SOURCE_DIR="$src/source" MAMBADNA_BINARY="$src/mambadna"
  else
    TESTS=$src/tests/mambadna_tests BENCH=$src/bench/bench_cuda TORCH=bench/torch_mamba.py
    GOLDEN=${MAMBADNA_SHARED_DIR:-../shared}/golden
  fi
}
ours() { if [ -n "$LIBS" ]; then LD_LIBRARY_PATH="$LIBS" "$@"; else "$@"; fi; }

# The scan and training figures of each build in a report (this build's `== bench_cuda`
# section, then each baseline's), one row per figure, one column per build.
compare_builds() {
  awk -F'\t' '
    /^== bench_cuda$/ { build = "this" }
    /^== bench_cuda_[0-9]+_[0-9a-f]+, same device$/ { build = substr($0, 15); sub(/,.*/, "", build) }
    /^== / && !/^== bench_cuda/ { build = "" }
    build != "" && ($1 == "scan" || $1 == "train") {
      key = $1 " " $2
      if (!(key in seen)) { seen[key] = 1; keys[++nk] = key }
      if (!(build in seenb)) { seenb[build] = 1; builds[++nb] = build }
      split($3, v, " ")
      val[key, build] = v[1]
    }
    END {
      # the baselines in the order given, then this build
      n = 0
      for (b = 1; b <= nb; ++b) if (builds[b] != "this") order[++n] = builds[b]
      if ("this" in seenb) order[++n] = "this"
      printf "%-78s", "figure"
      for (b = 1; b <= n; ++b) printf "\t%s", order[b]
      printf "\n"
      for (k = 1; k <= nk; ++k) {
        printf "%-78s", keys[k]
        for (b = 1; b <= n; ++b) printf "\t%s", ((keys[k], order[b]) in val) ? val[keys[k], order[b]] : "-"
        printf "\n"
      }
    }' "$1"
}

case "$mode" in
  build)
    B=${2:-build-cuda}
    # -lineinfo: Nsight Compute's source view (no change to the generated code)
    cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DMAMBADNA_PORTABLE=ON -DMAMBADNA_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES="80;90" -DCMAKE_CUDA_FLAGS=-lineinfo || exit 1
    cmake --build "$B" -j"$(nproc)" || exit 1
    grep -q "MAMBADNA_HAVE_CUDA" "$B/compile_commands.json" || { echo "no CUDA backend: is nvcc on the PATH?"; exit 1; }
    ;;
  baselines)
    OUT=${2:?usage: scripts/gpu-check.sh baselines OUT_DIR COMMIT...}
    shift 2
    mkdir -p "$OUT" || exit 1
    W=$OUT/worktree
    [ -d "$W" ] || git worktree add --detach "$W" HEAD || exit 1
    n=0
    for c in "$@"; do
      h=$(git rev-parse --short "$c") || exit 1
      n=$((n + 1))
      git -C "$W" checkout -q --detach "$h" || exit 1
      cmake -S "$W" -B "$OUT/build" -DCMAKE_BUILD_TYPE=Release -DMAMBADNA_PORTABLE=ON \
        -DMAMBADNA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="80;90" > /dev/null || exit 1
      cmake --build "$OUT/build" -j"$(nproc)" --target bench_cuda || exit 1
      cp "$OUT/build/bench/bench_cuda" "$OUT/bench_cuda_$(printf %02d $n)_$h" || exit 1  # in the order given
    done
    ls -l "$OUT"/bench_cuda_*
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
    cp scripts/gpu-check.sh scripts/ncu-source-summary.py bench/torch_mamba.py "$T/bundle/"
    if [ $# -gt 3 ]; then
      mkdir -p "$T/bundle/baselines"
      for base in "${@:4}"; do cp "$base" "$T/bundle/baselines/" || exit 1; done
    fi
    tar -C "$T" -cJf "$OUT" bundle
    ls -l "$OUT"
    ;;
  run)
    locate "${2:-build-cuda}"
    R=${3:-gpu-report}
    mkdir -p "$R"
    status=0
    # Most wanted first, each step with a time limit, so that a short run still reports
    # the tests and the figures.
    {
      echo "== device"; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
      echo "== CUDA tests"
      ours timeout 240 "$TESTS" "[cuda]" --durations yes || status=1
      echo "== bench_cuda"
      ours timeout 240 "$BENCH" all 0 bf16 || status=1
      for base in "$(dirname "$BENCH")"/baselines/*; do  # the same figures, earlier builds
        [ -x "$base" ] || continue
        echo "== $(basename "$base"), same device"
        for what in ${GPU_CHECK_BASELINE:-scan train}; do
          ours timeout 120 "$base" "$what" 0 bf16 || status=1
        done
      done
      echo "== side by side (the scan in ms, training in tokens/s)"
      compare_builds "$R/report.txt"
      echo "== PyTorch reference (mamba_ssm's model with its reference scan), same GPU"
      if [ "${GPU_CHECK_TORCH:-1}" = 0 ]; then
        echo "skipped (GPU_CHECK_TORCH=0)"
      elif python3 -c "import torch, h5py" 2> /dev/null; then
        timeout 60 python3 "$TORCH" golden "$GOLDEN" || status=1
        ours timeout 90 "$BENCH" train 0 bf16 8 512 || status=1
        timeout 120 python3 "$TORCH" train-bench --shape 130m -b 8 -L 512 --steps 2 --device cuda || status=1
        timeout 120 python3 "$TORCH" train-bench --shape 130m -b 8 -L 512 --steps 2 --device cuda --bf16 || status=1
      else
        echo "python3 with torch and h5py not found"
      fi
      echo "== compute-sanitizer memcheck, kernel tests"
      if command -v compute-sanitizer > /dev/null; then
        # (no --leak-check: cuBLAS handles live as long as the process, by design)
        ours timeout 240 compute-sanitizer --tool memcheck --error-exitcode 3 \
          "$TESTS" "[kernels][cuda]" || status=1
      else
        echo "compute-sanitizer not found"
      fi
      echo "== status $status"
    } 2>&1 | tee "$R/report.txt"
    exit "$(grep -o '== status [0-9]' "$R/report.txt" | tail -1 | cut -d' ' -f3)"
    ;;
  profile)
    # After `run`: where the time goes. Nsight Compute on the scan's forward and backward at
    # the benchmark shape (the 70% question), a kernel time summary of a training step of the
    # 130M shape, then compute-sanitizer's racecheck and synccheck on the scan tests
    # (shared-memory races, divergent barriers).
    locate "${2:-build-cuda}"
    R=${3:-gpu-report}
    mkdir -p "$R"
    {
      echo "== Nsight Compute: the scan's forward and backward at B 8, L 4096, E 1536, N 16 (fp32)"
      if command -v ncu > /dev/null; then
        # Issue rate, occupancy, stall reasons and instruction counts: the scan is bound by the
        # instructions it issues (docs/BENCHMARKS.md), so these say where to cut.
        # Then each SASS instruction's executed count and stall samples, in REPORT/<kernel>.csv,
        # summarised by ncu-source-summary.py (the per-chunk code against the state loop).
        # (scan_forward_kernel: the time-parallel forward; scan_forward_serial: the
        # channel-serial one, timed beside it by bench_cuda scan.)
        for k in scan_forward_kernel scan_forward_serial scan_backward; do
          ours timeout 120 ncu --clock-control none --section SpeedOfLight --section Occupancy \
            --section WarpStateStats --section SchedulerStats --section InstructionStats \
            --section MemoryWorkloadAnalysis --section SourceCounters \
            -k "regex:$k" -c 1 -f -o "$R/$k" "$BENCH" scan > /dev/null || echo "(exit $?)"
          timeout 60 ncu --import "$R/$k.ncu-rep" --page details || echo "(exit $?)"
          timeout 60 ncu --import "$R/$k.ncu-rep" --page source --csv --print-source sass \
            > "$R/$k.csv" && python3 "$(dirname "$0")/ncu-source-summary.py" "$R/$k.csv" 25
        done
      else
        echo "ncu not found"
      fi
      echo "== kernel time summary of a 130M bf16 training step (B 8, L 4096)"
      if command -v nsys > /dev/null; then
        ours timeout 240 nsys profile -o "$R/train" --force-overwrite true --stats=true \
          "$BENCH" step 0 bf16 8 4096 || echo "(exit $?)"
      elif command -v ncu > /dev/null; then  # the warm-up step's kernels (~700)
        ours timeout 240 ncu --clock-control none --metrics gpu__time_duration.sum -c 800 \
          --print-summary per-kernel "$BENCH" step 0 bf16 8 4096 || echo "(exit $?)"
      else
        echo "neither nsys nor ncu found"
      fi
      for tool in racecheck synccheck; do
        echo "== compute-sanitizer $tool, scan tests"
        if command -v compute-sanitizer > /dev/null; then
          ours timeout 150 compute-sanitizer --tool "$tool" --error-exitcode 3 \
            "$TESTS" "selective_scan cuda in chunks equals one call" || echo "(exit $?)"
        else
          echo "compute-sanitizer not found"
        fi
      done
    } 2>&1 | tee "$R/profile.txt"
    ;;
  *)
    sed -n "2,/^[^#]/{/^#/p}" "$0"
    exit 2
    ;;
esac
