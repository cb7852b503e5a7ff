#!/usr/bin/env python3
"""niah_errors.py: how NIAH answers fail, from hymeval's samples.jsonl.

usage: niah_errors.py RUN_DIR_OR_SAMPLES [...]
Per task and length: exact (the needle's number first in the answer), a
permutation of its digits, the share of digits in the right place, and
accuracy by the needle's distance from the prompt's end (tokens, binned by
128: beyond a 256-token sliding window only global layers can reach it).
"""
import collections
import json
import os
import re
import sys


def first_number(text, width):
    m = re.search(r"\d{%d}" % width, text)
    return m.group(0) if m else ""


def main():
    for arg in sys.argv[1:]:
        path = os.path.join(arg, "samples.jsonl") if os.path.isdir(arg) else arg
        cells = collections.defaultdict(lambda: [0, 0, 0, 0.0])  # n, exact, permutation, digits in place
        by_dist = collections.defaultdict(lambda: [0, 0])
        with open(path, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                if r.get("kind") != "niah" or not r.get("targets"):
                    continue
                want = r["targets"][0]
                got = first_number(r.get("prediction", ""), len(want))
                c = cells[(r["task"], r["target_tokens"])]
                c[0] += 1
                c[1] += got == want
                c[2] += got != want and sorted(got) == sorted(want)
                c[3] += sum(a == b for a, b in zip(got, want)) / len(want)
                if "needle_token_pos" in r:
                    dist = r["prompt_tokens"] - r["needle_token_pos"]
                    d = by_dist[min(dist // 128, 16)]
                    d[0] += 1
                    d[1] += r["scores"].get("string_match_all", 0)
        print(path)
        print("  %-18s %6s %4s %7s %11s %15s" % ("task", "length", "n", "exact", "permutation", "digits in place"))
        for (task, length), (n, ex, perm, place) in sorted(cells.items()):
            print("  %-18s %6d %4d %6.1f%% %10.1f%% %14.1f%%" % (task, length, n, 100 * ex / n, 100 * perm / n,
                                                             100 * place / n))
        print("  accuracy by needle distance from the prompt's end (tokens):")
        for b, (n, ok) in sorted(by_dist.items()):
            lo = b * 128
            label = "%d-%d" % (lo, lo + 127) if b < 16 else ">=%d" % lo
            print("    %-10s %4d examples %6.1f%%" % (label, n, 100 * ok / n))


if __name__ == "__main__":
    main()
