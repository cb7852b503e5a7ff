/* weights.h: the model's tensors, bound by name from a safetensors
   checkpoint and converted once to FP32 (rounded to BF16 values when a BF16
   precision mode is emulated). Shapes are checked against config.json. */
#ifndef HYMEVAL_WEIGHTS_H
#define HYMEVAL_WEIGHTS_H

#include "config.h"
#include "error.h"
#include "safetensors.h"

typedef struct {
    float *input_norm;       /* [H] */
    float *in_proj;          /* [rows, H], rows per config_in_proj_split */
    float *in_proj_bias;     /* [rows] or NULL */
    float *q_norm, *k_norm;  /* [dk] (rms) or [nh*dk] / [nkv*dk] (perhead-rms) or NULL */
    float *conv_w;           /* [I, K] */
    float *conv_b;           /* [I] or NULL */
    float *x_proj;           /* [R + 2N, I] */
    float *dt_proj;          /* [I, R] */
    float *dt_bias;          /* [I] */
    float *A;                /* [I, N] = -exp(A_log), computed at load in FP32 */
    float *D;                /* [I] */
    float *dt_norm;          /* [R] or NULL */
    float *B_norm, *C_norm;  /* [N] or NULL */
    float *attn_out_norm;    /* pre_avg_layernorm1 [I] (attention-bearing layers) */
    float *ssm_out_norm;     /* pre_avg_layernorm2 [I] (SSM-bearing layers) */
    float *out_proj;         /* [H, I] */
    float *out_proj_bias;    /* [H] or NULL */
    float *mlp_norm;         /* pre_moe_layernorm [H] or NULL */
    float *mlp_gate;         /* [F, H] or NULL (relu2) */
    float *mlp_up;           /* [F, H] */
    float *mlp_down;         /* [H, F] */
} LayerWeights;

typedef struct {
    float *embed;            /* [V, H] */
    float *meta;             /* [M, H] or NULL */
    float *final_norm;       /* [H] */
    float *lm_head;          /* [V, H]; == embed when tied */
    LayerWeights *layers;    /* [L] */
    float *arena;            /* one allocation holding every tensor above */
    size_t n_floats;
    const char *source_dtype;/* dtype of the checkpoint's embedding, e.g. "BF16" */
} Weights;

/* Binds every tensor the config implies; reports all missing / misshapen /
   unexpected tensors at once, naming file and tensor. round_to_bf16 rounds
   every weight to BF16 after conversion. */
int weights_load(Weights *w, const HymbaConfig *cfg, const StCheckpoint *ck, int round_to_bf16, Err *err);
void weights_free(Weights *w);

/* The list of tensors a config implies (names and shapes), in a fixed order;
   used by weights_load and by init-model. Returns the count; *out is malloc'd. */
typedef struct {
    char name[128];
    int ndim;
    int64_t shape[3];
} TensorSpec;
int weights_expected(const HymbaConfig *cfg, TensorSpec **out);

#endif
