/* test_tokenizer.c: unit tests for engine/tokenizer.c.

   The expected ids below come from the Hugging Face `tokenizers` library
   (0.23) run on the same tokenizer.json files; tests/tokenizer_vs_hf.py does
   that comparison at scale. A small "mini" tokenizer is written to a temp dir
   so the BPE rules are checked without any fixture; the project's own
   tokenizer (models/tokenizer) and, when present, the Llama-2 and Mistral
   fixtures ($HYMEVAL_SHARED/fixtures) are checked too. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tokenizer.h"

#define LEN(a) (sizeof(a) / sizeof *(a))
#define SP "\xe2\x96\x81" /* "▁" */

/* ---------------------------------------------------------------------------
   Paths and temp files */

static char temp_root[256];
static char *created[256]; /* files and dirs made here, removed in reverse */
static size_t n_created;

static const char *source_root(void) {
    const char *root = getenv("HYMEVAL_SOURCE_ROOT");
    return root && *root ? root : ".";
}

static void fixture_path(char *out, size_t cap, const char *name) {
    const char *shared = getenv("HYMEVAL_SHARED");
    if (shared && *shared) snprintf(out, cap, "%s/fixtures/%s", shared, name);
    else snprintf(out, cap, "%s/../shared/fixtures/%s", source_root(), name);
}

static void remember(const char *path) {
    if (n_created < LEN(created)) created[n_created++] = strdup(path);
}

/* Writes text to temp_root/dir/file (making dir) and returns the dir. */
static const char *write_temp(const char *dir, const char *file, const char *text) {
    static char dir_path[512];
    char file_path[768];
    snprintf(dir_path, sizeof dir_path, "%s/%s", temp_root, dir);
    if (mkdir(dir_path, 0700) == 0) remember(dir_path);
    snprintf(file_path, sizeof file_path, "%s/%s", dir_path, file);
    FILE *f = fopen(file_path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    remember(file_path);
    return dir_path;
}

static int make_temp_root(void **state) {
    (void)state;
    snprintf(temp_root, sizeof temp_root, "/tmp/hymeval-test-tok-XXXXXX");
    return mkdtemp(temp_root) ? 0 : -1;
}

static int remove_temp_root(void **state) {
    (void)state;
    while (n_created) {
        char *path = created[--n_created];
        remove(path);
        free(path);
    }
    return rmdir(temp_root);
}

/* ---------------------------------------------------------------------------
   The mini tokenizer: Llama-2's layout with a handful of pieces.
   ids: <unk> 0, <s> 1, </s> 2, <0x00>..<0xFF> 3..258, then PIECES from 259. */

static const char *const PIECES[] = {SP, "a", "b", "c", "aa", "ab", "bc", SP "a", "abc", SP "aa", SP "b"};
enum { P_SP = 259, P_A, P_B, P_C, P_AA, P_AB, P_BC, P_SPA, P_ABC, P_SPAA, P_SPB };
#define BYTE(b) (3 + (b))

#define LLAMA_NORMALIZER                                                                                   \
    "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"" SP "\"},"          \
    " {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"" SP "\"}]}"
#define LLAMA_DECODER                                                                                      \
    "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": {\"String\": \"" SP "\"}," \
    " \"content\": \" \"}, {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"},"                            \
    " {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}]}"
#define BOS_TEMPLATE                                                                                       \
    "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}," \
    " {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"pair\": [],"                                      \
    " \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [1], \"tokens\": [\"<s>\"]}}}"
#define SPECIAL_TOKENS                                                                                        \
    "[{\"id\": 0, \"content\": \"<unk>\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false,"      \
    " \"normalized\": false, \"special\": true}, {\"id\": 1, \"content\": \"<s>\", \"single_word\": false,"   \
    " \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}, {\"id\": 2,"          \
    " \"content\": \"</s>\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false,"                  \
    " \"normalized\": false, \"special\": true}]"
#define MODEL_OPTIONS                                                                                     \
    "\"type\": \"BPE\", \"dropout\": null, \"unk_token\": \"<unk>\", \"continuing_subword_prefix\": null," \
    " \"end_of_word_suffix\": null, \"fuse_unk\": true, \"byte_fallback\": true"
#define MERGES "[\"a a\", \"b c\", \"" SP " a\", \"a b\", \"ab c\", \"" SP "a a\", \"" SP " b\"]"

/* Each field is the JSON text of that part; NULL takes the default above. */
typedef struct {
    const char *added_tokens, *normalizer, *pre_tokenizer, *post_processor, *decoder;
    const char *model_options, *merges, *extra_vocab;
} Mini;

static char *mini_json(const Mini *m) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    fprintf(f, "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": %s,\n",
            m->added_tokens ? m->added_tokens : SPECIAL_TOKENS);
    fprintf(f, "\"normalizer\": %s,\n\"pre_tokenizer\": %s,\n\"post_processor\": %s,\n\"decoder\": %s,\n",
            m->normalizer ? m->normalizer : LLAMA_NORMALIZER, m->pre_tokenizer ? m->pre_tokenizer : "null",
            m->post_processor ? m->post_processor : BOS_TEMPLATE, m->decoder ? m->decoder : LLAMA_DECODER);
    fprintf(f, "\"model\": {%s, \"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2",
            m->model_options ? m->model_options : MODEL_OPTIONS);
    for (int b = 0; b < 256; b++) fprintf(f, ", \"<0x%02X>\": %d", b, BYTE(b));
    for (size_t i = 0; i < LEN(PIECES); i++) fprintf(f, ", \"%s\": %zu", PIECES[i], P_SP + i);
    fprintf(f, "%s}, \"merges\": %s}}\n", m->extra_vocab ? m->extra_vocab : "", m->merges ? m->merges : MERGES);
    fclose(f);
    return text;
}

static Tokenizer *load_text(const char *dir, const char *json, Err *err) {
    const char *path = write_temp(dir, "tokenizer.json", json);
    return tokenizer_load(path, err);
}

static Tokenizer *load_mini(const char *dir, const Mini *m) {
    char *json = mini_json(m);
    Err err = {{0}};
    Tokenizer *tok = load_text(dir, json, &err);
    free(json);
    if (!tok) fail_msg("loading the mini tokenizer %s failed: %s", dir, err.msg);
    return tok;
}

static void print_ids(const char *label, const int32_t *ids, size_t n) {
    fprintf(stderr, "%s [", label);
    for (size_t i = 0; i < n; i++) fprintf(stderr, "%s%d", i ? ", " : "", (int)ids[i]);
    fprintf(stderr, "]\n");
}

static void check_ids(const Tokenizer *tok, const char *text, size_t len, int add_bos, const int32_t *expected,
                      size_t n_expected) {
    int32_t *ids = NULL;
    size_t n = 0;
    Err err = {{0}};
    if (tokenizer_encode(tok, text, len, add_bos, &ids, &n, &err)) fail_msg("encode failed: %s", err.msg);
    bool same = n == n_expected && (n == 0 || memcmp(ids, expected, n * sizeof *ids) == 0);
    if (!same) {
        fprintf(stderr, "text: \"%.*s\"\n", (int)len, text);
        print_ids("expected", expected, n_expected);
        print_ids("got     ", ids, n);
    }
    free(ids);
    assert_true(same);
}

#define EXPECT_IDS(tok, text, add_bos, ...)                                                    \
    do {                                                                                        \
        const int32_t want_[] = {__VA_ARGS__};                                                  \
        check_ids(tok, text, strlen(text), add_bos, want_, LEN(want_));                         \
    } while (0)
#define EXPECT_NO_IDS(tok, text, add_bos) check_ids(tok, text, strlen(text), add_bos, NULL, 0)

static void check_decode(const Tokenizer *tok, const int32_t *ids, size_t n, int skip, const char *expected,
                         size_t expected_len) {
    size_t len = 0;
    char *text = tokenizer_decode_len(tok, ids, n, skip, &len);
    assert_non_null(text);
    if (len != expected_len || memcmp(text, expected, len) != 0)
        fail_msg("decode gave \"%s\" (%zu bytes), expected \"%s\" (%zu)", text, len, expected, expected_len);
    assert_int_equal(text[len], '\0');
    free(text);
}

#define EXPECT_DECODE(tok, skip, expected, ...)                                                 \
    do {                                                                                        \
        const int32_t ids_[] = {__VA_ARGS__};                                                   \
        check_decode(tok, ids_, LEN(ids_), skip, expected, strlen(expected));                  \
    } while (0)

/* Encodes without BOS, decodes skipping specials, expects the text back. */
static void check_round_trip(const Tokenizer *tok, const char *text, size_t len) {
    int32_t *ids;
    size_t n;
    Err err;
    assert_int_equal(tokenizer_encode(tok, text, len, 0, &ids, &n, &err), 0);
    check_decode(tok, ids, n, 1, text, len);
    free(ids);
}

/* ---------------------------------------------------------------------------
   BPE rules on the mini tokenizer */

static void test_mini_merges(void **state) {
    (void)state;
    Tokenizer *tok = load_mini("mini", &(Mini){0});
    assert_int_equal(tokenizer_vocab_size(tok), P_SPB + 1);
    /* Equal ranks merge leftmost first: "▁aaa" -> ▁ aa a, never ▁a aa. */
    EXPECT_IDS(tok, "aaa", 0, P_SP, P_AA, P_A);
    EXPECT_IDS(tok, "aaaa", 0, P_SP, P_AA, P_AA);
    /* Lower rank first: "b c" (1) beats "▁ a" (2) beats "a b" (3). */
    EXPECT_IDS(tok, "abc", 0, P_SPA, P_BC);
    EXPECT_IDS(tok, "aabc", 0, P_SP, P_AA, P_BC);
    EXPECT_IDS(tok, "abcabc", 0, P_SPA, P_BC, P_A, P_BC);
    EXPECT_IDS(tok, "ab ab", 0, P_SPA, P_B, P_SPA, P_B);
    EXPECT_IDS(tok, "a  b", 0, P_SPA, P_SP, P_SPB);
    /* Not in the vocabulary: the character's UTF-8 bytes. */
    EXPECT_IDS(tok, "x", 0, P_SP, BYTE('x'));
    EXPECT_IDS(tok, "\xc3\xa9", 0, P_SP, BYTE(0xC3), BYTE(0xA9));
    /* BOS: the template adds it by default. */
    EXPECT_IDS(tok, "ab", -1, 1, P_SPA, P_B);
    EXPECT_IDS(tok, "ab", 1, 1, P_SPA, P_B);
    EXPECT_IDS(tok, "", -1, 1);
    EXPECT_NO_IDS(tok, "", 0);
    assert_int_equal(tokenizer_adds_bos(tok), 1);
    assert_int_equal(tokenizer_bos_id(tok), 1);
    assert_int_equal(tokenizer_eos_id(tok), 2);
    tokenizer_free(tok);
}

static void test_mini_special_tokens_in_text(void **state) {
    (void)state;
    Tokenizer *tok = load_mini("mini", &(Mini){0});
    /* Cut out of the raw text; each piece between is normalised on its own,
       so it gets its own "▁" prefix. */
    EXPECT_IDS(tok, "<s>ab</s>", 0, 1, P_SPA, P_B, 2);
    EXPECT_IDS(tok, "ab<s>", 0, P_SPA, P_B, 1);
    EXPECT_IDS(tok, "ab<s>ab", 0, P_SPA, P_B, 1, P_SPA, P_B);
    EXPECT_IDS(tok, "<s><s>", 0, 1, 1);
    EXPECT_IDS(tok, "<unk>", 0, 0);
    /* Not quite a special token: plain text. */
    EXPECT_IDS(tok, "<s", 0, P_SP, BYTE('<'), BYTE('s'));
    assert_int_equal(tokenizer_lookup(tok, "<s>"), 1);
    assert_int_equal(tokenizer_lookup(tok, SP "aa"), P_SPAA);
    assert_int_equal(tokenizer_lookup(tok, "zzz"), -1);
    assert_string_equal(tokenizer_piece(tok, P_ABC), "abc");
    assert_null(tokenizer_piece(tok, -1));
    assert_null(tokenizer_piece(tok, 100000));
    tokenizer_free(tok);
}

static void test_mini_unknown_characters(void **state) {
    (void)state;
    const char *fuse = "\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": true, \"byte_fallback\": false";
    const char *apart_ = "\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": false, \"byte_fallback\": false";
    Tokenizer *fused = load_mini("unk-fused", &(Mini){.model_options = fuse});
    EXPECT_IDS(fused, "xyz a", 0, P_SP, 0, P_SPA);
    EXPECT_IDS(fused, "\xc3\xa9\xc3\xa9", 0, P_SP, 0);
    tokenizer_free(fused);
    Tokenizer *apart = load_mini("unk-apart", &(Mini){.model_options = apart_});
    EXPECT_IDS(apart, "xyz a", 0, P_SP, 0, 0, 0, P_SPA);
    tokenizer_free(apart);
}

static void test_mini_metaspace(void **state) {
    (void)state;
    const char *pre = "{\"type\": \"Metaspace\", \"replacement\": \"" SP "\", \"prepend_scheme\": \"first\","
                      " \"split\": true}";
    Tokenizer *tok = load_mini("metaspace", &(Mini){.normalizer = "null", .pre_tokenizer = pre});
    EXPECT_IDS(tok, "aaa ab", 0, P_SP, P_AA, P_A, P_SPA, P_B);
    /* "first": only the start of the whole text gets a "▁". */
    EXPECT_IDS(tok, "ab<s>ab", 0, P_SPA, P_B, 1, P_AB);
    EXPECT_IDS(tok, " a", 0, P_SPA);
    tokenizer_free(tok);
}

static void test_mini_decode(void **state) {
    (void)state;
    Tokenizer *tok = load_mini("mini", &(Mini){0});
    EXPECT_DECODE(tok, 0, "<s> ab", 1, P_SPA, P_B);
    EXPECT_DECODE(tok, 1, "ab", 1, P_SPA, P_B);
    EXPECT_DECODE(tok, 0, "ab</s>", P_SPA, P_B, 2);
    /* Byte runs: valid UTF-8 joins up; otherwise one U+FFFD per byte of the run. */
    EXPECT_DECODE(tok, 0, "\xe4\xbd\xa0", BYTE(0xE4), BYTE(0xBD), BYTE(0xA0));
    EXPECT_DECODE(tok, 0, "a\xef\xbf\xbd\xef\xbf\xbd", P_A, BYTE(0xE4), BYTE(0xBD));
    EXPECT_DECODE(tok, 0, "\xef\xbf\xbd\xef\xbf\xbd", BYTE('A'), BYTE(0xE4));
    EXPECT_DECODE(tok, 0, "\xef\xbf\xbd" "a", BYTE(0xFF), P_A);
    /* The Strip decoder removes one leading space only. */
    EXPECT_DECODE(tok, 0, " a", P_SP, P_SPA);
    /* Unknown ids are dropped, as the library does. */
    EXPECT_DECODE(tok, 0, "a", -7, 99999, P_SPA);
    EXPECT_DECODE(tok, 1, "", 0);
    EXPECT_DECODE(tok, 0, "<unk>", 0);
    check_decode(tok, NULL, 0, 0, "", 0);
    /* NUL bytes survive through the _len variant. */
    static const int32_t nul[] = {BYTE(0), P_A, BYTE(0)};
    check_decode(tok, nul, LEN(nul), 0, "\0a\0", 3);
    char *plain = tokenizer_decode(tok, nul + 1, 1, 0);
    assert_string_equal(plain, "a");
    free(plain);
    tokenizer_free(tok);
}

static void test_mini_round_trips(void **state) {
    (void)state;
    Tokenizer *tok = load_mini("mini", &(Mini){0});
    const char *texts[] = {"abc", "a b c", "  leading", "trailing  ", "\xf0\x9f\x98\x80 emoji", "tab\there",
                           "line\nbreak", "\xe6\x97\xa5\xe6\x9c\xac", "", "x"};
    for (size_t i = 0; i < LEN(texts); i++) check_round_trip(tok, texts[i], strlen(texts[i]));
    check_round_trip(tok, "a\0b", 3);
    tokenizer_free(tok);
}

static void test_invalid_utf8(void **state) {
    (void)state;
    Tokenizer *tok = load_mini("mini", &(Mini){0});
    /* Not representable in Python: each stray byte becomes its own byte token. */
    EXPECT_IDS(tok, "\xff\xfe" "a", 0, P_SP, BYTE(0xFF), BYTE(0xFE), P_A);
    EXPECT_IDS(tok, "a\xc3", 0, P_SPA, BYTE(0xC3));
    EXPECT_IDS(tok, "\xed\xa0\x80", 0, P_SP, BYTE(0xED), BYTE(0xA0), BYTE(0x80)); /* a surrogate */
    EXPECT_IDS(tok, "\xc0\xaf", 0, P_SP, BYTE(0xC0), BYTE(0xAF));                 /* overlong "/" */
    char all[256];
    for (int i = 0; i < 256; i++) all[i] = (char)i;
    int32_t *ids;
    size_t n;
    Err err;
    assert_int_equal(tokenizer_encode(tok, all, sizeof all, 1, &ids, &n, &err), 0);
    assert_true(n > 256);
    free(ids);
    assert_int_equal(tokenizer_encode(tok, NULL, 0, 0, &ids, &n, &err), 0);
    assert_int_equal(n, 0);
    free(ids);
    assert_int_equal(tokenizer_encode(tok, NULL, 5, 0, &ids, &n, &err), -1);
    tokenizer_free(tok);
}

static void test_config_json(void **state) {
    (void)state;
    char *json = mini_json(&(Mini){0});
    write_temp("config", "tokenizer_config.json",
               "{\"add_bos_token\": false, \"bos_token\": {\"content\": \"</s>\", \"lstrip\": false},"
               " \"eos_token\": \"<unk>\"}");
    Err err = {{0}};
    Tokenizer *tok = load_text("config", json, &err);
    assert_non_null(tok);
    assert_int_equal(tokenizer_adds_bos(tok), 0);
    assert_int_equal(tokenizer_bos_id(tok), 2);
    assert_int_equal(tokenizer_eos_id(tok), 0);
    EXPECT_IDS(tok, "ab", -1, P_SPA, P_B);
    EXPECT_IDS(tok, "ab", 1, 1, P_SPA, P_B); /* explicit: the template's BOS */
    tokenizer_free(tok);
    /* Given the file rather than its directory, the config beside it counts. */
    char file[600];
    snprintf(file, sizeof file, "%s/config/tokenizer.json", temp_root);
    tok = tokenizer_load(file, &err);
    assert_non_null(tok);
    assert_int_equal(tokenizer_adds_bos(tok), 0);
    tokenizer_free(tok);

    write_temp("config-bad", "tokenizer_config.json", "{\"eos_token\": 5}");
    tok = load_text("config-bad", json, &err);
    assert_null(tok);
    assert_non_null(strstr(err.msg, "tokenizer_config.json"));
    assert_non_null(strstr(err.msg, "eos_token"));
    write_temp("config-missing", "tokenizer_config.json", "{\"bos_token\": \"<nope>\"}");
    tok = load_text("config-missing", json, &err);
    assert_null(tok);
    assert_non_null(strstr(err.msg, "<nope>"));
    free(json);
}

static void test_added_token_ids(void **state) {
    (void)state;
    /* A token not in the vocabulary gets the next id after the model's
       entries, as the library assigns it (not the id written in the file). */
    Tokenizer *tok = load_mini("added",
                               &(Mini){.added_tokens = "[{\"id\": 1, \"content\": \"<s>\", \"special\": true,"
                                                       " \"normalized\": false}, {\"id\": 9999, \"content\":"
                                                       " \"<extra>\", \"special\": true, \"normalized\": false}]"});
    int32_t extra = tokenizer_lookup(tok, "<extra>");
    assert_int_equal(extra, P_SPB + 1);
    assert_int_equal(tokenizer_vocab_size(tok), P_SPB + 2);
    EXPECT_IDS(tok, "a<extra>", 0, P_SPA, P_SPB + 1);
    EXPECT_DECODE(tok, 1, "a", P_SPA, P_SPB + 1);
    EXPECT_DECODE(tok, 0, "a<extra>", P_SPA, P_SPB + 1);
    tokenizer_free(tok);
}

/* ---------------------------------------------------------------------------
   Malformed tokenizer.json files: each error names the file and the field */

typedef struct {
    const char *name;
    Mini mini;          /* used when raw is NULL */
    const char *raw;    /* the whole file */
    const char *field;  /* must appear in the message */
} BadCase;

static void test_malformed_files(void **state) {
    (void)state;
    const BadCase cases[] = {
        {"truncated", {0}, "{\"version\": \"1.0\", \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": ", "JSON"},
        {"not-an-object", {0}, "[1, 2, 3]", "object"},
        {"empty-file", {0}, "", "JSON"},
        {"missing-model", {0}, "{\"version\": \"1.0\", \"normalizer\": null}", "model"},
        {"model-not-object", {0}, "{\"model\": [1]}", "model"},
        {"missing-vocab", {0}, "{\"model\": {\"type\": \"BPE\", \"merges\": []}}", "model.vocab"},
        {"missing-merges", {0}, "{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}", "model.merges"},
        {"vocab-wrong-type", {0}, "{\"model\": {\"type\": \"BPE\", \"vocab\": [\"a\"], \"merges\": []}}",
         "model.vocab"},
        {"vocab-id-string", {0}, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"1\"}, \"merges\": []}}",
         "model.vocab[\"a\"]"},
        {"vocab-id-negative", {0}, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}",
         "model.vocab[\"a\"]"},
        {"vocab-id-fraction", {0}, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 1.5}, \"merges\": []}}",
         "model.vocab[\"a\"]"},
        {"wordpiece", {.model_options = "\"type\": \"WordPiece\""}, NULL, "model type \"WordPiece\""},
        {"merges-wrong-type", {.merges = "{\"a\": \"b\"}"}, NULL, "model.merges"},
        {"merge-number", {.merges = "[\"a a\", 7]"}, NULL, "model.merges[1]"},
        {"merge-three-parts", {.merges = "[\"a b c\"]"}, NULL, "model.merges[0]"},
        {"merge-unknown-piece", {.merges = "[\"a a\", \"zz a\"]"}, NULL, "model.merges[1] names \"zz\""},
        {"merge-unknown-result", {.merges = "[[\"c\", \"a\"]]"}, NULL, "model.merges[0] makes \"ca\""},
        {"byte-fallback-string", {.model_options = "\"type\": \"BPE\", \"byte_fallback\": \"yes\""}, NULL,
         "model.byte_fallback"},
        {"unk-not-in-vocab", {.model_options = "\"type\": \"BPE\", \"unk_token\": \"<what>\""}, NULL,
         "model.unk_token"},
        {"ignore-merges", {.model_options = "\"type\": \"BPE\", \"ignore_merges\": true"}, NULL, "model.ignore_merges"},
        {"dropout", {.model_options = "\"type\": \"BPE\", \"dropout\": 0.1"}, NULL, "model.dropout"},
        {"subword-prefix", {.model_options = "\"type\": \"BPE\", \"continuing_subword_prefix\": \"##\""}, NULL,
         "model.continuing_subword_prefix"},
        {"word-suffix", {.model_options = "\"type\": \"BPE\", \"end_of_word_suffix\": \"</w>\""}, NULL,
         "model.end_of_word_suffix"},
        {"nfkc", {.normalizer = "{\"type\": \"NFKC\"}"}, NULL, "normalizer type \"NFKC\" is not supported"},
        {"nested-nfkc", {.normalizer = "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Lowercase\"}]}"}, NULL,
         "normalizer.normalizers[0] type \"Lowercase\""},
        {"normalizer-number", {.normalizer = "3"}, NULL, "normalizer"},
        {"replace-regex",
         {.normalizer = "{\"type\": \"Replace\", \"pattern\": {\"Regex\": \" +\"}, \"content\": \"x\"}"}, NULL,
         "normalizer.pattern"},
        {"byte-level", {.pre_tokenizer = "{\"type\": \"ByteLevel\"}"}, NULL, "pre_tokenizer type \"ByteLevel\""},
        {"metaspace-scheme", {.pre_tokenizer = "{\"type\": \"Metaspace\", \"replacement\": \"_\", \"prepend_scheme\":"
                                               " \"sometimes\"}"},
         NULL, "pre_tokenizer.prepend_scheme"},
        {"metaspace-long-replacement", {.pre_tokenizer = "{\"type\": \"Metaspace\", \"replacement\": \"ab\"}"}, NULL,
         "pre_tokenizer.replacement"},
        {"decoder-wordpiece", {.decoder = "{\"type\": \"WordPiece\"}"}, NULL, "decoder type \"WordPiece\""},
        {"decoder-strip-start", {.decoder = "{\"type\": \"Strip\", \"content\": \" \", \"start\": \"1\", \"stop\": 0}"},
         NULL, "decoder.start"},
        {"post-bert", {.post_processor = "{\"type\": \"BertProcessing\"}"}, NULL, "post_processor type"},
        {"post-unknown-special", {.post_processor = "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\":"
                                                    " {\"id\": \"<x>\"}}, {\"Sequence\": {\"id\": \"A\"}}],"
                                                    " \"special_tokens\": {}}"},
         NULL, "post_processor.special_tokens[\"<x>\"]"},
        {"added-not-array", {.added_tokens = "{}"}, NULL, "added_tokens"},
        {"added-no-content", {.added_tokens = "[{\"id\": 5}]"}, NULL, "added_tokens[0].content"},
        {"added-bad-flag", {.added_tokens = "[{\"id\": 5, \"content\": \"x\", \"lstrip\": 1}]"}, NULL,
         "added_tokens[0].lstrip"},
    };
    for (size_t i = 0; i < LEN(cases); i++) {
        char *json = cases[i].raw ? strdup(cases[i].raw) : mini_json(&cases[i].mini);
        Err err = {{0}};
        Tokenizer *tok = load_text(cases[i].name, json, &err);
        free(json);
        if (tok) fail_msg("%s: loaded, but should have failed", cases[i].name);
        if (getenv("HYMEVAL_TEST_VERBOSE")) fprintf(stderr, "%-28s %s\n", cases[i].name, err.msg);
        if (!strstr(err.msg, "tokenizer.json") || !strstr(err.msg, cases[i].field))
            fail_msg("%s: message \"%s\" should name tokenizer.json and \"%s\"", cases[i].name, err.msg,
                     cases[i].field);
    }
    Err err = {{0}};
    char missing[600];
    snprintf(missing, sizeof missing, "%s/no-such-dir", temp_root);
    assert_null(tokenizer_load(missing, &err));
    assert_non_null(strstr(err.msg, "no-such-dir"));
    assert_non_null(strstr(err.msg, "tokenizer.json"));
    assert_null(tokenizer_load(NULL, &err));
}

/* ---------------------------------------------------------------------------
   The project's own tokenizer (models/tokenizer) */

static Tokenizer *load_project(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/models/tokenizer", source_root());
    Err err = {{0}};
    Tokenizer *tok = tokenizer_load(path, &err);
    if (!tok) fail_msg("%s", err.msg);
    return tok;
}

static void test_project_tokenizer(void **state) {
    (void)state;
    Tokenizer *tok = load_project();
    assert_int_equal(tokenizer_vocab_size(tok), 1024);
    assert_int_equal(tokenizer_bos_id(tok), 1);
    assert_int_equal(tokenizer_eos_id(tok), 2);
    assert_int_equal(tokenizer_adds_bos(tok), 1);
    assert_int_equal(tokenizer_lookup(tok, "<0x00>"), 3);
    assert_int_equal(tokenizer_lookup(tok, "<0x0A>"), 13);
    assert_int_equal(tokenizer_lookup(tok, "<0xFF>"), 258);
    assert_string_equal(tokenizer_piece(tok, 1), "<s>");
    /* From the library (tools/make_tokenizer.py is deterministic). */
    EXPECT_IDS(tok, "Hello world", -1, 1, 487, 362, 337, 730, 514);
    EXPECT_IDS(tok, "<s>x</s>", -1, 1, 1, 353, 346, 2);
    EXPECT_IDS(tok, "a<unk>b", 1, 1, 359, 0, 405);
    int32_t sp = tokenizer_lookup(tok, SP);
    EXPECT_IDS(tok, "\xf0\x9f\x98\x80", 0, sp, 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80);
    EXPECT_DECODE(tok, 1, "Hello world", 1, 487, 362, 337, 730, 514);
    EXPECT_DECODE(tok, 0, "<s> Hello world", 1, 487, 362, 337, 730, 514);
    const char *texts[] = {"The quick brown fox, 42% of 1,000.", "  two  spaces\n\nand\ttabs ",
                           "Gr\xc3\xbc\xc3\x9f" "e \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x91\x8b\xf0\x9f\x8f\xbd",
                           "key: value\nname: Alice\n", "\x01\x02\x1f\x7f"};
    for (size_t i = 0; i < LEN(texts); i++) check_round_trip(tok, texts[i], strlen(texts[i]));
    tokenizer_free(tok);
}

/* ---------------------------------------------------------------------------
   The Llama-2 and Mistral fixtures (skipped when ../shared is absent) */

static Tokenizer *load_fixture(const char *name) {
    char dir[1024], file[1100];
    fixture_path(dir, sizeof dir, name);
    snprintf(file, sizeof file, "%s/tokenizer.json", dir);
    if (access(file, R_OK) != 0) return NULL;
    Err err = {{0}};
    Tokenizer *tok = tokenizer_load(dir, &err);
    if (!tok) fail_msg("%s", err.msg);
    return tok;
}

static void test_llama2_fixture(void **state) {
    (void)state;
    Tokenizer *tok = load_fixture("llama2-tokenizer");
    if (!tok) {
        print_message("llama2-tokenizer fixture not found under $HYMEVAL_SHARED/fixtures: skipped\n");
        skip();
    }
    assert_int_equal(tokenizer_vocab_size(tok), 32000);
    EXPECT_IDS(tok, "Hello world", 1, 1, 15043, 3186);
    EXPECT_IDS(tok, "Hello world", 0, 15043, 3186);
    EXPECT_IDS(tok, "I believe the meaning of life is", -1, 1, 306, 4658, 278, 6593, 310, 2834, 338);
    EXPECT_IDS(tok, "Hello <s> world", -1, 1, 15043, 29871, 1, 29871, 3186);
    EXPECT_IDS(tok, " ", -1, 1, 259);
    EXPECT_IDS(tok, "", -1, 1);
    EXPECT_IDS(tok, "\xf0\x9f\x98\x80", -1, 1, 29871, 243, 162, 155, 131);
    EXPECT_IDS(tok, "tab\there", -1, 1, 4434, 12, 4150);
    EXPECT_DECODE(tok, 0, "<s> Hello world", 1, 15043, 3186);
    EXPECT_DECODE(tok, 1, "Hello world", 1, 15043, 3186);
    EXPECT_DECODE(tok, 0, " <s> ", 29871, 29871, 1, 29871);
    tokenizer_free(tok);
}

static void test_mistral_fixture(void **state) {
    (void)state;
    Tokenizer *tok = load_fixture("mistral-tokenizer");
    if (!tok) {
        print_message("mistral-tokenizer fixture not found under $HYMEVAL_SHARED/fixtures: skipped\n");
        skip();
    }
    assert_int_equal(tokenizer_adds_bos(tok), 1); /* its tokenizer_config.json says so */
    EXPECT_IDS(tok, "Hello world", -1, 1, 22557, 1526);
    tokenizer_free(tok);
}

/* ---------------------------------------------------------------------------
   Speed: 1 MB of ordinary English text */

static char *english_text(size_t size) {
    static const char *words[] = {"the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was",
                                  "with", "be", "by", "on", "not", "he", "this", "are", "or", "his", "from", "at",
                                  "which", "but", "have", "an", "had", "they", "you", "were", "their", "one", "all",
                                  "we", "can", "her", "has", "there", "been", "if", "more", "when", "will", "would",
                                  "who", "so", "no", "river", "mountain", "evaluation", "context", "window", "model",
                                  "Hymba", "token", "attention", "state", "space", "1984", "42", "quickly"};
    char *text = malloc(size + 64);
    size_t len = 0;
    uint32_t seed = 12345;
    while (len < size) {
        seed = seed * 1103515245u + 12345u;
        const char *w = words[(seed >> 16) % LEN(words)];
        const char *sep = (seed >> 8) % 17 == 0 ? ". " : (seed >> 8) % 53 == 1 ? ",\n" : " ";
        len += (size_t)sprintf(text + len, "%s%s", w, sep);
    }
    text[size] = '\0';
    return text;
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void time_encode(Tokenizer *tok, const char *name, const char *text, size_t len) {
    int32_t *ids;
    size_t n;
    Err err;
    double t0 = seconds_now();
    assert_int_equal(tokenizer_encode(tok, text, len, 1, &ids, &n, &err), 0);
    double elapsed = seconds_now() - t0;
    print_message("%s: %zu bytes -> %zu tokens in %.1f ms\n", name, len, n, elapsed * 1e3);
    assert_true(elapsed < 5.0); /* generous: CI machines vary; it is ~100x faster */
    char *back = tokenizer_decode(tok, ids, n, 1);
    assert_non_null(back);
    assert_true(strlen(back) == len && memcmp(back, text, len) == 0);
    free(back);
    free(ids);
}

static void test_speed_1mb(void **state) {
    (void)state;
    size_t size = 1 << 20;
    char *text = english_text(size);
    Tokenizer *project = load_project();
    time_encode(project, "project tokenizer, 1 MB English", text, size);
    /* No spaces at all: one long word, the BPE heap's worst case. */
    char *word = malloc(size / 4 + 1);
    for (size_t i = 0; i < size / 4; i++) word[i] = "abcdefghij"[i * 7 % 10];
    time_encode(project, "project tokenizer, 256 KB without spaces", word, size / 4);
    free(word);
    tokenizer_free(project);
    Tokenizer *llama = load_fixture("llama2-tokenizer");
    if (llama) time_encode(llama, "llama2 tokenizer, 1 MB English", text, size);
    else print_message("llama2-tokenizer fixture not found: its timing is skipped\n");
    tokenizer_free(llama);
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mini_merges),
        cmocka_unit_test(test_mini_special_tokens_in_text),
        cmocka_unit_test(test_mini_unknown_characters),
        cmocka_unit_test(test_mini_metaspace),
        cmocka_unit_test(test_mini_decode),
        cmocka_unit_test(test_mini_round_trips),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_config_json),
        cmocka_unit_test(test_added_token_ids),
        cmocka_unit_test(test_malformed_files),
        cmocka_unit_test(test_project_tokenizer),
        cmocka_unit_test(test_llama2_fixture),
        cmocka_unit_test(test_mistral_fixture),
        cmocka_unit_test(test_speed_1mb),
    };
    return cmocka_run_group_tests(tests, make_temp_root, remove_temp_root);
}
