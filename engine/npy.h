/* npy.h: write a float32 array as a NumPy .npy file (for the reference test). */
#ifndef HYMEVAL_NPY_H
#define HYMEVAL_NPY_H

#include <stdint.h>

#include "error.h"

int npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape, Err *err);

#endif
