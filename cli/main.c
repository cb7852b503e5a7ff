/* main.c: `hymeval COMMAND ...` dispatch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "git_rev.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} Command;

static const Command commands[] = {
    {"run", cmd_run, "run a task file (JSONL) on a model and write a results directory"},
    {"merge", cmd_merge, "merge the shards of a run (run --shard K/N) into one results directory"},
    {"report", cmd_report, "write report.html and report.md (heatmaps, curves, tables) for a results directory"},
    {"compare", cmd_compare, "compare two results directories metric by metric; exit 1 on a regression"},
    {"history", cmd_history, "trend table and plot of metrics over several results directories"},
    {"gen-data", cmd_gendata, "write the examples of a task file as training text (JSONL), without a model"},
    {"init-model", cmd_init_model, "write a random checkpoint directory for a config (tests, benchmarks)"},
    {"inspect", cmd_inspect, "load and validate a checkpoint; print config, parameters and cache sizes"},
    {"tokenize", cmd_tokenize, "encode text to ids (or decode ids) with a checkpoint's tokenizer"},
    {"generate", cmd_generate, "greedy generation from a prompt"},
    {"logits", cmd_logits, "write the logits of a token sequence as .npy (reference checks)"},
    {"devices", cmd_devices, "list the backends built in and the devices they see"},
    {"bench", cmd_bench, "prefill/decode throughput, cache and memory of a backend on a checkpoint"},
    {"erf", cmd_erf, "effective receptive field of a checkpoint (the erf kind, without a task file)"},
    {"drift", cmd_drift, "RoPE drift of the precision modes (the rope_drift kind, without a task file)"},
    {"cache", cmd_cache, "cache bytes: formula, allocations, design variants (the cache kind, without a task file)"},
};

static void usage(FILE *out) {
    fprintf(out, "hymeval %s (%s): long-context evaluation with an embedded Hymba engine\n\n", HYMEVAL_VERSION,
            HYMEVAL_GIT_REV);
    fprintf(out, "usage: hymeval COMMAND [ARGS]   (hymeval COMMAND --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

const char *cli_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "error: %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

long cli_long(const char *opt, const char *value, long min, long max) {
    char *end = NULL;
    long v = strtol(value, &end, 10);
    if (!*value || *end || v < min || v > max) {
        fprintf(stderr, "error: %s expects an integer in [%ld, %ld], got \"%s\"\n", opt, min, max, value);
        return -1;
    }
    return v;
}

int cli_parse_ids(const char *text, int32_t **ids, int *n) {
    size_t cap = 16;
    int count = 0;
    int32_t *out = malloc(cap * sizeof *out);
    if (!out) return -1;
    const char *p = text;
    while (*p == ' ' || *p == '[') p++;
    while (*p && *p != ']') {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 0x7fffffff) {
            free(out);
            return -1;
        }
        if ((size_t)count == cap) {
            int32_t *grown = realloc(out, (cap *= 2) * sizeof *out);
            if (!grown) {
                free(out);
                return -1;
            }
            out = grown;
        }
        out[count++] = (int32_t)v;
        p = end;
        while (*p == ' ' || *p == ',' || *p == '\n') p++;
    }
    *ids = out;
    *n = count;
    return 0;
}

int cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return 1;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("hymeval %s (%s)\n", HYMEVAL_VERSION, HYMEVAL_GIT_REV);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "error: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
