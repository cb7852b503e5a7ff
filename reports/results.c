/* results.c: the results directory, resumable (see results.h). */
#include "results.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonl.h"

static void path_in(char *out, size_t len, const Results *r, const char *name) {
    snprintf(out, len, "%s/%s", r->dir, name);
}

static int mkdir_p(const char *dir, Err *err) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return err_set(err, "%s: cannot create (%s)", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return err_set(err, "%s: cannot create (%s)", buf, strerror(errno));
    return 0;
}

/* Cuts a torn last line (a run killed mid-write) off samples.jsonl. */
static int cut_torn_tail(const char *path, Err *err) {
    FILE *f = fopen(path, "rb+");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long keep = size;
    while (keep > 0) {
        fseek(f, keep - 1, SEEK_SET);
        if (fgetc(f) == '\n') break;
        keep--;
    }
    fclose(f);
    if (keep < size) {
        fprintf(stderr, "note: %s ended in a partial line (%ld bytes) from an interrupted run; cut off\n", path,
                size - keep);
        if (truncate(path, keep) != 0) return err_set(err, "%s: cannot truncate (%s)", path, strerror(errno));
    }
    return 0;
}

/* The fields of run.json that must match for --resume to continue a run. */
static int same_identity(const cJSON *old_run, const cJSON *identity, char *which, size_t len) {
    const cJSON *item;
    cJSON_ArrayForEach(item, identity) {
        const cJSON *old = cJSON_GetObjectItemCaseSensitive(old_run, item->string);
        if (!old || !cJSON_Compare(old, item, 1)) {
            snprintf(which, len, "%s", item->string);
            return 0;
        }
    }
    return 1;
}

int results_open(Results *r, const char *dir, int resume, const cJSON *identity, Err *err) {
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    if (mkdir_p(dir, err)) return -1;
    r->done = cJSON_CreateObject();
    char samples_path[4200], run_path[4200];
    path_in(samples_path, sizeof samples_path, r, "samples.jsonl");
    path_in(run_path, sizeof run_path, r, "run.json");
    struct stat st;
    int have_samples = stat(samples_path, &st) == 0 && st.st_size > 0;
    if (have_samples && !resume)
        return err_set(err, "%s already holds results; use --resume to finish that run, or another --out", dir);
    if (resume && (have_samples || stat(run_path, &st) == 0)) {
        size_t run_len = 0;
        char *text = read_text_file(run_path, &run_len, NULL);
        cJSON *old = text ? cJSON_Parse(text) : NULL;
        free(text);
        char which[128] = "";
        if (old && !same_identity(old, identity, which, sizeof which)) {
            cJSON_Delete(old);
            return err_set(err, "%s: --resume: the earlier run differs in \"%s\"; use another --out", run_path, which);
        }
        cJSON_Delete(old);
        if (cut_torn_tail(samples_path, err)) return -1;
        if (have_samples) {
            JsonlReader *reader = jsonl_open(samples_path, err);
            if (!reader) return -1;
            cJSON *line;
            int line_no, rc;
            while ((rc = jsonl_next(reader, &line, &line_no, err)) == 1) {
                const cJSON *task = cJSON_GetObjectItemCaseSensitive(line, "task");
                const cJSON *id = cJSON_GetObjectItemCaseSensitive(line, "id");
                if (cJSON_IsString(task) && cJSON_IsString(id)) {
                    cJSON *ids = cJSON_GetObjectItemCaseSensitive(r->done, task->valuestring);
                    if (!ids) ids = cJSON_AddObjectToObject(r->done, task->valuestring);
                    if (!cJSON_GetObjectItemCaseSensitive(ids, id->valuestring)) {
                        cJSON_AddTrueToObject(ids, id->valuestring);
                        r->n_done++;
                    }
                }
                cJSON_Delete(line);
            }
            jsonl_close(reader);
            if (rc < 0) return -1;
        }
    }
    r->samples = fopen(samples_path, "ab");
    if (!r->samples) return err_set(err, "%s: cannot open for appending (%s)", samples_path, strerror(errno));
    return 0;
}

void results_close(Results *r) {
    if (r->samples) fclose(r->samples);
    cJSON_Delete(r->done);
    memset(r, 0, sizeof *r);
}

int results_is_done(const Results *r, const char *task, const char *example_id) {
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(r->done, task);
    return ids && cJSON_GetObjectItemCaseSensitive(ids, example_id) != NULL;
}

int results_append(Results *r, cJSON *sample, Err *err) {
    char *line = cJSON_PrintUnformatted(sample);
    if (!line) return err_set(err, "out of memory");
    int bad = fputs(line, r->samples) < 0 || fputc('\n', r->samples) == EOF || fflush(r->samples) != 0;
    free(line);
    if (bad) return err_set(err, "%s/samples.jsonl: write failed (%s)", r->dir, strerror(errno));
    return 0;
}

int results_write_json(const Results *r, const char *name, const cJSON *obj, Err *err) {
    char path[4200], tmp[4300];
    path_in(path, sizeof path, r, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    char *text = cJSON_Print(obj);
    FILE *f = fopen(tmp, "wb");
    int bad = !text || !f || fputs(text, f) < 0 || fputc('\n', f) == EOF;
    if (f && fclose(f) != 0) bad = 1;
    free(text);
    if (bad || rename(tmp, path) != 0) return err_set(err, "%s: write failed (%s)", path, strerror(errno));
    return 0;
}

/* ---------------------------------------------------------------- summary */

typedef struct {
    char task[128], metric[32], group[64];
    int length, depth_key; /* cells: target tokens and depth x 100 (-1 when not a cell) */
    double sum, sum_sq;
    long n;
    int binary;            /* every value was 0 or 1 */
} Acc;

typedef struct {
    Acc *items;
    int n, cap;
} AccList;

static Acc *acc_get(AccList *l, const char *task, const char *metric, const char *group, int length, int depth_key) {
    for (int i = 0; i < l->n; i++) {
        Acc *a = &l->items[i];
        if (a->length == length && a->depth_key == depth_key && strcmp(a->task, task) == 0 &&
            strcmp(a->metric, metric) == 0 && strcmp(a->group, group) == 0)
            return a;
    }
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        Acc *grown = realloc(l->items, sizeof *grown * (size_t)cap);
        if (!grown) return NULL;
        l->items = grown;
        l->cap = cap;
    }
    Acc *a = &l->items[l->n++];
    memset(a, 0, sizeof *a);
    snprintf(a->task, sizeof a->task, "%s", task);
    snprintf(a->metric, sizeof a->metric, "%s", metric);
    snprintf(a->group, sizeof a->group, "%s", group);
    a->length = length;
    a->depth_key = depth_key;
    a->binary = 1;
    return a;
}

static void acc_add(Acc *a, double v) {
    a->sum += v;
    a->sum_sq += v * v;
    a->n++;
    if (v != 0.0 && v != 1.0) a->binary = 0;
}

/* Standard error of the mean: sqrt(p(1-p)/n) for 0/1 scores (DESIGN.md §5),
   the sample standard deviation over sqrt(n) otherwise (lm-eval's mean_stderr). */
static double acc_stderr(const Acc *a) {
    if (a->n < 2) return 0.0;
    double mean = a->sum / a->n;
    if (a->binary) return sqrt(mean * (1.0 - mean) / a->n);
    double var = (a->sum_sq - a->n * mean * mean) / (a->n - 1);
    return var > 0 ? sqrt(var / a->n) : 0.0;
}

static void wilson(double p, long n, double *lo, double *hi) {
    const double z = 1.959963984540054;
    double denom = 1.0 + z * z / n;
    double center = (p + z * z / (2.0 * n)) / denom;
    double half = z * sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom;
    *lo = center - half < 0 ? 0 : center - half;
    *hi = center + half > 1 ? 1 : center + half;
}

static double json_number(const cJSON *obj, const char *key, double fallback) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

static const char *json_string(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

cJSON *results_summarize(const Results *r, Err *err) {
    char samples_path[4200];
    path_in(samples_path, sizeof samples_path, r, "samples.jsonl");
    if (r->samples) fflush(r->samples);
    AccList accs = {0};
    cJSON *errors = cJSON_CreateObject();
    struct stat st;
    if (stat(samples_path, &st) == 0 && st.st_size > 0) {
        JsonlReader *reader = jsonl_open(samples_path, err);
        if (!reader) {
            cJSON_Delete(errors);
            return NULL;
        }
        cJSON *line;
        int line_no, rc;
        while ((rc = jsonl_next(reader, &line, &line_no, err)) == 1) {
            const char *task = json_string(line, "task"), *group = json_string(line, "group");
            const cJSON *scores = cJSON_GetObjectItemCaseSensitive(line, "scores");
            if (cJSON_GetObjectItemCaseSensitive(line, "error")) {
                cJSON *count = cJSON_GetObjectItemCaseSensitive(errors, task);
                if (count) cJSON_SetNumberValue(count, count->valuedouble + 1);
                else cJSON_AddNumberToObject(errors, task, 1);
            }
            int length = (int)json_number(line, "target_tokens", 0);
            double depth = json_number(line, "depth", -1);
            const cJSON *score;
            cJSON_ArrayForEach(score, scores) {
                if (!cJSON_IsNumber(score)) continue;
                Acc *whole = acc_get(&accs, task, score->string, "", -1, -1);
                Acc *by_group = group[0] ? acc_get(&accs, task, score->string, group, -1, -1) : NULL;
                Acc *cell = depth >= 0 ? acc_get(&accs, task, score->string, group, length, (int)lround(depth * 100)) : NULL;
                if (!whole || (group[0] && !by_group) || (depth >= 0 && !cell)) {
                    err_set(err, "out of memory summarising");
                    rc = -1;
                    break;
                }
                acc_add(whole, score->valuedouble);
                if (by_group) acc_add(by_group, score->valuedouble);
                if (cell) acc_add(cell, score->valuedouble);
            }
            cJSON_Delete(line);
            if (rc < 0) break;
        }
        jsonl_close(reader);
        if (rc < 0) {
            free(accs.items);
            cJSON_Delete(errors);
            return NULL;
        }
    }
    cJSON *summary = cJSON_CreateObject();
    cJSON *metrics = cJSON_AddArrayToObject(summary, "metrics");
    cJSON *cells = cJSON_AddArrayToObject(summary, "cells");
    for (int i = 0; i < accs.n; i++) {
        const Acc *a = &accs.items[i];
        double mean = a->n ? a->sum / a->n : 0.0;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "task", a->task);
        cJSON_AddStringToObject(o, "metric", a->metric);
        if (a->depth_key >= 0) {
            double lo, hi;
            wilson(mean, a->n, &lo, &hi);
            cJSON_AddNumberToObject(o, "length", a->length);
            cJSON_AddNumberToObject(o, "depth", a->depth_key / 100.0);
            cJSON_AddNumberToObject(o, "value", mean);
            cJSON_AddNumberToObject(o, "n", (double)a->n);
            cJSON_AddNumberToObject(o, "wilson_low", lo);
            cJSON_AddNumberToObject(o, "wilson_high", hi);
            cJSON_AddItemToArray(cells, o);
        } else {
            cJSON_AddStringToObject(o, "group", a->group);
            cJSON_AddNumberToObject(o, "value", mean);
            cJSON_AddNumberToObject(o, "stderr", acc_stderr(a));
            cJSON_AddNumberToObject(o, "n", (double)a->n);
            cJSON_AddItemToArray(metrics, o);
        }
    }
    cJSON_AddItemToObject(summary, "errors", errors);
    free(accs.items);
    return summary;
}
