# seed_cache.py JSON OUT: writes the use-lite embedding cache of
# docs/formats.md ("BREMBCAC") from reference vectors ({"text", "embedding"}
# records, e.g. tests/golden/use-lite/seed_descriptions.json), so the tests
# that train the seed universe embed nothing. Used by tests/cli/train.sh,
# tests/cli/serve.sh and tests/browser/page.sh.
import json, struct, sys

d = json.load(open(sys.argv[1]))


def fnv(b):
    h = 14695981039346656037
    for x in b:
        h = ((h ^ x) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


recs = {}
for e in d:
    t = e["text"].encode()
    recs[(fnv(t), len(t))] = e["embedding"]
key = b"use-lite"
with open(sys.argv[2], "wb") as f:
    f.write(b"BREMBCAC" + struct.pack("<III", 1, 512, len(key)) + key)
    f.write(struct.pack("<Q", len(recs)))
    for (h, n) in sorted(recs):
        f.write(struct.pack("<QII", h, n, 0) + struct.pack("<512f", *recs[(h, n)]))
