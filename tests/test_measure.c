/* test_measure.c: the measurement kinds (cache, rope_drift, erf; docs/tasks/
   measurements.md) and the engine hooks they stand on (position_offset, the
   observer), on small random checkpoints made by `hymeval init-model`:
   - the observer changes nothing and sees what the model computes (rows
     that sum to 1 over the visible keys; SSM ingredients that rebuild the
     cached scan state);
   - a position offset is a pure shift in FP32, and the meta prefix follows it;
   - cache: measured bytes == the formula on tiny-hymba/attn/mamba/mixed, and
     the Hymba-1.5B vs Llama-3.2-3B-shape numbers from configuration;
   - erf: exactly zero influence beyond layers x window in an all-sliding-
     window model (one layer: beyond the window), the full context in a
     global one, decay with distance in a Mamba one, Eq. 5 = S/2 under
     uniform attention;
   - rope_drift: exactly 0 at Δ1 = Δ2 in every mode, rounding level in FP32;
   - throughput: one example per (batch, context), positive finite figures
     that are the definitions' ratios, the shape and device in extra;
   - field errors of throughput and niah_shift (its nested niah definition
     included) name the file, the line, the task and the field. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "erf.h"
#include "kinds.h"
#include "model.h"
#include "observe.h"
#include "task.h"
#include "testutil.h"

typedef struct {
    char *dir;
    HymbaModel *model;
} Fixture;

static Fixture make_model(const char *config_name, const char *config_json, Precision prec) {
    Fixture f = {tu_tempdir(), NULL};
    assert_non_null(f.dir);
    char ckpt[4200], cfg_path[4200];
    snprintf(ckpt, sizeof ckpt, "%s/ckpt", f.dir);
    if (config_json) snprintf(cfg_path, sizeof cfg_path, "%s", tu_write_file(f.dir, "config.json", config_json));
    else snprintf(cfg_path, sizeof cfg_path, "%s", tu_source_path(config_name));
    assert_int_equal(tu_init_model(cfg_path, ckpt, 7, NULL), 0);
    Err err;
    f.model = model_load(ckpt, prec, &err);
    if (!f.model) fail_msg("model_load(%s): %s", config_name ? config_name : "inline", err.msg);
    return f;
}

static void free_model(Fixture *f) {
    model_free(f->model);
    tu_rmtree(f->dir);
    free(f->dir);
}

/* A models/configs file with some keys replaced (text substitution on the JSON). */
static char *config_with(const char *config_name, const char *from, const char *to) {
    FILE *fp = fopen(tu_source_path(config_name), "rb");
    assert_non_null(fp);
    char *text = calloc(1, 1 << 16);
    size_t n = fread(text, 1, (1 << 16) - 1, fp);
    fclose(fp);
    text[n] = 0;
    char *at = strstr(text, from);
    if (!at) fail_msg("%s has no \"%s\"", config_name, from);
    char *out = calloc(1, n + strlen(to) + 1);
    memcpy(out, text, (size_t)(at - text));
    strcat(out, to);
    strcat(out, at + strlen(from));
    free(text);
    return out;
}

static int32_t *random_ids(int n, int vocab, uint64_t seed) {
    int32_t *ids = malloc(sizeof *ids * (size_t)n);
    for (int i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((seed >> 33) % (uint64_t)(vocab - 3)) + 3;
    }
    return ids;
}

static float *forward_logits(HymbaModel *m, const int32_t *ids, int n) {
    float *logits = malloc(sizeof(float) * (size_t)n * m->cfg.vocab_size);
    SeqCache c;
    Err err;
    if (model_begin(m, &c, &err) || model_forward(m, &c, ids, n, LOGITS_ALL, logits, &err))
        fail_msg("forward: %s", err.msg);
    cache_free(&c);
    return logits;
}

/* ---------------------------------------------------------------- running a kind */

typedef struct {
    cJSON *json;
    TaskDef t;
} Task;

static Task make_task(const char *json) {
    Task k;
    memset(&k, 0, sizeof k);
    k.json = cJSON_Parse(json);
    assert_non_null(k.json);
    k.t.json = k.json;
    snprintf(k.t.name, sizeof k.t.name, "%s", cJSON_GetObjectItem(k.json, "name")->valuestring);
    snprintf(k.t.kind, sizeof k.t.kind, "%s", cJSON_GetObjectItem(k.json, "kind")->valuestring);
    k.t.seed = 1234;
    k.t.file = "test_measure.jsonl";
    k.t.line = 1;
    return k;
}

/* Validates, builds and measures every example: [{"id", "scores": {...}, "extra": ..., "error"}] */
static cJSON *run_kind(HymbaModel *m, const char *json) {
    Task k = make_task(json);
    const TaskKind *kind = task_kind_find(k.t.kind);
    assert_non_null(kind);
    assert_non_null(kind->measure);
    Err err;
    if (kind->validate(&k.t, &err)) fail_msg("validate: %s", err.msg);
    ExampleList list = {0};
    if (kind->build(&k.t, m->tok, &list, &err)) fail_msg("build: %s", err.msg);
    cJSON *out = cJSON_CreateArray();
    /* no model_at: the kinds load other precisions themselves */
    MeasureEnv env = {m, backend_cpu_open(m, &err), NULL, NULL, NULL};
    assert_non_null(env.backend);
    for (int i = 0; i < list.n; i++) {
        Example *ex = &list.items[i];
        assert_int_equal(ex->request, REQ_MEASURE);
        Scores s = {0};
        cJSON *extra = NULL;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", ex->id);
        if (kind->measure(&k.t, &env, ex, &s, &extra, &err)) {
            cJSON_AddStringToObject(o, "error", err.msg);
        } else {
            cJSON *sj = cJSON_AddObjectToObject(o, "scores");
            for (int j = 0; j < s.n; j++) cJSON_AddNumberToObject(sj, s.name[j], s.value[j]);
        }
        if (extra) cJSON_AddItemToObject(o, "extra", extra);
        cJSON_AddItemToArray(out, o);
        assert_null(m->observer);
        assert_int_equal(m->position_offset, 0);
    }
    backend_close(env.backend);
    examples_free(&list);
    cJSON_Delete(k.json);
    return out;
}

static const cJSON *find_row(const cJSON *rows, const char *id) {
    const cJSON *r;
    cJSON_ArrayForEach(r, rows) if (strcmp(cJSON_GetObjectItem(r, "id")->valuestring, id) == 0) return r;
    fail_msg("no row %s", id);
    return NULL;
}

static double score_of(const cJSON *row, const char *name) {
    const cJSON *e = cJSON_GetObjectItem(row, "error");
    if (e) fail_msg("%s: %s", cJSON_GetObjectItem(row, "id")->valuestring, e->valuestring);
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(row, "scores"), name);
    if (!cJSON_IsNumber(v)) fail_msg("%s: no score %s", cJSON_GetObjectItem(row, "id")->valuestring, name);
    return v->valuedouble;
}

static const cJSON *path(const cJSON *o, const char *a, const char *b) {
    const cJSON *x = cJSON_GetObjectItem(o, a);
    if (b) x = cJSON_GetObjectItem(x, b);
    assert_non_null(x);
    return x;
}

static double at(const cJSON *arr, int i) { return cJSON_GetArrayItem(arr, i)->valuedouble; }

/* ---------------------------------------------------------------- effective length */

static void test_effective_length(void **state) {
    (void)state;
    int lengths[] = {8192, 1024, 4096, 2048, 16384};
    double acc[] = {0.80, 1.00, 0.90, 0.95, 0.95};
    /* RULER: > 0.856; walk stops at the first failure (8192), so 16384's 0.95 does not count */
    assert_true(effective_length(lengths, acc, 5, EFFLEN_RULER_THRESHOLD, 0) == 4096);
    /* relative: >= 0.9 x 1.00 */
    assert_true(effective_length(lengths, acc, 5, EFFLEN_DEFAULT_RELATIVE, 1) == 4096);
    double low[] = {0.50, 0.60, 0.50, 0.46, 0.1};
    assert_true(effective_length(lengths, low, 5, EFFLEN_RULER_THRESHOLD, 0) == 0);
    /* 1024: 0.6 -> limit 0.54; 2048: 0.46 fails */
    assert_true(effective_length(lengths, low, 5, EFFLEN_DEFAULT_RELATIVE, 1) == 1024);
    double zero[] = {0, 0, 0, 0, 0};
    assert_true(effective_length(lengths, zero, 5, EFFLEN_DEFAULT_RELATIVE, 1) == 0);
    assert_true(effective_length(lengths, acc, 0, EFFLEN_RULER_THRESHOLD, 0) == 0);
    /* repeated lengths are averaged */
    int rep[] = {1024, 1024, 2048};
    double racc[] = {1.0, 0.8, 0.9};
    assert_true(effective_length(rep, racc, 3, EFFLEN_RULER_THRESHOLD, 0) == 2048);
}

/* ---------------------------------------------------------------- engine hooks */

typedef struct {
    const HymbaConfig *cfg;
    int rows, bad_sum, bad_keys, bad_order;
    /* SSM layer 0: per position delta [I], B [N], x [I] */
    float *delta, *B, *x;
    int max_pos, ssm_calls, hidden_calls;
} Recorder;

static void rec_attn(void *user, int layer, int head, int q_pos, int n_keys, const int *key_pos, const float *scores,
                     const float *probs) {
    (void)head, (void)scores;
    Recorder *r = user;
    const HymbaConfig *c = r->cfg;
    double sum = 0;
    for (int k = 0; k < n_keys; k++) sum += probs[k];
    if (fabs(sum - 1.0) > 1e-5) r->bad_sum = 1;
    int M = c->n_meta, metas = M < q_pos + 1 ? M : q_pos + 1;
    int band = q_pos < M ? 0 : c->is_global[layer] ? q_pos - M + 1 : (q_pos - M < c->sliding_window ? q_pos - M + 1 : c->sliding_window + 1);
    if (n_keys != metas + band) r->bad_keys = 1;
    for (int k = 1; k < n_keys; k++)
        if (key_pos[k] <= key_pos[k - 1]) r->bad_order = 1;
    if (key_pos[n_keys - 1] != q_pos) r->bad_order = 1;
    __atomic_fetch_add(&r->rows, 1, __ATOMIC_RELAXED); /* rows arrive from the engine's OpenMP threads */
}

static void rec_ssm(void *user, int layer, int pos, int I, int N, const float *delta, const float *B, const float *C,
                    const float *x, const float *A) {
    (void)C, (void)A;
    Recorder *r = user;
    r->ssm_calls++;
    if (layer != 0 || pos >= r->max_pos) return;
    memcpy(r->delta + (size_t)pos * I, delta, sizeof(float) * (size_t)I);
    memcpy(r->B + (size_t)pos * N, B, sizeof(float) * (size_t)N);
    memcpy(r->x + (size_t)pos * I, x, sizeof(float) * (size_t)I);
}

static void rec_hidden(void *user, int pos, const float *h, int H) {
    (void)pos, (void)h, (void)H;
    ((Recorder *)user)->hidden_calls++;
}

static void test_observer_is_passive(void **state) {
    (void)state;
    Fixture f = make_model("models/configs/tiny-mixed.json", NULL, PREC_BF16_HF);
    HymbaModel *m = f.model;
    const int n = 40;
    int32_t *ids = random_ids(n, m->cfg.vocab_size, 3);
    float *plain = forward_logits(m, ids, n);
    Recorder rec = {.cfg = &m->cfg};
    HymbaObserver obs = {.user = &rec, .attn_row = rec_attn, .hidden = rec_hidden};
    m->observer = &obs;
    float *seen = forward_logits(m, ids, n);
    m->observer = NULL;
    assert_memory_equal(plain, seen, sizeof(float) * (size_t)n * m->cfg.vocab_size);
    int attn_layers = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) attn_layers += layer_has_attn(&m->cfg, l);
    int S = m->cfg.n_meta + n;
    assert_int_equal(rec.rows, S * attn_layers * m->cfg.n_heads); /* meta rows included */
    assert_int_equal(rec.hidden_calls, S);
    assert_false(rec.bad_sum);
    assert_false(rec.bad_keys);
    assert_false(rec.bad_order);
    free(ids), free(plain), free(seen);
    free_model(&f);
}

/* The SSM ingredients the observer reports rebuild the scan state the cache holds:
   h[c,n] = sum_s exp(A[c,n] sum_{k=s+1..S} delta_k[c]) delta_s[c] B_s[n] x_s[c]. */
static void test_observer_ssm_rebuilds_state(void **state) {
    (void)state;
    Fixture f = make_model("models/configs/tiny-mamba.json", NULL, PREC_FP32);
    HymbaModel *m = f.model;
    const HymbaConfig *c = &m->cfg;
    const int n = 30, S = c->n_meta + n, I = c->ssm_inner, N = c->ssm_state;
    int32_t *ids = random_ids(n, c->vocab_size, 5);
    Recorder rec = {.cfg = c, .max_pos = S};
    rec.delta = calloc((size_t)S * I, sizeof(float));
    rec.B = calloc((size_t)S * N, sizeof(float));
    rec.x = calloc((size_t)S * I, sizeof(float));
    HymbaObserver obs = {.user = &rec, .ssm_token = rec_ssm};
    m->observer = &obs;
    SeqCache cache;
    Err err;
    if (model_begin(m, &cache, &err) || model_forward(m, &cache, ids, n, LOGITS_NONE, NULL, &err))
        fail_msg("%s", err.msg);
    m->observer = NULL;
    int ssm_layers = 0;
    for (int l = 0; l < c->n_layers; l++) ssm_layers += layer_has_ssm(c, l);
    assert_int_equal(rec.ssm_calls, S * ssm_layers);
    const float *A = m->w.layers[0].A;
    double max_err = 0, max_ref = 0;
    for (int ch = 0; ch < I; ch++) {
        for (int k = 0; k < N; k++) {
            double h = 0, span = 0;
            for (int s = S - 1; s >= 0; s--) {
                h += exp((double)A[(size_t)ch * N + k] * span) * rec.delta[(size_t)s * I + ch] * rec.B[(size_t)s * N + k] *
                     rec.x[(size_t)s * I + ch];
                span += rec.delta[(size_t)s * I + ch];
            }
            double ref = cache.ssm[0][(size_t)ch * N + k];
            if (fabs(h - ref) > max_err) max_err = fabs(h - ref);
            if (fabs(ref) > max_ref) max_ref = fabs(ref);
        }
    }
    assert_true(max_ref > 0);
    if (max_err / max_ref > 1e-4) fail_msg("hidden attention rebuild of the state: rel error %g", max_err / max_ref);
    cache_free(&cache);
    free(rec.delta), free(rec.B), free(rec.x), free(ids);
    free_model(&f);
}

static void test_position_offset(void **state) {
    (void)state;
    Fixture f = make_model("models/configs/tiny-hymba.json", NULL, PREC_FP32);
    HymbaModel *m = f.model;
    const int n = 48;
    const size_t count = (size_t)n * m->cfg.vocab_size;
    int32_t *ids = random_ids(n, m->cfg.vocab_size, 9);
    float *base = forward_logits(m, ids, n); /* caches the meta prefix at offset 0 */
    m->position_offset = 1000;
    float *shifted = forward_logits(m, ids, n); /* must recompute it */
    m->position_offset = 0;
    /* RoPE is relative: in FP32 a shift is rounding only */
    double rel = tu_max_rel_error(shifted, base, count);
    if (rel > 1e-4) fail_msg("offset 1000 changed the FP32 logits by %g (relative)", rel);
    assert_true(memcmp(base, shifted, sizeof(float) * count) != 0); /* but the offset did apply */
    /* a fresh model started at offset 1000 gives exactly the same */
    Err err;
    HymbaModel *fresh = model_load(m->dir, PREC_FP32, &err);
    assert_non_null(fresh);
    fresh->position_offset = 1000;
    float *again = forward_logits(fresh, ids, n);
    assert_memory_equal(again, shifted, sizeof(float) * count);
    model_free(fresh);
    /* back at 0: the first result again */
    float *back = forward_logits(m, ids, n);
    assert_memory_equal(back, base, sizeof(float) * count);
    free(ids), free(base), free(shifted), free(again), free(back);
    free_model(&f);
}

/* ---------------------------------------------------------------- cache */

static void check_cache_model(const char *config_name, const char *variants) {
    Fixture f = make_model(config_name, NULL, PREC_FP32);
    char json[512];
    snprintf(json, sizeof json,
             "{\"name\": \"cache\", \"kind\": \"cache\", \"lengths\": [1, 7, 13, 40, 100], \"variants\": %s}", variants);
    cJSON *rows = run_kind(f.model, json);
    int checked = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, rows) {
        const char *id = cJSON_GetObjectItem(r, "id")->valuestring;
        if (strncmp(id, "hymba@", 6) != 0) {
            assert_true(score_of(r, "bytes") > 0);
            continue;
        }
        long T = atol(id + 6);
        double formula = config_cache_bytes(&f.model->cfg, T, 2, 2);
        if (score_of(r, "agree") != 1.0 || score_of(r, "measured_bytes") != formula || score_of(r, "bytes") != formula ||
            score_of(r, "fp32_used") != config_cache_bytes(&f.model->cfg, T, 4, 4))
            fail_msg("%s %s: measured %.0f (fp32 used %.0f), formula %.0f", config_name, id,
                     score_of(r, "measured_bytes"), score_of(r, "fp32_used"), formula);
        assert_true(score_of(r, "fp32_allocated") >= score_of(r, "fp32_used"));
        checked++;
    }
    assert_int_equal(checked, 5);
    cJSON_Delete(rows);
    free_model(&f);
}

static void test_cache_measured_equals_formula(void **state) {
    (void)state;
    const char *all = "[\"hymba\", \"attn_only\", \"mamba_only\", \"swa_only\", \"hybrid_global\", \"hybrid_swa\", "
                      "\"hybrid_swa_kv\", \"hybrid_swa_kv_meta\"]";
    check_cache_model("models/configs/tiny-hymba.json", all);
    check_cache_model("models/configs/tiny-mixed.json", all);
    /* no sliding window: swa_only cannot be derived */
    const char *no_swa = "[\"hymba\", \"attn_only\", \"mamba_only\", \"hybrid_global\", \"hybrid_swa_kv_meta\"]";
    check_cache_model("models/configs/tiny-attn.json", no_swa);
    check_cache_model("models/configs/tiny-mamba.json", no_swa);
}

/* Hymba-1.5B vs Llama-3.2-3B shape, from configuration alone (no weights needed). */
static void test_cache_paper_numbers(void **state) {
    (void)state;
    HymbaModel *m = calloc(1, sizeof *m);
    Err err;
    if (config_load(&m->cfg, tu_source_path("models/configs/hymba-1.5b.json"), &err)) fail_msg("%s", err.msg);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"name\": \"cache\", \"kind\": \"cache\", \"lengths\": [8192], \"measure\": false, \"configs\": [\"%s\"]}",
             tu_source_path("models/configs/llama-3.2-3b-shape.json"));
    cJSON *rows = run_kind(m, json);
    /* 3 global layers x (128 meta + 8192) slots + 14 sliding-window producers x (128 + 1025) slots, each slot
       5 KV heads x (64 + 128) x 2 bytes; 32 SSM layers x (3200 x 3 x 2 conv + 3200 x 16 x 4 state) */
    assert_true(score_of(find_row(rows, "hymba@8192"), "bytes") == 86083840.0);
    assert_true(score_of(find_row(rows, "hybrid_swa_kv_meta@8192"), "bytes") == 86083840.0);
    /* text-only KV, a 1024-slot window, a 16-bit SSM state: the Hymba paper's 79 MB */
    assert_true(fabs(score_of(find_row(rows, "hymba@8192"), "paper_convention_mb") - 78.60224) < 1e-9);
    /* 28 layers x 8 KV heads x (128 + 128) x 2 bytes x 8192 */
    assert_true(score_of(find_row(rows, "llama-3.2-3b-shape@8192"), "bytes") == 939524096.0);
    assert_true(score_of(find_row(rows, "attn_only@8192"), "bytes") == 32.0 * 8192 * 1920);
    assert_true(score_of(find_row(rows, "mamba_only@8192"), "bytes") == 32.0 * (3200 * 3 * 2 + 3200 * 16 * 4));
    double g = score_of(find_row(rows, "hybrid_global@8192"), "bytes");
    double s = score_of(find_row(rows, "hybrid_swa@8192"), "bytes");
    double k = score_of(find_row(rows, "hybrid_swa_kv@8192"), "bytes");
    double w = score_of(find_row(rows, "swa_only@8192"), "bytes");
    assert_true(g > s && s > k && w < s);
    print_message("cache @8192 from configuration (BF16 KV/conv, FP32 SSM):\n");
    const cJSON *r;
    cJSON_ArrayForEach(r, rows)
        print_message("  %-28s %10.3f MB  (paper convention %8.3f MB)\n", cJSON_GetObjectItem(r, "id")->valuestring,
                      score_of(r, "mb"), score_of(r, "paper_convention_mb"));
    cJSON_Delete(rows);

    /* base_config: the roadmap of another config beside the loaded model's own row */
    if (config_load(&m->cfg, tu_source_path("models/configs/tiny-hymba.json"), &err)) fail_msg("%s", err.msg);
    snprintf(json, sizeof json,
             "{\"name\": \"cache\", \"kind\": \"cache\", \"lengths\": [8192], \"measure\": false, "
             "\"base_config\": \"%s\"}",
             tu_source_path("models/configs/hymba-1.5b.json"));
    rows = run_kind(m, json);
    assert_true(score_of(find_row(rows, "hymba@8192"), "bytes") == config_cache_bytes(&m->cfg, 8192, 2, 2));
    assert_true(score_of(find_row(rows, "hymba-1.5b:hybrid_swa_kv_meta@8192"), "bytes") == 86083840.0);
    assert_true(score_of(find_row(rows, "hymba-1.5b:attn_only@8192"), "bytes") == 32.0 * 8192 * 1920);
    cJSON_Delete(rows);
    free(m);
}

/* ---------------------------------------------------------------- erf */

/* The raw influence at each distance of the first target. */
static void influence_of(const cJSON *row, const cJSON **d, const cJSON **per_target) {
    if (cJSON_GetObjectItem(row, "error")) fail_msg("%s", cJSON_GetObjectItem(row, "error")->valuestring);
    *d = path(path(row, "extra", "perturb"), "d", NULL);
    *per_target = path(path(row, "extra", "perturb"), "per_target", NULL);
}

/* In an all-sliding-window attention model (no SSM, no global layer), the
   token at t-d reaches t only through layers x window positions. */
static void check_window_reach(Fixture *f, int reach) {
    cJSON *rows = run_kind(f->model, "{\"name\": \"erf\", \"kind\": \"erf\", \"lengths\": [64], \"targets\": 2, "
                                     "\"points_per_octave\": 8, \"source\": \"random\"}");
    const cJSON *d, *per;
    influence_of(cJSON_GetArrayItem(rows, 0), &d, &per);
    int n = cJSON_GetArraySize(d), saw_edge = 0, beyond = 0;
    for (int k = 0; k < cJSON_GetArraySize(per); k++) {
        const cJSON *infl = cJSON_GetArrayItem(per, k);
        double inside = 0;
        for (int i = 0; i < n; i++) {
            int dist = (int)at(d, i);
            double v = at(infl, i);
            if (dist > reach) {
                if (v != 0.0) fail_msg("target %d: influence %g at distance %d > %d", k, v, dist, reach);
                beyond++;
            } else {
                inside += v;
                if (dist == reach && v > 0) saw_edge = 1;
            }
        }
        assert_true(inside > 0);
    }
    assert_true(saw_edge); /* the farthest visible token still counts */
    assert_true(beyond > 0);
    assert_true(score_of(cJSON_GetArrayItem(rows, 0), "erf95_perturb") <= reach);
    cJSON_Delete(rows);
}

static void test_erf_sliding_window_zero_influence(void **state) {
    (void)state;
    Fixture f = make_model("models/configs/tiny-swa.json", NULL, PREC_FP32); /* 2 layers, W = 8 */
    assert_int_equal(f.model->cfg.n_layers, 2);
    check_window_reach(&f, 2 * f.model->cfg.sliding_window);
    free_model(&f);
    char *one = config_with("models/configs/tiny-swa.json", "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1");
    char *one2 = NULL;
    {
        /* layer_type must list one layer */
        char *at_lt = strstr(one, "\"layer_type\"");
        assert_non_null(at_lt);
        char *close = strchr(at_lt, ']');
        size_t head = (size_t)(at_lt - one);
        one2 = calloc(1, strlen(one) + 64);
        memcpy(one2, one, head);
        strcat(one2, "\"layer_type\": [\"a\"");
        strcat(one2, close);
    }
    Fixture g = make_model(NULL, one2, PREC_FP32);
    assert_int_equal(g.model->cfg.n_layers, 1);
    check_window_reach(&g, g.model->cfg.sliding_window);
    free_model(&g);
    free(one), free(one2);
}

static void test_erf_global_reaches_everything(void **state) {
    (void)state;
    Fixture f = make_model("models/configs/tiny-attn.json", NULL, PREC_FP32); /* all global, no meta */
    cJSON *rows = run_kind(f.model, "{\"name\": \"erf\", \"kind\": \"erf\", \"lengths\": [48], \"targets\": 1, "
                                    "\"source\": \"random\"}");
    const cJSON *d, *per;
    influence_of(cJSON_GetArrayItem(rows, 0), &d, &per);
    int n = cJSON_GetArraySize(d);
    assert_int_equal((int)at(d, n - 1), 47); /* the first token of the context */
    assert_true(at(cJSON_GetArrayItem(per, 0), n - 1) > 0);
    for (int i = 0; i < n; i++) assert_true(at(cJSON_GetArrayItem(per, 0), i) > 0);
    double erf = score_of(cJSON_GetArrayItem(rows, 0), "erf_hymba");
    assert_true(erf > 0 && erf <= 47);
    cJSON_Delete(rows);

    /* uniform attention (q = 0): Eq. 5 is exactly S/2 at every layer */
    for (int l = 0; l < f.model->cfg.n_layers; l++) {
        InProjSplit sp = config_in_proj_split(&f.model->cfg, l);
        memset(f.model->w.layers[l].in_proj + (size_t)sp.q * f.model->cfg.hidden_size, 0,
               sizeof(float) * (size_t)f.model->cfg.n_heads * f.model->cfg.head_dim * f.model->cfg.hidden_size);
    }
    rows = run_kind(f.model, "{\"name\": \"erf\", \"kind\": \"erf\", \"lengths\": [48], \"perturb\": false, "
                             "\"source\": \"random\"}");
    double uniform = score_of(cJSON_GetArrayItem(rows, 0), "erf_hymba");
    if (fabs(uniform - 47 / 2.0) > 1e-4) fail_msg("uniform attention: erf_hymba %g, expected 23.5", uniform);
    cJSON_Delete(rows);
    free_model(&f);
}

static void test_erf_mamba_decays(void **state) {
    (void)state;
    Fixture f = make_model("models/configs/tiny-mamba.json", NULL, PREC_FP32);
    cJSON *rows = run_kind(f.model, "{\"name\": \"erf\", \"kind\": \"erf\", \"lengths\": [256], \"targets\": 2, "
                                    "\"source\": \"random\"}");
    const cJSON *row = cJSON_GetArrayItem(rows, 0);
    const cJSON *infl = path(path(row, "extra", "perturb"), "influence", NULL);
    const cJSON *d = path(path(row, "extra", "perturb"), "d", NULL);
    int n = cJSON_GetArraySize(infl);
    double near = (at(infl, 0) + at(infl, 1) + at(infl, 2)) / 3;
    double far = (at(infl, n - 1) + at(infl, n - 2) + at(infl, n - 3)) / 3;
    print_message("mamba influence: d=%g..%g %.4g, d=%g..%g %.4g; erf95 %g, mmd %g, erf_hymba %g\n", at(d, 0), at(d, 2),
                  near, at(d, n - 3), at(d, n - 1), far, score_of(row, "erf95_perturb"), score_of(row, "mmd"),
                  score_of(row, "erf_hymba"));
    assert_true(near > 5 * far);
    /* and the hidden-attention mean distance is well inside the context */
    assert_true(score_of(row, "mmd") > 0 && score_of(row, "mmd") < 128);
    cJSON_Delete(rows);
    free_model(&f);
}

/* ---------------------------------------------------------------- rope drift */

static void test_rope_drift(void **state) {
    (void)state;
    Fixture f = make_model("models/configs/tiny-hymba.json", NULL, PREC_FP32);
    cJSON *rows = run_kind(f.model, "{\"name\": \"drift\", \"kind\": \"rope_drift\", \"length\": 40, "
                                    "\"num_sequences\": 1, \"deltas\": [0, 16, 300, 2000], \"source\": \"random\"}");
    const HymbaConfig *c = &f.model->cfg;
    int attn_layers = 0;
    for (int l = 0; l < c->n_layers; l++) attn_layers += layer_has_attn(c, l);
    double row_terms = (double)attn_layers * c->n_heads * (c->n_meta + 40);
    const char *curves[] = {"attn_diff", "first_logit_diff", "meta_logit_diff", "meta_max_logit_diff", "logit_kl"};
    double fp32_far = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, rows) {
        const char *mode = cJSON_GetObjectItem(r, "id")->valuestring;
        if (cJSON_GetObjectItem(r, "error")) fail_msg("%s: %s", mode, cJSON_GetObjectItem(r, "error")->valuestring);
        const cJSON *e = cJSON_GetObjectItem(r, "extra");
        /* Δ1 = Δ2 = 16 (index 1): exactly zero in every mode */
        for (size_t q = 0; q < sizeof curves / sizeof *curves; q++)
            if (at(path(e, curves[q], NULL), 1) != 0.0)
                fail_msg("%s: %s at Δ1 = Δ2 is %g, not 0", mode, curves[q], at(path(e, curves[q], NULL), 1));
        assert_true(at(path(e, "top1_agree", NULL), 1) == 1.0);
        const cJSON *attn = path(e, "attn_diff", NULL);
        if (strcmp(mode, "fp32") == 0) {
            for (int i = 0; i < 4; i++) {
                if (i == 1) continue;
                /* mean over (layer, head, row) of the row's mean |ΔP| per key */
                if (at(attn, i) / row_terms > 1e-6) fail_msg("fp32 attn_diff[%d] = %g", i, at(attn, i));
                if (at(path(e, "first_logit_diff", NULL), i) / (attn_layers * c->n_heads) > 1e-5)
                    fail_msg("fp32 first_logit_diff[%d] = %g", i, at(path(e, "first_logit_diff", NULL), i));
                if (at(path(e, "logit_kl", NULL), i) > 1e-9) fail_msg("fp32 logit_kl[%d] = %g", i, at(path(e, "logit_kl", NULL), i));
                assert_true(at(path(e, "top1_agree", NULL), i) == 1.0);
            }
            fp32_far = at(attn, 3);
            assert_null(cJSON_GetObjectItem(e, "vs_fp32"));
        } else {
            assert_non_null(cJSON_GetObjectItem(e, "vs_fp32"));
            assert_true(score_of(r, "bf16_vs_fp32_attn") > 0);
        }
        print_message("%-10s attn_diff: Δ=0 %.3g  Δ=300 %.3g  Δ=2000 %.3g\n", mode, at(attn, 0), at(attn, 2), at(attn, 3));
    }
    /* BF16 breaks the relative property far beyond FP32 rounding */
    cJSON_ArrayForEach(r, rows) {
        if (strcmp(cJSON_GetObjectItem(r, "id")->valuestring, "fp32") == 0) continue;
        assert_true(at(path(cJSON_GetObjectItem(r, "extra"), "attn_diff", NULL), 3) > 100 * fp32_far);
    }
    cJSON_Delete(rows);
    free_model(&f);
}

/* ---------------------------------------------------------------- throughput */

static void test_throughput(void **state) {
    (void)state;
    Fixture f = make_model("models/configs/tiny-hymba.json", NULL, PREC_FP32);
    cJSON *rows = run_kind(f.model, "{\"name\": \"tp\", \"kind\": \"throughput\", \"batches\": [2, 1], "
                                    "\"contexts\": [24, 12], \"decode\": 3, \"repeats\": 2}");
    /* one example per (batch, context), contexts then batches ascending */
    static const char *const ids[] = {"b1_c12", "b2_c12", "b1_c24", "b2_c24"};
    assert_int_equal(cJSON_GetArraySize(rows), 4);
    for (int i = 0; i < 4; i++) {
        const cJSON *r = cJSON_GetArrayItem(rows, i);
        assert_string_equal(cJSON_GetObjectItem(r, "id")->valuestring, ids[i]);
        const char *names[] = {"prefill_tokens_per_s", "decode_tokens_per_s", "ttft_seconds", "prefill_seconds",
                               "decode_step_ms"};
        for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
            double v = score_of(r, names[k]);
            if (!(isfinite(v) && v > 0)) fail_msg("%s: %s = %g", ids[i], names[k], v);
        }
        const cJSON *e = cJSON_GetObjectItem(r, "extra");
        int B = ids[i][1] - '0', L = i < 2 ? 12 : 24;
        assert_true(score_of(r, "batch_run") == B);
        assert_true(path(e, "batch", NULL)->valuedouble == B && path(e, "context", NULL)->valuedouble == L);
        assert_true(path(e, "decode", NULL)->valuedouble == 3 && path(e, "repeats", NULL)->valuedouble == 2);
        assert_string_equal(path(e, "precision", NULL)->valuestring, "fp32");
        assert_string_equal(path(e, "backend", NULL)->valuestring, "cpu");
        assert_non_null(cJSON_GetStringValue(path(e, "device", NULL)));
        assert_non_null(cJSON_GetStringValue(path(e, "weights_dtype", NULL)));
        assert_int_equal(cJSON_GetArraySize(path(e, "prefill_seconds_each", NULL)), 2);
        /* the definitions: tokens over the median seconds */
        double pre_s = path(e, "prefill_seconds", NULL)->valuedouble;
        double dec_s = path(e, "decode_seconds", NULL)->valuedouble;
        assert_true(fabs(score_of(r, "prefill_tokens_per_s") - B * L / pre_s) < 1e-9 * B * L / pre_s);
        assert_true(fabs(score_of(r, "decode_tokens_per_s") - B * 3 / dec_s) < 1e-9 * B * 3 / dec_s);
        assert_true(path(e, "cache_bytes_per_seq_backend", NULL)->valuedouble > 0);
    }
    cJSON_Delete(rows);
    free_model(&f);
}

/* validate()'s message for a task line, which must contain `want`. */
static void expect_invalid(const char *json, const char *want) {
    Task k = make_task(json);
    const TaskKind *kind = task_kind_find(k.t.kind);
    Err err;
    if (kind->validate(&k.t, &err) == 0) fail_msg("%s: accepted", json);
    if (!strstr(err.msg, want)) fail_msg("%s: message \"%s\" lacks \"%s\"", json, err.msg, want);
    cJSON_Delete(k.json);
}

static void test_measure_field_errors(void **state) {
    (void)state;
    expect_invalid("{\"name\": \"tp\", \"kind\": \"throughput\", \"batches\": [1, 0]}",
                   "test_measure.jsonl:1: task \"tp\": field \"batches\": element [1] is 0");
    expect_invalid("{\"name\": \"tp\", \"kind\": \"throughput\", \"contexts\": []}",
                   "test_measure.jsonl:1: task \"tp\": field \"contexts\": expected a non-empty array");
    expect_invalid("{\"name\": \"tp\", \"kind\": \"throughput\", \"decode\": -1}",
                   "test_measure.jsonl:1: task \"tp\": field \"decode\": expected an integer in [0, ");
    expect_invalid("{\"name\": \"tp\", \"kind\": \"throughput\", \"repeats\": \"3\"}",
                   "test_measure.jsonl:1: task \"tp\": field \"repeats\": expected an integer in [1, 1000], got \"3\"");
    expect_invalid("{\"name\": \"tp\", \"kind\": \"throughput\", \"batches\": [2, 2]}",
                   "field \"batches\": 2 appears twice");
    /* niah_shift: the nested definition is checked as a niah task line, named "<task>.niah" */
    expect_invalid("{\"name\": \"ns\", \"kind\": \"niah_shift\"}",
                   "test_measure.jsonl:1: task \"ns\": field \"niah\": missing");
    expect_invalid("{\"name\": \"ns\", \"kind\": \"niah_shift\", \"niah\": [1]}",
                   "task \"ns\": field \"niah\": expected an object (a niah task definition), got an array");
    expect_invalid("{\"name\": \"ns\", \"kind\": \"niah_shift\", \"niah\": {\"variant\": \"single_9\"}}",
                   "test_measure.jsonl:1: task \"ns.niah\": field \"variant\": expected one of");
    expect_invalid("{\"name\": \"ns\", \"kind\": \"niah_shift\", \"niah\": {\"lenghts\": [512]}}",
                   "task \"ns.niah\": unknown field \"lenghts\" for kind \"niah\"");
    expect_invalid("{\"name\": \"ns\", \"kind\": \"niah_shift\", \"niah\": {\"precision\": \"fp32\"}}",
                   "task \"ns.niah\": field \"precision\": not allowed in a nested definition");
    expect_invalid("{\"name\": \"ns\", \"kind\": \"niah_shift\", \"niah\": {}, \"shifts\": [0, -4]}",
                   "task \"ns\": field \"shifts\": element [1] is -4");
    expect_invalid("{\"name\": \"ns\", \"kind\": \"niah_shift\", \"niah\": {}, \"modes\": [\"bf16\"]}",
                   "task \"ns\": field \"modes\": element [0] is \"bf16\"");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_effective_length),
        cmocka_unit_test(test_observer_is_passive),
        cmocka_unit_test(test_observer_ssm_rebuilds_state),
        cmocka_unit_test(test_position_offset),
        cmocka_unit_test(test_cache_measured_equals_formula),
        cmocka_unit_test(test_cache_paper_numbers),
        cmocka_unit_test(test_erf_sliding_window_zero_influence),
        cmocka_unit_test(test_erf_global_reaches_everything),
        cmocka_unit_test(test_erf_mamba_decays),
        cmocka_unit_test(test_rope_drift),
        cmocka_unit_test(test_throughput),
        cmocka_unit_test(test_measure_field_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
