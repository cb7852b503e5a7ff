/* test_jsonl.c: the JSONL / gzip reader (datasets/jsonl.c) and SHA-256
   (tasks/sha256.c). Files are written into a fresh temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "jsonl.h"
#include "sha256.h"

/* ---------------------------------------------------------------- helpers */

static char temp_dir[256];
static char path_buf[512];

static int make_temp_dir(void **state) {
    (void)state;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(temp_dir, sizeof temp_dir, "%s/hymeval-jsonl-XXXXXX", base);
    return mkdtemp(temp_dir) ? 0 : -1;
}

/* Removes a directory tree (the tests' own files only). */
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

static const char *temp_path(const char *name) {
    snprintf(path_buf, sizeof path_buf, "%s/%s", temp_dir, name);
    return path_buf;
}

static const char *write_plain(const char *name, const void *bytes, size_t len) {
    const char *path = temp_path(name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    fclose(f);
    return path;
}

static const char *write_gzip(const char *name, const void *bytes, size_t len) {
    const char *path = temp_path(name);
    gzFile gz = gzopen(path, "wb");
    assert_non_null(gz);
    assert_int_equal(gzwrite(gz, bytes, (unsigned)len), (int)len);
    assert_int_equal(gzclose(gz), Z_OK);
    return path;
}

static void assert_contains(const char *text, const char *part) {
    if (!strstr(text, part)) fail_msg("expected \"%s\" in: %s", part, text);
}

/* Reads every object of path into `lines` (line numbers) and checks the
   integer value of key "v" of each against `values`. */
static void expect_records(const char *path, const int *lines, const int *values, int n) {
    Err err = {{0}};
    JsonlReader *r = jsonl_open(path, &err);
    if (!r) fail_msg("%s", err.msg);
    for (int i = 0; i < n; i++) {
        cJSON *obj = NULL;
        int line = 0;
        int rc = jsonl_next(r, &obj, &line, &err);
        if (rc != 1) fail_msg("record %d: rc %d: %s", i, rc, err.msg);
        assert_int_equal(line, lines[i]);
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(obj, "v")->valueint, values[i]);
        cJSON_Delete(obj);
    }
    cJSON *obj = NULL;
    assert_int_equal(jsonl_next(r, &obj, NULL, &err), 0);
    assert_null(obj);
    assert_int_equal(jsonl_next(r, &obj, NULL, &err), 0);  /* stays at the end */
    jsonl_close(r);
}

/* Expects jsonl_next to fail on some line; returns the message. */
static const char *expect_failure(const char *path, Err *err) {
    JsonlReader *r = jsonl_open(path, err);
    if (!r) return err->msg;
    cJSON *obj;
    int rc;
    while ((rc = jsonl_next(r, &obj, NULL, err)) == 1) cJSON_Delete(obj);
    jsonl_close(r);
    assert_int_equal(rc, -1);
    return err->msg;
}

/* Comments (also indented), blank and whitespace-only lines, CRLF endings
   and a last line without a newline. */
static const char mixed_text[] =
    "# a comment line\n"
    "\n"
    "{\"v\": 1}\r\n"
    "   \r\n"
    "  # an indented comment\n"
    "{\"v\": 2, \"s\": \"a # inside a string\"}\n"
    "\t\n"
    "{\"v\": 3}";
static const int mixed_lines[] = {3, 6, 8};
static const int mixed_values[] = {1, 2, 3};

/* ---------------------------------------------------------------- reading */

static void test_plain_with_comments_blank_lines_and_crlf(void **state) {
    (void)state;
    expect_records(write_plain("mixed.jsonl", mixed_text, strlen(mixed_text)), mixed_lines, mixed_values, 3);
}

static void test_gzip_by_suffix(void **state) {
    (void)state;
    expect_records(write_gzip("mixed.jsonl.gz", mixed_text, strlen(mixed_text)), mixed_lines, mixed_values, 3);
}

static void test_gzip_detected_by_magic_without_suffix(void **state) {
    (void)state;
    expect_records(write_gzip("mixed_gz_inside.jsonl", mixed_text, strlen(mixed_text)), mixed_lines, mixed_values,
                   3);
}

static void test_byte_order_mark_is_skipped(void **state) {
    (void)state;
    const char text[] = "\xef\xbb\xbf{\"v\": 7}\n";
    const int lines[] = {1}, values[] = {7};
    expect_records(write_plain("bom.jsonl", text, strlen(text)), lines, values, 1);
}

static void test_empty_file_has_no_records(void **state) {
    (void)state;
    expect_records(write_plain("empty.jsonl", "", 0), NULL, NULL, 0);
    expect_records(write_plain("comments.jsonl", "# only\n\n#this\n", 14), NULL, NULL, 0);
}

/* A file of three lines: a 2.5 MB string, a short line, a 1.2 MB string. */
static char *long_lines_text(size_t *len) {
    const size_t first = 2500000, third = 1200000;
    char *text = malloc(first + third + 200);
    size_t o = 0;
    o += (size_t)sprintf(text + o, "{\"v\": 1, \"s\": \"");
    memset(text + o, 'x', first);
    o += first;
    o += (size_t)sprintf(text + o, "\"}\n{\"v\": 2}\r\n{\"v\": 3, \"s\": \"");
    memset(text + o, 'y', third);
    o += third;
    o += (size_t)sprintf(text + o, "\"}\n");
    *len = o;
    return text;
}

static void check_long_lines(const char *path) {
    Err err = {{0}};
    JsonlReader *r = jsonl_open(path, &err);
    if (!r) fail_msg("%s", err.msg);
    const size_t expected_len[] = {2500000, 0, 1200000};
    for (int i = 0; i < 3; i++) {
        cJSON *obj;
        int line;
        if (jsonl_next(r, &obj, &line, &err) != 1) fail_msg("%s", err.msg);
        assert_int_equal(line, i + 1);
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(obj, "v")->valueint, i + 1);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(obj, "s");
        assert_int_equal(s ? strlen(s->valuestring) : 0, expected_len[i]);
        cJSON_Delete(obj);
    }
    cJSON *obj;
    assert_int_equal(jsonl_next(r, &obj, NULL, &err), 0);
    jsonl_close(r);
}

static void test_lines_longer_than_a_megabyte(void **state) {
    (void)state;
    size_t len;
    char *text = long_lines_text(&len);
    check_long_lines(write_plain("long.jsonl", text, len));
    check_long_lines(write_gzip("long.jsonl.gz", text, len));
    free(text);
}

/* ---------------------------------------------------------------- errors */

static void test_invalid_json_names_file_line_and_column(void **state) {
    (void)state;
    const char text[] = "{\"v\": 1}\n# comment\n{\"v\": 2,, \"w\": 3}\n{\"v\": 4}\n";
    const char *path = write_plain("bad.jsonl", text, strlen(text));
    char expected[600];
    snprintf(expected, sizeof expected, "%s:3: not valid JSON", path);
    Err err = {{0}};
    const char *msg = expect_failure(path, &err);
    assert_contains(msg, expected);
    assert_contains(msg, "column ");  /* where cJSON gave up, near the doubled comma */
}

static void test_invalid_json_in_gzip_names_line(void **state) {
    (void)state;
    const char text[] = "{\"v\": 1}\n\n\n{oops}\n";
    const char *path = write_gzip("bad.jsonl.gz", text, strlen(text));
    char expected[600];
    snprintf(expected, sizeof expected, "%s:4: not valid JSON", path);
    Err err = {{0}};
    assert_contains(expect_failure(path, &err), expected);
}

static void test_non_object_lines_are_errors(void **state) {
    (void)state;
    Err err = {{0}};
    const char *path = write_plain("array.jsonl", "{\"v\": 1}\n[1, 2]\n", 16);
    const char *msg = expect_failure(path, &err);
    assert_contains(msg, ":2: expected a JSON object");
    assert_contains(msg, "an array");
    assert_contains(expect_failure(write_plain("number.jsonl", "42\n", 3), &err), ":1: expected a JSON object");
}

static void test_text_after_the_object_is_an_error(void **state) {
    (void)state;
    Err err = {{0}};
    const char *msg = expect_failure(write_plain("trail.jsonl", "{\"v\": 1} {\"v\": 2}\n", 19), &err);
    assert_contains(msg, "trail.jsonl:1:");
    assert_contains(msg, "unexpected text after the value at column 10");
}

static void test_missing_file(void **state) {
    (void)state;
    Err err = {{0}};
    const char *path = temp_path("does-not-exist.jsonl");
    assert_null(jsonl_open(path, &err));
    assert_contains(err.msg, path);
    assert_contains(err.msg, "No such file");
    Err err2 = {{0}};
    assert_null(read_text_file(path, NULL, &err2));
    assert_contains(err2.msg, path);
}

static void test_directory_is_refused(void **state) {
    (void)state;
    Err err = {{0}};
    assert_null(jsonl_open(temp_dir, &err));
    assert_contains(err.msg, "is a directory");
}

static void test_gz_name_without_gzip_data_is_refused(void **state) {
    (void)state;
    Err err = {{0}};
    const char *path = write_plain("fake.jsonl.gz", "{\"v\": 1}\n", 9);
    assert_null(jsonl_open(path, &err));
    assert_contains(err.msg, path);
    assert_contains(err.msg, "not a gzip file");
}

static void test_truncated_gzip_is_an_error(void **state) {
    (void)state;
    /* many distinct lines so that the compressed stream is long */
    char *text = malloc(1 << 20);
    size_t o = 0;
    for (int i = 0; i < 20000; i++) o += (size_t)sprintf(text + o, "{\"v\": %d, \"h\": %u}\n", i, i * 2654435761u);
    const char *path = write_gzip("cut.jsonl.gz", text, o);
    free(text);
    FILE *f = fopen(path, "rb");
    static unsigned char compressed[1 << 20];
    size_t n = fread(compressed, 1, sizeof compressed, f);
    fclose(f);
    char cut_path[600];
    snprintf(cut_path, sizeof cut_path, "%s", write_plain("cut.jsonl.gz", compressed, n / 2));
    Err err = {{0}};
    const char *msg = expect_failure(cut_path, &err);
    assert_contains(msg, cut_path);
    assert_contains(msg, "truncated");
    Err err2 = {{0}};
    assert_null(read_text_file(cut_path, NULL, &err2));
    assert_contains(err2.msg, "truncated");
}

/* ---------------------------------------------------------------- whole files */

static void test_read_text_file_plain_and_gzip(void **state) {
    (void)state;
    size_t len = 0;
    Err err = {{0}};
    char *plain = read_text_file(write_plain("t.txt", mixed_text, strlen(mixed_text)), &len, &err);
    assert_non_null(plain);
    assert_int_equal(len, strlen(mixed_text));
    assert_string_equal(plain, mixed_text);
    free(plain);
    char *unzipped = read_text_file(write_gzip("t.txt.gz", mixed_text, strlen(mixed_text)), &len, &err);
    assert_non_null(unzipped);
    assert_int_equal(len, strlen(mixed_text));
    assert_string_equal(unzipped, mixed_text);
    free(unzipped);
    char *empty = read_text_file(write_plain("e.txt", "", 0), NULL, NULL);  /* len and err may be NULL */
    assert_non_null(empty);
    assert_string_equal(empty, "");
    free(empty);
}

static void test_read_text_file_large_gzip(void **state) {
    (void)state;
    size_t len, got_len = 0;
    char *text = long_lines_text(&len);
    Err err = {{0}};
    char *got = read_text_file(write_gzip("big.txt.gz", text, len), &got_len, &err);
    assert_non_null(got);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, text, len);
    free(got);
    free(text);
}

/* ---------------------------------------------------------------- SHA-256 */

static void expect_sha256(const void *data, size_t len, const char *hex) {
    char out[65];
    sha256_hex(data, len, out);
    assert_string_equal(out, hex);
}

static void test_sha256_standard_vectors(void **state) {
    (void)state;
    expect_sha256("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect_sha256("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    expect_sha256(m448, strlen(m448), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
                       "mnopqrstnopqrstu";
    expect_sha256(m896, strlen(m896), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    char *million = malloc(1000000);
    memset(million, 'a', 1000000);
    expect_sha256(million, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(million);
}

/* Messages whose padding falls on either side of a block boundary
   (digests from Python's hashlib). */
static void test_sha256_padding_boundaries(void **state) {
    (void)state;
    static const struct {
        size_t len;
        const char *hex;
    } cases[] = {
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
        {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
        {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
        {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
    };
    char a[128];
    memset(a, 'a', sizeof a);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) expect_sha256(a, cases[i].len, cases[i].hex);
}

static void test_sha256_incremental_equals_one_shot(void **state) {
    (void)state;
    Sha256 h;
    sha256_init(&h);
    char chunk[7];
    memset(chunk, 'a', sizeof chunk);
    size_t fed = 0;
    while (fed < 1000000) {  /* odd-sized pieces straddle every block boundary */
        size_t n = 1000000 - fed < sizeof chunk ? 1000000 - fed : sizeof chunk;
        sha256_update(&h, chunk, n);
        fed += n;
    }
    uint8_t digest[32];
    sha256_final(&h, digest);
    char hex[65];
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_with_comments_blank_lines_and_crlf),
        cmocka_unit_test(test_gzip_by_suffix),
        cmocka_unit_test(test_gzip_detected_by_magic_without_suffix),
        cmocka_unit_test(test_byte_order_mark_is_skipped),
        cmocka_unit_test(test_empty_file_has_no_records),
        cmocka_unit_test(test_lines_longer_than_a_megabyte),
        cmocka_unit_test(test_invalid_json_names_file_line_and_column),
        cmocka_unit_test(test_invalid_json_in_gzip_names_line),
        cmocka_unit_test(test_non_object_lines_are_errors),
        cmocka_unit_test(test_text_after_the_object_is_an_error),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_directory_is_refused),
        cmocka_unit_test(test_gz_name_without_gzip_data_is_refused),
        cmocka_unit_test(test_truncated_gzip_is_an_error),
        cmocka_unit_test(test_read_text_file_plain_and_gzip),
        cmocka_unit_test(test_read_text_file_large_gzip),
        cmocka_unit_test(test_sha256_standard_vectors),
        cmocka_unit_test(test_sha256_padding_boundaries),
        cmocka_unit_test(test_sha256_incremental_equals_one_shot),
    };
    return cmocka_run_group_tests(tests, make_temp_dir, remove_temp_dir);
}
