// attention_wgmma.cuh: the BF16 prefill attention on Hopper's warpgroup
// MMA (wgmma.mma_async, sm_90a), included by attention.cu after
// attention_tc.cuh (it shares that file's staging, visibility, online
// softmax and output code, so the two kernels compute the same function).
//
// Why: the mma.sync kernel is bound by the latency of its product ->
// softmax -> product chain within each warp (docs/PERFORMANCE.md). wgmma
// runs a warpgroup's products on the tensor cores asynchronously, from
// operands in shared memory, so one warpgroup's softmax overlaps another's
// products.
//
// A block is NWG warpgroups, 64 query rows each, of one head; they share
// each stage of 64 keys. Per tile a warpgroup forms S = Q K^T (m64n64k16,
// Q and K from shared memory), runs the online softmax in registers (the
// m64 accumulator gives each warp the layout of an mma.sync tile) and adds
// P V (m64nDVk16, P from registers, V from shared memory). Shared tiles are
// rows of 64 BF16 (128 bytes) in the 128-byte swizzle: the 16-byte piece c
// of row r sits at piece c ^ (r % 8), what wgmma's descriptors expect of
// 1024-byte aligned groups of 8 rows. Q and K are K-major (dk along the
// row); V is MN-major (dv along the row) in blocks of 64 columns.
namespace wg {

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define HK_WG_DEVICE 1  // the wgmma instructions exist in this compilation pass
#endif

constexpr int KT = 64;  // keys per tile
constexpr int DK = 64;  // one 128-byte row of Q or K

template <int NWG, int DV, int STAGES, int QBUF = 1> struct Smem {
    static constexpr int QT = 64 * NWG;                    // query rows per block
    static constexpr int q_bytes = QT * 128;               // Q: [QT][64] (QBUF of them)
    static constexpr int k_bytes = KT * 128;               // K: [KT][64]
    static constexpr int v_block = KT * 128;               // V: DV / 64 blocks of [KT][64]
    static constexpr int stage = k_bytes + (DV / 64) * v_block;
    static constexpr size_t bytes = (size_t)QBUF * q_bytes + STAGES * stage + 1024;  // + alignment of the base to 1024
};

// The dynamic shared memory's first 1024-byte boundary (Smem reserves the room).
__device__ __forceinline__ unsigned char *align1024(unsigned char *p) {
    return reinterpret_cast<unsigned char *>(((uintptr_t)p + 1023) & ~(uintptr_t)1023);
}
// The 16-byte piece `piece` of row j in a block of 128-byte rows (swizzled).
__device__ __forceinline__ bf16 *swizzled(unsigned char *base, int j, int piece) {
    return reinterpret_cast<bf16 *>(base + j * 128 + ((piece ^ (j & 7)) << 4));
}
// V's row j, piece p (of DV / 8): column block p / 8 of [KT][64].
struct VLayout {
    unsigned char *base;
    __device__ bf16 *operator()(int j, int piece) const {
        return swizzled(base + (piece >> 3) * (KT * 128), j, piece & 7);
    }
};
struct KLayout {
    unsigned char *base;
    __device__ bf16 *operator()(int j, int piece) const { return swizzled(base, j, piece); }
};

// Shared-memory matrix descriptor, 128-byte swizzle: start address, leading
// byte offset (K-major: unused, 16; MN-major: between 64-column blocks),
// stride byte offset (between groups of 8 rows: 1024).
__device__ __forceinline__ uint64_t descriptor(const void *p, uint32_t lead, uint32_t stride) {
    const uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    return (uint64_t)((a & 0x3FFFF) >> 4) | (uint64_t)(lead >> 4) << 16 | (uint64_t)(stride >> 4) << 32 |
           (uint64_t)1 << 62;
}

#ifdef HK_WG_DEVICE
__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
// all but the newest committed group are done (groups complete in order)
__device__ __forceinline__ void wg_wait1() { asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory"); }
// the copies this thread made (generic proxy) become visible to wgmma's reads (async proxy)
__device__ __forceinline__ void proxy_fence() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
// keeps the compiler from moving reads of accumulators above the wait that completes them
template <int N> __device__ __forceinline__ void pin(float (&d)[N][4]) {
#pragma unroll
    for (int j = 0; j < N; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) asm volatile("" : "+f"(d[j][e])::"memory");
}

// The accumulator operands of one wgmma: d[j][0..3] for n8 tiles j, in the
// order of the register list (%0, %1, ...).
#define WG_D4(j) "+f"(d[j][0]), "+f"(d[j][1]), "+f"(d[j][2]), "+f"(d[j][3])
#define WG_D32 WG_D4(0), WG_D4(1), WG_D4(2), WG_D4(3), WG_D4(4), WG_D4(5), WG_D4(6), WG_D4(7)
#define WG_D64 WG_D32, WG_D4(8), WG_D4(9), WG_D4(10), WG_D4(11), WG_D4(12), WG_D4(13), WG_D4(14), WG_D4(15)
#define WG_R32 "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15," \
               "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31"
#define WG_R64 WG_R32 "," \
               "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47," \
               "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63"

// d (64 x 64) (+)= A (64 x 16, descriptor) * B (64 x 16 K-major, descriptor)
__device__ __forceinline__ void mma_ss_n64(float (&d)[8][4], uint64_t da, uint64_t db, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {" WG_R32 "}, %32, %33, p, 1, 1, 0, 0;\n}\n"
                 : WG_D32
                 : "l"(da), "l"(db), "r"(accumulate)
                 : "memory");
}
// d (64 x 64) += A (64 x 16, registers) * B (16 x 64 MN-major, descriptor)
__device__ __forceinline__ void mma_rs_n64(float (&d)[8][4], const uint32_t (&a)[4], uint64_t db) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {" WG_R32 "},"
                 " {%32,%33,%34,%35}, %36, p, 1, 1, 1;\n}\n"
                 : WG_D32
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1)
                 : "memory");
}
// d (64 x 128) += A (64 x 16, registers) * B (16 x 128 MN-major, descriptor)
__device__ __forceinline__ void mma_rs_n128(float (&d)[16][4], const uint32_t (&a)[4], uint64_t db) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {" WG_R64 "},"
                 " {%64,%65,%66,%67}, %68, p, 1, 1, 1;\n}\n"
                 : WG_D64
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1)
                 : "memory");
}
#undef WG_D4
#undef WG_D32
#undef WG_D64
#undef WG_R32
#undef WG_R64

// mbarriers (shared memory, 8 bytes each): the warp-specialized kernel's
// stage hand-over between the copying warpgroup and the computing ones.
__device__ __forceinline__ void mbar_init(uint64_t *b, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(tc::smem_addr(b)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t *b) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(tc::smem_addr(b)) : "memory");
}
// arrives once this thread's cp.async copies so far have landed (counts as one of the expected arrivals)
__device__ __forceinline__ void mbar_arrive_copies(uint64_t *b) {
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(tc::smem_addr(b)) : "memory");
}
// waits until the phase of the given parity has completed
__device__ __forceinline__ void mbar_wait(uint64_t *b, int parity) {
    asm volatile(
        "{\n.reg .pred done;\n"
        "wait_%=:\n"
        "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
        "@!done bra wait_%=;\n}\n" ::"r"(tc::smem_addr(b)),
        "r"(parity)
        : "memory");
}

template <int DV> __device__ __forceinline__ void mma_rs(float (&d)[DV / 8][4], const uint32_t (&a)[4], uint64_t db) {
    if constexpr (DV == 128) mma_rs_n128(d, a, db);
    else mma_rs_n64(d, a, db);
}

// S = Q Kᵀ of a warpgroup's 64 rows against the staged key tile: issued,
// not waited for.
__device__ __forceinline__ void issue_scores(float (&sc)[KT / 8][4], uint64_t qdesc, unsigned char *Ks) {
    const uint64_t kdesc = descriptor(Ks, 16, 1024);  // steps add to its address field (no carry: in smem)
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < DK / 16; kk++)  // 16 dk columns = 32 bytes along the swizzled rows
        mma_ss_n64(sc, qdesc + (uint64_t)(kk * 32 >> 4), kdesc + (uint64_t)(kk * 32 >> 4), kk > 0);
    wg_commit();
}

// A shared-memory store of v (a value the softmax produced). ptxas moves a
// wgmma wait above register-only work, which would put tile_pipelined's
// P V wait before its softmax and undo the overlap; the wait (a memory
// clobber) cannot pass this store, nor the store the work v depends on.
// Every thread writes the same word: one store a tile.
__device__ __forceinline__ void keep_before_wait(float v) {
    __shared__ float sink;
    asm volatile("st.shared.f32 [%0], %1;\n" ::"r"(tc::smem_addr(&sink)), "f"(v) : "memory");
}

// O += P V issued with the staged value tile (pa: P as BF16 A fragments),
// not waited for.
template <int DV>
__device__ __forceinline__ void issue_pv(float (&o)[DV / 8][4], const uint32_t (&pa)[KT / 16][4], unsigned char *Vs) {
    pin(o);
    const uint64_t vdesc = descriptor(Vs, KT * 128, 1024);
    wg_fence();
#pragma unroll
    for (int t = 0; t < KT / 16; t++)  // 16 keys = 16 rows of 128 bytes
        mma_rs<DV>(o, pa[t], vdesc + (uint64_t)(t * 16 * 128 >> 4));
    wg_commit();
}

// The online softmax of the scores (waited for), then O += P V issued with
// the staged value tile, not waited for.
template <int DV, typename Vis>
__device__ __forceinline__ void softmax_then_pv(float (&sc)[KT / 8][4], float scale2, bool full, Vis vis,
                                                float (&o)[DV / 8][4], float (&m)[2], float (&l)[2],
                                                unsigned char *Vs) {
    constexpr int NT = KT / 8;
    tc::softmax_tile<NT, DV / 8>(sc, scale2, full, vis, o, m, l);
    uint32_t pa[KT / 16][4];
#pragma unroll
    for (int t = 0; t < KT / 16; t++) tc::p_fragment<NT>(pa[t], sc, t);
    issue_pv<DV>(o, pa, Vs);
}

// What a warpgroup carries over the key tiles: its warp's 16 output rows in
// the making (o in the accumulator layout, the base-2 running maxima m and
// this lane's partial sums l of rows g and g + 8), and where its rows are.
template <int DV> struct Rows {
    float o[DV / 8][4];
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    int r0;           // chunk row of this thread's row g
    float scale2;     // scores to base 2
    uint64_t qdesc;   // the warpgroup's 64 Q rows
    __device__ Rows(unsigned char *Qs, int w0, float scale) {
        const int wgi = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
#pragma unroll
        for (int t = 0; t < DV / 8; t++) o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.0f;
        r0 = w0 + warp * 16 + (lane >> 2);
        scale2 = scale * tc::kLog2e;
        qdesc = descriptor(Qs + wgi * 64 * 128, 16, 1024);
    }
    // One key tile [kt, kt + KT) staged at Ks (keys) and Vs (values) for this
    // warpgroup's rows [w0, w1): S issued, waited for with the previous
    // tile's P V, then release() (that product's stage is read no more), the
    // softmax, and O += P V issued. A warpgroup skips a tile none of its rows
    // can see (causal edge, or before its window), but still waits.
    template <typename Release>
    __device__ void tile(const tc::PrefillRows<DK, DV> &rows, int kt, int w0, int w1, unsigned char *Ks,
                         unsigned char *Vs, Release release) {
        const bool any = w0 < w1 && kt <= rows.P0 + w1 - 1 && rows.first_tile(kt, KT, w0) == kt;
        float sc[KT / 8][4];
        if (any) issue_scores(sc, qdesc, Ks);
        wg_wait0();  // this S and the previous tile's P V (groups complete in order)
        pin(sc);
        pin(o);
        release();
        if (any)
            softmax_then_pv<DV>(sc, scale2, rows.all_visible(kt, KT, w0, w1, 64),
                                [&](int h, int col) { return rows.visible(r0 + 8 * h, kt + col); }, o, m, l, Vs);
    }

    // The pipelined step (FlashAttention-3's overlap within a warpgroup):
    // this tile's S and the previous tile's P V are issued together, the
    // softmax runs once S is done while P V still runs on the tensor cores,
    // and o is rescaled after that product. pa holds the previous tile's
    // probabilities until their product is issued; pv_stage is the stage
    // that product reads (-1: none pending). release(stage): a stage is read
    // no more by this warpgroup (every stage exactly once, as with tile()).
    uint32_t pa[KT / 16][4];
    int pv_stage = -1;
    unsigned char *pv_vs = nullptr;
    template <typename Release>
    __device__ void tile_pipelined(const tc::PrefillRows<DK, DV> &rows, int kt, int w0, int w1, unsigned char *Ks,
                                   unsigned char *Vs, int stage, Release release) {
        const bool any = w0 < w1 && kt <= rows.P0 + w1 - 1 && rows.first_tile(kt, KT, w0) == kt;
        const bool pv = pv_stage >= 0;
        float sc[KT / 8][4];
        float alpha[2];
        auto softmax = [&] {
            pin(sc);
            tc::softmax_scores<KT / 8>(sc, scale2, rows.all_visible(kt, KT, w0, w1, 64),
                                       [&](int h, int col) { return rows.visible(r0 + 8 * h, kt + col); }, m, l,
                                       alpha);
        };
        // three separate paths, so ptxas sees each wait next to the products it completes
        if (any && pv) {
            issue_scores(sc, qdesc, Ks);
            issue_pv<DV>(o, pa, pv_vs);
            wg_wait1();  // S (the older group) is done; P V may still run
            softmax();
            keep_before_wait(l[0] + l[1]);  // (the sums: every exp of the tile)
            wg_wait0();  // the previous P V: o is current, its stage and pa are free
        } else if (any) {
            issue_scores(sc, qdesc, Ks);
            wg_wait0();
            softmax();
        } else if (pv) {
            issue_pv<DV>(o, pa, pv_vs);
            wg_wait0();
        }
        pin(o);
        if (pv) release(pv_stage);
        if (any) {
            tc::rescale<DV / 8>(o, alpha);
#pragma unroll
            for (int t = 0; t < KT / 16; t++) tc::p_fragment<KT / 8>(pa[t], sc, t);
            pv_stage = stage, pv_vs = Vs;
        } else {
            release(stage);
            pv_stage = -1;
        }
    }
    // The last tile's P V, issued and waited for.
    template <typename Release> __device__ void finish_pipelined(Release release) {
        if (pv_stage < 0) return;
        issue_pv<DV>(o, pa, pv_vs);
        wg_wait0();
        pin(o);
        release(pv_stage);
        pv_stage = -1;
    }
};
#endif  // HK_WG_DEVICE

// The copier's step for a key tile wholly in the chunk's own rows (kt >=
// P0: none from the cache's ring slots) when every row is 16-byte aligned:
// the same pieces to the same places as stage_rows, with the per-piece
// address arithmetic hoisted. A thread keeps one 16-byte column of K (of V)
// and walks rows 16 (128 / (DV / 8)) apart, which keep their swizzle phase
// (row % 8), so each piece is one pointer step and one cp.async. Keys at or
// past kend are zeros, as stage_rows writes them. tid: 0..127, the copier.
template <int DV>
__device__ __forceinline__ void copy_fresh_tile(const tc::PrefillRows<DK, DV> &rows, int kt, unsigned char *Ks,
                                                int tid) {
    {
        const int p = tid & 7, r = tid >> 3;  // K: 8 pieces a row, rows r + 16 i
        const int key = kt + r;
        unsigned char *d = Ks + r * 128 + ((p ^ (r & 7)) << 4);
        const bf16 *src = rows.kb + (size_t)(rows.s0 + key - rows.P0) * rows.ldk + p * 8;
#pragma unroll
        for (int i = 0; i < KT / 16; i++) {
            const bool in = key + 16 * i < rows.kend;
            tc::cp_async16(d + i * 16 * 128, in ? src + (size_t)(16 * i) * rows.ldk : rows.kb, in ? 16 : 0);
        }
    }
    {
        constexpr int P = DV / 8, RP = 128 / P;  // V: P pieces a row in column blocks of 64, rows r + RP i
        const int p = tid % P, r = tid / P;
        const int key = kt + r;
        unsigned char *d = Ks + KT * 128 + (p >> 3) * (KT * 128) + r * 128 + (((p & 7) ^ (r & 7)) << 4);
        const bf16 *src = rows.vb + (size_t)(rows.s0 + key - rows.P0) * rows.ldv + p * 8;
#pragma unroll
        for (int i = 0; i < KT / RP; i++) {
            const bool in = key + RP * i < rows.kend;
            tc::cp_async16(d + i * RP * 128, in ? src + (size_t)(RP * i) * rows.ldv : rows.vb, in ? 16 : 0);
        }
    }
}

// The block-synchronous kernel: NWG warpgroups copy each tile together,
// meet at __syncthreads twice a tile, and compute. Three stages, so a
// warpgroup need not wait for its P V product before the next tile (only
// for the next S: wgmma groups complete in order). grid (query tiles of
// 64 * NWG, nh, B), 128 * NWG threads. Arguments as tc::prefill_kernel.
constexpr int kStages = 3;
template <int NWG, int DV>
__global__ void __launch_bounds__(128 * NWG, 1)
    prefill_kernel(bf16 *out, int ldo, const bf16 *q, int ldq, const bf16 *k, int ldk, const bf16 *v, int ldv,
                   const bf16 *const *kc, int ldkc, const bf16 *const *vc, int ldvc, const int *pos0, const int *cu,
                   int group, int M, int window, float scale) {
#ifdef HK_WG_DEVICE
    pdl_entry();
    constexpr int STAGES = kStages;
    using S = Smem<NWG, DV, STAGES>;
    constexpr int QT = S::QT;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    unsigned char *Qs = align1024(smem_raw);
    unsigned char *stages = Qs + S::q_bytes;
    const int wgi = threadIdx.x >> 7;  // this thread's warpgroup
    tc::PrefillRows<DK, DV> rows(q, ldq, k, ldk, v, ldv, kc, ldkc, vc, ldvc, pos0, cu, blockIdx.z, blockIdx.y, group,
                                 M, window);
    const int len = rows.len, q0 = blockIdx.x * QT;
    if (q0 >= len) return;
    const int q1 = rows.take_rows(q0, QT), kend = rows.kend;
    // this warpgroup's rows [w0, w1) (w1 <= w0: none, it still copies and meets the barriers)
    const int w0 = q0 + wgi * 64, w1 = min(w0 + 64, len);

    auto load_tile = [&](int kt, int s) {
        unsigned char *Ks = stages + s * S::stage;
        tc::stage_rows<DK>(KT, rows.vec, rows.kb, [&](int j) { return rows.key(kt + j); }, KLayout{Ks});
        tc::stage_rows<DV>(KT, rows.vec, rows.vb, [&](int j) { return rows.value(kt + j); }, VLayout{Ks + S::k_bytes});
        tc::cp_commit();
    };
    tc::stage_rows<DK>(QT, rows.vec, rows.qb, [&](int j) { return rows.query(q0 + j); }, KLayout{Qs});
    int kt = rows.first_tile(0, KT, q0);
    load_tile(kt, 0);  // commits Q's copies with the first tile's (a row sees itself: kt < kend)

    Rows<DV> acc(Qs, w0, scale);

    for (int s = 0; kt < kend; s = s + 1 == STAGES ? 0 : s + 1) {
        const int next = rows.first_tile(kt + KT, KT, q0);
        // its stage was last read two tiles ago: every warpgroup has waited for that P V since
        if (next < kend) load_tile(next, s + 1 == STAGES ? 0 : s + 1);
        else tc::cp_commit();                     // an empty group keeps the wait count uniform
        tc::cp_wait<1>();                         // this tile's copies are done (the next may fly)
        proxy_fence();
        __syncthreads();
        unsigned char *Ks = stages + s * S::stage;
        acc.tile(rows, kt, w0, w1, Ks, Ks + S::k_bytes, [] {});
        __syncthreads();  // this stage is reloaded STAGES tiles on
        kt = next;
    }
    wg_wait0();
    pin(acc.o);
    if (w0 < w1) tc::store_rows<DV / 8>(out, ldo, acc.o, acc.l, rows.s0, acc.r0, len, blockIdx.y * DV);
#endif  // HK_WG_DEVICE
}

// Registers a thread of the warp-specialized kernel: at launch (64K over
// the block's 128 (NWG + 1) threads, in steps of 8), for the copier, and for
// the computing warpgroups after setmaxnreg (what the copier gives up; at
// most 240). The launcher checks that the kernel got kLaunchRegs: with
// fewer, setmaxnreg.inc would wait forever.
constexpr int kWsStages = 4, kCopierRegs = 40;
__host__ __device__ constexpr int ws_regs_at_most(int regs, int cap) { return regs / 8 * 8 > cap ? cap : regs / 8 * 8; }
__host__ __device__ constexpr int ws_launch_regs(int nwg) { return ws_regs_at_most(65536 / (128 * (nwg + 1)), 255); }
__host__ __device__ constexpr int ws_consumer_regs(int nwg) {
    return ws_regs_at_most((65536 - 128 * kCopierRegs) / (128 * nwg), 240);
}

// The warp-specialized variant: one more warpgroup does all the copying and
// hands stages over through mbarriers (full: its copies landed; empty:
// every consumer thread is done with the stage), so the warpgroups meet no
// block-wide barrier inside the loop and drift apart: one's softmax runs
// while another's products do. A warpgroup releases a stage once the P V
// product that read it has completed (at its next S wait).
// The copying warpgroup gives registers to the others (setmaxnreg): it
// needs few, the softmax and the accumulators many. Four stages: a stage is
// released only at the next tile's S wait, so the copier can run two tiles
// ahead of the slowest warpgroup.
// grid (query tiles of 64 * NWG, nh, B), 128 * (NWG + 1) threads.
template <int NWG, int DV>
__global__ void __launch_bounds__(128 * (NWG + 1), 1)
    prefill_ws_kernel(bf16 *out, int ldo, const bf16 *q, int ldq, const bf16 *k, int ldk, const bf16 *v, int ldv,
                      const bf16 *const *kc, int ldkc, const bf16 *const *vc, int ldvc, const int *pos0,
                      const int *cu, int group, int M, int window, float scale, int fast_copy) {
#ifdef HK_WG_DEVICE
    pdl_entry();
    constexpr int STAGES = kWsStages, CONSUMERS = 128 * NWG;
    using S = Smem<NWG, DV, STAGES>;
    constexpr int QT = S::QT;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    unsigned char *Qs = align1024(smem_raw);
    unsigned char *stages = Qs + S::q_bytes;
    __shared__ uint64_t full[STAGES], empty[STAGES], qfull;
    tc::PrefillRows<DK, DV> rows(q, ldq, k, ldk, v, ldv, kc, ldkc, vc, ldvc, pos0, cu, blockIdx.z, blockIdx.y, group,
                                 M, window);
    const int len = rows.len, q0 = blockIdx.x * QT;
    if (q0 >= len) return;
    const int q1 = rows.take_rows(q0, QT), kend = rows.kend;
    if (threadIdx.x == 0) {
        for (int s = 0; s < STAGES; s++) mbar_init(&full[s], 128), mbar_init(&empty[s], CONSUMERS);
        mbar_init(&qfull, 128);
    }
    __syncthreads();

    constexpr int kLaunchRegs = ws_launch_regs(NWG), kConsumerRegs = ws_consumer_regs(NWG);
    if (threadIdx.x >= CONSUMERS) {  // the copying warpgroup
        if (kLaunchRegs < 240) asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kCopierRegs));
        const int tid = threadIdx.x - CONSUMERS;
        // a thread's plain stores (unaligned rows) are released by an ordinary arrival
        auto arrive = [&](uint64_t *b) { rows.vec ? mbar_arrive_copies(b) : mbar_arrive(b); };
        tc::stage_rows<DK>(QT, rows.vec, rows.qb, [&](int j) { return rows.query(q0 + j); }, KLayout{Qs}, tid, 128);
        arrive(&qfull);
        int i = 0;
        for (int kt = rows.first_tile(0, KT, q0); kt < kend; kt = rows.first_tile(kt + KT, KT, q0), i++) {
            const int s = i % STAGES;
            mbar_wait(&empty[s], ((i / STAGES) & 1) ^ 1);  // the first round finds every stage free
            unsigned char *Ks = stages + s * S::stage;
            if (fast_copy && rows.vec && kt >= rows.P0) {
                copy_fresh_tile<DV>(rows, kt, Ks, tid);
            } else {
                tc::stage_rows<DK>(KT, rows.vec, rows.kb, [&](int j) { return rows.key(kt + j); }, KLayout{Ks}, tid,
                                   128);
                tc::stage_rows<DV>(KT, rows.vec, rows.vb, [&](int j) { return rows.value(kt + j); },
                                   VLayout{Ks + S::k_bytes}, tid, 128);
            }
            arrive(&full[s]);
        }
        tc::cp_commit();  // (the copies were never committed: the barriers tracked them)
        tc::cp_wait<0>();  // no thread leaves with copies in flight
        return;
    }

    if (kLaunchRegs < 240) asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumerRegs));
    const int wgi = threadIdx.x >> 7;  // this thread's warpgroup
    const int w0 = q0 + wgi * 64, w1 = min(w0 + 64, len);  // this warpgroup's rows (none where w1 <= w0)
    Rows<DV> acc(Qs, w0, scale);
    mbar_wait(&qfull, 0);
    int i = 0, prev = -1;
    for (int kt = rows.first_tile(0, KT, q0); kt < kend; kt = rows.first_tile(kt + KT, KT, q0), i++) {
        const int s = i % STAGES;
        mbar_wait(&full[s], (i / STAGES) & 1);  // every warpgroup waits, so none runs ahead of the copies
        proxy_fence();                          // the copies (generic proxy) before wgmma's reads (async proxy)
        unsigned char *Ks = stages + s * S::stage;
        acc.tile(rows, kt, w0, w1, Ks, Ks + S::k_bytes, [&] {
            if (prev >= 0) mbar_arrive(&empty[prev]);  // the previous tile's stage is read no more
        });
        prev = s;
    }
    wg_wait0();
    pin(acc.o);
    if (w0 < w1) tc::store_rows<DV / 8>(out, ldo, acc.o, acc.l, rows.s0, acc.r0, len, blockIdx.y * DV);
#endif  // HK_WG_DEVICE
}

// The persistent form of the warp-specialized kernel: one block an SM takes
// query tiles (of any head and sequence) in turn, so the copier loads the
// next tile's Q and first keys while the computing warpgroups finish the
// current one, and no block's start-up or tail runs on an idle SM (the
// one-block kernel above runs one block an SM: its registers fill the SM).
// Q is double-buffered (qfull / qempty, as full / empty for the key
// stages); the key stages and their barriers run on across tiles. Work item
// w is query tile ntq - 1 - w / (nh B) (the tiles with the most keys first),
// head w % nh, sequence (w / nh) % B; block c takes items c, c + grid, ...
// Both roles walk the same items and skip the same empty ones.
// PIPE: the computing warpgroups take their tiles with Rows::tile_pipelined
// (each tile's softmax beside the previous tile's P V product).
// grid (min(items, SMs)), 128 * (NWG + 1) threads.
template <int NWG, int DV, bool PIPE = false>
__global__ void __launch_bounds__(128 * (NWG + 1), 1)
    prefill_ws_persistent_kernel(bf16 *out, int ldo, const bf16 *q, int ldq, const bf16 *k, int ldk, const bf16 *v,
                                 int ldv, const bf16 *const *kc, int ldkc, const bf16 *const *vc, int ldvc,
                                 const int *pos0, const int *cu, int group, int M, int window, float scale, int ntq,
                                 int nh, int nseq, int fast_copy) {
#ifdef HK_WG_DEVICE
    pdl_entry();
    constexpr int STAGES = kWsStages, CONSUMERS = 128 * NWG;
    using S = Smem<NWG, DV, STAGES, 2>;
    constexpr int QT = S::QT;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    unsigned char *Qbuf = align1024(smem_raw);  // [2][QT][64]
    unsigned char *stages = Qbuf + 2 * S::q_bytes;
    __shared__ uint64_t full[STAGES], empty[STAGES], qfull[2], qempty[2];
    if (threadIdx.x == 0) {
        for (int s = 0; s < STAGES; s++) mbar_init(&full[s], 128), mbar_init(&empty[s], CONSUMERS);
        for (int s = 0; s < 2; s++) mbar_init(&qfull[s], 128), mbar_init(&qempty[s], CONSUMERS);
    }
    __syncthreads();
    const int per_tile = nh * nseq, items = ntq * per_tile;
    // item w's rows (query tile qt of head `head` of sequence b); false where the tile is past the sequence
    auto take = [&](int w, tc::PrefillRows<DK, DV> &rows, int &q0) {
        q0 = (ntq - 1 - w / per_tile) * QT;
        if (q0 >= rows.len) return false;
        rows.take_rows(q0, QT);
        return true;
    };
    auto rows_of = [&](int w) {
        const int r = w % per_tile;
        return tc::PrefillRows<DK, DV>(q, ldq, k, ldk, v, ldv, kc, ldkc, vc, ldvc, pos0, cu, r / nh, r % nh, group, M,
                                       window);
    };

    constexpr int kLaunchRegs = ws_launch_regs(NWG), kConsumerRegs = ws_consumer_regs(NWG);
    if (threadIdx.x >= CONSUMERS) {  // the copying warpgroup
        if (kLaunchRegs < 240) asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kCopierRegs));
        const int tid = threadIdx.x - CONSUMERS;
        int i = 0, n = 0;  // key stages filled, items taken
        for (int w = blockIdx.x; w < items; w += gridDim.x) {
            tc::PrefillRows<DK, DV> rows = rows_of(w);
            int q0;
            if (!take(w, rows, q0)) continue;
            auto arrive = [&](uint64_t *b) { rows.vec ? mbar_arrive_copies(b) : mbar_arrive(b); };
            const int qb = n & 1;
            mbar_wait(&qempty[qb], ((n >> 1) & 1) ^ 1);  // the first use of each buffer finds it free
            tc::stage_rows<DK>(QT, rows.vec, rows.qb, [&](int j) { return rows.query(q0 + j); },
                               KLayout{Qbuf + qb * S::q_bytes}, tid, 128);
            arrive(&qfull[qb]);
            for (int kt = rows.first_tile(0, KT, q0); kt < rows.kend; kt = rows.first_tile(kt + KT, KT, q0), i++) {
                const int s = i % STAGES;
                mbar_wait(&empty[s], ((i / STAGES) & 1) ^ 1);
                unsigned char *Ks = stages + s * S::stage;
                if (fast_copy && rows.vec && kt >= rows.P0) {
                    copy_fresh_tile<DV>(rows, kt, Ks, tid);
                } else {
                    tc::stage_rows<DK>(KT, rows.vec, rows.kb, [&](int j) { return rows.key(kt + j); }, KLayout{Ks},
                                       tid, 128);
                    tc::stage_rows<DV>(KT, rows.vec, rows.vb, [&](int j) { return rows.value(kt + j); },
                                       VLayout{Ks + S::k_bytes}, tid, 128);
                }
                arrive(&full[s]);
            }
            n++;
        }
        tc::cp_commit();  // (the copies were never committed: the barriers tracked them)
        tc::cp_wait<0>();  // no thread leaves with copies in flight
        return;
    }

    if (kLaunchRegs < 240) asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumerRegs));
    const int wgi = threadIdx.x >> 7;  // this thread's warpgroup
    int i = 0, n = 0;
    for (int w = blockIdx.x; w < items; w += gridDim.x) {
        tc::PrefillRows<DK, DV> rows = rows_of(w);
        int q0;
        if (!take(w, rows, q0)) continue;
        const int len = rows.len, qb = n & 1;
        const int w0 = q0 + wgi * 64, w1 = min(w0 + 64, len);  // this warpgroup's rows (none where w1 <= w0)
        Rows<DV> acc(Qbuf + qb * S::q_bytes, w0, scale);
        mbar_wait(&qfull[qb], (n >> 1) & 1);
        int prev = -1;
        auto release = [&](int st) { mbar_arrive(&empty[st]); };
        for (int kt = rows.first_tile(0, KT, q0); kt < rows.kend; kt = rows.first_tile(kt + KT, KT, q0), i++) {
            const int s = i % STAGES;
            mbar_wait(&full[s], (i / STAGES) & 1);
            proxy_fence();  // the copies (generic proxy) before wgmma's reads (async proxy)
            unsigned char *Ks = stages + s * S::stage;
            if constexpr (PIPE) {
                acc.tile_pipelined(rows, kt, w0, w1, Ks, Ks + S::k_bytes, s, release);
            } else {
                acc.tile(rows, kt, w0, w1, Ks, Ks + S::k_bytes, [&] {
                    if (prev >= 0) release(prev);
                });
                prev = s;
            }
        }
        // every product of this item is done: its last stage and its Q are read no more
        if constexpr (PIPE) {
            acc.finish_pipelined(release);
        } else {
            wg_wait0();
            pin(acc.o);
            if (prev >= 0) release(prev);
        }
        mbar_arrive(&qempty[qb]);
        if (w0 < w1)
            tc::store_rows<DV / 8>(out, ldo, acc.o, acc.l, rows.s0, acc.r0, len, (w % per_tile % nh) * DV);
        n++;
    }
#endif  // HK_WG_DEVICE
}

}  // namespace wg
