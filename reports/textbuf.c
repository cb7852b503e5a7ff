/* textbuf.c: see textbuf.h. */
#include "textbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tb_init(TextBuf *b) { memset(b, 0, sizeof *b); }

void tb_free(TextBuf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

static int tb_reserve(TextBuf *b, size_t extra) {
    if (b->failed) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *grown = realloc(b->data, cap);
    if (!grown) {
        b->failed = 1;
        return -1;
    }
    b->data = grown;
    b->cap = cap;
    return 0;
}

void tb_addn(TextBuf *b, const char *s, size_t n) {
    if (tb_reserve(b, n)) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void tb_add(TextBuf *b, const char *s) { tb_addn(b, s, strlen(s)); }

void tb_printf(TextBuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || tb_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void tb_add_xml(TextBuf *b, const char *s) {
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '&': tb_add(b, "&amp;"); break;
        case '<': tb_add(b, "&lt;"); break;
        case '>': tb_add(b, "&gt;"); break;
        case '"': tb_add(b, "&quot;"); break;
        case '\'': tb_add(b, "&#39;"); break;
        default:
            /* control characters other than tab/newline are not allowed in XML 1.0 */
            if ((unsigned char)*p < 0x20 && *p != '\t' && *p != '\n') tb_add(b, "?");
            else tb_addn(b, p, 1);
        }
    }
}

void tb_add_base64(TextBuf *b, const unsigned char *data, size_t n) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (tb_reserve(b, (n + 2) / 3 * 4)) return;
    char *out = b->data + b->len;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)data[i] << 16 | (unsigned)data[i + 1] << 8 | data[i + 2];
        *out++ = alphabet[v >> 18 & 63];
        *out++ = alphabet[v >> 12 & 63];
        *out++ = alphabet[v >> 6 & 63];
        *out++ = alphabet[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)data[i] << 16 | (i + 1 < n ? (unsigned)data[i + 1] << 8 : 0);
        *out++ = alphabet[v >> 18 & 63];
        *out++ = alphabet[v >> 12 & 63];
        *out++ = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
        *out++ = '=';
    }
    b->len = (size_t)(out - b->data);
    b->data[b->len] = 0;
}

char *tb_take(TextBuf *b) {
    char *text = b->failed ? NULL : b->data;
    if (b->failed) free(b->data);
    else if (!text) text = calloc(1, 1);
    memset(b, 0, sizeof *b);
    return text;
}

int write_file_atomic(const char *path, const void *data, size_t n, Err *err) {
    size_t len = strlen(path) + 8;
    char *tmp = malloc(len);
    if (!tmp) return err_set(err, "out of memory");
    snprintf(tmp, len, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    int bad = !f || (n && fwrite(data, 1, n, f) != n);
    if (f && fclose(f) != 0) bad = 1;
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        free(tmp);
        return err_set(err, "%s: cannot write (%s)", path, strerror(e));
    }
    free(tmp);
    return 0;
}
