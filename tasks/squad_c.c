/* squad_c.c: the `squad_c` kind, SQuAD-Completion as lm-eval's
   `squad_completion` runs it (docs/tasks/squad_c.md; research/eval-anchors.md §4):

     prompt   = shots + text      (v0: the `text` field raw; v1: text.strip())
     shot     = text + " " + value + "\n\n"   (lm-eval's target and few-shot delimiters)
     request  = greedy until "\n", at most 48 new tokens
     contains = the gold value (v0 raw, v1 stripped) occurs in the generation,
                case-insensitive, as a literal string

   Shots come from the same file: the ids a record lists in its own
   `fewshot_ids`, else the task's `fewshot_ids`, else `num_fewshot` documents
   drawn with the task seed (k + 1 drawn, the document itself dropped, as
   lm-eval's sampler does). `window_tokens` cuts the passage around the
   answer for JRT-style length sweeps. */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinds.h"
#include "loaders.h"
#include "scoring.h"

static const char *const squad_c_fields[] = {"version",       "format", "num_fewshot",  "fewshot_ids",
                                             "window_tokens", "until",  "squad_prompt", NULL};
static const char *const format_names[] = {"based", "squad_v2", NULL};
static const char *const prompt_names[] = {"statement", "question", NULL};

enum { DEFAULT_MAX_NEW_TOKENS = 48, MAX_FEWSHOT = 64, MAX_WINDOW = 1 << 24 };

typedef struct {
    int version;
    const char *format;
    const char *squad_prompt;
    int num_fewshot;         /* -1 when not given */
    char **fewshot_ids;
    int n_fewshot_ids;
    int window_tokens;       /* 0 = off */
    char **until;
    int n_until;
} SqOptions;

static void sq_options_free(SqOptions *o) {
    strv_free(o->fewshot_ids, o->n_fewshot_ids);
    strv_free(o->until, o->n_until);
    memset(o, 0, sizeof *o);
}

static int sq_options(const TaskDef *t, SqOptions *o, Err *err) {
    memset(o, 0, sizeof *o);
    if (task_int(t, "version", 0, 0, 1, &o->version, err) ||
        task_string(t, "format", "based", format_names, &o->format, err) ||
        task_string(t, "squad_prompt", "statement", prompt_names, &o->squad_prompt, err) ||
        task_int(t, "num_fewshot", -1, 0, MAX_FEWSHOT, &o->num_fewshot, err) ||
        task_int(t, "window_tokens", 0, 0, MAX_WINDOW, &o->window_tokens, err) ||
        task_string_list(t, "fewshot_ids", &o->fewshot_ids, &o->n_fewshot_ids, err) ||
        task_string_list(t, "until", &o->until, &o->n_until, err))
        goto fail;
    if (!task_has(t, "num_fewshot")) o->num_fewshot = -1;
    if (task_has(t, "squad_prompt") && strcmp(o->format, "squad_v2") != 0) {
        task_field_error(t, "squad_prompt", err, "applies only to format \"squad_v2\"");
        goto fail;
    }
    if (task_has(t, "window_tokens") && o->window_tokens < 8) {
        task_field_error(t, "window_tokens", err, "expected at least 8 tokens (or leave it out), got %d",
                         o->window_tokens);
        goto fail;
    }
    for (int i = 0; i < o->n_until; i++)
        if (!o->until[i][0]) {
            task_field_error(t, "until", err, "element [%d]: an empty stop string", i);
            goto fail;
        }
    if (!task_has(t, "until") && strv_push(&o->until, &o->n_until, "\n")) {
        err_set(err, "out of memory");
        goto fail;
    }
    if (!t->data[0]) {
        task_field_error(t, "data", err, "missing (a Based-format .jsonl / .jsonl.gz, or a SQuAD v2.0 .json)");
        goto fail;
    }
    return 0;
fail:
    sq_options_free(o);
    return -1;
}

static int sq_validate(const TaskDef *t, Err *err) {
    SqOptions o;
    if (sq_options(t, &o, err)) return -1;
    sq_options_free(&o);
    if (t->metric[0] && strcmp(t->metric, "contains") != 0)
        return task_field_error(t, "metric", err, "expected \"contains\", got \"%s\"", t->metric);
    return 0;
}

/* ---------------------------------------------------------------- documents */

typedef struct {
    char *id;            /* Based: the record index; squad_v2: the question id (borrowed) */
    const char *doc_id;  /* Based: the file's doc_id, or NULL (borrowed) */
    char *text;          /* the prompt of this document, version applied */
    char *value;         /* the gold answer, version applied */
    size_t tail_at;      /* where the statement to complete starts in text (for window cuts) */
    char **shot_ids;     /* the record's own fewshot_ids (borrowed) */
    int n_shot_ids;
    int line;            /* Based: the record's line */
    const char *json_path; /* squad_v2: the question's JSON path (borrowed) */
} SqDoc;

/* "file:line" or "file: $.json.path", for messages. */
static void doc_where(const TaskDef *t, const SqDoc *d, char *out, size_t cap) {
    int n = d->json_path ? snprintf(out, cap, "%s: ", t->data) : snprintf(out, cap, "%s:%d", t->data, d->line);
    if (d->json_path && n > 0 && (size_t)n < cap) snprintf(out + n, cap - (size_t)n, "%s", d->json_path);
}

typedef struct {
    SqDoc *docs;
    int n;
    BasedSet based;
    SquadSet squad;
} SqData;

static void sq_data_free(SqData *d) {
    for (int i = 0; d->docs && i < d->n; i++) {
        free(d->docs[i].text);
        free(d->docs[i].value);
    }
    free(d->docs);
    based_set_free(&d->based);
    squad_set_free(&d->squad);
    memset(d, 0, sizeof *d);
}

/* Where the statement to complete starts in a Based `text`: right after the
   record's `context` when text begins with it, else at the last newline,
   else at the space after the last sentence end (". ", "? ", "! "); with
   none of these the whole text counts as passage. */
static size_t statement_start(const char *text, const char *context) {
    size_t n = strlen(text);
    if (context && context[0] && strncmp(text, context, strlen(context)) == 0) return strlen(context);
    size_t end = n;
    while (end > 0 && isspace((unsigned char)text[end - 1])) end--;
    for (size_t i = end; i > 0; i--)
        if (text[i - 1] == '\n') return i - 1;
    for (size_t i = end; i > 1; i--)
        if (text[i - 1] == ' ' && (text[i - 2] == '.' || text[i - 2] == '?' || text[i - 2] == '!')) return i - 1;
    return n;
}

/* v1 strips the prompt and the gold; tail_at moves with the stripped start. */
static int apply_version(SqDoc *d, int version, const char *raw_text, const char *raw_value, size_t tail_at) {
    if (version == 0) {
        d->text = xstrdup(raw_text);
        d->value = xstrdup(raw_value);
        d->tail_at = tail_at;
    } else {
        d->text = py_strip(raw_text);
        d->value = py_strip(raw_value);
        if (d->text) {
            const char *found = strstr(raw_text, d->text);
            size_t lead = found ? (size_t)(found - raw_text) : 0;
            d->tail_at = tail_at > lead ? tail_at - lead : 0;
            if (d->tail_at > strlen(d->text)) d->tail_at = strlen(d->text);
        }
    }
    return d->text && d->value ? 0 : -1;
}

static int load_based_docs(const TaskDef *t, const SqOptions *o, SqData *d, Err *err) {
    if (load_based_jsonl(t->data, &d->based, err)) return -1;
    d->docs = calloc((size_t)d->based.n, sizeof *d->docs);
    if (!d->docs) return err_set(err, "out of memory");
    for (int i = 0; i < d->based.n; i++) {
        const BasedRecord *r = &d->based.items[i];
        SqDoc *doc = &d->docs[d->n++];
        doc->id = r->id;
        doc->doc_id = r->doc_id;
        doc->shot_ids = r->fewshot_ids;
        doc->n_shot_ids = r->n_fewshot_ids;
        doc->line = r->line;
        if (apply_version(doc, o->version, r->text, r->value, statement_start(r->text, r->context)))
            return err_set(err, "out of memory");
    }
    return 0;
}

/* SQuAD v2.0 JSON -> completion form (answerable questions only):
     statement: text = context + " " + statement (the question rewritten as a
                statement that ends before the answer, a hymeval extension
                field of each question, as the Based authors rewrote them)
     question:  text = context + "\n\nQuestion: " + question + "\nAnswer:"
   value = the first listed answer. */
static int load_squad_docs(const TaskDef *t, const SqOptions *o, SqData *d, Err *err) {
    if (load_squad_v2(t->data, 1, &d->squad, err)) return -1;
    d->docs = calloc((size_t)d->squad.n_qas, sizeof *d->docs);
    if (!d->docs) return err_set(err, "out of memory");
    int statement = strcmp(o->squad_prompt, "statement") == 0;
    for (int i = 0; i < d->squad.n_qas; i++) {
        const SquadQA *q = &d->squad.qas[i];
        const char *context = d->squad.paragraphs[q->paragraph].context;
        SqDoc *doc = &d->docs[d->n++];
        doc->id = q->id;
        doc->json_path = q->path;
        if (statement && !q->statement) {
            char where[4400];
            doc_where(t, doc, where, sizeof where);
            return err_set(err, "%s: field \"statement\": missing (squad_prompt \"statement\" needs every answerable "
                                "question rewritten as a statement to complete; or set squad_prompt \"question\")",
                           where);
        }
        size_t len = strlen(context) + strlen(statement ? q->statement : q->question) + 32;
        char *text = malloc(len);
        if (!text) return err_set(err, "out of memory");
        if (statement) snprintf(text, len, "%s %s", context, q->statement);
        else snprintf(text, len, "%s\n\nQuestion: %s\nAnswer:", context, q->question);
        int rc = apply_version(doc, o->version, text, q->answers[0], strlen(context));
        free(text);
        if (rc) return err_set(err, "out of memory");
    }
    return 0;
}

static int find_doc(const SqData *d, const char *id) {
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->docs[i].id, id) == 0) return i;
    return -1;
}

/* ---------------------------------------------------------------- window cut */

/* First ASCII-case-insensitive occurrence of needle in hay[0..n), or -1. */
static long find_nocase(const char *hay, size_t n, const char *needle) {
    size_t m = strlen(needle);
    if (m == 0 || m > n) return m == 0 ? 0 : -1;
    for (size_t i = 0; i + m <= n; i++) {
        size_t j = 0;
        while (j < m && tolower((unsigned char)hay[i + j]) == tolower((unsigned char)needle[j])) j++;
        if (j == m) return (long)i;
    }
    return -1;
}

/* JRT's cut (HazyResearch/prefix-linear-attention, truncate_context): the
   passage is tokenised (no BOS); the answer's first ASCII-case-insensitive
   occurrence gives token position a = len(tokens(passage[:answer])); the
   window keeps tokens [a - w/2, a - w/2 + w) (w = window_tokens), decoded back
   to text. Unlike JRT, a window that would run past either end of the passage
   slides inwards, so a cut passage always holds exactly w tokens; an answer
   not found keeps the passage's last w tokens. The statement after the passage
   is always kept. Replaces doc->text; fills `info`. */
static int window_cut(const Tokenizer *tok, SqDoc *doc, int window, cJSON *info, Err *err) {
    const char *text = doc->text;
    size_t tail = doc->tail_at;
    int32_t *ids = NULL, *prefix_ids = NULL;
    size_t n_ids = 0, n_prefix = 0;
    if (tokenizer_encode(tok, text, tail, 0, &ids, &n_ids, err)) return -1;
    char *needle = py_strip(doc->value); /* v0 values may carry a leading space */
    if (!needle) {
        free(ids);
        return err_set(err, "out of memory");
    }
    long answer = needle[0] ? find_nocase(text, tail, needle) : -1;
    free(needle);
    size_t a = n_ids; /* answer not in the passage: keep its end, next to the statement */
    if (answer >= 0) {
        if (tokenizer_encode(tok, text, (size_t)answer, 0, &prefix_ids, &n_prefix, err)) {
            free(ids);
            return -1;
        }
        a = n_prefix < n_ids ? n_prefix : n_ids;
        free(prefix_ids);
    }
    cJSON_AddBoolToObject(info, "answer_found", answer >= 0);
    cJSON_AddNumberToObject(info, "passage_tokens", (double)n_ids);
    if (n_ids <= (size_t)window) {
        cJSON_AddBoolToObject(info, "cut", 0);
        free(ids);
        return 0;
    }
    size_t half = (size_t)window / 2;
    size_t start = a > half ? a - half : 0;
    size_t end = start + (size_t)window;
    if (end > n_ids) {
        end = n_ids;
        start = end - (size_t)window;
    }
    char *kept = tokenizer_decode(tok, ids + start, end - start, 1);
    free(ids);
    if (!kept) return err_set(err, "out of memory");
    size_t kept_len = strlen(kept), tail_len = strlen(text + tail);
    char *cut = malloc(kept_len + tail_len + 1);
    if (!cut) {
        free(kept);
        return err_set(err, "out of memory");
    }
    memcpy(cut, kept, kept_len);
    memcpy(cut + kept_len, text + tail, tail_len + 1);
    free(kept);
    free(doc->text);
    doc->text = cut;
    doc->tail_at = kept_len;
    cJSON_AddBoolToObject(info, "cut", 1);
    cJSON_AddNumberToObject(info, "start_token", (double)start);
    cJSON_AddNumberToObject(info, "end_token", (double)end);
    return 0;
}

/* ---------------------------------------------------------------- build */

/* The shots of document i (indices into d->docs), in prompt order. */
static int choose_shots(const TaskDef *t, const SqOptions *o, const SqData *d, int i, LdRng *rng, int *shots,
                        int *n_shots, Err *err) {
    const SqDoc *doc = &d->docs[i];
    char **ids = doc->n_shot_ids ? doc->shot_ids : o->fewshot_ids;
    int n_ids = doc->n_shot_ids ? doc->n_shot_ids : o->n_fewshot_ids;
    int k = o->num_fewshot;
    *n_shots = 0;
    if (n_ids > 0) {
        for (int j = 0; j < n_ids && (k < 0 || *n_shots < k); j++) {
            int s = find_doc(d, ids[j]);
            if (s < 0 && doc->n_shot_ids) {
                char where[4400];
                doc_where(t, doc, where, sizeof where);
                return err_set(err, "%s: field \"fewshot_ids\": no record with id \"%s\" in the file", where, ids[j]);
            }
            if (s < 0) return task_field_error(t, "fewshot_ids", err, "no record with id \"%s\" in %s", ids[j], t->data);
            if (s == i) continue; /* a document is never its own shot */
            if (*n_shots >= MAX_FEWSHOT) return task_field_error(t, "fewshot_ids", err, "more than %d shots", MAX_FEWSHOT);
            shots[(*n_shots)++] = s;
        }
        if (k > 0 && *n_shots < k)
            return task_field_error(t, "num_fewshot", err, "%d shots asked for, but document %s has only %d ids besides "
                                                           "itself",
                                    k, doc->id, *n_shots);
        return 0;
    }
    if (k <= 0) return 0;
    if (k + 1 > d->n)
        return task_field_error(t, "num_fewshot", err, "%d shots need at least %d documents in the file, it has %d", k,
                                k + 1, d->n);
    int drawn[MAX_FEWSHOT + 1];
    ld_sample(rng, d->n, k + 1, drawn);
    for (int j = 0; j <= k && *n_shots < k; j++)
        if (drawn[j] != i) shots[(*n_shots)++] = drawn[j];
    return 0;
}

static char *join_prompt(const SqData *d, const int *shots, int n_shots, const char *text) {
    size_t len = strlen(text) + 1;
    for (int s = 0; s < n_shots; s++) len += strlen(d->docs[shots[s]].text) + strlen(d->docs[shots[s]].value) + 3;
    char *p = malloc(len), *at = p;
    if (!p) return NULL;
    for (int s = 0; s < n_shots; s++)
        at += sprintf(at, "%s %s\n\n", d->docs[shots[s]].text, d->docs[shots[s]].value);
    strcpy(at, text);
    return p;
}

static int add_example(const TaskDef *t, const SqOptions *o, const Tokenizer *tok, const SqData *d, int i,
                       const int *shots, int n_shots, ExampleList *out, Err *err) {
    SqDoc doc = d->docs[i]; /* a copy: the window cut must not change the shots' text */
    doc.text = xstrdup(doc.text);
    if (!doc.text) return err_set(err, "out of memory");
    cJSON *extra = cJSON_CreateObject();
    if (!extra) {
        free(doc.text);
        return err_set(err, "out of memory");
    }
    cJSON_AddNumberToObject(extra, "version", o->version);
    if (doc.doc_id) cJSON_AddStringToObject(extra, "doc_id", doc.doc_id);
    if (n_shots > 0) {
        cJSON *ids = cJSON_AddArrayToObject(extra, "fewshot_ids");
        for (int s = 0; ids && s < n_shots; s++) cJSON_AddItemToArray(ids, cJSON_CreateString(d->docs[shots[s]].id));
    }
    if (o->window_tokens > 0) {
        cJSON *info = cJSON_AddObjectToObject(extra, "window");
        cJSON_AddNumberToObject(info, "tokens", o->window_tokens);
        if (window_cut(tok, &doc, o->window_tokens, info, err)) {
            char where[4400];
            doc_where(t, &doc, where, sizeof where);
            free(doc.text);
            cJSON_Delete(extra);
            return err_prefix(err, "%s", where);
        }
    }
    Example *ex = examples_push(out, err);
    if (!ex) {
        free(doc.text);
        cJSON_Delete(extra);
        return -1;
    }
    ex->extra = extra;
    ex->request = REQ_GENERATE;
    snprintf(ex->id, sizeof ex->id, "%s", doc.id);
    ex->prompt = join_prompt(d, shots, n_shots, doc.text);
    free(doc.text);
    ex->max_new_tokens = t->max_new_tokens > 0 ? t->max_new_tokens : DEFAULT_MAX_NEW_TOKENS;
    if (o->window_tokens > 0) snprintf(ex->group, sizeof ex->group, "%d", o->window_tokens);
    if (!ex->prompt || strv_push(&ex->targets, &ex->n_targets, doc.value)) return err_set(err, "out of memory");
    for (int s = 0; s < o->n_until; s++)
        if (strv_push(&ex->stop, &ex->n_stop, o->until[s])) return err_set(err, "out of memory");
    if (tok) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (tokenizer_encode(tok, ex->prompt, strlen(ex->prompt), ex->add_bos, &ids, &n, err)) return -1;
        free(ids);
        ex->prompt_tokens = n > INT_MAX ? INT_MAX : (int)n;
    }
    return 0;
}

static int sq_build(const TaskDef *t, const Tokenizer *tok, ExampleList *out, Err *err) {
    SqOptions o;
    SqData d;
    memset(&d, 0, sizeof d);
    if (sq_options(t, &o, err)) return -1;
    int rc;
    if (o.window_tokens > 0 && !tok)
        rc = task_field_error(t, "window_tokens", err, "needs the model's tokenizer");
    else if (strcmp(o.format, "based") == 0)
        rc = load_based_docs(t, &o, &d, err);
    else
        rc = load_squad_docs(t, &o, &d, err);
    LdRng rng;
    ld_rng_seed(&rng, t->seed);
    for (int i = 0; rc == 0 && i < d.n; i++) {
        int shots[MAX_FEWSHOT], n_shots = 0;
        rc = choose_shots(t, &o, &d, i, &rng, shots, &n_shots, err);
        if (rc == 0) rc = add_example(t, &o, tok, &d, i, shots, n_shots, out, err);
    }
    sq_data_free(&d);
    sq_options_free(&o);
    return rc;
}

/* ---------------------------------------------------------------- score */

static int sq_score(const TaskDef *t, const Example *ex, const Prediction *p, Scores *out, Err *err) {
    (void)t;
    if (ex->n_targets < 1) return err_set(err, "example %s: no gold value", ex->id);
    const char *pred = p && p->text ? p->text : "";
    scores_add(out, "contains", text_contains(pred, ex->targets[0], 1) ? 1.0 : 0.0);
    return 0;
}

const TaskKind kind_squad_c = {
    .name = "squad_c",
    .fields = squad_c_fields,
    .validate = sq_validate,
    .build = sq_build,
    .score = sq_score,
};
