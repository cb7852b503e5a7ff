// gemm.cu: y[T, out] = x[T, in] · W[out, in]^T (+ bias) through cuBLASLt,
// and for BF16 with at most 8 rows through an own weight-streaming kernel,
// which hk_gemv also runs with a norm or SwiGLU prologue and a residual add.
// Row-major y is column-major y^T (out x T), so the call computes
// y^T = W · x^T with W's buffer read transposed (op A = T) and x's as is; the
// bias then runs along cuBLAS's rows, which is what the BIAS epilogue adds.
// BF16: BF16 A/B/C, FP32 compute and scale. F32: CUBLAS_COMPUTE_32F, which
// never uses TF32 (only the _FAST_TF32 compute types do).
#include <cublasLt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <memory>
#include <new>
#include <vector>

#include "hk_common.cuh"

#define CUBLAS_CHECK(call)                                                                            \
    do {                                                                                              \
        cublasStatus_t s_ = (call);                                                                   \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                              \
            return hk_fail(HK_EINVAL, __FILE__, __LINE__, "%s: cuBLAS status %d (%s)", #call, (int)s_, \
                           cublasGetStatusString(s_));                                                \
    } while (0)

namespace {
// Owns the descriptors of one call so every exit path releases them.
struct LtCall {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulPreference_t pref = nullptr;
    ~LtCall() {
        if (pref) cublasLtMatmulPreferenceDestroy(pref);
        if (c) cublasLtMatrixLayoutDestroy(c);
        if (b) cublasLtMatrixLayoutDestroy(b);
        if (a) cublasLtMatrixLayoutDestroy(a);
        if (op) cublasLtMatmulDescDestroy(op);
    }
};

// What a cuBLASLt call depends on besides the data: the same key gets the
// same descriptors and algorithm, so they are made (and the heuristic asked)
// once per shape, not on every call of a prefill.
struct LtKey {
    int dtype, rows, in, out, ldx, ldw, ldy;
    bool bias;
    uint32_t al_w, al_x, al_y;
    bool operator==(const LtKey &o) const {
        return dtype == o.dtype && rows == o.rows && in == o.in && out == o.out && ldx == o.ldx && ldw == o.ldw &&
               ldy == o.ldy && bias == o.bias && al_w == o.al_w && al_x == o.al_x && al_y == o.al_y;
    }
};
struct LtPlan {
    LtKey key;
    LtCall call;
    cublasLtMatmulAlgo_t algo;
};
constexpr size_t kMaxPlans = 64;  // distinct shapes kept (oldest dropped first)
}  // namespace

struct hk_gemm {
    cublasLtHandle_t lt;
    void *workspace;
    size_t workspace_bytes;
    bool no_gemv;  // HYMEVAL_GEMV=0: every shape through cuBLASLt (comparisons, timings)
    std::vector<std::unique_ptr<LtPlan>> plans;
    size_t next_drop;  // the slot of plans replaced next once it is full
    bool no_plans;     // descriptors and heuristic on every call (HYMEVAL_GEMM_PLANS=1 keeps plans: checked
                       // on the H100, but no faster there, so not the default)
};

extern "C" int hk_gemm_create(hk_gemm **out, size_t workspace_bytes) {
    ARG_CHECK(out);
    *out = nullptr;
    hk_gemm *g = new (std::nothrow) hk_gemm();
    if (!g) return hk_fail(HK_EINVAL, __FILE__, __LINE__, "out of memory");
    g->workspace_bytes = workspace_bytes ? workspace_bytes : (size_t)32 << 20;
    const char *gemv = getenv("HYMEVAL_GEMV");
    g->no_gemv = gemv && strcmp(gemv, "0") == 0;
    const char *plans = getenv("HYMEVAL_GEMM_PLANS");
    g->no_plans = !(plans && strcmp(plans, "1") == 0);
    cublasStatus_t s = cublasLtCreate(&g->lt);
    if (s != CUBLAS_STATUS_SUCCESS) {
        delete g;
        return hk_fail(HK_EINVAL, __FILE__, __LINE__, "cublasLtCreate: %s", cublasGetStatusString(s));
    }
    cudaError_t e = cudaMalloc(&g->workspace, g->workspace_bytes);
    if (e != cudaSuccess) {
        cublasLtDestroy(g->lt);
        delete g;
        return hk_fail((int)e, __FILE__, __LINE__, "cudaMalloc(gemm workspace): %s", cudaGetErrorString(e));
    }
    *out = g;
    return 0;
}

extern "C" void hk_gemm_destroy(hk_gemm *g) {
    if (!g) return;
    g->plans.clear();  // their descriptors before the handle
    cudaFree(g->workspace);
    cublasLtDestroy(g->lt);
    delete g;
}

// The largest power of two (<= 256) dividing both the address and the row
// pitch in bytes: what cuBLASLt may assume about a matrix's alignment.
static uint32_t alignment_of(const void *p, size_t ld_bytes) {
    uintptr_t v = (uintptr_t)p | (uintptr_t)ld_bytes | 256u;
    return (uint32_t)(v & (~v + 1));
}


// ---- a few rows (decode of a small batch): the GEMM is a weight stream
// A GEMM of 1-8 rows reads every weight once and does almost no math per
// byte, so what matters is keeping enough of the weight stream in flight;
// cuBLASLt's small-N kernels reached ~1.3 TB/s of the ~3 TB/s here. One
// warp per output column: its lanes stream the weight row in 16-byte pieces
// (8 BF16), multiply each with the same piece of every input row (cached:
// the rows are small and shared by all warps), FP32 sums, one warp reduction.
namespace {

constexpr int kGemvMaxRows = 8;  // built for 1..8 rows
// used up to this many rows (HYMEVAL_GEMV_ROWS overrides): past it, reading
// every input row for each weight piece costs more than cuBLASLt's tiling
// (measured: 2.2-2.5 TB/s at 1 row against cuBLASLt's 1.5-1.8; 0.8-1.1 at 8
// against 1.0-1.9)
constexpr int kGemvDefaultRows = 2;
constexpr int kGemvWarps = 8;  // columns per block
// hk_gemv's staged input rows (dynamic shared memory): with the reduction
// scratch this stays under the 48 KiB a launch may use without opting in
constexpr int kGemvStageBytes = 47 * 1024;

__device__ __forceinline__ void unpack8(const uint4 &raw, float (&f)[8]) {
    const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&raw);
#pragma unroll
    for (int e = 0; e < 4; e++) {
        float2 v = __bfloat1622float2(h[e]);
        f[2 * e] = v.x, f[2 * e + 1] = v.y;
    }
}

__device__ __forceinline__ uint4 pack8(const float (&f)[8]) {  // rounds each to BF16 (nearest even)
    uint4 raw;
    __nv_bfloat162 *h = reinterpret_cast<__nv_bfloat162 *>(&raw);
#pragma unroll
    for (int e = 0; e < 4; e++) h[e] = __floats2bfloat162_rn(f[2 * e], f[2 * e + 1]);
    return raw;
}

// ---- hk_gemv: the GEMV with the kernels around a decode projection folded in
// A decode step is ~20 small kernels a layer, each paying launch latency
// more than its work; the RMSNorm or SwiGLU before a projection and the
// residual add after it become the GEMV's prologue and epilogue. Prologue:
// the block forms its rows' input once in shared memory as exactly the BF16
// values hk_rmsnorm / hk_swiglu would write (the row is small and
// L2-resident, so every block redoing it is cheaper than a launch), and the
// warps read their pieces from there: the dot products are the same FMAs in
// the same order as the plain GEMV's. The weight rows are prefetched to L2
// first so that their stream overlaps the prologue. Epilogue: the plain
// GEMV's rounded output added to resid and rounded again, as hk_add_rmsnorm
// adds the stored output.
struct GemvArgs {
    bf16 *y;
    int ldy;
    const bf16 *resid;  // epilogue only (RESID)
    int ldr;
    const bf16 *x;
    int ldx;
    const bf16 *norm_w;  // HK_GEMV_RMSNORM, HK_GEMV_FUSE_AVG (x's weight) (may be NULL)
    float eps;
    const bf16 *x2;  // HK_GEMV_FUSE_AVG: the second branch, its row pitch and norm weight (may be NULL)
    int ldx2;
    const bf16 *norm_w2;
    const bf16 *const *conv_state;  // HK_GEMV_CONV: per row (sequence), [K-1][in]; taps [in][K]; bias or NULL
    const bf16 *conv_w, *conv_b;
    int K;
    const bf16 *w;
    int ldw;
    const bf16 *bias;
    int in, out;
    int prefetch;  // weight rows to L2 first (set by gemv_launch)
};

// Forms the block's R input rows (HK_GEMV_RMSNORM or HK_GEMV_SWIGLU) in
// stage ([R][in / 8] pieces of 8 BF16). Every thread of the block calls it.
template <int R, int PRO> __device__ __forceinline__ void gemv_stage(uint4 *stage, const GemvArgs &a) {
    const int pieces = a.in / 8;
    float inv[R];
    if constexpr (PRO == HK_GEMV_RMSNORM) {
        // rmsnorm_kernel's sum bit for bit: its hk_norm_threads(in) threads
        // add every nt-th square in order, the others add nothing
        __shared__ float scratch[32 * R];
        const int nt = hk_norm_threads(a.in);
        float ss[R];
#pragma unroll
        for (int r = 0; r < R; r++) {
            ss[r] = 0.0f;
            if (threadIdx.x < nt)
#pragma unroll 4
                for (int i = threadIdx.x; i < a.in; i += nt) {  // (unrolled: loads in flight, same FMA order)
                    float v = ldf(a.x + (size_t)r * a.ldx + i);
                    ss[r] = fmaf(v, v, ss[r]);
                }
        }
        block_sum<R>(ss, scratch);
#pragma unroll
        for (int r = 0; r < R; r++) inv[r] = 1.0f / sqrtf(ss[r] / (float)a.in + a.eps);
    }
    float inv2[R];
    if constexpr (PRO == HK_GEMV_FUSE_AVG) {
        // fuse_kernel's two sums bit for bit, as above: its threads, its order
        __shared__ float scratch[32 * 2 * R];
        const int nt = hk_norm_threads(a.in);
        float ss[2 * R];
#pragma unroll
        for (int r = 0; r < R; r++) {
            ss[2 * r] = ss[2 * r + 1] = 0.0f;
            if (threadIdx.x < nt)
#pragma unroll 4
                for (int i = threadIdx.x; i < a.in; i += nt) {
                    float v = ldf(a.x + (size_t)r * a.ldx + i), u = ldf(a.x2 + (size_t)r * a.ldx2 + i);
                    ss[2 * r] = fmaf(v, v, ss[2 * r]);
                    ss[2 * r + 1] = fmaf(u, u, ss[2 * r + 1]);
                }
        }
        block_sum<2 * R>(ss, scratch);
#pragma unroll
        for (int r = 0; r < R; r++) {
            inv[r] = 1.0f / sqrtf(ss[2 * r] / (float)a.in + a.eps);
            inv2[r] = 1.0f / sqrtf(ss[2 * r + 1] / (float)a.in + a.eps);
        }
    }
#pragma unroll
    for (int r = 0; r < R; r++) {
        const uint4 *xr = reinterpret_cast<const uint4 *>(a.x + (size_t)r * a.ldx);
        for (int c = threadIdx.x; c < pieces; c += blockDim.x) {
            float v[8], u[8];
            unpack8(xr[c], v);
            if constexpr (PRO == HK_GEMV_RMSNORM) {  // rmsnorm_kernel's w * (x * inv)
                if (a.norm_w) {
                    unpack8(reinterpret_cast<const uint4 *>(a.norm_w)[c], u);
#pragma unroll
                    for (int e = 0; e < 8; e++) v[e] = u[e] * (v[e] * inv[r]);
                } else {
#pragma unroll
                    for (int e = 0; e < 8; e++) v[e] = v[e] * inv[r];
                }
            } else if constexpr (PRO == HK_GEMV_CONV) {  // conv1d_kernel's decode step of each channel
                const bf16 *st = a.conv_state[r];
#pragma unroll
                for (int e = 0; e < 8; e++) {
                    const int ch = 8 * c + e;
                    v[e] = conv_step_dev(a.conv_w + (size_t)ch * a.K, a.conv_b ? a.conv_b + ch : nullptr, st + ch,
                                         (size_t)a.in, v[e], a.K);
                }
            } else if constexpr (PRO == HK_GEMV_FUSE_AVG) {  // fuse_kernel's (round(na) + round(ns)) / 2
                float wa[8], s2[8], ws[8];
                unpack8(reinterpret_cast<const uint4 *>(a.x2 + (size_t)r * a.ldx2)[c], s2);
                if (a.norm_w) unpack8(reinterpret_cast<const uint4 *>(a.norm_w)[c], wa);
                if (a.norm_w2) unpack8(reinterpret_cast<const uint4 *>(a.norm_w2)[c], ws);
#pragma unroll
                for (int e = 0; e < 8; e++) {
                    const float na = a.norm_w ? wa[e] * (v[e] * inv[r]) : v[e] * inv[r];
                    const float ns = a.norm_w2 ? ws[e] * (s2[e] * inv2[r]) : s2[e] * inv2[r];
                    v[e] = (round_bf16_dev(na) + round_bf16_dev(ns)) / 2.0f;
                }
            } else {  // swiglu_kernel's round(silu(gate)) * up
                unpack8(xr[pieces + c], u);
#pragma unroll
                for (int e = 0; e < 8; e++) v[e] = round_bf16_dev(silu_dev(v[e])) * u[e];
            }
            stage[r * pieces + c] = pack8(v);
        }
    }
    __syncthreads();
}

// grid (ceil(out / kGemvWarps)), kGemvWarps * 32 threads; in % 8 == 0, rows
// 16-byte aligned. PRO: an hk_gemv_in (HK_GEMV_X: x read from global memory,
// the plain GEMV of hk_gemm_run); RESID: the residual epilogue.
template <int R, int PRO, bool RESID>
__global__ void __launch_bounds__(kGemvWarps * 32) gemv_kernel(const GemvArgs a) {
    extern __shared__ uint4 stage[];  // PRO != HK_GEMV_X: [R][in / 8] input pieces
    const int lane = threadIdx.x & 31, n = blockIdx.x * kGemvWarps + (threadIdx.x >> 5);
    const uint4 *wr = reinterpret_cast<const uint4 *>(a.w + (size_t)n * a.ldw);
    const int pieces = a.in / 8;
    // One prefetch per 128-byte line (8 pieces) of the warp's weight row: the
    // stream starts during the prologue, or, launched early (hk_launch with
    // HYMEVAL_PDL), while the kernel before this one still runs: the weights
    // are never written by a pass, so they may be read before pdl_entry.
    if (a.prefetch && n < a.out)
        for (int c = lane * 8; c < pieces; c += 32 * 8) asm volatile("prefetch.global.L2 [%0];" ::"l"(wr + c));
    pdl_entry();
    if constexpr (PRO != HK_GEMV_X) gemv_stage<R, PRO>(stage, a);
    if (n >= a.out) return;
    float acc[R];
#pragma unroll
    for (int r = 0; r < R; r++) acc[r] = 0.0f;
#pragma unroll 4
    for (int c = lane; c < pieces; c += 32) {
        float wf[8];
        unpack8(__ldg(wr + c), wf);
#pragma unroll
        for (int r = 0; r < R; r++) {
            float xf[8];
            if constexpr (PRO == HK_GEMV_X)
                unpack8(__ldg(reinterpret_cast<const uint4 *>(a.x + (size_t)r * a.ldx) + c), xf);
            else
                unpack8(stage[r * pieces + c], xf);
#pragma unroll
            for (int e = 0; e < 8; e++) acc[r] = fmaf(wf[e], xf[e], acc[r]);
        }
    }
#pragma unroll
    for (int r = 0; r < R; r++) acc[r] = warp_sum(acc[r]);
    if (lane == 0) {
        const float b = a.bias ? __bfloat162float(a.bias[n]) : 0.0f;
#pragma unroll
        for (int r = 0; r < R; r++) {
            float v = acc[r] + b;
            if constexpr (RESID)  // the stored GEMV output, added as hk_add_rmsnorm adds it
                v = __bfloat162float(a.resid[(size_t)r * a.ldr + n]) + round_bf16_dev(v);
            a.y[(size_t)r * a.ldy + n] = __float2bfloat16_rn(v);
        }
    }
}

// The GEMV cut-over: hk_gemm_run streams the weights itself up to this many rows.
int gemv_use_rows() {
    static const int use_rows = [] {
        const char *e = getenv("HYMEVAL_GEMV_ROWS");
        int r = e ? atoi(e) : kGemvDefaultRows;
        return r < 0 ? 0 : r > kGemvMaxRows ? kGemvMaxRows : r;
    }();
    return use_rows;
}

bool gemv_fits(hk_dtype dtype, const void *x, int ldx, const void *w, int ldw, const void *bias, int rows, int in) {
    return dtype == HK_BF16 && rows <= gemv_use_rows() && in % 8 == 0 && aligned16(x, (size_t)ldx * 2) &&
           aligned16(w, (size_t)ldw * 2) && (!bias || ((uintptr_t)bias & 1) == 0);
}

template <int PRO, bool RESID> int gemv_launch(GemvArgs a, int rows, cudaStream_t stream) {
    a.prefetch = PRO != HK_GEMV_X || hk_pdl_enabled();
    const dim3 grid(hk_cdiv(a.out, kGemvWarps)), block(kGemvWarps * 32);
    const size_t smem = PRO == HK_GEMV_X ? 0 : (size_t)rows * a.in * 2;
    switch (rows) {
#define GEMV_R(RR)                                                                         \
    case RR:                                                                               \
        CUDA_CHECK(hk_launch(gemv_kernel<RR, PRO, RESID>, grid, block, smem, stream, a)); \
        break;
        GEMV_R(1) GEMV_R(2) GEMV_R(3) GEMV_R(4) GEMV_R(5) GEMV_R(6) GEMV_R(7) GEMV_R(8)
#undef GEMV_R
    default:
        return hk_fail(HK_EINVAL, __FILE__, __LINE__, "gemv: %d rows", rows);
    }
    return 0;
}

// The arguments every mode has; the others zero.
GemvArgs gemv_args(void *y, int ldy, const void *resid, int ldr, const void *x, int ldx, const void *w, int ldw,
                   const void *bias, int in, int out) {
    GemvArgs a;
    memset(&a, 0, sizeof a);
    a.y = (bf16 *)y, a.ldy = ldy, a.resid = (const bf16 *)resid, a.ldr = ldr, a.x = (const bf16 *)x, a.ldx = ldx;
    a.w = (const bf16 *)w, a.ldw = ldw, a.bias = (const bf16 *)bias, a.in = in, a.out = out;
    return a;
}

int gemv_run(void *y, int ldy, const void *x, int ldx, const void *w, int ldw, const void *bias, int rows, int in,
             int out, cudaStream_t stream) {
    return gemv_launch<HK_GEMV_X, false>(gemv_args(y, ldy, nullptr, 0, x, ldx, w, ldw, bias, in, out), rows, stream);
}

}  // namespace

extern "C" int hk_gemv(hk_dtype dtype, hk_gemv_in in_mode, void *y, int ldy, const void *resid, int ldr,
                       const void *x, int ldx, const void *norm_w, float eps, const void *w, int ldw,
                       const void *bias, int rows, int in, int out, cudaStream_t stream) {
    ARG_CHECK(dtype == HK_BF16);
    ARG_CHECK(in_mode == HK_GEMV_X || in_mode == HK_GEMV_RMSNORM || in_mode == HK_GEMV_SWIGLU);
    ARG_CHECK(y && x && w && rows >= 1 && rows <= kGemvMaxRows && in > 0 && in % 8 == 0 && out > 0);
    ARG_CHECK(ldy >= out && ldx >= (in_mode == HK_GEMV_SWIGLU ? 2 * in : in) && ldw >= in && (!resid || ldr >= out));
    ARG_CHECK(aligned16(x, (size_t)ldx * 2) && aligned16(w, (size_t)ldw * 2) && (!norm_w || aligned16(norm_w, 0)));
    ARG_CHECK((!bias || ((uintptr_t)bias & 1) == 0) && (!resid || ((uintptr_t)resid & 1) == 0));
    ARG_CHECK(y != x && (!resid || resid != y || ldr == ldy));
    ARG_CHECK(in_mode == HK_GEMV_X || (size_t)rows * in * 2 <= (size_t)kGemvStageBytes);
    GemvArgs a = gemv_args(y, ldy, resid, ldr, x, ldx, w, ldw, bias, in, out);
    a.norm_w = (const bf16 *)norm_w, a.eps = eps;
    switch (in_mode) {
    case HK_GEMV_X: return resid ? gemv_launch<HK_GEMV_X, true>(a, rows, stream) : gemv_launch<HK_GEMV_X, false>(a, rows, stream);
    case HK_GEMV_RMSNORM:
        return resid ? gemv_launch<HK_GEMV_RMSNORM, true>(a, rows, stream)
                     : gemv_launch<HK_GEMV_RMSNORM, false>(a, rows, stream);
    default:
        return resid ? gemv_launch<HK_GEMV_SWIGLU, true>(a, rows, stream)
                     : gemv_launch<HK_GEMV_SWIGLU, false>(a, rows, stream);
    }
}

extern "C" int hk_gemv_fuse_avg(hk_dtype dtype, void *y, int ldy, const void *resid, int ldr, const void *a, int lda,
                                const void *wa, const void *s, int lds, const void *ws, float eps, const void *w,
                                int ldw, const void *bias, int rows, int in, int out, cudaStream_t stream) {
    ARG_CHECK(dtype == HK_BF16);
    ARG_CHECK(y && a && s && w && rows >= 1 && rows <= kGemvMaxRows && in > 0 && in % 8 == 0 && out > 0);
    ARG_CHECK(ldy >= out && lda >= in && lds >= in && ldw >= in && (!resid || ldr >= out));
    ARG_CHECK(aligned16(a, (size_t)lda * 2) && aligned16(s, (size_t)lds * 2) && aligned16(w, (size_t)ldw * 2));
    ARG_CHECK((!wa || aligned16(wa, 0)) && (!ws || aligned16(ws, 0)));
    ARG_CHECK((!bias || ((uintptr_t)bias & 1) == 0) && (!resid || ((uintptr_t)resid & 1) == 0));
    ARG_CHECK(y != a && y != s && (!resid || resid != y || ldr == ldy));
    ARG_CHECK((size_t)rows * in * 2 <= (size_t)kGemvStageBytes);
    GemvArgs g = gemv_args(y, ldy, resid, ldr, a, lda, w, ldw, bias, in, out);
    g.norm_w = (const bf16 *)wa, g.eps = eps, g.x2 = (const bf16 *)s, g.ldx2 = lds, g.norm_w2 = (const bf16 *)ws;
    return resid ? gemv_launch<HK_GEMV_FUSE_AVG, true>(g, rows, stream)
                 : gemv_launch<HK_GEMV_FUSE_AVG, false>(g, rows, stream);
}

extern "C" int hk_gemv_conv(hk_dtype dtype, void *y, int ldy, const void *x, int ldx, void *const *conv_state,
                            const void *conv_w, const void *conv_b, int K, const void *w, int ldw, const void *bias,
                            int rows, int in, int out, cudaStream_t stream) {
    ARG_CHECK(dtype == HK_BF16);
    ARG_CHECK(y && x && conv_state && conv_w && w && rows >= 1 && rows <= kGemvMaxRows && in > 0 && in % 8 == 0);
    ARG_CHECK(out > 0 && K >= 1 && K <= 8 && ldy >= out && ldx >= in && ldw >= in);
    ARG_CHECK(aligned16(x, (size_t)ldx * 2) && aligned16(w, (size_t)ldw * 2) && (!bias || ((uintptr_t)bias & 1) == 0));
    ARG_CHECK(y != x && (size_t)rows * in * 2 <= (size_t)kGemvStageBytes);
    GemvArgs g = gemv_args(y, ldy, nullptr, 0, x, ldx, w, ldw, bias, in, out);
    g.conv_state = (const bf16 *const *)conv_state, g.conv_w = (const bf16 *)conv_w, g.conv_b = (const bf16 *)conv_b;
    g.K = K;
    return gemv_launch<HK_GEMV_CONV, false>(g, rows, stream);
}

extern "C" int hk_gemv_rows(const hk_gemm *g, hk_gemv_in in_mode, int in) {
    if (!g || g->no_gemv || in <= 0 || in % 8 != 0) return 0;
    const int rows = gemv_use_rows();
    return in_mode == HK_GEMV_X ? rows : std::min(rows, kGemvStageBytes / (2 * in));
}

// The descriptors of y = x W^T (+ bias) for cuBLASLt, in `call`.
static int lt_prepare(const hk_gemm *g, LtCall &call, hk_dtype dtype, const void *y, int ldy, const void *x, int ldx,
                      const void *w, int ldw, const void *bias, int rows, int in, int out) {
    const cudaDataType_t dt = dtype == HK_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    const size_t es = hk_dtype_size(dtype);
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&call.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(call.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(call.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (bias) {
        cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(call.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(call.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
        cudaDataType_t bt = dt;
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(call.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
    }
    // column-major views: A = W buffer (in x out, ld ldw), B = x buffer (in x rows), C = y buffer (out x rows)
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&call.a, dt, in, out, ldw));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&call.b, dt, in, rows, ldx));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&call.c, dt, out, rows, ldy));
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&call.pref));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(call.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                      &g->workspace_bytes, sizeof g->workspace_bytes));
    uint32_t al_a = alignment_of(w, (size_t)ldw * es), al_b = alignment_of(x, (size_t)ldx * es),
             al_c = alignment_of(y, (size_t)ldy * es);
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(call.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a,
                                                      sizeof al_a));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(call.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b,
                                                      sizeof al_b));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(call.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c,
                                                      sizeof al_c));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(call.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c,
                                                      sizeof al_c));
    return 0;
}

extern "C" int hk_gemm_run(hk_gemm *g, hk_dtype dtype, void *y, int ldy, const void *x, int ldx, const void *w,
                           int ldw, const void *bias, int rows, int in, int out, cudaStream_t stream) {
    ARG_CHECK(g && y && x && w && rows >= 0 && in > 0 && out > 0 && ldy >= out && ldx >= in && ldw >= in);
    ARG_CHECK(dtype == HK_F32 || dtype == HK_BF16);
    if (rows == 0) return 0;
    if (!g->no_gemv && gemv_fits(dtype, x, ldx, w, ldw, bias, rows, in))
        return gemv_run(y, ldy, x, ldx, w, ldw, bias, rows, in, out, stream);
    const size_t es = hk_dtype_size(dtype);
    const LtKey key = {(int)dtype, rows, in, out, ldx, ldw, ldy, bias != nullptr, alignment_of(w, (size_t)ldw * es),
                       alignment_of(x, (size_t)ldx * es), alignment_of(y, (size_t)ldy * es)};
    LtPlan *plan = nullptr;
    for (auto &p : g->plans)
        if (p->key == key) plan = p.get();
    std::unique_ptr<LtPlan> made;  // kept in g->plans unless no_plans
    if (!plan) {
        made.reset(new (std::nothrow) LtPlan());
        if (!made) return hk_fail(HK_EINVAL, __FILE__, __LINE__, "out of memory");
        made->key = key;
        if (lt_prepare(g, made->call, dtype, y, ldy, x, ldx, w, ldw, bias, rows, in, out)) return HK_EINVAL;
        cublasLtMatmulHeuristicResult_t heur;
        int found = 0;
        CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(g->lt, made->call.op, made->call.a, made->call.b, made->call.c,
                                                    made->call.c, made->call.pref, 1, &heur, &found));
        if (found == 0)
            return hk_fail(HK_EINVAL, __FILE__, __LINE__, "cuBLASLt: no algorithm for %d x %d x %d (%s)", rows, in,
                           out, dtype == HK_BF16 ? "bf16" : "f32");
        made->algo = heur.algo;
        plan = made.get();
        if (g->no_plans) {
            // used for this call only (made frees it)
        } else if (g->plans.size() < kMaxPlans) {
            g->plans.push_back(std::move(made));
        } else {
            g->plans[g->next_drop] = std::move(made);
            g->next_drop = (g->next_drop + 1) % kMaxPlans;
        }
    }
    if (bias)  // the pointer is the call's own (the epilogue is part of the key)
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->call.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                    sizeof bias));
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_CHECK(cublasLtMatmul(g->lt, plan->call.op, &one, w, plan->call.a, x, plan->call.b, &zero, y, plan->call.c,
                                y, plan->call.c, &plan->algo, g->workspace, g->workspace_bytes, stream));
    return 0;
}

extern "C" int hk_gemm_time_algos(hk_gemm *g, hk_dtype dtype, void *y, int ldy, const void *x, int ldx,
                                  const void *w, int ldw, int rows, int in, int out, float *ms, int max_algos,
                                  cudaStream_t stream) {
    ARG_CHECK(g && y && x && w && ms && rows > 0 && in > 0 && out > 0 && max_algos > 0 && max_algos <= 64);
    ARG_CHECK(ldy >= out && ldx >= in && ldw >= in && (dtype == HK_F32 || dtype == HK_BF16));
    LtCall call;
    if (lt_prepare(g, call, dtype, y, ldy, x, ldx, w, ldw, nullptr, rows, in, out)) return -1;
    cublasLtMatmulHeuristicResult_t heur[64];
    int found = 0;
    if (cublasLtMatmulAlgoGetHeuristic(g->lt, call.op, call.a, call.b, call.c, call.c, call.pref, max_algos, heur,
                                       &found) != CUBLAS_STATUS_SUCCESS)
        return -1;
    cudaEvent_t t0, t1;
    if (cudaEventCreate(&t0) != cudaSuccess || cudaEventCreate(&t1) != cudaSuccess) return -1;
    const float one = 1.0f, zero = 0.0f;
    for (int k = 0; k < found; k++) {
        float t[11];
        ms[k] = -1.0f;
        bool ok = true;
        for (int r = -2; r < 11 && ok; r++) {  // two warm-ups, then the median of 11
            ok = cudaEventRecord(t0, stream) == cudaSuccess &&
                 cublasLtMatmul(g->lt, call.op, &one, w, call.a, x, call.b, &zero, y, call.c, y, call.c,
                                &heur[k].algo, g->workspace, g->workspace_bytes, stream) == CUBLAS_STATUS_SUCCESS &&
                 cudaEventRecord(t1, stream) == cudaSuccess && cudaEventSynchronize(t1) == cudaSuccess;
            if (ok && r >= 0) ok = cudaEventElapsedTime(&t[r], t0, t1) == cudaSuccess;
        }
        if (ok) {
            std::sort(t, t + 11);
            ms[k] = t[5];
        }
    }
    cudaEventDestroy(t0);
    cudaEventDestroy(t1);
    return found;
}
