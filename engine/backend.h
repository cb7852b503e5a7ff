/* backend.h: the one interface both engines implement (DESIGN.md §2). The
   CPU backend (backend_cpu.c) is the FP32 reference; the CUDA backend
   (kernels/) runs the same model on a GPU. Generation and log-likelihood
   (generate.c, loglik.c) are written once, against this interface. */
#ifndef HYMEVAL_BACKEND_H
#define HYMEVAL_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "model.h"

typedef struct Sequence Sequence; /* one sequence's decoding state, owned by a backend */
typedef struct Backend Backend;

struct Backend {
    const char *name;    /* "cpu" or "cuda" */
    char device[256];    /* e.g. "cpu (2 threads)", "NVIDIA H100 80GB HBM3" */
    HymbaModel *model;   /* config, tokenizer, host weights */
    void *impl;

    /* A new sequence that already holds the meta-token prefix. */
    Sequence *(*begin)(Backend *b, Err *err);
    /* An independent copy of s (the state fork for log-likelihood continuations). */
    Sequence *(*fork)(Backend *b, const Sequence *s, Err *err);
    void (*release)(Backend *b, Sequence *s);
    /* Feeds lens[i] tokens to each of n sequences: a batched prefill when
       lengths differ, a batched decode step when all are 1. logits[i]
       receives [lens[i], V] (LOGITS_ALL), [V] (LOGITS_LAST) or the last
       row's argmax id and logit (LOGITS_TOP1, 2 floats); may be NULL with
       LOGITS_NONE. A batch gives exactly what each sequence gives alone
       on the CPU; on the GPU up to BF16 reduction order. */
    int (*forward)(Backend *b, Sequence *const *seqs, const int32_t *const *ids, const int *lens, int n,
                   LogitsWanted want, float *const *logits, Err *err);
    /* Text tokens fed to s so far. */
    int (*length)(const Sequence *s);
    /* Bytes this sequence's cache holds (its allocations), and what the
       DESIGN.md §5 formula says it needs at its length. */
    size_t (*cache_bytes)(Backend *b, const Sequence *s);
    void (*close)(Backend *b);
};

/* Opens a backend on a loaded model: device "cpu" or "cuda". */
Backend *backend_open(HymbaModel *m, const char *device, Err *err);
void backend_close(Backend *b);

/* The CPU implementation (always available). */
Backend *backend_cpu_open(HymbaModel *m, Err *err);
#ifdef HYMEVAL_HAVE_CUDA
Backend *backend_cuda_open(HymbaModel *m, Err *err);
#endif

#endif
