/* model.c: loading a Hymba checkpoint and the forward pass on the CPU.
   forward_chunk() is the whole model, top to bottom, as in
   docs/ARCHITECTURE.md: meta tokens, then per layer the attention heads and
   SSM heads side by side on the same normalised input, their normalised
   average, out projection, residual, MLP; final norm and LM head. Two hooks
   for the measurement kinds: position_offset shifts every RoPE position id,
   and an optional observer (observe.h) is shown the attention rows, the SSM
   tokens and the final hidden states as they are computed. */
#include "model.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bf16.h"
#include "ops_cpu.h"

#ifdef _OPENMP
#include <omp.h>
#define OMP_PARALLEL _Pragma("omp parallel")
#define OMP_FOR _Pragma("omp for schedule(dynamic, 1)")
#else
#define OMP_PARALLEL
#define OMP_FOR
#endif

static const char *const precision_names[] = {"fp32", "bf16-paper", "bf16-hf", "bf16-all"};

int precision_parse(const char *name, Precision *out) {
    for (int i = 0; i < 4; i++)
        if (strcmp(name, precision_names[i]) == 0) {
            *out = (Precision)i;
            return 0;
        }
    return -1;
}

const char *precision_name(Precision p) { return precision_names[p]; }

/* ---------------------------------------------------------------- loading */

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static void compute_inv_freq(HymbaModel *m) {
    /* As the official LlamaRotaryEmbedding: base ** (arange(0, d, 2) / d) in
       FP32, then 1 / that in FP32. */
    int half = m->cfg.head_dim / 2;
    float base = (float)config_rope_base(&m->cfg);
    for (int i = 0; i < half; i++) {
        float exponent = (float)(2 * i) / (float)m->cfg.head_dim;
        m->inv_freq[i] = 1.0f / powf(base, exponent);
    }
}

HymbaModel *model_load(const char *dir, Precision precision, Err *err) {
    HymbaModel *m = calloc(1, sizeof *m);
    if (!m) {
        err_set(err, "out of memory");
        return NULL;
    }
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    m->precision = precision;
    if (config_load(&m->cfg, dir, err)) goto fail;
    m->ck = st_open(dir, err);
    if (!m->ck) goto fail;
    if (weights_load(&m->w, &m->cfg, m->ck, precision != PREC_FP32, err)) {
        char where[4200];
        snprintf(where, sizeof where, "%s", dir);
        err_prefix(err, "%s", where);
        goto fail;
    }
    char tok_path[4200];
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", dir);
    if (file_exists(tok_path)) {
        m->tok = tokenizer_load(dir, err);
        if (!m->tok) goto fail;
        if (tokenizer_vocab_size(m->tok) > m->cfg.vocab_size) {
            err_set(err, "%s: tokenizer has %d tokens but config.json vocab_size is %d", tok_path,
                    tokenizer_vocab_size(m->tok), m->cfg.vocab_size);
            goto fail;
        }
    }
    m->inv_freq = malloc(sizeof(float) * (size_t)(m->cfg.head_dim / 2));
    if (!m->inv_freq) {
        err_set(err, "out of memory");
        goto fail;
    }
    compute_inv_freq(m);
    return m;
fail:
    model_free(m);
    return NULL;
}

void model_free(HymbaModel *m) {
    if (!m) return;
    weights_free(&m->w);
    if (m->ck) st_close(m->ck);
    if (m->tok) tokenizer_free(m->tok);
    if (m->have_meta_prefix) cache_free(&m->meta_prefix);
    free(m->inv_freq);
    free(m);
}

/* ---------------------------------------------------------------- helpers */

/* Rounds activations to BF16 in the BF16 precision modes (no-op in fp32). */
static void act_round(const HymbaModel *m, float *x, size_t n) {
    if (m->precision == PREC_FP32) return;
    for (size_t i = 0; i < n; i++) x[i] = round_bf16(x[i]);
}

/* cos/sin of the RoPE angles of positions p0 .. p0+n-1, per precision mode. */
static void rope_tables(const HymbaModel *m, int p0, int n, float *cos_t, float *sin_t) {
    int half = m->cfg.head_dim / 2;
    for (int t = 0; t < n; t++) {
        int p = p0 + t;
        for (int i = 0; i < half; i++) {
            float c, s;
            if (m->precision == PREC_FP32 || m->precision == PREC_BF16_PAPER) {
                double angle = (double)p * (double)m->inv_freq[i];
                c = (float)cos(angle);
                s = (float)sin(angle);
            } else if (m->precision == PREC_BF16_HF) {
                float angle = (float)p * m->inv_freq[i]; /* FP32 product, as inv_freq @ position_ids */
                c = round_bf16((float)cos((double)angle));
                s = round_bf16((float)sin((double)angle));
            } else { /* PREC_BF16_ALL: the angle itself in BF16 */
                float angle = round_bf16(round_bf16((float)p) * round_bf16(m->inv_freq[i]));
                c = round_bf16((float)cos((double)angle));
                s = round_bf16((float)sin((double)angle));
            }
            cos_t[(size_t)t * half + i] = c;
            sin_t[(size_t)t * half + i] = s;
        }
    }
}

/* Normalises each head of a [heads * d] vector (kq_norm), then applies RoPE. */
static void qk_prepare(const HymbaModel *m, float *x, int heads, const float *norm_w, const float *cos_a,
                       const float *sin_a) {
    const HymbaConfig *c = &m->cfg;
    int d = c->head_dim;
    for (int h = 0; h < heads; h++) {
        float *xh = x + (size_t)h * d;
        if (norm_w) {
            const float *w = c->kq_norm == KQ_NORM_PERHEAD ? norm_w + (size_t)h * d : norm_w;
            rmsnorm(xh, xh, w, d, 1e-6f); /* HymbaRMSNorm default eps in the attention module */
            act_round(m, xh, (size_t)d);
        }
        if (!c->rope) continue;
        if (m->precision == PREC_FP32) {
            rope_apply(xh, cos_a, sin_a, d);
        } else if (m->precision == PREC_BF16_PAPER) {
            rope_apply(xh, cos_a, sin_a, d); /* FP32 rotation of the BF16 values */
            act_round(m, xh, (size_t)d);
        } else {
            rope_apply_bf16(xh, cos_a, sin_a, d);
        }
    }
}

/* Scratch for one forward chunk of n tokens. */
typedef struct {
    float *h;        /* [n, H] residual stream */
    float *u;        /* [n, H] normalised input */
    float *proj;     /* [n, rows] in_proj output (q | k | v | x | z) */
    float *q;        /* [n, nh*dk] rotated queries */
    float *attn;     /* [n, nh*dv = I] attention heads' output */
    float *xc;       /* [n, I] conv + SiLU output */
    float *xdb;      /* [n, R + 2N] x_proj output */
    float *delta;    /* [n, I] */
    float *ssm_y;    /* [n, I] */
    float *fused;    /* [n, I] */
    float *mlp_a;    /* [n, F] */
    float *mlp_b;    /* [n, F] */
    float *cos_t;    /* [n, dk/2] */
    float *sin_t;    /* [n, dk/2] */
    float **k_new;   /* [L] producer layers: [n, nkv*dk] this chunk's keys */
    float **v_new;   /* [L] producer layers: [n, nkv*dv] */
    float *block;    /* one allocation for the above */
} Scratch;

static int scratch_alloc(Scratch *s, const HymbaConfig *c, int n, Err *err) {
    memset(s, 0, sizeof *s);
    size_t H = (size_t)c->hidden_size, I = (size_t)c->ssm_inner, F = (size_t)c->intermediate_size;
    size_t rows = 0, producers = 0;
    for (int l = 0; l < c->n_layers; l++) {
        InProjSplit sp = config_in_proj_split(c, l);
        if ((size_t)sp.rows > rows) rows = (size_t)sp.rows;
        if (layer_owns_kv(c, l)) producers++;
    }
    size_t kvw = (size_t)c->n_kv_heads * c->head_dim, vw = (size_t)c->n_kv_heads * c->v_head_dim;
    size_t half = (size_t)c->head_dim / 2;
    size_t xdb = (size_t)c->ssm_dt_rank + 2 * (size_t)c->ssm_state;
    size_t per_token = 2 * H + rows + H + 5 * I + xdb + 2 * F + 2 * half + producers * (kvw + vw);
    s->block = malloc((size_t)n * per_token * sizeof(float) + 64);
    s->k_new = calloc((size_t)c->n_layers, sizeof *s->k_new);
    s->v_new = calloc((size_t)c->n_layers, sizeof *s->v_new);
    if (!s->block || !s->k_new || !s->v_new) {
        free(s->block), free(s->k_new), free(s->v_new);
        return err_set(err, "out of memory: %d tokens need %.1f MB of activations", n,
                       (double)n * per_token * 4 / 1e6);
    }
    float *p = s->block;
#define TAKE(field, count) (s->field = p, p += (size_t)n * (count))
    TAKE(h, H);
    TAKE(u, H);
    TAKE(proj, rows);
    TAKE(q, H);
    TAKE(attn, I);
    TAKE(xc, I);
    TAKE(xdb, xdb);
    TAKE(delta, I);
    TAKE(ssm_y, I);
    TAKE(fused, I);
    TAKE(mlp_a, F);
    TAKE(mlp_b, F);
    TAKE(cos_t, half);
    TAKE(sin_t, half);
#undef TAKE
    for (int l = 0; l < c->n_layers; l++) {
        if (!layer_owns_kv(c, l)) continue;
        s->k_new[l] = p;
        p += (size_t)n * kvw;
        s->v_new[l] = p;
        p += (size_t)n * vw;
    }
    return 0;
}

static void scratch_free(Scratch *s) {
    free(s->block);
    free(s->k_new);
    free(s->v_new);
}

/* ---------------------------------------------------------------- attention */

/* For the observer (observe.h) only: one query head's pre-softmax scores and
   probabilities over its visible keys, by the same operations in the same
   order as attend() in ops_cpu.c (8-lane dot, FP32 max, expf, FP32 sum), so
   the observer sees the numbers the model used. */
static void observed_softmax(const float *q, const float *const *keys, int n, int dk, float scale, float *scores,
                             float *probs) {
    float max_score = -FLT_MAX;
    for (int i = 0; i < n; i++) {
        float acc[8] = {0};
        int d = 0;
        for (; d + 8 <= dk; d += 8)
            for (int j = 0; j < 8; j++) acc[j] += q[d + j] * keys[i][d + j];
        for (int j = 0; d < dk; d++, j++) acc[j] += q[d] * keys[i][d];
        scores[i] = (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))) * scale;
        if (scores[i] > max_score) max_score = scores[i];
    }
    float total = 0.0f;
    for (int i = 0; i < n; i++) {
        probs[i] = expf(scores[i] - max_score);
        total += probs[i];
    }
    float inv_total = 1.0f / total;
    for (int i = 0; i < n; i++) probs[i] *= inv_total;
}

/* Attention heads of layer l for the chunk's n queries at positions p0.. .
   Keys before p0 come from the cache of the layer that owns this layer's KV,
   keys of the chunk from that layer's k_new/v_new. Visible keys (ARCHITECTURE
   §2.1): every meta token, and positions q-W..q in a sliding-window layer,
   every earlier position in a global layer. */
static int attention_heads(const HymbaModel *m, const SeqCache *c, const Scratch *s, int l, int p0, int n, Err *err) {
    const HymbaConfig *cfg = &m->cfg;
    int src = cfg->kv_source[l];
    int nh = cfg->n_heads, dk = cfg->head_dim, dv = cfg->v_head_dim, group = nh / cfg->n_kv_heads;
    size_t kvw = (size_t)cfg->n_kv_heads * dk, vw = (size_t)cfg->n_kv_heads * dv;
    int M = cfg->n_meta, W = cfg->sliding_window, global = cfg->is_global[l];
    int max_keys = p0 + n;
    float scale = 1.0f / sqrtf((float)dk);
    const HymbaObserver *obs = m->observer && m->observer->attn_row ? m->observer : NULL;
    int failed = 0;
    OMP_PARALLEL
    {
        const float **keys = malloc(sizeof *keys * (size_t)max_keys);
        const float **vals = malloc(sizeof *vals * (size_t)max_keys);
        float *scores = malloc(sizeof *scores * (size_t)max_keys);
        /* observer only: key positions, and its own scores and probabilities */
        int *key_pos = obs ? malloc(sizeof *key_pos * (size_t)max_keys) : NULL;
        float *obs_rows = obs ? malloc(sizeof *obs_rows * 2 * (size_t)max_keys) : NULL;
        if (!keys || !vals || !scores || (obs && (!key_pos || !obs_rows))) failed = 1;
        OMP_FOR
        for (int t = 0; t < n; t++) {
            if (!keys || !vals || !scores || (obs && (!key_pos || !obs_rows))) continue;
            int p = p0 + t;
            int meta_end = M < p + 1 ? M : p + 1;
            int band_start = global ? M : (p - W > M ? p - W : M);
            for (int g = 0; g < cfg->n_kv_heads; g++) {
                int nk = 0;
                for (int pass = 0; pass < 2; pass++) {
                    int from = pass == 0 ? 0 : band_start, to = pass == 0 ? meta_end : p + 1;
                    for (int kp = from; kp < to; kp++, nk++) {
                        if (key_pos) key_pos[nk] = kp;
                        if (kp < p0) {
                            size_t slot = (size_t)cache_slot(cfg, src, kp);
                            keys[nk] = c->k[src] + slot * kvw + (size_t)g * dk;
                            vals[nk] = c->v[src] + slot * vw + (size_t)g * dv;
                        } else {
                            keys[nk] = s->k_new[src] + (size_t)(kp - p0) * kvw + (size_t)g * dk;
                            vals[nk] = s->v_new[src] + (size_t)(kp - p0) * vw + (size_t)g * dv;
                        }
                    }
                }
                for (int j = g * group; j < (g + 1) * group; j++) {
                    const float *qj = s->q + (size_t)t * nh * dk + (size_t)j * dk;
                    attend(s->attn + (size_t)t * nh * dv + (size_t)j * dv, qj, keys, vals, nk, dk, dv, scale, scores);
                    if (obs) {
                        observed_softmax(qj, keys, nk, dk, scale, obs_rows, obs_rows + max_keys);
                        obs->attn_row(obs->user, l, j, p, nk, key_pos, obs_rows, obs_rows + max_keys);
                    }
                }
            }
        }
        free(keys);
        free(vals);
        free(scores);
        free(key_pos);
        free(obs_rows);
    }
    if (failed) return err_set(err, "out of memory in attention (%d keys)", max_keys);
    return 0;
}

/* ---------------------------------------------------------------- forward */

/* Runs n rows of input embeddings x_in through the model, continuing cache c. */
static int forward_chunk(HymbaModel *m, SeqCache *c, const float *x_in, int n, LogitsWanted want, float *logits,
                         Err *err) {
    const HymbaConfig *cfg = &m->cfg;
    const int H = cfg->hidden_size, I = cfg->ssm_inner, N = cfg->ssm_state, R = cfg->ssm_dt_rank;
    const int K = cfg->ssm_conv, F = cfg->intermediate_size, nh = cfg->n_heads, dk = cfg->head_dim;
    const int nkv = cfg->n_kv_heads, dv = cfg->v_head_dim, half = dk / 2, XDB = R + 2 * N;
    const int p0 = c->n_pos;
    if (n <= 0) return 0;
    if (cache_reserve(c, cfg, p0 + n, err)) return -1;
    Scratch s;
    if (scratch_alloc(&s, cfg, n, err)) return -1;
    memcpy(s.h, x_in, sizeof(float) * (size_t)n * H);
    rope_tables(m, p0 + m->position_offset, n, s.cos_t, s.sin_t); /* RoPE sees the shifted position ids */
    const HymbaObserver *obs = m->observer;

    for (int l = 0; l < cfg->n_layers; l++) {
        const LayerWeights *w = &m->w.layers[l];
        const InProjSplit sp = config_in_proj_split(cfg, l);
        const size_t rows = (size_t)sp.rows;

        /* u = RMSNorm(h); p = in_proj u: q | k | v | x | z */
        for (int t = 0; t < n; t++) rmsnorm(s.u + (size_t)t * H, s.h + (size_t)t * H, w->input_norm, H, cfg->rms_eps);
        act_round(m, s.u, (size_t)n * H);
        matmul(s.proj, rows, s.u, H, w->in_proj, w->in_proj_bias, n, H, sp.rows);
        act_round(m, s.proj, (size_t)n * rows);

        /* attention heads: q (and k, v if this layer owns its KV), normed and rotated */
        if (layer_has_attn(cfg, l)) {
            for (int t = 0; t < n; t++) {
                const float *pt = s.proj + (size_t)t * rows;
                const float *cos_a = s.cos_t + (size_t)t * half, *sin_a = s.sin_t + (size_t)t * half;
                float *qt = s.q + (size_t)t * nh * dk;
                memcpy(qt, pt + sp.q, sizeof(float) * (size_t)nh * dk);
                qk_prepare(m, qt, nh, w->q_norm, cos_a, sin_a);
                if (layer_owns_kv(cfg, l)) {
                    float *kt = s.k_new[l] + (size_t)t * nkv * dk;
                    memcpy(kt, pt + sp.k, sizeof(float) * (size_t)nkv * dk);
                    qk_prepare(m, kt, nkv, w->k_norm, cos_a, sin_a);
                    memcpy(s.v_new[l] + (size_t)t * nkv * dv, pt + sp.v, sizeof(float) * (size_t)nkv * dv);
                }
            }
            if (attention_heads(m, c, &s, l, p0, n, err)) {
                scratch_free(&s);
                return -1;
            }
            act_round(m, s.attn, (size_t)n * I);
        }

        /* SSM heads: causal conv + SiLU, x_proj -> (dt, B, C), selective scan, gate */
        if (layer_has_ssm(cfg, l)) {
            for (int t = 0; t < n; t++)
                conv1d_step(s.xc + (size_t)t * I, c->conv[l], s.proj + (size_t)t * rows + sp.x, w->conv_w, w->conv_b,
                            I, K);
            act_round(m, s.xc, (size_t)n * I);
            matmul(s.xdb, XDB, s.xc, I, w->x_proj, NULL, n, I, XDB);
            act_round(m, s.xdb, (size_t)n * XDB);
            if (w->dt_norm) {
                for (int t = 0; t < n; t++) {
                    float *row = s.xdb + (size_t)t * XDB;
                    rmsnorm(row, row, w->dt_norm, R, cfg->rms_eps);
                    rmsnorm(row + R, row + R, w->B_norm, N, cfg->rms_eps);
                    rmsnorm(row + R + N, row + R + N, w->C_norm, N, cfg->rms_eps);
                }
                act_round(m, s.xdb, (size_t)n * XDB);
            }
            /* delta = softplus(dt_proj dt + bias): the bias is added in FP32 inside the scan, as the official kernel does */
            matmul(s.delta, I, s.xdb, XDB, w->dt_proj, NULL, n, R, I);
            act_round(m, s.delta, (size_t)n * I);
            for (int t = 0; t < n; t++) {
                float *dt = s.delta + (size_t)t * I;
                for (int ch = 0; ch < I; ch++) dt[ch] = softplus(dt[ch] + w->dt_bias[ch]);
                const float *row = s.xdb + (size_t)t * XDB;
                scan_step(s.ssm_y + (size_t)t * I, c->ssm[l], dt, w->A, row + R, row + R + N, s.xc + (size_t)t * I,
                          w->D, s.proj + (size_t)t * rows + sp.z, I, N);
                if (obs && obs->ssm_token)
                    obs->ssm_token(obs->user, l, p0 + t, I, N, dt, row + R, row + R + N, s.xc + (size_t)t * I, w->A);
            }
            act_round(m, s.ssm_y, (size_t)n * I);
        }

        /* fuse: (RMSNorm(attn) + RMSNorm(ssm)) / 2, or the one branch present */
        for (int t = 0; t < n; t++) {
            float *f = s.fused + (size_t)t * I;
            if (layer_has_attn(cfg, l) && layer_has_ssm(cfg, l)) {
                float *a = s.attn + (size_t)t * I, *y = s.ssm_y + (size_t)t * I;
                rmsnorm(a, a, w->attn_out_norm, I, cfg->rms_eps);
                rmsnorm(y, y, w->ssm_out_norm, I, cfg->rms_eps);
                act_round(m, a, (size_t)I);
                act_round(m, y, (size_t)I);
                for (int i = 0; i < I; i++) f[i] = (a[i] + y[i]) / 2.0f;
            } else if (layer_has_attn(cfg, l)) {
                rmsnorm(f, s.attn + (size_t)t * I, w->attn_out_norm, I, cfg->rms_eps);
            } else {
                rmsnorm(f, s.ssm_y + (size_t)t * I, w->ssm_out_norm, I, cfg->rms_eps);
            }
        }
        act_round(m, s.fused, (size_t)n * I);

        /* h += out_proj f */
        matmul(s.u, H, s.fused, I, w->out_proj, w->out_proj_bias, n, I, H);
        act_round(m, s.u, (size_t)n * H);
        for (size_t i = 0; i < (size_t)n * H; i++) s.h[i] += s.u[i];
        act_round(m, s.h, (size_t)n * H);

        /* h += MLP(RMSNorm(h)) */
        if (F > 0) {
            for (int t = 0; t < n; t++) rmsnorm(s.u + (size_t)t * H, s.h + (size_t)t * H, w->mlp_norm, H, cfg->rms_eps);
            act_round(m, s.u, (size_t)n * H);
            matmul(s.mlp_b, F, s.u, H, w->mlp_up, NULL, n, H, F);
            act_round(m, s.mlp_b, (size_t)n * F);
            if (cfg->mlp_act == MLP_SILU) {
                matmul(s.mlp_a, F, s.u, H, w->mlp_gate, NULL, n, H, F);
                act_round(m, s.mlp_a, (size_t)n * F);
                for (size_t i = 0; i < (size_t)n * F; i++) s.mlp_a[i] = silu(s.mlp_a[i]);
                act_round(m, s.mlp_a, (size_t)n * F);
                for (size_t i = 0; i < (size_t)n * F; i++) s.mlp_a[i] *= s.mlp_b[i];
            } else {
                for (size_t i = 0; i < (size_t)n * F; i++) {
                    float r = s.mlp_b[i] > 0 ? s.mlp_b[i] : 0.0f;
                    s.mlp_a[i] = r * r;
                }
            }
            act_round(m, s.mlp_a, (size_t)n * F);
            matmul(s.u, H, s.mlp_a, F, w->mlp_down, NULL, n, F, H);
            act_round(m, s.u, (size_t)n * H);
            for (size_t i = 0; i < (size_t)n * H; i++) s.h[i] += s.u[i];
            act_round(m, s.h, (size_t)n * H);
        }
    }

    /* The chunk's keys and values join the cache only now: a consumer layer
       read them from k_new/v_new, and a ring slot must not be overwritten
       while an earlier query of the chunk still needs it. */
    for (int l = 0; l < cfg->n_layers; l++) {
        if (!layer_owns_kv(cfg, l)) continue;
        for (int t = 0; t < n; t++) {
            size_t slot = (size_t)cache_slot(cfg, l, p0 + t);
            memcpy(c->k[l] + slot * nkv * dk, s.k_new[l] + (size_t)t * nkv * dk, sizeof(float) * (size_t)nkv * dk);
            memcpy(c->v[l] + slot * nkv * dv, s.v_new[l] + (size_t)t * nkv * dv, sizeof(float) * (size_t)nkv * dv);
        }
    }
    c->n_pos = p0 + n;

    /* the observer's final hidden states: every row after the final norm */
    if (obs && obs->hidden) {
        for (int t = 0; t < n; t++) {
            float *row = s.u; /* free until the LM head below */
            rmsnorm(row, s.h + (size_t)t * H, m->w.final_norm, H, cfg->rms_eps);
            act_round(m, row, (size_t)H);
            obs->hidden(obs->user, p0 + t, row, H);
        }
    }

    /* final norm and LM head on the rows whose logits are wanted */
    if (want != LOGITS_NONE) {
        int first = want == LOGITS_LAST ? n - 1 : 0;
        int count = n - first;
        for (int t = first; t < n; t++)
            rmsnorm(s.u + (size_t)(t - first) * H, s.h + (size_t)t * H, m->w.final_norm, H, cfg->rms_eps);
        act_round(m, s.u, (size_t)count * H);
        matmul(logits, cfg->vocab_size, s.u, H, m->w.lm_head, NULL, count, H, cfg->vocab_size);
        act_round(m, logits, (size_t)count * cfg->vocab_size);
    }
    scratch_free(&s);
    return 0;
}

/* ---------------------------------------------------------------- public entry points */

int model_begin(HymbaModel *m, SeqCache *c, Err *err) {
    const HymbaConfig *cfg = &m->cfg;
    if (cfg->n_meta == 0) return cache_init(c, cfg, 64, err);
    if (m->observer) {
        /* An observer sees every row: run the meta tokens again (the same
           computation, so the same state, as the cached prefix). */
        if (cache_init(c, cfg, cfg->n_meta + 64, err)) return -1;
        if (forward_chunk(m, c, m->w.meta, cfg->n_meta, LOGITS_NONE, NULL, err)) {
            cache_free(c);
            return -1;
        }
        return 0;
    }
    if (m->have_meta_prefix && m->meta_prefix_offset != m->position_offset) {
        /* the prefix's keys were rotated at other position ids */
        cache_free(&m->meta_prefix);
        m->have_meta_prefix = 0;
    }
    if (!m->have_meta_prefix) {
        /* The meta tokens do not depend on the input: run them once and start
           every sequence from a copy of their state (exact, not an approximation). */
        if (cache_init(&m->meta_prefix, cfg, cfg->n_meta + 64, err)) return -1;
        if (forward_chunk(m, &m->meta_prefix, m->w.meta, cfg->n_meta, LOGITS_NONE, NULL, err)) {
            cache_free(&m->meta_prefix);
            return -1;
        }
        m->have_meta_prefix = 1;
        m->meta_prefix_offset = m->position_offset;
    }
    return cache_clone(c, &m->meta_prefix, cfg, err);
}

int model_forward(HymbaModel *m, SeqCache *c, const int32_t *ids, int n, LogitsWanted want, float *logits,
                  Err *err) {
    const int H = m->cfg.hidden_size;
    if (n <= 0) return err_set(err, "model_forward: no tokens");
    float *x = malloc(sizeof(float) * (size_t)n * H);
    if (!x) return err_set(err, "out of memory embedding %d tokens", n);
    for (int t = 0; t < n; t++) {
        if (ids[t] < 0 || ids[t] >= m->cfg.vocab_size) {
            free(x);
            return err_set(err, "token id %d at position %d is outside the vocabulary [0, %d)", ids[t], t,
                           m->cfg.vocab_size);
        }
        memcpy(x + (size_t)t * H, m->w.embed + (size_t)ids[t] * H, sizeof(float) * (size_t)H);
    }
    int rc = forward_chunk(m, c, x, n, want, logits, err);
    free(x);
    return rc;
}
