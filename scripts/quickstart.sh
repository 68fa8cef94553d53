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
# a small model (D 256, 8 layers), trained for 60 steps on 90% of the genome, validated on the rest
$M init -p small --seed 1 -o out/small.h5
rm -rf out/run
$M train $T -m out/small.h5 -o out/run $G --holdout 0.1 -b 8 -L 1024 --steps 60 --warmup 10 --valid-every 30 --rc-augment
# per-record log-likelihood (TSV), per-base log-probs (HDF5) and a bedGraph track
$M score $T -m out/run/model.h5 $G -o out/lambda_scores.h5 --per-position --bedgraph out/lambda.bedGraph
# mean-pooled and 1 kb-binned embeddings of the genome
$M embed $T -m out/run/model.h5 $G -o out/lambda_mean.h5 --pool mean
$M embed $T -m out/run/model.h5 $G -o out/lambda_bins.h5 --pool bin:1000 --dtype f16
# zero-shot variant effect scores for the bundled variants: an indexed copy of the genome, then
# each ALT's log-likelihood ratio as INFO fields (VCF) and a table (HDF5)
zcat $G | bgzip -c > out/lambda.fa.gz
samtools faidx out/lambda.fa.gz
$M vep $T -m out/run/model.h5 -f out/lambda.fa.gz -i data/lambda_variants.vcf --window 2048 \
  -o out/lambda_variants.scored.vcf.gz --h5 out/lambda_variants.h5
