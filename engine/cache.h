/* cache.h: everything one sequence needs to continue decoding: K/V of every
   layer that owns its KV (meta slots + all positions for global layers, meta
   slots + a ring of W+1 positions for sliding-window layers), and each SSM
   layer's conv state (last K-1 inputs) and scan state (FP32). */
#ifndef HYMEVAL_CACHE_H
#define HYMEVAL_CACHE_H

#include <stddef.h>

#include "config.h"
#include "error.h"

typedef struct {
    int n_pos;          /* positions held so far, meta tokens included (= next position) */
    int n_slots_alloc;  /* slots allocated for global layers */
    float **k;          /* [L] each [slots][nkv*dk] or NULL (layer does not own KV) */
    float **v;          /* [L] each [slots][nkv*dv] or NULL */
    int *slots;         /* [L] slot count of k[l]/v[l] */
    float **conv;       /* [L] each [K-1][I] or NULL (no SSM) */
    float **ssm;        /* [L] each [I][N] or NULL */
    int n_layers;
} SeqCache;

int cache_init(SeqCache *c, const HymbaConfig *cfg, int initial_positions, Err *err);
void cache_free(SeqCache *c);
/* Makes dst an independent copy of src (dst uninitialised or freed). */
int cache_clone(SeqCache *dst, const SeqCache *src, const HymbaConfig *cfg, Err *err);
/* Grows global-layer K/V to hold at least `positions` positions. */
int cache_reserve(SeqCache *c, const HymbaConfig *cfg, int positions, Err *err);
/* Slot of absolute position p in layer l. */
int cache_slot(const HymbaConfig *cfg, int layer, int p);
/* Bytes the cache holds now (its own allocations, FP32 elements). */
size_t cache_bytes_allocated(const SeqCache *c, const HymbaConfig *cfg);
/* Bytes the cache needs for its current contents: the formula's count
   (config_cache_bytes) at FP32 element sizes, for comparison with the above. */
size_t cache_bytes_used(const SeqCache *c, const HymbaConfig *cfg);

#endif
