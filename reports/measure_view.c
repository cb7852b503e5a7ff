/* measure_view.c: see measure_view.h. */
#include "measure_view.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_POINTS = 512, MAX_SERIES = 64 };

/* ---------------------------------------------------------------- small JSON readers */

static const cJSON *jget(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static const char *jstring(const cJSON *o, const char *key) {
    const cJSON *v = jget(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jdouble(const cJSON *o, const char *key, double fallback) {
    const cJSON *v = jget(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

/* An array of numbers into out (null elements as NaN); returns the count. */
static int jdoubles(const cJSON *arr, double *out, int cap) {
    int n = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, arr) {
        if (n == cap) break;
        out[n++] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
    }
    return cJSON_IsArray(arr) ? n : 0;
}

/* ---------------------------------------------------------------- views */

static char *text_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *text_printf(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *s = malloc(strlen(buf) + 1);
    if (s) strcpy(s, buf);
    return s;
}

static TaskView *view_new(MeasureViews *v, const char *task, int section) {
    TaskView *grown = realloc(v->views, sizeof *grown * (size_t)(v->n_views + 1));
    if (!grown) return NULL;
    v->views = grown;
    TaskView *tv = &v->views[v->n_views];
    memset(tv, 0, sizeof *tv);
    if (!(tv->task = text_printf("%s", task))) return NULL;
    tv->section = section;
    v->n_views++;
    return tv;
}

/* Takes p (freed on failure). */
static void add_figure(TaskView *tv, Plot *p, const char *caption, const char *stub_fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_figure(TaskView *tv, Plot *p, const char *caption, const char *stub_fmt, ...) {
    if (!p) return;
    ViewFigure *grown = realloc(tv->figures, sizeof *grown * (size_t)(tv->n_figures + 1));
    if (!grown || plot_series_count(p) == 0) {
        if (grown) tv->figures = grown;
        plot_free(p);
        return;
    }
    tv->figures = grown;
    ViewFigure *f = &tv->figures[tv->n_figures++];
    va_list ap;
    va_start(ap, stub_fmt);
    vsnprintf(f->stub, sizeof f->stub, stub_fmt, ap);
    va_end(ap);
    snprintf(f->caption, sizeof f->caption, "%s", caption);
    f->plot = p;
}

static ViewTable *add_table(TaskView *tv, const char *caption, const char *const *heads, const int *numeric, int n) {
    ViewTable *grown = realloc(tv->tables, sizeof *grown * (size_t)(tv->n_tables + 1));
    if (!grown) return NULL;
    tv->tables = grown;
    ViewTable *t = &tv->tables[tv->n_tables];
    memset(t, 0, sizeof *t);
    snprintf(t->caption, sizeof t->caption, "%s", caption);
    t->heads = calloc((size_t)n, sizeof *t->heads);
    t->numeric = calloc((size_t)n, sizeof *t->numeric);
    if (!t->heads || !t->numeric) {
        free(t->heads), free(t->numeric);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        t->heads[i] = text_printf("%s", heads[i]);
        t->numeric[i] = numeric[i];
    }
    t->n_cols = n;
    tv->n_tables++;
    return t;
}

/* Appends a row; takes the n_cols strings (NULL shows as empty). */
static void table_add_row(ViewTable *t, char **cells) {
    char **grown = realloc(t->cells, sizeof *grown * (size_t)(t->n_rows + 1) * t->n_cols);
    if (!grown) {
        for (int i = 0; i < t->n_cols; i++) free(cells[i]);
        return;
    }
    t->cells = grown;
    for (int i = 0; i < t->n_cols; i++) t->cells[(size_t)t->n_rows * t->n_cols + i] = cells[i];
    t->n_rows++;
}

/* The kept lines of one task, in samples.jsonl order. */
static int task_lines(const MeasureViews *v, const char *task, const cJSON **out, int cap) {
    int n = 0;
    const cJSON *line;
    cJSON_ArrayForEach(line, v->samples) {
        const char *t = jstring(line, "task");
        if (t && strcmp(t, task) == 0 && n < cap) out[n++] = line;
    }
    return n;
}

static int index_of(const double *v, int n, double x) {
    for (int i = 0; i < n; i++)
        if (v[i] == x) return i;
    return -1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Log x when the positive x values span a factor of 4 or more. */
static void maybe_log_x(Plot *p, const double *xs, int n) {
    double lo = INFINITY, hi = 0;
    for (int i = 0; i < n; i++)
        if (xs[i] > 0) lo = xs[i] < lo ? xs[i] : lo, hi = xs[i] > hi ? xs[i] : hi;
    if (hi > 0 && hi / lo >= 4) plot_set_log_x(p, 1);
}

/* ---------------------------------------------------------------- rope_drift */

static void view_drift(MeasureViews *v, const char *task) {
    const cJSON *lines[64];
    int n = task_lines(v, task, lines, 64);
    TaskView *tv = n ? view_new(v, task, METRIC_DRIFT) : NULL;
    if (!tv) return;
    const cJSON *first = jget(lines[0], "extra");
    char title[400], caption[600];
    double d2 = jdouble(first, "delta2", 0), T = jdouble(first, "length", 0), N = jdouble(first, "num_sequences", 0);
    snprintf(title, sizeof title, "%s: attn_diff D(d1, d2 = %.0f) by d1", task, d2);
    Plot *shift = plot_new(title, "d1 (every position id shifted)", "attn_diff");
    snprintf(title, sizeof title, "%s: BF16 vs FP32 attention difference by position", task);
    Plot *vs = plot_new(title, "absolute position (bin start)", "attn_diff per row");
    double all_x[MAX_POINTS];
    int n_all = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *e = jget(lines[i], "extra");
        const char *mode = jstring(e, "mode");
        double xs[MAX_POINTS], ys[MAX_POINTS];
        int nx = jdoubles(jget(e, "deltas"), xs, MAX_POINTS), ny = jdoubles(jget(e, "attn_diff"), ys, MAX_POINTS);
        if (!mode || nx == 0 || nx != ny) continue;
        if (shift) plot_add_series(shift, mode, xs, ys, nx);
        for (int k = 0; k < nx && n_all < MAX_POINTS; k++) all_x[n_all++] = xs[k];
        const cJSON *vf = jget(e, "vs_fp32");
        nx = jdoubles(jget(vf, "bin_start"), xs, MAX_POINTS);
        ny = jdoubles(jget(vf, "attn_diff_per_row"), ys, MAX_POINTS);
        if (vs && nx > 0 && nx == ny) plot_add_series(vs, mode, xs, ys, nx);
    }
    if (shift) maybe_log_x(shift, all_x, n_all);
    snprintf(caption, sizeof caption,
             "%s: attention difference between runs whose position ids are shifted by d1 and by d2 = %.0f, summed "
             "over layers and heads, per precision mode (T = %.0f, N = %.0f; exactly 0 at d1 = d2; d1 = 0 lies off "
             "a log axis)", task, d2, T, N);
    add_figure(tv, shift, caption, "drift-%s-attn_diff", task);
    snprintf(caption, sizeof caption,
             "%s: the plain BF16-vs-FP32 attention difference (both at d = 0) per row, by absolute position, per "
             "BF16 mode", task);
    add_figure(tv, vs, caption, "drift-%s-vs_fp32", task);
}

/* ---------------------------------------------------------------- niah_shift */

/* "<mode>@<shift>" */
static int split_group(const char *group, char *mode, size_t len, double *shift) {
    const char *at = strrchr(group, '@');
    char *end;
    if (!at || at == group) return 0;
    *shift = strtod(at + 1, &end);
    if (*end || end == at + 1) return 0;
    snprintf(mode, len, "%.*s", (int)(at - group), group);
    return 1;
}

static void view_niah_shift(MeasureViews *v, const char *task, const cJSON *summary) {
    const char *metric = summary_headline_metric(summary, task);
    if (!metric) return;
    char modes[8][32];
    int n_modes = 0, n_shifts = 0;
    double shifts[64];
    const cJSON *m;
    cJSON_ArrayForEach(m, jget(summary, "metrics")) {
        const char *t = jstring(m, "task"), *mm = jstring(m, "metric"), *g = jstring(m, "group");
        char mode[32];
        double shift;
        if (!t || !mm || !g || strcmp(t, task) || strcmp(mm, metric) || !split_group(g, mode, sizeof mode, &shift))
            continue;
        int k = 0;
        while (k < n_modes && strcmp(modes[k], mode)) k++;
        if (k == n_modes && n_modes < 8) snprintf(modes[n_modes++], sizeof modes[0], "%s", mode);
        if (index_of(shifts, n_shifts, shift) < 0 && n_shifts < 64) shifts[n_shifts++] = shift;
    }
    if (!n_modes) return;
    qsort(shifts, (size_t)n_shifts, sizeof *shifts, cmp_double);
    TaskView *tv = view_new(v, task, METRIC_DRIFT);
    if (!tv) return;
    const char *heads[65];
    int numeric[65];
    char head_text[64][48];
    heads[0] = "mode", numeric[0] = 0;
    for (int s = 0; s < n_shifts; s++) {
        snprintf(head_text[s], sizeof head_text[s], "shift %.0f", shifts[s]);
        heads[s + 1] = head_text[s], numeric[s + 1] = 1;
    }
    char caption[400], title[300];
    snprintf(caption, sizeof caption,
             "%s: NIAH %s with every position id shifted by d, per precision mode: value (n). RoPE is relative, "
             "so any change across a row is numerics alone", task, metric);
    ViewTable *t = add_table(tv, caption, heads, numeric, n_shifts + 1);
    snprintf(title, sizeof title, "%s: NIAH %s by position shift", task, metric);
    Plot *p = plot_new(title, "shift d", metric);
    if (p) plot_set_y_range(p, 0, 1);
    for (int k = 0; k < n_modes; k++) {
        char *cells[65] = {0};
        double ys[64];
        cells[0] = text_printf("%s", modes[k]);
        for (int s = 0; s < n_shifts; s++) {
            char group[96];
            snprintf(group, sizeof group, "%.31s@%.0f", modes[k], shifts[s]);
            ys[s] = NAN;
            cJSON_ArrayForEach(m, jget(summary, "metrics")) {
                const char *mt = jstring(m, "task"), *mm = jstring(m, "metric"), *g = jstring(m, "group");
                if (!mt || !mm || !g || strcmp(mt, task) || strcmp(mm, metric) || strcmp(g, group)) continue;
                ys[s] = jdouble(m, "value", NAN);
                cells[s + 1] = text_printf("%.4f (%.0f)", ys[s], jdouble(m, "n", 0));
            }
        }
        if (t) table_add_row(t, cells);
        else
            for (int c = 0; c <= n_shifts; c++) free(cells[c]);
        if (p) plot_add_series(p, modes[k], shifts, ys, n_shifts);
    }
    if (n_shifts < 2) {
        plot_free(p);
        return;
    }
    snprintf(caption, sizeof caption, "%s: NIAH %s against the position shift d, per precision mode", task, metric);
    add_figure(tv, p, caption, "drift-%s-accuracy", task);
}

/* ---------------------------------------------------------------- erf */

/* Per length: the layer curves (mean over sequences) and the influence curve. */
typedef struct {
    double length;
    int n_seq, n_layers, n_d;
    double attn[MAX_POINTS], ssm[MAX_POINTS]; /* NaN where the layer has no such heads */
    double d[MAX_POINTS], infl[MAX_POINTS];
} ErfLength;

static void erf_add(ErfLength *el, const cJSON *extra) {
    const cJSON *layers = jget(extra, "layers"), *layer;
    int l = 0;
    cJSON_ArrayForEach(layer, layers) {
        if (l == MAX_POINTS) break;
        double a = jdouble(layer, "attn_dist", NAN), s = jdouble(layer, "ssm_dist", NAN);
        if (el->n_seq == 0) el->attn[l] = 0, el->ssm[l] = 0;
        el->attn[l] += a, el->ssm[l] += s; /* NaN stays NaN: the layer has no such heads */
        l++;
    }
    el->n_layers = l;
    const cJSON *pj = jget(extra, "perturb");
    double d[MAX_POINTS], infl[MAX_POINTS];
    int nd = jdoubles(jget(pj, "d"), d, MAX_POINTS), ni = jdoubles(jget(pj, "influence"), infl, MAX_POINTS);
    if (nd > 0 && nd == ni) {
        if (el->n_seq == 0 || el->n_d != nd) {
            el->n_d = nd;
            memcpy(el->d, d, sizeof d[0] * (size_t)nd);
            memset(el->infl, 0, sizeof el->infl);
        }
        for (int i = 0; i < nd; i++) el->infl[i] += infl[i];
    }
    el->n_seq++;
}

static void view_erf(MeasureViews *v, const char *task) {
    const cJSON *lines[256];
    int n = task_lines(v, task, lines, 256);
    ErfLength *lens = calloc(16, sizeof *lens);
    int n_lens = 0;
    for (int i = 0; i < n && lens; i++) {
        const cJSON *e = jget(lines[i], "extra");
        double T = jdouble(e, "length", -1);
        if (T < 0 || !cJSON_IsArray(jget(e, "layers"))) continue;
        int k = 0;
        while (k < n_lens && lens[k].length != T) k++;
        if (k == n_lens) {
            if (n_lens == 16) continue;
            lens[n_lens++].length = T;
        }
        erf_add(&lens[k], e);
    }
    TaskView *tv = n_lens ? view_new(v, task, METRIC_ERF) : NULL;
    if (!tv) {
        free(lens);
        return;
    }
    char title[300], caption[600], name[64];
    snprintf(title, sizeof title, "%s: receptive field by layer and head type", task);
    Plot *layers = plot_new(title, "layer", "mean distance (tokens)");
    snprintf(title, sizeof title, "%s: influence of the token at distance d", task);
    Plot *infl = plot_new(title, "distance d (tokens)", "influence I(d)");
    if (infl) plot_set_log_x(infl, 1);
    for (int k = 0; k < n_lens; k++) {
        ErfLength *el = &lens[k];
        double xs[MAX_POINTS], ys[MAX_POINTS];
        for (int l = 0; l < el->n_layers; l++) xs[l] = l;
        int has_attn = 0, has_ssm = 0;
        for (int l = 0; l < el->n_layers; l++) has_attn |= !isnan(el->attn[l]), has_ssm |= !isnan(el->ssm[l]);
        if (has_attn && layers) {
            for (int l = 0; l < el->n_layers; l++) ys[l] = el->attn[l] / el->n_seq;
            snprintf(name, sizeof name, "attention, T=%.0f", el->length);
            plot_add_series(layers, name, xs, ys, el->n_layers);
        }
        if (has_ssm && layers) {
            for (int l = 0; l < el->n_layers; l++) ys[l] = el->ssm[l] / el->n_seq;
            snprintf(name, sizeof name, "SSM, T=%.0f", el->length);
            plot_add_series(layers, name, xs, ys, el->n_layers);
        }
        if (el->n_d > 0 && infl) {
            for (int i = 0; i < el->n_d; i++) ys[i] = el->infl[i] / el->n_seq;
            snprintf(name, sizeof name, "T=%.0f", el->length);
            plot_add_series(infl, name, el->d, ys, el->n_d);
        }
    }
    snprintf(caption, sizeof caption,
             "%s: per layer, the attention-weighted mean distance of the last token's row (Hymba Eq. 5 before the "
             "layer weighting), for the attention heads (softmax rows, meta tokens included) and the SSM heads "
             "(normalised hidden-attention rows), per length (mean over sequences)", task);
    add_figure(tv, layers, caption, "erf-%s-layers", task);
    snprintf(caption, sizeof caption,
             "%s: perturbation influence I(d), the relative L2 change of the final hidden state when the token d "
             "positions back is replaced, mean over targets and sequences, per length", task);
    add_figure(tv, infl, caption, "erf-%s-influence", task);
    free(lens);
}

/* ---------------------------------------------------------------- throughput */

static void view_throughput(MeasureViews *v, const char *task) {
    const cJSON *lines[256];
    int n = task_lines(v, task, lines, 256);
    TaskView *tv = n ? view_new(v, task, METRIC_THROUGHPUT) : NULL;
    if (!tv) return;
    static const char *const heads[] = {"batch", "context", "decode steps", "prefill tokens/s", "decode tokens/s",
                                        "time to first token (s)", "batch run", "precision", "device"};
    static const int numeric[] = {1, 1, 1, 1, 1, 1, 1, 0, 0};
    char caption[600], title[300], name[64];
    snprintf(caption, sizeof caption,
             "%s: prefill tokens/s = batch x context / prefill seconds; decode tokens/s = batch x steps / decode "
             "seconds; medians over the repeats after warm-up (\"batch run\" differs from \"batch\" when the "
             "batch was halved to fit)", task);
    ViewTable *t = add_table(tv, caption, heads, numeric, 9);
    double contexts[64], batches[64];
    int n_ctx = 0, n_b = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *e = jget(lines[i], "extra");
        double B = jdouble(e, "batch", NAN), L = jdouble(e, "context", NAN);
        if (isnan(B) || isnan(L)) continue;
        if (index_of(contexts, n_ctx, L) < 0 && n_ctx < 64) contexts[n_ctx++] = L;
        if (index_of(batches, n_b, B) < 0 && n_b < 64) batches[n_b++] = B;
        char *cells[9] = {
            text_printf("%.0f", B),
            text_printf("%.0f", L),
            text_printf("%.0f", jdouble(e, "decode", 0)),
            text_printf("%.1f", jdouble(e, "prefill_tokens_per_s", NAN)),
            text_printf("%.1f", jdouble(e, "decode_tokens_per_s", NAN)),
            text_printf("%.4f", jdouble(e, "ttft_seconds", NAN)),
            text_printf("%.0f", jdouble(e, "batch_run", B)),
            text_printf("%s", jstring(e, "precision") ? jstring(e, "precision") : ""),
            text_printf("%s", jstring(e, "device") ? jstring(e, "device") : ""),
        };
        if (t) table_add_row(t, cells);
        else
            for (int c = 0; c < 9; c++) free(cells[c]);
    }
    qsort(batches, (size_t)n_b, sizeof *batches, cmp_double);
    qsort(contexts, (size_t)n_ctx, sizeof *contexts, cmp_double);
    snprintf(title, sizeof title, "%s: tokens/s by batch size", task);
    Plot *p = plot_new(title, "batch", "tokens/s");
    if (!p) return;
    maybe_log_x(p, batches, n_b);
    static const char *const what[] = {"prefill_tokens_per_s", "decode_tokens_per_s"};
    static const char *const label[] = {"prefill", "decode"};
    for (int w = 0; w < 2; w++)
        for (int c = 0; c < n_ctx; c++) {
            double ys[64];
            for (int b = 0; b < n_b; b++) {
                ys[b] = NAN;
                for (int i = 0; i < n; i++) {
                    const cJSON *e = jget(lines[i], "extra");
                    if (jdouble(e, "batch", NAN) == batches[b] && jdouble(e, "context", NAN) == contexts[c])
                        ys[b] = jdouble(e, what[w], NAN);
                }
            }
            snprintf(name, sizeof name, "%s, L=%.0f", label[w], contexts[c]);
            plot_add_series(p, name, batches, ys, n_b);
        }
    snprintf(caption, sizeof caption, "%s: prefill and decode tokens/s against the batch size, per context length",
             task);
    add_figure(tv, p, caption, "throughput-%s-tokens_per_s", task);
}

/* ---------------------------------------------------------------- cache */

static void view_cache(MeasureViews *v, const char *task) {
    const cJSON *lines[512];
    int n = task_lines(v, task, lines, 512);
    const cJSON *table = NULL;
    for (int i = 0; i < n && !table; i++)
        if (cJSON_IsArray(jget(jget(lines[i], "extra"), "table"))) table = jget(jget(lines[i], "extra"), "table");
    if (!table) return;
    char variants[64][160];
    int n_var = 0, n_len = 0;
    double lengths[64];
    const cJSON *row;
    cJSON_ArrayForEach(row, table) {
        const char *var = jstring(row, "variant");
        double L = jdouble(row, "length", NAN);
        if (!var || isnan(L)) continue;
        int k = 0;
        while (k < n_var && strcmp(variants[k], var)) k++;
        if (k == n_var && n_var < 64) snprintf(variants[n_var++], sizeof variants[0], "%s", var);
        if (index_of(lengths, n_len, L) < 0 && n_len < 64) lengths[n_len++] = L;
    }
    qsort(lengths, (size_t)n_len, sizeof *lengths, cmp_double);
    TaskView *tv = n_var ? view_new(v, task, METRIC_CACHE) : NULL;
    if (!tv) return;
    const char *heads[65];
    int numeric[65];
    char head_text[64][48], caption[600], title[300];
    heads[0] = "row", numeric[0] = 0;
    for (int k = 0; k < n_len; k++) {
        snprintf(head_text[k], sizeof head_text[k], "MB at %.0f", lengths[k]);
        heads[k + 1] = head_text[k], numeric[k + 1] = 1;
    }
    snprintf(caption, sizeof caption,
             "%s: cache bytes per sequence in MB (10^6 bytes), from the formula: BF16 KV and conv state, FP32 SSM "
             "state; \"measured\" is the engine's own allocations after a prefill, rescaled to those sizes", task);
    ViewTable *t = add_table(tv, caption, heads, numeric, n_len + 1);
    snprintf(title, sizeof title, "%s: cache size per sequence", task);
    Plot *p = plot_new(title, "context length (tokens)", "MB");
    if (p) maybe_log_x(p, lengths, n_len);
    for (int k = 0; k <= n_var; k++) {
        /* the formula rows, then the loaded model's measured sizes */
        int measured = k == n_var;
        char *cells[65] = {0};
        double ys[64];
        int any = 0;
        cells[0] = text_printf("%s", measured ? "hymba, measured" : variants[k]);
        for (int c = 0; c < n_len; c++) {
            ys[c] = NAN;
            if (measured) {
                for (int i = 0; i < n; i++) {
                    const cJSON *e = jget(lines[i], "extra");
                    const char *var = jstring(e, "variant");
                    double b = jdouble(jget(e, "measured"), "bytes", NAN);
                    if (var && strcmp(var, "hymba") == 0 && !jget(e, "config") &&
                        jdouble(e, "length", NAN) == lengths[c] && !isnan(b))
                        ys[c] = b / 1e6;
                }
            } else {
                cJSON_ArrayForEach(row, table) {
                    const char *var = jstring(row, "variant");
                    if (var && strcmp(var, variants[k]) == 0 && jdouble(row, "length", NAN) == lengths[c])
                        ys[c] = jdouble(row, "mb", NAN);
                }
            }
            if (!isnan(ys[c])) cells[c + 1] = text_printf("%.2f", ys[c]), any = 1;
        }
        if (t && (any || !measured)) table_add_row(t, cells);
        else
            for (int c = 0; c <= n_len; c++) free(cells[c]);
        if (p && !measured) plot_add_series(p, variants[k], lengths, ys, n_len);
    }
    if (n_len < 2) {
        plot_free(p);
        return;
    }
    snprintf(caption, sizeof caption, "%s: cache MB per sequence (formula) against the context length, per row", task);
    add_figure(tv, p, caption, "cache-%s-mb", task);
}

/* ---------------------------------------------------------------- entry points */

static const char *const KINDS[] = {"rope_drift", "niah_shift", "erf", "throughput", "cache", NULL};

void views_add_sample(MeasureViews *v, const cJSON *line) {
    const char *kind = jstring(line, "kind"), *task = jstring(line, "task");
    if (!kind || !task || jget(line, "error") || !cJSON_IsObject(jget(line, "extra"))) return;
    int known = 0;
    for (int i = 0; KINDS[i] && !known; i++) known = strcmp(KINDS[i], kind) == 0;
    if (!known) return;
    if (!v->samples && !(v->samples = cJSON_CreateArray())) return;
    cJSON *keep = cJSON_CreateObject();
    cJSON_AddStringToObject(keep, "task", task);
    cJSON_AddStringToObject(keep, "kind", kind);
    cJSON_AddItemToObject(keep, "extra", cJSON_Duplicate(jget(line, "extra"), 1));
    cJSON_AddItemToArray(v->samples, keep);
}

void views_build(MeasureViews *v, const cJSON *summary) {
    /* each task once, in samples order */
    const cJSON *line;
    cJSON *seen = cJSON_CreateObject();
    cJSON_ArrayForEach(line, v->samples) {
        const char *task = jstring(line, "task"), *kind = jstring(line, "kind");
        if (!seen || jget(seen, task)) continue;
        cJSON_AddTrueToObject(seen, task);
        if (strcmp(kind, "rope_drift") == 0) view_drift(v, task);
        else if (strcmp(kind, "niah_shift") == 0) view_niah_shift(v, task, summary);
        else if (strcmp(kind, "erf") == 0) view_erf(v, task);
        else if (strcmp(kind, "throughput") == 0) view_throughput(v, task);
        else if (strcmp(kind, "cache") == 0) view_cache(v, task);
    }
    cJSON_Delete(seen);
}

void views_free(MeasureViews *v) {
    for (int i = 0; i < v->n_views; i++) {
        TaskView *tv = &v->views[i];
        for (int f = 0; f < tv->n_figures; f++) plot_free(tv->figures[f].plot);
        for (int t = 0; t < tv->n_tables; t++) {
            ViewTable *vt = &tv->tables[t];
            for (int c = 0; c < vt->n_cols; c++) free(vt->heads[c]);
            for (int c = 0; c < vt->n_rows * vt->n_cols; c++) free(vt->cells[c]);
            free(vt->heads), free(vt->numeric), free(vt->cells);
        }
        free(tv->figures), free(tv->tables);
        free((char *)tv->task);
    }
    free(v->views);
    cJSON_Delete(v->samples);
    memset(v, 0, sizeof *v);
}
