/* tokenizer.c: a Hugging Face tokenizer.json of the Llama-2 family (BPE with
   byte fallback), encoding and decoding byte for byte as the `tokenizers`
   library (0.2x) does.

   encode, in the library's order:
     1. added tokens ("<s>", ...) are cut out of the raw text, leftmost-longest;
     2. each remaining piece is normalised on its own (Prepend "▁" then
        Replace " " -> "▁", so every piece starts with "▁");
     3. added tokens marked `normalized` are cut out of the normalised text;
     4. the Metaspace pre-tokenizer, if any, splits it into words;
     5. BPE: a word starts as its characters (unknown ones as <0xNN> bytes or
        <unk>) and pairs merge lowest rank first, leftmost on ties;
     6. the post-processor's template adds BOS.
   decode runs the decoder chain (Replace, ByteFallback, Fuse, Strip, Metaspace).
   Anything outside that family is refused at load, naming file and field. */
#include "tokenizer.h"

#include <cjson/cJSON.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define METASPACE "\xe2\x96\x81" /* U+2581 "▁": SentencePiece's visible space */
#define METASPACE_LEN 3
#define MAX_TOKEN_ID ((1 << 24) - 1) /* ids index dense tables; real vocabularies stay far below */

/* ----------------------------------------------------------------------------
   Growable byte and id buffers. Every function returning bool returns false
   only when memory runs out. */

typedef struct {
    char *data; /* always NUL-terminated once allocated */
    size_t len, cap;
} Buf;

static bool buf_reserve(Buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return false;
    b->data = p;
    b->cap = cap;
    return true;
}

static bool buf_add(Buf *b, const char *s, size_t n) {
    if (!buf_reserve(b, n)) return false;
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

typedef struct {
    int32_t *data;
    size_t len, cap;
} IdVec;

static bool ids_add(IdVec *v, const int32_t *ids, size_t n) {
    if (v->len + n > v->cap) {
        size_t cap = v->cap ? v->cap : 64;
        while (cap < v->len + n) cap *= 2;
        int32_t *p = realloc(v->data, cap * sizeof *p);
        if (!p) return false;
        v->data = p;
        v->cap = cap;
    }
    if (n) memcpy(v->data + v->len, ids, n * sizeof *ids);
    v->len += n;
    return true;
}

static bool ids_push(IdVec *v, int32_t id) { return ids_add(v, &id, 1); }

static char *dup_bytes(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* ----------------------------------------------------------------------------
   UTF-8 */

/* Length (1-4) of the well-formed UTF-8 character at s, or 0 if the bytes
   there are not one (bad lead byte, missing continuation, overlong form,
   surrogate, above U+10FFFF): the rules of Rust's String::from_utf8. */
static size_t utf8_len(const unsigned char *s, size_t n, uint32_t *codepoint) {
    if (n == 0) return 0;
    uint32_t c = s[0], cp, min;
    size_t len;
    if (c < 0x80) {
        if (codepoint) *codepoint = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    if (codepoint) *codepoint = cp;
    return len;
}

/* Bytes of the next character. Input text may be invalid UTF-8 (Python could
   not even hold it); each stray byte then stands alone as its own character,
   which byte fallback turns into its <0xNN> token. */
static size_t char_step(const char *s, size_t n) {
    size_t k = utf8_len((const unsigned char *)s, n, NULL);
    return k ? k : 1;
}

/* Start of the character that ends at `end` (> 0); a stray byte counts alone. */
static size_t char_start_before(const char *s, size_t end) {
    size_t k = end - 1, limit = end >= 4 ? end - 4 : 0;
    while (k > limit && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    if (utf8_len((const unsigned char *)s + k, end - k, NULL) == end - k) return k;
    return end - 1;
}

static bool is_single_char(const char *s) {
    size_t n = strlen(s);
    return n > 0 && utf8_len((const unsigned char *)s, n, NULL) == n;
}

/* ----------------------------------------------------------------------------
   Hash tables: piece string -> id, and (left id, right id) -> merge. */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static size_t pow2_at_least(size_t n) {
    size_t cap = 16;
    while (cap < n) cap *= 2;
    return cap;
}

typedef struct {
    const char *key; /* points into a string the Tokenizer owns; NULL = empty */
    uint32_t len;
    int32_t id;
} StrSlot;

typedef struct {
    StrSlot *slots;
    size_t cap, count;
} StrMap;

static StrSlot *strmap_slot(const StrMap *m, const char *s, size_t n) {
    size_t i = hash_bytes(s, n) & (m->cap - 1);
    while (m->slots[i].key && !(m->slots[i].len == n && memcmp(m->slots[i].key, s, n) == 0))
        i = (i + 1) & (m->cap - 1);
    return &m->slots[i];
}

static int32_t strmap_get(const StrMap *m, const char *s, size_t n) {
    if (!m->cap) return -1;
    const StrSlot *slot = strmap_slot(m, s, n);
    return slot->key ? slot->id : -1;
}

static bool strmap_grow(StrMap *m) {
    StrMap bigger = {calloc(m->cap ? m->cap * 2 : 64, sizeof(StrSlot)), m->cap ? m->cap * 2 : 64, m->count};
    if (!bigger.slots) return false;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key) *strmap_slot(&bigger, m->slots[i].key, m->slots[i].len) = m->slots[i];
    free(m->slots);
    *m = bigger;
    return true;
}

/* Inserts or overwrites (a later duplicate key wins, as in the library's maps). */
static bool strmap_put(StrMap *m, const char *s, size_t n, int32_t id) {
    if ((m->count + 1) * 2 > m->cap && !strmap_grow(m)) return false;
    StrSlot *slot = strmap_slot(m, s, n);
    if (!slot->key) m->count++;
    *slot = (StrSlot){s, (uint32_t)n, id};
    return true;
}

#define PAIR_EMPTY UINT64_MAX /* no pair of non-negative int32 ids packs to this */

typedef struct {
    uint64_t pair; /* left id << 32 | right id */
    int32_t rank;  /* index in model.merges: lower merges first */
    int32_t merged;
} MergeSlot;

typedef struct {
    MergeSlot *slots;
    size_t cap, count;
} MergeMap;

static uint64_t pair_key(int32_t left, int32_t right) { return (uint64_t)(uint32_t)left << 32 | (uint32_t)right; }

static MergeSlot *mergemap_slot(const MergeMap *m, uint64_t pair) {
    size_t i = (size_t)((pair * 0x9E3779B97F4A7C15ULL) >> 20) & (m->cap - 1);
    while (m->slots[i].pair != PAIR_EMPTY && m->slots[i].pair != pair) i = (i + 1) & (m->cap - 1);
    return &m->slots[i];
}

static const MergeSlot *mergemap_get(const MergeMap *m, int32_t left, int32_t right) {
    if (!m->cap) return NULL;
    const MergeSlot *slot = mergemap_slot(m, pair_key(left, right));
    return slot->pair == PAIR_EMPTY ? NULL : slot;
}

static bool mergemap_init(MergeMap *m, size_t expected) {
    m->cap = pow2_at_least(expected * 2 + 1);
    m->count = 0;
    m->slots = malloc(m->cap * sizeof *m->slots);
    if (!m->slots) return false;
    for (size_t i = 0; i < m->cap; i++) m->slots[i].pair = PAIR_EMPTY;
    return true;
}

/* A pair listed twice keeps its later rank, as the library's HashMap does. */
static void mergemap_put(MergeMap *m, int32_t left, int32_t right, int32_t rank, int32_t merged) {
    MergeSlot *slot = mergemap_slot(m, pair_key(left, right));
    if (slot->pair == PAIR_EMPTY) m->count++;
    *slot = (MergeSlot){pair_key(left, right), rank, merged};
}

/* ----------------------------------------------------------------------------
   The tokenizer */

typedef enum { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER } PrependScheme;

typedef enum { NORM_PREPEND, NORM_REPLACE } NormKind;
typedef struct {
    NormKind kind;
    char *from; /* NORM_REPLACE: literal pattern */
    char *to;   /* the text prepended / put in place of `from` */
} NormStep;

typedef enum { DEC_REPLACE, DEC_BYTE_FALLBACK, DEC_FUSE, DEC_STRIP, DEC_METASPACE } DecKind;
typedef struct {
    DecKind kind;
    char *from, *to;           /* DEC_REPLACE */
    uint32_t ch;               /* DEC_STRIP: the character stripped; DEC_METASPACE: the replacement */
    size_t start, stop;        /* DEC_STRIP: how many to strip at each end */
    PrependScheme prepend;     /* DEC_METASPACE */
} DecStep;

typedef struct {
    char *content;
    size_t len;
    char *pattern; /* what is matched: content, or content normalised if `normalized` */
    size_t pattern_len;
    int32_t id;
    bool single_word, lstrip, rstrip, normalized, special;
} AddedToken;

/* Added-token patterns grouped by first byte, longest first, so the first
   pattern that matches at a position is the leftmost-longest match. */
typedef struct {
    int32_t *order;     /* indices into Tokenizer.added */
    size_t start[257];  /* order[start[b] .. start[b+1]) begin with byte b */
    size_t count;
} Matcher;

struct Tokenizer {
    /* id -> string: added tokens first, then the model vocabulary (the
       library's id_to_token order). NULL where an id has no string. */
    char **pieces;
    uint32_t *piece_lens;
    unsigned char *special; /* 1 where the id's string is a special token */
    int32_t n_ids;          /* 1 + largest id */

    StrMap vocab;      /* model.vocab: the only table BPE consults */
    size_t vocab_entries;
    char **vocab_keys; /* owned key strings of `vocab` */
    StrMap added_ids;  /* added-token content -> id */
    MergeMap merges;
    int32_t unk_id;    /* -1: no unk token (unknown characters are dropped) */
    bool byte_fallback, fuse_unk;
    int32_t byte_ids[256]; /* id of "<0xNN>", -1 if absent */

    NormStep *norm;
    size_t n_norm;

    bool metaspace; /* pre_tokenizer Metaspace */
    char *meta_repl;
    PrependScheme meta_prepend;
    bool meta_split;

    bool has_decoder;
    DecStep *dec;
    size_t n_dec;

    AddedToken *added;
    size_t n_added;
    Matcher raw_matcher, norm_matcher;
    pcre2_code *word_re; /* Rust's \w, needed only by single_word tokens */

    IdVec prefix, suffix; /* ids the template puts around the text */
    int32_t bos_id, eos_id;
    int adds_bos;
    bool cut_words; /* see words_can_be_cut() */
};

/* ----------------------------------------------------------------------------
   Load errors and JSON field helpers. Messages read
   "PATH: FIELD what is wrong", e.g.
   "x/tokenizer.json: normalizer type "NFKC" is not supported". */

static int load_error(Err *err, const char *file, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int load_error(Err *err, const char *file, const char *fmt, ...) {
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(err, "%s: %s", file, msg);
}

static bool is_absent(const cJSON *v) { return !v || cJSON_IsNull(v); }

/* Integers are stored as doubles by cJSON; accept only exact ones in range. */
static bool json_int(const cJSON *v, double lo, double hi, int64_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= lo && d <= hi) || d != (double)(int64_t)d) return false;
    *out = (int64_t)d;
    return true;
}

/* Optional boolean: absent or null keeps *out. */
static int opt_bool(const cJSON *obj, const char *key, bool *out, const char *file, const char *where, Err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (is_absent(v)) return 0;
    if (!cJSON_IsBool(v)) return load_error(err, file, "%s.%s must be true or false", where, key);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* Optional string: absent or null gives NULL. */
static int opt_string(const cJSON *obj, const char *key, const char **out, const char *file, const char *where,
                      Err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (is_absent(v)) return 0;
    if (!cJSON_IsString(v)) return load_error(err, file, "%s.%s must be a string", where, key);
    *out = v->valuestring;
    return 0;
}

static int req_string(const cJSON *obj, const char *key, const char **out, const char *file, const char *where,
                      Err *err) {
    if (opt_string(obj, key, out, file, where, err)) return -1;
    if (!*out) return load_error(err, file, "%s.%s is missing", where, key);
    return 0;
}

/* The "type" of a component object, e.g. "Sequence". */
static int component_type(const cJSON *obj, const char **type, const char *file, const char *where, Err *err) {
    if (!cJSON_IsObject(obj)) return load_error(err, file, "%s must be an object or null", where);
    return req_string(obj, "type", type, file, where, err);
}

/* A {"String": "..."} pattern; the library's {"Regex": ...} form is refused. */
static int string_pattern(const cJSON *obj, const char **out, const char *file, const char *where, Err *err) {
    const cJSON *pattern = cJSON_GetObjectItemCaseSensitive(obj, "pattern");
    const cJSON *literal = cJSON_GetObjectItemCaseSensitive(pattern, "String");
    if (cJSON_GetObjectItemCaseSensitive(pattern, "Regex"))
        return load_error(err, file, "%s.pattern: Regex patterns are not supported (only String)", where);
    if (!cJSON_IsString(literal))
        return load_error(err, file, "%s.pattern must be {\"String\": \"...\"}", where);
    if (!literal->valuestring[0]) return load_error(err, file, "%s.pattern must not be empty", where);
    *out = literal->valuestring;
    return 0;
}

static int parse_prepend_scheme(const cJSON *obj, PrependScheme *out, const char *file, const char *where,
                                Err *err) {
    const char *scheme;
    bool add_prefix_space = true;
    bool has_add_prefix = !is_absent(cJSON_GetObjectItemCaseSensitive(obj, "add_prefix_space"));
    if (opt_string(obj, "prepend_scheme", &scheme, file, where, err)) return -1;
    if (opt_bool(obj, "add_prefix_space", &add_prefix_space, file, where, err)) return -1;
    *out = PREPEND_ALWAYS; /* the library's default */
    if (scheme && strcmp(scheme, "first") == 0) *out = PREPEND_FIRST;
    else if (scheme && strcmp(scheme, "never") == 0) *out = PREPEND_NEVER;
    else if (scheme && strcmp(scheme, "always") != 0)
        return load_error(err, file, "%s.prepend_scheme \"%s\" is not one of first, always, never", where, scheme);
    /* The library refuses the older flag when it contradicts the scheme
       (even the default one: a lone add_prefix_space false is an error). */
    if (has_add_prefix && add_prefix_space != (*out != PREPEND_NEVER))
        return load_error(err, file, "%s.add_prefix_space does not match prepend_scheme", where);
    return 0;
}

static int read_file(const char *path, char **out, size_t *len, Err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, "%s: cannot open: %s", path, strerror(errno));
    Buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (!buf_add(&b, chunk, n)) {
            fclose(f);
            free(b.data);
            return err_set(err, "%s: out of memory reading the file", path);
        }
    }
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        free(b.data);
        return err_set(err, "%s: read error", path);
    }
    if (!buf_reserve(&b, 0)) return err_set(err, "%s: out of memory reading the file", path);
    *out = b.data;
    *len = b.len;
    return 0;
}

static cJSON *parse_json_file(const char *path, Err *err) {
    char *text;
    size_t len;
    if (read_file(path, &text, &len, err)) return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : len;
        err_set(err, "%s: invalid JSON (truncated or malformed) near byte %zu of %zu", path, at, len);
    } else if (!cJSON_IsObject(root)) {
        err_set(err, "%s: the top level must be a JSON object", path);
        cJSON_Delete(root);
        root = NULL;
    }
    free(text);
    return root;
}

/* ----------------------------------------------------------------------------
   Loading: model */

static int load_vocab(Tokenizer *tok, const cJSON *vocab, const char *file, Err *err) {
    if (!cJSON_IsObject(vocab)) return load_error(err, file, "model.vocab must be an object of piece -> id");
    size_t n = (size_t)cJSON_GetArraySize(vocab);
    tok->vocab_keys = calloc(n + 1, sizeof *tok->vocab_keys);
    if (!tok->vocab_keys) return load_error(err, file, "out of memory loading model.vocab");
    size_t k = 0;
    for (const cJSON *item = vocab->child; item; item = item->next, k++) {
        int64_t id;
        if (!json_int(item, 0, MAX_TOKEN_ID, &id))
            return load_error(err, file, "model.vocab[\"%s\"] must be an integer id in [0, %d]", item->string,
                              MAX_TOKEN_ID);
        tok->vocab_keys[k] = dup_bytes(item->string, strlen(item->string));
        if (!tok->vocab_keys[k] || !strmap_put(&tok->vocab, tok->vocab_keys[k], strlen(item->string), (int32_t)id))
            return load_error(err, file, "out of memory loading model.vocab");
    }
    tok->vocab_entries = tok->vocab.count;
    return 0;
}

/* One merge: "left right" (Llama-2's form; exactly one space, as the library
   requires) or ["left", "right"] (newer files). */
static int merge_parts(const cJSON *m, size_t index, char *scratch, size_t cap, const char **left,
                       const char **right, const char *file, Err *err) {
    if (cJSON_IsString(m)) {
        const char *s = m->valuestring, *space = strchr(s, ' ');
        if (!space || strchr(space + 1, ' ') || strlen(s) >= cap)
            return load_error(err, file, "model.merges[%zu] \"%.200s\" must be two pieces separated by one space",
                              index, s);
        memcpy(scratch, s, strlen(s) + 1);
        scratch[space - s] = '\0';
        *left = scratch;
        *right = scratch + (space - s) + 1;
        return 0;
    }
    if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(cJSON_GetArrayItem(m, 0)) &&
        cJSON_IsString(cJSON_GetArrayItem(m, 1))) {
        *left = cJSON_GetArrayItem(m, 0)->valuestring;
        *right = cJSON_GetArrayItem(m, 1)->valuestring;
        return 0;
    }
    return load_error(err, file, "model.merges[%zu] must be a string \"a b\" or an array [\"a\", \"b\"]", index);
}

static int load_merges(Tokenizer *tok, const cJSON *merges, const char *file, Err *err) {
    if (!cJSON_IsArray(merges)) return load_error(err, file, "model.merges must be an array");
    size_t n = (size_t)cJSON_GetArraySize(merges), index = 0;
    if (!mergemap_init(&tok->merges, n)) return load_error(err, file, "out of memory loading model.merges");
    char scratch[1024];
    Buf joined = {0};
    for (const cJSON *m = merges->child; m; m = m->next, index++) {
        const char *left = NULL, *right = NULL;
        if (merge_parts(m, index, scratch, sizeof scratch, &left, &right, file, err)) goto fail;
        int32_t a = strmap_get(&tok->vocab, left, strlen(left));
        int32_t b = strmap_get(&tok->vocab, right, strlen(right));
        if (a < 0 || b < 0) {
            load_error(err, file, "model.merges[%zu] names \"%.200s\", which is not in model.vocab", index,
                       a < 0 ? left : right);
            goto fail;
        }
        joined.len = 0;
        if (!buf_add(&joined, left, strlen(left)) || !buf_add(&joined, right, strlen(right))) {
            load_error(err, file, "out of memory loading model.merges");
            goto fail;
        }
        int32_t merged = strmap_get(&tok->vocab, joined.data, joined.len);
        if (merged < 0) {
            load_error(err, file, "model.merges[%zu] makes \"%.200s\", which is not in model.vocab", index,
                       joined.data);
            goto fail;
        }
        mergemap_put(&tok->merges, a, b, (int32_t)index, merged);
    }
    free(joined.data);
    return 0;
fail:
    free(joined.data);
    return -1;
}

static int load_model(Tokenizer *tok, const cJSON *root, const char *file, Err *err) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!model) return load_error(err, file, "model is missing");
    if (!cJSON_IsObject(model)) return load_error(err, file, "model must be an object");
    const char *type, *unk, *prefix, *suffix;
    if (opt_string(model, "type", &type, file, "model", err)) return -1;
    if (type && strcmp(type, "BPE") != 0)
        return load_error(err, file, "model type \"%s\" is not supported (only BPE)", type);
    if (opt_string(model, "unk_token", &unk, file, "model", err) ||
        opt_string(model, "continuing_subword_prefix", &prefix, file, "model", err) ||
        opt_string(model, "end_of_word_suffix", &suffix, file, "model", err))
        return -1;
    if (prefix)
        return load_error(err, file, "model.continuing_subword_prefix \"%s\" is not supported (only null)", prefix);
    if (suffix) return load_error(err, file, "model.end_of_word_suffix \"%s\" is not supported (only null)", suffix);
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (!is_absent(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0.0))
        return load_error(err, file, "model.dropout is not supported (only null: encoding must be deterministic)");
    bool ignore_merges = false;
    if (opt_bool(model, "byte_fallback", &tok->byte_fallback, file, "model", err) ||
        opt_bool(model, "fuse_unk", &tok->fuse_unk, file, "model", err) ||
        opt_bool(model, "ignore_merges", &ignore_merges, file, "model", err))
        return -1;
    if (ignore_merges) return load_error(err, file, "model.ignore_merges true is not supported (only false)");

    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!vocab) return load_error(err, file, "model.vocab is missing");
    if (!merges) return load_error(err, file, "model.merges is missing");
    if (load_vocab(tok, vocab, file, err) || load_merges(tok, merges, file, err)) return -1;

    tok->unk_id = -1;
    if (unk) {
        tok->unk_id = strmap_get(&tok->vocab, unk, strlen(unk));
        if (tok->unk_id < 0) return load_error(err, file, "model.unk_token \"%s\" is not in model.vocab", unk);
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        tok->byte_ids[b] = strmap_get(&tok->vocab, name, 6);
    }
    return 0;
}

/* ----------------------------------------------------------------------------
   Loading: normalizer, pre-tokenizer, decoder, post-processor */

static int add_norm_step(Tokenizer *tok, NormKind kind, const char *from, const char *to, const char *file,
                         Err *err) {
    NormStep *steps = realloc(tok->norm, (tok->n_norm + 1) * sizeof *steps);
    if (!steps) return load_error(err, file, "out of memory loading normalizer");
    tok->norm = steps;
    NormStep *s = &steps[tok->n_norm++];
    *s = (NormStep){kind, from ? strdup(from) : NULL, strdup(to)};
    if ((from && !s->from) || !s->to) return load_error(err, file, "out of memory loading normalizer");
    return 0;
}

static int load_normalizer(Tokenizer *tok, const cJSON *n, const char *file, const char *where, Err *err) {
    if (is_absent(n)) return 0;
    const char *type, *text, *content;
    if (component_type(n, &type, file, where, err)) return -1;
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        if (!cJSON_IsArray(list)) return load_error(err, file, "%s.normalizers must be an array", where);
        size_t i = 0;
        for (const cJSON *item = list->child; item; item = item->next, i++) {
            char inner[256];
            snprintf(inner, sizeof inner, "%s.normalizers[%zu]", where, i);
            if (cJSON_IsNull(item)) return load_error(err, file, "%s must be an object", inner);
            if (load_normalizer(tok, item, file, inner, err)) return -1;
        }
        return 0;
    }
    if (strcmp(type, "Prepend") == 0) {
        if (req_string(n, "prepend", &text, file, where, err)) return -1;
        return add_norm_step(tok, NORM_PREPEND, NULL, text, file, err);
    }
    if (strcmp(type, "Replace") == 0) {
        if (string_pattern(n, &text, file, where, err) || req_string(n, "content", &content, file, where, err))
            return -1;
        return add_norm_step(tok, NORM_REPLACE, text, content, file, err);
    }
    return load_error(err, file, "%s type \"%s\" is not supported (only Sequence, Prepend, Replace)", where, type);
}

static int load_pre_tokenizer(Tokenizer *tok, const cJSON *p, const char *file, Err *err) {
    if (is_absent(p)) return 0;
    const char *type, *repl;
    if (component_type(p, &type, file, "pre_tokenizer", err)) return -1;
    if (strcmp(type, "Metaspace") != 0)
        return load_error(err, file, "pre_tokenizer type \"%s\" is not supported (only Metaspace or null)", type);
    if (req_string(p, "replacement", &repl, file, "pre_tokenizer", err)) return -1;
    if (!is_single_char(repl))
        return load_error(err, file, "pre_tokenizer.replacement must be one character, got \"%s\"", repl);
    tok->meta_split = true; /* the library's default */
    if (opt_bool(p, "split", &tok->meta_split, file, "pre_tokenizer", err) ||
        parse_prepend_scheme(p, &tok->meta_prepend, file, "pre_tokenizer", err))
        return -1;
    tok->meta_repl = strdup(repl);
    if (!tok->meta_repl) return load_error(err, file, "out of memory loading pre_tokenizer");
    tok->metaspace = true;
    return 0;
}

static int load_dec_step(Tokenizer *tok, const cJSON *d, const char *file, const char *where, Err *err) {
    const char *type, *text, *content;
    DecStep step = {0};
    if (component_type(d, &type, file, where, err)) return -1;
    if (strcmp(type, "Replace") == 0) {
        if (string_pattern(d, &text, file, where, err) || req_string(d, "content", &content, file, where, err))
            return -1;
        step.kind = DEC_REPLACE;
        step.from = strdup(text);
        step.to = strdup(content);
        if (!step.from || !step.to) {
            free(step.from);
            free(step.to);
            return load_error(err, file, "out of memory loading decoder");
        }
    } else if (strcmp(type, "ByteFallback") == 0) {
        step.kind = DEC_BYTE_FALLBACK;
    } else if (strcmp(type, "Fuse") == 0) {
        step.kind = DEC_FUSE;
    } else if (strcmp(type, "Strip") == 0) {
        int64_t start, stop;
        if (req_string(d, "content", &content, file, where, err)) return -1;
        if (!is_single_char(content)) return load_error(err, file, "%s.content must be one character", where);
        if (!json_int(cJSON_GetObjectItemCaseSensitive(d, "start"), 0, 1e9, &start) ||
            !json_int(cJSON_GetObjectItemCaseSensitive(d, "stop"), 0, 1e9, &stop))
            return load_error(err, file, "%s.start and %s.stop must be non-negative integers", where, where);
        step.kind = DEC_STRIP;
        utf8_len((const unsigned char *)content, strlen(content), &step.ch);
        step.start = (size_t)start;
        step.stop = (size_t)stop;
    } else if (strcmp(type, "Metaspace") == 0) {
        if (req_string(d, "replacement", &text, file, where, err)) return -1;
        if (!is_single_char(text)) return load_error(err, file, "%s.replacement must be one character", where);
        if (parse_prepend_scheme(d, &step.prepend, file, where, err)) return -1;
        step.kind = DEC_METASPACE;
        utf8_len((const unsigned char *)text, strlen(text), &step.ch);
    } else {
        return load_error(err, file,
                          "%s type \"%s\" is not supported (only Sequence, Replace, ByteFallback, Fuse, Strip, "
                          "Metaspace)",
                          where, type);
    }
    DecStep *steps = realloc(tok->dec, (tok->n_dec + 1) * sizeof *steps);
    if (!steps) {
        free(step.from);
        free(step.to);
        return load_error(err, file, "out of memory loading decoder");
    }
    tok->dec = steps;
    tok->dec[tok->n_dec++] = step;
    return 0;
}

static int load_decoder(Tokenizer *tok, const cJSON *d, const char *file, Err *err) {
    if (is_absent(d)) return 0;
    const char *type;
    if (component_type(d, &type, file, "decoder", err)) return -1;
    tok->has_decoder = true;
    if (strcmp(type, "Sequence") != 0) return load_dec_step(tok, d, file, "decoder", err);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(d, "decoders");
    if (!cJSON_IsArray(list)) return load_error(err, file, "decoder.decoders must be an array");
    size_t i = 0;
    for (const cJSON *item = list->child; item; item = item->next, i++) {
        char where[64];
        snprintf(where, sizeof where, "decoder.decoders[%zu]", i);
        if (load_dec_step(tok, item, file, where, err)) return -1;
    }
    return 0;
}

/* TemplateProcessing "single": [SpecialToken...] {Sequence A} [SpecialToken...]. */
static int load_post_processor(Tokenizer *tok, const cJSON *p, const char *file, Err *err) {
    if (is_absent(p)) return 0;
    const char *type;
    if (component_type(p, &type, file, "post_processor", err)) return -1;
    if (strcmp(type, "TemplateProcessing") != 0)
        return load_error(err, file, "post_processor type \"%s\" is not supported (only TemplateProcessing)", type);
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(p, "special_tokens");
    if (!cJSON_IsArray(single)) return load_error(err, file, "post_processor.single must be an array");
    bool seen_sequence = false;
    size_t i = 0;
    for (const cJSON *item = single->child; item; item = item->next, i++) {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(item, "Sequence");
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(item, "SpecialToken");
        if (seq) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(seq, "id");
            if (seen_sequence || !cJSON_IsString(id) || strcmp(id->valuestring, "A") != 0)
                return load_error(err, file, "post_processor.single[%zu]: only one Sequence \"A\" is supported", i);
            seen_sequence = true;
            continue;
        }
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(sp, "id");
        if (!cJSON_IsString(name))
            return load_error(err, file, "post_processor.single[%zu] must be a SpecialToken or Sequence", i);
        const cJSON *entry = cJSON_GetObjectItemCaseSensitive(specials, name->valuestring);
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(entry, "ids");
        if (!cJSON_IsArray(ids))
            return load_error(err, file, "post_processor.special_tokens[\"%s\"].ids is missing", name->valuestring);
        for (const cJSON *v = ids->child; v; v = v->next) {
            int64_t id;
            if (!json_int(v, 0, MAX_TOKEN_ID, &id))
                return load_error(err, file, "post_processor.special_tokens[\"%s\"].ids must hold integer ids",
                                  name->valuestring);
            if (!ids_push(seen_sequence ? &tok->suffix : &tok->prefix, (int32_t)id))
                return load_error(err, file, "out of memory loading post_processor");
        }
    }
    if (!seen_sequence) return load_error(err, file, "post_processor.single has no Sequence \"A\"");
    return 0;
}

/* ----------------------------------------------------------------------------
   Normalisation (also applied to the patterns of `normalized` added tokens) */

static bool replace_all(const char *s, size_t n, const char *from, const char *to, Buf *out) {
    size_t from_len = strlen(from), to_len = strlen(to), done = 0;
    out->len = 0;
    for (size_t i = 0; i + from_len <= n;) {
        const char *hit = memchr(s + i, from[0], n - i - from_len + 1);
        if (!hit) break;
        i = (size_t)(hit - s);
        if (memcmp(hit, from, from_len) != 0) {
            i++;
            continue;
        }
        if (!buf_add(out, s + done, i - done) || !buf_add(out, to, to_len)) return false;
        i += from_len;
        done = i;
    }
    return buf_add(out, s + done, n - done);
}

/* Runs the normaliser steps over s into *out (using *tmp); the result is
   out->data, out->len. Prepend only touches non-empty text, as the library. */
static bool normalize(const Tokenizer *tok, const char *s, size_t n, Buf *out, Buf *tmp) {
    out->len = 0;
    if (!buf_add(out, s, n)) return false;
    for (size_t k = 0; k < tok->n_norm; k++) {
        const NormStep *step = &tok->norm[k];
        tmp->len = 0;
        if (step->kind == NORM_PREPEND) {
            if (out->len == 0) continue;
            if (!buf_add(tmp, step->to, strlen(step->to)) || !buf_add(tmp, out->data, out->len)) return false;
        } else if (!replace_all(out->data, out->len, step->from, step->to, tmp)) {
            return false;
        }
        Buf swap = *out;
        *out = *tmp;
        *tmp = swap;
    }
    return true;
}

/* ----------------------------------------------------------------------------
   Loading: added tokens */

/* The id the library gives an added token that is not in the vocabulary:
   one past the largest added id if that is already past the model, else the
   model's entry count (so the ids written in the file are not what counts). */
static int32_t next_added_id(const Tokenizer *tok) {
    int32_t max = -1;
    for (size_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].id > max) max = tok->added[i].id;
    int32_t model_size = (int32_t)tok->vocab_entries;
    if (max < 0) return model_size;
    return (max >= model_size || model_size == 0) ? max + 1 : model_size; /* <= MAX_TOKEN_ID + entries */
}

static int load_added_token(Tokenizer *tok, const cJSON *item, size_t index, const char *file, Err *err) {
    char where[64];
    snprintf(where, sizeof where, "added_tokens[%zu]", index);
    if (!cJSON_IsObject(item)) return load_error(err, file, "%s must be an object", where);
    AddedToken t = {.normalized = true};
    const char *content;
    int64_t file_id;
    if (req_string(item, "content", &content, file, where, err)) return -1;
    if (!json_int(cJSON_GetObjectItemCaseSensitive(item, "id"), 0, MAX_TOKEN_ID, &file_id))
        return load_error(err, file, "%s.id must be an integer id in [0, %d]", where, MAX_TOKEN_ID);
    if (opt_bool(item, "single_word", &t.single_word, file, where, err) ||
        opt_bool(item, "lstrip", &t.lstrip, file, where, err) ||
        opt_bool(item, "rstrip", &t.rstrip, file, where, err) ||
        opt_bool(item, "normalized", &t.normalized, file, where, err) ||
        opt_bool(item, "special", &t.special, file, where, err))
        return -1;
    t.len = strlen(content);
    if (t.len == 0) return 0; /* the library ignores empty tokens */

    /* Same content again: the library keeps its id and takes the new flags
       (a special token stays special for decoding). */
    int32_t id = strmap_get(&tok->added_ids, content, t.len);
    for (size_t i = 0; id >= 0 && i < tok->n_added; i++) {
        if (tok->added[i].id != id) continue;
        bool was_special = tok->added[i].special;
        t.content = tok->added[i].content;
        t.id = id;
        t.special = t.special || was_special;
        tok->added[i] = t;
        return 0;
    }
    id = strmap_get(&tok->vocab, content, t.len);
    t.id = id >= 0 ? id : next_added_id(tok);
    t.content = dup_bytes(content, t.len);
    AddedToken *grown = realloc(tok->added, (tok->n_added + 1) * sizeof *grown);
    if (!t.content || !grown) {
        free(t.content);
        if (grown) tok->added = grown;
        return load_error(err, file, "out of memory loading added_tokens");
    }
    tok->added = grown;
    tok->added[tok->n_added++] = t;
    if (!strmap_put(&tok->added_ids, t.content, t.len, t.id))
        return load_error(err, file, "out of memory loading added_tokens");
    return 0;
}

static int load_added_tokens(Tokenizer *tok, const cJSON *list, const char *file, Err *err) {
    if (is_absent(list)) return 0;
    if (!cJSON_IsArray(list)) return load_error(err, file, "added_tokens must be an array");
    size_t i = 0;
    for (const cJSON *item = list->child; item; item = item->next, i++)
        if (load_added_token(tok, item, i, file, err)) return -1;
    return 0;
}

/* Sets each added token's match pattern (normalised if it asks to be). */
static bool prepare_patterns(Tokenizer *tok) {
    Buf out = {0}, tmp = {0};
    bool ok = true;
    for (size_t i = 0; ok && i < tok->n_added; i++) {
        AddedToken *t = &tok->added[i];
        if (!t->normalized) {
            t->pattern = t->content;
            t->pattern_len = t->len;
            continue;
        }
        ok = normalize(tok, t->content, t->len, &out, &tmp) && (t->pattern = dup_bytes(out.data, out.len));
        t->pattern_len = out.len;
    }
    free(out.data);
    free(tmp.data);
    return ok;
}

typedef struct {
    unsigned char first; /* first byte of the pattern */
    size_t len;
    int32_t id, index; /* index into Tokenizer.added */
} MatchOrder;

static int by_first_byte_then_longest(const void *a, const void *b) {
    const MatchOrder *x = a, *y = b;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static bool build_matcher(Tokenizer *tok, Matcher *m, bool normalized) {
    MatchOrder *order = malloc((tok->n_added + 1) * sizeof *order);
    m->order = malloc((tok->n_added + 1) * sizeof *m->order);
    if (!order || !m->order) {
        free(order);
        return false;
    }
    m->count = 0;
    for (size_t i = 0; i < tok->n_added; i++) {
        const AddedToken *t = &tok->added[i];
        if (t->normalized == normalized && t->pattern_len > 0)
            order[m->count++] = (MatchOrder){(unsigned char)t->pattern[0], t->pattern_len, t->id, (int32_t)i};
    }
    qsort(order, m->count, sizeof *order, by_first_byte_then_longest);
    size_t k = 0;
    for (int b = 0; b < 256; b++) {
        while (k < m->count && order[k].first < b) k++;
        m->start[b] = k;
    }
    m->start[256] = m->count;
    for (size_t i = 0; i < m->count; i++) m->order[i] = order[i].index;
    free(order);
    return true;
}

/* ----------------------------------------------------------------------------
   Loading: id table, tokenizer_config.json, and the whole */

static int build_id_table(Tokenizer *tok, const char *file, Err *err) {
    int32_t max = -1;
    for (size_t i = 0; i < tok->vocab.cap; i++)
        if (tok->vocab.slots[i].key && tok->vocab.slots[i].id > max) max = tok->vocab.slots[i].id;
    for (size_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].id > max) max = tok->added[i].id;
    tok->n_ids = max + 1;
    tok->pieces = calloc((size_t)tok->n_ids + 1, sizeof *tok->pieces);
    tok->piece_lens = calloc((size_t)tok->n_ids + 1, sizeof *tok->piece_lens);
    tok->special = calloc((size_t)tok->n_ids + 1, 1);
    if (!tok->pieces || !tok->piece_lens || !tok->special) return load_error(err, file, "out of memory");
    for (size_t i = 0; i < tok->vocab.cap; i++) {
        const StrSlot *s = &tok->vocab.slots[i];
        if (!s->key) continue;
        if (tok->pieces[s->id])
            return load_error(err, file, "model.vocab gives id %d to both \"%s\" and \"%s\"", (int)s->id,
                              tok->pieces[s->id], s->key);
        tok->pieces[s->id] = (char *)s->key;
        tok->piece_lens[s->id] = s->len;
    }
    /* The library gives a `normalized` added token's string in normalised
       form ("hello world" -> "▁hello▁world"); decoding sees that form. */
    for (size_t i = 0; i < tok->n_added; i++) {
        tok->pieces[tok->added[i].id] = tok->added[i].pattern;
        tok->piece_lens[tok->added[i].id] = (uint32_t)tok->added[i].pattern_len;
    }
    /* Decoding skips by string: any id whose string is a special token's
       content (so a normalized special token whose form changed is kept). */
    StrMap specials = {0};
    for (size_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].special && !strmap_put(&specials, tok->added[i].content, tok->added[i].len, 1)) {
            free(specials.slots);
            return load_error(err, file, "out of memory");
        }
    for (int32_t id = 0; specials.count && id < tok->n_ids; id++)
        tok->special[id] = tok->pieces[id] && strmap_get(&specials, tok->pieces[id], tok->piece_lens[id]) >= 0;
    free(specials.slots);
    return 0;
}

/* bos_token / eos_token: a string, {"content": ...}, or null. */
static int config_token(Tokenizer *tok, const cJSON *cfg, const char *key, int32_t *id, const char *file, Err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (is_absent(v)) return 0;
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    if (!cJSON_IsString(v)) return load_error(err, file, "%s must be a string or {\"content\": string}", key);
    *id = tokenizer_lookup(tok, v->valuestring);
    if (*id < 0) return load_error(err, file, "%s \"%s\" is not in the vocabulary", key, v->valuestring);
    return 0;
}

/* Defaults first (template, then "<s>"/"</s>"); tokenizer_config.json wins. */
static int load_config(Tokenizer *tok, const char *path, Err *err) {
    tok->bos_id = tok->prefix.len ? tok->prefix.data[0] : tokenizer_lookup(tok, "<s>");
    tok->eos_id = tokenizer_lookup(tok, "</s>");
    tok->adds_bos = tok->prefix.len > 0;
    struct stat st;
    if (stat(path, &st) != 0) return 0; /* optional */
    cJSON *cfg = parse_json_file(path, err);
    if (!cfg) return -1;
    bool add_bos = tok->adds_bos;
    int rc = -1;
    if (opt_bool(cfg, "add_bos_token", &add_bos, path, "tokenizer_config", err) ||
        config_token(tok, cfg, "bos_token", &tok->bos_id, path, err) ||
        config_token(tok, cfg, "eos_token", &tok->eos_id, path, err))
        goto done;
    tok->adds_bos = add_bos;
    rc = 0;
done:
    cJSON_Delete(cfg);
    return rc;
}

/* Long texts are cut into words before BPE (fast, and cacheable). Without a
   pre-tokenizer the library runs BPE over a whole piece of text, so a cut is
   only exact where no merge can cross it. We cut before a "▁" that follows
   another character; every merge result is a vocabulary piece, so if no
   piece holds "▁" after a non-"▁" character, no merge spans such a cut. "▁"
   itself must be a piece, or <unk> runs could be fused across the cut. */
static bool words_can_be_cut(const Tokenizer *tok) {
    if (strmap_get(&tok->vocab, METASPACE, METASPACE_LEN) < 0) return false;
    for (size_t i = 0; i < tok->vocab.cap; i++) {
        const StrSlot *s = &tok->vocab.slots[i];
        if (!s->key) continue;
        for (size_t k = 1; k + METASPACE_LEN <= s->len; k++) {
            if (memcmp(s->key + k, METASPACE, METASPACE_LEN) != 0) continue;
            if (k < METASPACE_LEN || memcmp(s->key + k - METASPACE_LEN, METASPACE, METASPACE_LEN) != 0) return false;
        }
    }
    return true;
}

static int check_top_level(const cJSON *root, const char *file, Err *err) {
    const char *version;
    if (opt_string(root, "version", &version, file, "tokenizer", err)) return -1;
    if (version && strcmp(version, "1.0") != 0)
        return load_error(err, file, "version \"%s\" is not supported (only 1.0)", version);
    /* Both would change what encode returns. */
    if (!is_absent(cJSON_GetObjectItemCaseSensitive(root, "truncation")))
        return load_error(err, file, "truncation is not supported (only null)");
    if (!is_absent(cJSON_GetObjectItemCaseSensitive(root, "padding")))
        return load_error(err, file, "padding is not supported (only null)");
    return 0;
}

static int load_components(Tokenizer *tok, const cJSON *root, const char *file, Err *err) {
    if (check_top_level(root, file, err) || load_model(tok, root, file, err) ||
        load_normalizer(tok, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), file, "normalizer", err) ||
        load_pre_tokenizer(tok, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), file, err) ||
        load_decoder(tok, cJSON_GetObjectItemCaseSensitive(root, "decoder"), file, err) ||
        load_post_processor(tok, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), file, err) ||
        load_added_tokens(tok, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), file, err))
        return -1;
    if (!prepare_patterns(tok) || !build_matcher(tok, &tok->raw_matcher, false) ||
        !build_matcher(tok, &tok->norm_matcher, true))
        return load_error(err, file, "out of memory");
    if (build_id_table(tok, file, err)) return -1;
    for (size_t i = 0; i < tok->n_added && !tok->word_re; i++) {
        if (!tok->added[i].single_word) continue;
        int code;
        PCRE2_SIZE at;
        /* Rust's Unicode \w, which the library's single_word check uses. */
        tok->word_re = pcre2_compile((PCRE2_SPTR) "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]",
                                     PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_ANCHORED, &code, &at, NULL);
        if (!tok->word_re) return load_error(err, file, "cannot compile the word-character class");
    }
    for (size_t i = 0; i < tok->prefix.len + tok->suffix.len; i++) {
        int32_t id = i < tok->prefix.len ? tok->prefix.data[i] : tok->suffix.data[i - tok->prefix.len];
        if (id >= tok->n_ids || !tok->pieces[id])
            return load_error(err, file, "post_processor uses id %d, which has no token", (int)id);
    }
    tok->cut_words = words_can_be_cut(tok);
    return 0;
}

/* path: tokenizer.json itself, or a directory holding it; tokenizer_config.json
   is looked for beside it. */
static int resolve_paths(const char *path, char **json_path, char **config_path) {
    struct stat st;
    size_t n = strlen(path);
    const char *dir = path, *slash = strrchr(path, '/');
    size_t dir_len = n;
    bool is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    if (!is_dir) {
        dir = slash ? path : ".";
        dir_len = slash ? (size_t)(slash - path) : 1;
    }
    *json_path = malloc(n + 32);
    *config_path = malloc(dir_len + 32);
    if (!*json_path || !*config_path) return -1;
    snprintf(*json_path, n + 32, is_dir ? "%s/tokenizer.json" : "%s", path);
    snprintf(*config_path, dir_len + 32, "%.*s/tokenizer_config.json", (int)dir_len, dir);
    return 0;
}

Tokenizer *tokenizer_load(const char *path, Err *err) {
    if (!path) {
        err_set(err, "tokenizer: no path given");
        return NULL;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        err_set(err, "%s: %s (expected a tokenizer.json or a directory holding one)", path, strerror(errno));
        return NULL;
    }
    char *json_path = NULL, *config_path = NULL;
    Tokenizer *tok = calloc(1, sizeof *tok);
    cJSON *root = NULL;
    if (!tok || resolve_paths(path, &json_path, &config_path)) {
        err_set(err, "%s: out of memory", path);
        goto fail;
    }
    tok->unk_id = tok->bos_id = tok->eos_id = -1;
    root = parse_json_file(json_path, err);
    if (!root || load_components(tok, root, json_path, err) || load_config(tok, config_path, err)) goto fail;
    cJSON_Delete(root);
    free(json_path);
    free(config_path);
    return tok;
fail:
    cJSON_Delete(root);
    free(json_path);
    free(config_path);
    tokenizer_free(tok);
    return NULL;
}

void tokenizer_free(Tokenizer *tok) {
    if (!tok) return;
    for (size_t i = 0; tok->vocab_keys && tok->vocab_keys[i]; i++) free(tok->vocab_keys[i]);
    free(tok->vocab_keys);
    free(tok->vocab.slots);
    free(tok->added_ids.slots);
    free(tok->merges.slots);
    for (size_t i = 0; i < tok->n_norm; i++) {
        free(tok->norm[i].from);
        free(tok->norm[i].to);
    }
    free(tok->norm);
    for (size_t i = 0; i < tok->n_dec; i++) {
        free(tok->dec[i].from);
        free(tok->dec[i].to);
    }
    free(tok->dec);
    free(tok->meta_repl);
    for (size_t i = 0; i < tok->n_added; i++) {
        if (tok->added[i].pattern != tok->added[i].content) free(tok->added[i].pattern);
        free(tok->added[i].content);
    }
    free(tok->added);
    free(tok->raw_matcher.order);
    free(tok->norm_matcher.order);
    pcre2_code_free(tok->word_re);
    free(tok->prefix.data);
    free(tok->suffix.data);
    free(tok->pieces);
    free(tok->piece_lens);
    free(tok->special);
    free(tok);
}

/* ----------------------------------------------------------------------------
   Encoding, step 1 and 3: cutting added tokens out of text */

/* A run of text (id < 0) or an added token, as byte offsets into the text. */
typedef struct {
    int32_t id;
    size_t start, end;
} Span;

typedef struct {
    Span *data;
    size_t len, cap;
} SpanVec;

static bool spans_push(SpanVec *v, int32_t id, size_t start, size_t end) {
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        Span *p = realloc(v->data, cap * sizeof *p);
        if (!p) return false;
        v->data = p;
        v->cap = cap;
    }
    v->data[v->len++] = (Span){id, start, end};
    return true;
}

/* Rust's \s: the Unicode White_Space property, a short fixed list. */
static bool is_white_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static bool is_word_char(const Tokenizer *tok, const char *s, size_t n) {
    if (!tok->word_re || utf8_len((const unsigned char *)s, n, NULL) != n) return false;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(tok->word_re, NULL);
    if (!md) return false;
    int rc = pcre2_match(tok->word_re, (PCRE2_SPTR)s, n, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

static bool space_char_at(const char *s, size_t n) {
    uint32_t cp;
    return utf8_len((const unsigned char *)s, n, &cp) && is_white_space(cp);
}

/* Bytes of whitespace at the start of s. */
static size_t leading_space(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && space_char_at(s + i, n - i)) i += char_step(s + i, n - i);
    return i;
}

/* Where the whitespace at the end of s[0..end) begins. */
static size_t trailing_space_start(const char *s, size_t end) {
    while (end > 0) {
        size_t k = char_start_before(s, end);
        if (!space_char_at(s + k, end - k)) break;
        end = k;
    }
    return end;
}

/* The longest added-token pattern that matches at s[0..n), or -1. */
static int32_t match_at(const Tokenizer *tok, const Matcher *m, const char *s, size_t n) {
    unsigned char b = (unsigned char)s[0];
    for (size_t k = m->start[b]; k < m->start[b + 1]; k++) {
        const AddedToken *t = &tok->added[m->order[k]];
        if (t->pattern_len <= n && memcmp(s, t->pattern, t->pattern_len) == 0) return m->order[k];
    }
    return -1;
}

/* The library's find_matches: leftmost-longest matches in a non-overlapping
   scan; single_word discards a match touching a word character (the scan
   still resumes after it); lstrip/rstrip widen a match over whitespace. */
static bool split_added(const Tokenizer *tok, const Matcher *m, const char *s, size_t n, SpanVec *out) {
    out->len = 0;
    size_t done = 0; /* end of the last emitted span */
    for (size_t i = 0; m->count && i < n;) {
        int32_t k = match_at(tok, m, s + i, n - i);
        if (k < 0) {
            i++;
            continue;
        }
        const AddedToken *t = &tok->added[k];
        size_t start = i, stop = i + t->pattern_len;
        i = stop;
        if (t->single_word) {
            bool word_before = start > 0 && is_word_char(tok, s + char_start_before(s, start),
                                                         start - char_start_before(s, start));
            bool word_after = stop < n && is_word_char(tok, s + stop, char_step(s + stop, n - stop));
            if (word_before || word_after) continue;
        }
        if (t->lstrip) {
            size_t wide = trailing_space_start(s, start);
            start = wide > done ? wide : done; /* spaces a previous match took stay its own */
        }
        if (t->rstrip) stop += leading_space(s + stop, n - stop);
        if (done < start && !spans_push(out, -1, done, start)) return false;
        if (!spans_push(out, t->id, start, stop)) return false;
        done = stop;
    }
    if (done < n && !spans_push(out, -1, done, n)) return false;
    return true;
}

/* ----------------------------------------------------------------------------
   Encoding, step 5: BPE over one word */

typedef struct {
    int32_t id;         /* -1 once merged into its left neighbour */
    int32_t prev, next; /* neighbours in the word, -1 at the ends */
} Symbol;

typedef struct {
    int32_t rank, pos, merged; /* merge symbol `pos` with its right neighbour */
} Candidate;

#define CACHE_MAX_WORD 64 /* longer words are rare; they are not cached */

typedef struct {
    uint64_t hash;
    uint32_t key_off, key_len, ids_off, n_ids;
    bool used;
} CacheSlot;

typedef struct {
    CacheSlot *slots;
    size_t cap, count;
    Buf keys;  /* all cached words, back to back */
    IdVec ids; /* all their token ids */
} WordCache;

typedef struct {
    const Tokenizer *tok;
    IdVec out;
    Buf norm, tmp, pre;   /* normalised text, scratch, pre-tokenised text */
    SpanVec raw_spans, norm_spans;
    Symbol *sym;
    size_t sym_cap;
    Candidate *heap;      /* binary min-heap on (rank, pos) */
    size_t heap_len, heap_cap;
    WordCache cache;
} Encoder;

/* Lowest rank first; on equal ranks the leftmost pair, as the library. */
static bool candidate_before(Candidate a, Candidate b) {
    return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void heap_push(Encoder *e, Candidate c) {
    size_t i = e->heap_len++;
    while (i > 0 && candidate_before(c, e->heap[(i - 1) / 2])) {
        e->heap[i] = e->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    e->heap[i] = c;
}

static Candidate heap_pop(Encoder *e) {
    Candidate top = e->heap[0], last = e->heap[--e->heap_len];
    size_t i = 0, n = e->heap_len;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && candidate_before(e->heap[child + 1], e->heap[child])) child++;
        if (!candidate_before(e->heap[child], last)) break;
        e->heap[i] = e->heap[child];
        i = child;
    }
    if (n) e->heap[i] = last;
    return top;
}

/* Queues the merge of symbol `pos` with its right neighbour, if one exists. */
static void queue_pair(Encoder *e, int32_t pos) {
    const Symbol *left = &e->sym[pos];
    if (left->next < 0) return;
    const MergeSlot *m = mergemap_get(&e->tok->merges, left->id, e->sym[left->next].id);
    if (m) heap_push(e, (Candidate){m->rank, pos, m->merged});
}

static bool bytes_have_tokens(const Tokenizer *tok, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (tok->byte_ids[(unsigned char)s[i]] < 0) return false;
    return true;
}

/* The word's characters as initial symbols, as the library's merge_word. */
static size_t initial_symbols(Encoder *e, const char *w, size_t n) {
    const Tokenizer *tok = e->tok;
    size_t count = 0;
    bool pending_unk = false;
    for (size_t i = 0; i < n;) {
        size_t k = char_step(w + i, n - i);
        int32_t id = strmap_get(&tok->vocab, w + i, k);
        if (id >= 0) {
            if (pending_unk) e->sym[count++].id = tok->unk_id;
            pending_unk = false;
            e->sym[count++].id = id;
        } else if (tok->byte_fallback && bytes_have_tokens(tok, w + i, k)) {
            /* The library adds the bytes without first flushing a pending
               <unk>, which then lands after them; kept for exactness. */
            for (size_t b = 0; b < k; b++) e->sym[count++].id = tok->byte_ids[(unsigned char)w[i + b]];
        } else if (tok->unk_id >= 0) {
            if (pending_unk && !tok->fuse_unk) e->sym[count++].id = tok->unk_id;
            pending_unk = true;
        } /* no unk token: the library drops the character */
        i += k;
    }
    if (pending_unk) e->sym[count++].id = tok->unk_id;
    return count;
}

static bool bpe_word(Encoder *e, const char *w, size_t n) {
    if (n > INT32_MAX / 4) return false; /* symbol positions are int32 */
    /* At most one symbol per byte; each merge queues at most two candidates. */
    if (n > e->sym_cap) {
        Symbol *sym = realloc(e->sym, n * sizeof *sym);
        Candidate *heap = sym ? realloc(e->heap, 3 * n * sizeof *heap) : NULL;
        if (sym) e->sym = sym;
        if (heap) e->heap = heap;
        if (!sym || !heap) return false;
        e->sym_cap = n;
    }
    size_t count = initial_symbols(e, w, n);
    e->heap_len = 0;
    for (size_t i = 0; i < count; i++) {
        e->sym[i].prev = (int32_t)i - 1;
        e->sym[i].next = i + 1 < count ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < count; i++) queue_pair(e, (int32_t)i);
    while (e->heap_len) {
        Candidate c = heap_pop(e);
        Symbol *left = &e->sym[c.pos];
        if (left->id < 0 || left->next < 0) continue;
        Symbol *right = &e->sym[left->next];
        const MergeSlot *m = mergemap_get(&e->tok->merges, left->id, right->id);
        if (!m || m->merged != c.merged) continue; /* stale: a side changed since it was queued */
        left->id = c.merged;
        right->id = -1;
        left->next = right->next;
        if (left->next >= 0) e->sym[left->next].prev = c.pos;
        if (left->prev >= 0) queue_pair(e, left->prev);
        queue_pair(e, c.pos);
    }
    for (size_t i = 0; i < count; i++)
        if (e->sym[i].id >= 0 && !ids_push(&e->out, e->sym[i].id)) return false;
    return true;
}

/* ----------------------------------------------------------------------------
   Encoding: the per-call word cache (ordinary text repeats its words a lot) */

static CacheSlot *cache_slot(const WordCache *c, uint64_t h, const char *w, size_t n) {
    size_t i = h & (c->cap - 1);
    for (;; i = (i + 1) & (c->cap - 1)) {
        const CacheSlot *s = &c->slots[i];
        if (!s->used || (s->hash == h && s->key_len == n && memcmp(c->keys.data + s->key_off, w, n) == 0)) break;
    }
    return &c->slots[i];
}

static bool cache_grow(WordCache *c) {
    size_t cap = c->cap ? c->cap * 2 : 1024;
    CacheSlot *slots = calloc(cap, sizeof *slots);
    if (!slots) return false;
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->slots[i].used) continue;
        size_t k = c->slots[i].hash & (cap - 1);
        while (slots[k].used) k = (k + 1) & (cap - 1);
        slots[k] = c->slots[i];
    }
    free(c->slots);
    c->slots = slots;
    c->cap = cap;
    return true;
}

static bool bpe_cached(Encoder *e, const char *w, size_t n) {
    WordCache *c = &e->cache;
    if (n > CACHE_MAX_WORD || c->keys.len > (1u << 30)) return bpe_word(e, w, n);
    if ((c->count + 1) * 2 > c->cap && !cache_grow(c)) return false;
    uint64_t h = hash_bytes(w, n);
    CacheSlot *slot = cache_slot(c, h, w, n);
    if (slot->used) return ids_add(&e->out, c->ids.data + slot->ids_off, slot->n_ids);
    size_t before = e->out.len;
    if (!bpe_word(e, w, n)) return false;
    size_t n_ids = e->out.len - before;
    *slot = (CacheSlot){h, (uint32_t)c->keys.len, (uint32_t)n, (uint32_t)c->ids.len, (uint32_t)n_ids, true};
    c->count++;
    return buf_add(&c->keys, w, n) && ids_add(&c->ids, e->out.data + before, n_ids);
}

/* BPE over one pre-tokenised word, cut further where that is exact. */
static bool encode_word(Encoder *e, const char *w, size_t n) {
    if (!e->tok->cut_words) return bpe_cached(e, w, n);
    size_t start = 0;
    for (size_t i = 1; i + METASPACE_LEN <= n; i++) {
        if (memcmp(w + i, METASPACE, METASPACE_LEN) != 0) continue;
        if (i >= METASPACE_LEN && memcmp(w + i - METASPACE_LEN, METASPACE, METASPACE_LEN) == 0) continue;
        if (i > start && !bpe_cached(e, w + start, i - start)) return false;
        start = i;
    }
    return bpe_cached(e, w + start, n - start);
}

/* ----------------------------------------------------------------------------
   Encoding, step 4: the Metaspace pre-tokenizer */

/* at_start: the text begins at offset 0 of the input (prepend_scheme "first"). */
static bool pre_tokenize(Encoder *e, const char *s, size_t n, bool at_start) {
    const Tokenizer *tok = e->tok;
    if (!tok->metaspace) return encode_word(e, s, n);
    size_t rlen = strlen(tok->meta_repl);
    if (!replace_all(s, n, " ", tok->meta_repl, &e->tmp)) return false;
    bool starts = e->tmp.len >= rlen && memcmp(e->tmp.data, tok->meta_repl, rlen) == 0;
    bool prepend = !starts && (tok->meta_prepend == PREPEND_ALWAYS || (tok->meta_prepend == PREPEND_FIRST && at_start));
    e->pre.len = 0;
    if ((prepend && !buf_add(&e->pre, tok->meta_repl, rlen)) || !buf_add(&e->pre, e->tmp.data, e->tmp.len))
        return false;
    const char *p = e->pre.data;
    size_t len = e->pre.len;
    if (!tok->meta_split) return encode_word(e, p, len);
    /* Split before every replacement character (each joins the word after it). */
    size_t start = 0;
    for (size_t i = 1; i + rlen <= len; i++) {
        if (memcmp(p + i, tok->meta_repl, rlen) != 0) continue;
        if (!encode_word(e, p + start, i - start)) return false;
        start = i;
    }
    return len == 0 || encode_word(e, p + start, len - start);
}

/* Steps 2-5 for one run of raw text between added tokens. */
static bool encode_text(Encoder *e, const char *s, size_t n, bool at_start) {
    const Tokenizer *tok = e->tok;
    if (!normalize(tok, s, n, &e->norm, &e->tmp)) return false;
    if (!tok->norm_matcher.count) return pre_tokenize(e, e->norm.data, e->norm.len, at_start);
    if (!split_added(tok, &tok->norm_matcher, e->norm.data, e->norm.len, &e->norm_spans)) return false;
    for (size_t i = 0; i < e->norm_spans.len; i++) {
        Span sp = e->norm_spans.data[i];
        bool ok = sp.id >= 0 ? ids_push(&e->out, sp.id)
                             : pre_tokenize(e, e->norm.data + sp.start, sp.end - sp.start, at_start && sp.start == 0);
        if (!ok) return false;
    }
    return true;
}

static void encoder_free(Encoder *e) {
    free(e->norm.data);
    free(e->tmp.data);
    free(e->pre.data);
    free(e->raw_spans.data);
    free(e->norm_spans.data);
    free(e->sym);
    free(e->heap);
    free(e->cache.slots);
    free(e->cache.keys.data);
    free(e->cache.ids.data);
}

static bool add_specials(const Tokenizer *tok, IdVec *out, const IdVec *ids, bool is_prefix) {
    if (ids->len) return ids_add(out, ids->data, ids->len);
    return !is_prefix || tok->bos_id < 0 || ids_push(out, tok->bos_id);
}

int tokenizer_encode(const Tokenizer *tok, const char *text, size_t len, int add_bos, int32_t **ids, size_t *n_ids,
                     Err *err) {
    *ids = NULL;
    *n_ids = 0;
    if (!tok) return err_set(err, "tokenizer_encode: no tokenizer");
    if (!text && len) return err_set(err, "tokenizer_encode: NULL text with length %zu", len);
    bool add = add_bos < 0 ? tok->adds_bos : add_bos != 0;
    Encoder e = {.tok = tok};
    bool ok = (!add || add_specials(tok, &e.out, &tok->prefix, true)) &&
              split_added(tok, &tok->raw_matcher, text ? text : "", len, &e.raw_spans);
    for (size_t i = 0; ok && i < e.raw_spans.len; i++) {
        Span sp = e.raw_spans.data[i];
        ok = sp.id >= 0 ? ids_push(&e.out, sp.id) : encode_text(&e, text + sp.start, sp.end - sp.start, sp.start == 0);
    }
    ok = ok && (!add || add_specials(tok, &e.out, &tok->suffix, false));
    if (ok && !e.out.data) ok = (e.out.data = malloc(sizeof(int32_t))) != NULL; /* callers free() it */
    encoder_free(&e);
    if (!ok) {
        free(e.out.data);
        return err_set(err, "tokenizer: cannot encode %zu bytes: out of memory (or one word over 512 MB)", len);
    }
    *ids = e.out.data;
    *n_ids = e.out.len;
    return 0;
}

/* ----------------------------------------------------------------------------
   Decoding: the decoder chain over a list of strings */

typedef struct {
    Buf *items;
    size_t len;
} Pieces;

static void pieces_free(Pieces *p) {
    for (size_t i = 0; i < p->len; i++) free(p->items[i].data);
    free(p->items);
    p->items = NULL;
    p->len = 0;
}

static bool pieces_new(Pieces *p, size_t n) {
    p->len = n;
    p->items = calloc(n + 1, sizeof *p->items);
    return p->items != NULL;
}

/* "<0xNN>" as the library reads it: 6 bytes, and Rust's u8::from_str_radix
   on the middle two (which also takes a leading '+'). */
static int byte_token_value(const Buf *t) {
    const char *s = t->data;
    if (t->len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    const char *digits = s[3] == '+' ? s + 4 : s + 3;
    int value = 0;
    for (const char *d = digits; d < s + 5; d++) {
        int v = (*d >= '0' && *d <= '9') ? *d - '0' : (*d >= 'a' && *d <= 'f') ? *d - 'a' + 10
              : (*d >= 'A' && *d <= 'F') ? *d - 'A' + 10 : -1;
        if (v < 0) return -1;
        value = value * 16 + v;
    }
    return value;
}

static bool utf8_valid(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len((const unsigned char *)s + i, n - i, NULL);
        if (!k) return false;
        i += k;
    }
    return true;
}

/* Consecutive byte tokens become their bytes if those are valid UTF-8 as a
   whole; otherwise every byte of the run becomes one U+FFFD. */
static bool flush_bytes(Buf *bytes, Pieces *out, size_t *n) {
    if (!bytes->len) return true;
    if (utf8_valid(bytes->data, bytes->len)) {
        out->items[(*n)++] = *bytes;
        *bytes = (Buf){0};
        return true;
    }
    for (size_t i = 0; i < bytes->len; i++)
        if (!buf_add(&out->items[(*n)++], "\xef\xbf\xbd", 3)) return false;
    bytes->len = 0;
    return true;
}

static bool step_byte_fallback(Pieces *in, Pieces *out) {
    size_t total = 0, n = 0;
    for (size_t i = 0; i < in->len; i++) total += in->items[i].len == 6 ? 6 : 1; /* enough for every U+FFFD */
    if (!pieces_new(out, total)) return false;
    Buf bytes = {0};
    bool ok = true;
    for (size_t i = 0; ok && i < in->len; i++) {
        int v = byte_token_value(&in->items[i]);
        if (v >= 0) {
            char c = (char)v;
            ok = buf_add(&bytes, &c, 1);
            continue;
        }
        ok = flush_bytes(&bytes, out, &n);
        out->items[n++] = in->items[i];
        in->items[i] = (Buf){0};
    }
    ok = ok && flush_bytes(&bytes, out, &n);
    free(bytes.data);
    out->len = n;
    return ok;
}

/* Strips up to `start` leading and `stop` trailing copies of one character. */
static bool strip_piece(const Buf *in, const DecStep *step, Buf *out) {
    size_t begin = 0, end = in->len;
    for (size_t k = 0; k < step->start && begin < end; k++) {
        uint32_t cp;
        size_t len = utf8_len((const unsigned char *)in->data + begin, end - begin, &cp);
        if (!len || cp != step->ch) break;
        begin += len;
    }
    for (size_t k = 0; k < step->stop && end > begin; k++) {
        size_t at = char_start_before(in->data, end);
        uint32_t cp;
        if (at < begin || utf8_len((const unsigned char *)in->data + at, end - at, &cp) != end - at || cp != step->ch)
            break;
        end = at;
    }
    return buf_add(out, in->data + begin, end - begin);
}

/* Metaspace decoder: the replacement becomes a space, except in the first
   piece, where (unless prepend_scheme is never) every one is dropped. */
static bool metaspace_piece(const Buf *in, const DecStep *step, bool first, Buf *out) {
    for (size_t i = 0; i < in->len;) {
        uint32_t cp = 0;
        size_t len = utf8_len((const unsigned char *)in->data + i, in->len - i, &cp);
        if (len && cp == step->ch) {
            if (!(first && step->prepend != PREPEND_NEVER) && !buf_add(out, " ", 1)) return false;
        } else if (!buf_add(out, in->data + i, len ? len : 1)) {
            return false;
        }
        i += len ? len : 1;
    }
    return true;
}

static bool run_dec_step(const DecStep *step, Pieces *in, Pieces *out) {
    if (step->kind == DEC_BYTE_FALLBACK) return step_byte_fallback(in, out);
    if (step->kind == DEC_FUSE) {
        if (!pieces_new(out, 1)) return false;
        for (size_t i = 0; i < in->len; i++)
            if (!buf_add(&out->items[0], in->items[i].data, in->items[i].len)) return false;
        return buf_reserve(&out->items[0], 0);
    }
    if (!pieces_new(out, in->len)) return false;
    for (size_t i = 0; i < in->len; i++) {
        const Buf *p = &in->items[i];
        Buf *o = &out->items[i];
        bool ok = step->kind == DEC_REPLACE ? replace_all(p->data ? p->data : "", p->len, step->from, step->to, o)
                : step->kind == DEC_STRIP   ? strip_piece(p, step, o) && buf_reserve(o, 0)
                                            : metaspace_piece(p, step, i == 0, o) && buf_reserve(o, 0);
        if (!ok) return false;
    }
    return true;
}

static char *join_pieces(const Pieces *p, const char *sep, size_t *out_len) {
    Buf out = {0};
    for (size_t i = 0; i < p->len; i++) {
        if ((i && !buf_add(&out, sep, strlen(sep))) || !buf_add(&out, p->items[i].data, p->items[i].len)) {
            free(out.data);
            return NULL;
        }
    }
    if (!buf_reserve(&out, 0)) return NULL;
    if (out_len) *out_len = out.len;
    return out.data;
}

char *tokenizer_decode_len(const Tokenizer *tok, const int32_t *ids, size_t n_ids, int skip_special,
                           size_t *out_len) {
    Pieces cur = {0}, next = {0};
    if (!tok || !pieces_new(&cur, n_ids)) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < n_ids; i++) {
        int32_t id = ids[i];
        /* The library silently drops ids it has no string for. */
        if (id < 0 || id >= tok->n_ids || !tok->pieces[id] || (skip_special && tok->special[id])) continue;
        if (!buf_add(&cur.items[n++], tok->pieces[id], tok->piece_lens[id])) goto fail;
    }
    cur.len = n;
    /* Without a decoder the library joins the token strings with spaces. */
    if (!tok->has_decoder) {
        char *text = join_pieces(&cur, " ", out_len);
        pieces_free(&cur);
        return text;
    }
    for (size_t k = 0; k < tok->n_dec; k++) {
        bool ok = run_dec_step(&tok->dec[k], &cur, &next);
        pieces_free(&cur);
        cur = next;
        next = (Pieces){0};
        if (!ok) goto fail;
    }
    char *text = join_pieces(&cur, "", out_len);
    pieces_free(&cur);
    return text;
fail:
    pieces_free(&cur);
    pieces_free(&next);
    return NULL;
}

char *tokenizer_decode(const Tokenizer *tok, const int32_t *ids, size_t n_ids, int skip_special) {
    return tokenizer_decode_len(tok, ids, n_ids, skip_special, NULL);
}

/* ----------------------------------------------------------------------------
   Lookups */

const char *tokenizer_piece(const Tokenizer *tok, int32_t id) {
    if (!tok || id < 0 || id >= tok->n_ids) return NULL;
    return tok->pieces[id];
}

int32_t tokenizer_lookup(const Tokenizer *tok, const char *piece) {
    if (!tok || !piece) return -1;
    size_t n = strlen(piece);
    int32_t id = strmap_get(&tok->added_ids, piece, n);
    return id >= 0 ? id : strmap_get(&tok->vocab, piece, n);
}

int32_t tokenizer_vocab_size(const Tokenizer *tok) { return tok ? tok->n_ids : 0; }
int32_t tokenizer_bos_id(const Tokenizer *tok) { return tok ? tok->bos_id : -1; }
int32_t tokenizer_eos_id(const Tokenizer *tok) { return tok ? tok->eos_id : -1; }
int tokenizer_adds_bos(const Tokenizer *tok) { return tok ? tok->adds_bos : 0; }
