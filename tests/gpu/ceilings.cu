// ceilings.cu: the two device ceilings the kernels are judged against
// (docs/PERFORMANCE.md): a large BF16 GEMM through cuBLASLt (via
// kernels/gemm.cu, FP32 accumulation) in TFLOP/s, the same in FP32
// (CUBLAS_COMPUTE_32F, no TF32), and the device-to-device cudaMemcpy
// bandwidth counting bytes read plus written. Random data (never zeros),
// warm-up first, CUDA events, median of the timed repetitions.
//   usage: ceilings [N]   (GEMM size N^3, default 8192)
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "kernels.h"

#define CK(call)                                                                                     \
    do {                                                                                             \
        cudaError_t e_ = (call);                                                                     \
        if (e_ != cudaSuccess) {                                                                     \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_));   \
            exit(1);                                                                                 \
        }                                                                                            \
    } while (0)
#define HK(call)                                                                                     \
    do {                                                                                             \
        if ((call) != 0) {                                                                           \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, hk_last_error());          \
            exit(1);                                                                                 \
        }                                                                                            \
    } while (0)

// Uniform values in [-1, 1) from a hash of the index.
template <typename T> __global__ void fill_random(T *p, size_t n, uint32_t seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        uint32_t h = (uint32_t)i * 2654435761u ^ seed;
        h ^= h >> 16, h *= 0x7feb352du, h ^= h >> 15, h *= 0x846ca68bu, h ^= h >> 16;
        p[i] = (T)((float)(h >> 8) * (2.0f / 16777216.0f) - 1.0f);
    }
}

static double median(std::vector<float> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

template <typename F> static double time_ms(F f, int warm, int reps) {
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    for (int i = 0; i < warm; i++) f();
    CK(cudaDeviceSynchronize());
    std::vector<float> t;
    for (int i = 0; i < reps; i++) {
        CK(cudaEventRecord(a));
        f();
        CK(cudaEventRecord(b));
        CK(cudaEventSynchronize(b));
        float ms;
        CK(cudaEventElapsedTime(&ms, a, b));
        t.push_back(ms);
    }
    CK(cudaEventDestroy(a));
    CK(cudaEventDestroy(b));
    return median(t);
}

static double gemm_tflops(hk_gemm *g, hk_dtype dt, int n, int reps) {
    size_t es = hk_dtype_size(dt), elems = (size_t)n * n;
    void *x, *w, *y;
    CK(cudaMalloc(&x, elems * es));
    CK(cudaMalloc(&w, elems * es));
    CK(cudaMalloc(&y, elems * es));
    if (dt == HK_BF16) {
        fill_random<<<1024, 256>>>((__nv_bfloat16 *)x, elems, 1u);
        fill_random<<<1024, 256>>>((__nv_bfloat16 *)w, elems, 2u);
    } else {
        fill_random<<<1024, 256>>>((float *)x, elems, 1u);
        fill_random<<<1024, 256>>>((float *)w, elems, 2u);
    }
    CK(cudaGetLastError());
    double ms = time_ms([&] { HK(hk_gemm_run(g, dt, y, n, x, n, w, n, nullptr, n, n, n, 0)); }, 3, reps);
    CK(cudaFree(x));
    CK(cudaFree(w));
    CK(cudaFree(y));
    return 2.0 * n * (double)n * n / (ms * 1e-3) / 1e12;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 8192;
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        printf("no CUDA device: skipping\n");
        return 77;
    }
    cudaDeviceProp p;
    CK(cudaGetDeviceProperties(&p, 0));
    int drv = 0, rt = 0;
    CK(cudaDriverGetVersion(&drv));
    CK(cudaRuntimeGetVersion(&rt));
    time_t now = time(nullptr);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    printf("date: %s\ndevice: %s, %d SMs, %.1f GiB, driver %d, runtime %d\n", date, p.name, p.multiProcessorCount,
           p.totalGlobalMem / 1073741824.0, drv, rt);

    hk_gemm *g;
    HK(hk_gemm_create(&g, 0));
    double bf16 = gemm_tflops(g, HK_BF16, n, 20);
    printf("bf16 GEMM %dx%dx%d (cuBLASLt, FP32 accumulate): %.1f TFLOP/s (median of 20)\n", n, n, n, bf16);
    double f32 = gemm_tflops(g, HK_F32, n, 5);
    printf("fp32 GEMM %dx%dx%d (CUBLAS_COMPUTE_32F, no TF32): %.1f TFLOP/s (median of 5)\n", n, n, n, f32);
    hk_gemm_destroy(g);

    size_t bytes = (size_t)2 << 30;  // 2 GiB each way: far past the L2
    void *a, *b;
    CK(cudaMalloc(&a, bytes));
    CK(cudaMalloc(&b, bytes));
    fill_random<<<1024, 256>>>((float *)a, bytes / 4, 3u);
    CK(cudaGetLastError());
    double ms = time_ms([&] { CK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, 0)); }, 3, 20);
    printf("device-to-device cudaMemcpy of %.1f GiB: %.0f GB/s counting read + write (median of 20, %.3f ms)\n",
           bytes / 1073741824.0, 2.0 * bytes / (ms * 1e-3) / 1e9, ms);
    CK(cudaFree(a));
    CK(cudaFree(b));
    return 0;
}
