#!/usr/bin/env python3
"""chaos.py: the reliability probes behind docs/benchmarks.md, "Reliability".

Each scenario does to a real `bookrec serve` / `bookrec train` what bad luck
or an attacker would, on the seed universe, and prints one line of figures:

  serve-kill STORE   SIGKILL the server N times while 4 clients POST events;
                     every event answered 200 must be in the event log after
                     (STORE: lmdb or redis)
  train-kill         SIGKILL `train` N times at random moments while clients
                     read; reads must not fail, `current` must stay a served
                     version, the lock must be free after
  full-disk          `train` into a 20 MB tmpfs until the disk fills: the
                     time from the disk filling to the run's exit, its error,
                     the lock released, the previous version still served
  redis-stop         SIGSTOP redis-server for 5 s under reads: answers by
                     status, the slowest, the time to full answers after
  redis-empty        redis-server restarted empty: /readyz, the first event,
                     recommendations holding books the reader rated, before
                     and after `bookrec store restore`
  slow-clients       bench/slowclients.py: 5,000 slow connections from one
                     address, /healthz timed from another
  soak MINUTES       reads + 200 events/s + a retrain every 5 minutes: per
                     minute requests, errors, p50/p99 and the server's
                     resident memory (heap: RssAnon; mapped store: RssFile)

Usage: bench/chaos.py BOOKREC WORKDIR SCENARIO [ARGS] [--count N]
(bench/chaos.sh runs them all; bench/soak.sh runs the soak.) Traffic goes to
127.0.0.1 only. Python's standard library only.
"""
import argparse
import csv
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


class Env:
    """The bookrec binary, the work directory and the seed universe in it."""

    def __init__(self, bookrec, work):
        self.bookrec = os.path.abspath(bookrec)
        self.work = os.path.abspath(work)
        os.makedirs(self.work, exist_ok=True)
        self.env = dict(os.environ, BOOKREC_EMBED_CACHE=os.path.join(self.work, "cache"))
        self.seed = os.path.join(self.work, "seed")
        if not os.path.exists(os.path.join(self.seed, "ratings.csv")):
            self.run("generate", "--books", "1000", "--users", "100", "--seed", "42",
                     "--rng", "numpy", "--out", self.seed)
        self.books = [r["book_id"] for r in csv.DictReader(open(os.path.join(self.seed, "books.csv")))]
        self.rated = {}
        for r in csv.DictReader(open(os.path.join(self.seed, "ratings.csv"))):
            self.rated.setdefault(r["user_id"], set()).add(r["book_id"])
        self.readers = sorted(self.rated)

    def run(self, *args, check=True):
        p = subprocess.run([self.bookrec, "--quiet", *args], env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if check and p.returncode:
            sys.exit(f"chaos: bookrec {' '.join(args)}: {p.stderr.strip()}")
        return p

    def train_args(self, model, store=None, extra=()):
        a = ["train", "--books", os.path.join(self.seed, "books.csv"),
             "--ratings", os.path.join(self.seed, "ratings.csv"), "--model-dir", model]
        if store:
            a += ["--store", store]
        return a + list(extra)

    def train(self, model, store=None, extra=()):
        return self.run(*self.train_args(model, store, extra))


class Redis:
    def __init__(self, work):
        self.dir = os.path.join(work, "redis")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.port = free_port()
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--logfile", os.path.join(self.dir, "log")])
        for _ in range(200):
            if self.cli("ping").strip() == "PONG":
                return
            time.sleep(0.05)
        sys.exit("chaos: redis-server did not start")

    def cli(self, *args):
        p = subprocess.run(["redis-cli", "-p", str(self.port), *args],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return p.stdout

    def uri(self):
        return f"redis://127.0.0.1:{self.port}"

    def restart_empty(self):
        self.proc.kill()
        self.proc.wait()
        self.start()

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
            self.proc = None


class Server:
    """`bookrec serve` on a fixed loopback port, restartable."""

    def __init__(self, env, model, store=None, port=None, extra=()):
        self.env, self.model, self.store, self.extra = env, model, store, list(extra)
        self.port = port or free_port()
        self.proc = None
        self.log = open(os.path.join(env.work, "serve.log"), "a")

    def start(self, timeout=60):
        a = [self.env.bookrec, "serve", "--model-dir", self.model, "--port", str(self.port)]
        if self.store:
            a += ["--store", self.store]
        self.proc = subprocess.Popen(a + self.extra, env=self.env.env, stdout=subprocess.DEVNULL,
                                     stderr=self.log)
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                sys.exit(f"chaos: bookrec serve exited ({self.proc.returncode}); see {self.log.name}")
            try:
                if get(self.port, "/healthz", 1.0)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        sys.exit("chaos: bookrec serve did not answer")

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()

    def rss_kb(self, field="RssAnon"):
        """Resident kB of the server: RssAnon (its heap and stacks) by
        default; RssFile also counts the pages of the LMDB store it maps,
        which grow with the store."""
        try:
            for line in open(f"/proc/{self.proc.pid}/status"):
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0


def pace(nxt, rate):
    """Sleeps until the next slot of a client sending `rate` requests a
    second (0: as fast as it can); returns the slot after. A client that
    fell behind starts again from now rather than bursting."""
    if not rate:
        return nxt
    nxt += 1.0 / rate
    pause = nxt - time.perf_counter()
    if pause > 0:
        time.sleep(pause)
        return nxt
    return time.perf_counter()


def get(port, path, timeout=5.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


class Client:
    """One persistent connection; reconnects after an error."""

    def __init__(self, port_fn, timeout=5.0):
        self.port_fn, self.timeout, self.c = port_fn, timeout, None

    def request(self, method, path, body=None):
        """(status or None on a transport error, body, seconds)."""
        t0 = time.perf_counter()
        try:
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", self.port_fn(), timeout=self.timeout)
            hdr = {"Content-Type": "application/json"} if body is not None else {}
            self.c.request(method, path, body=body, headers=hdr)
            r = self.c.getresponse()
            data = r.read()
            if r.getheader("Connection", "").lower() == "close":
                self.c.close()
                self.c = None
            return r.status, data, time.perf_counter() - t0
        except (OSError, http.client.HTTPException):
            if self.c:
                self.c.close()
            self.c = None
            return None, b"", time.perf_counter() - t0


class Readers(threading.Thread):
    """Clients reading recommendations of random readers, counting answers by
    status and keeping latencies (per minute when asked)."""

    def __init__(self, env, port_fn, rate=0.0, timeout=5.0):
        super().__init__(daemon=True)
        self.env, self.port_fn, self.rate, self.timeout = env, port_fn, rate, timeout
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.status = {}
        self.lat = []

    def run(self):
        cl = Client(self.port_fn, self.timeout)
        rnd = random.Random(1)
        nxt = time.perf_counter()
        while not self.stop_ev.is_set():
            u = rnd.choice(self.env.readers)
            st, _, dt = cl.request("GET", f"/api/recommendations/user/{u}?n=10")
            with self.lock:
                self.status[st] = self.status.get(st, 0) + 1
                self.lat.append(dt)
            nxt = pace(nxt, self.rate)

    def take(self):
        with self.lock:
            s, l = self.status, self.lat
            self.status, self.lat = {}, []
        return s, l

    def stop(self):
        self.stop_ev.set()
        self.join()


class Posters(threading.Thread):
    """A client POSTing single events with unique reader ids, remembering the
    ones answered 200 (acknowledged), retrying nothing."""

    def __init__(self, env, port_fn, tag, rate=0.0):
        super().__init__(daemon=True)
        self.env, self.port_fn, self.tag, self.rate = env, port_fn, tag, rate
        self.stop_ev = threading.Event()
        self.acked, self.status, self.sent = [], {}, 0

    def run(self):
        cl = Client(self.port_fn, 5.0)
        rnd = random.Random(self.tag)
        k = 0
        nxt = time.perf_counter()
        while not self.stop_ev.is_set():
            k += 1
            user = f"chaos-{self.tag}-{k}"
            body = json.dumps({"user_id": user, "book_id": rnd.choice(self.env.books),
                               "type": "click", "timestamp": 1700000000 + k})
            st, _, _ = cl.request("POST", "/api/events", body)
            self.sent += 1
            self.status[st] = self.status.get(st, 0) + 1
            if st == 200:
                self.acked.append(user)
            elif st is None:
                time.sleep(0.01)  # the server is down: do not spin
            nxt = pace(nxt, self.rate)

    def stop(self):
        self.stop_ev.set()
        self.join()


def file_log_readers(path):
    """Reader ids of every intact record of an event-log file (docs/store.md:
    16-byte header; records u32 length, u32 CRC, payload)."""
    users = set()
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"BREVENTS":
        sys.exit(f"chaos: {path}: not an event log")
    off = 16
    while off + 8 <= len(data):
        n = struct.unpack_from("<I", data, off)[0]
        p = data[off + 8:off + 8 + n]
        if n < 16 or len(p) < n:
            break
        ul, bl = p[13], p[14]
        users.add(p[16:16 + ul].decode())
        off += 8 + n
    return users


def redis_log_readers(redis):
    out = redis.cli("--raw", "XRANGE", "bookrec:events", "-", "+")
    lines = out.split("\n")
    return {lines[i + 1] for i, v in enumerate(lines[:-1]) if v == "u"}


def seed_model(env, name, store=None):
    model = os.path.join(env.work, name)
    shutil.rmtree(model, ignore_errors=True)
    env.train(model, store)
    return model


def scenario_serve_kill(env, store_kind, count):
    redis = Redis(env.work) if store_kind == "redis" else None
    store = redis.uri() if redis else None
    model = seed_model(env, f"model-kill-{store_kind}", store)
    srv = Server(env, model, store)
    srv.start()
    posters = [Posters(env, lambda: srv.port, t) for t in range(4)]
    for p in posters:
        p.start()
    rnd = random.Random(7)
    downs = []
    try:
        for _ in range(count):
            time.sleep(rnd.uniform(0.3, 1.5))
            srv.kill()
            t0 = time.time()
            srv.start()
            downs.append(time.time() - t0)
        time.sleep(0.5)
    finally:
        for p in posters:
            p.stop()
        srv.stop()
    acked = [u for p in posters for u in p.acked]
    logged = (redis_log_readers(redis) if redis
              else file_log_readers(os.path.join(model, "store", "events.log")))
    lost = [u for u in acked if u not in logged]
    status = {}
    for p in posters:
        for k, v in p.status.items():
            status[k] = status.get(k, 0) + v
    if redis:
        redis.stop()
    print(f"serve-kill {store_kind}: {count} SIGKILLs of serve under 4 event posters: "
          f"{len(acked)} events acknowledged, {len(lost)} of them lost; "
          f"answers {fmt_status(status)}; {len(logged)} in the log; "
          f"restart to /healthz median {statistics.median(downs):.2f} s")
    return len(lost) == 0


def fmt_status(st):
    return ", ".join(f"{'transport error' if k is None else k}: {v}"
                     for k, v in sorted(st.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)))


def models_list(env, model):
    out = env.run("models", "list", "--model-dir", model, "--json").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def scenario_train_kill(env, count):
    model = seed_model(env, "model-train-kill")
    srv = Server(env, model)
    srv.start()
    rd = [Readers(env, lambda: srv.port) for _ in range(2)]
    for r in rd:
        r.start()
    t0 = time.time()
    env.train(model)  # a full run: the span the kills are spread over
    full = time.time() - t0
    rnd = random.Random(11)
    killed = 0
    try:
        for _ in range(count):
            p = subprocess.Popen([env.bookrec, "--quiet", *env.train_args(model)], env=env.env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                p.wait(timeout=rnd.uniform(0.05, full))
            except subprocess.TimeoutExpired:
                p.kill()
                killed += 1
            p.wait()
        time.sleep(1.5)  # a reload the last kill may have let through
    finally:
        st, lat = {}, []
        for r in rd:
            r.stop()
            s, l = r.take()
            lat += l
            for k, v in s.items():
                st[k] = st.get(k, 0) + v
        srv.stop()
    after = env.run(*env.train_args(model), check=False)
    vers = models_list(env, model)
    unserved = [v for v in vers if not v.get("served", True)]
    failed = sum(v for k, v in st.items() if k != 200)
    print(f"train-kill: {killed} of {count} train runs SIGKILLed (full run {full:.1f} s) under 2 readers: "
          f"{sum(st.values())} reads, {failed} failed ({fmt_status(st)}), p99 {pct(lat, 0.99) * 1e3:.1f} ms, "
          f"max {max(lat) * 1e3:.0f} ms; train after: exit {after.returncode}; "
          f"never-served versions listed: {len(unserved)}")
    return failed == 0 and after.returncode == 0


def scenario_full_disk(env):
    mnt = os.path.join(env.work, "tmpfs")
    os.makedirs(mnt, exist_ok=True)
    subprocess.run(["umount", mnt], stderr=subprocess.DEVNULL)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", mnt],
                      stderr=subprocess.DEVNULL).returncode:
        print("full-disk: skipped (mounting a tmpfs needs root)")
        return True
    try:
        model = os.path.join(mnt, "model")
        runs = []
        for i in range(4):
            # The fullest moment seen by polling (a failed run removes its
            # files at once, so "full" itself may be missed): the failed
            # write came at or after it, so exit - then bounds the delay.
            fullest, fullest_at = None, None
            p = subprocess.Popen([env.bookrec, "--quiet", *env.train_args(model)], env=env.env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            while p.poll() is None:
                sv = os.statvfs(mnt)
                free = sv.f_bavail * sv.f_frsize
                if fullest is None or free < fullest:
                    fullest, fullest_at = free, time.time()
                time.sleep(0.001)
            end = time.time()
            err = p.stderr.read().strip().splitlines()
            near = fullest is not None and fullest < 2 * 1024 * 1024
            runs.append((p.returncode, end - fullest_at if near else None, err[-1] if err else ""))
            if p.returncode:
                break
        rc, lag, msg = runs[-1]
        if not rc:
            print(f"full-disk: the disk never filled in {len(runs)} runs")
            return False
        again = env.run(*env.train_args(model), check=False)
        locked = "another train" in again.stderr
        cur = os.path.realpath(os.path.join(model, "current"))
        rec = env.run("recommend", "--model-dir", model, "--user", env.readers[0], check=False)
        print(f"full-disk: train {len(runs)} failed with exit {rc} "
              f"{'at most %.3f s' % lag if lag is not None else '(never saw < 2 MB free)'} after the disk filled: "
              f"'{msg[:220]}'; next train {'found the lock held' if locked else 'not blocked by a lock'}; "
              f"current {os.path.basename(cur)} serves: {'yes' if rec.returncode == 0 else 'NO'}")
        return lag is not None and lag < 1.0 and not locked and rec.returncode == 0
    finally:
        subprocess.run(["umount", mnt], stderr=subprocess.DEVNULL)


def scenario_redis_stop(env, seconds=5.0):
    redis = Redis(env.work)
    model = seed_model(env, "model-redis-stop", redis.uri())
    srv = Server(env, model, redis.uri())
    srv.start()
    rd = [Readers(env, lambda: srv.port, timeout=10.0) for _ in range(2)]
    for r in rd:
        r.start()
    time.sleep(1.0)
    for r in rd:
        r.take()
    redis.proc.send_signal(signal.SIGSTOP)
    time.sleep(seconds)
    st, lat = {}, []
    for r in rd:
        s, l = r.take()
        lat += l
        for k, v in s.items():
            st[k] = st.get(k, 0) + v
    redis.proc.send_signal(signal.SIGCONT)
    t0 = time.time()
    back = None
    while time.time() - t0 < 30:
        code, body = get(srv.port, f"/api/recommendations/user/{env.readers[0]}?n=10")
        if code == 200 and b'"collab"' in body:
            back = time.time() - t0
            break
        time.sleep(0.05)
    for r in rd:
        r.stop()
    srv.stop()
    redis.stop()
    print(f"redis-stop: redis-server stopped {seconds:.0f} s under 2 readers: {sum(st.values())} answers "
          f"({fmt_status(st)}), slowest {max(lat) if lat else 0:.2f} s; "
          f"full answers {'%.2f s' % back if back is not None else 'not within 30 s'} after SIGCONT")
    return None not in st and back is not None


def seen_in_recs(env, port, readers):
    bad = total = 0
    for u in readers:
        code, body = get(port, f"/api/recommendations/user/{u}?n=20")
        if code != 200:
            continue
        for it in json.loads(body)["recommendations"]:
            total += 1
            bad += it["book_id"] in env.rated[u]
    return bad, total


def scenario_redis_empty(env):
    redis = Redis(env.work)
    model = seed_model(env, "model-redis-empty", redis.uri())
    srv = Server(env, model, redis.uri())
    srv.start()
    before = seen_in_recs(env, srv.port, env.readers)
    redis.restart_empty()
    time.sleep(2.5)  # the server's store poll
    ready = get(srv.port, "/readyz")[0]
    ev = Client(lambda: srv.port).request(
        "POST", "/api/events", json.dumps({"user_id": env.readers[0], "book_id": env.books[0]}))[0]
    emptied = seen_in_recs(env, srv.port, env.readers)
    r = env.run("store", "restore", "--model-dir", model, "--store", redis.uri(), check=False)
    how = "store restore"
    if r.returncode:
        cur = os.path.basename(os.path.realpath(os.path.join(model, "current")))
        r = env.run("models", "rollback", cur, "--model-dir", model, "--store", redis.uri(), check=False)
        how = "models rollback"
    time.sleep(2.5)
    after = seen_in_recs(env, srv.port, env.readers)
    ready2 = get(srv.port, "/readyz")[0]
    srv.stop()
    redis.stop()
    print(f"redis-empty: rated books in top-20 lists: {before[0]} of {before[1]} before; redis restarted empty: "
          f"/readyz {ready}, first event {ev}, {emptied[0]} of {emptied[1]}; after `{how}` "
          f"(exit {r.returncode}): {after[0]} of {after[1]}, /readyz {ready2}")
    return after[0] == 0 and ready != 200 and ev == 200


def scenario_slow_clients(env):
    """bench/slowclients.py against a server on a seed model: 5,000 slow
    connections from 127.0.0.2, /healthz timed from 127.0.0.1."""
    model = seed_model(env, "model-slow")
    here = os.path.dirname(os.path.abspath(__file__))
    p = subprocess.run([sys.executable, os.path.join(here, "slowclients.py"), "--bookrec",
                        env.bookrec, "--model-dir", model, "--duration", "20"],
                       env=env.env, stdout=subprocess.PIPE, text=True)
    print("slow-clients: " + " ".join(p.stdout.split()))
    return p.returncode == 0


def scenario_soak(env, minutes, events_rate=200.0, read_rate=200.0, retrain_every=300.0):
    model = seed_model(env, "model-soak")
    srv = Server(env, model)
    srv.start()
    rd = Readers(env, lambda: srv.port, rate=read_rate)
    # four posters: one POST waits for its group commit (the log's and the
    # store's flush, ~12 ms here), so one or two clients fall short of 200/s
    po = [Posters(env, lambda: srv.port, 96 + i, rate=events_rate / 4) for i in range(4)]
    rd.start()
    for p in po:
        p.start()
    start = time.time()
    last_train = start
    trains = []
    print("minute  reads  errors  p50_ms  p99_ms  max_ms  events_acked  anon_mb  file_mb")
    ok = True
    rss0 = rss = None
    prev_acked = 0
    try:
        for m in range(1, int(minutes) + 1):
            while time.time() < start + 60 * m:
                if time.time() - last_train >= retrain_every:
                    t0 = time.time()
                    r = env.run(*env.train_args(model, extra=["--events", f"lmdb:{model}/store",
                                                              "--keep", "3"]), check=False)
                    trains.append((r.returncode, time.time() - t0))
                    last_train = time.time()
                time.sleep(0.2)
            st, lat = rd.take()
            errs = sum(v for k, v in st.items() if k != 200)
            rss, rfile = srv.rss_kb() / 1024, srv.rss_kb("RssFile") / 1024
            rss0 = rss0 or rss
            acked = sum(len(p.acked) for p in po)
            print(f"{m:6d}  {sum(st.values()):5d}  {errs:6d}  {pct(lat, 0.5) * 1e3:6.2f}  "
                  f"{pct(lat, 0.99) * 1e3:6.2f}  {max(lat) * 1e3 if lat else 0:6.1f}  "
                  f"{acked - prev_acked:12d}  {rss:7.1f}  {rfile:7.1f}", flush=True)
            prev_acked = acked
            ok = ok and errs == 0
    finally:
        rd.stop()
        for p in po:
            p.stop()
        srv.stop()
    bad_ev = sum(v for p in po for k, v in p.status.items() if k != 200)
    print(f"soak: {minutes} min, {len(trains)} retrains + reloads (exit codes "
          f"{sorted(set(t[0] for t in trains))}, {statistics.mean([t[1] for t in trains]) if trains else 0:.1f} s each), "
          f"{sum(len(p.acked) for p in po)} events acknowledged, {bad_ev} not; heap (RssAnon) {rss0:.1f} -> {rss:.1f} MB")
    return ok and bad_ev == 0 and all(t[0] == 0 for t in trains)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bookrec")
    ap.add_argument("work")
    ap.add_argument("scenario")
    ap.add_argument("arg", nargs="?")
    ap.add_argument("--count", type=int, default=20)
    a = ap.parse_args()
    env = Env(a.bookrec, a.work)
    if a.scenario == "serve-kill":
        ok = scenario_serve_kill(env, a.arg or "lmdb", a.count)
    elif a.scenario == "train-kill":
        ok = scenario_train_kill(env, a.count)
    elif a.scenario == "full-disk":
        ok = scenario_full_disk(env)
    elif a.scenario == "redis-stop":
        ok = scenario_redis_stop(env)
    elif a.scenario == "redis-empty":
        ok = scenario_redis_empty(env)
    elif a.scenario == "slow-clients":
        ok = scenario_slow_clients(env)
    elif a.scenario == "soak":
        ok = scenario_soak(env, float(a.arg or 30))
    else:
        sys.exit(f"chaos: unknown scenario '{a.scenario}'")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
