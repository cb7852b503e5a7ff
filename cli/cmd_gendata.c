/* cmd_gendata.c: `hymeval gen-data`: the examples a task file builds, written
   as training text (JSONL) instead of being run. This is how the project's
   own trained model (tools/train/) gets its data from exactly the generators
   the evaluation uses: haystacks, needles and questions, key-value and
   associative recall, SQuAD-C-style passages. Training files use other seeds
   than the suites, so no evaluation example is ever trained on. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "task.h"
#include "tokenizer.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: hymeval gen-data --tasks FILE --tokenizer DIR_OR_FILE --out FILE.jsonl\n"
            "                        [--repeat R] [--seed-offset S]\n\n"
            "Builds every example of every task in FILE (docs/TASKS.md; length targeting with the\n"
            "given tokenizer) without running a model, and writes one JSON object per example:\n"
            "  {\"task\", \"kind\", \"id\", \"seed\", \"prompt\", \"targets\": [...], \"stop\": [...],\n"
            "   \"prompt_tokens\", \"target_tokens\"}                     (generation tasks)\n"
            "  {\"task\", \"kind\", \"id\", \"seed\", \"contexts\": [...], \"continuations\": [...],\n"
            "   \"gold\"}                                                 (multiple choice)\n"
            "Measurement tasks (cache, rope_drift, erf, ...) have no text and are refused.\n"
            "--repeat R builds each task R times, with seed = its seed + S + k for k = 0..R-1\n"
            "(default R = 1, S = 0); ids get the suffix \"#k\".\n");
}

typedef struct {
    const char *tasks, *tokenizer, *out;
    long repeat, seed_offset;
} Options;

static int parse_args(int argc, char **argv, Options *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (strcmp(a, "--tasks") == 0 || strcmp(a, "--tokenizer") == 0 || strcmp(a, "--out") == 0 ||
            strcmp(a, "--repeat") == 0 || strcmp(a, "--seed-offset") == 0) {
            if (!(v = cli_value(argc, argv, &i))) return -1;
            if (strcmp(a, "--tasks") == 0) o->tasks = v;
            else if (strcmp(a, "--tokenizer") == 0) o->tokenizer = v;
            else if (strcmp(a, "--out") == 0) o->out = v;
            else if (strcmp(a, "--repeat") == 0) {
                if ((o->repeat = cli_long(a, v, 1, 1000000)) < 0) return -1;
            } else if ((o->seed_offset = cli_long(a, v, 0, 0x7fffffffL)) < 0) {
                return -1;
            }
        } else {
            fprintf(stderr, "error: unknown argument \"%s\"\n", a);
            return -1;
        }
    }
    if (!o->tasks || !o->tokenizer || !o->out) {
        fprintf(stderr, "error: gen-data needs --tasks, --tokenizer and --out\n");
        return -1;
    }
    return 0;
}

static cJSON *string_array(char **v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

/* One example as a JSON line; NULL on out of memory. */
static char *example_line(const TaskDef *t, const Example *ex, int copy) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    char id[192];
    snprintf(id, sizeof id, "%s#%d", ex->id, copy);
    cJSON_AddStringToObject(o, "task", t->name);
    cJSON_AddStringToObject(o, "kind", t->kind);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddNumberToObject(o, "seed", (double)t->seed);
    if (ex->request == REQ_GENERATE) {
        cJSON_AddStringToObject(o, "prompt", ex->prompt);
        cJSON_AddItemToObject(o, "targets", string_array(ex->targets, ex->n_targets));
        cJSON_AddItemToObject(o, "stop", string_array(ex->stop, ex->n_stop));
        cJSON_AddNumberToObject(o, "prompt_tokens", ex->prompt_tokens);
        cJSON_AddNumberToObject(o, "target_tokens", ex->target_tokens);
    } else {
        cJSON_AddItemToObject(o, "contexts", string_array(ex->contexts, ex->n_choices));
        cJSON_AddItemToObject(o, "continuations", string_array(ex->continuations, ex->n_choices));
        cJSON_AddNumberToObject(o, "gold", ex->gold);
    }
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return line;
}

static int write_task(FILE *f, const char *out_path, const TaskDef *base, const Tokenizer *tok, const Options *o,
                      long *written, Err *err) {
    const TaskKind *kind = task_kind_find(base->kind);
    if (kind->measure) {
        err_set(err, "%s:%d: task \"%s\" is of kind %s, a measurement: it has no text to write", base->file,
                base->line, base->name, base->kind);
        return -1;
    }
    for (long k = 0; k < o->repeat; k++) {
        TaskDef t = *base; /* shares the JSON; only the seed differs */
        t.seed = base->seed + (uint64_t)o->seed_offset + (uint64_t)k;
        ExampleList list = {0};
        if (kind->build(&t, tok, &list, err)) {
            examples_free(&list);
            return -1;
        }
        int n = t.limit > 0 && t.limit < list.n ? t.limit : list.n;
        for (int i = 0; i < n; i++) {
            char *line = example_line(&t, &list.items[i], (int)k);
            if (!line || fprintf(f, "%s\n", line) < 0) {
                free(line);
                examples_free(&list);
                err_set(err, "%s: cannot write (disk full?)", out_path);
                return -1;
            }
            free(line);
            (*written)++;
        }
        examples_free(&list);
    }
    return 0;
}

int cmd_gendata(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    Options o = {.repeat = 1};
    if (parse_args(argc, argv, &o)) {
        fprintf(stderr, "(hymeval gen-data --help for usage)\n");
        return EXIT_USAGE;
    }
    Err err;
    TaskFile tf = {0};
    if (taskfile_load(&tf, o.tasks, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        return EXIT_FAIL;
    }
    Tokenizer *tok = tokenizer_load(o.tokenizer, &err);
    if (!tok) {
        fprintf(stderr, "error: %s\n", err.msg);
        taskfile_free(&tf);
        return EXIT_FAIL;
    }
    int rc = EXIT_OK;
    FILE *f = fopen(o.out, "w");
    if (!f) {
        fprintf(stderr, "error: %s: cannot create\n", o.out);
        rc = EXIT_FAIL;
    }
    long written = 0;
    for (int i = 0; rc == EXIT_OK && i < tf.n; i++) {
        if (write_task(f, o.out, &tf.tasks[i], tok, &o, &written, &err)) {
            fprintf(stderr, "error: %s\n", err.msg);
            rc = EXIT_FAIL;
        }
    }
    if (f && fclose(f) != 0 && rc == EXIT_OK) {
        fprintf(stderr, "error: %s: cannot write\n", o.out);
        rc = EXIT_FAIL;
    }
    if (rc == EXIT_OK) fprintf(stderr, "%ld examples from %d task(s) written to %s\n", written, tf.n, o.out);
    tokenizer_free(tok);
    taskfile_free(&tf);
    return rc;
}
