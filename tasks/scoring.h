/* scoring.h: the scorers tasks use, each as its reference defines it
   (docs/METRICS.md). Regular expressions go through PCRE2. */
#ifndef HYMEVAL_SCORING_H
#define HYMEVAL_SCORING_H

#include "error.h"
#include "task.h"

/* RULER post-processing of a prediction: strip, control characters -> "\n".
   Returns a malloc'd copy. */
char *ruler_postprocess(const char *pred);
/* RULER string_match_all: fraction of refs contained in pred, case-insensitive. */
double string_match_all(const char *pred, char *const *refs, int n_refs);
/* RULER string_match_part (reference repo, not the lm-eval port): 1 if any ref is contained. */
double string_match_part(const char *pred, char *const *refs, int n_refs);
/* Literal containment; case-insensitive when nocase (Unicode-aware lowercasing of ASCII and Latin-1 at least). */
int text_contains(const char *haystack, const char *needle, int nocase);

typedef enum {
    NORM_NONE = 0,
    NORM_LOWER = 1,         /* lowercase */
    NORM_STRIP = 2,         /* trim surrounding whitespace */
    NORM_SPACES = 4,        /* collapse whitespace runs to one space */
    NORM_PUNCT = 8,         /* remove ASCII punctuation */
    NORM_ARTICLES = 16,     /* remove the words a, an, the (SQuAD normalize_answer) */
    NORM_SQUAD = 1 | 4 | 8 | 16 | 2,
} NormFlags;
/* malloc'd normalised copy. */
char *normalize_text(const char *s, int flags);
/* Exact match after normalisation. */
int exact_match(const char *pred, const char *gold, int flags);
/* 1 if the PCRE2 pattern matches pred (UTF mode); -1 with err on a bad pattern. */
int regex_match(const char *pattern, const char *pred, Err *err);
/* Compiles a pattern only to validate it (task-file validation); -1 with err naming the offset. */
int regex_check(const char *pattern, Err *err);

/* RULER scoring of a generation: post-processes the prediction and adds
   string_match_all and string_match_part to out, the one named by
   `headline` first ("string_match_all" unless it names the other). */
int score_ruler(const char *prediction, char *const *refs, int n_refs, const char *headline, Scores *out,
                Err *err);

#endif
