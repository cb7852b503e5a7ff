// scan.cu: the Mamba-1 selective scan (docs/ARCHITECTURE.md §2.2, steps 3-5)
// with softplus(dt + bias), D skip and SiLU(z) gate, state in FP32.
//
// One thread per channel c holds the N states h[c, 0..N) and the N decay
// rates in registers (kernels templated on N); a block is one warp of 32
// channels. y = sum_n C[n] h[n] is then a sum inside the thread (no
// cross-lane reduction), and the per-channel work of a row (softplus of dt,
// the gate, the loads of u, dt, z, the store of y) is done once per (row,
// channel) instead of once per state. The B and C rows (N values each, the
// same for every channel of the row) are staged as FP32 in shared memory a
// tile of TR rows at a time and read back as broadcasts.
//
// What is left per (row, channel, state) is one exp and 3 (no y) or 4 FP32
// operations. The exp is exp2(delta * A2), A2 = A log2(e) computed once per
// chunk, on the MUFU unit (ex2.approx.ftz, the instruction expf itself ends
// in; exp2f would add denormal fix-ups around it). The two roundings of the
// argument make its relative error ~1e-7 |delta A|: a few 1e-6 where the
// factor is not negligible, far inside the FP32 tests' 1e-4. ftz only
// flushes factors below 2^-126 to zero. MUFU does 16 results per clock per
// SM, so it bounds the kernel: S=4096, C=3200, N=16 is 210 M exps per pass,
// ~55 us per pass on 132 SMs (plus ~2 MUFU ops per row and channel for
// softplus and the gate), while the pass's u, dt, z, y traffic (at most
// 105 MB in BF16, ~35 us at 3 TB/s) overlaps it.
//
// The recurrence h <- a_t h + b_t is linear, so a long sequence is cut into
// chunks of L rows (scan_chunk_rows) scanned in parallel:
//   pass 1: chunk 0 from the real state, writing y and its end state;
//           chunks 1..n-2 from h = 0: their end state e and decay product
//           P = exp(A sum(delta)); the last chunk is left to pass 3;
//   carry:  per (sequence, channel, state), over the chunks in order:
//           h_end[j] = P_j h_end[j-1] + e_j, in place of e_j;
//   pass 3: chunks 1..n-1 again from h_end[j-1], writing y; the last one
//           writes the state.
// A sequence of n chunks costs 2n - 2 chunk scans (n = 2: nothing done
// twice). L is picked so that a pass is about one full load of warps for the
// chip (all resident at once: no tail wave; 4 per scheduler, each with N
// independent exps per row, keep the MUFU fed while others wait on loads)
// and is at least 64 rows. Without a workspace, for the decode step (cu ==
// NULL), or when the batch alone fills the chip, one pass scans each
// sequence from its state.
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <math.h>

#include "hk_common.cuh"

namespace {

constexpr int SCAN_MIN_CHUNK = 64;  // shorter chunks: more repeated work and workspace than gain
constexpr int SCAN_CHUNK_ALIGN = 16;

// Rows per tile. The tile's u, dt, z are loaded into 3 TR registers (all in
// flight together) beside the 2N of states and rates: 8 rows keep N = 16
// under the 128 registers of 16 warps per SM (16 rows spill there).
__host__ __device__ constexpr int tile_rows(int N) { return N >= 16 ? 8 : 16; }
// Blocks (warps) per SM each kernel is built for (__launch_bounds__); the
// chunk length sizes a pass to this many warps per SM.
__host__ __device__ constexpr int warps_per_sm(int N) { return N <= 16 ? 16 : 8; }

struct ScanArgs {
    const float *dt_bias, *A, *D;
    float *const *state;
    const int *cu;
    int C, chunk;  // chunk: rows per chunk (INT_MAX: one pass)
    int lddt, ldu, ldb, ldc, ldz, ldy;
    float *ws_h, *ws_p;  // [B][slots][N][C]: end state / decay product of chunk j
    int slots;           // per sequence: max chunks - 1 (the last chunk keeps nothing)
};

// SiLU(v) = v / (1 + e^-v) as silu_dev, the division by MUFU.RCP and a
// multiply (2 ulp) instead of the IEEE sequence: once per (row, channel).
// A denominator above 2^126 gives 0 where the exact quotient is < 1e-36.
__device__ __forceinline__ float silu_gate(float v) { return __fdividef(v, 1.0f + expf(-v)); }

// softplus(x) = max(x, 0) + log1p(t), t = e^-|x| in (0, 1], without a
// branch (softplus_dev's log1pf has several, which keep the compiler from
// interleaving the rows of a tile): log1p(t) = 2 atanh(s), s = t / (2 + t)
// <= 1/3, by its odd series to s^15 (truncation < 2e-9 relative). t on
// MUFU.EX2 and the division on MUFU.RCP are each within ~2^-22 relative,
// so the result is within ~5e-7 relative of log1pf(expf(x)); above 20 it
// rounds to x, as softplus_dev's linear regime returns.
__device__ __forceinline__ float softplus_fast(float x) {
    const float t = ex2_ftz(-fabsf(x) * 1.4426950408889634f);
    const float s = __fdividef(t, 2.0f + t), s2 = s * s;  // denominator in [2, 3]: 2 ulp
    float p = 1.0f / 15.0f;
    p = fmaf(p, s2, 1.0f / 13.0f);
    p = fmaf(p, s2, 1.0f / 11.0f);
    p = fmaf(p, s2, 1.0f / 9.0f);
    p = fmaf(p, s2, 1.0f / 7.0f);
    p = fmaf(p, s2, 1.0f / 5.0f);
    p = fmaf(p, s2, 1.0f / 3.0f);
    p = fmaf(p, s2, 1.0f);
    return fmaxf(x, 0.0f) + 2.0f * s * p;
}

// Shared memory of a block (one warp): one tile of TR rows.
template <int N> struct ScanTile {
    float4 x[tile_rows(N)][32];  // per row and lane: delta, u, gate of the lane's channel
    __align__(16) float B[tile_rows(N) * N], C[tile_rows(N) * N];
};

// v[0..N) = p[0..N) from shared memory, 16 bytes a load where N allows.
template <int N> __device__ __forceinline__ void lds_row(float (&v)[N], const float *p) {
    if constexpr (N % 4 == 0) {
#pragma unroll
        for (int q = 0; q < N / 4; q++) {
            const float4 f = reinterpret_cast<const float4 *>(p)[q];
            v[4 * q] = f.x, v[4 * q + 1] = f.y, v[4 * q + 2] = f.z, v[4 * q + 3] = f.w;
        }
    } else {
#pragma unroll
        for (int n = 0; n < N; n++) v[n] = p[n];
    }
}

// v[0..N) = p[0..N) / p[0..N) = v[0..N) in global memory, 16 bytes a
// load or store where N and p allow: a thread's states are N consecutive
// floats, so scalar accesses would touch every sector of the warp's span N
// times (what bounds the decode step, where each thread scans one row).
template <int N> __device__ __forceinline__ void ldg_vec(float (&v)[N], const float *p) {
    if (N % 4 == 0 && ((uintptr_t)p & 15) == 0) {
#pragma unroll
        for (int q = 0; q < N / 4; q++) {
            const float4 f = reinterpret_cast<const float4 *>(p)[q];
            v[4 * q] = f.x, v[4 * q + 1] = f.y, v[4 * q + 2] = f.z, v[4 * q + 3] = f.w;
        }
    } else {
#pragma unroll
        for (int n = 0; n < N; n++) v[n] = p[n];
    }
}
template <int N> __device__ __forceinline__ void stg_vec(float *p, const float (&v)[N]) {
    if (N % 4 == 0 && ((uintptr_t)p & 15) == 0) {
#pragma unroll
        for (int q = 0; q < N / 4; q++)
            reinterpret_cast<float4 *>(p)[q] = make_float4(v[4 * q], v[4 * q + 1], v[4 * q + 2], v[4 * q + 3]);
    } else {
#pragma unroll
        for (int n = 0; n < N; n++) p[n] = v[n];
    }
}

// Scans rows [row, row + nrows) of channel cc from h (in place); WITH_Y also
// writes y (valid lanes only). Returns the sum of delta over the rows. All 32
// lanes of the warp call it with the same rows (lanes past C with cc = C - 1).
//
// Per tile: every load of the tile is issued first (the B, C values this
// lane stages, then its own channel's dt, u, z of each row), so ~3 TR loads
// are in flight together; they go to shared memory, and the row loop reads
// them back (one 16-byte load per row for dt, u, z; broadcasts for B, C).
// Going through shared memory rather than registers lets the row loop stay
// rolled: a fully unrolled tile would be a large body for the instruction
// cache, twice per kernel.
template <typename T, int N, bool WITH_Y>
__device__ __forceinline__ float scan_rows(float (&h)[N], const float (&A2)[N], T *__restrict__ y,
                                           const T *__restrict__ u, const T *__restrict__ dt,
                                           const T *__restrict__ Bm, const T *__restrict__ Cm,
                                           const T *__restrict__ z, const ScanArgs &a, size_t row, int nrows, int cc,
                                           bool valid, ScanTile<N> &sm) {
    constexpr int TR = tile_rows(N), TE = TR * N, SE = (TE + 31) / 32;  // SE: staged B (C) values per lane
    constexpr int RK = 32 / N;  // rows between a lane's staged values (N <= 32)
    const int lane = threadIdx.x, rl = lane / N, nl = lane % N;  // the lane's first staged (row, state)
    const float bias = a.dt_bias[cc], Dc = a.D[cc];
    float sumd = 0.0f;
    for (int t = 0; t < nrows; t += TR) {
        const int nr = min(TR, nrows - t);
        const size_t r0 = row + t;
        float bv[SE], cv[SE];
        {
            const T *pb = Bm + (r0 + rl) * a.ldb + nl, *pc = Cm + (r0 + rl) * a.ldc + nl;
#pragma unroll
            for (int k = 0; k < SE; k++) {
                // rows past the chunk's end are 0, never read from memory
                const bool ok = (TE % 32 == 0 || lane + 32 * k < TE) && rl + RK * k < nr;
                bv[k] = ok ? ldf(pb) : 0.0f;
                cv[k] = ok && WITH_Y ? ldf(pc) : 0.0f;
                pb += (size_t)RK * a.ldb, pc += (size_t)RK * a.ldc;
            }
        }
        float dv[TR], uv[TR], zv[TR];
        {
            const T *pd = dt + r0 * a.lddt + cc, *pu = u + r0 * a.ldu + cc, *pz = z ? z + r0 * a.ldz + cc : nullptr;
#pragma unroll
            for (int r = 0; r < TR; r++) {
                const bool ok = r < nr;
                dv[r] = ok ? ldf(pd) : 0.0f;
                uv[r] = ok ? ldf(pu) : 0.0f;
                zv[r] = ok && WITH_Y && pz ? ldf(pz) : 0.0f;
                pd += a.lddt, pu += a.ldu;
                if (pz) pz += a.ldz;
            }
        }
        // the per-channel math of the tile's rows (delta, the gate) up front:
        // TR independent chains the compiler interleaves, not one per row
        // in front of that row's N exps
#pragma unroll
        for (int r = 0; r < TR; r++) {
            dv[r] = softplus_fast(dv[r] + bias);
            if (WITH_Y && z) zv[r] = silu_gate(zv[r]);
        }
        __syncwarp();  // every lane is done reading the previous tile
#pragma unroll
        for (int k = 0; k < SE; k++) {
            const int i = lane + 32 * k;
            if (TE % 32 == 0 || i < TE) {
                sm.B[i] = bv[k];
                if (WITH_Y) sm.C[i] = cv[k];
            }
        }
#pragma unroll
        for (int r = 0; r < TR; r++) sm.x[r][lane] = make_float4(dv[r], uv[r], zv[r], 0.0f);
        __syncwarp();
        T *py = y + r0 * a.ldy + cc;
#pragma unroll 2
        for (int r = 0; r < nr; r++, py += a.ldy) {  // nr is the same in every lane
            const float4 x = sm.x[r][lane];
            const float delta = x.x, du = delta * x.y;
            sumd += delta;
            float bq[N];
            lds_row<N>(bq, sm.B + r * N);
            if (WITH_Y) {
                float cq[N];
                lds_row<N>(cq, sm.C + r * N);
                // y = C . h as four partial sums (n mod 4) and a tree: a
                // dependent chain of N / 4 + 2 operations, not N, which the
                // row's latency otherwise waits on (the next row's exps need
                // only h, not y)
                constexpr int NP = N < 4 ? N : 4;
                float acc[NP];
#pragma unroll
                for (int n = 0; n < N; n++) {
                    h[n] = fmaf(ex2_ftz(delta * A2[n]), h[n], du * bq[n]);
                    acc[n % NP] = n < NP ? cq[n] * h[n] : fmaf(cq[n], h[n], acc[n % NP]);
                }
#pragma unroll
                for (int w = 1; w < NP; w *= 2)
#pragma unroll
                    for (int j = 0; j + w < NP; j += 2 * w) acc[j] += acc[j + w];
                float out = acc[0] + Dc * x.y;
                if (z) out *= x.z;
                if (valid) stf(py, out);
            } else {
#pragma unroll
                for (int n = 0; n < N; n++) h[n] = fmaf(ex2_ftz(delta * A2[n]), h[n], du * bq[n]);
            }
        }
    }
    return sumd;
}

// grid (ceil(C / 32), chunks, B), 32 threads: one chunk of one sequence for 32
// channels. FIRST: pass 1 (or the single pass, chunk = INT_MAX, one chunk);
// otherwise pass 3, blockIdx.y + 1 being the chunk.
template <typename T, int N, bool FIRST>
__global__ void __launch_bounds__(32, warps_per_sm(N))
    scan_kernel(T *__restrict__ y, const T *__restrict__ u, const T *__restrict__ dt, const T *__restrict__ Bm,
                const T *__restrict__ Cm, const T *__restrict__ z, ScanArgs a) {
    pdl_entry();
    __shared__ ScanTile<N> sm;
    const int b = blockIdx.z, c = blockIdx.x * 32 + threadIdx.x;
    const bool valid = c < a.C;
    const int cc = valid ? c : a.C - 1;  // lanes past C load channel C - 1 and store nothing
    const int row0 = a.cu ? a.cu[b] : b, len = a.cu ? a.cu[b + 1] - row0 : 1;
    const int ch = FIRST ? blockIdx.y : blockIdx.y + 1;
    // Every branch below depends on the block only (b, ch): the warp stays whole.
    if (ch >= (len + (a.chunk - 1L)) / a.chunk) return;  // len 0 included; no int overflow with chunk INT_MAX
    const int t0 = ch * a.chunk, nrows = min(len - t0, a.chunk);
    const bool last = len - t0 <= a.chunk, local = FIRST && ch > 0;
    if (local && last) return;  // pass 3 scans the last chunk from its real start
    const size_t NC = (size_t)N * a.C;
    float *ws_h = a.ws_h ? a.ws_h + (size_t)b * a.slots * NC + cc : nullptr;
    float *ws_p = a.ws_p ? a.ws_p + (size_t)b * a.slots * NC + cc : nullptr;

    float A2[N], h[N];
    float *st = last || (FIRST && !local) ? a.state[b] + (size_t)cc * N : nullptr;
    ldg_vec<N>(A2, a.A + (size_t)cc * N);
    if (FIRST && !local) ldg_vec<N>(h, st);  // chunk 0
#pragma unroll
    for (int n = 0; n < N; n++) {
        A2[n] *= 1.4426950408889634f;  // exp(x A) = exp2(x A log2 e)
        if (local) h[n] = 0.0f;
        else if (!FIRST) h[n] = ws_h[(size_t)(ch - 1) * NC + (size_t)n * a.C];  // end of the previous chunk (after carry)
    }
    const size_t row = (size_t)row0 + t0;
    if (local) {
        const float sumd = scan_rows<T, N, false>(h, A2, y, u, dt, Bm, Cm, z, a, row, nrows, cc, valid, sm);
        if (!valid) return;
#pragma unroll
        for (int n = 0; n < N; n++) {
            const size_t i = (size_t)ch * NC + (size_t)n * a.C;
            ws_h[i] = h[n];
            ws_p[i] = ex2_ftz(A2[n] * sumd);  // prod_t exp(delta_t A) = exp(A sum_t delta_t)
        }
        return;
    }
    scan_rows<T, N, true>(h, A2, y, u, dt, Bm, Cm, z, a, row, nrows, cc, valid, sm);
    if (!valid) return;
    if (last) {  // the sequence's new state (the state was read, if at all, by this thread only)
        stg_vec<N>(st, h);
    } else if (FIRST) {  // chunk 0 of pass 1: its exact end state goes to slot 0
#pragma unroll
        for (int n = 0; n < N; n++) ws_h[(size_t)n * a.C] = h[n];
    }
}

// grid (ceil(N*C / 256), B): chains each sequence's chunks; slot j then holds
// the state at the end of chunk j. Slot 0 already does (chunk 0 started from
// the real state); the last chunk has no slot.
__global__ void scan_carry_kernel(ScanArgs a, int NC) {
    pdl_entry();
    const int b = blockIdx.y, i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= NC) return;
    const int len = a.cu[b + 1] - a.cu[b], nch = (int)((len + a.chunk - 1L) / a.chunk);
    float *h = a.ws_h + (size_t)b * a.slots * NC + i;
    const float *p = a.ws_p + (size_t)b * a.slots * NC + i;
    float carry = nch > 2 ? h[0] : 0.0f;
#pragma unroll 4
    for (int j = 1; j < nch - 1; j++) {
        carry = fmaf(p[(size_t)j * NC], carry, h[(size_t)j * NC]);
        h[(size_t)j * NC] = carry;
    }
}

int sm_count() {
    static int n = 0;
    if (n == 0) {
        int dev = 0;
        if (cudaGetDevice(&dev) != cudaSuccess ||
            cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n <= 0)
            n = 132;  // H100 SXM
    }
    return n;
}

// Rows per chunk of the chunked passes, INT_MAX where one pass is better.
// Each pass runs B * ceil(C/32) warps per chunk index; chunks per sequence
// are added until a pass holds about warps_per_sm(N) warps per SM: one full
// wave, all resident, enough warps per scheduler to keep the MUFU busy.
// hk_scan_workspace_bytes and the launch both come here: they must agree.
// HYMEVAL_SCAN_WAVE=W plans for W warps per SM instead (1 .. warps_per_sm(N)):
// fewer chunks, less work done twice, but fewer warps to hide latency
// (measured slower at every W below the default: docs/PERFORMANCE.md).
int scan_wave_warps(int N) {
    static const int w = [] {
        const char *e = getenv("HYMEVAL_SCAN_WAVE");
        return e ? atoi(e) : 0;
    }();
    return w >= 1 && w <= warps_per_sm(N) ? w : warps_per_sm(N);
}

int scan_chunk_rows(int B, int max_len, int C, int N) {
    const long per_chunk = (long)B * hk_cdiv(C, 32);
    const long want = (long)scan_wave_warps(N) * sm_count();
    const long parts = want / per_chunk + 1;  // chunks: parts - 1 per pass
    if (parts < 2 || max_len <= SCAN_MIN_CHUNK) return INT_MAX;
    long L = (max_len + parts - 1) / parts;
    L = (L + SCAN_CHUNK_ALIGN - 1) / SCAN_CHUNK_ALIGN * SCAN_CHUNK_ALIGN;
    if (L < SCAN_MIN_CHUNK) L = SCAN_MIN_CHUNK;
    return L >= max_len ? INT_MAX : (int)L;
}

template <typename T, int N>
int scan_run(T *y, const T *u, const T *dt, const T *Bm, const T *Cm, const T *z, ScanArgs a, int B, int max_len,
             void *workspace, size_t workspace_bytes, cudaStream_t stream) {
    const dim3 block(32);
    const int gx = hk_cdiv(a.C, 32);
    a.chunk = a.cu ? scan_chunk_rows(B, max_len, a.C, N) : INT_MAX;
    const int nch = a.chunk == INT_MAX ? 1 : hk_cdiv(max_len, a.chunk);
    const size_t need = 2 * sizeof(float) * (size_t)B * (size_t)(nch - 1) * (size_t)N * (size_t)a.C;
    if (nch < 2 || !workspace || workspace_bytes < need) {
        a.chunk = INT_MAX;
        CUDA_CHECK(hk_launch(scan_kernel<T, N, true>, dim3(gx, 1, B), block, 0, stream, y, u, dt, Bm, Cm, z, a));
        return 0;
    }
    ARG_CHECK(nch - 1 <= 65535);
    a.slots = nch - 1;
    a.ws_h = (float *)workspace;
    a.ws_p = a.ws_h + (size_t)B * a.slots * N * a.C;
    CUDA_CHECK(hk_launch(scan_kernel<T, N, true>, dim3(gx, nch - 1, B), block, 0, stream, y, u, dt, Bm, Cm, z, a));
    if (nch > 2) {
        const int NC = N * a.C;
        CUDA_CHECK(hk_launch(scan_carry_kernel, dim3(hk_cdiv(NC, 256), B), 256, 0, stream, a, NC));
    }
    CUDA_CHECK(hk_launch(scan_kernel<T, N, false>, dim3(gx, nch - 1, B), block, 0, stream, y, u, dt, Bm, Cm, z, a));
    return 0;
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
    a.C = C, a.chunk = INT_MAX;
    a.lddt = lddt, a.ldu = ldu, a.ldb = ldb, a.ldc = ldc, a.ldz = ldz, a.ldy = ldy;
    a.ws_h = a.ws_p = nullptr;
    a.slots = 0;
    T *yt = (T *)y;
    const T *ut = (const T *)u, *dtt = (const T *)dt, *bt = (const T *)Bm, *ct = (const T *)Cm, *zt = (const T *)z;
#define SCAN_N(NN)                                                                                              \
    case NN:                                                                                                    \
        return scan_run<T, NN>(yt, ut, dtt, bt, ct, zt, a, B, max_len, workspace, workspace_bytes, stream)
    switch (N) {
        SCAN_N(1);
        SCAN_N(2);
        SCAN_N(4);
        SCAN_N(8);
        SCAN_N(16);
        SCAN_N(32);
    }
#undef SCAN_N
    return hk_fail(HK_EINVAL, __FILE__, __LINE__, "invalid argument: N = %d", N);
}

// ---- the decode step of the whole SSM tail in one kernel (hk_ssm_step)
// A decode step's rows are few, so the dt/B/C norms, the dt projection
// (R inputs a channel) and the one-row scan are each a launch for little
// work. Here a block of SSM_STEP_THREADS channels of one sequence forms the
// row's normalised dt, B, C in shared memory (each block redoing the R + 2N
// values), and each thread then projects its channel's dt, rounds it as the
// stored GEMM output would be, and advances its N states as scan_rows does.
// With the conv folded in (the x_proj GEMV before it formed its input the
// same way, hk_gemv_conv), a thread also recomputes its channel's conv
// output u and then advances the channel's conv state: the GEMV only read
// it, and this kernel starts after the GEMV has finished.
constexpr int SSM_STEP_THREADS = 64;

struct SsmStepArgs {
    const float *dt_bias, *A, *D;
    float *const *state;
    const void *conv_x, *conv_w, *conv_b;  // conv_x NULL: u is given
    void *const *conv_state;
    int ldcx, K;
    int C, R, ldx, ldu, ldz, ldy;
    float eps;
};

// grid (ceil(C / SSM_STEP_THREADS), B); dynamic shared memory: the row (R +
// 2N floats, padded to 16 bytes), then the block's rows of dt_w (T).
__host__ __device__ constexpr int ssm_row_floats(int R, int N) { return (R + 2 * N + 3) / 4 * 4; }

template <typename T, int N>
__global__ void __launch_bounds__(SSM_STEP_THREADS)
    ssm_step_kernel(T *__restrict__ y, const T *__restrict__ xdb, const T *__restrict__ dt_norm,
                    const T *__restrict__ B_norm, const T *__restrict__ C_norm, const T *__restrict__ dt_w,
                    const T *__restrict__ u, const T *__restrict__ z, SsmStepArgs a) {
    extern __shared__ float row[];  // dt (R) | B (N) | C (N), normalised and rounded to T; then dt_w's rows
    __shared__ float inv[3];
    const int b = blockIdx.y, R = a.R, nrow = R + 2 * N;
    // The block's rows of dt_w (contiguous) go to shared memory in coalesced
    // pieces, every load in flight at once, instead of each thread walking
    // its own row: a chain of R dependent loads (measured: 8 us a layer more
    // than the three kernels this one replaces). Weights are never written
    // by a pass, so this runs before pdl_entry, overlapping the kernel before.
    T *wt = reinterpret_cast<T *>(row + ssm_row_floats(R, N));
    {
        const int c0 = blockIdx.x * SSM_STEP_THREADS, nel = min(SSM_STEP_THREADS, a.C - c0) * R;
        const T *src = dt_w + (size_t)c0 * R;
        if ((((uintptr_t)src) & 15) == 0 && (nel * sizeof(T)) % 16 == 0) {
            const int n16 = (int)(nel * sizeof(T) / 16);
            for (int i = threadIdx.x; i < n16; i += blockDim.x)
                reinterpret_cast<uint4 *>(wt)[i] = __ldg(reinterpret_cast<const uint4 *>(src) + i);
        } else {
            for (int i = threadIdx.x; i < nel; i += blockDim.x) wt[i] = src[i];
        }
    }
    pdl_entry();
    const T *xr = xdb + (size_t)b * a.ldx;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (dt_norm && warp < 2)  // the sums of squares of the segments: warp 0 dt's, warp 1 B's and C's
        for (int s = warp == 0 ? 0 : 1; s < (warp == 0 ? 1 : 3); s++) {
            const int off = s == 0 ? 0 : s == 1 ? R : R + N, n = s == 0 ? R : N;
            float ss = 0.0f;
            for (int i = lane; i < n; i += 32) {
                const float v = ldf(xr + off + i);
                ss = fmaf(v, v, ss);
            }
            ss = warp_sum(ss);
            if (lane == 0) inv[s] = 1.0f / sqrtf(ss / (float)n + a.eps);
        }
    __syncthreads();
    for (int i = threadIdx.x; i < nrow; i += blockDim.x) {
        const float v = ldf(xr + i);
        if (!dt_norm) {
            row[i] = v;
            continue;
        }
        const int s = i < R ? 0 : i < R + N ? 1 : 2;
        const T *w = s == 0 ? dt_norm : s == 1 ? B_norm : C_norm;
        const int j = s == 0 ? i : s == 1 ? i - R : i - R - N;
        row[i] = act<T>(w ? ldf(w + j) * (v * inv[s]) : v * inv[s]);
    }
    __syncthreads();
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= a.C) return;
    // dt of this channel: the dt projection's dot product (FP32), rounded to T as the GEMM's output is stored
    const T *wr = wt + (size_t)threadIdx.x * R;
    float dot = 0.0f;
#pragma unroll 4
    for (int j = 0; j < R; j++) dot = fmaf(ldf(wr + j), row[j], dot);
    const float delta = softplus_dev(act<T>(dot) + a.dt_bias[c]);
    float uc;
    if (a.conv_x) {  // u = conv1d_kernel's output, rounded as stored; then the state moves on by one input
        const T *cw = (const T *)a.conv_w, *cb = (const T *)a.conv_b;
        T *cs = (T *)a.conv_state[b] + c;
        const T xin = ((const T *)a.conv_x)[(size_t)b * a.ldcx + c];
        uc = act<T>(conv_step_dev(cw + (size_t)c * a.K, cb ? cb + c : nullptr, cs, (size_t)a.C, ldf(&xin), a.K));
        for (int j = 0; j + 1 < a.K - 1; j++) cs[(size_t)j * a.C] = cs[(size_t)(j + 1) * a.C];
        if (a.K > 1) cs[(size_t)(a.K - 2) * a.C] = xin;
    } else {
        uc = ldf(u + (size_t)b * a.ldu + c);
    }
    const float du = delta * uc;
    float h[N], A2[N];
    float *st = a.state[b] + (size_t)c * N;
    ldg_vec<N>(h, st);
    ldg_vec<N>(A2, a.A + (size_t)c * N);
    float acc = 0.0f;
#pragma unroll
    for (int n = 0; n < N; n++) {
        h[n] = fmaf(ex2_ftz(delta * (A2[n] * 1.4426950408889634f)), h[n], du * row[R + n]);
        acc = fmaf(row[R + N + n], h[n], acc);
    }
    stg_vec<N>(st, h);
    float out = acc + a.D[c] * uc;
    if (z) out *= silu_gate(ldf(z + (size_t)b * a.ldz + c));
    stf(y + (size_t)b * a.ldy + c, out);
}

template <typename T>
int ssm_step_launch(void *y, int ldy, const void *xdb, int ldx, const void *dt_norm, const void *B_norm,
                    const void *C_norm, float eps, const void *dt_w, int R, const float *dt_bias, const float *A,
                    const float *D, const void *u, int ldu, const hk_conv_step *conv, const void *z, int ldz,
                    float *const *state, int B, int C, int N, cudaStream_t stream) {
    ARG_CHECK(y && xdb && dt_w && dt_bias && A && D && (u || conv) && state && B > 0 && B <= 65535 && C > 0 && R > 0);
    ARG_CHECK(!conv || (conv->x && conv->w && conv->state && conv->ldx >= C && conv->K >= 1 && conv->K <= 8));
    ARG_CHECK(N > 0 && N <= 32 && (N & (N - 1)) == 0);
    ARG_CHECK(ldy >= C && ldx >= R + 2 * N && (!u || ldu >= C) && (!z || ldz >= C));
    SsmStepArgs a;
    a.dt_bias = dt_bias, a.A = A, a.D = D, a.state = state;
    a.conv_x = conv ? conv->x : nullptr, a.conv_w = conv ? conv->w : nullptr, a.conv_b = conv ? conv->bias : nullptr;
    a.conv_state = conv ? conv->state : nullptr, a.ldcx = conv ? conv->ldx : 0, a.K = conv ? conv->K : 0;
    a.C = C, a.R = R, a.ldx = ldx, a.ldu = ldu, a.ldz = ldz, a.ldy = ldy, a.eps = eps;
    const dim3 grid(hk_cdiv(C, SSM_STEP_THREADS), B);
    const size_t smem = sizeof(float) * (size_t)ssm_row_floats(R, N) + sizeof(T) * (size_t)SSM_STEP_THREADS * R;
    ARG_CHECK(smem <= 48 * 1024);
#define STEP_N(NN)                                                                                                \
    case NN:                                                                                                      \
        CUDA_CHECK(hk_launch(ssm_step_kernel<T, NN>, grid, SSM_STEP_THREADS, smem, stream, (T *)y, (const T *)xdb, \
                             (const T *)dt_norm, (const T *)B_norm, (const T *)C_norm, (const T *)dt_w,             \
                             (const T *)u, (const T *)z, a));                                                    \
        return 0
    switch (N) {
        STEP_N(1);
        STEP_N(2);
        STEP_N(4);
        STEP_N(8);
        STEP_N(16);
        STEP_N(32);
    }
#undef STEP_N
    return hk_fail(HK_EINVAL, __FILE__, __LINE__, "invalid argument: N = %d", N);
}

}  // namespace

extern "C" size_t hk_scan_workspace_bytes(int B, int max_len, int C, int N) {
    if (B <= 0 || C <= 0 || N <= 0 || max_len <= SCAN_MIN_CHUNK) return 0;
    const int L = scan_chunk_rows(B, max_len, C, N);
    if (L == INT_MAX) return 0;
    return 2 * sizeof(float) * (size_t)B * (size_t)(hk_cdiv(max_len, L) - 1) * (size_t)C * (size_t)N;
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

extern "C" int hk_ssm_step(hk_dtype dtype, void *y, int ldy, const void *xdb, int ldx, const void *dt_norm,
                           const void *B_norm, const void *C_norm, float eps, const void *dt_w, int R,
                           const float *dt_bias, const float *A, const float *D, const void *u, int ldu,
                           const hk_conv_step *conv, const void *z, int ldz, float *const *state, int B, int C, int N,
                           cudaStream_t stream) {
    HK_DISPATCH(dtype,
                ssm_step_launch<float>(y, ldy, xdb, ldx, dt_norm, B_norm, C_norm, eps, dt_w, R, dt_bias, A, D, u, ldu,
                                       conv, z, ldz, state, B, C, N, stream),
                ssm_step_launch<bf16>(y, ldy, xdb, ldx, dt_norm, B_norm, C_norm, eps, dt_w, R, dt_bias, A, D, u, ldu,
                                      conv, z, ldz, state, B, C, N, stream));
}
