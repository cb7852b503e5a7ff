#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(Err *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int err_prefix(Err *err, const char *fmt, ...) {
    if (err) {
        char joined[sizeof err->msg];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(joined, sizeof joined, fmt, ap);
        va_end(ap);
        size_t used = n < 0 ? 0 : (size_t)n < sizeof joined - 1 ? (size_t)n : sizeof joined - 1;
        /* "prefix: old message", cut to fit */
        size_t room = sizeof joined - 1 - used;
        if (room >= 2) {
            memcpy(joined + used, ": ", 2);
            used += 2;
            room -= 2;
            size_t old_len = strnlen(err->msg, sizeof err->msg);
            if (old_len > room) old_len = room;
            memcpy(joined + used, err->msg, old_len);
            used += old_len;
        }
        joined[used] = 0;
        memcpy(err->msg, joined, used + 1);
    }
    return -1;
}
