/* test_config.c: config_parse / config_load on the shipped configs, the
   values derived from the published Hymba-1.5B config (checked against
   numbers worked out by hand from docs/ARCHITECTURE.md), and one test per
   malformed config: each must be refused with a message naming the
   offending key and the `where` string given to config_parse. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "testutil.h"

#define HYMBA_15B "models/configs/hymba-1.5b.json"

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s (is HYMEVAL_SOURCE_ROOT set?)", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    assert_true(size > 0);
    char *text = malloc((size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    text[size] = 0;
    return text;
}

static char *base_text(void) { return read_text(tu_source_path(HYMBA_15B)); }

/* End of the JSON value starting at v (a string, array, object or scalar). */
static const char *json_value_end(const char *v) {
    if (*v == '"') {
        for (v++; *v && *v != '"'; v++)
            if (*v == '\\' && v[1]) v++;
        assert_true(*v == '"');
        return v + 1;
    }
    if (*v == '[' || *v == '{') {
        int depth = 0;
        for (; *v; v++) {
            if (*v == '"') {
                v = json_value_end(v) - 1;
            } else if (*v == '[' || *v == '{') {
                depth++;
            } else if ((*v == ']' || *v == '}') && --depth == 0) {
                return v + 1;
            }
        }
        fail_msg("unbalanced JSON value");
    }
    while (*v && !strchr(",}] \t\r\n", *v)) v++;
    return v;
}

static const char *skip_space(const char *p) {
    while (isspace((unsigned char)*p)) p++;
    return p;
}

/* A copy of text with the value of `"key":` replaced by value_json, or
   with the whole member (and its comma) removed when value_json is NULL.
   The key must occur exactly once in text. */
static char *json_set(const char *text, const char *key, const char *value_json) {
    char needle[128];
    snprintf(needle, sizeof needle, "\"%s\"", key);
    const char *k = strstr(text, needle);
    if (!k) fail_msg("key %s not in the base text", needle);
    if (strstr(k + 1, needle)) fail_msg("key %s occurs more than once in the base text", needle);
    const char *colon = skip_space(k + strlen(needle));
    assert_true(*colon == ':');
    const char *v = skip_space(colon + 1);
    const char *v_end = json_value_end(v);
    const char *cut_from = v, *cut_to = v_end;
    if (!value_json) {
        cut_from = k;
        cut_to = skip_space(v_end);
        assert_true(*cut_to == ','); /* the member is not the last one */
        cut_to++;
        value_json = "";
    }
    size_t head = (size_t)(cut_from - text), vlen = strlen(value_json), tail = strlen(cut_to);
    char *out = malloc(head + vlen + tail + 1);
    assert_non_null(out);
    memcpy(out, text, head);
    memcpy(out + head, value_json, vlen);
    memcpy(out + head + vlen, cut_to, tail + 1);
    return out;
}

/* The 1.5B config with one key changed (value_json NULL: removed). */
static char *mutant(const char *key, const char *value_json) {
    char *base = base_text();
    char *out = json_set(base, key, value_json);
    free(base);
    return out;
}

/* config_parse must refuse text, and its message must contain `where` and
   each of the (up to two) needles. */
static void expect_parse_error(const char *text, const char *where, const char *needle1, const char *needle2) {
    HymbaConfig cfg;
    Err err;
    memset(&err, 0, sizeof err);
    int rc = config_parse(&cfg, text, where, &err);
    if (rc == 0) fail_msg("%s: config_parse accepted it; expected an error naming %s", where, needle1);
    assert_int_equal(rc, -1);
    print_message("    refused: %s\n", err.msg);
    if (!strstr(err.msg, where)) fail_msg("error message does not name '%s': %s", where, err.msg);
    const char *needles[2] = {needle1, needle2};
    for (int i = 0; i < 2; i++)
        if (needles[i] && !strstr(err.msg, needles[i]))
            fail_msg("error message does not mention '%s': %s", needles[i], err.msg);
}

/* One key of the 1.5B config changed; must be refused naming `key_in_msg`. */
static void expect_mutant_error(const char *key, const char *value_json, const char *where, const char *key_in_msg,
                                const char *extra) {
    char *text = mutant(key, value_json);
    expect_parse_error(text, where, key_in_msg, extra);
    free(text);
}

static void parse_ok(HymbaConfig *cfg, const char *text, const char *where) {
    Err err;
    memset(&err, 0, sizeof err);
    if (config_parse(cfg, text, where, &err) != 0) fail_msg("%s: config_parse failed: %s", where, err.msg);
}

static void load_ok(HymbaConfig *cfg, const char *relative) {
    Err err;
    memset(&err, 0, sizeof err);
    if (config_load(cfg, tu_source_path(relative), &err) != 0) fail_msg("%s: config_load failed: %s", relative, err.msg);
}

static int count_owners(const HymbaConfig *c) {
    int n = 0;
    for (int l = 0; l < c->n_layers; l++) n += layer_owns_kv(c, l);
    return n;
}

/* ------------------------------------------------------------------ */
/* the shipped configs                                                 */

static void test_every_shipped_config_loads(void **state) {
    (void)state;
    char dir_path[4096];
    snprintf(dir_path, sizeof dir_path, "%s", tu_source_path("models/configs"));
    DIR *dir = opendir(dir_path);
    if (!dir) fail_msg("cannot list %s", dir_path);
    int loaded = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0) continue;
        char rel[512];
        snprintf(rel, sizeof rel, "models/configs/%s", e->d_name);
        HymbaConfig c;
        load_ok(&c, rel);
        /* internal consistency of what was derived */
        assert_int_equal(c.head_dim * c.n_heads, c.hidden_size);
        assert_int_equal(c.v_head_dim * c.n_heads, c.ssm_inner);
        assert_int_equal(c.n_heads % c.n_kv_heads, 0);
        for (int l = 0; l < c.n_layers; l++) {
            int src = c.kv_source[l];
            assert_true(src >= 0 && src <= l);
            assert_int_equal(c.kv_source[src], src); /* a source produces its own KV */
            assert_true(c.layer_kind[l] == 'h' || c.layer_kind[l] == 'a' || c.layer_kind[l] == 'm');
        }
        print_message("    %s: L=%d H=%d heads=%d/%d kv owners=%d\n", e->d_name, c.n_layers, c.hidden_size, c.n_heads,
                      c.n_kv_heads, count_owners(&c));
        loaded++;
    }
    closedir(dir);
    assert_true(loaded >= 6);
}

/* config_load takes a directory (reading config.json in it) or a .json path. */
static void test_load_by_directory(void **state) {
    (void)state;
    char *text = base_text();
    char *dir = tu_tempdir();
    assert_non_null(dir);
    assert_non_null(tu_write_file(dir, "config.json", text));
    HymbaConfig from_dir, from_file;
    Err err;
    memset(&err, 0, sizeof err);
    if (config_load(&from_dir, dir, &err) != 0) fail_msg("config_load(%s): %s", dir, err.msg);
    load_ok(&from_file, HYMBA_15B);
    assert_int_equal(from_dir.hidden_size, from_file.hidden_size);
    assert_int_equal(from_dir.n_layers, from_file.n_layers);
    assert_memory_equal(from_dir.kv_source, from_file.kv_source, sizeof from_dir.kv_source);
    assert_memory_equal(from_dir.is_global, from_file.is_global, sizeof from_dir.is_global);
    tu_rmtree(dir);
    free(dir);
    free(text);
}

static void test_load_missing_directory(void **state) {
    (void)state;
    HymbaConfig c;
    Err err;
    memset(&err, 0, sizeof err);
    const char *missing = "/nonexistent-hymeval-dir/checkpoint";
    assert_int_equal(config_load(&c, missing, &err), -1);
    print_message("    refused: %s\n", err.msg);
    assert_non_null(strstr(err.msg, missing));
    assert_non_null(strstr(err.msg, "config.json"));
}

static void test_tiny_configs(void **state) {
    (void)state;
    HymbaConfig c;

    load_ok(&c, "models/configs/tiny-attn.json"); /* attention only, sliding_window null */
    assert_int_equal(c.n_layers, 4);
    assert_int_equal(c.head_dim, 16);
    assert_int_equal(c.v_head_dim, 32);
    assert_int_equal(c.kq_norm, KQ_NORM_RMS);
    assert_int_equal(c.rope_type, ROPE_DEFAULT);
    assert_int_equal(c.tie_embeddings, 0);
    assert_int_equal(c.sliding_window, 0);
    for (int l = 0; l < 4; l++) {
        assert_int_equal(c.layer_kind[l], 'a');
        assert_int_equal(c.is_global[l], 1);
        assert_int_equal(c.kv_source[l], l - l % 2);
    }
    InProjSplit s = config_in_proj_split(&c, 0);
    assert_int_equal(s.rows, 64 + 2 * 16 + 2 * 32);
    assert_int_equal(s.x, -1);
    assert_int_equal(s.z, -1);
    s = config_in_proj_split(&c, 1);
    assert_int_equal(s.rows, 64);
    assert_int_equal(s.k, -1);

    load_ok(&c, "models/configs/tiny-mamba.json"); /* Mamba only */
    assert_int_equal(count_owners(&c), 0);
    assert_int_equal(c.mlp_act, MLP_RELU2);
    assert_int_equal(c.proj_bias, 1);
    s = config_in_proj_split(&c, 3);
    assert_int_equal(s.q, -1);
    assert_int_equal(s.x, 0);
    assert_int_equal(s.z, 128);
    assert_int_equal(s.rows, 256);

    load_ok(&c, "models/configs/tiny-mixed.json"); /* h a m h h h, no MLP */
    assert_int_equal(c.intermediate_size, 0);
    assert_int_equal(c.kq_norm, KQ_NORM_PERHEAD);
    assert_memory_equal(c.layer_kind, "hamhhh", 6);
    static const uint8_t mixed_global[6] = {0, 0, 0, 1, 1, 1};
    static const int mixed_source[6] = {0, 0, 2, 3, 3, 3};
    assert_memory_equal(c.is_global, mixed_global, 6);
    assert_memory_equal(c.kv_source, mixed_source, sizeof mixed_source);
    assert_int_equal(layer_owns_kv(&c, 2), 0); /* Mamba-only: no KV */
    assert_int_equal(count_owners(&c), 2);
    assert_int_equal(config_param_count(&c).mlp, 0);

    load_ok(&c, "models/configs/tiny-swa.json"); /* global_attn_idx [] */
    assert_int_equal(c.sliding_window, 8);
    assert_int_equal(c.is_global[0] + c.is_global[1], 0);

    load_ok(&c, "models/configs/tiny-hymba.json");
    static const int hymba_source[4] = {0, 1, 1, 3};
    assert_memory_equal(c.kv_source, hymba_source, sizeof hymba_source);
    assert_int_equal(c.is_global[0] + c.is_global[1] + c.is_global[2] + c.is_global[3], 2);
    assert_int_equal(c.is_global[3], 1);
}

/* ------------------------------------------------------------------ */
/* Hymba-1.5B derived values                                           */

static void test_hymba_15b_derived(void **state) {
    (void)state;
    HymbaConfig c;
    load_ok(&c, HYMBA_15B);
    assert_int_equal(c.hidden_size, 1600);
    assert_int_equal(c.n_layers, 32);
    assert_int_equal(c.head_dim, 64);
    assert_int_equal(c.v_head_dim, 128);
    assert_int_equal(c.ssm_inner, 3200);
    assert_int_equal(c.ssm_state, 16);
    assert_int_equal(c.ssm_conv, 4);
    assert_int_equal(c.ssm_dt_rank, 100);
    assert_int_equal(c.n_meta, 128);
    assert_int_equal(c.sliding_window, 1024);
    assert_int_equal(c.intermediate_size, 5504);
    assert_int_equal(c.rope_type, ROPE_NTK);
    assert_int_equal(c.kq_norm, KQ_NORM_NONE);
    assert_int_equal(c.mlp_act, MLP_SILU);
    assert_int_equal(c.tie_embeddings, 1);
    assert_true(fabsf(c.rms_eps - 1e-6f) < 1e-12f);

    for (int l = 0; l < 32; l++) {
        assert_int_equal(c.layer_kind[l], 'h');
        int want_global = l == 0 || l == 15 || l == 31;
        if (c.is_global[l] != want_global) fail_msg("is_global[%d] = %d", l, c.is_global[l]);
    }
    assert_int_equal(c.kv_source[0], 0);
    assert_int_equal(c.kv_source[1], 1);
    assert_int_equal(c.kv_source[2], 1);
    assert_int_equal(c.kv_source[15], 15);
    assert_int_equal(c.kv_source[16], 16);
    assert_int_equal(c.kv_source[17], 16);
    assert_int_equal(c.kv_source[18], 16);
    assert_int_equal(c.kv_source[30], 29);
    assert_int_equal(c.kv_source[31], 31);
    assert_int_equal(count_owners(&c), 17); /* 3 global + 14 sliding-window producers */

    /* ntk: base = theta * (2 * 8192 / 2048 - 1)^(dk / (dk - 2)) = 10000 * 7^(64/62) */
    double want_base = 10000.0 * pow(7.0, 64.0 / 62.0);
    double base = config_rope_base(&c);
    print_message("    rope base %.6f (expected %.6f)\n", base, want_base);
    assert_true(fabs(base - want_base) <= 1e-9 * want_base);

    /* in_proj rows: producer q k v x z, consumer q x z */
    InProjSplit p = config_in_proj_split(&c, 1);
    assert_int_equal(p.rows, 1600 + 320 + 640 + 3200 + 3200);
    assert_int_equal(p.q, 0);
    assert_int_equal(p.k, 1600);
    assert_int_equal(p.v, 1600 + 320);
    assert_int_equal(p.x, 1600 + 320 + 640);
    assert_int_equal(p.z, 1600 + 320 + 640 + 3200);
    InProjSplit g = config_in_proj_split(&c, 0); /* a global layer produces too */
    assert_int_equal(g.rows, p.rows);
    InProjSplit q = config_in_proj_split(&c, 2);
    assert_int_equal(q.rows, 1600 + 3200 + 3200);
    assert_int_equal(q.q, 0);
    assert_int_equal(q.k, -1);
    assert_int_equal(q.v, -1);
    assert_int_equal(q.x, 1600);
    assert_int_equal(q.z, 1600 + 3200);
    assert_int_equal(config_in_proj_split(&c, 18).rows, q.rows);
}

/* Worked by hand from §5 of docs/ARCHITECTURE.md (H 1600, V 32001, I 3200,
   N 16, R 100, K 4, F 5504, M 128, 17 KV producers, 15 consumers, tied):
     embed      32001 * 1600                                   =  51,201,600
     meta       128 * 1600                                     =     204,800
     attn q/k/v (17 * 2560 + 15 * 1600) rows * 1600            = 108,032,000
     ssm        32 * (2*I*H + I*K + I [conv bias] + (R+2N)*I
                      + I*R + I [dt bias] + I*N [A] + I [D])
              = 32 * 11,056,000                                = 353,792,000
     out_proj   32 * 3200 * 1600                               = 163,840,000
     mlp        32 * 3 * 5504 * 1600                           = 845,414,400
     norms      32 * (1600 input + 132 dt/B/C + 3200 + 3200 pre_avg
                      + 1600 pre_moe) + 1600 final             =     313,024
     total                                                     = 1,522,797,824 */
static void test_hymba_15b_param_count(void **state) {
    (void)state;
    HymbaConfig c;
    load_ok(&c, HYMBA_15B);
    ParamCount p = config_param_count(&c);
    print_message("    parameters: total %lld (%.4f e9): embed %lld meta %lld lm_head %lld qkv %lld ssm %lld "
                  "out %lld norms %lld mlp %lld\n",
                  (long long)p.total, p.total / 1e9, (long long)p.embed, (long long)p.meta, (long long)p.lm_head,
                  (long long)p.attn_qkv, (long long)p.ssm, (long long)p.fuse_out, (long long)p.norms,
                  (long long)p.mlp);
    assert_true(p.total >= 1520000000LL && p.total <= 1530000000LL);
    assert_int_equal(p.embed, 51201600LL);
    assert_int_equal(p.meta, 204800LL);
    assert_int_equal(p.lm_head, 0);
    assert_int_equal(p.attn_qkv, 108032000LL);
    assert_int_equal(p.ssm, 353792000LL);
    assert_int_equal(p.fuse_out, 163840000LL);
    assert_int_equal(p.mlp, 845414400LL);
    assert_int_equal(p.norms, 313024LL);
    assert_int_equal(p.total, 1522797824LL);
    assert_int_equal(p.total,
                     p.embed + p.meta + p.lm_head + p.attn_qkv + p.ssm + p.fuse_out + p.norms + p.mlp);
}

/* §6: sum over producers of slots * nkv * (dk + dv) * b_kv, plus per SSM
   layer I * (K - 1) * b_conv + I * N * 4. For the 1.5B: nkv (dk + dv) =
   5 * 192 = 960 elements per slot; 3 global producers hold M + T slots,
   14 sliding-window producers M + min(T, W + 1); 32 SSM layers. */
static double hand_cache_bytes(long T, int b_kv, int b_conv) {
    double global_slots = 128.0 + T, local_slots = 128.0 + (T < 1025 ? T : 1025);
    double kv = (3 * global_slots + 14 * local_slots) * 960.0 * b_kv;
    double ssm = 32.0 * (3200.0 * 3 * b_conv + 3200.0 * 16 * 4);
    return kv + ssm;
}

static void test_hymba_15b_cache_bytes(void **state) {
    (void)state;
    HymbaConfig c;
    load_ok(&c, HYMBA_15B);
    /* T = 8192, BF16 K/V and conv state:
       KV  (3 * 8320 + 14 * 1153) * 960 * 2 = 41102 * 1920 = 78,915,840
       SSM 32 * (3200 * 3 * 2 + 3200 * 16 * 4) = 32 * 224,000 =  7,168,000
       total 86,083,840 bytes */
    double got = config_cache_bytes(&c, 8192, 2, 2);
    print_message("    cache at 8192 tokens, 2-byte KV/conv: %.0f bytes = %.2f MB (%.2f MiB)\n", got, got / 1e6,
                  got / 1048576.0);
    assert_true(got == 86083840.0);
    assert_true(hand_cache_bytes(8192, 2, 2) == 86083840.0);
    /* below the window, and the FP32 engine's 4-byte elements */
    static const long tokens[] = {0, 1, 100, 1024, 1025, 1026, 8192};
    for (size_t i = 0; i < sizeof tokens / sizeof *tokens; i++)
        for (int b = 2; b <= 4; b += 2) {
            double want = hand_cache_bytes(tokens[i], b, b);
            double have = config_cache_bytes(&c, tokens[i], b, b);
            if (have != want) fail_msg("config_cache_bytes(T=%ld, %d, %d) = %.0f, expected %.0f", tokens[i], b, b, have, want);
        }
}

/* ------------------------------------------------------------------ */
/* malformed configs: one key of the 1.5B config changed               */

static void test_missing_hidden_size(void **state) {
    (void)state;
    expect_mutant_error("hidden_size", NULL, "mutant:no-hidden_size", "\"hidden_size\"", "missing");
}

static void test_hidden_size_string(void **state) {
    (void)state;
    expect_mutant_error("hidden_size", "\"1600\"", "mutant:hidden_size-string", "\"hidden_size\"", "integer");
}

static void test_hidden_size_not_divisible(void **state) {
    (void)state;
    expect_mutant_error("hidden_size", "1601", "mutant:hidden_size-1601", "\"hidden_size\"", "1601");
}

static void test_kv_heads_not_divisor(void **state) {
    (void)state;
    expect_mutant_error("num_key_value_heads", "4", "mutant:kv-heads-4", "\"num_key_value_heads\"", NULL);
}

static void test_num_experts(void **state) {
    (void)state;
    expect_mutant_error("num_experts", "2", "mutant:experts-2", "\"num_experts\"", NULL);
}

static void test_rope_dynamic_ntk(void **state) {
    (void)state;
    expect_mutant_error("rope_type", "\"dynamic_ntk\"", "mutant:rope-dynamic", "\"rope_type\"", "dynamic_ntk");
}

static void test_rope_yarn(void **state) {
    (void)state;
    expect_mutant_error("rope_type", "\"yarn\"", "mutant:rope-yarn", "\"rope_type\"", "yarn");
}

static void test_kq_norm_bogus(void **state) {
    (void)state;
    expect_mutant_error("kq_norm", "\"bogus\"", "mutant:kq_norm-bogus", "\"kq_norm\"", "bogus");
}

/* A layer_type list of n entries, "h" except entry `odd_at` = odd. */
static char *layer_type_list(int n, int odd_at, const char *odd) {
    char *s = malloc((size_t)n * 8 + 16);
    assert_non_null(s);
    strcpy(s, "[");
    for (int i = 0; i < n; i++) {
        strcat(s, i ? ", \"" : "\"");
        strcat(s, i == odd_at ? odd : "h");
        strcat(s, "\"");
    }
    strcat(s, "]");
    return s;
}

static void test_layer_type_wrong_length(void **state) {
    (void)state;
    char *list = layer_type_list(31, -1, NULL);
    expect_mutant_error("layer_type", list, "mutant:layer_type-31", "\"layer_type\"", "32");
    free(list);
}

static void test_layer_type_bad_kind(void **state) {
    (void)state;
    char *list = layer_type_list(32, 7, "x");
    expect_mutant_error("layer_type", list, "mutant:layer_type-x", "\"layer_type\"", "[7]");
    free(list);
}

static void test_kv_group_consumer_before_producer(void **state) {
    (void)state;
    expect_mutant_error("kv_reuse_group", "[[2, 1], [3, 4]]", "mutant:kv-order", "kv_reuse_group", NULL);
}

static void test_kv_group_layer_twice(void **state) {
    (void)state;
    expect_mutant_error("kv_reuse_group", "[[1, 2], [3, 4], [5, 2]]", "mutant:kv-twice", "kv_reuse_group", NULL);
}

static void test_kv_group_index_out_of_range(void **state) {
    (void)state;
    expect_mutant_error("kv_reuse_group", "[[1, 2], [29, 30, 32]]", "mutant:kv-range", "kv_reuse_group", NULL);
    expect_mutant_error("kv_reuse_group", "[[-1, 2]]", "mutant:kv-negative", "kv_reuse_group", NULL);
}

/* Layer 0 is global (global_attn_idx), layer 1 sliding-window. The check
   behind this message also serves kv_reuse_every_i_layer, so it names the
   other key in the conflict, global_attn_idx. */
static void test_kv_group_mixes_global_and_window(void **state) {
    (void)state;
    expect_mutant_error("kv_reuse_group", "[[0, 1, 2], [3, 4]]", "mutant:kv-global-mix", "global_attn_idx",
                        "sliding-window");
}

static void test_kv_group_with_mamba_layer(void **state) {
    (void)state;
    /* tiny-mixed: layer 2 is Mamba-only, it has no K/V to share */
    char *base = read_text(tu_source_path("models/configs/tiny-mixed.json"));
    char *text = json_set(base, "kv_reuse_group", "[[0, 1, 2]]");
    expect_parse_error(text, "mutant:kv-mamba", "layer_type", NULL);
    free(text);
    free(base);
}

static void test_kv_both_keys(void **state) {
    (void)state;
    expect_mutant_error("kv_reuse_every_i_layer", "2", "mutant:kv-both", "\"kv_reuse_group\"",
                        "\"kv_reuse_every_i_layer\"");
}

static void test_memory_tokens_interspersed(void **state) {
    (void)state;
    expect_mutant_error("memory_tokens_interspersed_every", "4", "mutant:interspersed",
                        "\"memory_tokens_interspersed_every\"", NULL);
}

static void test_sliding_window_zero(void **state) {
    (void)state;
    expect_mutant_error("sliding_window", "0", "mutant:window-0", "\"sliding_window\"", NULL);
}

/* Valid: no sliding window, so every layer is global (the KV groups stay). */
static void test_sliding_window_null(void **state) {
    (void)state;
    char *text = mutant("sliding_window", "null");
    HymbaConfig c;
    parse_ok(&c, text, "mutant:window-null");
    assert_int_equal(c.sliding_window, 0);
    for (int l = 0; l < c.n_layers; l++)
        if (c.is_global[l] != 1) fail_msg("sliding_window null: is_global[%d] = %d", l, c.is_global[l]);
    assert_int_equal(c.kv_source[2], 1);
    assert_int_equal(c.kv_source[18], 16);
    assert_int_equal(count_owners(&c), 17);
    /* every producer keeps M + T slots */
    double want = 17 * (128.0 + 8192) * 960 * 2 + 32 * (3200.0 * 3 * 2 + 3200.0 * 16 * 4);
    assert_true(config_cache_bytes(&c, 8192, 2, 2) == want);
    free(text);
}

static void test_num_memory_tokens_negative(void **state) {
    (void)state;
    expect_mutant_error("num_memory_tokens", "-1", "mutant:meta--1", "\"num_memory_tokens\"", NULL);
}

static void test_attn_hidden_size(void **state) {
    (void)state;
    expect_mutant_error("attn_hidden_size", "800", "mutant:attn_hidden-800", "\"attn_hidden_size\"", "800");
}

static void test_v_head_dim(void **state) {
    (void)state;
    expect_mutant_error("v_head_dim", "64", "mutant:v_head_dim-64", "\"v_head_dim\"", "64");
}

static void test_conv_dim_wrong_entry(void **state) {
    (void)state;
    char obj[1024] = "{";
    for (int l = 0; l < 32; l++) {
        char item[32];
        snprintf(item, sizeof item, "%s\"%d\": %d", l ? ", " : "", l, l == 5 ? 3000 : 3200);
        strcat(obj, item);
    }
    strcat(obj, "}");
    expect_mutant_error("conv_dim", obj, "mutant:conv_dim-5", "\"conv_dim\"", "\"5\"");
}

static void test_not_json(void **state) {
    (void)state;
    expect_parse_error("this is not JSON {", "mutant:not-json", "JSON", NULL);
    char *base = base_text();
    base[strlen(base) / 2] = 0; /* truncated in the middle */
    expect_parse_error(base, "mutant:truncated", "JSON", NULL);
    free(base);
}

static void test_json_array(void **state) {
    (void)state;
    expect_parse_error("[1, 2, 3]", "mutant:array", "object", NULL);
    char *base = base_text();
    size_t n = strlen(base);
    char *wrapped = malloc(n + 3);
    assert_non_null(wrapped);
    snprintf(wrapped, n + 3, "[%s]", base);
    expect_parse_error(wrapped, "mutant:wrapped", "object", NULL);
    free(wrapped);
    free(base);
}

static void test_model_type_llama(void **state) {
    (void)state;
    expect_mutant_error("model_type", "\"llama\"", "mutant:llama", "\"model_type\"", "llama");
}

static void test_mlp_act_gelu(void **state) {
    (void)state;
    expect_mutant_error("mlp_hidden_act", "\"gelu\"", "mutant:gelu", "\"mlp_hidden_act\"", "gelu");
}

/* Valid: intermediate_size 0 means no MLP. */
static void test_intermediate_size_zero(void **state) {
    (void)state;
    char *text = mutant("intermediate_size", "0");
    HymbaConfig c;
    parse_ok(&c, text, "mutant:no-mlp");
    assert_int_equal(c.intermediate_size, 0);
    ParamCount p = config_param_count(&c);
    assert_int_equal(p.mlp, 0);
    assert_int_equal(p.norms, 313024LL - 32 * 1600); /* no pre_moe_layernorm */
    assert_int_equal(p.total, 1522797824LL - 845414400LL - 32 * 1600);
    free(text);
}

/* The unmodified text parses, so each refusal above is the mutation's doing. */
static void test_base_text_parses(void **state) {
    (void)state;
    char *text = base_text();
    HymbaConfig c;
    parse_ok(&c, text, "base");
    assert_int_equal(c.hidden_size, 1600);
    free(text);
    /* and json_set with the original value changes nothing that matters */
    text = mutant("hidden_size", "1600");
    parse_ok(&c, text, "base-rewritten");
    assert_int_equal(c.hidden_size, 1600);
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_shipped_config_loads),
        cmocka_unit_test(test_load_by_directory),
        cmocka_unit_test(test_load_missing_directory),
        cmocka_unit_test(test_tiny_configs),
        cmocka_unit_test(test_hymba_15b_derived),
        cmocka_unit_test(test_hymba_15b_param_count),
        cmocka_unit_test(test_hymba_15b_cache_bytes),
        cmocka_unit_test(test_base_text_parses),
        cmocka_unit_test(test_missing_hidden_size),
        cmocka_unit_test(test_hidden_size_string),
        cmocka_unit_test(test_hidden_size_not_divisible),
        cmocka_unit_test(test_kv_heads_not_divisor),
        cmocka_unit_test(test_num_experts),
        cmocka_unit_test(test_rope_dynamic_ntk),
        cmocka_unit_test(test_rope_yarn),
        cmocka_unit_test(test_kq_norm_bogus),
        cmocka_unit_test(test_layer_type_wrong_length),
        cmocka_unit_test(test_layer_type_bad_kind),
        cmocka_unit_test(test_kv_group_consumer_before_producer),
        cmocka_unit_test(test_kv_group_layer_twice),
        cmocka_unit_test(test_kv_group_index_out_of_range),
        cmocka_unit_test(test_kv_group_mixes_global_and_window),
        cmocka_unit_test(test_kv_group_with_mamba_layer),
        cmocka_unit_test(test_kv_both_keys),
        cmocka_unit_test(test_memory_tokens_interspersed),
        cmocka_unit_test(test_sliding_window_zero),
        cmocka_unit_test(test_sliding_window_null),
        cmocka_unit_test(test_num_memory_tokens_negative),
        cmocka_unit_test(test_attn_hidden_size),
        cmocka_unit_test(test_v_head_dim),
        cmocka_unit_test(test_conv_dim_wrong_entry),
        cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_json_array),
        cmocka_unit_test(test_model_type_llama),
        cmocka_unit_test(test_mlp_act_gelu),
        cmocka_unit_test(test_intermediate_size_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
