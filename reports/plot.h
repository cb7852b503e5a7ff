/* plot.h: line plots of named series (x/y axes with ticks, optional log x,
   legend), as PNG (canvas.h) and as SVG text. Used for accuracy by context
   length, run history, and ERF / RoPE-drift curves.

       Plot *p = plot_new("niah: accuracy by length", "Token Limit", "accuracy");
       plot_set_log_x(p, 1);
       plot_set_y_range(p, 0, 1);
       plot_add_series(p, "string_match_all", xs, ys, n);   (NaN y = a gap)
       plot_write_png(p, "len.png", &err);  char *svg = plot_svg(p, "len");
       plot_free(p); */
#ifndef HYMEVAL_PLOT_H
#define HYMEVAL_PLOT_H

#include <stddef.h>

#include "canvas.h"
#include "error.h"

typedef struct Plot Plot;

Plot *plot_new(const char *title, const char *x_label, const char *y_label);
void plot_free(Plot *p);

/* Picture size in pixels (default 960 x 540; the legend adds width). */
void plot_set_size(Plot *p, int width, int height);
void plot_set_log_x(Plot *p, int log_x);
/* Fixed y range (e.g. 0..1 for accuracies); otherwise it is fitted to the data. */
void plot_set_y_range(Plot *p, double lo, double hi);
/* Ticks at the given x positions with the given labels instead of computed
   ones (e.g. one tick per run). Copies its inputs. */
int plot_set_x_ticks(Plot *p, const double *xs, const char *const *labels, int n);
/* One series; points are drawn in the order given. Copies its inputs.
   Non-finite y values (and x <= 0 on a log axis) leave a gap. */
int plot_add_series(Plot *p, const char *name, const double *xs, const double *ys, int n);
int plot_series_count(const Plot *p);

int plot_render(const Plot *p, Canvas *out, Err *err);
int plot_write_png(const Plot *p, const char *path, Err *err);
int plot_encode_png(const Plot *p, unsigned char **out, size_t *out_len, Err *err);
/* Standalone SVG document (caller frees); NULL when out of memory. */
char *plot_svg(const Plot *p);
int plot_write_svg(const Plot *p, const char *path, Err *err);

#endif
