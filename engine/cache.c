/* cache.c: per-sequence decoding state (docs/ARCHITECTURE.md §6). */
#include "cache.h"

#include <stdlib.h>
#include <string.h>

static int kv_width(const HymbaConfig *c) { return c->n_kv_heads * c->head_dim; }
static int v_width(const HymbaConfig *c) { return c->n_kv_heads * c->v_head_dim; }

int cache_slot(const HymbaConfig *cfg, int layer, int p) {
    if (p < cfg->n_meta || cfg->is_global[layer]) return p;
    return cfg->n_meta + (p - cfg->n_meta) % (cfg->sliding_window + 1);
}

static int window_slots(const HymbaConfig *cfg) { return cfg->n_meta + cfg->sliding_window + 1; }

int cache_init(SeqCache *c, const HymbaConfig *cfg, int initial_positions, Err *err) {
    memset(c, 0, sizeof *c);
    int L = cfg->n_layers;
    c->n_layers = L;
    c->k = calloc((size_t)L, sizeof *c->k);
    c->v = calloc((size_t)L, sizeof *c->v);
    c->slots = calloc((size_t)L, sizeof *c->slots);
    c->conv = calloc((size_t)L, sizeof *c->conv);
    c->ssm = calloc((size_t)L, sizeof *c->ssm);
    if (!c->k || !c->v || !c->slots || !c->conv || !c->ssm) goto oom;
    if (initial_positions < cfg->n_meta + 1) initial_positions = cfg->n_meta + 1;
    c->n_slots_alloc = initial_positions;
    for (int l = 0; l < L; l++) {
        if (layer_owns_kv(cfg, l)) {
            int slots = cfg->is_global[l] ? initial_positions : window_slots(cfg);
            c->slots[l] = slots;
            c->k[l] = calloc((size_t)slots * kv_width(cfg), sizeof(float));
            c->v[l] = calloc((size_t)slots * v_width(cfg), sizeof(float));
            if (!c->k[l] || !c->v[l]) goto oom;
        }
        if (layer_has_ssm(cfg, l)) {
            c->conv[l] = calloc((size_t)(cfg->ssm_conv - 1) * cfg->ssm_inner + 1, sizeof(float));
            c->ssm[l] = calloc((size_t)cfg->ssm_inner * cfg->ssm_state, sizeof(float));
            if (!c->conv[l] || !c->ssm[l]) goto oom;
        }
    }
    return 0;
oom:
    cache_free(c);
    return err_set(err, "out of memory allocating the cache");
}

void cache_free(SeqCache *c) {
    for (int l = 0; l < c->n_layers; l++) {
        if (c->k) free(c->k[l]);
        if (c->v) free(c->v[l]);
        if (c->conv) free(c->conv[l]);
        if (c->ssm) free(c->ssm[l]);
    }
    free(c->k);
    free(c->v);
    free(c->slots);
    free(c->conv);
    free(c->ssm);
    memset(c, 0, sizeof *c);
}

int cache_reserve(SeqCache *c, const HymbaConfig *cfg, int positions, Err *err) {
    if (positions <= c->n_slots_alloc) return 0;
    int grown = c->n_slots_alloc * 2 > positions ? c->n_slots_alloc * 2 : positions;
    for (int l = 0; l < c->n_layers; l++) {
        if (!c->k[l] || !cfg->is_global[l]) continue;
        float *k = realloc(c->k[l], (size_t)grown * kv_width(cfg) * sizeof(float));
        if (k) c->k[l] = k;
        float *v = realloc(c->v[l], (size_t)grown * v_width(cfg) * sizeof(float));
        if (v) c->v[l] = v;
        if (!k || !v) return err_set(err, "out of memory growing the KV cache to %d positions", grown);
        c->slots[l] = grown;
    }
    c->n_slots_alloc = grown;
    return 0;
}

static float *dup_floats(const float *src, size_t n) {
    if (!src) return NULL;
    float *dst = malloc(n * sizeof(float) + 1);
    if (dst) memcpy(dst, src, n * sizeof(float));
    return dst;
}

int cache_clone(SeqCache *dst, const SeqCache *src, const HymbaConfig *cfg, Err *err) {
    memset(dst, 0, sizeof *dst);
    int L = src->n_layers;
    dst->n_layers = L;
    dst->n_pos = src->n_pos;
    dst->n_slots_alloc = src->n_slots_alloc;
    dst->k = calloc((size_t)L, sizeof *dst->k);
    dst->v = calloc((size_t)L, sizeof *dst->v);
    dst->slots = calloc((size_t)L, sizeof *dst->slots);
    dst->conv = calloc((size_t)L, sizeof *dst->conv);
    dst->ssm = calloc((size_t)L, sizeof *dst->ssm);
    if (!dst->k || !dst->v || !dst->slots || !dst->conv || !dst->ssm) goto oom;
    for (int l = 0; l < L; l++) {
        dst->slots[l] = src->slots[l];
        if (src->k[l]) {
            /* global layers: only the positions written so far matter */
            size_t used = cfg->is_global[l] ? (size_t)src->n_pos : (size_t)src->slots[l];
            dst->k[l] = malloc((size_t)src->slots[l] * kv_width(cfg) * sizeof(float) + 1);
            dst->v[l] = malloc((size_t)src->slots[l] * v_width(cfg) * sizeof(float) + 1);
            if (!dst->k[l] || !dst->v[l]) goto oom;
            memcpy(dst->k[l], src->k[l], used * kv_width(cfg) * sizeof(float));
            memcpy(dst->v[l], src->v[l], used * v_width(cfg) * sizeof(float));
        }
        if (src->conv[l]) {
            dst->conv[l] = dup_floats(src->conv[l], (size_t)(cfg->ssm_conv - 1) * cfg->ssm_inner);
            dst->ssm[l] = dup_floats(src->ssm[l], (size_t)cfg->ssm_inner * cfg->ssm_state);
            if (!dst->conv[l] || !dst->ssm[l]) goto oom;
        }
    }
    return 0;
oom:
    cache_free(dst);
    return err_set(err, "out of memory copying a cache");
}

size_t cache_bytes_allocated(const SeqCache *c, const HymbaConfig *cfg) {
    size_t bytes = 0;
    for (int l = 0; l < c->n_layers; l++) {
        if (c->k[l]) bytes += (size_t)c->slots[l] * (kv_width(cfg) + v_width(cfg)) * sizeof(float);
        if (c->conv[l]) bytes += (size_t)(cfg->ssm_conv - 1) * cfg->ssm_inner * sizeof(float);
        if (c->ssm[l]) bytes += (size_t)cfg->ssm_inner * cfg->ssm_state * sizeof(float);
    }
    return bytes;
}

size_t cache_bytes_used(const SeqCache *c, const HymbaConfig *cfg) {
    size_t bytes = 0;
    int text = c->n_pos > cfg->n_meta ? c->n_pos - cfg->n_meta : 0;
    int meta = c->n_pos < cfg->n_meta ? c->n_pos : cfg->n_meta;
    for (int l = 0; l < c->n_layers; l++) {
        if (c->k[l]) {
            int band = cfg->is_global[l] ? text : (text < cfg->sliding_window + 1 ? text : cfg->sliding_window + 1);
            bytes += (size_t)(meta + band) * (kv_width(cfg) + v_width(cfg)) * sizeof(float);
        }
        if (c->conv[l]) bytes += (size_t)(cfg->ssm_conv - 1) * cfg->ssm_inner * sizeof(float);
        if (c->ssm[l]) bytes += (size_t)cfg->ssm_inner * cfg->ssm_state * sizeof(float);
    }
    return bytes;
}
