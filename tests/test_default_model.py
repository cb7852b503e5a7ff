#!/usr/bin/env python3
"""The shipped models/default against the PyTorch float64 logits recorded when it
was trained (tools/train/check_logits.py --write-fixture, kept in
tests/fixtures/default_model/): the C engine's FP32 prefill and token-by-token
decode must agree to 1e-4 relative (max|e - r| / max|r| over the recorded rows).

The PyTorch model (tools/train/hymba_torch.py) is an independent implementation
written from docs/ARCHITECTURE.md, so this is the CPU leg of issue 6's three-way
check, runnable where torch is not installed. The fixture names the checkpoint
it belongs to by the SHA-256 of model.safetensors; shipping a new model without
a new fixture fails here, by name."""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.environ.get("HYMEVAL_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("HYMEVAL_BIN", os.path.join(ROOT, "build", "hymeval"))
MODEL = os.path.join(ROOT, "models", "default")
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "default_model")
TOL = 1e-4

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print("ok   " + what)
    else:
        failed += 1
        print("FAIL " + what)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def engine_logits(ids, decode):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "logits.npy")
        cmd = [BIN, "logits", MODEL, "--ids", ",".join(map(str, ids)), "--out", out, "--precision", "fp32"]
        subprocess.run(cmd + (["--decode"] if decode else []), check=True, capture_output=True)
        return np.load(out).astype(np.float64)


def main():
    meta = json.load(open(os.path.join(FIXTURE, "ids.json")))
    got_sha = sha256(os.path.join(MODEL, "model.safetensors"))
    check(meta.get("model_sha256") == got_sha,
          "fixture belongs to the shipped models/default/model.safetensors (sha256 %s..., fixture says %s...)"
          % (got_sha[:12], str(meta.get("model_sha256"))[:12]))
    for k, p in enumerate(meta["prompts"]):
        ids, rows = p["ids"], p["rows"]
        ref = np.load(os.path.join(FIXTURE, "logits_%d.npy" % k)).astype(np.float64)
        check(ref.shape == (len(rows), ref.shape[1]) and np.isfinite(ref).all() and np.abs(ref).max() > 0,
              "prompt %d: fixture has %d finite, non-zero rows" % (k, len(rows)))
        if p.get("text") is not None:
            # the C tokenizer must give the ids the `tokenizers` library gave at fixture time
            r = subprocess.run([BIN, "tokenize", MODEL, "--", p["text"]], capture_output=True, text=True, check=True)
            check(json.loads(r.stdout) == ids, "prompt %d: hymeval tokenize == recorded ids (%d tokens)" % (k, len(ids)))
        for decode in (False, True):
            got = engine_logits(ids, decode)
            check(got.shape[0] == len(ids), "prompt %d: %d logit rows" % (k, len(ids)))
            sel = got[rows]
            err = float(np.abs(sel - ref).max() / np.abs(ref).max()) if np.isfinite(sel).all() else float("nan")
            check(err < TOL, "prompt %d %s: max relative error %.3e < %.0e over %d rows"
                  % (k, "decode" if decode else "prefill", err, TOL, len(rows)))
            # greedy choices are what generation uses: they must match exactly, not only nearly
            if not decode and p.get("text") is not None:
                agree = float(np.mean(sel.argmax(1) == ref.argmax(1)))
                check(agree == 1.0, "prompt %d: argmax agrees with PyTorch at every recorded row (%.2f)" % (k, agree))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
