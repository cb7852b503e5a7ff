/* cmd_init_model.c: `hymeval init-model`: a complete random checkpoint
   directory (config.json, safetensors weights — sharded past a size —,
   tokenizer.json) in exactly the layout of a published Hymba checkpoint.
   Seeded, so the same command always writes the same bytes. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "config.h"
#include "safetensors.h"
#include "tokenizer.h"
#include "weights.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: hymeval init-model --config CONFIG.json --out DIR [--seed S] [--tokenizer FILE]\n"
            "                          [--dtype f32|bf16|f16] [--shard-mb MB]\n\n"
            "Writes a random Hymba checkpoint in the Hugging Face layout: DIR/config.json,\n"
            "DIR/model.safetensors (or shards + model.safetensors.index.json above --shard-mb,\n"
            "default 5000), DIR/tokenizer.json (+ tokenizer_config.json). The tokenizer is FILE\n"
            "(a tokenizer.json, or a directory holding one) or the project's small default.\n"
            "--dtype defaults to the config's torch_dtype (float32 / bfloat16 / float16).\n");
}

/* splitmix64: a small, well-mixed, seedable generator. */
static uint64_t rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_uniform(uint64_t *s) { return ((rng_next(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
static double rng_normal(uint64_t *s) {
    double u1 = rng_uniform(s), u2 = rng_uniform(s);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Random values that keep activations in a healthy range through every layer
   (linear weights ~ N(0, 1/in), norms near 1, Mamba's own A/D/dt init). */
static void fill_tensor(const TensorSpec *t, const HymbaConfig *c, float *v, int64_t n, uint64_t *rng) {
    const char *name = t->name;
    int64_t cols = t->ndim >= 2 ? t->shape[t->ndim - 1] : 1;
    if (ends_with(name, "norm.weight") || strstr(name, "layernorm")) {
        for (int64_t i = 0; i < n; i++) v[i] = (float)(1.0 + 0.1 * rng_normal(rng));
    } else if (ends_with(name, "A_log.0")) {
        int N = c->ssm_state; /* log(1..N) per channel, as Mamba initialises, plus a little noise */
        for (int64_t i = 0; i < n; i++) v[i] = (float)(log((double)(i % N + 1)) + 0.05 * rng_normal(rng));
    } else if (ends_with(name, "D.0")) {
        for (int64_t i = 0; i < n; i++) v[i] = (float)(1.0 + 0.1 * rng_normal(rng));
    } else if (ends_with(name, "dt_proj.0.bias")) {
        /* softplus(bias) log-uniform in [0.001, 0.1] (Mamba's dt init) */
        for (int64_t i = 0; i < n; i++) {
            double dt = exp(log(0.001) + rng_uniform(rng) * (log(0.1) - log(0.001)));
            v[i] = (float)(dt + log(-expm1(-dt)));
        }
    } else if (ends_with(name, "conv1d.weight")) {
        double std = 1.0 / sqrt((double)c->ssm_conv);
        for (int64_t i = 0; i < n; i++) v[i] = (float)(std * rng_normal(rng));
    } else if (ends_with(name, ".bias")) {
        for (int64_t i = 0; i < n; i++) v[i] = (float)(0.02 * rng_normal(rng));
    } else if (strcmp(name, "model.embed_tokens.weight") == 0 || strcmp(name, "lm_head.weight") == 0) {
        double std = pow((double)c->hidden_size, -0.25);
        for (int64_t i = 0; i < n; i++) v[i] = (float)(std * rng_normal(rng));
    } else if (strcmp(name, "model.memory_tokens") == 0) {
        for (int64_t i = 0; i < n; i++) v[i] = (float)rng_normal(rng);
    } else {
        double std = 1.0 / sqrt((double)cols);
        for (int64_t i = 0; i < n; i++) v[i] = (float)(std * rng_normal(rng));
    }
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = size >= 0 ? malloc((size_t)size + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)size, f) == (size_t)size) {
        buf[size] = 0;
        *len = (size_t)size;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static int write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t wrote = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && wrote == len) ? 0 : -1;
}

/* Copies the tokenizer (given or embedded default) into dir. */
static int write_tokenizer(const char *dir, const char *given, const HymbaConfig *cfg) {
    char dst[4200];
    if (given) {
        struct stat st;
        char json_path[4200], conf_path[4200];
        if (stat(given, &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(json_path, sizeof json_path, "%s/tokenizer.json", given);
            snprintf(conf_path, sizeof conf_path, "%s/tokenizer_config.json", given);
        } else {
            snprintf(json_path, sizeof json_path, "%s", given);
            const char *slash = strrchr(given, '/');
            int dir_len = slash ? (int)(slash - given) : 1;
            snprintf(conf_path, sizeof conf_path, "%.*s/tokenizer_config.json", dir_len, slash ? given : ".");
        }
        Err err;
        Tokenizer *tok = tokenizer_load(json_path, &err);
        if (!tok) {
            fprintf(stderr, "error: --tokenizer: %s\n", err.msg);
            return -1;
        }
        int vocab = tokenizer_vocab_size(tok);
        tokenizer_free(tok);
        if (vocab > cfg->vocab_size) {
            fprintf(stderr, "error: %s has %d tokens but the config's vocab_size is %d\n", json_path, vocab,
                    cfg->vocab_size);
            return -1;
        }
        size_t len;
        char *json = read_file(json_path, &len);
        snprintf(dst, sizeof dst, "%s/tokenizer.json", dir);
        if (!json || write_file(dst, json, len)) {
            fprintf(stderr, "error: copying %s to %s failed\n", json_path, dst);
            free(json);
            return -1;
        }
        free(json);
        char *conf = read_file(conf_path, &len);
        if (conf) {
            snprintf(dst, sizeof dst, "%s/tokenizer_config.json", dir);
            int rc = write_file(dst, conf, len);
            free(conf);
            if (rc) return -1;
        }
        return 0;
    }
    snprintf(dst, sizeof dst, "%s/tokenizer.json", dir);
    if (write_file(dst, default_tokenizer_json, default_tokenizer_json_len)) return -1;
    snprintf(dst, sizeof dst, "%s/tokenizer_config.json", dir);
    return write_file(dst, default_tokenizer_config_json, default_tokenizer_config_json_len);
}

static int dtype_from_config_text(const char *text, StDtype *dtype) {
    if (strstr(text, "\"torch_dtype\": \"bfloat16\"") || strstr(text, "\"torch_dtype\":\"bfloat16\"")) *dtype = ST_BF16;
    else if (strstr(text, "\"torch_dtype\": \"float16\"") || strstr(text, "\"torch_dtype\":\"float16\"")) *dtype = ST_F16;
    else *dtype = ST_F32;
    return 0;
}

int cmd_init_model(int argc, char **argv) {
    const char *config_path = NULL, *out_dir = NULL, *tokenizer = NULL, *dtype_name = NULL;
    long seed = 0, shard_mb = 5000;
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (strcmp(a, "--config") == 0 && (v = cli_value(argc, argv, &i))) config_path = v;
        else if (strcmp(a, "--out") == 0 && (v = cli_value(argc, argv, &i))) out_dir = v;
        else if (strcmp(a, "--tokenizer") == 0 && (v = cli_value(argc, argv, &i))) tokenizer = v;
        else if (strcmp(a, "--dtype") == 0 && (v = cli_value(argc, argv, &i))) dtype_name = v;
        else if (strcmp(a, "--seed") == 0 && (v = cli_value(argc, argv, &i))) {
            if ((seed = cli_long("--seed", v, 0, 0x7fffffffL)) < 0) return EXIT_USAGE;
        } else if (strcmp(a, "--shard-mb") == 0 && (v = cli_value(argc, argv, &i))) {
            if ((shard_mb = cli_long("--shard-mb", v, 0, 1L << 30)) < 0) return EXIT_USAGE;
        } else {
            if (i < argc) fprintf(stderr, "error: unexpected argument \"%s\"\n", a);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!config_path || !out_dir) {
        fprintf(stderr, "error: --config and --out are required\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    size_t text_len;
    char *text = read_file(config_path, &text_len);
    if (!text) {
        fprintf(stderr, "error: %s: cannot read (%s)\n", config_path, strerror(errno));
        return EXIT_FAIL;
    }
    HymbaConfig cfg;
    Err err;
    if (config_parse(&cfg, text, config_path, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        free(text);
        return EXIT_FAIL;
    }
    StDtype dtype;
    dtype_from_config_text(text, &dtype);
    if (dtype_name) {
        if (strcmp(dtype_name, "f32") == 0) dtype = ST_F32;
        else if (strcmp(dtype_name, "bf16") == 0) dtype = ST_BF16;
        else if (strcmp(dtype_name, "f16") == 0) dtype = ST_F16;
        else {
            fprintf(stderr, "error: --dtype must be f32, bf16 or f16 (got \"%s\")\n", dtype_name);
            free(text);
            return EXIT_USAGE;
        }
    }
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "error: %s: cannot create directory (%s)\n", out_dir, strerror(errno));
        free(text);
        return EXIT_FAIL;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", out_dir);
    if (write_file(path, text, text_len)) {
        fprintf(stderr, "error: %s: cannot write\n", path);
        free(text);
        return EXIT_FAIL;
    }
    free(text);
    if (write_tokenizer(out_dir, tokenizer, &cfg)) return EXIT_FAIL;

    TensorSpec *specs;
    int n = weights_expected(&cfg, &specs);
    StWriteTensor *tensors = calloc((size_t)(n > 0 ? n : 1), sizeof *tensors);
    float **values = calloc((size_t)(n > 0 ? n : 1), sizeof *values);
    int rc = EXIT_OK;
    if (n < 0 || !tensors || !values) {
        fprintf(stderr, "error: out of memory\n");
        rc = EXIT_FAIL;
        goto done;
    }
    uint64_t rng = 0x4879ba11ull ^ ((uint64_t)seed * 0x9e3779b97f4a7c15ull);
    for (int i = 0; i < n; i++) {
        int64_t count = 1;
        for (int d = 0; d < specs[i].ndim; d++) count *= specs[i].shape[d];
        values[i] = malloc(sizeof(float) * (size_t)(count > 0 ? count : 1));
        if (!values[i]) {
            fprintf(stderr, "error: out of memory for tensor %s\n", specs[i].name);
            rc = EXIT_FAIL;
            goto done;
        }
        fill_tensor(&specs[i], &cfg, values[i], count, &rng);
        StWriteTensor *t = &tensors[i];
        t->name = specs[i].name;
        t->dtype = dtype;
        t->values = values[i];
        /* per-head kq norms are stored [1, heads, 1, dk] as in the official module */
        if (specs[i].ndim == 3 && strstr(specs[i].name, "_norm.weight")) {
            t->ndim = 4;
            t->shape[0] = 1;
            t->shape[1] = specs[i].shape[0];
            t->shape[2] = 1;
            t->shape[3] = specs[i].shape[2];
        } else {
            t->ndim = specs[i].ndim;
            for (int d = 0; d < t->ndim; d++) t->shape[d] = specs[i].shape[d];
        }
    }
    if (st_write_checkpoint(out_dir, tensors, (size_t)n, (size_t)shard_mb << 20, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        rc = EXIT_FAIL;
    }
done:
    for (int i = 0; i < n; i++) free(values[i]);
    free(values);
    free(tensors);
    free(specs);
    return rc;
}
