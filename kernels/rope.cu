// rope.cu: optional per-head q/k RMSNorm, then RoPE (half-split pairing) in
// the four precision modes of docs/ARCHITECTURE.md §7, reproducing the CPU
// engine's rope_tables()/qk_prepare() operation by operation. The angle's
// cos/sin go through double precision (as the CPU does) and the products
// and sums use __fmul_rn/__fadd_rn so that the compiler cannot contract them
// into FMAs the CPU code does not do. This file must not be built with
// --use_fast_math.
#include <math.h>

#include "hk_common.cuh"

extern "C" void hk_rope_inv_freq(float *inv_freq, int d, double base) {
    // base ** (2i/d) in FP32, then 1 / that in FP32, as the engine's compute_inv_freq()
    float b = (float)base;
    for (int i = 0; i < d / 2; i++) {
        float exponent = (float)(2 * i) / (float)d;
        inv_freq[i] = 1.0f / powf(b, exponent);
    }
}

__device__ __forceinline__ void rope_angle(int mode, int p, float inv_freq, float *c, float *s) {
    if (mode == HK_ROPE_FP32 || mode == HK_ROPE_BF16_PAPER) {
        double sd, cd;
        sincos((double)p * (double)inv_freq, &sd, &cd);
        *c = (float)cd;
        *s = (float)sd;
    } else {
        float angle;
        if (mode == HK_ROPE_BF16_HF) angle = __fmul_rn((float)p, inv_freq);  // FP32 inv_freq @ position_ids
        else angle = round_bf16_dev(__fmul_rn(round_bf16_dev((float)p), round_bf16_dev(inv_freq)));
        double sd, cd;
        sincos((double)angle, &sd, &cd);
        *c = round_bf16_dev((float)cd);
        *s = round_bf16_dev((float)sd);
    }
}

// Decode only (hk_rope_qk_store): row r is sequence r's one new token; its
// rotated k and its v go straight to the token's cache slot instead of back
// into the row.
template <typename T> struct RopeStore {
    T *const *kc, *const *vc;  // per sequence (NULL: no store, k rotated in place)
    int ldkc, ldvc;
    const T *v;
    int ldv, vw;
    const int *cache_pos;  // the token's cache position per sequence (its slot: cache_slot_dev)
    int M, window;
};

// One block per row (token): the block computes the row's d/2 cos/sin pairs
// once into shared memory, then each warp takes whole heads (q heads, then
// k heads); lane i owns the pair (i, i + d/2), in the norm as in the rotation.
template <typename T>
__global__ void rope_kernel(T *q, int ldq, int nq, T *k, int ldk, int nk, int d, const int *pos,
                            const float *inv_freq, int mode, int rope, const T *q_norm, const T *k_norm,
                            int norm_per_head, float norm_eps, RopeStore<T> store) {
    pdl_entry();
    extern __shared__ float tab[];
    const int half = d / 2;
    float *cos_t = tab, *sin_t = tab + half;
    size_t r = blockIdx.x;
    if (rope) {
        int p = pos[r];
        for (int i = threadIdx.x; i < half; i += blockDim.x) rope_angle(mode, p, inv_freq[i], &cos_t[i], &sin_t[i]);
    }
    T *kdst = k ? k + r * ldk : nullptr;  // where k heads go: the row itself, or the cache slot
    if (store.kc) {
        const int slot = cache_slot_dev(store.cache_pos[r], store.M, store.window);
        kdst = store.kc[r] + (size_t)slot * store.ldkc;
        T *vdst = store.vc[r] + (size_t)slot * store.ldvc;
        const T *vsrc = store.v + r * store.ldv;
        for (int i = threadIdx.x; i < store.vw; i += blockDim.x) vdst[i] = vsrc[i];
    }
    __syncthreads();
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    for (int hd = warp; hd < nq + nk; hd += nwarps) {
        const bool is_q = hd < nq;
        const int head = is_q ? hd : hd - nq;
        const T *x = is_q ? q + r * ldq + (size_t)head * d : k + r * ldk + (size_t)head * d;
        T *y = is_q ? q + r * ldq + (size_t)head * d : kdst + (size_t)head * d;
        const T *nw = is_q ? q_norm : k_norm;
        if (nw && norm_per_head) nw += (size_t)head * d;
        float inv = 1.0f;
        if (nw) {
            float ss = 0.0f;
            for (int i = lane; i < half; i += 32) {
                float a = ldf(x + i), b = ldf(x + i + half);
                ss += a * a + b * b;
            }
            ss = warp_sum(ss);
            inv = 1.0f / sqrtf(ss / (float)d + norm_eps);
        }
        for (int i = lane; i < half; i += 32) {
            float a = ldf(x + i), b = ldf(x + i + half);
            if (nw) {
                a = ldf(nw + i) * (a * inv);
                b = ldf(nw + i + half) * (b * inv);
                if (mode != HK_ROPE_FP32) { a = round_bf16_dev(a); b = round_bf16_dev(b); }
            }
            if (rope) {
                float c = cos_t[i], s = sin_t[i], x0, x1;
                if (mode == HK_ROPE_FP32 || mode == HK_ROPE_BF16_PAPER) {
                    x0 = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
                    x1 = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
                    if (mode == HK_ROPE_BF16_PAPER) { x0 = round_bf16_dev(x0); x1 = round_bf16_dev(x1); }
                } else {  // q*cos + rotate_half(q)*sin with every BF16 tensor op rounding
                    x0 = round_bf16_dev(__fadd_rn(round_bf16_dev(__fmul_rn(a, c)), round_bf16_dev(__fmul_rn(-b, s))));
                    x1 = round_bf16_dev(__fadd_rn(round_bf16_dev(__fmul_rn(b, c)), round_bf16_dev(__fmul_rn(a, s))));
                }
                a = x0;
                b = x1;
            }
            stf(y + i, a);
            stf(y + i + half, b);
        }
    }
}

template <typename T>
static int rope_launch(void *q, int ldq, int nq, void *k, int ldk, int nk, int d, const int *pos,
                       const float *inv_freq, int rows, hk_rope_mode mode, int rope, const void *q_norm,
                       const void *k_norm, int norm_per_head, float norm_eps, const RopeStore<T> &store,
                       cudaStream_t stream) {
    ARG_CHECK(q && nq > 0 && d > 0 && d % 2 == 0 && ldq >= nq * d && rows >= 0);
    ARG_CHECK(!k || (nk > 0 && ldk >= nk * d));
    ARG_CHECK(!rope || (pos && inv_freq));
    ARG_CHECK(mode >= HK_ROPE_FP32 && mode <= HK_ROPE_BF16_ALL);
    ARG_CHECK(!store.kc || (k && store.vc && store.v && store.cache_pos && store.ldkc >= nk * d &&
                            store.vw > 0 && store.ldvc >= store.vw && store.ldv >= store.vw && rows <= 65535));
    if (rows == 0 || (!rope && !q_norm && !k_norm && !store.kc)) return 0;  // (a store copies even so)
    if (!k) nk = 0;
    int heads = nq + nk;
    int threads = heads >= 8 ? 256 : 32 * heads;
    size_t smem = sizeof(float) * (size_t)d;
    CUDA_CHECK(hk_launch(rope_kernel<T>, rows, threads, smem, stream, (T *)q, ldq, nq, (T *)k, ldk, nk, d, pos,
                         inv_freq, (int)mode, rope, (const T *)q_norm, (const T *)k_norm, norm_per_head, norm_eps,
                         store));
    return 0;
}

extern "C" int hk_rope_qk(hk_dtype dtype, void *q, int ldq, int nq, void *k, int ldk, int nk, int d, const int *pos,
                          const float *inv_freq, int rows, hk_rope_mode mode, int rope, const void *q_norm,
                          const void *k_norm, int norm_per_head, float norm_eps, cudaStream_t stream) {
    HK_DISPATCH(dtype,
                rope_launch<float>(q, ldq, nq, k, ldk, nk, d, pos, inv_freq, rows, mode, rope, q_norm, k_norm,
                                   norm_per_head, norm_eps, RopeStore<float>{}, stream),
                rope_launch<bf16>(q, ldq, nq, k, ldk, nk, d, pos, inv_freq, rows, mode, rope, q_norm, k_norm,
                                  norm_per_head, norm_eps, RopeStore<bf16>{}, stream));
}

template <typename T>
static RopeStore<T> rope_store(void *const *kc, int ldkc, void *const *vc, int ldvc, const void *v, int ldv, int vw,
                               const int *cache_pos, int M, int window) {
    return RopeStore<T>{(T *const *)kc, (T *const *)vc, ldkc, ldvc, (const T *)v, ldv, vw, cache_pos, M, window};
}

extern "C" int hk_rope_qk_store(hk_dtype dtype, void *q, int ldq, int nq, const void *k, int ldk, int nk, int d,
                                const int *pos, const float *inv_freq, int B, hk_rope_mode mode, int rope,
                                const void *q_norm, const void *k_norm, int norm_per_head, float norm_eps,
                                void *const *k_cache, int ldkc, void *const *v_cache, int ldvc, const void *v, int ldv,
                                int dv, const int *cache_pos, int M, int window, cudaStream_t stream) {
    ARG_CHECK(k && k_cache);
    // k is only read (the kernel writes its k heads to the cache slot)
    HK_DISPATCH(dtype,
                rope_launch<float>(q, ldq, nq, (void *)k, ldk, nk, d, pos, inv_freq, B, mode, rope, q_norm, k_norm,
                                   norm_per_head, norm_eps,
                                   rope_store<float>(k_cache, ldkc, v_cache, ldvc, v, ldv, nk * dv, cache_pos, M, window),
                                   stream),
                rope_launch<bf16>(q, ldq, nq, (void *)k, ldk, nk, d, pos, inv_freq, B, mode, rope, q_norm, k_norm,
                                  norm_per_head, norm_eps,
                                  rope_store<bf16>(k_cache, ldkc, v_cache, ldvc, v, ldv, nk * dv, cache_pos, M, window),
                                  stream));
}
