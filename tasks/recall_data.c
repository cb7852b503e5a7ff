/* recall_data.c: the data-backed variants of the `recall` kind
   (docs/tasks/recall.md, "Data-backed variants"):

   swde, fda  Based-format JSONL ({text, value, key, ...}): the prompt is the
              document followed by "<key>:", greedy until "\n", 48 new tokens;
              `contains` = the gold value occurs in the generation,
              case-insensitive, literal (lm-eval's swde / fda tasks).
   qa_squad,  RULER's QA tasks (NVIDIA/RULER scripts/data/synthetic/qa.py):
   qa_hotpot  the question's gold documents mixed with distractor documents,
              "Document i:\n{doc}" joined by "\n\n", shuffled, inside RULER's
              QA template; as many documents as fit each target length by the
              model's tokenizer; scored by RULER's string_match_part. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loaders.h"
#include "recall_data.h"
#include "scoring.h"

const char *const recall_data_fields[] = {"version", "until", "lengths", "num_samples", "partial_doc", NULL};

/* RULER scripts/data/synthetic/constants.py, task "qa": the template with its
   answer prefix (" Answer:") appended, as prepare.py builds the input. */
static const char QA_HEAD[] = "Answer the question based on the given documents. Only give me the answer and do not "
                              "output any other words.\n\nThe following are given documents.\n\n";
static const char QA_MIDDLE[] = "\n\nAnswer the question based on the given documents. Only give me the answer and do "
                                "not output any other words.\n\nQuestion: ";
static const char QA_ANSWER_PREFIX[] = " Answer:";

enum {
    BASED_MAX_NEW_TOKENS = 48, /* lm-eval swde / fda */
    QA_MAX_NEW_TOKENS = 32,    /* RULER tokens_to_generate for qa */
    QA_DEFAULT_SAMPLES = 500,  /* RULER NUM_SAMPLES */
    QA_MIN_LENGTH = 64,
    QA_MAX_LENGTH = 1 << 24,
};

typedef enum { V_SWDE, V_FDA, V_QA_SQUAD, V_QA_HOTPOT } Variant;

static int parse_variant(const char *name, Variant *v) {
    if (strcmp(name, "swde") == 0) *v = V_SWDE;
    else if (strcmp(name, "fda") == 0) *v = V_FDA;
    else if (strcmp(name, "qa_squad") == 0) *v = V_QA_SQUAD;
    else if (strcmp(name, "qa_hotpot") == 0) *v = V_QA_HOTPOT;
    else return -1;
    return 0;
}

static int is_qa(Variant v) { return v == V_QA_SQUAD || v == V_QA_HOTPOT; }

typedef struct {
    Variant v;
    int version;
    char **until;
    int n_until;
    int *lengths;
    int n_lengths;
    int num_samples;
    int partial_doc;
    int max_new_tokens;
} RdOptions;

static void rd_options_free(RdOptions *o) {
    strv_free(o->until, o->n_until);
    free(o->lengths);
    memset(o, 0, sizeof *o);
}

/* A field that belongs to the other family of variants is an error. */
static int not_for(const TaskDef *t, const char *field, const char *variant, Err *err) {
    if (!task_has(t, field)) return 0;
    return task_field_error(t, field, err, "does not apply to variant \"%s\"", variant);
}

static int rd_options(const TaskDef *t, const char *variant, RdOptions *o, Err *err) {
    memset(o, 0, sizeof *o);
    if (parse_variant(variant, &o->v))
        return err_set(err, "%s:%d: task \"%s\": recall_data: unknown variant \"%s\"", t->file, t->line, t->name,
                       variant);
    if (task_string_list(t, "until", &o->until, &o->n_until, err)) goto fail;
    for (int i = 0; i < o->n_until; i++)
        if (!o->until[i][0]) {
            task_field_error(t, "until", err, "element [%d]: an empty stop string", i);
            goto fail;
        }
    if (!is_qa(o->v)) {
        if (not_for(t, "lengths", variant, err) || not_for(t, "num_samples", variant, err) ||
            not_for(t, "partial_doc", variant, err) || task_int(t, "version", 0, 0, 1, &o->version, err))
            goto fail;
        if (!task_has(t, "until") && strv_push(&o->until, &o->n_until, "\n")) goto oom;
        o->max_new_tokens = t->max_new_tokens > 0 ? t->max_new_tokens : BASED_MAX_NEW_TOKENS;
    } else {
        if (not_for(t, "version", variant, err) ||
            task_int(t, "num_samples", QA_DEFAULT_SAMPLES, 1, INT_MAX, &o->num_samples, err) ||
            task_bool(t, "partial_doc", 1, &o->partial_doc, err) ||
            task_int_list(t, "lengths", &o->lengths, &o->n_lengths, err))
            goto fail;
        o->max_new_tokens = t->max_new_tokens > 0 ? t->max_new_tokens : QA_MAX_NEW_TOKENS;
        if (o->n_lengths == 0) {
            task_field_error(t, "lengths", err, "missing (target lengths in tokens, e.g. [4096, 8192])");
            goto fail;
        }
        for (int i = 0; i < o->n_lengths; i++) {
            int L = o->lengths[i];
            if (L < QA_MIN_LENGTH || L > QA_MAX_LENGTH || L <= o->max_new_tokens) {
                task_field_error(t, "lengths", err, "element [%d]: %d is not in [%d, %d] or leaves no room for the %d "
                                                    "new tokens",
                                 i, L, QA_MIN_LENGTH, QA_MAX_LENGTH, o->max_new_tokens);
                goto fail;
            }
            for (int j = 0; j < i; j++)
                if (o->lengths[j] == L) {
                    task_field_error(t, "lengths", err, "%d appears twice", L);
                    goto fail;
                }
        }
    }
    if (!t->data[0]) {
        task_field_error(t, "data", err, "missing (%s)",
                         o->v == V_QA_SQUAD    ? "a SQuAD v2.0 .json file"
                         : o->v == V_QA_HOTPOT ? "a HotpotQA .json file"
                                               : "a Based-format .jsonl / .jsonl.gz file");
        goto fail;
    }
    return 0;
oom:
    err_set(err, "out of memory");
fail:
    rd_options_free(o);
    return -1;
}

int recall_data_validate(const TaskDef *t, const char *variant, Err *err) {
    RdOptions o;
    if (rd_options(t, variant, &o, err)) return -1;
    const char *headline = is_qa(o.v) ? "string_match_part" : "contains";
    rd_options_free(&o);
    if (t->metric[0] && strcmp(t->metric, headline) != 0)
        return task_field_error(t, "metric", err, "expected \"%s\" for variant \"%s\", got \"%s\"", headline, variant,
                                t->metric);
    return 0;
}

/* ---------------------------------------------------------------- swde / fda */

/* lm-eval (version 0, its tasks as of the anchors): swde's prompt is
   text.strip() and its gold the raw value; fda uses both raw. Version 1
   strips both (lm-eval PR #3795's treatment of squad_completion). */
static int build_based(const TaskDef *t, const RdOptions *o, const char *variant, ExampleList *out, Err *err) {
    BasedSet set;
    if (load_based_jsonl(t->data, &set, err)) return -1;
    int rc = 0;
    for (int i = 0; i < set.n && rc == 0; i++) {
        const BasedRecord *r = &set.items[i];
        Example *ex = examples_push(out, err);
        if (!ex) {
            rc = -1;
            break;
        }
        ex->request = REQ_GENERATE;
        snprintf(ex->id, sizeof ex->id, "%s", r->id);
        int strip_text = o->version == 1 || o->v == V_SWDE, strip_value = o->version == 1;
        ex->prompt = strip_text ? py_strip(r->text) : xstrdup(r->text);
        char *gold = strip_value ? py_strip(r->value) : xstrdup(r->value);
        ex->max_new_tokens = o->max_new_tokens;
        int bad = !ex->prompt || !gold || strv_push(&ex->targets, &ex->n_targets, gold);
        free(gold);
        for (int s = 0; s < o->n_until && !bad; s++) bad = strv_push(&ex->stop, &ex->n_stop, o->until[s]);
        if (!bad && (ex->extra = cJSON_CreateObject()) != NULL) {
            cJSON_AddStringToObject(ex->extra, "variant", variant);
            cJSON_AddNumberToObject(ex->extra, "version", o->version);
            if (r->key) cJSON_AddStringToObject(ex->extra, "key", r->key);
            if (r->doc_id) cJSON_AddStringToObject(ex->extra, "doc_id", r->doc_id);
        }
        if (bad || !ex->extra) rc = err_set(err, "out of memory");
    }
    based_set_free(&set);
    return rc;
}

/* ---------------------------------------------------------------- RULER QA */

/* Questions and documents in RULER's read_squad / read_hotpotqa shape. */
typedef struct {
    const char *id;
    const char *query;
    char **outputs;       /* gold answers (borrowed) */
    int n_outputs;
    int *gold;            /* the question's own documents: always in the prompt */
    int n_gold;
    int *more;            /* SQuAD: the other paragraphs of the same article, preferred as distractors */
    int n_more;
} QaItem;

typedef struct {
    const char *const *docs;
    int n_docs;
    QaItem *items;
    int n_items;
    SquadSet squad;
    HotpotSet hotpot;
} QaData;

static void qa_data_free(QaData *d) {
    for (int i = 0; d->items && i < d->n_items; i++) {
        free(d->items[i].more);
        if (d->hotpot.qas) free(d->items[i].outputs);
    }
    free(d->items);
    if (d->squad.paragraphs) free((void *)d->docs);
    squad_set_free(&d->squad);
    hotpot_set_free(&d->hotpot);
    memset(d, 0, sizeof *d);
}

static int qa_load(const TaskDef *t, Variant v, int n_items, QaData *d, Err *err) {
    memset(d, 0, sizeof *d);
    if (v == V_QA_SQUAD) {
        if (load_squad_v2(t->data, 1, &d->squad, err)) return -1;
        const char **docs = malloc(sizeof *docs * (size_t)d->squad.n_paragraphs);
        if (!docs) return err_set(err, "out of memory");
        for (int i = 0; i < d->squad.n_paragraphs; i++) docs[i] = d->squad.paragraphs[i].context;
        d->docs = docs;
        d->n_docs = d->squad.n_paragraphs;
        d->n_items = n_items < d->squad.n_qas ? n_items : d->squad.n_qas;
    } else {
        if (load_hotpotqa(t->data, &d->hotpot, err)) return -1;
        d->docs = (const char *const *)d->hotpot.docs;
        d->n_docs = d->hotpot.n_docs;
        d->n_items = n_items < d->hotpot.n_qas ? n_items : d->hotpot.n_qas;
    }
    d->items = calloc((size_t)d->n_items, sizeof *d->items);
    if (!d->items) return err_set(err, "out of memory");
    for (int i = 0; i < d->n_items; i++) {
        QaItem *q = &d->items[i];
        if (v == V_QA_SQUAD) {
            SquadQA *s = &d->squad.qas[i];
            q->id = s->id;
            q->query = s->question;
            q->outputs = s->answers;
            q->n_outputs = s->n_answers;
            q->gold = &s->paragraph;
            q->n_gold = 1;
            int article = d->squad.paragraphs[s->paragraph].article;
            q->more = malloc(sizeof *q->more * (size_t)d->n_docs);
            if (!q->more) return err_set(err, "out of memory");
            for (int p = 0; p < d->n_docs; p++)
                if (p != s->paragraph && d->squad.paragraphs[p].article == article) q->more[q->n_more++] = p;
        } else {
            const HotpotQA *h = &d->hotpot.qas[i];
            q->id = h->id;
            q->query = h->question;
            q->outputs = malloc(sizeof *q->outputs);
            if (!q->outputs) return err_set(err, "out of memory");
            q->outputs[0] = h->answer;
            q->n_outputs = 1;
            q->gold = h->docs;
            q->n_gold = h->n_docs;
        }
    }
    return 0;
}

/* One sample being fitted to a length. cand: the question's documents, then
   its `more` documents shuffled, then every other document shuffled; the
   prompt holds cand[0..n) plus, optionally, cand[n] cut short. */
typedef struct {
    const QaData *d;
    const QaItem *q;
    int *cand;
    int n_cand;
    int n_gold;           /* distinct gold documents: cand[0..n_gold) */
    uint64_t order_seed;  /* the shuffle of the prompt's documents */
    const Tokenizer *tok;
} QaFit;

/* Builds the prompt for n whole documents (+ the first `cut` bytes of
   cand[n] when cut > 0). *gold_pos gets the 1-based document numbers of the
   gold documents (may be NULL). */
static char *qa_prompt(const QaFit *f, int n, size_t cut, int *gold_pos) {
    int m = n + (cut > 0 ? 1 : 0);
    int *order = malloc(sizeof *order * (size_t)(m ? m : 1));
    if (!order) return NULL;
    for (int i = 0; i < m; i++) order[i] = i;
    LdRng rng;
    ld_rng_seed(&rng, f->order_seed);
    ld_shuffle(&rng, order, m);
    size_t len = sizeof QA_HEAD + sizeof QA_MIDDLE + sizeof QA_ANSWER_PREFIX + strlen(f->q->query) + 1;
    for (int i = 0; i < m; i++) {
        int c = order[i];
        len += (c == n ? cut : strlen(f->d->docs[f->cand[c]])) + 32;
    }
    char *p = malloc(len), *at = p;
    if (!p) {
        free(order);
        return NULL;
    }
    at += sprintf(at, "%s", QA_HEAD);
    for (int i = 0; i < m; i++) {
        int c = order[i];
        const char *doc = f->d->docs[f->cand[c]];
        size_t doc_len = c == n ? cut : strlen(doc);
        at += sprintf(at, "%sDocument %d:\n", i ? "\n\n" : "", i + 1);
        memcpy(at, doc, doc_len);
        at += doc_len;
        if (gold_pos && c < f->n_gold) gold_pos[c] = i + 1;
    }
    sprintf(at, "%s%s%s", QA_MIDDLE, f->q->query, QA_ANSWER_PREFIX);
    free(order);
    return p;
}

/* Tokens of the prompt (no BOS: RULER counts with tokenizer.tokenize). */
static long qa_count(const QaFit *f, int n, size_t cut, Err *err) {
    char *p = qa_prompt(f, n, cut, NULL);
    if (!p) return err_set(err, "out of memory");
    int32_t *ids = NULL;
    size_t count = 0;
    int rc = tokenizer_encode(f->tok, p, strlen(p), 0, &ids, &count, err);
    free(p);
    free(ids);
    return rc ? -1 : (long)count;
}

typedef struct {
    int n_docs;       /* whole documents */
    size_t cut;       /* bytes of the partial document (0 = none) */
    long tokens;      /* prompt tokens without BOS */
} QaFitResult;

/* The largest prompt within budget tokens: a binary search over the number
   of whole documents (RULER); then, if that lands more than 1% short of
   the target and partial_doc is on, one more distractor document cut short
   (at a character boundary), its length found by a binary search. */
static int qa_fit(const QaFit *f, long budget, long target, int max_new, int partial_doc, QaFitResult *res, Err *err) {
    int lo = f->n_gold, hi = f->n_cand;
    long t_lo = qa_count(f, lo, 0, err);
    if (t_lo < 0) return -1;
    if (t_lo > budget)
        return err_set(err, "the question's own documents alone take %ld tokens, more than the %ld-token budget "
                            "(target %ld minus %d new tokens)",
                       t_lo, budget, target, max_new);
    long best_tokens = t_lo;
    while (lo < hi) { /* invariant: lo documents fit */
        int mid = lo + (hi - lo + 1) / 2;
        long tk = qa_count(f, mid, 0, err);
        if (tk < 0) return -1;
        if (tk <= budget) lo = mid, best_tokens = tk;
        else hi = mid - 1;
    }
    res->n_docs = lo;
    res->cut = 0;
    res->tokens = best_tokens;
    if (!partial_doc || lo >= f->n_cand || (best_tokens + max_new) * 100 >= target * 99) return 0;
    const char *doc = f->d->docs[f->cand[lo]];
    size_t a = 0, b = strlen(doc); /* the largest cut in [1, b) that fits; 0 = none */
    while (b > 1 && a + 1 < b) {
        size_t mid = a + (b - a) / 2;
        while (mid > a + 1 && ((unsigned char)doc[mid] & 0xC0) == 0x80) mid--; /* a code point boundary */
        if (((unsigned char)doc[mid] & 0xC0) == 0x80) break;
        long tk = qa_count(f, lo, mid, err);
        if (tk < 0) return -1;
        if (tk <= budget) {
            a = mid;
            res->cut = mid;
            res->tokens = tk;
        } else {
            b = mid;
        }
    }
    return 0;
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* cand for one question: gold, more (shuffled), the rest (shuffled).
   Returns the count; *n_gold gets the number of distinct gold documents. */
static int qa_candidates(const QaData *d, const QaItem *q, LdRng *rng, int *cand, char *used, int *n_gold) {
    memset(used, 0, (size_t)d->n_docs);
    int n = 0;
    for (int i = 0; i < q->n_gold; i++)
        if (!used[q->gold[i]]) used[q->gold[i]] = 1, cand[n++] = q->gold[i];
    int more_start = n;
    *n_gold = n;
    for (int i = 0; i < q->n_more; i++)
        if (!used[q->more[i]]) used[q->more[i]] = 1, cand[n++] = q->more[i];
    ld_shuffle(rng, cand + more_start, n - more_start);
    int rest_start = n;
    for (int i = 0; i < d->n_docs; i++)
        if (!used[i]) cand[n++] = i;
    ld_shuffle(rng, cand + rest_start, n - rest_start);
    return n;
}

static int qa_example(const RdOptions *o, const char *variant, const QaFit *f, const QaFitResult *r, int length,
                      ExampleList *out, Err *err) {
    int *gold_pos = calloc((size_t)f->n_gold, sizeof *gold_pos);
    Example *ex = gold_pos ? examples_push(out, err) : NULL;
    if (!ex) {
        free(gold_pos);
        return gold_pos ? -1 : err_set(err, "out of memory");
    }
    ex->request = REQ_GENERATE;
    snprintf(ex->id, sizeof ex->id, "%d/%s", length, f->q->id);
    snprintf(ex->group, sizeof ex->group, "%d", length);
    ex->target_tokens = length;
    ex->max_new_tokens = o->max_new_tokens;
    ex->prompt = qa_prompt(f, r->n_docs, r->cut, gold_pos);
    ex->prompt_tokens = (int)r->tokens + (tokenizer_bos_id(f->tok) >= 0 && ex->add_bos ? 1 : 0);
    int bad = !ex->prompt;
    for (int i = 0; i < f->q->n_outputs && !bad; i++) bad = strv_push(&ex->targets, &ex->n_targets, f->q->outputs[i]);
    for (int s = 0; s < o->n_until && !bad; s++) bad = strv_push(&ex->stop, &ex->n_stop, o->until[s]);
    if (!bad && (ex->extra = cJSON_CreateObject()) != NULL) {
        cJSON_AddStringToObject(ex->extra, "variant", variant);
        cJSON_AddStringToObject(ex->extra, "question_id", f->q->id);
        cJSON_AddNumberToObject(ex->extra, "ruler_length", (double)(r->tokens + o->max_new_tokens));
        cJSON_AddNumberToObject(ex->extra, "num_docs", r->n_docs + (r->cut > 0 ? 1 : 0));
        cJSON_AddBoolToObject(ex->extra, "partial_doc", r->cut > 0);
        cJSON *pos = cJSON_AddArrayToObject(ex->extra, "gold_docs");
        for (int i = 0; pos && i < f->n_gold; i++) cJSON_AddItemToArray(pos, cJSON_CreateNumber(gold_pos[i]));
    }
    free(gold_pos);
    if (bad || !ex->extra) return err_set(err, "out of memory");
    return 0;
}

static int build_qa(const TaskDef *t, const RdOptions *o, const char *variant, const Tokenizer *tok, ExampleList *out,
                    Err *err) {
    if (!tok) return err_set(err, "%s:%d: task \"%s\": variant %s needs the model's tokenizer", t->file, t->line,
                             t->name, variant);
    QaData d;
    if (qa_load(t, o->v, o->num_samples, &d, err)) {
        qa_data_free(&d);
        return -1;
    }
    int *cand = malloc(sizeof *cand * (size_t)d.n_docs);
    char *used = malloc((size_t)d.n_docs);
    int rc = cand && used ? 0 : err_set(err, "out of memory");
    for (int li = 0; li < o->n_lengths && rc == 0; li++) {
        int L = o->lengths[li];
        for (int i = 0; i < d.n_items && rc == 0; i++) {
            uint64_t seed = mix64(t->seed ^ mix64((uint64_t)L << 32 ^ (uint64_t)i));
            LdRng rng;
            ld_rng_seed(&rng, seed);
            QaFit f = {&d, &d.items[i], cand, 0, 0, mix64(seed + 1), tok};
            f.n_cand = qa_candidates(&d, &d.items[i], &rng, cand, used, &f.n_gold);
            QaFitResult r = {0, 0, 0};
            rc = qa_fit(&f, (long)L - o->max_new_tokens, L, o->max_new_tokens, o->partial_doc, &r, err);
            if (rc == 0 && (r.tokens + o->max_new_tokens) * 100 < (long)L * 99)
                rc = err_set(err, "realised length %ld tokens (%ld prompt + %d new) is more than 1%% short of the "
                                  "target%s",
                             r.tokens + o->max_new_tokens, r.tokens, o->max_new_tokens,
                             r.n_docs >= f.n_cand ? ": every document of the file is already in the prompt"
                             : !o->partial_doc    ? " (partial_doc is off)"
                                                  : " (not even the start of one more document fits in the gap)");
            if (rc) {
                err_prefix(err, "%s:%d: task \"%s\": %s: length %d, question %s", t->file, t->line, t->name, t->data, L,
                           d.items[i].id);
                break;
            }
            rc = qa_example(o, variant, &f, &r, L, out, err);
        }
    }
    free(cand);
    free(used);
    qa_data_free(&d);
    return rc;
}

/* ---------------------------------------------------------------- the interface */

int recall_data_build(const TaskDef *t, const char *variant, const Tokenizer *tok, ExampleList *out, Err *err) {
    RdOptions o;
    if (rd_options(t, variant, &o, err)) return -1;
    int rc = is_qa(o.v) ? build_qa(t, &o, variant, tok, out, err) : build_based(t, &o, variant, out, err);
    rd_options_free(&o);
    return rc;
}

int recall_data_score(const TaskDef *t, const char *variant, const Example *ex, const Prediction *p, Scores *out,
                      Err *err) {
    (void)t;
    Variant v;
    if (parse_variant(variant, &v)) return err_set(err, "recall_data: unknown variant \"%s\"", variant);
    const char *text = p && p->text ? p->text : "";
    if (!is_qa(v)) {
        if (ex->n_targets < 1) return err_set(err, "example %s: no gold value", ex->id);
        scores_add(out, "contains", text_contains(text, ex->targets[0], 1) ? 1.0 : 0.0);
        return 0;
    }
    char *pred = ruler_postprocess(text);
    if (!pred) return err_set(err, "out of memory");
    scores_add(out, "string_match_part", string_match_part(pred, ex->targets, ex->n_targets));
    free(pred);
    return 0;
}
