/* safetensors.c: reading and writing safetensors checkpoints.

   A file is: u64 little-endian N | N bytes of JSON header | data buffer.
   The header maps tensor names to {"dtype", "shape", "data_offsets"} with
   offsets relative to the data buffer, plus an optional "__metadata__"
   string map. A sharded checkpoint adds model.safetensors.index.json whose
   "weight_map" says which shard holds each tensor.

   Reading maps every file read-only and validates each header completely
   (the checks of the reference reader) before any tensor is handed out, so
   no later access can land outside a mapping, whatever the bytes were.

   The host is assumed to be little-endian: the length prefix, F32 data and
   the 16-bit values are read and written in host byte order. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bf16.h"

#define HEADER_MAX_BYTES 100000000ull   /* the reference reader's limit */
#define INDEX_MAX_BYTES (256u << 20)    /* an index.json is a few hundred KB */
#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"

/* ------------------------------------------------------------------ */
/* dtypes                                                              */

typedef struct {
    const char *name;
    int bits;          /* per element; F4 / F6 are packed below a byte */
    StDtype kind;
} DtypeInfo;

/* Every dtype name the safetensors spec knows. Names not listed here make
   the file invalid; listed ones other than F32/F16/BF16 load as ST_OTHER. */
static const DtypeInfo dtype_table[] = {
    {"BOOL", 8, ST_OTHER},        {"F4", 4, ST_OTHER},
    {"F6_E2M3", 6, ST_OTHER},     {"F6_E3M2", 6, ST_OTHER},
    {"U8", 8, ST_OTHER},          {"I8", 8, ST_OTHER},
    {"F8_E5M2", 8, ST_OTHER},     {"F8_E4M3", 8, ST_OTHER},
    {"F8_E8M0", 8, ST_OTHER},     {"F8_E4M3FNUZ", 8, ST_OTHER},
    {"F8_E5M2FNUZ", 8, ST_OTHER}, {"I16", 16, ST_OTHER},
    {"U16", 16, ST_OTHER},        {"F16", 16, ST_F16},
    {"BF16", 16, ST_BF16},        {"I32", 32, ST_OTHER},
    {"U32", 32, ST_OTHER},        {"F32", 32, ST_F32},
    {"C64", 64, ST_OTHER},        {"F64", 64, ST_OTHER},
    {"I64", 64, ST_OTHER},        {"U64", 64, ST_OTHER},
};

static const DtypeInfo *dtype_by_name(const char *name) {
    for (size_t i = 0; i < sizeof dtype_table / sizeof dtype_table[0]; i++)
        if (strcmp(dtype_table[i].name, name) == 0) return &dtype_table[i];
    return NULL;
}

/* "BOOL, F4, ..." for error messages. */
static const char *dtype_names(char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof dtype_table / sizeof dtype_table[0] && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
                                 dtype_table[i].name);
    return buf;
}

static const char *dtype_write_name(StDtype d) {
    switch (d) {
    case ST_F32: return "F32";
    case ST_F16: return "F16";
    case ST_BF16: return "BF16";
    default: return NULL;
    }
}

static int dtype_write_size(StDtype d) { return d == ST_F32 ? 4 : 2; }

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static char *dup_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static char *join_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* Directory part of a path ("." when there is none). */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return dup_string(".");
    if (slash == path) return dup_string("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static bool mul_overflows(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return true;
    *out = a * b;
    return false;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool valid_utf8(const uint8_t *s, size_t n, size_t *bad_at) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; }
        else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; }
        else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; }
        else break;
        if (n - i < len) break;
        size_t k;
        for (k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) break;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (k < len) break;
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) break;
        if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) break;
        i += len;
    }
    *bad_at = i;
    return i == n;
}

static bool json_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Parses text[0..n) as one JSON value with only whitespace after it.
   Raw control bytes never occur in valid JSON except as whitespace, and
   cJSON would let them through inside strings, so they are refused first.
   cJSON gets a NUL-terminated copy so it can never read past the text. */
static cJSON *parse_json(const char *what, const uint8_t *text, size_t n, Err *err) {
    size_t bad;
    if (!valid_utf8(text, n, &bad)) {
        err_set(err, "%s: not valid UTF-8 (bad byte at offset %zu of the JSON)", what, bad);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (text[i] < 0x20 && !json_space(text[i])) {
            err_set(err, "%s: invalid JSON: control byte 0x%02x at offset %zu", what,
                    text[i], i);
            return NULL;
        }
    }
    char *copy = malloc(n + 1);
    if (!copy) {
        err_set(err, "%s: out of memory", what);
        return NULL;
    }
    memcpy(copy, text, n);
    copy[n] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(copy, &end, 0);
    size_t at = end ? (size_t)(end - copy) : 0;
    free(copy);
    if (!root) {
        err_set(err, "%s: invalid JSON (parse error near offset %zu)", what, at);
        return NULL;
    }
    for (size_t i = at; i < n; i++) {
        if (!json_space(text[i])) {
            err_set(err, "%s: invalid JSON: trailing characters at offset %zu", what, i);
            cJSON_Delete(root);
            return NULL;
        }
    }
    return root;
}

/* A JSON number that is a non-negative integer (as the reference reader's
   usize fields require). cJSON keeps numbers as doubles, so "2.0" reads as 2. */
static bool json_uint(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return false;
    double v = item->valuedouble;
    if (!isfinite(v) || v < 0 || v != floor(v) || v >= 9223372036854775808.0) return false;
    *out = (uint64_t)v;
    return true;
}

/* ------------------------------------------------------------------ */
/* the checkpoint                                                      */

typedef struct {
    char *path;
    const uint8_t *map;
    size_t size;
} MappedFile;

struct StCheckpoint {
    MappedFile *files;
    size_t nfiles;
    StTensor *tensors;          /* file by file, in data order */
    size_t ntensors;
    const StTensor **by_name;   /* sorted by name, for st_find */
};

/* A tensor while its header entry is being checked. */
typedef struct {
    StTensor t;
    uint64_t begin, end;        /* data_offsets */
} Entry;

static void free_entries(Entry *e, size_t n) {
    for (size_t i = 0; i < n; i++) free(e[i].t.name);
    free(e);
}

static int map_file(const char *path, MappedFile *mf, Err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return err_set(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return err_set(err, "%s: not a regular file", path);
    }
    if (sb.st_size < 8) {
        close(fd);
        return err_set(err, "%s: file is %lld bytes, shorter than the 8-byte header length",
                       path, (long long)sb.st_size);
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return err_set(err, "%s: file too large to map", path);
    }
    size_t size = (size_t)sb.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);   /* the mapping stays valid without the descriptor */
    if (map == MAP_FAILED) return err_set(err, "%s: mmap failed: %s", path, strerror(e));
    /* Weights are read once, front to back, right after opening. */
    posix_madvise(map, size, POSIX_MADV_WILLNEED);
    mf->map = map;
    mf->size = size;
    return 0;
}

/* Reads N, checks it against the file, parses the header JSON. */
static cJSON *read_header(const MappedFile *mf, size_t *data_start, Err *err) {
    uint64_t n;
    memcpy(&n, mf->map, 8);   /* little-endian host */
    if (n > HEADER_MAX_BYTES) {
        err_set(err, "%s: header too large: length field says %" PRIu64
                " bytes (limit %llu)", mf->path, n, HEADER_MAX_BYTES);
        return NULL;
    }
    if (8 + n > mf->size) {
        err_set(err, "%s: header length %" PRIu64 " runs past the end of the file (%zu bytes)",
                mf->path, n, mf->size);
        return NULL;
    }
    const uint8_t *text = mf->map + 8;
    size_t len = (size_t)n;
    if (len == 0 || text[0] != '{') {
        err_set(err, "%s: header does not start with '{'", mf->path);
        return NULL;
    }
    cJSON *root = parse_json(mf->path, text, len, err);
    if (!root) return NULL;
    if (!cJSON_IsObject(root)) {
        err_set(err, "%s: header is not a JSON object", mf->path);
        cJSON_Delete(root);
        return NULL;
    }
    *data_start = 8 + len;
    return root;
}

static int check_metadata(const char *file, const cJSON *meta, Err *err) {
    if (!cJSON_IsObject(meta))
        return err_set(err, "%s: __metadata__ must be an object of strings", file);
    const cJSON *kv;
    cJSON_ArrayForEach(kv, meta) {
        if (!cJSON_IsString(kv))
            return err_set(err, "%s: __metadata__ value '%s' must be a string", file,
                           kv->string ? kv->string : "");
    }
    return 0;
}

static int parse_shape(const char *file, const char *name, const cJSON *shape, StTensor *t,
                       Err *err) {
    if (!cJSON_IsArray(shape))
        return err_set(err, "%s: tensor '%s': \"shape\" must be an array of integers", file, name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > ST_MAX_DIMS)
        return err_set(err, "%s: tensor '%s': %d dimensions, at most %d supported", file, name,
                       ndim, ST_MAX_DIMS);
    t->ndim = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, shape) {
        uint64_t d;
        if (!json_uint(dim, &d))
            return err_set(err, "%s: tensor '%s': shape entry %d is not a non-negative integer",
                           file, name, t->ndim);
        t->shape[t->ndim++] = (int64_t)d;
    }
    return 0;
}

static int parse_offsets(const char *file, const char *name, const cJSON *offs, Entry *e,
                         Err *err) {
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !json_uint(cJSON_GetArrayItem(offs, 0), &e->begin) ||
        !json_uint(cJSON_GetArrayItem(offs, 1), &e->end))
        return err_set(err, "%s: tensor '%s': \"data_offsets\" must be [BEGIN, END], two "
                       "non-negative integers", file, name);
    if (e->end < e->begin)
        return err_set(err, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                       "] end before they begin", file, name, e->begin, e->end);
    return 0;
}

/* numel and byte size from shape and dtype, refusing overflow and
   packed dtypes that would end inside a byte. */
static int check_size(const char *file, const char *name, const DtypeInfo *dt, Entry *e,
                      Err *err) {
    uint64_t numel = 1, bits;
    for (int i = 0; i < e->t.ndim; i++)
        if (mul_overflows(numel, (uint64_t)e->t.shape[i], &numel) || numel > INT64_MAX)
            return err_set(err, "%s: tensor '%s': element count overflows", file, name);
    if (mul_overflows(numel, (uint64_t)dt->bits, &bits))
        return err_set(err, "%s: tensor '%s': byte size overflows", file, name);
    if (bits % 8 != 0)
        return err_set(err, "%s: tensor '%s': %" PRIu64 " %s elements do not fill whole bytes",
                       file, name, numel, dt->name);
    uint64_t span = e->end - e->begin;
    if (bits / 8 != span)
        return err_set(err, "%s: tensor '%s': shape has %" PRIu64 " %s elements = %" PRIu64
                       " bytes, but data_offsets [%" PRIu64 ", %" PRIu64 "] span %" PRIu64
                       " bytes", file, name, numel, dt->name, bits / 8, e->begin, e->end, span);
    e->t.numel = (int64_t)numel;
    e->t.nbytes = (size_t)span;
    return 0;
}

static int parse_entry(const char *file, const cJSON *item, Entry *e, Err *err) {
    const char *name = item->string ? item->string : "";
    if (!cJSON_IsObject(item))
        return err_set(err, "%s: tensor '%s': value must be an object", file, name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    if (!cJSON_IsString(dtype))
        return err_set(err, "%s: tensor '%s': missing or non-string \"dtype\"", file, name);
    const DtypeInfo *dt = dtype_by_name(dtype->valuestring);
    if (!dt) {
        char known[256];
        return err_set(err, "%s: tensor '%s': unknown dtype \"%.32s\" (expected one of %s)",
                       file, name, dtype->valuestring, dtype_names(known, sizeof known));
    }
    e->t.dtype = dt->kind;
    snprintf(e->t.dtype_name, sizeof e->t.dtype_name, "%s", dt->name);
    if (parse_shape(file, name, cJSON_GetObjectItemCaseSensitive(item, "shape"), &e->t, err) ||
        parse_offsets(file, name, cJSON_GetObjectItemCaseSensitive(item, "data_offsets"), e,
                      err) ||
        check_size(file, name, dt, e, err))
        return -1;
    e->t.name = dup_string(name);
    if (!e->t.name) return err_set(err, "%s: out of memory", file);
    return 0;
}

static int cmp_entry_name(const void *a, const void *b) {
    return strcmp(((const Entry *)a)->t.name, ((const Entry *)b)->t.name);
}

static int cmp_entry_offsets(const void *a, const void *b) {
    const Entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->t.name, y->t.name);   /* ties only between empty tensors */
}

/* Sorted by offsets, tensors must tile the data buffer exactly. */
static int check_layout(const MappedFile *mf, Entry *es, size_t n, size_t data_start,
                        Err *err) {
    uint64_t data_size = mf->size - data_start, prev_end = 0;
    qsort(es, n, sizeof *es, cmp_entry_offsets);
    for (size_t i = 0; i < n; i++) {
        const Entry *e = &es[i];
        if (e->begin != prev_end && i == 0)
            return err_set(err, "%s: tensor '%s': data begins at %" PRIu64 ", expected 0 "
                           "(hole before the first tensor)", mf->path, e->t.name, e->begin);
        if (e->begin != prev_end)
            return err_set(err, "%s: tensor '%s': data begins at %" PRIu64 " but the previous "
                           "tensor '%s' ends at %" PRIu64 " (%s)", mf->path, e->t.name,
                           e->begin, es[i - 1].t.name, prev_end,
                           e->begin > prev_end ? "hole between tensors" : "overlapping tensors");
        if (e->end > data_size)
            return err_set(err, "%s: tensor '%s': data extends past end of file (data_offsets end "
                           "%" PRIu64 ", data buffer is %" PRIu64 " bytes)", mf->path,
                           e->t.name, e->end, data_size);
        prev_end = e->end;
    }
    if (prev_end != data_size)
        return err_set(err, "%s: file not fully covered: tensors end at byte %" PRIu64
                       " of the %" PRIu64 "-byte data buffer", mf->path, prev_end, data_size);
    return 0;
}

/* Collects the header's tensor entries, checks each, then checks names
   and layout. On success *out holds n entries in data order. */
static int parse_entries(const MappedFile *mf, const cJSON *root, size_t data_start,
                         Entry **out, size_t *count, Err *err) {
    size_t cap = (size_t)cJSON_GetArraySize(root), n = 0;
    int nmeta = 0;
    Entry *es = calloc(cap ? cap : 1, sizeof *es);
    if (!es) return err_set(err, "%s: out of memory", mf->path);
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (item->string && strcmp(item->string, "__metadata__") == 0) {
            if (++nmeta > 1) {
                free_entries(es, n);
                return err_set(err, "%s: duplicate key '__metadata__'", mf->path);
            }
            if (check_metadata(mf->path, item, err)) {
                free_entries(es, n);
                return -1;
            }
            continue;
        }
        if (parse_entry(mf->path, item, &es[n], err)) {
            free_entries(es, n);
            return -1;
        }
        n++;
    }
    qsort(es, n, sizeof *es, cmp_entry_name);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(es[i - 1].t.name, es[i].t.name) == 0) {
            err_set(err, "%s: duplicate tensor name '%s'", mf->path, es[i].t.name);
            free_entries(es, n);
            return -1;
        }
    }
    if (check_layout(mf, es, n, data_start, err)) {
        free_entries(es, n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        es[i].t.data = mf->map + data_start + es[i].begin;
        es[i].t.file = mf->path;
    }
    *out = es;
    *count = n;
    return 0;
}

/* Maps one .safetensors file, validates it, appends its tensors. */
static int load_file(StCheckpoint *ck, const char *path, Err *err) {
    MappedFile *files = realloc(ck->files, (ck->nfiles + 1) * sizeof *files);
    if (!files) return err_set(err, "%s: out of memory", path);
    ck->files = files;
    MappedFile *mf = &files[ck->nfiles];
    mf->path = dup_string(path);
    mf->map = NULL;
    mf->size = 0;
    if (!mf->path) return err_set(err, "%s: out of memory", path);
    ck->nfiles++;   /* from here st_close cleans up whatever state mf is in */
    if (map_file(path, mf, err)) return -1;

    size_t data_start = 0, n = 0;
    cJSON *root = read_header(mf, &data_start, err);
    if (!root) return -1;
    Entry *es = NULL;
    int rc = parse_entries(mf, root, data_start, &es, &n, err);
    cJSON_Delete(root);
    if (rc) return -1;

    StTensor *ts = realloc(ck->tensors, (ck->ntensors + n + 1) * sizeof *ts);
    if (!ts) {
        free_entries(es, n);
        return err_set(err, "%s: out of memory", path);
    }
    ck->tensors = ts;
    for (size_t i = 0; i < n; i++) ts[ck->ntensors++] = es[i].t;   /* names move over */
    free(es);
    return 0;
}

static int cmp_tensor_ptr_name(const void *a, const void *b) {
    return strcmp((*(const StTensor *const *)a)->name, (*(const StTensor *const *)b)->name);
}

/* Builds the name index; a name seen twice can only come from two shards,
   since each file was checked for duplicates on its own. */
static int build_name_index(StCheckpoint *ck, Err *err) {
    ck->by_name = malloc((ck->ntensors + 1) * sizeof *ck->by_name);
    if (!ck->by_name) return err_set(err, "out of memory indexing tensor names");
    for (size_t i = 0; i < ck->ntensors; i++) ck->by_name[i] = &ck->tensors[i];
    qsort(ck->by_name, ck->ntensors, sizeof *ck->by_name, cmp_tensor_ptr_name);
    for (size_t i = 1; i < ck->ntensors; i++) {
        const StTensor *a = ck->by_name[i - 1], *b = ck->by_name[i];
        if (strcmp(a->name, b->name) == 0)
            return err_set(err, "tensor '%s' is in two shards: %s and %s", a->name, a->file,
                           b->file);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* sharded checkpoints                                                 */

static uint8_t *read_small_file(const char *path, size_t limit, size_t *len, Err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err_set(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > limit) {
        close(fd);
        err_set(err, "%s: not a regular file of at most %zu bytes", path, limit);
        return NULL;
    }
    size_t size = (size_t)sb.st_size, got = 0;
    uint8_t *buf = malloc(size + 1);
    while (buf && got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (!buf || got != size) {
        free(buf);
        err_set(err, "%s: read failed", path);
        return NULL;
    }
    *len = size;
    return buf;
}

typedef struct {
    const char *tensor;
    const char *shard;
} MapEntry;

static int cmp_map_tensor(const void *a, const void *b) {
    return strcmp(((const MapEntry *)a)->tensor, ((const MapEntry *)b)->tensor);
}

static int cmp_map_shard(const void *a, const void *b) {
    int c = strcmp(((const MapEntry *)a)->shard, ((const MapEntry *)b)->shard);
    return c ? c : cmp_map_tensor(a, b);
}

/* Reads the weight_map as (tensor, shard) pairs sorted by tensor name. */
static MapEntry *read_weight_map(const char *index, const cJSON *root, size_t *count,
                                 Err *err) {
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm)) {
        err_set(err, "%s: missing \"weight_map\" object", index);
        return NULL;
    }
    size_t n = (size_t)cJSON_GetArraySize(wm), i = 0;
    MapEntry *me = malloc((n + 1) * sizeof *me);
    if (!me) {
        err_set(err, "%s: out of memory", index);
        return NULL;
    }
    const cJSON *kv;
    cJSON_ArrayForEach(kv, wm) {
        if (!cJSON_IsString(kv) || kv->valuestring[0] == '\0') {
            err_set(err, "%s: weight_map entry '%s' must be a shard file name", index,
                    kv->string ? kv->string : "");
            free(me);
            return NULL;
        }
        me[i].tensor = kv->string ? kv->string : "";
        me[i].shard = kv->valuestring;
        i++;
    }
    qsort(me, n, sizeof *me, cmp_map_tensor);
    for (i = 1; i < n; i++) {
        if (strcmp(me[i - 1].tensor, me[i].tensor) == 0) {
            err_set(err, "%s: weight_map lists tensor '%s' twice", index, me[i].tensor);
            free(me);
            return NULL;
        }
    }
    *count = n;
    return me;
}

/* Opens each distinct shard once, in name order. */
static int load_shards(StCheckpoint *ck, const char *index, const char *dir, MapEntry *me,
                       size_t n, Err *err) {
    MapEntry *by_shard = malloc((n + 1) * sizeof *by_shard);
    if (!by_shard) return err_set(err, "%s: out of memory", index);
    memcpy(by_shard, me, n * sizeof *me);
    qsort(by_shard, n, sizeof *by_shard, cmp_map_shard);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i > 0 && strcmp(by_shard[i].shard, by_shard[i - 1].shard) == 0) continue;
        char *path = join_path(dir, by_shard[i].shard);
        struct stat sb;
        if (!path) {
            rc = err_set(err, "%s: out of memory", index);
        } else if (stat(path, &sb) != 0) {
            rc = err_set(err, "%s: weight_map entry '%s' names shard '%s', but %s: %s", index,
                         by_shard[i].tensor, by_shard[i].shard, path, strerror(errno));
        } else {
            rc = load_file(ck, path, err);
        }
        free(path);
    }
    free(by_shard);
    return rc;
}

/* Every weight_map entry must be found in its named shard, and every shard
   tensor must be listed in the weight_map. */
static int check_weight_map(const StCheckpoint *ck, const char *index, const char *dir,
                            const MapEntry *me, size_t n, Err *err) {
    for (size_t i = 0; i < n; i++) {
        const StTensor *t = st_find(ck, me[i].tensor);
        char *want = join_path(dir, me[i].shard);
        if (!want) return err_set(err, "%s: out of memory", index);
        bool ok = t && strcmp(t->file, want) == 0;
        if (!ok)
            err_set(err, "%s: weight_map says tensor '%s' is in %s, but %s%s", index,
                    me[i].tensor, want, t ? "it is in " : "that shard has no such tensor",
                    t ? t->file : "");
        free(want);
        if (!ok) return -1;
    }
    for (size_t i = 0; i < ck->ntensors; i++) {
        MapEntry key = {ck->tensors[i].name, NULL};
        if (!bsearch(&key, me, n, sizeof *me, cmp_map_tensor))
            return err_set(err, "%s: tensor '%s' is not listed in the weight_map of %s",
                           ck->tensors[i].file, ck->tensors[i].name, index);
    }
    return 0;
}

static int load_index(StCheckpoint *ck, const char *index, Err *err) {
    size_t len;
    uint8_t *text = read_small_file(index, INDEX_MAX_BYTES, &len, err);
    if (!text) return -1;
    cJSON *root = parse_json(index, text, len, err);
    free(text);
    if (!root) return -1;
    int rc = -1;
    size_t n = 0;
    MapEntry *me = NULL;
    char *dir = dir_of(index);
    if (!dir) {
        err_set(err, "%s: out of memory", index);
    } else if (!cJSON_IsObject(root)) {
        err_set(err, "%s: index is not a JSON object", index);
    } else if ((me = read_weight_map(index, root, &n, err)) != NULL) {
        /* metadata.total_size is informational (HF writers disagree on it) */
        rc = load_shards(ck, index, dir, me, n, err);
        if (rc == 0) rc = build_name_index(ck, err);
        if (rc == 0) rc = check_weight_map(ck, index, dir, me, n, err);
    }
    free(me);
    free(dir);
    cJSON_Delete(root);
    return rc;
}

/* ------------------------------------------------------------------ */
/* public reading API                                                  */

static bool is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Decides what to open: an index, a single file, or an error. */
static int open_path(StCheckpoint *ck, const char *path, Err *err) {
    struct stat sb;
    if (stat(path, &sb) != 0) return err_set(err, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) {
        if (ends_with(path, ".json")) return load_index(ck, path, err);
        if (load_file(ck, path, err)) return -1;
        return build_name_index(ck, err);
    }
    char *index = join_path(path, INDEX_NAME), *single = join_path(path, SINGLE_NAME);
    int rc;
    if (!index || !single) {
        rc = err_set(err, "%s: out of memory", path);
    } else if (is_file(index)) {
        rc = load_index(ck, index, err);
    } else if (is_file(single)) {
        rc = load_file(ck, single, err);
        if (rc == 0) rc = build_name_index(ck, err);
    } else {
        rc = err_set(err, "%s: no checkpoint found: looked for %s and %s", path, INDEX_NAME,
                     SINGLE_NAME);
    }
    free(index);
    free(single);
    return rc;
}

StCheckpoint *st_open(const char *path, Err *err) {
    StCheckpoint *ck = calloc(1, sizeof *ck);
    if (!ck) {
        err_set(err, "%s: out of memory", path);
        return NULL;
    }
    if (open_path(ck, path, err)) {
        st_close(ck);
        return NULL;
    }
    return ck;
}

void st_close(StCheckpoint *ck) {
    if (!ck) return;
    for (size_t i = 0; i < ck->ntensors; i++) free(ck->tensors[i].name);
    for (size_t i = 0; i < ck->nfiles; i++) {
        if (ck->files[i].map) munmap((void *)ck->files[i].map, ck->files[i].size);
        free(ck->files[i].path);
    }
    free(ck->by_name);
    free(ck->tensors);
    free(ck->files);
    free(ck);
}

size_t st_count(const StCheckpoint *ck) { return ck ? ck->ntensors : 0; }

const StTensor *st_tensor_at(const StCheckpoint *ck, size_t i) {
    return ck && i < ck->ntensors ? &ck->tensors[i] : NULL;
}

const StTensor *st_find(const StCheckpoint *ck, const char *name) {
    if (!ck || !ck->by_name || !name) return NULL;
    StTensor key_tensor = {.name = (char *)name};
    const StTensor *key = &key_tensor;
    const StTensor **hit =
        bsearch(&key, ck->by_name, ck->ntensors, sizeof *ck->by_name, cmp_tensor_ptr_name);
    return hit ? *hit : NULL;
}

int st_to_f32(const StTensor *t, float *dst, Err *err) {
    const uint8_t *src = t->data;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case ST_F32:
        if (n) memcpy(dst, src, n * sizeof(float));
        return 0;
    case ST_BF16:
    case ST_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);   /* data may be unaligned */
            dst[i] = t->dtype == ST_BF16 ? bf16_to_f32(h) : f16_to_f32(h);
        }
        return 0;
    default:
        return err_set(err, "%s: tensor '%s': dtype %s cannot be converted to F32 "
                       "(supported: F32, F16, BF16)", t->file ? t->file : "?", t->name,
                       t->dtype_name);
    }
}

/* ------------------------------------------------------------------ */
/* writing                                                             */

static int write_tensor_size(const char *path, const StWriteTensor *t, uint64_t *numel,
                             uint64_t *nbytes, Err *err) {
    const char *name = t->name ? t->name : "(null)";
    if (!t->name || !t->name[0] || strcmp(t->name, "__metadata__") == 0)
        return err_set(err, "%s: tensor '%s': invalid tensor name", path, name);
    if (!dtype_write_name(t->dtype))
        return err_set(err, "%s: tensor '%s': can only write F32, F16 or BF16", path, name);
    if (t->ndim < 0 || t->ndim > ST_MAX_DIMS)
        return err_set(err, "%s: tensor '%s': ndim %d out of range 0..%d", path, name, t->ndim,
                       ST_MAX_DIMS);
    uint64_t count = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0 || mul_overflows(count, (uint64_t)t->shape[i], &count) ||
            count > (uint64_t)INT64_MAX / 8)
            return err_set(err, "%s: tensor '%s': bad shape", path, name);
    }
    if (count > 0 && !t->values)
        return err_set(err, "%s: tensor '%s': no values", path, name);
    *numel = count;
    *nbytes = count * (uint64_t)dtype_write_size(t->dtype);
    return 0;
}

static cJSON *json_uint_raw(uint64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);   /* exact, never exponent notation */
    return cJSON_CreateRaw(buf);
}

static cJSON *tensor_header(const StWriteTensor *t, uint64_t begin, uint64_t end) {
    cJSON *obj = cJSON_CreateObject(), *shape = cJSON_CreateArray(),
          *offs = cJSON_CreateArray();
    bool ok = obj && shape && offs;
    if (ok) {
        cJSON_AddItemToObject(obj, "dtype", cJSON_CreateString(dtype_write_name(t->dtype)));
        cJSON_AddItemToObject(obj, "shape", shape);
        cJSON_AddItemToObject(obj, "data_offsets", offs);
        for (int i = 0; i < t->ndim; i++)
            cJSON_AddItemToArray(shape, json_uint_raw((uint64_t)t->shape[i]));
        cJSON_AddItemToArray(offs, json_uint_raw(begin));
        cJSON_AddItemToArray(offs, json_uint_raw(end));
        return obj;
    }
    cJSON_Delete(obj);
    cJSON_Delete(shape);
    cJSON_Delete(offs);
    return NULL;
}

/* Header text padded with spaces so the data buffer starts 8-aligned. */
static char *build_header(const char *path, const StWriteTensor *ts, size_t n,
                          const uint64_t *nbytes, size_t *padded_len, Err *err) {
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_CreateObject();
    if (!root || !meta) {
        cJSON_Delete(root);
        cJSON_Delete(meta);
        err_set(err, "%s: out of memory", path);
        return NULL;
    }
    cJSON_AddStringToObject(meta, "format", "pt");
    cJSON_AddItemToObject(root, "__metadata__", meta);
    uint64_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        if (cJSON_GetObjectItemCaseSensitive(root, ts[i].name)) {
            cJSON_Delete(root);
            err_set(err, "%s: duplicate tensor name '%s'", path, ts[i].name);
            return NULL;
        }
        cJSON *th = tensor_header(&ts[i], offset, offset + nbytes[i]);
        if (!th) {
            cJSON_Delete(root);
            err_set(err, "%s: out of memory", path);
            return NULL;
        }
        cJSON_AddItemToObject(root, ts[i].name, th);
        offset += nbytes[i];
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) {
        err_set(err, "%s: out of memory building header", path);
        return NULL;
    }
    size_t len = strlen(text), padded = (len + 7) / 8 * 8;
    char *out = realloc(text, padded + 1);
    if (!out) {
        free(text);
        err_set(err, "%s: out of memory", path);
        return NULL;
    }
    memset(out + len, ' ', padded - len);
    out[padded] = '\0';
    *padded_len = padded;
    return out;
}

/* Converts values to the tensor's dtype in chunks and writes them. */
static int write_values(FILE *f, const StWriteTensor *t, uint64_t numel) {
    enum { CHUNK = 4096 };
    uint16_t buf[CHUNK];
    if (t->dtype == ST_F32)
        return numel && fwrite(t->values, sizeof(float), numel, f) != numel ? -1 : 0;
    for (uint64_t i = 0; i < numel; i += CHUNK) {
        size_t m = numel - i < CHUNK ? (size_t)(numel - i) : CHUNK;
        for (size_t k = 0; k < m; k++)
            buf[k] = t->dtype == ST_BF16 ? f32_to_bf16(t->values[i + k])
                                         : f32_to_f16(t->values[i + k]);
        if (fwrite(buf, 2, m, f) != m) return -1;
    }
    return 0;
}

/* Writers go to "<path>.tmp.<pid>" and are renamed over path when complete,
   so a reader never sees a half-written file. */
static char *temp_name(const char *path) {
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (tmp) snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    return tmp;
}

static int commit_temp(FILE *f, const char *tmp, const char *path, Err *err) {
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    int saved = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        saved = errno;
    }
    if (ok) return 0;
    unlink(tmp);
    return err_set(err, "%s: write failed: %s", path, strerror(saved));
}

int st_write_file(const char *path, const StWriteTensor *tensors, size_t n, Err *err) {
    uint64_t *numel = calloc(n + 1, sizeof *numel), *nbytes = calloc(n + 1, sizeof *nbytes);
    char *header = NULL, *tmp = NULL;
    FILE *f = NULL;
    int rc = -1;
    size_t hlen = 0;
    if (!numel || !nbytes) {
        err_set(err, "%s: out of memory", path);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if (write_tensor_size(path, &tensors[i], &numel[i], &nbytes[i], err)) goto done;
    if (!(header = build_header(path, tensors, n, nbytes, &hlen, err))) goto done;
    if (!(tmp = temp_name(path)) || !(f = fopen(tmp, "wb"))) {
        err_set(err, "%s: cannot create: %s", tmp ? tmp : path, strerror(errno));
        goto done;
    }
    uint64_t hlen64 = hlen;   /* little-endian host */
    bool ok = fwrite(&hlen64, 8, 1, f) == 1 && fwrite(header, 1, hlen, f) == hlen;
    for (size_t i = 0; ok && i < n; i++) ok = write_values(f, &tensors[i], numel[i]) == 0;
    if (!ok) {
        err_set(err, "%s: write failed: %s", tmp, strerror(errno));
        fclose(f);
        unlink(tmp);
        goto done;
    }
    rc = commit_temp(f, tmp, path, err);
done:
    free(numel);
    free(nbytes);
    free(header);
    free(tmp);
    return rc;
}

static int write_index(const char *dir, const StWriteTensor *ts, size_t n,
                       const size_t *shard_of, size_t nshards, uint64_t total, Err *err) {
    char *path = join_path(dir, INDEX_NAME), *tmp = path ? temp_name(path) : NULL;
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_CreateObject(),
          *wm = cJSON_CreateObject();
    char *text = NULL;
    int rc = -1;
    if (!path || !tmp || !root || !meta || !wm) {
        cJSON_Delete(meta);
        cJSON_Delete(wm);
        err_set(err, "%s: out of memory", dir);
        goto done;
    }
    cJSON_AddItemToObject(meta, "total_size", json_uint_raw(total));
    cJSON_AddItemToObject(root, "metadata", meta);
    cJSON_AddItemToObject(root, "weight_map", wm);
    for (size_t i = 0; i < n; i++) {
        char shard[64];
        snprintf(shard, sizeof shard, "model-%05zu-of-%05zu.safetensors", shard_of[i] + 1,
                 nshards);
        cJSON_AddStringToObject(wm, ts[i].name, shard);
    }
    if (!(text = cJSON_Print(root))) {
        err_set(err, "%s: out of memory", path);
        goto done;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        err_set(err, "%s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    size_t len = strlen(text);
    if (fwrite(text, 1, len, f) != len || fputc('\n', f) == EOF) {
        err_set(err, "%s: write failed: %s", tmp, strerror(errno));
        fclose(f);
        unlink(tmp);
        goto done;
    }
    rc = commit_temp(f, tmp, path, err);
done:
    cJSON_Delete(root);
    free(text);
    free(tmp);
    free(path);
    return rc;
}

/* Greedy sharding in the given order: a tensor joins the current shard
   unless that would push it past shard_bytes; tensors are never split. */
static size_t assign_shards(const uint64_t *nbytes, size_t n, size_t shard_bytes,
                            size_t *shard_of) {
    size_t shard = 0;
    uint64_t used = 0;
    for (size_t i = 0; i < n; i++) {
        if (used > 0 && used + nbytes[i] > shard_bytes) {
            shard++;
            used = 0;
        }
        shard_of[i] = shard;
        used += nbytes[i];
    }
    return n ? shard + 1 : 1;
}

static int write_shards(const char *dir, const StWriteTensor *ts, size_t n,
                        const size_t *shard_of, size_t nshards, Err *err) {
    for (size_t s = 0, first = 0; s < nshards; s++) {
        size_t last = first;
        while (last < n && shard_of[last] == s) last++;
        char name[64];
        snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, nshards);
        char *path = join_path(dir, name);
        if (!path) return err_set(err, "%s: out of memory", dir);
        int rc = st_write_file(path, ts + first, last - first, err);
        free(path);
        if (rc) return -1;
        first = last;
    }
    return 0;
}

static int write_single(const char *dir, const StWriteTensor *tensors, size_t n, Err *err) {
    char *path = join_path(dir, SINGLE_NAME), *index = join_path(dir, INDEX_NAME);
    int rc = path && index ? st_write_file(path, tensors, n, err)
                           : err_set(err, "%s: out of memory", dir);
    /* a stale index would take precedence over the new single file */
    if (rc == 0 && unlink(index) != 0 && errno != ENOENT)
        rc = err_set(err, "%s: cannot remove stale index: %s", index, strerror(errno));
    free(path);
    free(index);
    return rc;
}

int st_write_checkpoint(const char *dir, const StWriteTensor *tensors, size_t n,
                        size_t shard_bytes, Err *err) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return err_set(err, "%s: cannot create directory: %s", dir, strerror(errno));
    uint64_t *nbytes = calloc(n + 1, sizeof *nbytes), total = 0, numel;
    size_t *shard_of = calloc(n + 1, sizeof *shard_of);
    int rc = -1;
    if (!nbytes || !shard_of) {
        err_set(err, "%s: out of memory", dir);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (write_tensor_size(dir, &tensors[i], &numel, &nbytes[i], err)) goto done;
        total += nbytes[i];
    }
    if (shard_bytes == 0 || total <= shard_bytes) {
        rc = write_single(dir, tensors, n, err);
    } else {
        size_t nshards = assign_shards(nbytes, n, shard_bytes, shard_of);
        rc = write_shards(dir, tensors, n, shard_of, nshards, err);
        if (rc == 0) rc = write_index(dir, tensors, n, shard_of, nshards, total, err);
    }
done:
    free(nbytes);
    free(shard_of);
    return rc;
}
