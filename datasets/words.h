/* words.h: word lists written for hymeval and the seeded random numbers every
   generator draws from, so that a task's examples follow from its seed alone.

   The generator is splitmix64 (Steele, Lea, Flood 2014): 64 bits of state,
   one add and three xor-shift-multiplies per draw, every seed usable. */
#ifndef HYMEVAL_WORDS_H
#define HYMEVAL_WORDS_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- random numbers */

typedef struct {
    uint64_t state;
} Rng;

void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_next(Rng *r);
/* Uniform double in [0, 1). */
double rng_uniform(Rng *r);
/* Uniform integer in [0, n) without modulo bias; n > 0. */
uint64_t rng_below(Rng *r, uint64_t n);
/* Uniform integer in [lo, hi] (inclusive). */
int64_t rng_range(Rng *r, int64_t lo, int64_t hi);
/* Fisher-Yates shuffle of n elements of `size` bytes each. */
void rng_shuffle(Rng *r, void *base, size_t n, size_t size);
/* k distinct indices from [0, n), in the order drawn (k <= n). */
void rng_sample(Rng *r, size_t n, size_t k, size_t *out);

/* Mixes values into a seed (used to give every example its own stream). */
uint64_t seed_mix(uint64_t a, uint64_t b);
/* FNV-1a of a string, for mixing names into seeds. */
uint64_t hash_string(const char *s);

/* Riemann zeta(alpha) for alpha > 1 (partial sum plus Euler-Maclaurin tail;
   relative error < 1e-12). */
double zeta(double alpha);
/* Truncated Zipf law over ranks 1..n with P(k) ~ k^-alpha: a table for
   drawing ranks by binary search on the CDF. */
typedef struct {
    double *cdf;
    int n;
} Zipf;
int zipf_init(Zipf *z, int n, double alpha); /* 0, or -1 when out of memory */
int zipf_draw(const Zipf *z, Rng *r);          /* a rank in 1..n */
void zipf_free(Zipf *z);

/* ---------------------------------------------------------------- word lists */

/* Lowercase ASCII words, no duplicates within a list (lists may share words). */
extern const char *const words_adjectives[];
extern const size_t words_n_adjectives;
extern const char *const words_nouns[]; /* countable, with regular plurals (see word_plural) */
extern const size_t words_n_nouns;
extern const char *const words_verbs[]; /* base form, mostly transitive */
extern const size_t words_n_verbs;
extern const char *const words_common[]; /* frequent English words of every kind */
extern const size_t words_n_common;

const char *words_pick(Rng *r, const char *const *list, size_t n);
/* Regular English plural of a noun ("box" -> "boxes", "city" -> "cities"). */
void word_plural(const char *noun, char *out, size_t cap);
/* "a" or "an" for the word that follows. */
const char *word_article(const char *next);

/* A pronounceable made-up lowercase word of 2..3 syllables. */
void words_pseudo(Rng *r, char *out, size_t cap);

/* A growing pool of distinct words: every built-in word once (shuffled by
   the seed), then made-up words as far as asked for. */
typedef struct WordPool WordPool;
WordPool *wordpool_new(uint64_t seed);
/* The i-th word (NULL only when out of memory). */
const char *wordpool_get(WordPool *p, size_t i);
void wordpool_free(WordPool *p);

/* ---------------------------------------------------------------- needle keys and values (RULER) */

typedef enum { VAL_WORDS, VAL_NUMBERS, VAL_UUIDS } ValueType;

/* "words" -> VAL_WORDS etc.; -1 if unknown. */
int value_type_parse(const char *s);
const char *value_type_name(ValueType t); /* "words", "numbers", "uuids" */
/* A random key or value: an adjective-noun pair ("quiet-lantern"), a
   7-digit number, or a version-4 UUID. out must hold 64 bytes. */
void random_value(Rng *r, ValueType t, char *out, size_t cap);
/* Version-4 UUID text (36 characters + NUL). */
void random_uuid(Rng *r, char out[37]);

#endif
