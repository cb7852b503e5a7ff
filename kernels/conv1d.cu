// conv1d.cu: causal depthwise conv1d + SiLU of the SSM branch, over a packed
// batch (prefill) or one row per sequence (decode step).
//
// The conv has no recurrence in its output, only in its input window, so a
// sequence is cut into chunks of CONV_CHUNK rows: one thread per (channel,
// chunk) walks its rows with the K-1 previous inputs in registers, reading
// the window of its first row from x (or, for chunk 0, from the state).
// The state is read at the start and written at the end by the thread of
// chunk 0 alone (the new state is the last K-1 inputs, taken from x, or from
// the old state when the sequence is shorter than K-1), so no two threads
// touch the same state element. Loads of a token row are coalesced across
// the channel threads.
#include "hk_common.cuh"

namespace {

constexpr int CONV_CHUNK = 64;  // >= K-1: only chunk 0 ever needs the old state

// grid (ceil(C/128), ceil(max_len/CONV_CHUNK), B)
template <typename T, int K>
__global__ void conv1d_kernel(T *__restrict__ out, int ldo, const T *__restrict__ x, int ldx, const T *__restrict__ w,
                              const T *__restrict__ bias, T *const *state, const int *cu, int C) {
    pdl_entry();
    const int b = blockIdx.z, ch = blockIdx.y;
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    const int row0 = cu ? cu[b] : b, len = cu ? cu[b + 1] - cu[b] : 1;
    const int t0 = ch * CONV_CHUNK;
    if (t0 >= len) return;
    const int t1 = min(len, t0 + CONV_CHUNK);
    constexpr int KW = K > 1 ? K - 1 : 1;
    float old[KW], win[KW], wt[K];
    T *st = state[b];
#pragma unroll
    for (int j = 0; j < K - 1; j++) {
        old[j] = ch == 0 ? ldf(st + (size_t)j * C + c) : 0.0f;
        win[j] = ch == 0 ? old[j] : ldf(x + (size_t)(row0 + t0 - (K - 1) + j) * ldx + c);
    }
#pragma unroll
    for (int j = 0; j < K; j++) wt[j] = ldf(w + (size_t)c * K + j);
    const float bc = bias ? ldf(bias + c) : 0.0f;
#pragma unroll 4
    for (int t = t0; t < t1; t++) {
        float xv = ldf(x + (size_t)(row0 + t) * ldx + c);
        float acc = bc;  // same order as the CPU: bias, oldest tap first, the new input last
#pragma unroll
        for (int j = 0; j < K - 1; j++) acc += wt[j] * win[j];
        acc += wt[K - 1] * xv;
        stf(out + (size_t)(row0 + t) * ldo + c, silu_dev(acc));
#pragma unroll
        for (int j = 0; j + 1 < K - 1; j++) win[j] = win[j + 1];
        if constexpr (K > 1) win[K - 2] = xv;
    }
    if (ch != 0) return;
#pragma unroll
    for (int j = 0; j < K - 1; j++) {
        int tj = len - (K - 1) + j;  // input time of new state slot j
        float v;
        if (tj >= 0) {
            v = ldf(x + (size_t)(row0 + tj) * ldx + c);
        } else {  // still in the old state: old[len + j], selected without a run-time register index
            v = 0.0f;
#pragma unroll
            for (int i = 0; i < K - 1; i++)
                if (i == len + j) v = old[i];
        }
        stf(st + (size_t)j * C + c, v);
    }
}

template <typename T>
int conv_launch(void *out, int ldo, const void *x, int ldx, const void *w, const void *bias, void *const *state,
                const int *cu, int B, int max_len, int C, int K, cudaStream_t stream) {
    ARG_CHECK(out && x && w && state && B > 0 && B <= 65535 && C > 0 && ldo >= C && ldx >= C && max_len >= 0);
    if (!cu) max_len = 1;
    if (max_len == 0) return 0;
    dim3 grid(hk_cdiv(C, 128), hk_cdiv(max_len, CONV_CHUNK), B);
    ARG_CHECK(grid.y <= 65535);
#define CASE(K_)                                                                                           \
    case K_:                                                                                               \
        CUDA_CHECK(hk_launch(conv1d_kernel<T, K_>, grid, 128, 0, stream, (T *)out, ldo, (const T *)x, ldx, \
                             (const T *)w, (const T *)bias, (T *const *)state, cu, C));                    \
        break;
    switch (K) {
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
        default: return hk_fail(HK_EINVAL, __FILE__, __LINE__, "conv1d: K=%d not in 1..8", K);
    }
#undef CASE
    return 0;
}

}  // namespace

extern "C" int hk_conv1d_silu(hk_dtype dtype, void *out, int ldo, const void *x, int ldx, const void *w,
                              const void *bias, void *const *state, const int *cu_seqlens, int B, int max_len, int C,
                              int K, cudaStream_t stream) {
    HK_DISPATCH(dtype, conv_launch<float>(out, ldo, x, ldx, w, bias, state, cu_seqlens, B, max_len, C, K, stream),
                conv_launch<bf16>(out, ldo, x, ldx, w, bias, state, cu_seqlens, B, max_len, C, K, stream));
}
