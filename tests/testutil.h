/* testutil.h: small helpers shared by the C tests. */
#ifndef HYMEVAL_TESTUTIL_H
#define HYMEVAL_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* A fresh temporary directory (under $TMPDIR or /tmp); caller frees the string. */
char *tu_tempdir(void);
/* Removes a directory tree (best effort). */
void tu_rmtree(const char *path);
/* Path of a file in the source tree (env HYMEVAL_SOURCE_ROOT); static buffer. */
const char *tu_source_path(const char *relative);
/* Writes text to dir/name; returns the full path (static buffer). */
const char *tu_write_file(const char *dir, const char *name, const char *text);
/* Runs `$HYMEVAL_BIN init-model --config CONFIG --out OUT --seed SEED EXTRA`;
   returns the exit status. */
int tu_init_model(const char *config_path, const char *out_dir, int seed, const char *extra_args);
/* Deterministic uniform floats in [lo, hi) from a seeded generator. */
void tu_fill_uniform(float *x, size_t n, uint64_t *state, float lo, float hi);
/* max|a-b| / max|b| over n values; NaN anywhere gives +inf. */
double tu_max_rel_error(const float *a, const float *b, size_t n);

#endif
