#!/usr/bin/env python3
"""Write a random Hymba checkpoint (config.json + model.safetensors) for a config.

Tensor names and shapes follow docs/ARCHITECTURE.md §5.  Initialisation keeps
signals O(1) through the layers: linears N(0, 0.02); norm weights
1 + N(0, 0.1); embeddings (and an untied lm_head) N(0, 0.5); memory tokens N(0, 1); conv taps
N(0, 1/sqrt(K)) (the PyTorch conv default scale; 0.02 would starve the SSM);
dt_proj weights U(+-1/sqrt(R)) (Mamba's init) and bias = softplus^-1(dt) with
dt log-uniform in [0.001, 0.1]; A_log = log(1..N) per row + N(0, 0.1);
D = 1 + N(0, 0.1); biases N(0, 0.02).

    python3 make_random_ckpt.py CONFIG.json OUT_DIR [--seed S] [--dtype f32|bf16|f16] [--shards N]

or from Python: make_random_ckpt(config_or_path, out_dir, seed=0, dtype="f32").
Only NumPy is needed.
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hymba_ref  # noqa: E402  (Config only: sizes and layer roles)


# ---------------------------------------------------------------------------
# safetensors writer
# ---------------------------------------------------------------------------

def float32_to_bf16_bits(x):
    """Round-to-nearest-even FP32 -> BF16 bit patterns (uint16)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = u + 0x7FFF + ((u >> 16) & 1)
    return (u >> 16).astype(np.uint16)


_ST_DTYPES = {"f32": "F32", "bf16": "BF16", "f16": "F16"}
_TORCH_DTYPES = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}


def encode_tensor(arr, dtype):
    if dtype == "f32":
        return np.ascontiguousarray(arr, dtype="<f4").tobytes()
    if dtype == "f16":
        return np.ascontiguousarray(arr, dtype="<f2").tobytes()
    if dtype == "bf16":
        return float32_to_bf16_bits(arr).astype("<u2").tobytes()
    raise ValueError(f"unknown dtype {dtype}")


def write_safetensors(path, tensors, dtype="f32"):
    """tensors: {name: float array}; written sorted by name, all in `dtype`."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        data = encode_tensor(tensors[name], dtype)
        header[name] = {"dtype": _ST_DTYPES[dtype], "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * (-len(hjson) % 8)  # keep the data 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------------------
# Random weights
# ---------------------------------------------------------------------------

def random_weights(cfg, seed=0):
    """{name: float32 array} for a hymba_ref.Config."""
    rng = np.random.default_rng(seed)
    H, I, N, R, K = cfg.H, cfg.I, cfg.N, cfg.R, cfg.K
    w = {}

    def linear(rows, cols, std=0.02):
        return rng.normal(0.0, std, (rows, cols))

    def norm(n):
        return 1.0 + rng.normal(0.0, 0.1, n)

    w["model.embed_tokens.weight"] = rng.normal(0.0, 0.5, (cfg.V, H))
    if cfg.M > 0:
        w["model.memory_tokens"] = rng.normal(0.0, 1.0, (cfg.M, H))
    for i in range(cfg.L):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm(H)
        rows = sum(n for _, n in cfg.in_proj_split(i))
        w[p + "mamba.in_proj.weight"] = linear(rows, H)
        w[p + "mamba.out_proj.weight"] = linear(H, I)
        if cfg.proj_bias:
            w[p + "mamba.in_proj.bias"] = rng.normal(0.0, 0.02, rows)
            w[p + "mamba.out_proj.bias"] = rng.normal(0.0, 0.02, H)
        if cfg.has_attn(i):
            w[p + "mamba.pre_avg_layernorm1.weight"] = norm(I)
            if cfg.kq_norm != "none":
                qshape = (cfg.dk,) if cfg.kq_norm == "rms" else (1, cfg.nh, 1, cfg.dk)
                w[p + "mamba.self_attn.q_norm.weight"] = norm(int(np.prod(qshape))).reshape(qshape)
                if cfg.produces_kv(i):
                    kshape = (cfg.dk,) if cfg.kq_norm == "rms" else (1, cfg.nkv, 1, cfg.dk)
                    w[p + "mamba.self_attn.k_norm.weight"] = norm(int(np.prod(kshape))).reshape(kshape)
        if cfg.has_ssm(i):
            w[p + "mamba.pre_avg_layernorm2.weight"] = norm(I)
            w[p + "mamba.conv1d.weight"] = rng.normal(0.0, 1.0 / math.sqrt(K), (I, 1, K))
            if cfg.conv_bias:
                w[p + "mamba.conv1d.bias"] = rng.normal(0.0, 0.1, I)
            w[p + "mamba.x_proj.0.weight"] = linear(R + 2 * N, I)
            bound = 1.0 / math.sqrt(R)
            w[p + "mamba.dt_proj.0.weight"] = rng.uniform(-bound, bound, (I, R))
            dt = np.exp(rng.uniform(math.log(1e-3), math.log(1e-1), I))
            w[p + "mamba.dt_proj.0.bias"] = dt + np.log(-np.expm1(-dt))  # softplus^-1
            w[p + "mamba.A_log.0"] = (np.log(np.arange(1, N + 1, dtype=np.float64))[None, :]
                                      + rng.normal(0.0, 0.1, (I, N)))
            w[p + "mamba.D.0"] = 1.0 + rng.normal(0.0, 0.1, I)
            if cfg.inner_norms:
                w[p + "mamba.dt_layernorm.weight"] = norm(R)
                w[p + "mamba.B_layernorm.weight"] = norm(N)
                w[p + "mamba.C_layernorm.weight"] = norm(N)
        if cfg.F > 0:
            w[p + "pre_moe_layernorm.weight"] = norm(H)
            if cfg.mlp_act == "silu":
                w[p + "moe.experts.0.gate_proj.weight"] = linear(cfg.F, H)
            w[p + "moe.experts.0.up_proj.weight"] = linear(cfg.F, H)
            w[p + "moe.experts.0.down_proj.weight"] = linear(H, cfg.F)
    w["model.final_layernorm.weight"] = norm(H)
    if not cfg.tied:
        w["lm_head.weight"] = linear(cfg.V, H, 0.5)  # same scale as the embeddings
    return {k: np.asarray(v, dtype=np.float32) for k, v in w.items()}


def save_checkpoint(out_dir, raw_config, weights, dtype="f32", shards=1):
    """Write config.json and model.safetensors (or `shards` files + index)."""
    os.makedirs(out_dir, exist_ok=True)
    raw = dict(raw_config)
    raw["torch_dtype"] = _TORCH_DTYPES[dtype]
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(raw, f, indent=2)
        f.write("\n")
    if shards <= 1:
        write_safetensors(os.path.join(out_dir, "model.safetensors"), weights, dtype)
        return
    names = sorted(weights)
    weight_map, total = {}, 0
    for s in range(shards):
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: weights[n] for n in names[s::shards]}
        write_safetensors(os.path.join(out_dir, fname), part, dtype)
        for n in part:
            weight_map[n] = fname
            total += part[n].size * (4 if dtype == "f32" else 2)
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
        f.write("\n")


def make_random_ckpt(config, out_dir, seed=0, dtype="f32", shards=1):
    """config: path to a config.json or a dict.  Returns out_dir."""
    if isinstance(config, (str, os.PathLike)):
        with open(config) as f:
            config = json.load(f)
    cfg = hymba_ref.Config(config)
    save_checkpoint(out_dir, config, random_weights(cfg, seed), dtype, shards)
    return out_dir


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=sorted(_ST_DTYPES), default="f32")
    ap.add_argument("--shards", type=int, default=1)
    args = ap.parse_args(argv)
    make_random_ckpt(args.config, args.out_dir, args.seed, args.dtype, args.shards)
    return 0


if __name__ == "__main__":
    sys.exit(main())
