/* cmd_history.c: `hymeval history DIR...`: how metrics moved over a series
   of runs (nightly results directories). One row per (task, metric[, group]),
   one column per run, on stdout and in history.md; history.png plots the
   headline metric of every task whose values are scores in [0, 1]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "plot.h"
#include "report.h"
#include "textbuf.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: hymeval history DIR... [--by-time] [--groups] [--out DIR]\n\n"
            "A trend table of the metrics of several results directories (or summary.json files):\n"
            "one row per task and metric, one column per run, in the order given (--by-time: by\n"
            "run.json's start time), and the change from the first run to the last. --groups adds\n"
            "the per-group rows (e.g. per context length). Prints the table and writes history.md and\n"
            "history.png (the headline metric of each task over the runs) into --out DIR (default:\n"
            "the current directory).\n");
}

typedef struct {
    ResultDir rd;
    char label[64];
    const char *started;
    int order; /* position on the command line */
} Run;

typedef struct {
    const char *task, *metric, *group;
} Key;

static const char *jstr(const cJSON *obj, const char *key) {
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *group_of(const cJSON *m) {
    const char *g = jstr(m, "group");
    return g ? g : "";
}

/* A run's value for a key, if it has one. */
static int run_value(const Run *run, const Key *k, double *v) {
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(run->rd.summary, "metrics")) {
        if (strcmp(jstr(m, "task"), k->task) == 0 && strcmp(jstr(m, "metric"), k->metric) == 0 &&
            strcmp(group_of(m), k->group) == 0) {
            *v = cJSON_GetObjectItemCaseSensitive(m, "value")->valuedouble;
            return 1;
        }
    }
    return 0;
}

static int by_start_time(const void *a, const void *b) {
    const Run *x = a, *y = b;
    const char *sx = x->started ? x->started : "", *sy = y->started ? y->started : "";
    int c = strcmp(sx, sy); /* ISO 8601 UTC times sort as text */
    return c ? c : x->order - y->order;
}

/* The run's name: the directory's last component. */
static void run_label(const char *dir, char *out, size_t len) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    size_t start = n;
    while (start > 0 && dir[start - 1] != '/') start--;
    snprintf(out, len, "%.*s", (int)(n - start), dir + start);
}

static void fmt_value(double v, char *out, size_t len) {
    if (fabs(v) >= 1000) snprintf(out, len, "%.1f", v);
    else snprintf(out, len, "%.4f", v);
}

int cmd_history(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    const char *out_dir = ".";
    int by_time = 0, groups = 0, n_runs = 0;
    Run *runs = calloc((size_t)argc, sizeof *runs);
    if (!runs) return EXIT_FAIL;
    const char **paths = calloc((size_t)argc, sizeof *paths);
    if (!paths) {
        free(runs);
        return EXIT_FAIL;
    }
    int n_paths = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0) {
            if (!(out_dir = cli_value(argc, argv, &i))) goto usage_error;
        } else if (strcmp(argv[i], "--by-time") == 0) {
            by_time = 1;
        } else if (strcmp(argv[i], "--groups") == 0) {
            groups = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "error: unknown option \"%s\"\n", argv[i]);
            goto usage_error;
        } else {
            paths[n_paths++] = argv[i];
        }
    }
    if (n_paths == 0) {
        fprintf(stderr, "error: history needs at least one results directory\n");
        goto usage_error;
    }

    int rc = EXIT_FAIL;
    Key *keys = NULL;
    int n_keys = 0;
    Plot *plot = NULL;
    Err err;
    for (int i = 0; i < n_paths; i++) {
        Run *r = &runs[n_runs];
        if (resultdir_open(&r->rd, paths[i], &err)) {
            fprintf(stderr, "error: %s\n", err.msg);
            goto done;
        }
        n_runs++;
        run_label(r->rd.dir, r->label, sizeof r->label);
        r->started = jstr(r->rd.run, "started");
        r->order = i;
    }
    if (by_time) qsort(runs, (size_t)n_runs, sizeof *runs, by_start_time);

    /* rows: every key of every run, in order of first appearance */
    int cap = 0;
    for (int i = 0; i < n_runs; i++) cap += cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(runs[i].rd.summary, "metrics"));
    keys = calloc((size_t)cap + 1, sizeof *keys);
    if (!keys) goto done;
    for (int i = 0; i < n_runs; i++) {
        const cJSON *m;
        cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(runs[i].rd.summary, "metrics")) {
            Key k = {jstr(m, "task"), jstr(m, "metric"), group_of(m)};
            if (k.group[0] && !groups) continue;
            int seen = 0;
            for (int j = 0; j < n_keys && !seen; j++)
                seen = strcmp(keys[j].task, k.task) == 0 && strcmp(keys[j].metric, k.metric) == 0 &&
                       strcmp(keys[j].group, k.group) == 0;
            if (!seen) keys[n_keys++] = k;
        }
    }

    TextBuf md;
    tb_init(&md);
    tb_add(&md, "# hymeval history\n\n| run | directory | started | git revision |\n|---|---|---|---|\n");
    for (int i = 0; i < n_runs; i++) {
        const char *rev = jstr(runs[i].rd.run, "engine_git_revision");
        tb_printf(&md, "| %d | `%s` | %s | %s |\n", i + 1, runs[i].rd.dir, runs[i].started ? runs[i].started : "?",
                  rev ? rev : "?");
    }
    tb_add(&md, "\n| task | metric |");
    if (groups) tb_add(&md, " group |");
    for (int i = 0; i < n_runs; i++) tb_printf(&md, " %s |", runs[i].label);
    tb_add(&md, " change |\n|---|---|");
    if (groups) tb_add(&md, "---|");
    for (int i = 0; i <= n_runs; i++) tb_add(&md, "---:|");
    tb_add(&md, "\n");

    printf("%-24s %-20s", "task", "metric");
    if (groups) printf(" %-8s", "group");
    for (int i = 0; i < n_runs; i++) printf(" %12.12s", runs[i].label);
    printf(" %10s\n", "change");
    for (int k = 0; k < n_keys; k++) {
        printf("%-24.24s %-20.20s", keys[k].task, keys[k].metric);
        tb_printf(&md, "| %s | %s |", keys[k].task, keys[k].metric);
        if (groups) {
            printf(" %-8.8s", keys[k].group);
            tb_printf(&md, " %s |", keys[k].group);
        }
        double first = NAN, last = NAN;
        for (int i = 0; i < n_runs; i++) {
            double v;
            char text[32] = "-";
            if (run_value(&runs[i], &keys[k], &v)) {
                fmt_value(v, text, sizeof text);
                if (isnan(first)) first = v;
                last = v;
            }
            printf(" %12s", text);
            tb_printf(&md, " %s |", text);
        }
        char change[32] = "-";
        if (!isnan(first) && !isnan(last)) snprintf(change, sizeof change, "%+.4f", last - first);
        printf(" %10s\n", change);
        tb_printf(&md, " %s |\n", change);
    }
    tb_add(&md, "\n![headline metrics over runs](history.png)\n");

    /* the plot: each task's headline metric, where it is a score in [0, 1] */
    plot = plot_new("Headline metrics over runs", "run", "score");
    if (!plot) goto done;
    double *xs = calloc((size_t)n_runs, sizeof *xs), *ys = calloc((size_t)n_runs, sizeof *ys);
    const char **labels = calloc((size_t)n_runs, sizeof *labels);
    if (!xs || !ys || !labels) {
        free(xs), free(ys), free(labels);
        tb_free(&md);
        goto done;
    }
    for (int i = 0; i < n_runs; i++) {
        xs[i] = i + 1;
        labels[i] = runs[i].label;
    }
    plot_set_x_ticks(plot, xs, labels, n_runs);
    plot_set_y_range(plot, 0, 1);
    for (int k = 0; k < n_keys; k++) {
        if (keys[k].group[0]) continue;
        int headline = 0;
        for (int i = 0; i < n_runs && !headline; i++) {
            const char *h = summary_headline_metric(runs[i].rd.summary, keys[k].task);
            headline = h && strcmp(h, keys[k].metric) == 0;
        }
        if (!headline) continue;
        int unit = 1;
        for (int i = 0; i < n_runs; i++) {
            double v;
            ys[i] = run_value(&runs[i], &keys[k], &v) ? v : NAN;
            if (!isnan(ys[i]) && !(ys[i] >= 0 && ys[i] <= 1)) unit = 0;
        }
        if (!unit) continue;
        char name[300];
        snprintf(name, sizeof name, "%s (%s)", keys[k].task, keys[k].metric);
        plot_add_series(plot, name, xs, ys, n_runs);
    }
    free(xs), free(ys), free(labels);

    char path[4300];
    char *text = tb_take(&md);
    snprintf(path, sizeof path, "%s/history.md", out_dir);
    if (!text || write_file_atomic(path, text, strlen(text), &err)) {
        fprintf(stderr, "error: %s\n", text ? err.msg : "out of memory");
        free(text);
        goto done;
    }
    free(text);
    snprintf(path, sizeof path, "%s/history.png", out_dir);
    if (plot_write_png(plot, path, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        goto done;
    }
    fprintf(stderr, "wrote %s/history.md and %s/history.png\n", out_dir, out_dir);
    rc = EXIT_OK;
done:
    plot_free(plot);
    free(keys);
    for (int i = 0; i < n_runs; i++) resultdir_close(&runs[i].rd);
    free(runs);
    free(paths);
    return rc;

usage_error:
    free(runs);
    free(paths);
    usage(stderr);
    return EXIT_USAGE;
}
