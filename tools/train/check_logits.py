"""check_logits.py: cross-checks a checkpoint's logits between the PyTorch model
(hymba_torch, in float64 and float32) and the C engine (build/hymeval logits,
prefill and token-by-token decode).

    python3 tools/train/check_logits.py DIR [--hymeval build/hymeval]
        [--prompts TEXT ...] [--ids 1,2,3 ...] [--no-decode] [--tol 1e-4]
        [--device cpu|cuda ...] [--write-fixture DIR2]

The reference is the float64 PyTorch run r; every other run e is reported as
max|e - r| / max|r| per prompt. Exit status 1 if any exceeds --tol.
--write-fixture writes DIR2/ids.json {"prompts": [{"text": ..., "ids": [...],
"rows": [...]}]} and DIR2/logits_K.npy (the float64 logits of prompt K at those
rows, stored float32: --fixture-rows evenly spaced positions, the last always
among them, so the fixture stays small enough to commit), so a test without
torch can compare the C engine to them.
--sensitivity adds a column (not gated): how far float64 logits move under a
1e-7 relative weight perturbation. Some random checkpoints are ill-conditioned
(a few positions where an RMSNorm input is tiny); when that figure is near the
tolerance, an FP32 run failing it says nothing about the implementation.
"""
import argparse
import copy
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hymba_torch  # noqa: E402

# A short prompt, and a long one (several hundred tokens with the project's small
# tokenizer) that crosses every sliding window in models/configs.
_PARAGRAPH = ("The lighthouse keeper wrote down the weather every morning: wind from the north-west, "
              "a low grey sky, the sea running high against the rocks. On the {n}th day a ship "
              "appeared near the horizon, and the keeper counted {k} sails before the fog came in. ")
DEFAULT_PROMPTS = [
    "Hello world, this is a test.",
    "".join(_PARAGRAPH.format(n=n, k=3 + n % 5) for n in range(1, 9)),
]


def run(cmd):
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise SystemExit("command failed (%d): %s\n%s" % (out.returncode, " ".join(cmd), out.stderr))
    return out.stdout


def tokenize(hymeval, model_dir, text):
    return json.loads(run([hymeval, "tokenize", model_dir, "--", text]))


def engine_logits(hymeval, model_dir, ids, decode, device="cpu"):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "logits.npy")
        cmd = [hymeval, "logits", model_dir, "--ids", ",".join(map(str, ids)), "--out", path,
               "--precision", "fp32", "--device", device]
        run(cmd + (["--decode"] if decode else []))
        return np.load(path).astype(np.float64)


@torch.no_grad()
def torch_logits(model, ids):
    return model(torch.tensor([ids], dtype=torch.long))[0].to(torch.float64).numpy()


def rel_err(e, r):
    return float(np.abs(e - r).max() / np.abs(r).max())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", help="checkpoint directory (config.json, safetensors, tokenizer.json)")
    ap.add_argument("--hymeval", default="build/hymeval")
    ap.add_argument("--prompts", nargs="*", help="texts to tokenise (default: a short and a long built-in text)")
    ap.add_argument("--ids", action="append", default=[], help="a comma-separated id sequence (repeatable)")
    ap.add_argument("--no-decode", action="store_true", help="skip the engine's token-by-token run")
    ap.add_argument("--device", action="append", default=[], choices=["cpu", "cuda"],
                    help="engine backend(s) to check (repeatable; default cpu)")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--write-fixture", metavar="DIR2")
    ap.add_argument("--fixture-rows", type=int, default=24, help="positions kept per prompt in the fixture")
    ap.add_argument("--sensitivity", action="store_true",
                    help="also report how far the float64 logits move when every weight is scaled by "
                         "(1 + 1e-7 N(0,1)), i.e. FP32 storage precision: the floor any FP32 run can reach")
    args = ap.parse_args()

    prompts = [{"text": t, "ids": tokenize(args.hymeval, args.dir, t)} for t in
               (args.prompts if args.prompts is not None else ([] if args.ids else DEFAULT_PROMPTS))]
    prompts += [{"text": None, "ids": [int(x) for x in s.split(",") if x.strip()]} for s in args.ids]

    m32, _ = hymba_torch.load_hf(args.dir)
    m32.eval()
    m64 = copy.deepcopy(m32).double()
    if args.sensitivity:
        m64p = copy.deepcopy(m64)
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for prm in m64p.parameters():
                prm.mul_(1 + 1e-7 * torch.randn(prm.shape, generator=gen, dtype=prm.dtype))

    devices = args.device or ["cpu"]
    modes = [False] + ([] if args.no_decode else [True])
    runs = ["torch-fp32"] + ["%s-%s" % (d, "decode" if m else "prefill") for d in devices for m in modes]
    extra = ["(sensitivity)"] if args.sensitivity else []
    print("%-7s %6s  %s" % ("prompt", "tokens", "  ".join("%14s" % r for r in runs + extra)))
    worst = 0.0
    refs = []
    for k, p in enumerate(prompts):
        ids = p["ids"]
        ref = torch_logits(m64, ids)
        refs.append(ref)
        errs = [rel_err(torch_logits(m32, ids), ref)]
        errs += [rel_err(engine_logits(args.hymeval, args.dir, ids, m, d), ref) for d in devices for m in modes]
        worst = max([worst] + errs)
        info = [rel_err(torch_logits(m64p, ids), ref)] if args.sensitivity else []  # not gated
        print("%-7d %6d  %s" % (k, len(ids), "  ".join("%14.3e" % e for e in errs + info)))

    if args.write_fixture:
        os.makedirs(args.write_fixture, exist_ok=True)
        for k, (p, ref) in enumerate(zip(prompts, refs)):
            T = ref.shape[0]
            p["rows"] = sorted(set(np.linspace(0, T - 1, min(T, args.fixture_rows)).round().astype(int).tolist()))
            np.save(os.path.join(args.write_fixture, "logits_%d.npy" % k), ref[p["rows"]].astype(np.float32))
        h = hashlib.sha256()
        with open(os.path.join(args.dir, "model.safetensors"), "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        with open(os.path.join(args.write_fixture, "ids.json"), "w") as f:
            json.dump({"model_sha256": h.hexdigest(), "prompts": prompts}, f)
        print("fixture written to %s" % args.write_fixture)

    ok = worst <= args.tol
    print("max relative error %.3e (tolerance %.1e): %s" % (worst, args.tol, "ok" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
