#!/usr/bin/env bash
# fuzz/build.sh: build the libFuzzer targets with clang (ASan + UBSan) and
# run each for FUZZ_TIME seconds (default 60; 0 builds only).
# Usage: fuzz/build.sh [OUT_DIR]     (run from the project root; `make fuzz`)
set -euo pipefail
out=${1:-build-fuzz}
time=${FUZZ_TIME:-60}
cc=${CLANG:-clang}
mkdir -p "$out"
flags=(-g -O1 -std=gnu11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
  -fopenmp -Wno-pass-failed -Iinclude -Isrc -Ifuzz)
libs=($(pkg-config --cflags --libs libutf8proc jansson openblas) -lm)
# The library sources the targets reach (model file, tokenizer, kernels
# and the core it stands on), compiled with the same instrumentation.
src=(src/text/use_model.c src/text/tokenizer.c src/linalg/nn.c src/core/*.c)
for t in tokenizer modelfile; do
  echo "fuzz: building $out/fuzz_$t" >&2
  "$cc" "${flags[@]}" "fuzz/fuzz_$t.c" "${src[@]}" "${libs[@]}" -o "$out/fuzz_$t"
done
[ "$time" -gt 0 ] || exit 0
for t in tokenizer modelfile; do
  corpus="$out/corpus-$t"
  mkdir -p "$corpus"
  [ -d "fuzz/seeds/$t" ] && cp -n fuzz/seeds/$t/* "$corpus"/ 2>/dev/null || true
  echo "fuzz: running fuzz_$t for ${time}s" >&2
  "$out/fuzz_$t" -max_total_time="$time" -max_len=4096 -timeout=10 -rss_limit_mb=4096 \
    -print_final_stats=1 "$corpus" 2>&1 | tail -n 12
done
