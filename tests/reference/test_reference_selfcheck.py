#!/usr/bin/env python3
"""Self-checks of the NumPy reference (hymba_ref.py); no engine involved.

    python3 tests/reference/test_reference_selfcheck.py     (exit 0 = all pass)

1. safetensors reader: F32/F16/BF16 round trips, known BF16 bit patterns,
   sharded checkpoint == single file.
2. Sliding window: in an attention-only sliding-window model of L layers the
   last logits depend on text tokens at distance <= L*W and not beyond
   (bit-identical), and on a 1-layer model the edge is exactly q - k = W.
3. Causality: forward on a prefix == the first rows of the longer sequence.
4. GQA: a global-only model with nkv < nh equals the same model with its K/V
   heads (in_proj rows, bias, per-head k_norm) explicitly repeated to nh.
5. Sensitivity: plausible implementation mistakes (window off by one, meta
   not always visible, wrong RoPE pairing/base/positions, no /2, ...) change
   the logits by far more than the engine tolerance of 1e-5, so the engine
   comparison would catch them.  FP32 vs FP64 inv_freq is shown for scale.
6. Speed: a 4-layer hidden-64 model over 200 tokens.
Exit 77 if NumPy is missing.
"""

import json
import os
import sys
import tempfile
import time

try:
    import numpy as np
except ImportError as e:  # meson: 77 = skipped
    print(f"SKIP: NumPy not importable ({e})")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, HERE)
import hymba_ref as ref  # noqa: E402
import make_random_ckpt as mk  # noqa: E402

CONFIGS = os.path.join(os.environ.get("HYMEVAL_SOURCE_ROOT", os.path.join(HERE, "..", "..")),
                       "models", "configs")
FAILURES = []


def check(ok, what):
    print(f"  [{'ok' if ok else 'FAIL'}] {what}")
    if not ok:
        FAILURES.append(what)


def load_config(name):
    with open(os.path.join(CONFIGS, name + ".json")) as f:
        return json.load(f)


def build(raw, seed=0):
    """(Config, float64 weights) of a random model, in memory."""
    cfg = ref.Config(raw)
    return cfg, ref.to_float64(mk.random_weights(cfg, seed))


def rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# ---------------------------------------------------------------------------

def check_safetensors(tmp):
    print("1. safetensors reader")
    rng = np.random.default_rng(0)
    t = {"a": rng.normal(size=(3, 5)).astype(np.float32), "b": rng.normal(size=(7,)).astype(np.float32)}
    for dtype in ("f32", "f16", "bf16"):
        p = os.path.join(tmp, f"rt_{dtype}.safetensors")
        mk.write_safetensors(p, t, dtype)
        back = ref.read_safetensors(p)
        if dtype == "f32":
            ok = all(np.array_equal(back[k], t[k]) for k in t)
        elif dtype == "f16":
            ok = all(np.array_equal(back[k], t[k].astype(np.float16)) for k in t)
        else:
            ok = all(np.max(np.abs(back[k] - t[k]) / np.abs(t[k])) <= 2.0 ** -8 for k in t)
        check(ok and back["a"].shape == (3, 5), f"{dtype} round trip")
    known = {0x3F80: 1.0, 0xC000: -2.0, 0x4049: 3.140625, 0x0000: 0.0, 0x3E00: 0.125}
    got = ref.bf16_bits_to_float32(np.array(list(known), dtype=np.uint16))
    check(np.array_equal(got, np.array(list(known.values()), dtype=np.float32)), "BF16 known bit patterns")
    # round to nearest even at the tie: 1 + 2^-8 is halfway between 1 and 1 + 2^-7
    bits = mk.float32_to_bf16_bits(np.array([1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8], np.float32))
    check(list(bits) == [0x3F80, 0x3F82], "BF16 writer rounds to nearest even")

    raw = load_config("tiny-mixed")
    single, sharded = os.path.join(tmp, "single"), os.path.join(tmp, "sharded")
    mk.make_random_ckpt(raw, single, seed=3, dtype="bf16")
    mk.make_random_ckpt(raw, sharded, seed=3, dtype="bf16", shards=3)
    a, b = ref.load_weights(single), ref.load_weights(sharded)
    check(a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a),
          "3-shard checkpoint (index.json) == single file")
    ids = [5, 17, 300, 2, 999]
    check(np.array_equal(ref.forward(single, ids), ref.forward(sharded, ids)), "forward identical on both")


def check_window():
    print("2. sliding-window visibility")
    raw = load_config("tiny-swa")  # attention-only, every layer sliding window
    W, M = raw["sliding_window"], raw["num_memory_tokens"]
    rng = np.random.default_rng(1)
    T = 60
    ids = rng.integers(0, raw["vocab_size"], T)
    for L in (1, raw["num_hidden_layers"]):
        r = dict(raw, num_hidden_layers=L, layer_type=raw["layer_type"][:L])
        cfg, w = build(r, seed=2)
        base = ref.forward_model(cfg, w, ids)[-1]
        reach = L * W  # receptive field in text tokens back from the last one
        for dist, must_change in ((reach + 1, False), (reach + 7, False), (reach, True), (reach - 1, True)):
            mod = ids.copy()
            mod[T - 1 - dist] = (mod[T - 1 - dist] + 1) % raw["vocab_size"]
            diff = float(np.max(np.abs(ref.forward_model(cfg, w, mod)[-1] - base)))
            if must_change:
                check(diff > 1e-6, f"L={L} W={W} M={M}: token at distance {dist} changes the last logits ({diff:.2e})")
            else:
                check(diff == 0.0, f"L={L} W={W} M={M}: token at distance {dist} leaves them bit-identical")
    # the rule itself, on a small case
    vis = ref.visible_mask(10, 2, 3)
    check(vis[9].tolist() == [True, True] + [False] * 4 + [True] * 4, "mask row: meta + q-W..q")


def check_causality():
    print("3. causality (prefix == first rows)")
    rng = np.random.default_rng(2)
    for name in ("tiny-hymba", "tiny-mixed", "tiny-mamba", "tiny-attn", "tiny-swa"):
        raw = load_config(name)
        cfg, w = build(raw, seed=4)
        ids = rng.integers(0, raw["vocab_size"], 70)
        full = ref.forward_model(cfg, w, ids)
        worst = max(rel(ref.forward_model(cfg, w, ids[:n]), full[:n]) for n in (1, 9, 23, 50))
        check(worst < 1e-12, f"{name}: prefixes 1/9/23/50 of 70 (max rel {worst:.1e})")


def expand_kv_heads(cfg, raw, w):
    """Same model with num_key_value_heads = nh (K/V heads repeated)."""
    g = cfg.nh // cfg.nkv
    raw2 = dict(raw, num_key_value_heads=cfg.nh)
    cfg2 = ref.Config(raw2)
    w2 = dict(w)
    for i in range(cfg.L):
        if not cfg.produces_kv(i):
            continue
        p = f"model.layers.{i}."
        split = cfg.in_proj_split(i)
        names = [n for n, _ in split]
        offs = np.cumsum([0] + [n for _, n in split])
        head_of = np.arange(cfg.nh) // g

        def expand_rows(mat):
            parts = {n: mat[offs[j]:offs[j + 1]] for j, n in enumerate(names)}
            for n, d in (("k", cfg.dk), ("v", cfg.dv)):
                heads = parts[n].reshape((cfg.nkv, d) + parts[n].shape[1:])
                parts[n] = heads[head_of].reshape((cfg.nh * d,) + parts[n].shape[1:])
            return np.concatenate([parts[n] for n in names], axis=0)

        w2[p + "mamba.in_proj.weight"] = expand_rows(w[p + "mamba.in_proj.weight"])
        if cfg.proj_bias:
            w2[p + "mamba.in_proj.bias"] = expand_rows(w[p + "mamba.in_proj.bias"])
        if cfg.kq_norm == "perhead-rms":
            kn = w[p + "mamba.self_attn.k_norm.weight"]
            w2[p + "mamba.self_attn.k_norm.weight"] = kn[:, head_of]
    return cfg2, w2


def check_gqa():
    print("4. GQA == explicitly repeated K/V heads (global-only models)")
    rng = np.random.default_rng(3)
    for name in ("tiny-attn", "tiny-mixed", "tiny-hymba"):
        raw = dict(load_config(name), sliding_window=None)
        cfg, w = build(raw, seed=5)
        cfg2, w2 = expand_kv_heads(cfg, raw, w)
        ids = rng.integers(0, raw["vocab_size"], 50)
        r = rel(ref.forward_model(cfg2, w2, ids), ref.forward_model(cfg, w, ids))
        check(cfg.nkv < cfg.nh and r < 1e-12,
              f"{name} (nh={cfg.nh}, nkv={cfg.nkv}, kq_norm={cfg.kq_norm}): max rel {r:.1e}")


class Patch:
    """Temporarily replace attributes of the reference module or a config."""

    def __init__(self, obj, **attrs):
        self.obj, self.attrs, self.saved = obj, attrs, {}

    def __enter__(self):
        for k, v in self.attrs.items():
            self.saved[k] = getattr(self.obj, k)
            setattr(self.obj, k, v)

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            setattr(self.obj, k, v)


def check_sensitivity():
    print("5. sensitivity of the comparison (mutated reference vs reference, T=100)")
    rng = np.random.default_rng(4)
    orig = {n: getattr(ref, n) for n in ("visible_mask", "causal_conv")}

    def mask_window_minus_one(S, M, W):
        return orig["visible_mask"](S, M, None if W is None else W - 1)

    def mask_no_meta(S, M, W):
        return orig["visible_mask"](S, 0, W)

    def rope_interleaved(x, cos, sin):
        x1, x2 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2], out[..., 1::2] = x1 * cos - x2 * sin, x2 * cos + x1 * sin
        return out

    def inv_freq_f64(cfg):
        return 1.0 / ref.rope_base(cfg) ** (np.arange(0, cfg.dk, 2) / cfg.dk)

    def conv_meta_hidden(cfg, lw, x):  # conv restarting at the first text token
        out = orig["causal_conv"](cfg, lw, x)
        out[cfg.M:] = orig["causal_conv"](cfg, lw, x[cfg.M:])
        return out

    def positions_text_from_zero(cfg, S):
        return np.concatenate([np.arange(cfg.M), np.arange(S - cfg.M)])

    def fuse_sum(branches):
        return sum(branches)

    raw_h = load_config("tiny-hymba")
    raw_s = load_config("tiny-swa")
    raw_m = load_config("tiny-mixed")
    for label, raw, patch_fn, must in (
        ("window W-1 instead of W", raw_s, lambda: Patch(ref, visible_mask=mask_window_minus_one), True),
        ("meta tokens not always visible", raw_s, lambda: Patch(ref, visible_mask=mask_no_meta), True),
        ("interleaved RoPE pairing", raw_h, lambda: Patch(ref, apply_rope=rope_interleaved), True),
        ("rope_type default instead of ntk", raw_h, "rope_default", True),
        ("text positions restart at 0 after the meta tokens", raw_h,
         lambda: Patch(ref, sequence_positions=positions_text_from_zero), True),
        ("branches summed instead of averaged", raw_h, lambda: Patch(ref, fuse_branches=fuse_sum), True),
        ("KV consumer reads the wrong producer (layer 0)", raw_h, "wrong_producer", True),
        ("conv does not see the meta tokens", raw_h, lambda: Patch(ref, causal_conv=conv_meta_hidden), True),
        ("per-head kq norm weights of head 0 for all", raw_m, "perhead_shared", True),
        ("inv_freq in FP64 instead of FP32 (for scale)", raw_h, lambda: Patch(ref, rope_inv_freq=inv_freq_f64), False),
    ):
        cfg, w = build(raw, seed=6)
        ids = rng.integers(0, raw["vocab_size"], 100)
        base = ref.forward_model(cfg, w, ids)
        if patch_fn == "rope_default":
            cfg2, w2 = ref.Config(dict(raw, rope_type="default")), w
            got = ref.forward_model(cfg2, w2, ids)
        elif patch_fn == "wrong_producer":
            cfg2 = ref.Config(raw)
            cfg2.kv_producer = [0 if p != i else p for i, p in enumerate(cfg2.kv_producer)]
            got = ref.forward_model(cfg2, w, ids)
        elif patch_fn == "perhead_shared":
            w2 = dict(w)
            for k in w:
                if k.endswith("q_norm.weight") or k.endswith("k_norm.weight"):
                    w2[k] = np.broadcast_to(w[k][:, :1], w[k].shape).copy()
            got = ref.forward_model(cfg, w2, ids)
        else:
            with patch_fn():
                got = ref.forward_model(cfg, w, ids)
        r = rel(got, base)
        if must:
            check(r > 1e-4, f"{label}: max rel change {r:.2e} (must be >> 1e-5)")
        else:
            print(f"  [info] {label}: max rel change {r:.2e}")


def check_speed():
    print("6. speed")
    raw = load_config("tiny-hymba")
    with tempfile.TemporaryDirectory() as tmp:
        mk.make_random_ckpt(raw, tmp, seed=0)
        ids = np.random.default_rng(5).integers(0, raw["vocab_size"], 200)
        t0 = time.perf_counter()
        logits = ref.forward(tmp, ids)
        dt = time.perf_counter() - t0
    check(logits.shape == (200, raw["vocab_size"]) and np.all(np.isfinite(logits)),
          f"tiny-hymba (4 layers, H=64), 200 tokens incl. load: {dt:.3f} s")
    check(dt < 5.0, "well under a few seconds")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        check_safetensors(tmp)
    check_window()
    check_causality()
    check_gqa()
    check_sensitivity()
    check_speed()
    print()
    if FAILURES:
        print(f"{len(FAILURES)} self-check(s) FAILED")
        return 1
    print("all self-checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
