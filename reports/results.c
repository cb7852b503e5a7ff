/* results.c: the results directory, resumable (see results.h). */
#include "results.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "erf.h"
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

/* ---------------------------------------------------------------- part files */

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int by_string(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void results_free_paths(char **paths, int n) {
    for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
}

/* The paths of dir/parts/ files whose names end in suffix, sorted by name. */
static int list_parts(const char *dir, const char *suffix, char ***paths, int *n, Err *err) {
    char parts[4200];
    snprintf(parts, sizeof parts, "%s/parts", dir);
    *paths = NULL;
    *n = 0;
    DIR *listing = opendir(parts);
    if (!listing) return errno == ENOENT ? 0 : err_set(err, "%s: cannot list (%s)", parts, strerror(errno));
    int cap = 0, rc = 0;
    struct dirent *entry;
    while (rc == 0 && (entry = readdir(listing))) {
        if (entry->d_name[0] == '.' || !has_suffix(entry->d_name, suffix)) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = realloc(*paths, sizeof *grown * (size_t)cap);
            if (!grown) {
                rc = err_set(err, "out of memory listing %s", parts);
                break;
            }
            *paths = grown;
        }
        size_t len = strlen(parts) + strlen(entry->d_name) + 2;
        if (!((*paths)[*n] = malloc(len))) {
            rc = err_set(err, "out of memory listing %s", parts);
            break;
        }
        snprintf((*paths)[*n], len, "%s/%s", parts, entry->d_name);
        struct stat st;
        if (stat((*paths)[*n], &st) == 0 && S_ISREG(st.st_mode)) (*n)++;
        else free((*paths)[*n]);
    }
    closedir(listing);
    if (rc) {
        results_free_paths(*paths, *n);
        *paths = NULL;
        *n = 0;
        return -1;
    }
    if (*n > 1) qsort(*paths, (size_t)*n, sizeof **paths, by_string);
    return 0;
}

int results_part_descriptions(const char *dir, char ***paths, int *n, Err *err) {
    return list_parts(dir, ".json", paths, n, err);
}

static int non_empty(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

typedef int (*LineFn)(void *ctx, const char *path, int line_no, const char *line, size_t len, Err *err);

/* Calls fn for every complete (newline-terminated), non-blank line of path,
   in order; a file that does not exist has none. A last line without its
   newline is a write cut short by a kill, and is not a line. */
static int for_each_line(const char *path, LineFn fn, void *ctx, Err *err) {
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    size_t len = 0;
    char *text = read_text_file(path, &len, err);
    if (!text) return -1;
    int line_no = 0, rc = 0;
    for (char *p = text, *end = text + len, *nl; rc == 0 && p < end && (nl = memchr(p, '\n', (size_t)(end - p)));
         p = nl + 1) {
        line_no++;
        if (strspn(p, " \t\r") < (size_t)(nl - p)) rc = fn(ctx, path, line_no, p, (size_t)(nl - p), err);
    }
    free(text);
    return rc;
}

/* The task and example id of a sample line (pointers into *json, which the
   caller frees). */
static int sample_key(const char *path, int line_no, const char *line, size_t len, cJSON **json, const char **task,
                      const char **id, Err *err) {
    *task = *id = NULL;
    *json = cJSON_ParseWithLength(line, len);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(*json, "task");
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(*json, "id");
    if (!cJSON_IsString(t) || !cJSON_IsString(i)) {
        cJSON_Delete(*json);
        *json = NULL;
        return err_set(err, "%s:%d: not a sample line (valid JSON with \"task\" and \"id\")", path, line_no);
    }
    *task = t->valuestring;
    *id = i->valuestring;
    return 0;
}

static int note_done(void *ctx, const char *path, int line_no, const char *line, size_t len, Err *err) {
    Results *r = ctx;
    cJSON *json;
    const char *task, *id;
    if (sample_key(path, line_no, line, len, &json, &task, &id, err)) return -1;
    cJSON *ids = cJSON_GetObjectItemCaseSensitive(r->done, task);
    if (!ids) ids = cJSON_AddObjectToObject(r->done, task);
    if (!cJSON_GetObjectItemCaseSensitive(ids, id)) {
        cJSON_AddTrueToObject(ids, id);
        r->n_done++;
    }
    cJSON_Delete(json);
    return 0;
}

/* Every run description in dir (run.json, parts' *.json) must match identity. */
static int check_descriptions(const char *dir, const cJSON *identity, Err *err) {
    char **paths = NULL;
    int n = 0;
    if (list_parts(dir, ".json", &paths, &n, err)) return -1;
    char run_path[4200];
    snprintf(run_path, sizeof run_path, "%s/run.json", dir);
    int rc = 0;
    for (int i = -1; i < n && rc == 0; i++) {
        const char *path = i < 0 ? run_path : paths[i];
        char *text = read_text_file(path, NULL, NULL);
        cJSON *old = text ? cJSON_Parse(text) : NULL;
        free(text);
        char which[128] = "";
        if (old && !same_identity(old, identity, which, sizeof which))
            rc = err_set(err, "%s: the earlier run differs in \"%s\" (--resume and --shard continue only the same run); "
                         "use another --out", path, which);
        cJSON_Delete(old);
    }
    results_free_paths(paths, n);
    return rc;
}

int results_open_part(Results *r, const char *dir, const char *part, int flags, const cJSON *identity, Err *err) {
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    if (part) snprintf(r->append_name, sizeof r->append_name, "parts/%s.jsonl", part);
    else snprintf(r->append_name, sizeof r->append_name, "samples.jsonl");
    int resume = flags & RESULTS_RESUME, peers = flags & RESULTS_PEERS;
    char samples_path[4200], own_path[4400], parts_dir[4200];
    path_in(samples_path, sizeof samples_path, r, "samples.jsonl");
    path_in(own_path, sizeof own_path, r, r->append_name);
    path_in(parts_dir, sizeof parts_dir, r, "parts");
    if (mkdir_p(dir, err) || (part && mkdir_p(parts_dir, err))) return -1;
    r->done = cJSON_CreateObject();
    char **parts = NULL;
    int n_parts = 0;
    if (list_parts(dir, ".jsonl", &parts, &n_parts, err)) return -1;
    int rc = 0;
    if (!resume) {
        const char *held = non_empty(samples_path) ? samples_path : non_empty(own_path) ? own_path : NULL;
        for (int i = 0; !held && !peers && i < n_parts; i++)
            if (non_empty(parts[i])) held = parts[i];
        if (held) rc = err_set(err, "%s already holds results (%s); use --resume to finish that run, or another --out",
                               dir, held + strlen(dir) + 1);
    }
    if (rc == 0 && (resume || peers)) rc = check_descriptions(dir, identity, err);
    if (rc == 0 && resume) {
        rc = cut_torn_tail(own_path, err);
        if (rc == 0) rc = for_each_line(samples_path, note_done, r, err);
        for (int i = 0; rc == 0 && i < n_parts; i++) rc = for_each_line(parts[i], note_done, r, err);
    }
    results_free_paths(parts, n_parts);
    if (rc) return -1;
    r->samples = fopen(own_path, "ab");
    if (!r->samples) return err_set(err, "%s: cannot open for appending (%s)", own_path, strerror(errno));
    return 0;
}

int results_open(Results *r, const char *dir, int resume, const cJSON *identity, Err *err) {
    return results_open_part(r, dir, NULL, resume ? RESULTS_RESUME : 0, identity, err);
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
    if (bad) return err_set(err, "%s/%s: write failed (%s)", r->dir, r->append_name, strerror(errno));
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

/* ---------------------------------------------------------------- merging */

/* One example of the run's canonical order and the line chosen for it. */
typedef struct {
    char *key;   /* task, unit separator, id */
    int index;   /* position in the canonical order */
    char *line;  /* the sample line (owned), NULL until found */
} Slot;

typedef struct {
    Slot *slots;
    int n;
    int duplicates;
} Merge;

static char *join_key(const char *task, const char *id) {
    size_t a = strlen(task), b = strlen(id);
    char *key = malloc(a + b + 2);
    if (!key) return NULL;
    memcpy(key, task, a);
    key[a] = '\x1f';
    memcpy(key + a + 1, id, b + 1);
    return key;
}

static int slot_by_key(const void *a, const void *b) {
    return strcmp(((const Slot *)a)->key, ((const Slot *)b)->key);
}

static int slot_by_index(const void *a, const void *b) {
    const Slot *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

static int take_line(void *ctx, const char *path, int line_no, const char *line, size_t len, Err *err) {
    Merge *m = ctx;
    cJSON *json;
    const char *task, *id;
    if (sample_key(path, line_no, line, len, &json, &task, &id, err)) return -1;
    Slot probe = {join_key(task, id), 0, NULL};
    Slot *slot = probe.key ? bsearch(&probe, m->slots, (size_t)m->n, sizeof *m->slots, slot_by_key) : NULL;
    int rc = 0;
    if (!probe.key) rc = err_set(err, "out of memory merging");
    else if (!slot)
        rc = err_set(err, "%s:%d: task %s example %s is not an example of this run (another task file, --limit or "
                     "--only?)", path, line_no, task, id);
    else if (slot->line) m->duplicates++;
    else if (!(slot->line = malloc(len + 1))) rc = err_set(err, "out of memory merging");
    else {
        memcpy(slot->line, line, len);
        slot->line[len] = 0;
    }
    free(probe.key);
    cJSON_Delete(json);
    return rc;
}

/* The slots of `order`, sorted by key for lookups. */
static int slots_from_order(Merge *m, const cJSON *order, Err *err) {
    const cJSON *task, *id;
    int n = 0;
    cJSON_ArrayForEach(task, order) n += cJSON_GetArraySize(task);
    m->slots = calloc((size_t)(n ? n : 1), sizeof *m->slots);
    if (!m->slots) return err_set(err, "out of memory merging");
    cJSON_ArrayForEach(task, order) {
        cJSON_ArrayForEach(id, task) {
            if (!cJSON_IsString(id)) return err_set(err, "the run's example order holds a non-string id in %s", task->string);
            Slot *s = &m->slots[m->n];
            if (!(s->key = join_key(task->string, id->valuestring))) return err_set(err, "out of memory merging");
            s->index = m->n++;
        }
    }
    qsort(m->slots, (size_t)m->n, sizeof *m->slots, slot_by_key);
    for (int i = 1; i < m->n; i++)
        if (strcmp(m->slots[i - 1].key, m->slots[i].key) == 0)
            return err_set(err, "the run's example order names one example twice (%s)", m->slots[i].key);
    return 0;
}

static int merge_source(Merge *m, const char *source, Err *err) {
    struct stat st;
    if (stat(source, &st) != 0) return err_set(err, "%s: cannot read (%s)", source, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return for_each_line(source, take_line, m, err);
    char samples_path[4200];
    snprintf(samples_path, sizeof samples_path, "%s/samples.jsonl", source);
    char **parts = NULL;
    int n = 0;
    if (for_each_line(samples_path, take_line, m, err) || list_parts(source, ".jsonl", &parts, &n, err)) return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) rc = for_each_line(parts[i], take_line, m, err);
    results_free_paths(parts, n);
    return rc;
}

static int write_merged(const Merge *m, const char *out_dir, Err *err) {
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/samples.jsonl", out_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    int bad = !f;
    for (int i = 0; !bad && i < m->n; i++)
        bad = fputs(m->slots[i].line, f) < 0 || fputc('\n', f) == EOF;
    if (f && (fflush(f) != 0 || fsync(fileno(f)) != 0)) bad = 1;
    if (f && fclose(f) != 0) bad = 1;
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return err_set(err, "%s: write failed (%s)", path, strerror(e));
    }
    return 0;
}

int results_merge(const char *const *sources, int n_sources, const cJSON *order, const char *out_dir, int *duplicates,
                  Err *err) {
    Merge m = {0};
    int rc = slots_from_order(&m, order, err);
    for (int i = 0; rc == 0 && i < n_sources; i++) rc = merge_source(&m, sources[i], err);
    if (rc == 0) {
        qsort(m.slots, (size_t)m.n, sizeof *m.slots, slot_by_index);
        int missing = 0, first = -1;
        for (int i = 0; i < m.n; i++)
            if (!m.slots[i].line && missing++ == 0) first = i;
        if (missing) {
            char *sep = strchr(m.slots[first].key, '\x1f');
            *sep = 0;
            rc = err_set(err, "%d of %d examples have no sample line (the first: task %s, example %s)", missing, m.n,
                         m.slots[first].key, sep + 1);
        }
    }
    if (rc == 0) rc = mkdir_p(out_dir, err);
    if (rc == 0) rc = write_merged(&m, out_dir, err);
    if (duplicates) *duplicates = m.duplicates;
    for (int i = 0; i < m.n; i++) {
        free(m.slots[i].key);
        free(m.slots[i].line);
    }
    free(m.slots);
    return rc;
}

int results_remove_parts(const char *dir, Err *err) {
    static const char *const kinds[] = {".jsonl", ".json"};
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        char **paths = NULL;
        int n = 0;
        if (list_parts(dir, kinds[k], &paths, &n, err)) return -1;
        for (int i = 0; i < n; i++)
            if (unlink(paths[i]) != 0 && errno != ENOENT) {
                err_set(err, "%s: cannot remove (%s)", paths[i], strerror(errno));
                results_free_paths(paths, n);
                return -1;
            }
        results_free_paths(paths, n);
    }
    char parts[4200];
    snprintf(parts, sizeof parts, "%s/parts", dir);
    rmdir(parts); /* stays if it holds anything else */
    return 0;
}

/* What --resume and merge must find unchanged, built and compared here only. */
static const char *const identity_keys[] = {"tasks_sha256", "model_sha256", "precision", "backend", "limit", "only"};

cJSON *results_identity_new(const RunIdentity *id) {
    cJSON *run = cJSON_CreateObject();
    if (!run) return NULL;
    const char *text[] = {id->tasks_sha256, id->model_sha256, id->precision, id->backend};
    for (int i = 0; i < 4; i++) cJSON_AddStringToObject(run, identity_keys[i], text[i]);
    cJSON_AddNumberToObject(run, identity_keys[4], id->limit);
    cJSON_AddStringToObject(run, identity_keys[5], id->only ? id->only : "");
    return run;
}

int results_same_run(const cJSON *a, const cJSON *b, char *which, size_t len) {
    for (size_t i = 0; i < sizeof identity_keys / sizeof *identity_keys; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(a, identity_keys[i]);
        const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, identity_keys[i]);
        if (!x || !y || !cJSON_Compare(x, y, 1)) {
            snprintf(which, len, "%s", identity_keys[i]);
            return 0;
        }
    }
    return 1;
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

/* Index of the accumulator for this key (created if new), or -1 out of memory.
   An index, not a pointer: the list grows by realloc. */
static int acc_get(AccList *l, const char *task, const char *metric, const char *group, int length, int depth_key) {
    for (int i = 0; i < l->n; i++) {
        Acc *a = &l->items[i];
        if (a->length == length && a->depth_key == depth_key && strcmp(a->task, task) == 0 &&
            strcmp(a->metric, metric) == 0 && strcmp(a->group, group) == 0)
            return i;
    }
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        Acc *grown = realloc(l->items, sizeof *grown * (size_t)cap);
        if (!grown) return -1;
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
    return l->n - 1;
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

/* RULER's table: per length, the mean over the synthetic long-context tasks
   (kinds niah and recall with numeric length groups) of each task's headline
   metric (its first), and the effective lengths from it (RULER's 85.6%
   threshold, and hymeval's 90% of the shortest length's score). */
static void add_ruler_table(cJSON *summary, const AccList *accs, const cJSON *kinds) {
    enum { MAX_LENGTHS = 64 };
    int lengths[MAX_LENGTHS], n_len = 0, n_tasks[MAX_LENGTHS] = {0};
    double sums[MAX_LENGTHS] = {0};
    cJSON *tasks = cJSON_CreateArray();
    for (int i = 0; i < accs->n; i++) {
        const Acc *whole = &accs->items[i];
        if (whole->group[0] || whole->depth_key >= 0) continue;
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(kinds, whole->task);
        if (!cJSON_IsString(kind) || (strcmp(kind->valuestring, "niah") && strcmp(kind->valuestring, "recall"))) continue;
        /* only the task's headline metric: the first one recorded for it */
        int first = 1;
        for (int j = 0; j < i && first; j++)
            first = !(strcmp(accs->items[j].task, whole->task) == 0 && !accs->items[j].group[0] &&
                      accs->items[j].depth_key < 0);
        if (!first) continue;
        int used = 0;
        for (int j = 0; j < accs->n; j++) {
            const Acc *g = &accs->items[j];
            char *end;
            long length = strtol(g->group, &end, 10);
            if (g->depth_key >= 0 || !g->group[0] || *end || length <= 0 || strcmp(g->task, whole->task) ||
                strcmp(g->metric, whole->metric) || g->n == 0)
                continue;
            int k = 0;
            while (k < n_len && lengths[k] != length) k++;
            if (k == n_len) {
                if (n_len == MAX_LENGTHS) continue;
                lengths[n_len++] = (int)length;
            }
            sums[k] += g->sum / g->n;
            n_tasks[k]++;
            used = 1;
        }
        if (used) cJSON_AddItemToArray(tasks, cJSON_CreateString(whole->task));
    }
    if (n_len == 0) {
        cJSON_Delete(tasks);
        return;
    }
    double means[MAX_LENGTHS];
    cJSON *ruler = cJSON_AddObjectToObject(summary, "ruler");
    cJSON_AddItemToObject(ruler, "tasks", tasks);
    cJSON *by_length = cJSON_AddArrayToObject(ruler, "by_length");
    for (int k = 0; k < n_len; k++) {
        means[k] = sums[k] / n_tasks[k];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "length", lengths[k]);
        cJSON_AddNumberToObject(o, "mean", means[k]);
        cJSON_AddNumberToObject(o, "tasks", n_tasks[k]);
        cJSON_AddItemToArray(by_length, o);
    }
    cJSON_AddNumberToObject(ruler, "effective_length",
                            effective_length(lengths, means, n_len, EFFLEN_RULER_THRESHOLD, 0));
    cJSON_AddNumberToObject(ruler, "effective_length_relative",
                            effective_length(lengths, means, n_len, EFFLEN_DEFAULT_RELATIVE, 1));
}

cJSON *results_summarize(const Results *r, Err *err) {
    char samples_path[4200];
    path_in(samples_path, sizeof samples_path, r, "samples.jsonl");
    if (r->samples) fflush(r->samples);
    AccList accs = {0};
    cJSON *errors = cJSON_CreateObject();
    cJSON *kinds = cJSON_CreateObject(); /* task -> kind */
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
            if (!cJSON_GetObjectItemCaseSensitive(kinds, task))
                cJSON_AddStringToObject(kinds, task, json_string(line, "kind"));
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
                int whole = acc_get(&accs, task, score->string, "", -1, -1);
                int by_group = group[0] ? acc_get(&accs, task, score->string, group, -1, -1) : -2;
                int cell = depth >= 0 ? acc_get(&accs, task, score->string, group, length, (int)lround(depth * 100)) : -2;
                if (whole == -1 || by_group == -1 || cell == -1) {
                    err_set(err, "out of memory summarising");
                    rc = -1;
                    break;
                }
                acc_add(&accs.items[whole], score->valuedouble);
                if (by_group >= 0) acc_add(&accs.items[by_group], score->valuedouble);
                if (cell >= 0) acc_add(&accs.items[cell], score->valuedouble);
            }
            cJSON_Delete(line);
            if (rc < 0) break;
        }
        jsonl_close(reader);
        if (rc < 0) {
            free(accs.items);
            cJSON_Delete(errors);
            cJSON_Delete(kinds);
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
    add_ruler_table(summary, &accs, kinds);
    cJSON_Delete(kinds);
    free(accs.items);
    return summary;
}
