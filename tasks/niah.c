/* niah.c: the `niah` kind, needle in a haystack as RULER builds and scores it
   (NVIDIA/RULER scripts/data/synthetic/niah.py, constants.py, evaluate.py),
   with gkamradt-style depth grids for heatmaps. docs/tasks/niah.md is the
   user's reference; research/eval-anchors.md §1.1-1.2 the sources.

   Each example: keys and values drawn from the example's own seed, RULER's
   needle sentences hidden in a haystack at the requested depths (at sentence
   boundaries), the question and answer prefix after it. The haystack is sized
   by binary search so that prompt tokens + max_new_tokens <= the target
   length, then the realised length is checked: more than 1% off is an error,
   never a data point. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "haystack.h"
#include "jsonl.h"
#include "kinds.h"
#include "scoring.h"
#include "words.h"

/* RULER constants.py, task "niah". */
static const char NIAH_TEMPLATE[] =
    "Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. I will "
    "quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic {type_needle_v} for "
    "{query} mentioned in the provided text?";
static const char NIAH_ANSWER_PREFIX[] =
    " The special magic {type_needle_v} for {query} mentioned in the provided text are";

enum {
    NIAH_MAX_NEW_TOKENS = 128, /* RULER tokens_to_generate for niah */
    NIAH_DEFAULT_SAMPLES = 500, /* RULER NUM_SAMPLES, random depths */
    MAX_LENGTH = 1 << 24,
    MAX_NEEDLES = 64,
};

static const int default_lengths[] = {1024, 2048, 4096};
static const int default_depths[] = {0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100};

/* RULER scripts/synthetic.yaml: haystack, key and value types, and how many
   keys (k), values per key (v) and queried keys (q). */
typedef struct {
    const char *name;
    HaystackKind haystack;
    ValueType key, value;
    int k, v, q;
} Variant;

static const Variant variants[] = {
    {"single_1", HAY_NOISE, VAL_WORDS, VAL_NUMBERS, 1, 1, 1},
    {"single_2", HAY_PROSE, VAL_WORDS, VAL_NUMBERS, 1, 1, 1},
    {"single_3", HAY_PROSE, VAL_WORDS, VAL_UUIDS, 1, 1, 1},
    {"multikey_1", HAY_PROSE, VAL_WORDS, VAL_NUMBERS, 4, 1, 1},
    {"multikey_2", HAY_NEEDLE, VAL_WORDS, VAL_NUMBERS, 1, 1, 1},
    {"multikey_3", HAY_NEEDLE, VAL_UUIDS, VAL_UUIDS, 1, 1, 1},
    {"multivalue", HAY_PROSE, VAL_WORDS, VAL_NUMBERS, 1, 4, 1},
    {"multiquery", HAY_PROSE, VAL_WORDS, VAL_NUMBERS, 1, 1, 4},
};
#define N_VARIANTS (sizeof variants / sizeof *variants)

static const char *const variant_names[] = {"single_1",   "single_2",   "single_3",   "multikey_1", "multikey_2",
                                            "multikey_3", "multivalue", "multiquery", NULL};
static const char *const haystack_names[] = {"noise", "prose", "needle", "file", NULL};
static const char *const value_names[] = {"words", "numbers", "uuids", NULL};
static const char *const depth_modes[] = {"grid", "random", NULL};
static const char *const metrics[] = {"string_match_all", "string_match_part", NULL};

static const char *const niah_fields[] = {
    "variant",       "haystack",    "haystack_file", "key_type",   "value_type", "lengths",
    "depths",        "depth_mode",  "samples_per_cell", "samples", "num_needles", "num_values",
    "num_queries",   "answer_prefix", "template",    "stop",       NULL,
};

/* ---------------------------------------------------------------- options */

typedef struct {
    const Variant *variant;
    HaystackKind haystack;
    char haystack_file[4096]; /* resolved */
    ValueType key_type, value_type;
    int *lengths, n_lengths;
    int *depths, n_depths; /* grid */
    int random_depths;
    int samples; /* per cell (grid) or per length (random) */
    int k, v, q;
    int max_new_tokens;
    const char *template_text; /* NULL: RULER's */
    const char *answer_prefix; /* NULL: RULER's */
    char **stop;
    int n_stop;
    int part_headline; /* metric string_match_part */
} Options;

static void options_free(Options *o) {
    free(o->lengths);
    free(o->depths);
    strv_free(o->stop, o->n_stop);
    memset(o, 0, sizeof *o);
}

static int has(const TaskDef *t, const char *field) {
    return t->json && cJSON_GetObjectItemCaseSensitive(t->json, field) != NULL;
}

/* path relative to the task file's directory (absolute paths as they are) */
static void resolve_path(const TaskDef *t, const char *path, char *out, size_t cap) {
    const char *slash = t->file ? strrchr(t->file, '/') : NULL;
    if (path[0] == '/' || !slash) snprintf(out, cap, "%s", path);
    else snprintf(out, cap, "%.*s/%s", (int)(slash - t->file), t->file, path);
}

static int check_lengths(const TaskDef *t, const int *lengths, int n, int max_new, Err *err) {
    for (int i = 0; i < n; i++) {
        if (lengths[i] <= max_new || lengths[i] > MAX_LENGTH)
            return task_field_error(t, "lengths", err,
                                    "element [%d]: %d must be above max_new_tokens (%d) and at most %d", i,
                                    lengths[i], max_new, MAX_LENGTH);
        for (int j = 0; j < i; j++)
            if (lengths[j] == lengths[i])
                return task_field_error(t, "lengths", err, "%d appears twice", lengths[i]);
    }
    return 0;
}

static int read_options(const TaskDef *t, Options *o, Err *err) {
    memset(o, 0, sizeof *o);
    const char *s;
    if (task_string(t, "variant", "single_2", variant_names, &s, err)) return -1;
    for (size_t i = 0; i < N_VARIANTS; i++)
        if (strcmp(variants[i].name, s) == 0) o->variant = &variants[i];
    const Variant *v = o->variant;

    const char *fallback_hay = has(t, "haystack_file") ? "file" : haystack_kind_name(v->haystack);
    if (task_string(t, "haystack", fallback_hay, haystack_names, &s, err)) return -1;
    o->haystack = (HaystackKind)haystack_kind_parse(s);
    if (o->haystack == HAY_FILE) {
        const char *path;
        if (!has(t, "haystack_file"))
            return task_field_error(t, "haystack_file", err, "missing (haystack \"file\" needs a text file)");
        if (task_string(t, "haystack_file", NULL, NULL, &path, err)) return -1;
        resolve_path(t, path, o->haystack_file, sizeof o->haystack_file);
    } else if (has(t, "haystack_file")) {
        return task_field_error(t, "haystack_file", err, "only used with haystack \"file\" (haystack is \"%s\")", s);
    }

    if (task_string(t, "key_type", value_type_name(v->key), value_names, &s, err)) return -1;
    o->key_type = (ValueType)value_type_parse(s);
    if (task_string(t, "value_type", value_type_name(v->value), value_names, &s, err)) return -1;
    o->value_type = (ValueType)value_type_parse(s);

    if (task_int(t, "num_needles", v->k, 1, MAX_NEEDLES, &o->k, err) ||
        task_int(t, "num_values", v->v, 1, MAX_NEEDLES, &o->v, err) ||
        task_int(t, "num_queries", v->q, 1, MAX_NEEDLES, &o->q, err))
        return -1;
    if (o->q > o->k) o->k = o->q; /* RULER: num_needle_k = max(num_needle_k, num_needle_q) */
    if (o->k * o->v > MAX_NEEDLES)
        return task_field_error(t, "num_values", err, "%d keys x %d values is more than %d needles", o->k, o->v,
                                MAX_NEEDLES);

    o->max_new_tokens = t->max_new_tokens > 0 ? t->max_new_tokens : NIAH_MAX_NEW_TOKENS;
    if (has(t, "lengths")) {
        if (task_int_list(t, "lengths", &o->lengths, &o->n_lengths, err)) return -1;
        if (o->n_lengths == 0) return task_field_error(t, "lengths", err, "empty (give target lengths in tokens)");
    } else {
        o->n_lengths = (int)(sizeof default_lengths / sizeof *default_lengths);
        o->lengths = malloc(sizeof default_lengths);
        if (!o->lengths) return err_set(err, "out of memory");
        memcpy(o->lengths, default_lengths, sizeof default_lengths);
    }
    if (check_lengths(t, o->lengths, o->n_lengths, o->max_new_tokens, err)) return -1;

    if (task_string(t, "depth_mode", "grid", depth_modes, &s, err)) return -1;
    o->random_depths = strcmp(s, "random") == 0;
    if (o->random_depths) {
        if (has(t, "depths"))
            return task_field_error(t, "depths", err, "a depth grid does not go with depth_mode \"random\"");
        if (has(t, "samples_per_cell"))
            return task_field_error(t, "samples_per_cell", err,
                                    "only for the depth grid; with depth_mode \"random\" use \"samples\"");
        if (task_int(t, "samples", NIAH_DEFAULT_SAMPLES, 1, INT_MAX / 2, &o->samples, err)) return -1;
    } else {
        if (has(t, "samples"))
            return task_field_error(t, "samples", err,
                                    "only with depth_mode \"random\"; on the grid use \"samples_per_cell\"");
        if (task_int(t, "samples_per_cell", 1, 1, INT_MAX / 2, &o->samples, err)) return -1;
        if (has(t, "depths")) {
            if (task_int_list(t, "depths", &o->depths, &o->n_depths, err)) return -1;
            if (o->n_depths == 0) return task_field_error(t, "depths", err, "empty (give percentages 0..100)");
        } else {
            o->n_depths = (int)(sizeof default_depths / sizeof *default_depths);
            o->depths = malloc(sizeof default_depths);
            if (!o->depths) return err_set(err, "out of memory");
            memcpy(o->depths, default_depths, sizeof default_depths);
        }
        for (int i = 0; i < o->n_depths; i++) {
            if (o->depths[i] < 0 || o->depths[i] > 100)
                return task_field_error(t, "depths", err, "element [%d]: %d is not a percentage in [0, 100]", i,
                                        o->depths[i]);
            for (int j = 0; j < i; j++)
                if (o->depths[j] == o->depths[i])
                    return task_field_error(t, "depths", err, "%d appears twice", o->depths[i]);
        }
    }

    if (has(t, "template")) {
        if (task_string(t, "template", NULL, NULL, &o->template_text, err)) return -1;
        if (!strstr(o->template_text, "{context}"))
            return task_field_error(t, "template", err, "must contain {context} (where the haystack goes)");
    }
    if (has(t, "answer_prefix") && task_string(t, "answer_prefix", NULL, NULL, &o->answer_prefix, err)) return -1;
    if (task_string_list(t, "stop", &o->stop, &o->n_stop, err)) return -1;
    for (int i = 0; i < o->n_stop; i++)
        if (!o->stop[i][0]) return task_field_error(t, "stop", err, "element [%d]: an empty stop string", i);

    if (t->metric[0]) {
        int ok = 0;
        for (int i = 0; metrics[i]; i++) ok |= strcmp(t->metric, metrics[i]) == 0;
        if (!ok)
            return task_field_error(t, "metric", err, "niah scores string_match_all or string_match_part, not \"%s\"",
                                    t->metric);
        o->part_headline = strcmp(t->metric, "string_match_part") == 0;
    }
    return 0;
}

static int niah_validate(const TaskDef *t, Err *err) {
    Options o;
    int rc = read_options(t, &o, err);
    if (rc == 0 && o.haystack == HAY_FILE) {
        FILE *f = fopen(o.haystack_file, "rb");
        if (!f) rc = task_field_error(t, "haystack_file", err, "cannot read %s", o.haystack_file);
        else fclose(f);
    }
    options_free(&o);
    return rc;
}

/* ---------------------------------------------------------------- one example */

/* RULER's singular switch when one value is asked for: applied to its own
   template and answer prefix only (a user's text is taken as written). */
static int singular(StrBuf *out, const char *text, Err *err) {
    static const char *const from[] = {"Some", "are all", "are", "answers"};
    static const char *const to[] = {"A", "is", "is", "answer"};
    char *cur = xstrdup(text);
    if (!cur) return err_set(err, "out of memory");
    for (int r = 0; r < 4; r++) {
        StrBuf b = {0};
        const char *p = cur, *hit;
        size_t fl = strlen(from[r]);
        while ((hit = strstr(p, from[r]))) {
            if (sb_add(&b, p, (size_t)(hit - p), err) || sb_puts(&b, to[r], err)) {
                free(cur);
                sb_free(&b);
                return -1;
            }
            p = hit + fl;
        }
        if (sb_puts(&b, p, err)) {
            free(cur);
            sb_free(&b);
            return -1;
        }
        free(cur);
        cur = sb_take(&b);
        if (!cur) return err_set(err, "out of memory");
    }
    int rc = sb_puts(out, cur, err);
    free(cur);
    return rc;
}

typedef struct {
    Haystack *hay;
    Needle *needles;
    size_t n_needles;
    const char *head;  /* prompt before the haystack */
    const char *tail;  /* after it: the question and the answer prefix */
    size_t *needle_off;
    size_t context_end; /* set by each render */
} Build;

static int render_prompt(void *ctx, size_t n, size_t part, StrBuf *out, Err *err) {
    Build *b = ctx;
    if (sb_puts(out, b->head, err)) return -1;
    if (haystack_render(b->hay, n, part, b->needles, b->n_needles, out, b->needle_off, err)) return -1;
    b->context_end = out->len;
    return sb_puts(out, b->tail, err);
}

static const char *partial_sentence(void *ctx, size_t n, Err *err) {
    Build *b = ctx;
    const Sentence *s = haystack_sentence(b->hay, n, err);
    return s ? s->text : NULL;
}

typedef struct {
    Needle needle;
    int answer; /* a needle of a queried key */
    int order;  /* tie-break: answers first, then as drawn */
} Placed;

static int by_depth(const void *a, const void *b) {
    const Placed *x = a, *y = b;
    if (x->needle.depth != y->needle.depth) return x->needle.depth < y->needle.depth ? -1 : 1;
    return x->order - y->order;
}

static int contains_str(char **v, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0) return 1;
    return 0;
}

/* Builds one example; depth < 0 means RULER's random depths. */
static int build_one(const TaskDef *t, const Options *o, const Tokenizer *tok, const char *file_text, int length,
                     int depth, const char *id, ExampleList *out, Err *err) {
    int rc = -1;
    Rng rng;
    rng_seed(&rng, seed_mix(seed_mix(t->seed, hash_string(o->variant->name)), hash_string(id)));
    const char *type_v = value_type_name(o->value_type);
    int n_needles = o->k * o->v, n_answers = o->q * o->v;

    char **keys = NULL, **values = NULL, **texts = NULL;
    int n_keys = 0, n_values = 0, n_texts = 0;
    char **answers = NULL;
    int n_ans = 0;
    Placed *placed = NULL;
    Needle *sorted = NULL;
    size_t *offs = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    Haystack *hay = NULL;
    StrBuf head = {0}, tail = {0}, query = {0}, tmp = {0}, prompt = {0};
    cJSON *extra = NULL;

    /* keys and values, all distinct */
    char buf[64];
    while (n_keys < o->k) {
        random_value(&rng, o->key_type, buf, sizeof buf);
        if (!contains_str(keys, n_keys, buf) && strv_push(&keys, &n_keys, buf)) goto oom;
    }
    while (n_values < n_needles) {
        random_value(&rng, o->value_type, buf, sizeof buf);
        if (!contains_str(values, n_values, buf) && !contains_str(keys, n_keys, buf) &&
            strv_push(&values, &n_values, buf))
            goto oom;
    }
    for (int i = 0; i < n_needles; i++) {
        sb_clear(&tmp);
        if (format_needle(&tmp, type_v, keys[i / o->v], values[i], err)) goto fail;
        if (strv_push(&texts, &n_texts, tmp.s)) goto oom;
    }
    /* which keys are asked for, in the order asked (RULER: random.sample) */
    size_t queried[MAX_NEEDLES];
    rng_sample(&rng, (size_t)o->k, (size_t)o->q, queried);
    for (int i = 0; i < o->q; i++) {
        const char *key = keys[queried[i]];
        /* RULER: ", ".join(all but the last) + ", and " + the last */
        if (i > 0 && sb_puts(&query, i == o->q - 1 ? ", and " : ", ", err)) goto fail;
        if (sb_puts(&query, key, err)) goto fail;
        for (int j = 0; j < o->v; j++)
            if (strv_push(&answers, &n_ans, values[queried[i] * o->v + j])) goto oom;
    }

    /* depths */
    placed = calloc((size_t)n_needles, sizeof *placed);
    sorted = calloc((size_t)n_needles, sizeof *sorted);
    offs = calloc((size_t)n_needles, sizeof *offs);
    if (!placed || !sorted || !offs) goto oom;
    int order[MAX_NEEDLES];
    for (int i = 0; i < n_needles; i++) order[i] = i;
    rng_shuffle(&rng, order, (size_t)n_needles, sizeof *order); /* RULER shuffles the needles */
    for (int i = 0; i < n_needles; i++) {
        int key = order[i] / o->v, asked = 0;
        for (int j = 0; j < o->q; j++) asked |= (int)queried[j] == key;
        placed[i].needle.text = texts[order[i]];
        placed[i].answer = asked;
    }
    /* draws from RULER's 40 depths, without replacement while they last */
    size_t draws[MAX_NEEDLES];
    int n_random = depth < 0 ? n_needles : n_needles - n_answers;
    for (int done = 0; done < n_random;) {
        int chunk = n_random - done < RULER_N_DEPTHS ? n_random - done : RULER_N_DEPTHS;
        rng_sample(&rng, RULER_N_DEPTHS, (size_t)chunk, draws + done);
        done += chunk;
    }
    if (depth < 0) {
        /* RULER: sorted random depths, taken by the shuffled needles in order */
        double d[MAX_NEEDLES];
        for (int i = 0; i < n_needles; i++) d[i] = ruler_depth((int)draws[i]);
        for (int i = 1; i < n_needles; i++)
            for (int j = i; j > 0 && d[j] < d[j - 1]; j--) {
                double x = d[j];
                d[j] = d[j - 1];
                d[j - 1] = x;
            }
        for (int i = 0; i < n_needles; i++) placed[i].needle.depth = d[i], placed[i].order = i;
    } else {
        /* the grid: the answers at depth, depth + step, ... (gkamradt's
           multi-needle spacing); other keys' needles at random depths */
        int a = 0, r = 0;
        double step = (100.0 - depth) / n_answers;
        for (int i = 0; i < n_needles; i++) {
            if (placed[i].answer) {
                placed[i].needle.depth = depth + step * a;
                placed[i].order = a++;
            } else {
                placed[i].needle.depth = ruler_depth((int)draws[r++]);
                placed[i].order = MAX_NEEDLES + i;
            }
        }
    }
    qsort(placed, (size_t)n_needles, sizeof *placed, by_depth);
    int first_answer = -1;
    for (int i = 0; i < n_needles; i++) {
        sorted[i] = placed[i].needle;
        if (placed[i].answer && first_answer < 0) first_answer = i;
    }

    /* the prompt around the haystack */
    const char *tmpl = o->template_text ? o->template_text : NIAH_TEMPLATE;
    const char *prefix = o->answer_prefix ? o->answer_prefix : NIAH_ANSWER_PREFIX;
    int one = n_answers == 1;
    char type_word[16];
    snprintf(type_word, sizeof type_word, "%.*s", one ? (int)strlen(type_v) - 1 : (int)strlen(type_v), type_v);
    StrBuf full = {0};
    if (one && !o->template_text ? singular(&full, tmpl, err) : sb_puts(&full, tmpl, err)) goto fail_full;
    {
        const char *names[] = {"type_needle_v", "query"};
        const char *vals[] = {type_word, query.s};
        char *ctx = strstr(full.s, "{context}");
        *ctx = '\0';
        if (fill_template(&head, full.s, names, vals, 2, err) ||
            fill_template(&tail, ctx + strlen("{context}"), names, vals, 2, err))
            goto fail_full;
        sb_clear(&tmp);
        if (one && !o->answer_prefix ? singular(&tmp, prefix, err) : sb_puts(&tmp, prefix, err)) goto fail_full;
        if (tmp.len) {
            StrBuf filled = {0};
            if (fill_template(&filled, tmp.s, names, vals, 2, err) || sb_puts(&tail, filled.s, err)) {
                sb_free(&filled);
                goto fail_full;
            }
            sb_free(&filled);
        }
    }
    sb_free(&full);
    if (!head.s && sb_puts(&head, "", err)) goto fail;
    if (!tail.s && sb_puts(&tail, "", err)) goto fail;

    /* the haystack, sized to the target */
    HaystackSpec spec = {0};
    spec.kind = o->haystack;
    spec.seed = seed_mix(rng_next(&rng), 0x4861797374616b);
    spec.text = file_text;
    spec.source = o->haystack_file;
    spec.key_type = o->key_type;
    spec.value_type = o->value_type;
    spec.type_needle_v = type_v;
    spec.exclude_keys = (const char *const *)keys;
    spec.n_exclude = (size_t)n_keys;
    spec.tok = tok; /* depths in tokens */
    hay = haystack_open(&spec, err);
    if (!hay) goto fail;
    Build b = {hay, sorted, (size_t)n_needles, head.s, tail.s, offs, 0};
    Fit fit;
    if (fit_prompt(tok, 1, length, o->max_new_tokens, SIZE_MAX, render_prompt, partial_sentence, &b, &fit, err))
        goto fail;
    if (render_prompt(&b, fit.n, fit.part, &prompt, err)) goto fail;

    /* verify what was built, independently of the search */
    if (tokenizer_encode(tok, prompt.s, prompt.len, 1, &ids, &n_ids, err)) goto fail;
    if (check_length(length, (int)n_ids, o->max_new_tokens, err)) goto fail;
    int pos, len, ctx_start, ctx_len, ctx_end, dummy;
    size_t noff = offs[first_answer];
    if (token_span(tok, ids, n_ids, prompt.s, noff, noff + strlen(sorted[first_answer].text), 1, &pos, &len, err) ||
        token_span(tok, ids, n_ids, prompt.s, head.len, b.context_end, 1, &ctx_start, &ctx_len, err))
        goto fail;
    ctx_end = ctx_start + ctx_len;
    /* the haystack's own tokens before the first answer, over all of them
       (needles counted by their tokens on their own) */
    double before = pos - ctx_start, total = ctx_end - ctx_start;
    for (int i = 0; i < n_needles; i++) {
        if (count_tokens(tok, sorted[i].text, strlen(sorted[i].text), 0, &dummy, err)) goto fail;
        total -= dummy;
        if (i < first_answer) before -= dummy;
    }
    double realised = total > 0 ? 100.0 * before / total : 0;

    Example *ex = examples_push(out, err);
    if (!ex) goto fail;
    snprintf(ex->id, sizeof ex->id, "%s", id);
    ex->request = REQ_GENERATE;
    ex->add_bos = 1;
    ex->prompt = sb_take(&prompt);
    ex->max_new_tokens = o->max_new_tokens;
    for (int i = 0; i < o->n_stop; i++)
        if (strv_push(&ex->stop, &ex->n_stop, o->stop[i])) goto oom;
    for (int i = 0; i < n_ans; i++)
        if (strv_push(&ex->targets, &ex->n_targets, answers[i])) goto oom;
    ex->target_tokens = length;
    ex->prompt_tokens = (int)n_ids;
    ex->depth = sorted[first_answer].depth;
    ex->needle_token_pos = pos;
    ex->needle_token_len = len;
    snprintf(ex->group, sizeof ex->group, "%d", length);
    extra = cJSON_CreateObject();
    if (!extra) goto oom;
    cJSON *depths = cJSON_AddArrayToObject(extra, "needle_depths");
    if (!cJSON_AddStringToObject(extra, "variant", o->variant->name) ||
        !cJSON_AddStringToObject(extra, "haystack", haystack_kind_name(o->haystack)) ||
        !cJSON_AddStringToObject(extra, "depth_mode", depth < 0 ? "random" : "grid") ||
        !cJSON_AddNumberToObject(extra, "cell_depth", depth < 0 ? sorted[first_answer].depth : depth) ||
        !cJSON_AddNumberToObject(extra, "realised_depth_percent", (double)(long)(realised * 100 + 0.5) / 100) ||
        !cJSON_AddStringToObject(extra, "query", query.s) || !depths)
        goto oom;
    for (int i = 0; i < n_needles; i++) {
        cJSON *d = cJSON_CreateNumber(sorted[i].depth);
        if (!d || !cJSON_AddItemToArray(depths, d)) goto oom;
    }
    ex->extra = extra;
    extra = NULL;
    rc = 0;
    goto done;
fail_full:
    sb_free(&full);
    goto fail;
oom:
    err_set(err, "out of memory");
fail:
    err_prefix(err, "%s:%d: task \"%s\": example %s (target %d tokens)", t->file ? t->file : "?", t->line, t->name,
               id, length);
done:
    cJSON_Delete(extra);
    haystack_close(hay);
    free(ids);
    free(placed);
    free(sorted);
    free(offs);
    strv_free(keys, n_keys);
    strv_free(values, n_values);
    strv_free(texts, n_texts);
    strv_free(answers, n_ans);
    sb_free(&head);
    sb_free(&tail);
    sb_free(&query);
    sb_free(&tmp);
    sb_free(&prompt);
    return rc;
}

static int niah_build(const TaskDef *t, const Tokenizer *tok, ExampleList *out, Err *err) {
    Options o;
    if (read_options(t, &o, err)) {
        options_free(&o);
        return -1;
    }
    char *file_text = NULL;
    if (o.haystack == HAY_FILE) {
        file_text = read_text_file(o.haystack_file, NULL, err);
        if (!file_text) {
            options_free(&o);
            return err_prefix(err, "%s:%d: task \"%s\": haystack_file", t->file ? t->file : "?", t->line, t->name);
        }
    }
    int rc = 0;
    char id[160];
    for (int li = 0; li < o.n_lengths && rc == 0; li++) {
        int L = o.lengths[li];
        if (o.random_depths) {
            for (int s = 0; s < o.samples && rc == 0; s++) {
                snprintf(id, sizeof id, "L%d_s%d", L, s);
                rc = build_one(t, &o, tok, file_text, L, -1, id, out, err);
            }
        } else {
            for (int di = 0; di < o.n_depths && rc == 0; di++)
                for (int s = 0; s < o.samples && rc == 0; s++) {
                    snprintf(id, sizeof id, "L%d_D%d_s%d", L, o.depths[di], s);
                    rc = build_one(t, &o, tok, file_text, L, o.depths[di], id, out, err);
                }
        }
    }
    free(file_text);
    options_free(&o);
    return rc;
}

/* ---------------------------------------------------------------- scoring */

static int niah_score(const TaskDef *t, const Example *ex, const Prediction *p, Scores *out, Err *err) {
    return score_ruler(p->text, ex->targets, ex->n_targets, t->metric, out, err);
}

const TaskKind kind_niah = {
    .name = "niah",
    .fields = niah_fields,
    .validate = niah_validate,
    .build = niah_build,
    .score = niah_score,
};
