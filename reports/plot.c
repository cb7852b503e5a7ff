/* plot.c: see plot.h. As in heatmap.c, one layout feeds both renderers. */
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "textbuf.h"

#define INK 0x222222u
#define GRID 0xE3E3E3u
#define FRAME 0x888888u

static const Rgb PALETTE[] = {0x2E6FD8, 0xE4572E, 0x17A589, 0x9B59B6, 0xF1A208,
                              0x34495E, 0xD81B60, 0x7CB342, 0x8D6E63, 0x00ACC1};
enum { N_PALETTE = sizeof PALETTE / sizeof PALETTE[0] };

enum { TEXT_SCALE = 2, TITLE_SCALE = 3, PAD = 16, TICK = 6, INSET = 14, MAX_TICKS = 64, LEGEND_ROW = 26 };

typedef struct {
    char *name;
    double *xs, *ys;
    int n;
} Series;

struct Plot {
    char *title, *x_label, *y_label;
    int width, height, log_x;
    int fixed_y;
    double y_lo, y_hi;
    Series *series;
    int n_series;
    double *tick_xs;
    char **tick_labels;
    int n_ticks;
};

static char *dup_text(const char *s) {
    size_t n = strlen(s ? s : "");
    char *d = malloc(n + 1);
    if (d) memcpy(d, s ? s : "", n + 1);
    return d;
}

Plot *plot_new(const char *title, const char *x_label, const char *y_label) {
    Plot *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->title = dup_text(title);
    p->x_label = dup_text(x_label);
    p->y_label = dup_text(y_label);
    p->width = 960;
    p->height = 540;
    if (!p->title || !p->x_label || !p->y_label) {
        plot_free(p);
        return NULL;
    }
    return p;
}

void plot_free(Plot *p) {
    if (!p) return;
    for (int i = 0; i < p->n_series; i++) {
        free(p->series[i].name);
        free(p->series[i].xs);
        free(p->series[i].ys);
    }
    for (int i = 0; i < p->n_ticks; i++) free(p->tick_labels[i]);
    free(p->series);
    free(p->tick_xs);
    free(p->tick_labels);
    free(p->title);
    free(p->x_label);
    free(p->y_label);
    free(p);
}

void plot_set_size(Plot *p, int width, int height) {
    p->width = width < 320 ? 320 : width;
    p->height = height < 240 ? 240 : height;
}

void plot_set_log_x(Plot *p, int log_x) { p->log_x = log_x; }

void plot_set_y_range(Plot *p, double lo, double hi) {
    p->fixed_y = hi > lo;
    p->y_lo = lo;
    p->y_hi = hi;
}

int plot_set_x_ticks(Plot *p, const double *xs, const char *const *labels, int n) {
    for (int i = 0; i < p->n_ticks; i++) free(p->tick_labels[i]);
    free(p->tick_xs);
    free(p->tick_labels);
    p->n_ticks = 0;
    p->tick_xs = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    p->tick_labels = calloc((size_t)(n > 0 ? n : 1), sizeof(char *));
    if (!p->tick_xs || !p->tick_labels) return -1;
    for (int i = 0; i < n; i++) {
        p->tick_xs[i] = xs[i];
        if (!(p->tick_labels[i] = dup_text(labels[i]))) return -1;
        p->n_ticks++;
    }
    return 0;
}

int plot_add_series(Plot *p, const char *name, const double *xs, const double *ys, int n) {
    Series *grown = realloc(p->series, sizeof *grown * (size_t)(p->n_series + 1));
    if (!grown) return -1;
    p->series = grown;
    Series *s = &p->series[p->n_series];
    s->name = dup_text(name);
    s->xs = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    s->ys = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!s->name || !s->xs || !s->ys) {
        free(s->name), free(s->xs), free(s->ys);
        return -1;
    }
    memcpy(s->xs, xs, sizeof(double) * (size_t)n);
    memcpy(s->ys, ys, sizeof(double) * (size_t)n);
    s->n = n;
    p->n_series++;
    return 0;
}

int plot_series_count(const Plot *p) { return p->n_series; }

/* ---------------------------------------------------------------- scales and ticks */

typedef struct {
    double lo, hi; /* data range shown (log10 of it on a log axis) */
    int log;
    int n;
    double at[MAX_TICKS]; /* tick positions in data units */
    char label[MAX_TICKS][32];
} Axis;

static int point_ok(const Plot *p, double x, double y) {
    return isfinite(x) && isfinite(y) && (!p->log_x || x > 0);
}

/* 1, 2 or 5 times a power of ten, near range / target. */
static double nice_step(double range, int target) {
    double raw = range / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

static void format_number(double v, double step, char *out, size_t len) {
    if (fabs(v) < step * 1e-6) v = 0;
    double a = fabs(v);
    if (a != 0 && (a >= 1e7 || a < 1e-4)) {
        snprintf(out, len, "%.3g", v);
        return;
    }
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (decimals > 6) decimals = 6;
    snprintf(out, len, "%.*f", decimals, v);
}

/* Context lengths read best as 512, 1k, 2k, ..., 128k. */
static void format_power(double v, char *out, size_t len) {
    if (v >= 1024 && fmod(v, 1024) == 0) snprintf(out, len, "%.0fk", v / 1024);
    else if (v >= 1 && v == floor(v)) snprintf(out, len, "%.0f", v);
    else snprintf(out, len, "%g", v);
}

static void linear_ticks(Axis *a, double lo, double hi) {
    double step = nice_step(hi - lo, 6);
    a->n = 0;
    for (double t = ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9 && a->n < MAX_TICKS; t += step) {
        a->at[a->n] = t;
        format_number(t, step, a->label[a->n], sizeof a->label[a->n]);
        a->n++;
    }
}

static void x_axis(const Plot *p, Axis *a) {
    memset(a, 0, sizeof *a);
    a->log = p->log_x;
    double lo = INFINITY, hi = -INFINITY;
    for (int s = 0; s < p->n_series; s++)
        for (int i = 0; i < p->series[s].n; i++) {
            const Series *se = &p->series[s];
            if (!point_ok(p, se->xs[i], se->ys[i])) continue;
            if (se->xs[i] < lo) lo = se->xs[i];
            if (se->xs[i] > hi) hi = se->xs[i];
        }
    for (int i = 0; i < p->n_ticks; i++) {
        if (p->log_x && p->tick_xs[i] <= 0) continue;
        if (p->tick_xs[i] < lo) lo = p->tick_xs[i];
        if (p->tick_xs[i] > hi) hi = p->tick_xs[i];
    }
    if (!isfinite(lo)) lo = p->log_x ? 1 : 0, hi = p->log_x ? 10 : 1;
    if (p->log_x) {
        if (hi <= lo) lo /= 2, hi *= 2;
        a->lo = log10(lo);
        a->hi = log10(hi);
    } else {
        if (hi <= lo) lo -= 1, hi += 1;
        a->lo = lo;
        a->hi = hi;
    }
    if (p->n_ticks) {
        for (int i = 0; i < p->n_ticks && a->n < MAX_TICKS; i++) {
            if (p->log_x && p->tick_xs[i] <= 0) continue;
            a->at[a->n] = p->tick_xs[i];
            snprintf(a->label[a->n], sizeof a->label[a->n], "%.24s", p->tick_labels[i]);
            a->n++;
        }
        return;
    }
    if (!p->log_x) {
        linear_ticks(a, lo, hi);
        return;
    }
    /* log axis: ticks on the x values themselves when there are few (the tested
       context lengths), else powers of two for modest spans, else of ten */
    double distinct[13];
    int n_distinct = 0;
    for (int s = 0; s < p->n_series && n_distinct <= 12; s++)
        for (int i = 0; i < p->series[s].n && n_distinct <= 12; i++) {
            const Series *se = &p->series[s];
            if (!point_ok(p, se->xs[i], se->ys[i])) continue;
            int seen = 0;
            for (int k = 0; k < n_distinct && !seen; k++) seen = distinct[k] == se->xs[i];
            if (!seen) distinct[n_distinct++] = se->xs[i];
        }
    if (n_distinct <= 12) {
        for (int i = 1; i < n_distinct; i++) /* insertion sort: at most 12 */
            for (int k = i; k > 0 && distinct[k] < distinct[k - 1]; k--) {
                double t = distinct[k];
                distinct[k] = distinct[k - 1];
                distinct[k - 1] = t;
            }
        for (int i = 0; i < n_distinct; i++) {
            a->at[a->n] = distinct[i];
            format_power(distinct[i], a->label[a->n], sizeof a->label[a->n]);
            a->n++;
        }
        return;
    }
    double base = hi / lo <= 16384 ? 2 : 10;
    double first = floor(log(lo) / log(base) + 1e-9), last = ceil(log(hi) / log(base) - 1e-9);
    int every = 1;
    while ((last - first) / every + 1 > 10) every++;
    for (double e = first; e <= last && a->n < MAX_TICKS; e += every) {
        double v = pow(base, e);
        if (v < lo * (1 - 1e-9) || v > hi * (1 + 1e-9)) continue;
        a->at[a->n] = v;
        format_power(v, a->label[a->n], sizeof a->label[a->n]);
        a->n++;
    }
}

static void y_axis(const Plot *p, Axis *a) {
    memset(a, 0, sizeof *a);
    double lo = INFINITY, hi = -INFINITY;
    if (p->fixed_y) {
        lo = p->y_lo;
        hi = p->y_hi;
    } else {
        for (int s = 0; s < p->n_series; s++)
            for (int i = 0; i < p->series[s].n; i++) {
                const Series *se = &p->series[s];
                if (!point_ok(p, se->xs[i], se->ys[i])) continue;
                if (se->ys[i] < lo) lo = se->ys[i];
                if (se->ys[i] > hi) hi = se->ys[i];
            }
        if (!isfinite(lo)) lo = 0, hi = 1;
        if (hi <= lo) {
            double d = lo == 0 ? 1 : fabs(lo) * 0.1;
            lo -= d, hi += d;
        }
        double step = nice_step(hi - lo, 6);
        lo = floor(lo / step + 1e-9) * step;
        hi = ceil(hi / step - 1e-9) * step;
    }
    a->lo = lo;
    a->hi = hi;
    linear_ticks(a, lo, hi);
}

/* ---------------------------------------------------------------- layout */

typedef struct {
    int width, height;
    int area_x, area_y, area_w, area_h; /* the plotting area */
    int title_y, xtick_y, xlabel_y, ylabel_cx;
    int xticks_vertical, xtick_h;
    int legend_x, legend_y;
    Axis x, y;
} Layout;

static void layout_compute(const Plot *p, Layout *L) {
    memset(L, 0, sizeof *L);
    x_axis(p, &L->x);
    y_axis(p, &L->y);
    const int text_h = canvas_text_height(TEXT_SCALE);
    int widest_y = 0, widest_x = 0, widest_name = 0;
    for (int i = 0; i < L->y.n; i++) {
        int w = canvas_text_width(L->y.label[i], TEXT_SCALE);
        if (w > widest_y) widest_y = w;
    }
    for (int i = 0; i < L->x.n; i++) {
        int w = canvas_text_width(L->x.label[i], TEXT_SCALE);
        if (w > widest_x) widest_x = w;
    }
    for (int s = 0; s < p->n_series; s++) {
        char name[48];
        snprintf(name, sizeof name, "%.40s", p->series[s].name);
        int w = canvas_text_width(name, TEXT_SCALE);
        if (w > widest_name) widest_name = w;
    }
    int legend_w = p->n_series ? 24 + 10 + widest_name + 2 * PAD : 0;
    L->width = p->width + legend_w;
    L->title_y = PAD;
    L->area_y = L->title_y + canvas_text_height(TITLE_SCALE) + 20;
    L->ylabel_cx = PAD + text_h / 2;
    L->area_x = PAD + text_h + 14 + widest_y + TICK + 6;
    L->area_w = p->width - L->area_x - PAD;
    /* x tick labels stand upright when they would overlap */
    int spacing = L->x.n > 1 ? L->area_w / L->x.n : L->area_w;
    L->xticks_vertical = widest_x + 10 > spacing;
    L->xtick_h = L->xticks_vertical ? widest_x : text_h;
    L->area_h = p->height - L->area_y - (TICK + 6 + L->xtick_h + 14 + text_h + PAD);
    if (L->area_h < 80) L->area_h = 80;
    L->xtick_y = L->area_y + L->area_h + TICK + 6;
    L->xlabel_y = L->xtick_y + L->xtick_h + 14;
    L->height = L->xlabel_y + text_h + PAD;
    L->legend_x = p->width + PAD;
    L->legend_y = L->area_y;
    int legend_bottom = L->legend_y + p->n_series * LEGEND_ROW + PAD;
    if (legend_bottom > L->height) L->height = legend_bottom;
}

static double map_x(const Layout *L, double x) {
    double v = L->x.log ? log10(x) : x;
    double t = L->x.hi > L->x.lo ? (v - L->x.lo) / (L->x.hi - L->x.lo) : 0.5;
    return L->area_x + INSET + t * (L->area_w - 2 * INSET);
}

static double map_y(const Layout *L, double y) {
    double t = L->y.hi > L->y.lo ? (y - L->y.lo) / (L->y.hi - L->y.lo) : 0.5;
    return L->area_y + L->area_h - INSET - t * (L->area_h - 2 * INSET);
}

static void legend_name(const Series *s, char *out, size_t len) {
    if (strlen(s->name) > 40) snprintf(out, len, "%.37s...", s->name);
    else snprintf(out, len, "%s", s->name);
}

/* ---------------------------------------------------------------- PNG */

int plot_render(const Plot *p, Canvas *c, Err *err) {
    Layout L;
    layout_compute(p, &L);
    if (canvas_init(c, L.width, L.height, 0xFFFFFF, err)) return -1;
    canvas_text(c, L.area_x + L.area_w / 2, L.title_y, p->title, TITLE_SCALE, INK, ALIGN_CENTER, ALIGN_START, 1);
    for (int i = 0; i < L.y.n; i++) {
        int y = (int)lround(map_y(&L, L.y.at[i]));
        canvas_fill_rect(c, L.area_x, y, L.area_w, 1, GRID);
        canvas_fill_rect(c, L.area_x - TICK, y, TICK, 1, INK);
        canvas_text(c, L.area_x - TICK - 6, y + 1, L.y.label[i], TEXT_SCALE, INK, ALIGN_END, ALIGN_CENTER, 0);
    }
    for (int i = 0; i < L.x.n; i++) {
        int x = (int)lround(map_x(&L, L.x.at[i]));
        canvas_fill_rect(c, x, L.area_y, 1, L.area_h, GRID);
        canvas_fill_rect(c, x, L.area_y + L.area_h, 1, TICK, INK);
        if (L.xticks_vertical) {
            int w = canvas_text_width(L.x.label[i], TEXT_SCALE);
            canvas_text_up(c, x, L.xtick_y + w / 2, L.x.label[i], TEXT_SCALE, INK, 0);
        } else {
            canvas_text(c, x, L.xtick_y, L.x.label[i], TEXT_SCALE, INK, ALIGN_CENTER, ALIGN_START, 0);
        }
    }
    canvas_rect(c, L.area_x, L.area_y, L.area_w, L.area_h, FRAME);
    canvas_fill_rect(c, L.area_x, L.area_y, 1, L.area_h + 1, INK);
    canvas_fill_rect(c, L.area_x, L.area_y + L.area_h, L.area_w, 1, INK);
    canvas_text(c, L.area_x + L.area_w / 2, L.xlabel_y, p->x_label, TEXT_SCALE, INK, ALIGN_CENTER, ALIGN_START, 1);
    canvas_text_up(c, L.ylabel_cx, L.area_y + L.area_h / 2, p->y_label, TEXT_SCALE, INK, 1);

    for (int s = 0; s < p->n_series; s++) {
        const Series *se = &p->series[s];
        Rgb color = PALETTE[s % N_PALETTE];
        int have_prev = 0, px = 0, py = 0;
        for (int i = 0; i < se->n; i++) {
            if (!point_ok(p, se->xs[i], se->ys[i])) {
                have_prev = 0;
                continue;
            }
            int x = (int)lround(map_x(&L, se->xs[i])), y = (int)lround(map_y(&L, se->ys[i]));
            if (have_prev) canvas_line(c, px, py, x, y, 3, color);
            px = x, py = y, have_prev = 1;
        }
        for (int i = 0; i < se->n; i++) {
            if (!point_ok(p, se->xs[i], se->ys[i])) continue;
            int x = (int)lround(map_x(&L, se->xs[i])), y = (int)lround(map_y(&L, se->ys[i]));
            canvas_fill_rect(c, x - 4, y - 4, 9, 9, 0xFFFFFF);
            canvas_fill_rect(c, x - 3, y - 3, 7, 7, color);
        }
        int ly = L.legend_y + s * LEGEND_ROW;
        char name[48];
        legend_name(se, name, sizeof name);
        canvas_fill_rect(c, L.legend_x, ly + 7, 24, 4, color);
        canvas_fill_rect(c, L.legend_x + 9, ly + 6, 6, 6, color);
        canvas_text(c, L.legend_x + 34, ly, name, TEXT_SCALE, INK, ALIGN_START, ALIGN_START, 0);
    }
    return 0;
}

int plot_write_png(const Plot *p, const char *path, Err *err) {
    Canvas c = {0};
    int rc = plot_render(p, &c, err) || canvas_write_png(&c, path, err) ? -1 : 0;
    canvas_free(&c);
    return rc;
}

int plot_encode_png(const Plot *p, unsigned char **out, size_t *out_len, Err *err) {
    Canvas c = {0};
    int rc = plot_render(p, &c, err) || canvas_encode_png(&c, out, out_len, err) ? -1 : 0;
    canvas_free(&c);
    return rc;
}

/* ---------------------------------------------------------------- SVG */

/* Font sizes a little under the bitmap font's: proportional fonts run wider. */
static double svg_font_px(int scale) { return CANVAS_CAP_HEIGHT * scale * 1.15; }

static void svg_text(TextBuf *b, double x, double y, const char *anchor, int scale, int bold, const char *transform,
                     const char *text) {
    tb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%.1f\"%s fill=\"#%06X\"", x, y, anchor,
              svg_font_px(scale), bold ? " font-weight=\"bold\"" : "", (unsigned)INK);
    if (transform) tb_printf(b, " transform=\"%s\"", transform);
    tb_add(b, ">");
    tb_add_xml(b, text);
    tb_add(b, "</text>\n");
}

char *plot_svg(const Plot *p) {
    Layout L;
    layout_compute(p, &L);
    const double cap = CANVAS_CAP_HEIGHT * TEXT_SCALE;
    char transform[96];
    TextBuf b;
    tb_init(&b);
    tb_printf(&b,
              "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
              "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" role=\"img\" aria-label=\"",
              L.width, L.height, L.width, L.height);
    tb_add_xml(&b, p->title);
    tb_add(&b, "\">\n");
    tb_printf(&b, "<rect width=\"%d\" height=\"%d\" fill=\"#FFFFFF\"/>\n", L.width, L.height);
    svg_text(&b, L.area_x + L.area_w / 2.0, L.title_y + CANVAS_CAP_HEIGHT * TITLE_SCALE, "middle", TITLE_SCALE, 1,
             NULL, p->title);
    for (int i = 0; i < L.y.n; i++) {
        double y = map_y(&L, L.y.at[i]);
        tb_printf(&b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#%06X\"/>\n", L.area_x, y,
                  L.area_x + L.area_w, y, (unsigned)GRID);
        tb_printf(&b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#222222\"/>\n", L.area_x - TICK, y,
                  L.area_x, y);
        svg_text(&b, L.area_x - TICK - 6, y + cap / 2, "end", TEXT_SCALE, 0, NULL, L.y.label[i]);
    }
    for (int i = 0; i < L.x.n; i++) {
        double x = map_x(&L, L.x.at[i]);
        tb_printf(&b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#%06X\"/>\n", x, L.area_y, x,
                  L.area_y + L.area_h, (unsigned)GRID);
        tb_printf(&b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#222222\"/>\n", x,
                  L.area_y + L.area_h, x, L.area_y + L.area_h + TICK);
        if (L.xticks_vertical) {
            snprintf(transform, sizeof transform, "rotate(-90 %.1f %d)", x + cap / 2, L.xtick_y);
            svg_text(&b, x + cap / 2, L.xtick_y, "end", TEXT_SCALE, 0, transform, L.x.label[i]);
        } else {
            svg_text(&b, x, L.xtick_y + cap, "middle", TEXT_SCALE, 0, NULL, L.x.label[i]);
        }
    }
    tb_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#%06X\"/>\n", L.area_x,
              L.area_y, L.area_w, L.area_h, (unsigned)FRAME);
    tb_printf(&b, "<polyline points=\"%d,%d %d,%d %d,%d\" fill=\"none\" stroke=\"#222222\"/>\n", L.area_x, L.area_y,
              L.area_x, L.area_y + L.area_h, L.area_x + L.area_w, L.area_y + L.area_h);
    svg_text(&b, L.area_x + L.area_w / 2.0, L.xlabel_y + cap, "middle", TEXT_SCALE, 1, NULL, p->x_label);
    double ycx = L.ylabel_cx + cap / 2, ycy = L.area_y + L.area_h / 2.0;
    snprintf(transform, sizeof transform, "rotate(-90 %.1f %.1f)", ycx, ycy);
    svg_text(&b, ycx, ycy, "middle", TEXT_SCALE, 1, transform, p->y_label);

    for (int s = 0; s < p->n_series; s++) {
        const Series *se = &p->series[s];
        unsigned color = (unsigned)PALETTE[s % N_PALETTE];
        tb_printf(&b, "<g><title>");
        tb_add_xml(&b, se->name);
        tb_add(&b, "</title>\n");
        int open = 0;
        for (int i = 0; i < se->n; i++) {
            if (!point_ok(p, se->xs[i], se->ys[i])) {
                if (open) tb_add(&b, "\"/>\n");
                open = 0;
                continue;
            }
            if (!open) tb_printf(&b, "<polyline fill=\"none\" stroke=\"#%06X\" stroke-width=\"2.5\" points=\"", color);
            tb_printf(&b, "%s%.1f,%.1f", open ? " " : "", map_x(&L, se->xs[i]), map_y(&L, se->ys[i]));
            open = 1;
        }
        if (open) tb_add(&b, "\"/>\n");
        for (int i = 0; i < se->n; i++) {
            if (!point_ok(p, se->xs[i], se->ys[i])) continue;
            tb_printf(&b,
                      "<rect x=\"%.1f\" y=\"%.1f\" width=\"7\" height=\"7\" fill=\"#%06X\" stroke=\"#FFFFFF\">"
                      "<title>%g: %g</title></rect>\n",
                      map_x(&L, se->xs[i]) - 3.5, map_y(&L, se->ys[i]) - 3.5, color, se->xs[i], se->ys[i]);
        }
        int ly = L.legend_y + s * LEGEND_ROW;
        char name[48];
        legend_name(se, name, sizeof name);
        tb_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"24\" height=\"4\" fill=\"#%06X\"/>", L.legend_x, ly + 7, color);
        tb_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"6\" height=\"6\" fill=\"#%06X\"/>\n", L.legend_x + 9, ly + 6,
                  color);
        svg_text(&b, L.legend_x + 34, ly + cap, "start", TEXT_SCALE, 0, NULL, name);
        tb_add(&b, "</g>\n");
    }
    tb_add(&b, "</svg>\n");
    return tb_take(&b);
}

int plot_write_svg(const Plot *p, const char *path, Err *err) {
    char *svg = plot_svg(p);
    if (!svg) return err_set(err, "%s: out of memory", path);
    int rc = write_file_atomic(path, svg, strlen(svg), err);
    free(svg);
    return rc;
}
