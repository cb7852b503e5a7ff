/* test_squad_c.c: the `squad_c` kind: v0 (raw fields) vs v1 (stripped)
   prompts and golds, the few-shot join (text + " " + value + "\n\n"), the
   three ways of choosing shots, case-insensitive literal `contains`, the
   stop at "\n", the SQuAD v2.0 JSON conversion, and window_tokens cuts that
   keep the answer and the statement. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kinds.h"
#include "loaders.h"
#include "task.h"
#include "testutil.h"
#include "tokenizer.h"

static char *tmp_dir;
static char task_file[4200];

static int setup(void **state) {
    (void)state;
    tmp_dir = tu_tempdir();
    if (!tmp_dir) return -1;
    snprintf(task_file, sizeof task_file, "%s/tasks.jsonl", tmp_dir);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tu_rmtree(tmp_dir);
    free(tmp_dir);
    return 0;
}

static const char *sample(const char *name) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/datasets/samples/%s", getenv("HYMEVAL_SOURCE_ROOT") ? getenv("HYMEVAL_SOURCE_ROOT")
                                                                                        : ".",
             name);
    return path;
}

/* A task line; data is a sample (data_text NULL) or text written to the temp dir. */
static TaskDef make_task(const char *json, const char *data_name, const char *data_text) {
    TaskDef t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "squad_c_test");
    snprintf(t.kind, sizeof t.kind, "squad_c");
    t.seed = 1234;
    t.file = task_file;
    t.line = 5;
    t.json = cJSON_Parse(json);
    assert_non_null(t.json);
    if (data_text) {
        const char *p = tu_write_file(tmp_dir, data_name, data_text);
        assert_non_null(p);
        snprintf(t.data, sizeof t.data, "%s", p);
    } else if (data_name) {
        snprintf(t.data, sizeof t.data, "%s", sample(data_name));
    }
    const cJSON *mnt = cJSON_GetObjectItemCaseSensitive(t.json, "max_new_tokens");
    if (cJSON_IsNumber(mnt)) t.max_new_tokens = mnt->valueint;
    return t;
}

static void build_ok(TaskDef *t, const Tokenizer *tok, ExampleList *list) {
    Err err;
    memset(list, 0, sizeof *list);
    if (kind_squad_c.validate(t, &err)) fail_msg("validate: %s", err.msg);
    if (kind_squad_c.build(t, tok, list, &err)) fail_msg("build: %s", err.msg);
}

static double contains(const Example *ex, const char *generation) {
    Scores s = {0};
    Prediction p = {.text = generation};
    Err err;
    if (kind_squad_c.score(NULL, ex, &p, &s, &err)) fail_msg("score: %s", err.msg);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.name[0], "contains");
    return s.value[0];
}

/* ---------------------------------------------------------------- versions */

static void test_v0_raw_v1_stripped(void **state) {
    (void)state;
    BasedSet raw;
    Err err;
    assert_int_equal(load_based_jsonl(sample("squad_c_based.jsonl"), &raw, &err), 0);
    TaskDef t = make_task("{}", "squad_c_based.jsonl", NULL);
    ExampleList v0;
    build_ok(&t, NULL, &v0);
    cJSON_Delete(t.json);
    t = make_task("{\"version\": 1}", "squad_c_based.jsonl", NULL);
    ExampleList v1;
    build_ok(&t, NULL, &v1);
    assert_int_equal(v0.n, 10);
    assert_int_equal(v1.n, 10);
    for (int i = 0; i < 10; i++) {
        assert_string_equal(v0.items[i].prompt, raw.items[i].text);
        assert_string_equal(v0.items[i].targets[0], raw.items[i].value);
        char *text = py_strip(raw.items[i].text), *value = py_strip(raw.items[i].value);
        assert_string_equal(v1.items[i].prompt, text);
        assert_string_equal(v1.items[i].targets[0], value);
        free(text);
        free(value);
        assert_string_equal(v0.items[i].id, raw.items[i].id);
        assert_int_equal(v0.items[i].request, REQ_GENERATE);
        assert_string_equal(v0.items[i].group, "");
    }
    /* record 1: text ends with a space, value starts with one */
    assert_int_equal(v0.items[1].prompt[strlen(v0.items[1].prompt) - 1], ' ');
    assert_string_equal(v0.items[1].targets[0], " skerrits");
    assert_string_equal(v1.items[1].targets[0], "skerrits");
    /* v0's raw gold " skerrits" is not in "skerrits." at the start of a line; v1's is */
    assert_true(contains(&v0.items[1], "skerrits.") == 0.0);
    assert_true(contains(&v1.items[1], "skerrits.") == 1.0);
    /* record 2: value "1931\n" raw; v0 can never match it in a generation cut at "\n" */
    assert_true(contains(&v0.items[2], "1931") == 0.0);
    assert_true(contains(&v1.items[2], "1931") == 1.0);
    examples_free(&v0);
    examples_free(&v1);
    cJSON_Delete(t.json);
    based_set_free(&raw);
}

static void test_generation_settings(void **state) {
    (void)state;
    TaskDef t = make_task("{}", "squad_c_based.jsonl", NULL);
    ExampleList list;
    build_ok(&t, NULL, &list);
    assert_int_equal(list.items[0].max_new_tokens, 48);
    assert_int_equal(list.items[0].n_stop, 1);
    assert_string_equal(list.items[0].stop[0], "\n");
    examples_free(&list);
    cJSON_Delete(t.json);
    t = make_task("{\"max_new_tokens\": 20, \"until\": [\"\\n\", \".\"]}", "squad_c_based.jsonl", NULL);
    build_ok(&t, NULL, &list);
    assert_int_equal(list.items[0].max_new_tokens, 20);
    assert_int_equal(list.items[0].n_stop, 2);
    assert_string_equal(list.items[0].stop[1], ".");
    examples_free(&list);
    cJSON_Delete(t.json);
}

static void test_contains(void **state) {
    (void)state;
    TaskDef t = make_task("{\"version\": 1}", "lit.jsonl",
                          "{\"id\": \"a\", \"text\": \"The code is\", \"value\": \"a.b+c\"}\n"
                          "{\"id\": \"b\", \"text\": \"The surveyor was\", \"value\": \"Ilse Markov\"}\n");
    ExampleList list;
    build_ok(&t, NULL, &list);
    assert_true(contains(&list.items[1], " the surveyor ILSE MARKOV, of course") == 1.0);
    assert_true(contains(&list.items[1], " Ilse") == 0.0);
    assert_true(contains(&list.items[1], "") == 0.0);
    /* literal: regex metacharacters match only themselves */
    assert_true(contains(&list.items[0], " a.b+c") == 1.0);
    assert_true(contains(&list.items[0], " axbbc") == 0.0);
    examples_free(&list);
    cJSON_Delete(t.json);
}

/* ---------------------------------------------------------------- few-shot */

/* records are known by their index: "0".."3" (doc_id is kept only for the record) */
static const char shots_data[] = "{\"doc_id\": \"s1\", \"text\": \"Alpha is\", \"value\": \" one\"}\n"
                                 "{\"doc_id\": \"s2\", \"text\": \"Beta is \", \"value\": \"two\"}\n"
                                 "{\"doc_id\": \"s3\", \"text\": \"Gamma is\", \"value\": \"three\", \"fewshot_ids\": "
                                 "[1, 0]}\n"
                                 "{\"doc_id\": \"s4\", \"text\": \"Delta is\", \"value\": \"four\"}\n";

static void test_fewshot_join(void **state) {
    (void)state;
    /* v0: raw fields joined as text + " " + value + "\n\n" */
    TaskDef t = make_task("{\"fewshot_ids\": [\"0\", \"3\"], \"num_fewshot\": 1}", "shots.jsonl", shots_data);
    ExampleList list;
    build_ok(&t, NULL, &list);
    assert_string_equal(list.items[1].prompt, "Alpha is  one\n\nBeta is ");
    assert_string_equal(list.items[0].prompt, "Delta is four\n\nAlpha is"); /* 0 never shows itself */
    /* a record's own fewshot_ids win over the task's (all of them up to num_fewshot) */
    assert_string_equal(list.items[2].prompt, "Beta is  two\n\nGamma is");
    cJSON *ids = cJSON_GetObjectItemCaseSensitive(list.items[0].extra, "fewshot_ids");
    assert_string_equal(cJSON_GetArrayItem(ids, 0)->valuestring, "3");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(list.items[0].extra, "doc_id")->valuestring, "s1");
    examples_free(&list);
    cJSON_Delete(t.json);

    /* v1: stripped text and value in the shots as well */
    t = make_task("{\"version\": 1, \"fewshot_ids\": [\"1\"]}", "shots.jsonl", shots_data);
    build_ok(&t, NULL, &list);
    assert_string_equal(list.items[0].prompt, "Beta is two\n\nAlpha is");
    assert_string_equal(list.items[1].prompt, "Beta is"); /* its only shot was itself */
    examples_free(&list);
    cJSON_Delete(t.json);

    /* num_fewshot alone: drawn with the seed, never the document itself */
    t = make_task("{\"num_fewshot\": 2}", "shots.jsonl", "{\"id\": \"s1\", \"text\": \"A\", \"value\": \"1\"}\n"
                                                         "{\"id\": \"s2\", \"text\": \"B\", \"value\": \"2\"}\n"
                                                         "{\"id\": \"s3\", \"text\": \"C\", \"value\": \"3\"}\n"
                                                         "{\"id\": \"s4\", \"text\": \"D\", \"value\": \"4\"}\n");
    build_ok(&t, NULL, &list);
    for (int i = 0; i < list.n; i++) {
        cJSON *drawn = cJSON_GetObjectItemCaseSensitive(list.items[i].extra, "fewshot_ids");
        assert_int_equal(cJSON_GetArraySize(drawn), 2);
        for (int s = 0; s < 2; s++) assert_string_not_equal(cJSON_GetArrayItem(drawn, s)->valuestring, list.items[i].id);
        const char *prompt = list.items[i].prompt;
        assert_int_equal(strlen(prompt), 2 * 5 + 1); /* "X n\n\n" twice, then the letter */
        assert_int_equal(prompt[strlen(prompt) - 1], "ABCD"[i]);
    }
    ExampleList again;
    build_ok(&t, NULL, &again);
    for (int i = 0; i < list.n; i++) assert_string_equal(list.items[i].prompt, again.items[i].prompt);
    examples_free(&again);
    examples_free(&list);
    cJSON_Delete(t.json);
}

static void test_fewshot_errors(void **state) {
    (void)state;
    Err err;
    ExampleList list = {0};
    TaskDef t = make_task("{\"fewshot_ids\": [\"zz\"]}", "shots.jsonl", shots_data);
    assert_int_equal(kind_squad_c.build(&t, NULL, &list, &err), -1);
    assert_non_null(strstr(err.msg, "tasks.jsonl:5:"));
    assert_non_null(strstr(err.msg, "field \"fewshot_ids\": no record with id \"zz\""));
    examples_free(&list);
    cJSON_Delete(t.json);

    t = make_task("{}", "shots2.jsonl", "{\"text\": \"A\", \"value\": \"1\"}\n{\"text\": \"B\", \"value\": \"2\", "
                                        "\"fewshot_ids\": [9]}\n");
    assert_int_equal(kind_squad_c.build(&t, NULL, &list, &err), -1);
    assert_non_null(strstr(err.msg, "shots2.jsonl:2: field \"fewshot_ids\": no record with id \"9\""));
    examples_free(&list);
    cJSON_Delete(t.json);

    t = make_task("{\"num_fewshot\": 4}", "shots.jsonl", shots_data);
    assert_int_equal(kind_squad_c.build(&t, NULL, &list, &err), -1);
    assert_non_null(strstr(err.msg, "field \"num_fewshot\""));
    examples_free(&list);
    cJSON_Delete(t.json);

    t = make_task("{\"version\": 2}", "shots.jsonl", shots_data);
    assert_int_equal(kind_squad_c.validate(&t, &err), -1);
    assert_non_null(strstr(err.msg, "field \"version\""));
    cJSON_Delete(t.json);

    t = make_task("{\"squad_prompt\": \"question\"}", "shots.jsonl", shots_data);
    assert_int_equal(kind_squad_c.validate(&t, &err), -1);
    assert_non_null(strstr(err.msg, "field \"squad_prompt\": applies only to format \"squad_v2\""));
    cJSON_Delete(t.json);
}

/* ---------------------------------------------------------------- SQuAD v2.0 JSON */

static void test_squad_v2_format(void **state) {
    (void)state;
    SquadSet squad;
    Err err;
    assert_int_equal(load_squad_v2(sample("squad_v2_sample.json"), 1, &squad, &err), 0);
    TaskDef t = make_task("{\"format\": \"squad_v2\"}", "squad_v2_sample.json", NULL);
    ExampleList list;
    build_ok(&t, NULL, &list);
    assert_int_equal(list.n, 7); /* answerable questions only */
    for (int i = 0; i < list.n; i++) {
        const SquadQA *q = &squad.qas[i];
        char expected[2048];
        snprintf(expected, sizeof expected, "%s %s", squad.paragraphs[q->paragraph].context, q->statement);
        assert_string_equal(list.items[i].prompt, expected);
        assert_string_equal(list.items[i].targets[0], q->answers[0]);
        assert_string_equal(list.items[i].id, q->id);
    }
    examples_free(&list);
    cJSON_Delete(t.json);

    t = make_task("{\"format\": \"squad_v2\", \"squad_prompt\": \"question\"}", "squad_v2_sample.json", NULL);
    build_ok(&t, NULL, &list);
    char expected[2048];
    snprintf(expected, sizeof expected, "%s\n\nQuestion: %s\nAnswer:", squad.paragraphs[squad.qas[0].paragraph].context,
             squad.qas[0].question);
    assert_string_equal(list.items[0].prompt, expected);
    examples_free(&list);
    cJSON_Delete(t.json);
    squad_set_free(&squad);

    t = make_task("{\"format\": \"squad_v2\"}", "nostatement.json",
                  "{\"data\": [{\"title\": \"T\", \"paragraphs\": [{\"context\": \"Cats purr.\", \"qas\": [{\"id\": "
                  "\"x\", \"question\": \"What do cats do?\", \"answers\": [{\"text\": \"purr\", \"answer_start\": 5}], "
                  "\"is_impossible\": false}]}]}]}");
    memset(&list, 0, sizeof list);
    assert_int_equal(kind_squad_c.build(&t, NULL, &list, &err), -1);
    assert_non_null(strstr(err.msg, "nostatement.json: $.data[0].paragraphs[0].qas[0]: field \"statement\": missing"));
    examples_free(&list);
    cJSON_Delete(t.json);
}

/* ---------------------------------------------------------------- window_tokens */

static Tokenizer *tokenizer(void) {
    Err err;
    Tokenizer *tok = tokenizer_load(tu_source_path("models/tokenizer"), &err);
    if (!tok) fail_msg("%s", err.msg);
    return tok;
}

static size_t count_tokens(const Tokenizer *tok, const char *text, size_t len) {
    int32_t *ids = NULL;
    size_t n = 0;
    Err err;
    assert_int_equal(tokenizer_encode(tok, text, len, 0, &ids, &n, &err), 0);
    free(ids);
    return n;
}

/* A long passage with the answer at a chosen sentence, then the statement. */
static char *long_record(const char *id, int answer_at, int sentences) {
    size_t cap = 64 * (size_t)sentences + 512;
    char *text = malloc(cap), *at = text;
    for (int i = 0; i < sentences; i++) {
        if (i == answer_at) at += sprintf(at, "The keeper of the lighthouse was Marta Quill. ");
        else at += sprintf(at, "Filler sentence number %d says nothing. ", i);
    }
    at += sprintf(at, "The keeper of the lighthouse was");
    char *line = malloc(cap + 128);
    sprintf(line, "{\"id\": \"%s\", \"text\": \"%s\", \"value\": \" Marta Quill\"}\n", id, text);
    free(text);
    return line;
}

static void test_window_cut(void **state) {
    (void)state;
    Tokenizer *tok = tokenizer();
    char *middle = long_record("mid", 30, 60), *start = long_record("start", 0, 60), *end = long_record("end", 59, 60);
    char *shortrec = long_record("short", 1, 3);
    size_t n = strlen(middle) + strlen(start) + strlen(end) + strlen(shortrec) + 1;
    char *data = malloc(n);
    snprintf(data, n, "%s%s%s%s", middle, start, end, shortrec);
    TaskDef t = make_task("{\"window_tokens\": 120}", "long.jsonl", data);
    ExampleList list;
    build_ok(&t, tok, &list);
    assert_int_equal(list.n, 4);
    const char *statement = "The keeper of the lighthouse was";
    for (int i = 0; i < 4; i++) {
        const Example *ex = &list.items[i];
        assert_string_equal(ex->group, "120");
        assert_non_null(strstr(ex->prompt, "Marta Quill")); /* the answer survives the cut */
        const char *tail = ex->prompt + strlen(ex->prompt) - strlen(statement);
        assert_string_equal(tail, statement);                 /* and so does the statement */
        cJSON *w = cJSON_GetObjectItemCaseSensitive(ex->extra, "window");
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(w, "answer_found")));
        int cut = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(w, "cut"));
        assert_int_equal(cut, i < 3);
        assert_true(ex->prompt_tokens > 0);
        if (cut) {
            /* the kept passage is about window_tokens long (re-tokenising decoded text may shift a token) */
            size_t passage = strlen(ex->prompt) - strlen(statement) - 1;
            size_t kept = count_tokens(tok, ex->prompt, passage);
            if (kept < 117 || kept > 123) fail_msg("example %s: %zu passage tokens", ex->id, kept);
            assert_true(strlen(ex->prompt) < strlen(middle) / 2);
        }
    }
    /* the window is centred on the answer when there is room on both sides */
    const char *p = list.items[0].prompt;
    const char *ans = strstr(p, "Marta Quill");
    size_t before = count_tokens(tok, p, (size_t)(ans - p));
    if (before < 50 || before > 70) fail_msg("answer at token %zu of a 120-token window", before);
    /* the short record is not cut at all */
    assert_string_equal(list.items[3].prompt, "Filler sentence number 0 says nothing. The keeper of the lighthouse was "
                                              "Marta Quill. Filler sentence number 2 says nothing. The keeper of the "
                                              "lighthouse was");
    examples_free(&list);
    cJSON_Delete(t.json);

    /* without a tokenizer window_tokens cannot work */
    Err err;
    t = make_task("{\"window_tokens\": 120}", "long.jsonl", data);
    memset(&list, 0, sizeof list);
    assert_int_equal(kind_squad_c.build(&t, NULL, &list, &err), -1);
    assert_non_null(strstr(err.msg, "field \"window_tokens\": needs the model's tokenizer"));
    examples_free(&list);
    cJSON_Delete(t.json);
    free(middle), free(start), free(end), free(shortrec), free(data);
    tokenizer_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v0_raw_v1_stripped), cmocka_unit_test(test_generation_settings),
        cmocka_unit_test(test_contains),           cmocka_unit_test(test_fewshot_join),
        cmocka_unit_test(test_fewshot_errors),     cmocka_unit_test(test_squad_v2_format),
        cmocka_unit_test(test_window_cut),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
