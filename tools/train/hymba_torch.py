"""hymba_torch.py: Hymba in PyTorch, for training small models from scratch.

Written from docs/ARCHITECTURE.md alone (section numbers below refer to it).
Module and parameter names are chosen so that `state_dict()` keys are exactly
the Hugging Face tensor names of section 5: export is a dump, import a load.

    config = load_config("models/configs/tiny-hymba.json")
    model = Hymba(config)                    # Mamba-style random init
    logits = model(ids)                      # ids [B, T] -> [B, T, V]
    save_hf(model, config, "out/", dtype="bfloat16")
    model, config = load_hf("out/")

Self-checks and a speed probe: python3 tools/train/hymba_torch.py selftest|init|bench
"""
import argparse
import json
import math
import os
import shutil
import time
from types import SimpleNamespace

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint

# ----------------------------------------------------------------------------
# config


def load_config(path):
    """The dict of a HF config.json (a file, or a directory holding one)."""
    if os.path.isdir(path):
        path = os.path.join(path, "config.json")
    with open(path) as f:
        return json.load(f)


def _unset(v):
    return v is None or v == -1


def parse_config(cfg):
    """Validates a config dict and returns the derived dimensions (notation of
    ARCHITECTURE.md). Anything the spec does not describe is refused here."""
    def need(cond, msg):
        if not cond:
            raise ValueError("unsupported Hymba config: " + msg)

    g = cfg.get
    need(g("model_type", "hymba") == "hymba", "model_type %r" % g("model_type"))
    c = SimpleNamespace()
    c.H, c.L, c.V = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    c.nh = cfg["num_attention_heads"]
    c.nkv = g("num_key_value_heads") or c.nh
    need(c.H % c.nh == 0, "hidden_size %d not divisible by num_attention_heads %d" % (c.H, c.nh))
    need(c.nh % c.nkv == 0, "num_attention_heads %d not a multiple of num_key_value_heads %d" % (c.nh, c.nkv))
    c.dk = c.H // c.nh
    c.I = cfg["mamba_expand"] * c.H
    need(c.I % c.nh == 0, "inner size %d not divisible by the head count" % c.I)
    c.dv = c.I // c.nh
    need(_unset(g("attn_hidden_size")), "attn_hidden_size must be -1")
    need(_unset(g("kq_head_dim")) or g("kq_head_dim") == c.dk, "kq_head_dim must be -1 (= hidden/heads)")
    need(_unset(g("v_head_dim")) or g("v_head_dim") == c.dv,
         "v_head_dim %s != mamba_expand*hidden/heads = %d" % (g("v_head_dim"), c.dv))
    c.N, c.R, c.K = cfg["mamba_d_state"], cfg["mamba_dt_rank"], cfg["mamba_d_conv"]
    c.M = g("num_memory_tokens") or 0
    c.F = g("intermediate_size") or 0
    c.eps = g("rms_norm_eps", 1e-6)
    c.init_std = g("initializer_range", 0.02)
    c.tie = bool(g("tie_word_embeddings", True))
    c.conv_bias = bool(g("mamba_conv_bias", True))
    c.proj_bias = bool(g("mamba_proj_bias", False))
    c.inner_ln = bool(g("mamba_inner_layernorms", True))
    for key, ok in (("num_experts", 1), ("num_mamba", 1)):
        need(g(key, 1) == ok, "%s must be 1" % key)
    need(not g("memory_tokens_interspersed_every"), "memory_tokens_interspersed_every must be 0")
    need(not g("kv_weight_reuse", False), "kv_weight_reuse must be false")
    need(_unset(g("kv_reuse_every_i_layer")), "kv_reuse_every_i_layer must be -1 (use kv_reuse_group)")
    need(g("hidden_act", "silu") == "silu", "hidden_act must be silu")
    c.mlp_act = g("mlp_hidden_act", "silu")
    need(c.mlp_act in ("silu", "relu2"), "mlp_hidden_act %r" % c.mlp_act)
    c.kq_norm = g("kq_norm") or "none"
    need(c.kq_norm in ("none", "rms", "perhead-rms"), "kq_norm %r" % c.kq_norm)

    c.layer_type = list(g("layer_type") or ["h"] * c.L)
    need(len(c.layer_type) == c.L, "layer_type has %d entries for %d layers" % (len(c.layer_type), c.L))
    need(all(t in ("h", "a", "m") for t in c.layer_type), "layer_type entries must be h, a or m")

    # attention visibility: sliding window with global exceptions (section 2.1 item 7)
    c.W = g("sliding_window")
    need(c.W is None or (isinstance(c.W, int) and c.W > 0), "sliding_window must be null or > 0")
    glob = g("global_attn_idx") or []
    need(all(0 <= i < c.L for i in glob), "global_attn_idx out of range")
    c.is_global = [c.W is None or i in glob for i in range(c.L)]

    # RoPE base (section 2.1 item 3)
    c.rope = bool(g("rope", True))
    c.rope_type = g("rope_type", "default")
    c.rope_theta = float(g("rope_theta", 10000.0))
    c.rope_base = c.rope_theta
    if c.rope:
        need(c.rope_type in ("default", "ntk"), "rope_type %r (dynamic_ntk is not supported)" % c.rope_type)
        need(c.dk % 2 == 0, "RoPE needs an even head dim")
        if c.rope_type == "ntk":
            ratio = 2 * cfg["max_position_embeddings"] / cfg["orig_max_position_embeddings"] - 1
            c.rope_base *= ratio ** (c.dk / (c.dk - 2))

    # KV sharing: producer[i] is the layer whose k, v layer i uses (itself if it owns them)
    c.producer = [i if c.layer_type[i] != "m" else None for i in range(c.L)]
    seen = set()
    for grp in g("kv_reuse_group") or []:
        need(len(grp) >= 1 and not (set(grp) & seen), "kv_reuse_group %s overlaps another group" % grp)
        seen |= set(grp)
        for i in grp:
            need(0 <= i < c.L and c.layer_type[i] != "m", "kv_reuse_group layer %s must be an attention layer" % i)
            need(c.is_global[i] == c.is_global[grp[0]],
                 "kv_reuse_group %s mixes global and sliding-window layers" % grp)
        for i in grp[1:]:
            need(i > grp[0], "kv_reuse_group %s: consumers must come after the producer" % grp)
            c.producer[i] = grp[0]
    return c


# ----------------------------------------------------------------------------
# selective scan (section 2.2 item 4)


def scan_reference(x, delta, A, B, C):
    """The recurrence as written, one step at a time; the ground truth.
    x, delta: [b, S, I]; A: [I, N]; B, C: [b, S, N] -> y [b, S, I] (without the D term)."""
    h = x.new_zeros(x.shape[0], x.shape[2], A.shape[1])
    ys = []
    for t in range(x.shape[1]):
        h = torch.exp(delta[:, t, :, None] * A) * h + (delta[:, t] * x[:, t])[:, :, None] * B[:, t, None, :]
        ys.append((h * C[:, t, None, :]).sum(-1))
    return torch.stack(ys, 1)


def _chunks(t, Q):
    """[b, S, D] -> [Q, b, nc, D]: time split into nc chunks of Q steps, step-major
    so that step q of every chunk is one contiguous slice. Zero padding at the end
    is harmless: delta = 0 means decay 1 and no input."""
    b, S, D = t.shape
    nc = -(-S // Q)
    t = F.pad(t, (0, 0, 0, nc * Q - S))
    return t.view(b, nc, Q, D).permute(2, 0, 1, 3).contiguous()


def _unchunks(t, S):
    Q, b, nc, D = t.shape
    return t.permute(1, 2, 0, 3).reshape(b, nc * Q, D)[:, :S]


# Inside the chunked scan the state is laid out [b, nc, N, I]: channels innermost,
# so the sums over the state dimension N are vectorised adds (4x faster on CPU
# than reducing a contiguous innermost N = 16). At is A transposed, [N, I].


def _step(h, At, d, x, B):
    """One step of the recurrence for every chunk: h <- exp(d A) h + d B x."""
    return torch.exp(d[:, :, None, :] * At) * h + (d * x)[:, :, None, :] * B[..., None]


def _chunk_start_states(x, delta, At, B):
    """State at the start of every chunk. Level 1: the recurrence inside all chunks
    at once from a zero state (a loop over the Q steps). Level 2: carry across chunks
    (a loop over the chunks) with each chunk's total decay exp(A * sum(delta)),
    an exp of a non-positive number. Inputs are chunked ([Q, b, nc, .])."""
    Q, b, nc, I = x.shape
    h = x.new_zeros(b, nc, At.shape[0], I)
    for q in range(Q):
        h = _step(h, At, delta[q], x[q], B[q])
    decay = torch.exp(delta.sum(0)[:, :, None, :] * At)
    starts = [torch.zeros_like(h[:, 0])]
    for k in range(nc - 1):
        starts.append(decay[:, k] * starts[-1] + h[:, k])
    return torch.stack(starts, 1), decay


class _ChunkedScan(torch.autograd.Function):
    """Same function as scan_reference, with a hand-written backward so that no
    [b, S, I, N] tensor outlives the layer: forward keeps only the chunk start
    states (1/Q of that size); backward recomputes the states and runs the adjoint
    recurrence lam_t = g_t + a_{t+1} lam_{t+1} with the same two-level scheme."""

    @staticmethod
    def forward(ctx, x, delta, A, B, C, Q):
        S, At = x.shape[1], A.t().contiguous()
        xq, dq, Bq, Cq = (_chunks(t, Q) for t in (x, delta, B, C))
        h0, _ = _chunk_start_states(xq, dq, At, Bq)
        y = torch.empty_like(xq)
        h = h0
        for q in range(Q):  # level 3: rerun every chunk from its true start state
            h = _step(h, At, dq[q], xq[q], Bq[q])
            y[q] = (h * Cq[q, ..., None]).sum(-2)
        ctx.save_for_backward(x, delta, A, B, C, h0)
        ctx.Q = Q
        return _unchunks(y, S)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):
        x, delta, A, B, C, h0 = ctx.saved_tensors
        Q, S, At = ctx.Q, x.shape[1], A.t().contiguous()
        xq, dq, Bq, Cq, gq = (_chunks(t, Q) for t in (x, delta, B, C, gy.to(x.dtype)))
        nc = xq.shape[2]
        # states of every step, from the saved chunk starts (transient, one layer only)
        hs = [h0]  # hs[q + 1] is the state after step q
        for q in range(Q):
            hs.append(_step(hs[-1], At, dq[q], xq[q], Bq[q]))
        # adjoint, level 1: nu = a_t * lam_t inside each chunk from a zero carry
        nu = torch.zeros_like(h0)
        for q in reversed(range(Q)):
            nu = torch.exp(dq[q, :, :, None, :] * At) * (gq[q, :, :, None, :] * Cq[q, ..., None] + nu)
        # level 2: carry into the end of chunk k from chunk k+1
        decay = torch.exp(dq.sum(0)[:, :, None, :] * At)
        carry = [torch.zeros_like(nu[:, 0])]
        for k in reversed(range(1, nc)):
            carry.append(nu[:, k] + decay[:, k] * carry[-1])
        nu = torch.stack(carry[::-1], 1)
        # level 3: exact adjoint per step, and the gradients it feeds
        gx, gd, gB, gC = (torch.empty_like(t) for t in (xq, dq, Bq, Cq))
        gAt = torch.zeros_like(At)
        for q in reversed(range(Q)):
            d = dq[q, :, :, None, :]
            a = torch.exp(d * At)
            lam = gq[q, :, :, None, :] * Cq[q, ..., None] + nu
            g_dx = (lam * Bq[q, ..., None]).sum(-2)                # d/d(delta*x)
            w = lam * hs[q] * a                                    # d/d(delta*A)
            gx[q] = g_dx * dq[q]
            gd[q] = g_dx * xq[q] + (w * At).sum(-2)
            gAt += (w * d).sum((0, 1))
            gB[q] = (lam * (dq[q] * xq[q])[:, :, None, :]).sum(-1)
            gC[q] = (hs[q + 1] * gq[q, :, :, None, :]).sum(-1)
            nu = a * lam
        return (_unchunks(gx, S), _unchunks(gd, S), gAt.t(), _unchunks(gB, S), _unchunks(gC, S), None)


def selective_scan(x, delta, A, B, C, chunk=32):
    """y[b,t,c] = sum_n C[b,t,n] h_t[c,n], h_t = exp(delta A) h_{t-1} + delta B x.
    Runs in FP32 (FP64 if given FP64) whatever autocast says; returns that dtype."""
    dt = torch.float64 if x.dtype == torch.float64 else torch.float32
    with torch.autocast(x.device.type, enabled=False):
        return _ChunkedScan.apply(x.to(dt), delta.to(dt), A.to(dt), B.to(dt), C.to(dt), chunk)


# ----------------------------------------------------------------------------
# modules


def _compute(x):
    """Norms reduce in FP32 at least (FP64 stays FP64)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class RMSNorm(nn.Module):
    def __init__(self, shape, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(shape))
        self.eps = eps

    def forward(self, x):
        xf = _compute(x)
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (self.weight.to(y.dtype) * y).to(x.dtype)


def rope_tables(c, S, device, dtype):
    """cos, sin [S, dk/2] for positions 0..S-1: inv_freq in FP32 as the spec says,
    the angle p * inv_freq and its cos/sin in FP64, then cast to dtype."""
    inv_freq = 1.0 / (c.rope_base ** (torch.arange(0, c.dk, 2, device=device, dtype=torch.float32) / c.dk))
    # S x dk/2 values, cheap; an FP32 product p * inv_freq loses ~1e-4 rad at
    # p ~ 4000, which showed as 2e-5 relative logits error against the C engine
    angle = torch.arange(S, device=device, dtype=torch.float64)[:, None] * inv_freq.double()[None, :]
    return angle.cos().to(dtype), angle.sin().to(dtype)


def apply_rope(x, cos, sin):
    """rotate_half pairing: element i with i + dk/2."""
    x1, x2 = x.chunk(2, dim=-1)
    xf1, xf2 = _compute(x1), _compute(x2)
    cos, sin = cos.to(xf1.dtype), sin.to(xf1.dtype)
    return torch.cat((xf1 * cos - xf2 * sin, xf2 * cos + xf1 * sin), -1).to(x.dtype)


def visibility_mask(S, W, M, device):
    """[S, S] bool, True where key k is visible to query q (section 2.1 item 7)."""
    q = torch.arange(S, device=device)[:, None]
    k = torch.arange(S, device=device)[None, :]
    mask = k <= q
    if W is not None:
        mask &= (q - k <= W) | (k < M)
    return mask


class SelfAttnNorms(nn.Module):
    """Holds only the optional q/k norms (named mamba.self_attn.* in checkpoints)."""

    def __init__(self, c, owns_kv):
        super().__init__()
        per_head = c.kq_norm == "perhead-rms"
        self.q_norm = RMSNorm([1, c.nh, 1, c.dk] if per_head else [c.dk], 1e-6)  # eps fixed: section 2.1 item 2
        if owns_kv:
            self.k_norm = RMSNorm([1, c.nkv, 1, c.dk] if per_head else [c.dk], 1e-6)


class Mixer(nn.Module):
    """in_proj -> attention and/or SSM branch -> fused, normed -> out_proj.
    Named 'mamba' in the checkpoint layout."""

    def __init__(self, c, i):
        super().__init__()
        self.c, self.i = c, i
        kind = c.layer_type[i]
        self.attn, self.ssm = kind in "ha", kind in "hm"
        self.owns_kv = self.attn and c.producer[i] == i
        rows = (c.H + (c.nkv * (c.dk + c.dv) if self.owns_kv else 0) if self.attn else 0) + (2 * c.I if self.ssm else 0)
        self.in_proj = nn.Linear(c.H, rows, bias=c.proj_bias)
        if self.attn:
            if c.kq_norm != "none":
                self.self_attn = SelfAttnNorms(c, self.owns_kv)
            self.pre_avg_layernorm1 = RMSNorm(c.I, c.eps)
        if self.ssm:
            self.conv1d = nn.Conv1d(c.I, c.I, c.K, groups=c.I, padding=c.K - 1, bias=c.conv_bias)
            self.x_proj = nn.ModuleList([nn.Linear(c.I, c.R + 2 * c.N, bias=False)])
            self.dt_proj = nn.ModuleList([nn.Linear(c.R, c.I, bias=True)])
            self.A_log = nn.ParameterList([nn.Parameter(torch.empty(c.I, c.N))])
            self.D = nn.ParameterList([nn.Parameter(torch.empty(c.I))])
            if c.inner_ln:
                self.dt_layernorm = RMSNorm(c.R, c.eps)
                self.B_layernorm = RMSNorm(c.N, c.eps)
                self.C_layernorm = RMSNorm(c.N, c.eps)
            self.pre_avg_layernorm2 = RMSNorm(c.I, c.eps)
        self.out_proj = nn.Linear(c.I, c.H, bias=c.proj_bias)

    def attention(self, p, rope, mask, shared_kv):
        c, b, S = self.c, p.shape[0], p.shape[1]
        q = p[..., :c.H].view(b, S, c.nh, c.dk).transpose(1, 2)
        if c.kq_norm != "none":
            q = self.self_attn.q_norm(q)
        if c.rope:
            q = apply_rope(q, *rope)
        if self.owns_kv:
            k = p[..., c.H:c.H + c.nkv * c.dk].view(b, S, c.nkv, c.dk).transpose(1, 2)
            v = p[..., c.H + c.nkv * c.dk:c.H + c.nkv * (c.dk + c.dv)].view(b, S, c.nkv, c.dv).transpose(1, 2)
            if c.kq_norm != "none":
                k = self.self_attn.k_norm(k)
            if c.rope:
                k = apply_rope(k, *rope)
        else:
            k, v = shared_kv  # the producer's rotated k, v (section 2.1 item 4)
        rep = c.nh // c.nkv  # GQA: query head j reads KV head j // rep
        kk, vv = (k, v) if rep == 1 else (k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1))
        o = F.scaled_dot_product_attention(q, kk.to(q.dtype), vv.to(q.dtype), attn_mask=mask)
        return o.transpose(1, 2).reshape(b, S, c.I), (k, v)

    def ssm_branch(self, xz):
        c, S = self.c, xz.shape[1]
        x, z = xz[..., :c.I], xz[..., c.I:]
        xc = F.silu(self.conv1d(x.transpose(1, 2))[..., :S].transpose(1, 2))  # causal: keep the first S outputs
        dt, B, C = self.x_proj[0](xc).split([c.R, c.N, c.N], dim=-1)
        if c.inner_ln:
            dt, B, C = self.dt_layernorm(dt), self.B_layernorm(B), self.C_layernorm(C)
        delta = F.softplus(self.dt_proj[0](dt), threshold=20.0)
        A = -torch.exp(_compute(self.A_log[0]))
        y = selective_scan(xc, delta, A, B, C) + _compute(self.D[0]) * _compute(xc)
        return (y * F.silu(_compute(z))).to(xc.dtype)

    def forward(self, u, rope, mask, shared_kv=None):
        c = self.c
        p = self.in_proj(u)
        kv, f = None, 0
        if self.attn:
            n_attn = c.H + (c.nkv * (c.dk + c.dv) if self.owns_kv else 0)
            a, kv = self.attention(p[..., :n_attn], rope, mask, shared_kv)
            f = self.pre_avg_layernorm1(a)
            p = p[..., n_attn:]
        if self.ssm:
            s = self.pre_avg_layernorm2(self.ssm_branch(p))
            f = (f + s) / 2 if self.attn else s
        return self.out_proj(f), kv


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.act = c.mlp_act
        if self.act == "silu":
            self.gate_proj = nn.Linear(c.H, c.F, bias=False)
        self.up_proj = nn.Linear(c.H, c.F, bias=False)
        self.down_proj = nn.Linear(c.F, c.H, bias=False)

    def forward(self, u):
        if self.act == "silu":
            return self.down_proj(F.silu(self.gate_proj(u)) * self.up_proj(u))
        return self.down_proj(F.relu(self.up_proj(u)).square())


class MoE(nn.Module):
    """One expert, no router: only here for the checkpoint names moe.experts.0.*."""

    def __init__(self, c):
        super().__init__()
        self.experts = nn.ModuleList([MLP(c)])


class Layer(nn.Module):
    def __init__(self, c, i):
        super().__init__()
        self.input_layernorm = RMSNorm(c.H, c.eps)
        self.mamba = Mixer(c, i)
        if c.F > 0:
            self.pre_moe_layernorm = RMSNorm(c.H, c.eps)
            self.moe = MoE(c)

    def forward(self, h, cos, sin, mask, k=None, v=None):
        out, kv = self.mamba(self.input_layernorm(h), (cos, sin), mask, (k, v))
        h = h + out
        if hasattr(self, "moe"):
            h = h + self.moe.experts[0](self.pre_moe_layernorm(h))
        return h, kv


class Backbone(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.V, c.H)
        if c.M > 0:
            self.memory_tokens = nn.Parameter(torch.empty(c.M, c.H))
        self.layers = nn.ModuleList([Layer(c, i) for i in range(c.L)])
        self.final_layernorm = RMSNorm(c.H, c.eps)


class Hymba(nn.Module):
    def __init__(self, config, checkpoint_layers=False, init=True):
        super().__init__()
        self.config = dict(config)
        self.c = c = parse_config(config)
        self.checkpoint_layers = checkpoint_layers
        self.model = Backbone(c)
        if not c.tie:
            self.lm_head = nn.Linear(c.H, c.V, bias=False)
        self._masks = {}
        if init:
            self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        """Training-from-scratch init: Mamba's for the SSM, GPT-2's for the rest
        (residual-output projections scaled by 1/sqrt(2L))."""
        c, std = self.c, self.c.init_std
        for name, mod in self.named_modules():
            if isinstance(mod, nn.Linear):
                scale = 1 / math.sqrt(2 * c.L) if name.endswith(("out_proj", "down_proj")) else 1.0
                nn.init.normal_(mod.weight, 0.0, std * scale)
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
            elif isinstance(mod, nn.Conv1d):
                mod.reset_parameters()
            elif isinstance(mod, RMSNorm):
                nn.init.ones_(mod.weight)
            elif isinstance(mod, nn.Embedding):
                nn.init.normal_(mod.weight, 0.0, std)
            if isinstance(mod, Mixer) and mod.ssm:
                mod.A_log[0].copy_(torch.log(torch.arange(1, c.N + 1, dtype=torch.float32)).repeat(c.I, 1))
                mod.D[0].fill_(1.0)
                nn.init.uniform_(mod.dt_proj[0].weight, -c.R ** -0.5, c.R ** -0.5)
                dt = torch.exp(torch.rand(c.I) * (math.log(1e-1) - math.log(1e-3)) + math.log(1e-3)).clamp(min=1e-4)
                mod.dt_proj[0].bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        if c.M > 0:
            nn.init.normal_(self.model.memory_tokens, 0.0, std)

    def _mask(self, S, is_global, device):
        key = (S, is_global, str(device))
        if key not in self._masks:
            if any(k[0] != S for k in self._masks):  # keep one length only: S^2 bytes each
                self._masks.clear()
            self._masks[key] = visibility_mask(S, None if is_global else self.c.W, self.c.M, device)
        return self._masks[key]

    def hidden_states(self, ids):
        """Final-normed hidden states of the text positions, [B, T, H]."""
        c = self.c
        b, T = ids.shape
        h = self.model.embed_tokens(ids)
        if c.M > 0:  # meta tokens first; positions run over the whole sequence (section 1)
            h = torch.cat([self.model.memory_tokens.to(h.dtype).expand(b, -1, -1), h], 1)
        S = h.shape[1]
        cos, sin = rope_tables(c, S, h.device, _compute(h).dtype)
        kv = {}
        for i, layer in enumerate(self.model.layers):
            mask = self._mask(S, c.is_global[i], h.device)
            k, v = kv.get(c.producer[i], (None, None))
            if self.checkpoint_layers and self.training:
                h, new_kv = torch.utils.checkpoint.checkpoint(layer, h, cos, sin, mask, k, v, use_reentrant=False)
            else:
                h, new_kv = layer(h, cos, sin, mask, k, v)
            if c.producer[i] == i and i in c.producer[i + 1:]:
                kv[i] = new_kv
        return self.model.final_layernorm(h[:, c.M:])

    def logits(self, hidden):
        w = self.model.embed_tokens.weight if self.c.tie else self.lm_head.weight
        return F.linear(hidden, w)

    def forward(self, ids, return_hidden=False):
        hidden = self.hidden_states(ids)
        logits = self.logits(hidden)
        return (logits, hidden) if return_hidden else logits


def no_weight_decay(name, param):
    """Parameters an optimiser should not decay: norms, biases, A_log, D, meta tokens."""
    return param.dim() < 2 or "norm" in name or name.endswith(("A_log.0", "memory_tokens"))


def count_params(model):
    """Parameter counts by component (tied embeddings counted once)."""
    model = _unwrap(model)
    c = model.c
    out = {k: 0 for k in ("embedding", "lm_head", "meta_tokens", "attention_qkv", "ssm", "out_proj", "mlp", "norms")}
    for name, p in model.named_parameters():
        n = p.numel()
        if name.endswith("embed_tokens.weight"):
            out["embedding"] += n
        elif name.startswith("lm_head"):
            out["lm_head"] += n
        elif name.endswith("memory_tokens"):
            out["meta_tokens"] += n
        elif "norm" in name:
            out["norms"] += n
        elif ".in_proj." in name:  # split rows between the branches
            i = int(name.split(".")[2])
            mix = model.model.layers[i].mamba
            ssm_rows = 2 * c.I if mix.ssm else 0
            per_row = n // p.shape[0]
            out["ssm"] += ssm_rows * per_row
            out["attention_qkv"] += n - ssm_rows * per_row
        elif ".out_proj." in name:
            out["out_proj"] += n
        elif ".moe." in name:
            out["mlp"] += n
        else:
            out["ssm"] += n
    out["total"] = sum(out.values())
    out["non_embedding"] = out["total"] - out["embedding"] - out["lm_head"]
    return out


# ----------------------------------------------------------------------------
# Hugging Face checkpoint I/O (section 5)

_TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "default", "config.json")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _unwrap(model):
    model = getattr(model, "_orig_mod", model)  # torch.compile
    return getattr(model, "module", model)      # DDP


def hf_config(config, dtype="float32"):
    """The complete published key set (models/default/config.json's keys, in its
    order), filled with this model's values. Every key the model reads is written
    with the value parse_config used, so no template value describes another model."""
    c = parse_config(config)
    template = load_config(_TEMPLATE)
    out = {key: config.get(key, default) for key, default in template.items()}
    for key, value in config.items():  # keep anything extra the caller wrote
        out.setdefault(key, value)
    out.update(num_key_value_heads=c.nkv, num_memory_tokens=c.M, intermediate_size=c.F, rms_norm_eps=c.eps,
               initializer_range=c.init_std, tie_word_embeddings=c.tie, mamba_conv_bias=c.conv_bias,
               mamba_proj_bias=c.proj_bias, mamba_inner_layernorms=c.inner_ln, mlp_hidden_act=c.mlp_act,
               kq_norm=c.kq_norm, layer_type=c.layer_type, sliding_window=c.W,
               global_attn_idx=config.get("global_attn_idx"), kv_reuse_group=config.get("kv_reuse_group"),
               rope=c.rope, rope_type=c.rope_type, rope_theta=c.rope_theta,
               v_head_dim=c.dv, attn_hidden_size=-1, kq_head_dim=-1,
               conv_dim={str(i): c.I for i in range(c.L)}, torch_dtype=dtype)
    return out


def save_hf(model, config, out_dir, dtype="float32", tokenizer=None):
    """Writes out_dir/config.json and out_dir/model.safetensors (the section 5 names;
    no lm_head when tied). tokenizer: a tokenizer.json or a directory holding one
    (with tokenizer_config.json) to copy alongside."""
    from safetensors.torch import save_file
    model = _unwrap(model)
    os.makedirs(out_dir, exist_ok=True)
    tensors = {k: v.detach().to("cpu", _DTYPES[dtype]).contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(hf_config(config, dtype), f, indent=2)
        f.write("\n")
    if tokenizer:
        src = tokenizer if os.path.isdir(tokenizer) else os.path.dirname(tokenizer)
        shutil.copy(os.path.join(tokenizer, "tokenizer.json") if os.path.isdir(tokenizer) else tokenizer,
                    os.path.join(out_dir, "tokenizer.json"))
        if os.path.exists(os.path.join(src, "tokenizer_config.json")):
            shutil.copy(os.path.join(src, "tokenizer_config.json"), os.path.join(out_dir, "tokenizer_config.json"))


def load_hf(path, device="cpu", dtype=torch.float32, checkpoint_layers=False):
    """(model, config) from a HF checkpoint directory: model.safetensors or a sharded
    model.safetensors.index.json; BF16/F16/F32 tensors are converted to dtype."""
    from safetensors.torch import load_file
    config = load_config(path)
    model = Hymba(config, checkpoint_layers=checkpoint_layers, init=False)
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors = {}
    for name in files:
        tensors.update(load_file(os.path.join(path, name)))
    if model.c.tie:
        tensors.pop("lm_head.weight", None)  # some exports repeat the tied matrix
    want = model.state_dict()
    missing, extra = sorted(set(want) - set(tensors)), sorted(set(tensors) - set(want))
    bad = [k for k in want if k in tensors and tuple(tensors[k].shape) != tuple(want[k].shape)]
    if missing or extra or bad:
        shapes = [(k, tuple(tensors[k].shape), tuple(want[k].shape)) for k in bad[:5]]
        raise ValueError("%s does not match its config: missing %s, unexpected %s, wrong shape %s"
                         % (path, missing[:5], extra[:5], shapes))
    model.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()})
    return model.to(device=device, dtype=dtype), config


# ----------------------------------------------------------------------------
# self-checks and a speed probe


def check_scan(lengths=(1, 7, 45, 101), Q=16, seed=0, device="cpu"):
    """The chunked scan against scan_reference: outputs in FP32 and FP64, and
    gradients in FP64 (returns the worst relative errors)."""
    g = torch.Generator().manual_seed(seed)
    worst = {"fp32_out": 0.0, "fp64_out": 0.0, "fp64_grad": 0.0}
    for S in lengths:
        b, I, N = 2, 12, 5
        ins = [torch.randn(b, S, I, generator=g), F.softplus(torch.randn(b, S, I, generator=g)),
               -torch.exp(torch.randn(I, N, generator=g)), torch.randn(b, S, N, generator=g),
               torch.randn(b, S, N, generator=g)]
        ins = [x.to(device) for x in ins]
        for dt, key in ((torch.float32, "fp32_out"), (torch.float64, "fp64_out")):
            t = [x.to(dt) for x in ins]
            ref, got = scan_reference(*t), _ChunkedScan.apply(*t, Q)
            worst[key] = max(worst[key], ((got - ref).abs().max() / ref.abs().max()).item())
        t = [x.double().requires_grad_() for x in ins]
        gy = torch.randn(b, S, I, dtype=torch.float64, generator=g).to(device)
        g_ref = torch.autograd.grad((scan_reference(*t) * gy).sum(), t)
        g_got = torch.autograd.grad((_ChunkedScan.apply(*t, Q) * gy).sum(), t)
        for r, e in zip(g_ref, g_got):
            worst["fp64_grad"] = max(worst["fp64_grad"], ((e - r).abs().max() / r.abs().max()).item())
    return worst


def check_model(config, device, T=300, seed=0):
    """One model on `device` in FP32 and under BF16 autocast against itself in FP64
    on the CPU: relative logits error, and that a backward pass (with layer
    checkpointing) gives finite gradients."""
    torch.manual_seed(seed)
    ref = Hymba(config).double().eval()
    ids = torch.randint(0, ref.c.V, (2, T))
    with torch.no_grad():
        r = ref(ids)
        dev = Hymba(config, checkpoint_layers=True, init=False)
        dev.load_state_dict(ref.state_dict())
        dev = dev.float().to(device).eval()
        e32 = dev(ids.to(device)).double().cpu()
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
            e16 = dev(ids.to(device)).double().cpu()
    dev.train()
    F.cross_entropy(dev(ids.to(device))[:, :-1].flatten(0, 1), ids[:, 1:].to(device).flatten()).backward()
    finite = all(torch.isfinite(p.grad).all().item() for p in dev.parameters() if p.grad is not None)
    rel = lambda e: ((e - r).abs().max() / r.abs().max()).item()
    # BF16's max error is set by a few ill-conditioned positions of a random model
    # (the C engine's BF16 modes show the same); the median row is the robust figure
    rel_median = ((e16 - r).abs().amax(-1).median() / r.abs().max()).item()
    return {"fp32": rel(e32), "bf16_autocast": rel(e16), "bf16_autocast_median_row": rel_median,
            "grads_finite": finite}


def bench(config, batch, seq, steps, checkpoint_layers, device="cpu", autocast_bf16=False):
    """Forward+backward tokens/s and peak memory of a training step."""
    import resource
    model = Hymba(config, checkpoint_layers=checkpoint_layers).to(device)
    model.train()
    ids = torch.randint(0, model.c.V, (batch, seq), device=device)
    if device != "cpu" and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(steps + 1):
        t0 = time.time()
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=autocast_bf16):
            logits = model(ids)
            loss = F.cross_entropy(logits[:, :-1].float().flatten(0, 1), ids[:, 1:].flatten())
        loss.backward()
        model.zero_grad(set_to_none=True)
        if device != "cpu":
            torch.cuda.synchronize()
        times.append(time.time() - t0)
    sec = sum(times[1:]) / steps  # the first step warms caches and allocators
    if device != "cpu":
        peak = torch.cuda.max_memory_allocated()
    else:  # peak resident set of the whole process (Linux reports KiB)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"tokens_per_s": batch * seq / sec, "s_per_step": sec, "peak_bytes": peak,
            "params": count_params(model)["total"]}


def main():
    ap = argparse.ArgumentParser(description="hymba_torch self-checks, random checkpoints and a speed probe")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("selftest", help="chunked scan vs the sequential reference (values and gradients); "
                                        "the tiny configs on --device vs FP64 on the CPU")
    p.add_argument("--device", default="cpu")
    p = sub.add_parser("init", help="write a freshly initialised model as a HF checkpoint")
    p.add_argument("--config", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--dtype", default="float32", choices=sorted(_DTYPES))
    p.add_argument("--tokenizer", help="tokenizer.json or a directory holding one")
    p = sub.add_parser("bench", help="training-step speed (forward+backward)")
    p.add_argument("--config", required=True)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--checkpoint-layers", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast")
    args = ap.parse_args()
    if args.cmd == "selftest":
        worst = check_scan(device=args.device)
        print("scan", json.dumps(worst))
        ok = worst["fp32_out"] < 1e-5 and worst["fp64_out"] < 1e-12 and worst["fp64_grad"] < 1e-10
        configs = os.path.join(os.path.dirname(_TEMPLATE), "..", "configs")
        for name in ("tiny-hymba", "tiny-attn", "tiny-mamba", "tiny-mixed", "tiny-swa", "default"):
            r = check_model(load_config(os.path.join(configs, name + ".json")), args.device)
            print(name, json.dumps(r))
            ok &= r["fp32"] < 1e-4 and r["bf16_autocast_median_row"] < 0.05 and r["grads_finite"]
        print("ok" if ok else "FAILED")
        raise SystemExit(0 if ok else 1)
    if args.cmd == "init":
        torch.manual_seed(args.seed)
        config = load_config(args.config)
        model = Hymba(config)
        save_hf(model, config, args.out, dtype=args.dtype, tokenizer=args.tokenizer)
        print(json.dumps(count_params(model)))
    if args.cmd == "bench":
        torch.manual_seed(0)
        r = bench(load_config(args.config), args.batch, args.seq, args.steps, args.checkpoint_layers,
                  args.device, args.bf16)
        print(json.dumps(r))


if __name__ == "__main__":
    main()
