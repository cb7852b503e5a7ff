/* taskfile.c: loading and validating a task file (DESIGN.md §3,
   docs/TASKS.md), and the typed accessors kinds use for their own fields.
   Every error names the file, the line, the field and what was expected. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonl.h"
#include "sha256.h"
#include "task.h"

/* Fields every task may carry, whatever its kind. */
static const char *const common_fields[] = {
    "name", "kind", "seed", "limit", "max_new_tokens", "metric", "data", "precision", "description", NULL,
};
/* DESIGN.md §5 precision modes. */
static const char *const precision_modes[] = {"fp32", "bf16-paper", "bf16-hf", "bf16-all", NULL};

enum { DEFAULT_SEED = 1234 };
/* Largest integer a JSON number (an IEEE double in cJSON) holds exactly. */
#define MAX_EXACT_INTEGER 9007199254740992.0

/* ---------------------------------------------------------------- messages */

/* `"text"` (cut short, control characters escaped), a number, true, false,
   null, "an array" or "an object": what a message says it got. */
static void describe_json(const cJSON *v, char *out, size_t size) {
    if (cJSON_IsString(v)) {
        size_t o = 0;
        out[o++] = '"';
        const char *s = v->valuestring;
        size_t i = 0;
        /* stop after about 48 bytes, but never inside a UTF-8 sequence */
        for (; s[i] && o + 8 < size && (i < 48 || ((unsigned char)s[i] & 0xC0) == 0x80); i++) {
            unsigned char c = (unsigned char)s[i];
            if (c < 0x20) {
                o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
            } else {
                if (c == '"' || c == '\\') out[o++] = '\\';
                out[o++] = (char)c;
            }
        }
        if (s[i] && o + 4 < size) o += (size_t)snprintf(out + o, size - o, "...");
        snprintf(out + o, size - o, "\"");
    } else if (cJSON_IsNumber(v)) {
        double x = v->valuedouble;
        if (x == floor(x) && fabs(x) < 1e15) snprintf(out, size, "%.0f", x);
        else snprintf(out, size, "%.17g", x);
    } else if (cJSON_IsBool(v)) {
        snprintf(out, size, "%s", cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsNull(v)) {
        snprintf(out, size, "null");
    } else if (cJSON_IsArray(v)) {
        snprintf(out, size, "an array");
    } else {
        snprintf(out, size, "an object");
    }
}

/* "a, b, c" from a NULL-terminated list, appended at out[*used]. */
static void append_list(char *out, size_t size, size_t *used, const char *const *items) {
    for (int i = 0; items && items[i] && *used + 1 < size; i++) {
        int n = snprintf(out + *used, size - *used, "%s%s", *used ? ", " : "", items[i]);
        if (n < 0) return;
        *used += (size_t)n < size - *used ? (size_t)n : size - *used - 1;
    }
}

int task_field_error(const TaskDef *t, const char *field, Err *err, const char *fmt, ...) {
    char detail[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    char where[320] = "";
    int n = snprintf(where, sizeof where, "%s:%d: ", t->file ? t->file : "?", t->line);
    if (t->name[0] && n > 0 && (size_t)n < sizeof where)
        n += snprintf(where + n, sizeof where - (size_t)n, "task \"%s\": ", t->name);
    if (field && n > 0 && (size_t)n < sizeof where) snprintf(where + n, sizeof where - (size_t)n, "field \"%s\": ", field);
    return err_set(err, "%s%s", where, detail);
}

/* ---------------------------------------------------------------- typed accessors */

static const cJSON *field_value(const TaskDef *t, const char *field) {
    return t->json ? cJSON_GetObjectItemCaseSensitive(t->json, field) : NULL;
}

int task_has(const TaskDef *t, const char *field) { return field_value(t, field) != NULL; }

/* 1 if v is a JSON number with no fractional part within [min, max]. */
static int json_integer_in(const cJSON *v, double min, double max, double *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double x = v->valuedouble;
    if (!isfinite(x) || x != floor(x) || x < min || x > max) return 0;
    *out = x;
    return 1;
}

/* "a non-negative integer", "an integer in [2, 9]", ... */
static void describe_int_range(long long min, long long max, char *out, size_t size) {
    if (min == 0 && max == INT_MAX) snprintf(out, size, "a non-negative integer");
    else if (min == 1 && max == INT_MAX) snprintf(out, size, "a positive integer");
    else if (min == INT_MIN && max == INT_MAX) snprintf(out, size, "an integer");
    else if (max == INT_MAX) snprintf(out, size, "an integer >= %lld", min);
    else if (min == INT_MIN) snprintf(out, size, "an integer <= %lld", max);
    else snprintf(out, size, "an integer in [%lld, %lld]", min, max);
}

int task_int(const TaskDef *t, const char *field, int fallback, int min, int max, int *out, Err *err) {
    const cJSON *v = field_value(t, field);
    double x;
    if (!v) {
        *out = fallback;
        return 0;
    }
    if (!json_integer_in(v, min, max, &x)) {
        char expected[96], got[96];
        describe_int_range(min, max, expected, sizeof expected);
        describe_json(v, got, sizeof got);
        return task_field_error(t, field, err, "expected %s, got %s", expected, got);
    }
    *out = (int)x;
    return 0;
}

int task_double(const TaskDef *t, const char *field, double fallback, double min, double max, double *out,
                Err *err) {
    const cJSON *v = field_value(t, field);
    if (!v) {
        *out = fallback;
        return 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < min || v->valuedouble > max) {
        char got[96];
        describe_json(v, got, sizeof got);
        return task_field_error(t, field, err, "expected a number in [%g, %g], got %s", min, max, got);
    }
    *out = v->valuedouble;
    return 0;
}

int task_bool(const TaskDef *t, const char *field, int fallback, int *out, Err *err) {
    const cJSON *v = field_value(t, field);
    if (!v) {
        *out = fallback;
        return 0;
    }
    if (!cJSON_IsBool(v)) {
        char got[96];
        describe_json(v, got, sizeof got);
        return task_field_error(t, field, err, "expected true or false, got %s", got);
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

static int is_allowed(const char *s, const char *const *allowed) {
    for (int i = 0; allowed[i]; i++)
        if (strcmp(s, allowed[i]) == 0) return 1;
    return 0;
}

int task_string(const TaskDef *t, const char *field, const char *fallback, const char *const *allowed,
                const char **out, Err *err) {
    const cJSON *v = field_value(t, field);
    if (!v) {
        *out = fallback;
        return 0;
    }
    char got[96];
    describe_json(v, got, sizeof got);
    if (!cJSON_IsString(v)) return task_field_error(t, field, err, "expected a string, got %s", got);
    if (allowed && !is_allowed(v->valuestring, allowed)) {
        char choices[512] = "";
        size_t used = 0;
        append_list(choices, sizeof choices, &used, allowed);
        return task_field_error(t, field, err, "expected one of: %s; got %s", choices, got);
    }
    *out = v->valuestring;
    return 0;
}

/* The field as an array, or an error naming what each element should be. */
static const cJSON *field_array(const TaskDef *t, const char *field, const char *element_kind, Err *err,
                                int *rc) {
    const cJSON *v = field_value(t, field);
    *rc = 0;
    if (v && !cJSON_IsArray(v)) {
        char got[96];
        describe_json(v, got, sizeof got);
        *rc = task_field_error(t, field, err, "expected an array of %s, got %s", element_kind, got);
        return NULL;
    }
    return v;
}

int task_int_list(const TaskDef *t, const char *field, int **out, int *n, Err *err) {
    int rc;
    const cJSON *array = field_array(t, field, "integers", err, &rc);
    *out = NULL;
    *n = 0;
    if (!array) return rc;
    int count = cJSON_GetArraySize(array);
    int *values = malloc(sizeof *values * (size_t)(count > 0 ? count : 1));
    if (!values) return task_field_error(t, field, err, "out of memory");
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, array) {
        double x;
        if (!json_integer_in(item, INT_MIN, INT_MAX, &x)) {
            char got[96];
            describe_json(item, got, sizeof got);
            free(values);
            return task_field_error(t, field, err, "element [%d]: expected an integer, got %s", i, got);
        }
        values[i++] = (int)x;
    }
    *out = values;
    *n = count;
    return 0;
}

int task_string_list(const TaskDef *t, const char *field, char ***out, int *n, Err *err) {
    int rc;
    const cJSON *array = field_array(t, field, "strings", err, &rc);
    *out = NULL;
    *n = 0;
    if (!array) return rc;
    char **strings = NULL;
    int count = 0, i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, array) {
        if (!cJSON_IsString(item)) {
            char got[96];
            describe_json(item, got, sizeof got);
            strv_free(strings, count);
            return task_field_error(t, field, err, "element [%d]: expected a string, got %s", i, got);
        }
        if (strv_push(&strings, &count, item->valuestring)) {
            strv_free(strings, count);
            return task_field_error(t, field, err, "out of memory");
        }
        i++;
    }
    *out = strings;
    *n = count;
    return 0;
}

/* ---------------------------------------------------------------- common fields */

/* A string field copied into a fixed buffer; absent leaves dst as it is. */
static int copy_string_field(const TaskDef *t, const char *field, const char *const *allowed, char *dst,
                             size_t dst_size, Err *err) {
    const char *value = NULL;
    if (task_string(t, field, NULL, allowed, &value, err)) return -1;
    if (!value) return 0;
    if (strlen(value) >= dst_size)
        return task_field_error(t, field, err, "expected at most %zu bytes, got %zu", dst_size - 1, strlen(value));
    strcpy(dst, value);
    return 0;
}

/* cJSON keeps both copies of a repeated key and finds only the first; a
   repeated field is almost always an editing mistake, so it is refused. */
static int check_repeated_fields(const TaskDef *t, Err *err) {
    for (const cJSON *a = t->json->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (strcmp(a->string, b->string) == 0)
                return task_field_error(t, a->string, err, "appears more than once in the object");
    return 0;
}

static int decode_name(TaskFile *tf, TaskDef *t, Err *err) {
    const cJSON *v = field_value(t, "name");
    char got[96];
    if (!v) return task_field_error(t, "name", err, "missing (every task needs a unique name)");
    describe_json(v, got, sizeof got);
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return task_field_error(t, "name", err, "expected a non-empty string, got %s", got);
    if (strlen(v->valuestring) >= sizeof t->name)
        return task_field_error(t, "name", err, "expected at most %zu bytes, got %zu", sizeof t->name - 1,
                                strlen(v->valuestring));
    for (const char *p = v->valuestring; *p; p++)
        if ((unsigned char)*p < 0x20)
            return task_field_error(t, "name", err, "must not contain control characters, got %s", got);
    for (int i = 0; i < tf->n; i++)
        if (&tf->tasks[i] != t && strcmp(tf->tasks[i].name, v->valuestring) == 0)
            return task_field_error(t, "name", err, "duplicate task name %s (first used on line %d)", got,
                                    tf->tasks[i].line);
    strcpy(t->name, v->valuestring);
    return 0;
}

/* "niah, recall, ..." for messages. */
static void known_kinds(char *out, size_t size) {
    const TaskKind *const *kinds = task_kinds();
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; kinds && kinds[i] && used + 1 < size; i++) {
        int n = snprintf(out + used, size - used, "%s%s", i ? ", " : "", kinds[i]->name);
        if (n < 0) break;
        used += (size_t)n < size - used ? (size_t)n : size - used - 1;
    }
}

static const TaskKind *decode_kind(TaskDef *t, Err *err) {
    const cJSON *v = field_value(t, "kind");
    char kinds[512], got[96];
    known_kinds(kinds, sizeof kinds);
    if (!v) {
        task_field_error(t, "kind", err, "missing (expected one of: %s)", kinds);
        return NULL;
    }
    describe_json(v, got, sizeof got);
    const TaskKind *kind = cJSON_IsString(v) ? task_kind_find(v->valuestring) : NULL;
    if (!kind || strlen(kind->name) >= sizeof t->kind) {
        task_field_error(t, "kind", err, "unknown kind %s (expected one of: %s)", got, kinds);
        return NULL;
    }
    strcpy(t->kind, kind->name);
    return kind;
}

static int is_listed(const char *name, const char *const *list) { return list && is_allowed(name, list); }

static int check_unknown_fields(const TaskDef *t, const TaskKind *kind, Err *err) {
    for (const cJSON *item = t->json->child; item; item = item->next) {
        if (is_listed(item->string, common_fields) || is_listed(item->string, kind->fields)) continue;
        char expected[1024] = "";
        size_t used = 0;
        append_list(expected, sizeof expected, &used, common_fields);
        append_list(expected, sizeof expected, &used, kind->fields);
        char where[320];
        snprintf(where, sizeof where, "%s:%d: task \"%s\"", t->file, t->line, t->name);
        return err_set(err, "%s: unknown field \"%s\" for kind \"%s\" (expected one of: %s)", where, item->string,
                       kind->name, expected);
    }
    return 0;
}

static int decode_seed(TaskDef *t, Err *err) {
    const cJSON *v = field_value(t, "seed");
    double x;
    t->seed = DEFAULT_SEED;
    if (!v) return 0;
    if (!json_integer_in(v, 0, MAX_EXACT_INTEGER, &x)) {
        char got[96];
        describe_json(v, got, sizeof got);
        return task_field_error(t, "seed", err, "expected a non-negative integer (at most 2^53 = %.0f), got %s",
                                MAX_EXACT_INTEGER, got);
    }
    t->seed = (uint64_t)x;
    return 0;
}

/* `data` names a file relative to the task file's directory (absolute paths
   are kept); it must be a readable regular file. */
static int decode_data(TaskDef *t, Err *err) {
    char data[sizeof t->data];
    data[0] = 0;
    if (copy_string_field(t, "data", NULL, data, sizeof data, err)) return -1;
    if (!field_value(t, "data")) return 0;
    if (!data[0]) return task_field_error(t, "data", err, "expected a non-empty path, got \"\"");
    const char *slash = strrchr(t->file, '/');
    int dir_len = slash && data[0] != '/' ? (int)(slash - t->file) : -1;
    int n = dir_len >= 0 ? snprintf(t->data, sizeof t->data, "%.*s/%s", dir_len, t->file, data)
                         : snprintf(t->data, sizeof t->data, "%s", data);
    if (n < 0 || (size_t)n >= sizeof t->data)
        return task_field_error(t, "data", err, "the resolved path is longer than %zu bytes", sizeof t->data - 1);
    struct stat st;
    if (stat(t->data, &st) != 0)
        return task_field_error(t, "data", err, "cannot read \"%s\" (the path is relative to the task file): %s",
                                t->data, strerror(errno));
    if (!S_ISREG(st.st_mode)) return task_field_error(t, "data", err, "\"%s\" is not a regular file", t->data);
    if (access(t->data, R_OK) != 0)
        return task_field_error(t, "data", err, "cannot read \"%s\": %s", t->data, strerror(errno));
    return 0;
}

static int decode_common_fields(TaskDef *t, Err *err) {
    int limit = 0, max_new_tokens = 0;
    if (decode_seed(t, err)) return -1;
    if (task_int(t, "limit", 0, 0, INT_MAX, &limit, err)) return -1;
    if (task_int(t, "max_new_tokens", 0, 1, INT_MAX, &max_new_tokens, err)) return -1;
    t->limit = limit;
    t->max_new_tokens = max_new_tokens;
    if (copy_string_field(t, "metric", NULL, t->metric, sizeof t->metric, err)) return -1;
    if (copy_string_field(t, "precision", precision_modes, t->precision, sizeof t->precision, err)) return -1;
    const char *description;
    if (task_string(t, "description", NULL, NULL, &description, err)) return -1;
    return decode_data(t, err);
}

/* Decodes and validates one task line; t->json, file and line are set. */
static int decode_task(TaskFile *tf, TaskDef *t, Err *err) {
    if (check_repeated_fields(t, err)) return -1;
    if (decode_name(tf, t, err)) return -1;
    const TaskKind *kind = decode_kind(t, err);
    if (!kind) return -1;
    if (check_unknown_fields(t, kind, err)) return -1;
    if (decode_common_fields(t, err)) return -1;
    return kind->validate ? kind->validate(t, err) : 0;
}

/* ---------------------------------------------------------------- nested definitions */

int task_nested(const TaskDef *parent, const char *field, const TaskKind *kind, TaskDef *out, Err *err) {
    const cJSON *v = field_value(parent, field);
    if (!cJSON_IsObject(v)) {
        char got[96];
        if (!v) return task_field_error(parent, field, err, "missing (expected a %s task definition)", kind->name);
        describe_json(v, got, sizeof got);
        return task_field_error(parent, field, err, "expected an object (a %s task definition), got %s", kind->name,
                                got);
    }
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%.100s.%.20s", parent->name, field);
    snprintf(out->kind, sizeof out->kind, "%s", kind->name);
    out->file = parent->file;
    out->line = parent->line;
    out->json = (cJSON *)v;
    if (check_repeated_fields(out, err)) return -1;
    /* the outer task names it and sets its precision */
    static const char *const outer_only[] = {"name", "kind", "precision", NULL};
    for (int i = 0; outer_only[i]; i++)
        if (field_value(out, outer_only[i]))
            return task_field_error(out, outer_only[i], err, "not allowed in a nested definition (the outer task "
                                    "\"%s\" sets it)", parent->name);
    if (check_unknown_fields(out, kind, err) || decode_common_fields(out, err)) return -1;
    if (!field_value(out, "seed")) out->seed = parent->seed;
    return kind->validate ? kind->validate(out, err) : 0;
}

/* ---------------------------------------------------------------- the file */

/* The SHA-256 of the file's bytes as stored (compressed, for a .gz file),
   so that run.json's hash agrees with `sha256sum FILE`. */
static int hash_file(const char *path, char out[65], Err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, "%s: cannot open: %s", path, strerror(errno));
    Sha256 h;
    sha256_init(&h);
    unsigned char chunk[1 << 14];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) sha256_update(&h, chunk, n);
    int failed = ferror(f);
    fclose(f);
    if (failed) return err_set(err, "%s: read error", path);
    unsigned char digest[32];
    sha256_final(&h, digest);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", digest[i]);
    return 0;
}

/* Appends a TaskDef owning obj (freed here on failure). */
static TaskDef *append_task(TaskFile *tf, cJSON *obj, int line, Err *err) {
    TaskDef *grown = realloc(tf->tasks, sizeof *grown * (size_t)(tf->n + 1));
    char *file = xstrdup(tf->path);
    if (!grown || !file) {
        if (grown) tf->tasks = grown;
        free(file);
        cJSON_Delete(obj);
        err_set(err, "%s:%d: out of memory", tf->path, line);
        return NULL;
    }
    tf->tasks = grown;
    TaskDef *t = &tf->tasks[tf->n++];
    memset(t, 0, sizeof *t);
    t->file = file;
    t->line = line;
    t->json = obj;
    return t;
}

int taskfile_load(TaskFile *tf, const char *path, Err *err) {
    memset(tf, 0, sizeof *tf);
    if (strlen(path) >= sizeof tf->path) return err_set(err, "%s: path too long", path);
    strcpy(tf->path, path);
    JsonlReader *reader = jsonl_open(path, err);
    if (!reader) return -1;
    int rc, line;
    cJSON *obj;
    while ((rc = jsonl_next(reader, &obj, &line, err)) == 1) {
        TaskDef *t = append_task(tf, obj, line, err);
        if (!t || decode_task(tf, t, err)) {
            rc = -1;
            break;
        }
    }
    jsonl_close(reader);
    if (rc == 0 && tf->n == 0) rc = err_set(err, "%s: no tasks (the file holds only blank or comment lines)", path);
    if (rc == 0) rc = hash_file(path, tf->sha256, err);
    if (rc < 0) {
        taskfile_free(tf);
        return -1;
    }
    return 0;
}

void taskfile_free(TaskFile *tf) {
    for (int i = 0; i < tf->n; i++) {
        free((char *)tf->tasks[i].file);
        cJSON_Delete(tf->tasks[i].json);
    }
    free(tf->tasks);
    tf->tasks = NULL;
    tf->n = 0;
}
