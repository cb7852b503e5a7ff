// attn_rows.cu: whole attention rows for the forward pass's observer
// (engine/observe.h): for each query row and head of a pass, the pre-softmax
// scores q.k/sqrt(dk) over its visible keys and their softmax, in the key
// order the CPU engine reports (the meta keys, then the text keys in
// position order). This is measurement (rope_drift) work, not the forward:
// plain FP32 arithmetic, one block per (row, head), the rows written out.
#include <float.h>

#include "hk_common.cuh"

namespace {

constexpr int kThreads = 128;

__device__ __forceinline__ int slot_of(int p, int M, int window) {
    return (p < M || window <= 0) ? p : M + (p - M) % (window + 1);
}

// grid (nrows, nh), kThreads. Row r0 + blockIdx.x of the pass; its sequence
// b: cu[b] <= row < cu[b + 1] (cu NULL: decode, row b is sequence b). Keys
// before cache_end come from k_cache[b], the others from the pass's rows kv
// (row cu[b] + position - pos0[b]); cache_end = pos0[b] in prefill, the
// row's position + 1 in decode (its key is already stored).
template <typename T>
__global__ void attn_rows_kernel(float *scores, float *probs, int cap, const T *q, int ldq, const T *kv, int ldkv,
                                 const T *const *k_cache, int ldkc, const int *cu, const int *pos0, const int *rowpos,
                                 int B, int r0, int nh, int group, int dk, int M, int window, float scale) {
    const int r = r0 + blockIdx.x, h = blockIdx.y;
    int b = 0;
    if (cu) {
        while (b + 1 < B && cu[b + 1] <= r) b++;
    } else {
        b = r;
    }
    const int p = rowpos[r], kvh = h / group;
    const int cache_end = cu ? pos0[b] : p + 1;
    const int meta_end = min(M, p + 1), band_start = window > 0 ? max(M, p - window) : M;
    const int nvis = meta_end + max(0, p + 1 - band_start);
    const T *qr = q + (size_t)r * ldq + (size_t)h * dk;
    float *srow = scores + ((size_t)blockIdx.x * nh + h) * cap, *prow = probs + ((size_t)blockIdx.x * nh + h) * cap;
    float mx = -FLT_MAX;
    for (int i = threadIdx.x; i < nvis; i += kThreads) {
        const int kp = i < meta_end ? i : band_start + (i - meta_end);
        const T *kr = kp < cache_end ? k_cache[b] + (size_t)slot_of(kp, M, window) * ldkc + (size_t)kvh * dk
                                     : kv + (size_t)(cu[b] + kp - pos0[b]) * ldkv + (size_t)kvh * dk;
        float acc = 0.0f;
        for (int d = 0; d < dk; d++) acc = fmaf(ldf(qr + d), ldf(kr + d), acc);
        const float s = acc * scale;
        srow[i] = s;
        mx = fmaxf(mx, s);
    }
    __shared__ float scratch[32];
    mx = warp_max(mx);
    if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = mx;
    __syncthreads();
    mx = -FLT_MAX;
    for (int w = 0; w < kThreads / 32; w++) mx = fmaxf(mx, scratch[w]);
    float total = 0.0f;
    for (int i = threadIdx.x; i < nvis; i += kThreads) {
        const float e = expf(srow[i] - mx);
        prow[i] = e;
        total += e;
    }
    float t[1] = {total};
    block_sum<1>(t, scratch);
    const float inv = 1.0f / t[0];
    for (int i = threadIdx.x; i < nvis; i += kThreads) prow[i] *= inv;
}

template <typename T>
int launch(float *scores, float *probs, int cap, const void *q, int ldq, const void *kv, int ldkv,
           const void *const *k_cache, int ldkc, const int *cu, const int *pos0, const int *rowpos, int B, int r0,
           int nrows, int nh, int nkv, int dk, int M, int window, float scale, cudaStream_t stream) {
    ARG_CHECK(scores && probs && q && k_cache && rowpos && (!cu || (kv && pos0)) && B > 0 && r0 >= 0 && nrows >= 0);
    ARG_CHECK(nh > 0 && nkv > 0 && nh % nkv == 0 && dk > 0 && M >= 0 && cap > 0 && nh <= 65535);
    if (nrows == 0) return 0;
    attn_rows_kernel<T><<<dim3(nrows, nh), kThreads, 0, stream>>>(
        scores, probs, cap, (const T *)q, ldq, (const T *)kv, ldkv, (const T *const *)k_cache, ldkc, cu, pos0, rowpos,
        B, r0, nh, nh / nkv, dk, M, window, scale);
    LAUNCH_CHECK();
    return 0;
}

}  // namespace

extern "C" int hk_attn_rows(hk_dtype dtype, float *scores, float *probs, int cap, const void *q, int ldq,
                            const void *kv, int ldkv, const void *const *k_cache, int ldkc, const int *cu,
                            const int *pos0, const int *rowpos, int B, int r0, int nrows, int nh, int nkv, int dk,
                            int M, int window, float scale, cudaStream_t stream) {
    HK_DISPATCH(dtype,
                launch<float>(scores, probs, cap, q, ldq, kv, ldkv, k_cache, ldkc, cu, pos0, rowpos, B, r0, nrows, nh,
                              nkv, dk, M, window, scale, stream),
                launch<bf16>(scores, probs, cap, q, ldq, kv, ldkv, k_cache, ldkc, cu, pos0, rowpos, B, r0, nrows, nh,
                             nkv, dk, M, window, scale, stream));
}
