#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *tu_tempdir(void) {
    const char *base = getenv("TMPDIR");
    char templ[4096];
    snprintf(templ, sizeof templ, "%s/hymeval-test-XXXXXX", base && *base ? base : "/tmp");
    char *dir = mkdtemp(templ);
    return dir ? strdup(dir) : NULL;
}

void tu_rmtree(const char *path) {
    char cmd[4200];
    if (!path || strlen(path) < 6) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", path);
}

const char *tu_source_path(const char *relative) {
    static char buf[4096];
    const char *root = getenv("HYMEVAL_SOURCE_ROOT");
    snprintf(buf, sizeof buf, "%s/%s", root && *root ? root : ".", relative);
    return buf;
}

const char *tu_write_file(const char *dir, const char *name, const char *text) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return NULL;
    fputs(text, f);
    fclose(f);
    return path;
}

int tu_init_model(const char *config_path, const char *out_dir, int seed, const char *extra_args) {
    const char *bin = getenv("HYMEVAL_BIN");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' init-model --config '%s' --out '%s' --seed %d %s", bin ? bin : "hymeval",
             config_path, out_dir, seed, extra_args ? extra_args : "");
    return system(cmd);
}

void tu_fill_uniform(float *x, size_t n, uint64_t *state, float lo, float hi) {
    for (size_t i = 0; i < n; i++) {
        uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        double u = (double)(z >> 11) / 9007199254740992.0;
        x[i] = (float)(lo + (hi - lo) * u);
    }
}

double tu_max_rel_error(const float *a, const float *b, size_t n) {
    double max_diff = 0, max_ref = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) return INFINITY;
        double d = fabs((double)a[i] - b[i]);
        if (d > max_diff) max_diff = d;
        if (fabs(b[i]) > max_ref) max_ref = fabs(b[i]);
    }
    if (max_ref == 0) return max_diff == 0 ? 0 : INFINITY;
    return max_diff / max_ref;
}
