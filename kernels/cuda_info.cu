// cuda_info.cu: what CUDA device this process sees; the first piece of the
// CUDA backend (issue 3 builds the kernels beside it).
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <stdio.h>

#include "cuda_info.h"

extern "C" int cuda_describe(char *buf, size_t len) {
    int count = 0;
    cudaError_t rc = cudaGetDeviceCount(&count);
    if (rc != cudaSuccess || count == 0) {
        snprintf(buf, len, "no CUDA device (%s)", rc != cudaSuccess ? cudaGetErrorString(rc) : "count 0");
        return -1;
    }
    size_t used = 0;
    for (int d = 0; d < count && used < len; d++) {
        cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, d) != cudaSuccess) continue;
        size_t free_b = 0, total_b = 0;
        cudaSetDevice(d);
        cudaMemGetInfo(&free_b, &total_b);
        int n = snprintf(buf + used, len - used, "%scuda:%d %s, sm_%d%d, %d SMs, %.1f GiB (%.1f GiB free)", d ? "\n" : "",
                         d, p.name, p.major, p.minor, p.multiProcessorCount, total_b / 1073741824.0,
                         free_b / 1073741824.0);
        if (n > 0) used += (size_t)n;
    }
    cublasHandle_t handle;
    if (cublasCreate(&handle) == CUBLAS_STATUS_SUCCESS) {
        int version = 0;
        cublasGetVersion(handle, &version);
        if (used < len) snprintf(buf + used, len - used, "\ncuBLAS %d", version);
        cublasDestroy(handle);
    }
    return count;
}
