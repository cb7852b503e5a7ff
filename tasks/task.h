/* task.h: what a task is to the runner. A task definition (one JSONL line,
   DESIGN.md §3) names a kind; the kind validates the definition's fields,
   builds Examples from it (deterministically from the seed), and scores a
   Prediction for each Example into named metric values. Nothing here knows
   which backend runs the model. */
#ifndef HYMEVAL_TASK_H
#define HYMEVAL_TASK_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "tokenizer.h"

struct HymbaModel; /* engine/model.h; used by measurement kinds only */
struct Backend;    /* engine/backend.h; idem */

/* ---------------------------------------------------------------- definitions */

/* One task line of a task file, validated. Common fields are decoded here;
   the kind-specific ones stay in `json` for the kind to read. */
typedef struct {
    char name[128];          /* unique within the file */
    char kind[32];           /* "niah", "squad_c", "recall", "multiple_choice", ... */
    uint64_t seed;           /* default 1234 */
    int limit;               /* 0 = all examples */
    int max_new_tokens;      /* 0 = the kind's default */
    char metric[64];         /* "" = the kind's default headline metric */
    char data[4096];         /* resolved path ("" if none), relative paths resolved against the task file */
    char precision[16];      /* "" = the run's default (precision suites set it per task) */
    const char *file;        /* the task file, for messages */
    int line;                /* 1-based line in the task file */
    cJSON *json;             /* the whole object (owned by the TaskFile) */
} TaskDef;

typedef struct {
    TaskDef *tasks;
    int n;
    char path[4096];
    char sha256[65];         /* hash of the file's bytes, for run.json */
} TaskFile;

/* Reads and validates the whole file before any model work: every error
   names the file, the line, the field and what was expected. */
int taskfile_load(TaskFile *tf, const char *path, Err *err);
void taskfile_free(TaskFile *tf);

/* Typed access to kind-specific fields, with "file:line: field: expected ..."
   errors. `found` (may be NULL) tells whether the field was present. */
int task_int(const TaskDef *t, const char *field, int fallback, int min, int max, int *out, Err *err);
int task_double(const TaskDef *t, const char *field, double fallback, double min, double max, double *out, Err *err);
int task_bool(const TaskDef *t, const char *field, int fallback, int *out, Err *err);
/* Returns a pointer into the JSON (or fallback); must be one of `allowed`
   (NULL-terminated list) when allowed is not NULL. */
int task_string(const TaskDef *t, const char *field, const char *fallback, const char *const *allowed,
                const char **out, Err *err);
/* An array of ints / strings; *out is malloc'd. */
int task_int_list(const TaskDef *t, const char *field, int **out, int *n, Err *err);
int task_string_list(const TaskDef *t, const char *field, char ***out, int *n, Err *err);
/* 1 if the task's object has the field (of any type), else 0: the accessors
   themselves cannot tell an absent field from one equal to the fallback. */
int task_has(const TaskDef *t, const char *field);
/* Formats "file:line: field \"f\": msg" into err; returns -1. */
int task_field_error(const TaskDef *t, const char *field, Err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---------------------------------------------------------------- examples */

typedef enum {
    REQ_GENERATE, /* greedy generation from prompt until a stop string / max_new_tokens */
    REQ_LOGLIK,   /* log-likelihood of each (context, continuation) choice */
    REQ_MEASURE,  /* a measurement of the model itself: the kind's measure() runs it (measurement kinds) */
} RequestKind;

typedef struct {
    char id[160];            /* unique within its task; stable across runs (resume keys on it) */
    RequestKind request;
    /* REQ_GENERATE */
    char *prompt;            /* the full prompt text, answer prefix included */
    int max_new_tokens;
    char **stop;             /* stop strings */
    int n_stop;
    char **targets;          /* gold answers */
    int n_targets;
    /* REQ_LOGLIK: choice i is (contexts[i], continuations[i]); lm-eval encodes
       the pair jointly (trailing spaces of the context move to the continuation) */
    char **contexts;
    char **continuations;
    int n_choices;
    int gold;                /* index of the correct choice */
    int add_bos;             /* 1 prepend BOS (lm-eval HF default), 0 never, -1 tokenizer default */
    /* what samples.jsonl records beside the prediction */
    int target_tokens;       /* requested prompt length in tokens (0 = none) */
    int prompt_tokens;       /* realised prompt length in tokens (filled by the builder when it knows) */
    double depth;            /* requested needle depth in percent, or -1 */
    int needle_token_pos;    /* realised token index of the (first) needle, or -1 */
    int needle_token_len;    /* its length in tokens, or 0 */
    char group[64];          /* aggregation bucket, e.g. "4096" (a length) or "" */
    cJSON *extra;            /* anything else worth recording (owned), or NULL */
} Example;

typedef struct {
    Example *items;
    int n, cap;
} ExampleList;

/* Appends a zeroed example (depth -1, needle_token_pos -1, add_bos 1) and returns it. */
Example *examples_push(ExampleList *list, Err *err);
void examples_free(ExampleList *list);
/* Helpers for building string arrays inside an example. */
char *xstrdup(const char *s);
int strv_push(char ***v, int *n, const char *s);
void strv_free(char **v, int n);

/* ---------------------------------------------------------------- predictions and scores */

typedef struct {
    /* REQ_GENERATE */
    const char *text;        /* the generation, already cut at the stop string */
    /* REQ_LOGLIK */
    const double *ll;        /* [n_choices] summed log-likelihood of each continuation */
    const int *greedy;       /* [n_choices] 1 if the continuation is the greedy one */
} Prediction;

#define MAX_METRICS 8
typedef struct {
    int n;
    char name[MAX_METRICS][32];
    double value[MAX_METRICS];
} Scores;

void scores_add(Scores *s, const char *name, double value);

/* ---------------------------------------------------------------- kinds */

/* What a measurement runs on. */
typedef struct MeasureEnv {
    struct HymbaModel *model; /* the task's model (its precision): host weights, the CPU forward */
    struct Backend *backend;  /* the run's backend on that model (cpu, or cuda under --device cuda) */
    /* The same checkpoint at another precision (a Precision of model.h),
       loaded once and owned by the caller; NULL (err set) on failure. May
       itself be NULL: a kind then loads the model for itself. */
    struct HymbaModel *(*model_at)(void *user, int precision, Err *err);
    /* A backend of the run's device on model_at(precision), opened once and
       owned by the caller; NULL (err set) on failure. May itself be NULL:
       a kind then runs on the CPU forward. */
    struct Backend *(*backend_at)(void *user, int precision, Err *err);
    void *user;
} MeasureEnv;

typedef struct {
    const char *name;
    /* kind-specific fields the kind accepts (NULL-terminated); any other
       unknown field is an error naming it */
    const char *const *fields;
    /* checks the kind-specific fields (types, ranges, data file readable) */
    int (*validate)(const TaskDef *t, Err *err);
    /* builds every example (before `limit`); tok is the model's tokenizer,
       needed for token-length targeting */
    int (*build)(const TaskDef *t, const Tokenizer *tok, ExampleList *out, Err *err);
    /* scores one example into metric values; the first metric is the headline */
    int (*score)(const TaskDef *t, const Example *ex, const Prediction *p, Scores *out, Err *err);
    /* Measurement kinds only (NULL otherwise): runs one REQ_MEASURE example
       on the model and scores it; *extra (may stay NULL) receives the
       example's curves and tables for samples.jsonl. These kinds look inside
       the forward pass (positions, attention rows, SSM tokens, hidden states
       through the observer; cache allocations) or time the backend, so they,
       and only they, include engine headers (model.h, observe.h, backend.h)
       in tasks/; every other kind stays behind prompts and predictions. */
    int (*measure)(const TaskDef *t, const struct MeasureEnv *env, const Example *ex, Scores *out, cJSON **extra,
                   Err *err);
} TaskKind;

/* A task definition nested in field `field` of parent (an object: a task
   of `kind` without name, kind or precision), validated as a task line is;
   its seed defaults to the parent's, its messages name the parent's file and
   line and the task "parent.field". out->json points into parent's JSON. */
int task_nested(const TaskDef *parent, const char *field, const TaskKind *kind, TaskDef *out, Err *err);

/* The registry of kinds (tasks/registry.c). */
const TaskKind *task_kind_find(const char *name);
/* NULL-terminated list of every kind, for --help and docs. */
const TaskKind *const *task_kinds(void);

#endif
