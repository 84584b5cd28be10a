#!/usr/bin/python3
"""check_symbols.py: what libbookrec exports, against its public headers.

The library is built with hidden visibility; a public function or variable
is one declared with BR_API in include/bookrec/*.h (docs/architecture.md,
"What the library exports"). Two checks:

  exports LIB HEADERS   (ctest `symbols`) every declaration in HEADERS/*.h
                        carries BR_API; the dynamic symbols LIB defines
                        (nm -D --defined-only) are exactly the BR_API names:
                        none more (an internal symbol leaking) and none less
                        (a documented function without its definition).
                        Exit 77 (skip) when LIB is not a shared library.
  prefix LIB HEADERS    (ctest `internal_prefix`) every global symbol the
                        internal static library LIB defines (nm
                        --defined-only --extern-only) is public (BR_API, so
                        br_...) or internal with the one internal prefix
                        br__; the others are listed by prefix and by file.

Usage: check_symbols.py exports|prefix LIB HEADERS_DIR [--nm NM] [--objects DIR]
Exit 0 pass, 1 fail, 77 skip.
"""
import argparse
import collections
import glob
import os
import re
import subprocess
import sys

# Symbols the toolchain defines in every shared library, not bookrec's.
TOOLCHAIN = {"_init", "_fini", "_edata", "_end", "__bss_start"}
# Symbols a sanitizer's instrumentation adds beside a global variable
# (AddressSanitizer's ODR indicators), named after it.
TOOLCHAIN_PREFIXES = ("__odr_asan.", "__odr_asan_gen_")


def strip_for_parse(text):
    """The header with comments, preprocessor lines and C++-only blocks
    (#ifdef __cplusplus ... #endif: the extern "C" braces) blanked out to
    spaces, so that offsets and line numbers stay those of the file."""
    out = list(text)

    def blank(a, b):
        for i in range(a, b):
            if out[i] != "\n":
                out[i] = " "

    i, n = 0, len(text)
    while i < n:  # comments and string literals
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blank(i, j)
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text[i] in "\"'":
            q, j = text[i], i + 1
            while j < n and text[j] != q:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
        else:
            i += 1
    stripped = "".join(out)
    # Preprocessor lines (with their continuations); skip C++-only blocks.
    lines = stripped.split("\n")
    depth_skip, stack = 0, []
    pos = 0
    k = 0
    while k < len(lines):
        line = lines[k]
        start = pos
        # a directive may continue over several lines
        end_k = k
        while lines[end_k].endswith("\\") and end_k + 1 < len(lines):
            end_k += 1
        directive = line.lstrip().startswith("#")
        span_end = start + sum(len(lines[m]) + 1 for m in range(k, end_k + 1))
        if directive:
            word = re.match(r"\s*#\s*(\w*)", line).group(1)
            if word in ("if", "ifdef", "ifndef"):
                cxx = bool(re.match(r"\s*#\s*ifdef\s+__cplusplus\b", line))
                stack.append(cxx)
                depth_skip += cxx
            elif word == "endif" and stack:
                depth_skip -= stack.pop()
            elif word in ("else", "elif") and stack and stack[-1]:
                stack[-1] = False  # the #else of an #ifdef __cplusplus is C's
                depth_skip -= 1
            blank(start, min(span_end, len(out)))
        elif depth_skip:
            blank(start, min(span_end, len(out)))
        pos = span_end
        k = end_k + 1
    return "".join(out)


def declarations(path):
    """(name, has_br_api, line, offset of the declaration's first token) of
    every function and variable declared at file scope in a header."""
    text = open(path, encoding="utf-8").read()
    s = strip_for_parse(text)
    decls = []
    depth, start = 0, None
    for i, c in enumerate(s):
        if start is None and not c.isspace():
            start = i
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == ";" and depth == 0 and start is not None:
            stmt, at = s[start:i], start
            start = None
            if "{" in stmt or re.match(r"\s*typedef\b", stmt):
                continue  # a type (typedef, struct, enum), or a definition
            if re.match(r"\s*(struct|union|enum)\s+\w+\s*$", stmt):
                continue  # a forward declaration of a type
            m = re.search(r"\(\s*\*\s*(\w+)\s*\)\s*\(", stmt)  # a function pointer variable
            if not m:
                # a function: the first name followed by '(' that is not a macro
                for m in re.finditer(r"\b([A-Za-z_]\w*)\s*\(", stmt):
                    if not re.match(r"(BR_[A-Z0-9_]+|__attribute__|__declspec)$", m.group(1)):
                        break
                else:
                    m = None
            if not m:  # a variable: the last name before any [ or =
                m = re.search(r"\b([A-Za-z_]\w*)\s*(\[[^\]]*\]\s*)*$", stmt.split("=")[0])
            if not m:
                continue
            name = m.group(1)
            has_api = re.search(r"\bBR_API\b", stmt) is not None
            decls.append((name, has_api, text.count("\n", 0, at) + 1, at))
    return decls


def public_api(headers_dir):
    """{name: 'header.h:line'} of the BR_API declarations, and the list of
    declarations without BR_API."""
    api, missing = {}, []
    for h in sorted(glob.glob(os.path.join(headers_dir, "*.h"))):
        for name, has_api, line, _ in declarations(h):
            where = "%s:%d" % (os.path.relpath(h, os.path.dirname(os.path.dirname(headers_dir))), line)
            if has_api:
                api.setdefault(name, where)
            else:
                missing.append((where, name))
    return api, missing


def nm(nm_tool, args, lib):
    r = subprocess.run([nm_tool] + args + [lib], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("check_symbols: %s %s %s failed: %s" % (nm_tool, " ".join(args), lib, r.stderr.strip()))
    return r.stdout


def is_shared(lib):
    with open(lib, "rb") as f:
        head = f.read(18)
    # ELF, e_type (offset 16, little-endian here) ET_DYN = 3
    return head[:4] == b"\x7fELF" and head[16] == 3


def check_exports(lib, headers_dir, nm_tool):
    if not is_shared(lib):
        print("check_symbols: %s is not a shared library (BUILD_SHARED_LIBS=OFF): skipped" % lib)
        return 77
    api, missing = public_api(headers_dir)
    exported = set()
    for line in nm(nm_tool, ["-D", "--defined-only"], lib).splitlines():
        parts = line.split()
        if len(parts) >= 3:
            exported.add(parts[2].split("@")[0])
    exported = {s for s in exported if s not in TOOLCHAIN and not s.startswith(TOOLCHAIN_PREFIXES)}
    leaked = sorted(exported - set(api))
    absent = sorted(set(api) - exported)
    ok = True
    if missing:
        ok = False
        print("%d declaration(s) in %s without BR_API (every public function and variable "
              "carries it):" % (len(missing), headers_dir))
        for where, name in missing:
            print("  %s: %s" % (where, name))
    if leaked:
        ok = False
        print("%d symbol(s) exported by %s that no header declares with BR_API:" % (len(leaked), lib))
        by_prefix = collections.defaultdict(list)
        for s in leaked:
            by_prefix[prefix_of(s)].append(s)
        for p in sorted(by_prefix, key=lambda p: (-len(by_prefix[p]), p)):
            print("  %s (%d): %s" % (p, len(by_prefix[p]), " ".join(by_prefix[p])))
    if absent:
        ok = False
        print("%d BR_API declaration(s) that %s does not export (no definition, or a "
              "definition that is static or hidden):" % (len(absent), lib))
        for s in absent:
            print("  %s: %s" % (api[s], s))
    print("check_symbols: %s exports %d symbol(s); the headers declare %d with BR_API: %s"
          % (os.path.basename(lib), len(exported), len(api), "ok" if ok else "FAIL"))
    return 0 if ok else 1


def prefix_of(sym):
    if sym.startswith("br__"):
        return "br__"
    if sym.startswith(".gomp_critical_user_"):
        return ".gomp_critical_user_"
    m = re.match(r"([A-Za-z0-9]+_)", sym.lstrip("_."))
    return m.group(1) if m else sym


def check_prefix(lib, headers_dir, nm_tool, objects=None):
    api, _ = public_api(headers_dir)
    bad = {}  # symbol -> file it is defined in
    count = 0
    for line in nm(nm_tool, ["-A", "--defined-only", "--extern-only"], lib).splitlines():
        # "archive:member: value type name" (llvm-nm: "archive:member: ...", too)
        parts = line.split()
        if len(parts) < 3:
            continue
        name = parts[-1]
        count += 1
        if name in api or name.startswith("br__"):
            continue
        if name.startswith(".gomp_critical_user_") or name.startswith(TOOLCHAIN_PREFIXES):
            continue  # OpenMP's lock of a named critical section (cmake/exports.map), ASan's
        m = re.match(r".*?\.a[:\[]([^\]:]+)", parts[0])  # GNU: "lib.a:x.c.o:", llvm: "lib.a[x.c.o]:"
        bad[name] = re.sub(r"\.o$", "", m.group(1)) if m else parts[0]
    if not bad:
        print("check_symbols: %s: all %d global symbols are BR_API or br__" % (lib, count))
        return 0
    # An archive's members are named by file name alone (two topk.c.o): the
    # object files, when given, name each symbol's source by its path.
    if objects:
        objs = sorted(glob.glob(os.path.join(objects, "**", "*.o"), recursive=True))
        if objs:
            for line in nm(nm_tool, ["-A", "--defined-only", "--extern-only"] + objs[:-1], objs[-1]).splitlines():
                parts = line.split()
                m = re.match(r"(.*?\.o):", parts[0]) if len(parts) >= 3 else None
                if m and parts[-1] in bad:
                    bad[parts[-1]] = re.sub(r"\.o$", "", os.path.relpath(m.group(1), objects))
    print("%d of the %d global symbols of %s are neither public (BR_API) nor br__:"
          % (len(bad), count, os.path.basename(lib)))
    print("\nby prefix:")
    by_prefix = collections.defaultdict(list)
    for s in bad:
        p = "br_ (not BR_API)" if s.startswith("br_") else prefix_of(s)
        by_prefix[p].append(s)
    for p in sorted(by_prefix, key=lambda p: (-len(by_prefix[p]), p)):
        print("  %s (%d): %s" % (p, len(by_prefix[p]), " ".join(sorted(by_prefix[p]))))
    print("\nby file:")
    by_file = collections.defaultdict(list)
    for s, f in bad.items():
        by_file[f].append(s)
    for f in sorted(by_file):
        print("  %s (%d): %s" % (f, len(by_file[f]), " ".join(sorted(by_file[f]))))
    return 1


def main(argv):
    ap = argparse.ArgumentParser(description="libbookrec's symbols against its public headers")
    ap.add_argument("check", choices=("exports", "prefix"))
    ap.add_argument("lib")
    ap.add_argument("headers")
    ap.add_argument("--nm", default="nm")
    ap.add_argument("--objects", help="prefix: the folder of the library's object files "
                    "(names each symbol's file by its source path)")
    a = ap.parse_args(argv[1:])
    nm_tool = a.nm or "nm"
    if a.check == "exports":
        return check_exports(a.lib, a.headers, nm_tool)
    return check_prefix(a.lib, a.headers, nm_tool, a.objects)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
