/* loaders.h: public dataset formats turned into simple C records.

   Every loader reads the whole file, checks every field it uses, and fails
   with a message naming the file and the line (JSONL), or the JSON path
   (whole-file JSON, e.g. "dev.json: $.data[3].paragraphs[0].qas[2]"), and
   the missing or mistyped field. Fields a loader does not use are ignored,
   so exports that carry more columns load unchanged. All strings are
   malloc'd copies owned by the set; *_free releases everything.

   Formats (docs/tasks/ says how the tasks use them):
   - Based JSONL (hazyresearch/based-squad, based-swde-v2, based-fda and
     their parquet -> JSONL exports): {text, value, [doc_id|id], [key],
     [title], [context], [question], [fewshot_ids]}.
   - SQuAD v2.0 JSON (also v1.1, which has no is_impossible).
   - HotpotQA JSON (a list of {_id, question, answer, context}).
   - PIQA, ARC, HellaSwag, Winogrande, OpenBookQA in their Hugging Face
     exports and in their original releases. */
#ifndef HYMEVAL_LOADERS_H
#define HYMEVAL_LOADERS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* ---------------------------------------------------------------- Based JSONL */

typedef struct {
    char *id;            /* the 0-based record index as text: unique, and lm-eval's doc_id */
    char *doc_id;        /* the file's own doc_id (else id) field as text, NULL if absent; may repeat */
    char *text;          /* the prompt exactly as stored (v0 uses it raw) */
    char *value;         /* the gold answer exactly as stored */
    char *key;           /* SWDE / FDA attribute name; NULL when absent */
    char *title;         /* SQuAD-C extras; NULL when absent */
    char *context;
    char *question;
    char **fewshot_ids;  /* hymeval extension: this record's shots (record ids); NULL / 0 when absent */
    int n_fewshot_ids;
    int line;            /* 1-based line in the file */
} BasedRecord;

typedef struct {
    BasedRecord *items;
    int n;
} BasedSet;

/* Loads a .jsonl or .jsonl.gz file. */
int load_based_jsonl(const char *path, BasedSet *out, Err *err);
void based_set_free(BasedSet *s);
/* Index of the record with this id, or -1. */
int based_find(const BasedSet *s, const char *id);

/* ---------------------------------------------------------------- SQuAD v2.0 JSON */

typedef struct {
    char *id;
    char *question;
    char **answers;      /* answers[].text, in file order (empty for unanswerable questions) */
    int *answer_starts;  /* answers[].answer_start (-1 when absent) */
    int n_answers;
    int is_impossible;
    char *statement;     /* hymeval extension: the question as a statement to complete; NULL if absent */
    int paragraph;       /* index into SquadSet.paragraphs */
    char path[96];       /* JSON path of the question, for later messages */
} SquadQA;

typedef struct {
    char *context;
    char *title;
    int article;         /* index of the article (data[i]) it first appeared in */
} SquadParagraph;

typedef struct {
    SquadParagraph *paragraphs; /* distinct contexts, in order of first appearance */
    int n_paragraphs;
    SquadQA *qas;
    int n_qas;
    int n_articles;
} SquadSet;

/* answerable_only: skip questions with is_impossible true (RULER does). */
int load_squad_v2(const char *path, int answerable_only, SquadSet *out, Err *err);
void squad_set_free(SquadSet *s);

/* ---------------------------------------------------------------- HotpotQA JSON */

typedef struct {
    char *id;            /* _id */
    char *question;
    char *answer;
    int *docs;           /* indices into HotpotSet.docs, in the order of `context` */
    int n_docs;
} HotpotQA;

typedef struct {
    char **docs;         /* distinct paragraphs, each "title\n" + its sentences joined with nothing */
    int n_docs;
    HotpotQA *qas;
    int n_qas;
} HotpotSet;

int load_hotpotqa(const char *path, HotpotSet *out, Err *err);
void hotpot_set_free(HotpotSet *s);

/* ---------------------------------------------------------------- multiple-choice sets */

typedef enum { MC_PIQA, MC_ARC, MC_HELLASWAG, MC_WINOGRANDE, MC_OBQA } McDataset;
typedef enum { MC_FORMAT_AUTO, MC_FORMAT_HF, MC_FORMAT_ORIGINAL } McFormat;

typedef struct {
    char *id;              /* id / qID / ind when present, else the 0-based record index */
    char *question;        /* PIQA goal; ARC question (stem); OBQA question_stem (stem); Winogrande sentence */
    char *activity_label;  /* HellaSwag only */
    char *ctx_a;
    char *ctx_b;
    char **choices;        /* PIQA [sol1, sol2]; ARC / OBQA choice texts; HellaSwag endings; Winogrande [option1, option2] */
    char **labels;         /* ARC / OBQA choice labels; NULL otherwise */
    int n_choices;
    int gold;              /* index of the correct choice */
    int line;
} McRecord;

typedef struct {
    McRecord *items;
    int n;
} McSet;

/* "piqa", "arc_easy", "arc_challenge", "hellaswag", "winogrande", "openbookqa"; -1 if unknown. */
int mc_dataset_from_name(const char *name, McDataset *out);
/* "hf", "original", "auto"; -1 if unknown. */
int mc_format_from_name(const char *name, McFormat *out);
/* labels_path: PIQA's original split keeps the labels apart (valid-labels.lst,
   one 0/1 per line, in record order); NULL otherwise. With MC_FORMAT_AUTO each
   record's shape decides (ARC / OBQA: `question` an object = original; PIQA:
   no `label` field = original, which needs labels_path). */
int load_mc(const char *path, McDataset ds, McFormat fmt, const char *labels_path, McSet *out, Err *err);
void mc_set_free(McSet *s);

/* ---------------------------------------------------------------- text helpers the formats need */

/* Python's str.strip(): a malloc'd copy without leading / trailing Unicode
   whitespace (str.isspace). NULL only on out of memory. */
char *py_strip(const char *s);
/* 1 if the code point is whitespace to Python's str.isspace(). */
int py_isspace(uint32_t c);
/* Number of Unicode code points in UTF-8 text (Python len()). */
size_t utf8_chars(const char *s);
/* Resolves `path` relative to the directory of `base_file` (a task file);
   absolute paths are kept. Returns 0, or -1 if it does not fit. */
int resolve_relative(const char *base_file, const char *path, char *out, size_t cap);

/* A small seeded generator (splitmix64): the same seed gives the same
   stream on every platform. */
typedef struct {
    uint64_t state;
} LdRng;

void ld_rng_seed(LdRng *r, uint64_t seed);
uint64_t ld_rng_next(LdRng *r);
/* Uniform in [0, n), n > 0, without modulo bias. */
uint64_t ld_rng_below(LdRng *r, uint64_t n);
/* Fisher-Yates shuffle of v[0..n). */
void ld_shuffle(LdRng *r, int *v, int n);
/* k distinct indices from [0, pool), in the order drawn (k <= pool). */
void ld_sample(LdRng *r, int pool, int k, int *out);

#endif
