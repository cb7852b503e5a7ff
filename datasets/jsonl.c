/* jsonl.c: JSONL and whole-file reading through zlib, which reads gzip
   members and (in its "transparent" mode) plain files alike. Lines may be
   any length: the buffer grows until a newline (or the end) is in it. */
#include "jsonl.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

enum { READ_CHUNK = 1 << 16 };

struct JsonlReader {
    char *path;
    gzFile gz;
    char *buf;          /* bytes read but not yet consumed: [start, end) */
    size_t cap, start, end;
    size_t scanned;     /* bytes of [start, end) already searched for '\n' */
    int at_eof;
    int line_no;        /* physical lines consumed so far */
};

/* ---------------------------------------------------------------- opening */

static int has_gz_suffix(const char *path) {
    size_t n = strlen(path);
    return n >= 3 && strcmp(path + n - 3, ".gz") == 0;
}

/* Checks the path names a readable regular file and whether it starts with
   the gzip magic 1f 8b; a ".gz" name without the magic is refused rather
   than silently read as text. Returns 0, or -1 with err. */
static int probe_file(const char *path, Err *err) {
    struct stat st;
    if (stat(path, &st) != 0) return err_set(err, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return err_set(err, "%s: cannot read: is a directory", path);
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, "%s: cannot open: %s", path, strerror(errno));
    unsigned char magic[2] = {0, 0};
    size_t got = fread(magic, 1, 2, f);
    fclose(f);
    int is_gzip = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    if (has_gz_suffix(path) && !is_gzip)
        return err_set(err, "%s: not a gzip file (the name ends in .gz but the file does not start with 1f 8b)",
                       path);
    return 0;
}

/* Opens path for reading through zlib (gzip or plain). NULL with err. */
static gzFile open_gz(const char *path, Err *err) {
    if (probe_file(path, err)) return NULL;
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        err_set(err, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
        return NULL;
    }
    gzbuffer(gz, 1 << 17);
    return gz;
}

/* Reads up to `want` bytes. Returns the count (0 at the end), or -1 with err
   naming the file; a gzip stream cut short is an error, not a quiet end. */
static long read_some(gzFile gz, const char *path, void *dst, size_t want, Err *err) {
    unsigned ask = want > INT_MAX ? INT_MAX : (unsigned)want;
    int n = gzread(gz, dst, ask);
    int code = Z_OK;
    const char *msg = gzerror(gz, &code);
    if (n < 0 || (code != Z_OK && code != Z_BUF_ERROR))
        return err_set(err, "%s: read error: %s", path, code == Z_ERRNO ? strerror(errno) : msg);
    /* zlib reports a truncated gzip member as Z_BUF_ERROR once input runs out */
    if (n == 0 && code == Z_BUF_ERROR) return err_set(err, "%s: gzip data ends early (truncated file?)", path);
    return n;
}

/* ---------------------------------------------------------------- whole files */

char *read_text_file(const char *path, size_t *len, Err *err) {
    gzFile gz = open_gz(path, err);
    if (!gz) return NULL;
    size_t cap = READ_CHUNK, used = 0;
    char *text = malloc(cap);
    for (;;) {
        if (!text) break;
        if (cap - used < READ_CHUNK + 1) {
            char *bigger = realloc(text, cap * 2);
            if (!bigger) {
                free(text);
                text = NULL;
                break;
            }
            text = bigger;
            cap *= 2;
        }
        long n = read_some(gz, path, text + used, cap - used - 1, err);
        if (n < 0) {
            free(text);
            gzclose(gz);
            return NULL;
        }
        if (n == 0) break;
        used += (size_t)n;
    }
    gzclose(gz);
    if (!text) {
        err_set(err, "%s: out of memory reading the file", path);
        return NULL;
    }
    text[used] = 0;
    if (len) *len = used;
    return text;
}

/* ---------------------------------------------------------------- line reader */

JsonlReader *jsonl_open(const char *path, Err *err) {
    JsonlReader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = malloc(strlen(path) + 1)) || !(r->buf = malloc(READ_CHUNK))) {
        if (r) free(r->path);
        free(r);
        err_set(err, "%s: out of memory", path);
        return NULL;
    }
    strcpy(r->path, path);
    r->cap = READ_CHUNK;
    r->gz = open_gz(path, err);
    if (!r->gz) {
        free(r->buf);
        free(r->path);
        free(r);
        return NULL;
    }
    return r;
}

void jsonl_close(JsonlReader *r) {
    if (!r) return;
    if (r->gz) gzclose(r->gz);
    free(r->buf);
    free(r->path);
    free(r);
}

/* Makes room for at least one more chunk after `end` (plus the NUL a last
   unterminated line needs), moving pending bytes to the front first. */
static int make_room(JsonlReader *r, Err *err) {
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->cap - r->end >= READ_CHUNK + 1) return 0;
    size_t new_cap = r->cap * 2;
    char *bigger = new_cap > r->cap ? realloc(r->buf, new_cap) : NULL;
    if (!bigger)
        return err_set(err, "%s:%d: out of memory holding a line of %zu bytes", r->path, r->line_no + 1,
                       r->end);
    r->buf = bigger;
    r->cap = new_cap;
    return 0;
}

/* Next physical line, NUL-terminated in place, without its "\n" (and "\r").
   Returns 1, 0 at the end, -1 on error. */
static int next_line(JsonlReader *r, char **line, size_t *len, Err *err) {
    for (;;) {
        char *from = r->buf + r->start + r->scanned;
        char *newline = memchr(from, '\n', r->end - r->start - r->scanned);
        size_t line_len;
        if (newline) {
            line_len = (size_t)(newline - (r->buf + r->start));
        } else if (r->at_eof) {
            if (r->start == r->end) return 0;
            line_len = r->end - r->start;  /* a last line without "\n"; make_room kept a spare byte */
        } else {
            r->scanned = r->end - r->start;
            if (make_room(r, err)) return -1;
            long n = read_some(r->gz, r->path, r->buf + r->end, r->cap - r->end - 1, err);
            if (n < 0) return -1;
            if (n == 0) r->at_eof = 1;
            r->end += (size_t)n;
            continue;
        }
        *line = r->buf + r->start;
        r->start += line_len + (newline ? 1 : 0);
        r->scanned = 0;
        r->line_no++;
        if (line_len > 0 && (*line)[line_len - 1] == '\r') line_len--;  /* CRLF files */
        (*line)[line_len] = 0;
        *len = line_len;
        return 1;
    }
}

static int is_blank_char(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

/* Blank lines and comment lines (first non-blank character '#') carry no record. */
static int is_skipped_line(const char *line, size_t len) {
    size_t i = 0;
    while (i < len && is_blank_char(line[i])) i++;
    return i == len || line[i] == '#';
}

/* A short printable excerpt of text at `at`, for error messages. */
static void excerpt(const char *text, size_t len, size_t at, char *out, size_t out_size) {
    size_t o = 0;
    for (size_t i = at; i < len && o + 5 < out_size && i < at + 24; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f) o += (size_t)snprintf(out + o, out_size - o, "\\x%02x", c);
        else out[o++] = (char)c;
    }
    out[o] = 0;
}

static const char *json_type_name(const cJSON *item) {
    if (cJSON_IsArray(item)) return "an array";
    if (cJSON_IsString(item)) return "a string";
    if (cJSON_IsNumber(item)) return "a number";
    if (cJSON_IsBool(item)) return "a boolean";
    if (cJSON_IsNull(item)) return "null";
    return "something else";
}

/* Parses one line into an object, or -1 with "file:line: ..." in err. */
static int parse_object_line(JsonlReader *r, const char *line, size_t len, cJSON **obj, Err *err) {
    const char *parse_end = NULL;
    cJSON *value = cJSON_ParseWithLengthOpts(line, len, &parse_end, 0);
    char near[128];
    if (!value) {
        size_t at = parse_end && parse_end >= line && parse_end <= line + len ? (size_t)(parse_end - line) : 0;
        excerpt(line, len, at, near, sizeof near);
        return err_set(err, "%s:%d: not valid JSON (cJSON stopped at column %zu, near \"%s\")", r->path,
                       r->line_no, at + 1, near);
    }
    size_t at = (size_t)(parse_end - line);
    while (at < len && (is_blank_char(line[at]) || line[at] == '\n')) at++;
    if (at < len) {
        cJSON_Delete(value);
        excerpt(line, len, at, near, sizeof near);
        return err_set(err, "%s:%d: not valid JSON: unexpected text after the value at column %zu (\"%s\")",
                       r->path, r->line_no, at + 1, near);
    }
    if (!cJSON_IsObject(value)) {
        const char *got = json_type_name(value);
        cJSON_Delete(value);
        return err_set(err, "%s:%d: expected a JSON object ({...}) on each line, got %s", r->path, r->line_no,
                       got);
    }
    *obj = value;
    return 0;
}

int jsonl_next(JsonlReader *r, cJSON **obj, int *line, Err *err) {
    *obj = NULL;
    char *text;
    size_t len;
    int rc;
    while ((rc = next_line(r, &text, &len, err)) == 1) {
        if (r->line_no == 1 && len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
            text += 3;  /* a UTF-8 byte-order mark some editors write */
            len -= 3;
        }
        if (is_skipped_line(text, len)) continue;
        if (line) *line = r->line_no;
        if (parse_object_line(r, text, len, obj, err)) return -1;
        return 1;
    }
    return rc;
}
