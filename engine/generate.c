/* generate.c: greedy decoding with stop strings, streaming text as it goes. */
#include "generate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Byte offset of the earliest stop string in text, or -1. */
static long find_stop(const char *text, const GenerateOptions *opt) {
    long best = -1;
    for (int i = 0; i < opt->n_stop; i++) {
        if (!opt->stop[i][0]) continue;
        const char *hit = strstr(text, opt->stop[i]);
        if (hit && (best < 0 || hit - text < best)) best = hit - text;
    }
    return best;
}

static size_t longest_stop(const GenerateOptions *opt) {
    size_t len = 0;
    for (int i = 0; i < opt->n_stop; i++)
        if (strlen(opt->stop[i]) > len) len = strlen(opt->stop[i]);
    return len;
}

int generate_greedy(HymbaModel *m, const int32_t *prompt, int n_prompt, const GenerateOptions *opt,
                    GenerateResult *out, Err *err) {
    memset(out, 0, sizeof *out);
    const int V = m->cfg.vocab_size;
    if (n_prompt < 1) return err_set(err, "generation needs a non-empty prompt");
    int cap = opt->max_new_tokens > 0 ? opt->max_new_tokens : 1;
    float *logits = malloc(sizeof(float) * (size_t)V);
    out->ids = malloc(sizeof(int32_t) * (size_t)cap);
    out->text = calloc(1, 1);
    if (!logits || !out->ids || !out->text) {
        free(logits);
        generate_result_free(out);
        return err_set(err, "out of memory");
    }
    SeqCache cache;
    double t0 = now_seconds();
    if (model_begin(m, &cache, err) || model_forward(m, &cache, prompt, n_prompt, LOGITS_LAST, logits, err)) {
        free(logits);
        generate_result_free(out);
        return -1;
    }
    out->prefill_seconds = now_seconds() - t0;
    t0 = now_seconds();
    size_t emitted = 0, hold_back = longest_stop(opt);
    int rc = 0;
    while (out->n_ids < opt->max_new_tokens) {
        int next = argmax(logits, V);
        if (opt->stop_at_eos && next == m->cfg.eos_id) {
            out->stopped_by = 2;
            break;
        }
        out->ids[out->n_ids++] = next;
        if (m->tok) {
            char *text = tokenizer_decode(m->tok, out->ids, (size_t)out->n_ids, 1);
            if (!text) {
                rc = err_set(err, "out of memory decoding");
                break;
            }
            free(out->text);
            out->text = text;
            long stop_at = find_stop(text, opt);
            if (stop_at >= 0) {
                text[stop_at] = 0;
                out->stopped_by = 1;
                break;
            }
            /* stream what can no longer become part of a stop string */
            size_t len = strlen(text);
            size_t safe = len > hold_back ? len - hold_back : 0;
            if (opt->on_text && safe > emitted) {
                char saved = text[safe];
                text[safe] = 0;
                opt->on_text(text + emitted, opt->user);
                text[safe] = saved;
                emitted = safe;
            }
        }
        if (out->n_ids >= opt->max_new_tokens) break;
        int32_t tok = next;
        if (model_forward(m, &cache, &tok, 1, LOGITS_LAST, logits, err)) {
            rc = -1;
            break;
        }
    }
    out->decode_seconds = now_seconds() - t0;
    if (rc == 0 && opt->on_text && strlen(out->text) > emitted) opt->on_text(out->text + emitted, opt->user);
    cache_free(&cache);
    free(logits);
    if (rc) generate_result_free(out);
    return rc;
}

void generate_result_free(GenerateResult *r) {
    free(r->text);
    free(r->ids);
    memset(r, 0, sizeof *r);
}
