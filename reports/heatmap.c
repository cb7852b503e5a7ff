/* heatmap.c: see heatmap.h. One layout (pixel positions) drives both the
   PNG and the SVG, so the two pictures match. */
#include "heatmap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "textbuf.h"

#define INK 0x222222u
#define MUTED 0x555555u
#define EMPTY_CELL 0xE6E6E6u

static const Rgb SCALE_COLORS[3] = {0xF0496E, 0xEBB839, 0x0CD79F};

/* ---------------------------------------------------------------- data */

static int add_unique(double *list, int *n, double v) {
    for (int i = 0; i < *n; i++)
        if (list[i] == v) return i;
    list[(*n)++] = v;
    return *n - 1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int index_of(const double *list, int n, double v) {
    for (int i = 0; i < n; i++)
        if (list[i] == v) return i;
    return -1;
}

static int cell_matches(const cJSON *cell, const char *task, const char *metric) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cell, "task");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(cell, "metric");
    return cJSON_IsString(t) && cJSON_IsString(m) && strcmp(t->valuestring, task) == 0 &&
           strcmp(m->valuestring, metric) == 0 && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(cell, "length")) &&
           cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(cell, "depth")) &&
           cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(cell, "value"));
}

int heatmap_from_summary(Heatmap *hm, const cJSON *summary, const char *task, const char *metric, Err *err) {
    memset(hm, 0, sizeof *hm);
    const cJSON *cells = cJSON_GetObjectItemCaseSensitive(summary, "cells");
    int total = cJSON_GetArraySize(cells);
    if (!cJSON_IsArray(cells) || total == 0) return err_set(err, "summary has no NIAH cells");
    hm->lengths = malloc(sizeof(double) * (size_t)total);
    hm->depths = malloc(sizeof(double) * (size_t)total);
    if (!hm->lengths || !hm->depths) {
        heatmap_free(hm);
        return err_set(err, "out of memory");
    }
    const cJSON *cell;
    cJSON_ArrayForEach(cell, cells) {
        if (!cell_matches(cell, task, metric)) continue;
        add_unique(hm->lengths, &hm->n_x, cJSON_GetObjectItemCaseSensitive(cell, "length")->valuedouble);
        add_unique(hm->depths, &hm->n_y, cJSON_GetObjectItemCaseSensitive(cell, "depth")->valuedouble);
    }
    if (hm->n_x == 0) {
        heatmap_free(hm);
        return err_set(err, "no NIAH cells for task %s, metric %s", task, metric);
    }
    qsort(hm->lengths, (size_t)hm->n_x, sizeof(double), cmp_double);
    qsort(hm->depths, (size_t)hm->n_y, sizeof(double), cmp_double);
    size_t n_cells = (size_t)hm->n_x * (size_t)hm->n_y;
    hm->values = malloc(sizeof(double) * n_cells);
    hm->counts = calloc(n_cells, sizeof(long));
    double *sums = calloc(n_cells, sizeof(double));
    if (!hm->values || !hm->counts || !sums) {
        free(sums);
        heatmap_free(hm);
        return err_set(err, "out of memory");
    }
    cJSON_ArrayForEach(cell, cells) {
        if (!cell_matches(cell, task, metric)) continue;
        int x = index_of(hm->lengths, hm->n_x, cJSON_GetObjectItemCaseSensitive(cell, "length")->valuedouble);
        int y = index_of(hm->depths, hm->n_y, cJSON_GetObjectItemCaseSensitive(cell, "depth")->valuedouble);
        const cJSON *n_item = cJSON_GetObjectItemCaseSensitive(cell, "n");
        long n = cJSON_IsNumber(n_item) && n_item->valuedouble >= 1 ? (long)n_item->valuedouble : 1;
        size_t k = (size_t)y * (size_t)hm->n_x + (size_t)x;
        sums[k] += cJSON_GetObjectItemCaseSensitive(cell, "value")->valuedouble * (double)n;
        hm->counts[k] += n;
    }
    for (size_t k = 0; k < n_cells; k++) hm->values[k] = hm->counts[k] ? sums[k] / (double)hm->counts[k] : NAN;
    free(sums);
    snprintf(hm->title, sizeof hm->title, "%s: %s", task, metric);
    return 0;
}

void heatmap_free(Heatmap *hm) {
    free(hm->lengths);
    free(hm->depths);
    free(hm->values);
    free(hm->counts);
    memset(hm, 0, sizeof *hm);
}

static Rgb mix(Rgb a, Rgb b, double t) {
    Rgb out = 0;
    for (int shift = 16; shift >= 0; shift -= 8) {
        double ca = (a >> shift) & 0xFF, cb = (b >> shift) & 0xFF;
        out |= (Rgb)lround(ca + (cb - ca) * t) << shift;
    }
    return out;
}

Rgb heatmap_color(double v) {
    if (isnan(v)) return EMPTY_CELL;
    if (v < 0) v = 0;
    if (v > 1) v = 1;
    return v <= 0.5 ? mix(SCALE_COLORS[0], SCALE_COLORS[1], v / 0.5) : mix(SCALE_COLORS[1], SCALE_COLORS[2], (v - 0.5) / 0.5);
}

/* ---------------------------------------------------------------- layout */

enum { TEXT_SCALE = 2, TITLE_SCALE = 3, PAD = 16, TICK = 6 };

typedef struct {
    int width, height;
    int title_y, subtitle_y;
    int grid_x, grid_y, cell_w, cell_h;
    int ylabel_cx;                 /* centre x of the rotated "Depth Percent" */
    int xtick_y, xlabel_y;         /* tops of the length labels and of "Token Limit" */
    int xticks_vertical;           /* length labels rotated when they do not fit */
    int xtick_h;                   /* height taken by the length labels */
    int bar_x, bar_w, bar_label_x; /* colour bar and the centre of its "Score" title */
    int print_values;              /* cells wide enough for "0.00" */
    int title_cx;                  /* centre of the title and subtitle */
    int bar_ticks;                 /* colour bar labels: 0, 1/bar_ticks, ..., 1 */
    char subtitle[96];
} Layout;

static void format_length(double v, char *out, size_t len) { snprintf(out, len, "%.0f", v); }

static void format_depth(double v, char *out, size_t len) {
    if (fabs(v - round(v)) < 1e-9) snprintf(out, len, "%.0f", v);
    else snprintf(out, len, "%.1f", v);
}

static void format_value(double v, char *out, size_t len) { snprintf(out, len, "%.2f", v); }

static void layout_compute(const Heatmap *hm, Layout *L) {
    memset(L, 0, sizeof *L);
    const int text_h = canvas_text_height(TEXT_SCALE);
    int widest_length = 0, widest_depth = 0;
    char buf[64];
    for (int i = 0; i < hm->n_x; i++) {
        format_length(hm->lengths[i], buf, sizeof buf);
        int w = canvas_text_width(buf, TEXT_SCALE);
        if (w > widest_length) widest_length = w;
    }
    for (int i = 0; i < hm->n_y; i++) {
        format_depth(hm->depths[i], buf, sizeof buf);
        int w = canvas_text_width(buf, TEXT_SCALE);
        if (w > widest_depth) widest_depth = w;
    }
    int value_w = canvas_text_width("0.00", TEXT_SCALE);
    /* cells: wide enough for a value; shrink for big grids but keep them usable */
    L->cell_w = hm->n_x <= 16 ? value_w + 28 : value_w + 12;
    L->cell_h = hm->n_y <= 16 ? text_h + 18 : text_h + 6;
    /* a short grid still holds its rotated "Depth Percent" title */
    int min_grid_h = canvas_text_width("Depth Percent", TEXT_SCALE) + 16;
    if (L->cell_h * hm->n_y < min_grid_h) L->cell_h = (min_grid_h + hm->n_y - 1) / hm->n_y;
    L->print_values = 1;
    L->xticks_vertical = widest_length + 6 > L->cell_w;
    L->xtick_h = L->xticks_vertical ? widest_length : text_h;

    long lo = -1, hi = 0;
    for (int k = 0; k < hm->n_x * hm->n_y; k++) {
        if (!hm->counts[k]) continue;
        if (lo < 0 || hm->counts[k] < lo) lo = hm->counts[k];
        if (hm->counts[k] > hi) hi = hm->counts[k];
    }
    if (lo == hi) snprintf(L->subtitle, sizeof L->subtitle, "mean score per cell, n = %ld per cell", hi);
    else snprintf(L->subtitle, sizeof L->subtitle, "mean score per cell, n = %ld to %ld per cell", lo, hi);

    int grid_w = L->cell_w * hm->n_x, grid_h = L->cell_h * hm->n_y;
    L->title_y = PAD;
    L->subtitle_y = L->title_y + canvas_text_height(TITLE_SCALE) + 8;
    L->grid_y = L->subtitle_y + text_h + 18;
    L->ylabel_cx = PAD + text_h / 2;
    L->grid_x = PAD + text_h + 14 + widest_depth + TICK + 6;
    L->xtick_y = L->grid_y + grid_h + TICK + 6;
    L->xlabel_y = L->xtick_y + L->xtick_h + 14;
    L->bar_x = L->grid_x + grid_w + 36;
    L->bar_w = 28;
    int bar_ticks_w = canvas_text_width("0.0", TEXT_SCALE);
    L->bar_label_x = L->bar_x + L->bar_w + TICK + 6 + bar_ticks_w + 14 + text_h / 2;
    L->width = L->bar_label_x + text_h / 2 + PAD;
    /* the title: over the grid, but never cut off (a narrow grid widens the picture) */
    int title_w = canvas_text_width(hm->title, TITLE_SCALE), sub_w = canvas_text_width(L->subtitle, TEXT_SCALE);
    int half = (title_w > sub_w ? title_w : sub_w) / 2 + PAD;
    int shift = half - (L->grid_x + grid_w / 2);
    if (shift > 0) { /* move everything right so the title fits on the left */
        L->grid_x += shift, L->ylabel_cx += shift, L->bar_x += shift, L->bar_label_x += shift, L->width += shift;
    }
    L->title_cx = L->grid_x + grid_w / 2;
    if (L->title_cx + half > L->width) L->width = L->title_cx + half;
    L->height = L->xlabel_y + text_h + PAD;
    /* colour bar labels at least two text lines apart */
    L->bar_ticks = grid_h >= 5 * 2 * text_h ? 5 : grid_h >= 2 * 2 * text_h ? 2 : 1;
}

/* ---------------------------------------------------------------- PNG */

int heatmap_render(const Heatmap *hm, Canvas *c, Err *err) {
    Layout L;
    layout_compute(hm, &L);
    if (canvas_init(c, L.width, L.height, 0xFFFFFF, err)) return -1;
    const int grid_w = L.cell_w * hm->n_x, grid_h = L.cell_h * hm->n_y;
    char buf[64];
    canvas_text(c, L.title_cx, L.title_y, hm->title, TITLE_SCALE, INK, ALIGN_CENTER, ALIGN_START, 1);
    canvas_text(c, L.title_cx, L.subtitle_y, L.subtitle, TEXT_SCALE, MUTED, ALIGN_CENTER, ALIGN_START, 0);
    for (int y = 0; y < hm->n_y; y++) {
        int top = L.grid_y + y * L.cell_h;
        for (int x = 0; x < hm->n_x; x++) {
            int left = L.grid_x + x * L.cell_w;
            double v = hm->values[(size_t)y * hm->n_x + x];
            canvas_fill_rect(c, left, top, L.cell_w, L.cell_h, heatmap_color(v));
            if (!isnan(v) && L.print_values) {
                format_value(v, buf, sizeof buf);
                canvas_text(c, left + L.cell_w / 2, top + L.cell_h / 2 + 1, buf, TEXT_SCALE, INK, ALIGN_CENTER,
                            ALIGN_CENTER, 0);
            }
        }
        /* depth tick and label */
        canvas_fill_rect(c, L.grid_x - TICK, top + L.cell_h / 2, TICK, 1, INK);
        format_depth(hm->depths[y], buf, sizeof buf);
        canvas_text(c, L.grid_x - TICK - 6, top + L.cell_h / 2 + 1, buf, TEXT_SCALE, INK, ALIGN_END, ALIGN_CENTER, 0);
    }
    /* thin white lines between cells, as a heatmap with linewidths draws them */
    for (int x = 1; x < hm->n_x; x++) canvas_fill_rect(c, L.grid_x + x * L.cell_w, L.grid_y, 1, grid_h, 0xFFFFFF);
    for (int y = 1; y < hm->n_y; y++) canvas_fill_rect(c, L.grid_x, L.grid_y + y * L.cell_h, grid_w, 1, 0xFFFFFF);
    for (int x = 0; x < hm->n_x; x++) {
        int cx = L.grid_x + x * L.cell_w + L.cell_w / 2;
        canvas_fill_rect(c, cx, L.grid_y + grid_h, 1, TICK, INK);
        format_length(hm->lengths[x], buf, sizeof buf);
        if (L.xticks_vertical) {
            int w = canvas_text_width(buf, TEXT_SCALE);
            canvas_text_up(c, cx, L.xtick_y + w / 2, buf, TEXT_SCALE, INK, 0);
        } else {
            canvas_text(c, cx, L.xtick_y, buf, TEXT_SCALE, INK, ALIGN_CENTER, ALIGN_START, 0);
        }
    }
    canvas_text(c, L.grid_x + grid_w / 2, L.xlabel_y, "Token Limit", TEXT_SCALE, INK, ALIGN_CENTER, ALIGN_START, 1);
    canvas_text_up(c, L.ylabel_cx, L.grid_y + grid_h / 2, "Depth Percent", TEXT_SCALE, INK, 1);

    /* colour bar: 1.0 at the top */
    for (int row = 0; row < grid_h; row++) {
        double v = grid_h > 1 ? 1.0 - (double)row / (grid_h - 1) : 1.0;
        canvas_fill_rect(c, L.bar_x, L.grid_y + row, L.bar_w, 1, heatmap_color(v));
    }
    canvas_rect(c, L.bar_x, L.grid_y, L.bar_w, grid_h, 0x999999);
    for (int t = 0; t <= L.bar_ticks; t++) {
        double v = (double)t / L.bar_ticks;
        int ty = L.grid_y + (int)lround((1.0 - v) * (grid_h - 1));
        canvas_fill_rect(c, L.bar_x + L.bar_w, ty, TICK, 1, INK);
        snprintf(buf, sizeof buf, "%.1f", v);
        canvas_text(c, L.bar_x + L.bar_w + TICK + 6, ty + 1, buf, TEXT_SCALE, INK, ALIGN_START, ALIGN_CENTER, 0);
    }
    canvas_text_up(c, L.bar_label_x, L.grid_y + grid_h / 2, "Score", TEXT_SCALE, INK, 1);
    return 0;
}

int heatmap_write_png(const Heatmap *hm, const char *path, Err *err) {
    Canvas c = {0};
    int rc = heatmap_render(hm, &c, err) || canvas_write_png(&c, path, err) ? -1 : 0;
    canvas_free(&c);
    return rc;
}

int heatmap_encode_png(const Heatmap *hm, unsigned char **out, size_t *out_len, Err *err) {
    Canvas c = {0};
    int rc = heatmap_render(hm, &c, err) || canvas_encode_png(&c, out, out_len, err) ? -1 : 0;
    canvas_free(&c);
    return rc;
}

/* ---------------------------------------------------------------- SVG */

/* Font sizes a little under the bitmap font's: proportional fonts run wider. */
static double svg_font_px(int scale) { return CANVAS_CAP_HEIGHT * scale * 1.15; }

static void svg_text(TextBuf *b, double x, double y, const char *anchor, int scale, int bold, Rgb color,
                     const char *transform, const char *text) {
    tb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%.1f\"%s fill=\"#%06X\"", x, y, anchor,
              svg_font_px(scale), bold ? " font-weight=\"bold\"" : "", (unsigned)color);
    if (transform) tb_printf(b, " transform=\"%s\"", transform);
    tb_add(b, ">");
    tb_add_xml(b, text);
    tb_add(b, "</text>\n");
}

char *heatmap_svg(const Heatmap *hm, const char *id_prefix) {
    Layout L;
    layout_compute(hm, &L);
    const int grid_w = L.cell_w * hm->n_x, grid_h = L.cell_h * hm->n_y;
    const double cap = CANVAS_CAP_HEIGHT * TEXT_SCALE, title_cap = CANVAS_CAP_HEIGHT * TITLE_SCALE;
    char buf[64], transform[96];
    TextBuf b;
    tb_init(&b);
    tb_printf(&b,
              "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
              "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" role=\"img\" aria-label=\"",
              L.width, L.height, L.width, L.height);
    tb_add_xml(&b, hm->title);
    tb_add(&b, " heatmap\">\n");
    tb_printf(&b, "<defs><linearGradient id=\"%s-scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">", id_prefix);
    for (int i = 0; i < 3; i++)
        tb_printf(&b, "<stop offset=\"%.1f\" stop-color=\"#%06X\"/>", i / 2.0, (unsigned)SCALE_COLORS[i]);
    tb_add(&b, "</linearGradient></defs>\n");
    tb_printf(&b, "<rect width=\"%d\" height=\"%d\" fill=\"#FFFFFF\"/>\n", L.width, L.height);
    svg_text(&b, L.title_cx, L.title_y + title_cap, "middle", TITLE_SCALE, 1, INK, NULL, hm->title);
    svg_text(&b, L.title_cx, L.subtitle_y + cap, "middle", TEXT_SCALE, 0, MUTED, NULL, L.subtitle);
    for (int y = 0; y < hm->n_y; y++) {
        int top = L.grid_y + y * L.cell_h;
        for (int x = 0; x < hm->n_x; x++) {
            int left = L.grid_x + x * L.cell_w;
            size_t k = (size_t)y * hm->n_x + x;
            double v = hm->values[k];
            char depth[32], length[32];
            format_depth(hm->depths[y], depth, sizeof depth);
            format_length(hm->lengths[x], length, sizeof length);
            tb_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#%06X\" stroke=\"#FFFFFF\">",
                      left, top, L.cell_w, L.cell_h, (unsigned)heatmap_color(v));
            if (isnan(v)) tb_printf(&b, "<title>length %s, depth %s%%: no samples</title>", length, depth);
            else tb_printf(&b, "<title>length %s, depth %s%%: %.4f (n = %ld)</title>", length, depth, v, hm->counts[k]);
            tb_add(&b, "</rect>\n");
            if (!isnan(v) && L.print_values) {
                format_value(v, buf, sizeof buf);
                svg_text(&b, left + L.cell_w / 2.0, top + L.cell_h / 2.0 + cap / 2, "middle", TEXT_SCALE, 0, INK, NULL,
                         buf);
            }
        }
        tb_printf(&b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#222222\"/>\n", L.grid_x - TICK,
                  top + L.cell_h / 2.0, L.grid_x, top + L.cell_h / 2.0);
        format_depth(hm->depths[y], buf, sizeof buf);
        svg_text(&b, L.grid_x - TICK - 6, top + L.cell_h / 2.0 + cap / 2, "end", TEXT_SCALE, 0, INK, NULL, buf);
    }
    for (int x = 0; x < hm->n_x; x++) {
        double cx = L.grid_x + x * L.cell_w + L.cell_w / 2.0;
        tb_printf(&b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#222222\"/>\n", cx, L.grid_y + grid_h,
                  cx, L.grid_y + grid_h + TICK);
        format_length(hm->lengths[x], buf, sizeof buf);
        if (L.xticks_vertical) {
            snprintf(transform, sizeof transform, "rotate(-90 %.1f %d)", cx + cap / 2, L.xtick_y);
            svg_text(&b, cx + cap / 2, L.xtick_y, "end", TEXT_SCALE, 0, INK, transform, buf);
        } else {
            svg_text(&b, cx, L.xtick_y + cap, "middle", TEXT_SCALE, 0, INK, NULL, buf);
        }
    }
    svg_text(&b, L.grid_x + grid_w / 2.0, L.xlabel_y + cap, "middle", TEXT_SCALE, 1, INK, NULL, "Token Limit");
    double ycx = L.ylabel_cx + cap / 2, ycy = L.grid_y + grid_h / 2.0;
    snprintf(transform, sizeof transform, "rotate(-90 %.1f %.1f)", ycx, ycy);
    svg_text(&b, ycx, ycy, "middle", TEXT_SCALE, 1, INK, transform, "Depth Percent");

    tb_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"url(#%s-scale)\" stroke=\"#999999\"/>\n",
              L.bar_x, L.grid_y, L.bar_w, grid_h, id_prefix);
    for (int t = 0; t <= L.bar_ticks; t++) {
        double v = (double)t / L.bar_ticks, ty = L.grid_y + (1.0 - v) * (grid_h - 1);
        tb_printf(&b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#222222\"/>\n", L.bar_x + L.bar_w, ty,
                  L.bar_x + L.bar_w + TICK, ty);
        snprintf(buf, sizeof buf, "%.1f", v);
        svg_text(&b, L.bar_x + L.bar_w + TICK + 6, ty + cap / 2, "start", TEXT_SCALE, 0, INK, NULL, buf);
    }
    double scx = L.bar_label_x + cap / 2;
    snprintf(transform, sizeof transform, "rotate(-90 %.1f %.1f)", scx, ycy);
    svg_text(&b, scx, ycy, "middle", TEXT_SCALE, 1, INK, transform, "Score");
    tb_add(&b, "</svg>\n");
    return tb_take(&b);
}
