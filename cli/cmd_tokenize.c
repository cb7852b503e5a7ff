/* cmd_tokenize.c: `hymeval tokenize`: encode text to ids (or pieces), or
   decode ids to text, with a tokenizer.json; the tests compare it with the
   Hugging Face `tokenizers` library. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tokenizer.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: hymeval tokenize DIR_OR_FILE [TEXT] [options]\n"
            "\n"
            "Encodes TEXT with the tokenizer in DIR_OR_FILE (a tokenizer.json, or a directory\n"
            "holding one and optionally tokenizer_config.json) and prints the ids as a JSON array.\n"
            "\n"
            "  --file PATH      read the text from PATH as raw bytes (\"-\": standard input)\n"
            "  --pieces         print the token strings (a JSON array) instead of the ids\n"
            "  --bos, --no-bos  add / leave out BOS (default: the tokenizer's own setting)\n"
            "  --decode IDS     decode a JSON array of ids (\"-\": read it from standard input)\n"
            "                   and print the text, then a newline\n"
            "  --skip-special   with --decode or --batch: leave special tokens out of the text\n"
            "  --batch PATH     JSON lines (\"-\": standard input), one result line per line:\n"
            "                   a string is encoded (ids, or pieces with --pieces), an array\n"
            "                   of ids is decoded (a JSON string); blank lines are skipped\n"
            "  --               what follows is positional, even if it starts with \"-\"\n"
            "  -h, --help       this text\n"
            "\n"
            "exit status: 0 ok, 1 error (message on stderr), 2 usage error\n");
}

typedef struct {
    const char *tokenizer, *text, *file, *decode, *batch;
    int add_bos; /* -1: the tokenizer decides */
    bool pieces, skip_special;
} Options;

/* ---------------------------------------------------------------------------
   Bytes in and JSON out */

typedef struct {
    char *data;
    size_t len, cap;
} Bytes;

static bool bytes_add(Bytes *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) return false;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

/* Whole file (or stdin for "-") as length-delimited bytes; NULs are kept. */
static int read_all(const char *path, Bytes *out) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char chunk[65536];
    size_t n;
    bool ok = bytes_add(out, "", 0);
    while (ok && (n = fread(chunk, 1, sizeof chunk, f)) > 0) ok = bytes_add(out, chunk, n);
    if (ferror(f)) ok = false;
    if (f != stdin) fclose(f);
    if (!ok) fprintf(stderr, "error: cannot read %s\n", path);
    return ok ? 0 : -1;
}

/* JSON string: control bytes escaped, UTF-8 written as is. */
static void print_json_string(const char *s, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static void print_ids(const Tokenizer *tok, const int32_t *ids, size_t n, bool pieces) {
    putchar('[');
    for (size_t i = 0; i < n; i++) {
        if (i) fputs(", ", stdout);
        const char *piece = pieces ? tokenizer_piece(tok, ids[i]) : NULL;
        if (piece) print_json_string(piece, strlen(piece));
        else printf("%d", (int)ids[i]);
    }
    puts("]");
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool read_hex4(const char *s, const char *end, uint32_t *out) {
    if (end - s < 4) return false;
    *out = 0;
    for (int i = 0; i < 4; i++) {
        int v = hex_value(s[i]);
        if (v < 0) return false;
        *out = *out << 4 | (uint32_t)v;
    }
    return true;
}

static bool add_utf8(Bytes *out, uint32_t cp) {
    char b[4];
    size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    static const unsigned char lead[5] = {0, 0x00, 0xC0, 0xE0, 0xF0};
    for (size_t i = n - 1; i > 0; i--, cp >>= 6) b[i] = (char)(0x80 | (cp & 0x3F));
    b[0] = (char)(lead[n] | cp);
    return bytes_add(out, b, n);
}

/* One JSON string literal filling s[0..n) (cJSON would stop at "\u0000",
   which the tests use). Lone surrogates are refused. */
static bool parse_json_string(const char *s, size_t n, Bytes *out) {
    const char *p = s, *end = s + n;
    out->len = 0;
    if (!bytes_add(out, "", 0) || p == end || *p++ != '"') return false;
    while (p < end && *p != '"') {
        if (*p != '\\') {
            if ((unsigned char)*p < 0x20 || !bytes_add(out, p, 1)) return false;
            p++;
            continue;
        }
        if (++p == end) return false;
        char c = *p++;
        const char *simple = strchr("\"\\/bfnrt", c);
        if (simple && c) {
            static const char plain[] = "\"\\/\b\f\n\r\t";
            if (!bytes_add(out, &plain[simple - "\"\\/bfnrt"], 1)) return false;
            continue;
        }
        uint32_t cp, low;
        if (c != 'u' || !read_hex4(p, end, &cp)) return false;
        p += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return false;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !read_hex4(p + 2, end, &low) || low < 0xDC00 ||
                low > 0xDFFF)
                return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            p += 6;
        }
        if (!add_utf8(out, cp)) return false;
    }
    if (p == end) return false;
    for (p++; p < end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r') return false;
    return true;
}

/* ---------------------------------------------------------------------------
   The three modes */

static int encode_and_print(const Tokenizer *tok, const char *text, size_t len, const Options *o) {
    int32_t *ids;
    size_t n;
    Err err;
    if (tokenizer_encode(tok, text, len, o->add_bos, &ids, &n, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        return -1;
    }
    print_ids(tok, ids, n, o->pieces);
    free(ids);
    return 0;
}

/* Decodes "[1, 2, 3]"; as_json: print a JSON string (batch), else raw text. */
static int decode_and_print(const Tokenizer *tok, const char *ids_text, bool skip_special, bool as_json) {
    int32_t *ids;
    int n;
    if (cli_parse_ids(ids_text, &ids, &n)) {
        fprintf(stderr, "error: expected a JSON array of token ids, got \"%.60s\"\n", ids_text);
        return -1;
    }
    size_t len;
    char *text = tokenizer_decode_len(tok, ids, (size_t)n, skip_special, &len);
    free(ids);
    if (!text) {
        fprintf(stderr, "error: out of memory decoding\n");
        return -1;
    }
    if (as_json) print_json_string(text, len);
    else fwrite(text, 1, len, stdout);
    putchar('\n');
    free(text);
    return 0;
}

static int run_batch(const Tokenizer *tok, const Options *o) {
    Bytes in = {0}, text = {0};
    int rc = read_all(o->batch, &in);
    size_t line_no = 0;
    for (char *line = in.data; rc == 0 && line && line < in.data + in.len; line_no++) {
        char *nl = memchr(line, '\n', (size_t)(in.data + in.len - line));
        char *end = nl ? nl : in.data + in.len;
        char *next = nl ? nl + 1 : NULL;
        while (line < end && (*line == ' ' || *line == '\t')) line++;
        if (line < end && end[-1] == '\r') end--;
        if (line == end) {
            line = next;
            continue;
        }
        *end = '\0';
        if (*line == '[') {
            rc = decode_and_print(tok, line, o->skip_special, true);
        } else if (parse_json_string(line, (size_t)(end - line), &text)) {
            rc = encode_and_print(tok, text.data, text.len, o);
        } else {
            fprintf(stderr, "error: %s line %zu: expected a JSON string or an array of ids\n", o->batch, line_no + 1);
            rc = -1;
        }
        line = next;
    }
    free(in.data);
    free(text.data);
    return rc;
}

/* ---------------------------------------------------------------------------
   Arguments */

static int parse_args(int argc, char **argv, Options *o) {
    int positional = 0;
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool is_option = !options_done && a[0] == '-' && a[1] == '-';
        if (is_option && strcmp(a, "--") == 0) options_done = true;
        else if (is_option && strcmp(a, "--file") == 0) { if (!(o->file = cli_value(argc, argv, &i))) return -1; }
        else if (is_option && strcmp(a, "--decode") == 0) { if (!(o->decode = cli_value(argc, argv, &i))) return -1; }
        else if (is_option && strcmp(a, "--batch") == 0) { if (!(o->batch = cli_value(argc, argv, &i))) return -1; }
        else if (is_option && strcmp(a, "--pieces") == 0) o->pieces = true;
        else if (is_option && strcmp(a, "--skip-special") == 0) o->skip_special = true;
        else if (is_option && strcmp(a, "--bos") == 0) o->add_bos = 1;
        else if (is_option && strcmp(a, "--no-bos") == 0) o->add_bos = 0;
        else if (is_option) {
            fprintf(stderr, "error: unknown option %s\n", a);
            return -1;
        } else if (positional == 0) o->tokenizer = a, positional++;
        else if (positional == 1) o->text = a, positional++;
        else {
            fprintf(stderr, "error: unexpected argument \"%s\"\n", a);
            return -1;
        }
    }
    if (!o->tokenizer) {
        fprintf(stderr, "error: tokenize needs DIR_OR_FILE (a tokenizer.json or its directory)\n");
        return -1;
    }
    int modes = (o->text || o->file) + (o->decode != NULL) + (o->batch != NULL);
    if (o->text && o->file) {
        fprintf(stderr, "error: give TEXT or --file, not both\n");
        return -1;
    }
    if (modes != 1) {
        fprintf(stderr, "error: give exactly one of TEXT / --file, --decode, --batch\n");
        return -1;
    }
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    Options o = {.add_bos = -1};
    if (parse_args(argc, argv, &o)) {
        fprintf(stderr, "(hymeval tokenize --help for usage)\n");
        return EXIT_USAGE;
    }
    Err err;
    Tokenizer *tok = tokenizer_load(o.tokenizer, &err);
    if (!tok) {
        fprintf(stderr, "error: %s\n", err.msg);
        return EXIT_FAIL;
    }
    int rc = 0;
    if (o.batch) {
        rc = run_batch(tok, &o);
    } else if (o.decode) {
        Bytes ids_text = {0};
        bool from_stdin = strcmp(o.decode, "-") == 0;
        rc = from_stdin ? read_all("-", &ids_text) : 0;
        if (rc == 0) rc = decode_and_print(tok, from_stdin ? ids_text.data : o.decode, o.skip_special, false);
        free(ids_text.data);
    } else if (o.file) {
        Bytes text = {0};
        rc = read_all(o.file, &text);
        if (rc == 0) rc = encode_and_print(tok, text.data, text.len, &o);
        free(text.data);
    } else {
        rc = encode_and_print(tok, o.text, strlen(o.text), &o);
    }
    tokenizer_free(tok);
    if (fflush(stdout) != 0) rc = -1;
    return rc ? EXIT_FAIL : EXIT_OK;
}
