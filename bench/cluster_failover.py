#!/usr/bin/env python3
"""cluster_failover.py: primary kills under load, for bench/cluster.sh.

Drives `bookrec serve` replicas on a Redis Cluster with reads (GET
/api/recommendations/user/{id}, round robin over the replicas) and events
(POST /api/events, one new reader per event so each is traceable), kills a
primary with SIGKILL, measures when its replica is promoted (CLUSTER SLOTS
no longer names the dead node) and when every answer is complete again (no
"degraded" source), restarts the dead node (it rejoins as a replica), waits
for the cluster to be whole, and does it again. At the end every
acknowledged event (HTTP 200) is looked up in the cluster's event streams.

Usage: cluster_failover.py CLUSTER_DIR KILLS PORT [PORT...]
Prints one line per kill and a summary; exit 0.
"""
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time

cl_dir, kills, ports = sys.argv[1], int(sys.argv[2]), [int(p) for p in sys.argv[3:]]
here = os.path.dirname(os.path.abspath(__file__))
cluster_sh = os.path.join(here, "..", "scripts", "redis-cluster.sh")
lock = threading.Lock()
stop = threading.Event()
stats = {"reads": 0, "degraded": 0, "events_ok": 0, "events_503": 0, "status": {}}
acked = []          # (user, book, ts) of every event answered 200
last_degraded = [0.0]


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True,
                          text=True, timeout=10).stdout


def nodes():
    """{port: pid} of the cluster's running nodes."""
    out = {}
    for line in open(os.path.join(cl_dir, "ports")):
        p = int(line.split()[0])
        try:
            pid = int(open(os.path.join(cl_dir, f"redis-{p}.pid")).read())
            os.kill(pid, 0)
            out[p] = pid
        except (OSError, ValueError):
            pass
    return out


def slot_owners(ask_port):
    """The ports of the primaries serving slots, per CLUSTER NODES of ask_port."""
    out = set()
    for line in redis_cli(ask_port, "cluster", "nodes").splitlines():
        f = line.split()
        if len(f) > 8 and "master" in f[2] and "fail" not in f[2]:
            out.add(int(f[1].split("@")[0].rsplit(":", 1)[1]))
    return out


def primaries():
    live = nodes()
    for p in live:
        owners = slot_owners(p)
        if owners:
            return sorted(o for o in owners if o in live)
    return []


def cluster_ok():
    live = nodes()
    return all("cluster_slots_ok:16384" in redis_cli(p, "cluster", "info") for p in live)


def reader(k):
    conns = [http.client.HTTPConnection("127.0.0.1", p, timeout=10) for p in ports]
    i = k
    while not stop.is_set():
        i += 1
        c = conns[i % len(conns)]
        try:
            c.request("GET", f"/api/recommendations/user/{1 + i % 100}?n=10")
            r = c.getresponse()
            body = r.read()
            st = r.status
        except OSError:
            st = "socket"
            conns[i % len(conns)] = http.client.HTTPConnection("127.0.0.1", ports[i % len(ports)],
                                                               timeout=10)
            body = b""
        with lock:
            stats["reads"] += 1
            stats["status"][str(st)] = stats["status"].get(str(st), 0) + 1
            if b'"degraded"' in body:
                stats["degraded"] += 1
                last_degraded[0] = time.time()


def eventer():
    conns = [http.client.HTTPConnection("127.0.0.1", p, timeout=10) for p in ports]
    n = 0
    while not stop.is_set():
        n += 1
        user, book, ts = f"fo-{os.getpid()}-{n}", str(n % 1000), 1800000000 + n
        c = conns[n % len(conns)]
        try:
            c.request("POST", "/api/events", body=json.dumps(
                {"user_id": user, "book_id": book, "type": "click", "timestamp": ts}),
                headers={"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            st = r.status
        except OSError:
            st = "socket"
            conns[n % len(conns)] = http.client.HTTPConnection("127.0.0.1", ports[n % len(ports)],
                                                               timeout=10)
        with lock:
            stats["status"][f"event {st}"] = stats["status"].get(f"event {st}", 0) + 1
            if st == 200:
                stats["events_ok"] += 1
                acked.append((user, book, ts))
            elif st == 503:
                stats["events_503"] += 1
        time.sleep(0.005)


threads = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
threads.append(threading.Thread(target=eventer))
for t in threads:
    t.start()
time.sleep(2)
promo, whole = [], []
try:
    for k in range(kills):
        prim = primaries()
        victim = prim[k % len(prim)]
        pid = nodes()[victim]
        before = dict(stats["status"])
        os.kill(pid, signal.SIGKILL)
        t_kill = time.time()
        other = [p for p in nodes() if p != victim][0]
        t_promo = None
        while time.time() - t_kill < 30:
            if victim not in slot_owners(other) and cluster_ok():
                t_promo = time.time()
                break
            time.sleep(0.02)
        # complete answers again: nothing degraded for 0.5 s after a point
        t_whole = None
        while time.time() - t_kill < 40:
            time.sleep(0.05)
            with lock:
                ld = last_degraded[0]
            if time.time() - max(ld, t_kill) >= 0.5:
                t_whole = max(ld, t_kill)
                break
        after = dict(stats["status"])
        delta = {s: after.get(s, 0) - before.get(s, 0) for s in after if after.get(s, 0) != before.get(s, 0)}
        p_s = f"{t_promo - t_kill:.2f} s" if t_promo else "never"
        w_s = f"{t_whole - t_kill:.2f} s" if t_whole else "never"
        w_p = f"{t_whole - t_promo:+.2f} s" if t_whole and t_promo else "-"
        print(f"kill {k + 1}: primary :{victim}; promoted after {p_s}; complete answers after {w_s} "
              f"({w_p} from the promotion); answers meanwhile {json.dumps(delta)}", flush=True)
        if t_promo:
            promo.append(t_promo - t_kill)
        if t_whole and t_promo:
            whole.append(t_whole - t_promo)
        subprocess.run([cluster_sh, "restart", cl_dir, str(victim)], check=True,
                       capture_output=True)
        t0 = time.time()
        while not cluster_ok() and time.time() - t0 < 30:
            time.sleep(0.1)
        time.sleep(1)
finally:
    stop.set()
    for t in threads:
        t.join()

# every acknowledged event in the streams
stored = set()
for p in primaries():
    for key in redis_cli(p, "--raw", "keys", "bookrec:events*").split():
        out = redis_cli(p, "--raw", "xrange", key, "-", "+").split("\n")
        i = 0
        while i < len(out):
            if out[i] == "u" and i + 1 < len(out):
                stored.add(out[i + 1])
            i += 1
lost = [a for a in acked if a[0] not in stored]
non2xx = {s: n for s, n in stats["status"].items() if s not in ("200", "event 200", "event 503")}
print(f"summary: {kills} primary kills; {stats['reads']} reads, {stats['degraded']} degraded; "
      f"answers {json.dumps(stats['status'])}; non-2xx other than event 503s: {sum(non2xx.values())}")
if promo:
    print(f"summary: promotion after the kill: {min(promo):.2f}-{max(promo):.2f} s; complete answers "
          f"after the promotion: {min(whole):+.2f} to {max(whole):+.2f} s" if whole else
          "summary: complete answers: never measured")
print(f"summary: events acknowledged {stats['events_ok']}, answered 503 (not stored) "
      f"{stats['events_503']}; acknowledged but not in the streams: {len(lost)}")
