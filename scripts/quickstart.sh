#!/usr/bin/env bash
# Fresh Debian 12: install dependencies, build, and run the main job on the bundled genome.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then bash scripts/install-deps.sh; else sudo bash scripts/install-deps.sh; fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)" --target mambadna
mkdir -p out
M=build/mambadna
G=data/lambda_phage.fa.gz
T="-@ $(nproc)"
$M stats $T $G
$M init -p small --seed 1 -o out/small.h5
$M score $T -m out/small.h5 $G -o out/lambda_scores.h5 --per-position --bedgraph out/lambda.bedGraph
