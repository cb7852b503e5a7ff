/* test_model.c: invariants of the CPU engine on small random checkpoints
   made by `hymeval init-model`: prefill == token-by-token decode, a batch ==
   each sequence alone, sliding-window reach, log-likelihood == summed decode
   log-probs, cache bytes == the formula, and the precision modes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "generate.h"
#include "loglik.h"
#include "model.h"
#include "testutil.h"

typedef struct {
    char *dir;          /* temp dir holding the checkpoint */
    HymbaModel *model;
} Fixture;

/* Makes a random checkpoint of models/configs/<name> (or of JSON text) and loads it. */
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

static int32_t *random_ids(int n, int vocab, uint64_t seed) {
    int32_t *ids = malloc(sizeof *ids * (size_t)n);
    for (int i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((seed >> 33) % (uint64_t)(vocab - 3)) + 3;
    }
    return ids;
}

static float *prefill_logits(HymbaModel *m, const int32_t *ids, int n) {
    float *logits = malloc(sizeof(float) * (size_t)n * m->cfg.vocab_size);
    SeqCache c;
    Err err;
    assert_int_equal(model_begin(m, &c, &err), 0);
    if (model_forward(m, &c, ids, n, LOGITS_ALL, logits, &err)) fail_msg("%s", err.msg);
    cache_free(&c);
    return logits;
}

static float *decode_logits(HymbaModel *m, const int32_t *ids, int n) {
    const int V = m->cfg.vocab_size;
    float *logits = malloc(sizeof(float) * (size_t)n * V);
    SeqCache c;
    Err err;
    assert_int_equal(model_begin(m, &c, &err), 0);
    for (int t = 0; t < n; t++)
        if (model_forward(m, &c, ids + t, 1, LOGITS_LAST, logits + (size_t)t * V, &err)) fail_msg("%s", err.msg);
    cache_free(&c);
    return logits;
}

/* Prefill of T tokens equals feeding them one at a time, and equals prefill
   in two uneven chunks; T crosses the sliding window several times. */
static void check_prefill_equals_decode(const char *config) {
    Fixture f = make_model(config, NULL, PREC_FP32);
    HymbaModel *m = f.model;
    const int T = 3 * (m->cfg.sliding_window ? m->cfg.sliding_window : 16) + 7;
    const int V = m->cfg.vocab_size;
    int32_t *ids = random_ids(T, V, 11);
    float *a = prefill_logits(m, ids, T);
    float *b = decode_logits(m, ids, T);
    double e = tu_max_rel_error(b, a, (size_t)T * V);
    /* chunks of 5 then the rest: the cache continues across chunk boundaries */
    float *c = malloc(sizeof(float) * (size_t)T * V);
    SeqCache cache;
    Err err;
    assert_int_equal(model_begin(m, &cache, &err), 0);
    assert_int_equal(model_forward(m, &cache, ids, 5, LOGITS_ALL, c, &err), 0);
    assert_int_equal(model_forward(m, &cache, ids + 5, T - 5, LOGITS_ALL, c + (size_t)5 * V, &err), 0);
    double e2 = tu_max_rel_error(c, a, (size_t)T * V);
    cache_free(&cache);
    printf("  %-28s T=%d  decode vs prefill %.2e, chunked vs prefill %.2e\n", config, T, e, e2);
    assert_true(e < 1e-6);
    assert_true(e2 < 1e-6);
    free(a), free(b), free(c), free(ids);
    free_model(&f);
}

static void test_prefill_equals_decode_hymba(void **s) { (void)s; check_prefill_equals_decode("models/configs/tiny-hymba.json"); }
static void test_prefill_equals_decode_mixed(void **s) { (void)s; check_prefill_equals_decode("models/configs/tiny-mixed.json"); }
static void test_prefill_equals_decode_mamba(void **s) { (void)s; check_prefill_equals_decode("models/configs/tiny-mamba.json"); }
static void test_prefill_equals_decode_attn(void **s) { (void)s; check_prefill_equals_decode("models/configs/tiny-attn.json"); }

static void test_batch_equals_single(void **state) {
    (void)state;
    Fixture f = make_model("models/configs/tiny-hymba.json", NULL, PREC_FP32);
    HymbaModel *m = f.model;
    const int V = m->cfg.vocab_size, B = 3;
    int lens[3] = {9, 40, 23};
    int32_t *ids[3];
    float *batch_logits[3], *single[3];
    for (int b = 0; b < B; b++) {
        ids[b] = random_ids(lens[b], V, 100 + (uint64_t)b);
        batch_logits[b] = malloc(sizeof(float) * (size_t)lens[b] * V);
        single[b] = prefill_logits(m, ids[b], lens[b]);
    }
    Err err;
    Backend *be = backend_cpu_open(m, &err);
    Sequence *seqs[3];
    for (int b = 0; b < B; b++) assert_non_null(seqs[b] = be->begin(be, &err));
    if (be->forward(be, seqs, (const int32_t *const *)ids, lens, B, LOGITS_ALL, batch_logits, &err))
        fail_msg("%s", err.msg);
    for (int b = 0; b < B; b++) {
        assert_memory_equal(batch_logits[b], single[b], sizeof(float) * (size_t)lens[b] * V);
        assert_int_equal(be->length(seqs[b]), lens[b]);
        be->release(be, seqs[b]);
        free(ids[b]), free(batch_logits[b]), free(single[b]);
    }
    backend_close(be);
    free_model(&f);
}

/* A config like tiny-swa.json with the given layer count/kind and window. */
static char *swa_config(int layers, char kind, int window, int meta) {
    char *json = malloc(8192);
    char kinds[256] = "";
    for (int l = 0; l < layers; l++) {
        size_t n = strlen(kinds);
        snprintf(kinds + n, sizeof kinds - n, "%s\"%c\"", l ? ", " : "", kind);
    }
    snprintf(json, 8192,
             "{\"model_type\": \"hymba\", \"hidden_size\": 32, \"num_hidden_layers\": %d, \"num_attention_heads\": 4,"
             " \"num_key_value_heads\": 2, \"intermediate_size\": 48, \"vocab_size\": 1024, \"mamba_d_state\": 4,"
             " \"mamba_d_conv\": 4, \"mamba_dt_rank\": 4, \"mamba_expand\": 2, \"num_memory_tokens\": %d,"
             " \"sliding_window\": %d, \"global_attn_idx\": [], \"kv_reuse_group\": null, \"rope\": true,"
             " \"rope_type\": \"default\", \"rope_theta\": 10000.0, \"max_position_embeddings\": 4096,"
             " \"mamba_conv_bias\": true, \"mamba_proj_bias\": false, \"mamba_inner_layernorms\": true,"
             " \"mlp_hidden_act\": \"silu\", \"rms_norm_eps\": 1e-6, \"tie_word_embeddings\": true,"
             " \"layer_type\": [%s], \"torch_dtype\": \"float32\"}",
             layers, meta, window, kinds);
    return json;
}

/* Last-position logits after changing the token `distance` positions back. */
static double change_at_distance(HymbaModel *m, int T, int distance) {
    const int V = m->cfg.vocab_size;
    int32_t *ids = random_ids(T, V, 5);
    float *a = prefill_logits(m, ids, T);
    ids[T - 1 - distance] = ids[T - 1 - distance] == 7 ? 8 : 7;
    float *b = prefill_logits(m, ids, T);
    double e = tu_max_rel_error(b + (size_t)(T - 1) * V, a + (size_t)(T - 1) * V, (size_t)V);
    free(a), free(b), free(ids);
    return e;
}

static void test_sliding_window_reach(void **state) {
    (void)state;
    const int W = 6, M = 3, T = 60;
    /* one attention-only sliding-window layer: a query sees positions q-W..q */
    char *json = swa_config(1, 'a', W, M);
    Fixture f = make_model(NULL, json, PREC_FP32);
    double at_w = change_at_distance(f.model, T, W), past_w = change_at_distance(f.model, T, W + 1);
    double far = change_at_distance(f.model, T, 40);
    printf("  1 SWA layer, W=%d: change at distance W -> %.2e, W+1 -> %.2e, 40 -> %.2e\n", W, at_w, past_w, far);
    assert_true(at_w > 1e-6);
    assert_true(past_w == 0.0);
    assert_true(far == 0.0);
    free_model(&f);
    free(json);
    /* three such layers reach 3W back, and no further */
    json = swa_config(3, 'a', W, M);
    f = make_model(NULL, json, PREC_FP32);
    double at_3w = change_at_distance(f.model, T, 3 * W), past_3w = change_at_distance(f.model, T, 3 * W + 1);
    printf("  3 SWA layers: distance 3W -> %.2e, 3W+1 -> %.2e\n", at_3w, past_3w);
    assert_true(at_3w > 1e-7);
    assert_true(past_3w == 0.0);
    free_model(&f);
    free(json);
    /* hybrid layers with the same windows: the SSM heads carry the far token */
    json = swa_config(1, 'h', W, M);
    f = make_model(NULL, json, PREC_FP32);
    double hybrid_far = change_at_distance(f.model, T, 40);
    printf("  1 hybrid SWA layer: distance 40 -> %.2e (SSM path)\n", hybrid_far);
    assert_true(hybrid_far > 1e-7);
    free_model(&f);
    free(json);
}

static void test_loglik_equals_summed_decode(void **state) {
    (void)state;
    Fixture f = make_model("models/configs/tiny-hymba.json", NULL, PREC_FP32);
    HymbaModel *m = f.model;
    const int V = m->cfg.vocab_size, n_ctx = 30;
    int32_t *ctx = random_ids(n_ctx, V, 21);
    int lens[3] = {1, 4, 19};
    int32_t *conts[3];
    double ll[3];
    int greedy[3];
    for (int i = 0; i < 3; i++) conts[i] = random_ids(lens[i], V, 40 + (uint64_t)i);
    Err err;
    Backend *be = backend_cpu_open(m, &err);
    if (loglik_continuations(be, ctx, n_ctx, (const int32_t *const *)conts, lens, 3, ll, greedy, &err))
        fail_msg("%s", err.msg);
    backend_close(be);
    for (int i = 0; i < 3; i++) {
        /* the same by one prefill of context + continuation */
        int T = n_ctx + lens[i];
        int32_t *all = malloc(sizeof *all * (size_t)T);
        memcpy(all, ctx, sizeof *all * n_ctx);
        memcpy(all + n_ctx, conts[i], sizeof *all * (size_t)lens[i]);
        float *logits = prefill_logits(m, all, T);
        double expect = 0;
        for (int t = n_ctx; t < T; t++) {
            const float *row = logits + (size_t)(t - 1) * V;
            double max_v = row[0], total = 0;
            for (int k = 1; k < V; k++) max_v = row[k] > max_v ? row[k] : max_v;
            for (int k = 0; k < V; k++) total += exp(row[k] - max_v);
            expect += row[all[t]] - max_v - log(total);
        }
        printf("  continuation of %2d tokens: loglik %.6f, summed prefill log-probs %.6f\n", lens[i], ll[i], expect);
        assert_true(fabs(ll[i] - expect) < 1e-4 * (1 + fabs(expect)));
        assert_true(ll[i] < 0);
        free(all), free(logits), free(conts[i]);
    }
    free(ctx);
    free_model(&f);
}

static void test_cache_bytes_match_formula(void **state) {
    (void)state;
    Fixture f = make_model("models/configs/tiny-hymba.json", NULL, PREC_FP32);
    HymbaModel *m = f.model;
    const int lens[] = {1, 10, 17, 50};
    for (int i = 0; i < 4; i++) {
        int32_t *ids = random_ids(lens[i], m->cfg.vocab_size, 3);
        SeqCache c;
        Err err;
        assert_int_equal(model_begin(m, &c, &err), 0);
        assert_int_equal(model_forward(m, &c, ids, lens[i], LOGITS_NONE, NULL, &err), 0);
        double formula = config_cache_bytes(&m->cfg, lens[i], 4, 4);
        size_t used = cache_bytes_used(&c, &m->cfg);
        printf("  %2d tokens: formula %.0f B, engine %zu B (allocated %zu B)\n", lens[i], formula, used,
               cache_bytes_allocated(&c, &m->cfg));
        assert_true((double)used == formula);
        assert_true(cache_bytes_allocated(&c, &m->cfg) >= used);
        cache_free(&c);
        free(ids);
    }
    free_model(&f);
}

static void test_precision_modes(void **state) {
    (void)state;
    const Precision modes[] = {PREC_BF16_PAPER, PREC_BF16_HF, PREC_BF16_ALL};
    Fixture ref = make_model("models/configs/tiny-hymba.json", NULL, PREC_FP32);
    const int T = 40, V = ref.model->cfg.vocab_size;
    int32_t *ids = random_ids(T, V, 9);
    float *base = prefill_logits(ref.model, ids, T);
    for (int i = 0; i < 3; i++) {
        Err err;
        char ckpt[4200];
        snprintf(ckpt, sizeof ckpt, "%s/ckpt", ref.dir);
        HymbaModel *m = model_load(ckpt, modes[i], &err);
        assert_non_null(m);
        float *got = prefill_logits(m, ids, T);
        double e = tu_max_rel_error(got, base, (size_t)T * V);
        int bf16_exact = 1;
        for (size_t k = 0; k < (size_t)T * V; k++) bf16_exact &= round_bf16(got[k]) == got[k];
        printf("  %-10s vs fp32: max rel error %.3e (logits BF16-valued: %s)\n", precision_name(modes[i]), e,
               bf16_exact ? "yes" : "no");
        assert_true(e > 1e-4); /* the emulation really rounds */
        assert_true(e < 0.1);  /* and stays a BF16-sized perturbation */
        assert_true(bf16_exact);
        free(got);
        model_free(m);
    }
    free(base), free(ids);
    free_model(&ref);
}

static void test_generate_stops(void **state) {
    (void)state;
    Fixture f = make_model("models/configs/tiny-hymba.json", NULL, PREC_FP32);
    HymbaModel *m = f.model;
    int32_t *prompt = random_ids(12, m->cfg.vocab_size, 2);
    GenerateOptions opt = {20, NULL, 0, 0, NULL, NULL};
    GenerateResult a, b;
    Err err;
    Backend *be = backend_cpu_open(m, &err);
    assert_int_equal(generate_greedy(be, prompt, 12, &opt, &a, &err), 0);
    assert_int_equal(a.n_ids, 20);
    assert_int_equal(a.stopped_by, 0);
    /* deterministic, and a stop string taken from the first run's text cuts the second */
    size_t len = strlen(a.text);
    assert_true(len > 4);
    char stop[8];
    snprintf(stop, sizeof stop, "%.3s", a.text + len / 2);
    const char *stops[1] = {stop};
    GenerateOptions opt2 = {20, stops, 1, 0, NULL, NULL};
    assert_int_equal(generate_greedy(be, prompt, 12, &opt2, &b, &err), 0);
    assert_int_equal(b.stopped_by, 1);
    assert_null(strstr(b.text, stop));
    assert_true(strncmp(a.text, b.text, strlen(b.text)) == 0);
    /* the greedy ids equal the argmax of a prefill over prompt + generated */
    int T = 12 + a.n_ids;
    int32_t *all = malloc(sizeof *all * (size_t)T);
    memcpy(all, prompt, sizeof *all * 12);
    memcpy(all + 12, a.ids, sizeof *all * (size_t)a.n_ids);
    float *logits = prefill_logits(m, all, T);
    for (int t = 11; t < T - 1; t++) {
        const float *row = logits + (size_t)t * m->cfg.vocab_size;
        int best = 0;
        for (int k = 1; k < m->cfg.vocab_size; k++)
            if (row[k] > row[best]) best = k;
        assert_int_equal(best, all[t + 1]);
    }
    free(logits), free(all);
    /* a batch of prompts decodes exactly as each prompt alone */
    const int32_t *prompts[3] = {prompt, prompt + 2, prompt};
    int plens[3] = {12, 7, 12};
    GenerateResult batch[3];
    assert_int_equal(generate_batch(be, prompts, plens, 3, &opt, batch, &err), 0);
    assert_int_equal(batch[0].n_ids, a.n_ids);
    assert_memory_equal(batch[0].ids, a.ids, sizeof(int32_t) * (size_t)a.n_ids);
    assert_memory_equal(batch[2].ids, a.ids, sizeof(int32_t) * (size_t)a.n_ids);
    GenerateResult alone;
    assert_int_equal(generate_greedy(be, prompt + 2, 7, &opt, &alone, &err), 0);
    assert_int_equal(batch[1].n_ids, alone.n_ids);
    assert_memory_equal(batch[1].ids, alone.ids, sizeof(int32_t) * (size_t)alone.n_ids);
    for (int i = 0; i < 3; i++) generate_result_free(&batch[i]);
    generate_result_free(&alone);
    generate_result_free(&a);
    generate_result_free(&b);
    free(prompt);
    backend_close(be);
    free_model(&f);
}

static void test_bad_token_id(void **state) {
    (void)state;
    Fixture f = make_model("models/configs/tiny-hymba.json", NULL, PREC_FP32);
    int32_t ids[2] = {5, f.model->cfg.vocab_size};
    SeqCache c;
    Err err;
    assert_int_equal(model_begin(f.model, &c, &err), 0);
    assert_int_equal(model_forward(f.model, &c, ids, 2, LOGITS_LAST, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "outside the vocabulary"));
    cache_free(&c);
    free_model(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefill_equals_decode_hymba),
        cmocka_unit_test(test_prefill_equals_decode_mixed),
        cmocka_unit_test(test_prefill_equals_decode_mamba),
        cmocka_unit_test(test_prefill_equals_decode_attn),
        cmocka_unit_test(test_batch_equals_single),
        cmocka_unit_test(test_sliding_window_reach),
        cmocka_unit_test(test_loglik_equals_summed_decode),
        cmocka_unit_test(test_cache_bytes_match_formula),
        cmocka_unit_test(test_precision_modes),
        cmocka_unit_test(test_generate_stops),
        cmocka_unit_test(test_bad_token_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
