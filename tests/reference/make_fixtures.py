#!/usr/bin/env python3
"""(Re)write the committed reference fixtures, tests/reference/fixtures/<name>/.

For each tiny config in models/configs/ this builds a random checkpoint with
make_random_ckpt.py (fixed seed), picks fixed token ids, and writes

    config.json, model.safetensors   the checkpoint (HF layout)
    ids.json                         the text token ids, a JSON list of ints
    expected_logits.npy              reference logits [T, V], float32

so that the engine can be compared without NumPy.  The weight dtypes differ
per fixture (F32, BF16, F16) to cover every reader path and keep each
checkpoint around 600 KB.  test_reference.py regenerates expected_logits with
the reference and checks them against the committed files.

    python3 tests/reference/make_fixtures.py [--out DIR]
"""

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, HERE)
import hymba_ref  # noqa: E402
import make_random_ckpt  # noqa: E402

SOURCE_ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
FIXTURE_DIR = os.path.join(HERE, "fixtures")
T = 40  # crosses every tiny sliding window (8-16) plus meta tokens (4-8)

# name -> (weight seed, ids seed, dtype)
FIXTURES = {
    "tiny-hymba": (101, 201, "bf16"),
    "tiny-attn": (102, 202, "bf16"),
    "tiny-mamba": (103, 203, "f16"),
    "tiny-mixed": (104, 204, "bf16"),
    "tiny-swa": (105, 205, "f32"),
}


def fixture_ids(raw_config, ids_seed, length=T):
    return [int(t) for t in np.random.default_rng(ids_seed).integers(0, raw_config["vocab_size"], length)]


def make_fixture(name, out_root):
    seed, ids_seed, dtype = FIXTURES[name]
    with open(os.path.join(SOURCE_ROOT, "models", "configs", name + ".json")) as f:
        raw = json.load(f)
    out = os.path.join(out_root, name)
    os.makedirs(out, exist_ok=True)
    for stale in ("model.safetensors.index.json",):
        if os.path.exists(os.path.join(out, stale)):
            os.remove(os.path.join(out, stale))
    make_random_ckpt.make_random_ckpt(raw, out, seed=seed, dtype=dtype)
    ids = fixture_ids(raw, ids_seed)
    with open(os.path.join(out, "ids.json"), "w") as f:
        json.dump(ids, f)
        f.write("\n")
    logits = hymba_ref.forward(out, ids)
    np.save(os.path.join(out, "expected_logits.npy"), logits.astype(np.float32))
    size = os.path.getsize(os.path.join(out, "model.safetensors"))
    print(f"{name:12s} {dtype:5s} T={len(ids)} model.safetensors {size / 1024:.0f} KiB")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=FIXTURE_DIR)
    ap.add_argument("names", nargs="*", default=sorted(FIXTURES))
    args = ap.parse_args(argv)
    for name in args.names:
        make_fixture(name, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
