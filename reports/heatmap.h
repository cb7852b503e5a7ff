/* heatmap.h: the NIAH heatmap, gkamradt-style (research/eval-anchors.md
   §1.2): rows = needle depth percent (0 at the top), columns = context length
   (sorted), each cell coloured red -> yellow -> green (#F0496E, #EBB839,
   #0CD79F) for its mean score 0..1 with the value printed in it, a colour bar
   labelled "Score", axis titles "Token Limit" and "Depth Percent". The same
   picture as PNG (through canvas.h) and as SVG text (for HTML). */
#ifndef HYMEVAL_HEATMAP_H
#define HYMEVAL_HEATMAP_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "canvas.h"
#include "error.h"

typedef struct {
    char title[256];
    int n_x, n_y;
    double *lengths; /* n_x, ascending */
    double *depths;  /* n_y, ascending (percent) */
    double *values;  /* n_y * n_x, row-major by depth; NaN where no sample */
    long *counts;    /* n_y * n_x examples per cell */
} Heatmap;

/* The cells of summary.json ("cells": [{task, metric, length, depth, value,
   n, ...}]) for one task and metric. Cells of the same length and depth (from
   different groups) are merged, weighted by n. Fails when there is none. */
int heatmap_from_summary(Heatmap *hm, const cJSON *summary, const char *task, const char *metric, Err *err);
void heatmap_free(Heatmap *hm);

/* The colour of a score: v in [0, 1] (clamped) on the three-colour scale;
   NaN gives light grey. */
Rgb heatmap_color(double v);

int heatmap_render(const Heatmap *hm, Canvas *out, Err *err);
int heatmap_write_png(const Heatmap *hm, const char *path, Err *err);
int heatmap_encode_png(const Heatmap *hm, unsigned char **out, size_t *out_len, Err *err);
/* Standalone SVG document (caller frees); id_prefix keeps the gradient's id
   unique when several SVGs share one HTML page. NULL when out of memory. */
char *heatmap_svg(const Heatmap *hm, const char *id_prefix);

#endif
