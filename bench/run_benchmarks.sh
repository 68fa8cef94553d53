#!/usr/bin/env bash
# Runs every CPU benchmark of docs/BENCHMARKS.md in one go and prints the figures.
#   bash bench/run_benchmarks.sh [SHARED_DATA_DIR] [BUILD_DIR]
# Needs a Release build with -DMAMBADNA_BENCH=ON and samtools/tabix. Takes about 20 minutes on
# two cores; run it on an otherwise idle machine.
set -euo pipefail
DATA=${1:-../shared/data}
BUILD=${2:-build}
M=$BUILD/mambadna
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
CHR20=$DATA/genomes/human_grch37_chr20.fa.gz
ECOLI=$DATA/genomes/ecoli_k12_mg1655.fa.gz
rss() { grep -o 'Real time: [0-9.]* sec.*Peak RSS: [0-9.]* GB' "$1"; }

echo "== machine"; lscpu | grep -E 'Model name|^CPU\(s\)'; date -u

echo "== io: bench_io"; $BUILD/bench/bench_io "$CHR20"
echo "== io: bench_h5 (tables written row by row)"; $BUILD/bench/bench_h5 100000 1000000 -d "$T"
echo "== kernels: bench_kernels"; $BUILD/bench/bench_kernels
echo "== score throughput: bench_score (65,536 bases of chr20 from 10 Mbp on)"
samtools faidx "$CHR20" 20:10000001-10065537 > "$T/chr20_64k.fa"
$BUILD/bench/bench_score "$T/chr20_64k.fa" 65536 2 4096

echo "== models"
$M init -p tiny -o "$T/tiny.h5" -v0
$M init -p small -o "$T/small.h5" -v0
$M init -p 130m -o "$T/130m.h5" -v0

echo "== score peak RSS against length"
$M score -@2 -m "$T/tiny.h5" "$CHR20" -r 20:10000001-11000000 > /dev/null 2> "$T/l1"; echo "tiny, 1 Mbp:   $(rss "$T/l1")"
$M score -@2 -m "$T/tiny.h5" "$CHR20" > /dev/null 2> "$T/l63"; echo "tiny, 63 Mbp:  $(rss "$T/l63")"
$M score -@2 -m "$T/small.h5" "$CHR20" -r 20:10000001-11000000 > /dev/null 2> "$T/s1"; echo "small, 1 Mbp:  $(rss "$T/s1")"
$M score -@2 -m "$T/small.h5" "$ECOLI" > /dev/null 2> "$T/s4"; echo "small, 4.6 Mbp: $(rss "$T/s4")"

echo "== embed against score, same region"
for shape in small 130m; do
  if [ $shape = small ]; then R=20:10000001-10500000; else R=20:10000001-10032768; fi
  $M score -@2 -m "$T/$shape.h5" "$CHR20" -r $R > /dev/null 2> "$T/a"; echo "$shape score            $R: $(rss "$T/a")"
  $M embed -@2 -m "$T/$shape.h5" "$CHR20" -r $R -o "$T/e.h5" --pool mean 2> "$T/b"; echo "$shape embed mean       $R: $(rss "$T/b")"
  $M embed -@2 -m "$T/$shape.h5" "$CHR20" -r $R -o "$T/e.h5" --pool none --dtype f16 2> "$T/c"; echo "$shape embed none f16   $R: $(rss "$T/c")"
done
echo "== embed per-position peak RSS against length (tiny)"
$M embed -@2 -m "$T/tiny.h5" "$CHR20" -r 20:10000001-11000000 -o "$T/e1.h5" --pool none --dtype f16 2> "$T/e1"; echo "tiny embed none f16, 1 Mbp:  $(rss "$T/e1")"
$M embed -@2 -m "$T/tiny.h5" "$CHR20" -r 20:10000001-20000000 -o "$T/e10.h5" --pool none --dtype f16 2> "$T/e10"; echo "tiny embed none f16, 10 Mbp: $(rss "$T/e10")"

echo "== training throughput (small, B 8 x L 2048, 5 steps)"
$M train -@2 -m "$T/small.h5" -o "$T/run" "$ECOLI" -b 8 -L 2048 --steps 5 --valid-tokens 16384 --holdout 0.1 2> "$T/t"
grep -E 'step [345]/' "$T/t"; echo "train: $(rss "$T/t")"

echo "== markov baseline (E. coli, last 10% held out)"
$BUILD/bench/markov_baseline "$ECOLI" 0.1 12 | tail -1
