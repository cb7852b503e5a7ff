/* loaders.c: public dataset formats -> the records of loaders.h.

   Messages name where the record is ("file:line" for JSONL, "file: $.path"
   for whole-file JSON), the field, and what was expected, e.g.
     arc.jsonl:4: field "answerKey": "E" is not among the choice labels [A, B, C, D]
     dev.json: $.data[0].paragraphs[2].qas[1]: field "question": expected a string, got a number */
#include "loaders.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"

/* ================================================================ small helpers */

/* snprintf for message prefixes: a path cut short is still a useful message
   (and going through vsnprintf keeps -Wformat-truncation quiet about it). */
static void fmtw(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fmtw(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s);
    char *p = malloc(n + 1);
    if (p) memcpy(p, s, n + 1);
    return p;
}

static int oom(Err *err, const char *where) { return err_set(err, "%s: out of memory", where); }

/* Grows *items (of elem bytes each) to hold at least need; 0 or -1. */
static int grow(void **items, int *cap, int need, size_t elem) {
    if (need <= *cap) return 0;
    int cap2 = *cap ? *cap : 16;
    while (cap2 < need) {
        if (cap2 > INT_MAX / 2) return -1;
        cap2 *= 2;
    }
    void *p = realloc(*items, (size_t)cap2 * elem);
    if (!p) return -1;
    memset((char *)p + (size_t)*cap * elem, 0, (size_t)(cap2 - *cap) * elem);
    *items = p;
    *cap = cap2;
    return 0;
}

static const char *type_name(const cJSON *v) {
    if (!v) return "nothing";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "something else";
}

static const cJSON *get(const cJSON *obj, const char *field) {
    return cJSON_GetObjectItemCaseSensitive(obj, field);
}

static int present(const cJSON *v) { return v && !cJSON_IsNull(v); }

static int missing(const char *where, const char *field, Err *err) {
    return err_set(err, "%s: field \"%s\": missing", where, field);
}

static int wrong_type(const char *where, const char *field, const char *want, const cJSON *got, Err *err) {
    return err_set(err, "%s: field \"%s\": expected %s, got %s", where, field, want, type_name(got));
}

/* A string field. Absent (or null) is an error when required, else *out = NULL. */
static int field_string(const cJSON *obj, const char *field, int required, const char *where, char **out, Err *err) {
    *out = NULL;
    const cJSON *v = get(obj, field);
    if (!present(v)) return required ? missing(where, field, err) : 0;
    if (!cJSON_IsString(v)) return wrong_type(where, field, "a string", v, err);
    if (!(*out = dup_str(v->valuestring))) return oom(err, where);
    return 0;
}

/* Formats an integral JSON number as decimal text; 0, or -1 if not integral. */
static int integer_text(const cJSON *v, char *buf, size_t cap) {
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || fabs(d) > 9007199254740992.0) return -1;
    snprintf(buf, cap, "%.0f", d);
    return 0;
}

/* An id: a string or an integer, kept as text. */
static int field_id(const cJSON *obj, const char *field, const char *where, char **out, Err *err) {
    *out = NULL;
    const cJSON *v = get(obj, field);
    if (!present(v)) return 0;
    char buf[64];
    if (cJSON_IsString(v)) {
        *out = dup_str(v->valuestring);
    } else if (cJSON_IsNumber(v) && integer_text(v, buf, sizeof buf) == 0) {
        *out = dup_str(buf);
    } else {
        return wrong_type(where, field, "a string or an integer", v, err);
    }
    return *out ? 0 : oom(err, where);
}

/* An integer label given as a JSON integer or as a string of digits ("2"). */
static int field_label(const cJSON *obj, const char *field, const char *where, int *out, Err *err) {
    const cJSON *v = get(obj, field);
    if (!present(v)) return missing(where, field, err);
    if (cJSON_IsNumber(v)) {
        char buf[64];
        if (integer_text(v, buf, sizeof buf) || fabs(v->valuedouble) > 1e6)
            return err_set(err, "%s: field \"%s\": expected an integer label, got %g", where, field, v->valuedouble);
        *out = (int)v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        char *end = NULL;
        errno = 0;
        long n = strtol(s, &end, 10);
        if (!*s || isspace((unsigned char)*s) || *end || errno || n < -1000000 || n > 1000000)
            return err_set(err, "%s: field \"%s\": expected an integer label, got \"%s\"%s", where, field, s,
                           *s ? "" : " (an unlabelled split?)");
        *out = (int)n;
        return 0;
    }
    return wrong_type(where, field, "an integer (or a string of digits)", v, err);
}

/* An array of strings (or integers kept as text, when allow_ints). */
static int field_string_array(const cJSON *obj, const char *field, int required, int allow_ints, const char *where,
                              char ***out, int *n, Err *err) {
    *out = NULL;
    *n = 0;
    const cJSON *v = get(obj, field);
    if (!present(v)) return required ? missing(where, field, err) : 0;
    if (!cJSON_IsArray(v)) return wrong_type(where, field, "an array", v, err);
    int count = cJSON_GetArraySize(v);
    char **items = calloc((size_t)(count ? count : 1), sizeof *items);
    if (!items) return oom(err, where);
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, v) {
        char buf[64];
        if (cJSON_IsString(item)) {
            items[i] = dup_str(item->valuestring);
        } else if (allow_ints && cJSON_IsNumber(item) && integer_text(item, buf, sizeof buf) == 0) {
            items[i] = dup_str(buf);
        } else {
            for (int j = 0; j < i; j++) free(items[j]);
            free(items);
            return err_set(err, "%s: field \"%s\": item %d: expected %s, got %s", where, field, i,
                           allow_ints ? "a string or an integer" : "a string", type_name(item));
        }
        if (!items[i]) {
            for (int j = 0; j < i; j++) free(items[j]);
            free(items);
            return oom(err, where);
        }
        i++;
    }
    *out = items;
    *n = count;
    return 0;
}

static void free_strv(char **v, int n) {
    if (!v) return;
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* ================================================================ string index (open addressing) */

/* Maps strings (owned elsewhere) to ints; used to deduplicate documents and
   to check that ids are unique. */
typedef struct {
    const char **keys;
    int *vals;
    size_t cap, n;
} StrIndex;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void strindex_free(StrIndex *ix) {
    free(ix->keys);
    free(ix->vals);
    memset(ix, 0, sizeof *ix);
}

static int strindex_grow(StrIndex *ix) {
    size_t cap = ix->cap ? ix->cap * 2 : 1024;
    StrIndex bigger = {calloc(cap, sizeof(char *)), calloc(cap, sizeof(int)), cap, 0};
    if (!bigger.keys || !bigger.vals) {
        strindex_free(&bigger);
        return -1;
    }
    for (size_t i = 0; i < ix->cap; i++) {
        if (!ix->keys[i]) continue;
        size_t at = hash_str(ix->keys[i]) & (cap - 1);
        while (bigger.keys[at]) at = (at + 1) & (cap - 1);
        bigger.keys[at] = ix->keys[i];
        bigger.vals[at] = ix->vals[i];
        bigger.n++;
    }
    strindex_free(ix);
    *ix = bigger;
    return 0;
}

/* Value stored for s, or -1. */
static int strindex_get(const StrIndex *ix, const char *s) {
    if (!ix->cap) return -1;
    size_t at = hash_str(s) & (ix->cap - 1);
    while (ix->keys[at]) {
        if (strcmp(ix->keys[at], s) == 0) return ix->vals[at];
        at = (at + 1) & (ix->cap - 1);
    }
    return -1;
}

/* Adds s -> val (s must not be present, and must outlive the index). 0 or -1 (memory). */
static int strindex_put(StrIndex *ix, const char *s, int val) {
    if ((ix->n + 1) * 2 > ix->cap && strindex_grow(ix)) return -1;
    size_t at = hash_str(s) & (ix->cap - 1);
    while (ix->keys[at]) at = (at + 1) & (ix->cap - 1);
    ix->keys[at] = s;
    ix->vals[at] = val;
    ix->n++;
    return 0;
}

/* ================================================================ whole-file JSON */

/* Parses a whole JSON file; a syntax error names the line and column. */
static cJSON *parse_json_file(const char *path, Err *err) {
    size_t len = 0;
    char *text = read_text_file(path, &len, err);
    if (!text) return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        int line = 1, col = 1;
        for (size_t i = 0; i < at; i++) {
            if (text[i] == '\n') line++, col = 1;
            else col++;
        }
        err_set(err, "%s:%d:%d: not valid JSON", path, line, col);
    } else {
        size_t at = (size_t)(end - text);
        while (at < len && isspace((unsigned char)text[at])) at++;
        if (at < len) {
            cJSON_Delete(root);
            root = NULL;
            err_set(err, "%s: not valid JSON: unexpected text after the value at byte %zu", path, at);
        }
    }
    free(text);
    return root;
}

/* ================================================================ Based JSONL */

static void based_record_free(BasedRecord *r) {
    free(r->id);
    free(r->doc_id);
    free(r->text);
    free(r->value);
    free(r->key);
    free(r->title);
    free(r->context);
    free(r->question);
    free_strv(r->fewshot_ids, r->n_fewshot_ids);
}

void based_set_free(BasedSet *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) based_record_free(&s->items[i]);
    free(s->items);
    s->items = NULL;
    s->n = 0;
}

int based_find(const BasedSet *s, const char *id) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->items[i].id, id) == 0) return i;
    return -1;
}

static int based_record_read(const cJSON *obj, const char *where, int index, BasedRecord *r, Err *err) {
    if (field_string(obj, "text", 1, where, &r->text, err) || field_string(obj, "value", 1, where, &r->value, err) ||
        field_string(obj, "key", 0, where, &r->key, err) || field_string(obj, "title", 0, where, &r->title, err) ||
        field_string(obj, "context", 0, where, &r->context, err) ||
        field_string(obj, "question", 0, where, &r->question, err) ||
        field_string_array(obj, "fewshot_ids", 0, 1, where, &r->fewshot_ids, &r->n_fewshot_ids, err))
        return -1;
    if (field_id(obj, "doc_id", where, &r->doc_id, err)) return -1;
    if (!r->doc_id && field_id(obj, "id", where, &r->doc_id, err)) return -1;
    char buf[32];
    snprintf(buf, sizeof buf, "%d", index);
    if (!(r->id = dup_str(buf))) return oom(err, where);
    return 0;
}

int load_based_jsonl(const char *path, BasedSet *out, Err *err) {
    memset(out, 0, sizeof *out);
    JsonlReader *rd = jsonl_open(path, err);
    if (!rd) return -1;
    int cap = 0, rc = 0, line = 0;
    cJSON *obj = NULL;
    while ((rc = jsonl_next(rd, &obj, &line, err)) == 1) {
        char where[4200];
        fmtw(where, sizeof where, "%s:%d", path, line);
        if (grow((void **)&out->items, &cap, out->n + 1, sizeof *out->items)) {
            cJSON_Delete(obj);
            rc = oom(err, where);
            break;
        }
        BasedRecord *r = &out->items[out->n];
        r->line = line;
        out->n++;
        rc = based_record_read(obj, where, out->n - 1, r, err);
        cJSON_Delete(obj);
        obj = NULL;
        if (rc) break;
    }
    jsonl_close(rd);
    if (rc < 0) {
        based_set_free(out);
        return -1;
    }
    if (out->n == 0) return err_set(err, "%s: no records", path);
    return 0;
}

/* ================================================================ SQuAD v2.0 JSON */

static void squad_qa_free(SquadQA *q) {
    free(q->id);
    free(q->question);
    free_strv(q->answers, q->n_answers);
    free(q->answer_starts);
    free(q->statement);
}

void squad_set_free(SquadSet *s) {
    if (!s) return;
    for (int i = 0; i < s->n_paragraphs; i++) {
        free(s->paragraphs[i].context);
        free(s->paragraphs[i].title);
    }
    for (int i = 0; i < s->n_qas; i++) squad_qa_free(&s->qas[i]);
    free(s->paragraphs);
    free(s->qas);
    memset(s, 0, sizeof *s);
}

static int array_field(const cJSON *obj, const char *field, const char *where, const cJSON **out, Err *err) {
    const cJSON *v = get(obj, field);
    if (!present(v)) return missing(where, field, err);
    if (!cJSON_IsArray(v)) return wrong_type(where, field, "an array", v, err);
    *out = v;
    return 0;
}

static int object_at(const cJSON *v, const char *where, Err *err) {
    if (!cJSON_IsObject(v)) return err_set(err, "%s: expected an object, got %s", where, type_name(v));
    return 0;
}

static int squad_answers(const cJSON *qa, const char *where, SquadQA *q, Err *err) {
    const cJSON *answers = NULL;
    if (array_field(qa, "answers", where, &answers, err)) return -1;
    int n = cJSON_GetArraySize(answers);
    q->answers = calloc((size_t)(n ? n : 1), sizeof *q->answers);
    q->answer_starts = calloc((size_t)(n ? n : 1), sizeof *q->answer_starts);
    if (!q->answers || !q->answer_starts) return oom(err, where);
    int i = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, answers) {
        char at[4300];
        fmtw(at, sizeof at, "%s.answers[%d]", where, i);
        if (object_at(a, at, err) || field_string(a, "text", 1, at, &q->answers[i], err)) return -1;
        q->n_answers = i + 1;
        const cJSON *start = get(a, "answer_start");
        q->answer_starts[i] = -1;
        if (present(start)) {
            char buf[64];
            if (!cJSON_IsNumber(start) || integer_text(start, buf, sizeof buf))
                return wrong_type(at, "answer_start", "an integer", start, err);
            q->answer_starts[i] = (int)start->valuedouble;
        }
        i++;
    }
    return 0;
}

/* One question; returns 1 if kept, 0 if skipped (unanswerable), -1 on error. */
static int squad_question(const cJSON *qa, const char *where, int answerable_only, int paragraph, SquadQA *q,
                          Err *err) {
    memset(q, 0, sizeof *q);
    if (object_at(qa, where, err)) return -1;
    const cJSON *imp = get(qa, "is_impossible");
    if (present(imp) && !cJSON_IsBool(imp)) return wrong_type(where, "is_impossible", "a boolean", imp, err);
    q->is_impossible = present(imp) && cJSON_IsTrue(imp);
    if (q->is_impossible && answerable_only) return 0;
    q->paragraph = paragraph;
    if (field_id(qa, "id", where, &q->id, err) || field_string(qa, "question", 1, where, &q->question, err) ||
        field_string(qa, "statement", 0, where, &q->statement, err) || squad_answers(qa, where, q, err))
        return -1;
    if (!q->id) return missing(where, "id", err);
    if (!q->is_impossible && q->n_answers == 0)
        return err_set(err, "%s: field \"answers\": empty for an answerable question", where);
    const char *dollar = strstr(where, "$.");
    fmtw(q->path, sizeof q->path, "%s", dollar ? dollar : where);
    return 1;
}

/* Adds a paragraph's context (deduplicated); *index gets its position. */
static int squad_paragraph(SquadSet *s, int *cap, StrIndex *seen, const char *context, const char *title, int article,
                           int *index, const char *where, Err *err) {
    int found = strindex_get(seen, context);
    if (found >= 0) {
        *index = found;
        return 0;
    }
    if (grow((void **)&s->paragraphs, cap, s->n_paragraphs + 1, sizeof *s->paragraphs)) return oom(err, where);
    SquadParagraph *p = &s->paragraphs[s->n_paragraphs];
    p->context = dup_str(context);
    p->title = dup_str(title ? title : "");
    p->article = article;
    if (!p->context || !p->title) return oom(err, where);
    *index = s->n_paragraphs++;
    if (strindex_put(seen, p->context, *index)) return oom(err, where);
    return 0;
}

static int squad_walk(const cJSON *root, const char *path, int answerable_only, SquadSet *s, Err *err) {
    char where[4400];
    fmtw(where, sizeof where, "%s: $", path);
    if (object_at(root, where, err)) return -1;
    const cJSON *data = NULL;
    if (array_field(root, "data", where, &data, err)) return -1;
    int cap_p = 0, cap_q = 0, a = 0, rc = 0;
    StrIndex seen = {0};
    const cJSON *article;
    cJSON_ArrayForEach(article, data) {
        fmtw(where, sizeof where, "%s: $.data[%d]", path, a);
        char *title = NULL;
        const cJSON *paragraphs = NULL;
        if ((rc = object_at(article, where, err)) || (rc = field_string(article, "title", 0, where, &title, err)) ||
            (rc = array_field(article, "paragraphs", where, &paragraphs, err)))
            break;
        int p = 0;
        const cJSON *para;
        cJSON_ArrayForEach(para, paragraphs) {
            char pwhere[4400];
            fmtw(pwhere, sizeof pwhere, "%s: $.data[%d].paragraphs[%d]", path, a, p);
            char *context = NULL;
            const cJSON *qas = NULL;
            int index = -1;
            if ((rc = object_at(para, pwhere, err)) || (rc = field_string(para, "context", 1, pwhere, &context, err)) ||
                (rc = array_field(para, "qas", pwhere, &qas, err)) ||
                (rc = squad_paragraph(s, &cap_p, &seen, context, title, a, &index, pwhere, err))) {
                free(context);
                break;
            }
            free(context);
            int k = 0;
            const cJSON *qa;
            cJSON_ArrayForEach(qa, qas) {
                char qwhere[4400];
                fmtw(qwhere, sizeof qwhere, "%s.qas[%d]", pwhere, k++);
                if (grow((void **)&s->qas, &cap_q, s->n_qas + 1, sizeof *s->qas)) {
                    rc = oom(err, qwhere);
                    break;
                }
                int kept = squad_question(qa, qwhere, answerable_only, index, &s->qas[s->n_qas], err);
                if (kept < 0) {
                    squad_qa_free(&s->qas[s->n_qas]);
                    rc = -1;
                    break;
                }
                if (kept) s->n_qas++;
            }
            if (rc) break;
            p++;
        }
        free(title);
        if (rc) break;
        a++;
    }
    s->n_articles = a;
    strindex_free(&seen);
    return rc ? -1 : 0;
}

int load_squad_v2(const char *path, int answerable_only, SquadSet *out, Err *err) {
    memset(out, 0, sizeof *out);
    cJSON *root = parse_json_file(path, err);
    if (!root) return -1;
    int rc = squad_walk(root, path, answerable_only, out, err);
    cJSON_Delete(root);
    if (rc) {
        squad_set_free(out);
        return -1;
    }
    if (out->n_qas == 0) return err_set(err, "%s: no%s questions", path, answerable_only ? " answerable" : "");
    return 0;
}

/* ================================================================ HotpotQA JSON */

void hotpot_set_free(HotpotSet *s) {
    if (!s) return;
    free_strv(s->docs, s->n_docs);
    for (int i = 0; i < s->n_qas; i++) {
        free(s->qas[i].id);
        free(s->qas[i].question);
        free(s->qas[i].answer);
        free(s->qas[i].docs);
    }
    free(s->qas);
    memset(s, 0, sizeof *s);
}

/* One [title, [sentences...]] entry as "title\n" + sentences joined with nothing. */
static char *hotpot_doc(const cJSON *entry, const char *where, Err *err) {
    if (!cJSON_IsArray(entry) || cJSON_GetArraySize(entry) != 2 || !cJSON_IsString(cJSON_GetArrayItem(entry, 0)) ||
        !cJSON_IsArray(cJSON_GetArrayItem(entry, 1))) {
        err_set(err, "%s: expected [title, [sentences...]], got %s", where, type_name(entry));
        return NULL;
    }
    const char *title = cJSON_GetArrayItem(entry, 0)->valuestring;
    const cJSON *sentences = cJSON_GetArrayItem(entry, 1);
    size_t len = strlen(title) + 2;
    const cJSON *s;
    int i = 0;
    cJSON_ArrayForEach(s, sentences) {
        if (!cJSON_IsString(s)) {
            err_set(err, "%s[1][%d]: expected a string (a sentence), got %s", where, i, type_name(s));
            return NULL;
        }
        len += strlen(s->valuestring);
        i++;
    }
    char *doc = malloc(len);
    if (!doc) {
        oom(err, where);
        return NULL;
    }
    size_t at = (size_t)sprintf(doc, "%s\n", title);
    cJSON_ArrayForEach(s, sentences) {
        size_t n = strlen(s->valuestring);
        memcpy(doc + at, s->valuestring, n);
        at += n;
    }
    doc[at] = 0;
    return doc;
}

static int hotpot_question(const cJSON *item, const char *where, HotpotSet *s, int *cap_docs, StrIndex *seen,
                           HotpotQA *q, Err *err) {
    memset(q, 0, sizeof *q);
    const cJSON *context = NULL;
    if (object_at(item, where, err) || field_id(item, "_id", where, &q->id, err) ||
        field_string(item, "question", 1, where, &q->question, err) ||
        field_string(item, "answer", 1, where, &q->answer, err) || array_field(item, "context", where, &context, err))
        return -1;
    if (!q->id) return missing(where, "_id", err);
    int n = cJSON_GetArraySize(context);
    if (n == 0) return err_set(err, "%s: field \"context\": empty", where);
    if (!(q->docs = calloc((size_t)n, sizeof *q->docs))) return oom(err, where);
    const cJSON *entry;
    cJSON_ArrayForEach(entry, context) {
        char at[4400];
        fmtw(at, sizeof at, "%s.context[%d]", where, q->n_docs);
        char *doc = hotpot_doc(entry, at, err);
        if (!doc) return -1;
        int index = strindex_get(seen, doc);
        if (index < 0) {
            if (grow((void **)&s->docs, cap_docs, s->n_docs + 1, sizeof *s->docs)) {
                free(doc);
                return oom(err, at);
            }
            index = s->n_docs;
            s->docs[s->n_docs++] = doc;
            if (strindex_put(seen, doc, index)) return oom(err, at);
        } else {
            free(doc);
        }
        q->docs[q->n_docs++] = index;
    }
    return 0;
}

int load_hotpotqa(const char *path, HotpotSet *out, Err *err) {
    memset(out, 0, sizeof *out);
    cJSON *root = parse_json_file(path, err);
    if (!root) return -1;
    int rc = 0, cap_docs = 0, cap_q = 0, i = 0;
    StrIndex seen = {0};
    if (!cJSON_IsArray(root)) {
        rc = err_set(err, "%s: $: expected an array of questions, got %s", path, type_name(root));
    } else {
        const cJSON *item;
        cJSON_ArrayForEach(item, root) {
            char where[4300];
            fmtw(where, sizeof where, "%s: $[%d]", path, i++);
            if (grow((void **)&out->qas, &cap_q, out->n_qas + 1, sizeof *out->qas)) {
                rc = oom(err, where);
                break;
            }
            HotpotQA *q = &out->qas[out->n_qas++];
            if ((rc = hotpot_question(item, where, out, &cap_docs, &seen, q, err))) break;
        }
    }
    strindex_free(&seen);
    cJSON_Delete(root);
    if (rc) {
        hotpot_set_free(out);
        return -1;
    }
    if (out->n_qas == 0) return err_set(err, "%s: no questions", path);
    return 0;
}

/* ================================================================ multiple choice */

int mc_dataset_from_name(const char *name, McDataset *out) {
    static const struct {
        const char *name;
        McDataset ds;
    } names[] = {{"piqa", MC_PIQA},           {"arc_easy", MC_ARC},          {"arc_challenge", MC_ARC},
                 {"hellaswag", MC_HELLASWAG}, {"winogrande", MC_WINOGRANDE}, {"openbookqa", MC_OBQA}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i].name, name) == 0) {
            *out = names[i].ds;
            return 0;
        }
    return -1;
}

int mc_format_from_name(const char *name, McFormat *out) {
    if (strcmp(name, "auto") == 0) *out = MC_FORMAT_AUTO;
    else if (strcmp(name, "hf") == 0) *out = MC_FORMAT_HF;
    else if (strcmp(name, "original") == 0) *out = MC_FORMAT_ORIGINAL;
    else return -1;
    return 0;
}

static void mc_record_free(McRecord *r) {
    free(r->id);
    free(r->question);
    free(r->activity_label);
    free(r->ctx_a);
    free(r->ctx_b);
    free_strv(r->choices, r->n_choices);
    free_strv(r->labels, r->labels ? r->n_choices : 0);
}

void mc_set_free(McSet *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) mc_record_free(&s->items[i]);
    free(s->items);
    s->items = NULL;
    s->n = 0;
}

static int label_in_range(const char *where, const char *field, int label, int lo, int n, Err *err) {
    if (label < lo || label >= lo + n)
        return err_set(err, "%s: field \"%s\": %d is out of range (%d choices, labelled %d..%d)", where, field, label, n,
                       lo, lo + n - 1);
    return 0;
}

/* choices as the HF exports keep them: {"text": [...], "label": [...]} */
static int choices_hf(const cJSON *obj, const char *where, McRecord *r, Err *err) {
    const cJSON *c = get(obj, "choices");
    if (!present(c)) return missing(where, "choices", err);
    if (!cJSON_IsObject(c)) return wrong_type(where, "choices", "an object {text, label}", c, err);
    char at[4300];
    fmtw(at, sizeof at, "%s: field \"choices\"", where);
    int n_labels = 0;
    if (field_string_array(c, "text", 1, 0, at, &r->choices, &r->n_choices, err) ||
        field_string_array(c, "label", 1, 0, at, &r->labels, &n_labels, err))
        return -1;
    if (n_labels != r->n_choices) {
        free_strv(r->labels, n_labels);
        r->labels = NULL;
        return err_set(err, "%s: field \"choices\": %d texts but %d labels", where, r->n_choices, n_labels);
    }
    return 0;
}

/* choices as the AI2 originals keep them: "question": {"stem", "choices": [{"text", "label"}]} */
static int question_original(const cJSON *obj, const char *where, McRecord *r, Err *err) {
    const cJSON *q = get(obj, "question");
    if (!present(q)) return missing(where, "question", err);
    if (!cJSON_IsObject(q)) return wrong_type(where, "question", "an object {stem, choices}", q, err);
    char at[4300];
    fmtw(at, sizeof at, "%s: field \"question\"", where);
    if (field_string(q, "stem", 1, at, &r->question, err)) return -1;
    const cJSON *choices = get(q, "choices");
    if (!present(choices)) return missing(at, "choices", err);
    if (!cJSON_IsArray(choices)) return wrong_type(at, "choices", "an array", choices, err);
    int n = cJSON_GetArraySize(choices);
    r->choices = calloc((size_t)(n ? n : 1), sizeof *r->choices);
    r->labels = calloc((size_t)(n ? n : 1), sizeof *r->labels);
    if (!r->choices || !r->labels) return oom(err, where);
    const cJSON *c;
    cJSON_ArrayForEach(c, choices) {
        char cat[4400];
        fmtw(cat, sizeof cat, "%s.choices[%d]", at, r->n_choices);
        if (!cJSON_IsObject(c)) return err_set(err, "%s: expected an object {text, label}, got %s", cat, type_name(c));
        int i = r->n_choices++;
        if (field_string(c, "text", 1, cat, &r->choices[i], err) || field_string(c, "label", 1, cat, &r->labels[i], err))
            return -1;
    }
    return 0;
}

/* gold = index of answerKey (lstripped for OBQA, as lm-eval does) among the labels. */
static int gold_from_key(const cJSON *obj, const char *where, int lstrip, McRecord *r, Err *err) {
    char *key = NULL;
    if (field_string(obj, "answerKey", 1, where, &key, err)) return -1;
    const char *k = key;
    while (lstrip && *k && isspace((unsigned char)*k)) k++;
    r->gold = -1;
    for (int i = 0; i < r->n_choices; i++)
        if (strcmp(r->labels[i], k) == 0) {
            r->gold = i;
            break;
        }
    if (r->gold < 0) {
        char list[512];
        size_t at = 0;
        list[0] = 0;
        for (int i = 0; i < r->n_choices && at + 8 < sizeof list; i++)
            at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", i ? ", " : "", r->labels[i]);
        err_set(err, "%s: field \"answerKey\": \"%s\" is not among the choice labels [%s]", where, key, list);
    }
    free(key);
    return r->gold < 0 ? -1 : 0;
}

static int mc_piqa(const cJSON *obj, const char *where, int labelled, McRecord *r, Err *err) {
    r->n_choices = 2;
    if (!(r->choices = calloc(2, sizeof *r->choices))) return oom(err, where);
    if (field_string(obj, "goal", 1, where, &r->question, err) ||
        field_string(obj, "sol1", 1, where, &r->choices[0], err) ||
        field_string(obj, "sol2", 1, where, &r->choices[1], err))
        return -1;
    if (!labelled) return 0;
    return field_label(obj, "label", where, &r->gold, err) || label_in_range(where, "label", r->gold, 0, 2, err);
}

static int mc_arc_obqa(const cJSON *obj, const char *where, McDataset ds, McFormat fmt, McRecord *r, Err *err) {
    if (fmt == MC_FORMAT_AUTO) fmt = cJSON_IsObject(get(obj, "question")) ? MC_FORMAT_ORIGINAL : MC_FORMAT_HF;
    int rc;
    if (fmt == MC_FORMAT_ORIGINAL) rc = question_original(obj, where, r, err);
    else
        rc = field_string(obj, ds == MC_ARC ? "question" : "question_stem", 1, where, &r->question, err) ||
             choices_hf(obj, where, r, err);
    if (rc) return -1;
    if (r->n_choices == 0) return err_set(err, "%s: field \"choices\": empty", where);
    return gold_from_key(obj, where, ds == MC_OBQA, r, err);
}

static int mc_hellaswag(const cJSON *obj, const char *where, McRecord *r, Err *err) {
    if (field_string(obj, "activity_label", 1, where, &r->activity_label, err) ||
        field_string(obj, "ctx_a", 1, where, &r->ctx_a, err) || field_string(obj, "ctx_b", 1, where, &r->ctx_b, err) ||
        field_string_array(obj, "endings", 1, 0, where, &r->choices, &r->n_choices, err))
        return -1;
    if (r->n_choices == 0) return err_set(err, "%s: field \"endings\": empty", where);
    return field_label(obj, "label", where, &r->gold, err) ||
           label_in_range(where, "label", r->gold, 0, r->n_choices, err);
}

static int mc_winogrande(const cJSON *obj, const char *where, McRecord *r, Err *err) {
    r->n_choices = 2;
    if (!(r->choices = calloc(2, sizeof *r->choices))) return oom(err, where);
    if (field_string(obj, "sentence", 1, where, &r->question, err) ||
        field_string(obj, "option1", 1, where, &r->choices[0], err) ||
        field_string(obj, "option2", 1, where, &r->choices[1], err))
        return -1;
    if (!strchr(r->question, '_')) return err_set(err, "%s: field \"sentence\": has no \"_\" blank", where);
    int answer = 0;
    if (field_label(obj, "answer", where, &answer, err) || label_in_range(where, "answer", answer, 1, 2, err))
        return -1;
    r->gold = answer - 1;
    return 0;
}

static int mc_record(const cJSON *obj, const char *where, int index, McDataset ds, McFormat fmt, int piqa_labelled,
                     McRecord *r, Err *err) {
    static const char *const id_fields[] = {"id", "qID", "ind", NULL};
    for (int i = 0; id_fields[i] && !r->id; i++)
        if (field_id(obj, id_fields[i], where, &r->id, err)) return -1;
    if (!r->id) {
        char buf[32];
        snprintf(buf, sizeof buf, "%d", index);
        if (!(r->id = dup_str(buf))) return oom(err, where);
    }
    switch (ds) {
    case MC_PIQA: return mc_piqa(obj, where, piqa_labelled, r, err);
    case MC_ARC:
    case MC_OBQA: return mc_arc_obqa(obj, where, ds, fmt, r, err);
    case MC_HELLASWAG: return mc_hellaswag(obj, where, r, err);
    case MC_WINOGRANDE: return mc_winogrande(obj, where, r, err);
    }
    return err_set(err, "%s: unknown dataset", where);
}

/* PIQA's valid-labels.lst: one integer per line, in record order. */
static int read_piqa_labels(const char *labels_path, McSet *s, Err *err) {
    size_t len = 0;
    char *text = read_text_file(labels_path, &len, err);
    if (!text) return -1;
    int line = 0, k = 0, rc = 0;
    char *p = text;
    while (*p && !rc) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        line++;
        char *s0 = p;
        while (*s0 && isspace((unsigned char)*s0)) s0++;
        char *e = s0 + strlen(s0);
        while (e > s0 && isspace((unsigned char)e[-1])) *--e = 0;
        if (*s0) {
            char *end = NULL;
            long v = strtol(s0, &end, 10);
            if (*end || end == s0) rc = err_set(err, "%s:%d: expected a label 0 or 1, got \"%s\"", labels_path, line, s0);
            else if (k >= s->n)
                rc = err_set(err, "%s:%d: more labels than the %d records of the data file", labels_path, line, s->n);
            else if (v < 0 || v > 1)
                rc = err_set(err, "%s:%d: label %ld is out of range (2 choices, labelled 0..1)", labels_path, line, v);
            else s->items[k++].gold = (int)v;
        }
        if (!nl) break;
        p = nl + 1;
    }
    free(text);
    if (!rc && k < s->n)
        rc = err_set(err, "%s: %d labels for the %d records of the data file", labels_path, k, s->n);
    return rc;
}

int load_mc(const char *path, McDataset ds, McFormat fmt, const char *labels_path, McSet *out, Err *err) {
    memset(out, 0, sizeof *out);
    int piqa_labelled = 1;
    if (ds == MC_PIQA) {
        if (fmt == MC_FORMAT_ORIGINAL && !labels_path)
            return err_set(err, "%s: PIQA's original release keeps its labels apart: set `labels` "
                                "(e.g. valid-labels.lst)", path);
        if (fmt == MC_FORMAT_HF && labels_path)
            return err_set(err, "%s: `labels` is for PIQA's original release; the HF export has a label field", path);
        piqa_labelled = labels_path == NULL;
    } else if (labels_path) {
        return err_set(err, "%s: `labels` (a separate label file) exists only for PIQA's original release", path);
    }
    JsonlReader *rd = jsonl_open(path, err);
    if (!rd) return -1;
    int cap = 0, rc = 0, line = 0;
    StrIndex ids = {0};
    cJSON *obj = NULL;
    while ((rc = jsonl_next(rd, &obj, &line, err)) == 1) {
        char where[4200];
        fmtw(where, sizeof where, "%s:%d", path, line);
        if (grow((void **)&out->items, &cap, out->n + 1, sizeof *out->items)) {
            cJSON_Delete(obj);
            rc = oom(err, where);
            break;
        }
        McRecord *r = &out->items[out->n++];
        r->line = line;
        rc = mc_record(obj, where, out->n - 1, ds, fmt, piqa_labelled, r, err);
        cJSON_Delete(obj);
        if (rc) break;
        int seen = strindex_get(&ids, r->id);
        if (seen >= 0) {
            rc = err_set(err, "%s: id \"%s\" repeats the record on line %d (ids must be unique)", where, r->id,
                         out->items[seen].line);
            break;
        }
        if (strindex_put(&ids, r->id, out->n - 1)) {
            rc = oom(err, where);
            break;
        }
    }
    jsonl_close(rd);
    strindex_free(&ids);
    if (rc == 0 && out->n == 0) rc = err_set(err, "%s: no records", path);
    if (rc == 0 && !piqa_labelled) rc = read_piqa_labels(labels_path, out, err);
    if (rc) {
        mc_set_free(out);
        return -1;
    }
    return 0;
}

/* ================================================================ text helpers */

/* Decodes one UTF-8 sequence at s (n bytes left); returns its length (>= 1).
   Invalid bytes decode as themselves (one byte, code point 0xFFFD). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char c = s[0];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || len > n) {
        *cp = 0xFFFD;
        return 1;
    }
    uint32_t v = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    *cp = v;
    return len;
}

int py_isspace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

char *py_strip(const char *s) {
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), start = 0, end = 0;
    int seen_text = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_next(u + i, n - i, &cp);
        if (!py_isspace(cp)) {
            if (!seen_text) start = i;
            seen_text = 1;
            end = i + len;
        }
        i += len;
    }
    if (!seen_text) start = end = 0;
    char *out = malloc(end - start + 1);
    if (!out) return NULL;
    memcpy(out, s + start, end - start);
    out[end - start] = 0;
    return out;
}

size_t utf8_chars(const char *s) {
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), count = 0;
    for (size_t i = 0; i < n; count++) {
        uint32_t cp;
        i += utf8_next(u + i, n - i, &cp);
    }
    return count;
}

int resolve_relative(const char *base_file, const char *path, char *out, size_t cap) {
    if (path[0] == '/' || !base_file || !strchr(base_file, '/')) {
        if (strlen(path) + 1 > cap) return -1;
        strcpy(out, path);
        return 0;
    }
    size_t dir = (size_t)(strrchr(base_file, '/') - base_file);
    int n = snprintf(out, cap, "%.*s/%s", (int)dir, base_file, path);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* ================================================================ seeded generator */

void ld_rng_seed(LdRng *r, uint64_t seed) { r->state = seed ^ 0x6a09e667f3bcc909ull; }

uint64_t ld_rng_next(LdRng *r) {
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t ld_rng_below(LdRng *r, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n; /* reject the uneven tail */
    uint64_t x;
    do x = ld_rng_next(r);
    while (x >= limit);
    return x % n;
}

void ld_shuffle(LdRng *r, int *v, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)ld_rng_below(r, (uint64_t)i + 1);
        int t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

void ld_sample(LdRng *r, int pool, int k, int *out) {
    for (int n = 0; n < k;) {
        int x = (int)ld_rng_below(r, (uint64_t)pool), dup = 0;
        for (int i = 0; i < n && !dup; i++) dup = out[i] == x;
        if (!dup) out[n++] = x;
    }
}
