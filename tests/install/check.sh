#!/bin/sh
# The installed library, as a user takes it: installs the build at BUILD into a scratch prefix,
# builds this folder's program against it with find_package(mambadna) and with pkg-config, and
# checks that the program's log-likelihoods are those of `mambadna score` on the same records.
#   check.sh BUILD_DIR SCRATCH_DIR CMAKE_COMMAND LIBDIR (the build's CMAKE_INSTALL_LIBDIR)
set -eu
build=$1 scratch=$2 cmake=$3 libdir=$4
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$scratch" && mkdir -p "$scratch"
"$cmake" --install "$build" --prefix "$scratch/prefix" > "$scratch/install.log"
"$cmake" -S "$here" -B "$scratch/build" -DCMAKE_PREFIX_PATH="$scratch/prefix" \
         -DCMAKE_BUILD_TYPE=Release > "$scratch/configure.log"
"$cmake" --build "$scratch/build" > "$scratch/build.log"
# The same program through pkg-config, as a Makefile would build it.
flags=$(PKG_CONFIG_PATH="$scratch/prefix/$libdir/pkgconfig" pkg-config --cflags --libs mambadna)
${CXX:-c++} -std=c++20 -O2 -o "$scratch/score_sequence_pc" "$here/score_sequence.cpp" $flags

# The installed program, two tiny models (one folding lower case, as by default, one keeping it:
# the program must read as the model's tokenizer says), and records of every kind the loop must
# handle: one longer than a chunk, one with N, lower case and IUPAC codes, an empty one, one of
# one base.
mambadna="$scratch/prefix/bin/mambadna"
"$mambadna" init -v 0 -p tiny --seed 7 -o "$scratch/upper.h5"
"$mambadna" init -v 0 -p tiny --seed 7 --case keep -o "$scratch/keep.h5"
{
  printf '>long\n'
  awk 'BEGIN { srand(11); for (i = 0; i < 50; i++) { s = ""; for (j = 0; j < 60; j++) s = s substr("ACGTacgt", int(rand() * 8) + 1, 1); print s } }'
  printf '>mixed\nACGTNNacgtRYACGTTTGA\n>empty\n\n>one\nA\n'
} > "$scratch/seqs.fa"
for model in upper keep; do
  "$scratch/build/score_sequence" "$scratch/$model.h5" "$scratch/seqs.fa" 1000 > "$scratch/library.tsv"
  "$scratch/score_sequence_pc" "$scratch/$model.h5" "$scratch/seqs.fa" 1000 > "$scratch/library_pc.tsv"
  cmp "$scratch/library.tsv" "$scratch/library_pc.tsv"
  "$mambadna" score -v 0 -@ 1 -L 1000 -b 1 -m "$scratch/$model.h5" "$scratch/seqs.fa" |
    awk -F '\t' '!/^#/ { print $2 "\t" $5 "\t" $6 }' > "$scratch/cli.tsv"
  echo "$model:" && cat "$scratch/library.tsv"
  # Names and scored counts exactly; log-likelihoods to 1e-6 nats a scored base: the two runs cut
  # chunks at other places, so each float32 log-probability (~4e-7 nats of rounding at ~5.5)
  # may differ, while one base scored wrongly moves a sum by nats.
  paste "$scratch/library.tsv" "$scratch/cli.tsv" | awk -F '\t' -v model="$model" '
    { n++
      if ($1 != $4 || $2 != $5) { print model ": record " n ": " $1 " " $2 " (library) against " $4 " " $5 " (mambadna score)"; bad = 1 }
      d = $3 - $6; if (d < 0) d = -d
      if (d > 1e-6 * $2 + 1e-5) { print model ": record " n " (" $1 "): loglik " $3 " (library) against " $6 " (mambadna score)"; bad = 1 } }
    END { if (n != 4) { print model ": " n " records, 4 expected"; bad = 1 }; exit bad }'
done
