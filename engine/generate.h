/* generate.h: greedy generation with stop strings and a token budget, for
   one prompt or a batch of prompts decoded together. */
#ifndef HYMEVAL_GENERATE_H
#define HYMEVAL_GENERATE_H

#include "backend.h"

typedef struct {
    int max_new_tokens;
    const char *const *stop;  /* stop strings (generation is cut before the first match) */
    int n_stop;
    int stop_at_eos;
    /* single-prompt generation only: called with each new piece of text (may be NULL) */
    void (*on_text)(const char *piece, void *user);
    void *user;
} GenerateOptions;

typedef struct {
    char *text;              /* the generated text, cut at a stop string; malloc'd */
    int32_t *ids;            /* generated ids; malloc'd */
    int n_ids;
    int stopped_by;          /* 0 = budget, 1 = stop string, 2 = EOS */
    double prefill_seconds, decode_seconds; /* of the whole batch */
} GenerateResult;

/* Greedy generation for B prompts at once: one batched prefill, then batched
   one-token decode steps over the prompts still running. out[B]. */
int generate_batch(Backend *b, const int32_t *const *prompts, const int *lens, int B, const GenerateOptions *opt,
                   GenerateResult *out, Err *err);
int generate_greedy(Backend *b, const int32_t *prompt, int n_prompt, const GenerateOptions *opt, GenerateResult *out,
                    Err *err);
void generate_result_free(GenerateResult *r);

#endif
