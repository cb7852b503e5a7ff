/* cuda_info.h: describe the visible CUDA devices (built only with -Dcuda=enabled). */
#ifndef HYMEVAL_CUDA_INFO_H
#define HYMEVAL_CUDA_INFO_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif
/* Writes one line per device into buf; returns the device count, or -1. */
int cuda_describe(char *buf, size_t len);
#ifdef __cplusplus
}
#endif

#endif
