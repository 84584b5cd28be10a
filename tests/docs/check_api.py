#!/usr/bin/python3
"""check_api.py: docs/api.md's examples and docs/openapi.yaml against a live
`bookrec serve`.

Builds the model the docs describe (the seed universe, `bookrec generate
--rng numpy --seed 42`, `bookrec train` with its defaults), starts the
server on a free loopback port, then:

- replays every example of docs/api.md marked `<!-- example ... -->` (the
  `$ curl ...` lines of the code block that follows, in document order: the
  examples that post events and books change what later ones show) and
  compares the documented output with the server's: strings exactly,
  numbers within 1e-3 (hosts differ in the last float digits); `--write`
  rewrites the outputs in place instead;
- validates every response (the examples' and a battery over every route
  and error status) against the schema docs/openapi.yaml gives for its
  path, method and status, and checks that every path of the spec was
  exercised and that every route the server counted is in the spec.

A marker may say `pretty` (indented output), `trim=N` (arrays cut to N
items, then "..."), `volatile=k1,k2` (values of those keys are not
compared: times of the run).

Usage: check_api.py --check|--write BOOKREC REPO [SANITIZE]
Exit 0 pass, 1 fail, 77 skip (a sanitizer build: outputs are the release
build's; no use-lite model; no python3-jsonschema / python3-yaml).
"""
import difflib
import http.client
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

SKIP = 77


def skip(why):
    print("SKIP:", why)
    sys.exit(SKIP)


try:
    import jsonschema
    import yaml
except ImportError as e:  # Debian: python3-jsonschema, python3-yaml
    if os.environ.get("CI") == "true":
        print("FAIL: CI must run the API docs check (scripts/install-deps.sh test):", e)
        sys.exit(1)
    skip("no python3-jsonschema or python3-yaml (%s)" % e)


# ------------------------------------------------------------ the server --

class Server:
    def __init__(self, bookrec, model_dir):
        self.proc = subprocess.Popen(
            [bookrec, "serve", "--model-dir", model_dir, "--port", "0", "--poll-ms", "200"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not m:
            self.proc.kill()
            raise SystemExit("FAIL: serve did not start: %s %s" % (line, self.proc.stderr.read()))
        self.port = int(m.group(1))
        self.responses = []  # (method, path, status, content type, body)

    def request(self, method, target, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        if body is not None:
            h.setdefault("Content-Type", "application/json")
        c.request(method, target, body=body.encode() if isinstance(body, str) else body,
                  headers=h)
        r = c.getresponse()
        data = r.read()
        ctype = r.getheader("Content-Type") or ""
        c.close()
        self.responses.append((method, urllib.parse.urlsplit(target).path, r.status, ctype, data))
        return r.status, ctype, data

    def stop(self):
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if "ERROR: AddressSanitizer" in err or "runtime error:" in err:
            raise SystemExit("FAIL: sanitizer report from serve:\n" + err)


# ------------------------------------------------------------- examples --

MARKER = re.compile(r"^<!-- example(?P<opts>[^>]*)-->\s*$")


def parse_opts(text):
    opts = {"pretty": False, "trim": None, "volatile": set()}
    for word in text.split():
        if word == "pretty":
            opts["pretty"] = True
        elif word.startswith("trim="):
            opts["trim"] = int(word[5:])
        elif word.startswith("volatile="):
            opts["volatile"] = set(word[9:].split(","))
        else:
            raise SystemExit("FAIL: unknown example option '%s'" % word)
    return opts


def curl_request(cmd):
    """(method, target, body) of a documented `curl -s ...` command."""
    args = shlex.split(cmd)
    if args[:2] != ["curl", "-s"]:
        raise SystemExit("FAIL: an example is not `curl -s ...`: " + cmd)
    method, body, url = None, None, None
    i = 2
    while i < len(args):
        a = args[i]
        if a == "-X":
            method = args[i + 1]
            i += 2
        elif a == "-d":
            body = args[i + 1]
            i += 2
        elif a.startswith("-"):
            raise SystemExit("FAIL: curl option %s is not understood here: %s" % (a, cmd))
        else:
            url = a
            i += 1
    if not url or not url.startswith("localhost:8080/"):
        raise SystemExit("FAIL: an example's URL is not localhost:8080/...: " + cmd)
    return method or ("POST" if body is not None else "GET"), url[len("localhost:8080"):], body


def render(value, opts, indent=0):
    """JSON text as the docs show it: compact, or indented by 2; arrays cut
    to opts["trim"] items followed by "..."."""
    pretty = opts["pretty"]
    pad, inner = "  " * indent, "  " * (indent + 1)
    if isinstance(value, dict):
        items = ["%s: %s" % (json.dumps(k, ensure_ascii=False), render(v, opts, indent + 1))
                 if pretty else
                 "%s:%s" % (json.dumps(k, ensure_ascii=False), render(v, opts, indent + 1))
                 for k, v in value.items()]
        if not items:
            return "{}"
        if pretty:
            return "{\n" + ",\n".join(inner + x for x in items) + "\n" + pad + "}"
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        cut = opts["trim"] is not None and len(value) > opts["trim"]
        shown = value[:opts["trim"]] if cut else value
        items = [render(v, opts, indent + 1) for v in shown] + (["..."] if cut else [])
        if not items:
            return "[]"
        if pretty and not all(not isinstance(v, (dict, list)) for v in shown):
            return "[\n" + ",\n".join(inner + x for x in items) + "\n" + pad + "]"
        return "[" + (", " if pretty else ",").join(items) + "]"
    if isinstance(value, float):
        return json.dumps(float("%.6g" % value))
    return json.dumps(value, ensure_ascii=False)


TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|\.\.\.|\S')


def same_text(doc, live, volatile):
    """Equal token by token: numbers within 1e-3, the value after a
    volatile key not compared."""
    a, b = TOKEN.findall(doc), TOKEN.findall(live)
    if len(a) != len(b):
        return False
    i = 0
    while i < len(a):
        x, y = a[i], b[i]
        if x != y:
            try:
                fx, fy = float(x), float(y)
            except ValueError:
                return False
            if abs(fx - fy) > 1e-3 * max(1.0, abs(fx)):
                return False
        if x.startswith('"') and x[1:-1] in volatile and a[i + 1:i + 2] == [":"]:
            i += 3  # the key, the colon, the value
            continue
        i += 1
    return True


def run_examples(srv, doc_path, write):
    lines = open(doc_path, encoding="utf-8").read().split("\n")
    out, i, failures, count = [], 0, [], 0
    while i < len(lines):
        m = MARKER.match(lines[i])
        out.append(lines[i])
        i += 1
        if not m:
            continue
        opts = parse_opts(m.group("opts"))
        if i >= len(lines) or not lines[i].startswith("```"):
            raise SystemExit("FAIL: %s:%d: an example marker without a code block" % (doc_path, i))
        out.append(lines[i])
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            if not lines[i].startswith("$ "):
                raise SystemExit("FAIL: %s:%d: expected `$ curl ...`" % (doc_path, i + 1))
            cmd = lines[i][2:]
            out.append(lines[i])
            i += 1
            documented = []
            while i < len(lines) and not lines[i].startswith("$ ") and not lines[i].startswith("```"):
                documented.append(lines[i])
                i += 1
            method, target, body = curl_request(cmd)
            status, ctype, data = srv.request(method, target, body)
            count += 1
            live = render(json.loads(data), opts) if "json" in ctype else data.decode()
            if write:
                out.extend(live.split("\n"))
            else:
                out.extend(documented)
                if not same_text("\n".join(documented), live, opts["volatile"]):
                    failures.append((cmd, "\n".join(documented), live))
        if i < len(lines):
            out.append(lines[i])  # the closing fence
            i += 1
    if write:
        open(doc_path, "w", encoding="utf-8").write("\n".join(out))
    return count, failures


# -------------------------------------------------------------- openapi --

class Spec:
    def __init__(self, path):
        self.doc = yaml.safe_load(open(path, encoding="utf-8"))
        self.resolver = jsonschema.RefResolver.from_schema(self.doc)
        self.paths = self.doc["paths"]
        self.used = set()

    def template(self, path):
        if path == "/" or (not path.startswith("/api") and path not in self.paths):
            return "/" if path == "/" else "/{file}"  # the page and its files
        for t in self.paths:
            rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(t)) + "$"
            if re.match(rx, path):
                return t
        return None

    def check(self, method, path, status, ctype, data):
        t = self.template(path)
        if t is None:
            return None if status == 404 else "%s %s: no such path in openapi.yaml" % (method, path)
        op = self.paths[t].get(method.lower())
        if op is None:
            # a method the route does not take: the 405 of the generic error
            if status == 405:
                return self.validate(json.loads(data), {"$ref": "#/components/schemas/Error"},
                                     method, path, status)
            return "%s %s: openapi.yaml has no %s for %s" % (method, path, method, t)
        self.used.add(t)
        resp = op["responses"].get(str(status))
        if resp is None:
            return "%s %s: status %d is not in openapi.yaml" % (method, path, status)
        if "$ref" in resp:
            resp = self.resolver.resolve(resp["$ref"])[1]
        content = resp.get("content", {})
        mtype = ctype.split(";")[0].strip()
        if mtype not in content:
            return "%s %s: %d as %s, openapi.yaml says %s" % (method, path, status, mtype,
                                                               list(content))
        if mtype != "application/json":
            return None
        return self.validate(json.loads(data), content[mtype]["schema"], method, path, status)

    def validate(self, value, schema, method, path, status):
        v = jsonschema.Draft202012Validator(schema, resolver=self.resolver)
        errs = sorted(v.iter_errors(value), key=lambda e: list(e.path))
        if errs:
            e = errs[0]
            return "%s %s %d: %s at %s" % (method, path, status, e.message,
                                           "/".join(map(str, e.path)))
        return None


def battery(srv):
    """Every route, good and bad input: the statuses openapi.yaml lists."""
    g = lambda t: srv.request("GET", t)
    p = lambda t, b: srv.request("POST", t, b)
    g("/api/recommendations/user/5?n=5&explain=1&device=mobile&hour=22")
    g("/api/recommendations/user/stranger-1")
    g("/api/recommendations/user/5?n=0")
    g("/api/recommendations/user/%00")
    p("/api/recommendations/session", '{"book_ids": ["3", 7], "explain": 1}')
    p("/api/recommendations/session", '["3"]')
    p("/api/recommendations/session", '{"book_ids": "3"}')
    p("/api/recommendations/session", "[" + " " * 70000 + "]")
    p("/api/books", '{"book_id": "doc-b1", "title": "T", "image_url": "https://x.example/c.jpg"}')
    p("/api/books", '{"book_id": "doc-b1", "title": "T"}')
    p("/api/books", '{"title": "no id"}')
    g("/api/books/3")
    g("/api/books/doc-b1")
    g("/api/books/no-such-book")
    g("/api/books/3/similar?n=40")
    g("/api/books/no-such-book/similar")
    g("/api/books/3/similar?n=x")
    p("/api/events", '{"user_id": "doc-u1", "book_id": "3", "type": "view", "timestamp": 1795000000}')
    p("/api/events", '{"events": [{"user_id": "doc-u1", "book_id": "7"}]}')
    p("/api/events", '{"user_id": "doc-u1", "book_id": "no-such-book"}')
    p("/api/events", '{"user_id": "doc-u1"}')
    g("/api/users/doc-u1")
    g("/api/users/nobody-at-all")
    g("/api/users/%FF")
    g("/api/users?q=1&limit=3&offset=1")
    g("/api/users?limit=0")
    g("/api/tribes")
    g("/api/models")
    g("/healthz")
    g("/readyz")
    g("/metrics")
    g("/")
    g("/app.js")
    g("/no-such-page")
    g("/api/nothing")
    srv.request("DELETE", "/api/books/3")
    g("/api/events")


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("--check", "--write"):
        raise SystemExit(__doc__)
    write = sys.argv[1] == "--write"
    bookrec, repo = os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
    if len(sys.argv) > 4 and sys.argv[4]:
        skip("a sanitizer build (%s): the documented outputs are the release build's" % sys.argv[4])
    model = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                         "bookrec", "models", "use-lite.brm")
    if not os.path.exists(model):
        skip("no use-lite model (%s; make model)" % model)
    tmp = tempfile.mkdtemp(prefix="bookrec-docs-")
    srv = None
    try:
        run = lambda *a: subprocess.run([bookrec, "--quiet"] + list(a), cwd=tmp, check=True,
                                        stdout=subprocess.DEVNULL)
        run("generate", "--books", "1000", "--users", "100", "--seed", "42", "--rng", "numpy",
            "--out", "seed")
        run("train", "--books", "seed/books.csv", "--ratings", "seed/ratings.csv",
            "--model-dir", "model")
        srv = Server(bookrec, os.path.join(tmp, "model"))
        doc = os.path.join(repo, "docs", "api.md")
        count, failures = run_examples(srv, doc, write)
        battery(srv)
        spec = Spec(os.path.join(repo, "docs", "openapi.yaml"))
        problems = [e for e in (spec.check(*r) for r in srv.responses) if e]
        # every path of the spec exercised; every route the server counted described
        missing = sorted(set(spec.paths) - spec.used)
        problems += ["openapi.yaml path %s: no request exercised it" % t for t in missing]
        _, _, metrics = srv.request("GET", "/metrics")
        for route in set(re.findall(r'bookrec_http_requests_total\{route="([^"]+)"', metrics.decode())):
            path = route.split(" ", 1)[-1]
            if route in ("static", "other"):
                continue
            if path not in spec.paths:
                problems.append("the server's route %s is not in openapi.yaml" % route)
        for cmd, documented, live in failures:
            print("FAIL: docs/api.md example `%s` no longer matches the server:" % cmd)
            sys.stdout.writelines(difflib.unified_diff(
                (documented + "\n").splitlines(True), (live + "\n").splitlines(True),
                "docs/api.md", "live"))
        for p in problems:
            print("FAIL:", p)
        if failures:
            print("(regenerate: tests/docs/check_api.py --write BOOKREC . ; then review the diff)")
        print("api docs: %d examples %s, %d responses checked against openapi.yaml, %d problems"
              % (count, "written" if write else "compared", len(srv.responses),
                 len(failures) + len(problems)))
        return 1 if failures or problems else 0
    finally:
        if srv:
            srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
