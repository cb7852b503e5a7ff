/* model.h: a loaded Hymba checkpoint and its forward pass on the CPU. */
#ifndef HYMEVAL_MODEL_H
#define HYMEVAL_MODEL_H

#include <stdint.h>

#include "cache.h"
#include "config.h"
#include "error.h"
#include "tokenizer.h"
#include "weights.h"

/* DESIGN.md §5 precision modes, emulated on the CPU by BF16 rounding. */
typedef enum { PREC_FP32, PREC_BF16_PAPER, PREC_BF16_HF, PREC_BF16_ALL } Precision;
int precision_parse(const char *name, Precision *out);
const char *precision_name(Precision p);

typedef struct {
    HymbaConfig cfg;
    Weights w;
    Tokenizer *tok;          /* NULL when the directory has no tokenizer.json */
    StCheckpoint *ck;
    Precision precision;
    float *inv_freq;         /* [dk/2] RoPE frequencies, FP32 as the official code computes them */
    SeqCache meta_prefix;    /* state after the meta tokens, computed once */
    int have_meta_prefix;
    char dir[4096];
} HymbaModel;

/* Loads config.json, the weights (single or sharded safetensors) and, if
   present, tokenizer.json from dir. */
HymbaModel *model_load(const char *dir, Precision precision, Err *err);
void model_free(HymbaModel *m);

/* Which logits a forward call writes. */
typedef enum { LOGITS_NONE, LOGITS_LAST, LOGITS_ALL } LogitsWanted;

/* Starts a sequence: the cache holds the meta-token prefix (or nothing). */
int model_begin(HymbaModel *m, SeqCache *c, Err *err);
/* Feeds n tokens to a sequence, continuing its cache. logits: [n, V]
   (LOGITS_ALL) or [V] (LOGITS_LAST). */
int model_forward(HymbaModel *m, SeqCache *c, const int32_t *ids, int n, LogitsWanted want, float *logits,
                  Err *err);
#endif
