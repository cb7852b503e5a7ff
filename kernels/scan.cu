// scan.cu: the Mamba-1 selective scan (docs/ARCHITECTURE.md §2.2, steps 3-5)
// with softplus(dt + bias), D skip and SiLU(z) gate, state in FP32.
//
// One thread per (channel c, state n); the N threads of a channel are
// adjacent lanes and reduce y = sum_n C[n] h[n] with xor shuffles; the
// per-channel work of a row (softplus, gate) is spread over those lanes. The
// recurrence h <- a_t h + b_t is linear, so a long sequence is split into
// chunks of SCAN_CHUNK rows scanned in parallel:
//   pass 1: each chunk from h = 0: its end state e and its decay product P;
//   pass 2: per sequence, sequentially over chunks: start_k = carry,
//           carry = P_k carry + e_k (the final carry is the new state);
//   pass 3: each chunk again from its start state, now writing y.
// Without a workspace (or for short sequences) one pass per sequence.
#include <math.h>

#include "hk_common.cuh"

namespace {

constexpr int SCAN_CHUNK = 64;
constexpr int SCAN_THREADS = 128;

enum { PASS_FULL = 0, PASS_LOCAL = 1, PASS_Y = 3 };

struct ScanArgs {
    const float *dt_bias, *A, *D;
    float *const *state;
    const int *cu;
    int C, N, log2N;
    int lddt, ldu, ldb, ldc, ldz, ldy;
    float *ws_h, *ws_p;  // [B][max_chunks][C][N]
    int max_chunks;
};

// grid (ceil(C*N / SCAN_THREADS), chunks (1 for PASS_FULL), B)
template <typename T, int PASS>
__global__ void __launch_bounds__(SCAN_THREADS)
    scan_kernel(T *__restrict__ y, const T *__restrict__ u, const T *__restrict__ dt, const T *__restrict__ Bm,
                const T *__restrict__ Cm, const T *__restrict__ z, ScanArgs a) {
    const int b = blockIdx.z, ch = blockIdx.y;
    const int gid = blockIdx.x * blockDim.x + threadIdx.x;
    const bool valid = gid < a.C * a.N;  // invalid lanes still shuffle, with a clamped channel
    const int c = valid ? gid >> a.log2N : a.C - 1, n = gid & (a.N - 1);
    const int row0 = a.cu ? a.cu[b] : b, len = a.cu ? a.cu[b + 1] - a.cu[b] : 1;
    int t0 = 0, t1 = len;
    if (PASS != PASS_FULL) {
        t0 = ch * SCAN_CHUNK;
        if (t0 >= len) return;  // whole block: ch is uniform
        t1 = min(len, t0 + SCAN_CHUNK);
    }
    const size_t wsi = (((size_t)b * a.max_chunks + ch) * a.C + c) * a.N + n;
    float h;
    if (PASS == PASS_FULL) h = a.state[b][(size_t)c * a.N + n];
    else if (PASS == PASS_LOCAL) h = 0.0f;
    else h = a.ws_h[wsi];
    const float An = a.A[(size_t)c * a.N + n], bias = a.dt_bias[c], Dc = a.D[c];
    float prod = 1.0f;
    // Rows go in blocks of N: lane n computes the per-channel values of row
    // tb + n once (softplus, u, the SiLU gate) instead of every lane doing it
    // for every row; the step loop takes them from lane s by shuffle, and the
    // lane whose row it is keeps y. All lanes of a warp share b and the chunk,
    // so the trip counts are warp-uniform.
    for (int tb = t0; tb < t1; tb += a.N) {
        const int steps = min(a.N, t1 - tb);
        const bool mine = n < steps;
        const size_t rown = (size_t)(row0 + tb + n);
        const float my_delta = mine ? softplus_dev(ldf(dt + rown * a.lddt + c) + bias) : 0.0f;
        const float my_u = mine ? ldf(u + rown * a.ldu + c) : 0.0f;
        float my_acc = 0.0f;
#pragma unroll 4
        for (int s = 0; s < steps; s++) {
            const size_t row = (size_t)(row0 + tb + s);
            const float delta = __shfl_sync(0xffffffffu, my_delta, s, a.N);
            const float uc = __shfl_sync(0xffffffffu, my_u, s, a.N);
            const float dA = expf(delta * An);
            h = dA * h + (delta * uc) * ldf(Bm + row * a.ldb + n);
            if (PASS == PASS_LOCAL) prod *= dA;
            if (PASS != PASS_LOCAL) {
                float acc = ldf(Cm + row * a.ldc + n) * h;
                for (int o = a.N >> 1; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
                if (n == s) my_acc = acc;
            }
        }
        if (PASS != PASS_LOCAL && valid && mine) {
            float out = my_acc + Dc * my_u;
            if (z) out *= silu_dev(ldf(z + rown * a.ldz + c));
            stf(y + rown * a.ldy + c, out);
        }
    }
    if (!valid) return;
    if (PASS == PASS_FULL) a.state[b][(size_t)c * a.N + n] = h;
    if (PASS == PASS_LOCAL) {
        a.ws_h[wsi] = h;
        a.ws_p[wsi] = prod;
    }
}

// grid (ceil(C*N / SCAN_THREADS), B): chains the chunks of each sequence.
__global__ void scan_carry_kernel(ScanArgs a) {
    const int b = blockIdx.y, gid = blockIdx.x * blockDim.x + threadIdx.x;
    if (gid >= a.C * a.N) return;
    const int len = a.cu[b + 1] - a.cu[b], nch = (len + SCAN_CHUNK - 1) / SCAN_CHUNK;
    float *st = a.state[b] + gid;
    float carry = *st;
    for (int ch = 0; ch < nch; ch++) {
        size_t i = ((size_t)b * a.max_chunks + ch) * a.C * a.N + gid;
        float e = a.ws_h[i];
        a.ws_h[i] = carry;  // becomes the chunk's start state for pass 3
        carry = a.ws_p[i] * carry + e;
    }
    *st = carry;
}

template <typename T>
int scan_launch(void *y, int ldy, const void *u, int ldu, const void *dt, int lddt, const float *dt_bias,
                const float *A, const void *Bm, int ldb, const void *Cm, int ldc, const float *D, const void *z,
                int ldz, float *const *state, const int *cu, int B, int max_len, int C, int N, void *workspace,
                size_t workspace_bytes, cudaStream_t stream) {
    ARG_CHECK(y && u && dt && dt_bias && A && Bm && Cm && D && state && B > 0 && B <= 65535 && C > 0);
    ARG_CHECK(N > 0 && N <= 32 && (N & (N - 1)) == 0);
    ARG_CHECK(ldy >= C && ldu >= C && lddt >= C && ldb >= N && ldc >= N && (!z || ldz >= C));
    if (!cu) max_len = 1;
    if (max_len <= 0) return 0;
    ScanArgs a;
    a.dt_bias = dt_bias, a.A = A, a.D = D, a.state = state, a.cu = cu;
    a.C = C, a.N = N, a.log2N = __builtin_ctz((unsigned)N);
    a.lddt = lddt, a.ldu = ldu, a.ldb = ldb, a.ldc = ldc, a.ldz = ldz, a.ldy = ldy;
    a.ws_h = a.ws_p = nullptr;
    a.max_chunks = 1;
    const int gx = hk_cdiv((long)C * N, SCAN_THREADS);
    const size_t need = hk_scan_workspace_bytes(B, max_len, C, N);
    T *yt = (T *)y;
    const T *ut = (const T *)u, *dtt = (const T *)dt, *bt = (const T *)Bm, *ct = (const T *)Cm, *zt = (const T *)z;
    if (!cu || !workspace || need == 0 || workspace_bytes < need) {
        scan_kernel<T, PASS_FULL><<<dim3(gx, 1, B), SCAN_THREADS, 0, stream>>>(yt, ut, dtt, bt, ct, zt, a);
        LAUNCH_CHECK();
        return 0;
    }
    a.max_chunks = hk_cdiv(max_len, SCAN_CHUNK);
    ARG_CHECK(a.max_chunks <= 65535);
    a.ws_h = (float *)workspace;
    a.ws_p = a.ws_h + (size_t)B * a.max_chunks * C * N;
    dim3 grid(gx, a.max_chunks, B);
    scan_kernel<T, PASS_LOCAL><<<grid, SCAN_THREADS, 0, stream>>>(yt, ut, dtt, bt, ct, zt, a);
    LAUNCH_CHECK();
    scan_carry_kernel<<<dim3(gx, B), SCAN_THREADS, 0, stream>>>(a);
    LAUNCH_CHECK();
    scan_kernel<T, PASS_Y><<<grid, SCAN_THREADS, 0, stream>>>(yt, ut, dtt, bt, ct, zt, a);
    LAUNCH_CHECK();
    return 0;
}

}  // namespace

extern "C" size_t hk_scan_workspace_bytes(int B, int max_len, int C, int N) {
    if (max_len <= SCAN_CHUNK) return 0;
    return 2 * sizeof(float) * (size_t)B * (size_t)hk_cdiv(max_len, SCAN_CHUNK) * (size_t)C * (size_t)N;
}

extern "C" int hk_scan(hk_dtype dtype, void *y, int ldy, const void *u, int ldu, const void *dt, int lddt,
                       const float *dt_bias, const float *A, const void *Bm, int ldb, const void *Cm, int ldc,
                       const float *D, const void *z, int ldz, float *const *state, const int *cu_seqlens, int B,
                       int max_len, int C, int N, void *workspace, size_t workspace_bytes, cudaStream_t stream) {
    HK_DISPATCH(dtype,
                scan_launch<float>(y, ldy, u, ldu, dt, lddt, dt_bias, A, Bm, ldb, Cm, ldc, D, z, ldz, state,
                                   cu_seqlens, B, max_len, C, N, workspace, workspace_bytes, stream),
                scan_launch<bf16>(y, ldy, u, ldu, dt, lddt, dt_bias, A, Bm, ldb, Cm, ldc, D, z, ldz, state,
                                  cu_seqlens, B, max_len, C, N, workspace, workspace_bytes, stream));
}
