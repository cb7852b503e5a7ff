/* safetensors.h: memory-mapped safetensors checkpoints, single file or
   sharded (model.safetensors.index.json), with the header validated the way
   the reference reader validates it. */
#ifndef HYMEVAL_SAFETENSORS_H
#define HYMEVAL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum { ST_F32, ST_F16, ST_BF16, ST_OTHER } StDtype;

#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    StDtype dtype;
    char dtype_name[16];      /* as written in the header, e.g. "BF16" */
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const void *data;         /* points into the mapping; may be unaligned */
    size_t nbytes;
    const char *file;         /* the shard file this tensor lives in */
} StTensor;

typedef struct StCheckpoint StCheckpoint;

/* Opens dir/model.safetensors.index.json if present (every shard it names),
   else dir/model.safetensors, else a path that is itself a .safetensors file.
   Every header is validated before any tensor is touched: length bounds,
   JSON, dtype names, shape x dtype size == byte span, offsets inside the
   file, sorted with no holes or overlaps, the buffer fully covered, no
   duplicate names, no tensor in two shards. Errors name the file and tensor. */
StCheckpoint *st_open(const char *path, Err *err);
void st_close(StCheckpoint *ck);

size_t st_count(const StCheckpoint *ck);
const StTensor *st_tensor_at(const StCheckpoint *ck, size_t i);
const StTensor *st_find(const StCheckpoint *ck, const char *name); /* NULL if absent */

/* Copies a tensor into FP32 (converting BF16/F16), handling unaligned data.
   dst must hold t->numel floats. Returns -1 for an unsupported dtype. */
int st_to_f32(const StTensor *t, float *dst, Err *err);

/* ---- writing (init-model, tests) ---- */
typedef struct {
    const char *name;
    StDtype dtype;            /* F32, F16 or BF16 */
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const float *values;      /* numel FP32 values, converted on write (RNE) */
} StWriteTensor;

/* Writes one safetensors file (header padded to a multiple of 8, tensors in
   the given order, optional __metadata__ {"format":"pt"}). */
int st_write_file(const char *path, const StWriteTensor *tensors, size_t n, Err *err);

/* Writes tensors into dir as model.safetensors, or, when their total size is
   above shard_bytes (> 0), as model-0000k-of-0000n.safetensors shards plus
   model.safetensors.index.json. */
int st_write_checkpoint(const char *dir, const StWriteTensor *tensors, size_t n,
                        size_t shard_bytes, Err *err);

#endif
