/* test_niah.c: the `niah` kind (tasks/niah.c) and the haystacks under it
   (datasets/haystack.c, datasets/words.c), measured with the project's own
   tokenizer ($HYMEVAL_SOURCE_ROOT/models/tokenizer).

   Everything a NIAH number depends on is checked from the built prompt
   itself, not from what the builder says about it: the token count (encoded
   again here), where the needle is (found in the text and decoded from the
   recorded token position), the order of several needles, and the answers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "haystack.h"
#include "kinds.h"
#include "scoring.h"
#include "task.h"
#include "words.h"

/* |a - b| <= eps on doubles (cmocka's float asserts round to float) */
#define assert_near(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))

static Tokenizer *tok;
static char root[2048];

static const char *const all_variants[] = {"single_1",   "single_2",   "single_3",   "multikey_1",
                                           "multikey_2", "multikey_3", "multivalue", "multiquery"};
#define N_VARIANTS 8

/* ---------------------------------------------------------------- helpers */

/* A task definition as the task file loader would decode it. */
typedef struct {
    TaskDef t;
    char file[2100];
} Task;

static void task_init(Task *task, const char *json) {
    memset(task, 0, sizeof *task);
    TaskDef *t = &task->t;
    t->json = cJSON_Parse(json);
    assert_non_null(t->json);
    snprintf(t->name, sizeof t->name, "test");
    snprintf(t->kind, sizeof t->kind, "niah");
    snprintf(task->file, sizeof task->file, "%s/tests/virtual.jsonl", root);
    t->file = task->file;
    t->line = 1;
    cJSON *seed = cJSON_GetObjectItem(t->json, "seed"), *mnt = cJSON_GetObjectItem(t->json, "max_new_tokens"),
          *metric = cJSON_GetObjectItem(t->json, "metric");
    t->seed = seed ? (uint64_t)seed->valuedouble : 1234;
    t->max_new_tokens = mnt ? mnt->valueint : 0;
    if (metric) snprintf(t->metric, sizeof t->metric, "%s", metric->valuestring);
    /* the kind's own fields only: drop the common ones as the loader does */
    cJSON_DeleteItemFromObject(t->json, "seed");
    cJSON_DeleteItemFromObject(t->json, "max_new_tokens");
    cJSON_DeleteItemFromObject(t->json, "metric");
}

static void task_free(Task *task) { cJSON_Delete(task->t.json); }

/* Builds (validate + build); fails the test on error. */
static void build_ok(const char *json, ExampleList *out) {
    Task task;
    task_init(&task, json);
    Err err = {{0}};
    memset(out, 0, sizeof *out);
    int rc = kind_niah.validate(&task.t, &err);
    if (rc == 0) rc = kind_niah.build(&task.t, tok, out, &err);
    if (rc != 0) fail_msg("%s: %s", json, err.msg);
    task_free(&task);
}

/* Expects validate or build to fail; returns the message. */
static const char *build_fails(const char *json) {
    static Err err;
    Task task;
    task_init(&task, json);
    ExampleList out = {0};
    memset(&err, 0, sizeof err);
    int rc = kind_niah.validate(&task.t, &err);
    if (rc == 0) rc = kind_niah.build(&task.t, tok, &out, &err);
    examples_free(&out);
    task_free(&task);
    if (rc == 0) fail_msg("expected %s to fail", json);
    return err.msg;
}

static int32_t *encode(const char *text, size_t len, int add_bos, size_t *n) {
    int32_t *ids = NULL;
    Err err;
    assert_int_equal(tokenizer_encode(tok, text, len, add_bos, &ids, n, &err), 0);
    return ids;
}

/* Token index where the encoding of prompt[0:off] stops agreeing with ids. */
static size_t token_at(const int32_t *ids, size_t n, const char *prompt, size_t off) {
    size_t m, k = 0;
    int32_t *pre = encode(prompt, off, 1, &m);
    while (k < m && k < n && pre[k] == ids[k]) k++;
    free(pre);
    return k;
}

static const cJSON *extra_item(const Example *ex, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ex->extra, name);
    assert_non_null(v);
    return v;
}

/* ---------------------------------------------------------------- determinism */

static void test_deterministic(void **state) {
    (void)state;
    for (int v = 0; v < N_VARIANTS; v++) {
        char json[256], json2[256];
        snprintf(json, sizeof json, "{\"variant\": \"%s\", \"lengths\": [1024, 2048], \"depths\": [10, 60], \"seed\": 7}",
                 all_variants[v]);
        snprintf(json2, sizeof json2, "{\"variant\": \"%s\", \"lengths\": [1024, 2048], \"depths\": [10, 60], \"seed\": 8}",
                 all_variants[v]);
        ExampleList a, b, c;
        build_ok(json, &a);
        build_ok(json, &b);
        build_ok(json2, &c);
        assert_int_equal(a.n, 4);
        assert_int_equal(a.n, b.n);
        assert_int_equal(a.n, c.n);
        for (int i = 0; i < a.n; i++) {
            assert_string_equal(a.items[i].id, b.items[i].id);
            assert_string_equal(a.items[i].prompt, b.items[i].prompt);
            assert_int_equal(a.items[i].n_targets, b.items[i].n_targets);
            for (int k = 0; k < a.items[i].n_targets; k++)
                assert_string_equal(a.items[i].targets[k], b.items[i].targets[k]);
            assert_int_equal(a.items[i].needle_token_pos, b.items[i].needle_token_pos);
            /* another seed: the same ids, other prompts and answers */
            assert_string_equal(a.items[i].id, c.items[i].id);
            assert_string_not_equal(a.items[i].prompt, c.items[i].prompt);
            assert_string_not_equal(a.items[i].targets[0], c.items[i].targets[0]);
        }
        examples_free(&a);
        examples_free(&b);
        examples_free(&c);
    }
}

/* An example's data depends on its id, not on which other cells exist. */
static void test_cells_independent(void **state) {
    (void)state;
    ExampleList a, b;
    build_ok("{\"lengths\": [1024, 2048], \"depths\": [0, 50]}", &a);
    build_ok("{\"lengths\": [2048], \"depths\": [50, 90]}", &b);
    assert_string_equal(a.items[3].id, "L2048_D50_s0");
    assert_string_equal(b.items[0].id, "L2048_D50_s0");
    assert_string_equal(a.items[3].prompt, b.items[0].prompt);
    examples_free(&a);
    examples_free(&b);
}

/* ---------------------------------------------------------------- lengths */

typedef struct {
    int n;
    double worst, sum; /* |realised - target| / target in % */
} LengthStats;

static void check_lengths(const ExampleList *l, LengthStats *st) {
    for (int i = 0; i < l->n; i++) {
        const Example *ex = &l->items[i];
        size_t n;
        int32_t *ids = encode(ex->prompt, strlen(ex->prompt), 1, &n);
        free(ids);
        assert_int_equal((int)n, ex->prompt_tokens); /* what the builder recorded is what the text has */
        long total = (long)n + ex->max_new_tokens;
        double dev = 100.0 * fabs((double)(total - ex->target_tokens)) / ex->target_tokens;
        if (dev > 1.0 || total > ex->target_tokens)
            fail_msg("%s: %zu prompt + %d new = %ld tokens for a target of %d (%.2f%% off)", ex->id, n,
                     ex->max_new_tokens, total, ex->target_tokens, dev);
        char group[32];
        snprintf(group, sizeof group, "%d", ex->target_tokens);
        assert_string_equal(ex->group, group);
        st->n++;
        st->sum += dev;
        if (dev > st->worst) st->worst = dev;
    }
}

static void test_lengths_every_variant(void **state) {
    (void)state;
    LengthStats all = {0};
    for (int v = 0; v < N_VARIANTS; v++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{\"variant\": \"%s\", \"lengths\": [512, 1024, 2048, 4096, 8192], \"depths\": [0, 35, 100], "
                 "\"samples_per_cell\": 2}",
                 all_variants[v]);
        ExampleList l;
        LengthStats st = {0};
        build_ok(json, &l);
        assert_int_equal(l.n, 30);
        check_lengths(&l, &st);
        print_message("  %-10s %d examples, 512..8192 tokens: worst %.3f%%, mean %.3f%% below target\n",
                      all_variants[v], st.n, st.worst, st.sum / st.n);
        all.n += st.n;
        all.sum += st.sum;
        if (st.worst > all.worst) all.worst = st.worst;
        examples_free(&l);
    }
    /* every haystack, with random depths, and other answer lengths */
    static const char *const more[] = {
        "{\"haystack\": \"noise\", \"depth_mode\": \"random\", \"samples\": 6, \"lengths\": [600, 3000, 8000]}",
        "{\"haystack\": \"needle\", \"variant\": \"multivalue\", \"lengths\": [777, 5000], \"depths\": [50]}",
        "{\"haystack_file\": \"../datasets/samples/haystack.txt\", \"lengths\": [512, 4096, 16384], \"depths\": [0, 50, 100]}",
        "{\"variant\": \"multikey_3\", \"lengths\": [16384], \"depths\": [40], \"max_new_tokens\": 16}",
        "{\"variant\": \"single_3\", \"lengths\": [32768], \"depths\": [75], \"max_new_tokens\": 1000}",
    };
    for (size_t i = 0; i < sizeof more / sizeof *more; i++) {
        ExampleList l;
        build_ok(more[i], &l);
        check_lengths(&l, &all);
        examples_free(&l);
    }
    print_message("  all: %d examples, worst %.3f%%, mean %.3f%% off target\n", all.n, all.worst, all.sum / all.n);
}

/* ---------------------------------------------------------------- needle position */

/* Checks one single-needle example: the needle sentence is where the builder
   says (text and tokens), and at the requested depth. Returns the realised
   depth measured here. */
static double check_needle(const Example *ex, double tolerance) {
    const char *p = ex->prompt;
    assert_int_equal(ex->n_targets, 1);
    /* the needle, found in the text */
    char needle_tail[96];
    snprintf(needle_tail, sizeof needle_tail, " is: %s.", ex->targets[0]);
    const char *hit = strstr(p, needle_tail);
    assert_non_null(hit);
    assert_null(strstr(hit + 1, needle_tail)); /* exactly once */
    const char *start = hit;
    while (start > p && strncmp(start, "One of the special magic", 24) != 0) start--;
    assert_memory_equal(start, "One of the special magic", 24);
    size_t n;
    int32_t *ids = encode(p, strlen(p), 1, &n);
    /* the recorded token position decodes to the needle */
    assert_true(ex->needle_token_pos > 0 && (size_t)ex->needle_token_pos < n);
    char *text = tokenizer_decode(tok, ids + ex->needle_token_pos, (size_t)ex->needle_token_len, 1);
    const char *t = text;
    while (*t == ' ' || *t == '\n') t++;
    if (strncmp(t, "One of the special magic", 24) != 0 || !strstr(t, ex->targets[0]))
        fail_msg("%s: tokens at %d decode to \"%s\"", ex->id, ex->needle_token_pos, text);
    free(text);
    assert_int_equal((int)token_at(ids, n, p, (size_t)(start - p)), ex->needle_token_pos);
    /* depth within the haystack's tokens: from the end of the first line of
       the instructions to the question */
    const char *ctx = strchr(p, '\n') + 1;
    const char *question = strstr(p, "\nWhat ");
    assert_non_null(question);
    size_t c0 = token_at(ids, n, p, (size_t)(ctx - p)), c1 = token_at(ids, n, p, (size_t)(question - p));
    double hay_tokens = (double)(c1 - c0 - (size_t)ex->needle_token_len);
    double realised = 100.0 * (double)((size_t)ex->needle_token_pos - c0) / hay_tokens;
    if (fabs(realised - ex->depth) > tolerance)
        fail_msg("%s: needle at %.2f%% of the haystack, asked for %.0f%%", ex->id, realised, ex->depth);
    /* and what the builder recorded agrees */
    assert_true(fabs(extra_item(ex, "realised_depth_percent")->valuedouble - realised) < 0.6);
    /* "at or before" the depth: never more than a sentence past it */
    if (realised > ex->depth + 0.5) fail_msg("%s: needle at %.2f%%, after the depth %.0f%%", ex->id, realised, ex->depth);
    free(ids);
    return realised;
}

static void test_needle_depth(void **state) {
    (void)state;
    static const char *const cases[] = {
        "{\"variant\": \"single_2\", \"lengths\": [4096, 8192], \"depths\": [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]}",
        "{\"variant\": \"single_1\", \"lengths\": [4096, 8192], \"depths\": [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]}",
        "{\"variant\": \"single_3\", \"lengths\": [8192], \"depths\": [5, 33, 66, 95]}",
        "{\"variant\": \"multikey_2\", \"lengths\": [8192], \"depths\": [0, 25, 50, 75, 100]}",
        "{\"haystack_file\": \"../datasets/samples/haystack.txt\", \"lengths\": [8192, 16384], \"depths\": [0, 15, 50, 85, 100]}",
    };
    double worst = 0;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        ExampleList l;
        build_ok(cases[c], &l);
        for (int i = 0; i < l.n; i++) {
            const Example *ex = &l.items[i];
            double realised = check_needle(ex, 3.0);
            if (fabs(realised - ex->depth) > worst) worst = fabs(realised - ex->depth);
            /* the needle's token position over the whole prompt, too */
            double whole = 100.0 * ex->needle_token_pos / ex->prompt_tokens;
            assert_true(fabs(whole - ex->depth) < 4.0);
            assert_near(extra_item(ex, "cell_depth")->valuedouble, ex->depth, 0);
            assert_string_equal(extra_item(ex, "variant")->valuestring,
                                strstr(cases[c], "single_1") ? "single_1" : strstr(cases[c], "single_3") ? "single_3"
                                                                    : strstr(cases[c], "multikey_2") ? "multikey_2"
                                                                                                     : "single_2");
        }
        examples_free(&l);
    }
    print_message("  realised needle depth within %.2f points of the grid depth (4k-16k tokens)\n", worst);
}

/* Random depths: drawn from RULER's 40 values, recorded, and honoured. */
static void test_random_depths(void **state) {
    (void)state;
    ExampleList l;
    build_ok("{\"depth_mode\": \"random\", \"samples\": 30, \"lengths\": [8192]}", &l);
    assert_int_equal(l.n, 30);
    int distinct = 0;
    double seen[64];
    for (int i = 0; i < l.n; i++) {
        const Example *ex = &l.items[i];
        char id[32];
        snprintf(id, sizeof id, "L8192_s%d", i);
        assert_string_equal(ex->id, id);
        int on_grid = 0;
        for (int k = 0; k < RULER_N_DEPTHS; k++) on_grid |= ruler_depth(k) == ex->depth;
        assert_true(on_grid);
        check_needle(ex, 3.0);
        int dup = 0;
        for (int k = 0; k < distinct; k++) dup |= seen[k] == ex->depth;
        if (!dup) seen[distinct++] = ex->depth;
    }
    assert_true(distinct >= 10); /* 30 draws from 40 values */
    examples_free(&l);
    /* RULER's depth list: round(linspace(0, 100, 40)) */
    assert_near(ruler_depth(0), 0, 0);
    assert_near(ruler_depth(1), 3, 0);
    assert_near(ruler_depth(2), 5, 0);
    assert_near(ruler_depth(20), 51, 0);
    assert_near(ruler_depth(39), 100, 0);
}

/* ---------------------------------------------------------------- several needles */

/* Offsets of each target's needle in the prompt. */
static size_t needle_offset(const char *prompt, const char *value) {
    char tail[96];
    snprintf(tail, sizeof tail, " is: %s.", value);
    const char *hit = strstr(prompt, tail);
    assert_non_null(hit);
    return (size_t)(hit - prompt);
}

static void test_multi_needle_order(void **state) {
    (void)state;
    static const char *const cases[] = {
        "{\"variant\": \"multivalue\", \"lengths\": [8192], \"depths\": [0, 20, 60]}",
        "{\"variant\": \"multiquery\", \"lengths\": [8192], \"depths\": [0, 20, 60]}",
    };
    for (size_t c = 0; c < 2; c++) {
        ExampleList l;
        build_ok(cases[c], &l);
        for (int i = 0; i < l.n; i++) {
            const Example *ex = &l.items[i];
            assert_int_equal(ex->n_targets, 4);
            const char *p = ex->prompt, *ctx = strchr(p, '\n') + 1, *q = strstr(p, "\nWhat ");
            double len = (double)(q - ctx);
            /* the answers sit at depth, depth + (100 - depth)/4, ... in text
               order; measured in characters, within 3 points */
            size_t off[4];
            for (int k = 0; k < 4; k++) off[k] = needle_offset(p, ex->targets[k]);
            for (int a = 0; a < 4; a++)
                for (int b = a + 1; b < 4; b++)
                    if (off[b] < off[a]) {
                        size_t x = off[a];
                        off[a] = off[b];
                        off[b] = x;
                    }
            const cJSON *depths = extra_item(ex, "needle_depths");
            assert_int_equal(cJSON_GetArraySize(depths), 4);
            for (int k = 0; k < 4; k++) {
                double want = ex->depth + k * (100.0 - ex->depth) / 4;
                assert_near(cJSON_GetArrayItem(depths, k)->valuedouble, want, 1e-9);
                /* characters of haystack before the needle (earlier needles excluded) */
                double before = (double)(off[k] - (size_t)(ctx - p));
                for (int j = 0; j < k; j++) before -= (double)(strchr(p + off[j], '.') - (p + off[j]));
                double at = 100.0 * before / len;
                if (fabs(at - want) > 3.5) fail_msg("%s: needle %d at %.1f%%, want %.1f%%", ex->id, k, at, want);
            }
            /* the recorded first needle is the first in the text */
            size_t n;
            int32_t *ids = encode(p, strlen(p), 1, &n);
            const char *first = p + off[0];
            while (strncmp(first, "One of", 6) != 0) first--;
            assert_int_equal((int)token_at(ids, n, p, (size_t)(first - p)), ex->needle_token_pos);
            free(ids);
            /* multi-query asks for the four keys as RULER joins them */
            if (c == 1) {
                const char *query = extra_item(ex, "query")->valuestring;
                assert_non_null(strstr(query, ", and "));
                assert_non_null(strstr(p, query));
            }
        }
        examples_free(&l);
    }
    /* multikey_1: one key asked, its needle at the cell depth, three others
       elsewhere; random mode keeps all needles in sorted order */
    ExampleList l;
    build_ok("{\"variant\": \"multikey_1\", \"lengths\": [8192], \"depths\": [50]}", &l);
    assert_int_equal(l.items[0].n_targets, 1);
    check_needle(&l.items[0], 3.0);
    int count = 0;
    for (const char *s = l.items[0].prompt; (s = strstr(s, "One of the special magic")); s++) count++;
    assert_int_equal(count, 4);
    examples_free(&l);
    build_ok("{\"variant\": \"multikey_1\", \"lengths\": [4096], \"depth_mode\": \"random\", \"samples\": 5}", &l);
    for (int i = 0; i < l.n; i++) {
        const cJSON *d = extra_item(&l.items[i], "needle_depths");
        for (int k = 1; k < cJSON_GetArraySize(d); k++)
            assert_true(cJSON_GetArrayItem(d, k - 1)->valuedouble <= cJSON_GetArrayItem(d, k)->valuedouble);
    }
    examples_free(&l);
}

/* ---------------------------------------------------------------- templates and records */

static void test_prompt_text(void **state) {
    (void)state;
    ExampleList l;
    build_ok("{\"variant\": \"single_1\", \"lengths\": [1024], \"depths\": [50]}", &l);
    const Example *ex = &l.items[0];
    /* RULER's singular template, noise haystack, answer prefix at the end */
    assert_memory_equal(ex->prompt,
                        "A special magic number is hidden within the following text. Make sure to memorize it. I "
                        "will quiz you about the number afterwards.\nThe grass is green. The sky is blue.",
                        strlen("A special magic number is hidden within the following text. Make sure to memorize it. "
                               "I will quiz you about the number afterwards.\nThe grass is green. The sky is blue."));
    const char *key = extra_item(ex, "query")->valuestring;
    char end[256];
    snprintf(end, sizeof end,
             "\nWhat is the special magic number for %s mentioned in the provided text? The special magic number "
             "for %s mentioned in the provided text is",
             key, key);
    assert_true(strlen(ex->prompt) > strlen(end));
    assert_string_equal(ex->prompt + strlen(ex->prompt) - strlen(end), end);
    assert_non_null(strstr(ex->prompt, "One of the special magic numbers for "));
    assert_int_equal(strlen(ex->targets[0]), 7); /* 7-digit number */
    assert_string_equal(ex->id, "L1024_D50_s0");
    assert_int_equal(ex->max_new_tokens, 128);
    assert_int_equal(ex->n_stop, 0);
    assert_int_equal(ex->request, REQ_GENERATE);
    assert_int_equal(ex->target_tokens, 1024);
    assert_string_equal(extra_item(ex, "depth_mode")->valuestring, "grid");
    examples_free(&l);

    /* plural when several values are asked; UUIDs; overrides */
    build_ok("{\"variant\": \"multivalue\", \"value_type\": \"uuids\", \"lengths\": [2048], \"depths\": [10]}", &l);
    ex = &l.items[0];
    assert_memory_equal(ex->prompt, "Some special magic uuids are hidden", 35);
    assert_non_null(strstr(ex->prompt, "What are all the special magic uuids for "));
    assert_int_equal(strlen(ex->targets[0]), 36);
    examples_free(&l);

    build_ok("{\"lengths\": [1024], \"depths\": [30], \"template\": \"Text:\\n{context}\\nFind {query}.\", "
             "\"answer_prefix\": \" Value:\", \"stop\": [\"\\n\"], \"max_new_tokens\": 20}",
             &l);
    ex = &l.items[0];
    assert_memory_equal(ex->prompt, "Text:\n", 6);
    char tail[128];
    snprintf(tail, sizeof tail, "\nFind %s. Value:", extra_item(ex, "query")->valuestring);
    assert_string_equal(ex->prompt + strlen(ex->prompt) - strlen(tail), tail);
    assert_int_equal(ex->n_stop, 1);
    assert_string_equal(ex->stop[0], "\n");
    assert_int_equal(ex->max_new_tokens, 20);
    examples_free(&l);

    /* key and value types; the needle haystack's distractors never reuse the asked key */
    build_ok("{\"variant\": \"multikey_3\", \"lengths\": [4096], \"depths\": [50]}", &l);
    ex = &l.items[0];
    const char *q = extra_item(ex, "query")->valuestring;
    assert_int_equal(strlen(q), 36);
    int mentions = 0;
    for (const char *s = ex->prompt; (s = strstr(s, q)); s++) mentions++;
    assert_int_equal(mentions, 3); /* the needle, the question, the answer prefix */
    examples_free(&l);
}

/* ---------------------------------------------------------------- failures */

static void test_impossible_targets(void **state) {
    (void)state;
    /* smaller than the template alone */
    const char *msg = build_fails("{\"lengths\": [200], \"depths\": [50]}");
    assert_non_null(strstr(msg, "impossible"));
    assert_non_null(strstr(msg, "L200_D50_s0"));
    /* no room for the answer */
    msg = build_fails("{\"lengths\": [100]}");
    assert_non_null(strstr(msg, "lengths"));
    /* bad fields name themselves */
    assert_non_null(strstr(build_fails("{\"variant\": \"single_9\"}"), "variant"));
    assert_non_null(strstr(build_fails("{\"depths\": [50, 120]}"), "depths"));
    assert_non_null(strstr(build_fails("{\"depths\": [50], \"depth_mode\": \"random\"}"), "depths"));
    assert_non_null(strstr(build_fails("{\"samples\": 3}"), "samples"));
    assert_non_null(strstr(build_fails("{\"haystack\": \"file\"}"), "haystack_file"));
    assert_non_null(strstr(build_fails("{\"haystack_file\": \"no/such/file.txt\"}"), "haystack_file"));
    assert_non_null(strstr(build_fails("{\"template\": \"no context here\"}"), "{context}"));
    assert_non_null(strstr(build_fails("{\"metric\": \"contains\"}"), "metric"));

    /* the ±1% rule itself */
    Err err;
    assert_int_equal(check_length(1000, 862, 128, &err), 0);  /* 990 */
    assert_int_equal(check_length(1000, 861, 128, &err), -1); /* 989: 1.1% short */
    assert_non_null(strstr(err.msg, "1%"));
    assert_int_equal(check_length(1000, 882, 128, &err), 0);  /* 1010 */
    assert_int_equal(check_length(1000, 883, 128, &err), -1); /* 1011 */
}

/* A context whose only unit is far coarser than 1% of the target cannot be
   fitted, and says so instead of returning a short prompt. */
typedef struct {
    size_t unit;
} Coarse;

static int coarse_render(void *ctx, size_t n, size_t part, StrBuf *out, Err *err) {
    const Coarse *c = ctx;
    (void)part;
    if (sb_puts(out, "Count the letters:", err)) return -1;
    for (size_t i = 0; i < n * c->unit; i++)
        if (sb_puts(out, " x", err)) return -1;
    return 0;
}

static void test_fit_refuses_coarse_units(void **state) {
    (void)state;
    Coarse c = {200};
    Fit fit;
    Err err = {{0}};
    assert_int_equal(fit_prompt(tok, 1, 1000, 0, SIZE_MAX, coarse_render, NULL, &c, &fit, &err), -1);
    assert_non_null(strstr(err.msg, "cannot come within 1%"));
    /* with units of one word it fits */
    c.unit = 1;
    assert_int_equal(fit_prompt(tok, 1, 1000, 50, SIZE_MAX, coarse_render, NULL, &c, &fit, &err), 0);
    assert_true(fit.tokens + 50 <= 1000 && fit.tokens + 50 >= 990);
    /* and runs out of material honestly */
    assert_int_equal(fit_prompt(tok, 1, 1000, 0, 10, coarse_render, NULL, &c, &fit, &err), -1);
    assert_non_null(strstr(err.msg, "ran out"));
}

/* ---------------------------------------------------------------- scoring */

static void score(const char *metric, const Example *ex, const char *pred, Scores *s) {
    Task task;
    task_init(&task, "{}");
    if (metric) snprintf(task.t.metric, sizeof task.t.metric, "%s", metric);
    Prediction p = {.text = pred};
    Err err;
    memset(s, 0, sizeof *s);
    assert_int_equal(kind_niah.score(&task.t, ex, &p, s, &err), 0);
    task_free(&task);
}

static void test_scoring(void **state) {
    (void)state;
    ExampleList l;
    build_ok("{\"variant\": \"multivalue\", \"value_type\": \"words\", \"lengths\": [1024], \"depths\": [0]}", &l);
    const Example *ex = &l.items[0];
    char pred[512], upper[64];
    Scores s;
    /* all four, in another case and order, with noise around */
    snprintf(upper, sizeof upper, "%s", ex->targets[2]);
    for (char *c = upper; *c; c++) *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
    snprintf(pred, sizeof pred, "  %s, %s, %s\x01and %s.\n", ex->targets[3], upper, ex->targets[0], ex->targets[1]);
    score(NULL, ex, pred, &s);
    assert_string_equal(s.name[0], "string_match_all");
    assert_near(s.value[0], 1.0, 1e-12);
    /* three of four */
    snprintf(pred, sizeof pred, "%s %s %s", ex->targets[0], ex->targets[1], ex->targets[3]);
    score(NULL, ex, pred, &s);
    assert_near(s.value[0], 0.75, 1e-12);
    assert_string_equal(s.name[1], "string_match_part");
    assert_near(s.value[1], 1.0, 1e-12);
    /* string_match_part as the headline */
    snprintf(pred, sizeof pred, "just %s", ex->targets[2]);
    score("string_match_part", ex, pred, &s);
    assert_string_equal(s.name[0], "string_match_part");
    assert_near(s.value[0], 1.0, 1e-12);
    assert_near(s.value[1], 0.25, 1e-12);
    /* nothing, and an empty generation */
    score(NULL, ex, "no idea", &s);
    assert_near(s.value[0], 0.0, 0);
    score(NULL, ex, "", &s);
    assert_near(s.value[0], 0.0, 0);
    examples_free(&l);
}

/* ---------------------------------------------------------------- haystacks */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_prose_never_repeats(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        HaystackSpec spec = {.kind = HAY_PROSE, .seed = seed};
        Err err;
        Haystack *h = haystack_open(&spec, &err);
        assert_non_null(h);
        StrBuf all = {0};
        /* ~60k tokens of prose */
        assert_int_equal(haystack_render(h, 6000, 0, NULL, 0, &all, NULL, &err), 0);
        char **para = NULL;
        size_t n = 0, cap = 0;
        for (char *s = all.s, *next; s; s = next) {
            next = strstr(s, "\n\n");
            if (next) *next = '\0', next += 2;
            if (n == cap) para = realloc(para, (cap = cap ? 2 * cap : 256) * sizeof *para);
            para[n++] = s;
        }
        assert_true(n > 500);
        qsort(para, n, sizeof *para, cmp_str);
        for (size_t i = 1; i < n; i++)
            if (strcmp(para[i], para[i - 1]) == 0) fail_msg("seed %llu: a paragraph repeats: %s", (unsigned long long)seed, para[i]);
        /* well-formed sentences: capital first, final punctuation */
        for (size_t i = 0; i < 200; i++) {
            const Sentence *s = haystack_sentence(h, i, &err);
            size_t len = strlen(s->text);
            assert_true(s->text[0] >= 'A' && s->text[0] <= 'Z');
            assert_true(s->text[len - 1] == '.' || s->text[len - 1] == '?');
            assert_null(strstr(s->text, "{"));
            assert_null(strstr(s->text, " a a"));
        }
        free(para);
        sb_free(&all);
        haystack_close(h);
    }
    /* and within a built 32k-token prompt */
    ExampleList l;
    build_ok("{\"lengths\": [32768], \"depths\": [50]}", &l);
    char *copy = xstrdup(l.items[0].prompt);
    char **para = NULL;
    size_t n = 0;
    for (char *s = copy, *next; s; s = next) {
        next = strstr(s, "\n\n");
        if (next) *next = '\0', next += 2;
        para = realloc(para, (n + 1) * sizeof *para);
        para[n++] = s;
    }
    assert_true(n > 80);
    qsort(para, n, sizeof *para, cmp_str);
    for (size_t i = 1; i < n; i++) assert_string_not_equal(para[i], para[i - 1]);
    free(para);
    free(copy);
    examples_free(&l);
}

static void test_sentence_splitter(void **state) {
    (void)state;
    const char *text = "Mr. Smith went to Washington. He arrived at 5 p.m. on Monday! Was it late? \"Yes,\" said "
                       "Dr. J. Watson, e.g. the doctor. See Fig. 3 for details.\n\nA new   paragraph\nstarts here. "
                       "It ends (quietly.) Then 42 more words follow... And the end";
    static const char *const want[] = {
        "Mr. Smith went to Washington.",
        "He arrived at 5 p.m. on Monday!",
        "Was it late?",
        "\"Yes,\" said Dr. J. Watson, e.g. the doctor.",
        "See Fig. 3 for details.",
        "A new paragraph starts here.",
        "It ends (quietly.)",
        "Then 42 more words follow...",
        "And the end",
    };
    Sentence *s;
    size_t n;
    Err err;
    assert_int_equal(split_sentences(text, &s, &n, &err), 0);
    for (size_t i = 0; i < n && i < sizeof want / sizeof *want; i++) assert_string_equal(s[i].text, want[i]);
    assert_int_equal(n, sizeof want / sizeof *want);
    assert_string_equal(s[5].sep, "\n\n");
    assert_string_equal(s[4].sep, " ");
    sentences_free(s, n);
    /* the shipped sample: 20 KB of prose, headings as their own sentences */
    char path[2200];
    snprintf(path, sizeof path, "%s/datasets/samples/haystack.txt", root);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    assert_true(len > 18000);
    assert_int_equal(split_sentences(buf, &s, &n, &err), 0);
    assert_true(n > 150);
    for (size_t i = 0; i < n; i++) assert_true(strlen(s[i].text) < 400);
    sentences_free(s, n);
}

static void test_words(void **state) {
    (void)state;
    /* the lists: sizes, no duplicates, lowercase */
    const char *const *lists[] = {words_adjectives, words_nouns, words_verbs, words_common};
    const size_t sizes[] = {words_n_adjectives, words_n_nouns, words_n_verbs, words_n_common};
    for (int l = 0; l < 4; l++) {
        assert_true(sizes[l] >= 300 && sizes[l] <= 700);
        for (size_t i = 0; i < sizes[l]; i++) {
            for (const char *c = lists[l][i]; *c; c++) assert_true(*c >= 'a' && *c <= 'z');
            if (i) assert_true(strcmp(lists[l][i - 1], lists[l][i]) < 0); /* sorted, so distinct */
        }
    }
    char out[64];
    word_plural("box", out, sizeof out);
    assert_string_equal(out, "boxes");
    word_plural("city", out, sizeof out);
    assert_string_equal(out, "cities");
    word_plural("valley", out, sizeof out);
    assert_string_equal(out, "valleys");
    word_plural("bench", out, sizeof out);
    assert_string_equal(out, "benches");
    assert_string_equal(word_article("owl"), "an");
    assert_string_equal(word_article("unique"), "a");
    /* the generator: reproducible, uniform enough, unbiased ranges */
    Rng a, b;
    rng_seed(&a, 99);
    rng_seed(&b, 99);
    for (int i = 0; i < 100; i++) assert_true(rng_next(&a) == rng_next(&b));
    int counts[10] = {0};
    for (int i = 0; i < 100000; i++) counts[rng_below(&a, 10)]++;
    for (int i = 0; i < 10; i++) assert_true(counts[i] > 9500 && counts[i] < 10500);
    for (int i = 0; i < 1000; i++) {
        int64_t x = rng_range(&a, 1000000, 9999999);
        assert_true(x >= 1000000 && x <= 9999999);
    }
    char u[37];
    random_uuid(&a, u);
    assert_int_equal(strlen(u), 36);
    assert_true(u[8] == '-' && u[13] == '-' && u[14] == '4' && u[18] == '-' && u[23] == '-');
    assert_true(strchr("89ab", u[19]) != NULL);
    /* zeta(2) = pi^2 / 6, and Zipf draws follow k^-2 */
    assert_near(zeta(2.0), M_PI * M_PI / 6, 1e-10);
    Zipf z;
    assert_int_equal(zipf_init(&z, 100, 2.0), 0);
    int ones = 0, twos = 0;
    for (int i = 0; i < 100000; i++) {
        int k = zipf_draw(&z, &a);
        assert_true(k >= 1 && k <= 100);
        ones += k == 1;
        twos += k == 2;
    }
    assert_true(fabs((double)ones / twos - 4.0) < 0.2);
    zipf_free(&z);
    /* the pool: distinct words, made-up ones after the built-in ones */
    WordPool *p = wordpool_new(5);
    size_t total = words_n_adjectives + words_n_nouns + words_n_verbs + words_n_common + 3000;
    char **seen = malloc(total * sizeof *seen);
    for (size_t i = 0; i < total; i++) seen[i] = (char *)wordpool_get(p, i);
    qsort(seen, total, sizeof *seen, cmp_str);
    for (size_t i = 1; i < total; i++) assert_string_not_equal(seen[i], seen[i - 1]);
    free(seen);
    wordpool_free(p);
}

/* ---------------------------------------------------------------- main */

static int setup(void **state) {
    (void)state;
    const char *r = getenv("HYMEVAL_SOURCE_ROOT");
    snprintf(root, sizeof root, "%s", r && *r ? r : ".");
    char path[2200];
    snprintf(path, sizeof path, "%s/models/tokenizer", root);
    Err err;
    tok = tokenizer_load(path, &err);
    if (!tok) {
        fprintf(stderr, "cannot load the tokenizer: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tokenizer_free(tok);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words),
        cmocka_unit_test(test_sentence_splitter),
        cmocka_unit_test(test_prose_never_repeats),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_cells_independent),
        cmocka_unit_test(test_lengths_every_variant),
        cmocka_unit_test(test_needle_depth),
        cmocka_unit_test(test_random_depths),
        cmocka_unit_test(test_multi_needle_order),
        cmocka_unit_test(test_prompt_text),
        cmocka_unit_test(test_impossible_targets),
        cmocka_unit_test(test_fit_refuses_coarse_units),
        cmocka_unit_test(test_scoring),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
