/* haystack.h: the text needles hide in, and fitting a prompt to an exact
   token budget.

   A haystack is a stream of sentences, made on demand (so it is as long as
   any target needs) and fully determined by its seed:
     noise   RULER's five-sentence filler ("The grass is green. ..."), repeated;
     prose   essay-like English made from paragraph templates, no paragraph twice;
     needle  distractor needles ("One of the special magic numbers for
             quiet-lantern is: 1234567.") with random keys and values;
     file    any text, split into sentences by a rule-based splitter and
             repeated when too short.
   Needles go between sentences (haystack_render), never inside one.

   Length targeting (fit_prompt) sizes a prompt so that prompt tokens +
   max_new_tokens <= target, as RULER does, by binary search on the number of
   context units (sentences, list items, pairs), and then, only when whole
   units cannot come within 1% of the target, on a cut of the next unit. */
#ifndef HYMEVAL_HAYSTACK_H
#define HYMEVAL_HAYSTACK_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "tokenizer.h"
#include "words.h"

/* ---------------------------------------------------------------- growable strings */

typedef struct {
    char *s; /* NUL-terminated once anything was added */
    size_t len, cap;
} StrBuf;

int sb_add(StrBuf *b, const char *s, size_t n, Err *err);
int sb_puts(StrBuf *b, const char *s, Err *err);
int sb_printf(StrBuf *b, Err *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void sb_clear(StrBuf *b); /* keeps the memory */
void sb_free(StrBuf *b);
/* Returns the string (or "" when empty) and leaves b empty; caller frees. */
char *sb_take(StrBuf *b);

/* Replaces every "{name}" in tmpl by its value (names[i] -> values[i]);
   unknown placeholders are kept as written. */
int fill_template(StrBuf *out, const char *tmpl, const char *const *names, const char *const *values, int n,
                  Err *err);

/* ---------------------------------------------------------------- sentences */

typedef struct {
    char *text;      /* one sentence, single-spaced, no surrounding whitespace */
    const char *sep; /* what goes before it when it follows another sentence: " ", "\n" or "\n\n" */
} Sentence;

/* Splits text into sentences: a sentence ends at . ! or ? (with any closing
   quotes or brackets) followed by whitespace and a capital letter, a digit or
   an opening quote/bracket, unless the period ends a known abbreviation
   ("Mr.", "e.g.", "etc.", "U.S.") or an initial ("J."); a blank line always
   ends one. Whitespace runs become one space. *out is malloc'd. */
int split_sentences(const char *text, Sentence **out, size_t *n, Err *err);
void sentences_free(Sentence *s, size_t n);

/* ---------------------------------------------------------------- haystacks */

typedef enum { HAY_NOISE, HAY_PROSE, HAY_NEEDLE, HAY_FILE } HaystackKind;

int haystack_kind_parse(const char *s); /* "noise" ... "file" -> kind, or -1 */
const char *haystack_kind_name(HaystackKind k);

/* RULER's needle sentence and its filler. */
#define RULER_NEEDLE "One of the special magic {type_needle_v} for {key} is: {value}."
#define RULER_NOISE "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."

/* Formats RULER's needle sentence. */
int format_needle(StrBuf *out, const char *type_needle_v, const char *key, const char *value, Err *err);

typedef struct {
    HaystackKind kind;
    uint64_t seed;
    /* HAY_FILE: the file's text and its name (for messages) */
    const char *text;
    const char *source;
    /* HAY_NEEDLE: what the distractor needles look like */
    ValueType key_type, value_type;
    const char *type_needle_v; /* "numbers", "words", "uuids" */
    const char *const *exclude_keys; /* distractors never use these keys */
    size_t n_exclude;
    /* optional: measure depths in this tokenizer's tokens (each sentence
       encoded on its own, once) instead of in characters */
    const Tokenizer *tok;
} HaystackSpec;

typedef struct Haystack Haystack;

Haystack *haystack_open(const HaystackSpec *spec, Err *err);
/* Sentence i (made on demand; stays valid until close). NULL with err on failure. */
const Sentence *haystack_sentence(Haystack *h, size_t i, Err *err);
/* What separates an inserted needle from its neighbours. */
const char *haystack_needle_sep(const Haystack *h);
void haystack_close(Haystack *h);

/* A needle to insert at a depth: a percentage of the haystack's characters. */
typedef struct {
    const char *text;
    double depth;
} Needle;

/* Appends sentences [0, n) plus the first `part` bytes of sentence n (part 0:
   none) to out, with each needle inserted at the sentence boundary at or
   before depth% of the haystack (needles not counted), measured in tokens
   when the spec names a tokenizer, else in characters. Needles
   must be sorted by depth; equal boundaries keep their order. needle_off[i]
   (may be NULL) receives the byte offset of needle i in out. */
int haystack_render(Haystack *h, size_t n, size_t part, const Needle *needles, size_t n_needles, StrBuf *out,
                    size_t *needle_off, Err *err);

/* The 40 evenly spaced depths RULER draws from: round(linspace(0, 100, 40)). */
#define RULER_N_DEPTHS 40
double ruler_depth(int i);

/* ---------------------------------------------------------------- token budget */

/* Builds the prompt for n whole context units plus `part` bytes of unit n
   (part 0: none) into out (out is empty on entry). */
typedef int (*RenderFn)(void *ctx, size_t n, size_t part, StrBuf *out, Err *err);
/* The text of unit n as fit_prompt may cut it: its spaces are the preferred
   cut points. NULL (with err->msg untouched) means unit n cannot be cut. */
typedef const char *(*PartialFn)(void *ctx, size_t n, Err *err);

typedef struct {
    size_t n;       /* whole units */
    size_t part;    /* bytes of unit n (0 = none) */
    int tokens;     /* prompt tokens (BOS included when add_bos) */
} Fit;

/* Finds the largest prompt of whole units with tokens + max_new_tokens <=
   target; when that is more than 0.5% short, cuts unit n to come closer.
   max_units bounds n (SIZE_MAX for none). Fails, saying why, when even an
   empty context is over the target or the best prompt is still more than 1%
   short of it. */
int fit_prompt(const Tokenizer *tok, int add_bos, int target, int max_new_tokens, size_t max_units, RenderFn render,
               PartialFn partial, void *ctx, Fit *fit, Err *err);

/* The token count of text. */
int count_tokens(const Tokenizer *tok, const char *text, size_t len, int add_bos, int *out, Err *err);

/* Index of the first token of ids (the encoding of prompt) that covers
   prompt[off...]: the encoding of prompt[0:off] agrees with ids up to there. */
int token_index_at(const Tokenizer *tok, const int32_t *ids, size_t n_ids, const char *prompt, size_t off,
                   int add_bos, size_t *index, Err *err);

/* The tokens covering prompt[start, end): *pos = token_index_at(start),
   *len = token_index_at(end) - *pos. */
int token_span(const Tokenizer *tok, const int32_t *ids, size_t n_ids, const char *prompt, size_t start, size_t end,
               int add_bos, int *pos, int *len, Err *err);

/* The ±1% rule: 0 when |prompt_tokens + max_new_tokens - target| <= 1% of
   target, else -1 with a message naming both. */
int check_length(int target, int prompt_tokens, int max_new_tokens, Err *err);

#endif
