/* cache_kind.c: the `cache` measurement kind (DESIGN.md §5 "Cache size";
   docs/ARCHITECTURE.md §6; docs/tasks/measurements.md).

   Bytes one sequence holds to continue decoding, per context length:
   - from the formula (config_cache_bytes): KV of every layer that owns its
     KV (meta slots + every text position for a global layer, meta slots +
     a ring of W+1 for a sliding-window layer), conv state and SSM state per
     SSM layer; reported with BF16 KV and conv state and an FP32 SSM state;
   - measured, for the loaded model: a prefill of that many tokens on the CPU
     engine, then the cache's own allocations (cache_bytes_used: the slots
     holding something; cache_bytes_allocated: what is malloc'd), whose FP32
     element sizes are scaled to the reporting sizes. The two must agree.
   - from configuration alone, for the design variants of the Hymba paper's
     roadmap derived from the loaded model's config, and for any config
     files the task names (e.g. models/configs/llama-3.2-3b-shape.json). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "config.h"
#include "erf.h"
#include "model.h"
#include "task.h"

static const char *const cache_fields[] = {"lengths", "variants", "configs", "base_config", "measure", "measure_max",
                                           NULL};

/* The loaded model, then the roadmap: each step derived from its config. */
static const char *const variant_names[] = {
    "hymba",              /* the loaded model as it is (measured) */
    "attn_only",          /* every layer attention only, all global, no KV sharing, no meta tokens */
    "mamba_only",         /* every layer SSM only, no meta tokens */
    "swa_only",           /* the model's layer kinds, every attention layer sliding-window, no sharing, no meta */
    "hybrid_global",      /* the model's layer kinds, all global attention, no sharing, no meta */
    "hybrid_swa",         /* + sliding window outside the model's global layers */
    "hybrid_swa_kv",      /* + the model's cross-layer KV sharing */
    "hybrid_swa_kv_meta", /* + its meta tokens: the model's own design, from configuration */
    NULL,
};
static const int default_lengths[] = {1024, 4096, 8192};
enum { MAX_LENGTH = 1 << 24, MAX_CONFIGS = 16 };

typedef struct {
    int *lengths, n_lengths;
    char **variants;
    int n_variants;
    char **configs;          /* resolved paths */
    int n_configs;
    char base_config[4096];  /* resolved path; "" = derive the roadmap from the loaded model */
    char base_label[64];     /* its file name without .json, prefixed to the derived rows */
    int measure, measure_max;
} CacheParams;

static void cache_params_free(CacheParams *p) {
    free(p->lengths);
    strv_free(p->variants, p->n_variants);
    strv_free(p->configs, p->n_configs);
    memset(p, 0, sizeof *p);
}

/* A path relative to the task file's directory (absolute paths kept). */
static void resolve(const TaskDef *t, const char *path, char *out, size_t size) {
    const char *slash = t->file ? strrchr(t->file, '/') : NULL;
    if (slash && path[0] != '/') snprintf(out, size, "%.*s/%s", (int)(slash - t->file), t->file, path);
    else snprintf(out, size, "%s", path);
}

/* "llama-3.2-3b-shape" from ".../llama-3.2-3b-shape.json" */
static void config_label(const char *path, char *out, size_t size) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".json") == 0) n -= 5;
    if (n >= size) n = size - 1;
    memcpy(out, base, n);
    out[n] = 0;
}

static int cache_params(const TaskDef *t, CacheParams *p, Err *err) {
    memset(p, 0, sizeof *p);
    if (measure_int_list(t, "lengths", default_lengths, 3, 1, MAX_LENGTH, 1, &p->lengths, &p->n_lengths, err) ||
        task_bool(t, "measure", 1, &p->measure, err) ||
        task_int(t, "measure_max", 8192, 0, MAX_LENGTH, &p->measure_max, err))
        goto fail;
    if (task_has(t, "variants")) {
        if (task_string_list(t, "variants", &p->variants, &p->n_variants, err)) goto fail;
        for (int i = 0; i < p->n_variants; i++) {
            int known = 0;
            for (int j = 0; variant_names[j]; j++) known |= strcmp(variant_names[j], p->variants[i]) == 0;
            if (!known) {
                task_field_error(t, "variants", err,
                                 "element [%d] is \"%s\"; expected hymba, attn_only, mamba_only, swa_only, "
                                 "hybrid_global, hybrid_swa, hybrid_swa_kv or hybrid_swa_kv_meta",
                                 i, p->variants[i]);
                goto fail;
            }
            for (int j = 0; j < i; j++)
                if (strcmp(p->variants[j], p->variants[i]) == 0) {
                    task_field_error(t, "variants", err, "\"%s\" appears twice", p->variants[i]);
                    goto fail;
                }
        }
    } else {
        for (int j = 0; variant_names[j]; j++)
            if (strv_push(&p->variants, &p->n_variants, variant_names[j])) goto oom;
    }
    char **raw = NULL;
    int n_raw = 0;
    if (task_string_list(t, "configs", &raw, &n_raw, err)) goto fail;
    if (n_raw > MAX_CONFIGS) {
        strv_free(raw, n_raw);
        task_field_error(t, "configs", err, "at most %d config files", MAX_CONFIGS);
        goto fail;
    }
    for (int i = 0; i < n_raw; i++) {
        char path[4096];
        resolve(t, raw[i], path, sizeof path);
        HymbaConfig cfg;
        Err cerr;
        if (config_load(&cfg, path, &cerr)) {
            task_field_error(t, "configs", err, "element [%d] (the path is relative to the task file): %s", i, cerr.msg);
            strv_free(raw, n_raw);
            goto fail;
        }
        if (strv_push(&p->configs, &p->n_configs, path)) {
            strv_free(raw, n_raw);
            goto oom;
        }
    }
    strv_free(raw, n_raw);
    const char *base;
    if (task_string(t, "base_config", NULL, NULL, &base, err)) goto fail;
    if (base) {
        resolve(t, base, p->base_config, sizeof p->base_config);
        HymbaConfig cfg;
        Err cerr;
        if (config_load(&cfg, p->base_config, &cerr)) {
            task_field_error(t, "base_config", err, "(the path is relative to the task file): %s", cerr.msg);
            goto fail;
        }
        config_label(p->base_config, p->base_label, sizeof p->base_label);
    }
    return 0;
oom:
    err_set(err, "out of memory");
fail:
    cache_params_free(p);
    return -1;
}

static int cache_validate(const TaskDef *t, Err *err) {
    CacheParams p;
    if (cache_params(t, &p, err)) return -1;
    cache_params_free(&p);
    return 0;
}

/* One row: label@length (label = the variant, "base:variant" for a variant
   of base_config, or a config file's name). */
static int push_row(ExampleList *out, const char *base, const char *variant, const char *config, int length,
                    int first, Err *err) {
    Example *ex = examples_push(out, err);
    if (!ex) return -1;
    char label[128];
    if (base && base[0] && strcmp(variant, "hymba") != 0) snprintf(label, sizeof label, "%s:%s", base, variant);
    else snprintf(label, sizeof label, "%s", variant);
    ex->request = REQ_MEASURE;
    snprintf(ex->id, sizeof ex->id, "%s@%d", label, length);
    snprintf(ex->group, sizeof ex->group, "%.48s@%d", label, length);
    ex->target_tokens = length;
    ex->extra = cJSON_CreateObject();
    cJSON_AddStringToObject(ex->extra, "variant", variant);
    if (config) cJSON_AddStringToObject(ex->extra, "config", config);
    cJSON_AddNumberToObject(ex->extra, "length", length);
    if (first) cJSON_AddBoolToObject(ex->extra, "table", 1);
    return 0;
}

static int cache_build(const TaskDef *t, const Tokenizer *tok, ExampleList *out, Err *err) {
    (void)tok;
    CacheParams p;
    if (cache_params(t, &p, err)) return -1;
    int rc = 0, first = 1;
    for (int v = 0; v < p.n_variants && rc == 0; v++)
        for (int i = 0; i < p.n_lengths && rc == 0; i++, first = 0)
            rc = push_row(out, p.base_label, p.variants[v], NULL, p.lengths[i], first, err);
    for (int c = 0; c < p.n_configs && rc == 0; c++) {
        char label[64];
        config_label(p.configs[c], label, sizeof label);
        for (int i = 0; i < p.n_lengths && rc == 0; i++, first = 0)
            rc = push_row(out, NULL, label, p.configs[c], p.lengths[i], first, err);
    }
    cache_params_free(&p);
    return rc;
}

/* ---------------------------------------------------------------- variants and the formula */

/* A roadmap variant of the model's config (see variant_names). */
static int derive_variant(const HymbaConfig *base, const char *name, HymbaConfig *out, Err *err) {
    *out = *base;
    const int L = base->n_layers;
    if (strcmp(name, "hymba") == 0 || strcmp(name, "hybrid_swa_kv_meta") == 0) return 0;
    out->n_meta = 0;
    for (int l = 0; l < L; l++) out->kv_source[l] = l;
    if (strcmp(name, "attn_only") == 0 || strcmp(name, "mamba_only") == 0) {
        for (int l = 0; l < L; l++) {
            out->layer_kind[l] = name[0] == 'a' ? LAYER_ATTN : LAYER_MAMBA;
            out->is_global[l] = 1;
        }
        return 0;
    }
    if (strcmp(name, "hybrid_global") == 0) {
        for (int l = 0; l < L; l++) out->is_global[l] = 1;
        return 0;
    }
    if (strcmp(name, "swa_only") == 0) {
        if (base->sliding_window <= 0)
            return err_set(err, "variant swa_only: the model's config has no sliding_window to use");
        for (int l = 0; l < L; l++) out->is_global[l] = 0;
        return 0;
    }
    if (strcmp(name, "hybrid_swa") == 0) return 0;
    if (strcmp(name, "hybrid_swa_kv") == 0) {
        memcpy(out->kv_source, base->kv_source, sizeof out->kv_source);
        return 0;
    }
    return err_set(err, "unknown cache variant \"%s\"", name);
}

typedef struct {
    double kv_global, kv_swa, conv, ssm, total;
    int kv_layers_global, kv_layers_swa, ssm_layers;
} Breakdown;

/* The formula by component. meta_slots: count the meta tokens' KV;
   ring: slots of a sliding-window layer's text band (W + 1 as the engine
   keeps, or W). */
static Breakdown breakdown(const HymbaConfig *c, long T, int kv_bytes, int conv_bytes, int ssm_bytes, int meta_slots,
                           long ring) {
    Breakdown b = {0};
    double per_slot = (double)c->n_kv_heads * (c->head_dim + c->v_head_dim) * kv_bytes;
    for (int l = 0; l < c->n_layers; l++) {
        if (layer_owns_kv(c, l)) {
            long band = c->is_global[l] ? T : (T < ring ? T : ring);
            double bytes = ((meta_slots ? c->n_meta : 0) + (double)band) * per_slot;
            if (c->is_global[l]) b.kv_global += bytes, b.kv_layers_global++;
            else b.kv_swa += bytes, b.kv_layers_swa++;
        }
        if (layer_has_ssm(c, l)) {
            b.conv += (double)c->ssm_inner * (c->ssm_conv - 1) * conv_bytes;
            b.ssm += (double)c->ssm_inner * c->ssm_state * ssm_bytes;
            b.ssm_layers++;
        }
    }
    b.total = b.kv_global + b.kv_swa + b.conv + b.ssm;
    return b;
}

static cJSON *breakdown_json(const Breakdown *b) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "bytes", b->total);
    cJSON_AddNumberToObject(o, "mb", b->total / 1e6);
    cJSON_AddNumberToObject(o, "mib", b->total / 1048576.0);
    cJSON_AddNumberToObject(o, "kv_global", b->kv_global);
    cJSON_AddNumberToObject(o, "kv_sliding_window", b->kv_swa);
    cJSON_AddNumberToObject(o, "conv_state", b->conv);
    cJSON_AddNumberToObject(o, "ssm_state", b->ssm);
    cJSON_AddNumberToObject(o, "kv_layers_global", b->kv_layers_global);
    cJSON_AddNumberToObject(o, "kv_layers_sliding_window", b->kv_layers_swa);
    cJSON_AddNumberToObject(o, "ssm_layers", b->ssm_layers);
    return o;
}

static cJSON *config_json(const HymbaConfig *c) {
    cJSON *o = cJSON_CreateObject();
    char kinds[HYMBA_MAX_LAYERS + 1], globals[HYMBA_MAX_LAYERS + 1];
    int owners = 0;
    for (int l = 0; l < c->n_layers; l++) {
        kinds[l] = c->layer_kind[l];
        globals[l] = layer_has_attn(c, l) ? (c->is_global[l] ? 'G' : 'S') : '-';
        owners += layer_owns_kv(c, l);
    }
    kinds[c->n_layers] = globals[c->n_layers] = 0;
    cJSON_AddNumberToObject(o, "layers", c->n_layers);
    cJSON_AddNumberToObject(o, "hidden_size", c->hidden_size);
    cJSON_AddNumberToObject(o, "heads", c->n_heads);
    cJSON_AddNumberToObject(o, "kv_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(o, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(o, "v_head_dim", c->v_head_dim);
    cJSON_AddNumberToObject(o, "ssm_inner", c->ssm_inner);
    cJSON_AddNumberToObject(o, "ssm_state", c->ssm_state);
    cJSON_AddNumberToObject(o, "ssm_conv", c->ssm_conv);
    cJSON_AddNumberToObject(o, "meta_tokens", c->n_meta);
    cJSON_AddNumberToObject(o, "sliding_window", c->sliding_window);
    cJSON_AddNumberToObject(o, "kv_owning_layers", owners);
    cJSON_AddStringToObject(o, "layer_kinds", kinds);
    cJSON_AddStringToObject(o, "attention", globals); /* G global, S sliding window, - none */
    return o;
}

/* The config a row describes: a config file, the loaded model ("hymba"), or
   a roadmap variant of base_config or else of the loaded model. */
static int row_config(const HymbaModel *m, const CacheParams *p, const char *variant, const char *config_path,
                      HymbaConfig *out, Err *err) {
    if (config_path) return config_load(out, config_path, err);
    if (strcmp(variant, "hymba") == 0 || !p->base_config[0]) return derive_variant(&m->cfg, variant, out, err);
    HymbaConfig base;
    if (config_load(&base, p->base_config, err)) return -1;
    return derive_variant(&base, variant, out, err);
}

/* The whole formula table (every variant and config x every length), for the first row's extra. */
static cJSON *formula_table(const HymbaModel *m, const CacheParams *p) {
    cJSON *rows = cJSON_CreateArray();
    int n = p->n_variants + p->n_configs;
    for (int v = 0; v < n; v++) {
        char name[64], label[160];
        const char *path = v < p->n_variants ? NULL : p->configs[v - p->n_variants];
        if (path) config_label(path, name, sizeof name);
        else snprintf(name, sizeof name, "%s", p->variants[v]);
        if (!path && p->base_config[0] && strcmp(name, "hymba") != 0) snprintf(label, sizeof label, "%s:%s", p->base_label, name);
        else snprintf(label, sizeof label, "%s", name);
        HymbaConfig c;
        Err e;
        if (row_config(m, p, name, path, &c, &e)) continue;
        for (int i = 0; i < p->n_lengths; i++) {
            double bytes = config_cache_bytes(&c, p->lengths[i], 2, 2);
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "variant", label);
            cJSON_AddNumberToObject(r, "length", p->lengths[i]);
            cJSON_AddNumberToObject(r, "bytes", bytes);
            cJSON_AddNumberToObject(r, "mb", bytes / 1e6);
            cJSON_AddItemToArray(rows, r);
        }
    }
    return rows;
}

/* ---------------------------------------------------------------- measure */

/* Prefills T random tokens on the CPU engine and reads the cache's allocations. */
static int measure_prefill(HymbaModel *m, uint64_t seed, int T, size_t *used, size_t *allocated, size_t *ssm_bytes,
                           Err *err) {
    int32_t *ids = NULL;
    if (measure_sequence(m, "random", seed, T, &ids, err)) return -1;
    const HymbaObserver *saved_obs = m->observer;
    int saved_offset = m->position_offset;
    m->observer = NULL;
    m->position_offset = 0;
    SeqCache c;
    int rc = model_begin(m, &c, err);
    if (rc == 0) {
        enum { CHUNK = 1024 }; /* bounds the activations, not the cache */
        for (int start = 0; start < T && rc == 0; start += CHUNK)
            rc = model_forward(m, &c, ids + start, T - start < CHUNK ? T - start : CHUNK, LOGITS_NONE, NULL, err);
        if (rc == 0) {
            *used = cache_bytes_used(&c, &m->cfg);
            *allocated = cache_bytes_allocated(&c, &m->cfg);
            *ssm_bytes = 0;
            for (int l = 0; l < c.n_layers; l++)
                if (c.ssm[l]) *ssm_bytes += (size_t)m->cfg.ssm_inner * m->cfg.ssm_state * sizeof(float);
        }
        cache_free(&c);
    }
    m->observer = saved_obs;
    m->position_offset = saved_offset;
    free(ids);
    return rc;
}

static int cache_measure(const TaskDef *t, const MeasureEnv *env, const Example *ex, Scores *out, cJSON **extra,
                         Err *err) {
    HymbaModel *m = env->model;
    CacheParams p;
    if (cache_params(t, &p, err)) return -1;
    const cJSON *jv = cJSON_GetObjectItemCaseSensitive(ex->extra, "variant");
    const cJSON *jc = cJSON_GetObjectItemCaseSensitive(ex->extra, "config");
    const cJSON *jl = cJSON_GetObjectItemCaseSensitive(ex->extra, "length");
    if (!cJSON_IsString(jv) || !cJSON_IsNumber(jl)) {
        cache_params_free(&p);
        return err_set(err, "cache example %s: missing variant/length", ex->id);
    }
    const char *variant = jv->valuestring, *config_path = cJSON_IsString(jc) ? jc->valuestring : NULL;
    long T = (long)jl->valuedouble;
    HymbaConfig c;
    if (row_config(m, &p, variant, config_path, &c, err)) {
        cache_params_free(&p);
        return -1;
    }
    /* reporting sizes: BF16 KV and conv state, FP32 SSM state (DESIGN.md §5) */
    double bytes = config_cache_bytes(&c, T, 2, 2), fp32 = config_cache_bytes(&c, T, 4, 4);
    Breakdown ours = breakdown(&c, T, 2, 2, 4, 1, (long)c.sliding_window + 1);
    if (ours.total != bytes) {
        cache_params_free(&p);
        return err_set(err, "internal error: the cache breakdown (%.0f) differs from config_cache_bytes (%.0f)",
                       ours.total, bytes);
    }
    /* what papers usually count: text tokens only, a W-slot window, a 16-bit SSM state */
    Breakdown paper = breakdown(&c, T, 2, 2, 2, 0, (long)c.sliding_window);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "variant", variant);
    if (config_path) cJSON_AddStringToObject(root, "config", config_path);
    else if (strcmp(variant, "hymba") != 0 && p.base_config[0]) cJSON_AddStringToObject(root, "base_config", p.base_config);
    cJSON_AddNumberToObject(root, "length", (double)T);
    cJSON_AddItemToObject(root, "model", config_json(&c));
    cJSON *formula = breakdown_json(&ours);
    cJSON_AddStringToObject(formula, "sizes", "BF16 KV, BF16 conv state, FP32 SSM state");
    cJSON_AddItemToObject(root, "formula", formula);
    cJSON_AddNumberToObject(root, "formula_fp32_bytes", fp32);
    cJSON *pj = breakdown_json(&paper);
    cJSON_AddStringToObject(pj, "convention", "text-token KV only (no meta slots), W-slot window, 16-bit SSM state");
    cJSON_AddItemToObject(root, "paper_convention", pj);
    scores_add(out, "bytes", bytes);
    scores_add(out, "mb", bytes / 1e6);
    scores_add(out, "paper_convention_mb", paper.total / 1e6);

    int rc = 0;
    if (strcmp(variant, "hymba") == 0 && !config_path && p.measure && T <= p.measure_max) {
        size_t used = 0, allocated = 0, ssm = 0;
        rc = measure_prefill(m, measure_seed(t->seed, (uint64_t)T, 0), (int)T, &used, &allocated, &ssm, err);
        if (rc == 0) {
            /* the engine stores FP32 elements: KV and conv at 4 bytes scale to 2, the SSM state stays 4 */
            double scaled = (double)(used - ssm) / 2.0 + (double)ssm;
            int agree = (double)used == fp32 && scaled == bytes;
            cJSON *mj = cJSON_AddObjectToObject(root, "measured");
            cJSON_AddStringToObject(mj, "engine", "cpu (FP32 elements)");
            cJSON_AddNumberToObject(mj, "fp32_used", (double)used);
            cJSON_AddNumberToObject(mj, "fp32_allocated", (double)allocated);
            cJSON_AddNumberToObject(mj, "bytes", scaled);
            cJSON_AddBoolToObject(mj, "agrees_with_formula", agree);
            scores_add(out, "measured_bytes", scaled);
            scores_add(out, "fp32_used", (double)used);
            scores_add(out, "fp32_allocated", (double)allocated);
            scores_add(out, "agree", agree);
        }
    }
    if (rc == 0 && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ex->extra, "table")))
        cJSON_AddItemToObject(root, "table", formula_table(m, &p));
    if (rc == 0) *extra = root;
    else cJSON_Delete(root);
    cache_params_free(&p);
    return rc;
}

const TaskKind kind_cache = {
    .name = "cache",
    .fields = cache_fields,
    .validate = cache_validate,
    .build = cache_build,
    .score = measure_no_score,
    .measure = cache_measure,
};
