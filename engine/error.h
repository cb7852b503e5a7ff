/* error.h: one error message travels from where it happened to the user.
   Functions that can fail take an Err* and return -1 (or NULL) after
   err_set(); the message names the file / tensor / key and what was expected. */
#ifndef HYMEVAL_ERROR_H
#define HYMEVAL_ERROR_H

#include <stddef.h>

typedef struct {
    char msg[2048];
} Err;

/* Formats the message into err (if not NULL) and returns -1. */
int err_set(Err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepends "prefix: " to an existing message (adds context on the way up). */
int err_prefix(Err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
