/* measure_view.h: the measurement kinds' pictures and tables for the report
   (reports/report.c lays them out), read from the samples' "extra" objects
   (docs/tasks/measurements.md describes them):
     rope_drift  attn_diff against Δ1 per mode; the BF16-vs-FP32 difference by
                 absolute position per BF16 mode;
     niah_shift  accuracy per (mode, Δ) with n (from summary.json);
     erf         the per-layer receptive field per head type (attention, SSM)
                 and the perturbation influence I(d), per length;
     throughput  prefill / decode tokens/s per (batch, context), and a table;
     cache       the formula table (every row x every length, MB) with the
                 measured sizes.
   This file knows the extras' formats; report.c knows the page. */
#ifndef HYMEVAL_MEASURE_VIEW_H
#define HYMEVAL_MEASURE_VIEW_H

#include <cjson/cJSON.h>

#include "error.h"
#include "plot.h"
#include "report.h"

typedef struct {
    char stub[300];     /* picture file name without ".png" (report.c makes it safe) */
    char caption[600];
    Plot *plot;
} ViewFigure;

typedef struct {
    char caption[600];
    int n_cols, n_rows;
    char **heads;       /* [n_cols] */
    int *numeric;       /* [n_cols] right-aligned */
    char **cells;       /* [n_rows * n_cols] */
} ViewTable;

typedef struct {
    const char *task;   /* owned by the view */
    int section;        /* MetricSection the view belongs to */
    ViewFigure *figures;
    int n_figures;
    ViewTable *tables;
    int n_tables;
} TaskView;

typedef struct {
    cJSON *samples;     /* the measurement kinds' sample lines kept by views_add_sample */
    TaskView *views;
    int n_views;
} MeasureViews;

/* Keeps what the views need from one samples.jsonl line (lines of other
   kinds, and error lines, are ignored). */
void views_add_sample(MeasureViews *v, const cJSON *line);
/* Builds every task's figures and tables from the kept lines and the
   summary (niah_shift's accuracies). A task whose extras are missing or
   malformed gets no view; nothing here fails the report. */
void views_build(MeasureViews *v, const cJSON *summary);
void views_free(MeasureViews *v);

#endif
