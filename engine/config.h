/* config.h: the Hymba config.json, every key the official config uses,
   validated. Architecture variants (attention-only, Mamba-only, any set of
   global/sliding-window layers, any KV-sharing groups, meta tokens on/off)
   are configuration; see docs/ARCHITECTURE.md. */
#ifndef HYMEVAL_CONFIG_H
#define HYMEVAL_CONFIG_H

#include <stdint.h>

#include "error.h"

#define HYMBA_MAX_LAYERS 256

typedef enum { LAYER_HYBRID = 'h', LAYER_ATTN = 'a', LAYER_MAMBA = 'm' } LayerKind;
typedef enum { ROPE_DEFAULT, ROPE_NTK } RopeType;
typedef enum { KQ_NORM_NONE, KQ_NORM_RMS, KQ_NORM_PERHEAD } KqNorm;
typedef enum { MLP_SILU, MLP_RELU2 } MlpAct;

typedef struct {
    /* sizes */
    int hidden_size;          /* H */
    int n_layers;             /* L */
    int n_heads;              /* nh */
    int n_kv_heads;           /* nkv */
    int head_dim;             /* dk = H / nh (query/key) */
    int v_head_dim;           /* dv = I / nh */
    int intermediate_size;    /* F, MLP width; 0 = no MLP */
    int vocab_size;           /* V */
    int ssm_inner;            /* I = mamba_expand * H */
    int ssm_state;            /* N = mamba_d_state */
    int ssm_conv;             /* K = mamba_d_conv */
    int ssm_dt_rank;          /* R = mamba_dt_rank */
    int n_meta;               /* M = num_memory_tokens */
    int sliding_window;       /* W; 0 = none (every layer global) */
    float rms_eps;
    /* flags */
    int rope;                 /* apply RoPE at all */
    RopeType rope_type;
    double rope_theta;
    int max_position_embeddings;
    int orig_max_position_embeddings;
    KqNorm kq_norm;
    MlpAct mlp_act;
    int conv_bias;            /* mamba_conv_bias */
    int proj_bias;            /* mamba_proj_bias: in_proj/out_proj biases */
    int inner_norms;          /* mamba_inner_layernorms: dt/B/C RMSNorms */
    int tie_embeddings;
    int bos_id, eos_id, pad_id;
    /* per layer */
    char layer_kind[HYMBA_MAX_LAYERS];   /* 'h', 'a', 'm' */
    uint8_t is_global[HYMBA_MAX_LAYERS]; /* full causal attention (else sliding window) */
    int kv_source[HYMBA_MAX_LAYERS];     /* layer whose K/V this layer uses (itself if it produces) */
} HymbaConfig;

/* Parses and validates dir/config.json (or a path to a .json file). Every
   error names the file and the key and says what was expected. */
int config_load(HymbaConfig *cfg, const char *path, Err *err);
/* The same from JSON text already in memory; `where` names it in errors. */
int config_parse(HymbaConfig *cfg, const char *json_text, const char *where, Err *err);

static inline int layer_has_attn(const HymbaConfig *c, int l) { return c->layer_kind[l] != LAYER_MAMBA; }
static inline int layer_has_ssm(const HymbaConfig *c, int l) { return c->layer_kind[l] != LAYER_ATTN; }
static inline int layer_owns_kv(const HymbaConfig *c, int l) { return layer_has_attn(c, l) && c->kv_source[l] == l; }

/* Rows of the layer's in_proj and where each part starts (-1 if absent). */
typedef struct { int q, k, v, x, z, rows; } InProjSplit;
InProjSplit config_in_proj_split(const HymbaConfig *c, int layer);

/* RoPE base after the rope_type adjustment (ntk scales it). */
double config_rope_base(const HymbaConfig *c);

/* Cache bytes per sequence after `tokens` text tokens (DESIGN.md §5), with
   kv_bytes per K/V element, conv_bytes per conv-state element; SSM state FP32. */
double config_cache_bytes(const HymbaConfig *c, long tokens, int kv_bytes, int conv_bytes);

/* Parameter counts by component (for inspect). */
typedef struct {
    int64_t embed, meta, lm_head, attn_qkv, ssm, fuse_out, norms, mlp, total;
} ParamCount;
ParamCount config_param_count(const HymbaConfig *c);

#endif
