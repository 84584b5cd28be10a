#!/usr/bin/python3
"""load_pandas.py: the Python peers of bench/bench_load.c.

Loads the same books.csv and ratings.csv N times and times each load the way
bench_load does (wall clock around the call, monotonic, and the process's CPU
time; best and median of N):

  pandas  pandas.read_csv of each file, all columns, default type inference
          (the usual way a Python recommender reads these files)
  csv     the standard library's csv.reader doing bookrec's job in pure
          Python: books keyed by id (later row wins), ratings as three columns
          with user ids mapped to dense indices, book ids looked up in the
          catalogue, ratings parsed as floats

Run with Debian's interpreter (python3-pandas), e.g.

  /usr/bin/python3 bench/peers/load_pandas.py --books B --ratings R \
      [--repeat N] [--csv-repeat N] [--peers pandas,csv] [--json]

Output: a small table, or with --json one JSON object per line, with the same
keys bench_load prints ("run", "summary" and "memory" lines per peer).
"""
import argparse
import csv
import gc
import json
import os
import resource
import statistics
import sys
import time


def pandas_books(path):
    import pandas as pd
    df = pd.read_csv(path)
    return len(df)


def pandas_ratings(path, _books):
    import pandas as pd
    df = pd.read_csv(path)
    return len(df)


def csv_books(path):
    books = {}
    with open(path, newline="", encoding="utf-8") as f:
        rd = csv.reader(f)
        header = next(rd)
        col = {name: i for i, name in enumerate(header)}
        key = col["book_id"]
        for row in rd:
            if len(row) != len(header):
                raise ValueError(f"{path}:{rd.line_num}: {len(row)} fields")
            books[row[key]] = row
    csv_books.last = books
    return len(books)


def csv_ratings(path, books):
    users, user, book, value = {}, [], [], []
    book_index = {bid: i for i, bid in enumerate(books)}
    with open(path, newline="", encoding="utf-8") as f:
        rd = csv.reader(f)
        header = next(rd)
        col = {name: i for i, name in enumerate(header)}
        cu, cb, cr = col["user_id"], col["book_id"], col["rating"]
        for row in rd:
            uid = row[cu]
            u = users.get(uid)
            if u is None:
                u = users[uid] = len(users)
            user.append(u)
            book.append(book_index[row[cb]])
            r = float(row[cr])
            if not 1.0 <= r <= 5.0:
                raise ValueError(f"{path}:{rd.line_num}: rating {r} outside 1..5")
            value.append(r)
    return len(value)


PEERS = {
    "pandas": (pandas_books, pandas_ratings),
    "csv": (csv_books, csv_ratings),
}


def timed(fn, *args):
    c0 = time.process_time()
    t0 = time.perf_counter_ns()
    rows = fn(*args)
    t1 = time.perf_counter_ns()
    c1 = time.process_time()
    return (t1 - t0) * 1e-9, c1 - c0, rows


def bench(peer, paths, repeat, emit):
    load_books, load_ratings = PEERS[peer]
    secs = {"books": [], "ratings": []}
    cpu = {"books": [], "ratings": []}
    rows = {}
    for run in range(1, repeat + 1):
        gc.collect()
        s, c, rows["books"] = timed(load_books, paths["books"])
        secs["books"].append(s)
        cpu["books"].append(c)
        books = getattr(load_books, "last", None)
        s, c, rows["ratings"] = timed(load_ratings, paths["ratings"], books)
        secs["ratings"].append(s)
        cpu["ratings"].append(c)
        if hasattr(load_books, "last"):
            del load_books.last
        del books
        for what in ("books", "ratings"):
            emit({"bench": "load", "impl": peer, "kind": "run", "file": what, "run": run,
                  "seconds": round(secs[what][-1], 6), "cpu_seconds": round(cpu[what][-1], 6),
                  "rows": rows[what]})
    for what in ("books", "ratings"):
        best = min(secs[what])
        size = os.path.getsize(paths[what])
        emit({"bench": "load", "impl": peer, "kind": "summary", "file": what,
              "path": paths[what], "bytes": size, "rows": rows[what], "repeat": repeat,
              "best": round(best, 6), "median": round(statistics.median(secs[what]), 6),
              "cpu_best": round(min(cpu[what]), 6),
              "cpu_median": round(statistics.median(cpu[what]), 6),
              "rows_per_s": round(rows[what] / best), "mb_per_s": round(size / 1e6 / best, 1)})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--books", required=True)
    ap.add_argument("--ratings", required=True)
    ap.add_argument("--repeat", type=int, default=5, help="runs per peer (default 5)")
    ap.add_argument("--csv-repeat", type=int, default=None,
                    help="runs of the csv peer (default: --repeat)")
    ap.add_argument("--peers", default="pandas,csv", help="comma-separated: pandas,csv")
    ap.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    a = ap.parse_args()
    paths = {"books": a.books, "ratings": a.ratings}
    peers = [p for p in a.peers.split(",") if p]
    for p in peers:
        if p not in PEERS:
            ap.error(f"unknown peer '{p}' (pandas, csv)")

    def emit(obj):
        if a.json:
            print(json.dumps(obj), flush=True)
        elif obj["kind"] == "run":
            print(f"{obj['impl']:<7} {obj['file']:<8} run {obj['run']:>2} "
                  f"{obj['seconds']:10.4f} s  cpu {obj['cpu_seconds']:.4f} s", flush=True)
        elif obj["kind"] == "summary":
            print(f"{obj['impl']:<7} {obj['file']:<8} {obj['rows']:>10} rows  best "
                  f"{obj['best']:.4f} s  median {obj['median']:.4f} s  cpu best "
                  f"{obj['cpu_best']:.4f} s  "
                  f"{obj['rows_per_s']:>10} rows/s  {obj['mb_per_s']:>7} MB/s", flush=True)
        else:
            print(f"{obj['impl']:<7} peak resident set size {obj['peak_rss_kb']} kB "
                  f"(cumulative over the process)", flush=True)

    if "pandas" in peers:
        import pandas  # noqa: F401  (the import is not part of any timed load)
    for p in peers:
        n = a.csv_repeat if p == "csv" and a.csv_repeat else a.repeat
        bench(p, paths, n, emit)
        # ru_maxrss is a high-water mark of the whole process: peers that run
        # later report max(theirs, earlier ones). load.sh runs one peer per process.
        emit({"bench": "load", "impl": p, "kind": "memory",
              "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss})
    return 0


if __name__ == "__main__":
    sys.exit(main())
