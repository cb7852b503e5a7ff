/* multiple_choice.c: the `multiple_choice` kind, the commonsense tasks scored
   by log-likelihood exactly as lm-evaluation-harness builds them
   (docs/tasks/multiple_choice.md; research/eval-anchors.md §1.3):

     piqa           "Question: {goal}\nAnswer:"      -> [sol1, sol2]
     arc_easy/...   "Question: {question}\nAnswer:"  -> choices.text, gold = answerKey's index
     hellaswag      preprocess(activity_label + ": " + ctx_a + " " + capitalize(ctx_b))
                                                      -> [preprocess(e) for e in endings]
     winogrande     partial scoring: context_i = sentence[:blank] + option_i,
                    continuation = sentence[blank + 1:].strip() (shared)
     openbookqa     question_stem                    -> choices.text, gold = answerKey's index

   Every choice is one (context, " " + continuation) pair: lm-eval's target
   delimiter is a space. Few-shot examples are "{context} {gold choice}"
   joined and followed by "\n\n". acc = argmax LL; acc_norm = argmax LL /
   len(choice) in code points; acc_bytes = argmax LL / UTF-8 bytes; ties go to
   the first index, as numpy.argmax does. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinds.h"
#include "loaders.h"

static const char *const mc_fields[] = {"dataset", "format", "num_fewshot", "fewshot_data", "labels", "fewshot_labels",
                                        NULL};
static const char *const dataset_names[] = {"piqa",      "arc_easy",   "arc_challenge", "hellaswag",
                                            "winogrande", "openbookqa", NULL};
static const char *const format_names[] = {"auto", "hf", "original", NULL};

enum { MAX_FEWSHOT = 64 };

typedef struct {
    const char *dataset_name;
    McDataset ds;
    McFormat fmt;
    int num_fewshot;
    char labels[4096];          /* resolved paths, "" when not set */
    char fewshot_data[4096];
    char fewshot_labels[4096];
} McOptions;

/* An optional path field, resolved against the task file's directory. */
static int path_field(const TaskDef *t, const char *field, char *out, size_t cap, Err *err) {
    const char *value = NULL;
    out[0] = 0;
    if (task_string(t, field, NULL, NULL, &value, err)) return -1;
    if (!value) return 0;
    if (!value[0]) return task_field_error(t, field, err, "expected a non-empty path");
    if (resolve_relative(t->file, value, out, cap))
        return task_field_error(t, field, err, "the resolved path is too long");
    FILE *f = fopen(out, "rb");
    if (!f) return task_field_error(t, field, err, "cannot read \"%s\" (relative to the task file)", out);
    fclose(f);
    return 0;
}

static int mc_options(const TaskDef *t, McOptions *o, Err *err) {
    memset(o, 0, sizeof *o);
    const char *format = NULL;
    if (!task_has(t, "dataset"))
        return task_field_error(t, "dataset", err, "missing (one of piqa, arc_easy, arc_challenge, hellaswag, "
                                                   "winogrande, openbookqa)");
    if (task_string(t, "dataset", NULL, dataset_names, &o->dataset_name, err) ||
        task_string(t, "format", "auto", format_names, &format, err) ||
        task_int(t, "num_fewshot", 0, 0, MAX_FEWSHOT, &o->num_fewshot, err) ||
        path_field(t, "labels", o->labels, sizeof o->labels, err) ||
        path_field(t, "fewshot_data", o->fewshot_data, sizeof o->fewshot_data, err) ||
        path_field(t, "fewshot_labels", o->fewshot_labels, sizeof o->fewshot_labels, err))
        return -1;
    mc_dataset_from_name(o->dataset_name, &o->ds);
    mc_format_from_name(format, &o->fmt);
    if (!t->data[0]) return task_field_error(t, "data", err, "missing (the dataset file, .jsonl or .jsonl.gz)");
    if (o->labels[0] && o->ds != MC_PIQA)
        return task_field_error(t, "labels", err, "only PIQA's original release keeps its labels in a separate file");
    if (o->fewshot_labels[0] && !o->fewshot_data[0])
        return task_field_error(t, "fewshot_labels", err, "set only together with fewshot_data");
    if (o->fewshot_data[0] && o->num_fewshot == 0)
        return task_field_error(t, "fewshot_data", err, "set, but num_fewshot is 0");
    return 0;
}

static int mc_validate(const TaskDef *t, Err *err) {
    McOptions o;
    if (mc_options(t, &o, err)) return -1;
    if (t->metric[0]) {
        int ok = strcmp(t->metric, "acc") == 0 ||
                 (o.ds != MC_WINOGRANDE && (strcmp(t->metric, "acc_norm") == 0 || strcmp(t->metric, "acc_bytes") == 0));
        if (!ok)
            return task_field_error(t, "metric", err, "expected %s for %s, got \"%s\"",
                                    o.ds == MC_WINOGRANDE ? "acc" : "acc, acc_norm or acc_bytes", o.dataset_name,
                                    t->metric);
    }
    return 0;
}

/* ---------------------------------------------------------------- strings */

/* A growable string; on allocation failure it turns NULL and stays so. */
typedef struct {
    char *s;
    size_t len, cap;
} Str;

static void str_add_n(Str *b, const char *s, size_t n) {
    if (b->cap == (size_t)-1) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            free(b->s);
            b->s = NULL;
            b->cap = (size_t)-1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void str_add(Str *b, const char *s) { str_add_n(b, s, strlen(s)); }

/* The finished string (malloc'd; "" if nothing was added), or NULL on OOM. */
static char *str_take(Str *b) {
    if (b->cap == (size_t)-1) return NULL;
    if (!b->s) return xstrdup("");
    return b->s;
}

/* Python's s.replace(from, to): non-overlapping, left to right. */
static char *replace_all(const char *s, const char *from, const char *to) {
    Str b = {0};
    size_t from_len = strlen(from);
    const char *p = s, *hit;
    while ((hit = strstr(p, from)) != NULL) {
        str_add_n(&b, p, (size_t)(hit - p));
        str_add(&b, to);
        p = hit + from_len;
    }
    str_add(&b, p);
    return str_take(&b);
}

/* Python's re.sub("\\[.*?\\]", "", s): from each "[" to the nearest "]"
   with no newline in between ('.' does not match "\n"). */
static char *remove_brackets(const char *s) {
    Str b = {0};
    const char *p = s;
    while (*p) {
        if (*p == '[') {
            const char *q = p + 1;
            while (*q && *q != ']' && *q != '\n') q++;
            if (*q == ']') {
                p = q + 1;
                continue;
            }
        }
        str_add_n(&b, p, 1);
        p++;
    }
    return str_take(&b);
}

/* lm-eval hellaswag utils.preprocess: strip; " [title]" -> ". "; drop
   "[...]" brackets; "  " -> " " (one pass). */
static char *hellaswag_preprocess(const char *text) {
    char *a = py_strip(text);
    char *b = a ? replace_all(a, " [title]", ". ") : NULL;
    char *c = b ? remove_brackets(b) : NULL;
    char *d = c ? replace_all(c, "  ", " ") : NULL;
    free(a);
    free(b);
    free(c);
    return d;
}

/* Simple case mappings (Python's for these ranges, without its multi-
   character special cases such as "ß" or final sigma): ASCII, Latin-1,
   Latin Extended-A, Greek and Cyrillic. */
static uint32_t lower_cp(uint32_t c) {
    if (c < 0x80) return c >= 'A' && c <= 'Z' ? c + 32 : c;
    if ((c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;
    if (c >= 0x100 && c <= 0x137 && c != 0x130) return c | 1;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c & 1) ? c + 1 : c;
    if (c >= 0x14A && c <= 0x177) return c | 1;
    if (c == 0x178) return 0xFF;
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
    if (c == 0x386) return 0x3AC;
    if (c >= 0x388 && c <= 0x38A) return c + 37;
    if (c == 0x38C) return 0x3CC;
    if (c == 0x38E || c == 0x38F) return c + 63;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    return c;
}

static uint32_t upper_cp(uint32_t c) {
    if (c < 0x80) return c >= 'a' && c <= 'z' ? c - 32 : c;
    if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 32;
    if (c == 0xFF) return 0x178;
    if (c == 0xB5) return 0x39C;
    if (c >= 0x100 && c <= 0x137 && c != 0x131) return c & ~1u;
    if (c == 0x131) return 'I';
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c & 1) ? c : c - 1;
    if (c >= 0x14A && c <= 0x177) return c & ~1u;
    if (c == 0x17F) return 'S';
    if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
    if (c == 0x3C2) return 0x3A3;
    if (c == 0x3AC) return 0x386;
    if (c >= 0x3AD && c <= 0x3AF) return c - 37;
    if (c == 0x3CC) return 0x38C;
    if (c == 0x3CD || c == 0x3CE) return c - 63;
    if (c >= 0x430 && c <= 0x44F) return c - 32;
    if (c >= 0x450 && c <= 0x45F) return c - 80;
    return c;
}

static size_t decode_cp(const unsigned char *s, uint32_t *cp) {
    unsigned char c = s[0];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0) {
        *cp = 0xFFFFFFFFu; /* copied through as a raw byte */
        return 1;
    }
    uint32_t v = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFFFFFFu;
            return 1;
        }
        v = v << 6 | (s[i] & 0x3Fu);
    }
    *cp = v;
    return len;
}

static void add_cp(Str *b, uint32_t c) {
    char u[4];
    size_t n;
    if (c < 0x80) u[0] = (char)c, n = 1;
    else if (c < 0x800) u[0] = (char)(0xC0 | c >> 6), u[1] = (char)(0x80 | (c & 0x3F)), n = 2;
    else if (c < 0x10000)
        u[0] = (char)(0xE0 | c >> 12), u[1] = (char)(0x80 | ((c >> 6) & 0x3F)), u[2] = (char)(0x80 | (c & 0x3F)), n = 3;
    else
        u[0] = (char)(0xF0 | c >> 18), u[1] = (char)(0x80 | ((c >> 12) & 0x3F)), u[2] = (char)(0x80 | ((c >> 6) & 0x3F)),
        u[3] = (char)(0x80 | (c & 0x3F)), n = 4;
    str_add_n(b, u, n);
}

/* Python's str.capitalize(): the first character upper-cased, every other
   character lower-cased. */
static char *py_capitalize(const char *s) {
    Str b = {0};
    const unsigned char *u = (const unsigned char *)s;
    int first = 1;
    while (*u) {
        uint32_t cp;
        size_t len = decode_cp(u, &cp);
        if (cp == 0xFFFFFFFFu) str_add_n(&b, (const char *)u, 1);
        else add_cp(&b, first ? upper_cp(cp) : lower_cp(cp));
        first = 0;
        u += len;
    }
    return str_take(&b);
}

/* ---------------------------------------------------------------- one document */

/* What one document contributes: its context text (non-Winogrande) or its
   partial contexts (Winogrande), its choices, and its continuation. */
typedef struct {
    char *text;           /* doc_to_text; for Winogrande the sentence before the blank */
    char **choices;       /* the choice strings, without the delimiter */
    int n_choices;
    char *continuation;   /* Winogrande: the text after the blank, stripped */
} McDoc;

static void mc_doc_free(McDoc *d) {
    free(d->text);
    strv_free(d->choices, d->n_choices);
    free(d->continuation);
    memset(d, 0, sizeof *d);
}

static int mc_doc_build(McDataset ds, const McRecord *r, McDoc *d, Err *err) {
    memset(d, 0, sizeof *d);
    Str b = {0};
    switch (ds) {
    case MC_PIQA:
    case MC_ARC:
        str_add(&b, "Question: ");
        str_add(&b, r->question);
        str_add(&b, "\nAnswer:");
        d->text = str_take(&b);
        break;
    case MC_OBQA: d->text = xstrdup(r->question); break;
    case MC_HELLASWAG: {
        char *cap = py_capitalize(r->ctx_b);
        if (cap) {
            str_add(&b, r->activity_label);
            str_add(&b, ": ");
            str_add(&b, r->ctx_a);
            str_add(&b, " ");
            str_add(&b, cap);
            char *raw = str_take(&b);
            d->text = raw ? hellaswag_preprocess(raw) : NULL;
            free(raw);
        }
        free(cap);
        break;
    }
    case MC_WINOGRANDE: {
        const char *blank = strchr(r->question, '_'); /* the loader checked there is one */
        str_add_n(&b, r->question, (size_t)(blank - r->question));
        d->text = str_take(&b);
        d->continuation = py_strip(blank + 1);
        if (!d->continuation) goto oom;
        break;
    }
    }
    if (!d->text) goto oom;
    for (int i = 0; i < r->n_choices; i++) {
        char *c = ds == MC_HELLASWAG ? hellaswag_preprocess(r->choices[i]) : xstrdup(r->choices[i]);
        int rc = c ? strv_push(&d->choices, &d->n_choices, c) : -1;
        free(c);
        if (rc) goto oom;
    }
    return 0;
oom:
    mc_doc_free(d);
    return err_set(err, "out of memory building document %s", r->id);
}

/* One few-shot example as lm-eval's sampler writes it: text + " " + gold
   choice + "\n\n" (Winogrande: gold partial context + " " + continuation). */
static void add_shot(Str *b, McDataset ds, const McDoc *d, int gold) {
    str_add(b, d->text);
    if (ds == MC_WINOGRANDE) {
        str_add(b, d->choices[gold]);
        str_add(b, " ");
        str_add(b, d->continuation);
    } else {
        str_add(b, " ");
        str_add(b, d->choices[gold]);
    }
    str_add(b, "\n\n");
}

/* lm-eval's sampler: rnd.sample(pool, k) when the shots come from another
   split, rnd.sample(pool, k + 1) minus the document itself (first k kept)
   when they come from the evaluated file. One generator for all documents,
   in file order. Writes k indices into shots. */
static int draw_shots(LdRng *rng, int pool, int k, int self, int *shots, Err *err) {
    int want = self >= 0 ? k + 1 : k;
    if (want > pool)
        return err_set(err, "%d few-shot examples asked for, but the few-shot pool has %d documents%s", k, pool,
                       self >= 0 ? " (the evaluated one excluded)" : "");
    int drawn[MAX_FEWSHOT + 1];
    ld_sample(rng, pool, want, drawn);
    int kept = 0;
    for (int i = 0; i < want && kept < k; i++)
        if (drawn[i] != self) shots[kept++] = drawn[i];
    return 0;
}

/* ---------------------------------------------------------------- build */

typedef struct {
    McSet eval, shots_set;
    McDoc *eval_docs, *shot_docs; /* shot_docs aliases eval_docs when the shots come from the same file */
    int separate_shots;
} McData;

static void mc_data_free(McData *m) {
    for (int i = 0; m->eval_docs && i < m->eval.n; i++) mc_doc_free(&m->eval_docs[i]);
    free(m->eval_docs);
    if (m->separate_shots) {
        for (int i = 0; m->shot_docs && i < m->shots_set.n; i++) mc_doc_free(&m->shot_docs[i]);
        free(m->shot_docs);
        mc_set_free(&m->shots_set);
    }
    mc_set_free(&m->eval);
}

static int build_docs(McDataset ds, const McSet *set, McDoc **out, Err *err) {
    *out = calloc((size_t)set->n, sizeof **out);
    if (!*out) return err_set(err, "out of memory");
    for (int i = 0; i < set->n; i++)
        if (mc_doc_build(ds, &set->items[i], &(*out)[i], err)) return -1;
    return 0;
}

static int mc_load(const TaskDef *t, const McOptions *o, McData *m, Err *err) {
    memset(m, 0, sizeof *m);
    if (load_mc(t->data, o->ds, o->fmt, o->labels[0] ? o->labels : NULL, &m->eval, err) ||
        build_docs(o->ds, &m->eval, &m->eval_docs, err))
        return -1;
    m->shot_docs = m->eval_docs;
    if (o->fewshot_data[0]) {
        m->separate_shots = 1;
        if (load_mc(o->fewshot_data, o->ds, o->fmt, o->fewshot_labels[0] ? o->fewshot_labels : NULL, &m->shots_set,
                    err) ||
            build_docs(o->ds, &m->shots_set, &m->shot_docs, err))
            return -1;
    }
    return 0;
}

static int add_example(const McOptions *o, const McRecord *r, const McDoc *d, const char *prefix,
                       const McRecord *shot_records, const int *shots, int n_shots, ExampleList *out, Err *err) {
    Example *ex = examples_push(out, err);
    if (!ex) return -1;
    ex->request = REQ_LOGLIK;
    snprintf(ex->id, sizeof ex->id, "%s", r->id);
    ex->gold = r->gold;
    ex->add_bos = 1;
    int bad = 0;
    for (int i = 0; i < d->n_choices && !bad; i++) {
        Str ctx = {0}, cont = {0};
        str_add(&ctx, prefix);
        str_add(&ctx, d->text);
        str_add(&cont, " ");
        if (o->ds == MC_WINOGRANDE) {
            str_add(&ctx, d->choices[i]);
            str_add(&cont, d->continuation);
        } else {
            str_add(&cont, d->choices[i]);
        }
        char *c1 = str_take(&ctx), *c2 = str_take(&cont);
        int n1 = ex->n_choices, n2 = ex->n_choices;
        if (!c1 || !c2 || strv_push(&ex->contexts, &n1, c1)) {
            bad = 1;
        } else if (strv_push(&ex->continuations, &n2, c2)) {
            free(ex->contexts[n1 - 1]); /* n_choices counts complete pairs only */
            bad = 1;
        } else {
            ex->n_choices++;
        }
        free(c1);
        free(c2);
    }
    Str prompt = {0};
    str_add(&prompt, prefix);
    str_add(&prompt, o->ds == MC_WINOGRANDE ? r->question : d->text);
    ex->prompt = str_take(&prompt);
    if (bad || !ex->prompt || strv_push(&ex->targets, &ex->n_targets, d->choices[r->gold]))
        return err_set(err, "out of memory building example %s", r->id);
    ex->extra = cJSON_CreateObject();
    if (!ex->extra) return err_set(err, "out of memory");
    cJSON_AddStringToObject(ex->extra, "dataset", o->dataset_name);
    if (n_shots > 0) {
        cJSON *ids = cJSON_AddArrayToObject(ex->extra, "fewshot_ids");
        for (int i = 0; ids && i < n_shots; i++) cJSON_AddItemToArray(ids, cJSON_CreateString(shot_records[shots[i]].id));
    }
    return 0;
}

static int mc_build(const TaskDef *t, const Tokenizer *tok, ExampleList *out, Err *err) {
    (void)tok;
    McOptions o;
    McData m;
    if (mc_options(t, &o, err)) return -1;
    int rc = mc_load(t, &o, &m, err);
    LdRng rng;
    ld_rng_seed(&rng, t->seed);
    const McSet *pool = m.separate_shots ? &m.shots_set : &m.eval;
    for (int i = 0; rc == 0 && i < m.eval.n; i++) {
        int shots[MAX_FEWSHOT];
        const McRecord *r = &m.eval.items[i];
        Str prefix = {0};
        if (o.num_fewshot > 0) {
            if (draw_shots(&rng, pool->n, o.num_fewshot, m.separate_shots ? -1 : i, shots, err)) {
                rc = err_prefix(err, "%s:%d", t->file, t->line);
                break;
            }
            for (int s = 0; s < o.num_fewshot; s++)
                add_shot(&prefix, o.ds, &m.shot_docs[shots[s]], pool->items[shots[s]].gold);
        }
        char *p = str_take(&prefix);
        rc = p ? add_example(&o, r, &m.eval_docs[i], p, pool->items, shots, o.num_fewshot, out, err)
               : err_set(err, "out of memory");
        free(p);
    }
    mc_data_free(&m);
    return rc;
}

/* ---------------------------------------------------------------- score */

/* numpy.argmax: the first maximum; a NaN counts as the maximum (the first NaN wins). */
static int argmax_numpy(const double *v, int n) {
    int best = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(v[i])) return i;
        if (v[i] > v[best]) best = i;
    }
    return best;
}

static int mc_score(const TaskDef *t, const Example *ex, const Prediction *p, Scores *out, Err *err) {
    if (!p || !p->ll) return err_set(err, "example %s: no log-likelihoods to score", ex->id);
    int n = ex->n_choices;
    double *by_chars = malloc(sizeof(double) * (size_t)(n ? n : 1));
    double *by_bytes = malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (!by_chars || !by_bytes) {
        free(by_chars);
        free(by_bytes);
        return err_set(err, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        const char *choice = ex->continuations[i] + 1; /* the delimiter " " does not count */
        by_chars[i] = p->ll[i] / (double)utf8_chars(choice);
        by_bytes[i] = p->ll[i] / (double)strlen(choice);
    }
    double acc = argmax_numpy(p->ll, n) == ex->gold;
    double acc_norm = argmax_numpy(by_chars, n) == ex->gold;
    double acc_bytes = argmax_numpy(by_bytes, n) == ex->gold;
    free(by_chars);
    free(by_bytes);
    /* Winogrande's choices are its contexts, so lm-eval reports acc only */
    const char *dataset = "";
    const cJSON *d = ex->extra ? cJSON_GetObjectItemCaseSensitive(ex->extra, "dataset") : NULL;
    if (cJSON_IsString(d)) dataset = d->valuestring;
    int acc_only = strcmp(dataset, "winogrande") == 0;
    const char *names[3] = {"acc", "acc_norm", "acc_bytes"};
    double values[3] = {acc, acc_norm, acc_bytes};
    int count = acc_only ? 1 : 3, first = 0;
    for (int i = 0; i < count; i++)
        if (t && strcmp(t->metric, names[i]) == 0) first = i;
    scores_add(out, names[first], values[first]);
    for (int i = 0; i < count; i++)
        if (i != first) scores_add(out, names[i], values[i]);
    return 0;
}

const TaskKind kind_multiple_choice = {
    .name = "multiple_choice",
    .fields = mc_fields,
    .validate = mc_validate,
    .build = mc_build,
    .score = mc_score,
};
