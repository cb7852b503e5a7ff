/* generate.h: greedy generation with stop strings and a token budget. */
#ifndef HYMEVAL_GENERATE_H
#define HYMEVAL_GENERATE_H

#include "model.h"

typedef struct {
    int max_new_tokens;
    const char *const *stop;  /* stop strings (generation is cut before the first match) */
    int n_stop;
    int stop_at_eos;
    /* called with each new piece of text as it is produced (may be NULL) */
    void (*on_text)(const char *piece, void *user);
    void *user;
} GenerateOptions;

typedef struct {
    char *text;              /* the generated text, cut at a stop string; malloc'd */
    int32_t *ids;            /* generated ids; malloc'd */
    int n_ids;
    int stopped_by;          /* 0 = budget, 1 = stop string, 2 = EOS */
    double prefill_seconds, decode_seconds;
} GenerateResult;

int generate_greedy(HymbaModel *m, const int32_t *prompt, int n_prompt, const GenerateOptions *opt,
                    GenerateResult *out, Err *err);
void generate_result_free(GenerateResult *r);

#endif
