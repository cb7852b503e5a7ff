// hk_common.cuh: what every kernel file shares: error checks, BF16/FP32
// loads and stores, the engine's elementwise functions, warp/block sums.
#ifndef HYMEVAL_HK_COMMON_CUH
#define HYMEVAL_HK_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "kernels.h"

// Records and prints an error (file:line) and returns code (common.cu).
int hk_fail(int code, const char *file, int line, const char *fmt, ...);

#define CUDA_CHECK(call)                                                                              \
    do {                                                                                              \
        cudaError_t e_ = (call);                                                                      \
        if (e_ != cudaSuccess)                                                                        \
            return hk_fail((int)e_, __FILE__, __LINE__, "%s: %s", #call, cudaGetErrorString(e_));     \
    } while (0)
// After a <<<>>> launch: configuration errors surface here (hk_launch returns them).
#define LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())
#define ARG_CHECK(cond)                                                                               \
    do {                                                                                              \
        if (!(cond)) return hk_fail(HK_EINVAL, __FILE__, __LINE__, "invalid argument: %s", #cond);   \
    } while (0)

typedef __nv_bfloat16 bf16;

// Programmatic dependent launch (sm_90 and later; HYMEVAL_PDL=0 turns it
// off): hk_launch lets a kernel start while the kernel before it
// in the stream still runs, so its launch and any prologue that reads only
// weights overlap that kernel's tail. Every kernel launched through
// hk_launch therefore begins with pdl_entry(): it waits until the kernels
// before it have finished and their writes are visible, then allows the next
// one to launch. Launched without the attribute, both instructions are no-ops.
__device__ __forceinline__ void pdl_entry() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
bool hk_pdl_enabled();  // a device of compute capability 9.0 or later, unless HYMEVAL_PDL=0 (common.cu)
template <typename... Params, typename... Args>
cudaError_t hk_launch(void (*kern)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                      Args... args) {
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid, cfg.blockDim = block, cfg.dynamicSmemBytes = smem, cfg.stream = stream;
    cfg.attrs = attr, cfg.numAttrs = hk_pdl_enabled() ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, kern, ((Params)args)...);  // launch errors come back here
}

template <typename T> struct IsBf16 { static constexpr bool value = false; };
template <> struct IsBf16<bf16> { static constexpr bool value = true; };

__device__ __forceinline__ float ldf(const float *p) { return *p; }
__device__ __forceinline__ float ldf(const bf16 *p) { return __bfloat162float(*p); }
__device__ __forceinline__ void stf(float *p, float v) { *p = v; }
__device__ __forceinline__ void stf(bf16 *p, float v) { *p = __float2bfloat16_rn(v); }

// Rounds to the nearest BF16 value (ties to even), kept in FP32, like bf16.h round_bf16.
__device__ __forceinline__ float round_bf16_dev(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }
// The engine's act_round for an intermediate that is not stored: a no-op in FP32.
template <typename T> __device__ __forceinline__ float act(float v) {
    return IsBf16<T>::value ? round_bf16_dev(v) : v;
}

// 2^x in one MUFU instruction (ex2.approx, relative error ~2^-22; 2^-inf =
// +0). exp2f adds a range test and two predicated multiplies around it for
// results below 2^-126, which ftz flushes to 0 here instead: where this is
// used (scan decay factors, softmax probabilities) such a value is 0 for
// every purpose of the result.
__device__ __forceinline__ float ex2_ftz(float x) {
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return r;
}

// A pointer and a row pitch (bytes) that keep every row 16-byte aligned:
// the condition of the kernels' 16-byte loads.
__host__ __device__ __forceinline__ bool aligned16(const void *p, size_t ld_bytes) {
    return (((uintptr_t)p | ld_bytes) & 15) == 0;
}

// Same formulas as engine/ops_cpu.h (accurate expf/log1pf: no fast-math here).
__device__ __forceinline__ float silu_dev(float x) { return x / (1.0f + expf(-x)); }
__device__ __forceinline__ float softplus_dev(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

// The cache slot of position p (engine/cache.h): meta tokens and global
// layers by position, a sliding-window layer's band in a ring of window + 1.
__device__ __forceinline__ int cache_slot_dev(int p, int M, int window) {
    return (p < M || window <= 0) ? p : M + (p - M) % (window + 1);
}

// One decode step of the causal conv + SiLU of one channel: bias, the K-1
// state inputs oldest first, the new input last (conv1d_kernel's order, so
// the kernels that fold it in give its bits). w: the channel's K taps;
// state: its oldest input, the next ones ld apart.
template <typename T>
__device__ __forceinline__ float conv_step_dev(const T *w, const T *bias, const T *state, size_t ld, float x, int K) {
    float acc = bias ? ldf(bias) : 0.0f;
    for (int j = 0; j < K - 1; j++) acc += ldf(w + j) * ldf(state + (size_t)j * ld);
    acc += ldf(w + K - 1) * x;
    return silu_dev(acc);
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the block of NV values per thread; every thread gets the totals.
// scratch: 32*NV floats of shared memory. Needs blockDim.x a multiple of 32.
template <int NV> __device__ __forceinline__ void block_sum(float (&v)[NV], float *scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
#pragma unroll
    for (int i = 0; i < NV; i++) v[i] = warp_sum(v[i]);
    __syncthreads();  // scratch may still be read by a previous call
    if (lane == 0)
#pragma unroll
        for (int i = 0; i < NV; i++) scratch[i * 32 + warp] = v[i];
    __syncthreads();
#pragma unroll
    for (int i = 0; i < NV; i++) {
        float s = lane < nwarps ? scratch[i * 32 + lane] : 0.0f;
        v[i] = warp_sum(s);
    }
}

// Calls F<T> for the dtype; F is a template function name.
#define HK_DISPATCH(dtype, call_float, call_bf16)                                                     \
    do {                                                                                              \
        if ((dtype) == HK_F32) return call_float;                                                     \
        if ((dtype) == HK_BF16) return call_bf16;                                                     \
        return hk_fail(HK_EINVAL, __FILE__, __LINE__, "unknown dtype %d", (int)(dtype));              \
    } while (0)

static inline int hk_cdiv(long a, long b) { return (int)((a + b - 1) / b); }

// Threads of an RMSNorm over n columns (rmsnorm.cu). Its sum of squares is
// fixed by this: thread t < hk_norm_threads(n) adds the squares of columns
// t, t + nt, ... in order (one FMA each), then block_sum. Kernels that must
// give hk_rmsnorm's numbers bit for bit in a larger block (the three-segment
// norm, the GEMV's norm prologue) let the threads past nt add nothing: their
// zeros change no bit of the sum.
__host__ __device__ inline int hk_norm_threads(int n) { return n <= 64 ? 32 : n <= 1024 ? 128 : 256; }

#endif
