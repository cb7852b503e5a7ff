/* scoring.c: string scorers, each following a named reference
   (docs/METRICS.md gives the definitions and where they differ):
   - RULER (NVIDIA/RULER scripts/eval): postprocess_pred, string_match_all,
     string_match_part;
   - lm-eval squad_completion: case-insensitive literal containment;
   - SQuAD's normalize_answer for exact match;
   - PCRE2 for regular expressions.
   Case folding imitates Python's str.lower() on the ranges listed at
   lower_codepoint(); outside them text is compared as is. */
#include "scoring.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- UTF-8 */

#define NOT_A_CODEPOINT 0xFFFFFFFFu

/* Decodes one UTF-8 sequence at s (len bytes left). Returns its length in
   bytes; a malformed byte is returned as length 1 with NOT_A_CODEPOINT, so
   callers copy it through untouched. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp) {
    unsigned char c = s[0];
    size_t n;
    uint32_t value, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        n = 2, value = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, value = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, value = c & 0x07, min = 0x10000;
    } else {
        *cp = NOT_A_CODEPOINT;
        return 1;
    }
    if (n > len) {
        *cp = NOT_A_CODEPOINT;
        return 1;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = NOT_A_CODEPOINT;
            return 1;
        }
        value = value << 6 | (s[i] & 0x3F);
    }
    if (value < min || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) {
        *cp = NOT_A_CODEPOINT;
        return 1;
    }
    *cp = value;
    return n;
}

static size_t utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Python's str.isspace(), which str.strip() and str.split() use. */
static int is_unicode_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

/* Python's str.lower() for one code point, on the ranges hymeval folds:
   ASCII, Latin-1 Supplement, Latin Extended-A and basic Cyrillic. Other
   code points are returned unchanged. U+0130 (capital I with dot) lowers to
   two code points in Python and is handled by the caller. */
static uint32_t lower_codepoint(uint32_t cp) {
    if (cp >= 'A' && cp <= 'Z') return cp + 32;
    if (cp < 0xC0) return cp;
    if (cp <= 0xDE) return cp == 0xD7 ? cp : cp + 32;  /* U+00D7 is the multiplication sign */
    if (cp < 0x100) return cp;
    if (cp <= 0x17F) {
        /* Latin Extended-A alternates capital/small in pairs whose parity
           flips twice; the few code points without a pair are already small. */
        if (cp == 0x178) return 0xFF;  /* Y with diaeresis pairs with U+00FF */
        if (cp <= 0x12F || (cp >= 0x132 && cp <= 0x137) || (cp >= 0x14A && cp <= 0x177))
            return cp % 2 == 0 ? cp + 1 : cp;
        if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E)) return cp % 2 == 1 ? cp + 1 : cp;
        return cp;
    }
    if (cp >= 0x400 && cp <= 0x40F) return cp + 0x50;  /* Cyrillic Ѐ..Џ */
    if (cp >= 0x410 && cp <= 0x42F) return cp + 0x20;  /* Cyrillic А..Я */
    return cp;
}

/* A lowercased malloc'd copy of s (Python's str.lower() on the ranges above). */
static char *utf8_lower(const char *s) {
    size_t len = strlen(s);
    char *out = malloc(len * 2 + 1);  /* only U+0130 grows: 2 bytes -> 3 */
    if (!out) return NULL;
    const unsigned char *in = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_decode(in + i, len - i, &cp);
        if (cp == 0x130) {
            o += utf8_encode('i', out + o);
            o += utf8_encode(0x307, out + o);  /* combining dot above, as Python does */
        } else if (cp != NOT_A_CODEPOINT && lower_codepoint(cp) != cp) {
            o += utf8_encode(lower_codepoint(cp), out + o);
        } else {
            memcpy(out + o, in + i, n);
            o += n;
        }
        i += n;
    }
    out[o] = 0;
    return out;
}

/* Length in bytes of the Unicode whitespace run starting at s[i] (0 if none). */
static size_t space_run(const char *s, size_t len, size_t i) {
    size_t start = i;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_decode((const unsigned char *)s + i, len - i, &cp);
        if (cp == NOT_A_CODEPOINT || !is_unicode_space(cp)) break;
        i += n;
    }
    return i - start;
}

/* Python's str.strip(): a malloc'd copy without surrounding Unicode whitespace. */
static char *strip_copy(const char *s) {
    size_t len = strlen(s);
    size_t begin = space_run(s, len, 0);
    size_t end = begin, i = begin;
    while (i < len) {  /* end = just after the last non-space character */
        size_t run = space_run(s, len, i);
        if (run) {
            i += run;
            continue;
        }
        uint32_t cp;
        i += utf8_decode((const unsigned char *)s + i, len - i, &cp);
        end = i;
    }
    char *out = malloc(end - begin + 1);
    if (!out) return NULL;
    memcpy(out, s + begin, end - begin);
    out[end - begin] = 0;
    return out;
}

/* ---------------------------------------------------------------- RULER */

char *ruler_postprocess(const char *pred) {
    /* evaluate.py: strip(), then every character in [\x00-\x1f] -> "\n",
       then strip() again. */
    char *stripped = strip_copy(pred ? pred : "");
    if (!stripped) return NULL;
    for (char *p = stripped; *p; p++)
        if ((unsigned char)*p < 0x20) *p = '\n';
    char *out = strip_copy(stripped);
    free(stripped);
    return out;
}

/* Counts the refs contained in pred after lowercasing both (RULER's
   `r.lower() in pred.lower()`). Returns -1 on out of memory. */
static int count_contained(const char *pred, char *const *refs, int n_refs, int stop_at_first) {
    char *pred_lower = utf8_lower(pred ? pred : "");
    if (!pred_lower) return -1;
    int hits = 0;
    for (int i = 0; i < n_refs; i++) {
        char *ref_lower = utf8_lower(refs[i] ? refs[i] : "");
        if (!ref_lower) {
            hits = -1;
            break;
        }
        int found = strstr(pred_lower, ref_lower) != NULL;
        free(ref_lower);
        hits += found;
        if (found && stop_at_first) break;
    }
    free(pred_lower);
    return hits;
}

double string_match_all(const char *pred, char *const *refs, int n_refs) {
    /* RULER divides by len(ref) and would fail on an empty list; 0 here */
    if (n_refs <= 0) return 0.0;
    int hits = count_contained(pred, refs, n_refs, 0);
    return hits < 0 ? 0.0 : (double)hits / n_refs;
}

double string_match_part(const char *pred, char *const *refs, int n_refs) {
    if (n_refs <= 0) return 0.0;
    return count_contained(pred, refs, n_refs, 1) > 0 ? 1.0 : 0.0;
}

int text_contains(const char *haystack, const char *needle, int nocase) {
    if (!haystack || !needle) return 0;
    if (!nocase) return strstr(haystack, needle) != NULL;
    char *hay_lower = utf8_lower(haystack), *needle_lower = utf8_lower(needle);
    int found = hay_lower && needle_lower && strstr(hay_lower, needle_lower) != NULL;
    free(hay_lower);
    free(needle_lower);
    return found;
}

/* ---------------------------------------------------------------- normalisation */

/* Python's string.punctuation: the 32 ASCII punctuation characters. */
static int is_ascii_punct(unsigned char c) {
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
}

/* Approximates Python's regex \w (Unicode letters, digits, numbers, "_"):
   every non-ASCII code point counts as a word character except whitespace
   and the punctuation/symbol blocks listed here. Only article removal next
   to unusual symbols depends on the approximation. */
static int is_word_codepoint(uint32_t cp) {
    if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z') || cp == '_';
    if (cp == NOT_A_CODEPOINT || is_unicode_space(cp)) return 0;
    if (cp <= 0xBF)  /* Latin-1 symbols, except ª ² ³ µ ¹ º ¼ ½ ¾ */
        return cp == 0xAA || cp == 0xB2 || cp == 0xB3 || cp == 0xB5 || cp == 0xB9 || cp == 0xBA ||
               (cp >= 0xBC && cp <= 0xBE);
    if (cp == 0xD7 || cp == 0xF7) return 0;
    static const uint32_t non_word[][2] = {
        {0x0300, 0x036F},   /* combining diacritics */
        {0x2000, 0x206F},   /* general punctuation */
        {0x20A0, 0x20FF},   /* currency, combining marks for symbols */
        {0x2190, 0x2BFF},   /* arrows, mathematical operators, technical, shapes, dingbats */
        {0x3000, 0x3004},   /* CJK punctuation */
        {0x3008, 0x3020},
        {0xFE00, 0xFE0F},   /* variation selectors */
        {0xFE30, 0xFE4F},   /* CJK compatibility forms */
        {0xFF01, 0xFF0F},   /* fullwidth punctuation */
        {0xFF1A, 0xFF20},
        {0xFF3B, 0xFF40},
        {0xFF5B, 0xFF65},
        {0xFFF0, 0xFFFF},   /* specials, replacement character */
        {0x1F000, 0x1FAFF}, /* emoji and pictographs */
    };
    for (size_t i = 0; i < sizeof non_word / sizeof non_word[0]; i++)
        if (cp >= non_word[i][0] && cp <= non_word[i][1]) return 0;
    return 1;
}

static char *remove_ascii_punct(const char *s) {
    char *out = malloc(strlen(s) + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (const char *p = s; *p; p++)
        if (!is_ascii_punct((unsigned char)*p)) out[o++] = *p;
    out[o] = 0;
    return out;
}

static int is_article(const char *word, size_t len) {
    return (len == 1 && word[0] == 'a') || (len == 2 && memcmp(word, "an", 2) == 0) ||
           (len == 3 && memcmp(word, "the", 3) == 0);
}

/* SQuAD's re.sub(r"\b(a|an|the)\b", " ", text): a maximal run of word
   characters equal to a, an or the becomes one space (case-sensitive, so
   it matches capitalised articles only after NORM_LOWER). */
static char *replace_articles(const char *s) {
    size_t len = strlen(s);
    char *out = malloc(len + 1);
    if (!out) return NULL;
    size_t i = 0, o = 0;
    while (i < len) {
        size_t word_end = i;
        while (word_end < len) {
            uint32_t cp;
            size_t n = utf8_decode((const unsigned char *)s + word_end, len - word_end, &cp);
            if (!is_word_codepoint(cp)) break;
            word_end += n;
        }
        if (word_end > i) {  /* a word: [i, word_end) */
            if (is_article(s + i, word_end - i)) {
                out[o++] = ' ';
            } else {
                memcpy(out + o, s + i, word_end - i);
                o += word_end - i;
            }
            i = word_end;
        } else {  /* one non-word character */
            uint32_t cp;
            size_t n = utf8_decode((const unsigned char *)s + i, len - i, &cp);
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        }
    }
    out[o] = 0;
    return out;
}

/* Every run of Unicode whitespace becomes one ASCII space (the inside of
   Python's " ".join(text.split()); NORM_STRIP does the ends). */
static char *collapse_spaces(const char *s) {
    size_t len = strlen(s);
    char *out = malloc(len + 1);
    if (!out) return NULL;
    size_t i = 0, o = 0;
    while (i < len) {
        size_t run = space_run(s, len, i);
        if (run) {
            out[o++] = ' ';
            i += run;
        } else {
            out[o++] = s[i++];
        }
    }
    out[o] = 0;
    return out;
}

/* Replaces *text by step(*text); 0, or -1 (text freed) on out of memory. */
static int apply_step(char **text, char *(*step)(const char *)) {
    char *next = step(*text);
    free(*text);
    *text = next;
    return next ? 0 : -1;
}

char *normalize_text(const char *s, int flags) {
    size_t len = strlen(s ? s : "");
    char *text = malloc(len + 1);
    if (!text) return NULL;
    memcpy(text, s ? s : "", len + 1);
    /* the order of SQuAD's normalize_answer: lower, punctuation, articles, whitespace */
    if ((flags & NORM_LOWER) && apply_step(&text, utf8_lower)) return NULL;
    if ((flags & NORM_PUNCT) && apply_step(&text, remove_ascii_punct)) return NULL;
    if ((flags & NORM_ARTICLES) && apply_step(&text, replace_articles)) return NULL;
    if ((flags & NORM_SPACES) && apply_step(&text, collapse_spaces)) return NULL;
    if ((flags & NORM_STRIP) && apply_step(&text, strip_copy)) return NULL;
    return text;
}

int exact_match(const char *pred, const char *gold, int flags) {
    char *pred_norm = normalize_text(pred, flags), *gold_norm = normalize_text(gold, flags);
    int equal = pred_norm && gold_norm && strcmp(pred_norm, gold_norm) == 0;
    free(pred_norm);
    free(gold_norm);
    return equal;
}

/* ---------------------------------------------------------------- regular expressions */

/* Compiles in UTF mode; predictions that are not valid UTF-8 (a generation
   cut inside a character) still match instead of failing. */
static pcre2_code *compile_pattern(const char *pattern, Err *err) {
    int code;
    PCRE2_SIZE offset;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
                                   &code, &offset, NULL);
    if (!re) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(code, message, sizeof message);
        err_set(err, "regex \"%s\": error at offset %zu: %s", pattern, (size_t)offset, (const char *)message);
    }
    return re;
}

int regex_check(const char *pattern, Err *err) {
    pcre2_code *re = compile_pattern(pattern, err);
    if (!re) return -1;
    pcre2_code_free(re);
    return 0;
}

int regex_match(const char *pattern, const char *pred, Err *err) {
    pcre2_code *re = compile_pattern(pattern, err);
    if (!re) return -1;
    pcre2_match_data *match = pcre2_match_data_create_from_pattern(re, NULL);
    if (!match) {
        pcre2_code_free(re);
        return err_set(err, "regex \"%s\": out of memory", pattern);
    }
    const char *subject = pred ? pred : "";
    int rc = pcre2_match(re, (PCRE2_SPTR)subject, strlen(subject), 0, 0, match, NULL);
    pcre2_match_data_free(match);
    pcre2_code_free(re);
    if (rc >= 0) return 1;
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(rc, message, sizeof message);
    return err_set(err, "regex \"%s\": matching failed: %s", pattern, (const char *)message);
}

int score_ruler(const char *prediction, char *const *refs, int n_refs, const char *headline, Scores *out,
                Err *err) {
    char *pred = ruler_postprocess(prediction ? prediction : "");
    if (!pred) return err_set(err, "out of memory");
    double all = string_match_all(pred, refs, n_refs);
    double part = string_match_part(pred, refs, n_refs);
    free(pred);
    int part_first = headline && strcmp(headline, "string_match_part") == 0;
    scores_add(out, part_first ? "string_match_part" : "string_match_all", part_first ? part : all);
    scores_add(out, part_first ? "string_match_all" : "string_match_part", part_first ? all : part);
    return 0;
}
