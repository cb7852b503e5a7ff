// rmsnorm.cu: RMSNorm over rows, optionally fused with the residual add that
// precedes it in every layer (h += x; out = norm(h)), saving a pass over h;
// and three norms of column segments of a row in one launch (dt | B | C).
#include <algorithm>

#include "hk_common.cuh"

// One block per row, hk_norm_threads(n) threads (the sum's order depends on
// it: see hk_common.cuh). Thread t owns columns t, t + nt, ... in both
// passes, so out may alias x (in place) without a race.
//
// K > 0 (rows of at most K * nt columns, every prefill row of a real model):
// the thread's K elements are loaded together into registers, summed in
// column order, and written from the registers. The loop form (K = 0) waits
// on each load in turn (h, x and out may alias, so the compiler cannot hoist
// them) and reads the row twice; this one keeps K loads in flight and reads
// it once. Both give the same bits: the same elements, the same FMA order.
template <typename T, bool ADD, int K>
__global__ void rmsnorm_kernel(T *out, int ldo, T *h, int ldh, const T *x, int ldx, const T *w, int n, float eps) {
    pdl_entry();
    __shared__ float scratch[32];
    size_t r = blockIdx.x;
    const T *xr = x + r * ldx;
    T *hr = ADD ? h + r * ldh : nullptr;
    T *outr = out + r * ldo;
    const int nt = blockDim.x;
    float ss[1] = {0.0f};
    if constexpr (K > 0) {
        float v[K];
#pragma unroll
        for (int k = 0; k < K; k++) {
            const int i = threadIdx.x + k * nt;
            v[k] = i < n ? (ADD ? ldf(hr + i) + ldf(xr + i) : ldf(xr + i)) : 0.0f;
        }
#pragma unroll
        for (int k = 0; k < K; k++) {
            const int i = threadIdx.x + k * nt;
            if (i < n) {
                if (ADD) {
                    stf(hr + i, v[k]);
                    v[k] = act<T>(v[k]);  // the stored (rounded) value is what gets normalised
                }
                ss[0] = fmaf(v[k], v[k], ss[0]);
            }
        }
        block_sum<1>(ss, scratch);
        const float inv = 1.0f / sqrtf(ss[0] / (float)n + eps);
#pragma unroll
        for (int k = 0; k < K; k++) {
            const int i = threadIdx.x + k * nt;
            if (i < n) stf(outr + i, w ? ldf(w + i) * (v[k] * inv) : v[k] * inv);
        }
    } else {  // the loop form
        for (int i = threadIdx.x; i < n; i += nt) {
            float v;
            if (ADD) {
                v = ldf(hr + i) + ldf(xr + i);
                stf(hr + i, v);
                v = act<T>(v);
            } else {
                v = ldf(xr + i);
            }
            ss[0] = fmaf(v, v, ss[0]);  // explicit: the fused kernels repeat this sum bit for bit
        }
        block_sum<1>(ss, scratch);
        float inv = 1.0f / sqrtf(ss[0] / (float)n + eps);
        for (int i = threadIdx.x; i < n; i += nt) {
            float v = ADD ? ldf(hr + i) : ldf(xr + i);
            stf(outr + i, w ? ldf(w + i) * (v * inv) : v * inv);
        }
    }
}

// The register-held form for rows of up to 8 (16) elements a thread, else the loop.
template <typename T, bool ADD>
static cudaError_t rmsnorm_rows(cudaStream_t stream, int rows, T *out, int ldo, T *h, int ldh, const T *x, int ldx,
                                const T *w, int n, float eps) {
    const int nt = hk_norm_threads(n);
    void (*kern)(T *, int, T *, int, const T *, int, const T *, int, float) =
        n <= 8 * nt ? rmsnorm_kernel<T, ADD, 8> : n <= 16 * nt ? rmsnorm_kernel<T, ADD, 16> : rmsnorm_kernel<T, ADD, 0>;
    return hk_launch(kern, rows, nt, 0, stream, out, ldo, h, ldh, x, ldx, w, n, eps);
}

// Three column segments of each row, normalised each with its own weight
// (x_proj's dt | B | C columns), one block per row. Segment s is summed and
// written by the first hk_norm_threads(n[s]) threads, each element by the
// same thread in both passes (in place is safe), so each segment gets
// exactly rmsnorm_kernel's numbers.
struct Seg3 {
    const void *w[3];
    int n[3];
};

template <typename T> __global__ void rmsnorm3_kernel(T *out, int ldo, const T *x, int ldx, Seg3 seg, float eps) {
    pdl_entry();
    __shared__ float scratch[3 * 32];
    size_t r = blockIdx.x;
    const T *xr = x + r * ldx;
    T *outr = out + r * ldo;
    float ss[3] = {0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int s = 0, off = 0; s < 3; off += seg.n[s], s++) {
        const int nt = hk_norm_threads(seg.n[s]);
        if (threadIdx.x < nt)
            for (int i = threadIdx.x; i < seg.n[s]; i += nt) {
                float v = ldf(xr + off + i);
                ss[s] = fmaf(v, v, ss[s]);
            }
    }
    block_sum<3>(ss, scratch);
#pragma unroll
    for (int s = 0, off = 0; s < 3; off += seg.n[s], s++) {
        const int n = seg.n[s], nt = hk_norm_threads(n);
        const T *w = (const T *)seg.w[s];
        float inv = 1.0f / sqrtf(ss[s] / (float)n + eps);
        if (threadIdx.x < nt)
            for (int i = threadIdx.x; i < n; i += nt) {
                float v = ldf(xr + off + i);
                stf(outr + off + i, w ? ldf(w + i) * (v * inv) : v * inv);
            }
    }
}

template <typename T>
static int rmsnorm_launch(void *out, int ldo, const void *x, int ldx, const void *w, int rows, int n, float eps,
                          cudaStream_t stream) {
    ARG_CHECK(out && x && rows >= 0 && n > 0 && ldo >= n && ldx >= n);
    if (rows == 0) return 0;
    CUDA_CHECK((rmsnorm_rows<T, false>(stream, rows, (T *)out, ldo, nullptr, 0, (const T *)x, ldx, (const T *)w, n, eps)));
    return 0;
}

template <typename T>
static int add_rmsnorm_launch(void *h, int ldh, const void *x, int ldx, void *out, int ldo, const void *w, int rows,
                              int n, float eps, cudaStream_t stream) {
    ARG_CHECK(h && x && out && rows >= 0 && n > 0 && ldh >= n && ldx >= n && ldo >= n);
    if (rows == 0) return 0;
    CUDA_CHECK((rmsnorm_rows<T, true>(stream, rows, (T *)out, ldo, (T *)h, ldh, (const T *)x, ldx, (const T *)w, n, eps)));
    return 0;
}

template <typename T>
static int rmsnorm3_launch(void *out, int ldo, const void *x, int ldx, const void *w0, int n0, const void *w1, int n1,
                           const void *w2, int n2, int rows, float eps, cudaStream_t stream) {
    ARG_CHECK(out && x && rows >= 0 && n0 > 0 && n1 > 0 && n2 > 0);
    const int n = n0 + n1 + n2;
    ARG_CHECK(ldo >= n && ldx >= n);
    if (rows == 0) return 0;
    const Seg3 seg = {{w0, w1, w2}, {n0, n1, n2}};
    const int threads = std::max(hk_norm_threads(n0), std::max(hk_norm_threads(n1), hk_norm_threads(n2)));
    CUDA_CHECK(hk_launch(rmsnorm3_kernel<T>, rows, threads, 0, stream, (T *)out, ldo, (const T *)x, ldx, seg, eps));
    return 0;
}

extern "C" int hk_rmsnorm(hk_dtype dtype, void *out, int ldo, const void *x, int ldx, const void *w, int rows, int n,
                          float eps, cudaStream_t stream) {
    HK_DISPATCH(dtype, rmsnorm_launch<float>(out, ldo, x, ldx, w, rows, n, eps, stream),
                rmsnorm_launch<bf16>(out, ldo, x, ldx, w, rows, n, eps, stream));
}

extern "C" int hk_add_rmsnorm(hk_dtype dtype, void *h, int ldh, const void *x, int ldx, void *out, int ldo,
                              const void *w, int rows, int n, float eps, cudaStream_t stream) {
    HK_DISPATCH(dtype, add_rmsnorm_launch<float>(h, ldh, x, ldx, out, ldo, w, rows, n, eps, stream),
                add_rmsnorm_launch<bf16>(h, ldh, x, ldx, out, ldo, w, rows, n, eps, stream));
}

extern "C" int hk_rmsnorm3(hk_dtype dtype, void *out, int ldo, const void *x, int ldx, const void *w0, int n0,
                           const void *w1, int n1, const void *w2, int n2, int rows, float eps, cudaStream_t stream) {
    HK_DISPATCH(dtype, rmsnorm3_launch<float>(out, ldo, x, ldx, w0, n0, w1, n1, w2, n2, rows, eps, stream),
                rmsnorm3_launch<bf16>(out, ldo, x, ldx, w0, n0, w1, n1, w2, n2, rows, eps, stream));
}
