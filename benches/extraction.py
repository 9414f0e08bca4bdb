#!/usr/bin/env python3
"""Compare the names ksensor extracts with the names tshark extracts, per
capture and per kind (dns, tls, quic, http), on the bundled captures.

  benches/extraction.py [--ksensor PATH] [--json OUT] [--md OUT] [CAPTURE...]

Three sources per capture:
  truth   pcaps/expected/<capture>.tshark.txt: tshark, told what is on the
          wire where it needs to be (pcaps/make/expected.py HINTS)
  tshark  tshark by itself: the same command without those hints (what a
          tshark user gets)
  ksensor `ksensor replay --events - --all-names --workers 1 CAPTURE`

Counting, as tests/golden.rs compares:
  - tls, quic, http: occurrences (each ClientHello, each request head), as
    multisets of (kind, name);
  - dns: distinct names per capture (tshark lists every record owner of
    every message; ksensor reports questions, CNAME targets and owners).
Names are compared after normalising: lower case, no trailing dot, no HTTP
:port, no IPv6 brackets, and escapes decoded to bytes (tshark writes control
bytes as \\ooo octal and invalid UTF-8 as U+FFFD; ksensor's escapes \\xNN and
\\DDD are decoded and the bytes read as UTF-8 the same way).
"found" counts the truth names a source reported; "extra" counts names a
source reported that the truth does not have.
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PCAPS = os.path.join(ROOT, "pcaps")
sys.path.insert(0, os.path.join(PCAPS, "make"))
import expected  # noqa: E402  (pcaps/make/expected.py: the tshark command)

KINDS = ["dns", "tls", "quic", "http"]
# The kinds of miss, by capture; other captures are "earlier".
GROUPS = [
    ("TLS on any port, after upgrades", ["tls-starttls", "tls-ports", "tls-prefix"]),
    ("literal names", ["literal-names"]),
    ("odd DNS names", ["dns-odd"]),
    ("DNS beyond QUERY, cut messages", ["dns-opcodes", "dns-cut", "dns-snaplen", "dns-cut-tcp"]),
    ("QUIC variants, gQUIC", ["quic-variants", "quic-dcid", "gquic"]),
    ("link types", ["link-"]),
    ("TCP edge cases", ["tcp-fastopen", "tcp-midstream", "tcp-simopen"]),
]


def group_of(capture):
    for title, prefixes in GROUPS:
        if any(capture.startswith(p) for p in prefixes):
            return title
    return "earlier captures"


def unescape(name):
    """Bytes of a name written with \\xNN, \\DDD (decimal, RFC 1035 §5.1) or \\C escapes."""
    out = bytearray()
    i = 0
    while i < len(name):
        c = name[i]
        if c == "\\" and i + 1 < len(name):
            m = re.match(r"x([0-9a-fA-F]{2})", name[i + 1:i + 4])
            if m:
                out.append(int(m.group(1), 16))
                i += 4
                continue
            m = re.match(r"[0-9]{3}", name[i + 1:i + 4])
            if m:
                out.append(int(m.group(0)) & 0xFF)
                i += 4
                continue
            out += name[i + 1].encode()
            i += 2
            continue
        out += c.encode()
        i += 1
    return bytes(out)


def tshark_unescape(name):
    # tshark (epan/strutil.c format_text) writes control bytes as \ooo octal.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), name)


def normalise(kind, name, from_tshark):
    name = name.strip()
    if from_tshark:
        text = tshark_unescape(name)
    else:
        text = unescape(name).decode("utf-8", errors="replace")
    text = text.rstrip(".").lower()
    if kind == "http":
        m = re.match(r"^\[([0-9a-f:.]+)\](:\d+)?$", text)
        if m:
            return m.group(1)
        host, sep, port = text.rpartition(":")
        if sep and port.isdigit() and ":" not in host:
            return host
    if kind == "tls" or kind == "quic":
        m = re.match(r"^\[([0-9a-f:.]+)\]$", text)
        if m:
            return m.group(1)
    return text


def from_lines(lines, from_tshark):
    names = collections.Counter()
    for line in lines:
        if not line.strip():
            continue
        kind, _, name = line.partition(" ")
        names[(kind, normalise(kind, name, from_tshark))] += 1
    return names


def truth_names(capture):
    path = os.path.join(PCAPS, "expected", capture + ".tshark.txt")
    with open(path, encoding="utf-8", errors="replace") as f:
        return from_lines(f.read().splitlines(), True)


def tshark_names(capture):
    return from_lines(expected.names(os.path.join(PCAPS, capture), hints=False), True)


def ksensor_names(ksensor, capture):
    out = subprocess.run([ksensor, "replay", "--events", "-", "--all-names", "--workers", "1",
                          "--quiet", "--no-input-hash", os.path.join(PCAPS, capture)],
                         capture_output=True, text=True, check=True).stdout
    names = collections.Counter()
    for line in out.splitlines():
        e = json.loads(line)
        if e.get("name") is None or e.get("kind") not in KINDS:
            continue
        names[(e["kind"], normalise(e["kind"], e["name"], False))] += 1
    return names


def compare(truth, got, kind):
    """(truth count, found, extra) for one kind."""
    t = {n: c for (k, n), c in truth.items() if k == kind}
    g = {n: c for (k, n), c in got.items() if k == kind}
    if kind == "dns":
        ts, gs = set(t), set(g)
        return len(ts), len(ts & gs), len(gs - ts), sorted(ts - gs), sorted(gs - ts)
    total = sum(t.values())
    found = sum(min(c, g.get(n, 0)) for n, c in t.items())
    extra = sum(max(0, c - t.get(n, 0)) for n, c in g.items())
    missed = sorted(n for n, c in t.items() if g.get(n, 0) < c)
    extras = sorted(n for n, c in g.items() if c > t.get(n, 0))
    return total, found, extra, missed, extras


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ksensor", default=os.path.join(ROOT, "target", "release", "ksensor"))
    ap.add_argument("--json")
    ap.add_argument("--md")
    ap.add_argument("--verbose", action="store_true", help="list the names each source misses")
    ap.add_argument("captures", nargs="*")
    a = ap.parse_args()
    caps = a.captures or sorted(f for f in os.listdir(PCAPS)
                                if f.endswith(".pcap") or f.endswith(".pcapng"))
    rows = []
    for cap in caps:
        cap = os.path.basename(cap)
        truth = truth_names(cap)
        sources = {"tshark": tshark_names(cap), "ksensor": ksensor_names(a.ksensor, cap)}
        for kind in KINDS:
            row = {"capture": cap, "group": group_of(cap), "kind": kind}
            for src, got in sources.items():
                total, found, extra, missed, extras = compare(truth, got, kind)
                row["truth"] = total
                row[src] = found
                row[src + "_extra"] = extra
                row[src + "_missed"] = missed
                row[src + "_extras"] = extras
            if row["truth"] or row["ksensor_extra"] or row["tshark_extra"]:
                rows.append(row)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    md = render(rows, a.verbose)
    if a.md:
        with open(a.md, "w") as f:
            f.write(md)
    print(md)


def pct(n, d):
    return "%.1f%%" % (100.0 * n / d) if d else "-"


def render(rows, verbose):
    lines = ["| capture | kind | names (truth) | tshark alone | ksensor | ksensor missed | ksensor extra |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append("| %s | %s | %d | %d | %d | %d | %d |" % (
            r["capture"], r["kind"], r["truth"], r["tshark"], r["ksensor"],
            r["truth"] - r["ksensor"], r["ksensor_extra"]))
    lines += ["", "| group | kind | names (truth) | tshark alone | ksensor |", "|---|---|---:|---:|---:|"]
    groups = collections.OrderedDict()
    for title, _ in GROUPS + [("earlier captures", [])]:
        groups[title] = collections.defaultdict(lambda: [0, 0, 0])
    for r in rows:
        g = groups[r["group"]][r["kind"]]
        g[0] += r["truth"]
        g[1] += r["tshark"]
        g[2] += r["ksensor"]
    total = [0, 0, 0]
    new = [0, 0, 0]
    for title, kinds in groups.items():
        for kind in KINDS:
            if kind in kinds:
                t, s, k = kinds[kind]
                lines.append("| %s | %s | %d | %d (%s) | %d (%s) |" % (title, kind, t, s, pct(s, t), k, pct(k, t)))
                total = [x + y for x, y in zip(total, kinds[kind])]
                if title != "earlier captures":
                    new = [x + y for x, y in zip(new, kinds[kind])]
    lines.append("| **new captures** | all | %d | %d (%s) | %d (%s) |" % (new[0], new[1], pct(new[1], new[0]), new[2], pct(new[2], new[0])))
    lines.append("| **all captures** | all | %d | %d (%s) | %d (%s) |" % (total[0], total[1], pct(total[1], total[0]), total[2], pct(total[2], total[0])))
    if verbose:
        lines.append("")
        for r in rows:
            for src in ["ksensor", "tshark"]:
                if r[src + "_missed"] or r[src + "_extras"]:
                    lines.append("- %s %s %s: missed %s; extra %s" % (
                        r["capture"], r["kind"], src, r[src + "_missed"], r[src + "_extras"]))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
