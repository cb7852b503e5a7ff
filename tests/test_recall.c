/* test_recall.c: the synthetic variants of the `recall` kind (tasks/recall.c):
   vt, cwe, fwe, kv and ar, measured with the project's own tokenizer
   ($HYMEVAL_SOURCE_ROOT/models/tokenizer).

   Every answer is recomputed here from the prompt text alone, with parsers
   written for these tests, so a builder that recorded the wrong answer (or
   built an ambiguous prompt) fails. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinds.h"
#include "recall_data.h"
#include "task.h"

#define assert_near(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))

static Tokenizer *tok;
static char root[2048];

static const char *const synthetic[] = {"vt", "cwe", "fwe", "kv", "ar"};

/* ---------------------------------------------------------------- helpers */

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
    snprintf(t->kind, sizeof t->kind, "recall");
    snprintf(task->file, sizeof task->file, "%s/tests/virtual.jsonl", root);
    t->file = task->file;
    t->line = 1;
    cJSON *seed = cJSON_GetObjectItem(t->json, "seed"), *mnt = cJSON_GetObjectItem(t->json, "max_new_tokens"),
          *metric = cJSON_GetObjectItem(t->json, "metric"), *data = cJSON_GetObjectItem(t->json, "data");
    t->seed = seed ? (uint64_t)seed->valuedouble : 1234;
    t->max_new_tokens = mnt ? mnt->valueint : 0;
    if (metric) snprintf(t->metric, sizeof t->metric, "%s", metric->valuestring);
    if (data) snprintf(t->data, sizeof t->data, "%s", data->valuestring);
    cJSON_DeleteItemFromObject(t->json, "seed");
    cJSON_DeleteItemFromObject(t->json, "max_new_tokens");
    cJSON_DeleteItemFromObject(t->json, "metric");
    cJSON_DeleteItemFromObject(t->json, "data");
}

static void task_free(Task *task) { cJSON_Delete(task->t.json); }

static void build_ok(const char *json, ExampleList *out) {
    Task task;
    task_init(&task, json);
    Err err = {{0}};
    memset(out, 0, sizeof *out);
    int rc = kind_recall.validate(&task.t, &err);
    if (rc == 0) rc = kind_recall.build(&task.t, tok, out, &err);
    if (rc != 0) fail_msg("%s: %s", json, err.msg);
    task_free(&task);
}

static const char *validate_fails(const char *json) {
    static Err err;
    Task task;
    task_init(&task, json);
    memset(&err, 0, sizeof err);
    int rc = kind_recall.validate(&task.t, &err);
    if (rc == 0) {
        ExampleList out = {0};
        rc = kind_recall.build(&task.t, tok, &out, &err);
        examples_free(&out);
    }
    task_free(&task);
    if (rc == 0) fail_msg("expected %s to fail", json);
    return err.msg;
}

/* The last occurrence of needle in s. */
static const char *last_of(const char *s, const char *needle) {
    const char *hit = NULL;
    for (const char *p = s; (p = strstr(p, needle)); p++) hit = p;
    return hit;
}

/* A malloc'd copy of s[a, b). */
static char *slice(const char *a, const char *b) {
    char *out = malloc((size_t)(b - a) + 1);
    memcpy(out, a, (size_t)(b - a));
    out[b - a] = '\0';
    return out;
}

typedef struct {
    char *word;
    int count;
} Tally;

static void tally_add(Tally **t, int *n, const char *w, size_t len) {
    for (int i = 0; i < *n; i++)
        if (strlen((*t)[i].word) == len && memcmp((*t)[i].word, w, len) == 0) {
            (*t)[i].count++;
            return;
        }
    *t = realloc(*t, (size_t)(*n + 1) * sizeof **t);
    (*t)[*n].word = slice(w, w + len);
    (*t)[*n].count = 1;
    (*n)++;
}

static int by_count(const void *a, const void *b) {
    const Tally *x = a, *y = b;
    return y->count - x->count;
}

static void tally_free(Tally *t, int n) {
    for (int i = 0; i < n; i++) free(t[i].word);
    free(t);
}

/* The k most frequent words must be exactly the targets, and strictly ahead
   of the rest. */
static void check_top(Tally *t, int n, int k, const Example *ex) {
    qsort(t, (size_t)n, sizeof *t, by_count);
    assert_true(n > k);
    if (t[k - 1].count <= t[k].count)
        fail_msg("%s: the top %d is ambiguous (%s x%d vs %s x%d)", ex->id, k, t[k - 1].word, t[k - 1].count,
                 t[k].word, t[k].count);
    assert_int_equal(ex->n_targets, k);
    for (int i = 0; i < k; i++) {
        int found = 0;
        for (int j = 0; j < k; j++) found |= strcmp(t[i].word, ex->targets[j]) == 0;
        if (!found) fail_msg("%s: %s (x%d) is among the top %d but not a target", ex->id, t[i].word, t[i].count, k);
    }
}

/* ---------------------------------------------------------------- answers by construction */

/* vt: follow every chain from the asked value. */
static void check_vt(const Example *ex, int hops) {
    const char *p = ex->prompt;
    const char *main = last_of(p, "Memorize and track the chain(s)");
    assert_non_null(main);
    assert_true(main > p); /* there is an in-context example before it */
    const char *q = last_of(p, "assigned the value ");
    assert_non_null(q);
    int value = atoi(q + strlen("assigned the value "));
    /* VAR X = 12345 and VAR Y = VAR X lines of the main text */
    char names[4096][8], from[4096][8];
    int values[4096], n = 0;
    for (const char *s = main; (s = strstr(s, "VAR ")) && s < q; s++) {
        if (s > main && s[-1] != '\n') continue; /* "VAR" inside "VAR X = VAR Y" */
        char a[16], b[16];
        int v;
        if (sscanf(s, "VAR %15[A-Z] = VAR %15[A-Z]", a, b) == 2) {
            snprintf(names[n], 8, "%.7s", a);
            snprintf(from[n], 8, "%.7s", b);
            values[n++] = -1;
        } else if (sscanf(s, "VAR %15[A-Z] = %d", a, &v) == 2) {
            snprintf(names[n], 8, "%.7s", a);
            from[n][0] = '\0';
            values[n++] = v;
        } else {
            fail_msg("%s: cannot parse %.40s", ex->id, s);
        }
    }
    /* resolve: a variable has the value if its source does */
    int has[4096] = {0}, changed = 1, count = 0;
    for (int i = 0; i < n; i++) has[i] = values[i] == value;
    while (changed) {
        changed = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n && !has[i]; j++)
                if (has[j] && from[i][0] && strcmp(from[i], names[j]) == 0) has[i] = changed = 1;
    }
    for (int i = 0; i < n; i++) count += has[i];
    assert_int_equal(count, hops + 1);
    assert_int_equal(ex->n_targets, hops + 1);
    for (int i = 0; i < n; i++)
        if (has[i]) {
            int found = 0;
            for (int k = 0; k < ex->n_targets; k++) found |= strcmp(ex->targets[k], names[i]) == 0;
            if (!found) fail_msg("%s: %s holds %d but is not a target", ex->id, names[i], value);
        }
    /* the answer prefix names how many */
    char expect[64];
    snprintf(expect, sizeof expect, "%d variables are assigned the value %d, they are: ", hops + 1, value);
    assert_non_null(strstr(main, expect));
}

/* cwe: count the numbered list after the in-context example. */
static void check_cwe(const Example *ex, int num_cw) {
    const char *p = ex->prompt;
    const char *start = last_of(p, "Memorize the ones that appear most often.\n");
    const char *end = last_of(p, "\nQuestion: What are the");
    assert_true(start && end && start < end);
    start += strlen("Memorize the ones that appear most often.\n");
    Tally *t = NULL;
    int n = 0, expect_no = 1;
    const char *s = start;
    while (s < end) {
        int no, used;
        char word[64];
        assert_int_equal(sscanf(s, "%d. %63[a-z]%n", &no, word, &used), 2);
        assert_int_equal(no, expect_no++); /* numbered 1, 2, 3, ... */
        tally_add(&t, &n, word, strlen(word));
        s += used;
        while (s < end && *s == ' ') s++;
    }
    check_top(t, n, num_cw, ex);
    tally_free(t, n);
}

/* fwe: count the coded words, ignoring the dots. */
static void check_fwe(const Example *ex) {
    const char *p = ex->prompt;
    const char *start = strstr(p, "most frequently appeared coded words. ");
    const char *end = strstr(p, "\nQuestion:");
    assert_true(start && end && start < end);
    start += strlen("most frequently appeared coded words. ");
    Tally *t = NULL;
    int n = 0;
    for (const char *s = start; s < end;) {
        const char *w = s;
        while (s < end && *s != ' ') s++;
        if (strncmp(w, "...", 3) != 0) {
            for (const char *c = w; c < s; c++) assert_true(islower((unsigned char)*c));
            tally_add(&t, &n, w, (size_t)(s - w));
        }
        while (s < end && *s == ' ') s++;
    }
    check_top(t, n, 3, ex);
    tally_free(t, n);
}

/* kv: parse the JSON object and look the key up. */
static void check_kv(const Example *ex) {
    const char *p = ex->prompt;
    const char *start = strstr(p, "JSON data:\n"), *end = strstr(p, "\n\nKey: \"");
    assert_true(start && end && start < end);
    char *json = slice(start + strlen("JSON data:\n"), end);
    cJSON *obj = cJSON_Parse(json);
    if (!obj) fail_msg("%s: the context is not valid JSON", ex->id);
    char key[64];
    assert_int_equal(sscanf(end, "\n\nKey: \"%63[^\"]\"", key), 1);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    assert_non_null(v);
    assert_string_equal(v->valuestring, ex->targets[0]);
    int mentions = 0;
    for (const char *s = json; (s = strstr(s, key)); s++) mentions++;
    assert_int_equal(mentions, 1); /* one pair with that key */
    assert_true(cJSON_GetArraySize(obj) >= 2);
    assert_non_null(strstr(p, "\nCorresponding value:"));
    cJSON_Delete(obj);
    free(json);
}

/* ar: read the "key -> value" lines and look the key up. */
static void check_ar(const Example *ex) {
    const char *p = ex->prompt;
    const char *start = strstr(p, "each key.\n\n"), *end = strstr(p, "\n\nQuestion: Which value goes with the key \"");
    assert_true(start && end && start < end);
    start += strlen("each key.\n\n");
    char key[96];
    assert_int_equal(sscanf(end, "\n\nQuestion: Which value goes with the key \"%95[^\"]\"", key), 1);
    int found = 0, lines = 0;
    for (const char *s = start; s < end; lines++) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        if (!nl) nl = end;
        char *line = slice(s, nl);
        char k[96], v[96];
        if (sscanf(line, "%95s -> %95s", k, v) == 2 && strcmp(k, key) == 0) {
            found++;
            assert_string_equal(v, ex->targets[0]);
        }
        free(line);
        s = nl + 1;
    }
    assert_int_equal(found, 1);
    assert_true(lines >= 2);
    char tail[128];
    snprintf(tail, sizeof tail, "\nAnswer: %s ->", key);
    assert_string_equal(p + strlen(p) - strlen(tail), tail);
}

static void check_answers(const char *variant, const ExampleList *l) {
    for (int i = 0; i < l->n; i++) {
        const Example *ex = &l->items[i];
        if (!strcmp(variant, "vt")) check_vt(ex, 4);
        else if (!strcmp(variant, "cwe")) check_cwe(ex, 10);
        else if (!strcmp(variant, "fwe")) check_fwe(ex);
        else if (!strcmp(variant, "kv")) check_kv(ex);
        else check_ar(ex);
    }
}

/* ---------------------------------------------------------------- tests */

static int min_length(const char *variant) {
    /* vt and cwe carry an in-context example: with this small-vocabulary
       tokenizer their prompt alone is over 512 tokens */
    return !strcmp(variant, "vt") || !strcmp(variant, "cwe") ? 1024 : 512;
}

static void test_answers_by_construction(void **state) {
    (void)state;
    for (int v = 0; v < 5; v++) {
        char json[256];
        snprintf(json, sizeof json, "{\"variant\": \"%s\", \"lengths\": [%d, 2048, 4096, 8192], \"num_samples\": 3}",
                 synthetic[v], min_length(synthetic[v]));
        ExampleList l;
        build_ok(json, &l);
        assert_int_equal(l.n, 12);
        check_answers(synthetic[v], &l);
        examples_free(&l);
    }
    /* other settings: two chains of six hops, CWE's long-form frequencies and
       its short switch turned off, another Zipf exponent */
    ExampleList l;
    build_ok("{\"variant\": \"vt\", \"num_chains\": 2, \"num_hops\": 6, \"lengths\": [4096], \"num_samples\": 3}", &l);
    for (int i = 0; i < l.n; i++) {
        check_vt(&l.items[i], 6);
        int statements = 0;
        const char *main = last_of(l.items[i].prompt, "Memorize and track");
        for (const char *s = main; (s = strstr(s, "\nVAR ")); s++) statements++;
        assert_int_equal(statements, 14);
    }
    examples_free(&l);
    build_ok("{\"variant\": \"cwe\", \"lengths\": [2048], \"short_switch\": false, \"freq_cw\": 12, \"freq_ucw\": 2, "
             "\"num_cw\": 5, \"num_samples\": 2}",
             &l);
    for (int i = 0; i < l.n; i++) {
        check_cwe(&l.items[i], 5);
        assert_int_equal(cJSON_GetObjectItem(l.items[i].extra, "freq_cw")->valueint, 12);
        assert_non_null(strstr(l.items[i].prompt, "What are the 5 most common words"));
    }
    examples_free(&l);
    build_ok("{\"variant\": \"cwe\", \"lengths\": [2048], \"num_samples\": 1}", &l); /* below 4096: 6 / 1 */
    assert_int_equal(cJSON_GetObjectItem(l.items[0].extra, "freq_cw")->valueint, 6);
    assert_int_equal(cJSON_GetObjectItem(l.items[0].extra, "freq_ucw")->valueint, 1);
    examples_free(&l);
    build_ok("{\"variant\": \"cwe\", \"lengths\": [4096], \"num_samples\": 1}", &l);
    assert_int_equal(cJSON_GetObjectItem(l.items[0].extra, "freq_cw")->valueint, 30);
    assert_int_equal(cJSON_GetObjectItem(l.items[0].extra, "freq_ucw")->valueint, 3);
    examples_free(&l);
    build_ok("{\"variant\": \"fwe\", \"alpha\": 1.5, \"lengths\": [4096, 16384], \"num_samples\": 2}", &l);
    check_answers("fwe", &l);
    examples_free(&l);
    /* CWE beyond the built-in words: made-up words, still distinct */
    build_ok("{\"variant\": \"cwe\", \"lengths\": [65536], \"num_samples\": 1}", &l);
    check_cwe(&l.items[0], 10);
    examples_free(&l);
}

static void test_lengths(void **state) {
    (void)state;
    double worst_all = 0, sum_all = 0;
    int n_all = 0;
    for (int v = 0; v < 5; v++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{\"variant\": \"%s\", \"lengths\": [%d, 1500, 3000, 4096, 6000, 8192], \"num_samples\": 4}",
                 synthetic[v], min_length(synthetic[v]));
        ExampleList l;
        build_ok(json, &l);
        double worst = 0, sum = 0;
        for (int i = 0; i < l.n; i++) {
            const Example *ex = &l.items[i];
            int32_t *ids;
            size_t n;
            Err err;
            assert_int_equal(tokenizer_encode(tok, ex->prompt, strlen(ex->prompt), 1, &ids, &n, &err), 0);
            free(ids);
            assert_int_equal((int)n, ex->prompt_tokens);
            long total = (long)n + ex->max_new_tokens;
            double dev = 100.0 * fabs((double)(total - ex->target_tokens)) / ex->target_tokens;
            if (dev > 1.0 || total > ex->target_tokens)
                fail_msg("%s %s: %ld tokens for %d", synthetic[v], ex->id, total, ex->target_tokens);
            char group[16];
            snprintf(group, sizeof group, "%d", ex->target_tokens);
            assert_string_equal(ex->group, group);
            worst = fmax(worst, dev);
            sum += dev;
        }
        print_message("  %-3s %d examples, %d..8192 tokens: worst %.3f%%, mean %.3f%% below target\n", synthetic[v],
                      l.n, min_length(synthetic[v]), worst, sum / l.n);
        worst_all = fmax(worst_all, worst);
        sum_all += sum;
        n_all += l.n;
        examples_free(&l);
    }
    print_message("  all: %d examples, worst %.3f%%, mean %.3f%%\n", n_all, worst_all, sum_all / n_all);
}

static void test_deterministic(void **state) {
    (void)state;
    for (int v = 0; v < 5; v++) {
        char a_json[160], b_json[160];
        snprintf(a_json, sizeof a_json, "{\"variant\": \"%s\", \"lengths\": [2048], \"num_samples\": 3, \"seed\": 5}",
                 synthetic[v]);
        snprintf(b_json, sizeof b_json, "{\"variant\": \"%s\", \"lengths\": [2048], \"num_samples\": 3, \"seed\": 6}",
                 synthetic[v]);
        ExampleList a, b, c;
        build_ok(a_json, &a);
        build_ok(a_json, &b);
        build_ok(b_json, &c);
        for (int i = 0; i < a.n; i++) {
            char id[32];
            snprintf(id, sizeof id, "L2048_s%d", i);
            assert_string_equal(a.items[i].id, id);
            assert_string_equal(a.items[i].prompt, b.items[i].prompt);
            assert_string_equal(a.items[i].targets[0], b.items[i].targets[0]);
            assert_string_not_equal(a.items[i].prompt, c.items[i].prompt);
            if (i > 0) assert_string_not_equal(a.items[i].prompt, a.items[i - 1].prompt);
        }
        examples_free(&a);
        examples_free(&b);
        examples_free(&c);
    }
}

/* kv and ar place the asked pair at a depth and record where it landed. */
static void test_pair_position(void **state) {
    (void)state;
    for (int v = 3; v < 5; v++) {
        char json[128];
        snprintf(json, sizeof json, "{\"variant\": \"%s\", \"lengths\": [8192], \"num_samples\": 10}", synthetic[v]);
        ExampleList l;
        build_ok(json, &l);
        for (int i = 0; i < l.n; i++) {
            const Example *ex = &l.items[i];
            int32_t *ids;
            size_t n;
            Err err;
            assert_int_equal(tokenizer_encode(tok, ex->prompt, strlen(ex->prompt), 1, &ids, &n, &err), 0);
            char *text = tokenizer_decode(tok, ids + ex->needle_token_pos, (size_t)ex->needle_token_len, 1);
            if (!strstr(text, ex->targets[0])) fail_msg("%s: tokens at %d decode to %s", ex->id, ex->needle_token_pos, text);
            free(text);
            free(ids);
            double realised = cJSON_GetObjectItem(ex->extra, "realised_depth_percent")->valuedouble;
            assert_true(ex->depth >= 0 && ex->depth <= 100);
            assert_true(fabs(realised - ex->depth) < 3.0);
        }
        examples_free(&l);
    }
}

static Scores score(const char *json, const Example *ex, const char *pred) {
    Task task;
    task_init(&task, json);
    Prediction p = {.text = pred};
    Scores s = {0};
    Err err;
    assert_int_equal(kind_recall.score(&task.t, ex, &p, &s, &err), 0);
    task_free(&task);
    return s;
}

static void test_scoring(void **state) {
    (void)state;
    ExampleList l;
    build_ok("{\"variant\": \"vt\", \"lengths\": [2048], \"num_samples\": 1}", &l);
    const Example *ex = &l.items[0];
    char pred[256];
    snprintf(pred, sizeof pred, " %s %s %s", ex->targets[0], ex->targets[1], ex->targets[4]);
    Scores s = score("{\"variant\": \"vt\"}", ex, pred);
    assert_string_equal(s.name[0], "string_match_all");
    assert_near(s.value[0], 0.6, 1e-12);
    assert_near(s.value[1], 1.0, 1e-12);
    s = score("{\"variant\": \"vt\", \"metric\": \"string_match_part\"}", ex, "nothing");
    assert_string_equal(s.name[0], "string_match_part");
    assert_near(s.value[0], 0.0, 0);
    examples_free(&l);

    build_ok("{\"variant\": \"kv\", \"lengths\": [1024], \"num_samples\": 1}", &l);
    ex = &l.items[0];
    assert_int_equal(ex->n_stop, 1);
    assert_string_equal(ex->stop[0], "\n");
    snprintf(pred, sizeof pred, " \"%s\"", ex->targets[0]);
    s = score("{\"variant\": \"kv\"}", ex, pred);
    assert_string_equal(s.name[0], "contains");
    assert_near(s.value[0], 1.0, 0);
    assert_near(s.value[1], 1.0, 0); /* exact after stripping quotes and spaces */
    snprintf(pred, sizeof pred, "The value is %s.", ex->targets[0]);
    s = score("{\"variant\": \"kv\", \"metric\": \"exact_match\"}", ex, pred);
    assert_string_equal(s.name[0], "exact_match");
    assert_near(s.value[0], 0.0, 0);
    assert_near(s.value[1], 1.0, 0);
    char upper[64];
    snprintf(upper, sizeof upper, "%s", ex->targets[0]);
    for (char *c = upper; *c; c++) *c = (char)toupper((unsigned char)*c);
    s = score("{\"variant\": \"kv\"}", ex, upper);
    assert_near(s.value[0], 1.0, 0); /* case-insensitive */
    s = score("{\"variant\": \"kv\"}", ex, "I do not know");
    assert_near(s.value[0], 0.0, 0);
    examples_free(&l);
}

static void test_errors(void **state) {
    (void)state;
    /* a target smaller than the template (with its in-context example) */
    const char *msg = validate_fails("{\"variant\": \"vt\", \"lengths\": [300]}");
    assert_non_null(strstr(msg, "impossible"));
    assert_non_null(strstr(msg, "L300_s0"));
    assert_non_null(strstr(validate_fails("{\"variant\": \"kv\", \"lengths\": [40]}"), "lengths"));
    assert_non_null(strstr(validate_fails("{\"variant\": \"kv\"}"), "lengths"));
    assert_non_null(strstr(validate_fails("{\"lengths\": [4096]}"), "variant"));
    assert_non_null(strstr(validate_fails("{\"variant\": \"nope\", \"lengths\": [4096]}"), "variant"));
    assert_non_null(strstr(validate_fails("{\"variant\": \"kv\", \"lengths\": [4096], \"num_hops\": 3}"), "num_hops"));
    assert_non_null(strstr(validate_fails("{\"variant\": \"vt\", \"lengths\": [4096], \"alpha\": 2}"), "alpha"));
    assert_non_null(strstr(validate_fails("{\"variant\": \"cwe\", \"lengths\": [4096], \"freq_cw\": 4, \"freq_ucw\": 3}"),
                           "freq_ucw"));
    assert_non_null(strstr(validate_fails("{\"variant\": \"fwe\", \"lengths\": [4096], \"metric\": \"contains\"}"), "metric"));
    assert_non_null(strstr(validate_fails("{\"variant\": \"vt\", \"lengths\": [4096], \"partial_doc\": true}"),
                           "partial_doc"));
    /* data-backed variants: our fields are refused, the rest is recall_data's */
    assert_non_null(strstr(validate_fails("{\"variant\": \"swde\", \"num_chains\": 2}"), "num_chains"));
    assert_non_null(strstr(validate_fails("{\"variant\": \"fda\", \"template\": \"{context}\"}"), "template"));
    /* the variant is guessed from a data file's name */
    msg = validate_fails("{\"data\": \"/nonexistent/SWDE_test.jsonl\", \"num_hops\": 2}");
    assert_non_null(strstr(msg, "num_hops"));
    assert_non_null(strstr(msg, "swde"));
}

static void test_fields(void **state) {
    (void)state;
    /* the kind accepts its own fields and the data-backed variants' fields */
    int found_ours = 0, found_theirs = 0, theirs = 0;
    for (int i = 0; recall_data_fields[i]; i++, theirs++)
        for (int j = 0; kind_recall.fields[j]; j++) found_theirs += strcmp(recall_data_fields[i], kind_recall.fields[j]) == 0;
    for (int j = 0; kind_recall.fields[j]; j++) found_ours += strcmp(kind_recall.fields[j], "num_hops") == 0;
    assert_int_equal(found_theirs, theirs);
    assert_int_equal(found_ours, 1);
    assert_string_equal(kind_recall.name, "recall");
}

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
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_answers_by_construction),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_pair_position),
        cmocka_unit_test(test_scoring),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
