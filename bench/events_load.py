#!/usr/bin/env python3
"""events_load.py: read latency of `bookrec serve` with and without event
POSTs (issue 19: reads must not wait behind the event log's fdatasync).

Starts `bookrec serve` on a copy of a trained model directory (its LMDB
store and event log are the copy's, so the original is not written), then
for each phase runs, in separate processes (no shared GIL):
  - one reader: GET /api/recommendations/user/{id} in a closed loop over
    one keep-alive connection, ids cycling over the readers of the ratings;
  - event posters (none in the first phase): POST /api/events, one event
    each, either paced to --rate events/s in total, or as fast as they go
    (saturation), over --posters keep-alive connections.
Prints per phase the reads' count, p50, p99 and max (ms) and the events
acknowledged per second with their p50/p99 (ms).

    bench/events_load.py --bookrec build/bookrec --model-dir DIR \
        --ratings ../shared/data/seed-universe/ratings.csv [--seconds 10]
        [--rate 200] [--posters 4] [--threads N]

DIR: a model directory trained with its default LMDB store (e.g. `bookrec
train --books ... --ratings ... --model-dir DIR`). python3 stdlib only.
"""
import argparse
import csv
import http.client
import json
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]


def timed(con, method, path, body=None):
    """One request: (milliseconds, 1 if it failed else 0)."""
    t = time.perf_counter()
    con.request(method, path, body, {"Content-Type": "application/json"} if body else {})
    r = con.getresponse()
    r.read()
    return (time.perf_counter() - t) * 1e3, int(r.status != 200)


def reader(port, ids, stop_at, out):
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    lat, errors, i = [], 0, 0
    while time.monotonic() < stop_at:
        ms, bad = timed(con, "GET", "/api/recommendations/user/%s?n=10" % ids[i % len(ids)])
        i += 1
        lat.append(ms)
        errors += bad
    out.put(("read", lat, errors))


def poster(port, ids, books, stop_at, interval, out, k):
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    lat, errors, i = [], 0, k
    nxt = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= stop_at:
            break
        if interval:
            if now < nxt:
                time.sleep(nxt - now)
            nxt += interval
        body = json.dumps({"user_id": "load-%s" % ids[i % len(ids)],
                           "book_id": books[(i * 7) % len(books)], "type": "click"})
        i += 1
        ms, bad = timed(con, "POST", "/api/events", body)
        lat.append(ms)
        errors += bad
    out.put(("event", lat, errors))


def phase(name, port, ids, books, seconds, rate, posters):
    out = mp.Queue()
    stop_at = time.monotonic() + seconds
    procs = [mp.Process(target=reader, args=(port, ids, stop_at, out))]
    if rate != 0:
        interval = posters / rate if rate > 0 else 0
        for k in range(posters):
            procs.append(mp.Process(target=poster,
                                    args=(port, ids, books, stop_at, interval, out, k)))
    for p in procs:
        p.start()
    res = [out.get() for _ in procs]
    for p in procs:
        p.join()
    reads = [x for kind, lat, _ in res if kind == "read" for x in lat]
    evs = [x for kind, lat, _ in res if kind == "event" for x in lat]
    rerr = sum(e for kind, _, e in res if kind == "read")
    eerr = sum(e for kind, _, e in res if kind == "event")
    line = "%-22s reads %6d  p50 %6.2f  p99 %6.2f  max %7.2f ms  errors %d" % (
        name, len(reads), pct(reads, 50), pct(reads, 99), max(reads or [0]), rerr)
    if evs:
        line += "  | events %6.0f/s  p50 %6.2f  p99 %6.2f ms  errors %d" % (
            len(evs) / seconds, pct(evs, 50), pct(evs, 99), eerr)
    print(line, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bookrec", required=True)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--ratings", required=True, help="the ratings CSV the model was trained on")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rate", type=float, default=200, help="events/s of the paced phase")
    ap.add_argument("--posters", type=int, default=4, help="event connections")
    ap.add_argument("--threads", type=int, default=0, help="serve --threads (0: its default)")
    a = ap.parse_args()

    with open(a.ratings, newline="") as f:
        rows = list(csv.DictReader(f))
    ids = list(dict.fromkeys(r["user_id"] for r in rows))
    books = list(dict.fromkeys(r["book_id"] for r in rows))

    work = tempfile.mkdtemp(prefix="events_load.")
    model = os.path.join(work, "model")
    shutil.copytree(a.model_dir, model, symlinks=True)
    port = free_port()
    cmd = [a.bookrec, "--quiet", "serve", "--model-dir", model, "--port", str(port)]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    srv = subprocess.Popen(cmd)
    try:
        for _ in range(200):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            sys.exit("events_load.py: the server did not become ready")
        print("%s, %d readers, %d books, %g s per phase" % (a.bookrec, len(ids), len(books),
                                                           a.seconds), flush=True)
        phase("reads only", port, ids, books, a.seconds, 0, a.posters)
        phase("+ %g events/s" % a.rate, port, ids, books, a.seconds, a.rate, a.posters)
        phase("+ events, saturation", port, ids, books, a.seconds, -1, a.posters)
    finally:
        srv.terminate()
        srv.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
