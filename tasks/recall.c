/* recall.c: the `recall` kind, retrieval from context. The synthetic
   variants are built here, each at target lengths in tokens with the same
   ±1% check as niah (docs/tasks/recall.md):
     vt   RULER variable tracking (scripts/data/synthetic/variable_tracking.py)
     cwe  RULER common words extraction (common_words_extraction.py)
     fwe  RULER frequent words extraction (freq_words_extraction.py)
     kv   key-value retrieval over a JSON object of UUIDs
     ar   associative recall over "key -> value" pairs
   The data-backed variants (swde, fda, qa_squad, qa_hotpot) live in
   recall_data.c; this file hands them over. */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "haystack.h"
#include "kinds.h"
#include "recall_data.h"
#include "scoring.h"
#include "words.h"

typedef enum { V_VT, V_CWE, V_FWE, V_KV, V_AR, V_DATA } VariantId;

static const char *const synthetic_names[] = {"vt", "cwe", "fwe", "kv", "ar"};
static const char *const all_variants[] = {"vt", "cwe", "fwe", "kv", "ar", "swde", "fda", "qa_squad", "qa_hotpot", NULL};

/* RULER constants.py templates and answer prefixes; kv follows "Lost in the
   Middle" (Liu et al. 2023) key-value retrieval; ar is hymeval's own. */
static const char VT_TEMPLATE[] = "Memorize and track the chain(s) of variable assignment hidden in the following "
                                  "text.\n\n{context}\nQuestion: Find all variables that are assigned the value "
                                  "{query} in the text above.";
static const char VT_PREFIX[] = " Answer: According to the chain(s) of variable assignment in the text above, "
                                "{num_v} variables are assigned the value {query}, they are: ";
static const char CWE_TEMPLATE[] = "Below is a numbered list of words. In these words, some appear more often than "
                                   "others. Memorize the ones that appear most often.\n{context}\nQuestion: What are "
                                   "the {num_cw} most common words in the above list?";
static const char CWE_PREFIX[] = " Answer: The top {num_cw} words that appear most often in the list are:";
static const char FWE_TEMPLATE[] = "Read the following coded text and track the frequency of each coded word. Find "
                                   "the three most frequently appeared coded words. {context}\nQuestion: Do not "
                                   "provide any explanation. Please ignore the dots '....'. What are the three most "
                                   "frequently appeared words in the above coded text?";
static const char FWE_PREFIX[] = " Answer: According to the coded text above, the three most frequently appeared "
                                 "words are:";
static const char KV_TEMPLATE[] = "Extract the value corresponding to the specified key in the JSON object "
                                  "below.\n\nJSON data:\n{context}\n\nKey: \"{query}\"";
static const char KV_PREFIX[] = "\nCorresponding value:";
static const char AR_TEMPLATE[] = "Below is a list of pairs written as \"key -> value\". Memorize which value goes "
                                  "with each key.\n\n{context}\n\nQuestion: Which value goes with the key "
                                  "\"{query}\"?";
static const char AR_PREFIX[] = "\nAnswer: {query} ->";

enum {
    DEFAULT_SAMPLES = 500, /* RULER NUM_SAMPLES */
    MAX_LENGTH = 1 << 24,
    VT_ICL_SENTENCES = 15, /* three noise lines around the example chain */
    CWE_SHORT = 4096, /* RULER switches to a 6/1 frequency below this length */
};

/* Fields of the synthetic variants; recall_data_fields are added at start-up. */
static const char *const synthetic_fields[] = {
    "variant",  "lengths",   "num_samples", "template", "answer_prefix", "until",        "num_chains",
    "num_hops", "freq_cw",   "freq_ucw",    "num_cw",   "short_switch",  "alpha",        "vocab_size",
    "coded_wordlen", NULL,
};
/* per variant: which of the fields above it takes (beyond the shared ones) */
static const char *const vt_only[] = {"num_chains", "num_hops", NULL};
static const char *const cwe_only[] = {"freq_cw", "freq_ucw", "num_cw", "short_switch", NULL};
static const char *const fwe_only[] = {"alpha", "vocab_size", "coded_wordlen", NULL};
static const char *const synthetic_shared[] = {"template", "answer_prefix", NULL};
static const char *const data_only[] = {"version", "partial_doc", NULL};

static const char *recall_fields[64];

__attribute__((constructor)) static void recall_fields_init(void) {
    size_t n = 0;
    for (size_t i = 0; synthetic_fields[i]; i++) recall_fields[n++] = synthetic_fields[i];
    for (size_t i = 0; recall_data_fields[i] && n + 1 < sizeof recall_fields / sizeof *recall_fields; i++) {
        int dup = 0;
        for (size_t j = 0; j < n; j++) dup |= strcmp(recall_fields[j], recall_data_fields[i]) == 0;
        if (!dup) recall_fields[n++] = recall_data_fields[i];
    }
    recall_fields[n] = NULL;
}

static int has(const TaskDef *t, const char *field) {
    return t->json && cJSON_GetObjectItemCaseSensitive(t->json, field) != NULL;
}

/* The variant: the field, or else guessed from the data file's name. */
static int read_variant(const TaskDef *t, const char **name, VariantId *id, Err *err) {
    if (has(t, "variant")) {
        if (task_string(t, "variant", NULL, all_variants, name, err)) return -1;
    } else {
        static const struct {
            const char *part, *variant;
        } guesses[] = {{"swde", "swde"}, {"fda", "fda"}, {"squad", "qa_squad"}, {"hotpot", "qa_hotpot"}};
        const char *base = strrchr(t->data, '/');
        base = base ? base + 1 : t->data;
        *name = NULL;
        for (size_t i = 0; t->data[0] && i < sizeof guesses / sizeof *guesses && !*name; i++) {
            size_t n = strlen(guesses[i].part);
            for (const char *p = base; *p && !*name; p++)
                if (strncasecmp(p, guesses[i].part, n) == 0) *name = guesses[i].variant;
        }
        if (!*name)
            return task_field_error(t, "variant", err,
                                    "missing (one of vt, cwe, fwe, kv, ar, swde, fda, qa_squad, qa_hotpot)");
    }
    *id = V_DATA;
    for (int i = 0; i < 5; i++)
        if (strcmp(*name, synthetic_names[i]) == 0) *id = (VariantId)i;
    return 0;
}

static int not_for(const TaskDef *t, const char *const *fields, const char *variant, Err *err) {
    for (int i = 0; fields[i]; i++)
        if (has(t, fields[i]))
            return task_field_error(t, fields[i], err, "does not apply to variant \"%s\"", variant);
    return 0;
}

/* ---------------------------------------------------------------- options */

typedef struct {
    VariantId v;
    const char *name;
    int *lengths, n_lengths;
    int samples;
    int max_new_tokens;
    const char *template_text, *answer_prefix;
    char **until;
    int n_until;
    int exact; /* kv, ar: exact_match headline instead of contains */
    int part;  /* vt, cwe, fwe: string_match_part headline */
    int num_chains, num_hops;
    int freq_cw, freq_ucw, num_cw, short_switch;
    double alpha;
    int vocab_size, coded_wordlen;
} Options;

static void options_free(Options *o) {
    free(o->lengths);
    strv_free(o->until, o->n_until);
    memset(o, 0, sizeof *o);
}

static int read_options(const TaskDef *t, Options *o, Err *err) {
    memset(o, 0, sizeof *o);
    if (read_variant(t, &o->name, &o->v, err)) return -1;
    const char *name = o->name;
    if (o->v == V_DATA) return 0;
    if (not_for(t, data_only, name, err) || (o->v != V_VT && not_for(t, vt_only, name, err)) ||
        (o->v != V_CWE && not_for(t, cwe_only, name, err)) || (o->v != V_FWE && not_for(t, fwe_only, name, err)))
        return -1;
    static const int default_new[] = {30, 120, 50, 64, 16}; /* vt, cwe, fwe: RULER tokens_to_generate */
    o->max_new_tokens = t->max_new_tokens > 0 ? t->max_new_tokens : default_new[o->v];

    if (task_int_list(t, "lengths", &o->lengths, &o->n_lengths, err)) return -1;
    if (o->n_lengths == 0)
        return task_field_error(t, "lengths", err, "missing (target lengths in tokens, e.g. [4096, 8192])");
    for (int i = 0; i < o->n_lengths; i++) {
        if (o->lengths[i] <= o->max_new_tokens || o->lengths[i] > MAX_LENGTH)
            return task_field_error(t, "lengths", err, "element [%d]: %d must be above max_new_tokens (%d) and at most %d",
                                    i, o->lengths[i], o->max_new_tokens, MAX_LENGTH);
        for (int j = 0; j < i; j++)
            if (o->lengths[j] == o->lengths[i]) return task_field_error(t, "lengths", err, "%d appears twice", o->lengths[i]);
    }
    if (task_int(t, "num_samples", DEFAULT_SAMPLES, 1, INT_MAX / 2, &o->samples, err)) return -1;
    if (has(t, "template")) {
        if (task_string(t, "template", NULL, NULL, &o->template_text, err)) return -1;
        if (!strstr(o->template_text, "{context}"))
            return task_field_error(t, "template", err, "must contain {context} (where the context goes)");
    }
    if (has(t, "answer_prefix") && task_string(t, "answer_prefix", NULL, NULL, &o->answer_prefix, err)) return -1;
    if (has(t, "until")) {
        if (task_string_list(t, "until", &o->until, &o->n_until, err)) return -1;
    } else if (o->v == V_KV || o->v == V_AR) {
        if (strv_push(&o->until, &o->n_until, "\n")) return err_set(err, "out of memory");
    }
    for (int i = 0; i < o->n_until; i++)
        if (!o->until[i][0]) return task_field_error(t, "until", err, "element [%d]: an empty stop string", i);

    if (t->metric[0]) {
        int kv_like = o->v == V_KV || o->v == V_AR;
        const char *a = kv_like ? "contains" : "string_match_all", *b = kv_like ? "exact_match" : "string_match_part";
        if (strcmp(t->metric, a) != 0 && strcmp(t->metric, b) != 0)
            return task_field_error(t, "metric", err, "variant \"%s\" scores %s or %s, not \"%s\"", name, a, b,
                                    t->metric);
        if (strcmp(t->metric, b) == 0) *(kv_like ? &o->exact : &o->part) = 1;
    }

    switch (o->v) {
    case V_VT:
        if (task_int(t, "num_chains", 1, 1, 100, &o->num_chains, err) ||
            task_int(t, "num_hops", 4, 1, 1000, &o->num_hops, err))
            return -1;
        break;
    case V_CWE:
        if (task_int(t, "freq_cw", 30, 2, 100000, &o->freq_cw, err) ||
            task_int(t, "freq_ucw", 3, 1, 100000, &o->freq_ucw, err) ||
            task_int(t, "num_cw", 10, 1, 1000, &o->num_cw, err) || task_bool(t, "short_switch", 1, &o->short_switch, err))
            return -1;
        if (o->freq_ucw + 1 >= o->freq_cw)
            return task_field_error(t, "freq_ucw", err, "%d leaves the common words (freq_cw %d) no clear lead: "
                                    "freq_cw must exceed freq_ucw + 1", o->freq_ucw, o->freq_cw);
        break;
    case V_FWE:
        if (task_double(t, "alpha", 2.0, 1.01, 10.0, &o->alpha, err) ||
            task_int(t, "vocab_size", 0, 0, 1 << 20, &o->vocab_size, err) ||
            task_int(t, "coded_wordlen", 6, 3, 32, &o->coded_wordlen, err))
            return -1;
        if (has(t, "vocab_size") && o->vocab_size < 5)
            return task_field_error(t, "vocab_size", err, "at least 5 words (the noise word, the three answers, one more)");
        break;
    default: break;
    }
    return 0;
}

static int recall_validate(const TaskDef *t, Err *err) {
    Options o;
    int rc = read_options(t, &o, err);
    if (rc == 0 && o.v == V_DATA) {
        rc = not_for(t, synthetic_shared, o.name, err) || not_for(t, vt_only, o.name, err) ||
                     not_for(t, cwe_only, o.name, err) || not_for(t, fwe_only, o.name, err)
                 ? -1
                 : recall_data_validate(t, o.name, err);
    }
    options_free(&o);
    return rc;
}

/* ---------------------------------------------------------------- the builder */

typedef struct {
    const Options *o;
    int length;
    Rng rng;
    StrBuf head, tail;    /* prompt around the context */
    size_t ctx_start, ctx_end; /* set by each render */
    /* vt */
    Haystack *hay;
    Needle *stmts;
    char **stmt_text;
    int n_stmts;
    /* cwe */
    WordPool *pool;
    size_t icl_words, fc, fu;
    uint64_t list_seed;
    /* fwe */
    char **vocab;
    int n_vocab;
    double zeta;
    char fwe_extra[40];
    /* kv, ar */
    char **keys, **vals;
    int n_pairs;
    double depth;
    size_t gold_off, gold_len; /* set by each render */
    uint64_t ar_mult, ar_add;
    char cut_text[160]; /* the unit partial() hands out */
} Builder;

static void builder_free(Builder *b) {
    sb_free(&b->head);
    sb_free(&b->tail);
    haystack_close(b->hay);
    free(b->stmts);
    strv_free(b->stmt_text, b->n_stmts);
    wordpool_free(b->pool);
    strv_free(b->vocab, b->n_vocab);
    strv_free(b->keys, b->n_pairs);
    strv_free(b->vals, b->n_pairs);
}

/* Fills the variant's template into head/tail (split at {context}) and the
   answer prefix onto tail. */
static int set_template(Builder *b, const char *def_template, const char *def_prefix, const char *const *names,
                        const char *const *values, int n, Err *err) {
    const Options *o = b->o;
    char *tmpl = xstrdup(o->template_text ? o->template_text : def_template);
    if (!tmpl) return err_set(err, "out of memory");
    char *ctx = strstr(tmpl, "{context}");
    *ctx = '\0';
    int rc = fill_template(&b->head, tmpl, names, values, n, err) ||
             fill_template(&b->tail, ctx + strlen("{context}"), names, values, n, err) ||
             fill_template(&b->tail, o->answer_prefix ? o->answer_prefix : def_prefix, names, values, n, err) ||
             sb_puts(&b->head, "", err) || sb_puts(&b->tail, "", err)
                 ? -1
                 : 0;
    free(tmpl);
    return rc;
}

/* --- vt */

static int vt_chains(Rng *r, int chains, int hops, int letters, char **names_out, int *values_out, Err *err) {
    int n = chains * (hops + 1);
    for (int i = 0; i < n; i++) {
        char name[8];
        int dup;
        do {
            for (int k = 0; k < letters; k++) name[k] = (char)('A' + rng_below(r, 26));
            name[letters] = '\0';
            dup = 0;
            for (int j = 0; j < i; j++) dup |= strcmp(names_out[j], name) == 0;
        } while (dup);
        names_out[i] = xstrdup(name);
        if (!names_out[i]) return err_set(err, "out of memory");
    }
    for (int c = 0; c < chains; c++) {
        int dup;
        do { /* RULER: np.random.randint(10000, 99999), distinct across chains here */
            values_out[c] = (int)rng_range(r, 10000, 99998);
            dup = 0;
            for (int j = 0; j < c; j++) dup |= values_out[j] == values_out[c];
        } while (dup);
    }
    return 0;
}

/* Chain statements with sorted random depths, merged in depth order. */
static int vt_statements(Rng *r, int chains, int hops, char **names, const int *values, char ***text, Needle **out,
                         int *n_out, Err *err) {
    int n = chains * (hops + 1);
    Needle *st = calloc((size_t)n, sizeof *st);
    char **txt = NULL;
    int n_txt = 0;
    if (!st) goto oom;
    for (int c = 0; c < chains; c++) {
        double depths[1000 + 1]; /* num_hops <= 1000 */
        for (int h = 0; h <= hops; h++) depths[h] = 100.0 * rng_uniform(r);
        for (int i = 1; i <= hops; i++)
            for (int j = i; j > 0 && depths[j] < depths[j - 1]; j--) {
                double x = depths[j];
                depths[j] = depths[j - 1];
                depths[j - 1] = x;
            }
        for (int h = 0; h <= hops; h++) {
            char line[64];
            char **nm = names + c * (hops + 1);
            if (h == 0) snprintf(line, sizeof line, "VAR %s = %d", nm[0], values[c]);
            else snprintf(line, sizeof line, "VAR %s = VAR %s", nm[h], nm[h - 1]);
            if (strv_push(&txt, &n_txt, line)) goto oom;
            st[c * (hops + 1) + h].depth = depths[h];
        }
    }
    for (int i = 0; i < n; i++) st[i].text = txt[i];
    /* stable insertion sort by depth keeps each chain in order */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && st[j].depth < st[j - 1].depth; j--) {
            Needle x = st[j];
            st[j] = st[j - 1];
            st[j - 1] = x;
        }
    *text = txt;
    *out = st;
    *n_out = n;
    return 0;
oom:
    free(st);
    strv_free(txt, n_txt);
    return err_set(err, "out of memory");
}

static int vt_icl(Builder *b, StrBuf *out, Err *err) {
    const Options *o = b->o;
    int hops = o->num_hops < 10 ? o->num_hops : 10, n = o->num_chains * (hops + 1), rc = -1;
    char **names = calloc((size_t)n, sizeof *names);
    int *values = calloc((size_t)o->num_chains, sizeof *values);
    char **text = NULL;
    Needle *st = NULL;
    int n_st = 0;
    Haystack *hay = NULL;
    StrBuf ctx = {0};
    if (!names || !values) {
        err_set(err, "out of memory");
        goto done;
    }
    if (vt_chains(&b->rng, o->num_chains, hops, 3, names, values, err) ||
        vt_statements(&b->rng, o->num_chains, hops, names, values, &text, &st, &n_st, err))
        goto done;
    HaystackSpec spec = {.kind = HAY_NOISE};
    if (!(hay = haystack_open(&spec, err)) || haystack_render(hay, VT_ICL_SENTENCES, 0, st, (size_t)n_st, &ctx, NULL, err))
        goto done;
    char value[16], num_v[16];
    snprintf(value, sizeof value, "%d", values[0]);
    snprintf(num_v, sizeof num_v, "%d", hops + 1);
    const char *names_[] = {"context", "query", "num_v"};
    const char *vals[] = {ctx.s, value, num_v};
    if (fill_template(out, o->template_text ? o->template_text : VT_TEMPLATE, names_, vals, 3, err) ||
        fill_template(out, o->answer_prefix ? o->answer_prefix : VT_PREFIX, names_, vals, 3, err))
        goto done;
    for (int h = 0; h <= hops; h++)
        if (sb_puts(out, names[h], err) || sb_puts(out, h < hops ? " " : "\n\n", err)) goto done;
    rc = 0;
done:
    haystack_close(hay);
    strv_free(names, names ? n : 0);
    free(values);
    free(st);
    strv_free(text, n_st);
    sb_free(&ctx);
    return rc;
}

static int vt_setup(Builder *b, char ***answers, int *n_ans, Err *err) {
    const Options *o = b->o;
    int hops = o->num_hops, n = o->num_chains * (hops + 1), rc = -1;
    char **names = calloc((size_t)n, sizeof *names);
    int *values = calloc((size_t)o->num_chains, sizeof *values);
    if (!names || !values) {
        err_set(err, "out of memory");
        goto done;
    }
    if (vt_icl(b, &b->head, err)) goto done;
    if (vt_chains(&b->rng, o->num_chains, hops, 5, names, values, err) ||
        vt_statements(&b->rng, o->num_chains, hops, names, values, &b->stmt_text, &b->stmts, &b->n_stmts, err))
        goto done;
    HaystackSpec spec = {.kind = HAY_NOISE};
    if (!(b->hay = haystack_open(&spec, err))) goto done;
    char value[16], num_v[16];
    snprintf(value, sizeof value, "%d", values[0]);
    snprintf(num_v, sizeof num_v, "%d", hops + 1);
    const char *names_[] = {"query", "num_v"};
    const char *vals[] = {value, num_v};
    if (set_template(b, VT_TEMPLATE, VT_PREFIX, names_, vals, 2, err)) goto done;
    for (int h = 0; h <= hops; h++)
        if (strv_push(answers, n_ans, names[h])) {
            err_set(err, "out of memory");
            goto done;
        }
    rc = 0;
done:
    strv_free(names, names ? n : 0);
    free(values);
    return rc;
}

/* --- cwe */

static int numbered(StrBuf *out, const char *const *words, size_t n, Err *err) {
    for (size_t i = 0; i < n; i++)
        if (sb_printf(out, err, "%s%zu. %s", i ? " " : "", i + 1, words[i])) return -1;
    return 0;
}

/* common words (first n_common of words) x fc, the rest x fu, shuffled. */
static int cwe_list(const char *const *words, size_t n_words, size_t n_common, size_t fc, size_t fu, uint64_t seed,
                    const char ***list, size_t *n_list, Err *err) {
    size_t n = n_common * fc + (n_words - n_common) * fu, k = 0;
    const char **l = malloc((n ? n : 1) * sizeof *l);
    if (!l) return err_set(err, "out of memory");
    for (size_t i = 0; i < n_words; i++)
        for (size_t r = 0; r < (i < n_common ? fc : fu); r++) l[k++] = words[i];
    Rng rng;
    rng_seed(&rng, seed);
    rng_shuffle(&rng, l, n, sizeof *l);
    *list = l;
    *n_list = n;
    return 0;
}

static int cwe_setup(Builder *b, char ***answers, int *n_ans, Err *err) {
    const Options *o = b->o;
    int is_short = o->short_switch && b->length < CWE_SHORT;
    /* RULER: the example has 20 words at 3/1 below 4096 tokens, else 40 at 10/3 */
    size_t icl_n = (size_t)(is_short ? 20 : 40), icl_fc = is_short ? 3 : 10, icl_fu = is_short ? 1 : 3;
    if (icl_n < (size_t)o->num_cw * 2) icl_n = (size_t)o->num_cw * 2;
    b->fc = is_short ? 6 : (size_t)o->freq_cw;
    b->fu = is_short ? 1 : (size_t)o->freq_ucw;
    b->icl_words = icl_n;
    b->pool = wordpool_new(rng_next(&b->rng));
    b->list_seed = rng_next(&b->rng);
    if (!b->pool || !wordpool_get(b->pool, icl_n + (size_t)o->num_cw)) return err_set(err, "out of memory");
    /* the in-context example, answered */
    const char **words = malloc(icl_n * sizeof *words), **list = NULL;
    size_t n_list = 0;
    if (!words) return err_set(err, "out of memory");
    for (size_t i = 0; i < icl_n; i++) words[i] = wordpool_get(b->pool, i);
    StrBuf ctx = {0};
    char num_cw[16];
    snprintf(num_cw, sizeof num_cw, "%d", o->num_cw);
    int rc = -1;
    if (cwe_list(words, icl_n, (size_t)o->num_cw, icl_fc, icl_fu, rng_next(&b->rng), &list, &n_list, err) ||
        numbered(&ctx, list, n_list, err))
        goto done;
    const char *names[] = {"context", "num_cw", "query"};
    const char *vals[] = {ctx.s, num_cw, ""};
    if (fill_template(&b->head, o->template_text ? o->template_text : CWE_TEMPLATE, names, vals, 3, err) ||
        fill_template(&b->head, o->answer_prefix ? o->answer_prefix : CWE_PREFIX, names, vals, 3, err) ||
        sb_puts(&b->head, " ", err) || numbered(&b->head, words, (size_t)o->num_cw, err) ||
        sb_puts(&b->head, "\n", err))
        goto done;
    if (set_template(b, CWE_TEMPLATE, CWE_PREFIX, names + 1, vals + 1, 2, err)) goto done;
    for (int i = 0; i < o->num_cw; i++)
        if (strv_push(answers, n_ans, wordpool_get(b->pool, icl_n + (size_t)i))) {
            err_set(err, "out of memory");
            goto done;
        }
    rc = 0;
done:
    free(words);
    free(list);
    sb_free(&ctx);
    return rc;
}

static int cwe_context(Builder *b, size_t n, size_t part, StrBuf *out, Err *err) {
    size_t base = b->icl_words, n_common = (size_t)b->o->num_cw, n_words = n_common + n;
    const char **words = malloc((n_words + 1) * sizeof *words), **list = NULL;
    size_t n_list = 0;
    if (!words) return err_set(err, "out of memory");
    int rc = -1;
    for (size_t i = 0; i <= n_words; i++)
        if (!(words[i] = wordpool_get(b->pool, base + i))) {
            err_set(err, "out of memory");
            goto done;
        }
    if (cwe_list(words, n_words, n_common, b->fc, b->fu, b->list_seed, &list, &n_list, err) ||
        numbered(out, list, n_list, err))
        goto done;
    if (part > 0 && sb_printf(out, err, " %zu. %.*s", n_list + 1, (int)part, words[n_words])) goto done;
    rc = 0;
done:
    free(words);
    free(list);
    return rc;
}

/* --- fwe */

static int fwe_setup(Builder *b, char ***answers, int *n_ans, Err *err) {
    const Options *o = b->o;
    int V = o->vocab_size > 0 ? o->vocab_size : b->length / 50; /* RULER: max_seq_length // 50 */
    if (V < 5) V = 5;
    b->zeta = zeta(o->alpha);
    char w[40];
    while (b->n_vocab < V) {
        for (int k = 0; k < o->coded_wordlen; k++) w[k] = (char)('a' + rng_below(&b->rng, 26));
        w[o->coded_wordlen] = '\0';
        int dup = 0;
        for (int j = 0; j < b->n_vocab && !dup; j++) dup = strcmp(b->vocab[j], w) == 0;
        if (!dup && strv_push(&b->vocab, &b->n_vocab, b->n_vocab == 0 ? "..." : w)) return err_set(err, "out of memory");
    }
    /* a word that is not in the vocabulary, cut shorter than any coded word when used */
    for (int k = 0; k < o->coded_wordlen; k++) b->fwe_extra[k] = (char)('a' + rng_below(&b->rng, 26));
    b->fwe_extra[o->coded_wordlen - 1] = '\0';
    for (int i = 1; i <= 3; i++)
        if (strv_push(answers, n_ans, b->vocab[i])) return err_set(err, "out of memory");
    const char *names[] = {"query"};
    const char *vals[] = {""};
    return set_template(b, FWE_TEMPLATE, FWE_PREFIX, names, vals, 1, err);
}

static size_t fwe_count(const Builder *b, size_t n, int rank) {
    return (size_t)((double)n * pow(rank, -b->o->alpha) / b->zeta);
}

static int fwe_context(Builder *b, size_t n, size_t part, StrBuf *out, Err *err) {
    size_t total = 0;
    for (int k = 1; k <= b->n_vocab; k++) total += fwe_count(b, n, k);
    const char **l = malloc((total ? total : 1) * sizeof *l);
    if (!l) return err_set(err, "out of memory");
    size_t m = 0;
    for (int k = 1; k <= b->n_vocab; k++)
        for (size_t c = fwe_count(b, n, k); c > 0; c--) l[m++] = b->vocab[k - 1];
    Rng r;
    rng_seed(&r, b->list_seed);
    rng_shuffle(&r, l, m, sizeof *l);
    int rc = 0;
    for (size_t i = 0; i < m && rc == 0; i++) rc = sb_puts(out, i ? " " : "", err) || sb_puts(out, l[i], err) ? -1 : 0;
    if (rc == 0 && part > 0) rc = sb_printf(out, err, "%s%.*s", m ? " " : "", (int)part, b->fwe_extra);
    free(l);
    return rc;
}

/* --- kv and ar */

static int pair_get(Builder *b, int i, Err *err) {
    while (b->n_pairs <= i) {
        char key[64], val[64];
        if (b->o->v == V_KV) {
            random_uuid(&b->rng, key);
            random_uuid(&b->rng, val);
        } else {
            /* distinct keys: an affine bijection of the adjective x noun grid */
            uint64_t m = (uint64_t)words_n_adjectives * words_n_nouns;
            if ((uint64_t)b->n_pairs >= m) return err_set(err, "more than %llu pairs: out of distinct keys", (unsigned long long)m);
            uint64_t x = (b->ar_mult * (uint64_t)b->n_pairs + b->ar_add) % m;
            snprintf(key, sizeof key, "%s-%s", words_adjectives[x / words_n_nouns], words_nouns[x % words_n_nouns]);
            snprintf(val, sizeof val, "%s", words_pick(&b->rng, words_nouns, words_n_nouns));
        }
        int n = b->n_pairs;
        if (strv_push(&b->keys, &n, key) || strv_push(&b->vals, &b->n_pairs, val))
            return err_set(err, "out of memory");
    }
    return 0;
}

static uint64_t gcd64(uint64_t a, uint64_t b) {
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int pairs_setup(Builder *b, char ***answers, int *n_ans, Err *err) {
    uint64_t m = (uint64_t)words_n_adjectives * words_n_nouns;
    do b->ar_mult = 1 + rng_below(&b->rng, m - 1);
    while (gcd64(b->ar_mult, m) != 1);
    b->ar_add = rng_below(&b->rng, m);
    b->depth = ruler_depth((int)rng_below(&b->rng, RULER_N_DEPTHS));
    if (pair_get(b, 0, err)) return -1; /* pair 0 is the one asked for */
    if (strv_push(answers, n_ans, b->vals[0])) return err_set(err, "out of memory");
    const char *names[] = {"query"};
    const char *vals[] = {b->keys[0]};
    return b->o->v == V_KV ? set_template(b, KV_TEMPLATE, KV_PREFIX, names, vals, 1, err)
                           : set_template(b, AR_TEMPLATE, AR_PREFIX, names, vals, 1, err);
}

/* n distractor pairs (pairs 1..n) with the asked pair at depth, then maybe a
   cut pair: for kv the key and value strings are cut (the JSON stays valid),
   for ar the line is. */
static int pairs_context(Builder *b, size_t n, size_t part, StrBuf *out, Err *err) {
    if (pair_get(b, (int)n + 1, err)) return -1;
    size_t gold_at = (size_t)(b->depth / 100.0 * (double)n); /* slots 0..n, at or before depth */
    int kv = b->o->v == V_KV, rc = 0;
    if (kv) rc = sb_puts(out, "{", err);
    for (size_t i = 0, d = 1; i <= n && rc == 0; i++) {
        int which = i == gold_at ? 0 : (int)d++;
        if (i > 0) rc = sb_puts(out, kv ? ", " : "\n", err);
        if (which == 0) b->gold_off = out->len;
        if (rc == 0)
            rc = kv ? sb_printf(out, err, "\"%s\": \"%s\"", b->keys[which], b->vals[which])
                    : sb_printf(out, err, "%s -> %s", b->keys[which], b->vals[which]);
        if (which == 0) b->gold_len = out->len - b->gold_off;
    }
    if (rc == 0 && part > 0) {
        const char *k = b->keys[n + 1], *v = b->vals[n + 1];
        if (kv) {
            size_t kl = strlen(k), klen = part < kl ? part : kl, vlen = part > kl ? part - kl : 0;
            rc = sb_printf(out, err, ", \"%.*s\": \"%.*s\"", (int)klen, k, (int)vlen, v);
        } else {
            char line[160];
            snprintf(line, sizeof line, "%s -> %s", k, v);
            rc = sb_printf(out, err, "\n%.*s", (int)part, line);
        }
    }
    if (rc == 0 && kv) rc = sb_puts(out, "}", err);
    return rc;
}

/* --- dispatch */

static int render(void *ctx, size_t n, size_t part, StrBuf *out, Err *err) {
    Builder *b = ctx;
    if (sb_puts(out, b->head.s, err)) return -1;
    b->ctx_start = out->len;
    int rc;
    switch (b->o->v) {
    case V_VT: rc = haystack_render(b->hay, n, part, b->stmts, (size_t)b->n_stmts, out, NULL, err); break;
    case V_CWE: rc = cwe_context(b, n, part, out, err); break;
    case V_FWE: rc = fwe_context(b, n, part, out, err); break;
    default: rc = pairs_context(b, n, part, out, err); break;
    }
    if (rc) return -1;
    b->ctx_end = out->len;
    return sb_puts(out, b->tail.s, err);
}

static const char *partial(void *ctx, size_t n, Err *err) {
    Builder *b = ctx;
    switch (b->o->v) {
    case V_VT: {
        const Sentence *s = haystack_sentence(b->hay, n, err);
        return s ? s->text : NULL;
    }
    case V_CWE: return wordpool_get(b->pool, b->icl_words + (size_t)b->o->num_cw + n);
    case V_FWE: return b->fwe_extra;
    case V_KV:
    case V_AR: {
        if (pair_get(b, (int)n + 1, err)) return NULL;
        if (b->o->v == V_KV) snprintf(b->cut_text, sizeof b->cut_text, "%s%s", b->keys[n + 1], b->vals[n + 1]);
        else snprintf(b->cut_text, sizeof b->cut_text, "%s -> %s", b->keys[n + 1], b->vals[n + 1]);
        return b->cut_text;
    }
    default: return NULL;
    }
}

static int build_one(const TaskDef *t, const Options *o, const Tokenizer *tok, int length, const char *id,
                     ExampleList *out, Err *err) {
    Builder b = {0};
    b.o = o;
    b.length = length;
    char tag[64];
    snprintf(tag, sizeof tag, "recall/%s", o->name);
    rng_seed(&b.rng, seed_mix(seed_mix(t->seed, hash_string(tag)), hash_string(id)));
    b.list_seed = rng_next(&b.rng);
    char **answers = NULL;
    int n_ans = 0, rc = -1;
    StrBuf prompt = {0};
    int32_t *ids = NULL;
    size_t n_ids = 0;
    cJSON *extra = NULL;

    switch (o->v) {
    case V_VT: rc = vt_setup(&b, &answers, &n_ans, err); break;
    case V_CWE: rc = cwe_setup(&b, &answers, &n_ans, err); break;
    case V_FWE: rc = fwe_setup(&b, &answers, &n_ans, err); break;
    default: rc = pairs_setup(&b, &answers, &n_ans, err); break;
    }
    if (rc) goto fail;
    rc = -1;
    Fit fit;
    if (fit_prompt(tok, 1, length, o->max_new_tokens, SIZE_MAX, render, partial, &b, &fit, err)) goto fail;
    if (render(&b, fit.n, fit.part, &prompt, err)) goto fail;
    if (tokenizer_encode(tok, prompt.s, prompt.len, 1, &ids, &n_ids, err)) goto fail;
    if (check_length(length, (int)n_ids, o->max_new_tokens, err)) goto fail;
    if (o->v == V_FWE && fwe_count(&b, fit.n, 4) <= fwe_count(&b, fit.n, 5)) {
        err_set(err, "%zu coded words are too few for an unambiguous top three (ranks 4 and 5 both appear %zu times)",
                fit.n, fwe_count(&b, fit.n, 4));
        goto fail;
    }

    Example *ex = examples_push(out, err);
    if (!ex) goto fail;
    snprintf(ex->id, sizeof ex->id, "%s", id);
    ex->request = REQ_GENERATE;
    ex->add_bos = 1;
    ex->max_new_tokens = o->max_new_tokens;
    ex->target_tokens = length;
    ex->prompt_tokens = (int)n_ids;
    snprintf(ex->group, sizeof ex->group, "%d", length);
    for (int i = 0; i < o->n_until; i++)
        if (strv_push(&ex->stop, &ex->n_stop, o->until[i])) goto oom;
    for (int i = 0; i < n_ans; i++)
        if (strv_push(&ex->targets, &ex->n_targets, answers[i])) goto oom;
    if (!(extra = cJSON_CreateObject()) || !cJSON_AddStringToObject(extra, "variant", o->name)) goto oom;
    if (o->v == V_KV || o->v == V_AR) {
        int pos, len, cs, cl;
        if (token_span(tok, ids, n_ids, prompt.s, b.gold_off, b.gold_off + b.gold_len, 1, &pos, &len, err) ||
            token_span(tok, ids, n_ids, prompt.s, b.ctx_start, b.ctx_end, 1, &cs, &cl, err))
            goto fail;
        ex->depth = b.depth;
        ex->needle_token_pos = pos;
        ex->needle_token_len = len;
        double realised = cl > len ? 100.0 * (pos - cs) / (cl - len) : 0;
        if (!cJSON_AddNumberToObject(extra, "realised_depth_percent", (double)(long)(realised * 100 + 0.5) / 100) ||
            !cJSON_AddNumberToObject(extra, "pairs", (double)fit.n + 1))
            goto oom;
    } else if (o->v == V_CWE) {
        if (!cJSON_AddNumberToObject(extra, "words", (double)fit.n + o->num_cw) ||
            !cJSON_AddNumberToObject(extra, "freq_cw", (double)b.fc) ||
            !cJSON_AddNumberToObject(extra, "freq_ucw", (double)b.fu))
            goto oom;
    } else if (o->v == V_FWE) {
        if (!cJSON_AddNumberToObject(extra, "num_words", (double)fit.n) ||
            !cJSON_AddNumberToObject(extra, "vocab_size", b.n_vocab))
            goto oom;
    } else if (o->v == V_VT) {
        if (!cJSON_AddNumberToObject(extra, "noise_sentences", (double)fit.n)) goto oom;
    }
    ex->prompt = sb_take(&prompt);
    ex->extra = extra;
    extra = NULL;
    rc = 0;
    goto done;
oom:
    err_set(err, "out of memory");
fail:
    err_prefix(err, "%s:%d: task \"%s\": example %s (target %d tokens)", t->file ? t->file : "?", t->line, t->name,
               id, length);
done:
    cJSON_Delete(extra);
    free(ids);
    sb_free(&prompt);
    strv_free(answers, n_ans);
    builder_free(&b);
    return rc;
}

static int recall_build(const TaskDef *t, const Tokenizer *tok, ExampleList *out, Err *err) {
    Options o;
    if (read_options(t, &o, err)) {
        options_free(&o);
        return -1;
    }
    if (o.v == V_DATA) {
        int rc = recall_data_build(t, o.name, tok, out, err);
        options_free(&o);
        return rc;
    }
    int rc = 0;
    char id[160];
    for (int li = 0; li < o.n_lengths && rc == 0; li++)
        for (int s = 0; s < o.samples && rc == 0; s++) {
            snprintf(id, sizeof id, "L%d_s%d", o.lengths[li], s);
            rc = build_one(t, &o, tok, o.lengths[li], id, out, err);
        }
    options_free(&o);
    return rc;
}

/* ---------------------------------------------------------------- scoring */

static int recall_score(const TaskDef *t, const Example *ex, const Prediction *p, Scores *out, Err *err) {
    const char *name;
    VariantId v;
    if (read_variant(t, &name, &v, err)) return -1;
    if (v == V_DATA) return recall_data_score(t, name, ex, p, out, err);
    const char *text = p->text ? p->text : "";
    if (v == V_KV || v == V_AR) {
        double contains = 0, exact = 0;
        for (int i = 0; i < ex->n_targets; i++) {
            contains = fmax(contains, text_contains(text, ex->targets[i], 1));
            exact = fmax(exact, exact_match(text, ex->targets[i], NORM_STRIP | NORM_LOWER | NORM_PUNCT));
        }
        int exact_first = strcmp(t->metric, "exact_match") == 0;
        scores_add(out, exact_first ? "exact_match" : "contains", exact_first ? exact : contains);
        scores_add(out, exact_first ? "contains" : "exact_match", exact_first ? contains : exact);
        return 0;
    }
    return score_ruler(text, ex->targets, ex->n_targets, t->metric, out, err);
}

const TaskKind kind_recall = {
    .name = "recall",
    .fields = recall_fields,
    .validate = recall_validate,
    .build = recall_build,
    .score = recall_score,
};
