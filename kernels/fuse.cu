// fuse.cu: the fusion of the two branches, f = (RMSNorm(a) + RMSNorm(s)) / 2,
// in one pass: both sums of squares come out of a single block reduction.
#include "hk_common.cuh"

template <typename T>
__global__ void fuse_kernel(T *out, int ldo, const T *a, int lda, const T *wa, const T *s, int lds, const T *ws,
                            int n, float eps) {
    pdl_entry();
    __shared__ float scratch[64];
    size_t r = blockIdx.x;
    const T *ar = a ? a + r * lda : nullptr;
    const T *sr = s ? s + r * lds : nullptr;
    float ss[2] = {0.0f, 0.0f};
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        if (ar) { float v = ldf(ar + i); ss[0] = fmaf(v, v, ss[0]); }
        if (sr) { float v = ldf(sr + i); ss[1] = fmaf(v, v, ss[1]); }
    }
    block_sum<2>(ss, scratch);
    float ia = 1.0f / sqrtf(ss[0] / (float)n + eps), is = 1.0f / sqrtf(ss[1] / (float)n + eps);
    T *outr = out + r * ldo;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float na = 0.0f, ns = 0.0f;
        if (ar) na = wa ? ldf(wa + i) * (ldf(ar + i) * ia) : ldf(ar + i) * ia;
        if (sr) ns = ws ? ldf(ws + i) * (ldf(sr + i) * is) : ldf(sr + i) * is;
        float f;
        if (ar && sr) f = (act<T>(na) + act<T>(ns)) / 2.0f;  // each normed branch is rounded first
        else f = ar ? na : ns;
        stf(outr + i, f);
    }
}

template <typename T>
static int fuse_launch(void *out, int ldo, const void *a, int lda, const void *wa, const void *s, int lds,
                       const void *ws, int rows, int n, float eps, cudaStream_t stream) {
    ARG_CHECK(out && (a || s) && rows >= 0 && n > 0 && ldo >= n && (!a || lda >= n) && (!s || lds >= n));
    if (rows == 0) return 0;
    const int threads = hk_norm_threads(n);  // (hk_gemv_fuse_avg repeats these sums in its larger block)
    CUDA_CHECK(hk_launch(fuse_kernel<T>, rows, threads, 0, stream, (T *)out, ldo, (const T *)a, lda, (const T *)wa,
                         (const T *)s, lds, (const T *)ws, n, eps));
    return 0;
}

extern "C" int hk_fuse_norm_avg(hk_dtype dtype, void *out, int ldo, const void *a, int lda, const void *wa,
                                const void *s, int lds, const void *ws, int rows, int n, float eps,
                                cudaStream_t stream) {
    HK_DISPATCH(dtype, fuse_launch<float>(out, ldo, a, lda, wa, s, lds, ws, rows, n, eps, stream),
                fuse_launch<bf16>(out, ldo, a, lda, wa, s, lds, ws, rows, n, eps, stream));
}
