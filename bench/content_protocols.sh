#!/usr/bin/env bash
# bench/content_protocols.sh: issue 18's baselines, docs/benchmarks.md
# "Content and protocols (issue 18)". For each seed (42, 7, 2026) and each
# protocol (random, cold-books, readers), `bookrec eval --protocol P --seed
# S --json --write-split DIR` on ../shared/data/goodbooks (every engine,
# timed), then the TF-IDF reader-profile peer (bench/content_peer.py,
# scikit-learn) on exactly that split, and one table: the peer's NDCG@10,
# R@20, R@50, NDCG@100, bookrec's per engine, and engine / peer. The load
# average is printed with each timing. Outputs in bench/out/protocols/.
# Usage: bench/content_protocols.sh [BUILD_DIR]
#   SEEDS="42 7 2026", PROTOCOLS="random cold-books readers", ENGINES=all
set -eu
build=$(cd "${1:-build}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
data=${GOODBOOKS:-$root/../shared/data/goodbooks}
out=$root/bench/out/protocols
mkdir -p "$out"
. "$(dirname "${BASH_SOURCE[0]}")/blas.env"
bookrec=$build/bookrec
B=(--books "$data/books.csv" --ratings "$data/ratings.csv")
echo "== warm the embedding cache"
"$bookrec" --quiet eval "${B[@]}" --engines content,content-favourite --k 10 >/dev/null
for seed in ${SEEDS:-42 7 2026}; do
  for p in ${PROTOCOLS:-random cold-books readers}; do
    dir=$out/split-$p-$seed
    mkdir -p "$dir"
    echo "== $p, seed $seed (load before: $(cut -d' ' -f1-3 /proc/loadavg))"
    /usr/bin/time -f "wall %e s, user %U s, sys %S s, max RSS %M KB" -o "$out/time-$p-$seed.txt" \
      "$bookrec" --quiet eval "${B[@]}" --engines "${ENGINES:-all}" --protocol "$p" \
      --seed "$seed" --json --write-split "$dir" >"$out/bookrec-$p-$seed.json" 2>"$out/bookrec-$p-$seed.err"
    echo "   bookrec: $(cat "$out/time-$p-$seed.txt") (load after: $(cut -d' ' -f1-3 /proc/loadavg))"
    /usr/bin/python3 "$root/bench/content_peer.py" --books "$data/books.csv" --split "$dir" \
      --json "$out/peer-$p-$seed.json" >/dev/null
  done
done
/usr/bin/python3 - "$out" ${SEEDS:-42 7 2026} -- ${PROTOCOLS:-random cold-books readers} <<'PY'
import json, sys
out = sys.argv[1]
rest = sys.argv[2:]
cut = rest.index("--")
seeds, protos = rest[:cut], rest[cut + 1:]
keys = ["ndcg@10", "recall@20", "recall@50", "ndcg@100"]
for p in protos:
    for s in seeds:
        b = json.load(open(f"{out}/bookrec-{p}-{s}.json"))
        peer = json.load(open(f"{out}/peer-{p}-{s}.json"))
        pr = b["protocol"]
        print(f"\n{p}, seed {s}: {pr['readers_ranked']} readers ranked, "
              f"{pr['train_ratings']} training / {pr['test_ratings']} held-out ratings"
              + (f", {pr['cold_books']} cold books" if p == "cold-books" else "")
              + (f", {pr['readers_out_of_training']} readers out of training" if p == "readers" else ""))
        print(f"  {'':22}" + "".join(f"{k:>10}" for k in keys) + "   NDCG@10 / peer")
        print(f"  {'tfidf-profile (peer)':22}" + "".join(f"{peer[k]:10.4f}" for k in keys))
        for name, e in b["engines"].items():
            ratio = e["ndcg@10"] / peer["ndcg@10"] if peer["ndcg@10"] > 0 else float("nan")
            print(f"  {name:22}" + "".join(f"{e[k]:10.4f}" for k in keys) + f"   {ratio:6.2f}")
PY
