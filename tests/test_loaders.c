/* test_loaders.c: datasets/loaders.c on the shipped samples (counts and
   fields), on malformed files (every error names file:line or the JSON
   path, and the field), the .gz sample against the plain one, the text
   helpers; and the data-backed recall variants (tasks/recall_data.c), which
   are thin builders over these loaders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "loaders.h"
#include "recall_data.h"
#include "scoring.h"
#include "task.h"
#include "testutil.h"
#include "tokenizer.h"

static char *tmp_dir;

static int setup(void **state) {
    (void)state;
    tmp_dir = tu_tempdir();
    return tmp_dir ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    tu_rmtree(tmp_dir);
    free(tmp_dir);
    return 0;
}

/* A sample's path; four rotating buffers, so one call may use two. */
static const char *sample(const char *name) {
    static char paths[4][4096];
    static int next;
    char *path = paths[next++ % 4];
    snprintf(path, sizeof paths[0], "%s", tu_source_path("datasets/samples"));
    strncat(path, "/", sizeof paths[0] - strlen(path) - 1);
    strncat(path, name, sizeof paths[0] - strlen(path) - 1);
    return path;
}

/* Writes text to the temp dir and returns a private copy of its path. */
static char *temp_file(const char *name, const char *text) {
    const char *p = tu_write_file(tmp_dir, name, text);
    assert_non_null(p);
    return strdup(p);
}

/* The message must contain every fragment given (NULL-terminated). */
static void expect_error(const Err *err, ...) {
    va_list ap;
    va_start(ap, err);
    for (const char *frag; (frag = va_arg(ap, const char *)) != NULL;) {
        if (!strstr(err->msg, frag)) fail_msg("error \"%s\" lacks \"%s\"", err->msg, frag);
    }
    va_end(ap);
}

/* ---------------------------------------------------------------- samples load */

static void test_based_samples(void **state) {
    (void)state;
    BasedSet s;
    Err err;
    assert_int_equal(load_based_jsonl(sample("squad_c_based.jsonl"), &s, &err), 0);
    assert_int_equal(s.n, 10);
    assert_string_equal(s.items[0].id, "0");
    assert_string_equal(s.items[0].doc_id, "0");
    assert_string_equal(s.items[0].value, "Ilse Markov");
    assert_string_equal(s.items[0].title, "Lake Vornholm");
    assert_non_null(s.items[0].context);
    assert_non_null(s.items[0].question);
    assert_null(s.items[0].key);
    assert_string_equal(s.items[1].value, " skerrits"); /* raw, as v0 sees it */
    assert_int_equal(s.items[1].text[strlen(s.items[1].text) - 1], ' ');
    assert_string_equal(s.items[2].value, "1931\n");
    assert_int_equal(s.items[9].line, 10);
    assert_int_equal(based_find(&s, "7"), 7);
    assert_int_equal(based_find(&s, "nope"), -1);
    based_set_free(&s);

    assert_int_equal(load_based_jsonl(sample("swde_based.jsonl"), &s, &err), 0);
    assert_int_equal(s.n, 8);
    assert_string_equal(s.items[1].id, "1");
    assert_string_equal(s.items[1].doc_id, "movie-00-year");
    assert_string_equal(s.items[0].key, "director");
    assert_string_equal(s.items[0].value, " Ruth Okafor");
    const char *t = s.items[0].text;
    assert_string_equal(t + strlen(t) - strlen("\n\ndirector:"), "\n\ndirector:");
    based_set_free(&s);

    assert_int_equal(load_based_jsonl(sample("fda_based.jsonl"), &s, &err), 0);
    assert_int_equal(s.n, 8);
    assert_string_equal(s.items[1].key, "device name");
    assert_string_equal(s.items[1].value, "Lumen Dental Curing Light");
    based_set_free(&s);
}

static void test_squad_sample(void **state) {
    (void)state;
    SquadSet s;
    Err err;
    assert_int_equal(load_squad_v2(sample("squad_v2_sample.json"), 0, &s, &err), 0);
    assert_int_equal(s.n_qas, 10);
    assert_int_equal(s.n_paragraphs, 6);
    assert_int_equal(s.n_articles, 3);
    int impossible = 0;
    for (int i = 0; i < s.n_qas; i++) impossible += s.qas[i].is_impossible;
    assert_int_equal(impossible, 3);
    squad_set_free(&s);

    assert_int_equal(load_squad_v2(sample("squad_v2_sample.json"), 1, &s, &err), 0);
    assert_int_equal(s.n_qas, 7);
    const SquadQA *q = &s.qas[0];
    assert_string_equal(q->id, "q000");
    assert_string_equal(q->answers[0], "Ilse Markov");
    assert_string_equal(q->statement, "Lake Vornholm was first mapped by the surveyor");
    const char *ctx = s.paragraphs[q->paragraph].context;
    assert_memory_equal(ctx + q->answer_starts[0], "Ilse Markov", 11);
    assert_string_equal(s.paragraphs[q->paragraph].title, "Lake Vornholm");
    int multi = -1;
    for (int i = 0; i < s.n_qas; i++)
        if (strcmp(s.qas[i].id, "q1_multi") == 0) multi = i;
    assert_true(multi >= 0);
    assert_int_equal(s.qas[multi].n_answers, 2);
    assert_string_equal(s.qas[multi].answers[1], "in 1999");
    assert_int_equal(s.paragraphs[s.qas[multi].paragraph].article, 1);
    squad_set_free(&s);
}

static void test_hotpot_sample(void **state) {
    (void)state;
    HotpotSet s;
    Err err;
    assert_int_equal(load_hotpotqa(sample("hotpotqa_sample.json"), &s, &err), 0);
    assert_int_equal(s.n_qas, 8);
    assert_int_equal(s.n_docs, 60); /* 80 context entries, 60 distinct paragraphs */
    assert_string_equal(s.qas[0].id, "hp001");
    assert_string_equal(s.qas[0].answer, "Ambry");
    assert_int_equal(s.qas[0].n_docs, 10);
    /* RULER's read_hotpotqa: f"{title}\n{''.join(sentences)}" */
    assert_string_equal(s.docs[s.qas[0].docs[0]],
                        "Garrow Bridge\nGarrow Bridge is a stone arch bridge over the river Leth. It was designed by the "
                        "engineer Tomas Vell in 1821.");
    assert_int_equal(s.qas[4].docs[4], s.qas[0].docs[0]); /* the same paragraph, one document */
    hotpot_set_free(&s);
}

static void test_mc_samples(void **state) {
    (void)state;
    McSet s;
    Err err;
    assert_int_equal(load_mc(sample("piqa_hf.jsonl"), MC_PIQA, MC_FORMAT_AUTO, NULL, &s, &err), 0);
    assert_int_equal(s.n, 10);
    assert_string_equal(s.items[1].question, "How do I loosen a stuck jar lid?");
    assert_int_equal(s.items[1].n_choices, 2);
    assert_int_equal(s.items[1].gold, 1);
    assert_string_equal(s.items[0].id, "0");
    McSet orig;
    assert_int_equal(load_mc(sample("piqa_valid.jsonl"), MC_PIQA, MC_FORMAT_ORIGINAL, sample("piqa_valid-labels.lst"),
                             &orig, &err),
                     0);
    assert_int_equal(orig.n, 10);
    for (int i = 0; i < 10; i++) {
        assert_string_equal(orig.items[i].question, s.items[i].question);
        assert_string_equal(orig.items[i].choices[1], s.items[i].choices[1]);
        assert_int_equal(orig.items[i].gold, s.items[i].gold);
    }
    assert_string_equal(orig.items[3].id, "piqa-003");
    mc_set_free(&orig);
    mc_set_free(&s);

    assert_int_equal(load_mc(sample("arc_easy_hf.jsonl"), MC_ARC, MC_FORMAT_HF, NULL, &s, &err), 0);
    assert_int_equal(s.n, 8);
    assert_string_equal(s.items[0].id, "Mercury_7001");
    assert_int_equal(s.items[0].gold, 2);
    assert_string_equal(s.items[2].labels[0], "1"); /* numeric labels, answerKey "1" */
    assert_int_equal(s.items[2].gold, 0);
    assert_int_equal(s.items[3].n_choices, 3);
    assert_int_equal(s.items[4].n_choices, 5);
    mc_set_free(&s);

    assert_int_equal(load_mc(sample("arc_challenge_original.jsonl"), MC_ARC, MC_FORMAT_AUTO, NULL, &s, &err), 0);
    assert_int_equal(s.n, 8);
    assert_string_equal(s.items[3].id, "MCAS_2005_8_12");
    assert_int_equal(s.items[3].gold, 1);
    assert_string_equal(s.items[3].choices[1], "transpiration");
    assert_string_equal(s.items[0].question,
                        "A ball rolls across a carpet and slows down. Which force mainly slows the ball?");
    mc_set_free(&s);
    assert_int_equal(load_mc(sample("arc_challenge_original.jsonl"), MC_ARC, MC_FORMAT_ORIGINAL, NULL, &s, &err), 0);
    mc_set_free(&s);
    /* the original file read as the HF export: `question` is an object there */
    assert_int_equal(load_mc(sample("arc_challenge_original.jsonl"), MC_ARC, MC_FORMAT_HF, NULL, &s, &err), -1);
    expect_error(&err, "arc_challenge_original.jsonl:1: field \"question\": expected a string, got an object", NULL);

    assert_int_equal(load_mc(sample("hellaswag_hf.jsonl"), MC_HELLASWAG, MC_FORMAT_AUTO, NULL, &s, &err), 0);
    assert_int_equal(s.n, 8);
    assert_string_equal(s.items[0].id, "100");
    assert_int_equal(s.items[0].n_choices, 4);
    assert_int_equal(s.items[4].gold, 1);
    assert_string_equal(s.items[1].ctx_b, "");
    assert_string_equal(s.items[1].activity_label, "Home and Garden");
    mc_set_free(&s);

    assert_int_equal(load_mc(sample("winogrande_hf.jsonl"), MC_WINOGRANDE, MC_FORMAT_AUTO, NULL, &s, &err), 0);
    assert_int_equal(s.n, 8);
    assert_int_equal(s.items[0].gold, 0);
    assert_int_equal(s.items[1].gold, 1);
    assert_string_equal(s.items[7].choices[1], "José");
    assert_string_equal(s.items[2].id, "wg-02");
    mc_set_free(&s);

    assert_int_equal(load_mc(sample("openbookqa_hf.jsonl"), MC_OBQA, MC_FORMAT_AUTO, NULL, &s, &err), 0);
    assert_int_equal(s.n, 8);
    assert_string_equal(s.items[0].question, "A magnet will stick to");
    assert_int_equal(s.items[0].gold, 1);
    assert_int_equal(s.items[5].gold, 2);
    mc_set_free(&s);
}

static void test_gz_equals_plain(void **state) {
    (void)state;
    McSet plain, gz;
    Err err;
    assert_int_equal(load_mc(sample("piqa_hf.jsonl"), MC_PIQA, MC_FORMAT_HF, NULL, &plain, &err), 0);
    assert_int_equal(load_mc(sample("piqa_hf.jsonl.gz"), MC_PIQA, MC_FORMAT_HF, NULL, &gz, &err), 0);
    assert_int_equal(plain.n, gz.n);
    for (int i = 0; i < plain.n; i++) {
        assert_string_equal(plain.items[i].id, gz.items[i].id);
        assert_string_equal(plain.items[i].question, gz.items[i].question);
        for (int c = 0; c < 2; c++) assert_string_equal(plain.items[i].choices[c], gz.items[i].choices[c]);
        assert_int_equal(plain.items[i].gold, gz.items[i].gold);
        assert_int_equal(plain.items[i].line, gz.items[i].line);
    }
    mc_set_free(&plain);
    mc_set_free(&gz);
}

static void test_names(void **state) {
    (void)state;
    McDataset ds;
    McFormat fmt;
    assert_int_equal(mc_dataset_from_name("arc_challenge", &ds), 0);
    assert_int_equal(ds, MC_ARC);
    assert_int_equal(mc_dataset_from_name("openbookqa", &ds), 0);
    assert_int_equal(ds, MC_OBQA);
    assert_int_equal(mc_dataset_from_name("mmlu", &ds), -1);
    assert_int_equal(mc_format_from_name("original", &fmt), 0);
    assert_int_equal(fmt, MC_FORMAT_ORIGINAL);
    assert_int_equal(mc_format_from_name("parquet", &fmt), -1);
}

/* ---------------------------------------------------------------- malformed files */

static void test_bad_json_line(void **state) {
    (void)state;
    char *p = temp_file("bad.jsonl", "{\"text\": \"a\", \"value\": \"b\"}\n"
                                     "{\"text\": \"c\", \"value\": \"d\"}\n"
                                     "{\"text\": \"e\", \"value\": \n");
    BasedSet s;
    Err err;
    assert_int_equal(load_based_jsonl(p, &s, &err), -1);
    expect_error(&err, "bad.jsonl:3:", "not valid JSON", NULL);
    free(p);
}

static void test_missing_and_mistyped(void **state) {
    (void)state;
    BasedSet s;
    McSet m;
    Err err;
    char *p = temp_file("missing.jsonl", "{\"text\": \"a\", \"value\": \"b\"}\n\n{\"text\": \"c\"}\n");
    assert_int_equal(load_based_jsonl(p, &s, &err), -1);
    expect_error(&err, "missing.jsonl:3: field \"value\": missing", NULL);
    free(p);

    p = temp_file("typed.jsonl", "{\"text\": \"a\", \"value\": 7}\n");
    assert_int_equal(load_based_jsonl(p, &s, &err), -1);
    expect_error(&err, "typed.jsonl:1: field \"value\": expected a string, got a number", NULL);
    free(p);

    /* doc_id may repeat (one passage, several questions): records are known by their index */
    p = temp_file("dup.jsonl", "{\"id\": 4, \"text\": \"a\", \"value\": \"b\"}\n{\"id\": 4, \"text\": \"c\", "
                               "\"value\": \"d\"}\n");
    assert_int_equal(load_based_jsonl(p, &s, &err), 0);
    assert_string_equal(s.items[1].id, "1");
    assert_string_equal(s.items[1].doc_id, "4");
    based_set_free(&s);
    free(p);

    p = temp_file("dup_mc.jsonl", "{\"id\": \"x\", \"question_stem\": \"q\", \"choices\": {\"text\": [\"a\"], "
                                  "\"label\": [\"A\"]}, \"answerKey\": \"A\"}\n"
                                  "{\"id\": \"x\", \"question_stem\": \"q\", \"choices\": {\"text\": [\"a\"], "
                                  "\"label\": [\"A\"]}, \"answerKey\": \"A\"}\n");
    assert_int_equal(load_mc(p, MC_OBQA, MC_FORMAT_AUTO, NULL, &m, &err), -1);
    expect_error(&err, "dup_mc.jsonl:2: id \"x\" repeats the record on line 1", NULL);
    free(p);

    p = temp_file("piqa_typed.jsonl", "{\"goal\": 5, \"sol1\": \"a\", \"sol2\": \"b\", \"label\": 0}\n");
    assert_int_equal(load_mc(p, MC_PIQA, MC_FORMAT_HF, NULL, &m, &err), -1);
    expect_error(&err, "piqa_typed.jsonl:1: field \"goal\": expected a string, got a number", NULL);
    free(p);

    p = temp_file("hs_missing.jsonl", "{\"activity_label\": \"A\", \"ctx_a\": \"b\", \"ctx_b\": \"c\", \"label\": 0}\n");
    assert_int_equal(load_mc(p, MC_HELLASWAG, MC_FORMAT_AUTO, NULL, &m, &err), -1);
    expect_error(&err, "hs_missing.jsonl:1: field \"endings\": missing", NULL);
    free(p);

    p = temp_file("wg_blank.jsonl", "{\"sentence\": \"No blank here.\", \"option1\": \"a\", \"option2\": \"b\", "
                                    "\"answer\": \"1\"}\n");
    assert_int_equal(load_mc(p, MC_WINOGRANDE, MC_FORMAT_AUTO, NULL, &m, &err), -1);
    expect_error(&err, "wg_blank.jsonl:1: field \"sentence\": has no \"_\" blank", NULL);
    free(p);

    p = temp_file("wg_unlabelled.jsonl", "{\"sentence\": \"A _ b.\", \"option1\": \"a\", \"option2\": \"b\", "
                                         "\"answer\": \"\"}\n");
    assert_int_equal(load_mc(p, MC_WINOGRANDE, MC_FORMAT_AUTO, NULL, &m, &err), -1);
    expect_error(&err, "wg_unlabelled.jsonl:1: field \"answer\"", "unlabelled", NULL);
    free(p);
}

static void test_labels_out_of_range(void **state) {
    (void)state;
    McSet m;
    Err err;
    char *p = temp_file("piqa_label.jsonl", "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\", \"label\": 1}\n"
                                            "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\", \"label\": 2}\n");
    assert_int_equal(load_mc(p, MC_PIQA, MC_FORMAT_HF, NULL, &m, &err), -1);
    expect_error(&err, "piqa_label.jsonl:2: field \"label\": 2 is out of range", NULL);
    free(p);

    p = temp_file("hs_label.jsonl", "{\"activity_label\": \"A\", \"ctx_a\": \"b\", \"ctx_b\": \"c\", "
                                    "\"endings\": [\"x\", \"y\", \"z\", \"w\"], \"label\": \"4\"}\n");
    assert_int_equal(load_mc(p, MC_HELLASWAG, MC_FORMAT_AUTO, NULL, &m, &err), -1);
    expect_error(&err, "hs_label.jsonl:1: field \"label\": 4 is out of range (4 choices", NULL);
    free(p);

    p = temp_file("wg_label.jsonl", "{\"sentence\": \"A _ b.\", \"option1\": \"a\", \"option2\": \"b\", \"answer\": 3}\n");
    assert_int_equal(load_mc(p, MC_WINOGRANDE, MC_FORMAT_AUTO, NULL, &m, &err), -1);
    expect_error(&err, "wg_label.jsonl:1: field \"answer\": 3 is out of range", NULL);
    free(p);

    /* PIQA's original split: the label file is checked line by line */
    char *data = temp_file("valid.jsonl", "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\"}\n"
                                          "{\"goal\": \"h\", \"sol1\": \"a\", \"sol2\": \"b\"}\n"
                                          "{\"goal\": \"i\", \"sol1\": \"a\", \"sol2\": \"b\"}\n");
    char *labels = temp_file("valid-labels.lst", "0\n1\n2\n");
    assert_int_equal(load_mc(data, MC_PIQA, MC_FORMAT_ORIGINAL, labels, &m, &err), -1);
    expect_error(&err, "valid-labels.lst:3: label 2 is out of range", NULL);
    free(labels);
    labels = temp_file("short-labels.lst", "0\n1\n");
    assert_int_equal(load_mc(data, MC_PIQA, MC_FORMAT_AUTO, labels, &m, &err), -1);
    expect_error(&err, "short-labels.lst: 2 labels for the 3 records", NULL);
    free(labels);
    assert_int_equal(load_mc(data, MC_PIQA, MC_FORMAT_ORIGINAL, NULL, &m, &err), -1);
    expect_error(&err, "valid.jsonl", "labels", NULL);
    /* format auto without a label file reads the HF shape: the label is missing */
    assert_int_equal(load_mc(data, MC_PIQA, MC_FORMAT_AUTO, NULL, &m, &err), -1);
    expect_error(&err, "valid.jsonl:1: field \"label\": missing", NULL);
    free(data);
}

static void test_arc_answer_key(void **state) {
    (void)state;
    McSet m;
    Err err;
    char *p = temp_file("arc_key.jsonl", "{\"id\": \"q1\", \"question\": \"Q?\", \"choices\": {\"text\": [\"a\", \"b\", "
                                         "\"c\", \"d\"], \"label\": [\"A\", \"B\", \"C\", \"D\"]}, \"answerKey\": \"E\"}\n");
    assert_int_equal(load_mc(p, MC_ARC, MC_FORMAT_AUTO, NULL, &m, &err), -1);
    expect_error(&err, "arc_key.jsonl:1: field \"answerKey\": \"E\" is not among the choice labels [A, B, C, D]", NULL);
    free(p);

    p = temp_file("arc_orig_key.jsonl", "{\"id\": \"q1\", \"question\": {\"stem\": \"Q?\", \"choices\": [{\"text\": "
                                        "\"a\", \"label\": \"1\"}, {\"text\": \"b\", \"label\": \"2\"}]}, "
                                        "\"answerKey\": \"B\"}\n");
    assert_int_equal(load_mc(p, MC_ARC, MC_FORMAT_AUTO, NULL, &m, &err), -1);
    expect_error(&err, "arc_orig_key.jsonl:1: field \"answerKey\": \"B\" is not among the choice labels [1, 2]", NULL);
    free(p);

    p = temp_file("arc_lens.jsonl", "{\"id\": \"q1\", \"question\": \"Q?\", \"choices\": {\"text\": [\"a\", \"b\"], "
                                    "\"label\": [\"A\"]}, \"answerKey\": \"A\"}\n");
    assert_int_equal(load_mc(p, MC_ARC, MC_FORMAT_HF, NULL, &m, &err), -1);
    expect_error(&err, "arc_lens.jsonl:1: field \"choices\": 2 texts but 1 labels", NULL);
    free(p);

    /* OBQA: lm-eval strips the answer key's leading whitespace */
    p = temp_file("obqa.jsonl", "{\"id\": \"o1\", \"question_stem\": \"Q\", \"choices\": {\"text\": [\"a\", \"b\"], "
                                "\"label\": [\"A\", \"B\"]}, \"answerKey\": \" B\"}\n");
    assert_int_equal(load_mc(p, MC_OBQA, MC_FORMAT_AUTO, NULL, &m, &err), 0);
    assert_int_equal(m.items[0].gold, 1);
    mc_set_free(&m);
    free(p);
}

static void test_whole_json_errors(void **state) {
    (void)state;
    SquadSet s;
    HotpotSet h;
    Err err;
    char *p = temp_file("squad_type.json", "{\"data\": [{\"title\": \"T\", \"paragraphs\": [{\"context\": \"c\", "
                                           "\"qas\": [{\"id\": \"a\", \"question\": 3, \"answers\": []}]}]}]}");
    assert_int_equal(load_squad_v2(p, 0, &s, &err), -1);
    expect_error(&err, "squad_type.json: $.data[0].paragraphs[0].qas[0]: field \"question\": expected a string, got a "
                       "number",
                 NULL);
    free(p);

    p = temp_file("squad_answer.json", "{\"data\": [{\"title\": \"T\", \"paragraphs\": [{\"context\": \"c\", \"qas\": "
                                       "[{\"id\": \"a\", \"question\": \"q\", \"answers\": [{\"answer_start\": 0}]}]}]}]}");
    assert_int_equal(load_squad_v2(p, 1, &s, &err), -1);
    expect_error(&err, "$.data[0].paragraphs[0].qas[0].answers[0]: field \"text\": missing", NULL);
    free(p);

    p = temp_file("squad_noctx.json", "{\"data\": [{\"title\": \"T\", \"paragraphs\": [{\"qas\": []}]}]}");
    assert_int_equal(load_squad_v2(p, 1, &s, &err), -1);
    expect_error(&err, "$.data[0].paragraphs[0]: field \"context\": missing", NULL);
    free(p);

    p = temp_file("squad_syntax.json", "{\"data\": [\n  {\"title\": \"T\",\n   \"paragraphs\": [}\n]}");
    assert_int_equal(load_squad_v2(p, 1, &s, &err), -1);
    expect_error(&err, "squad_syntax.json:3:", "not valid JSON", NULL);
    free(p);

    p = temp_file("hotpot_ctx.json", "[{\"_id\": \"h\", \"question\": \"q\", \"answer\": \"a\", \"context\": "
                                     "[[\"Title\", [\"s1\", 5]]]}]");
    assert_int_equal(load_hotpotqa(p, &h, &err), -1);
    expect_error(&err, "hotpot_ctx.json: $[0].context[0][1][1]: expected a string", NULL);
    free(p);

    p = temp_file("hotpot_noanswer.json", "[{\"_id\": \"h\", \"question\": \"q\", \"context\": [[\"T\", [\"s\"]]]}]");
    assert_int_equal(load_hotpotqa(p, &h, &err), -1);
    expect_error(&err, "hotpot_noanswer.json: $[0]: field \"answer\": missing", NULL);
    free(p);
}

/* ---------------------------------------------------------------- text helpers */

static void test_text_helpers(void **state) {
    (void)state;
    char *s = py_strip("\xc2\xa0\t x y \xe3\x80\x80\n"); /* NBSP, tab, ..., ideographic space */
    assert_string_equal(s, "x y");
    free(s);
    s = py_strip(" \n ");
    assert_string_equal(s, "");
    free(s);
    assert_int_equal(utf8_chars("caf\xc3\xa9"), 4);
    assert_int_equal(utf8_chars("\xf0\x9f\x99\x82!"), 2);
    char out[256];
    assert_int_equal(resolve_relative("/a/b/tasks.jsonl", "data/x.jsonl", out, sizeof out), 0);
    assert_string_equal(out, "/a/b/data/x.jsonl");
    assert_int_equal(resolve_relative("/a/b/tasks.jsonl", "/abs/x.jsonl", out, sizeof out), 0);
    assert_string_equal(out, "/abs/x.jsonl");
    LdRng a, b;
    ld_rng_seed(&a, 42);
    ld_rng_seed(&b, 42);
    int v[8], w[8];
    for (int i = 0; i < 8; i++) v[i] = w[i] = i;
    ld_shuffle(&a, v, 8);
    ld_shuffle(&b, w, 8);
    assert_memory_equal(v, w, sizeof v);
    int drawn[5];
    ld_sample(&a, 5, 5, drawn);
    int seen = 0;
    for (int i = 0; i < 5; i++) seen |= 1 << drawn[i];
    assert_int_equal(seen, 31);
}

/* ---------------------------------------------------------------- recall_data on the samples */

static Tokenizer *tokenizer(void) {
    Err err;
    Tokenizer *tok = tokenizer_load(tu_source_path("models/tokenizer"), &err);
    if (!tok) fail_msg("%s", err.msg);
    return tok;
}

/* A task line for recall_data, with data resolved to a sample. */
static TaskDef make_task(const char *json, const char *data) {
    TaskDef t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "recall_test");
    snprintf(t.kind, sizeof t.kind, "recall");
    t.seed = 1234;
    t.file = "tasks.jsonl";
    t.line = 7;
    t.json = cJSON_Parse(json);
    assert_non_null(t.json);
    if (data) snprintf(t.data, sizeof t.data, "%s", data);
    return t;
}

static void test_recall_swde_fda(void **state) {
    (void)state;
    Err err;
    TaskDef t = make_task("{}", sample("swde_based.jsonl"));
    assert_int_equal(recall_data_validate(&t, "swde", &err), 0);
    ExampleList list = {0};
    assert_int_equal(recall_data_build(&t, "swde", NULL, &list, &err), 0);
    assert_int_equal(list.n, 8);
    Example *ex = &list.items[0];
    assert_int_equal(ex->request, REQ_GENERATE);
    assert_string_equal(ex->id, "0");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(ex->extra, "doc_id")->valuestring, "movie-00-director");
    assert_int_equal(ex->max_new_tokens, 48);
    assert_int_equal(ex->n_stop, 1);
    assert_string_equal(ex->stop[0], "\n");
    assert_string_equal(ex->targets[0], " Ruth Okafor"); /* swde v0: the raw value */
    assert_string_equal(ex->prompt + strlen(ex->prompt) - 11, "\n\ndirector:");
    Scores sc = {0};
    Prediction p = {.text = " RUTH OKAFOR directed it"};
    assert_int_equal(recall_data_score(&t, "swde", ex, &p, &sc, &err), 0);
    assert_string_equal(sc.name[0], "contains");
    assert_true(sc.value[0] == 1.0);
    Scores sc2 = {0};
    Prediction p2 = {.text = "Ruth Okafor"}; /* the raw gold has a leading space: v0 misses it, as lm-eval does */
    assert_int_equal(recall_data_score(&t, "swde", ex, &p2, &sc2, &err), 0);
    assert_true(sc2.value[0] == 0.0);
    examples_free(&list);
    cJSON_Delete(t.json);

    t = make_task("{\"version\": 1, \"max_new_tokens\": 16}", sample("swde_based.jsonl"));
    t.max_new_tokens = 16;
    assert_int_equal(recall_data_build(&t, "swde", NULL, &list, &err), 0);
    assert_string_equal(list.items[0].targets[0], "Ruth Okafor");
    assert_int_equal(list.items[0].max_new_tokens, 16);
    examples_free(&list);
    cJSON_Delete(t.json);

    t = make_task("{}", sample("fda_based.jsonl"));
    assert_int_equal(recall_data_build(&t, "fda", NULL, &list, &err), 0);
    assert_int_equal(list.n, 8);
    assert_string_equal(list.items[0].targets[0], "Brightwell Instruments");
    assert_string_equal(list.items[0].prompt + strlen(list.items[0].prompt) - 11, "\napplicant:");
    examples_free(&list);
    cJSON_Delete(t.json);

    t = make_task("{\"lengths\": [4096]}", sample("fda_based.jsonl"));
    assert_int_equal(recall_data_validate(&t, "fda", &err), -1);
    expect_error(&err, "tasks.jsonl:7:", "field \"lengths\": does not apply to variant \"fda\"", NULL);
    cJSON_Delete(t.json);
}

/* Tokens of text without BOS, as RULER counts. */
static long count_tokens(const Tokenizer *tok, const char *text) {
    int32_t *ids = NULL;
    size_t n = 0;
    Err err;
    assert_int_equal(tokenizer_encode(tok, text, strlen(text), 0, &ids, &n, &err), 0);
    free(ids);
    return (long)n;
}

static void test_recall_qa(void **state) {
    (void)state;
    Err err;
    Tokenizer *tok = tokenizer();
    TaskDef t = make_task("{\"lengths\": [1500, 2500], \"num_samples\": 3}", sample("hotpotqa_sample.json"));
    assert_int_equal(recall_data_validate(&t, "qa_hotpot", &err), 0);
    ExampleList list = {0};
    assert_int_equal(recall_data_build(&t, "qa_hotpot", tok, &list, &err), 0);
    assert_int_equal(list.n, 6);
    for (int i = 0; i < list.n; i++) {
        Example *ex = &list.items[i];
        int L = i < 3 ? 1500 : 2500;
        char group[16];
        snprintf(group, sizeof group, "%d", L);
        assert_string_equal(ex->group, group);
        assert_int_equal(ex->target_tokens, L);
        assert_int_equal(ex->max_new_tokens, 32);
        long realised = count_tokens(tok, ex->prompt) + 32;
        if (realised > L || realised * 100 < (long)L * 99) fail_msg("realised %ld for target %d", realised, L);
        const char *head = "Answer the question based on the given documents. Only give me the answer and do not "
                           "output any other words.\n\nThe following are given documents.\n\nDocument 1:\n";
        assert_memory_equal(ex->prompt, head, strlen(head));
        const char *end = strstr(ex->prompt, "\n\nAnswer the question based on the given documents. Only give me the "
                                             "answer and do not output any other words.\n\nQuestion: ");
        assert_non_null(end);
        assert_string_equal(ex->prompt + strlen(ex->prompt) - 8, " Answer:");
        /* every gold paragraph of the question is in the prompt */
        assert_non_null(strstr(ex->prompt, i % 3 == 0 ? "Garrow Bridge\nGarrow Bridge is a stone arch bridge"
                                                       : i % 3 == 1 ? "River Leth\nThe river Leth rises"
                                                                    : "Mina Harrowgate\nMina Harrowgate is a novelist"));
        cJSON *rl = cJSON_GetObjectItemCaseSensitive(ex->extra, "ruler_length");
        assert_int_equal((long)rl->valuedouble, realised);
    }
    assert_string_equal(list.items[0].id, "1500/hp001");
    assert_string_equal(list.items[3].targets[0], "Ambry");
    /* RULER's string_match_part: any reference contained, after post-processing */
    Scores sc = {0};
    Prediction p = {.text = "  the town of AMBRY\x01 I think"};
    assert_int_equal(recall_data_score(&t, "qa_hotpot", &list.items[0], &p, &sc, &err), 0);
    assert_string_equal(sc.name[0], "string_match_part");
    assert_true(sc.value[0] == 1.0);
    /* the same seed builds the same prompts */
    ExampleList again = {0};
    assert_int_equal(recall_data_build(&t, "qa_hotpot", tok, &again, &err), 0);
    for (int i = 0; i < list.n; i++) assert_string_equal(list.items[i].prompt, again.items[i].prompt);
    examples_free(&again);
    examples_free(&list);
    cJSON_Delete(t.json);

    /* SQuAD: answerable questions only, every answer a reference */
    t = make_task("{\"lengths\": [450], \"num_samples\": 10}", sample("squad_v2_sample.json"));
    assert_int_equal(recall_data_build(&t, "qa_squad", tok, &list, &err), 0);
    assert_int_equal(list.n, 7);
    int multi = -1;
    for (int i = 0; i < list.n; i++)
        if (strcmp(list.items[i].id, "450/q1_multi") == 0) multi = i;
    assert_true(multi >= 0);
    assert_int_equal(list.items[multi].n_targets, 2);
    examples_free(&list);
    cJSON_Delete(t.json);

    /* a target beyond what all the documents of the file reach is an error */
    t = make_task("{\"lengths\": [20000], \"num_samples\": 1}", sample("hotpotqa_sample.json"));
    assert_int_equal(recall_data_build(&t, "qa_hotpot", tok, &list, &err), -1);
    expect_error(&err, "tasks.jsonl:7:", "length 20000", "more than 1% short", "every document", NULL);
    examples_free(&list);
    cJSON_Delete(t.json);

    t = make_task("{\"lengths\": [64]}", sample("hotpotqa_sample.json"));
    assert_int_equal(recall_data_build(&t, "qa_hotpot", tok, &list, &err), -1);
    expect_error(&err, "own documents alone take", NULL);
    examples_free(&list);
    cJSON_Delete(t.json);

    t = make_task("{\"num_samples\": 3}", sample("hotpotqa_sample.json"));
    assert_int_equal(recall_data_validate(&t, "qa_hotpot", &err), -1);
    expect_error(&err, "field \"lengths\": missing", NULL);
    cJSON_Delete(t.json);
    tokenizer_free(tok);
}

static void test_recall_qa_whole_docs(void **state) {
    (void)state;
    Err err;
    Tokenizer *tok = tokenizer();
    /* with partial_doc off the prompt holds whole documents only: where that
       misses the 1% band it is an error, where it lands inside, it is kept */
    int ok = 0, failed = 0;
    for (int L = 1400; L <= 1700; L += 10) {
        char json[128];
        snprintf(json, sizeof json, "{\"lengths\": [%d], \"num_samples\": 1, \"partial_doc\": false}", L);
        TaskDef t = make_task(json, sample("hotpotqa_sample.json"));
        ExampleList list = {0};
        if (recall_data_build(&t, "qa_hotpot", tok, &list, &err) == 0) {
            ok++;
            cJSON *partial = cJSON_GetObjectItemCaseSensitive(list.items[0].extra, "partial_doc");
            assert_true(cJSON_IsFalse(partial));
        } else {
            failed++;
            expect_error(&err, "more than 1% short", "partial_doc is off", NULL);
        }
        examples_free(&list);
        cJSON_Delete(t.json);
    }
    assert_true(failed > 0);
    assert_true(ok > 0);
    tokenizer_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_based_samples),
        cmocka_unit_test(test_squad_sample),
        cmocka_unit_test(test_hotpot_sample),
        cmocka_unit_test(test_mc_samples),
        cmocka_unit_test(test_gz_equals_plain),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_bad_json_line),
        cmocka_unit_test(test_missing_and_mistyped),
        cmocka_unit_test(test_labels_out_of_range),
        cmocka_unit_test(test_arc_answer_key),
        cmocka_unit_test(test_whole_json_errors),
        cmocka_unit_test(test_text_helpers),
        cmocka_unit_test(test_recall_swde_fda),
        cmocka_unit_test(test_recall_qa),
        cmocka_unit_test(test_recall_qa_whole_docs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
