/* test_safetensors.c: round trips through st_write_* / st_open, sharded
   checkpoints, one test per malformed input the reader must refuse (each
   checking that the message names the file and the tensor), and a seeded
   mutation loop that must never crash. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bf16.h"
#include "safetensors.h"

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static char *make_tmpdir(void) {
    char tmpl[] = "/tmp/hymeval_st_XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    return strdup(dir);
}

/* Removes dir and the plain files in it (tests never nest deeper). */
static void remove_tmpdir(char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

static char *path_in(const char *dir, const char *name) {
    static char buf[4][4096];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static void write_bytes(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(bytes, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static uint8_t *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return buf;
}

/* Writes a safetensors file by hand: length prefix, header text as given
   (unpadded), then data_len bytes of data. */
static void write_raw(const char *path, const char *header, size_t data_len) {
    size_t hlen = strlen(header);
    uint8_t *buf = calloc(8 + hlen + data_len + 1, 1);
    assert_non_null(buf);
    uint64_t n = hlen;
    memcpy(buf, &n, 8);
    memcpy(buf + 8, header, hlen);
    for (size_t i = 0; i < data_len; i++) buf[8 + hlen + i] = (uint8_t)(i * 7 + 1);
    write_bytes(path, buf, 8 + hlen + data_len);
    free(buf);
}

/* st_open must fail and its message must mention each needle given. */
static void expect_open_error(const char *path, const char *needle1, const char *needle2) {
    Err err = {{0}};
    StCheckpoint *ck = st_open(path, &err);
    if (ck) {
        st_close(ck);
        fail_msg("st_open(%s) succeeded, expected an error mentioning '%s'", path, needle1);
    }
    const char *needles[2] = {needle1, needle2};
    for (int i = 0; i < 2; i++) {
        if (needles[i] && !strstr(err.msg, needles[i]))
            fail_msg("error message lacks '%s': %s", needles[i], err.msg);
    }
}

/* Writes header + data into dir/bad.safetensors and expects st_open to
   name that file and the tensor (if given). */
static void expect_raw_error(const char *header, size_t data_len, const char *tensor,
                             const char *what) {
    char *dir = make_tmpdir();
    const char *path = path_in(dir, "bad.safetensors");
    write_raw(path, header, data_len);
    expect_open_error(path, "bad.safetensors", tensor);
    Err err = {{0}};
    assert_null(st_open(path, &err));
    if (what && !strstr(err.msg, what)) fail_msg("error message lacks '%s': %s", what, err.msg);
    remove_tmpdir(dir);
}

static uint32_t rng_state = 12345u;
static uint32_t rng_next(void) {   /* xorshift32: fixed seed, reproducible */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static float rounded(StDtype d, float v) {
    if (d == ST_BF16) return bf16_to_f32(f32_to_bf16(v));
    if (d == ST_F16) return f16_to_f32(f32_to_f16(v));
    return v;
}

static bool same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

static int64_t numel_of(const StWriteTensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

/* Every written tensor must come back with its shape and rounded values. */
static void check_tensors_match(const StCheckpoint *ck, const StWriteTensor *ts, size_t n) {
    assert_int_equal(st_count(ck), n);
    for (size_t i = 0; i < n; i++) {
        const StTensor *t = st_find(ck, ts[i].name);
        assert_non_null(t);
        assert_string_equal(t->name, ts[i].name);
        assert_int_equal(t->dtype, ts[i].dtype);
        assert_int_equal(t->ndim, ts[i].ndim);
        for (int d = 0; d < t->ndim; d++) assert_int_equal(t->shape[d], ts[i].shape[d]);
        int64_t numel = numel_of(&ts[i]);
        assert_int_equal(t->numel, numel);
        assert_int_equal(t->nbytes, (size_t)numel * (ts[i].dtype == ST_F32 ? 4 : 2));
        float *got = malloc((size_t)numel * sizeof(float) + 1);
        Err err = {{0}};
        assert_int_equal(st_to_f32(t, got, &err), 0);
        for (int64_t k = 0; k < numel; k++) {
            float want = rounded(ts[i].dtype, ts[i].values[k]);
            if (!same_bits(got[k], want))
                fail_msg("%s[%lld]: got %.9g want %.9g", ts[i].name, (long long)k, got[k], want);
        }
        free(got);
    }
}

/* ------------------------------------------------------------------ */
/* round trips                                                         */

static float vals_a[6] = {1.0f, -2.5f, 3.14159265f, 1e-30f, -0.0f, 65519.0f};
static float vals_b[5] = {1.00390625f /* 1+2^-8: tie, to even = 1 */,
                          1.01171875f /* 1+3*2^-8: tie, to even = 1+2^-6 */,
                          -7.123456f, 3.0e38f, 1e-40f};
static float vals_c[6] = {1.00048828125f /* 1+2^-11: tie -> 1 */,
                          1.00146484375f /* 1+3*2^-11: tie -> 1+2^-9 */,
                          65519.0f, 1e-7f, -0.333333f, 70000.0f /* -> inf */};
static float vals_s[1] = {42.5f};

static void fill_tensors(StWriteTensor *ts) {
    StWriteTensor t0 = {"a.f32", ST_F32, 2, {2, 3}, vals_a};
    StWriteTensor t1 = {"b.bf16", ST_BF16, 1, {5}, vals_b};
    StWriteTensor t2 = {"c.f16", ST_F16, 3, {3, 1, 2}, vals_c};
    StWriteTensor t3 = {"scalar", ST_F32, 0, {0}, vals_s};
    StWriteTensor t4 = {"empty.bf16", ST_BF16, 3, {4, 0, 2}, NULL};
    ts[0] = t0, ts[1] = t1, ts[2] = t2, ts[3] = t3, ts[4] = t4;
}

static void test_rounding_known_values(void **state) {
    (void)state;
    /* independent of the writer: what RNE must give for the tie cases */
    assert_true(same_bits(rounded(ST_BF16, vals_b[0]), 1.0f));
    assert_true(same_bits(rounded(ST_BF16, vals_b[1]), 1.015625f));
    assert_true(same_bits(rounded(ST_F16, vals_c[0]), 1.0f));
    assert_true(same_bits(rounded(ST_F16, vals_c[1]), 1.001953125f));
    assert_true(same_bits(rounded(ST_F16, 65519.0f), 65504.0f));
    assert_true(isinf(rounded(ST_F16, 70000.0f)));
}

static void test_roundtrip_single_file(void **state) {
    (void)state;
    char *dir = make_tmpdir();
    StWriteTensor ts[5];
    fill_tensors(ts);
    const char *path = path_in(dir, "x.safetensors");
    Err err = {{0}};
    assert_int_equal(st_write_file(path, ts, 5, &err), 0);

    StCheckpoint *ck = st_open(path, &err);
    if (!ck) fail_msg("%s", err.msg);
    check_tensors_match(ck, ts, 5);
    assert_null(st_find(ck, "missing"));
    assert_null(st_tensor_at(ck, 5));
    const StTensor *s = st_find(ck, "scalar");
    assert_int_equal(s->ndim, 0);
    assert_int_equal(s->numel, 1);
    assert_string_equal(st_find(ck, "b.bf16")->dtype_name, "BF16");
    assert_string_equal(st_find(ck, "c.f16")->dtype_name, "F16");
    assert_int_equal(st_find(ck, "empty.bf16")->numel, 0);
    assert_string_equal(st_find(ck, "a.f32")->file, path);
    for (size_t i = 0; i < st_count(ck); i++) assert_non_null(st_tensor_at(ck, i));
    st_close(ck);

    /* the layout promised by the writer */
    size_t n;
    uint8_t *bytes = read_bytes(path, &n);
    uint64_t hlen;
    memcpy(&hlen, bytes, 8);
    assert_int_equal(hlen % 8, 0);
    assert_int_equal(n, 8 + hlen + 6 * 4 + 5 * 2 + 6 * 2 + 4 + 0);
    char *header = strndup((const char *)bytes + 8, (size_t)hlen);
    assert_non_null(strstr(header, "\"__metadata__\":{\"format\":\"pt\"}"));
    assert_true(strstr(header, "a.f32") < strstr(header, "b.bf16")); /* given order */
    free(header);
    free(bytes);
    remove_tmpdir(dir);
}

static void test_checkpoint_dir_single(void **state) {
    (void)state;
    char *dir = make_tmpdir();
    StWriteTensor ts[5];
    fill_tensors(ts);
    Err err = {{0}};
    assert_int_equal(st_write_checkpoint(dir, ts, 5, 0, &err), 0);
    assert_int_equal(access(path_in(dir, "model.safetensors"), F_OK), 0);
    assert_int_not_equal(access(path_in(dir, "model.safetensors.index.json"), F_OK), 0);
    StCheckpoint *ck = st_open(dir, &err);
    if (!ck) fail_msg("%s", err.msg);
    check_tensors_match(ck, ts, 5);
    st_close(ck);
    remove_tmpdir(dir);
}

static void test_empty_file_and_dir(void **state) {
    (void)state;
    char *dir = make_tmpdir();
    Err err = {{0}};
    expect_open_error(dir, "model.safetensors.index.json", "model.safetensors");
    assert_int_equal(st_write_file(path_in(dir, "e.safetensors"), NULL, 0, &err), 0);
    StCheckpoint *ck = st_open(path_in(dir, "e.safetensors"), &err);
    assert_non_null(ck);
    assert_int_equal(st_count(ck), 0);
    assert_null(st_find(ck, "x"));
    st_close(ck);
    expect_open_error(path_in(dir, "nonexistent.safetensors"), "nonexistent.safetensors", NULL);
    remove_tmpdir(dir);
}

/* A hand-made file whose header length is odd, so every tensor is
   unaligned; also a dtype that loads but does not convert. */
static void test_unaligned_and_other_dtype(void **state) {
    (void)state;
    char *dir = make_tmpdir();
    const char *path = path_in(dir, "odd.safetensors");
    const char *header = "{\"u\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
                         "\"h\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[3,7]},"
                         "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[7,15]}} ";
    size_t hlen = strlen(header);
    uint8_t buf[512] = {0};
    uint64_t n = hlen;
    memcpy(buf, &n, 8);
    memcpy(buf + 8, header, hlen);
    uint8_t *data = buf + 8 + hlen;
    data[0] = 1, data[1] = 2, data[2] = 3;
    uint16_t h[2] = {f32_to_bf16(1.5f), f32_to_bf16(-2.0f)};
    float f[2] = {0.25f, 1e10f};
    memcpy(data + 3, h, 4);
    memcpy(data + 7, f, 8);
    write_bytes(path, buf, 8 + hlen + 15);

    Err err = {{0}};
    StCheckpoint *ck = st_open(path, &err);
    if (!ck) fail_msg("%s", err.msg);
    float out[2];
    assert_int_equal(st_to_f32(st_find(ck, "h"), out, &err), 0);
    assert_true(out[0] == 1.5f && out[1] == -2.0f);
    assert_int_equal(st_to_f32(st_find(ck, "f"), out, &err), 0);
    assert_true(out[0] == 0.25f && out[1] == 1e10f);
    const StTensor *u = st_find(ck, "u");
    assert_int_equal(u->dtype, ST_OTHER);
    assert_string_equal(u->dtype_name, "U8");
    assert_int_equal(st_to_f32(u, out, &err), -1);
    assert_non_null(strstr(err.msg, "'u'"));
    assert_non_null(strstr(err.msg, "U8"));
    /* tensors come back in data order */
    assert_string_equal(st_tensor_at(ck, 0)->name, "u");
    assert_string_equal(st_tensor_at(ck, 2)->name, "f");
    st_close(ck);
    remove_tmpdir(dir);
}

static void test_writer_rejects_bad_input(void **state) {
    (void)state;
    char *dir = make_tmpdir();
    float v[2] = {1, 2};
    StWriteTensor dup[2] = {{"w", ST_F32, 1, {1}, v}, {"w", ST_F32, 1, {1}, v + 1}};
    StWriteTensor other[1] = {{"w", ST_OTHER, 1, {1}, v}};
    StWriteTensor neg[1] = {{"w", ST_F32, 1, {-1}, v}};
    Err err = {{0}};
    const char *path = path_in(dir, "w.safetensors");
    assert_int_equal(st_write_file(path, dup, 2, &err), -1);
    assert_non_null(strstr(err.msg, "duplicate"));
    assert_int_equal(st_write_file(path, other, 1, &err), -1);
    assert_int_equal(st_write_file(path, neg, 1, &err), -1);
    assert_int_not_equal(access(path, F_OK), 0);   /* nothing half-written left */
    remove_tmpdir(dir);
}

/* ------------------------------------------------------------------ */
/* sharded                                                             */

#define NSHARD_T 7

static void make_shard_tensors(StWriteTensor *ts, float *pool) {
    static char names[NSHARD_T][32];
    static const int sizes[NSHARD_T] = {10, 40, 3, 64, 1, 25, 17};
    static const StDtype dtypes[3] = {ST_F32, ST_BF16, ST_F16};
    size_t off = 0;
    for (int i = 0; i < NSHARD_T; i++) {
        snprintf(names[i], sizeof names[i], "model.layers.%d.weight", i);
        for (int k = 0; k < sizes[i]; k++) pool[off + k] = (float)(i * 100 + k) / 7.0f;
        StWriteTensor t = {names[i], dtypes[i % 3], 1, {sizes[i]}, pool + off};
        ts[i] = t;
        off += (size_t)sizes[i];
    }
}

static void test_sharded_roundtrip(void **state) {
    (void)state;
    char *dir = make_tmpdir();
    StWriteTensor ts[NSHARD_T];
    float pool[256];
    make_shard_tensors(ts, pool);
    Err err = {{0}};
    assert_int_equal(st_write_checkpoint(dir, ts, NSHARD_T, 100, &err), 0);
    assert_int_equal(access(path_in(dir, "model.safetensors.index.json"), F_OK), 0);
    /* greedy packing at 100 bytes: 40 | 80+6 | 256 | 2+50 | 68 */
    assert_int_equal(access(path_in(dir, "model-00001-of-00005.safetensors"), F_OK), 0);
    assert_int_equal(access(path_in(dir, "model-00005-of-00005.safetensors"), F_OK), 0);
    assert_int_not_equal(access(path_in(dir, "model.safetensors"), F_OK), 0);

    StCheckpoint *ck = st_open(dir, &err);
    if (!ck) fail_msg("%s", err.msg);
    check_tensors_match(ck, ts, NSHARD_T);
    /* the 64-float F32 tensor exceeds 100 bytes: alone in its own shard */
    const StTensor *big = st_find(ck, "model.layers.3.weight");
    assert_non_null(strstr(big->file, "model-00003-of-00005"));
    assert_non_null(strstr(st_find(ck, "model.layers.0.weight")->file, "model-00001-of-00005"));
    assert_non_null(strstr(st_find(ck, "model.layers.5.weight")->file, "model-00004-of-00005"));
    st_close(ck);

    /* opening the index file itself works too */
    ck = st_open(path_in(dir, "model.safetensors.index.json"), &err);
    if (!ck) fail_msg("%s", err.msg);
    assert_int_equal(st_count(ck), NSHARD_T);
    st_close(ck);

    /* rewriting as a single file removes the index that would shadow it */
    assert_int_equal(st_write_checkpoint(dir, ts, 2, 0, &err), 0);
    ck = st_open(dir, &err);
    assert_non_null(ck);
    assert_int_equal(st_count(ck), 2);
    st_close(ck);
    remove_tmpdir(dir);
}

/* Writes a sharded checkpoint with 2 tensors per shard (a,b | c,d), then
   replaces the index text. */
static char *make_sharded_dir(const char *index_text) {
    char *dir = make_tmpdir();
    float v[4] = {1, 2, 3, 4};
    StWriteTensor ts[4] = {{"a", ST_F32, 1, {1}, v},
                           {"b", ST_F32, 1, {1}, v + 1},
                           {"c", ST_F32, 1, {1}, v + 2},
                           {"d", ST_F32, 1, {1}, v + 3}};
    Err err = {{0}};
    assert_int_equal(st_write_checkpoint(dir, ts, 4, 8, &err), 0);
    if (index_text)
        write_bytes(path_in(dir, "model.safetensors.index.json"), index_text,
                    strlen(index_text));
    return dir;
}

#define SH1 "model-00001-of-00002.safetensors"
#define SH2 "model-00002-of-00002.safetensors"

static void test_index_valid_baseline(void **state) {
    (void)state;
    char *dir = make_sharded_dir("{\"metadata\":{\"total_size\":999},\"weight_map\":{"
                                 "\"a\":\"" SH1 "\",\"b\":\"" SH1 "\",\"c\":\"" SH2
                                 "\",\"d\":\"" SH2 "\"}}");
    Err err = {{0}};
    StCheckpoint *ck = st_open(dir, &err);   /* total_size is not checked */
    if (!ck) fail_msg("%s", err.msg);
    assert_int_equal(st_count(ck), 4);
    st_close(ck);
    remove_tmpdir(dir);
}

static void test_index_not_json(void **state) {
    (void)state;
    char *dir = make_sharded_dir("{\"weight_map\": {\"a\": ");
    expect_open_error(dir, "model.safetensors.index.json", "JSON");
    remove_tmpdir(dir);
}

static void test_index_missing_weight_map(void **state) {
    (void)state;
    char *dir = make_sharded_dir("{\"metadata\":{\"total_size\":16}}");
    expect_open_error(dir, "model.safetensors.index.json", "weight_map");
    remove_tmpdir(dir);
}

static void test_index_missing_shard(void **state) {
    (void)state;
    char *dir = make_sharded_dir("{\"weight_map\":{\"a\":\"" SH1 "\",\"b\":\"" SH1
                                 "\",\"c\":\"" SH2 "\",\"d\":\"gone.safetensors\"}}");
    expect_open_error(dir, "gone.safetensors", "'d'");
    expect_open_error(dir, "model.safetensors.index.json", NULL);
    remove_tmpdir(dir);
}

static void test_index_tensor_in_two_shards(void **state) {
    (void)state;
    char *dir = make_sharded_dir(NULL);
    /* rewrite shard 2 so it also holds "a" */
    float v[3] = {9, 3, 4};
    StWriteTensor ts[3] = {{"a", ST_F32, 1, {1}, v}, {"c", ST_F32, 1, {1}, v + 1},
                           {"d", ST_F32, 1, {1}, v + 2}};
    Err err = {{0}};
    assert_int_equal(st_write_file(path_in(dir, SH2), ts, 3, &err), 0);
    expect_open_error(dir, "'a'", SH1);
    expect_open_error(dir, "two shards", SH2);
    remove_tmpdir(dir);
}

static void test_index_tensor_not_in_weight_map(void **state) {
    (void)state;
    char *dir = make_sharded_dir("{\"weight_map\":{\"a\":\"" SH1 "\",\"b\":\"" SH1
                                 "\",\"c\":\"" SH2 "\"}}");
    expect_open_error(dir, "'d'", SH2);
    expect_open_error(dir, "weight_map", NULL);
    remove_tmpdir(dir);
}

static void test_index_tensor_not_in_named_shard(void **state) {
    (void)state;
    char *dir = make_sharded_dir("{\"weight_map\":{\"a\":\"" SH1 "\",\"b\":\"" SH2
                                 "\",\"c\":\"" SH2 "\",\"d\":\"" SH2 "\"}}");
    expect_open_error(dir, "'b'", SH2);
    remove_tmpdir(dir);
    dir = make_sharded_dir("{\"weight_map\":{\"a\":\"" SH1 "\",\"b\":\"" SH1 "\",\"c\":\"" SH2
                           "\",\"d\":\"" SH2 "\",\"ghost\":\"" SH1 "\"}}");
    expect_open_error(dir, "'ghost'", SH1);
    remove_tmpdir(dir);
}

static void test_index_bad_shard_file(void **state) {
    (void)state;
    char *dir = make_sharded_dir(NULL);
    write_raw(path_in(dir, SH2),
              "{\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
              "\"d\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,8]}}",
              8);
    expect_open_error(dir, SH2, "'d'");
    remove_tmpdir(dir);
}

/* ------------------------------------------------------------------ */
/* malformed single files                                              */

#define T_A "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

static void test_truncated(void **state) {
    (void)state;
    char *dir = make_tmpdir();
    StWriteTensor ts[5];
    fill_tensors(ts);
    const char *full = path_in(dir, "full.safetensors");
    Err err = {{0}};
    assert_int_equal(st_write_file(full, ts, 5, &err), 0);
    size_t n;
    uint8_t *bytes = read_bytes(full, &n);
    uint64_t hlen;
    memcpy(&hlen, bytes, 8);
    const char *cut = path_in(dir, "cut.safetensors");

    size_t inside_length[] = {0, 3, 7};
    for (size_t i = 0; i < 3; i++) {
        write_bytes(cut, bytes, inside_length[i]);
        expect_open_error(cut, "cut.safetensors", "shorter than");
    }
    size_t inside_header[] = {8, 9, 8 + (size_t)hlen / 2, 8 + (size_t)hlen - 1};
    for (size_t i = 0; i < 4; i++) {
        write_bytes(cut, bytes, inside_header[i]);
        expect_open_error(cut, "cut.safetensors", "past the end");
    }
    /* data order: a.f32 (24 B), b.bf16, c.f16, scalar (last, 4 B), empty */
    write_bytes(cut, bytes, n - 2);
    expect_open_error(cut, "cut.safetensors", "'scalar'");
    write_bytes(cut, bytes, 8 + (size_t)hlen + 10);
    expect_open_error(cut, "cut.safetensors", "'a.f32'");
    expect_open_error(cut, "past end of file", NULL);
    free(bytes);
    remove_tmpdir(dir);
}

static void test_length_field_corrupt(void **state) {
    (void)state;
    char *dir = make_tmpdir();
    const char *path = path_in(dir, "len.safetensors");
    write_raw(path, "{" T_A "}", 8);
    size_t n;
    uint8_t *bytes = read_bytes(path, &n);
    uint64_t huge[] = {UINT64_MAX, 1ull << 40, 100000001};
    for (int i = 0; i < 3; i++) {
        memcpy(bytes, &huge[i], 8);
        write_bytes(path, bytes, n);
        expect_open_error(path, "len.safetensors", "header too large");
    }
    uint64_t past[] = {n - 7, 100000000};
    for (int i = 0; i < 2; i++) {
        memcpy(bytes, &past[i], 8);
        write_bytes(path, bytes, n);
        expect_open_error(path, "len.safetensors", "past the end");
    }
    free(bytes);
    remove_tmpdir(dir);
}

static void test_invalid_json(void **state) {
    (void)state;
    expect_raw_error("{\"a\":{\"dtype\":\"F32\",", 0, NULL, "JSON");
    expect_raw_error("{" T_A "} x", 8, NULL, "trailing");
    expect_raw_error("{" T_A ",}", 8, NULL, "JSON");
    expect_raw_error("[1, 2]", 0, NULL, "'{'");
    expect_raw_error(" {}", 0, NULL, "'{'");
    expect_raw_error("", 0, NULL, "'{'");
    expect_raw_error("{\"a\":\"\x01\"}", 0, NULL, "control");
    expect_raw_error("{\"\xc3\x28\":{}}", 0, NULL, "UTF-8");
    expect_raw_error("{\"\xed\xa0\x80\":{}}", 0, NULL, "UTF-8"); /* surrogate */
}

static void test_bad_entry_fields(void **state) {
    (void)state;
    expect_raw_error("{\"a\":5}", 0, "'a'", "object");
    expect_raw_error("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'a'", "dtype");
    expect_raw_error("{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'a'",
                     "dtype");
    expect_raw_error("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "'a'", "shape");
    expect_raw_error("{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, "'a'",
                     "shape");
    expect_raw_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "'a'", "data_offsets");
    expect_raw_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "'a'",
                     "data_offsets");
    expect_raw_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "'a'",
                     "shape");
    expect_raw_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8,
                     "'a'", "shape");
    expect_raw_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8,
                     "'a'", "shape");
    expect_raw_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-1,8]}}", 8,
                     "'a'", "data_offsets");
    expect_raw_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8,
                     "'a'", "data_offsets");
    expect_raw_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],"
                     "\"data_offsets\":[0,8]}}", 8, "'a'", "dimensions");
    expect_raw_error("{\"__metadata__\":{\"format\":1}," T_A "}", 8, "format", "__metadata__");
    expect_raw_error("{\"__metadata__\":[1]," T_A "}", 8, NULL, "__metadata__");
}

static void test_wrong_dtype_name(void **state) {
    (void)state;
    expect_raw_error("{\"a\":{\"dtype\":\"FP32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                     "'a'", "FP32");
    expect_raw_error("{\"a\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                     "'a'", "unknown dtype");
}

static void test_size_mismatch(void **state) {
    (void)state;
    expect_raw_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20,
                     "'w'", "24 bytes");
    expect_raw_error("{\"w\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, "'w'",
                     "span");
    /* element count overflow must not wrap around to a "matching" size */
    expect_raw_error("{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],"
                     "\"data_offsets\":[0,0]}}", 0, "'w'", "overflow");
}

static void test_overlapping_offsets(void **state) {
    (void)state;
    expect_raw_error("{" T_A ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                     12, "'b'", "overlap");
}

static void test_hole_between_tensors(void **state) {
    (void)state;
    expect_raw_error("{" T_A ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
                     20, "'b'", "hole");
    /* a hole before the first tensor */
    expect_raw_error("{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "'b'",
                     "hole");
}

static void test_trailing_bytes(void **state) {
    (void)state;
    expect_raw_error("{" T_A "}", 12, NULL, "not fully covered");
    expect_raw_error("{}", 3, NULL, "not fully covered");
}

static void test_offsets_past_eof(void **state) {
    (void)state;
    expect_raw_error("{" T_A ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                     12, "'b'", "past end of file");
    expect_raw_error("{\"b\":{\"dtype\":\"U8\",\"shape\":[1000000],"
                     "\"data_offsets\":[0,1000000]}}", 4, "'b'", "past end of file");
}

static void test_duplicate_names(void **state) {
    (void)state;
    expect_raw_error("{" T_A ",\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                     16, "'a'", "duplicate");
    expect_raw_error("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "__metadata__", "duplicate");
}

/* ------------------------------------------------------------------ */
/* mutation loop                                                       */

static void open_and_touch(const char *path) {
    Err err = {{0}};
    StCheckpoint *ck = st_open(path, &err);
    if (!ck) {
        assert_true(err.msg[0] != '\0');
        return;
    }
    for (size_t i = 0; i < st_count(ck); i++) {   /* read every byte we were given */
        const StTensor *t = st_tensor_at(ck, i);
        assert_ptr_equal(st_find(ck, t->name), t);
        volatile uint8_t sum = 0;
        for (size_t k = 0; k < t->nbytes; k++) sum += ((const uint8_t *)t->data)[k];
        (void)sum;
        if (t->dtype != ST_OTHER && t->numel < 4096) {
            float buf[4096];
            assert_int_equal(st_to_f32(t, buf, &err), 0);
        }
    }
    st_close(ck);
}

static void test_mutation_loop(void **state) {
    (void)state;
    char *dir = make_tmpdir();
    StWriteTensor ts[5];
    fill_tensors(ts);
    const char *valid = path_in(dir, "valid.safetensors");
    Err err = {{0}};
    assert_int_equal(st_write_file(valid, ts, 5, &err), 0);
    size_t n;
    uint8_t *orig = read_bytes(valid, &n);
    uint8_t *buf = malloc(n);
    uint64_t hlen;
    memcpy(&hlen, orig, 8);
    const char *mutant = path_in(dir, "mutant.safetensors");
    static const char json_chars[] = "{}[]\",:0123456789-.eE \\u";
    rng_state = 12345u;
    for (int iter = 0; iter < 4000; iter++) {
        memcpy(buf, orig, n);
        size_t len = n;
        int flips = 1 + (int)(rng_next() % 4);
        switch (iter % 4) {
        case 0:   /* random bytes in the header */
            for (int k = 0; k < flips; k++) buf[8 + rng_next() % hlen] = (uint8_t)rng_next();
            break;
        case 1:   /* JSON-significant characters in the header */
            for (int k = 0; k < flips; k++)
                buf[8 + rng_next() % hlen] = (uint8_t)json_chars[rng_next() % (sizeof json_chars - 1)];
            break;
        case 2:   /* truncation */
            len = rng_next() % n;
            break;
        default:  /* anywhere, length field included */
            for (int k = 0; k < flips; k++) buf[rng_next() % n] ^= (uint8_t)(1u << (rng_next() % 8));
            break;
        }
        write_bytes(mutant, buf, len);
        open_and_touch(mutant);
    }
    free(buf);
    free(orig);
    remove_tmpdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rounding_known_values),
        cmocka_unit_test(test_roundtrip_single_file),
        cmocka_unit_test(test_checkpoint_dir_single),
        cmocka_unit_test(test_empty_file_and_dir),
        cmocka_unit_test(test_unaligned_and_other_dtype),
        cmocka_unit_test(test_writer_rejects_bad_input),
        cmocka_unit_test(test_sharded_roundtrip),
        cmocka_unit_test(test_index_valid_baseline),
        cmocka_unit_test(test_index_not_json),
        cmocka_unit_test(test_index_missing_weight_map),
        cmocka_unit_test(test_index_missing_shard),
        cmocka_unit_test(test_index_tensor_in_two_shards),
        cmocka_unit_test(test_index_tensor_not_in_weight_map),
        cmocka_unit_test(test_index_tensor_not_in_named_shard),
        cmocka_unit_test(test_index_bad_shard_file),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_length_field_corrupt),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_bad_entry_fields),
        cmocka_unit_test(test_wrong_dtype_name),
        cmocka_unit_test(test_size_mismatch),
        cmocka_unit_test(test_overlapping_offsets),
        cmocka_unit_test(test_hole_between_tensors),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_offsets_past_eof),
        cmocka_unit_test(test_duplicate_names),
        cmocka_unit_test(test_mutation_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
