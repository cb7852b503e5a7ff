/* bench.h: the throughput protocol (DESIGN.md §5 "Throughput") that
   `hymeval bench` and the `throughput` task kind share, so both report the
   same figures for the same shape: B sequences of L seeded random tokens
   prefilled together, then N greedy decode steps of the whole batch; warm-up
   runs first (untimed), then timed repeats, every figure the median over the
   repeats. On out-of-memory the batch is halved until it fits (the paper's
   protocol) and the halvings are reported. Timings are wall clock around
   backend calls that end synchronised (each forward hands its greedy choices
   to the host), so on a GPU they include the device work. */
#ifndef HYMEVAL_BENCH_H
#define HYMEVAL_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

typedef struct {
    int batch, context, decode; /* B, L (text tokens per sequence), N */
    int repeats;                /* timed runs (>= 1) */
    int warmup;                 /* untimed runs before them */
    int warmup_context;         /* their context (0: L) and decode steps (-1: N) */
    int warmup_decode;
    uint64_t seed;              /* of the random prompts */
    int halve_on_oom;           /* halve B and retry when a run is out of memory */
    /* Optional device accounting (NULL: none). after_warmup runs once the
       warm-up is done (e.g. to restart peak tracking); device_used gives the
       bytes in use, read at the end of each timed decode, minus
       device_used_before. */
    void (*after_warmup)(Backend *b);
    size_t (*device_used)(void);
    size_t device_used_before;
} BenchSpec;

typedef struct {
    int batch;                  /* the batch that ran (spec->batch unless halved) */
    char halvings[256];         /* batches that did not fit, "128, 64" ("" none) */
    int warmup_context, warmup_decode;
    /* medians over the repeats */
    double begin_s, prefill_s, ttft_s, decode_s;
    double prefill_tokens_per_s; /* batch x L / prefill seconds */
    double decode_tokens_per_s;  /* batch x N / decode seconds (0 when N = 0) */
    /* every repeat, in order: [repeats] each (malloc'd) */
    double *prefill_each, *decode_each, *ttft_each;
    int repeats;
    size_t cache_bytes;          /* one sequence's, held by the backend, after the last repeat */
    size_t device_used;          /* see BenchSpec.device_used; 0 without it */
} BenchResult;

/* Runs the protocol on b. Fails (err) on anything but an out-of-memory that
   halving can still fix. */
int bench_run(Backend *b, const BenchSpec *spec, BenchResult *out, Err *err);
void bench_result_free(BenchResult *r);

#endif
