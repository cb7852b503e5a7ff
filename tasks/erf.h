/* erf.h: the effective-receptive-field kind's helpers (tasks/erf.c), and
   the small pieces the three measurement kinds (erf, rope_drift, cache)
   share. Measurement kinds run REQ_MEASURE examples through the run's
   backend with an observer on the model (docs/tasks/measurements.md), so
   this header uses engine/model.h. */
#ifndef HYMEVAL_ERF_H
#define HYMEVAL_ERF_H

#include <stdint.h>

#include "model.h"
#include "task.h"

/* ---------------------------------------------------------------- effective length (DESIGN.md §5) */

/* RULER's threshold (the Llama-2-7B 4k score, 85.6 %), as a fraction. */
#define EFFLEN_RULER_THRESHOLD 0.856
/* hymeval's default: 90 % of the model's own score at its shortest length. */
#define EFFLEN_DEFAULT_RELATIVE 0.9

/* The effective length of a NIAH (or any per-length) result: the largest
   tested length up to which the accuracy stays above the threshold, i.e.
   the lengths are walked from the shortest up and the walk stops at the
   first one that fails. lengths need not be sorted (ties: the mean of their
   accuracies); accuracy on the same scale as the threshold (fractions).
   relative = 0: a length passes when accuracy > threshold (RULER: "exceeds"
   EFFLEN_RULER_THRESHOLD). relative = 1: a length passes when accuracy >=
   threshold x the accuracy at the shortest length (default
   EFFLEN_DEFAULT_RELATIVE); a model that scores 0 at its shortest length has
   no effective length. Returns 0 when even the shortest length fails (or
   n <= 0). */
double effective_length(const int *lengths, const double *accuracy, int n, double threshold, int relative);

/* ---------------------------------------------------------------- shared by the measurement kinds */

/* A seeded token sequence of exactly `length` ids for a measurement:
   source "prose" = the essay-like haystack (datasets/haystack.c) encoded
   with the model's tokenizer, BOS first, cut to length; "random" = BOS then
   uniform ids in [3, vocab). *ids is malloc'd. */
int measure_sequence(const struct HymbaModel *m, const char *source, uint64_t seed, int length, int32_t **ids,
                     Err *err);
extern const char *const measure_sources[]; /* {"prose", "random", NULL} */

/* The task's checkpoint at precision p: env->model when it is at p, else
   the caller's (env->model_at), else loaded here (*owned = 1: the caller
   model_free()s it). */
HymbaModel *measure_model_at(const MeasureEnv *env, Precision p, int *owned, Err *err);
/* A backend on m (a model measure_model_at gave): the run's, on its device,
   when the run offers one (env->backend_at), else a CPU backend opened here
   and left in *owned for the caller to close. */
struct Backend *measure_backend_on(const MeasureEnv *env, HymbaModel *m, struct Backend **owned, Err *err);

/* A mixed 64-bit seed from a task seed and two small integers. */
uint64_t measure_seed(uint64_t seed, uint64_t a, uint64_t b);

/* score() of a measurement kind: REQ_MEASURE examples are scored by
   measure(), so reaching this is an error. */
int measure_no_score(const TaskDef *t, const Example *ex, const Prediction *p, Scores *out, Err *err);

/* An integer list field: absent -> a copy of fallback; every element must be
   in [min, max], none twice. Sorted ascending when sort != 0. *out malloc'd. */
int measure_int_list(const TaskDef *t, const char *field, const int *fallback, int n_fallback, int min, int max,
                     int sort, int **out, int *n, Err *err);

/* The "modes" field: precision mode names (DESIGN.md §5), each at most
   once; absent -> all four. *out malloc'd (strv_free). */
int measure_modes(const TaskDef *t, char ***out, int *n, Err *err);

/* A JSON array of n doubles / ints. */
cJSON *measure_json_doubles(const double *v, int n);
cJSON *measure_json_ints(const int *v, int n);

#endif
