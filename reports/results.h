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
    FILE *samples;       /* samples.jsonl (or this process's part file), opened for appending */
    cJSON *done;         /* object: task name -> object of example ids already scored */
    int n_done;
    char append_name[300]; /* the file `samples` appends to, relative to dir */
} Results;

/* Opens (creating) dir. Without resume, a directory that already holds
   samples.jsonl (or part files, below) is an error. With resume,
   samples.jsonl is read (a torn last line from a kill is cut off), the part
   files too, and run.json must describe the same run:
   same task file hash and model hash (identity is the cJSON run_identity). */
int results_open(Results *r, const char *dir, int resume, const cJSON *run_identity, Err *err);
void results_close(Results *r);

/* A run spread over several processes (DESIGN.md §7): each appends to its
   own part file, DIR/parts/<part>.jsonl, and the parts are merged into
   DIR/samples.jsonl at the end. The examples already done are those of
   samples.jsonl and of every part file, complete lines only (a part cut
   mid-line by a kill is read up to its last newline). Flags: */
enum {
    RESULTS_RESUME = 1, /* --resume: continue an earlier run in dir */
    RESULTS_PEERS = 2,  /* other processes (--shard) write their own parts into dir concurrently, now or
                           later: their part files are not earlier results; resumed or not, every run
                           description present (run.json and those in parts/) must match run_identity */
};
/* results_open for one part: part NULL appends to DIR/samples.jsonl. */
int results_open_part(Results *r, const char *dir, const char *part, int flags, const cJSON *run_identity, Err *err);

/* The canonical order of a run: an object {task name: [example id, ...]},
   tasks in task-file order, examples in build order. results_merge writes
   out_dir/samples.jsonl (atomically) holding, in that order, one line for
   every example, taken byte for byte from the sources: results directories
   (their samples.jsonl, then the *.jsonl in parts/ by name) or single part files.
   When an example has several lines the first found wins (*duplicates
   counts the others). Fails, writing nothing, when an example has no line
   or a line names an example the order lacks. */
int results_merge(const char *const *sources, int n_sources, const cJSON *order, const char *out_dir, int *duplicates,
                  Err *err);
/* Removes dir/parts/ (part files and their descriptions) once merged. */
int results_remove_parts(const char *dir, Err *err);
/* The run descriptions in dir/parts/ (the *.json, sorted): a malloc'd array of
   malloc'd paths (free with results_free_paths). */
int results_part_descriptions(const char *dir, char ***paths, int *n, Err *err);
void results_free_paths(char **paths, int n);
/* A run's identity: what --resume and merge must find unchanged. Results of
   two backends don't mix (throughput, and BF16 vs emulated numerics). */
typedef struct {
    const char *tasks_sha256, *model_sha256, *precision, *backend;
    double limit;
    const char *only; /* NULL: none */
} RunIdentity;
/* A new run description holding the identity (the caller adds the rest). */
cJSON *results_identity_new(const RunIdentity *id);
/* Whether two run descriptions describe the same run (task file, model,
   precision, backend, limit, --only); *which names the first field that differs. */
int results_same_run(const cJSON *a, const cJSON *b, char *which, size_t len);

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
