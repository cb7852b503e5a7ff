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
/* Device time per part of the forward pass, for `hymeval bench --profile`:
   CUDA events recorded between the parts of every layer, the interval after
   each event charged to the part that starts there, summed over the passes
   since profiling was switched on, prefill passes and decode steps apart.
   While profiling, decode steps run without
   their graph (events are read back after each pass), so the figures
   describe the parts, not the graphed step's total. */
enum {
    PROF_EMBED,   /* embeddings, meta rows */
    PROF_PROJ,    /* in_proj, x_proj, dt_proj, out_proj GEMMs */
    PROF_ATTN,    /* RoPE, attention, K/V stores */
    PROF_SSM,     /* conv1d, dt/B/C norms, selective scan */
    PROF_MLP,     /* MLP GEMMs and activation */
    PROF_NORM,    /* RMSNorms, residual adds, the fused branch norm */
    PROF_LM_HEAD, /* LM head GEMM, logits conversion and copy to the host */
    PROF_N
};
typedef struct {
    double prefill_ms[PROF_N], decode_ms[PROF_N]; /* prefill passes; decode steps */
    long prefill_passes, decode_passes;
} CudaProfile;
extern const char *const cuda_profile_part[PROF_N];
/* Switches profiling on (counters reset) or off; -1 for a non-CUDA backend. */
int backend_cuda_profile_enable(Backend *b, int on);
/* The sums so far; -1 for a non-CUDA backend. */
int backend_cuda_profile_read(const Backend *b, CudaProfile *out);
/* The most sequences a decode pass may have to run with the norms, SwiGLU
   and residual adds fused into the projection GEMVs (BF16 only; 0: never,
   e.g. FP32 or HYMEVAL_FUSE=0); -1 for a non-CUDA backend. */
int backend_cuda_fuse_rows(const Backend *b);
/* cudaMemGetInfo of the current device; -1 (and zeros) without one. */
int cuda_mem_info(size_t *free_bytes, size_t *total_bytes);

#ifdef __cplusplus
}
#endif

#endif
