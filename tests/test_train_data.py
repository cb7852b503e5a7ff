#!/usr/bin/env python3
"""tools/train/data.py: the training sequences of the project's model.

Checks, on a small draw (NIAH single_1, single_2, multikey_1 at 256/512/1024
tokens): the answer mask marks exactly the answer (the tokens from
answer_start decode to the targets and the newline); the same seed gives
the same bytes; with --far 256 every needle lies more than 256 tokens before
the end of its prompt (out of reach of a 256-token sliding window), the
lengths where no depth fits are left out, and the counts follow the depth
grid; without --far the random depths put some needles inside that window
(so the --far check can fail).
"""
import json
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
from tokenizers import Tokenizer

BIN = os.path.abspath(os.environ.get("HYMEVAL_BIN", "build/hymeval"))
ROOT = os.environ.get("HYMEVAL_SOURCE_ROOT", ".")
DATA_PY = os.path.join(ROOT, "tools", "train", "data.py")
TOKENIZER = os.path.join(ROOT, "models", "default")  # the trained model's own 4096-piece tokenizer
ONLY = "single_1,single_2,multikey_1"
WINDOW = 256

results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'pass' if ok else 'FAIL'}  {name}" + (f"  ({detail})" if detail and not ok else ""))


def make(work, *extra):
    out = os.path.join(work, "train.npz")
    p = subprocess.run([sys.executable, DATA_PY, "--hymeval", BIN, "--tokenizer", TOKENIZER, "--work", work,
                        "--out", out, "--scale", "1", "--lengths", "256,512,1024", "--only", ONLY, *extra],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        print(p.stdout + p.stderr)
    return out if p.returncode == 0 else None


def needle_distances(work, tok):
    """(target length, tokens from the needle's value to the prompt's end) of
    every generated example: the value's first occurrence is the needle (the
    question names the key, never the value)."""
    rows = []
    for path in sorted(glob.glob(os.path.join(work, "examples_*.jsonl"))):
        for line in open(path, encoding="utf-8"):
            r = json.loads(line)
            at = r["prompt"].find(r["targets"][0])
            rows.append((r["target_tokens"], len(tok.encode(r["prompt"][at:], add_special_tokens=False).ids)))
    return rows


def main():
    tok = Tokenizer.from_file(os.path.join(TOKENIZER, "tokenizer.json"))
    with tempfile.TemporaryDirectory() as tmp:
        plain, far = os.path.join(tmp, "plain"), os.path.join(tmp, "far")
        out = make(plain)
        check("data.py writes the sequences", out is not None)
        if out is None:
            return finish()
        d = np.load(out)
        offsets, starts = d["offsets"], d["answer_start"]
        tokens = d["tokens"].astype(np.int64)
        answers = {", ".join(json.loads(line)["targets"]) for path in glob.glob(os.path.join(plain, "examples_*"))
                   for line in open(path, encoding="utf-8")}
        ok, bad = 0, ""
        for i in range(len(starts)):
            seq = tokens[offsets[i]:offsets[i + 1]].tolist()
            answer = tok.decode(seq[starts[i]:])
            if answer.endswith(".\n") and answer.strip()[:-1] in answers and len(seq) > starts[i] > 1:
                ok += 1
            elif not bad:
                bad = repr(answer)
        check("every answer mask covers exactly an example's targets, '.' and the newline",
              len(starts) > 0 and ok == len(starts), bad)
        again = make(os.path.join(tmp, "again"))
        check("the same seed gives the same bytes",
              again is not None and all(np.array_equal(d[k], np.load(again)[k]) for k in d.files))

        near = [n for _, n in needle_distances(plain, tok) if n <= WINDOW]
        check("random depths put some needles inside the last 256 tokens", len(near) > 0)

        out = make(far, "--far", str(WINDOW))
        check("data.py --far writes the sequences", out is not None)
        if out is None:
            return finish()
        rows = needle_distances(far, tok)
        worst = min(n for _, n in rows)
        check("--far 256: every needle more than 256 tokens before the prompt's end", worst > WINDOW, f"{worst}")
        check("--far 256: no 256-token examples (no depth leaves the window behind)",
              rows and all(length >= 512 for length, _ in rows))
        # per variant and length: a whole number of grids of depths 0, 5, ... up to
        # 100 * (1 - (256 + 32) / length): 0-40 at 512 (9), 0-70 at 1024 (15)
        per = {}
        for path in glob.glob(os.path.join(far, "examples_*.jsonl")):
            for line in open(path, encoding="utf-8"):
                r = json.loads(line)
                key = (r["task"].split("_far")[0], r["target_tokens"])
                per[key] = per.get(key, 0) + 1
        check("--far 256: whole grids of 9 depths at 512 and 15 at 1024",
              per and all(n % {512: 9, 1024: 15}[length] == 0 for (_, length), n in per.items()), str(per))
    return finish()


def finish():
    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
