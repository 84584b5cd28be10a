#!/usr/bin/env python3
"""slowclients.py: one client holding thousands of slow connections against
`bookrec serve`, and how fast /healthz still answers another client
(issue 19: "5,000 slow connections from one address: /healthz from another
client answers in < 100 ms"; docs/api.md, "Slow and greedy clients").

The swarm (a child process, so that its work never delays the probe's
clock) opens --connections sockets from --slow-src (127.0.0.2: loopback,
but another address than the probe's 127.0.0.1), each sending the start of
a request head and then one more header byte every --interval seconds; a
socket the server closes is opened again after --reopen seconds (an
attacker keeps trying). Once every socket has been tried, the probe times
GET /healthz from 127.0.0.1, a new connection each time (as a load
balancer's health check does), for --duration seconds: p50, p99 and max
in ms, and the failures (no 200 within --timeout seconds).

Either against a running server (--port), or it starts one: --bookrec BIN
--model-dir DIR [--serve-args "..."] (`serve --port 0`, stopped at the end),
e.g. --serve-args "--max-per-ip 1000000 --request-deadline 3600" for the
server without its per-address limit and deadline.

Python 3 standard library only; raises its own open-file limit.

  python3 bench/slowclients.py --bookrec build/bookrec --model-dir M
"""
import argparse
import multiprocessing as mp
import os
import re
import resource
import selectors
import shlex
import signal
import socket
import subprocess
import sys
import time


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, need)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


HEAD = b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: "


def swarm(args, ready, stop, out):
    """The slow client: runs until `stop` is set; sends its counts on `out`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sel = selectors.DefaultSelector()
    socks = {}  # fd -> [socket, next byte time]
    reopen_at = []  # times at which a closed slot may be opened again
    st = {"opened": 0, "open_failed": 0, "closed_by_server": 0, "bytes": 0}

    def open_one(now):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((args.slow_src, 0))
            s.setblocking(False)
            s.connect_ex((args.host, args.port))
        except OSError:
            s.close()
            st["open_failed"] += 1
            reopen_at.append(now + args.reopen)
            return
        st["opened"] += 1
        # the first bytes at once, then a byte per interval, spread out
        socks[s.fileno()] = [s, now + (st["opened"] % 100) / 100.0 * args.interval, 0]
        sel.register(s, selectors.EVENT_READ)

    def drop(fd, now):
        s = socks.pop(fd)[0]
        sel.unregister(s)
        s.close()
        st["closed_by_server"] += 1
        reopen_at.append(now + args.reopen)

    t0 = time.monotonic()
    for _ in range(args.connections):
        open_one(t0)
    ready.set()
    while not stop.is_set():
        now = time.monotonic()
        for key, _ in sel.select(timeout=0.05):
            fd = key.fd
            if fd not in socks:
                continue
            try:
                d = socks[fd][0].recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            if not d:
                drop(fd, now)
        now = time.monotonic()
        for fd in list(socks):
            ent = socks[fd]
            if ent[1] > now:
                continue
            s, _, sent = ent
            chunk = HEAD if sent == 0 else b"a"
            try:
                n = s.send(chunk)
                st["bytes"] += n
                ent[2] += n
                ent[1] = now + args.interval
            except BlockingIOError:  # still connecting
                ent[1] = now + 0.2
            except OSError:
                drop(fd, now)
        if reopen_at:
            due = [t for t in reopen_at if t <= now]
            reopen_at[:] = [t for t in reopen_at if t > now]
            for _ in due:
                open_one(now)
    st["open_at_end"] = len(socks)
    out.send(st)
    for ent in socks.values():
        ent[0].close()


def probe(host, port, timeout):
    """One health check on a new connection: (ms, ok)."""
    t = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout) as c:
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
            buf = b""
            while True:
                d = c.recv(4096)
                if not d:
                    break
                buf += d
        ok = buf.startswith(b"HTTP/1.1 200")
    except OSError:
        ok = False
    return (time.perf_counter() - t) * 1000.0, ok


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int)
    ap.add_argument("--slow-src", default="127.0.0.2")
    ap.add_argument("--connections", type=int, default=5000)
    ap.add_argument("--interval", type=float, default=3.0, help="seconds between a socket's bytes")
    ap.add_argument("--reopen", type=float, default=0.5, help="seconds before a closed socket is reopened")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of probes")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds after the swarm opened")
    ap.add_argument("--probe-every", type=float, default=0.05)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--bookrec")
    ap.add_argument("--model-dir")
    ap.add_argument("--serve-args", default="")
    args = ap.parse_args()

    server = None
    if args.port is None:
        if not (args.bookrec and args.model_dir):
            ap.error("--port, or --bookrec and --model-dir")
        cmd = [args.bookrec, "--quiet", "serve", "--model-dir", args.model_dir, "--port", "0"]
        cmd += shlex.split(args.serve_args)
        server = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        line = server.stdout.readline()
        m = re.search(r":(\d+)/ model", line)
        if not m:
            server.kill()
            sys.exit("could not start the server: %r" % line)
        args.port = int(m.group(1))
        print("server: %s" % " ".join(shlex.quote(c) for c in cmd))

    nofile = raise_nofile(args.connections + 256)
    if nofile < args.connections + 64:
        sys.exit("open-file limit %d is below --connections %d" % (nofile, args.connections))
    print("load: %d connections from %s to %s:%d, a header byte every %.1f s each, "
          "closed ones reopened after %.1f s; probe GET /healthz from 127.0.0.1 every %.0f ms "
          "for %.0f s (new connection each, timeout %.0f s)"
          % (args.connections, args.slow_src, args.host, args.port, args.interval, args.reopen,
             args.probe_every * 1000, args.duration, args.timeout))
    sys.stdout.flush()

    ctx = mp.get_context("fork")
    ready, stop = ctx.Event(), ctx.Event()
    rx, tx = ctx.Pipe(duplex=False)
    child = ctx.Process(target=swarm, args=(args, ready, stop, tx))
    child.start()
    ready.wait()
    time.sleep(args.warmup)
    lat, fails = [], 0
    end = time.monotonic() + args.duration
    while time.monotonic() < end:
        ms, ok = probe(args.host, args.port, args.timeout)
        lat.append(ms)
        fails += not ok
        time.sleep(args.probe_every)
    stop.set()
    st = rx.recv()
    child.join()
    if server:
        server.send_signal(signal.SIGTERM)
        server.wait()
    print("swarm: %(opened)d sockets opened, %(closed_by_server)d closed by the server, "
          "%(open_at_end)d open at the end, %(open_failed)d opens failed, %(bytes)d bytes sent" % st)
    print("GET /healthz: %d probes, %d failed; p50 %.2f ms  p99 %.2f ms  max %.2f ms"
          % (len(lat), fails, pct(lat, 50), pct(lat, 99), max(lat) if lat else float("nan")))


if __name__ == "__main__":
    main()
