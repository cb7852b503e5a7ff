#!/usr/bin/env python3
"""mix.py: one training file from several data.py files.

usage: mix.py --out MIX.npz A.npz[:N] B.npz[:N] ...
Sequences are taken in order (the first N of a file when :N is given), files
one after the other. train.py holds out the first --heldout sequences, so the
first file supplies the held-out set: put the data whose progress matters
most first. Seeds and lengths of the parts are kept as lists.
"""
import argparse

import numpy as np


def part(spec):
    """(tokens, offsets, answer_start, lengths, seed) of `path[:count]`."""
    path, _, count = spec.partition(":")
    data = np.load(path)
    offsets, starts = data["offsets"], data["answer_start"]
    n = len(starts) if not count else min(int(count), len(starts))
    tokens = data["tokens"][:offsets[n]]
    return tokens, offsets[:n + 1], starts[:n], str(data["lengths"]), int(data["seed"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("parts", nargs="+", metavar="FILE[:N]")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    tokens, offsets, starts, lengths, seeds, base = [], [np.zeros(1, np.int64)], [], [], [], 0
    for spec in args.parts:
        t, o, s, length, seed = part(spec)
        if len(o) > 1 and (o[0] != 0 or np.any(np.diff(o) <= 0)):
            raise SystemExit("%s: offsets are not increasing from 0" % spec)
        tokens.append(t.astype(np.int32))
        offsets.append(o[1:].astype(np.int64) + base)
        starts.append(s.astype(np.int64))  # answer_start is relative to its sequence
        lengths.append(length)
        seeds.append(seed)
        base += int(o[-1])
        print("%s: %d sequences, %d tokens" % (spec, len(s), int(o[-1])))
    flat, starts = np.concatenate(tokens), np.concatenate(starts)
    np.savez_compressed(args.out, tokens=flat.astype(np.uint16 if flat.max() < 65536 else np.int32),
                        offsets=np.concatenate(offsets), answer_start=starts,
                        lengths=np.array(";".join(lengths)), seed=np.array(seeds[0]))
    print("wrote %d sequences, %d tokens to %s" % (len(starts), len(flat), args.out))


if __name__ == "__main__":
    main()
