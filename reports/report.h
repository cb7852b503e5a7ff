/* report.h: a results directory (DESIGN.md §4) read back, and written up as
   DIR/report.html (self-contained: CSS inline, pictures as inline SVG, no
   scripts, nothing fetched) and DIR/report.md (pictures as PNG files beside
   it). Also the loader `hymeval compare` and `hymeval history` share. */
#ifndef HYMEVAL_REPORT_H
#define HYMEVAL_REPORT_H

#include <cjson/cJSON.h>

#include "error.h"

typedef struct {
    char dir[4096];          /* the results directory */
    char summary_path[4200]; /* its summary.json */
    cJSON *run;              /* run.json, or NULL when absent or unreadable */
    cJSON *summary;          /* summary.json: {"metrics": [...], "cells": [...], "errors": {...}} */
} ResultDir;

/* path: a results directory or the path of a summary.json in one. Fails
   (with a message naming the file) when summary.json is missing, is not
   JSON, or its "metrics" is not an array of objects with string "task" and
   "metric" and a number "value". */
int resultdir_open(ResultDir *rd, const char *path, Err *err);
void resultdir_close(ResultDir *rd);

/* A task's headline metric: the first metric summary.json lists for it
   (the first score its kind reports), or NULL. */
const char *summary_headline_metric(const cJSON *summary, const char *task);

/* How a metric is read (DESIGN.md §5), from its task's kind (from
   samples.jsonl; NULL or "" when unknown) and its name. */
typedef enum { METRIC_SCORE, METRIC_THROUGHPUT, METRIC_CACHE, METRIC_ERF, METRIC_DRIFT } MetricSection;
/* The report section: the kind decides (throughput, cache, erf, rope_drift);
   failing that the name: *tokens_per_s* throughput, *bytes* / mb / *_mb
   cache (but acc_bytes is an accuracy), erf* / mmd* ERF, *drift* /
   *attn_diff* / *logit_diff* drift; everything else is a score. */
MetricSection metric_section(const char *kind, const char *metric);

typedef enum {
    BETTER_HIGHER,       /* a score: compared with a significance test */
    BETTER_HIGHER_RATIO, /* throughput (*tokens_per_s*): compared by ratio */
    BETTER_LOWER_RATIO,  /* sizes (*bytes*, mb, *_mb, cache *allocated* / *used*): by ratio */
    BETTER_NEITHER,      /* a measurement with no better direction (ERF, drift, kl, other
                            throughput or measurement outputs): reported, never a regression */
} MetricDirection;
MetricDirection metric_direction(const char *kind, const char *metric);

/* (Re)writes dir/report.html, dir/report.md and the PNG pictures report.md
   links (heatmap-*.png, length-*.png, ...). */
int report_write(const char *dir, Err *err);

#endif
