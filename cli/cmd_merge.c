/* cmd_merge.c: `hymeval merge`: the shards of one run (hymeval run --shard
   K/N, DESIGN.md §7) joined into the results directory one process would
   have written: samples.jsonl in canonical order, summary.json, run.json. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "jsonl.h"
#include "results.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: hymeval merge SOURCE... --out DIR\n\n"
            "Merges the shards of one run (hymeval run --shard K/N) into DIR as a single process\n"
            "writes it: samples.jsonl in the run's canonical order (task-file order, then example\n"
            "order), summary.json, and run.json listing every shard (host, examples, times).\n"
            "A SOURCE is a results directory (its samples.jsonl and parts/: the shards' lines and\n"
            "descriptions) or one part file, DIR/parts/shard-K-of-N.jsonl (its .json beside it).\n"
            "The shards must be of one run (same task file, model, precision, backend, --limit, --only) and\n"
            "together hold every example; an example found twice keeps its first line. When DIR is\n"
            "one of the sources, its parts/ is removed once the merge is written.\n");
}

typedef struct {
    char **paths; /* shard descriptions (DIR/parts/shard-K-of-N.json), each once */
    cJSON **json;
    int n, cap;
} Descriptions;

static void descriptions_free(Descriptions *d) {
    for (int i = 0; i < d->n; i++) {
        free(d->paths[i]);
        cJSON_Delete(d->json[i]);
    }
    free(d->paths), free(d->json);
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Whether a and b name the same existing file or directory. */
static int same_place(const char *a, const char *b) {
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

static int add_description(Descriptions *d, const char *path, Err *err) {
    for (int i = 0; i < d->n; i++)
        if (same_place(d->paths[i], path)) return 0;
    char *text = read_text_file(path, NULL, err);
    if (!text) return err_prefix(err, "a part file's description");
    cJSON *json = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(json, "order"))) {
        cJSON_Delete(json);
        return err_set(err, "%s: not a shard's description (no \"order\"); the parts of an mpirun run are merged by "
                       "the run itself: finish it with hymeval run --resume", path);
    }
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 8;
        char **paths = realloc(d->paths, sizeof *paths * (size_t)d->cap);
        if (paths) d->paths = paths;
        cJSON **jsons = realloc(d->json, sizeof *jsons * (size_t)d->cap);
        if (jsons) d->json = jsons;
        if (!paths || !jsons) {
            cJSON_Delete(json);
            return err_set(err, "out of memory");
        }
    }
    d->paths[d->n] = strdup(path);
    d->json[d->n++] = json;
    return 0;
}

/* The shard descriptions of every source: a directory's parts/ *.json, a
   part file's sibling .json. */
static int collect(Descriptions *d, char **sources, int n, Err *err) {
    for (int i = 0; i < n; i++) {
        if (is_dir(sources[i])) {
            char **paths;
            int count, rc = 0;
            if (results_part_descriptions(sources[i], &paths, &count, err)) return -1;
            for (int k = 0; rc == 0 && k < count; k++) rc = add_description(d, paths[k], err);
            results_free_paths(paths, count);
            if (rc) return -1;
            continue;
        }
        size_t len = strlen(sources[i]);
        if (len < 6 || strcmp(sources[i] + len - 6, ".jsonl") != 0)
            return err_set(err, "%s: expected a results directory or a part file (DIR/parts/shard-K-of-N.jsonl)",
                           sources[i]);
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%.*s.json", (int)(len - 6), sources[i]);
        if (add_description(d, path, err)) return -1;
    }
    if (d->n == 0) return err_set(err, "no shard found in the sources (no parts/shard-K-of-N.json)");
    return 0;
}

/* Every description must be of the run the first one describes. */
static int check_one_run(const Descriptions *d, Err *err) {
    const cJSON *order = cJSON_GetObjectItemCaseSensitive(d->json[0], "order");
    for (int i = 1; i < d->n; i++) {
        char which[64];
        if (!results_same_run(d->json[0], d->json[i], which, sizeof which))
            return err_set(err, "%s and %s are shards of different runs (they differ in \"%s\")", d->paths[0],
                           d->paths[i], which);
        if (!cJSON_Compare(order, cJSON_GetObjectItemCaseSensitive(d->json[i], "order"), 1))
            return err_set(err, "%s and %s built different examples from the same task file (another hymeval "
                           "version or data?)", d->paths[0], d->paths[i]);
    }
    return 0;
}

static const char *string_of(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Which shards are there, for a message about missing examples. */
static void shards_found(const Descriptions *d, char *out, size_t len) {
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; i < d->n && used + 1 < len; i++) {
        const char *name = strrchr(d->paths[i], '/');
        int complete = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d->json[i], "complete"));
        int n = snprintf(out + used, len - used, "%s%s (%s)", i ? ", " : "", name ? name + 1 : d->paths[i],
                         complete ? "complete" : "not finished");
        if (n > 0) used += (size_t)n;
    }
}

/* run.json of the merged run: the first shard's description of the run,
   with every shard's ranks, the earliest start and the latest end. */
static cJSON *merged_run(const Descriptions *d, int argc, char **argv) {
    static const char *const per_shard[] = {"order", "ranks", "sharding", "command", "started",
                                            "ended", "resumed", "complete", "error"};
    cJSON *run = cJSON_Duplicate(d->json[0], 1);
    for (size_t k = 0; k < sizeof per_shard / sizeof *per_shard; k++)
        cJSON_DeleteItemFromObjectCaseSensitive(run, per_shard[k]);
    cJSON *cmd = cJSON_AddArrayToObject(run, "command");
    cJSON_AddItemToArray(cmd, cJSON_CreateString("hymeval"));
    for (int i = 0; i < argc; i++) cJSON_AddItemToArray(cmd, cJSON_CreateString(argv[i]));
    const char *started = "", *ended = "";
    int resumed = 0;
    cJSON *ranks = cJSON_CreateArray(), *parts = cJSON_CreateArray();
    for (int i = 0; i < d->n; i++) {
        const cJSON *s = d->json[i], *rank;
        if (!started[0] || strcmp(string_of(s, "started"), started) < 0) started = string_of(s, "started");
        if (strcmp(string_of(s, "ended"), ended) > 0) ended = string_of(s, "ended");
        resumed |= cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "resumed"));
        cJSON_ArrayForEach(rank, cJSON_GetObjectItemCaseSensitive(s, "ranks"))
            cJSON_AddItemToArray(ranks, cJSON_Duplicate(rank, 1));
        cJSON_AddItemToArray(parts, cJSON_CreateString(d->paths[i]));
    }
    cJSON_AddStringToObject(run, "started", started);
    cJSON_AddBoolToObject(run, "resumed", resumed);
    cJSON_AddItemToObject(run, "ranks", ranks);
    cJSON *sharding = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(d->json[0], "sharding"), 1);
    if (!sharding) sharding = cJSON_CreateObject();
    cJSON_DeleteItemFromObjectCaseSensitive(sharding, "plan_sha256");
    cJSON_AddItemToObject(sharding, "merged_from", parts);
    cJSON_AddItemToObject(run, "sharding", sharding);
    char now[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_AddStringToObject(run, "merged", now);
    cJSON_AddStringToObject(run, "ended", ended);
    cJSON_AddBoolToObject(run, "complete", 1);
    return run;
}

int cmd_merge(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    const char *out_dir = NULL;
    char **sources = calloc((size_t)argc, sizeof *sources);
    int n_sources = 0;
    if (!sources) return EXIT_FAIL;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "--out") == 0) {
            if (!(v = cli_value(argc, argv, &i))) break;
            out_dir = v;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "error: unexpected argument \"%s\"\n", argv[i]);
            out_dir = NULL;
            break;
        } else {
            sources[n_sources++] = argv[i];
        }
    }
    if (!out_dir || n_sources == 0) {
        if (!out_dir) fprintf(stderr, "error: --out DIR is required\n");
        else fprintf(stderr, "error: name at least one SOURCE\n");
        usage(stderr);
        free(sources);
        return EXIT_USAGE;
    }
    Err err;
    Descriptions d = {0};
    cJSON *order = NULL, *run = NULL, *summary = NULL;
    int rc = EXIT_FAIL, out_is_source = 0, duplicates = 0;
    for (int i = 0; i < n_sources; i++) out_is_source |= is_dir(sources[i]) && same_place(sources[i], out_dir);
    char out_samples[PATH_MAX];
    snprintf(out_samples, sizeof out_samples, "%s/samples.jsonl", out_dir);
    struct stat st;
    if (!out_is_source && stat(out_samples, &st) == 0 && st.st_size > 0) {
        err_set(&err, "%s already holds results; merge into another --out", out_dir);
        goto done;
    }
    if (collect(&d, sources, n_sources, &err) || check_one_run(&d, &err)) goto done;
    order = cJSON_GetObjectItemCaseSensitive(d.json[0], "order");
    if (results_merge((const char *const *)sources, n_sources, order, out_dir, &duplicates, &err)) {
        char found[1024];
        Err cause = err;
        shards_found(&d, found, sizeof found);
        err_set(&err, "%s; shards found: %s; run (or --resume) the missing shards, then merge again", cause.msg, found);
        goto done;
    }
    Results out = {0};
    snprintf(out.dir, sizeof out.dir, "%s", out_dir);
    summary = results_summarize(&out, &err);
    run = merged_run(&d, argc, argv);
    if (!summary || results_write_json(&out, "summary.json", summary, &err) ||
        results_write_json(&out, "run.json", run, &err))
        goto done;
    if (out_is_source && results_remove_parts(out_dir, &err)) goto done;
    if (duplicates) fprintf(stderr, "note: %d example(s) had more than one line; the first was kept\n", duplicates);
    int examples = 0;
    const cJSON *task;
    cJSON_ArrayForEach(task, order) examples += cJSON_GetArraySize(task);
    printf("merged %d shard(s): %d examples in %s/ (run.json, samples.jsonl, summary.json)\n", d.n, examples, out_dir);
    rc = EXIT_OK;
done:
    if (rc != EXIT_OK) fprintf(stderr, "error: %s\n", err.msg);
    cJSON_Delete(run);
    cJSON_Delete(summary);
    descriptions_free(&d);
    free(sources);
    return rc;
}
