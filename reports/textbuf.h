/* textbuf.h: a growing text buffer for the text outputs of reports/ (SVG,
   HTML, Markdown), with XML escaping and base64, and an atomic file write. */
#ifndef HYMEVAL_TEXTBUF_H
#define HYMEVAL_TEXTBUF_H

#include <stddef.h>

#include "error.h"

typedef struct {
    char *data;  /* NUL-terminated once anything was added */
    size_t len, cap;
    int failed;  /* an allocation failed: later additions are dropped */
} TextBuf;

void tb_init(TextBuf *b);
void tb_free(TextBuf *b);
void tb_addn(TextBuf *b, const char *s, size_t n);
void tb_add(TextBuf *b, const char *s);
void tb_printf(TextBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s with & < > " ' escaped: safe in XML/HTML text and attribute values. */
void tb_add_xml(TextBuf *b, const char *s);
/* data as standard base64 (RFC 4648, with padding). */
void tb_add_base64(TextBuf *b, const unsigned char *data, size_t n);
/* The text (caller frees), or NULL when an allocation failed; b is reset. */
char *tb_take(TextBuf *b);

/* Writes n bytes to path through a temporary file and a rename. */
int write_file_atomic(const char *path, const void *data, size_t n, Err *err);

#endif
