/* test_mc.c: the `multiple_choice` kind: prompts and choices exactly as
   lm-evaluation-harness builds them, on hand-written documents (HellaSwag's
   preprocessing, Winogrande's partial scoring, the few-shot join), and
   acc / acc_norm / acc_bytes on constructed log-likelihoods where they
   disagree, ties going to the first index. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kinds.h"
#include "task.h"
#include "testutil.h"

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

/* A task line (JSON) whose `data` is `data_text` written to the temp dir
   as `data_name`; the caller frees t->json. */
static TaskDef make_task(const char *json, const char *data_name, const char *data_text) {
    TaskDef t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "mc_test");
    snprintf(t.kind, sizeof t.kind, "multiple_choice");
    t.seed = 1234;
    t.file = task_file;
    t.line = 3;
    t.json = cJSON_Parse(json);
    assert_non_null(t.json);
    if (data_name) {
        const char *p = tu_write_file(tmp_dir, data_name, data_text);
        assert_non_null(p);
        snprintf(t.data, sizeof t.data, "%s", p);
    }
    const cJSON *metric = cJSON_GetObjectItemCaseSensitive(t.json, "metric");
    if (cJSON_IsString(metric)) snprintf(t.metric, sizeof t.metric, "%s", metric->valuestring);
    return t;
}

/* validate + build; fails the test on an error. */
static void build_ok(TaskDef *t, ExampleList *list) {
    Err err;
    memset(list, 0, sizeof *list);
    if (kind_multiple_choice.validate(t, &err)) fail_msg("validate: %s", err.msg);
    if (kind_multiple_choice.build(t, NULL, list, &err)) fail_msg("build: %s", err.msg);
}

static void check_choices(const Example *ex, const char *context, const char *const *continuations, int n, int gold) {
    assert_int_equal(ex->request, REQ_LOGLIK);
    assert_int_equal(ex->n_choices, n);
    assert_int_equal(ex->gold, gold);
    assert_int_equal(ex->add_bos, 1);
    for (int i = 0; i < n; i++) {
        if (context) assert_string_equal(ex->contexts[i], context);
        assert_string_equal(ex->continuations[i], continuations[i]);
    }
}

/* ---------------------------------------------------------------- prompts */

static void test_piqa(void **state) {
    (void)state;
    TaskDef t = make_task("{\"dataset\": \"piqa\"}", "piqa.jsonl",
                          "{\"goal\": \"To open a stuck jar,\", \"sol1\": \"run the lid under hot water.\", "
                          "\"sol2\": \"freeze it.\", \"label\": 0}\n");
    ExampleList list;
    build_ok(&t, &list);
    assert_int_equal(list.n, 1);
    const char *conts[] = {" run the lid under hot water.", " freeze it."};
    check_choices(&list.items[0], "Question: To open a stuck jar,\nAnswer:", conts, 2, 0);
    assert_string_equal(list.items[0].id, "0");
    assert_string_equal(list.items[0].targets[0], "run the lid under hot water.");
    examples_free(&list);
    cJSON_Delete(t.json);
}

static void test_arc_both_formats(void **state) {
    (void)state;
    const char *conts[] = {" helium", " granite", " seawater"};
    TaskDef t = make_task("{\"dataset\": \"arc_easy\", \"format\": \"hf\"}", "arc.jsonl",
                          "{\"id\": \"A1\", \"question\": \"Which is a gas at room temperature?\", \"choices\": "
                          "{\"text\": [\"helium\", \"granite\", \"seawater\"], \"label\": [\"1\", \"2\", \"3\"]}, "
                          "\"answerKey\": \"1\"}\n");
    ExampleList list;
    build_ok(&t, &list);
    check_choices(&list.items[0], "Question: Which is a gas at room temperature?\nAnswer:", conts, 3, 0);
    assert_string_equal(list.items[0].id, "A1");
    examples_free(&list);
    cJSON_Delete(t.json);

    t = make_task("{\"dataset\": \"arc_challenge\"}", "arc_orig.jsonl",
                  "{\"id\": \"A2\", \"question\": {\"stem\": \"Which is a gas at room temperature?\", \"choices\": "
                  "[{\"text\": \"helium\", \"label\": \"A\"}, {\"text\": \"granite\", \"label\": \"B\"}, "
                  "{\"text\": \"seawater\", \"label\": \"C\"}]}, \"answerKey\": \"C\"}\n");
    build_ok(&t, &list);
    check_choices(&list.items[0], "Question: Which is a gas at room temperature?\nAnswer:", conts, 3, 2);
    examples_free(&list);
    cJSON_Delete(t.json);
}

static void test_openbookqa(void **state) {
    (void)state;
    TaskDef t = make_task("{\"dataset\": \"openbookqa\"}", "obqa.jsonl",
                          "{\"id\": \"7-1\", \"question_stem\": \"The sun is a\", \"choices\": {\"text\": [\"planet\", "
                          "\"star\"], \"label\": [\"A\", \"B\"]}, \"answerKey\": \"B\"}\n");
    ExampleList list;
    build_ok(&t, &list);
    const char *conts[] = {" planet", " star"};
    check_choices(&list.items[0], "The sun is a", conts, 2, 1); /* no "Question:" prefix */
    examples_free(&list);
    cJSON_Delete(t.json);
}

/* The expected strings follow lm-eval's hellaswag utils.preprocess: strip,
   " [title]" -> ". ", re.sub("\\[.*?\\]", ""), "  " -> " "; the query is
   preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize()). */
static void test_hellaswag_preprocessing(void **state) {
    (void)state;
    TaskDef t = make_task(
        "{\"dataset\": \"hellaswag\"}", "hs.jsonl",
        "{\"ind\": 1, \"activity_label\": \"Home and Garden\", \"ctx_a\": \"[header] How to repot a fern [title] Choose "
        "a pot. [step] Pick one.\", \"ctx_b\": \"\", \"endings\": [\"[title] Water it. [step] Moist soil.\", "
        "\"[substeps] Paint  the leaves.\", \"Plain ending.\", \" [title] Odd start\"], \"label\": \"2\"}\n"
        "{\"ind\": 2, \"activity_label\": \"Health\", \"ctx_a\": \"[header] How to sleep better [title] Keep a regular "
        "bedtime.\", \"ctx_b\": \"[step] go to bed at the SAME time\", \"endings\": [\"every night.\", \"a [header]  "
        "b   c\"], \"label\": 0}\n"
        "{\"ind\": 3, \"activity_label\": \"Cooking\", \"ctx_a\": \"A  man   stirs  a pot.\", \"ctx_b\": \"then the NBA "
        "player\", \"endings\": [\"x\"], \"label\": \"0\"}\n"
        "{\"ind\": 4, \"activity_label\": \"Misc\", \"ctx_a\": \"Keep [this\\nline] and [drop this] but [unclosed\", "
        "\"ctx_b\": \"\\u00c9COLE \\u00e9l\\u00e8ve\", \"endings\": [\"y\"], \"label\": 0}\n"
        "{\"ind\": 5, \"activity_label\": \"  Spaces \", \"ctx_a\": \" lead\", \"ctx_b\": \"  x\", \"endings\": [\"z\"], "
        "\"label\": 0}\n");
    ExampleList list;
    build_ok(&t, &list);
    assert_int_equal(list.n, 5);
    const char *conts0[] = {"  Water it. Moist soil.", "  Paint the leaves.", " Plain ending.", "  Odd start"};
    check_choices(&list.items[0], "Home and Garden: How to repot a fern. Choose a pot. Pick one.", conts0, 4, 2);
    assert_string_equal(list.items[0].id, "1");
    const char *conts1[] = {" every night.", " a  b  c"};
    check_choices(&list.items[1], "Health: How to sleep better. Keep a regular bedtime. go to bed at the same time",
                  conts1, 2, 0);
    const char *conts2[] = {" x"};
    check_choices(&list.items[2], "Cooking: A man  stirs a pot. Then the nba player", conts2, 1, 0);
    const char *conts3[] = {" y"};
    check_choices(&list.items[3], "Misc: Keep [this\nline] and but [unclosed \xc3\x89" "cole \xc3\xa9l\xc3\xa8ve", conts3,
                  1, 0);
    const char *conts4[] = {" z"};
    check_choices(&list.items[4], "Spaces : lead  x", conts4, 1, 0);
    examples_free(&list);
    cJSON_Delete(t.json);
}

static void test_winogrande_partial(void **state) {
    (void)state;
    TaskDef t = make_task("{\"dataset\": \"winogrande\"}", "wg.jsonl",
                          "{\"qID\": \"w1\", \"sentence\": \"The marble would not go into the jar because the _ was "
                          "too wide.\", \"option1\": \"marble\", \"option2\": \"jar\", \"answer\": \"1\"}\n"
                          "{\"qID\": \"w2\", \"sentence\": \"Anna thanked Beth because _  helped her. \", "
                          "\"option1\": \"Anna\", \"option2\": \"Beth\", \"answer\": \"2\"}\n");
    ExampleList list;
    build_ok(&t, &list);
    const Example *ex = &list.items[0];
    assert_int_equal(ex->n_choices, 2);
    assert_int_equal(ex->gold, 0);
    /* the context varies, the continuation is fixed */
    assert_string_equal(ex->contexts[0], "The marble would not go into the jar because the marble");
    assert_string_equal(ex->contexts[1], "The marble would not go into the jar because the jar");
    assert_string_equal(ex->continuations[0], " was too wide.");
    assert_string_equal(ex->continuations[1], " was too wide.");
    ex = &list.items[1];
    assert_int_equal(ex->gold, 1);
    assert_string_equal(ex->contexts[1], "Anna thanked Beth because Beth");
    assert_string_equal(ex->continuations[0], " helped her."); /* text after the blank, stripped */
    examples_free(&list);
    cJSON_Delete(t.json);
}

/* ---------------------------------------------------------------- few-shot */

static const char piqa_docs[] =
    "{\"goal\": \"g0\", \"sol1\": \"a0\", \"sol2\": \"b0\", \"label\": 0}\n"
    "{\"goal\": \"g1\", \"sol1\": \"a1\", \"sol2\": \"b1\", \"label\": 1}\n"
    "{\"goal\": \"g2\", \"sol1\": \"a2\", \"sol2\": \"b2\", \"label\": 0}\n"
    "{\"goal\": \"g3\", \"sol1\": \"a3\", \"sol2\": \"b3\", \"label\": 1}\n"
    "{\"goal\": \"g4\", \"sol1\": \"a4\", \"sol2\": \"b4\", \"label\": 0}\n";

/* The shot for piqa_docs[i]: "Question: g{i}\nAnswer: {gold}\n\n". */
static void shot_text(int i, char *out, size_t cap) {
    snprintf(out, cap, "Question: g%d\nAnswer: %c%d\n\n", i, i % 2 ? 'b' : 'a', i);
}

static void test_fewshot_same_file(void **state) {
    (void)state;
    TaskDef t = make_task("{\"dataset\": \"piqa\", \"num_fewshot\": 2}", "piqa5.jsonl", piqa_docs);
    ExampleList list;
    build_ok(&t, &list);
    assert_int_equal(list.n, 5);
    for (int d = 0; d < 5; d++) {
        const Example *ex = &list.items[d];
        cJSON *ids = cJSON_GetObjectItemCaseSensitive(ex->extra, "fewshot_ids");
        assert_int_equal(cJSON_GetArraySize(ids), 2);
        char expected[512] = "", shot[64], own[64];
        for (int s = 0; s < 2; s++) {
            int id = atoi(cJSON_GetArrayItem(ids, s)->valuestring);
            assert_int_not_equal(id, d); /* a document is never its own shot */
            shot_text(id, shot, sizeof shot);
            strcat(expected, shot);
        }
        snprintf(own, sizeof own, "Question: g%d\nAnswer:", d);
        strcat(expected, own);
        assert_string_equal(ex->contexts[0], expected);
        assert_string_equal(ex->contexts[1], expected);
    }
    /* the same seed draws the same shots; another seed other ones somewhere */
    ExampleList again;
    build_ok(&t, &again);
    for (int d = 0; d < 5; d++) assert_string_equal(again.items[d].contexts[0], list.items[d].contexts[0]);
    examples_free(&again);
    t.seed = 99;
    build_ok(&t, &again);
    int differ = 0;
    for (int d = 0; d < 5; d++) differ |= strcmp(again.items[d].contexts[0], list.items[d].contexts[0]) != 0;
    assert_true(differ);
    examples_free(&again);
    examples_free(&list);
    cJSON_Delete(t.json);
}

static void test_fewshot_other_file_winogrande(void **state) {
    (void)state;
    tu_write_file(tmp_dir, "wg_train.jsonl",
                  "{\"sentence\": \"Sam gave Kim a pen because _ had two.\", \"option1\": \"Sam\", \"option2\": "
                  "\"Kim\", \"answer\": \"1\"}\n");
    TaskDef t = make_task("{\"dataset\": \"winogrande\", \"num_fewshot\": 1, \"fewshot_data\": \"wg_train.jsonl\"}",
                          "wg_eval.jsonl",
                          "{\"sentence\": \"The cup broke the plate because the _ was hard.\", \"option1\": \"cup\", "
                          "\"option2\": \"plate\", \"answer\": \"1\"}\n");
    ExampleList list;
    build_ok(&t, &list);
    /* lm-eval's sampler writes a Winogrande shot as the gold partial context
       + " " + the continuation, then "\n\n" */
    const char *shot = "Sam gave Kim a pen because Sam had two.\n\n";
    char expected[256];
    snprintf(expected, sizeof expected, "%sThe cup broke the plate because the plate", shot);
    assert_string_equal(list.items[0].contexts[1], expected);
    assert_string_equal(list.items[0].continuations[1], " was hard.");
    examples_free(&list);
    cJSON_Delete(t.json);

    Err err;
    t = make_task("{\"dataset\": \"winogrande\", \"num_fewshot\": 3, \"fewshot_data\": \"wg_train.jsonl\"}", NULL, NULL);
    snprintf(t.data, sizeof t.data, "%s/wg_eval.jsonl", tmp_dir);
    memset(&list, 0, sizeof list);
    assert_int_equal(kind_multiple_choice.build(&t, NULL, &list, &err), -1);
    assert_non_null(strstr(err.msg, "3 few-shot examples asked for, but the few-shot pool has 1"));
    examples_free(&list);
    cJSON_Delete(t.json);
}

/* ---------------------------------------------------------------- scoring */

static Scores score(const TaskDef *t, const Example *ex, const double *ll) {
    Scores s = {0};
    Prediction p = {.ll = ll};
    Err err;
    if (kind_multiple_choice.score(t, ex, &p, &s, &err)) fail_msg("score: %s", err.msg);
    return s;
}

static double metric(const Scores *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->name[i], name) == 0) return s->value[i];
    fail_msg("no metric %s", name);
    return NAN;
}

/* Three choices where the three metrics pick three different answers:
     "abcdefghij" 10 chars 10 bytes  LL -4.0: -0.40/char -0.40/byte
     "ab"          2 chars  2 bytes  LL -1.0: -0.50/char -0.50/byte
     "ééé"         3 chars  6 bytes  LL -1.5: -0.50/char -0.25/byte
   acc -> 1 (highest total), acc_norm -> 0 (by characters), acc_bytes -> 2. */
static void test_acc_norm_bytes_disagree(void **state) {
    (void)state;
    const double ll[3] = {-4.0, -1.0, -1.5};
    for (int gold = 0; gold < 3; gold++) {
        char data[512];
        snprintf(data, sizeof data,
                 "{\"id\": \"c\", \"question\": \"Q\", \"choices\": {\"text\": [\"abcdefghij\", \"ab\", "
                 "\"\\u00e9\\u00e9\\u00e9\"], \"label\": [\"A\", \"B\", \"C\"]}, \"answerKey\": \"%c\"}\n",
                 'A' + gold);
        TaskDef t = make_task("{\"dataset\": \"arc_easy\"}", "arc_norm.jsonl", data);
        ExampleList list;
        build_ok(&t, &list);
        assert_string_equal(list.items[0].continuations[2], " \xc3\xa9\xc3\xa9\xc3\xa9");
        Scores s = score(&t, &list.items[0], ll);
        assert_int_equal(s.n, 3);
        assert_string_equal(s.name[0], "acc");
        assert_true(metric(&s, "acc") == (gold == 1));
        assert_true(metric(&s, "acc_norm") == (gold == 0));
        assert_true(metric(&s, "acc_bytes") == (gold == 2));
        examples_free(&list);
        cJSON_Delete(t.json);
    }
}

static void test_ties_and_headline(void **state) {
    (void)state;
    TaskDef t = make_task("{\"dataset\": \"piqa\", \"metric\": \"acc_norm\"}", "ties.jsonl",
                          "{\"goal\": \"g\", \"sol1\": \"xy\", \"sol2\": \"zw\", \"label\": 1}\n"
                          "{\"goal\": \"g\", \"sol1\": \"xy\", \"sol2\": \"zw\", \"label\": 0}\n");
    ExampleList list;
    build_ok(&t, &list);
    const double tie[2] = {-2.0, -2.0};
    Scores s = score(&t, &list.items[0], tie); /* gold 1: the tie goes to index 0 */
    assert_string_equal(s.name[0], "acc_norm");  /* the task's metric comes first */
    assert_true(metric(&s, "acc") == 0.0);
    assert_true(metric(&s, "acc_norm") == 0.0);
    assert_true(metric(&s, "acc_bytes") == 0.0);
    s = score(&t, &list.items[1], tie);
    assert_true(metric(&s, "acc") == 1.0);
    assert_true(metric(&s, "acc_norm") == 1.0);
    /* numpy.argmax takes the first NaN as the maximum */
    const double with_nan[2] = {-1.0, NAN};
    s = score(&t, &list.items[0], with_nan);
    assert_true(metric(&s, "acc") == 1.0);
    examples_free(&list);
    cJSON_Delete(t.json);
}

static void test_winogrande_acc_only(void **state) {
    (void)state;
    TaskDef t = make_task("{\"dataset\": \"winogrande\"}", "wg1.jsonl",
                          "{\"sentence\": \"A _ b.\", \"option1\": \"x\", \"option2\": \"yy\", \"answer\": \"2\"}\n");
    ExampleList list;
    build_ok(&t, &list);
    const double ll[2] = {-3.0, -1.0};
    Scores s = score(&t, &list.items[0], ll);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.name[0], "acc");
    assert_true(s.value[0] == 1.0);
    examples_free(&list);
    cJSON_Delete(t.json);
}

/* ---------------------------------------------------------------- validation */

static void expect_invalid(const char *json, const char *fragment) {
    TaskDef t = make_task(json, "v.jsonl", "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\", \"label\": 0}\n");
    Err err;
    assert_int_equal(kind_multiple_choice.validate(&t, &err), -1);
    if (!strstr(err.msg, fragment)) fail_msg("error \"%s\" lacks \"%s\"", err.msg, fragment);
    if (!strstr(err.msg, "tasks.jsonl:3:")) fail_msg("error \"%s\" lacks the task file and line", err.msg);
    cJSON_Delete(t.json);
}

static void test_validation(void **state) {
    (void)state;
    expect_invalid("{}", "field \"dataset\": missing");
    expect_invalid("{\"dataset\": \"mmlu\"}", "field \"dataset\"");
    expect_invalid("{\"dataset\": \"piqa\", \"format\": \"csv\"}", "field \"format\"");
    expect_invalid("{\"dataset\": \"arc_easy\", \"labels\": \"v.jsonl\"}", "field \"labels\"");
    expect_invalid("{\"dataset\": \"piqa\", \"num_fewshot\": -1}", "field \"num_fewshot\"");
    expect_invalid("{\"dataset\": \"piqa\", \"fewshot_data\": \"nowhere.jsonl\", \"num_fewshot\": 1}",
                   "field \"fewshot_data\": cannot read");
    expect_invalid("{\"dataset\": \"winogrande\", \"metric\": \"acc_norm\"}", "field \"metric\"");
    expect_invalid("{\"dataset\": \"piqa\", \"metric\": \"f1\"}", "field \"metric\"");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_piqa),
        cmocka_unit_test(test_arc_both_formats),
        cmocka_unit_test(test_openbookqa),
        cmocka_unit_test(test_hellaswag_preprocessing),
        cmocka_unit_test(test_winogrande_partial),
        cmocka_unit_test(test_fewshot_same_file),
        cmocka_unit_test(test_fewshot_other_file_winogrande),
        cmocka_unit_test(test_acc_norm_bytes_disagree),
        cmocka_unit_test(test_ties_and_headline),
        cmocka_unit_test(test_winogrande_acc_only),
        cmocka_unit_test(test_validation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
