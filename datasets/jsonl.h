/* jsonl.h: reading JSONL (and .jsonl.gz through zlib) and text files, with
   line numbers for error messages. */
#ifndef HYMEVAL_JSONL_H
#define HYMEVAL_JSONL_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "error.h"

typedef struct JsonlReader JsonlReader;

/* Opens path; gzip-compressed when it ends in .gz (or starts with the gzip magic). */
JsonlReader *jsonl_open(const char *path, Err *err);
/* Next object: returns 1 with *obj (caller frees with cJSON_Delete) and *line
   set, 0 at the end, -1 on error ("file:line: not valid JSON ..."). Blank
   lines and lines starting with '#' are skipped. */
int jsonl_next(JsonlReader *r, cJSON **obj, int *line, Err *err);
void jsonl_close(JsonlReader *r);

/* Whole file (gzip-aware) as a malloc'd NUL-terminated buffer. */
char *read_text_file(const char *path, size_t *len, Err *err);

#endif
