// argmax.cu: the greedy choice of each logits row on the device, so greedy
// decoding moves 8 bytes per sequence to the host instead of the whole row.
#include <limits.h>

#include "hk_common.cuh"

namespace {

constexpr int kThreads = 256;

// Is (v, i) a better choice than (bv, bi)? The larger value; among equal
// values the first index (as a host argmax that keeps the first maximum).
// NaN never wins.
__device__ __forceinline__ bool better(float v, int i, float bv, int bi) { return v > bv || (v == bv && i < bi); }

// grid (n), kThreads: row r -> out[2r] = index (as a float), out[2r+1] = value.
template <typename T> __global__ void argmax_kernel(float *out, const T *in, int ld, int width) {
    pdl_entry();
    const T *row = in + (size_t)blockIdx.x * ld;
    float bv = -INFINITY;
    int bi = INT_MAX;
    for (int i = threadIdx.x; i < width; i += kThreads) {
        float v = ldf(row + i);
        if (better(v, i, bv, bi)) bv = v, bi = i;
    }
    for (int o = 16; o > 0; o >>= 1) {
        float v = __shfl_xor_sync(0xffffffffu, bv, o);
        int i = __shfl_xor_sync(0xffffffffu, bi, o);
        if (better(v, i, bv, bi)) bv = v, bi = i;
    }
    __shared__ float sv[kThreads / 32];
    __shared__ int si[kThreads / 32];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) sv[warp] = bv, si[warp] = bi;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < kThreads / 32; w++)
            if (better(sv[w], si[w], bv, bi)) bv = sv[w], bi = si[w];
        if (bi == INT_MAX) bi = 0, bv = ldf(row);  // nothing compared greater than -inf (all NaN)
        out[2 * blockIdx.x] = (float)bi;
        out[2 * blockIdx.x + 1] = bv;
    }
}

template <typename T> int launch(float *out, const void *in, int ld, int n, int width, cudaStream_t stream) {
    ARG_CHECK(out && in && n >= 0 && width > 0 && ld >= width && width < (1 << 24));
    if (n == 0) return 0;
    CUDA_CHECK(hk_launch(argmax_kernel<T>, n, kThreads, 0, stream, out, (const T *)in, ld, width));
    return 0;
}

}  // namespace

extern "C" int hk_argmax_rows(hk_dtype dtype, float *out, const void *in, int ld, int n, int width,
                              cudaStream_t stream) {
    HK_DISPATCH(dtype, launch<float>(out, in, ld, n, width, stream), launch<bf16>(out, in, ld, n, width, stream));
}
