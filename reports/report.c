/* report.c: see report.h. The report is built as two texts side by side
   (HTML and Markdown) from the same walk over the results:

     Run          run.json
     Errors       summary.json "errors" (with the first message from samples.jsonl)
     Summary      every accuracy-type task: metric, value ± stderr, n
     Heatmaps     every task with NIAH cells
     By length    accuracy against context length (numeric groups)
     Groups       per-group tables
     Throughput / Cache size / ERF / RoPE drift   entries of those kinds, when present,
                  then their tables and curves from the samples' "extra"
                  objects (measure_view.c)
     Other        anything in summary.json none of the above shows

   A metric goes to a kind's section by the kind of its task (from
   samples.jsonl) or, failing that, by its name (DESIGN.md §5 names). */
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "git_rev.h"
#include "heatmap.h"
#include "jsonl.h"
#include "measure_view.h"
#include "plot.h"
#include "textbuf.h"

/* ---------------------------------------------------------------- loading */

static const char *jstr(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int jnum(const cJSON *obj, const char *key, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v)) return 0;
    *out = v->valuedouble;
    return 1;
}

static cJSON *load_json(const char *path, Err *err) {
    size_t len = 0;
    char *text = read_text_file(path, &len, err);
    if (!text) return NULL;
    const char *where = NULL;
    cJSON *obj = cJSON_ParseWithOpts(text, &where, 0);
    if (!obj) {
        long offset = where ? (long)(where - text) : 0;
        free(text);
        err_set(err, "%s: not valid JSON (near byte %ld)", path, offset);
        return NULL;
    }
    free(text);
    return obj;
}

int resultdir_open(ResultDir *rd, const char *path, Err *err) {
    memset(rd, 0, sizeof *rd);
    struct stat st;
    if (stat(path, &st) != 0) return err_set(err, "%s: no such results directory or summary.json", path);
    if (S_ISDIR(st.st_mode)) {
        snprintf(rd->dir, sizeof rd->dir, "%s", path);
        snprintf(rd->summary_path, sizeof rd->summary_path, "%s/summary.json", path);
    } else {
        snprintf(rd->summary_path, sizeof rd->summary_path, "%s", path);
        const char *slash = strrchr(path, '/');
        if (slash) snprintf(rd->dir, sizeof rd->dir, "%.*s", (int)(slash - path), path);
        else snprintf(rd->dir, sizeof rd->dir, ".");
        if (!rd->dir[0]) snprintf(rd->dir, sizeof rd->dir, "/");
    }
    if (stat(rd->summary_path, &st) != 0)
        return err_set(err, "%s: missing (is %s a results directory written by hymeval run?)", rd->summary_path,
                       rd->dir);
    rd->summary = load_json(rd->summary_path, err);
    if (!rd->summary) return -1;
    const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(rd->summary, "metrics");
    if (!cJSON_IsObject(rd->summary) || !cJSON_IsArray(metrics)) {
        resultdir_close(rd);
        return err_set(err, "%s: has no \"metrics\" array", path);
    }
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, metrics) {
        double v;
        const cJSON *group = cJSON_GetObjectItemCaseSensitive(m, "group");
        if (!jstr(m, "task") || !jstr(m, "metric") || !jnum(m, "value", &v) || (group && !cJSON_IsString(group))) {
            err_set(err, "%s: metrics[%d] needs string \"task\" and \"metric\", a number \"value\" (and a string "
                    "\"group\" if any)", rd->summary_path, i);
            resultdir_close(rd);
            return -1;
        }
        i++;
    }
    char run_path[4200];
    snprintf(run_path, sizeof run_path, "%s/run.json", rd->dir);
    if (stat(run_path, &st) == 0) rd->run = load_json(run_path, NULL);
    return 0;
}

void resultdir_close(ResultDir *rd) {
    cJSON_Delete(rd->summary);
    cJSON_Delete(rd->run);
    rd->summary = rd->run = NULL;
}

const char *summary_headline_metric(const cJSON *summary, const char *task) {
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(summary, "metrics")) {
        const char *t = jstr(m, "task"), *metric = jstr(m, "metric");
        if (t && metric && strcmp(t, task) == 0) return metric;
    }
    return NULL;
}

/* ---------------------------------------------------------------- the model of the report */

enum {
    SEC_ACCURACY = METRIC_SCORE,
    SEC_THROUGHPUT = METRIC_THROUGHPUT,
    SEC_CACHE = METRIC_CACHE,
    SEC_ERF = METRIC_ERF,
    SEC_DRIFT = METRIC_DRIFT,
    N_SECTIONS
};
static const char *const SECTION_TITLE[N_SECTIONS] = {"Accuracy", "Throughput", "Cache size",
                                                      "Effective receptive field", "RoPE drift"};
static const char *const SECTION_ID[N_SECTIONS] = {"accuracy", "throughput", "cache", "erf", "drift"};

typedef struct {
    const char *task, *metric, *group;
    double value, se, n;
    int has_se, has_n, section;
} Entry;

typedef struct {
    const char *name;
    char kind[64];
    char first_error[256];
    long errors;
} TaskInfo;

typedef struct {
    const char *dir;
    ResultDir rd;
    Entry *entries;
    int n_entries;
    TaskInfo *tasks;
    int n_tasks;
    char samples_note[2100]; /* why samples.jsonl could not be read, if so */
    MeasureViews views;      /* the measurement kinds' pictures and tables (measure_view.h) */
    TextBuf html, md;
    int n_pictures;
    int picture_failures;
    char picture_error[2100];
} Report;

static TaskInfo *task_info(Report *R, const char *name, int create) {
    for (int i = 0; i < R->n_tasks; i++)
        if (strcmp(R->tasks[i].name, name) == 0) return &R->tasks[i];
    if (!create) return NULL;
    TaskInfo *grown = realloc(R->tasks, sizeof *grown * (size_t)(R->n_tasks + 1));
    if (!grown) return NULL;
    R->tasks = grown;
    TaskInfo *t = &R->tasks[R->n_tasks++];
    memset(t, 0, sizeof *t);
    t->name = name;
    return t;
}

static int starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static int ends(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* lm-eval-style scores, whatever kind reports them */
static int is_score_name(const char *metric) {
    return starts(metric, "acc") || starts(metric, "string_match") || starts(metric, "contains") ||
           starts(metric, "exact") || starts(metric, "regex") || strcmp(metric, "effective_length") == 0;
}

static int is_size_name(const char *metric) {
    return !starts(metric, "acc") && (strstr(metric, "bytes") || strcmp(metric, "mb") == 0 || ends(metric, "_mb"));
}

MetricSection metric_section(const char *kind, const char *metric) {
    if (!kind) kind = "";
    if (strcmp(kind, "throughput") == 0) return METRIC_THROUGHPUT;
    if (strcmp(kind, "cache") == 0) return METRIC_CACHE;
    if (strcmp(kind, "erf") == 0) return METRIC_ERF;
    if (strcmp(kind, "rope_drift") == 0) return METRIC_DRIFT;
    if (strstr(metric, "tokens_per_s")) return METRIC_THROUGHPUT;
    if (is_size_name(metric)) return METRIC_CACHE;
    if (starts(metric, "erf") || starts(metric, "mmd")) return METRIC_ERF;
    if (strstr(metric, "drift") || strstr(metric, "attn_diff") || strstr(metric, "logit_diff")) return METRIC_DRIFT;
    return METRIC_SCORE;
}

MetricDirection metric_direction(const char *kind, const char *metric) {
    if (!kind) kind = "";
    if (starts(metric, "acc")) return BETTER_HIGHER;
    if (strstr(metric, "tokens_per_s")) return BETTER_HIGHER_RATIO;
    if (is_size_name(metric)) return BETTER_LOWER_RATIO;
    if (strcmp(kind, "cache") == 0 && (strstr(metric, "allocated") || strstr(metric, "used")))
        return BETTER_LOWER_RATIO;
    if (starts(metric, "erf") || starts(metric, "mmd") || strstr(metric, "drift") || strstr(metric, "attn_diff") ||
        strstr(metric, "logit_diff") || starts(metric, "kl") || strstr(metric, "_kl"))
        return BETTER_NEITHER;
    if (strcmp(kind, "throughput") == 0 || strcmp(kind, "erf") == 0 || strcmp(kind, "rope_drift") == 0)
        return is_score_name(metric) ? BETTER_HIGHER : BETTER_NEITHER;
    return BETTER_HIGHER;
}

/* Task kinds and first error messages from samples.jsonl. The names are
   kept in strings the report owns (the summary's task names are reused
   where they exist). */
static void scan_samples(Report *R) {
    char path[4300];
    snprintf(path, sizeof path, "%s/samples.jsonl", R->rd.dir);
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(R->samples_note, sizeof R->samples_note, "no samples.jsonl: task kinds unknown");
        return;
    }
    Err err;
    JsonlReader *reader = jsonl_open(path, &err);
    if (!reader) {
        snprintf(R->samples_note, sizeof R->samples_note, "%s", err.msg);
        return;
    }
    cJSON *line;
    int line_no, rc;
    while ((rc = jsonl_next(reader, &line, &line_no, &err)) == 1) {
        const char *task = jstr(line, "task"), *kind = jstr(line, "kind"), *error = jstr(line, "error");
        TaskInfo *t = task ? task_info(R, task, 0) : NULL;
        views_add_sample(&R->views, line);
        if (t) {
            if (kind && !t->kind[0]) snprintf(t->kind, sizeof t->kind, "%s", kind);
            if (error) {
                if (!t->first_error[0]) snprintf(t->first_error, sizeof t->first_error, "%s", error);
                t->errors++;
            }
        }
        cJSON_Delete(line);
    }
    if (rc < 0) snprintf(R->samples_note, sizeof R->samples_note, "samples.jsonl: %s", err.msg);
    jsonl_close(reader);
}

static int collect(Report *R, Err *err) {
    const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(R->rd.summary, "metrics");
    int n = cJSON_GetArraySize(metrics);
    R->entries = calloc((size_t)(n > 0 ? n : 1), sizeof *R->entries);
    if (!R->entries) return err_set(err, "out of memory");
    const cJSON *m;
    cJSON_ArrayForEach(m, metrics) {
        Entry *e = &R->entries[R->n_entries++];
        e->task = jstr(m, "task");
        e->metric = jstr(m, "metric");
        e->group = jstr(m, "group") ? jstr(m, "group") : "";
        jnum(m, "value", &e->value);
        e->has_se = jnum(m, "stderr", &e->se);
        e->has_n = jnum(m, "n", &e->n);
        if (!task_info(R, e->task, 1)) return err_set(err, "out of memory");
    }
    const cJSON *cell;
    cJSON_ArrayForEach(cell, cJSON_GetObjectItemCaseSensitive(R->rd.summary, "cells")) {
        const char *task = jstr(cell, "task");
        if (task && !task_info(R, task, 1)) return err_set(err, "out of memory");
    }
    scan_samples(R);
    views_build(&R->views, R->rd.summary);
    for (int i = 0; i < R->n_entries; i++) {
        Entry *e = &R->entries[i];
        e->section = (int)metric_section(task_info(R, e->task, 0)->kind, e->metric);
    }
    return 0;
}

/* ---------------------------------------------------------------- text helpers */

static void fmt_num(double v, char *out, size_t len) {
    double a = fabs(v);
    if (!isfinite(v)) snprintf(out, len, "%g", v);
    else if (a >= 1e12) snprintf(out, len, "%.4g", v);
    else if (a >= 1000) snprintf(out, len, "%.0f", v);
    else if (a >= 100) snprintf(out, len, "%.1f", v);
    else snprintf(out, len, "%.4f", v);
}

static void fmt_value_se(const Entry *e, char *out, size_t len) {
    char v[64], s[64];
    fmt_num(e->value, v, sizeof v);
    if (!e->has_se || (e->has_n && e->n <= 1)) { /* one measurement: no sampling error to show */
        snprintf(out, len, "%s", v);
        return;
    }
    fmt_num(e->se, s, sizeof s);
    snprintf(out, len, "%s ± %s", v, s);
}

static void fmt_n(const Entry *e, char *out, size_t len) {
    if (e->has_n) snprintf(out, len, "%.0f", e->n);
    else snprintf(out, len, "-");
}

static void md_cell(TextBuf *b, const char *s) {
    for (const char *p = s; *p; p++) {
        if (*p == '|') tb_add(b, "\\|");
        else if (*p == '\n' || *p == '\r') tb_add(b, " ");
        else tb_addn(b, p, 1);
    }
}

/* A file name from free text: [A-Za-z0-9._-] kept, the rest '_'. */
static void safe_name(const char *in, char *out, size_t len) {
    size_t k = 0;
    for (const char *p = in; *p && k + 1 < len; p++) {
        char ch = *p;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                 ch == '-' || ch == '_';
        out[k++] = ok ? ch : '_';
    }
    out[k] = 0;
}

static void heading(Report *R, int level, const char *id, const char *text) {
    tb_printf(&R->html, "<h%d id=\"%s\">", level, id);
    tb_add_xml(&R->html, text);
    tb_printf(&R->html, "</h%d>\n", level);
    tb_printf(&R->md, "\n%.*s %s\n\n", level, "######", text);
}

static void paragraph(Report *R, const char *cls, const char *text) {
    if (cls) tb_printf(&R->html, "<p class=\"%s\">", cls);
    else tb_add(&R->html, "<p>");
    tb_add_xml(&R->html, text);
    tb_add(&R->html, "</p>\n");
    tb_printf(&R->md, "%s%s\n\n", cls && strcmp(cls, "warn") == 0 ? "**Warning:** " : "", text);
}

/* ---------------------------------------------------------------- tables */

typedef struct {
    const char *head;
    int numeric;   /* right-aligned, tabular figures */
    int html_only; /* a visual column (value bars) Markdown leaves out */
} Col;

static void table_begin(Report *R, const Col *cols, int n) {
    tb_add(&R->html, "<table>\n<thead><tr>");
    for (int i = 0; i < n; i++) {
        tb_printf(&R->html, "<th%s>", cols[i].numeric ? " class=\"num\"" : "");
        tb_add_xml(&R->html, cols[i].head);
        tb_add(&R->html, "</th>");
    }
    tb_add(&R->html, "</tr></thead>\n<tbody>\n");
    tb_add(&R->md, "|");
    for (int i = 0; i < n; i++)
        if (!cols[i].html_only) {
            tb_add(&R->md, " ");
            md_cell(&R->md, cols[i].head);
            tb_add(&R->md, " |");
        }
    tb_add(&R->md, "\n|");
    for (int i = 0; i < n; i++)
        if (!cols[i].html_only) tb_add(&R->md, cols[i].numeric ? "---:|" : "---|");
    tb_add(&R->md, "\n");
}

/* text[i]: the cell as plain text; raw[i] (if raw and raw[i]): HTML used
   instead of text[i] in the HTML table. */
static void table_row(Report *R, const Col *cols, int n, const char *const *text, const char *const *raw) {
    tb_add(&R->html, "<tr>");
    for (int i = 0; i < n; i++) {
        tb_printf(&R->html, "<td%s>", cols[i].numeric ? " class=\"num\"" : "");
        if (raw && raw[i]) tb_add(&R->html, raw[i]);
        else tb_add_xml(&R->html, text[i] ? text[i] : "");
        tb_add(&R->html, "</td>");
    }
    tb_add(&R->html, "</tr>\n");
    tb_add(&R->md, "|");
    for (int i = 0; i < n; i++)
        if (!cols[i].html_only) {
            tb_add(&R->md, " ");
            md_cell(&R->md, text[i] ? text[i] : "");
            tb_add(&R->md, " |");
        }
    tb_add(&R->md, "\n");
}

static void table_end(Report *R) {
    tb_add(&R->html, "</tbody>\n</table>\n");
    tb_add(&R->md, "\n");
}

/* A horizontal bar for a score in [0, 1], coloured as the heatmap colours it. */
static void value_bar(double v, char *out, size_t len) {
    if (!(v >= 0 && v <= 1)) {
        out[0] = 0;
        return;
    }
    snprintf(out, len, "<span class=\"bar\"><span style=\"width:%.1f%%;background:#%06X\"></span></span>", v * 100,
             (unsigned)heatmap_color(v));
}

/* ---------------------------------------------------------------- pictures */

/* Adds a picture: inline SVG in the HTML, the PNG file (already written by
   the caller, rc 0) linked from the Markdown. svg is freed here. */
static void figure(Report *R, const char *file, const char *caption, char *svg, int png_rc, const Err *png_err) {
    R->n_pictures++;
    tb_add(&R->html, "<figure>\n");
    if (svg) tb_add(&R->html, svg);
    tb_add(&R->html, "<figcaption>");
    tb_add_xml(&R->html, caption);
    tb_add(&R->html, "</figcaption>\n</figure>\n");
    if (png_rc == 0) {
        tb_printf(&R->md, "![");
        md_cell(&R->md, caption);
        tb_printf(&R->md, "](%s)\n\n", file);
    } else {
        R->picture_failures++;
        snprintf(R->picture_error, sizeof R->picture_error, "%s", png_err->msg);
        tb_printf(&R->md, "(picture %s could not be written: %s)\n\n", file, png_err->msg);
    }
    free(svg);
}

static void plot_figure(Report *R, Plot *p, const char *file, const char *caption) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", R->rd.dir, file);
    Err err;
    int rc = plot_write_png(p, path, &err);
    figure(R, file, caption, plot_svg(p), rc, &err);
}

static void heatmap_figure(Report *R, const Heatmap *hm, const char *task, const char *metric) {
    char file[512], stub[400], path[4700], id[32], caption[600];
    snprintf(stub, sizeof stub, "%s-%s", task, metric);
    safe_name(stub, file, sizeof file - 16);
    memmove(file + 8, file, strlen(file) + 1);
    memcpy(file, "heatmap-", 8);
    strcat(file, ".png");
    snprintf(path, sizeof path, "%s/%s", R->rd.dir, file);
    snprintf(id, sizeof id, "hm%d", R->n_pictures);
    snprintf(caption, sizeof caption, "%s: %s by context length (columns) and needle depth (rows)", task, metric);
    Err err;
    int rc = heatmap_write_png(hm, path, &err);
    figure(R, file, caption, heatmap_svg(hm, id), rc, &err);
}

/* ---------------------------------------------------------------- groups */

static int parse_number(const char *s, double *out) {
    char *end;
    if (!*s) return 0;
    *out = strtod(s, &end);
    return *end == 0 && isfinite(*out);
}

/* The distinct groups of a task's entries in one section, in order (sorted
   numerically when every group is a number). Returns the count; *numeric
   says whether they all parse as numbers. */
static int task_groups(const Report *R, const char *task, int section, const char **out, int cap, int *numeric) {
    int n = 0;
    *numeric = 1;
    for (int i = 0; i < R->n_entries; i++) {
        const Entry *e = &R->entries[i];
        if (e->section != section || strcmp(e->task, task) != 0 || !e->group[0]) continue;
        int seen = 0;
        for (int k = 0; k < n && !seen; k++) seen = strcmp(out[k], e->group) == 0;
        if (seen || n == cap) continue;
        out[n++] = e->group;
        double v;
        if (!parse_number(e->group, &v)) *numeric = 0;
    }
    if (*numeric) /* insertion sort by value: a handful of groups */
        for (int i = 1; i < n; i++)
            for (int k = i; k > 0 && strtod(out[k], NULL) < strtod(out[k - 1], NULL); k--) {
                const char *t = out[k];
                out[k] = out[k - 1];
                out[k - 1] = t;
            }
    return n;
}

/* The distinct metrics of a task in a section, in summary order. */
static int task_metrics(const Report *R, const char *task, int section, const char **out, int cap) {
    int n = 0;
    for (int i = 0; i < R->n_entries; i++) {
        const Entry *e = &R->entries[i];
        if (e->section != section || strcmp(e->task, task) != 0) continue;
        int seen = 0;
        for (int k = 0; k < n && !seen; k++) seen = strcmp(out[k], e->metric) == 0;
        if (!seen && n < cap) out[n++] = e->metric;
    }
    return n;
}

static const Entry *find_entry(const Report *R, const char *task, const char *metric, const char *group) {
    for (int i = 0; i < R->n_entries; i++) {
        const Entry *e = &R->entries[i];
        if (strcmp(e->task, task) == 0 && strcmp(e->metric, metric) == 0 && strcmp(e->group, group) == 0) return e;
    }
    return NULL;
}

enum { MAX_GROUPS = 256, MAX_METRICS = 32 };

/* Values of one metric over numeric groups as a series; returns the count. */
static int group_series(const Report *R, const char *task, const char *metric, const char **groups, int n_groups,
                        double *xs, double *ys) {
    int n = 0;
    for (int g = 0; g < n_groups; g++) {
        const Entry *e = find_entry(R, task, metric, groups[g]);
        if (!e) continue;
        xs[n] = strtod(groups[g], NULL);
        ys[n] = e->value;
        n++;
    }
    return n;
}

/* Log x when the groups span a factor of 2 or more (context lengths); for
   scores (unit_y), y from 0 to 1 when every value lies there. */
static void axes_for(Plot *p, const double *xs, const double *ys, int n, int unit_y) {
    double lo = INFINITY, hi = -INFINITY;
    int unit = 1;
    for (int i = 0; i < n; i++) {
        if (xs[i] < lo) lo = xs[i];
        if (xs[i] > hi) hi = xs[i];
        if (!(ys[i] >= 0 && ys[i] <= 1)) unit = 0;
    }
    if (lo > 0 && hi / lo >= 2) plot_set_log_x(p, 1);
    if (unit && unit_y) plot_set_y_range(p, 0, 1);
}

/* ---------------------------------------------------------------- sections */

/* One run.json field: strings as they are, the command line as its words
   joined by spaces, anything else as compact JSON. */
static void run_row(Report *R, const Col *cols, const cJSON *item) {
    TextBuf v;
    tb_init(&v);
    if (cJSON_IsString(item)) {
        tb_add(&v, item->valuestring);
    } else if (cJSON_IsArray(item)) {
        const cJSON *w;
        cJSON_ArrayForEach(w, item) {
            if (v.len) tb_add(&v, " ");
            if (cJSON_IsString(w)) {
                tb_add(&v, w->valuestring);
            } else {
                char *t = cJSON_PrintUnformatted(w);
                if (t) tb_add(&v, t);
                free(t);
            }
        }
    } else {
        char *t = cJSON_PrintUnformatted(item);
        if (t) tb_add(&v, t);
        free(t);
    }
    char *value = tb_take(&v);
    if (value && strlen(value) > 600) strcpy(value + 597, "...");
    const char *cells[2] = {item->string, value ? value : ""};
    table_row(R, cols, 2, cells, NULL);
    free(value);
}

static void section_run(Report *R) {
    heading(R, 2, "run", "Run");
    const cJSON *run = R->rd.run;
    if (!run) {
        paragraph(R, "warn", "run.json is missing or unreadable.");
        return;
    }
    static const char *const order[] = {"tasks_file", "model", "backend", "device", "precision", "weights_dtype",
                                        "engine_version", "engine_git_revision", "started", "ended", "complete",
                                        "resumed", "resumed_at", "error", "limit", "only", "command", "tasks_sha256",
                                        "model_sha256", "config", "seeds"};
    const int n_order = (int)(sizeof order / sizeof *order);
    static const Col cols[] = {{"field", 0, 0}, {"value", 0, 0}};
    table_begin(R, cols, 2);
    /* the usual fields in a fixed order, then anything else run.json holds */
    for (int k = 0; k < n_order; k++) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(run, order[k]);
        if (item) run_row(R, cols, item);
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, run) {
        int listed = 0;
        for (int k = 0; k < n_order && !listed; k++) listed = strcmp(item->string, order[k]) == 0;
        if (!listed) run_row(R, cols, item);
    }
    table_end(R);
}

static void section_errors(Report *R) {
    const cJSON *errors = cJSON_GetObjectItemCaseSensitive(R->rd.summary, "errors");
    int any = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, errors) any = 1;
    if (!any && !R->samples_note[0]) return;
    heading(R, 2, "errors", "Errors");
    if (R->samples_note[0]) paragraph(R, "warn", R->samples_note);
    if (!any) return;
    paragraph(R, "warn", "Some examples failed and are left out of the metrics (summary.json \"errors\"):");
    static const Col cols[] = {{"task", 0, 0}, {"failed examples", 1, 0}, {"first error", 0, 0}};
    table_begin(R, cols, 3);
    cJSON_ArrayForEach(e, errors) {
        char count[64];
        if (cJSON_IsNumber(e)) snprintf(count, sizeof count, "%.0f", e->valuedouble);
        else snprintf(count, sizeof count, "?");
        const TaskInfo *t = task_info(R, e->string, 0);
        const char *cells[3] = {e->string, count, t ? t->first_error : ""};
        table_row(R, cols, 3, cells, NULL);
    }
    table_end(R);
}

/* One table of every overall (ungrouped) entry of a section. */
static void overall_table(Report *R, int section) {
    static const Col cols[] = {{"task", 0, 0}, {"kind", 0, 0},  {"metric", 0, 0},
                               {"value ± stderr", 1, 0}, {"n", 1, 0}, {"", 0, 1}};
    table_begin(R, cols, 6);
    const char *last_task = NULL;
    for (int i = 0; i < R->n_entries; i++) {
        const Entry *e = &R->entries[i];
        if (e->section != section || e->group[0]) continue;
        char value[160], n[32], bar[256];
        fmt_value_se(e, value, sizeof value);
        fmt_n(e, n, sizeof n);
        if (section == SEC_ACCURACY) value_bar(e->value, bar, sizeof bar);
        else bar[0] = 0;
        int first = !last_task || strcmp(last_task, e->task) != 0;
        const TaskInfo *t = task_info(R, e->task, 0);
        const char *cells[6] = {first ? e->task : "", first && t ? t->kind : "", e->metric, value, n, ""};
        const char *raw[6] = {NULL, NULL, NULL, NULL, NULL, bar};
        table_row(R, cols, 6, cells, raw);
        last_task = e->task;
    }
    table_end(R);
}

static int section_has(const Report *R, int section, int grouped) {
    for (int i = 0; i < R->n_entries; i++)
        if (R->entries[i].section == section && (grouped ? R->entries[i].group[0] != 0 : 1)) return 1;
    return 0;
}

static void group_tables(Report *R, int section) {
    for (int t = 0; t < R->n_tasks; t++) {
        const char *task = R->tasks[t].name;
        const char *groups[MAX_GROUPS], *metrics[MAX_METRICS];
        int numeric, n_groups = task_groups(R, task, section, groups, MAX_GROUPS, &numeric);
        if (!n_groups) continue;
        int n_metrics = task_metrics(R, task, section, metrics, MAX_METRICS);
        char id[300], stub[300];
        snprintf(stub, sizeof stub, "%s-%s", SECTION_ID[section], task);
        safe_name(stub, id, sizeof id);
        heading(R, 3, id, task);
        Col cols[MAX_METRICS + 2];
        cols[0] = (Col){numeric && section == SEC_ACCURACY ? "length" : "group", numeric, 0};
        cols[1] = (Col){"n", 1, 0};
        for (int m = 0; m < n_metrics; m++) cols[m + 2] = (Col){metrics[m], 1, 0};
        table_begin(R, cols, n_metrics + 2);
        for (int g = 0; g < n_groups; g++) {
            char texts[MAX_METRICS + 2][160];
            const char *cells[MAX_METRICS + 2];
            snprintf(texts[0], sizeof texts[0], "%s", groups[g]);
            snprintf(texts[1], sizeof texts[1], "-");
            for (int m = 0; m < n_metrics; m++) {
                const Entry *e = find_entry(R, task, metrics[m], groups[g]);
                if (e) {
                    fmt_value_se(e, texts[m + 2], sizeof texts[m + 2]);
                    if (m == 0 || strcmp(texts[1], "-") == 0) fmt_n(e, texts[1], sizeof texts[1]);
                } else {
                    snprintf(texts[m + 2], sizeof texts[m + 2], "-");
                }
            }
            for (int c = 0; c < n_metrics + 2; c++) cells[c] = texts[c];
            table_row(R, cols, n_metrics + 2, cells, NULL);
        }
        table_end(R);
    }
}

/* Per-task curves of every metric over numeric groups (>= 2 of them); with
   min_metrics 2, only tasks with several metrics (a single one is already a
   curve of the combined accuracy plot). */
static void group_plots(Report *R, int section, const char *x_label, const char *what, int min_metrics) {
    for (int t = 0; t < R->n_tasks; t++) {
        const char *task = R->tasks[t].name;
        const char *groups[MAX_GROUPS], *metrics[MAX_METRICS];
        int numeric, n_groups = task_groups(R, task, section, groups, MAX_GROUPS, &numeric);
        if (!numeric || n_groups < 2) continue;
        int n_metrics = task_metrics(R, task, section, metrics, MAX_METRICS);
        if (n_metrics < min_metrics) continue;
        char title[300], file[400], stub[300], caption[400];
        snprintf(title, sizeof title, "%s: %s", task, what);
        Plot *p = plot_new(title, x_label, section == SEC_ACCURACY ? "score" : "value");
        if (!p) continue;
        double xs[MAX_GROUPS], ys[MAX_GROUPS], all_x[MAX_GROUPS * 4], all_y[MAX_GROUPS * 4];
        int n_all = 0;
        for (int m = 0; m < n_metrics; m++) {
            int n = group_series(R, task, metrics[m], groups, n_groups, xs, ys);
            plot_add_series(p, metrics[m], xs, ys, n);
            for (int i = 0; i < n && n_all < MAX_GROUPS * 4; i++, n_all++) all_x[n_all] = xs[i], all_y[n_all] = ys[i];
        }
        axes_for(p, all_x, all_y, n_all, section == SEC_ACCURACY);
        snprintf(stub, sizeof stub, "%s-%s", SECTION_ID[section], task);
        safe_name(stub, file, sizeof file - 8);
        strcat(file, ".png");
        snprintf(caption, sizeof caption, "%s: %s (every metric)", task, what);
        plot_figure(R, p, file, caption);
        plot_free(p);
    }
}

static void section_heatmaps(Report *R) {
    const cJSON *cells = cJSON_GetObjectItemCaseSensitive(R->rd.summary, "cells");
    if (cJSON_GetArraySize(cells) == 0) return;
    heading(R, 2, "heatmaps", "Needle-in-a-haystack heatmaps");
    paragraph(R, "note",
              "Mean score per context length (Token Limit) and needle depth (Depth Percent); summary.json \"cells\" "
              "holds n and a 95% Wilson interval for every cell.");
    for (int t = 0; t < R->n_tasks; t++) {
        const char *task = R->tasks[t].name;
        /* the metrics this task has cells for, headline first */
        const char *metrics[MAX_METRICS];
        int n_metrics = 0;
        const char *headline = summary_headline_metric(R->rd.summary, task);
        const cJSON *cell;
        cJSON_ArrayForEach(cell, cells) {
            const char *ct = jstr(cell, "task"), *cm = jstr(cell, "metric");
            if (!ct || !cm || strcmp(ct, task) != 0) continue;
            int seen = 0;
            for (int k = 0; k < n_metrics && !seen; k++) seen = strcmp(metrics[k], cm) == 0;
            if (seen || n_metrics == MAX_METRICS) continue;
            metrics[n_metrics++] = cm;
            if (headline && strcmp(cm, headline) == 0 && n_metrics > 1) {
                metrics[n_metrics - 1] = metrics[0];
                metrics[0] = cm;
            }
        }
        Heatmap first = {0};
        for (int m = 0; m < n_metrics; m++) {
            Heatmap hm;
            Err err;
            if (heatmap_from_summary(&hm, R->rd.summary, task, metrics[m], &err)) continue;
            int same = m > 0 && first.n_x == hm.n_x && first.n_y == hm.n_y;
            for (int k = 0; same && k < hm.n_x * hm.n_y; k++)
                same = (isnan(first.values[k]) && isnan(hm.values[k])) || first.values[k] == hm.values[k];
            if (same) {
                char note[400];
                snprintf(note, sizeof note, "%s: the %s heatmap is identical to the %s one above.", task, metrics[m],
                         metrics[0]);
                paragraph(R, "note", note);
            } else {
                heatmap_figure(R, &hm, task, metrics[m]);
            }
            if (m == 0) first = hm;
            else heatmap_free(&hm);
        }
        heatmap_free(&first);
    }
}

static void section_lengths(Report *R) {
    /* the headline metric of every accuracy task with numeric groups */
    Plot *p = plot_new("Accuracy by context length", "Token Limit", "score");
    if (!p) return;
    double all_x[4096], all_y[4096];
    int n_all = 0, multi_point = 0;
    for (int t = 0; t < R->n_tasks; t++) {
        const char *task = R->tasks[t].name, *groups[MAX_GROUPS];
        int numeric, n_groups = task_groups(R, task, SEC_ACCURACY, groups, MAX_GROUPS, &numeric);
        const char *headline = summary_headline_metric(R->rd.summary, task);
        if (!numeric || !n_groups || !headline) continue;
        double xs[MAX_GROUPS], ys[MAX_GROUPS];
        int n = group_series(R, task, headline, groups, n_groups, xs, ys);
        if (!n) continue;
        char name[300];
        snprintf(name, sizeof name, "%s (%s)", task, headline);
        plot_add_series(p, name, xs, ys, n);
        if (n > 1) multi_point = 1;
        for (int i = 0; i < n && n_all < 4096; i++, n_all++) all_x[n_all] = xs[i], all_y[n_all] = ys[i];
    }
    if (plot_series_count(p) == 0) {
        plot_free(p);
        return;
    }
    heading(R, 2, "lengths", "Accuracy by context length");
    axes_for(p, all_x, all_y, n_all, 1);
    plot_figure(R, p, "length-all.png",
                multi_point || plot_series_count(p) > 1
                    ? "Headline metric of every task against its context-length groups"
                    : "Headline metric against context length (one length tested)");
    plot_free(p);
    group_plots(R, SEC_ACCURACY, "Token Limit", "accuracy by context length", 2);
}

static int section_has_views(const Report *R, int section) {
    for (int i = 0; i < R->views.n_views; i++)
        if (R->views.views[i].section == section) return 1;
    return 0;
}

/* The measurement kinds' own tables and pictures (measure_view.h). */
static void section_views(Report *R, int section) {
    for (int i = 0; i < R->views.n_views; i++) {
        const TaskView *tv = &R->views.views[i];
        if (tv->section != section) continue;
        char id[400], stub[400], title[300];
        snprintf(stub, sizeof stub, "%s-%s-view", SECTION_ID[section], tv->task);
        safe_name(stub, id, sizeof id);
        snprintf(title, sizeof title, "%s: tables and curves", tv->task);
        heading(R, 3, id, title);
        for (int t = 0; t < tv->n_tables; t++) {
            const ViewTable *vt = &tv->tables[t];
            Col cols[80];
            int n = vt->n_cols < 80 ? vt->n_cols : 80;
            for (int c = 0; c < n; c++) cols[c] = (Col){vt->heads[c], vt->numeric[c], 0};
            paragraph(R, "note", vt->caption);
            table_begin(R, cols, n);
            for (int r = 0; r < vt->n_rows; r++)
                table_row(R, cols, n, (const char *const *)vt->cells + (size_t)r * vt->n_cols, NULL);
            table_end(R);
        }
        for (int f = 0; f < tv->n_figures; f++) {
            char file[400];
            safe_name(tv->figures[f].stub, file, sizeof file - 8);
            strcat(file, ".png");
            plot_figure(R, tv->figures[f].plot, file, tv->figures[f].caption);
        }
    }
}

static void section_kind(Report *R, int section) {
    int views = section_has_views(R, section);
    if (!section_has(R, section, 0) && !views) return;
    heading(R, 2, SECTION_ID[section], SECTION_TITLE[section]);
    if (section_has(R, section, 0)) overall_table(R, section);
    if (section_has(R, section, 1)) {
        group_tables(R, section);
        group_plots(R, section, "group", "by group", 1);
    }
    if (views) section_views(R, section);
}

/* Whatever summary.json holds besides "metrics", "cells" and "errors". */
static void section_other(Report *R) {
    heading(R, 2, "other", "Other metrics");
    int shown = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, R->rd.summary) {
        if (strcmp(item->string, "metrics") == 0 || strcmp(item->string, "cells") == 0 ||
            strcmp(item->string, "errors") == 0)
            continue;
        shown++;
        char id[300], stub[300];
        snprintf(stub, sizeof stub, "other-%s", item->string);
        safe_name(stub, id, sizeof id);
        heading(R, 3, id, item->string);
        if (cJSON_IsArray(item) && cJSON_GetArraySize(item) > 0 && cJSON_IsObject(cJSON_GetArrayItem(item, 0))) {
            /* an array of objects: one column per key seen */
            const char *keys[64];
            int n_keys = 0;
            const cJSON *row, *field;
            cJSON_ArrayForEach(row, item) cJSON_ArrayForEach(field, row) {
                int seen = 0;
                for (int k = 0; k < n_keys && !seen; k++) seen = strcmp(keys[k], field->string) == 0;
                if (!seen && n_keys < 64) keys[n_keys++] = field->string;
            }
            Col cols[64];
            for (int k = 0; k < n_keys; k++) cols[k] = (Col){keys[k], 0, 0};
            table_begin(R, cols, n_keys);
            cJSON_ArrayForEach(row, item) {
                char *texts[64] = {0};
                for (int k = 0; k < n_keys; k++) {
                    const cJSON *f = cJSON_GetObjectItemCaseSensitive(row, keys[k]);
                    if (!f) continue;
                    if (cJSON_IsString(f)) {
                        texts[k] = malloc(strlen(f->valuestring) + 1);
                        if (texts[k]) strcpy(texts[k], f->valuestring);
                    } else if (cJSON_IsNumber(f)) {
                        texts[k] = malloc(64);
                        if (texts[k]) fmt_num(f->valuedouble, texts[k], 64);
                    } else {
                        texts[k] = cJSON_PrintUnformatted(f);
                    }
                }
                table_row(R, cols, n_keys, (const char *const *)texts, NULL);
                for (int k = 0; k < n_keys; k++) free(texts[k]);
            }
            table_end(R);
        } else {
            char *text = cJSON_Print(item);
            tb_add(&R->html, "<pre>");
            tb_add_xml(&R->html, text ? text : "");
            tb_add(&R->html, "</pre>\n");
            tb_printf(&R->md, "```json\n%s\n```\n\n", text ? text : "");
            free(text);
        }
    }
    if (!shown) paragraph(R, "note", "Nothing else in summary.json: every entry is shown above.");
}

/* ---------------------------------------------------------------- the page */

static const char CSS[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:0;color:#1f2328;"
    "background:#f6f7f9}\n"
    "main{max-width:1320px;margin:0 auto;padding:24px 32px 48px;background:#fff;min-height:100vh;"
    "box-shadow:0 0 0 1px #e3e6ea}\n"
    "h1{font-size:28px;margin:8px 0 4px}h2{font-size:21px;margin:36px 0 12px;padding-bottom:6px;"
    "border-bottom:2px solid #e3e6ea}h3{font-size:16px;margin:22px 0 8px}\n"
    ".sub{color:#57606a;margin:0 0 12px}\n"
    "nav{margin:12px 0 0;font-size:14px}nav a{margin-right:14px;color:#0b63c5;text-decoration:none}\n"
    "table{border-collapse:collapse;margin:8px 0 16px;font-size:14px}\n"
    "th,td{padding:5px 12px;border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:top}\n"
    "th{background:#f0f2f5;font-weight:600}tbody tr:nth-child(even){background:#fafbfc}\n"
    "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n"
    "td{max-width:760px;overflow-wrap:anywhere}\n"
    ".bar{display:inline-block;width:120px;height:10px;background:#eceef1;border-radius:2px;vertical-align:middle}\n"
    ".bar span{display:block;height:10px;border-radius:2px}\n"
    "figure{margin:12px 0 24px}figure svg{max-width:100%;height:auto;display:block;border:1px solid #e3e6ea}\n"
    "figcaption{color:#57606a;font-size:13px;margin-top:6px}\n"
    ".note{color:#57606a;font-size:14px}.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:8px 12px}\n"
    "pre{background:#f6f8fa;padding:10px;overflow:auto;font-size:13px}\n"
    "footer{margin-top:40px;color:#8c959f;font-size:12px}\n";

static double iso_seconds(const char *s) {
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                     &tm.tm_sec) != 6)
        return NAN;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)timegm(&tm);
}

static void page_header(Report *R) {
    const cJSON *run = R->rd.run;
    char title[4300];
    snprintf(title, sizeof title, "hymeval report: %s", R->rd.dir);
    tb_add(&R->html, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
    tb_add_xml(&R->html, title);
    tb_printf(&R->html, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<main>\n<h1>", CSS);
    tb_add_xml(&R->html, title);
    tb_add(&R->html, "</h1>\n");
    tb_printf(&R->md, "# %s\n\n", title);

    TextBuf sub;
    tb_init(&sub);
    const char *model = run ? jstr(run, "model") : NULL, *device = run ? jstr(run, "device") : NULL;
    const char *precision = run ? jstr(run, "precision") : NULL, *started = run ? jstr(run, "started") : NULL;
    if (model) tb_printf(&sub, "model %s", model);
    if (device) tb_printf(&sub, "%son %s", sub.len ? " " : "", device);
    if (precision) tb_printf(&sub, "%sprecision %s", sub.len ? ", " : "", precision);
    if (started) tb_printf(&sub, "%sstarted %s", sub.len ? ", " : "", started);
    double seconds = run ? iso_seconds(jstr(run, "ended")) - iso_seconds(started) : NAN;
    if (isfinite(seconds)) tb_printf(&sub, " (%.0f s)", seconds);
    tb_printf(&sub, "%s%d task(s)", sub.len ? "; " : "", R->n_tasks);
    const cJSON *complete = run ? cJSON_GetObjectItemCaseSensitive(run, "complete") : NULL;
    if (cJSON_IsFalse(complete)) tb_add(&sub, "; INCOMPLETE run");
    char *text = tb_take(&sub);
    if (text) paragraph(R, "sub", text);
    free(text);
}

static void page_nav(Report *R) {
    const cJSON *cells = cJSON_GetObjectItemCaseSensitive(R->rd.summary, "cells");
    tb_add(&R->html, "<nav><a href=\"#run\">Run</a><a href=\"#summary\">Summary</a>");
    if (cJSON_GetArraySize(cells) > 0) tb_add(&R->html, "<a href=\"#heatmaps\">Heatmaps</a>");
    if (section_has(R, SEC_ACCURACY, 1))
        tb_add(&R->html, "<a href=\"#lengths\">By length</a><a href=\"#groups\">Groups</a>");
    for (int s = 1; s < N_SECTIONS; s++)
        if (section_has(R, s, 0) || section_has_views(R, s))
            tb_printf(&R->html, "<a href=\"#%s\">%s</a>", SECTION_ID[s], SECTION_TITLE[s]);
    tb_add(&R->html, "<a href=\"#other\">Other</a></nav>\n");
}

int report_write(const char *dir, Err *err) {
    Report R;
    memset(&R, 0, sizeof R);
    R.dir = dir;
    if (resultdir_open(&R.rd, dir, err)) return -1;
    int rc = -1;
    if (collect(&R, err)) goto done;
    tb_init(&R.html);
    tb_init(&R.md);

    page_header(&R);
    page_nav(&R);
    section_run(&R);
    section_errors(&R);
    heading(&R, 2, "summary", "Summary");
    if (section_has(&R, SEC_ACCURACY, 0)) overall_table(&R, SEC_ACCURACY);
    else paragraph(&R, "note", "No accuracy-type metrics in this run.");
    section_heatmaps(&R);
    if (section_has(&R, SEC_ACCURACY, 1)) {
        section_lengths(&R);
        heading(&R, 2, "groups", "Results per group");
        group_tables(&R, SEC_ACCURACY);
    }
    for (int s = 1; s < N_SECTIONS; s++) section_kind(&R, s);
    section_other(&R);

    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    tb_printf(&R.html, "<footer>written by hymeval %s (%s) at %s from %s/summary.json</footer>\n</main>\n</body>\n"
                       "</html>\n", HYMEVAL_VERSION, HYMEVAL_GIT_REV, when, R.rd.dir);
    tb_printf(&R.md, "\n---\nwritten by hymeval %s (%s) at %s\n", HYMEVAL_VERSION, HYMEVAL_GIT_REV, when);

    char *html = tb_take(&R.html), *md = tb_take(&R.md);
    char path[4400];
    if (!html || !md) {
        err_set(err, "out of memory writing the report");
    } else {
        snprintf(path, sizeof path, "%s/report.html", R.rd.dir);
        if (write_file_atomic(path, html, strlen(html), err) == 0) {
            snprintf(path, sizeof path, "%s/report.md", R.rd.dir);
            if (write_file_atomic(path, md, strlen(md), err) == 0) rc = 0;
        }
    }
    if (rc == 0 && R.picture_failures)
        rc = err_set(err, "%d picture(s) could not be written: %s", R.picture_failures, R.picture_error);
    free(html);
    free(md);
done:
    tb_free(&R.html);
    tb_free(&R.md);
    free(R.entries);
    free(R.tasks);
    views_free(&R.views);
    resultdir_close(&R.rd);
    return rc;
}
