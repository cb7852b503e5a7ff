// rmsnorm.cu: RMSNorm over rows, optionally fused with the residual add that
// precedes it in every layer (h += x; out = norm(h)), saving a pass over h.
#include "hk_common.cuh"

// One block per row. Each thread touches the same elements in both passes,
// so out may alias x (in place) without a race.
template <typename T, bool ADD>
__global__ void rmsnorm_kernel(T *out, int ldo, T *h, int ldh, const T *x, int ldx, const T *w, int n, float eps) {
    __shared__ float scratch[32];
    size_t r = blockIdx.x;
    const T *xr = x + r * ldx;
    T *hr = ADD ? h + r * ldh : nullptr;
    T *outr = out + r * ldo;
    float ss[1] = {0.0f};
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float v;
        if (ADD) {
            v = ldf(hr + i) + ldf(xr + i);
            stf(hr + i, v);
            v = act<T>(v);  // the stored (rounded) value is what gets normalised
        } else {
            v = ldf(xr + i);
        }
        ss[0] += v * v;
    }
    block_sum<1>(ss, scratch);
    float inv = 1.0f / sqrtf(ss[0] / (float)n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float v = ADD ? ldf(hr + i) : ldf(xr + i);
        stf(outr + i, w ? ldf(w + i) * (v * inv) : v * inv);
    }
}

static int norm_threads(int n) { return n <= 64 ? 32 : n <= 1024 ? 128 : 256; }

template <typename T>
static int rmsnorm_launch(void *out, int ldo, const void *x, int ldx, const void *w, int rows, int n, float eps,
                          cudaStream_t stream) {
    ARG_CHECK(out && x && rows >= 0 && n > 0 && ldo >= n && ldx >= n);
    if (rows == 0) return 0;
    rmsnorm_kernel<T, false><<<rows, norm_threads(n), 0, stream>>>((T *)out, ldo, nullptr, 0, (const T *)x, ldx,
                                                                   (const T *)w, n, eps);
    LAUNCH_CHECK();
    return 0;
}

template <typename T>
static int add_rmsnorm_launch(void *h, int ldh, const void *x, int ldx, void *out, int ldo, const void *w, int rows,
                              int n, float eps, cudaStream_t stream) {
    ARG_CHECK(h && x && out && rows >= 0 && n > 0 && ldh >= n && ldx >= n && ldo >= n);
    if (rows == 0) return 0;
    rmsnorm_kernel<T, true><<<rows, norm_threads(n), 0, stream>>>((T *)out, ldo, (T *)h, ldh, (const T *)x, ldx,
                                                                  (const T *)w, n, eps);
    LAUNCH_CHECK();
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
