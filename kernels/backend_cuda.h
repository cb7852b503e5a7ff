/* backend_cuda.h: what the CUDA backend offers beyond engine/backend.h —
   device-memory accounting for `hymeval bench`. Built only with
   -Dcuda=enabled. */
#ifndef HYMEVAL_BACKEND_CUDA_H
#define HYMEVAL_BACKEND_CUDA_H

#include <stddef.h>

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    size_t weights;  /* bytes of the uploaded weights */
    size_t current;  /* bytes the backend holds now (weights, scratch, caches) */
    size_t peak;     /* the most it held at once since open or the last reset */
    int pass_tokens; /* rows one forward pass processes at most (longer inputs are chunked) */
} CudaMemStats;

/* Fills *out for a backend opened with backend_cuda_open; -1 for any other. */
int backend_cuda_mem_stats(const Backend *b, CudaMemStats *out);
/* Restarts peak tracking at the current figure. */
void backend_cuda_reset_peak(Backend *b);
/* cudaMemGetInfo of the current device; -1 (and zeros) without one. */
int cuda_mem_info(size_t *free_bytes, size_t *total_bytes);

#ifdef __cplusplus
}
#endif

#endif
