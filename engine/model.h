/* model.h: a loaded Hymba checkpoint and its forward pass on the CPU. */
#ifndef HYMEVAL_MODEL_H
#define HYMEVAL_MODEL_H

#include <stdint.h>

#include "cache.h"
#include "config.h"
#include "error.h"
#include "observe.h"
#include "tokenizer.h"
#include "weights.h"

/* DESIGN.md §5 precision modes, emulated on the CPU by BF16 rounding. */
typedef enum { PREC_FP32, PREC_BF16_PAPER, PREC_BF16_HF, PREC_BF16_ALL } Precision;
int precision_parse(const char *name, Precision *out);
const char *precision_name(Precision p);

typedef struct HymbaModel {
    HymbaConfig cfg;
    Weights w;
    Tokenizer *tok;          /* NULL when the directory has no tokenizer.json */
    StCheckpoint *ck;
    Precision precision;
    float *inv_freq;         /* [dk/2] RoPE frequencies, FP32 as the official code computes them */
    SeqCache meta_prefix;    /* state after the meta tokens, computed once per position_offset */
    int have_meta_prefix;
    int meta_prefix_offset;  /* the position_offset meta_prefix was computed with */
    /* Added to every position id, meta tokens included (0 by default): RoPE
       is relative, so a shift changes nothing but rounding (DESIGN.md §5,
       RoPE drift). It is read by every forward call, so a sequence must be
       begun and continued with the same value; model_begin() recomputes the
       cached meta prefix when the value changed since it was computed. */
    int position_offset;
    /* Optional observer of the forward (observe.h); NULL = none, zero cost. */
    const HymbaObserver *observer;
    char dir[4096];
} HymbaModel;

/* Loads config.json, the weights (single or sharded safetensors) and, if
   present, tokenizer.json from dir. */
HymbaModel *model_load(const char *dir, Precision precision, Err *err);
void model_free(HymbaModel *m);

/* Which logits a forward call writes. LOGITS_TOP1 (backends only, for greedy
   decoding): the last row's greedy choice as 2 floats, the token id (exact:
   vocabularies are far below 2^24) and its logit; the first maximum wins, as
   in a host argmax. On the GPU only these 8 bytes leave the device. */
typedef enum { LOGITS_NONE, LOGITS_LAST, LOGITS_ALL, LOGITS_TOP1 } LogitsWanted;

/* Starts a sequence: the cache holds the meta-token prefix (or nothing). */
int model_begin(HymbaModel *m, SeqCache *c, Err *err);
/* Feeds n tokens to a sequence, continuing its cache. logits: [n, V]
   (LOGITS_ALL) or [V] (LOGITS_LAST). */
int model_forward(HymbaModel *m, SeqCache *c, const int32_t *ids, int n, LogitsWanted want, float *logits,
                  Err *err);
#endif
