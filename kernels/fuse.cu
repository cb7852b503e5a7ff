// fuse.cu: the fusion of the two branches, f = (RMSNorm(a) + RMSNorm(s)) / 2,
// in one pass: both sums of squares come out of a single block reduction.
#include "hk_common.cuh"

// Thread t owns columns t, t + nt, ... (nt = blockDim.x). K > 0: rows of at
// most K * nt columns, both branches' elements held in registers from one
// load each (see rmsnorm_kernel: the same bits as the loop form, K = 0).
template <typename T, int K>
__global__ void fuse_kernel(T *out, int ldo, const T *a, int lda, const T *wa, const T *s, int lds, const T *ws,
                            int n, float eps) {
    pdl_entry();
    __shared__ float scratch[64];
    size_t r = blockIdx.x;
    const T *ar = a ? a + r * lda : nullptr;
    const T *sr = s ? s + r * lds : nullptr;
    const int nt = blockDim.x;
    T *outr = out + r * ldo;
    float ss[2] = {0.0f, 0.0f};
    // the rounded average of the two normed branches (each rounded first), or the one branch
    auto fused = [&](int i, float va, float vs, float ia, float is) {
        float na = 0.0f, ns = 0.0f;
        if (ar) na = wa ? ldf(wa + i) * (va * ia) : va * ia;
        if (sr) ns = ws ? ldf(ws + i) * (vs * is) : vs * is;
        return ar && sr ? (act<T>(na) + act<T>(ns)) / 2.0f : ar ? na : ns;
    };
    if constexpr (K > 0) {
        float va[K], vs[K];
#pragma unroll
        for (int k = 0; k < K; k++) {
            const int i = threadIdx.x + k * nt;
            va[k] = ar && i < n ? ldf(ar + i) : 0.0f;
            vs[k] = sr && i < n ? ldf(sr + i) : 0.0f;
        }
#pragma unroll
        for (int k = 0; k < K; k++)
            if (threadIdx.x + k * nt < n) {
                if (ar) ss[0] = fmaf(va[k], va[k], ss[0]);
                if (sr) ss[1] = fmaf(vs[k], vs[k], ss[1]);
            }
        block_sum<2>(ss, scratch);
        const float ia = 1.0f / sqrtf(ss[0] / (float)n + eps), is = 1.0f / sqrtf(ss[1] / (float)n + eps);
#pragma unroll
        for (int k = 0; k < K; k++) {
            const int i = threadIdx.x + k * nt;
            if (i < n) stf(outr + i, fused(i, va[k], vs[k], ia, is));
        }
    } else {  // the loop form
        for (int i = threadIdx.x; i < n; i += nt) {
            if (ar) { float v = ldf(ar + i); ss[0] = fmaf(v, v, ss[0]); }
            if (sr) { float v = ldf(sr + i); ss[1] = fmaf(v, v, ss[1]); }
        }
        block_sum<2>(ss, scratch);
        const float ia = 1.0f / sqrtf(ss[0] / (float)n + eps), is = 1.0f / sqrtf(ss[1] / (float)n + eps);
        for (int i = threadIdx.x; i < n; i += nt)
            stf(outr + i, fused(i, ar ? ldf(ar + i) : 0.0f, sr ? ldf(sr + i) : 0.0f, ia, is));
    }
}

template <typename T>
static int fuse_launch(void *out, int ldo, const void *a, int lda, const void *wa, const void *s, int lds,
                       const void *ws, int rows, int n, float eps, cudaStream_t stream) {
    ARG_CHECK(out && (a || s) && rows >= 0 && n > 0 && ldo >= n && (!a || lda >= n) && (!s || lds >= n));
    if (rows == 0) return 0;
    const int threads = hk_norm_threads(n);  // (hk_gemv_fuse_avg repeats these sums in its larger block)
    // rows of up to 8 (16) elements a thread held in registers, else the loop form
    void (*kern)(T *, int, const T *, int, const T *, const T *, int, const T *, int, float) =
        n <= 8 * threads ? fuse_kernel<T, 8> : n <= 16 * threads ? fuse_kernel<T, 16> : fuse_kernel<T, 0>;
    CUDA_CHECK(hk_launch(kern, rows, threads, 0, stream, (T *)out, ldo, (const T *)a, lda, (const T *)wa, (const T *)s,
                         lds, (const T *)ws, n, eps));
    return 0;
}

extern "C" int hk_fuse_norm_avg(hk_dtype dtype, void *out, int ldo, const void *a, int lda, const void *wa,
                                const void *s, int lds, const void *ws, int rows, int n, float eps,
                                cudaStream_t stream) {
    HK_DISPATCH(dtype, fuse_launch<float>(out, ldo, a, lda, wa, s, lds, ws, rows, n, eps, stream),
                fuse_launch<bf16>(out, ldo, a, lda, wa, s, lds, ws, rows, n, eps, stream));
}
