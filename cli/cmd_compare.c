/* cmd_compare.c: `hymeval compare BASE CURRENT`: every (task, metric, group)
   of BASE's summary.json against CURRENT's (DESIGN.md §4, §5 "Regression
   statistics"; research/eval-anchors.md §1.3 for the z-test).

   Per row:
   - accuracy-type metrics (higher is better): delta = current - base and a
     two-sided p-value. When both directories' samples.jsonl score exactly the
     same example ids for the row and every score is 0 or 1, the test is
     paired: an exact binomial (McNemar) test on the discordant examples
     (b = right before and wrong now, c = wrong before and right now;
     p = min(1, 2 P(X <= min(b, c))), X ~ Binomial(b + c, 1/2)). Otherwise
     the z-test lm-eval's model_comparator uses, Z = delta / sqrt(se1^2 + se2^2),
     p = 2 sf(|Z|); where both standard errors are 0 (a cell of all-0 or all-1
     scores) and the values are fractions with known n, the pooled
     two-proportion standard error sqrt(p(1-p)(1/n1 + 1/n2)) stands in.
     A regression is a decrease with p < alpha (0.05) AND larger than the
     metric's tolerance (default 0).
   - throughput and cache metrics (name contains "tokens_per_s": higher is
     better; "bytes", "mb", "*_mb": lower is better; acc_bytes stays an
     accuracy) regress by ratio: worse by more than the tolerance, a fraction
     (default 0.05).
   - ERF and drift measurements (erf*, mmd*, *drift*, *attn_diff*,
     *logit_diff*, kl*, *_kl*, and other outputs of the measurement kinds)
     are shown with their change but never regress: they are measurements of
     the model, not scores with a better direction.
   The classification is report.h's metric_direction, which also uses the
   task's kind where samples.jsonl names it.
   - a row of BASE that CURRENT lacks is "missing" and fails the comparison;
     a row only CURRENT has is "new" and is only reported.
   Exit status: 0 nothing regressed, 1 a regression or a missing metric,
   2 unusable input (a missing or malformed file, no metric in common, bad
   arguments). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "jsonl.h"
#include "report.h"
#include "textbuf.h"

enum { COMPARE_OK = 0, COMPARE_REGRESSION = 1, COMPARE_UNUSABLE = 2 };

static void usage(FILE *out) {
    fprintf(out,
            "usage: hymeval compare BASE CURRENT [--tolerance METRIC=VALUE ...] [--alpha A] [--out FILE]\n\n"
            "Compares two results directories (or their summary.json files) metric by metric, for\n"
            "every task, metric and group. An accuracy-type metric regresses when it decreases\n"
            "significantly (p < alpha, default 0.05; paired McNemar test on per-example flips when\n"
            "both samples.jsonl hold the same examples, else a z-test on the standard errors) AND\n"
            "by more than its tolerance (default 0). Throughput (*tokens_per_s*, higher is better)\n"
            "and cache (*bytes*, mb, *_mb: lower is better; acc_bytes is an accuracy) metrics\n"
            "regress when worse by more than their tolerance as a fraction (default 0.05). ERF and\n"
            "drift measurements (erf*, mmd*, *drift*, *attn_diff*, *logit_diff*, kl*) are shown but\n"
            "never regress. A metric BASE has and CURRENT lacks is reported as missing and counts\n"
            "as a regression; one only CURRENT has is reported as new.\n\n"
            "  --tolerance M=V   tolerance for metric M (e.g. acc=0.01); TASK/M for one task's metric;\n"
            "                    *=V for every metric; repeatable, the most specific wins\n"
            "  --alpha A         significance level (default 0.05)\n"
            "  --out FILE        where to write the Markdown table (default CURRENT/compare.md)\n\n"
            "Prints the table and writes it as Markdown. Exit status: 0 no regression, 1 a regression\n"
            "or a missing metric, 2 unusable input (missing or malformed files, nothing in common).\n");
}

/* ---------------------------------------------------------------- tolerances */

typedef struct {
    char name[160]; /* "metric", "task/metric" or "*" */
    double value;
} Tolerance;

typedef struct {
    Tolerance *items;
    int n;
} Tolerances;

static int tolerance_add(Tolerances *t, const char *spec) {
    const char *eq = strrchr(spec, '=');
    char *end;
    if (!eq || eq == spec || (size_t)(eq - spec) >= sizeof t->items[0].name) return -1;
    double v = strtod(eq + 1, &end);
    if (end == eq + 1 || *end || !(v >= 0) || !isfinite(v)) return -1;
    Tolerance *grown = realloc(t->items, sizeof *grown * (size_t)(t->n + 1));
    if (!grown) return -1;
    t->items = grown;
    snprintf(grown[t->n].name, sizeof grown[t->n].name, "%.*s", (int)(eq - spec), spec);
    grown[t->n].value = v;
    t->n++;
    return 0;
}

/* task/metric beats metric beats "*"; later options win among equals. */
static double tolerance_for(const Tolerances *t, const char *task, const char *metric, double fallback) {
    int best = 0;
    double value = fallback;
    char both[400];
    snprintf(both, sizeof both, "%s/%s", task, metric);
    for (int i = 0; i < t->n; i++) {
        int rank = strcmp(t->items[i].name, both) == 0     ? 3
                   : strcmp(t->items[i].name, metric) == 0 ? 2
                   : strcmp(t->items[i].name, "*") == 0    ? 1
                                                           : 0;
        if (rank && rank >= best) {
            best = rank;
            value = t->items[i].value;
        }
    }
    return value;
}

/* ---------------------------------------------------------------- samples */

typedef struct {
    char *task, *group, *id;
    cJSON *scores; /* the line's "scores" object (detached), NULL for an error line */
} Sample;

typedef struct {
    char task[128], kind[64];
} TaskKindName;

typedef struct {
    Sample *items;
    int n;
    int present;         /* samples.jsonl exists */
    TaskKindName *kinds; /* each task's kind, as its samples name it */
    int n_kinds;
} Samples;

static int by_task_id(const void *a, const void *b) {
    const Sample *x = a, *y = b;
    int c = strcmp(x->task, y->task);
    return c ? c : strcmp(x->id, y->id);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void samples_free(Samples *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->items[i].task);
        free(s->items[i].group);
        free(s->items[i].id);
        cJSON_Delete(s->items[i].scores);
    }
    free(s->items);
    free(s->kinds);
    memset(s, 0, sizeof *s);
}

static const char *samples_kind(const Samples *s, const char *task) {
    for (int i = 0; i < s->n_kinds; i++)
        if (strcmp(s->kinds[i].task, task) == 0) return s->kinds[i].kind;
    return NULL;
}

/* Reads dir/samples.jsonl when there is one; a malformed file is an error. */
static int samples_load(Samples *s, const char *dir, Err *err) {
    memset(s, 0, sizeof *s);
    char path[4200];
    snprintf(path, sizeof path, "%s/samples.jsonl", dir);
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    s->present = 1;
    JsonlReader *r = jsonl_open(path, err);
    if (!r) return -1;
    int cap = 0, line_no, rc;
    cJSON *line;
    while ((rc = jsonl_next(r, &line, &line_no, err)) == 1) {
        const cJSON *task = cJSON_GetObjectItemCaseSensitive(line, "task");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(line, "id");
        const cJSON *group = cJSON_GetObjectItemCaseSensitive(line, "group");
        if (!cJSON_IsString(task) || !cJSON_IsString(id)) {
            cJSON_Delete(line);
            rc = err_set(err, "%s:%d: a sample needs string \"task\" and \"id\"", path, line_no);
            break;
        }
        if (s->n == cap) {
            cap = cap ? 2 * cap : 256;
            Sample *grown = realloc(s->items, sizeof *grown * (size_t)cap);
            if (!grown) {
                cJSON_Delete(line);
                rc = err_set(err, "out of memory reading %s", path);
                break;
            }
            s->items = grown;
        }
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(line, "kind");
        if (cJSON_IsString(kind) && !samples_kind(s, task->valuestring)) {
            TaskKindName *grown = realloc(s->kinds, sizeof *grown * (size_t)(s->n_kinds + 1));
            if (grown) {
                s->kinds = grown;
                snprintf(grown[s->n_kinds].task, sizeof grown[s->n_kinds].task, "%s", task->valuestring);
                snprintf(grown[s->n_kinds].kind, sizeof grown[s->n_kinds].kind, "%s", kind->valuestring);
                s->n_kinds++;
            }
        }
        Sample *x = &s->items[s->n++];
        x->task = dup_str(task->valuestring);
        x->id = dup_str(id->valuestring);
        x->group = dup_str(cJSON_IsString(group) ? group->valuestring : "");
        x->scores = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(line, "scores"))
                        ? cJSON_DetachItemFromObjectCaseSensitive(line, "scores")
                        : NULL;
        cJSON_Delete(line);
        if (!x->task || !x->id || !x->group) {
            rc = err_set(err, "out of memory reading %s", path);
            break;
        }
    }
    jsonl_close(r);
    if (rc < 0) {
        samples_free(s);
        return -1;
    }
    if (s->n) qsort(s->items, (size_t)s->n, sizeof *s->items, by_task_id);
    return 0;
}

static const Sample *samples_find(const Samples *s, const char *task, const char *id) {
    Sample key = {(char *)task, NULL, (char *)id, NULL};
    return s->n ? bsearch(&key, s->items, (size_t)s->n, sizeof *s->items, by_task_id) : NULL;
}

/* The sample's score for metric, if it has one. */
static int sample_score(const Sample *x, const char *metric, double *v) {
    const cJSON *score = x->scores ? cJSON_GetObjectItemCaseSensitive(x->scores, metric) : NULL;
    if (!cJSON_IsNumber(score)) return 0;
    *v = score->valuedouble;
    return 1;
}

static int sample_in_row(const Sample *x, const char *task, const char *group) {
    return strcmp(x->task, task) == 0 && (!group[0] || strcmp(x->group, group) == 0);
}

typedef struct {
    int n;             /* paired examples */
    int losses, gains; /* b: 1 -> 0, c: 0 -> 1 */
} Paired;

/* Pairs the row's examples by id: 1 with the counts when both runs scored
   exactly the same examples with 0/1 scores, else 0. */
static int pair_row(const Samples *base, const Samples *cur, const char *task, const char *metric, const char *group,
                    Paired *out) {
    memset(out, 0, sizeof *out);
    if (!base->n || !cur->n) return 0;
    int n_base = 0, n_cur = 0;
    for (int i = 0; i < cur->n; i++) {
        double v;
        if (sample_in_row(&cur->items[i], task, group) && sample_score(&cur->items[i], metric, &v)) n_cur++;
    }
    for (int i = 0; i < base->n; i++) {
        const Sample *b = &base->items[i];
        double vb, vc;
        if (!sample_in_row(b, task, group) || !sample_score(b, metric, &vb)) continue;
        n_base++;
        const Sample *c = samples_find(cur, task, b->id);
        if (!c || !sample_in_row(c, task, group) || !sample_score(c, metric, &vc)) return 0;
        if ((vb != 0 && vb != 1) || (vc != 0 && vc != 1)) return 0;
        out->n++;
        if (vb == 1 && vc == 0) out->losses++;
        if (vb == 0 && vc == 1) out->gains++;
    }
    return n_base > 0 && n_base == n_cur && out->n == n_base;
}

/* ---------------------------------------------------------------- statistics */

/* Two-sided exact binomial p-value for k = min(b, c) of n = b + c, p = 1/2. */
static double mcnemar_exact(int b, int c) {
    int n = b + c, k = b < c ? b : c;
    if (n == 0) return 1.0;
    double tail = 0;
    for (int i = 0; i <= k; i++)
        tail += exp(lgamma(n + 1.0) - lgamma(i + 1.0) - lgamma(n - i + 1.0) - n * log(2.0));
    double p = 2 * tail;
    return p > 1 ? 1 : p;
}

static double two_sided_normal(double z) { return erfc(fabs(z) / sqrt(2.0)); }

/* ---------------------------------------------------------------- rows */

typedef enum { ST_OK, ST_IMPROVED, ST_WITHIN_TOL, ST_REGRESSED, ST_MISSING, ST_NEW, ST_INFO } Status;
static const char *const STATUS_NAME[] = {"ok", "improved", "within tolerance", "REGRESSED", "missing", "new", "info"};

typedef struct {
    const char *task, *metric, *group;
    MetricDirection direction;
    int in_base, in_cur;
    double base, cur, base_se, cur_se, base_n, cur_n;
    double delta, p, tolerance;
    char test[48];
    Status status;
} Row;

typedef struct {
    const cJSON *m;
    double value, se, n;
} Metric;

static void metric_read(const cJSON *m, Metric *out) {
    out->m = m;
    out->value = cJSON_GetObjectItemCaseSensitive(m, "value")->valuedouble;
    const cJSON *se = cJSON_GetObjectItemCaseSensitive(m, "stderr"), *n = cJSON_GetObjectItemCaseSensitive(m, "n");
    out->se = cJSON_IsNumber(se) ? se->valuedouble : 0;
    out->n = cJSON_IsNumber(n) ? n->valuedouble : 0;
}

static const char *group_of(const cJSON *m) {
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(m, "group");
    return cJSON_IsString(g) ? g->valuestring : "";
}

static const cJSON *find_metric(const cJSON *summary, const char *task, const char *metric, const char *group) {
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(summary, "metrics")) {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(m, "task")->valuestring, task) == 0 &&
            strcmp(cJSON_GetObjectItemCaseSensitive(m, "metric")->valuestring, metric) == 0 &&
            strcmp(group_of(m), group) == 0)
            return m;
    }
    return NULL;
}

static void judge(Row *r, const Samples *base_s, const Samples *cur_s, const Tolerances *tol, double alpha) {
    r->delta = r->cur - r->base;
    if (r->direction == BETTER_NEITHER) {
        snprintf(r->test, sizeof r->test, "none");
        r->p = NAN;
        r->status = ST_INFO;
        return;
    }
    if (r->direction == BETTER_HIGHER_RATIO || r->direction == BETTER_LOWER_RATIO) {
        int higher = r->direction == BETTER_HIGHER_RATIO;
        r->tolerance = tolerance_for(tol, r->task, r->metric, 0.05);
        r->p = NAN;
        double worse, better; /* how much worse / better, as a fraction of base */
        if (r->base != 0) {
            double change = r->delta / fabs(r->base);
            worse = higher ? -change : change;
            better = -worse;
        } else { /* nothing to divide by: any change in the bad direction is infinitely worse */
            worse = (higher ? -r->delta : r->delta) > 0 ? INFINITY : 0;
            better = (higher ? r->delta : -r->delta) > 0 ? INFINITY : 0;
        }
        snprintf(r->test, sizeof r->test, "ratio (%s better)", higher ? "higher" : "lower");
        r->status = worse > r->tolerance ? ST_REGRESSED : better > r->tolerance ? ST_IMPROVED : ST_OK;
        return;
    }
    r->tolerance = tolerance_for(tol, r->task, r->metric, 0.0);
    Paired pr;
    if (pair_row(base_s, cur_s, r->task, r->metric, r->group, &pr)) {
        r->p = mcnemar_exact(pr.losses, pr.gains);
        snprintf(r->test, sizeof r->test, "McNemar b=%d c=%d", pr.losses, pr.gains);
    } else {
        double denom = sqrt(r->base_se * r->base_se + r->cur_se * r->cur_se);
        snprintf(r->test, sizeof r->test, "z");
        if (denom == 0 && r->delta != 0 && r->base_n > 0 && r->cur_n > 0 && r->base >= 0 && r->base <= 1 &&
            r->cur >= 0 && r->cur <= 1) {
            double pooled = (r->base * r->base_n + r->cur * r->cur_n) / (r->base_n + r->cur_n);
            denom = sqrt(pooled * (1 - pooled) * (1 / r->base_n + 1 / r->cur_n));
            snprintf(r->test, sizeof r->test, "z (pooled)");
        }
        if (r->delta == 0) r->p = 1;
        else if (denom > 0) r->p = two_sided_normal(r->delta / denom);
        else r->p = 0; /* a difference with no sampling error at all */
    }
    int significant = r->p < alpha;
    if (r->delta < 0 && significant) r->status = -r->delta > r->tolerance ? ST_REGRESSED : ST_WITHIN_TOL;
    else if (r->delta > 0 && significant) r->status = ST_IMPROVED;
    else r->status = ST_OK;
}

/* ---------------------------------------------------------------- output */

static void fmt_value(double v, char *out, size_t len) {
    double a = fabs(v);
    if (isnan(v)) snprintf(out, len, "-");
    else if (a >= 1000) snprintf(out, len, "%.1f", v);
    else snprintf(out, len, "%.4f", v);
}

static void fmt_delta(const Row *r, char *out, size_t len) {
    if (!r->in_base || !r->in_cur) {
        snprintf(out, len, "-");
        return;
    }
    if ((r->direction == BETTER_HIGHER_RATIO || r->direction == BETTER_LOWER_RATIO) && r->base != 0)
        snprintf(out, len, "%+.1f%%", 100 * r->delta / fabs(r->base));
    else if (fabs(r->delta) >= 1000) snprintf(out, len, "%+.1f", r->delta);
    else snprintf(out, len, "%+.4f", r->delta);
}

static void fmt_p(const Row *r, char *out, size_t len) {
    if (isnan(r->p) || !r->in_base || !r->in_cur) snprintf(out, len, "-");
    else if (r->p < 1e-4) snprintf(out, len, "<1e-4");
    else snprintf(out, len, "%.4f", r->p);
}

static void md_text(TextBuf *b, const char *s) {
    for (const char *p = s; *p; p++) {
        if (*p == '|') tb_add(b, "\\|");
        else tb_addn(b, p, 1);
    }
}

static const char *run_field(const ResultDir *rd, const char *key) {
    const cJSON *v = rd->run ? cJSON_GetObjectItemCaseSensitive(rd->run, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : "?";
}

/* ---------------------------------------------------------------- the command */

int cmd_compare(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    const char *paths[2] = {NULL, NULL}, *out_path = NULL;
    Tolerances tol = {0};
    double alpha = 0.05;
    int n_paths = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "--tolerance") == 0) {
            if (!(v = cli_value(argc, argv, &i))) goto usage_error;
            if (tolerance_add(&tol, v)) {
                fprintf(stderr, "error: --tolerance expects METRIC=VALUE with VALUE >= 0, got \"%s\"\n", v);
                goto usage_error;
            }
        } else if (strcmp(argv[i], "--alpha") == 0) {
            if (!(v = cli_value(argc, argv, &i))) goto usage_error;
            char *end;
            alpha = strtod(v, &end);
            if (*end || !(alpha > 0 && alpha < 1)) {
                fprintf(stderr, "error: --alpha expects a number in (0, 1), got \"%s\"\n", v);
                goto usage_error;
            }
        } else if (strcmp(argv[i], "--out") == 0) {
            if (!(out_path = cli_value(argc, argv, &i))) goto usage_error;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "error: unknown option \"%s\"\n", argv[i]);
            goto usage_error;
        } else if (n_paths < 2) {
            paths[n_paths++] = argv[i];
        } else {
            fprintf(stderr, "error: unexpected argument \"%s\"\n", argv[i]);
            goto usage_error;
        }
    }
    if (n_paths != 2) {
        fprintf(stderr, "error: compare needs BASE and CURRENT\n");
        goto usage_error;
    }

    ResultDir base = {0}, cur = {0};
    Samples base_s = {0}, cur_s = {0};
    Row *rows = NULL;
    int n_rows = 0, rc = COMPARE_UNUSABLE;
    Err err;
    if (resultdir_open(&base, paths[0], &err) || resultdir_open(&cur, paths[1], &err) ||
        samples_load(&base_s, base.dir, &err) || samples_load(&cur_s, cur.dir, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        goto done;
    }
    const cJSON *base_metrics = cJSON_GetObjectItemCaseSensitive(base.summary, "metrics");
    const cJSON *cur_metrics = cJSON_GetObjectItemCaseSensitive(cur.summary, "metrics");
    rows = calloc((size_t)(cJSON_GetArraySize(base_metrics) + cJSON_GetArraySize(cur_metrics) + 1), sizeof *rows);
    if (!rows) {
        fprintf(stderr, "error: out of memory\n");
        goto done;
    }
    int common = 0, regressed = 0, missing = 0, improved = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, base_metrics) {
        Row *r = &rows[n_rows++];
        Metric bm;
        metric_read(m, &bm);
        r->task = cJSON_GetObjectItemCaseSensitive(m, "task")->valuestring;
        r->metric = cJSON_GetObjectItemCaseSensitive(m, "metric")->valuestring;
        r->group = group_of(m);
        r->in_base = 1;
        r->base = bm.value, r->base_se = bm.se, r->base_n = bm.n;
        const cJSON *cm = find_metric(cur.summary, r->task, r->metric, r->group);
        if (!cm) {
            r->status = ST_MISSING;
            r->p = NAN;
            r->cur = NAN;
            snprintf(r->test, sizeof r->test, "-");
            missing++;
            continue;
        }
        Metric c;
        metric_read(cm, &c);
        r->in_cur = 1;
        r->cur = c.value, r->cur_se = c.se, r->cur_n = c.n;
        const char *kind = samples_kind(&cur_s, r->task);
        r->direction = metric_direction(kind ? kind : samples_kind(&base_s, r->task), r->metric);
        common++;
        judge(r, &base_s, &cur_s, &tol, alpha);
        if (r->status == ST_REGRESSED) regressed++;
        if (r->status == ST_IMPROVED) improved++;
    }
    cJSON_ArrayForEach(m, cur_metrics) {
        const char *task = cJSON_GetObjectItemCaseSensitive(m, "task")->valuestring;
        const char *metric = cJSON_GetObjectItemCaseSensitive(m, "metric")->valuestring;
        if (find_metric(base.summary, task, metric, group_of(m))) continue;
        Row *r = &rows[n_rows++];
        Metric c;
        metric_read(m, &c);
        r->task = task, r->metric = metric, r->group = group_of(m);
        r->in_cur = 1;
        r->base = NAN, r->cur = c.value, r->p = NAN;
        snprintf(r->test, sizeof r->test, "-");
        r->status = ST_NEW;
    }
    if (common == 0) {
        fprintf(stderr, "error: %s and %s have no (task, metric, group) in common: nothing to compare\n",
                base.summary_path, cur.summary_path);
        goto done;
    }
    if (base_s.present != cur_s.present)
        fprintf(stderr, "note: only one of the two runs has samples.jsonl: z-tests on standard errors only\n");

    /* the table: stdout and Markdown */
    TextBuf md;
    tb_init(&md);
    tb_add(&md, "# hymeval compare\n\n| | run | started | git revision |\n|---|---|---|---|\n");
    tb_printf(&md, "| base | `%s` | %s | %s |\n", base.dir, run_field(&base, "started"),
              run_field(&base, "engine_git_revision"));
    tb_printf(&md, "| current | `%s` | %s | %s |\n\n", cur.dir, run_field(&cur, "started"),
              run_field(&cur, "engine_git_revision"));
    tb_add(&md, "| task | metric | group | base | current | delta | test | p | tolerance | status |\n"
                "|---|---|---|---:|---:|---:|---|---:|---:|---|\n");
    printf("%-24s %-20s %-8s %10s %10s %9s %-20s %7s  %s\n", "task", "metric", "group", "base", "current", "delta",
           "test", "p", "status");
    for (int i = 0; i < n_rows; i++) {
        const Row *r = &rows[i];
        char b[32], c[32], d[32], p[32], t[32];
        fmt_value(r->in_base ? r->base : NAN, b, sizeof b);
        fmt_value(r->in_cur ? r->cur : NAN, c, sizeof c);
        fmt_delta(r, d, sizeof d);
        fmt_p(r, p, sizeof p);
        if (!r->in_base || !r->in_cur || r->direction == BETTER_NEITHER) snprintf(t, sizeof t, "-");
        else if (r->direction == BETTER_HIGHER) snprintf(t, sizeof t, "%.4g", r->tolerance);
        else snprintf(t, sizeof t, "%.4g%%", 100 * r->tolerance);
        printf("%-24.24s %-20.20s %-8.8s %10s %10s %9s %-20.20s %7s  %s\n", r->task, r->metric, r->group, b, c, d,
               r->test, p, STATUS_NAME[r->status]);
        tb_add(&md, "| ");
        md_text(&md, r->task);
        tb_add(&md, " | ");
        md_text(&md, r->metric);
        tb_add(&md, " | ");
        md_text(&md, r->group);
        int bad = r->status == ST_REGRESSED || r->status == ST_MISSING;
        tb_printf(&md, " | %s | %s | %s | %s | %s | %s | %s%s%s |\n", b, c, d, r->test, p, t, bad ? "**" : "",
                  STATUS_NAME[r->status], bad ? "**" : "");
    }
    char verdict[256];
    snprintf(verdict, sizeof verdict, "%d compared: %d regressed, %d missing, %d improved (alpha %.3g)", common,
             regressed, missing, improved, alpha);
    printf("\n%s\n%s\n", verdict,
           regressed || missing ? "result: REGRESSION" : "result: no regression");
    tb_printf(&md, "\n%s. **%s**\n\n", verdict, regressed || missing ? "Regression" : "No regression");
    tb_add(&md, "Rules (`hymeval compare --help`): a score regresses when it decreases with p < alpha "
                "(McNemar exact test on per-example flips when both runs scored the same examples with 0/1 scores, "
                "otherwise a z-test on the standard errors) and by more than its tolerance; throughput "
                "(`*tokens_per_s*`) and cache (`*bytes*`, `mb`, `*_mb`) metrics regress when worse by more than "
                "their tolerance (a fraction); ERF and drift measurements never regress; a metric missing from the "
                "current run counts as a regression.\n");
    char *text = tb_take(&md);
    char md_path[4300];
    if (out_path) snprintf(md_path, sizeof md_path, "%s", out_path);
    else snprintf(md_path, sizeof md_path, "%s/compare.md", cur.dir);
    if (!text || write_file_atomic(md_path, text, strlen(text), &err)) {
        fprintf(stderr, "error: %s\n", text ? err.msg : "out of memory");
        free(text);
        goto done;
    }
    free(text);
    fprintf(stderr, "wrote %s\n", md_path);
    rc = regressed || missing ? COMPARE_REGRESSION : COMPARE_OK;
done:
    free(rows);
    samples_free(&base_s);
    samples_free(&cur_s);
    resultdir_close(&base);
    resultdir_close(&cur);
    free(tol.items);
    return rc;

usage_error:
    free(tol.items);
    usage(stderr);
    return COMPARE_UNUSABLE;
}
