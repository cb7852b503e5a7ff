/* cmd_measure.c: `hymeval erf`, `hymeval drift`, `hymeval cache` — one
   measurement kind (docs/tasks/measurements.md) on a checkpoint without
   writing a task file. The command writes the one-task file itself
   (OUT/task.jsonl: the kind's defaults, then every --set KEY=JSON) and runs
   it exactly as `hymeval run` would, so the results directory, the report,
   --resume and `compare` are those of any run. Field errors are the kind's
   own, naming the field. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"

typedef struct {
    const char *command, *kind, *what;
} MeasureCommand;

static const MeasureCommand measure_commands[] = {
    {"erf", "erf", "effective receptive field: erf_hymba (Eq. 5), mmd, erf95_perturb"},
    {"drift", "rope_drift", "RoPE drift of the four precision modes under a shift of every position id"},
    {"cache", "cache", "cache bytes per sequence: formula and the engine's allocations, design variants"},
};

/* Fields whose relative paths are taken from the current directory (the task
   file lives in OUT, and task paths are relative to their file). */
static const char *const path_fields[] = {"data", "base_config", "configs", NULL};

static void usage(FILE *out, const MeasureCommand *mc) {
    fprintf(out,
            "usage: hymeval %s [DIR] [--out OUT] [--device cpu|cuda] [--precision MODE] [--set KEY=JSON]...\n"
            "                  [--resume] [--batch B]\n\n"
            "%s (kind \"%s\", docs/tasks/measurements.md), on the checkpoint in DIR\n"
            "(default models/default). Writes OUT/task.jsonl with the one task — the kind's defaults,\n"
            "changed by each --set (a field of the kind and its value as JSON, e.g.\n"
            "--set 'lengths=[256,1024]' --set num_sequences=4) — and runs it as `hymeval run` does:\n"
            "OUT (default results/%s-<DIR name>) gets run.json, samples.jsonl, summary.json and the\n"
            "report; --resume finishes a killed run. Relative paths in --set values are taken from\n"
            "the current directory.\n",
            mc->command, mc->what, mc->kind, mc->command);
}

/* mkdir -p: every missing folder of path. */
static int make_dirs(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0777);
            *p = '/';
        }
    struct stat st;
    return mkdir(buf, 0777) == 0 || (stat(buf, &st) == 0 && S_ISDIR(st.st_mode)) ? 0 : -1;
}

/* Makes a relative path (string) absolute against the current directory. */
static int absolutize(cJSON *item) {
    if (!cJSON_IsString(item) || item->valuestring[0] == '/' || !item->valuestring[0]) return 0;
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return -1;
    size_t n = strlen(cwd) + strlen(item->valuestring) + 2;
    char *abs = malloc(n);
    if (!abs) return -1;
    snprintf(abs, n, "%s/%s", cwd, item->valuestring);
    cJSON_SetValuestring(item, abs);
    free(abs);
    return 0;
}

static int measure_main(const MeasureCommand *mc, int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout, mc);
        return EXIT_OK;
    }
    const char *dir = NULL, *out = NULL, *device = NULL, *precision = NULL, *batch = NULL;
    int resume = 0;
    cJSON *task = cJSON_CreateObject();
    cJSON_AddStringToObject(task, "name", mc->command);
    cJSON_AddStringToObject(task, "kind", mc->kind);
    int rc = EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (strcmp(a, "--out") == 0 && (v = cli_value(argc, argv, &i))) out = v;
        else if (strcmp(a, "--device") == 0 && (v = cli_value(argc, argv, &i))) device = v;
        else if (strcmp(a, "--precision") == 0 && (v = cli_value(argc, argv, &i))) precision = v;
        else if (strcmp(a, "--batch") == 0 && (v = cli_value(argc, argv, &i))) batch = v;
        else if (strcmp(a, "--resume") == 0) resume = 1;
        else if (strcmp(a, "--set") == 0 && (v = cli_value(argc, argv, &i))) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v) {
                fprintf(stderr, "error: --set expects KEY=JSON, got \"%s\"\n", v);
                goto done;
            }
            char key[128];
            snprintf(key, sizeof key, "%.*s", (int)(eq - v), v);
            if (!strcmp(key, "name") || !strcmp(key, "kind")) {
                fprintf(stderr, "error: --set %s: the command sets the task's %s\n", key, key);
                goto done;
            }
            cJSON *value = cJSON_Parse(eq + 1);
            if (!value) {
                fprintf(stderr, "error: --set %s: \"%s\" is not JSON (strings need quotes: %s='\"text\"')\n", key,
                        eq + 1, key);
                goto done;
            }
            for (int k = 0; path_fields[k]; k++)
                if (!strcmp(key, path_fields[k])) {
                    cJSON *item;
                    if (cJSON_IsArray(value)) cJSON_ArrayForEach(item, value) absolutize(item);
                    else absolutize(value);
                }
            cJSON_DeleteItemFromObjectCaseSensitive(task, key);
            cJSON_AddItemToObject(task, key, value);
        } else if (a[0] != '-' && !dir) {
            dir = a;
        } else {
            if (i < argc) fprintf(stderr, "error: unexpected argument \"%s\"\n", a);
            usage(stderr, mc);
            goto done;
        }
    }
    if (!dir) dir = "models/default";

    char out_buf[4096], task_path[4200];
    if (!out) {
        size_t n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/') n--;
        const char *base = dir;
        for (size_t k = 0; k < n; k++)
            if (dir[k] == '/') base = dir + k + 1;
        snprintf(out_buf, sizeof out_buf, "results/%s-%.*s", mc->command, (int)(dir + n - base), base);
        out = out_buf;
    }
    snprintf(task_path, sizeof task_path, "%s/samples.jsonl", out);
    if (!resume && access(task_path, F_OK) == 0) {
        /* the task file beside those results must stay the one they came from */
        fprintf(stderr, "error: %s already holds results (samples.jsonl); use --resume to finish that run, or another "
                        "--out\n", out);
        rc = EXIT_FAIL;
        goto done;
    }
    if (make_dirs(out)) {
        fprintf(stderr, "error: %s: cannot create the results directory\n", out);
        rc = EXIT_FAIL;
        goto done;
    }
    snprintf(task_path, sizeof task_path, "%s/task.jsonl", out);
    char *line = cJSON_PrintUnformatted(task);
    FILE *f = line ? fopen(task_path, "w") : NULL;
    if (!f || fprintf(f, "%s\n", line) < 0 || fclose(f) != 0) {
        fprintf(stderr, "error: %s: cannot write the task file\n", task_path);
        free(line);
        rc = EXIT_FAIL;
        goto done;
    }
    free(line);

    char *run_argv[16];
    int n = 0;
    run_argv[n++] = "run";
    run_argv[n++] = "--tasks", run_argv[n++] = task_path;
    run_argv[n++] = "--model", run_argv[n++] = (char *)dir;
    run_argv[n++] = "--out", run_argv[n++] = (char *)out;
    if (device) run_argv[n++] = "--device", run_argv[n++] = (char *)device;
    if (precision) run_argv[n++] = "--precision", run_argv[n++] = (char *)precision;
    if (batch) run_argv[n++] = "--batch", run_argv[n++] = (char *)batch;
    if (resume) run_argv[n++] = "--resume";
    run_argv[n] = NULL;
    rc = cmd_run(n, run_argv);
done:
    cJSON_Delete(task);
    return rc;
}

int cmd_erf(int argc, char **argv) { return measure_main(&measure_commands[0], argc, argv); }
int cmd_drift(int argc, char **argv) { return measure_main(&measure_commands[1], argc, argv); }
int cmd_cache(int argc, char **argv) { return measure_main(&measure_commands[2], argc, argv); }
