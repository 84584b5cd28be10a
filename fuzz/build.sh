#!/usr/bin/env bash
# fuzz/build.sh: build the libFuzzer targets with clang (ASan + UBSan,
# float-cast-overflow included) against the whole library, then run each for
# FUZZ_SECONDS seconds (default 30; 0 builds only). Exits non-zero when a
# target fails to build or any run ends in a crash, leak, timeout or
# sanitizer report; the input that did it is left as
# OUT_DIR/crash-*/leak-*/timeout-*/oom-* (fuzz/README.md: make it a regression input).
# Usage: fuzz/build.sh [OUT_DIR] [TARGET...]  (from the project root; `make fuzz`)
set -euo pipefail
out=${1:-build-fuzz}
shift || true
time=${FUZZ_SECONDS:-${FUZZ_TIME:-30}}
cc=${CLANG:-clang}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
all=(tokenizer modelfile wordpiece csv events eventlog npy safetensors manifest hnsw tribes
  cfmodel bert store http)
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi
mkdir -p "$out"
san=(-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer)

# The library, every src/*/*.c as the project's CMake builds it, but static,
# with clang and the fuzzer's coverage instrumentation (fuzzer-no-link): one
# archive every target links (CMake rebuilds only what changed).
cmake -S . -B "$out/lib" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Fuzz \
  -DCMAKE_C_FLAGS="-g -O1 -Wno-pass-failed -fsanitize=fuzzer-no-link ${san[*]}" -DBUILD_SHARED_LIBS=OFF \
  -DBOOKREC_BUILD_TESTS=OFF -DBOOKREC_BUILD_BENCH=OFF >"$out/cmake.log" 2>&1 ||
  { cat "$out/cmake.log"; exit 1; }
echo "fuzz: building the library into $out/lib" >&2
cmake --build "$out/lib" --target bookrec_internal -j "$jobs" >"$out/lib-build.log" 2>&1 ||
  { tail -n 40 "$out/lib-build.log"; exit 1; }
lib="$out/lib/libbookrec_internal.a"
flags=(-g -O1 -std=gnu11 -fsanitize=fuzzer "${san[@]}" -fopenmp -Wall -Wextra -Werror -Wno-unused-parameter
  -Wno-unused-function -Iinclude -Isrc -Ifuzz -DFUZZ_ROOT="\"$PWD\"")
# The targets that train a model seed its embedding cache as the tests do.
testutil=(-Itests tests/testutil.c -DBR_GOLDEN_DIR="\"$PWD/tests/golden\""
  -DBR_TEST_DATA_DIR="\"$PWD/tests/data\"" -DBR_SHARED_DIR="\"$PWD/../shared\""
  -DBR_TEST_TMP_DIR="\"/tmp\"" $(pkg-config --libs cmocka))
pkgs="openblas lapacke libutf8proc jansson cairo fontconfig lmdb hiredis libmicrohttpd"
libs=("$lib" $(pkg-config --libs $pkgs) -lcsv -lm -lpthread)
for t in "${targets[@]}"; do
  if [ ! -x "$out/fuzz_$t" ] || [ -n "$(find "fuzz/fuzz_$t.c" fuzz/*.h "$lib" -newer "$out/fuzz_$t")" ]; then
    echo "fuzz: building $out/fuzz_$t" >&2
    extra=()
    grep -q FUZZ_WANT_MODEL "fuzz/fuzz_$t.c" && extra=("${testutil[@]}")
    "$cc" "${flags[@]}" "fuzz/fuzz_$t.c" "${extra[@]}" "${libs[@]}" -o "$out/fuzz_$t"
  fi
done
[ "$time" -gt 0 ] || exit 0

# OpenMP: one thread (no idle spinning workers on a shared machine). The
# targets that need a trained model (http, manifest) share one, trained by
# the first of them into OUT_DIR/model and kept.
# A model trained by an older library is trained again.
model=$(cd "$out" && pwd)/model
[ "$lib" -nt "$model/versions/v000001/manifest.json" ] && rm -rf "$model" "$model.seed"
export OMP_NUM_THREADS=1 BOOKREC_EMBED_CACHE=none FUZZ_MODEL_DIR="$model"
fail=0
for t in "${targets[@]}"; do
  corpus="$out/corpus-$t"
  mkdir -p "$corpus"
  dict=(); [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
  echo "fuzz: running fuzz_$t for ${time}s" >&2
  rc=0
  "$out/fuzz_$t" -max_total_time="$time" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/" "${dict[@]}" "$corpus" fuzz/seeds/$t \
    $([ -d fuzz/regress/$t ] && echo fuzz/regress/$t) \
    >"$out/log-$t" 2>&1 || rc=$?
  grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)" \
    "$out/log-$t" | sed "s/^/  $t: /" >&2 || true
  if [ "$rc" -ne 0 ]; then
    echo "fuzz: fuzz_$t FAILED (exit $rc); the log is $out/log-$t:" >&2
    grep -A 30 -m1 -E "ERROR|runtime error|deadly signal|ALARM" "$out/log-$t" >&2 || tail -n 40 "$out/log-$t" >&2
    fail=1
  fi
done
exit $fail
