/* weights.c: checkpoint tensors → Weights, by the names modeling_hymba.py
   gives them (docs/ARCHITECTURE.md §5). */
#include "weights.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"

static void add_spec(TensorSpec *specs, int *n, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2) {
    TensorSpec *s = &specs[(*n)++];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->ndim = ndim;
    s->shape[0] = d0;
    s->shape[1] = d1;
    s->shape[2] = d2;
}

#define LAYER_NAME(buf, l, suffix) snprintf(buf, sizeof buf, "model.layers.%d.%s", l, suffix)

int weights_expected(const HymbaConfig *c, TensorSpec **out) {
    int64_t H = c->hidden_size, I = c->ssm_inner, N = c->ssm_state, R = c->ssm_dt_rank, K = c->ssm_conv;
    int64_t F = c->intermediate_size, dk = c->head_dim;
    TensorSpec *specs = calloc((size_t)c->n_layers * 32 + 8, sizeof *specs);
    if (!specs) return -1;
    int n = 0;
    char nm[128];
    add_spec(specs, &n, "model.embed_tokens.weight", 2, c->vocab_size, H, 0);
    if (c->n_meta > 0) add_spec(specs, &n, "model.memory_tokens", 2, c->n_meta, H, 0);
    for (int l = 0; l < c->n_layers; l++) {
        InProjSplit sp = config_in_proj_split(c, l);
        LAYER_NAME(nm, l, "input_layernorm.weight");
        add_spec(specs, &n, nm, 1, H, 0, 0);
        LAYER_NAME(nm, l, "mamba.in_proj.weight");
        add_spec(specs, &n, nm, 2, sp.rows, H, 0);
        if (c->proj_bias) {
            LAYER_NAME(nm, l, "mamba.in_proj.bias");
            add_spec(specs, &n, nm, 1, sp.rows, 0, 0);
        }
        if (layer_has_attn(c, l) && c->kq_norm != KQ_NORM_NONE) {
            int perhead = c->kq_norm == KQ_NORM_PERHEAD;
            LAYER_NAME(nm, l, "mamba.self_attn.q_norm.weight");
            if (perhead) add_spec(specs, &n, nm, 3, c->n_heads, 1, dk); /* stored [1, heads, 1, dk] */
            else add_spec(specs, &n, nm, 1, dk, 0, 0);
            if (layer_owns_kv(c, l)) {
                LAYER_NAME(nm, l, "mamba.self_attn.k_norm.weight");
                if (perhead) add_spec(specs, &n, nm, 3, c->n_kv_heads, 1, dk);
                else add_spec(specs, &n, nm, 1, dk, 0, 0);
            }
        }
        if (layer_has_ssm(c, l)) {
            LAYER_NAME(nm, l, "mamba.conv1d.weight");
            add_spec(specs, &n, nm, 3, I, 1, K);
            if (c->conv_bias) {
                LAYER_NAME(nm, l, "mamba.conv1d.bias");
                add_spec(specs, &n, nm, 1, I, 0, 0);
            }
            LAYER_NAME(nm, l, "mamba.x_proj.0.weight");
            add_spec(specs, &n, nm, 2, R + 2 * N, I, 0);
            LAYER_NAME(nm, l, "mamba.dt_proj.0.weight");
            add_spec(specs, &n, nm, 2, I, R, 0);
            LAYER_NAME(nm, l, "mamba.dt_proj.0.bias");
            add_spec(specs, &n, nm, 1, I, 0, 0);
            LAYER_NAME(nm, l, "mamba.A_log.0");
            add_spec(specs, &n, nm, 2, I, N, 0);
            LAYER_NAME(nm, l, "mamba.D.0");
            add_spec(specs, &n, nm, 1, I, 0, 0);
            if (c->inner_norms) {
                LAYER_NAME(nm, l, "mamba.dt_layernorm.weight");
                add_spec(specs, &n, nm, 1, R, 0, 0);
                LAYER_NAME(nm, l, "mamba.B_layernorm.weight");
                add_spec(specs, &n, nm, 1, N, 0, 0);
                LAYER_NAME(nm, l, "mamba.C_layernorm.weight");
                add_spec(specs, &n, nm, 1, N, 0, 0);
            }
            LAYER_NAME(nm, l, "mamba.pre_avg_layernorm2.weight");
            add_spec(specs, &n, nm, 1, I, 0, 0);
        }
        if (layer_has_attn(c, l)) {
            LAYER_NAME(nm, l, "mamba.pre_avg_layernorm1.weight");
            add_spec(specs, &n, nm, 1, I, 0, 0);
        }
        LAYER_NAME(nm, l, "mamba.out_proj.weight");
        add_spec(specs, &n, nm, 2, H, I, 0);
        if (c->proj_bias) {
            LAYER_NAME(nm, l, "mamba.out_proj.bias");
            add_spec(specs, &n, nm, 1, H, 0, 0);
        }
        if (F > 0) {
            LAYER_NAME(nm, l, "pre_moe_layernorm.weight");
            add_spec(specs, &n, nm, 1, H, 0, 0);
            if (c->mlp_act == MLP_SILU) {
                LAYER_NAME(nm, l, "moe.experts.0.gate_proj.weight");
                add_spec(specs, &n, nm, 2, F, H, 0);
            }
            LAYER_NAME(nm, l, "moe.experts.0.up_proj.weight");
            add_spec(specs, &n, nm, 2, F, H, 0);
            LAYER_NAME(nm, l, "moe.experts.0.down_proj.weight");
            add_spec(specs, &n, nm, 2, H, F, 0);
        }
    }
    add_spec(specs, &n, "model.final_layernorm.weight", 1, H, 0, 0);
    if (!c->tie_embeddings) add_spec(specs, &n, "lm_head.weight", 2, c->vocab_size, H, 0);
    *out = specs;
    return n;
}

static int64_t spec_numel(const TensorSpec *s) {
    int64_t n = 1;
    for (int d = 0; d < s->ndim; d++) n *= s->shape[d];
    return n;
}

static void shape_str(char *buf, size_t len, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < ndim && used < len; d++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (used < len) snprintf(buf + used, len - used, "]");
}

/* Appends one problem line to the error message (all problems are reported together). */
static void note_problem(Err *err, int *n_problems, const char *fmt, const char *a, const char *b, const char *c) {
    if (*n_problems < 12 && err) {
        size_t used = strlen(err->msg);
        snprintf(err->msg + used, sizeof err->msg - used, "\n  ");
        used = strlen(err->msg);
        snprintf(err->msg + used, sizeof err->msg - used, fmt, a, b, c);
    }
    (*n_problems)++;
}

/* Points the LayerWeights/Weights fields at their tensors in the arena. */
static void bind(Weights *w, const HymbaConfig *c, const TensorSpec *specs, float *const *ptr, int n_specs) {
    for (int i = 0; i < n_specs; i++) {
        const char *name = specs[i].name;
        float *p = ptr[i];
        if (strcmp(name, "model.embed_tokens.weight") == 0) w->embed = p;
        else if (strcmp(name, "model.memory_tokens") == 0) w->meta = p;
        else if (strcmp(name, "model.final_layernorm.weight") == 0) w->final_norm = p;
        else if (strcmp(name, "lm_head.weight") == 0) w->lm_head = p;
        else {
            int l;
            char field[100];
            if (sscanf(name, "model.layers.%d.%99s", &l, field) != 2) continue;
            LayerWeights *lw = &w->layers[l];
            static const struct { const char *suffix; size_t offset; } table[] = {
                {"input_layernorm.weight", offsetof(LayerWeights, input_norm)},
                {"mamba.in_proj.weight", offsetof(LayerWeights, in_proj)},
                {"mamba.in_proj.bias", offsetof(LayerWeights, in_proj_bias)},
                {"mamba.self_attn.q_norm.weight", offsetof(LayerWeights, q_norm)},
                {"mamba.self_attn.k_norm.weight", offsetof(LayerWeights, k_norm)},
                {"mamba.conv1d.weight", offsetof(LayerWeights, conv_w)},
                {"mamba.conv1d.bias", offsetof(LayerWeights, conv_b)},
                {"mamba.x_proj.0.weight", offsetof(LayerWeights, x_proj)},
                {"mamba.dt_proj.0.weight", offsetof(LayerWeights, dt_proj)},
                {"mamba.dt_proj.0.bias", offsetof(LayerWeights, dt_bias)},
                {"mamba.A_log.0", offsetof(LayerWeights, A)},
                {"mamba.D.0", offsetof(LayerWeights, D)},
                {"mamba.dt_layernorm.weight", offsetof(LayerWeights, dt_norm)},
                {"mamba.B_layernorm.weight", offsetof(LayerWeights, B_norm)},
                {"mamba.C_layernorm.weight", offsetof(LayerWeights, C_norm)},
                {"mamba.pre_avg_layernorm1.weight", offsetof(LayerWeights, attn_out_norm)},
                {"mamba.pre_avg_layernorm2.weight", offsetof(LayerWeights, ssm_out_norm)},
                {"mamba.out_proj.weight", offsetof(LayerWeights, out_proj)},
                {"mamba.out_proj.bias", offsetof(LayerWeights, out_proj_bias)},
                {"pre_moe_layernorm.weight", offsetof(LayerWeights, mlp_norm)},
                {"moe.experts.0.gate_proj.weight", offsetof(LayerWeights, mlp_gate)},
                {"moe.experts.0.up_proj.weight", offsetof(LayerWeights, mlp_up)},
                {"moe.experts.0.down_proj.weight", offsetof(LayerWeights, mlp_down)},
            };
            for (size_t t = 0; t < sizeof table / sizeof *table; t++)
                if (strcmp(field, table[t].suffix) == 0) *(float **)((char *)lw + table[t].offset) = p;
        }
    }
    if (c->tie_embeddings) w->lm_head = w->embed;
}

int weights_load(Weights *w, const HymbaConfig *c, const StCheckpoint *ck, int round_to_bf16, Err *err) {
    memset(w, 0, sizeof *w);
    TensorSpec *specs = NULL;
    int n_specs = weights_expected(c, &specs);
    if (n_specs < 0) return err_set(err, "out of memory");
    float **ptr = calloc((size_t)n_specs, sizeof *ptr);
    const StTensor **found = calloc((size_t)n_specs, sizeof *found);
    w->layers = calloc((size_t)c->n_layers, sizeof *w->layers);
    if (!ptr || !found || !w->layers) {
        free(specs), free(ptr), free(found);
        return err_set(err, "out of memory");
    }
    /* First pass: check presence and shapes of everything, collecting all problems. */
    int problems = 0;
    if (err) snprintf(err->msg, sizeof err->msg, "checkpoint does not match config.json:");
    size_t total = 0;
    for (int i = 0; i < n_specs; i++) {
        const StTensor *t = st_find(ck, specs[i].name);
        char want[96], got[96];
        shape_str(want, sizeof want, specs[i].ndim, specs[i].shape);
        if (!t) {
            note_problem(err, &problems, "tensor %s is missing (expected shape %s)%s", specs[i].name, want, "");
            continue;
        }
        int same = t->ndim == specs[i].ndim;
        for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == specs[i].shape[d];
        /* perhead-rms weights are stored [1, heads, 1, dk]: accept with the leading 1 */
        if (!same && specs[i].ndim == 3 && t->ndim == 4 && t->shape[0] == 1)
            same = t->shape[1] == specs[i].shape[0] && t->shape[2] == 1 && t->shape[3] == specs[i].shape[2];
        if (!same) {
            shape_str(got, sizeof got, t->ndim, t->shape);
            note_problem(err, &problems, "tensor %s in %s has shape %s", specs[i].name, t->file, got);
            size_t used = err ? strlen(err->msg) : 0;
            if (err) snprintf(err->msg + used, sizeof err->msg - used, ", expected %s", want);
            continue;
        }
        if (t->dtype == ST_OTHER) {
            note_problem(err, &problems, "tensor %s in %s has dtype %s; expected F32, F16 or BF16", specs[i].name,
                         t->file, t->dtype_name);
            continue;
        }
        found[i] = t;
        total += (size_t)spec_numel(&specs[i]);
    }
    /* Tensors the config does not account for usually mean a config/checkpoint mismatch. */
    for (size_t j = 0; j < st_count(ck); j++) {
        const StTensor *t = st_tensor_at(ck, j);
        int known = 0;
        for (int i = 0; i < n_specs && !known; i++) known = strcmp(specs[i].name, t->name) == 0;
        if (!known && c->tie_embeddings && strcmp(t->name, "lm_head.weight") == 0) known = 1; /* tied: unused */
        if (!known) note_problem(err, &problems, "unexpected tensor %s in %s (not implied by config.json)%s", t->name, t->file, "");
    }
    if (problems) {
        if (problems > 12 && err) {
            size_t used = strlen(err->msg);
            snprintf(err->msg + used, sizeof err->msg - used, "\n  ... and %d more", problems - 12);
        }
        free(specs), free(ptr), free(found);
        return -1;
    }
    w->arena = malloc(total * sizeof(float));
    if (!w->arena) {
        free(specs), free(ptr), free(found);
        return err_set(err, "out of memory allocating %.1f MB of weights", total * 4.0 / 1e6);
    }
    w->n_floats = total;
    size_t off = 0;
    for (int i = 0; i < n_specs; i++) {
        ptr[i] = w->arena + off;
        size_t n = (size_t)spec_numel(&specs[i]);
        int bad = st_to_f32(found[i], ptr[i], err) ? -1 : 0;
        if (bad) err_prefix(err, "tensor %s", specs[i].name);
        for (size_t k = 0; k < n && !bad; k++)
            if (!isfinite(ptr[i][k])) {
                bad = err_set(err, "tensor %s in %s: element %zu is not finite", specs[i].name, found[i]->file, k);
            }
        if (bad) {
            free(specs), free(ptr), free(found);
            return -1;
        }
        if (round_to_bf16)
            for (size_t k = 0; k < n; k++) ptr[i][k] = round_bf16(ptr[i][k]);
        off += n;
    }
    const StTensor *emb = st_find(ck, "model.embed_tokens.weight");
    w->source_dtype = emb ? emb->dtype_name : "?";
    bind(w, c, specs, ptr, n_specs);
    /* A = -exp(A_log), in FP32 as the official code does (A_log.float()). */
    for (int l = 0; l < c->n_layers; l++) {
        float *A = w->layers[l].A;
        if (!A) continue;
        for (int k = 0; k < c->ssm_inner * c->ssm_state; k++) A[k] = -expf(A[k]);
    }
    free(specs), free(ptr), free(found);
    return 0;
}

void weights_free(Weights *w) {
    free(w->arena);
    free(w->layers);
    memset(w, 0, sizeof *w);
}
