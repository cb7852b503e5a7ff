/* cmd_logits.c: `hymeval logits`: the logits of one token sequence, as a
   float32 .npy [T, V] — what the independent reference is compared against. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "backend.h"
#include "model.h"
#include "npy.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: hymeval logits DIR (--ids 1,2,3 | --text TEXT) --out FILE.npy\n"
            "                      [--precision fp32|bf16-paper|bf16-hf|bf16-all] [--device cpu|cuda] [--decode]\n\n"
            "Writes the logits of every text position as a float32 [T, vocab] .npy file.\n"
            "--decode feeds the tokens one at a time through the cache instead of one prefill.\n");
}

int cmd_logits(int argc, char **argv) {
    const char *dir = NULL, *ids_text = NULL, *text = NULL, *out = NULL, *prec_name = "fp32", *device = "cpu";
    int decode = 0;
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (strcmp(a, "--ids") == 0 && (v = cli_value(argc, argv, &i))) ids_text = v;
        else if (strcmp(a, "--text") == 0 && (v = cli_value(argc, argv, &i))) text = v;
        else if (strcmp(a, "--out") == 0 && (v = cli_value(argc, argv, &i))) out = v;
        else if (strcmp(a, "--precision") == 0 && (v = cli_value(argc, argv, &i))) prec_name = v;
        else if (strcmp(a, "--device") == 0 && (v = cli_value(argc, argv, &i))) device = v;
        else if (strcmp(a, "--decode") == 0) decode = 1;
        else if (a[0] != '-' && !dir) dir = a;
        else {
            if (i < argc) fprintf(stderr, "error: unexpected argument \"%s\"\n", a);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    Precision prec;
    if (!dir || !out || (!ids_text == !text) || precision_parse(prec_name, &prec)) {
        fprintf(stderr, "error: need DIR, --out, one of --ids/--text, and a known --precision\n");
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
    int n = 0, rc = EXIT_FAIL;
    if (ids_text) {
        if (cli_parse_ids(ids_text, &ids, &n) || n == 0) {
            fprintf(stderr, "error: --ids must be a non-empty comma-separated list of token ids\n");
            model_free(m);
            return EXIT_USAGE;
        }
    } else {
        size_t count;
        if (!m->tok) {
            fprintf(stderr, "error: %s has no tokenizer.json; use --ids\n", dir);
            model_free(m);
            return EXIT_FAIL;
        }
        if (tokenizer_encode(m->tok, text, strlen(text), -1, &ids, &count, &err)) {
            fprintf(stderr, "error: %s\n", err.msg);
            model_free(m);
            return EXIT_FAIL;
        }
        n = (int)count;
    }
    const int V = m->cfg.vocab_size;
    float *logits = malloc(sizeof(float) * (size_t)n * V);
    Backend *b = backend_open(m, device, &err);
    Sequence *seq = b && logits ? b->begin(b, &err) : NULL;
    if (!logits) err_set(&err, "out of memory");
    if (seq) {
        int failed = 0;
        if (decode) {
            for (int t = 0; t < n && !failed; t++) {
                const int32_t *one = ids + t;
                int len = 1;
                float *row = logits + (size_t)t * V;
                failed = b->forward(b, &seq, &one, &len, 1, LOGITS_LAST, &row, &err);
            }
        } else {
            const int32_t *all = ids;
            failed = b->forward(b, &seq, &all, &n, 1, LOGITS_ALL, &logits, &err);
        }
        int64_t shape[2] = {n, V};
        if (!failed && npy_write_f32(out, logits, 2, shape, &err) == 0) rc = EXIT_OK;
        b->release(b, seq);
    }
    backend_close(b);
    if (rc != EXIT_OK) fprintf(stderr, "error: %s\n", err.msg);
    free(logits);
    free(ids);
    model_free(m);
    return rc;
}
