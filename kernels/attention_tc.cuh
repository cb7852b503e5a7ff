// attention_tc.cuh: the BF16 attention kernels on the tensor cores
// (mma.sync m16n8k16, FP32 accumulation), FlashAttention-2 style, included
// by attention.cu inside its anonymous namespace (it uses aligned16 and
// cache_slot_dev from there). Visibility, the cached prefix, GQA and the
// ring slots are exactly those of the SIMT kernels in attention.cu.
//
// Both kernels stream key/value tiles through shared memory with cp.async
// into two stages, so the copy of tile i+1 overlaps the math of tile i.
// Scores go to base 2 (scale * log2 e folded in, ex2_ftz): the softmax is the
// same function, and ex2 is one instruction. The probabilities are fed back
// to the P V product as BF16 A fragments (the one extra rounding compared
// with the SIMT kernel, which multiplies FP32 probabilities: a relative 2^-9
// on each weight, well inside the BF16 tolerance).
namespace tc {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

__device__ __forceinline__ uint32_t smem_addr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
// c += a (16x16, row) * b (16x8, col), BF16 in, FP32 accumulate.
__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

// 16 bytes global -> shared without passing through registers; bytes = 0
// writes zeros (src is then not read, but must still be a valid address).
__device__ __forceinline__ void cp_async16(void *dst, const void *src, int bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// Copies 8 consecutive BF16 values (16-byte pieces when vec), or zeros for src == NULL.
__device__ __forceinline__ void copy8(bf16 *dst, const bf16 *src, bool vec) {
    if (!src) {
        *reinterpret_cast<uint4 *>(dst) = make_uint4(0, 0, 0, 0);
    } else if (vec) {
        *reinterpret_cast<uint4 *>(dst) = *reinterpret_cast<const uint4 *>(src);
    } else {
#pragma unroll
        for (int e = 0; e < 8; e++) dst[e] = src[e];
    }
}

// Stages `rows` rows of W values into shared memory: row_src(j) is row j's
// first element, or NULL for a missing row (zeros); dst(j, piece) is where
// the row's 16-byte piece goes (a plain or a swizzled layout). vec: every
// row is 16-byte aligned, so the copy is asynchronous (the caller commits
// and waits); otherwise plain loads and stores.
// Threads tid = 0 .. nthreads-1 share the pieces (the whole block by default).
template <int W, typename RowSrc, typename Dst>
__device__ __forceinline__ void stage_rows(int rows, bool vec, const bf16 *any_valid, RowSrc row_src, Dst dst,
                                           int tid, int nthreads) {
    constexpr int P = W / 8;
    for (int idx = tid; idx < rows * P; idx += nthreads) {
        const int j = idx / P, piece = idx % P;
        const bf16 *src = row_src(j);
        bf16 *d = dst(j, piece);
        if (vec) cp_async16(d, src ? src + piece * 8 : any_valid, src ? 16 : 0);
        else copy8(d, src ? src + piece * 8 : nullptr, false);
    }
}
template <int W, typename RowSrc, typename Dst>
__device__ __forceinline__ void stage_rows(int rows, bool vec, const bf16 *any_valid, RowSrc row_src, Dst dst) {
    stage_rows<W>(rows, vec, any_valid, row_src, dst, (int)threadIdx.x, (int)blockDim.x);
}
// The plain layout: row j at dst + j * ld.
struct RowMajor {
    bf16 *base;
    int ld;
    __device__ bf16 *operator()(int j, int piece) const { return base + j * ld + piece * 8; }
};

// Where the rows of one prefill block's sequence and head are: its queries
// in the packed rows, keys and values before P0 in the sequence's cache
// (ring slots), from P0 on in the packed rows; NULL past kend (zeros).
template <int DK, int DV> struct PrefillRows {
    const bf16 *qb, *kb, *vb, *kcb, *vcb;
    int ldq, ldk, ldv, ldkc, ldvc;
    int s0, len, P0, M, window, kend;
    bool vec;  // every row 16-byte aligned: cp.async

    __device__ PrefillRows(const bf16 *q, int ldq_, const bf16 *k, int ldk_, const bf16 *v, int ldv_,
                           const bf16 *const *kc, int ldkc_, const bf16 *const *vc, int ldvc_, const int *pos0,
                           const int *cu, int b, int head, int group, int M_, int window_)
        : ldq(ldq_), ldk(ldk_), ldv(ldv_), ldkc(ldkc_), ldvc(ldvc_), M(M_), window(window_) {
        s0 = cu[b], len = cu[b + 1] - s0;
        P0 = pos0 ? pos0[b] : 0;
        const int kvh = head / group;
        kcb = P0 > 0 ? kc[b] + (size_t)kvh * DK : nullptr, vcb = P0 > 0 ? vc[b] + (size_t)kvh * DV : nullptr;
        qb = q + (size_t)head * DK, kb = k + (size_t)kvh * DK, vb = v + (size_t)kvh * DV;
        vec = aligned16(qb, (size_t)ldq * 2) && aligned16(kb, (size_t)ldk * 2) && aligned16(vb, (size_t)ldv * 2) &&
              (P0 == 0 || (aligned16(kcb, (size_t)ldkc * 2) && aligned16(vcb, (size_t)ldvc * 2)));
        kend = P0;
    }
    // the block's query rows [q0, q0 + n) (q0 < len): sets kend past its last row's key, returns the rows' end
    __device__ int take_rows(int q0, int n) {
        const int q1 = min(q0 + n, len);
        kend = P0 + q1;
        return q1;
    }
    __device__ const bf16 *query(int r) const { return r < len ? qb + (size_t)(s0 + r) * ldq : nullptr; }
    __device__ const bf16 *key(int key) const {
        return key >= kend ? nullptr
               : key < P0  ? kcb + (size_t)cache_slot_dev(key, M, window) * ldkc
                           : kb + (size_t)(s0 + key - P0) * ldk;
    }
    __device__ const bf16 *value(int key) const {
        return key >= kend ? nullptr
               : key < P0  ? vcb + (size_t)cache_slot_dev(key, M, window) * ldvc
                           : vb + (size_t)(s0 + key - P0) * ldv;
    }
    // may chunk row r (query position P0 + r) see key position `key`?
    __device__ bool visible(int r, int key) const {
        const int qp = P0 + r;
        return r < len && key <= qp && (window <= 0 || key < M || qp - key <= window);
    }
    // is every key of [kt, kt + n) visible to every chunk row of [r0, r1) (r1 - r0 == rows)?
    __device__ bool all_visible(int kt, int n, int r0, int r1, int rows) const {
        return r1 - r0 == rows && kt + n - 1 <= P0 + r0 &&
               (window <= 0 || kt + n <= M || (P0 + r1 - 1) - max(kt, M) <= window);
    }
    // the first key tile (of n keys) at or after kt that rows from r0 on can see: tiles wholly
    // after the meta keys and before the window of row r0 are skipped
    __device__ int first_tile(int kt, int n, int r0) const {
        const int band_lo = P0 + r0 - window;
        return window > 0 && kt >= M && kt + n - 1 < band_lo ? (band_lo / n) * n : kt;
    }
};

// How far (base 2) a tile's row max may pass the reference max before the
// reference moves (softmax_scores_as).
constexpr float kMaxLag = 8.0f;

// The online-softmax step of one warp's 16 rows over a tile of NT*8 keys,
// on scores in the mma accumulator layout (sc[j]: key columns 8j + 2(lane%4)
// + {0,1}; elements 0,1 of row g = lane/4, 2,3 of row g + 8; wgmma's
// m64 accumulators give each warp the same layout). Masks (vis(row_sel,
// col) is asked only when !full), updates m (base-2 scaled) and l (this
// lane's partial sums), leaves the unnormalised probabilities in sc and the
// factor the output rows must be rescaled by in alpha (softmax_tile below
// applies it; a pipelined caller applies it once the product still reading
// o is done). The maxima are taken on the raw scores and scaled once
// (scale2 > 0 keeps the order); each probability is then one FFMA and one
// ex2_ftz: 2^(s scale2 - m).
template <int NT, bool FULL, typename Vis>
__device__ __forceinline__ void softmax_scores_as(float (&sc)[NT][4], float scale2, Vis vis, float (&m)[2],
                                                  float (&l)[2], float (&alpha)[2]) {
    const int lane = threadIdx.x & 31;
    if constexpr (!FULL) {
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                if (!vis(e >> 1, j * 8 + (lane & 3) * 2 + (e & 1))) sc[j][e] = -INFINITY;
    }
    // row maxima over the quad; the maxima and sums below are trees over
    // the tile, not one serial chain
    float mx[2];
#pragma unroll
    for (int h = 0; h < 2; h++) {
        float part[NT];
#pragma unroll
        for (int j = 0; j < NT; j++) part[j] = fmaxf(sc[j][2 * h], sc[j][2 * h + 1]);
#pragma unroll
        for (int w = 1; w < NT; w *= 2)
#pragma unroll
            for (int j = 0; j + w < NT; j += 2 * w) part[j] = fmaxf(part[j], part[j + w]);
        mx[h] = part[0];
    }
#pragma unroll
    for (int h = 0; h < 2; h++) {
        mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
        mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
        // The reference max moves only when the tile's exceeds it by more
        // than kMaxLag: until then alpha is exactly 1 and rescale() skips o.
        // o / l is the same for any reference; probabilities stay below
        // 2^kMaxLag, far inside FP32 and BF16 range.
        const float mt = mx[h] * scale2;
        const float mn = m[h] != -INFINITY && mt <= m[h] + kMaxLag ? m[h] : fmaxf(m[h], mt);
        alpha[h] = m[h] == -INFINITY ? 0.0f : ex2_ftz(m[h] - mn);  // -inf - -inf guarded
        m[h] = mn;
    }
    // a row with nothing visible yet keeps m = -inf: subtract 0 there (2^-inf = 0)
    const float mref[2] = {m[0] == -INFINITY ? 0.0f : m[0], m[1] == -INFINITY ? 0.0f : m[1]};
#pragma unroll
    for (int j = 0; j < NT; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) sc[j][e] = ex2_ftz(fmaf(sc[j][e], scale2, -mref[e >> 1]));
#pragma unroll
    for (int h = 0; h < 2; h++) {
        float part[NT];
#pragma unroll
        for (int j = 0; j < NT; j++) part[j] = sc[j][2 * h] + sc[j][2 * h + 1];
#pragma unroll
        for (int w = 1; w < NT; w *= 2)
#pragma unroll
            for (int j = 0; j + w < NT; j += 2 * w) part[j] += part[j + w];
        l[h] = l[h] * alpha[h] + part[0];
    }
}
// Two separate bodies: a tile every row sees whole (the most) runs no mask
// arithmetic at all, where one body would compute and select it anyway.
template <int NT, typename Vis>
__device__ __forceinline__ void softmax_scores(float (&sc)[NT][4], float scale2, bool full, Vis vis, float (&m)[2],
                                               float (&l)[2], float (&alpha)[2]) {
    if (full) softmax_scores_as<NT, true>(sc, scale2, vis, m, l, alpha);
    else softmax_scores_as<NT, false>(sc, scale2, vis, m, l, alpha);
}
// o's rows g and g + 8 times alpha[0] and alpha[1]. A warp whose rows all
// kept their reference max skips it (the usual case past the first tiles).
template <int OT> __device__ __forceinline__ void rescale(float (&o)[OT][4], const float (&alpha)[2]) {
    if (!__any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f)) return;
#pragma unroll
    for (int t = 0; t < OT; t++) o[t][0] *= alpha[0], o[t][1] *= alpha[0], o[t][2] *= alpha[1], o[t][3] *= alpha[1];
}
// softmax_scores, then o rescaled.
template <int NT, int OT, typename Vis>
__device__ __forceinline__ void softmax_tile(float (&sc)[NT][4], float scale2, bool full, Vis vis,
                                             float (&o)[OT][4], float (&m)[2], float (&l)[2]) {
    float alpha[2];
    softmax_scores<NT>(sc, scale2, full, vis, m, l, alpha);
    rescale<OT>(o, alpha);
}

// The probabilities of key n-tiles 2t and 2t + 1 as the BF16 A fragment of
// a 16-key step of P V (the same fragment for mma.sync and wgmma).
template <int NT>
__device__ __forceinline__ void p_fragment(uint32_t (&pa)[4], const float (&sc)[NT][4], int t) {
    pa[0] = pack_bf16(sc[2 * t][0], sc[2 * t][1]);
    pa[1] = pack_bf16(sc[2 * t][2], sc[2 * t][3]);
    pa[2] = pack_bf16(sc[2 * t + 1][0], sc[2 * t + 1][1]);
    pa[3] = pack_bf16(sc[2 * t + 1][2], sc[2 * t + 1][3]);
}

// Normalises a warp's output rows g and g + 8 (chunk rows r0, r0 + 8; l
// still this lane's partial sums) and stores those below len as BF16 at
// columns col0 ... of the packed output rows.
template <int OT>
__device__ __forceinline__ void store_rows(bf16 *out, int ldo, const float (&o)[OT][4], float (&l)[2], int s0, int r0,
                                           int len, int col0) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
        l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
    }
    const float i0 = 1.0f / l[0], i1 = 1.0f / l[1];
    const int r1 = r0 + 8;
#pragma unroll
    for (int t = 0; t < OT; t++) {
        const int col = col0 + t * 8 + (lane & 3) * 2;
        if (r0 < len) {
            bf16 *dst = out + (size_t)(s0 + r0) * ldo + col;
            dst[0] = __float2bfloat16_rn(o[t][0] * i0);
            dst[1] = __float2bfloat16_rn(o[t][1] * i0);
        }
        if (r1 < len) {
            bf16 *dst = out + (size_t)(s0 + r1) * ldo + col;
            dst[0] = __float2bfloat16_rn(o[t][2] * i1);
            dst[1] = __float2bfloat16_rn(o[t][3] * i1);
        }
    }
}

// One warp's tile of the online softmax: its 16 query rows against NT*8
// keys. qa: the rows' Q fragments; Ks/Vs: the keys' rows in shared memory
// (strides ks, vs); vis as softmax_tile's. m, l and o carry over tiles.
template <int DK, int DV, int NT, typename Vis>
__device__ __forceinline__ void warp_tile(const uint32_t (&qa)[DK / 16][4], const bf16 *Ks, int ks, const bf16 *Vs,
                                          int vs, float scale2, bool full, Vis vis, float (&o)[DV / 8][4],
                                          float (&m)[2], float (&l)[2]) {
    constexpr int OT = DV / 8, KK = DK / 16;
    const int lane = threadIdx.x & 31;
    float sc[NT][4];
#pragma unroll
    for (int j = 0; j < NT; j++) sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < KK; kk++)
#pragma unroll
        for (int np = 0; np < NT / 2; np++) {
            uint32_t bk[4];
            ldsm_x4(bk, Ks + (np * 16 + (lane & 7) + ((lane >> 4) << 3)) * ks + kk * 16 + ((lane >> 3) & 1) * 8);
            mma(sc[2 * np], qa[kk], bk[0], bk[1]);
            mma(sc[2 * np + 1], qa[kk], bk[2], bk[3]);
        }
    softmax_tile<NT, OT>(sc, scale2, full, vis, o, m, l);
    // O += P V: the S accumulators of two key n-tiles are one A fragment
#pragma unroll
    for (int t = 0; t < NT / 2; t++) {
        uint32_t pa[4];
        p_fragment<NT>(pa, sc, t);
#pragma unroll
        for (int cp = 0; cp < OT / 2; cp++) {
            uint32_t bv[4];
            ldsm_x4_trans(bv, Vs + (t * 16 + (lane & 15)) * vs + cp * 16 + (lane >> 4) * 8);
            mma(o[2 * cp], pa, bv[0], bv[1]);
            mma(o[2 * cp + 1], pa, bv[2], bv[3]);
        }
    }
}

// ---- prefill: a block of 4 warps takes 64 queries of one head, each warp
// 16 rows; key tiles of 64. (Tiles of 32 under a 128-register cap, four
// blocks an SM, measured 5-9% slower: docs/PERFORMANCE.md.)
constexpr int QT = 64;  // queries per block (16 per warp)
constexpr int KT = 64;  // keys per tile

template <int DK, int DV> struct Smem {
    // row strides in elements: 16 bytes of padding keep ldmatrix rows off one bank
    static constexpr int qs = DK + 8, ks = DK + 8, vs = DV + 8;
    static constexpr int stage = KT * ks + KT * vs;  // one K tile and its V tile
    static constexpr size_t bytes = sizeof(bf16) * (size_t)(QT * qs + 2 * stage);
};

// grid (query tiles of 64, nh, B), 128 threads; registers capped so three
// blocks share an SM (two left each scheduler too few warps to hide the mma
// and exp latencies).
template <int DK, int DV>
__global__ void __launch_bounds__(128, 3)
    prefill_kernel(bf16 *out, int ldo, const bf16 *q, int ldq, const bf16 *k, int ldk, const bf16 *v, int ldv,
                   const bf16 *const *kc, int ldkc, const bf16 *const *vc, int ldvc, const int *pos0, const int *cu,
                   int group, int M, int window, float scale) {
    pdl_entry();
    using S = Smem<DK, DV>;
    constexpr int OT = DV / 8, KK = DK / 16;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16 *Qs = reinterpret_cast<bf16 *>(smem_raw), *stages = Qs + QT * S::qs;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    PrefillRows<DK, DV> rows(q, ldq, k, ldk, v, ldv, kc, ldkc, vc, ldvc, pos0, cu, blockIdx.z, blockIdx.y, group, M,
                             window);
    const int len = rows.len, q0 = blockIdx.x * QT;
    if (q0 >= len) return;
    const int q1 = rows.take_rows(q0, QT), kend = rows.kend;

    auto load_tile = [&](int kt, int s) {
        bf16 *Ks = stages + s * S::stage, *Vs = Ks + KT * S::ks;
        stage_rows<DK>(KT, rows.vec, rows.kb, [&](int j) { return rows.key(kt + j); }, RowMajor{Ks, S::ks});
        stage_rows<DV>(KT, rows.vec, rows.vb, [&](int j) { return rows.value(kt + j); }, RowMajor{Vs, S::vs});
        cp_commit();
    };

    int kt = rows.first_tile(0, KT, q0);
    if (kt < kend) load_tile(kt, 0);  // in flight while Q is staged
    for (int idx = threadIdx.x; idx < QT * (DK / 8); idx += blockDim.x) {
        int r = idx / (DK / 8), piece = idx % (DK / 8);
        const bf16 *src = rows.query(q0 + r);
        copy8(Qs + r * S::qs + piece * 8, src ? src + piece * 8 : nullptr, rows.vec);
    }
    __syncthreads();
    uint32_t qa[KK][4];
#pragma unroll
    for (int kk = 0; kk < KK; kk++) ldsm_x4(qa[kk], Qs + (warp * 16 + (lane & 15)) * S::qs + kk * 16 + (lane >> 4) * 8);

    float o[OT][4];
#pragma unroll
    for (int t = 0; t < OT; t++) o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows g and g + 8 of this warp
    const int r0 = q0 + warp * 16 + (lane >> 2);              // chunk row of this thread's row g
    const float scale2 = scale * kLog2e;

    for (int s = 0; kt < kend; s ^= 1) {
        const int next = rows.first_tile(kt + KT, KT, q0);
        if (next < kend) load_tile(next, s ^ 1);  // its stage was last read before the previous barrier
        else cp_commit();                         // an empty group keeps the wait count uniform
        cp_wait<1>();                             // this tile's copies are done (the next may fly)
        __syncthreads();
        const bf16 *Ks = stages + s * S::stage, *Vs = Ks + KT * S::ks;
        warp_tile<DK, DV, KT / 8>(qa, Ks, S::ks, Vs, S::vs, scale2, rows.all_visible(kt, KT, q0, q1, QT),
                                  [&](int h, int col) { return rows.visible(r0 + 8 * h, kt + col); }, o, m, l);
        __syncthreads();  // this stage is reloaded two tiles on
        kt = next;
    }
    store_rows<OT>(out, ldo, o, l, rows.s0, r0, len, blockIdx.y * DV);
}

// ---- decode: one block per (split, KV head, sequence). The group's query
// heads are the 16 rows of an mma tile (rows past the group are zeros and
// never written); each of the 8 warps takes an eighth of every stage's keys
// with its own online softmax, and the warps merge at the end. Decode reads
// the whole visible cache once per step: two stages of DKT keys per block
// keep the bytes in flight, and short per-warp work keeps the math from
// becoming the limit (16 warps an SM).
constexpr int kDecWarps = 8;
template <int DK, int DV> struct DecSmem {
    static constexpr int DKT = 128;             // keys per stage
    static constexpr int KW = DKT / kDecWarps;  // keys per warp per stage: one 16-key step of P V
    static constexpr int qs = DK + 8, ks = DK + 8, vs = DV + 8;
    static constexpr int stage = DKT * ks + DKT * vs;
    static constexpr size_t tiles = sizeof(bf16) * (size_t)(16 * qs + 2 * stage);
    static constexpr size_t merge = sizeof(float) * (size_t)kDecWarps * 16 * (DV + 2);  // o, m, l of every warp
    static constexpr size_t bytes = tiles > merge ? tiles : merge;
};

// grid (splits, nkv, B), kDecWarps * 32 threads. Output as attn_decode_kernel: the
// normalised rows (one split) or each split's unnormalised part with its
// natural-log max and sum (attn_combine_kernel merges them).
template <int DK, int DV>
__global__ void __launch_bounds__(kDecWarps * 32, 2)
    decode_kernel(bf16 *out, int ldo, const bf16 *q, int ldq, const bf16 *const *kc, int ldkc, const bf16 *const *vc,
                  int ldvc, const int *pos, int group, int nh, int M, int window, float scale, float *ws_o,
                  float *ws_ml) {
    pdl_entry();
    using S = DecSmem<DK, DV>;
    constexpr int OT = DV / 8, KK = DK / 16, DKT = S::DKT, KW = S::KW;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16 *Qs = reinterpret_cast<bf16 *>(smem_raw), *stages = Qs + 16 * S::qs;
    const int b = blockIdx.z, g = blockIdx.y, sp = blockIdx.x, nsplit = gridDim.x;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int p = pos[b];
    const int meta_end = min(M, p + 1);
    const int band_start = window > 0 ? max(M, p - window) : M;
    const int nvis = meta_end + max(0, p + 1 - band_start);
    const int chunk = (nvis + nsplit - 1) / nsplit;
    const int i0 = sp * chunk, i1 = min(nvis, i0 + chunk);
    const bf16 *kb = kc[b] + (size_t)g * DK, *vb = vc[b] + (size_t)g * DV;
    const bf16 *qb = q + (size_t)b * ldq + (size_t)g * group * DK;
    const bool vec = aligned16(kb, (size_t)ldkc * 2) && aligned16(vb, (size_t)ldvc * 2);

    auto slot_of = [&](int i) { return cache_slot_dev(i < meta_end ? i : band_start + (i - meta_end), M, window); };
    auto load_tile = [&](int it, int s) {
        bf16 *Ks = stages + s * S::stage, *Vs = Ks + DKT * S::ks;
        stage_rows<DK>(DKT, vec, kb, [&](int j) -> const bf16 * {
            return it + j < i1 ? kb + (size_t)slot_of(it + j) * ldkc : nullptr;
        }, RowMajor{Ks, S::ks});
        stage_rows<DV>(DKT, vec, vb, [&](int j) -> const bf16 * {
            return it + j < i1 ? vb + (size_t)slot_of(it + j) * ldvc : nullptr;
        }, RowMajor{Vs, S::vs});
        cp_commit();
    };

    int it = i0;
    if (it < i1) load_tile(it, 0);
    for (int idx = threadIdx.x; idx < 16 * (DK / 8); idx += blockDim.x) {
        int r = idx / (DK / 8), piece = idx % (DK / 8);
        copy8(Qs + r * S::qs + piece * 8, r < group ? qb + (size_t)r * DK + piece * 8 : nullptr, false);
    }
    __syncthreads();
    uint32_t qa[KK][4];
#pragma unroll
    for (int kk = 0; kk < KK; kk++) ldsm_x4(qa[kk], Qs + (lane & 15) * S::qs + kk * 16 + (lane >> 4) * 8);

    float o[OT][4];
#pragma unroll
    for (int t = 0; t < OT; t++) o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    const float scale2 = scale * kLog2e;
    for (int s = 0; it < i1; s ^= 1) {
        const int next = it + DKT;
        if (next < i1) load_tile(next, s ^ 1);
        else cp_commit();
        cp_wait<1>();
        __syncthreads();
        const int kbase = it + warp * KW;  // visible index of this warp's first key
        if (kbase < i1) {
            const bf16 *Ks = stages + s * S::stage + warp * KW * S::ks;
            const bf16 *Vs = stages + s * S::stage + DKT * S::ks + warp * KW * S::vs;
            warp_tile<DK, DV, KW / 8>(qa, Ks, S::ks, Vs, S::vs, scale2, kbase + KW <= i1,
                                      [&](int, int col) { return kbase + col < i1; }, o, m, l);
        }
        __syncthreads();
        it = next;
    }

    // merge the warps: o, m (base 2) and l of every warp through shared memory
    float *mo = reinterpret_cast<float *>(smem_raw), *mml = mo + kDecWarps * 16 * DV;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
        l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
    }
    const int rg = lane >> 2;
#pragma unroll
    for (int t = 0; t < OT; t++) {
        const int col = t * 8 + (lane & 3) * 2;
        float *w0 = mo + ((size_t)warp * 16 + rg) * DV + col, *w1 = w0 + 8 * DV;
        w0[0] = o[t][0], w0[1] = o[t][1], w1[0] = o[t][2], w1[1] = o[t][3];
    }
    if ((lane & 3) == 0) {
        mml[(warp * 16 + rg) * 2] = m[0], mml[(warp * 16 + rg) * 2 + 1] = l[0];
        mml[(warp * 16 + rg + 8) * 2] = m[1], mml[(warp * 16 + rg + 8) * 2 + 1] = l[1];
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < group * DV; idx += blockDim.x) {
        const int r = idx / DV, c = idx % DV, head = g * group + r;
        float mx = -INFINITY;
#pragma unroll
        for (int w = 0; w < kDecWarps; w++) mx = fmaxf(mx, mml[(w * 16 + r) * 2]);
        float num = 0.0f, den = 0.0f;
#pragma unroll
        for (int w = 0; w < kDecWarps; w++) {
            const float mw = mml[(w * 16 + r) * 2];
            if (mw == -INFINITY) continue;  // a warp that saw no key
            const float f = exp2f(mw - mx);
            num += f * mo[((size_t)w * 16 + r) * DV + c];
            den += f * mml[(w * 16 + r) * 2 + 1];
        }
        if (nsplit == 1) {
            out[(size_t)b * ldo + (size_t)head * DV + c] = __float2bfloat16_rn(num / den);
        } else {  // an empty split leaves m = -inf, l = 0
            const size_t part = ((size_t)b * nh + head) * nsplit + sp;
            ws_o[part * DV + c] = num;
            if (c == 0) ws_ml[2 * part] = mx == -INFINITY ? -INFINITY : mx * kLn2, ws_ml[2 * part + 1] = den;
        }
    }
}

}  // namespace tc
