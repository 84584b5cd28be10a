#!/usr/bin/python3
"""served_vs_published.py: how far the list `bookrec serve` answers is from
the list `bookrec train` published, for every reader of a model version
with nothing new since it (docs/api.md, "Re-ranking").

Starts BOOKREC serve on MODEL_DIR (a free loopback port), reads every
reader's published top n with `BOOKREC recommend --model-dir MODEL_DIR
--users all --json`, asks the server for the same readers, and prints how
many lists are identical, how many start with the same book, and the mean
overlap of the two top n. Run it with two builds on models they trained to
compare them.

Usage: served_vs_published.py BOOKREC MODEL_DIR [N]   (N: 10)
"""
import json
import re
import subprocess
import sys
import urllib.request


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    bookrec, model, n = sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 10
    pub = subprocess.run([bookrec, "--quiet", "recommend", "--model-dir", model, "--users", "all",
                          "--n", str(n), "--json"], check=True, capture_output=True, text=True)
    lists = [json.loads(line) for line in pub.stdout.splitlines() if line.strip()]
    srv = subprocess.Popen([bookrec, "serve", "--model-dir", model, "--port", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        m = re.search(r":(\d+)/ ", srv.stdout.readline())
        if not m:
            raise SystemExit("serve did not start")
        base = "http://127.0.0.1:%s/api/recommendations/user/" % m.group(1)
        same_first = identical = overlap = 0
        for p in lists:
            a = [x["book"] for x in p["items"]]
            with urllib.request.urlopen("%s%s?n=%d" % (base, p["user"], n)) as r:
                b = [x["book_id"] for x in json.load(r)["recommendations"]]
            same_first += bool(a) and bool(b) and a[0] == b[0]
            identical += a == b
            overlap += len(set(a) & set(b))
        k = len(lists)
        print("%d readers, top %d: identical %d, same first book %d, mean overlap %.2f"
              % (k, n, identical, same_first, overlap / max(k, 1)))
    finally:
        srv.terminate()
        srv.wait()


if __name__ == "__main__":
    main()
