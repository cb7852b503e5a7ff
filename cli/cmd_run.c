/* cmd_run.c: `hymeval run`: a task file through the engine into a results
   directory. Every task line is validated before any model work; examples
   are built deterministically, run in batches of similar length, scored, and
   appended to samples.jsonl as each batch finishes, so a killed run loses
   at most one batch and --resume finishes it. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "cli.h"
#include "dist.h"
#include "generate.h"
#include "git_rev.h"
#include "jsonl.h"
#include "loglik.h"
#include "model.h"
#include "report.h"
#include "results.h"
#include "sha256.h"
#include "task.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: hymeval run --tasks FILE [--model DIR] [--out DIR] [--device cpu|cuda]\n"
            "                   [--precision fp32|bf16-paper|bf16-hf|bf16-all] [--limit N] [--only NAME,...]\n"
            "                   [--batch B] [--resume] [--dry-run] [--shard K/N]\n\n"
            "Runs every task of a JSONL task file (docs/TASKS.md) on a model (default: the embedded\n"
            "models/default) and writes DIR/run.json, DIR/samples.jsonl (one line per example, as it\n"
            "is scored) and DIR/summary.json (DESIGN.md section 4). --resume continues an interrupted\n"
            "run in the same DIR without redoing or duplicating examples. --limit caps the examples\n"
            "per task; --only runs the named tasks. Default --out: results/<task file name>.\n"
            "--dry-run validates the file and builds every example (length targeting included)\n"
            "without running the model or writing results, and prints the example counts.\n\n"
            "Scale out (README \"Scale out\"): under mpirun -np N (hymeval built with MPI) each rank runs\n"
            "its share of the examples on the GPU of its node-local rank, and rank 0 merges the shares\n"
            "into the same DIR a single process writes. Without MPI, --shard K/N runs share K of N\n"
            "into DIR/parts/, and hymeval merge joins the shards.\n");
}

typedef struct {
    const char *model_dir, *tasks_path, *out_dir, *device, *precision, *only;
    int limit, batch, resume, dry_run;
    int shard_index, shard_count; /* --shard K/N; count 0 = not sharded */
} RunArgs;

/* ---------------------------------------------------------------- hashing */

/* SHA-256 of a file's bytes (mapped, so a 3 GB checkpoint is not copied). */
static int hash_file(const char *path, char out[65]) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    if (st.st_size == 0) {
        sha256_hex("", 0, out);
        close(fd);
        return 0;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return -1;
    sha256_hex(map, (size_t)st.st_size, out);
    munmap(map, (size_t)st.st_size);
    return 0;
}

/* The model's identity: a hash over config.json and every weight file. */
static void hash_model(const HymbaModel *m, char out[65]) {
    char joined[64 * 70] = "";
    char h[65], path[4200];
    snprintf(path, sizeof path, "%s/config.json", m->dir);
    if (hash_file(path, h) == 0) strncat(joined, h, sizeof joined - strlen(joined) - 1);
    const char *last_file = NULL;
    for (size_t i = 0; i < st_count(m->ck); i++) {
        const StTensor *t = st_tensor_at(m->ck, i);
        if (last_file && strcmp(last_file, t->file) == 0) continue;
        last_file = t->file;
        if (strlen(joined) + 65 < sizeof joined && hash_file(t->file, h) == 0) strcat(joined, h);
    }
    sha256_hex(joined, strlen(joined), out);
}

/* ---------------------------------------------------------------- progress */

typedef struct {
    const char *task;
    int total, done;
    long tokens;
    double start, last_print;
    int tty;
} Progress;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void progress_show(Progress *p, int final) {
    double t = now_seconds();
    if (!final && t - p->last_print < (p->tty ? 0.2 : 10.0)) return;
    p->last_print = t;
    double elapsed = t - p->start;
    double rate = elapsed > 0 ? p->done / elapsed : 0;
    double eta = rate > 0 ? (p->total - p->done) / rate : 0;
    double tps = elapsed > 0 ? p->tokens / elapsed : 0;
    if (p->tty) {
        int width = 24, filled = p->total ? width * p->done / p->total : width;
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\r%-24.24s [%s] %d/%d  %.0f tok/s  ETA %.0fs   %s", p->task, bar, p->done, p->total, tps, eta,
                final ? "\n" : "");
    } else {
        fprintf(stderr, "%s: %d/%d examples, %.0f tok/s, %.0fs elapsed, ETA %.0fs\n", p->task, p->done, p->total, tps,
                elapsed, eta);
    }
}

/* ---------------------------------------------------------------- running examples */

typedef struct {
    Backend *backend;
    void *models;               /* the run's ModelSet, for MeasureEnv.model_at */
    Results *results;
    const TaskDef *task;
    const TaskKind *kind;
    Progress *progress;
    int batch;
    const unsigned char *share; /* per example: 1 if this process runs it (a share of the run), NULL = all */
} Runner;

static cJSON *strv_json(char **v, int n) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(v[i]));
    return arr;
}

/* One samples.jsonl line for a scored (or failed) example. */
static cJSON *sample_line(const Runner *r, const Example *ex, const Prediction *pred, const Scores *scores,
                          double seconds, const char *error) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task", r->task->name);
    cJSON_AddStringToObject(o, "kind", r->task->kind);
    cJSON_AddStringToObject(o, "id", ex->id);
    cJSON_AddStringToObject(o, "group", ex->group);
    cJSON_AddNumberToObject(o, "target_tokens", ex->target_tokens);
    cJSON_AddNumberToObject(o, "prompt_tokens", ex->prompt_tokens);
    if (ex->depth >= 0) cJSON_AddNumberToObject(o, "depth", ex->depth);
    if (ex->needle_token_pos >= 0) {
        cJSON_AddNumberToObject(o, "needle_token_pos", ex->needle_token_pos);
        cJSON_AddNumberToObject(o, "needle_token_len", ex->needle_token_len);
    }
    if (ex->request == REQ_GENERATE) {
        cJSON_AddStringToObject(o, "prediction", pred && pred->text ? pred->text : "");
        cJSON_AddItemToObject(o, "targets", strv_json(ex->targets, ex->n_targets));
    } else if (ex->request == REQ_LOGLIK) {
        cJSON *ll = cJSON_AddArrayToObject(o, "prediction");
        for (int i = 0; pred && pred->ll && i < ex->n_choices; i++)
            cJSON_AddItemToArray(ll, cJSON_CreateNumber(pred->ll[i]));
        cJSON_AddNumberToObject(o, "gold", ex->gold);
    }
    if (error) {
        cJSON_AddStringToObject(o, "error", error);
    } else {
        cJSON *s = cJSON_AddObjectToObject(o, "scores");
        for (int i = 0; i < scores->n; i++) cJSON_AddNumberToObject(s, scores->name[i], scores->value[i]);
    }
    cJSON_AddNumberToObject(o, "seconds", seconds);
    if (ex->extra) cJSON_AddItemToObject(o, "extra", cJSON_Duplicate(ex->extra, 1));
    return o;
}

static int record(Runner *r, const Example *ex, const Prediction *pred, double seconds, Err *err) {
    Scores scores = {0};
    Err score_err;
    const char *error = NULL;
    if (r->kind->score(r->task, ex, pred, &scores, &score_err)) error = score_err.msg;
    cJSON *line = sample_line(r, ex, pred, &scores, seconds, error);
    int rc = results_append(r->results, line, err);
    cJSON_Delete(line);
    r->progress->done++;
    progress_show(r->progress, 0);
    return rc;
}

/* Examples of one generation batch must share their stopping rules. */
static int same_generation(const Example *a, const Example *b) {
    if (a->max_new_tokens != b->max_new_tokens || a->n_stop != b->n_stop) return 0;
    for (int i = 0; i < a->n_stop; i++)
        if (strcmp(a->stop[i], b->stop[i]) != 0) return 0;
    return 1;
}

typedef struct {
    Example *ex;
    int32_t *ids;
    int n_ids;
} Pending;

static int by_length(const void *a, const void *b) {
    const Pending *x = a, *y = b;
    return (x->n_ids > y->n_ids) - (x->n_ids < y->n_ids);
}

static int run_generation(Runner *r, Pending *items, int n, Err *err) {
    const Tokenizer *tok = r->backend->model->tok;
    for (int i = 0; i < n; i++) {
        size_t count;
        Example *ex = items[i].ex;
        if (tokenizer_encode(tok, ex->prompt, strlen(ex->prompt), ex->add_bos, &items[i].ids, &count, err))
            return err_prefix(err, "task %s example %s", r->task->name, ex->id);
        items[i].n_ids = (int)count;
        ex->prompt_tokens = (int)count;
    }
    /* similar lengths together: little padding work on the GPU, none on the CPU */
    qsort(items, (size_t)n, sizeof *items, by_length);
    for (int start = 0; start < n;) {
        int end = start + 1;
        while (end < n && end - start < r->batch && same_generation(items[start].ex, items[end].ex)) end++;
        int B = end - start;
        const int32_t **prompts = malloc(sizeof *prompts * (size_t)B);
        int *lens = malloc(sizeof *lens * (size_t)B);
        GenerateResult *out = calloc((size_t)B, sizeof *out);
        if (!prompts || !lens || !out) {
            free(prompts), free(lens), free(out);
            return err_set(err, "out of memory");
        }
        for (int i = 0; i < B; i++) {
            prompts[i] = items[start + i].ids;
            lens[i] = items[start + i].n_ids;
        }
        const Example *first = items[start].ex;
        GenerateOptions opt = {first->max_new_tokens, (const char *const *)first->stop, first->n_stop, 1, NULL, NULL};
        double t0 = now_seconds();
        int rc = generate_batch(r->backend, prompts, lens, B, &opt, out, err);
        double seconds = (now_seconds() - t0) / B;
        for (int i = 0; rc == 0 && i < B; i++) {
            Prediction pred = {out[i].text, NULL, NULL};
            r->progress->tokens += lens[i] + out[i].n_ids;
            rc = record(r, items[start + i].ex, &pred, seconds, err);
        }
        for (int i = 0; i < B && rc == 0; i++) generate_result_free(&out[i]);
        free(prompts), free(lens), free(out);
        if (rc) return err_prefix(err, "task %s", r->task->name);
        start = end;
    }
    return 0;
}

/* lm-eval's pair encoding: trailing spaces of the context move to the
   continuation; the continuation's tokens are the tail of enc(context +
   continuation) after len(enc(context)). */
static int encode_pair(const Tokenizer *tok, const char *context, const char *continuation, int add_bos,
                       int32_t **ctx_ids, int *n_ctx, int32_t **cont_ids, int *n_cont, Err *err) {
    size_t clen = strlen(context), spaces = 0;
    while (spaces < clen && context[clen - 1 - spaces] == ' ') spaces++;
    size_t ctx_len = clen - spaces, cont_len = strlen(continuation);
    char *whole = malloc(clen + cont_len + 1);
    if (!whole) return err_set(err, "out of memory");
    memcpy(whole, context, clen);
    memcpy(whole + clen, continuation, cont_len + 1);
    int32_t *whole_ids = NULL;
    size_t n_whole = 0, n_c = 0;
    int rc = tokenizer_encode(tok, whole, clen + cont_len, add_bos, &whole_ids, &n_whole, err);
    free(whole);
    if (rc) return -1;
    if (tokenizer_encode(tok, context, ctx_len, add_bos, ctx_ids, &n_c, err)) {
        free(whole_ids);
        return -1;
    }
    *n_ctx = (int)n_c;
    *n_cont = (int)n_whole - (int)n_c;
    if (*n_cont <= 0) {
        free(whole_ids);
        free(*ctx_ids);
        *ctx_ids = NULL;
        return err_set(err, "the continuation \"%.40s\" has no tokens of its own after the context (a token spans the "
                       "join)", continuation);
    }
    *cont_ids = malloc(sizeof **cont_ids * (size_t)*n_cont);
    if (!*cont_ids) {
        free(whole_ids);
        return err_set(err, "out of memory");
    }
    memcpy(*cont_ids, whole_ids + n_c, sizeof **cont_ids * (size_t)*n_cont);
    free(whole_ids);
    return 0;
}

/* All choices of one example: choices sharing a context string share one
   context forward (forked state); Winogrande-style examples, whose contexts
   differ, run one context per choice. */
static int run_loglik_example(Runner *r, Example *ex, Err *err) {
    const Tokenizer *tok = r->backend->model->tok;
    int n = ex->n_choices;
    double *ll = calloc((size_t)n, sizeof *ll);
    int *greedy = calloc((size_t)n, sizeof *greedy);
    int *done = calloc((size_t)n, sizeof *done);
    if (!ll || !greedy || !done) {
        free(ll), free(greedy), free(done);
        return err_set(err, "out of memory");
    }
    double t0 = now_seconds();
    Err ex_err;
    const char *failure = NULL;
    for (int i = 0; i < n && !failure; i++) {
        if (done[i]) continue;
        /* every choice with the same context as choice i */
        int32_t *ctx_ids = NULL, **conts = calloc((size_t)n, sizeof *conts);
        int n_ctx = 0, *cont_lens = calloc((size_t)n, sizeof *cont_lens), *members = calloc((size_t)n, sizeof *members);
        int m = 0;
        double *sub_ll = calloc((size_t)n, sizeof *sub_ll);
        int *sub_greedy = calloc((size_t)n, sizeof *sub_greedy);
        if (!conts || !cont_lens || !members || !sub_ll || !sub_greedy) {
            failure = "out of memory";
        }
        for (int j = i; j < n && !failure; j++) {
            if (done[j] || strcmp(ex->contexts[j], ex->contexts[i]) != 0) continue;
            int32_t *this_ctx = NULL;
            int this_n_ctx = 0;
            if (encode_pair(tok, ex->contexts[j], ex->continuations[j], ex->add_bos, &this_ctx, &this_n_ctx, &conts[m],
                            &cont_lens[m], &ex_err)) {
                failure = ex_err.msg;
                break;
            }
            if (!ctx_ids) {
                ctx_ids = this_ctx;
                n_ctx = this_n_ctx;
            } else {
                free(this_ctx); /* the same context string encodes to the same ids */
            }
            members[m++] = j;
            done[j] = 1;
        }
        if (!failure && m > 0) {
            r->progress->tokens += n_ctx;
            for (int k = 0; k < m; k++) r->progress->tokens += cont_lens[k];
            if (loglik_continuations(r->backend, ctx_ids, n_ctx, (const int32_t *const *)conts, cont_lens, m, sub_ll,
                                     sub_greedy, err)) {
                for (int k = 0; k < m; k++) free(conts[k]);
                free(conts), free(cont_lens), free(members), free(ctx_ids), free(sub_ll), free(sub_greedy);
                free(ll), free(greedy), free(done);
                return err_prefix(err, "task %s example %s", r->task->name, ex->id);
            }
            for (int k = 0; k < m; k++) {
                ll[members[k]] = sub_ll[k];
                greedy[members[k]] = sub_greedy[k];
            }
        }
        for (int k = 0; k < m; k++) free(conts[k]);
        free(conts), free(cont_lens), free(members), free(ctx_ids), free(sub_ll), free(sub_greedy);
    }
    if (!failure && ex->n_choices > 0 && tok) {
        size_t count = 0;
        int32_t *ids = NULL;
        if (tokenizer_encode(tok, ex->contexts[0], strlen(ex->contexts[0]), ex->add_bos, &ids, &count, NULL) == 0)
            ex->prompt_tokens = (int)count;
        free(ids);
    }
    Prediction pred = {NULL, ll, greedy};
    int rc;
    if (failure) {
        /* one example that cannot be encoded is recorded as an error, not a crash of the whole run */
        Scores none = {0};
        cJSON *line = sample_line(r, ex, NULL, &none, now_seconds() - t0, failure);
        rc = results_append(r->results, line, err);
        cJSON_Delete(line);
        r->progress->done++;
    } else {
        rc = record(r, ex, &pred, now_seconds() - t0, err);
    }
    free(ll), free(greedy), free(done);
    return rc;
}

static int in_share(const Runner *r, int i) {
    return !r->share || r->share[i];
}

static HymbaModel *modelset_model_at(void *user, int p, Err *err);
static Backend *modelset_backend_at(void *user, int p, Err *err);

/* A measurement (REQ_MEASURE: the measurement kinds): the kind runs it on
   the run's backend with an observer, or times it, and scores it; its
   curves and tables become the sample's "extra". A failed measurement is
   recorded as an error line. */
static int run_measure_example(Runner *r, Example *ex, Err *err) {
    Scores scores = {0};
    cJSON *extra = NULL;
    Err m_err;
    MeasureEnv env = {r->backend->model, r->backend, modelset_model_at, modelset_backend_at, r->models};
    double t0 = now_seconds();
    int failed = r->kind->measure(r->task, &env, ex, &scores, &extra, &m_err) != 0;
    if (extra) {
        cJSON_Delete(ex->extra);
        ex->extra = extra;
    }
    r->progress->tokens += ex->target_tokens;
    cJSON *line = sample_line(r, ex, NULL, &scores, now_seconds() - t0, failed ? m_err.msg : NULL);
    int rc = results_append(r->results, line, err);
    cJSON_Delete(line);
    r->progress->done++;
    progress_show(r->progress, 0);
    return rc;
}

static int run_task(Runner *r, ExampleList *list, int limit, Err *err) {
    int n = limit > 0 && limit < list->n ? limit : list->n;
    Pending *gen = calloc((size_t)n + 1, sizeof *gen);
    if (!gen) return err_set(err, "out of memory");
    int n_gen = 0, skipped = 0, elsewhere = 0, rc = 0;
    for (int i = 0; i < n; i++)
        if (!in_share(r, i)) elsewhere++;
        else if (results_is_done(r->results, r->task->name, list->items[i].id)) skipped++;
    r->progress->total = n - elsewhere - skipped;
    if (skipped)
        fprintf(stderr, "%s: %d of %d examples already done (resumed)\n", r->task->name, skipped, n - elsewhere);
    for (int i = 0; i < n && rc == 0; i++) {
        Example *ex = &list->items[i];
        if (!in_share(r, i) || results_is_done(r->results, r->task->name, ex->id)) continue;
        if (ex->request == REQ_GENERATE) gen[n_gen++].ex = ex;
        else if (ex->request == REQ_MEASURE) rc = run_measure_example(r, ex, err);
        else rc = run_loglik_example(r, ex, err);
    }
    if (rc == 0 && n_gen) rc = run_generation(r, gen, n_gen, err);
    for (int i = 0; i < n_gen; i++) free(gen[i].ids);
    free(gen);
    progress_show(r->progress, 1);
    return rc;
}

/* ---------------------------------------------------------------- the command */

static int in_only_list(const char *only, const char *name) {
    if (!only) return 1;
    size_t len = strlen(name);
    for (const char *p = only; *p;) {
        const char *comma = strchr(p, ',');
        size_t item = comma ? (size_t)(comma - p) : strlen(p);
        if (item == len && strncmp(p, name, len) == 0) return 1;
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, RunArgs *a) {
    memset(a, 0, sizeof *a);
    a->model_dir = "models/default";
    a->device = "cpu";
    a->batch = 8;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
        long num;
        if (strcmp(o, "--model") == 0 && (v = cli_value(argc, argv, &i))) a->model_dir = v;
        else if (strcmp(o, "--tasks") == 0 && (v = cli_value(argc, argv, &i))) a->tasks_path = v;
        else if (strcmp(o, "--out") == 0 && (v = cli_value(argc, argv, &i))) a->out_dir = v;
        else if (strcmp(o, "--device") == 0 && (v = cli_value(argc, argv, &i))) a->device = v;
        else if (strcmp(o, "--precision") == 0 && (v = cli_value(argc, argv, &i))) a->precision = v;
        else if (strcmp(o, "--only") == 0 && (v = cli_value(argc, argv, &i))) a->only = v;
        else if (strcmp(o, "--resume") == 0) a->resume = 1;
        else if (strcmp(o, "--dry-run") == 0) a->dry_run = 1;
        else if (strcmp(o, "--shard") == 0 && (v = cli_value(argc, argv, &i))) {
            Err shard_err;
            if (dist_parse_shard(v, &a->shard_index, &a->shard_count, &shard_err)) {
                fprintf(stderr, "error: %s\n", shard_err.msg);
                return -1;
            }
        }
        else if (strcmp(o, "--limit") == 0 && (v = cli_value(argc, argv, &i))) {
            if ((num = cli_long("--limit", v, 1, 1 << 30)) < 0) return -1;
            a->limit = (int)num;
        } else if (strcmp(o, "--batch") == 0 && (v = cli_value(argc, argv, &i))) {
            if ((num = cli_long("--batch", v, 1, 4096)) < 0) return -1;
            a->batch = (int)num;
        } else {
            if (i < argc) fprintf(stderr, "error: unexpected argument \"%s\"\n", o);
            return -1;
        }
    }
    if (!a->tasks_path) {
        fprintf(stderr, "error: --tasks is required\n");
        return -1;
    }
    if (!a->precision) a->precision = strcmp(a->device, "cuda") == 0 ? "bf16-hf" : "fp32";
    return 0;
}

static void default_out_dir(const char *tasks_path, char *out, size_t len) {
    const char *base = strrchr(tasks_path, '/');
    base = base ? base + 1 : tasks_path;
    size_t n = strcspn(base, ".");
    snprintf(out, len, "results/%.*s", (int)n, base);
}

static char *iso_time(char *buf, size_t len) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

/* Builds every example of every selected task and reports the counts. */
static int dry_run(const TaskFile *tf, const RunArgs *a, const Tokenizer *tok, Err *err) {
    int total = 0;
    for (int i = 0; i < tf->n; i++) {
        const TaskDef *t = &tf->tasks[i];
        if (!in_only_list(a->only, t->name)) continue;
        ExampleList list = {0};
        double t0 = now_seconds();
        if (task_kind_find(t->kind)->build(t, tok, &list, err)) {
            examples_free(&list);
            return -1;
        }
        long prompt_tokens = 0;
        for (int k = 0; k < list.n; k++) prompt_tokens += list.items[k].prompt_tokens;
        int limit = t->limit;
        if (a->limit && (limit == 0 || a->limit < limit)) limit = a->limit;
        int n = limit > 0 && limit < list.n ? limit : list.n;
        printf("%-28s %-16s %6d examples (of %d built; %ld prompt tokens known), built in %.2fs\n", t->name, t->kind, n,
               list.n, prompt_tokens, now_seconds() - t0);
        total += n;
        examples_free(&list);
    }
    printf("%d examples in %d task(s): the file is valid\n", total, tf->n);
    return 0;
}

/* ---------------------------------------------------------------- the plan */

/* Every example of the run, in canonical order (task-file order, then the
   order the kind builds them: the order samples.jsonl ends in), and the
   share of the run each belongs to (cli/dist.h). */
typedef struct {
    const TaskDef *task;
    ExampleList list;
    int n;               /* examples run (limit applied) */
    unsigned char *mine; /* [n]: 1 if this process runs example i */
    int n_mine;
} PlannedTask;

typedef struct {
    PlannedTask *tasks;
    int n_tasks;
    int total;              /* examples in the run */
    int assigned;           /* examples handed out (under MPI: those not done yet) */
    int shares;
    int *share_examples;    /* [shares] */
    int64_t *share_cost;    /* [shares] estimated cost (dist_example_cost) */
    char hash[65];          /* of the assignment: every process must compute the same */
} Plan;

static void plan_free(Plan *p) {
    for (int i = 0; i < p->n_tasks; i++) {
        examples_free(&p->tasks[i].list);
        free(p->tasks[i].mine);
    }
    free(p->tasks), free(p->share_examples), free(p->share_cost);
    memset(p, 0, sizeof *p);
}

static int by_id(const void *a, const void *b) {
    return strcmp((*(const Example *const *)a)->id, (*(const Example *const *)b)->id);
}

/* Resuming and merging key on (task, id): a kind must not build one id twice. */
static int check_unique_ids(const PlannedTask *pt, Err *err) {
    const Example **sorted = malloc(sizeof *sorted * (size_t)(pt->n + 1));
    if (!sorted) return err_set(err, "out of memory");
    for (int i = 0; i < pt->n; i++) sorted[i] = &pt->list.items[i];
    qsort(sorted, (size_t)pt->n, sizeof *sorted, by_id);
    int rc = 0;
    for (int i = 1; i < pt->n && rc == 0; i++)
        if (strcmp(sorted[i - 1]->id, sorted[i]->id) == 0)
            rc = err_set(err, "task %s (%s:%d) builds two examples with the id \"%s\"", pt->task->name,
                         pt->task->file, pt->task->line, sorted[i]->id);
    free(sorted);
    return rc;
}

/* Builds every example of every selected task. Examples are built with the
   default model's tokenizer: every precision loads the same model directory. */
static int plan_build(Plan *p, const TaskFile *tf, const RunArgs *a, const Tokenizer *tok, Err *err) {
    p->tasks = calloc((size_t)tf->n + 1, sizeof *p->tasks);
    if (!p->tasks) return err_set(err, "out of memory");
    for (int i = 0; i < tf->n; i++) {
        const TaskDef *t = &tf->tasks[i];
        if (!in_only_list(a->only, t->name)) continue;
        PlannedTask *pt = &p->tasks[p->n_tasks++];
        pt->task = t;
        if (task_kind_find(t->kind)->build(t, tok, &pt->list, err)) return -1;
        int limit = t->limit;
        if (a->limit && (limit == 0 || a->limit < limit)) limit = a->limit;
        pt->n = limit > 0 && limit < pt->list.n ? limit : pt->list.n;
        if (!(pt->mine = calloc((size_t)pt->n + 1, 1))) return err_set(err, "out of memory");
        if (check_unique_ids(pt, err)) return -1;
        p->total += pt->n;
    }
    return 0;
}

/* Hands the examples out to d->size shares (dist_assign) and marks this
   process's. Under MPI only the examples not done yet are handed out, so a
   resumed run, with any number of ranks, balances what is left (every rank
   reads the same results before any writes). --shard hands out every
   example, so each shard's share is the same whenever and wherever it runs,
   and a resumed shard skips what it already did. */
static int plan_assign(Plan *p, const Dist *d, const Results *r, Err *err) {
    int over_remaining = d->mode == DIST_MPI;
    int cap = p->total + 1, n = 0, rc = 0;
    int64_t *cost = malloc(sizeof *cost * (size_t)cap);
    int *owner = malloc(sizeof *owner * (size_t)cap);
    int *task_of = malloc(sizeof *task_of * (size_t)cap), *example_of = malloc(sizeof *example_of * (size_t)cap);
    p->shares = d->size;
    p->share_examples = calloc((size_t)d->size, sizeof *p->share_examples);
    p->share_cost = calloc((size_t)d->size, sizeof *p->share_cost);
    if (!cost || !owner || !task_of || !example_of || !p->share_examples || !p->share_cost)
        rc = err_set(err, "out of memory");
    for (int t = 0; rc == 0 && t < p->n_tasks; t++) {
        const PlannedTask *pt = &p->tasks[t];
        for (int i = 0; i < pt->n; i++) {
            if (over_remaining && results_is_done(r, pt->task->name, pt->list.items[i].id)) continue;
            cost[n] = dist_example_cost(&pt->list.items[i]);
            task_of[n] = t;
            example_of[n++] = i;
        }
    }
    if (rc == 0) rc = dist_assign(cost, n, d->size, owner, err);
    if (rc == 0) {
        Sha256 h;
        sha256_init(&h);
        for (int k = 0; k < n; k++) {
            PlannedTask *pt = &p->tasks[task_of[k]];
            const Example *ex = &pt->list.items[example_of[k]];
            char share[64];
            snprintf(share, sizeof share, "\t%lld\t%d\n", (long long)cost[k], owner[k]);
            sha256_update(&h, pt->task->name, strlen(pt->task->name) + 1);
            sha256_update(&h, ex->id, strlen(ex->id));
            sha256_update(&h, share, strlen(share));
            p->share_examples[owner[k]]++;
            p->share_cost[owner[k]] += cost[k];
            if (owner[k] == d->rank) {
                pt->mine[example_of[k]] = 1;
                pt->n_mine++;
            }
        }
        uint8_t digest[32];
        sha256_final(&h, digest);
        for (int i = 0; i < 32; i++) snprintf(p->hash + 2 * i, 3, "%02x", digest[i]);
        p->assigned = n;
    }
    free(cost), free(owner), free(task_of), free(example_of);
    return rc;
}

/* The canonical order, as results_merge takes it: {task: [id, ...]}. */
static cJSON *plan_order(const Plan *p) {
    cJSON *order = cJSON_CreateObject();
    for (int t = 0; t < p->n_tasks; t++) {
        cJSON *ids = cJSON_AddArrayToObject(order, p->tasks[t].task->name);
        for (int i = 0; i < p->tasks[t].n; i++) cJSON_AddItemToArray(ids, cJSON_CreateString(p->tasks[t].list.items[i].id));
    }
    return order;
}

/* run.json's record of the processes and the sharding: "ranks" (one per
   process whose status is known: all of them under MPI, this one for a
   shard or a single run) and "sharding". */
static void describe_sharding(cJSON *run, const Dist *d, const Plan *p, const DistStatus *statuses, int n_statuses) {
    static const char *const modes[] = {"single", "mpi", "shard"};
    cJSON *ranks = cJSON_AddArrayToObject(run, "ranks");
    for (int i = 0; i < n_statuses; i++) {
        const DistStatus *s = &statuses[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "rank", s->rank);
        cJSON_AddNumberToObject(o, "of", d->size);
        cJSON_AddStringToObject(o, "host", s->host);
        cJSON_AddNumberToObject(o, "pid", (double)s->pid);
        cJSON_AddNumberToObject(o, "local_rank", s->local_rank);
        cJSON_AddNumberToObject(o, "device_index", s->device_index);
        cJSON_AddNumberToObject(o, "examples", p->share_examples[s->rank]);
        cJSON_AddNumberToObject(o, "estimated_cost", (double)p->share_cost[s->rank]);
        cJSON_AddItemToArray(ranks, o);
    }
    cJSON *sh = cJSON_AddObjectToObject(run, "sharding");
    cJSON_AddStringToObject(sh, "mode", modes[d->mode]);
    cJSON_AddNumberToObject(sh, "shares", d->size);
    cJSON_AddStringToObject(sh, "assignment", d->mode == DIST_MPI
                                                  ? "longest processing time first, over the examples not done yet"
                                                  : "longest processing time first, over every example");
    char cost[160];
    snprintf(cost, sizeof cost, "prompt tokens + %d x max_new_tokens; log-likelihood: context + continuation tokens",
             DIST_DECODE_FACTOR);
    cJSON_AddStringToObject(sh, "cost", cost);
    cJSON_AddNumberToObject(sh, "examples", p->total);
    cJSON_AddNumberToObject(sh, "assigned", p->assigned);
    cJSON_AddStringToObject(sh, "plan_sha256", p->hash);
}

/* --dry-run with shares: how the examples would be handed out. */
static int print_shares(Plan *p, const TaskFile *tf, const RunArgs *a, const Dist *d, const Tokenizer *tok, Err *err) {
    Results none = {0};
    if (plan_build(p, tf, a, tok, err) || plan_assign(p, d, &none, err)) return -1;
    int64_t total = 0;
    for (int s = 0; s < p->shares; s++) total += p->share_cost[s];
    printf("\n%d shares (longest processing time first; estimated cost = prompt tokens + %d x max_new_tokens):\n",
           p->shares, DIST_DECODE_FACTOR);
    for (int s = 0; s < p->shares; s++)
        printf("  share %-4d %6d examples, estimated cost %10lld (%5.1f%%)\n", s, p->share_examples[s],
               (long long)p->share_cost[s], total ? 100.0 * (double)p->share_cost[s] / (double)total : 0.0);
    return 0;
}

/* Rank 0 of an MPI run and a single process end the same way: every sample
   line of DIR (samples.jsonl and the ranks' part files) in canonical order
   in DIR/samples.jsonl, exactly what one uninterrupted process writes. */
static int finish_samples(const Plan *p, const char *out_dir, Err *err) {
    cJSON *order = plan_order(p);
    const char *sources[] = {out_dir};
    int duplicates = 0;
    int rc = results_merge(sources, 1, order, out_dir, &duplicates, err);
    cJSON_Delete(order);
    if (rc == 0 && duplicates)
        fprintf(stderr, "note: %d example(s) had more than one sample line (an earlier run's); the first was kept\n",
                duplicates);
    return rc ? rc : results_remove_parts(out_dir, err);
}

/* A model per precision: precision suites switch per task, and measurement
   kinds ask for other precisions (MeasureEnv.model_at). A backend is opened
   only for the precisions tasks run at. */
typedef struct {
    const char *dir, *device;
    HymbaModel *model[4];
    Backend *backend[4];
} ModelSet;

static HymbaModel *model_for(ModelSet *set, Precision p, Err *err) {
    if (!set->model[p]) {
        HymbaModel *m = model_load(set->dir, p, err);
        if (!m) return NULL;
        if (!m->tok) {
            model_free(m);
            err_set(err, "%s has no tokenizer.json; hymeval run needs the model's tokenizer", set->dir);
            return NULL;
        }
        set->model[p] = m;
    }
    return set->model[p];
}

static HymbaModel *modelset_model_at(void *user, int p, Err *err) {
    if (p < 0 || p > PREC_BF16_ALL) {
        err_set(err, "internal error: precision %d", p);
        return NULL;
    }
    return model_for(user, (Precision)p, err);
}

static Backend *backend_for(ModelSet *set, Precision p, Err *err) {
    if (!set->backend[p]) {
        HymbaModel *m = model_for(set, p, err);
        if (!m) return NULL;
        set->backend[p] = backend_open(m, set->device, err);
    }
    return set->backend[p];
}

static Backend *modelset_backend_at(void *user, int p, Err *err) {
    if (p < 0 || p > PREC_BF16_ALL) {
        err_set(err, "internal error: precision %d", p);
        return NULL;
    }
    return backend_for(user, (Precision)p, err);
}

static void modelset_free(ModelSet *set) {
    for (int p = 0; p < 4; p++) {
        backend_close(set->backend[p]);
        model_free(set->model[p]);
    }
}

static void print_summary(const cJSON *summary) {
    const cJSON *m;
    printf("\n%-28s %-20s %-16s %9s %9s %7s\n", "task", "metric", "group", "value", "stderr", "n");
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(summary, "metrics")) {
        printf("%-28.28s %-20.20s %-16.16s %9.4f %9.4f %7.0f\n",
               cJSON_GetObjectItemCaseSensitive(m, "task")->valuestring,
               cJSON_GetObjectItemCaseSensitive(m, "metric")->valuestring,
               cJSON_GetObjectItemCaseSensitive(m, "group")->valuestring,
               cJSON_GetObjectItemCaseSensitive(m, "value")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(m, "stderr")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(m, "n")->valuedouble);
    }
}

int cmd_run(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    RunArgs a;
    Precision default_prec;
    if (parse_args(argc, argv, &a) || precision_parse(a.precision, &default_prec)) {
        if (a.precision && precision_parse(a.precision, &default_prec)) fprintf(stderr, "error: unknown --precision\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    Err err;
    TaskFile tf;
    if (taskfile_load(&tf, a.tasks_path, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        return EXIT_FAIL;
    }
    Dist dist;
    if (dist_init(&dist, a.shard_index, a.shard_count, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        dist_finalize(&dist);
        taskfile_free(&tf);
        return EXIT_FAIL;
    }
    ModelSet models = {.dir = a.model_dir, .device = a.device};
    Results results = {0};
    Plan plan = {0};
    cJSON *run = NULL;
    int rc = EXIT_FAIL, quiet = 0;
    char out_dir[4096], started[32], model_hash[65], part[96], describe_as[128] = "";
    if (a.out_dir) snprintf(out_dir, sizeof out_dir, "%s", a.out_dir);
    else default_out_dir(a.tasks_path, out_dir, sizeof out_dir);
    dist_part_name(&dist, part, sizeof part);
    int n_statuses = dist.mode == DIST_MPI ? dist.size : 1;
    DistStatus *statuses = calloc((size_t)n_statuses, sizeof *statuses);
    dist_bind_device(&dist, a.device);
    Backend *backend = statuses ? backend_for(&models, default_prec, &err) : NULL;
    if (!statuses) err_set(&err, "out of memory");
    if (a.dry_run) {
        if (backend && (dist.mode != DIST_MPI || dist.rank == 0)) {
            rc = dry_run(&tf, &a, backend->model->tok, &err) ? EXIT_FAIL : EXIT_OK;
            if (rc == EXIT_OK && dist.size > 1 && print_shares(&plan, &tf, &a, &dist, backend->model->tok, &err))
                rc = EXIT_FAIL;
        } else if (backend) {
            rc = EXIT_OK;
        }
        goto done;
    }

    /* Set-up, on every process: the model, the results directory, every
       example and this process's share. Under MPI the ranks then check
       together that all of them got this far and agree on the shares. */
    int ready = backend != NULL;
    if (ready) {
        hash_model(backend->model, model_hash);
        /* what must match for --resume to continue this run */
        const RunIdentity id = {tf.sha256, model_hash, a.precision, backend->name, a.limit, a.only};
        run = results_identity_new(&id);
        int flags = (a.resume ? RESULTS_RESUME : 0) | (dist.mode == DIST_SHARD ? RESULTS_PEERS : 0);
        const char *own_part = dist.mode == DIST_SINGLE || (dist.mode == DIST_MPI && dist.size == 1) ? NULL : part;
        ready = results_open_part(&results, out_dir, own_part, flags, run, &err) == 0 &&
                plan_build(&plan, &tf, &a, backend->model->tok, &err) == 0 &&
                plan_assign(&plan, &dist, &results, &err) == 0;
    }
    if (dist_agree(&dist, ready, err.msg, plan.hash, statuses, &err)) {
        quiet = dist.mode == DIST_MPI && dist.rank != 0;
        goto done;
    }

    /* run.json (DIR/parts/<part>.json for a shard) = identity + description */
    cJSON *cmd = cJSON_AddArrayToObject(run, "command");
    cJSON_AddItemToArray(cmd, cJSON_CreateString("hymeval"));
    for (int i = 0; i < argc; i++) cJSON_AddItemToArray(cmd, cJSON_CreateString(argv[i]));
    cJSON_AddStringToObject(run, "tasks_file", tf.path);
    cJSON_AddStringToObject(run, "model", a.model_dir);
    cJSON_AddItemToObject(run, "config", cJSON_CreateString(backend->model->dir));
    cJSON_AddStringToObject(run, "weights_dtype", backend->model->w.source_dtype);
    cJSON_AddStringToObject(run, "engine_version", HYMEVAL_VERSION);
    cJSON_AddStringToObject(run, "engine_git_revision", HYMEVAL_GIT_REV);
    cJSON_AddStringToObject(run, "device", backend->device);
    cJSON *seeds = cJSON_AddObjectToObject(run, "seeds");
    for (int i = 0; i < tf.n; i++) cJSON_AddNumberToObject(seeds, tf.tasks[i].name, (double)tf.tasks[i].seed);
    iso_time(started, sizeof started);
    const int resumed = a.resume && results.n_done > 0;
    /* a resumed run keeps the start of the run it finishes, so the report's
       elapsed time covers all of it; when it was resumed is recorded beside */
    char first_started[64] = "";
    if (resumed && dist.mode != DIST_SHARD) {
        char run_path[4200];
        snprintf(run_path, sizeof run_path, "%s/run.json", out_dir);
        char *text = read_text_file(run_path, NULL, NULL);
        cJSON *old = text ? cJSON_Parse(text) : NULL;
        const cJSON *st = old ? cJSON_GetObjectItemCaseSensitive(old, "started") : NULL;
        if (cJSON_IsString(st)) snprintf(first_started, sizeof first_started, "%s", st->valuestring);
        cJSON_Delete(old);
        free(text);
    }
    cJSON_AddStringToObject(run, "started", first_started[0] ? first_started : started);
    if (resumed) cJSON_AddStringToObject(run, "resumed_at", started);
    cJSON_AddBoolToObject(run, "resumed", resumed);
    describe_sharding(run, &dist, &plan, statuses, n_statuses);
    if (dist.mode == DIST_SHARD) {
        /* what hymeval merge needs to put the shards' lines in order */
        cJSON_AddItemToObject(run, "order", plan_order(&plan));
        snprintf(describe_as, sizeof describe_as, "parts/%s.json", part);
    } else if (dist.rank == 0) {
        snprintf(describe_as, sizeof describe_as, "run.json");
    }
    int failed = describe_as[0] && results_write_json(&results, describe_as, run, &err) != 0;
    if (dist.rank == 0 && dist.mode != DIST_SHARD)
        fprintf(stderr, "hymeval run: %d task(s) from %s on %s (%s), results in %s\n", tf.n, tf.path, a.model_dir,
                backend->device, out_dir);
    if (dist.mode != DIST_SINGLE)
        fprintf(stderr, "hymeval run: %s %d of %d on %s (device index %d): %d of %d examples, estimated cost %lld\n",
                dist.mode == DIST_MPI ? "rank" : "shard", dist.rank, dist.size, dist.host, dist.device_index,
                plan.share_examples[dist.rank], plan.assigned, (long long)plan.share_cost[dist.rank]);

    for (int i = 0; i < plan.n_tasks && !failed; i++) {
        PlannedTask *pt = &plan.tasks[i];
        if (pt->n_mine == 0) continue;
        const TaskDef *t = pt->task;
        Precision p = default_prec;
        if (t->precision[0]) precision_parse(t->precision, &p);
        Backend *b = backend_for(&models, p, &err);
        if (!b) {
            failed = 1;
            break;
        }
        Progress progress = {t->name, 0, 0, 0, now_seconds(), 0, isatty(2) && dist.mode != DIST_MPI};
        Runner runner = {b, &models, &results, t, task_kind_find(t->kind), &progress, a.batch, pt->mine};
        failed = run_task(&runner, &pt->list, pt->n, &err) != 0;
    }
    /* one status for the whole run: a rank that failed fails it, named */
    if (dist_agree(&dist, !failed, err.msg, plan.hash, NULL, &err)) {
        failed = 1;
        quiet = dist.mode == DIST_MPI && dist.rank != 0;
    }
    int merges = dist.mode != DIST_SHARD && dist.rank == 0;
    if (!failed && merges && finish_samples(&plan, out_dir, &err)) failed = 1;
    char ended[32];
    cJSON_AddStringToObject(run, "ended", iso_time(ended, sizeof ended));
    cJSON_AddBoolToObject(run, "complete", !failed);
    if (failed) cJSON_AddStringToObject(run, "error", err.msg);
    Err write_err;
    if (describe_as[0]) results_write_json(&results, describe_as, run, &write_err);
    if (failed) goto done;
    if (!merges) {
        if (dist.mode == DIST_SHARD)
            printf("shard %d of %d done: %s/%s; when every shard is done: hymeval merge %s --out %s\n",
                   dist.rank, dist.size, out_dir, results.append_name, out_dir, out_dir);
        rc = EXIT_OK;
        goto done;
    }

    cJSON *summary = results_summarize(&results, &err);
    if (!summary || results_write_json(&results, "summary.json", summary, &err)) {
        cJSON_Delete(summary);
        goto done;
    }
    print_summary(summary);
    cJSON_Delete(summary);
    /* the pictures and the human report are derived from the files above */
    if (report_write(out_dir, &err)) goto done;
    printf("\nresults: %s/ (run.json, samples.jsonl, summary.json, report.html, report.md)\n", out_dir);
    rc = EXIT_OK;
done:
    if (rc != EXIT_OK && !quiet) fprintf(stderr, "error: %s\n", err.msg);
    results_close(&results);
    modelset_free(&models);
    plan_free(&plan);
    cJSON_Delete(run);
    free(statuses);
    dist_finalize(&dist);
    taskfile_free(&tf);
    return rc;
}
