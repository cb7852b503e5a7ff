/* haystack.c: haystack generators, needle insertion at sentence boundaries,
   and fitting prompts to a token budget (see haystack.h). */
#include "haystack.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- growable strings */

static int sb_reserve(StrBuf *b, size_t extra, Err *err) {
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) return err_set(err, "out of memory (string of %zu bytes)", cap);
    b->s = s;
    b->cap = cap;
    return 0;
}

int sb_add(StrBuf *b, const char *s, size_t n, Err *err) {
    if (sb_reserve(b, n, err) != 0) return -1;
    if (n) memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}

int sb_puts(StrBuf *b, const char *s, Err *err) { return sb_add(b, s, strlen(s), err); }

int sb_printf(StrBuf *b, Err *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return err_set(err, "formatting failed");
    if (sb_reserve(b, (size_t)n, err) != 0) return -1;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void sb_clear(StrBuf *b) {
    b->len = 0;
    if (b->s) b->s[0] = '\0';
}

void sb_free(StrBuf *b) {
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

char *sb_take(StrBuf *b) {
    char *s = b->s;
    if (!s) s = calloc(1, 1);
    b->s = NULL;
    b->len = b->cap = 0;
    return s;
}

int fill_template(StrBuf *out, const char *tmpl, const char *const *names, const char *const *values, int n,
                  Err *err) {
    const char *p = tmpl;
    while (*p) {
        const char *open = strchr(p, '{');
        if (!open) return sb_puts(out, p, err);
        if (sb_add(out, p, (size_t)(open - p), err) != 0) return -1;
        const char *close = strchr(open + 1, '}');
        int matched = 0;
        if (close)
            for (int i = 0; i < n; i++)
                if (strlen(names[i]) == (size_t)(close - open - 1) && memcmp(names[i], open + 1, (size_t)(close - open - 1)) == 0) {
                    if (sb_puts(out, values[i], err) != 0) return -1;
                    matched = 1;
                    break;
                }
        if (matched) {
            p = close + 1;
        } else {
            if (sb_add(out, "{", 1, err) != 0) return -1;
            p = open + 1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- sentence splitting */

/* Words that end in a period without ending a sentence (compared without
   their final period, case-insensitively). */
static const char *const abbreviations[] = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "ft", "vs", "etc", "e.g", "i.e", "cf", "viz",
    "al", "fig", "figs", "no", "nos", "vol", "vols", "p", "pp", "ch", "sec", "ed", "eds", "approx", "dept",
    "est", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct",
    "nov", "dec", "mon", "tue", "wed", "thu", "fri", "sat", "sun", "gen", "gov", "sgt", "capt", "col", "lt",
    "rev", "hon", "u.s", "u.k", "a.m", "p.m", "ph.d", "b.c", "a.d", "op", "ca",
};

static int is_abbreviation(const char *word, size_t len) {
    if (len == 1 && isalpha((unsigned char)word[0])) return 1; /* an initial: "J. Smith" */
    for (size_t i = 0; i < sizeof abbreviations / sizeof *abbreviations; i++) {
        const char *a = abbreviations[i];
        if (strlen(a) != len) continue;
        size_t k = 0;
        while (k < len && tolower((unsigned char)word[k]) == a[k]) k++;
        if (k == len) return 1;
    }
    return 0;
}

/* Length of a closing quote or bracket at s (ASCII or a curly quote), else 0. */
static size_t closer_len(const char *s) {
    if (*s == '"' || *s == '\'' || *s == ')' || *s == ']') return 1;
    if ((unsigned char)s[0] == 0xe2 && (unsigned char)s[1] == 0x80 &&
        ((unsigned char)s[2] == 0x9d || (unsigned char)s[2] == 0x99))
        return 3;
    return 0;
}

/* Whether a sentence may start at s: a capital, a digit, or an opening quote/bracket. */
static int starts_sentence(const char *s) {
    unsigned char c = (unsigned char)*s;
    if (isupper(c) || isdigit(c) || c == '"' || c == '\'' || c == '(' || c == '[') return 1;
    if (c == 0xe2 && (unsigned char)s[1] == 0x80 && ((unsigned char)s[2] == 0x9c || (unsigned char)s[2] == 0x98))
        return 1;
    return c >= 0xc3; /* a non-ASCII letter: accept (Unicode case needs tables we do not carry) */
}

typedef struct {
    Sentence *items;
    size_t n, cap;
} SentenceList;

static int list_push(SentenceList *l, char *text, const char *sep, Err *err) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        Sentence *items = realloc(l->items, cap * sizeof *items);
        if (!items) {
            free(text);
            return err_set(err, "out of memory (%zu sentences)", cap);
        }
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n].text = text;
    l->items[l->n].sep = sep;
    l->n++;
    return 0;
}

/* Copies text[a, b) with whitespace runs collapsed to one space and the ends trimmed. */
static char *squeeze(const char *text, size_t a, size_t b) {
    char *out = malloc(b - a + 1);
    if (!out) return NULL;
    size_t k = 0;
    int space = 0;
    for (size_t i = a; i < b; i++) {
        if (isspace((unsigned char)text[i])) {
            space = 1;
            continue;
        }
        if (space && k) out[k++] = ' ';
        space = 0;
        out[k++] = text[i];
    }
    out[k] = '\0';
    return out;
}

int split_sentences(const char *text, Sentence **out, size_t *n, Err *err) {
    SentenceList l = {0};
    size_t len = strlen(text), start = 0, i = 0;
    const char *pending_sep = " ";
    while (i < len) {
        size_t end = 0, next = 0; /* sentence is text[start, end), the next starts at next */
        int paragraph = 0;
        char c = text[i];
        if (c == '\n') { /* a blank line (only whitespace between two newlines) ends a paragraph */
            size_t j = i + 1;
            while (j < len && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r')) j++;
            if (j < len && text[j] == '\n') {
                end = i;
                next = j;
                while (next < len && isspace((unsigned char)text[next])) next++;
                paragraph = 1;
            }
        } else if (c == '.' || c == '!' || c == '?') {
            size_t j = i + 1;
            while (j < len && (text[j] == '.' || text[j] == '!' || text[j] == '?')) j++;
            size_t cl;
            while (j < len && (cl = closer_len(text + j)) > 0) j += cl;
            if (j >= len || isspace((unsigned char)text[j])) {
                size_t k = j;
                while (k < len && isspace((unsigned char)text[k])) k++;
                int boundary = k >= len || starts_sentence(text + k);
                if (boundary && c == '.' && j == i + 1) { /* a lone period: is it an abbreviation? */
                    size_t w = i;
                    while (w > start && !isspace((unsigned char)text[w - 1]) && text[w - 1] != '(' &&
                           text[w - 1] != '"')
                        w--;
                    if (is_abbreviation(text + w, i - w)) boundary = 0;
                }
                if (boundary) {
                    end = j;
                    next = k;
                    /* a blank line inside the gap makes the next sentence a new paragraph */
                    for (size_t q = j; q < k; q++)
                        if (text[q] == '\n') {
                            size_t r = q + 1;
                            while (r < k && text[r] != '\n' && isspace((unsigned char)text[r])) r++;
                            if (r < k && text[r] == '\n') paragraph = 1;
                        }
                }
            }
        }
        if (next == 0) {
            i++;
            continue;
        }
        char *s = squeeze(text, start, end);
        if (!s) {
            sentences_free(l.items, l.n);
            return err_set(err, "out of memory splitting sentences");
        }
        if (*s) {
            if (list_push(&l, s, l.n ? pending_sep : " ", err) != 0) {
                sentences_free(l.items, l.n);
                return -1;
            }
            pending_sep = " ";
        } else {
            free(s);
        }
        if (paragraph) pending_sep = "\n\n";
        start = i = next;
    }
    char *s = squeeze(text, start, len);
    if (!s) {
        sentences_free(l.items, l.n);
        return err_set(err, "out of memory splitting sentences");
    }
    if (*s) {
        if (list_push(&l, s, l.n ? pending_sep : " ", err) != 0) {
            sentences_free(l.items, l.n);
            return -1;
        }
    } else {
        free(s);
    }
    *out = l.items;
    *n = l.n;
    return 0;
}

void sentences_free(Sentence *s, size_t n) {
    if (!s) return;
    for (size_t i = 0; i < n; i++) free(s[i].text);
    free(s);
}

/* ---------------------------------------------------------------- prose */

/* Placeholders: {T} the paragraph's theme noun, {Ts} its plural, {N}/{Ns} any
   noun / plural, {A} an adjective, {aA} article + adjective, {V} a verb,
   {P} people who might care, {Place}, {Time}, {Open} a sentence opener. Each
   placeholder is drawn anew where it appears (except the theme). */
static const char *const prose_openers[] = {
    "Consider the {T}.",
    "Few things are as {A} as a well-made {T}.",
    "It is worth spending a moment on the {T}, because it explains more than it seems to.",
    "Everyone has an opinion about {Ts}, and most of those opinions are {A}.",
    "The story of the {T} begins, as so many stories do, with {aA} {N}.",
    "I used to think the {T} was {A}, but I have slowly changed my mind.",
    "There is an old saying among {P} that a {T} is never really finished.",
    "People rarely talk about {Ts}, which is strange given how often they {V} them.",
    "Start with a simple question: why do {P} keep {Ts} at all?",
    "The {T} has a reputation for being {A}, and the reputation is only half deserved.",
    "Long before anyone wrote about it, the {T} was part of ordinary life {Place}.",
    "If you spend a week with {P}, you will hear the word {T} more often than you expect.",
};

static const char *const prose_body[] = {
    "{P} have always found a way to {V} the {T}, even when the {N} seemed {A}.",
    "The {A} {T} is easy to overlook, yet it shapes how {P} {V} their {Ns} {Time}.",
    "{Open}, a {T} that looks {A} from a distance turns out to be {A} up close.",
    "Nobody sets out to {V} {aA} {T}; it happens slowly, one small {N} at a time.",
    "Ask any of the {P} who {V} {Ns} {Place} and they will describe the {T} as {A}.",
    "A {T} is only as {A} as the {N} that holds it together.",
    "There is a difference between a {A} {T} and a {A} one, and {P} feel it before they can name it.",
    "When the {N} arrived, the {Ts} {Place} became {A} almost overnight.",
    "It takes patience to {V} a {T}, and more patience still to {V} the {Ns} around it.",
    "{P} who {V} {Ns} tend to notice the {T} long before anyone else does.",
    "Every {T} carries a small record of the {Ns} that came before it.",
    "The old advice was to {V} the {T} first and to worry about the {N} later.",
    "Some {P} keep {aA} {N} near the {T} simply because it feels {A}.",
    "What makes a {T} {A} is rarely the {N} itself but the way {P} {V} it.",
    "{Time}, the {Ts} {Place} grow {A}, and the {Ns} grow {A} along with them.",
    "A single {A} {N} can change how an entire town thinks about {Ts}.",
    "We tend to {V} the {Ns} we understand and to ignore the {Ts} we do not.",
    "The first {T} anyone remembers is usually {A}, and the second is usually {A}.",
    "Most {Ns} are made to last a season, but a good {T} can last a lifetime.",
    "If you want to {V} a {T}, begin by watching how {P} {V} their {Ns}.",
    "It is hard to say whether the {T} made the {N} {A} or the other way around.",
    "In the notes kept by {P}, the {T} appears again and again, always beside {aA} {N}.",
    "Nothing about the {T} seems {A} once you have tried to {V} one yourself.",
    "{P} speak of the {T} the way sailors speak of the weather, with respect and a little fear.",
    "{aA} {T} rewards attention, while {aA} one quietly punishes it.",
    "The {Ns} {Place} are proof that {aA} idea can outlive the people who had it.",
    "One reason {Ts} matter is that they teach {P} to {V} without hurrying.",
    "Whoever first thought to {V} a {T} with a {N} deserves more credit than history gives.",
    "The {T} does not care whether we call it {A} or {A}; it simply goes on.",
    "Even {aA} {N} can be useful if {P} know how to {V} it.",
    "For every {T} that works there are a dozen {Ns} that never did.",
    "{Open}, the {A} {Ns} were the ones that taught us the most about {Ts}.",
    "It is tempting to {V} every {N} in sight, but the wiser course is usually to wait.",
    "Looking closely at a {T}, you begin to see the {A} {Ns} hidden inside it.",
    "The cost of {aA} {T} is paid slowly, in {Ns} that nobody thinks to count.",
    "{P} learned long ago that a {T} left alone will become {A}.",
    "The best {Ts} are {A} without being {A}, which is harder than it sounds.",
    "Between the {N} and the {T} lies a small gap where most of the interesting work happens.",
    "A careful observer can tell {aA} {T} from {aA} one by the sound it makes.",
    "There was a time when every town {Place} had its own {T} and its own way to {V} it.",
    "{Open}, nobody agrees on how to {V} a {T}, and the arguments are half the fun.",
    "My grandmother kept {aA} {T} by the door and refused to {V} it for anyone.",
    "The lesson of the {N} is that {A} things and {A} things often arrive together.",
    "You can learn a great deal about {P} from the {Ts} they choose to {V}.",
    "{Time}, someone always suggests that we {V} the {T}, and someone always objects.",
    "A {T} without a {N} is like a {N} without a {N}: possible, but rarely {A}.",
    "The {Ns} that survive are seldom the {A} ones; they are the ones people bothered to {V}.",
    "{Open}, the hardest part of keeping a {T} is deciding when to {V} it.",
};

static const char *const prose_closers[] = {
    "That, more than anything, is why the {T} still matters.",
    "In the end, the {T} is {A}, and that turns out to be enough.",
    "Perhaps that is the real lesson of the {T}.",
    "It is a small thing, but small things add up.",
    "The {Ns} will change, but the {T} will remain.",
    "So the next time you see {aA} {T}, take a second look.",
    "None of this is new, yet it is remarkably easy to forget.",
    "Whatever else we say about {Ts}, we cannot honestly call them {A}.",
};

static const char *const prose_people[] = {
    "people",     "builders",  "travelers", "teachers", "farmers",   "writers",  "engineers",
    "sailors",    "neighbors", "gardeners", "historians", "merchants", "students", "musicians",
    "cooks",      "collectors", "parents",  "scholars", "carpenters", "painters",
};
static const char *const prose_places[] = {
    "in the city",     "in small towns",      "along the coast",    "in the mountains", "on the farm",
    "in the valley",   "near the river",      "in the old quarter", "across the plains", "by the harbor",
    "in the north",    "in the south",        "on the islands",     "at the edge of the forest",
};
static const char *const prose_times[] = {
    "In winter",       "Every spring",           "For centuries",        "Each morning", "By late summer",
    "Over the years",  "In hard times",          "After a storm",        "At the end of the day",
    "During the long evenings", "Once a year",   "Every few generations",
};
static const char *const prose_open[] = {
    "Of course", "In practice", "Strangely enough", "As it turns out", "Oddly", "In most cases",
    "Surprisingly", "To be fair", "Admittedly", "More often than not", "Even so", "In hindsight",
};

#define LEN(a) (sizeof(a) / sizeof *(a))

/* "a" before a vowel sound becomes "an" (words like "unique" and "useful"
   keep "a"), and the sentence starts with a capital. */
static int fix_articles(StrBuf *out, size_t begin, Err *err) {
    size_t len = out->len - begin;
    char *copy = malloc(len + 1);
    if (!copy) return err_set(err, "out of memory");
    memcpy(copy, out->s + begin, len + 1);
    out->len = begin;
    int rc = 0;
    for (size_t i = 0; i < len && rc == 0; i++) {
        rc = sb_add(out, copy + i, 1, err);
        int word_a = (copy[i] == 'a' || copy[i] == 'A') && (i == 0 || copy[i - 1] == ' ') && copy[i + 1] == ' ';
        if (rc == 0 && word_a && strcmp(word_article(copy + i + 2), "an") == 0) rc = sb_add(out, "n", 1, err);
    }
    free(copy);
    if (rc == 0 && out->len > begin) out->s[begin] = (char)toupper((unsigned char)out->s[begin]);
    return rc;
}

static int prose_sentence(Rng *r, const char *tmpl, const char *theme, StrBuf *out, Err *err) {
    size_t begin = out->len;
    const char *p = tmpl;
    char plural[64];
    while (*p) {
        if (*p != '{') {
            const char *q = strchr(p, '{');
            size_t n = q ? (size_t)(q - p) : strlen(p);
            if (sb_add(out, p, n, err) != 0) return -1;
            p += n;
            continue;
        }
        const char *close = strchr(p, '}');
        size_t n = (size_t)(close - p - 1);
        const char *name = p + 1, *word = NULL;
        char tmp[96];
        if (n == 1 && name[0] == 'T') word = theme;
        else if (n == 2 && memcmp(name, "Ts", 2) == 0) word_plural(theme, plural, sizeof plural), word = plural;
        else if (n == 1 && name[0] == 'N') word = words_pick(r, words_nouns, words_n_nouns);
        else if (n == 2 && memcmp(name, "Ns", 2) == 0)
            word_plural(words_pick(r, words_nouns, words_n_nouns), plural, sizeof plural), word = plural;
        else if (n == 1 && name[0] == 'A') word = words_pick(r, words_adjectives, words_n_adjectives);
        else if (n == 2 && memcmp(name, "aA", 2) == 0) {
            const char *a = words_pick(r, words_adjectives, words_n_adjectives);
            snprintf(tmp, sizeof tmp, "a %s", a); /* fix_articles picks a/an */
            word = tmp;
        } else if (n == 1 && name[0] == 'V') word = words_pick(r, words_verbs, words_n_verbs);
        else if (n == 1 && name[0] == 'P') word = prose_people[rng_below(r, LEN(prose_people))];
        else if (n == 5 && memcmp(name, "Place", 5) == 0) word = prose_places[rng_below(r, LEN(prose_places))];
        else if (n == 4 && memcmp(name, "Time", 4) == 0) word = prose_times[rng_below(r, LEN(prose_times))];
        else if (n == 4 && memcmp(name, "Open", 4) == 0) word = prose_open[rng_below(r, LEN(prose_open))];
        if (!word) return err_set(err, "internal: unknown prose placeholder {%.*s}", (int)n, name);
        if (sb_puts(out, word, err) != 0) return -1;
        p = close + 1;
    }
    return fix_articles(out, begin, err);
}

/* ---------------------------------------------------------------- haystacks */

static const char *const noise_sentences[5] = {
    "The grass is green.", "The sky is blue.", "The sun is yellow.", "Here we go.", "There and back again.",
};

struct Haystack {
    HaystackSpec spec;
    Rng rng;
    Sentence *sent; /* made so far */
    int *weight;    /* tokens of each sentence on its own (-1: not measured yet) */
    size_t n, cap;
    int owns_text;  /* prose and needle sentences are allocated; noise and file ones borrowed */
    Sentence *file; /* HAY_FILE: the split text */
    size_t n_file;
    uint64_t *para; /* HAY_PROSE: hashes of the paragraphs made so far */
    size_t n_para, cap_para;
    StrBuf scratch;
};

int haystack_kind_parse(const char *s) {
    static const char *const names[] = {"noise", "prose", "needle", "file"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

const char *haystack_kind_name(HaystackKind k) {
    static const char *const names[] = {"noise", "prose", "needle", "file"};
    return (unsigned)k < 4 ? names[k] : "?";
}

int format_needle(StrBuf *out, const char *type_needle_v, const char *key, const char *value, Err *err) {
    const char *names[] = {"type_needle_v", "key", "value"};
    const char *values[] = {type_needle_v, key, value};
    return fill_template(out, RULER_NEEDLE, names, values, 3, err);
}

Haystack *haystack_open(const HaystackSpec *spec, Err *err) {
    Haystack *h = calloc(1, sizeof *h);
    if (!h) {
        err_set(err, "out of memory");
        return NULL;
    }
    h->spec = *spec;
    rng_seed(&h->rng, spec->seed);
    h->owns_text = spec->kind == HAY_PROSE || spec->kind == HAY_NEEDLE;
    if (spec->kind == HAY_FILE) {
        const char *src = spec->source ? spec->source : "haystack file";
        if (!spec->text) {
            err_set(err, "%s: no text", src);
            free(h);
            return NULL;
        }
        if (split_sentences(spec->text, &h->file, &h->n_file, err) != 0) {
            err_prefix(err, "%s", src);
            free(h);
            return NULL;
        }
        if (h->n_file == 0) {
            err_set(err, "%s: holds no sentences to build a haystack from", src);
            haystack_close(h);
            return NULL;
        }
    }
    return h;
}

static int push_sentence(Haystack *h, char *text, const char *sep, Err *err) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 256;
        Sentence *s = realloc(h->sent, cap * sizeof *s);
        int *w = s ? realloc(h->weight, cap * sizeof *w) : NULL;
        if (s) h->sent = s;
        if (w) h->weight = w;
        if (!s || !w) {
            if (h->owns_text) free(text);
            return err_set(err, "out of memory (haystack of %zu sentences)", cap);
        }
        h->cap = cap;
    }
    h->weight[h->n] = -1;
    h->sent[h->n].text = text;
    h->sent[h->n].sep = sep;
    h->n++;
    return 0;
}

static int seen_paragraph(Haystack *h, uint64_t hash) {
    for (size_t i = 0; i < h->n_para; i++)
        if (h->para[i] == hash) return 1;
    return 0;
}

/* Appends one new paragraph (4..8 sentences) that was never made before in this haystack. */
static int make_paragraph(Haystack *h, Err *err) {
    enum { MAX_SENT = 8 };
    size_t ends[MAX_SENT];
    int n_sent;
    StrBuf *b = &h->scratch;
    for (int attempt = 0;; attempt++) {
        if (attempt == 1000) return err_set(err, "internal: prose generator keeps repeating a paragraph");
        sb_clear(b);
        const char *theme = words_pick(&h->rng, words_nouns, words_n_nouns);
        size_t used[LEN(prose_body)];
        int n_body = 3 + (int)rng_below(&h->rng, 4);
        rng_sample(&h->rng, LEN(prose_body), (size_t)n_body, used);
        n_sent = 0;
        if (prose_sentence(&h->rng, prose_openers[rng_below(&h->rng, LEN(prose_openers))], theme, b, err) != 0)
            return -1;
        ends[n_sent++] = b->len;
        for (int i = 0; i < n_body; i++) {
            if (sb_add(b, "\x1f", 1, err) != 0) return -1; /* unit separator marks the cut */
            if (prose_sentence(&h->rng, prose_body[used[i]], theme, b, err) != 0) return -1;
            ends[n_sent++] = b->len;
        }
        if (rng_below(&h->rng, 10) < 7) {
            if (sb_add(b, "\x1f", 1, err) != 0) return -1;
            if (prose_sentence(&h->rng, prose_closers[rng_below(&h->rng, LEN(prose_closers))], theme, b, err) != 0)
                return -1;
            ends[n_sent++] = b->len;
        }
        uint64_t hash = hash_string(b->s);
        if (seen_paragraph(h, hash)) continue;
        if (h->n_para == h->cap_para) {
            size_t cap = h->cap_para ? h->cap_para * 2 : 64;
            uint64_t *p = realloc(h->para, cap * sizeof *p);
            if (!p) return err_set(err, "out of memory");
            h->para = p;
            h->cap_para = cap;
        }
        h->para[h->n_para++] = hash;
        break;
    }
    size_t begin = 0;
    for (int i = 0; i < n_sent; i++) {
        size_t len = ends[i] - begin;
        char *s = malloc(len + 1);
        if (!s) return err_set(err, "out of memory");
        memcpy(s, b->s + begin, len);
        s[len] = '\0';
        if (push_sentence(h, s, i == 0 ? "\n\n" : " ", err) != 0) return -1;
        begin = ends[i] + 1; /* skip the marker */
    }
    return 0;
}

static int make_distractor(Haystack *h, Err *err) {
    char key[64], value[64];
    for (;;) {
        random_value(&h->rng, h->spec.key_type, key, sizeof key);
        int clash = 0;
        for (size_t i = 0; i < h->spec.n_exclude && !clash; i++) clash = strcmp(key, h->spec.exclude_keys[i]) == 0;
        if (!clash) break;
    }
    random_value(&h->rng, h->spec.value_type, value, sizeof value);
    StrBuf *b = &h->scratch;
    sb_clear(b);
    if (format_needle(b, h->spec.type_needle_v ? h->spec.type_needle_v : value_type_name(h->spec.value_type), key,
                      value, err) != 0)
        return -1;
    char *s = malloc(b->len + 1);
    if (!s) return err_set(err, "out of memory");
    memcpy(s, b->s, b->len + 1);
    return push_sentence(h, s, "\n", err);
}

const Sentence *haystack_sentence(Haystack *h, size_t i, Err *err) {
    while (h->n <= i) {
        size_t k = h->n;
        int rc = 0;
        switch (h->spec.kind) {
        case HAY_NOISE: rc = push_sentence(h, (char *)noise_sentences[k % 5], k % 5 == 0 ? "\n" : " ", err); break;
        case HAY_PROSE: rc = make_paragraph(h, err); break;
        case HAY_NEEDLE: rc = make_distractor(h, err); break;
        case HAY_FILE: {
            const Sentence *f = &h->file[k % h->n_file];
            /* each repetition of the file starts a new paragraph */
            rc = push_sentence(h, f->text, k > 0 && k % h->n_file == 0 ? "\n\n" : f->sep, err);
            break;
        }
        }
        if (rc != 0) return NULL;
    }
    return &h->sent[i];
}

const char *haystack_needle_sep(const Haystack *h) {
    return h->spec.kind == HAY_NOISE || h->spec.kind == HAY_NEEDLE ? "\n" : " ";
}

void haystack_close(Haystack *h) {
    if (!h) return;
    if (h->owns_text)
        for (size_t i = 0; i < h->n; i++) free(h->sent[i].text);
    free(h->sent);
    free(h->weight);
    sentences_free(h->file, h->n_file);
    free(h->para);
    sb_free(&h->scratch);
    free(h);
}

double ruler_depth(int i) {
    /* numpy's round half to even of linspace(0, 100, 40)[i] = 100 i / 39 */
    double x = 100.0 * i / (RULER_N_DEPTHS - 1);
    double f = (double)(long)x, frac = x - f;
    if (frac > 0.5 || (frac == 0.5 && ((long)f % 2) != 0)) f += 1;
    return f;
}

int haystack_render(Haystack *h, size_t n, size_t part, const Needle *needles, size_t n_needles, StrBuf *out,
                    size_t *needle_off, Err *err) {
    for (size_t j = 1; j < n_needles; j++)
        if (needles[j].depth < needles[j - 1].depth) return err_set(err, "internal: needles not sorted by depth");
    /* the sentences: n whole ones and maybe a cut one */
    size_t m = n, part_len = 0;
    const Sentence *last = NULL;
    if (part > 0) {
        last = haystack_sentence(h, n, err);
        if (!last) return -1;
        part_len = part < strlen(last->text) ? part : strlen(last->text);
        while (part_len > 0 && last->text[part_len - 1] == ' ') part_len--;
        if (part_len > 0) m = n + 1;
    }
    /* where each sentence starts, in tokens or characters */
    size_t *start = malloc((m + 1) * sizeof *start);
    if (!start) return err_set(err, "out of memory");
    size_t total = 0;
    for (size_t i = 0; i < m; i++) {
        const Sentence *s = haystack_sentence(h, i, err);
        int w = 0;
        if (s && h->spec.tok && i < n && h->weight[i] < 0 &&
            count_tokens(h->spec.tok, s->text, strlen(s->text), 0, &h->weight[i], err))
            s = NULL;
        if (s && h->spec.tok && i == n && count_tokens(h->spec.tok, s->text, part_len, 0, &w, err)) s = NULL;
        if (!s) {
            free(start);
            return -1;
        }
        if (!h->spec.tok && i > 0) total += strlen(s->sep);
        start[i] = total;
        if (h->spec.tok) total += i < n ? (size_t)h->weight[i] : (size_t)w;
        else total += i < n ? strlen(s->text) : part_len;
    }
    start[m] = total;
    /* boundary for each needle: the last one at or before depth% of the total */
    size_t *at = malloc((n_needles ? n_needles : 1) * sizeof *at);
    if (!at) {
        free(start);
        return err_set(err, "out of memory");
    }
    size_t b = 0;
    for (size_t j = 0; j < n_needles; j++) {
        double want = needles[j].depth / 100.0 * (double)total;
        while (b < m && (double)start[b + 1] <= want) b++;
        at[j] = b;
    }
    /* emit */
    const char *nsep = haystack_needle_sep(h);
    int prev = 0; /* 0 nothing yet, 1 a sentence, 2 a needle */
    size_t j = 0;
    int rc = 0;
    for (size_t i = 0; i <= m && rc == 0; i++) {
        for (; j < n_needles && at[j] == i && rc == 0; j++) {
            if (prev) rc = sb_puts(out, nsep, err);
            if (needle_off) needle_off[j] = out->len;
            if (rc == 0) rc = sb_puts(out, needles[j].text, err);
            prev = 2;
        }
        if (i == m || rc != 0) break;
        const Sentence *s = &h->sent[i];
        /* after a needle: the needle separator, unless a paragraph starts here */
        if (prev) rc = sb_puts(out, prev == 2 && strcmp(s->sep, "\n\n") != 0 ? nsep : s->sep, err);
        if (rc == 0) rc = sb_add(out, s->text, i < n ? strlen(s->text) : part_len, err);
        prev = 1;
    }
    free(at);
    free(start);
    return rc;
}

/* ---------------------------------------------------------------- token budget */

int count_tokens(const Tokenizer *tok, const char *text, size_t len, int add_bos, int *out, Err *err) {
    int32_t *ids = NULL;
    size_t n = 0;
    if (tokenizer_encode(tok, text, len, add_bos, &ids, &n, err) != 0) return -1;
    free(ids);
    *out = (int)n;
    return 0;
}

int token_index_at(const Tokenizer *tok, const int32_t *ids, size_t n_ids, const char *prompt, size_t off,
                   int add_bos, size_t *index, Err *err) {
    int32_t *pre = NULL;
    size_t n_pre = 0;
    if (tokenizer_encode(tok, prompt, off, add_bos, &pre, &n_pre, err) != 0) return -1;
    size_t k = 0;
    while (k < n_pre && k < n_ids && pre[k] == ids[k]) k++;
    free(pre);
    *index = k;
    return 0;
}

int token_span(const Tokenizer *tok, const int32_t *ids, size_t n_ids, const char *prompt, size_t start, size_t end,
               int add_bos, int *pos, int *len, Err *err) {
    size_t a, b;
    if (token_index_at(tok, ids, n_ids, prompt, start, add_bos, &a, err) != 0 ||
        token_index_at(tok, ids, n_ids, prompt, end, add_bos, &b, err) != 0)
        return -1;
    *pos = (int)a;
    *len = b > a ? (int)(b - a) : 0;
    return 0;
}

int check_length(int target, int prompt_tokens, int max_new_tokens, Err *err) {
    long total = (long)prompt_tokens + max_new_tokens;
    long diff = total > target ? total - target : target - total;
    if (100 * diff <= (long)target) return 0;
    return err_set(err,
                    "realised length %d prompt tokens + %d new tokens = %ld misses the target %d by %.2f%% "
                    "(more than the 1%% allowed)",
                    prompt_tokens, max_new_tokens, total, target, 100.0 * (double)diff / target);
}

typedef struct {
    const Tokenizer *tok;
    int add_bos;
    RenderFn render;
    void *ctx;
    StrBuf buf;
    int evals;
} Evaluator;

static int eval_tokens(Evaluator *e, size_t n, size_t part, int *tokens, Err *err) {
    sb_clear(&e->buf);
    if (e->render(e->ctx, n, part, &e->buf, err) != 0) return -1;
    e->evals++;
    return count_tokens(e->tok, e->buf.s ? e->buf.s : "", e->buf.len, e->add_bos, tokens, err);
}

int fit_prompt(const Tokenizer *tok, int add_bos, int target, int max_new_tokens, size_t max_units, RenderFn render,
               PartialFn partial, void *ctx, Fit *fit, Err *err) {
    Evaluator e = {tok, add_bos, render, ctx, {0}, 0};
    int rc = -1;
    long budget = (long)target - max_new_tokens;
    /* aim for half the allowed 1%, so that whole units are cut only when
       needed and check_length() has margin: 1000 (tokens + max_new) >= 995 target */
    long lower = (995L * target + 999) / 1000 - max_new_tokens;
    int t_lo, t;
    size_t lo = 0, hi = 0;
    int have_hi = 0;
    if (eval_tokens(&e, 0, 0, &t_lo, err) != 0) goto done;
    if (t_lo > budget) {
        err_set(err,
                "target %d tokens is impossible: the prompt with no context at all is already %d tokens, "
                "plus %d new tokens = %d",
                target, t_lo, max_new_tokens, t_lo + max_new_tokens);
        goto done;
    }
    /* grow until over budget, guessing from the tokens per unit seen so far */
    size_t n = 16;
    while (!have_hi && lo < max_units) {
        if (n > max_units) n = max_units;
        if (eval_tokens(&e, n, 0, &t, err) != 0) goto done;
        if (t > budget) {
            hi = n;
            have_hi = 1;
            break;
        }
        int t0 = t_lo;
        size_t n0 = lo;
        lo = n;
        t_lo = t;
        if (t_lo >= lower && n == max_units) break;
        size_t next = n * 2;
        if (t > t0 && n > n0) { /* linear guess, a little past the budget */
            double per = (double)(t - t0) / (double)(n - n0);
            double guess = (double)n + ((double)budget - t) / per * 1.03 + 2;
            if (guess < (double)next) next = guess > (double)n + 1 ? (size_t)guess : n + 1;
        }
        n = next;
    }
    if (have_hi) {
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (eval_tokens(&e, mid, 0, &t, err) != 0) goto done;
            if (t <= budget) lo = mid, t_lo = t;
            else hi = mid;
        }
    }
    fit->n = lo;
    fit->part = 0;
    fit->tokens = t_lo;
    if (t_lo < lower && have_hi && partial) {
        /* whole units are too coarse: cut unit lo, at a space if that is enough */
        const char *text = partial(ctx, lo, err);
        if (!text && err && err->msg[0]) goto done;
        size_t len = text ? strlen(text) : 0;
        size_t *cuts = malloc((len + 1) * sizeof *cuts);
        if (!cuts) {
            err_set(err, "out of memory");
            goto done;
        }
        size_t n_cuts = 0;
        for (size_t i = 1; i < len; i++)
            if (text[i] == ' ' && text[i - 1] != ' ') cuts[n_cuts++] = i;
        size_t a = 0, b = n_cuts; /* cuts[0, a) fit; search the first cut that does not */
        size_t best = 0;
        int t_best = t_lo;
        while (a < b) {
            size_t mid = a + (b - a) / 2;
            if (eval_tokens(&e, lo, cuts[mid], &t, err) != 0) {
                free(cuts);
                goto done;
            }
            if (t <= budget) best = cuts[mid], t_best = t, a = mid + 1;
            else b = mid;
        }
        if (t_best < lower) {
            /* then character by character up to the next cut (never ending on the space) */
            size_t from = best ? best + 2 : 1, to = a < n_cuts ? cuts[a] - 1 : (len ? len - 1 : 0);
            size_t x = from, y = to + 1; /* search [x, y) */
            while (x < y && from <= to) {
                size_t mid = x + (y - x) / 2;
                if (eval_tokens(&e, lo, mid, &t, err) != 0) {
                    free(cuts);
                    goto done;
                }
                if (t <= budget) best = mid, t_best = t, x = mid + 1;
                else y = mid;
            }
        }
        free(cuts);
        fit->part = best;
        fit->tokens = t_best;
    }
    if (100L * (fit->tokens + max_new_tokens) < 99L * target) {
        err_set(err,
                "cannot come within 1%% of the target %d tokens: the closest prompt that fits is %d tokens + %d "
                "new tokens = %d%s",
                target, fit->tokens, max_new_tokens, fit->tokens + max_new_tokens,
                have_hi ? " (the context cannot be cut finely enough here)" : " (ran out of context material)");
        goto done;
    }
    rc = 0;
done:
    sb_free(&e.buf);
    return rc;
}
