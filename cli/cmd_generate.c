/* cmd_generate.c: `hymeval generate`: greedy generation from a prompt. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "generate.h"
#include "model.h"

#define MAX_STOPS 16

static void usage(FILE *out) {
    fprintf(out,
            "usage: hymeval generate DIR (--prompt TEXT | --ids 1,2,3) [--max-tokens N] [--stop STR]...\n"
            "                        [--precision fp32|bf16-paper|bf16-hf|bf16-all] [--no-bos] [--no-eos-stop]\n"
            "                        [--device cpu|cuda] [--json]\n\n"
            "Greedy generation on the CPU. Text streams to stdout as it is produced; timings go\n"
            "to stderr. --json prints one JSON object instead (text, ids, token counts, tokens/s).\n");
}

static void print_piece(const char *piece, void *user) {
    (void)user;
    fputs(piece, stdout);
    fflush(stdout);
}

int cmd_generate(int argc, char **argv) {
    const char *dir = NULL, *prompt = NULL, *ids_text = NULL, *prec_name = "fp32", *device = "cpu";
    const char *stops[MAX_STOPS];
    int n_stop = 0, add_bos = -1, eos_stop = 1, json = 0;
    long max_tokens = 64;
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (strcmp(a, "--prompt") == 0 && (v = cli_value(argc, argv, &i))) prompt = v;
        else if (strcmp(a, "--ids") == 0 && (v = cli_value(argc, argv, &i))) ids_text = v;
        else if (strcmp(a, "--precision") == 0 && (v = cli_value(argc, argv, &i))) prec_name = v;
        else if (strcmp(a, "--device") == 0 && (v = cli_value(argc, argv, &i))) device = v;
        else if (strcmp(a, "--max-tokens") == 0 && (v = cli_value(argc, argv, &i))) {
            if ((max_tokens = cli_long("--max-tokens", v, 1, 1 << 24)) < 0) return EXIT_USAGE;
        } else if (strcmp(a, "--stop") == 0 && (v = cli_value(argc, argv, &i))) {
            if (n_stop == MAX_STOPS) {
                fprintf(stderr, "error: at most %d --stop strings\n", MAX_STOPS);
                return EXIT_USAGE;
            }
            stops[n_stop++] = v;
        } else if (strcmp(a, "--no-bos") == 0) add_bos = 0;
        else if (strcmp(a, "--no-eos-stop") == 0) eos_stop = 0;
        else if (strcmp(a, "--json") == 0) json = 1;
        else if (a[0] != '-' && !dir) dir = a;
        else {
            if (i < argc) fprintf(stderr, "error: unexpected argument \"%s\"\n", a);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    Precision prec;
    if (!dir || (!prompt == !ids_text) || precision_parse(prec_name, &prec)) {
        fprintf(stderr, "error: need DIR, one of --prompt/--ids, and a known --precision\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    Err err;
    HymbaModel *m = model_load(dir, prec, &err);
    if (!m) {
        fprintf(stderr, "error: %s\n", err.msg);
        return EXIT_FAIL;
    }
    int32_t *ids = NULL;
    int n = 0;
    if (ids_text) {
        if (cli_parse_ids(ids_text, &ids, &n) || n == 0) {
            fprintf(stderr, "error: --ids must be a non-empty comma-separated list of token ids\n");
            model_free(m);
            return EXIT_USAGE;
        }
    } else if (!m->tok) {
        fprintf(stderr, "error: %s has no tokenizer.json; use --ids\n", dir);
        model_free(m);
        return EXIT_FAIL;
    } else {
        size_t count;
        if (tokenizer_encode(m->tok, prompt, strlen(prompt), add_bos, &ids, &count, &err)) {
            fprintf(stderr, "error: %s\n", err.msg);
            model_free(m);
            return EXIT_FAIL;
        }
        n = (int)count;
    }
    Backend *backend = backend_open(m, device, &err);
    if (!backend) {
        fprintf(stderr, "error: %s\n", err.msg);
        free(ids);
        model_free(m);
        return EXIT_FAIL;
    }
    GenerateOptions opt = {(int)max_tokens, stops, n_stop, eos_stop, json ? NULL : print_piece, NULL};
    GenerateResult res;
    int rc = EXIT_OK;
    if (generate_greedy(backend, ids, n, &opt, &res, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        rc = EXIT_FAIL;
    } else {
        double prefill_tps = res.prefill_seconds > 0 ? n / res.prefill_seconds : 0;
        double decode_tps = res.decode_seconds > 0 ? res.n_ids / res.decode_seconds : 0;
        static const char *why[] = {"max_tokens", "stop_string", "eos"};
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "text", res.text);
            cJSON *arr = cJSON_AddArrayToObject(o, "ids");
            for (int i = 0; i < res.n_ids; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(res.ids[i]));
            cJSON_AddNumberToObject(o, "prompt_tokens", n);
            cJSON_AddNumberToObject(o, "generated_tokens", res.n_ids);
            cJSON_AddStringToObject(o, "stopped_by", why[res.stopped_by]);
            cJSON_AddNumberToObject(o, "prefill_tokens_per_s", prefill_tps);
            cJSON_AddNumberToObject(o, "decode_tokens_per_s", decode_tps);
            cJSON_AddStringToObject(o, "precision", precision_name(prec));
            cJSON_AddStringToObject(o, "device", backend->device);
            char *s = cJSON_PrintUnformatted(o);
            puts(s);
            free(s);
            cJSON_Delete(o);
        } else {
            putchar('\n');
            fflush(stdout);
            fprintf(stderr, "[%d prompt tokens: %.1f tok/s prefill; %d generated: %.1f tok/s decode; stopped by %s]\n",
                    n, prefill_tps, res.n_ids, decode_tps, why[res.stopped_by]);
        }
        generate_result_free(&res);
    }
    backend_close(backend);
    free(ids);
    model_free(m);
    return rc;
}
