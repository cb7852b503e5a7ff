#!/usr/bin/env python3
"""Independent float64 NumPy reference of the Hymba forward pass.

Written only from docs/ARCHITECTURE.md (section numbers below refer to it);
it shares no code with the C engine.  The only dependency is NumPy.

    forward(ckpt_dir, ids) -> logits [T, V] float64 (text positions only)

CLI:
    python3 hymba_ref.py CKPT_DIR --ids 1,2,3 --out logits.npy [--float32]

Everything is computed in float64 except RoPE's inv_freq, which the
specification (§2.1 step 3) computes in FP32 as the official code does; those
FP32 values are then used as float64 to form angles, cos and sin.
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np


# ---------------------------------------------------------------------------
# safetensors (pure NumPy reader)
# ---------------------------------------------------------------------------

_NUMPY_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}


def bf16_bits_to_float32(bits):
    """BF16 is the high half of an FP32: shift the 16 bits into the top."""
    bits = np.asarray(bits, dtype=np.uint16)
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def read_safetensors(path):
    """Return {name: ndarray} for one .safetensors file.

    Layout: 8-byte little-endian header length n, n bytes of JSON header
    {name: {dtype, shape, data_offsets: [begin, end]}} (offsets relative to
    the first byte after the header), then the raw little-endian data.
    BF16 tensors come back as float32 (exact); others in their own dtype.
    """
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError(f"{path}: header length {n} past end of file")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = memoryview(blob)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape = info["dtype"], tuple(info["shape"])
        begin, end = info["data_offsets"]
        if not (0 <= begin <= end <= len(data)):
            raise ValueError(f"{path}: {name}: data_offsets out of range")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        raw = data[begin:end]
        if dtype == "BF16":
            if end - begin != 2 * count:
                raise ValueError(f"{path}: {name}: size mismatch")
            arr = bf16_bits_to_float32(np.frombuffer(raw, dtype="<u2"))
        elif dtype in _NUMPY_DTYPES:
            npdt = _NUMPY_DTYPES[dtype]
            if end - begin != npdt.itemsize * count:
                raise ValueError(f"{path}: {name}: size mismatch")
            arr = np.frombuffer(raw, dtype=npdt).copy()
        else:
            raise ValueError(f"{path}: {name}: unsupported dtype {dtype}")
        out[name] = arr.reshape(shape)
    return out


def load_weights(ckpt_dir):
    """All tensors of a checkpoint directory (single file or index + shards)."""
    index = os.path.join(ckpt_dir, "model.safetensors.index.json")
    single = os.path.join(ckpt_dir, "model.safetensors")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        weights = {}
        for shard in sorted(set(weight_map.values())):
            tensors = read_safetensors(os.path.join(ckpt_dir, shard))
            for name, arr in tensors.items():
                if weight_map.get(name) == shard:
                    weights[name] = arr
        missing = set(weight_map) - set(weights)
        if missing:
            raise ValueError(f"index names tensors absent from shards: {sorted(missing)[:5]}")
        return weights
    if os.path.exists(single):
        return read_safetensors(single)
    raise FileNotFoundError(f"{ckpt_dir}: no model.safetensors(.index.json)")


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------

class Config:
    """The config.json fields the forward pass needs, with derived sizes."""

    def __init__(self, raw):
        self.raw = raw
        g = raw.get
        self.H = int(raw["hidden_size"])
        self.L = int(raw["num_hidden_layers"])
        self.nh = int(raw["num_attention_heads"])
        self.nkv = int(g("num_key_value_heads") or self.nh)
        self.V = int(raw["vocab_size"])
        self.eps = float(g("rms_norm_eps", 1e-6))
        self.dk = self.H // self.nh
        self.I = int(g("mamba_expand", 2)) * self.H
        self.dv = self.I // self.nh
        self.N = int(g("mamba_d_state", 16))
        dt_rank = g("mamba_dt_rank", "auto")
        self.R = math.ceil(self.H / 16) if dt_rank == "auto" else int(dt_rank)
        self.K = int(g("mamba_d_conv", 4))
        self.M = int(g("num_memory_tokens", 0) or 0)
        self.W = g("sliding_window")
        self.F = int(g("intermediate_size", 0) or 0)
        self.mlp_act = g("mlp_hidden_act", "silu")
        self.tied = bool(g("tie_word_embeddings", True))
        self.kq_norm = g("kq_norm") or "none"
        self.proj_bias = bool(g("mamba_proj_bias", False))
        self.conv_bias = bool(g("mamba_conv_bias", True))
        self.inner_norms = bool(g("mamba_inner_layernorms", False))
        self.rope = bool(g("rope", False))
        self.rope_type = g("rope_type") or "default"
        self.rope_theta = float(g("rope_theta", 10000.0))
        self.max_pos = g("max_position_embeddings")
        self.orig_max_pos = g("orig_max_position_embeddings")

        self.layer_type = list(g("layer_type") or ["h"] * self.L)
        if len(self.layer_type) != self.L:
            raise ValueError("layer_type length != num_hidden_layers")
        for t in self.layer_type:
            if t not in ("h", "a", "m"):
                raise ValueError(f"unknown layer type {t!r}")

        # global vs sliding-window (§2.1 step 7)
        if self.W is None:
            self.is_global = [True] * self.L
        else:
            self.W = int(self.W)
            glob = set(g("global_attn_idx") or [])
            self.is_global = [i in glob for i in range(self.L)]

        # KV sharing: producer[i] is the layer whose K/V layer i uses
        self.kv_producer = list(range(self.L))
        for group in g("kv_reuse_group") or []:
            for consumer in group[1:]:
                self.kv_producer[consumer] = group[0]
        for i, p in enumerate(self.kv_producer):
            if p != i:
                if p > i:
                    raise ValueError(f"layer {i} consumes KV of later layer {p}")
                for j in (i, p):
                    if self.layer_type[j] == "m":
                        raise ValueError(f"KV-sharing layer {j} has no attention")

        if self.nh % self.nkv:
            raise ValueError("num_attention_heads not a multiple of num_key_value_heads")
        if self.kq_norm not in ("none", "rms", "perhead-rms"):
            raise ValueError(f"unsupported kq_norm {self.kq_norm!r}")
        if self.rope and self.rope_type not in ("default", "ntk"):
            raise ValueError(f"unsupported rope_type {self.rope_type!r}")
        if self.mlp_act not in ("silu", "relu2"):
            raise ValueError(f"unsupported mlp_hidden_act {self.mlp_act!r}")

    def has_attn(self, i):
        return self.layer_type[i] in ("h", "a")

    def has_ssm(self, i):
        return self.layer_type[i] in ("h", "m")

    def produces_kv(self, i):
        return self.has_attn(i) and self.kv_producer[i] == i

    def in_proj_split(self, i):
        """[(name, rows)] of in_proj for layer i, in order (§2, §4)."""
        parts = []
        if self.has_attn(i):
            parts.append(("q", self.nh * self.dk))
            if self.produces_kv(i):
                parts += [("k", self.nkv * self.dk), ("v", self.nkv * self.dv)]
        if self.has_ssm(i):
            parts += [("x", self.I), ("z", self.I)]
        return parts


def load_config(ckpt_dir):
    with open(os.path.join(ckpt_dir, "config.json")) as f:
        return Config(json.load(f))


# ---------------------------------------------------------------------------
# Elementary functions
# ---------------------------------------------------------------------------

def rms_norm(x, w, eps):
    """w * x / sqrt(mean(x^2) + eps) over the last axis."""
    return w * x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)


def silu(x):
    return x / (1.0 + np.exp(-x))


def softplus(y):
    """log(1 + e^y), and y itself above 20 (§2.2 step 3)."""
    return np.where(y > 20.0, y, np.log1p(np.exp(np.minimum(y, 20.0))))


# ---------------------------------------------------------------------------
# RoPE (§2.1 step 3)
# ---------------------------------------------------------------------------

def rope_base(cfg):
    if cfg.rope_type == "ntk":
        scale = 2.0 * float(cfg.max_pos) / float(cfg.orig_max_pos) - 1.0
        return cfg.rope_theta * scale ** (cfg.dk / (cfg.dk - 2))
    return cfg.rope_theta


def rope_inv_freq(cfg):
    """1 / base^(2i/dk) in FP32 (returned as float64 values)."""
    dk = cfg.dk
    expo = np.arange(0, dk, 2).astype(np.float32) / np.float32(dk)
    denom = np.power(np.float32(rope_base(cfg)), expo, dtype=np.float32)
    inv = (np.float32(1.0) / denom).astype(np.float32)
    return inv.astype(np.float64)


def rope_cos_sin(cfg, positions):
    """cos/sin [S, dk/2] in float64 from the FP32 inv_freq."""
    angles = np.asarray(positions, dtype=np.float64)[:, None] * rope_inv_freq(cfg)[None, :]
    return np.cos(angles), np.sin(angles)


def apply_rope(x, cos, sin):
    """Rotate-half pairing on x [heads, S, dk]: (i, i + dk/2)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


# ---------------------------------------------------------------------------
# Attention branch (§2.1)
# ---------------------------------------------------------------------------

def visible_mask(S, M, W):
    """[S, S] bool, True where key k is visible to query q.

    k <= q, and for a sliding-window layer (W not None) also
    (q - k <= W or k < M): meta tokens are always visible.
    """
    q = np.arange(S)[:, None]
    k = np.arange(S)[None, :]
    vis = k <= q
    if W is not None:
        vis &= (q - k <= W) | (k < M)
    return vis


def split_heads(x, heads):
    """[S, heads*d] -> [heads, S, d]."""
    S = x.shape[0]
    return x.reshape(S, heads, -1).transpose(1, 0, 2)


def kq_normalise(cfg, x, w):
    """RMS-normalise each head vector of x [heads, S, dk] (§2.1 step 2)."""
    if cfg.kq_norm == "rms":
        return rms_norm(x, w.reshape(1, 1, -1), cfg.eps)
    # perhead-rms: weight [1, heads, 1, dk] -> one row per head
    return rms_norm(x, w.reshape(x.shape[0], 1, -1), cfg.eps)


def attention_qkv(cfg, lw, i, parts, positions, kv_store):
    """Rotated q [nh,S,dk] and this layer's (possibly shared) k, v."""
    q = split_heads(parts["q"], cfg.nh)
    if cfg.kq_norm != "none":
        q = kq_normalise(cfg, q, lw("mamba.self_attn.q_norm.weight"))
    if cfg.rope:
        cos, sin = rope_cos_sin(cfg, positions)
        q = apply_rope(q, cos, sin)
    if cfg.produces_kv(i):
        k = split_heads(parts["k"], cfg.nkv)
        v = split_heads(parts["v"], cfg.nkv)
        if cfg.kq_norm != "none":
            k = kq_normalise(cfg, k, lw("mamba.self_attn.k_norm.weight"))
        if cfg.rope:
            k = apply_rope(k, cos, sin)
        kv_store[i] = (k, v)
    else:
        k, v = kv_store[cfg.kv_producer[i]]  # the producer's rotated K and V
    return q, k, v


def attention_branch(cfg, lw, i, parts, positions, kv_store):
    """Output [S, nh*dv]."""
    q, k, v = attention_qkv(cfg, lw, i, parts, positions, kv_store)
    S = q.shape[1]
    kv_head = np.arange(cfg.nh) // (cfg.nh // cfg.nkv)  # GQA (§2.1 step 5)
    k, v = k[kv_head], v[kv_head]
    scores = np.einsum("hqd,hkd->hqk", q, k) / math.sqrt(cfg.dk)
    window = None if cfg.is_global[i] else cfg.W
    vis = visible_mask(S, cfg.M, window)
    scores = np.where(vis[None], scores, -np.inf)
    scores -= scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=-1, keepdims=True)
    out = np.einsum("hqk,hkd->hqd", p, v)  # [nh, S, dv]
    return out.transpose(1, 0, 2).reshape(S, cfg.nh * cfg.dv)


# ---------------------------------------------------------------------------
# SSM branch (§2.2)
# ---------------------------------------------------------------------------

def causal_conv(cfg, lw, x):
    """Depthwise causal conv over time + SiLU; x [S, I]."""
    w = lw("mamba.conv1d.weight").reshape(cfg.I, cfg.K)
    S = x.shape[0]
    xp = np.concatenate([np.zeros((cfg.K - 1, cfg.I)), x], axis=0)
    xc = np.zeros_like(x)
    for j in range(cfg.K):  # tap j multiplies x[t - K + 1 + j]
        xc += w[:, j][None, :] * xp[j:j + S]
    if cfg.conv_bias:
        xc += lw("mamba.conv1d.bias")[None, :]
    return silu(xc)


def ssm_inputs(cfg, lw, xc):
    """delta [S, I], B [S, N], C [S, N] from x_proj, inner norms, dt_proj."""
    xdb = xc @ lw("mamba.x_proj.0.weight").T
    dt, B, C = np.split(xdb, [cfg.R, cfg.R + cfg.N], axis=-1)
    if cfg.inner_norms:
        dt = rms_norm(dt, lw("mamba.dt_layernorm.weight"), cfg.eps)
        B = rms_norm(B, lw("mamba.B_layernorm.weight"), cfg.eps)
        C = rms_norm(C, lw("mamba.C_layernorm.weight"), cfg.eps)
    delta = softplus(dt @ lw("mamba.dt_proj.0.weight").T + lw("mamba.dt_proj.0.bias"))
    return delta, B, C


def selective_scan(cfg, lw, xc, delta, B, C):
    """Mamba-1 recurrence; returns y [S, I] (before the z gate)."""
    A = -np.exp(lw("mamba.A_log.0"))          # [I, N]
    D = lw("mamba.D.0")                        # [I]
    decay = np.exp(delta[:, :, None] * A[None])  # [S, I, N]
    drive = (delta * xc)[:, :, None] * B[:, None, :]  # [S, I, N]
    h = np.zeros((cfg.I, cfg.N))
    y = np.empty_like(xc)
    for t in range(xc.shape[0]):
        h = decay[t] * h + drive[t]
        y[t] = h @ C[t]
    return y + D[None, :] * xc


def ssm_branch(cfg, lw, parts):
    """Output [S, I] = scan(conv(x)) * SiLU(z)."""
    xc = causal_conv(cfg, lw, parts["x"])
    delta, B, C = ssm_inputs(cfg, lw, xc)
    y = selective_scan(cfg, lw, xc, delta, B, C)
    return y * silu(parts["z"])


# ---------------------------------------------------------------------------
# MLP (§2.3), layer (§2), model (§1, §3)
# ---------------------------------------------------------------------------

def mlp(cfg, lw, u):
    up = u @ lw("moe.experts.0.up_proj.weight").T
    if cfg.mlp_act == "silu":
        act = silu(u @ lw("moe.experts.0.gate_proj.weight").T) * up
    else:  # relu2
        act = np.maximum(up, 0.0) ** 2
    return act @ lw("moe.experts.0.down_proj.weight").T


def fuse_branches(branches):
    """The normalised branch outputs: one kept as is, two averaged (§2, §4)."""
    return branches[0] if len(branches) == 1 else (branches[0] + branches[1]) / 2.0


def layer_forward(cfg, weights, i, h, positions, kv_store):
    def lw(name):
        return weights[f"model.layers.{i}.{name}"]

    u = rms_norm(h, lw("input_layernorm.weight"), cfg.eps)
    p = u @ lw("mamba.in_proj.weight").T
    if cfg.proj_bias:
        p = p + lw("mamba.in_proj.bias")
    split = cfg.in_proj_split(i)
    if p.shape[1] != sum(n for _, n in split):
        raise ValueError(f"layer {i}: in_proj has {p.shape[1]} rows, expected {split}")
    offsets = np.cumsum([n for _, n in split])[:-1]
    parts = dict(zip([name for name, _ in split], np.split(p, offsets, axis=1)))

    branches = []
    if cfg.has_attn(i):
        a = attention_branch(cfg, lw, i, parts, positions, kv_store)
        branches.append(rms_norm(a, lw("mamba.pre_avg_layernorm1.weight"), cfg.eps))
    if cfg.has_ssm(i):
        s = ssm_branch(cfg, lw, parts)
        branches.append(rms_norm(s, lw("mamba.pre_avg_layernorm2.weight"), cfg.eps))
    f = fuse_branches(branches)

    out = f @ lw("mamba.out_proj.weight").T
    if cfg.proj_bias:
        out = out + lw("mamba.out_proj.bias")
    h = h + out
    if cfg.F > 0:
        h = h + mlp(cfg, lw, rms_norm(h, lw("pre_moe_layernorm.weight"), cfg.eps))
    return h


def to_float64(weights):
    return {name: np.asarray(arr, dtype=np.float64) for name, arr in weights.items()}


def sequence_positions(cfg, S):
    """Position ids over meta + text: meta m -> m, text t -> M + t (§1)."""
    return np.arange(S)


def forward_model(cfg, weights, ids):
    """Logits [T, V] (float64) of the text positions; weights as float64."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.ndim != 1 or ids.size == 0:
        raise ValueError("ids must be a non-empty 1-D sequence")
    if ids.min() < 0 or ids.max() >= cfg.V:
        raise ValueError("token id out of range")
    emb = weights["model.embed_tokens.weight"]
    x = emb[ids]
    if cfg.M > 0:
        x = np.concatenate([weights["model.memory_tokens"].reshape(cfg.M, cfg.H), x], axis=0)
    positions = sequence_positions(cfg, x.shape[0])
    kv_store = {}
    h = x
    for i in range(cfg.L):
        h = layer_forward(cfg, weights, i, h, positions, kv_store)
    h = rms_norm(h, weights["model.final_layernorm.weight"], cfg.eps)
    h = h[cfg.M:]
    lm_head = emb if cfg.tied else weights["lm_head.weight"]
    return h @ lm_head.T


def load(ckpt_dir):
    """(Config, float64 weights) of a checkpoint directory."""
    return load_config(ckpt_dir), to_float64(load_weights(ckpt_dir))


def forward(ckpt_dir, ids):
    cfg, weights = load(ckpt_dir)
    return forward_model(cfg, weights, ids)


def parse_ids(text):
    return [int(t) for t in text.replace(" ", "").split(",") if t != ""]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ckpt_dir")
    ap.add_argument("--ids", required=True, help="comma-separated token ids")
    ap.add_argument("--out", help="write logits [T, V] to this .npy")
    ap.add_argument("--float32", action="store_true", help="save as float32 (default float64)")
    args = ap.parse_args(argv)
    logits = forward(args.ckpt_dir, parse_ids(args.ids))
    if args.float32:
        logits = logits.astype(np.float32)
    if args.out:
        np.save(args.out, logits)
    else:
        np.set_printoptions(precision=6, suppress=True, linewidth=120)
        print(logits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
