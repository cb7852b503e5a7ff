// attention.cu: causal attention with sliding window + always-visible meta
// tokens and GQA: a flash-style prefill over a packed batch (optionally
// continuing a cached prefix: keys before the chunk come from the cache),
// the decode step against the per-sequence KV cache (split-KV for long
// contexts), and the store of new keys/values into that cache.
//
// The SIMT kernels share one inner step (tile_update): a warp owns R query
// rows (prefill: R consecutive queries of one head; decode: R heads of one
// KV group), the block holds a tile of BK keys/values in shared memory as
// FP32, lane j scores key j for all R rows, and the running max / sum /
// output of the online softmax stay in registers. No score matrix exists
// outside one tile. They serve FP32 (exact to the CPU up to summation
// order), BF16 with dv > 128 and BF16 decode with more than 16 heads per KV
// head. BF16 otherwise runs on the tensor cores (attention_tc.cuh,
// namespace tc). dk, dv are
// template parameters so the loops unroll.
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hk_common.cuh"

namespace {

constexpr int BK = 32;     // keys per tile: one per lane when scoring
constexpr int WARPS = 4;   // warps per block
constexpr int R_PRE = 8;   // query rows per warp in prefill (32 per block)
constexpr int R_DEC = 4;   // heads per warp in decode (16 per KV group at most)

template <int DK, int DV, int R> struct Rows {
    static constexpr int NC = (DV + 31) / 32;  // output columns per lane
    float m[R], l[R], acc[R][NC];
    __device__ void init() {
#pragma unroll
        for (int r = 0; r < R; r++) {
            m[r] = -INFINITY;
            l[r] = 0.0f;
#pragma unroll
            for (int u = 0; u < NC; u++) acc[r][u] = 0.0f;
        }
    }
};

// Shared memory of one block, in floats.
template <int DK, int DV, int R> struct Smem {
    static constexpr int q = WARPS * R * DK;   // Qs [WARPS*R][DK]
    static constexpr int k = BK * (DK + 1);    // Ks [BK][DK+1]: +1 keeps lane-per-key reads off one bank
    static constexpr int v = BK * DV;          // Vs [BK][DV]
    static constexpr int p = WARPS * R * BK;   // Ps [WARPS][R][BK]
    static constexpr size_t bytes = sizeof(float) * (size_t)(q + k + v + p);
};

// One key tile for the R rows of this warp. vis(r, j): is key j of the tile
// visible to row r (false for rows or keys that do not exist).
template <int DK, int DV, int R, typename Vis>
__device__ __forceinline__ void tile_update(Rows<DK, DV, R> &st, const float *Qw, const float *Ks, const float *Vs,
                                            float *Pw, float scale, Vis vis) {
    const int lane = threadIdx.x & 31;
    float s[R];
#pragma unroll
    for (int r = 0; r < R; r++) s[r] = 0.0f;
    const float *kr = Ks + lane * (DK + 1);
#pragma unroll 16
    for (int d = 0; d < DK; d++) {
        float kd = kr[d];
#pragma unroll
        for (int r = 0; r < R; r++) s[r] += Qw[r * DK + d] * kd;
    }
#pragma unroll
    for (int r = 0; r < R; r++) {
        float sc = vis(r, lane) ? s[r] * scale : -INFINITY;
        float mnew = fmaxf(st.m[r], warp_max(sc));
        // exp(-inf) is 0; guard the -inf - -inf case of rows with nothing visible yet
        float p = sc == -INFINITY ? 0.0f : expf(sc - mnew);
        float alpha = st.m[r] == -INFINITY ? 0.0f : expf(st.m[r] - mnew);
        st.l[r] = st.l[r] * alpha + warp_sum(p);
        st.m[r] = mnew;
        Pw[r * BK + lane] = p;
#pragma unroll
        for (int u = 0; u < Rows<DK, DV, R>::NC; u++) st.acc[r][u] *= alpha;
    }
    __syncwarp();
#pragma unroll 4
    for (int j = 0; j < BK; j++) {
        float vv[Rows<DK, DV, R>::NC];
#pragma unroll
        for (int u = 0; u < Rows<DK, DV, R>::NC; u++) {
            int c = lane + 32 * u;
            vv[u] = c < DV ? Vs[j * DV + c] : 0.0f;
        }
#pragma unroll
        for (int r = 0; r < R; r++) {
            float pr = Pw[r * BK + j];
#pragma unroll
            for (int u = 0; u < Rows<DK, DV, R>::NC; u++) st.acc[r][u] += pr * vv[u];
        }
    }
    __syncwarp();  // Pw is rewritten by the next tile
}

// Loads BK key/value rows into shared memory as FP32; row_of(j) gives the
// key row's element 0 (and the value row's) or null for a missing key, which
// becomes zeros (0 * garbage could be NaN). vec: every row is 16-byte
// aligned, so rows move in 16-byte pieces (8 BF16 or 4 FP32 values).
template <typename T> __device__ __forceinline__ void unpack16(const uint4 &raw, float *dst) {
    if constexpr (IsBf16<T>::value) {
        const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&raw);
#pragma unroll
        for (int e = 0; e < 4; e++) {
            float2 f = __bfloat1622float2(h[e]);
            dst[2 * e] = f.x;
            dst[2 * e + 1] = f.y;
        }
    } else {
        dst[0] = __uint_as_float(raw.x), dst[1] = __uint_as_float(raw.y);
        dst[2] = __uint_as_float(raw.z), dst[3] = __uint_as_float(raw.w);
    }
}

template <typename T, int DK, int DV, typename RowOf>
__device__ __forceinline__ void load_kv(float *Ks, float *Vs, bool vec, RowOf row_of) {
    constexpr int EPC = 16 / sizeof(T);  // elements per 16-byte piece
    if (vec && DK % EPC == 0 && DV % EPC == 0) {
        constexpr int KC = DK / EPC > 0 ? DK / EPC : 1, VC = DV / EPC > 0 ? DV / EPC : 1;
        for (int idx = threadIdx.x; idx < BK * KC; idx += blockDim.x) {
            int j = idx / KC, piece = idx % KC;
            const T *kp, *vp;
            row_of(j, &kp, &vp);
            float f[EPC];
            if (kp) unpack16<T>(*reinterpret_cast<const uint4 *>(kp + piece * EPC), f);
#pragma unroll
            for (int e = 0; e < EPC; e++) Ks[j * (DK + 1) + piece * EPC + e] = kp ? f[e] : 0.0f;
        }
        for (int idx = threadIdx.x; idx < BK * VC; idx += blockDim.x) {
            int j = idx / VC, piece = idx % VC;
            const T *kp, *vp;
            row_of(j, &kp, &vp);
            float f[EPC];
            if (vp) unpack16<T>(*reinterpret_cast<const uint4 *>(vp + piece * EPC), f);
#pragma unroll
            for (int e = 0; e < EPC; e++) Vs[j * DV + piece * EPC + e] = vp ? f[e] : 0.0f;
        }
        return;
    }
    for (int idx = threadIdx.x; idx < BK * DK; idx += blockDim.x) {
        int j = idx / DK, d = idx % DK;
        const T *kp, *vp;
        row_of(j, &kp, &vp);
        Ks[j * (DK + 1) + d] = kp ? ldf(kp + d) : 0.0f;
    }
    for (int idx = threadIdx.x; idx < BK * DV; idx += blockDim.x) {
        int j = idx / DV, c = idx % DV;
        const T *kp, *vp;
        row_of(j, &kp, &vp);
        Vs[idx] = vp ? ldf(vp + c) : 0.0f;
    }
}

// grid (query tiles, nh, B). Block: 32 queries of one head of one sequence.
// Row j of sequence b has position P0 + j, P0 = pos0[b] (0 without pos0).
// Keys run over absolute positions: those before P0 are read from the
// sequence's cache slots (kc/vc, engine/cache.h layout), the others from
// the packed chunk rows, so a chunk continues a cached prefix exactly.
template <typename T, int DK, int DV>
__global__ void __launch_bounds__(WARPS * 32)
    attn_prefill_kernel(T *out, int ldo, const T *q, int ldq, const T *k, int ldk, const T *v, int ldv,
                        const T *const *kc, int ldkc, const T *const *vc, int ldvc, const int *pos0, const int *cu,
                        int group, int M, int window, float scale) {
    pdl_entry();
    using S = Smem<DK, DV, R_PRE>;
    extern __shared__ float smem[];
    float *Qs = smem, *Ks = Qs + S::q, *Vs = Ks + S::k, *Ps = Vs + S::v;
    const int b = blockIdx.z, head = blockIdx.y, warp = threadIdx.x >> 5;
    const int s0 = cu[b], len = cu[b + 1] - s0;
    const int P0 = pos0 ? pos0[b] : 0;
    const int q0 = blockIdx.x * (WARPS * R_PRE);
    if (q0 >= len) return;
    const int q1 = min(q0 + WARPS * R_PRE, len);
    const int kvh = head / group;
    const T *kcb = P0 > 0 ? kc[b] + (size_t)kvh * DK : nullptr, *vcb = P0 > 0 ? vc[b] + (size_t)kvh * DV : nullptr;
    const bool vec = aligned16(k + (size_t)kvh * DK, (size_t)ldk * sizeof(T)) &&
                     aligned16(v + (size_t)kvh * DV, (size_t)ldv * sizeof(T)) &&
                     (P0 == 0 || (aligned16(kcb, (size_t)ldkc * sizeof(T)) && aligned16(vcb, (size_t)ldvc * sizeof(T))));
    for (int idx = threadIdx.x; idx < WARPS * R_PRE * DK; idx += blockDim.x) {
        int r = idx / DK, d = idx % DK, qr = q0 + r;
        Qs[idx] = qr < len ? ldf(q + (size_t)(s0 + qr) * ldq + (size_t)head * DK + d) : 0.0f;
    }
    Rows<DK, DV, R_PRE> st;
    st.init();
    const int my_q0 = q0 + warp * R_PRE;            // chunk row of this warp's first query
    const int kend = P0 + q1;                       // one past the block's last query position
    const int band_lo = P0 + q0 - window;           // first key any query of the block sees in its window
    for (int kt = 0; kt < kend; kt += BK) {
        // Tiles wholly after the meta keys and before every query's window are
        // skipped, jumping straight to the tile that holds band_lo.
        if (window > 0 && kt >= M && kt + BK - 1 < band_lo) {
            kt = (band_lo / BK) * BK - BK;
            continue;
        }
        __syncthreads();  // the previous tile's readers are done
        load_kv<T, DK, DV>(Ks, Vs, vec, [&](int j, const T **kp, const T **vp) {
            int key = kt + j;
            if (key >= kend) {
                *kp = *vp = nullptr;
            } else if (key < P0) {
                size_t slot = (size_t)cache_slot_dev(key, M, window);
                *kp = kcb + slot * ldkc;
                *vp = vcb + slot * ldvc;
            } else {
                *kp = k + (size_t)(s0 + key - P0) * ldk + (size_t)kvh * DK;
                *vp = v + (size_t)(s0 + key - P0) * ldv + (size_t)kvh * DV;
            }
        });
        __syncthreads();
        tile_update<DK, DV, R_PRE>(st, Qs + warp * R_PRE * DK, Ks, Vs, Ps + warp * R_PRE * BK, scale,
                                   [&](int r, int j) {
                                       int qr = my_q0 + r, qp = P0 + qr, kp = kt + j;
                                       return qr < len && kp <= qp && (window <= 0 || kp < M || qp - kp <= window);
                                   });
    }
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int r = 0; r < R_PRE; r++) {
        int qr = my_q0 + r;
        if (qr >= len) break;
        float inv = 1.0f / st.l[r];
        T *o = out + (size_t)(s0 + qr) * ldo + (size_t)head * DV;
#pragma unroll
        for (int u = 0; u < Rows<DK, DV, R_PRE>::NC; u++) {
            int c = lane + 32 * u;
            if (c < DV) stf(o + c, st.acc[r][u] * inv);
        }
    }
}

// grid (splits, nkv, B). Block: all query heads of one KV head of one
// sequence, over one split of its visible keys (meta keys, then the band).
template <typename T, int DK, int DV>
__global__ void __launch_bounds__(WARPS * 32)
    attn_decode_kernel(T *out, int ldo, const T *q, int ldq, const T *const *kc, int ldkc, const T *const *vc,
                       int ldvc, const int *pos, int group, int nh, int M, int window, float scale, float *ws_o,
                       float *ws_ml) {
    pdl_entry();
    using S = Smem<DK, DV, R_DEC>;
    extern __shared__ float smem[];
    float *Qs = smem, *Ks = Qs + S::q, *Vs = Ks + S::k, *Ps = Vs + S::v;
    const int b = blockIdx.z, g = blockIdx.y, sp = blockIdx.x, nsplit = gridDim.x, warp = threadIdx.x >> 5;
    const int p = pos[b];
    const int meta_end = min(M, p + 1);
    const int band_start = window > 0 ? max(M, p - window) : M;
    const int nvis = meta_end + max(0, p + 1 - band_start);
    const int chunk = (nvis + nsplit - 1) / nsplit;
    const int i0 = sp * chunk, i1 = min(nvis, i0 + chunk);
    const T *kb = kc[b] + (size_t)g * DK, *vb = vc[b] + (size_t)g * DV;
    const bool vec = aligned16(kb, (size_t)ldkc * sizeof(T)) && aligned16(vb, (size_t)ldvc * sizeof(T));
    for (int idx = threadIdx.x; idx < WARPS * R_DEC * DK; idx += blockDim.x) {
        int h = idx / DK, d = idx % DK;
        Qs[idx] = h < group ? ldf(q + (size_t)b * ldq + (size_t)(g * group + h) * DK + d) : 0.0f;
    }
    Rows<DK, DV, R_DEC> st;
    st.init();
    for (int it = i0; it < i1; it += BK) {
        __syncthreads();
        load_kv<T, DK, DV>(Ks, Vs, vec, [&](int j, const T **kp, const T **vp) {
            int i = it + j;
            if (i >= i1) {
                *kp = *vp = nullptr;
                return;
            }
            int slot = cache_slot_dev(i < meta_end ? i : band_start + (i - meta_end), M, window);
            *kp = kb + (size_t)slot * ldkc;
            *vp = vb + (size_t)slot * ldvc;
        });
        __syncthreads();
        tile_update<DK, DV, R_DEC>(st, Qs + warp * R_DEC * DK, Ks, Vs, Ps + warp * R_DEC * BK, scale,
                                   [&](int r, int j) { return warp * R_DEC + r < group && it + j < i1; });
    }
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int r = 0; r < R_DEC; r++) {
        int h = warp * R_DEC + r;
        if (h >= group) break;
        int head = g * group + h;
        if (nsplit == 1) {
            float inv = 1.0f / st.l[r];
            T *o = out + (size_t)b * ldo + (size_t)head * DV;
#pragma unroll
            for (int u = 0; u < Rows<DK, DV, R_DEC>::NC; u++) {
                int c = lane + 32 * u;
                if (c < DV) stf(o + c, st.acc[r][u] * inv);
            }
        } else {  // unnormalised partial result; an empty split leaves m = -inf, l = 0
            size_t part = ((size_t)b * nh + head) * nsplit + sp;
#pragma unroll
            for (int u = 0; u < Rows<DK, DV, R_DEC>::NC; u++) {
                int c = lane + 32 * u;
                if (c < DV) ws_o[part * DV + c] = st.acc[r][u];
            }
            if (lane == 0) {
                ws_ml[2 * part] = st.m[r];
                ws_ml[2 * part + 1] = st.l[r];
            }
        }
    }
}

// grid (nh, B), DV threads: merges the splits' partial softmax results.
template <typename T>
__global__ void attn_combine_kernel(T *out, int ldo, const float *ws_o, const float *ws_ml, int nh, int nsplit,
                                    int dv) {
    pdl_entry();
    const int head = blockIdx.x, b = blockIdx.y;
    size_t base = ((size_t)b * nh + head) * nsplit;
    float mx = -INFINITY;
    for (int s = 0; s < nsplit; s++) mx = fmaxf(mx, ws_ml[2 * (base + s)]);
    for (int c = threadIdx.x; c < dv; c += blockDim.x) {
        float num = 0.0f, den = 0.0f;
        for (int s = 0; s < nsplit; s++) {
            float m = ws_ml[2 * (base + s)];
            if (m == -INFINITY) continue;
            float f = expf(m - mx);
            num += f * ws_o[(base + s) * dv + c];
            den += f * ws_ml[2 * (base + s) + 1];
        }
        stf(out + (size_t)b * ldo + (size_t)head * dv + c, num / den);
    }
}

// grid (max_len, B): one row per block.
template <typename T>
__global__ void kv_store_kernel(T *const *kc, int ldkc, T *const *vc, int ldvc, const T *k, int ldk, const T *v,
                                int ldv, const int *cu, const int *pos0, int kw, int vw, int M, int window) {
    pdl_entry();
    const int b = blockIdx.y, t = blockIdx.x;
    const int row0 = cu ? cu[b] : b, len = cu ? cu[b + 1] - cu[b] : 1;
    if (t >= len) return;
    const int p = pos0[b] + t, last = pos0[b] + len - 1;
    if (window > 0 && p >= M && p < last - window) return;  // a later row of this call takes the ring slot
    const int slot = cache_slot_dev(p, M, window);
    const T *ks = k + (size_t)(row0 + t) * ldk, *vs = v + (size_t)(row0 + t) * ldv;
    T *kd = kc[b] + (size_t)slot * ldkc, *vd = vc[b] + (size_t)slot * ldvc;
    for (int i = threadIdx.x; i < kw; i += blockDim.x) kd[i] = ks[i];
    for (int i = threadIdx.x; i < vw; i += blockDim.x) vd[i] = vs[i];
}

#include "attention_tc.cuh"      // the BF16 tensor-core prefill and decode (namespace tc)
#include "attention_wgmma.cuh"  // the BF16 prefill on Hopper's warpgroup MMA (namespace wg)

int sm_count() {
    static int n = 0;
    if (n == 0) {
        int dev = 0;
        if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
            n = 132;
    }
    return n;
}

}  // namespace

// An integer switch from the environment, within [lo, hi]; fallback when unset or unreadable.
static long env_long(const char *name, long fallback, long lo, long hi) {
    const char *e = getenv(name);
    const long v = e && *e ? atol(e) : 0;
    return v <= 0 ? fallback : v < lo ? lo : v > hi ? hi : v;
}

extern "C" int hk_attn_decode_splits(int B, int max_pos, int nh, int nkv, int dv, int M, int window,
                                     const void *workspace, size_t workspace_bytes) {
    if (B <= 0 || nkv <= 0 || nh <= 0 || dv <= 0) return 1;
    // Visible keys at most: meta + band (window) or every position (global).
    long max_keys = (long)max_pos + 1;
    if (window > 0 && max_keys > (long)M + window + 1) max_keys = (long)M + window + 1;
    // Decode is bound by reading the cache: enough blocks in flight to cover
    // the chip `waves` times (HYMEVAL_DECODE_WAVES, default 4), splits of at
    // least split_keys keys (HYMEVAL_DECODE_SPLIT_KEYS, default 128: a stage
    // of the tensor-core kernel, four SIMT tiles), within the workspace. Both
    // are switches to time: at batch 128 the default gives one split (640
    // blocks, 2.4 rounds of the two blocks an SM holds, the last one 40 %
    // full), at batch 1 a window layer's 1,152 keys make 9 splits and a merge.
    static const long waves = env_long("HYMEVAL_DECODE_WAVES", 4, 1, 64);
    static const long split_keys = env_long("HYMEVAL_DECODE_SPLIT_KEYS", 128, 1, 1L << 24);
    long by_keys = (max_keys + split_keys - 1) / split_keys;
    long by_chip = (waves * sm_count() + (long)B * nkv - 1) / ((long)B * nkv);
    long nsplit = by_keys < by_chip ? by_keys : by_chip;
    size_t per_split = (size_t)B * nh * (dv + 2) * sizeof(float);
    long fit = workspace ? (long)(workspace_bytes / per_split) : 1;
    if (nsplit > fit) nsplit = fit;
    if (nsplit > 65535) nsplit = 65535;
    return nsplit < 1 ? 1 : (int)nsplit;
}

namespace {

// HYMEVAL_ATTN_SIMT=1 keeps BF16 attention on the SIMT kernels (comparisons, timings).
bool simt_forced() {
    static int forced = -1;
    if (forced < 0) {
        const char *e = getenv("HYMEVAL_ATTN_SIMT");
        forced = e && strcmp(e, "1") == 0;
    }
    return forced == 1;
}

// HYMEVAL_ATTN_WGMMA (or hk_attn_wgmma): 0 keeps the BF16 prefill on the
// mma.sync kernel; 1 runs it on the block-synchronous wgmma kernel (three
// warpgroups a block), 2 or 3 on the warp-specialized one (that many
// computing warpgroups and one copying), where the build has them (sm_90a)
// and dk = 64, dv = 64 or 128; 4 or 5 on the persistent form of the
// warp-specialized one (3 or 2 computing warpgroups); 6 and 7 are 3 and 4
// with the copier's fresh-tile step (wg::copy_fresh_tile); 8 and 9 the
// persistent kernel with it and with each tile's softmax beside the previous
// tile's P V (Rows::tile_pipelined; 3 or 2 computing warpgroups). The default is 7
// where they are built: on the H100, Hymba-1.5B at S 8192, with the softmax's
// instruction diet, it was the fastest at the window layers (0.342 ms
// against 0.350 for 8 and 0.523 for 4) and the global layers (0.899 against
// 0.936 and 1.608 ms), and at batch-1 prefill (0.0816 s against 0.0820 for
// 8; docs/PERFORMANCE.md).
#ifdef HK_WGMMA
constexpr int kWgmmaDefault = 7;
#else
constexpr int kWgmmaDefault = 0;
#endif
int g_wgmma = -1;
int wgmma_setting() {
    if (g_wgmma < 0) {
        const char *e = getenv("HYMEVAL_ATTN_WGMMA");
        g_wgmma = e && *e ? atoi(e) : kWgmmaDefault;
    }
    return g_wgmma;
}

#ifdef HK_WGMMA
// The wgmma kernels. WS: the warp-specialized kernel (one more warpgroup,
// the copier), else the block-synchronous one; PERSIST (with WS): its
// persistent form, one block an SM walking the query tiles.
template <int NWG, int DV, bool WS, bool PERSIST = false, bool PIPE = false>
int prefill_wgmma(bf16 *out, int ldo, const bf16 *q, int ldq, const bf16 *k, int ldk, const bf16 *v, int ldv,
                  const bf16 *const *kc, int ldkc, const bf16 *const *vc, int ldvc, const int *pos0, const int *cu,
                  int B, int max_len, int nh, int group, int M, int window, float scale, bool fast_copy,
                  cudaStream_t stream) {
    static_assert(WS || !PERSIST, "the persistent form is warp-specialized");
    using S = wg::Smem<NWG, DV, WS ? wg::kWsStages : wg::kStages, PERSIST ? 2 : 1>;
    auto kern = [] {  // only the kernel asked for is instantiated
        if constexpr (PERSIST) return wg::prefill_ws_persistent_kernel<NWG, DV, PIPE>;
        else if constexpr (WS) return wg::prefill_ws_kernel<NWG, DV>;
        else return wg::prefill_kernel<NWG, DV>;
    }();
    if (WS) {  // its register hand-over assumes the count it was compiled for
        static int regs = -1;
        if (regs < 0) {
            cudaFuncAttributes fa;
            CUDA_CHECK(cudaFuncGetAttributes(&fa, kern));
            regs = fa.numRegs;
        }
        if (regs != wg::ws_launch_regs(NWG) && wg::ws_launch_regs(NWG) < 240)
            return hk_fail(HK_EINVAL, __FILE__, __LINE__,
                           "attention: the warp-specialized kernel has %d registers a thread, not the %d its "
                           "setmaxnreg hand-over needs (HYMEVAL_ATTN_WGMMA=1 or 0 avoids it)",
                           regs, wg::ws_launch_regs(NWG));
    }
    CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)S::bytes));
    CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    const int threads = 128 * (NWG + (WS ? 1 : 0)), ntq = hk_cdiv(max_len, S::QT);
    if constexpr (PERSIST) {
        const long items = (long)ntq * nh * B;
        ARG_CHECK(items <= INT_MAX);
        const int grid = (int)(items < sm_count() ? items : sm_count());
        CUDA_CHECK(hk_launch(kern, grid, threads, S::bytes, stream, out, ldo, q, ldq, k, ldk, v, ldv, kc, ldkc, vc,
                             ldvc, pos0, cu, group, M, window, scale, ntq, nh, B, (int)fast_copy));
    } else if constexpr (WS) {
        CUDA_CHECK(hk_launch(kern, dim3(ntq, nh, B), threads, S::bytes, stream, out, ldo, q, ldq, k, ldk, v, ldv, kc,
                             ldkc, vc, ldvc, pos0, cu, group, M, window, scale, (int)fast_copy));
    } else {
        CUDA_CHECK(hk_launch(kern, dim3(ntq, nh, B), threads, S::bytes, stream, out, ldo, q, ldq, k, ldk, v, ldv, kc,
                             ldkc, vc, ldvc, pos0, cu, group, M, window, scale));
    }
    return 0;
}
#endif

template <int DK, int DV>
int prefill_tc(bf16 *out, int ldo, const bf16 *q, int ldq, const bf16 *k, int ldk, const bf16 *v, int ldv,
               const bf16 *const *kc, int ldkc, const bf16 *const *vc, int ldvc, const int *pos0, const int *cu, int B,
               int max_len, int nh, int group, int M, int window, float scale, cudaStream_t stream) {
    using TS = tc::Smem<DK, DV>;
    auto kern = tc::prefill_kernel<DK, DV>;
    CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)TS::bytes));
    CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    dim3 grid(hk_cdiv(max_len, tc::QT), nh, B);
    CUDA_CHECK(hk_launch(kern, grid, 128, TS::bytes, stream, out, ldo, q, ldq, k, ldk, v, ldv, kc, ldkc, vc, ldvc, pos0,
                         cu, group, M, window, scale));
    return 0;
}

template <typename T, int DK, int DV>
int prefill_dk_dv(T *out, int ldo, const T *q, int ldq, const T *k, int ldk, const T *v, int ldv, const T *const *kc,
                  int ldkc, const T *const *vc, int ldvc, const int *pos0, const int *cu, int B, int max_len, int nh,
                  int group, int M, int window, float scale, cudaStream_t stream) {
    if constexpr (IsBf16<T>::value && DV <= 128) {
#ifdef HK_WGMMA
        if constexpr (DK == wg::DK && (DV == 64 || DV == 128)) {
            const int set = simt_forced() ? 0 : wgmma_setting();
            if (set == 1)
                return prefill_wgmma<3, DV, false>(out, ldo, q, ldq, k, ldk, v, ldv, kc, ldkc, vc, ldvc, pos0, cu, B,
                                                   max_len, nh, group, M, window, scale, false, stream);
            // 6, 7: 3, 4 with the copier's fresh-tile step; 8, 9: persistent with it and pipelined
            // computing warpgroups (3, 2 of them)
            if (set >= 2 && set <= 9)
                return (set == 2                ? prefill_wgmma<2, DV, true>
                        : set == 3 || set == 6 ? prefill_wgmma<3, DV, true>
                        : set == 4 || set == 7 ? prefill_wgmma<3, DV, true, true>
                        : set == 5              ? prefill_wgmma<2, DV, true, true>
                        : set == 8              ? prefill_wgmma<3, DV, true, true, true>
                                                : prefill_wgmma<2, DV, true, true, true>)(
                    out, ldo, q, ldq, k, ldk, v, ldv, kc, ldkc, vc, ldvc, pos0, cu, B, max_len, nh, group, M, window,
                    scale, set >= 6, stream);
        }
#endif
        if (!simt_forced())  // tensor cores
            return prefill_tc<DK, DV>(out, ldo, q, ldq, k, ldk, v, ldv, kc, ldkc, vc, ldvc, pos0, cu, B, max_len, nh,
                                      group, M, window, scale, stream);
    }
    using S = Smem<DK, DV, R_PRE>;
    auto kern = attn_prefill_kernel<T, DK, DV>;
    if (S::bytes > 48 * 1024)
        CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)S::bytes));
    dim3 grid(hk_cdiv(max_len, WARPS * R_PRE), nh, B);
    CUDA_CHECK(hk_launch(kern, grid, WARPS * 32, S::bytes, stream, out, ldo, q, ldq, k, ldk, v, ldv, kc, ldkc, vc, ldvc,
                         pos0, cu, group, M, window, scale));
    return 0;
}

template <typename T, int DK, int DV>
int decode_dk_dv(T *out, int ldo, const T *q, int ldq, const T *const *kc, int ldkc, const T *const *vc, int ldvc,
                 const int *pos, int B, int nsplit, int nh, int nkv, int M, int window, float scale, float *ws,
                 cudaStream_t stream) {
    float *ws_o = ws, *ws_ml = ws ? ws + (size_t)B * nh * nsplit * DV : nullptr;
    dim3 grid(nsplit, nkv, B);
    bool done = false;
    if constexpr (IsBf16<T>::value && DV <= 128) {
        if (nh / nkv <= 16 && !simt_forced()) {  // tensor cores: the group's heads are one mma tile
            using TS = tc::DecSmem<DK, DV>;
            auto kern = tc::decode_kernel<DK, DV>;
            CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)TS::bytes));
            CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
            CUDA_CHECK(hk_launch(kern, grid, tc::kDecWarps * 32, TS::bytes, stream, out, ldo, q, ldq, kc, ldkc, vc,
                                 ldvc, pos, nh / nkv, nh, M, window, scale, ws_o, ws_ml));
            done = true;
        }
    }
    if (!done) {
        using S = Smem<DK, DV, R_DEC>;
        auto kern = attn_decode_kernel<T, DK, DV>;
        if (S::bytes > 48 * 1024)
            CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)S::bytes));
        CUDA_CHECK(hk_launch(kern, grid, WARPS * 32, S::bytes, stream, out, ldo, q, ldq, kc, ldkc, vc, ldvc, pos,
                             nh / nkv, nh, M, window, scale, ws_o, ws_ml));
    }
    if (nsplit > 1) {
        CUDA_CHECK(hk_launch(attn_combine_kernel<T>, dim3(nh, B), DV < 256 ? DV : 256, 0, stream, out, ldo, ws_o, ws_ml,
                             nh, nsplit, DV));
    }
    return 0;
}

// The (dk, dv) pairs built: dv = dk or 2 dk, dk in 16..128.
#define HK_ATTN_SHAPES(X) X(16, 16) X(16, 32) X(32, 32) X(32, 64) X(64, 64) X(64, 128) X(128, 128) X(128, 256)

template <typename T>
int prefill_launch(void *out, int ldo, const void *q, int ldq, const void *k, int ldk, const void *v, int ldv,
                   const void *const *kc, int ldkc, const void *const *vc, int ldvc, const int *pos0, const int *cu,
                   int B, int max_len, int nh, int nkv, int dk, int dv, int M, int window, float scale,
                   cudaStream_t stream) {
    ARG_CHECK(out && q && k && v && cu && B > 0 && max_len >= 0 && nh > 0 && nkv > 0 && nh % nkv == 0 && M >= 0);
    ARG_CHECK(ldq >= nh * dk && ldk >= nkv * dk && ldv >= nkv * dv && ldo >= nh * dv);
    ARG_CHECK(!pos0 || (kc && vc && ldkc >= nkv * dk && ldvc >= nkv * dv));
    ARG_CHECK(B <= 65535 && nh <= 65535);
    if (max_len == 0) return 0;
#define X(DK_, DV_)                                                                                          \
    if (dk == DK_ && dv == DV_)                                                                              \
        return prefill_dk_dv<T, DK_, DV_>((T *)out, ldo, (const T *)q, ldq, (const T *)k, ldk, (const T *)v, \
                                          ldv, (const T *const *)kc, ldkc, (const T *const *)vc, ldvc, pos0,  \
                                          cu, B, max_len, nh, nh / nkv, M, window, scale, stream);
    HK_ATTN_SHAPES(X)
#undef X
    return hk_fail(HK_EINVAL, __FILE__, __LINE__, "attention: unsupported head dims dk=%d dv=%d", dk, dv);
}

template <typename T>
int decode_launch(void *out, int ldo, const void *q, int ldq, const void *const *kc, int ldkc, const void *const *vc,
                  int ldvc, const int *pos, int B, int max_pos, int nh, int nkv, int dk, int dv, int M, int window,
                  float scale, void *workspace, size_t workspace_bytes, cudaStream_t stream) {
    ARG_CHECK(out && q && kc && vc && pos && B > 0 && max_pos >= 0 && nh > 0 && nkv > 0 && nh % nkv == 0 && M >= 0);
    ARG_CHECK(nh / nkv <= WARPS * R_DEC);
    ARG_CHECK(ldq >= nh * dk && ldkc >= nkv * dk && ldvc >= nkv * dv && ldo >= nh * dv && B <= 65535);
    const int nsplit = hk_attn_decode_splits(B, max_pos, nh, nkv, dv, M, window, workspace, workspace_bytes);
#define X(DK_, DV_)                                                                                           \
    if (dk == DK_ && dv == DV_)                                                                               \
        return decode_dk_dv<T, DK_, DV_>((T *)out, ldo, (const T *)q, ldq, (const T *const *)kc, ldkc,        \
                                         (const T *const *)vc, ldvc, pos, B, nsplit, nh, nkv, M, window, \
                                         scale, (float *)workspace, stream);
    HK_ATTN_SHAPES(X)
#undef X
    return hk_fail(HK_EINVAL, __FILE__, __LINE__, "attention: unsupported head dims dk=%d dv=%d", dk, dv);
}

template <typename T>
int kv_store_launch(void *const *kc, int ldkc, void *const *vc, int ldvc, const void *k, int ldk, const void *v,
                    int ldv, const int *cu, const int *pos0, int B, int max_len, int nkv, int dk, int dv, int M,
                    int window, cudaStream_t stream) {
    ARG_CHECK(kc && vc && k && v && pos0 && B > 0 && B <= 65535 && max_len >= 0 && nkv > 0 && dk > 0 && dv > 0);
    ARG_CHECK(ldkc >= nkv * dk && ldvc >= nkv * dv && ldk >= nkv * dk && ldv >= nkv * dv);
    if (!cu) max_len = 1;
    if (max_len == 0) return 0;
    CUDA_CHECK(hk_launch(kv_store_kernel<T>, dim3(max_len, B), 128, 0, stream, (T *const *)kc, ldkc, (T *const *)vc,
                         ldvc, (const T *)k, ldk, (const T *)v, ldv, cu, pos0, nkv * dk, nkv * dv, M, window));
    return 0;
}

}  // namespace

extern "C" int hk_attn_prefill(hk_dtype dtype, void *out, int ldo, const void *q, int ldq, const void *k, int ldk,
                               const void *v, int ldv, const int *cu_seqlens, int B, int max_len, int nh, int nkv,
                               int dk, int dv, int M, int window, float scale, cudaStream_t stream) {
    return hk_attn_prefill_cached(dtype, out, ldo, q, ldq, k, ldk, v, ldv, nullptr, 0, nullptr, 0, nullptr,
                                  cu_seqlens, B, max_len, nh, nkv, dk, dv, M, window, scale, stream);
}

extern "C" int hk_attn_prefill_cached(hk_dtype dtype, void *out, int ldo, const void *q, int ldq, const void *k,
                                      int ldk, const void *v, int ldv, const void *const *k_cache, int ldkc,
                                      const void *const *v_cache, int ldvc, const int *pos0, const int *cu_seqlens,
                                      int B, int max_len, int nh, int nkv, int dk, int dv, int M, int window,
                                      float scale, cudaStream_t stream) {
    HK_DISPATCH(dtype,
                prefill_launch<float>(out, ldo, q, ldq, k, ldk, v, ldv, k_cache, ldkc, v_cache, ldvc, pos0,
                                      cu_seqlens, B, max_len, nh, nkv, dk, dv, M, window, scale, stream),
                prefill_launch<bf16>(out, ldo, q, ldq, k, ldk, v, ldv, k_cache, ldkc, v_cache, ldvc, pos0, cu_seqlens,
                                     B, max_len, nh, nkv, dk, dv, M, window, scale, stream));
}

extern "C" int hk_attn_wgmma(int setting) {
    const int was = wgmma_setting();
    if (setting >= 0) g_wgmma = setting;
    return was;
}

extern "C" int hk_attn_wgmma_built(void) {
#ifdef HK_WGMMA
    return 1;
#else
    return 0;
#endif
}

extern "C" size_t hk_attn_decode_workspace_bytes(int B, int nh, int dv, int max_splits) {
    return (size_t)B * nh * (dv + 2) * sizeof(float) * (size_t)(max_splits > 0 ? max_splits : 1);
}

extern "C" int hk_attn_decode(hk_dtype dtype, void *out, int ldo, const void *q, int ldq, const void *const *k_cache,
                              int ldkc, const void *const *v_cache, int ldvc, const int *pos, int B, int max_pos,
                              int nh, int nkv, int dk, int dv, int M, int window, float scale, void *workspace,
                              size_t workspace_bytes, cudaStream_t stream) {
    HK_DISPATCH(dtype,
                decode_launch<float>(out, ldo, q, ldq, k_cache, ldkc, v_cache, ldvc, pos, B, max_pos, nh, nkv, dk, dv,
                                     M, window, scale, workspace, workspace_bytes, stream),
                decode_launch<bf16>(out, ldo, q, ldq, k_cache, ldkc, v_cache, ldvc, pos, B, max_pos, nh, nkv, dk, dv,
                                    M, window, scale, workspace, workspace_bytes, stream));
}

extern "C" int hk_kv_store(hk_dtype dtype, void *const *k_cache, int ldkc, void *const *v_cache, int ldvc,
                           const void *k, int ldk, const void *v, int ldv, const int *cu_seqlens, const int *pos0,
                           int B, int max_len, int nkv, int dk, int dv, int M, int window, cudaStream_t stream) {
    HK_DISPATCH(dtype,
                kv_store_launch<float>(k_cache, ldkc, v_cache, ldvc, k, ldk, v, ldv, cu_seqlens, pos0, B, max_len,
                                       nkv, dk, dv, M, window, stream),
                kv_store_launch<bf16>(k_cache, ldkc, v_cache, ldvc, k, ldk, v, ldv, cu_seqlens, pos0, B, max_len,
                                      nkv, dk, dv, M, window, stream));
}
