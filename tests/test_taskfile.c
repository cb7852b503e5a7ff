/* test_taskfile.c: task-file loading and validation (tasks/taskfile.c), the
   typed field accessors, and the example helpers (tasks/example.c). The
   registry here is a fake with two kinds, so the test needs no real kind. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "sha256.h"
#include "task.h"

/* ---------------------------------------------------------------- fake registry */

static int fake_validate(const TaskDef *t, Err *err) {
    static const char *const modes[] = {"grid", "random", NULL};
    int *lengths, n_lengths, strict;
    char **needles;
    int n_needles;
    const char *mode;
    double ratio;
    if (task_int_list(t, "lengths", &lengths, &n_lengths, err)) return -1;
    free(lengths);
    if (task_string(t, "mode", "grid", modes, &mode, err)) return -1;
    if (task_double(t, "ratio", 0.5, 0.0, 1.0, &ratio, err)) return -1;
    if (task_bool(t, "strict", 0, &strict, err)) return -1;
    if (task_string_list(t, "needles", &needles, &n_needles, err)) return -1;
    strv_free(needles, n_needles);
    return 0;
}

static const char *const fake_fields[] = {"lengths", "mode", "ratio", "strict", "needles", NULL};
static const TaskKind fake_niah = {.name = "fakeniah", .fields = fake_fields, .validate = fake_validate};
static const TaskKind fake_plain = {.name = "plain", .fields = NULL, .validate = NULL};
static const TaskKind *const fake_kinds[] = {&fake_niah, &fake_plain, NULL};

const TaskKind *task_kind_find(const char *name) {
    for (int i = 0; fake_kinds[i]; i++)
        if (strcmp(fake_kinds[i]->name, name) == 0) return fake_kinds[i];
    return NULL;
}

const TaskKind *const *task_kinds(void) { return fake_kinds; }

/* ---------------------------------------------------------------- files */

static char temp_dir[256];
static char path_buf[512];

static int make_temp_dir(void **state) {
    (void)state;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(temp_dir, sizeof temp_dir, "%s/hymeval-taskfile-XXXXXX", base);
    if (!mkdtemp(temp_dir)) return -1;
    char sub[600];
    snprintf(sub, sizeof sub, "%s/sub", temp_dir);
    return mkdir(sub, 0755);
}

static int remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return -1;
    if (S_ISDIR(st.st_mode)) {
        DIR *dir = opendir(path);
        struct dirent *entry;
        while (dir && (entry = readdir(dir))) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
            char child[1024];
            snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
            remove_tree(child);
        }
        if (dir) closedir(dir);
    }
    return remove(path);
}

static int remove_temp_dir(void **state) {
    (void)state;
    return remove_tree(temp_dir);
}

/* Writes text to temp_dir/name; returns the path (static buffer). */
static const char *write_file(const char *name, const char *text) {
    snprintf(path_buf, sizeof path_buf, "%s/%s", temp_dir, name);
    FILE *f = fopen(path_buf, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path_buf;
}

static void assert_contains(const char *text, const char *part) {
    if (!strstr(text, part)) fail_msg("expected \"%s\" in: %s", part, text);
}

/* A data file the valid tasks point at: temp_dir/data.jsonl. */
static void write_data_file(void) { write_file("data.jsonl", "{\"text\": \"x\"}\n"); }

/* Loads text as a task file named `name` and expects failure. Checks the
   message names the file and "file:LINE:" and each of the `parts`. */
static void expect_error(const char *name, const char *text, int line, const char *const *parts) {
    write_data_file();
    char path[600];
    snprintf(path, sizeof path, "%s", write_file(name, text));
    TaskFile tf;
    Err err = {{0}};
    if (taskfile_load(&tf, path, &err) == 0) fail_msg("%s loaded, expected an error", name);
    assert_null(tf.tasks);
    assert_int_equal(tf.n, 0);
    char where[640];
    if (line > 0) snprintf(where, sizeof where, "%s:%d: ", path, line);
    else snprintf(where, sizeof where, "%s", path);
    assert_contains(err.msg, where);
    for (int i = 0; parts && parts[i]; i++) assert_contains(err.msg, parts[i]);
}

#define PARTS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* A comment, a valid task and a blank line, so the bad line is line 4. */
#define GOOD_PREFIX                                       \
    "# header comment\n"                                 \
    "{\"name\": \"ok1\", \"kind\": \"plain\"}\n"         \
    "\n"

/* ---------------------------------------------------------------- a valid file */

static const char valid_text[] =
    "# hymeval task file used by test_taskfile.c\n"
    "\n"
    "{\"name\": \"grid\", \"kind\": \"fakeniah\", \"lengths\": [1024, 2048], \"mode\": \"random\"}\r\n"
    "   # a comment between tasks\n"
    "\n"
    "{\"name\": \"full\", \"kind\": \"fakeniah\", \"seed\": 7, \"limit\": 20, \"max_new_tokens\": 48,"
    " \"metric\": \"contains\", \"data\": \"data.jsonl\", \"precision\": \"bf16-hf\","
    " \"description\": \"every common field\", \"ratio\": 1, \"strict\": true, \"needles\": [\"a\", \"b\"]}\n"
    "{\"name\": \"bare\", \"kind\": \"plain\"}";

static void test_valid_file(void **state) {
    (void)state;
    write_data_file();
    const char *text = valid_text;
    char path[600];
    snprintf(path, sizeof path, "%s", write_file("valid.jsonl", text));

    TaskFile tf;
    Err err = {{0}};
    if (taskfile_load(&tf, path, &err)) fail_msg("%s", err.msg);
    assert_int_equal(tf.n, 3);
    assert_string_equal(tf.path, path);
    char expected_hash[65];
    sha256_hex(text, strlen(text), expected_hash);
    assert_string_equal(tf.sha256, expected_hash);

    const TaskDef *grid = &tf.tasks[0], *full = &tf.tasks[1], *bare = &tf.tasks[2];
    assert_string_equal(grid->name, "grid");
    assert_string_equal(grid->kind, "fakeniah");
    assert_int_equal(grid->line, 3);
    assert_int_equal(grid->seed, 1234);
    assert_int_equal(grid->limit, 0);
    assert_int_equal(grid->max_new_tokens, 0);
    assert_string_equal(grid->metric, "");
    assert_string_equal(grid->data, "");
    assert_string_equal(grid->precision, "");
    assert_string_equal(grid->file, path);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(grid->json, "lengths"));

    assert_int_equal(full->line, 6);
    assert_int_equal(full->seed, 7);
    assert_int_equal(full->limit, 20);
    assert_int_equal(full->max_new_tokens, 48);
    assert_string_equal(full->metric, "contains");
    assert_string_equal(full->precision, "bf16-hf");
    char data_path[700];
    snprintf(data_path, sizeof data_path, "%s/data.jsonl", temp_dir);
    assert_string_equal(full->data, data_path);

    assert_string_equal(bare->kind, "plain");
    assert_int_equal(bare->line, 7);
    taskfile_free(&tf);
    assert_null(tf.tasks);
    assert_int_equal(tf.n, 0);
}

/* data is resolved against the task file's directory, not the working directory. */
static void test_data_relative_to_task_file_directory(void **state) {
    (void)state;
    write_data_file();
    char path[600];
    snprintf(path, sizeof path, "%s",
             write_file("sub/tasks.jsonl", "{\"name\": \"a\", \"kind\": \"plain\", \"data\": \"../data.jsonl\"}\n"));
    TaskFile tf;
    Err err = {{0}};
    if (taskfile_load(&tf, path, &err)) fail_msg("%s", err.msg);
    char expected[700];
    snprintf(expected, sizeof expected, "%s/sub/../data.jsonl", temp_dir);
    assert_string_equal(tf.tasks[0].data, expected);
    taskfile_free(&tf);

    char absolute[800];
    snprintf(absolute, sizeof absolute, "{\"name\": \"a\", \"kind\": \"plain\", \"data\": \"%s/data.jsonl\"}\n", temp_dir);
    snprintf(path, sizeof path, "%s", write_file("sub/abs.jsonl", absolute));
    if (taskfile_load(&tf, path, &err)) fail_msg("%s", err.msg);
    snprintf(expected, sizeof expected, "%s/data.jsonl", temp_dir);
    assert_string_equal(tf.tasks[0].data, expected);
    taskfile_free(&tf);
}

static void test_gzip_task_file(void **state) {
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/tasks.jsonl.gz", temp_dir);
    gzFile gz = gzopen(path, "wb");
    const char text[] = "# compressed\n{\"name\": \"z\", \"kind\": \"plain\"}\n";
    gzwrite(gz, text, sizeof text - 1);
    gzclose(gz);
    TaskFile tf;
    Err err = {{0}};
    if (taskfile_load(&tf, path, &err)) fail_msg("%s", err.msg);
    assert_int_equal(tf.n, 1);
    assert_int_equal(tf.tasks[0].line, 2);
    taskfile_free(&tf);
}

/* ---------------------------------------------------------------- malformed files */

static void test_not_json(void **state) {
    (void)state;
    expect_error("notjson.jsonl", GOOD_PREFIX "{\"name\": \"x\", kind: \"plain\"}\n", 4,
                 PARTS("not valid JSON", "column"));
}

static void test_json_array_line(void **state) {
    (void)state;
    expect_error("array.jsonl", GOOD_PREFIX "[{\"name\": \"x\", \"kind\": \"plain\"}]\n", 4,
                 PARTS("expected a JSON object", "an array"));
}

static void test_missing_name(void **state) {
    (void)state;
    expect_error("noname.jsonl", GOOD_PREFIX "{\"kind\": \"plain\"}\n", 4, PARTS("field \"name\"", "missing"));
}

static void test_bad_names(void **state) {
    (void)state;
    expect_error("numname.jsonl", GOOD_PREFIX "{\"name\": 5, \"kind\": \"plain\"}\n", 4,
                 PARTS("field \"name\"", "expected a non-empty string, got 5"));
    expect_error("emptyname.jsonl", GOOD_PREFIX "{\"name\": \"\", \"kind\": \"plain\"}\n", 4,
                 PARTS("field \"name\"", "got \"\""));
    char text[400];
    snprintf(text, sizeof text, GOOD_PREFIX "{\"name\": \"%0200d\", \"kind\": \"plain\"}\n", 1);
    expect_error("longname.jsonl", text, 4, PARTS("field \"name\"", "at most 127 bytes"));
}

static void test_duplicate_name(void **state) {
    (void)state;
    expect_error("dup.jsonl", GOOD_PREFIX "{\"name\": \"ok1\", \"kind\": \"fakeniah\"}\n", 4,
                 PARTS("field \"name\"", "duplicate task name \"ok1\"", "line 2"));
}

static void test_missing_kind(void **state) {
    (void)state;
    expect_error("nokind.jsonl", GOOD_PREFIX "{\"name\": \"x\"}\n", 4,
                 PARTS("task \"x\"", "field \"kind\"", "missing", "fakeniah, plain"));
}

static void test_unknown_kind(void **state) {
    (void)state;
    expect_error("badkind.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"nope\"}\n", 4,
                 PARTS("field \"kind\"", "unknown kind \"nope\"", "fakeniah, plain"));
    expect_error("numkind.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": 3}\n", 4,
                 PARTS("field \"kind\"", "unknown kind 3"));
}

static void test_unknown_field_lists_allowed_ones(void **state) {
    (void)state;
    expect_error("unknown.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"fakeniah\", \"depth\": 50}\n", 4,
                 PARTS("task \"x\"", "unknown field \"depth\" for kind \"fakeniah\"",
                       "(expected one of: name, kind, seed, limit, max_new_tokens, metric, data, precision, "
                       "description, lengths, mode, ratio, strict, needles)"));
    /* a field another kind accepts is still unknown to this one */
    expect_error("otherkind.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"lengths\": [1]}\n", 4,
                 PARTS("unknown field \"lengths\" for kind \"plain\"", "description)"));
    /* field names are case-sensitive */
    expect_error("case.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"Seed\": 1}\n", 4,
                 PARTS("unknown field \"Seed\""));
}

static void test_repeated_field(void **state) {
    (void)state;
    expect_error("repeat.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"limit\": 1, \"limit\": 2}\n",
                 4, PARTS("field \"limit\"", "more than once"));
}

static void test_wrong_types_of_common_fields(void **state) {
    (void)state;
    expect_error("seed1.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"seed\": \"abc\"}\n", 4,
                 PARTS("task \"x\": field \"seed\": expected a non-negative integer", "got \"abc\""));
    expect_error("seed2.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"seed\": -1}\n", 4,
                 PARTS("field \"seed\"", "got -1"));
    expect_error("seed3.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"seed\": 1.5}\n", 4,
                 PARTS("field \"seed\"", "got 1.5"));
    expect_error("seed4.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"seed\": 1e300}\n", 4,
                 PARTS("field \"seed\"", "2^53"));
    expect_error("limit1.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"limit\": \"abc\"}\n", 4,
                 PARTS("field \"limit\": expected a non-negative integer, got \"abc\""));
    expect_error("limit2.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"limit\": -3}\n", 4,
                 PARTS("field \"limit\": expected a non-negative integer, got -3"));
    expect_error("limit3.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"limit\": null}\n", 4,
                 PARTS("field \"limit\"", "got null"));
    expect_error("mnt1.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"max_new_tokens\": 0}\n", 4,
                 PARTS("field \"max_new_tokens\": expected a positive integer, got 0"));
    expect_error("mnt2.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"max_new_tokens\": [48]}\n", 4,
                 PARTS("field \"max_new_tokens\"", "got an array"));
    expect_error("mnt3.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"max_new_tokens\": 3e9}\n", 4,
                 PARTS("field \"max_new_tokens\"", "got 3000000000"));
    expect_error("data1.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"data\": 5}\n", 4,
                 PARTS("field \"data\": expected a string, got 5"));
    expect_error("data2.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"data\": {\"path\": \"a\"}}\n",
                 4, PARTS("field \"data\"", "got an object"));
    expect_error("metric.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"metric\": true}\n", 4,
                 PARTS("field \"metric\": expected a string, got true"));
    expect_error("desc.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"description\": 1}\n", 4,
                 PARTS("field \"description\": expected a string, got 1"));
    char text[400];
    snprintf(text, sizeof text, GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"metric\": \"%070d\"}\n", 0);
    expect_error("metriclong.jsonl", text, 4, PARTS("field \"metric\"", "at most 63 bytes"));
}

static void test_data_path_problems(void **state) {
    (void)state;
    char missing[700];
    snprintf(missing, sizeof missing, "\"%s/sub/missing.jsonl\"", temp_dir);
    expect_error("sub/missing_data.jsonl", "{\"name\": \"x\", \"kind\": \"plain\", \"data\": \"missing.jsonl\"}\n", 1,
                 PARTS("task \"x\": field \"data\"", missing, "No such file or directory"));
    expect_error("dirdata.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"data\": \"sub\"}\n", 4,
                 PARTS("field \"data\"", "not a regular file"));
    expect_error("emptydata.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"data\": \"\"}\n", 4,
                 PARTS("field \"data\"", "non-empty path"));
}

static void test_bad_precision(void **state) {
    (void)state;
    expect_error("prec.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"precision\": \"bf16\"}\n", 4,
                 PARTS("field \"precision\"", "expected one of: fp32, bf16-paper, bf16-hf, bf16-all; got \"bf16\""));
}

/* The kind's validate runs after the common fields and reports through the accessors. */
static void test_kind_validation_errors(void **state) {
    (void)state;
    expect_error("mode.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"fakeniah\", \"mode\": \"zigzag\"}\n", 4,
                 PARTS("task \"x\": field \"mode\": expected one of: grid, random; got \"zigzag\""));
    expect_error("ratio.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"fakeniah\", \"ratio\": 2}\n", 4,
                 PARTS("field \"ratio\": expected a number in [0, 1], got 2"));
    expect_error("strict.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"fakeniah\", \"strict\": \"yes\"}\n", 4,
                 PARTS("field \"strict\": expected true or false, got \"yes\""));
    expect_error("lengths.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"fakeniah\", \"lengths\": [1, \"2k\"]}\n",
                 4, PARTS("field \"lengths\": element [1]: expected an integer, got \"2k\""));
    expect_error("lengths2.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"fakeniah\", \"lengths\": 4096}\n", 4,
                 PARTS("field \"lengths\": expected an array of integers, got 4096"));
    expect_error("needles.jsonl", GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"fakeniah\", \"needles\": [\"a\", 1]}\n",
                 4, PARTS("field \"needles\": element [1]: expected a string, got 1"));
}

static void test_first_error_is_reported(void **state) {
    (void)state;
    expect_error("two.jsonl",
                 GOOD_PREFIX "{\"name\": \"x\", \"kind\": \"plain\", \"limit\": -1}\n{\"name\": \"y\", \"kind\": \"?\"}\n",
                 4, PARTS("field \"limit\""));
}

static void test_empty_files(void **state) {
    (void)state;
    expect_error("empty.jsonl", "", 0, PARTS("no tasks"));
    expect_error("comments_only.jsonl", "# nothing\n\n   \n# here\n", 0, PARTS("no tasks"));
}

static void test_missing_task_file(void **state) {
    (void)state;
    TaskFile tf;
    Err err = {{0}};
    char path[600];
    snprintf(path, sizeof path, "%s/absent.jsonl", temp_dir);
    assert_int_equal(taskfile_load(&tf, path, &err), -1);
    assert_contains(err.msg, path);
    assert_contains(err.msg, "No such file");
}

/* ---------------------------------------------------------------- accessors */

static TaskDef make_task(const char *json) {
    TaskDef t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "t1");
    t.file = "suite.jsonl";
    t.line = 7;
    t.json = cJSON_Parse(json);
    assert_non_null(t.json);
    return t;
}

static void test_task_int_ranges(void **state) {
    (void)state;
    TaskDef t = make_task("{\"a\": 5, \"b\": -2, \"c\": 2.5, \"d\": \"5\", \"e\": 3000000000}");
    Err err = {{0}};
    int v = 0;
    assert_int_equal(task_int(&t, "a", 0, 5, 5, &v, &err), 0);
    assert_int_equal(v, 5);
    assert_int_equal(task_int(&t, "absent", 42, 0, 1, &v, &err), 0);  /* fallback is not range-checked */
    assert_int_equal(v, 42);
    assert_int_equal(task_int(&t, "a", 0, 6, 10, &v, &err), -1);
    assert_string_equal(err.msg, "suite.jsonl:7: task \"t1\": field \"a\": expected an integer in [6, 10], got 5");
    assert_int_equal(task_int(&t, "a", 0, 0, 4, &v, &err), -1);
    assert_contains(err.msg, "in [0, 4], got 5");
    assert_int_equal(task_int(&t, "b", 0, 0, INT_MAX, &v, &err), -1);
    assert_contains(err.msg, "expected a non-negative integer, got -2");
    assert_int_equal(task_int(&t, "b", 0, INT_MIN, INT_MAX, &v, &err), 0);
    assert_int_equal(v, -2);
    assert_int_equal(task_int(&t, "b", 0, -1, INT_MAX, &v, &err), -1);
    assert_contains(err.msg, "expected an integer >= -1, got -2");
    assert_int_equal(task_int(&t, "c", 0, 0, 10, &v, &err), -1);
    assert_contains(err.msg, "got 2.5");
    assert_int_equal(task_int(&t, "d", 0, 0, 10, &v, &err), -1);
    assert_contains(err.msg, "got \"5\"");
    assert_int_equal(task_int(&t, "e", 0, INT_MIN, INT_MAX, &v, &err), -1);
    assert_contains(err.msg, "expected an integer, got 3000000000");
    cJSON_Delete(t.json);
}

static void test_task_double_bool_string(void **state) {
    (void)state;
    TaskDef t = make_task("{\"r\": 0.25, \"i\": 3, \"b\": false, \"s\": \"grid\", \"n\": null}");
    Err err = {{0}};
    double d;
    assert_int_equal(task_double(&t, "r", 0, 0, 1, &d, &err), 0);
    assert_true(d == 0.25);
    assert_int_equal(task_double(&t, "i", 0, 0, 10, &d, &err), 0);  /* an integer is a number */
    assert_true(d == 3.0);
    assert_int_equal(task_double(&t, "absent", 9.5, 0, 1, &d, &err), 0);
    assert_true(d == 9.5);
    assert_int_equal(task_double(&t, "r", 0, 0.5, 1, &d, &err), -1);
    assert_string_equal(err.msg, "suite.jsonl:7: task \"t1\": field \"r\": expected a number in [0.5, 1], got 0.25");
    assert_int_equal(task_double(&t, "s", 0, 0, 1, &d, &err), -1);
    assert_contains(err.msg, "got \"grid\"");

    int b = -1;
    assert_int_equal(task_bool(&t, "b", 1, &b, &err), 0);
    assert_int_equal(b, 0);
    assert_int_equal(task_bool(&t, "absent", 1, &b, &err), 0);
    assert_int_equal(b, 1);
    assert_int_equal(task_bool(&t, "i", 0, &b, &err), -1);
    assert_contains(err.msg, "field \"i\": expected true or false, got 3");

    static const char *const modes[] = {"grid", "random", NULL};
    const char *s = NULL;
    assert_int_equal(task_string(&t, "s", NULL, modes, &s, &err), 0);
    assert_string_equal(s, "grid");
    assert_int_equal(task_string(&t, "absent", "random", modes, &s, &err), 0);
    assert_string_equal(s, "random");
    assert_int_equal(task_string(&t, "absent", NULL, NULL, &s, &err), 0);
    assert_null(s);
    static const char *const others[] = {"x", "y", NULL};
    assert_int_equal(task_string(&t, "s", NULL, others, &s, &err), -1);
    assert_contains(err.msg, "field \"s\": expected one of: x, y; got \"grid\"");
    assert_int_equal(task_string(&t, "n", NULL, NULL, &s, &err), -1);
    assert_contains(err.msg, "field \"n\": expected a string, got null");

    assert_true(task_has(&t, "n"));
    assert_false(task_has(&t, "absent"));
    cJSON_Delete(t.json);
}

static void test_task_lists(void **state) {
    (void)state;
    TaskDef t = make_task("{\"ints\": [1, -2, 3], \"strs\": [\"a\", \"b\"], \"empty\": [], \"mixed\": [\"a\", [1]]}");
    Err err = {{0}};
    int *ints, n;
    assert_int_equal(task_int_list(&t, "ints", &ints, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ints[1], -2);
    free(ints);
    assert_int_equal(task_int_list(&t, "absent", &ints, &n, &err), 0);
    assert_null(ints);
    assert_int_equal(n, 0);
    assert_int_equal(task_int_list(&t, "empty", &ints, &n, &err), 0);
    assert_int_equal(n, 0);
    free(ints);
    assert_int_equal(task_int_list(&t, "strs", &ints, &n, &err), -1);
    assert_contains(err.msg, "field \"strs\": element [0]: expected an integer, got \"a\"");

    char **strs;
    assert_int_equal(task_string_list(&t, "strs", &strs, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(strs[1], "b");
    strv_free(strs, n);
    assert_int_equal(task_string_list(&t, "absent", &strs, &n, &err), 0);
    assert_null(strs);
    assert_int_equal(task_string_list(&t, "mixed", &strs, &n, &err), -1);
    assert_contains(err.msg, "field \"mixed\": element [1]: expected a string, got an array");
    assert_null(strs);
    cJSON_Delete(t.json);
}

static void test_task_field_error_format(void **state) {
    (void)state;
    TaskDef t = make_task("{}");
    Err err = {{0}};
    assert_int_equal(task_field_error(&t, "depths", &err, "must be sorted (got %d before %d)", 50, 10), -1);
    assert_string_equal(err.msg, "suite.jsonl:7: task \"t1\": field \"depths\": must be sorted (got 50 before 10)");
    assert_int_equal(task_field_error(&t, NULL, &err, "no examples"), -1);
    assert_string_equal(err.msg, "suite.jsonl:7: task \"t1\": no examples");
    t.name[0] = 0;
    task_field_error(&t, "name", &err, "missing");
    assert_string_equal(err.msg, "suite.jsonl:7: field \"name\": missing");
    assert_int_equal(task_field_error(&t, "x", NULL, "no err given"), -1);
    cJSON_Delete(t.json);
}

/* ---------------------------------------------------------------- examples and scores */

static void test_examples_and_strings(void **state) {
    (void)state;
    ExampleList list = {0};
    Err err = {{0}};
    for (int i = 0; i < 100; i++) {
        Example *ex = examples_push(&list, &err);
        assert_non_null(ex);
        assert_int_equal(ex->add_bos, 1);
        assert_true(ex->depth == -1.0);
        assert_int_equal(ex->needle_token_pos, -1);
        assert_null(ex->prompt);
        assert_int_equal(ex->n_targets, 0);
        ex->prompt = xstrdup("prompt");
        assert_int_equal(strv_push(&ex->targets, &ex->n_targets, "gold"), 0);
        assert_int_equal(strv_push(&ex->stop, &ex->n_stop, "\n"), 0);
        if (i % 2) {
            ex->request = REQ_LOGLIK;
            assert_int_equal(strv_push(&ex->contexts, &ex->n_choices, "ctx"), 0);
            ex->n_choices = 0;
            assert_int_equal(strv_push(&ex->continuations, &ex->n_choices, " a"), 0);
            ex->extra = cJSON_CreateObject();
        }
    }
    assert_int_equal(list.n, 100);
    assert_string_equal(list.items[99].continuations[0], " a");
    examples_free(&list);  /* AddressSanitizer checks nothing leaks */
    assert_int_equal(list.n, 0);
    assert_null(list.items);
    assert_null(xstrdup(NULL));
    strv_free(NULL, 0);
}

static void test_scores_add(void **state) {
    (void)state;
    Scores s = {0};
    scores_add(&s, "contains", 1.0);
    scores_add(&s, "exact", 0.0);
    scores_add(&s, "contains", 0.5);  /* same name replaces */
    assert_int_equal(s.n, 2);
    assert_string_equal(s.name[0], "contains");
    assert_true(s.value[0] == 0.5);
    assert_string_equal(s.name[1], "exact");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_file),
        cmocka_unit_test(test_data_relative_to_task_file_directory),
        cmocka_unit_test(test_gzip_task_file),
        cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_json_array_line),
        cmocka_unit_test(test_missing_name),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_duplicate_name),
        cmocka_unit_test(test_missing_kind),
        cmocka_unit_test(test_unknown_kind),
        cmocka_unit_test(test_unknown_field_lists_allowed_ones),
        cmocka_unit_test(test_repeated_field),
        cmocka_unit_test(test_wrong_types_of_common_fields),
        cmocka_unit_test(test_data_path_problems),
        cmocka_unit_test(test_bad_precision),
        cmocka_unit_test(test_kind_validation_errors),
        cmocka_unit_test(test_first_error_is_reported),
        cmocka_unit_test(test_empty_files),
        cmocka_unit_test(test_missing_task_file),
        cmocka_unit_test(test_task_int_ranges),
        cmocka_unit_test(test_task_double_bool_string),
        cmocka_unit_test(test_task_lists),
        cmocka_unit_test(test_task_field_error_format),
        cmocka_unit_test(test_examples_and_strings),
        cmocka_unit_test(test_scores_add),
    };
    return cmocka_run_group_tests(tests, make_temp_dir, remove_temp_dir);
}
