#!/usr/bin/env bash
# dislike.sh: negative feedback through `bookrec recommend --explain` on the
# committed seed universe with many low ratings (every third reader rated
# every book 1 or 2, the others one rating in four 1), with the reference
# USE-lite embeddings: no reason given for any reader's books, by any
# engine that names books, names a book that reader rated 1 or 2
# (docs/evaluation.md, "Negative feedback").
# Usage: dislike.sh BOOKREC TEST_DATA_DIR SHARED_DIR
set -u
bookrec=$1
root=$(cd "$(dirname "$0")/.." && pwd)
seed=$root/golden/seed-universe
py=/usr/bin/python3
[ -x "$py" ] && "$py" -c "import numpy" 2>/dev/null || { echo "SKIP: no numpy"; exit 77; }
. "$(dirname "$0")/lib.sh"

seed_embeddings "$tmp/emb.npy"
"$py" - "$seed/ratings.csv" "$tmp/ratings.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
users = {}
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["user_id", "book_id", "rating"])
    for i, r in enumerate(rows):
        u = users.setdefault(r["user_id"], len(users))
        v = (1 + i % 2) if u % 3 == 0 else (1 if i % 4 == 0 else int(float(r["rating"])))
        w.writerow([r["user_id"], r["book_id"], v])
PY
B=(--books "$seed/books.csv" --ratings "$tmp/ratings.csv" --embeddings "$tmp/emb.npy")
for engine in hybrid content content-favourite ease als rrf; do
  expect 0 "$engine --explain" -- "$bookrec" --quiet recommend "${B[@]}" --engine "$engine" \
    --n 3 --explain --json
  check "$engine: no reason names a book rated 1 or 2" "$py" - "$tmp/out" "$seed/books.csv" \
    "$tmp/ratings.csv" <<'PY'
import csv, json, sys
title = {b["book_id"]: b["title"] for b in csv.DictReader(open(sys.argv[2]))}
low, kept = {}, {}
for r in csv.DictReader(open(sys.argv[3])):
    (low if float(r["rating"]) <= 2 else kept).setdefault(r["user_id"], set()).add(title[r["book_id"]])
bad = reasons = 0
for line in open(sys.argv[1]):
    rec = json.loads(line)
    u = rec["user"]
    for item in rec["items"]:
        for part in item.get("why", []):
            reasons += 1
            for t in low.get(u, set()) - kept.get(u, set()):
                if "*%s*" % t in part["reason"]:
                    print("reader %s: %s" % (u, part["reason"]))
                    bad += 1
sys.exit(0 if reasons and not bad else 1)
PY
done
finish dislike
