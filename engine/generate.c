/* generate.c: greedy decoding with stop strings, for one prompt (streaming
   its text as it goes) or a batch of prompts decoded together. */
#include "generate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
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

/* One prompt's progress through generation. */
typedef struct {
    Sequence *seq;
    float *logits;   /* the backend's greedy choice: id, logit (LOGITS_TOP1) */
    int running;
    size_t emitted;  /* bytes of text already streamed */
} Slot;

/* Takes the argmax of slot i, appends it, and decides whether it stops.
   Returns -1 on error. */
static int take_token(Backend *b, const GenerateOptions *opt, Slot *slot, GenerateResult *out, int streaming,
                      Err *err) {
    const HymbaModel *m = b->model;
    int next = (int)slot->logits[0]; /* LOGITS_TOP1: the greedy id, chosen by the backend */
    if (opt->stop_at_eos && next == m->cfg.eos_id) {
        out->stopped_by = 2;
        slot->running = 0;
        return 0;
    }
    out->ids[out->n_ids++] = next;
    if (m->tok) {
        char *text = tokenizer_decode(m->tok, out->ids, (size_t)out->n_ids, 1);
        if (!text) return err_set(err, "out of memory decoding");
        free(out->text);
        out->text = text;
        long stop_at = find_stop(text, opt);
        if (stop_at >= 0) {
            text[stop_at] = 0;
            out->stopped_by = 1;
            slot->running = 0;
            return 0;
        }
        /* stream what can no longer become part of a stop string */
        size_t len = strlen(text), hold_back = longest_stop(opt);
        size_t safe = len > hold_back ? len - hold_back : 0;
        if (streaming && opt->on_text && safe > slot->emitted) {
            char saved = text[safe];
            text[safe] = 0;
            opt->on_text(text + slot->emitted, opt->user);
            text[safe] = saved;
            slot->emitted = safe;
        }
    }
    if (out->n_ids >= opt->max_new_tokens) slot->running = 0;
    return 0;
}

int generate_batch(Backend *b, const int32_t *const *prompts, const int *lens, int B, const GenerateOptions *opt,
                   GenerateResult *out, Err *err) {
    const int streaming = B == 1;
    int cap = opt->max_new_tokens > 0 ? opt->max_new_tokens : 1;
    Slot *slots = calloc((size_t)B, sizeof *slots);
    Sequence **seqs = calloc((size_t)B, sizeof *seqs);
    const int32_t **feed_ids = calloc((size_t)B, sizeof *feed_ids);
    int32_t *feed_tok = calloc((size_t)B, sizeof *feed_tok);
    int *feed_lens = calloc((size_t)B, sizeof *feed_lens);
    float **feed_logits = calloc((size_t)B, sizeof *feed_logits);
    int rc = -1;
    memset(out, 0, sizeof *out * (size_t)B);
    if (!slots || !seqs || !feed_ids || !feed_tok || !feed_lens || !feed_logits) {
        err_set(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < B; i++) {
        if (lens[i] < 1) {
            err_set(err, "generation needs a non-empty prompt (prompt %d is empty)", i);
            goto done;
        }
        out[i].ids = malloc(sizeof(int32_t) * (size_t)cap);
        out[i].text = calloc(1, 1);
        slots[i].logits = malloc(sizeof(float) * 2);
        if (!out[i].ids || !out[i].text || !slots[i].logits) {
            err_set(err, "out of memory");
            goto done;
        }
        slots[i].seq = b->begin(b, err);
        if (!slots[i].seq) goto done;
        slots[i].running = opt->max_new_tokens > 0;
        seqs[i] = slots[i].seq;
        feed_logits[i] = slots[i].logits;
    }
    double t0 = now_seconds();
    if (b->forward(b, seqs, prompts, lens, B, LOGITS_TOP1, feed_logits, err)) goto done;
    double prefill = now_seconds() - t0;
    t0 = now_seconds();
    for (;;) {
        int n = 0;
        for (int i = 0; i < B; i++) {
            if (!slots[i].running) continue;
            if (take_token(b, opt, &slots[i], &out[i], streaming, err)) goto done;
            if (!slots[i].running) continue;
            /* this prompt goes on: feed its new token in the next batched step */
            feed_tok[n] = out[i].ids[out[i].n_ids - 1];
            feed_ids[n] = &feed_tok[n];
            feed_lens[n] = 1;
            seqs[n] = slots[i].seq;
            feed_logits[n] = slots[i].logits;
            n++;
        }
        if (n == 0) break;
        if (b->forward(b, seqs, feed_ids, feed_lens, n, LOGITS_TOP1, feed_logits, err)) goto done;
    }
    double decode = now_seconds() - t0;
    for (int i = 0; i < B; i++) {
        out[i].prefill_seconds = prefill;
        out[i].decode_seconds = decode;
    }
    if (streaming && opt->on_text && strlen(out[0].text) > slots[0].emitted)
        opt->on_text(out[0].text + slots[0].emitted, opt->user);
    rc = 0;
done:
    for (int i = 0; slots && i < B; i++) {
        if (slots[i].seq) b->release(b, slots[i].seq);
        free(slots[i].logits);
        if (rc) generate_result_free(&out[i]);
    }
    free(slots), free(seqs), free(feed_ids), free(feed_tok), free(feed_lens), free(feed_logits);
    return rc;
}

int generate_greedy(Backend *b, const int32_t *prompt, int n_prompt, const GenerateOptions *opt, GenerateResult *out,
                    Err *err) {
    return generate_batch(b, &prompt, &n_prompt, 1, opt, out, err);
}

void generate_result_free(GenerateResult *r) {
    free(r->text);
    free(r->ids);
    memset(r, 0, sizeof *r);
}
