/* results.h: a run's output directory (DESIGN.md §4): run.json,
   samples.jsonl appended one line per scored example as it is produced, and
   summary.json recomputed from samples.jsonl, so that a killed run resumed
   with --resume ends with exactly the summary of an uninterrupted one. */
#ifndef HYMEVAL_RESULTS_H
#define HYMEVAL_RESULTS_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "error.h"

typedef struct {
    char dir[4096];
    FILE *samples;       /* samples.jsonl, opened for appending */
    cJSON *done;         /* object: task name -> object of example ids already scored */
    int n_done;
} Results;

/* Opens (creating) dir. Without resume, a directory that already holds
   samples.jsonl is an error. With resume, samples.jsonl is read (a torn last
   line from a kill is cut off) and run.json must describe the same run:
   same task file hash and model hash (identity is the cJSON run_identity). */
int results_open(Results *r, const char *dir, int resume, const cJSON *run_identity, Err *err);
void results_close(Results *r);

/* Whether task/example was scored in an earlier (interrupted) run. */
int results_is_done(const Results *r, const char *task, const char *example_id);
/* Appends one sample line and flushes it to the kernel before returning. */
int results_append(Results *r, cJSON *sample, Err *err);
/* Writes run.json (atomically: temp file + rename). */
int results_write_json(const Results *r, const char *name, const cJSON *obj, Err *err);

/* Recomputes summary.json from samples.jsonl: per task and metric the mean,
   its standard error and n; per task, metric and group; and per NIAH cell
   (length x depth) with a Wilson interval. Returns the summary (caller frees). */
cJSON *results_summarize(const Results *r, Err *err);

#endif
