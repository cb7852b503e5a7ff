// test_kernels.cu: every CUDA kernel of kernels/kernels.h against the CPU
// reference of engine/ops_cpu.h (or, where the engine has no single function
// for a batched/masked layout, a plain CPU loop here built on those
// functions), in FP32 and BF16, on fresh seeded random inputs at several
// shapes (lengths off the tile sizes, sequences crossing the sliding window,
// positions up to 30000 for RoPE).
//
// Every output buffer is filled with NaN bytes before the launch, so an
// element the kernel failed to write fails the comparison; where an output
// is a column slice of a wider buffer, the columns around it must still hold
// the poison (no stray writes).
//
// Metric: max|gpu - ref| / max|ref| over the output; NaN anywhere fails and
// an all-zero reference is refused. Limits: 1e-4 (FP32), 1e-2 (BF16). In
// BF16 the inputs are BF16 values and the reference rounds to BF16 where the
// engine's act_round() does.
//
// Fused kernels (hk_rmsnorm3, hk_gemv's prologues and residual epilogue)
// are checked twice: against the CPU reference as above, and against the
// sequence of separate GPU kernels they replace, which they must match bit
// for bit ("bits": the count of differing elements must be 0).
//
// usage: test_kernels [--small] [--bench | --bench-only | --bench-scan | --bench-gemm | --attn | --attn-profile]
//   --small: small shapes, for the sanitizers; --bench: also time the
//   kernels at Hymba-1.5B shapes (BF16; no reference, timings only);
//   --bench-only: the timings without the checks; --bench-scan: the scan's
//   checks and its prefill timings alone (for sweeping HYMEVAL_SCAN_WAVE);
//   --bench-gemm: the GEMM's checks and the prefill GEMMs' timings alone;
//   --attn: the prefill attention's checks (mma.sync and wgmma kernels) and
//   its timings alone.
// exit: 0 pass, 1 fail, 77 no CUDA device (meson: skipped).
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <string>
#include <vector>

#include <cuda_runtime.h>

extern "C" {
#include "bf16.h"
#include "cache.h"
#include "config.h"
#include "ops_cpu.h"
}
#include "kernels.h"

// ------------------------------------------------------------------ harness

#define CK(call)                                                                                     \
    do {                                                                                             \
        cudaError_t e_ = (call);                                                                     \
        if (e_ != cudaSuccess) {                                                                     \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_));   \
            exit(1);                                                                                 \
        }                                                                                            \
    } while (0)
// A launcher's return code, then the kernel's own completion.
#define HK(call)                                                                                     \
    do {                                                                                             \
        int rc_ = (call);                                                                            \
        if (rc_ != 0) {                                                                              \
            fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #call, rc_,           \
                    hk_last_error());                                                                \
            exit(1);                                                                                 \
        }                                                                                            \
        CK(cudaDeviceSynchronize());                                                                 \
    } while (0)

typedef std::vector<float> Vec;

static bool g_small = false;
static int g_failures = 0, g_checks = 0;
static cudaStream_t g_stream = 0;

static const char *dname(hk_dtype d) { return d == HK_BF16 ? "bf16" : "fp32"; }
static double tol_of(hk_dtype d) { return d == HK_BF16 ? 1e-2 : 1e-4; }

struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed) {}
    uint64_t next() {  // splitmix64
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    float uni(float lo, float hi) { return (float)(lo + (hi - lo) * ((double)(next() >> 11) / 9007199254740992.0)); }
    int below(int n) { return (int)(next() % (uint64_t)n); }
};

static Vec rand_vec(Rng &r, size_t n, float lo, float hi) {
    Vec v(n);
    for (auto &x : v) x = r.uni(lo, hi);
    return v;
}
// The values a BF16 buffer can hold: inputs are made representable first.
static void round_to(hk_dtype d, Vec &v) {
    if (d == HK_BF16)
        for (auto &x : v) x = round_bf16(x);
}
static float rnd(hk_dtype d, float x) { return d == HK_BF16 ? round_bf16(x) : x; }

// Device allocations of one test, freed together.
static std::vector<void *> g_allocs;
static void *dmalloc(size_t bytes) {
    void *p = nullptr;
    CK(cudaMalloc(&p, bytes ? bytes : 16));
    g_allocs.push_back(p);
    return p;
}
static void free_all() {
    for (void *p : g_allocs) CK(cudaFree(p));
    g_allocs.clear();
}
static void *upload(hk_dtype d, const Vec &h) {
    size_t es = hk_dtype_size(d);
    void *p = dmalloc(h.size() * es);
    if (d == HK_BF16) {
        std::vector<uint16_t> b(h.size());
        for (size_t i = 0; i < h.size(); i++) b[i] = f32_to_bf16(h[i]);
        CK(cudaMemcpy(p, b.data(), b.size() * 2, cudaMemcpyHostToDevice));
    } else {
        CK(cudaMemcpy(p, h.data(), h.size() * 4, cudaMemcpyHostToDevice));
    }
    return p;
}
static float *upload_f32(const Vec &h) { return (float *)upload(HK_F32, h); }
static int *upload_int(const std::vector<int> &h) {
    int *p = (int *)dmalloc(h.size() * sizeof(int));
    CK(cudaMemcpy(p, h.data(), h.size() * sizeof(int), cudaMemcpyHostToDevice));
    return p;
}
template <typename P> static P *upload_ptrs(const std::vector<P> &h) {
    P *p = (P *)dmalloc(h.size() * sizeof(P));
    CK(cudaMemcpy(p, h.data(), h.size() * sizeof(P), cudaMemcpyHostToDevice));
    return p;
}
static Vec download(hk_dtype d, const void *p, size_t n) {
    Vec h(n);
    if (d == HK_BF16) {
        std::vector<uint16_t> b(n);
        CK(cudaMemcpy(b.data(), p, n * 2, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < n; i++) h[i] = bf16_to_f32(b[i]);
    } else {
        CK(cudaMemcpy(h.data(), p, n * 4, cudaMemcpyDeviceToHost));
    }
    return h;
}
// A buffer of n elements filled with NaN bytes (0xFFFF / 0xFFFFFFFF).
static void *poisoned(hk_dtype d, size_t n) {
    void *p = dmalloc(n * hk_dtype_size(d));
    CK(cudaMemset(p, 0xFF, n * hk_dtype_size(d)));
    return p;
}

// Compares rows x cols of got (row pitch ldg) with ref (pitch ldr); got's
// columns cols..ldg-1 must still be NaN (poison) when check_gaps.
static void report(const char *kernel, const std::string &shape, const std::string &mode, const Vec &got, size_t ldg,
                   const Vec &ref, size_t ldr, size_t rows, size_t cols, double tol, bool check_gaps = true) {
    double max_diff = 0, max_ref = 0;
    bool nan = false, stray = false;
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < cols; c++) {
            float g = got[r * ldg + c], f = ref[r * ldr + c];
            if (!isfinite(g) || !isfinite(f)) nan = true;
            double d = fabs((double)g - (double)f);
            if (d > max_diff) max_diff = d;
            if (fabs((double)f) > max_ref) max_ref = fabs((double)f);
        }
        if (check_gaps)
            for (size_t c = cols; c < ldg && r * ldg + c < got.size(); c++)
                if (!isnan(got[r * ldg + c])) stray = true;
    }
    double err = nan ? INFINITY : max_ref == 0 ? INFINITY : max_diff / max_ref;
    bool ok = !nan && !stray && max_ref > 0 && err < tol;
    g_checks++;
    if (!ok) g_failures++;
    printf("%-13s %-46s %-11s %10.3e %8.0e  %s%s%s%s\n", kernel, shape.c_str(), mode.c_str(), err, tol,
           ok ? "ok" : "FAIL", nan ? " (NaN/inf)" : "", stray ? " (wrote outside its columns)" : "",
           max_ref == 0 ? " (reference all zero)" : "");
    fflush(stdout);
}
static void report_flat(const char *kernel, const std::string &shape, const std::string &mode, const Vec &got,
                        const Vec &ref, double tol) {
    report(kernel, shape, mode, got, got.size(), ref, ref.size(), 1, ref.size(), tol, false);
}

// Raw element bytes of a device buffer (bit-exact comparisons).
static std::vector<uint8_t> download_raw(hk_dtype d, const void *p, size_t n) {
    std::vector<uint8_t> b(n * hk_dtype_size(d));
    CK(cudaMemcpy(b.data(), p, b.size(), cudaMemcpyDeviceToHost));
    return b;
}

// A fused kernel's output against the separate kernels' (both on the device):
// rows x cols elements (row pitches ldg, ldr) must be the same bits, and none
// NaN; got's columns cols..ldg-1 must still hold the poison when check_gaps.
static void report_exact(const char *kernel, const std::string &shape, const std::string &mode, hk_dtype d,
                         const void *got_d, size_t ldg, const void *ref_d, size_t ldr, size_t rows, size_t cols,
                         bool check_gaps = true) {
    const size_t es = hk_dtype_size(d);
    std::vector<uint8_t> gb = download_raw(d, got_d, (rows - 1) * ldg + (check_gaps ? ldg : cols)),
                         rb = download_raw(d, ref_d, (rows - 1) * ldr + cols);
    Vec g = download(d, got_d, (rows - 1) * ldg + (check_gaps ? ldg : cols));
    Vec f = download(d, ref_d, (rows - 1) * ldr + cols);
    size_t differ = 0;
    bool nan = false, stray = false;
    double max_diff = 0, max_ref = 0;
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < cols; c++) {
            size_t ig = r * ldg + c, ir = r * ldr + c;
            if (!isfinite(g[ig]) || !isfinite(f[ir])) nan = true;
            if (memcmp(&gb[ig * es], &rb[ir * es], es) != 0) differ++;
            max_diff = fmax(max_diff, fabs((double)g[ig] - f[ir]));
            max_ref = fmax(max_ref, fabs((double)f[ir]));
        }
        if (check_gaps)
            for (size_t c = cols; c < ldg && r * ldg + c < g.size(); c++)
                if (!isnan(g[r * ldg + c])) stray = true;
    }
    double err = nan ? INFINITY : max_ref == 0 ? INFINITY : max_diff / max_ref;
    bool ok = !nan && !stray && max_ref > 0 && differ == 0;
    g_checks++;
    if (!ok) g_failures++;
    printf("%-13s %-46s %-11s %10.3e %8s  %s%s%s%s", kernel, shape.c_str(), mode.c_str(), err, "bits",
           ok ? "ok" : "FAIL", nan ? " (NaN/inf)" : "", stray ? " (wrote outside its columns)" : "",
           max_ref == 0 ? " (reference all zero)" : "");
    if (differ) printf(" (%zu of %zu differ)", differ, rows * cols);
    printf("\n");
    fflush(stdout);
}

static std::string fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static std::string fmt(const char *f, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return buf;
}
static std::string lens_str(const std::vector<int> &lens) {
    std::string s = "{";
    for (size_t i = 0; i < lens.size(); i++) s += (i ? "," : "") + std::to_string(lens[i]);
    return s + "}";
}
static std::vector<int> cu_of(const std::vector<int> &lens) {
    std::vector<int> cu(lens.size() + 1, 0);
    for (size_t i = 0; i < lens.size(); i++) cu[i + 1] = cu[i] + lens[i];
    return cu;
}
static int max_of(const std::vector<int> &v) {
    int m = 0;
    for (int x : v) m = x > m ? x : m;
    return m;
}

static const hk_dtype kDtypes[2] = {HK_F32, HK_BF16};

// ------------------------------------------------------------------ embed, gather

static void test_embed(Rng &rng) {
    struct Case { std::vector<int> lens; int M, H, V, pad; };
    std::vector<Case> cases = {{{5, 0, 17}, 4, 96, 50, 3}, {{1}, 0, 64, 7, 0}, {{130, 9}, 128, 1600, 1000, 0}};
    if (g_small) cases = {{{5, 0, 7}, 4, 40, 50, 3}};
    for (hk_dtype d : kDtypes)
        for (const Case &cs : cases) {
            int B = (int)cs.lens.size(), H = cs.H, M = cs.M, ldo = H + cs.pad;
            std::vector<int> cu = cu_of(cs.lens);
            int T = cu[B], rows = T + B * M;
            std::vector<int> ids(T);
            for (int &i : ids) i = rng.below(cs.V);
            Vec table = rand_vec(rng, (size_t)cs.V * H, -1, 1), meta = rand_vec(rng, (size_t)M * H, -1, 1);
            round_to(d, table), round_to(d, meta);
            void *out = poisoned(d, (size_t)rows * ldo);
            HK(hk_embed(d, out, ldo, upload_int(ids), upload_int(cu), B, T, upload(d, table), cs.V,
                        M ? upload(d, meta) : nullptr, M, H, g_stream));
            Vec ref((size_t)rows * H);
            for (int b = 0, r = 0; b < B; b++) {
                for (int m = 0; m < M; m++, r++) memcpy(&ref[(size_t)r * H], &meta[(size_t)m * H], H * 4);
                for (int t = cu[b]; t < cu[b + 1]; t++, r++)
                    memcpy(&ref[(size_t)r * H], &table[(size_t)ids[t] * H], H * 4);
            }
            report("embed", fmt("B=%d lens=%s M=%d H=%d ldo=%d", B, lens_str(cs.lens).c_str(), M, H, ldo), dname(d),
                   download(d, out, (size_t)rows * ldo), ldo, ref, H, rows, H, tol_of(d));
            // gather: every other row, backwards
            std::vector<int> idx;
            for (int r = rows - 1; r >= 0; r -= 2) idx.push_back(r);
            int n = (int)idx.size(), ldg = H + 5;
            void *g = poisoned(d, (size_t)n * ldg);
            HK(hk_gather_rows(d, g, ldg, out, ldo, upload_int(idx), n, H, g_stream));
            Vec gref((size_t)n * H);
            for (int i = 0; i < n; i++) memcpy(&gref[(size_t)i * H], &ref[(size_t)idx[i] * H], H * 4);
            report("gather_rows", fmt("n=%d of %d rows, H=%d", n, rows, H), dname(d), download(d, g, (size_t)n * ldg),
                   ldg, gref, H, n, H, tol_of(d));
            free_all();
        }
}

// ------------------------------------------------------------------ argmax

// The greedy choice per row: index and value exactly as a host argmax that
// keeps the first maximum; BF16 rows are full of ties, and a tie is planted
// before the maximum of every other row.
static void test_argmax(Rng &rng) {
    struct Case { int n, width, pad; };
    std::vector<Case> cases = {{37, 32001, 3}, {5, 7, 0}, {130, 4096, 1}};
    if (g_small) cases = {{5, 7, 0}, {9, 300, 2}};
    for (hk_dtype d : kDtypes)
        for (const Case &cs : cases) {
            int ld = cs.width + cs.pad;
            Vec x = rand_vec(rng, (size_t)cs.n * ld, -4, 4);
            round_to(d, x);
            Vec ref(2 * (size_t)cs.n);
            for (int r = 0; r < cs.n; r++) {
                float *row = &x[(size_t)r * ld];
                int best = 0;
                for (int i = 1; i < cs.width; i++)
                    if (row[i] > row[best]) best = i;
                if (r % 2 && best > 0) row[rng.below(best)] = row[best], best = 0;  // an equal value earlier wins
                for (int i = 1; i < cs.width; i++)
                    if (row[i] > row[best]) best = i;
                ref[2 * r] = (float)best, ref[2 * r + 1] = row[best];
            }
            float *out = (float *)poisoned(HK_F32, 2 * (size_t)cs.n);
            HK(hk_argmax_rows(d, out, upload(d, x), ld, cs.n, cs.width, g_stream));
            report_flat("argmax_rows", fmt("n=%d width=%d ld=%d", cs.n, cs.width, ld), dname(d),
                        download(HK_F32, out, 2 * (size_t)cs.n), ref, 1e-7);
            free_all();
        }
}

// ------------------------------------------------------------------ rmsnorm (+ residual add)

static void test_rmsnorm(Rng &rng) {
    struct Case { int rows, n, pad; };
    std::vector<Case> cases = {{7, 16, 3}, {33, 100, 0}, {5, 1600, 8}, {3, 3200, 0}, {1, 5504, 1}};
    if (g_small) cases = {{3, 16, 3}, {2, 300, 1}};
    const float eps = 1e-6f;
    for (hk_dtype d : kDtypes)
        for (const Case &cs : cases) {
            int rows = cs.rows, n = cs.n, ld = n + cs.pad;
            Vec x = rand_vec(rng, (size_t)rows * ld, -2, 2), w = rand_vec(rng, n, 0.5f, 1.5f);
            round_to(d, x), round_to(d, w);
            std::string shape = fmt("rows=%d n=%d ld=%d", rows, n, ld);
            // out-of-place
            void *xd = upload(d, x), *wd = upload(d, w), *out = poisoned(d, (size_t)rows * ld);
            HK(hk_rmsnorm(d, out, ld, xd, ld, wd, rows, n, eps, g_stream));
            Vec ref((size_t)rows * n);
            for (int r = 0; r < rows; r++) {
                rmsnorm(&ref[(size_t)r * n], &x[(size_t)r * ld], w.data(), n, eps);
                for (int i = 0; i < n; i++) ref[(size_t)r * n + i] = rnd(d, ref[(size_t)r * n + i]);
            }
            report("rmsnorm", shape, dname(d), download(d, out, (size_t)rows * ld), ld, ref, n, rows, n, tol_of(d));
            // in place, no weight
            HK(hk_rmsnorm(d, xd, ld, xd, ld, nullptr, rows, n, eps, g_stream));
            Vec ref2((size_t)rows * n);
            for (int r = 0; r < rows; r++) {
                rmsnorm(&ref2[(size_t)r * n], &x[(size_t)r * ld], nullptr, n, eps);
                for (int i = 0; i < n; i++) ref2[(size_t)r * n + i] = rnd(d, ref2[(size_t)r * n + i]);
            }
            report("rmsnorm", shape + " inplace w=0", dname(d), download(d, xd, (size_t)rows * ld), ld, ref2, n, rows,
                   n, tol_of(d), false);
            // residual add + norm: h += x; out = norm(h)
            Vec h = rand_vec(rng, (size_t)rows * ld, -3, 3), dx = rand_vec(rng, (size_t)rows * n, -1, 1);
            round_to(d, h), round_to(d, dx);
            void *hd = upload(d, h), *dxd = upload(d, dx), *o2 = poisoned(d, (size_t)rows * n);
            HK(hk_add_rmsnorm(d, hd, ld, dxd, n, o2, n, wd, rows, n, eps, g_stream));
            Vec href((size_t)rows * n), oref((size_t)rows * n);
            for (int r = 0; r < rows; r++) {
                for (int i = 0; i < n; i++) href[(size_t)r * n + i] = rnd(d, h[(size_t)r * ld + i] + dx[(size_t)r * n + i]);
                rmsnorm(&oref[(size_t)r * n], &href[(size_t)r * n], w.data(), n, eps);
                for (int i = 0; i < n; i++) oref[(size_t)r * n + i] = rnd(d, oref[(size_t)r * n + i]);
            }
            Vec hgot = download(d, hd, (size_t)rows * ld);
            report("add_rmsnorm", shape + " (h)", dname(d), hgot, ld, href, n, rows, n, tol_of(d), false);
            report("add_rmsnorm", shape + " (out)", dname(d), download(d, o2, (size_t)rows * n), n, oref, n, rows, n,
                   tol_of(d));
            // the pad columns of h are untouched
            bool pad_ok = true;
            for (int r = 0; r < rows; r++)
                for (int i = n; i < ld; i++) pad_ok &= hgot[(size_t)r * ld + i] == rnd(d, h[(size_t)r * ld + i]);
            if (!pad_ok) {
                printf("add_rmsnorm   %s: FAIL (wrote outside its columns)\n", shape.c_str());
                g_failures++;
            }
            free_all();
        }
}

// ------------------------------------------------------------------ rmsnorm3 (dt | B | C in one launch)

// Three column segments normalised each on its own: against the CPU
// (rmsnorm of each segment) and, bit for bit, against three hk_rmsnorm
// calls on the column slices; out of place (pad columns keep the poison)
// and in place (pad columns unchanged).
static void test_rmsnorm3(Rng &rng) {
    struct Case { int rows, n0, n1, n2, pad; };
    // Hymba-1.5B (R=100, N=16), the tiny models (8, 8, 8), 32/128/256-thread segments together
    std::vector<Case> cases = {{7, 64, 16, 16, 3}, {2, 100, 16, 16, 0}, {33, 8, 8, 8, 1}, {1, 300, 5, 1100, 2},
                               {5, 1, 2, 3, 0}};
    if (g_small) cases = {{3, 64, 16, 16, 3}, {2, 8, 8, 8, 1}};
    const float eps = 1e-6f;
    for (hk_dtype d : kDtypes)
        for (size_t ci = 0; ci < cases.size(); ci++) {
            const Case &cs = cases[ci];
            const int rows = cs.rows, n[3] = {cs.n0, cs.n1, cs.n2}, n_all = cs.n0 + cs.n1 + cs.n2, ld = n_all + cs.pad;
            const int off[3] = {0, cs.n0, cs.n0 + cs.n1};
            const size_t es = hk_dtype_size(d);
            Vec x = rand_vec(rng, (size_t)rows * ld, -2, 2);
            round_to(d, x);
            Vec w[3];
            void *wd[3];
            for (int s = 0; s < 3; s++) {
                w[s] = rand_vec(rng, n[s], 0.5f, 1.5f);
                round_to(d, w[s]);
                wd[s] = s == 1 && ci % 2 ? nullptr : upload(d, w[s]);  // odd cases: B without a weight
            }
            std::string shape = fmt("rows=%d n=%d+%d+%d ld=%d%s", rows, n[0], n[1], n[2], ld, ci % 2 ? " w1=0" : "");
            Vec ref((size_t)rows * n_all);
            for (int r = 0; r < rows; r++)
                for (int s = 0; s < 3; s++) {
                    float *o = &ref[(size_t)r * n_all + off[s]];
                    rmsnorm(o, &x[(size_t)r * ld + off[s]], wd[s] ? w[s].data() : nullptr, n[s], eps);
                    for (int i = 0; i < n[s]; i++) o[i] = rnd(d, o[i]);
                }
            // out of place: the CPU, then the three separate launches
            void *xd = upload(d, x), *out = poisoned(d, (size_t)rows * ld), *sep = poisoned(d, (size_t)rows * ld);
            HK(hk_rmsnorm3(d, out, ld, xd, ld, wd[0], n[0], wd[1], n[1], wd[2], n[2], rows, eps, g_stream));
            report("rmsnorm3", shape, dname(d), download(d, out, (size_t)rows * ld), ld, ref, n_all, rows, n_all,
                   tol_of(d));
            for (int s = 0; s < 3; s++)
                HK(hk_rmsnorm(d, (char *)sep + off[s] * es, ld, (char *)xd + off[s] * es, ld, wd[s], rows, n[s], eps,
                              g_stream));
            report_exact("rmsnorm3", shape, fmt("%s/3 sep.", dname(d)), d, out, ld, sep, ld, rows, n_all);
            // in place, whole rows (the pad columns are the input's in both)
            void *xin = upload(d, x), *xsep = upload(d, x);
            HK(hk_rmsnorm3(d, xin, ld, xin, ld, wd[0], n[0], wd[1], n[1], wd[2], n[2], rows, eps, g_stream));
            for (int s = 0; s < 3; s++)
                HK(hk_rmsnorm(d, (char *)xsep + off[s] * es, ld, (char *)xsep + off[s] * es, ld, wd[s], rows, n[s], eps,
                              g_stream));
            report_exact("rmsnorm3", shape + " inplace", fmt("%s/3 sep.", dname(d)), d, xin, ld, xsep, ld, rows, ld,
                         false);
            free_all();
        }
}

// ------------------------------------------------------------------ fuse

static void test_fuse(Rng &rng) {
    struct Case { int rows, n; };
    std::vector<Case> cases = {{5, 3200}, {9, 100}, {1, 32}, {2, 5000}};
    if (g_small) cases = {{3, 100}};
    const float eps = 1e-6f;
    for (hk_dtype d : kDtypes)
        for (const Case &cs : cases)
            for (int branches = 0; branches < 3; branches++) {  // both, attention only, SSM only
                int rows = cs.rows, n = cs.n, lda = n + 3, lds = n + 1, ldo = n + 2;
                Vec a = rand_vec(rng, (size_t)rows * lda, -2, 2), s = rand_vec(rng, (size_t)rows * lds, -0.5f, 0.5f);
                Vec wa = rand_vec(rng, n, 0.5f, 1.5f), ws = rand_vec(rng, n, 0.5f, 1.5f);
                round_to(d, a), round_to(d, s), round_to(d, wa), round_to(d, ws);
                bool use_a = branches != 2, use_s = branches != 1;
                void *out = poisoned(d, (size_t)rows * ldo);
                HK(hk_fuse_norm_avg(d, out, ldo, use_a ? upload(d, a) : nullptr, lda, upload(d, wa),
                                    use_s ? upload(d, s) : nullptr, lds, upload(d, ws), rows, n, eps, g_stream));
                Vec ref((size_t)rows * n), na(n), ns(n);
                for (int r = 0; r < rows; r++) {
                    rmsnorm(na.data(), &a[(size_t)r * lda], wa.data(), n, eps);
                    rmsnorm(ns.data(), &s[(size_t)r * lds], ws.data(), n, eps);
                    for (int i = 0; i < n; i++) {
                        float f = use_a && use_s ? (rnd(d, na[i]) + rnd(d, ns[i])) / 2.0f : use_a ? na[i] : ns[i];
                        ref[(size_t)r * n + i] = rnd(d, f);
                    }
                }
                static const char *names[3] = {"attn+ssm", "attn only", "ssm only"};
                report("fuse", fmt("rows=%d n=%d %s", rows, n, names[branches]), dname(d),
                       download(d, out, (size_t)rows * ldo), ldo, ref, n, rows, n, tol_of(d));
                free_all();
            }
}

// ------------------------------------------------------------------ rope (+ kq norm)

// The engine's rope_tables() for one position (engine/model.c), per mode.
static void rope_table_ref(int mode, int p, const float *inv_freq, int half, float *cos_t, float *sin_t) {
    for (int i = 0; i < half; i++) {
        float c, s;
        if (mode == HK_ROPE_FP32 || mode == HK_ROPE_BF16_PAPER) {
            double angle = (double)p * (double)inv_freq[i];
            c = (float)cos(angle);
            s = (float)sin(angle);
        } else if (mode == HK_ROPE_BF16_HF) {
            float angle = (float)p * inv_freq[i];
            c = round_bf16((float)cos((double)angle));
            s = round_bf16((float)sin((double)angle));
        } else {
            float angle = round_bf16(round_bf16((float)p) * round_bf16(inv_freq[i]));
            c = round_bf16((float)cos((double)angle));
            s = round_bf16((float)sin((double)angle));
        }
        cos_t[i] = c;
        sin_t[i] = s;
    }
}

// The engine's qk_prepare() on one head.
static void qk_prepare_ref(int mode, float *x, int d, const float *norm_w, const float *cos_a, const float *sin_a) {
    if (norm_w) {
        rmsnorm(x, x, norm_w, d, 1e-6f);
        if (mode != HK_ROPE_FP32)
            for (int i = 0; i < d; i++) x[i] = round_bf16(x[i]);
    }
    if (mode == HK_ROPE_FP32) {
        rope_apply(x, cos_a, sin_a, d);
    } else if (mode == HK_ROPE_BF16_PAPER) {
        rope_apply(x, cos_a, sin_a, d);
        for (int i = 0; i < d; i++) x[i] = round_bf16(x[i]);
    } else {
        rope_apply_bf16(x, cos_a, sin_a, d);
    }
}

static void test_rope(Rng &rng) {
    struct Case { int rows, nq, nk, d, norm; double base; };  // norm: 0 none, 1 shared, 2 per head
    std::vector<Case> cases = {{37, 25, 5, 64, 0, 10000.0 * pow(2.0 * 8192 / 2048 - 1, 64.0 / 62.0)},
                               {13, 4, 2, 16, 2, 10000.0},
                               {9, 4, 0, 32, 1, 500000.0}};
    if (g_small) cases = {{5, 4, 2, 16, 2, 10000.0}, {3, 3, 1, 64, 0, 10000.0}};
    static const char *mnames[4] = {"fp32", "bf16-paper", "bf16-hf", "bf16-all"};
    for (hk_dtype d : kDtypes)
        for (int mode = 0; mode < 4; mode++) {
            if (d == HK_BF16 && mode == HK_ROPE_FP32) continue;  // not a precision mode of a BF16 model
            for (const Case &cs : cases) {
                int rows = cs.rows, hd = cs.d, half = hd / 2, ldq = cs.nq * hd + 7, ldk = cs.nk * hd + 3;
                std::vector<int> pos(rows);
                for (int r = 0; r < rows; r++)  // small positions, large ones, and 30000 itself
                    pos[r] = r == 0 ? 30000 : r % 3 == 0 ? 20000 + rng.below(12768) : rng.below(300);
                Vec inv(half);
                hk_rope_inv_freq(inv.data(), hd, cs.base);
                for (int i = 0; i < half; i++)  // the engine's compute_inv_freq(), bit for bit
                    if (inv[i] != 1.0f / powf((float)cs.base, (float)(2 * i) / (float)hd)) {
                        printf("rope inv_freq differs from the engine's at i=%d  FAIL\n", i);
                        g_failures++;
                        break;
                    }
                Vec q = rand_vec(rng, (size_t)rows * ldq, -2, 2), k = rand_vec(rng, (size_t)rows * ldk, -2, 2);
                round_to(d, q), round_to(d, k);
                int nw_q = cs.norm == 2 ? cs.nq : 1, nw_k = cs.norm == 2 ? (cs.nk ? cs.nk : 1) : 1;
                Vec qn = rand_vec(rng, (size_t)nw_q * hd, 0.5f, 1.5f), kn = rand_vec(rng, (size_t)nw_k * hd, 0.5f, 1.5f);
                round_to(d, qn), round_to(d, kn);
                void *qd = upload(d, q), *kd = cs.nk ? upload(d, k) : nullptr;
                HK(hk_rope_qk(d, qd, ldq, cs.nq, kd, ldk, cs.nk, hd, upload_int(pos), upload_f32(inv), rows,
                              (hk_rope_mode)mode, 1, cs.norm ? upload(d, qn) : nullptr,
                              cs.norm && cs.nk ? upload(d, kn) : nullptr, cs.norm == 2, 1e-6f, g_stream));
                Vec qref = q, kref = k, ct(half), st(half);
                for (int r = 0; r < rows; r++) {
                    rope_table_ref(mode, pos[r], inv.data(), half, ct.data(), st.data());
                    for (int h = 0; h < cs.nq; h++)
                        qk_prepare_ref(mode, &qref[(size_t)r * ldq + h * hd], hd,
                                       cs.norm ? &qn[cs.norm == 2 ? h * hd : 0] : nullptr, ct.data(), st.data());
                    for (int h = 0; h < cs.nk; h++)
                        qk_prepare_ref(mode, &kref[(size_t)r * ldk + h * hd], hd,
                                       cs.norm ? &kn[cs.norm == 2 ? h * hd : 0] : nullptr, ct.data(), st.data());
                }
                for (auto &x : qref) x = rnd(d, x);
                for (auto &x : kref) x = rnd(d, x);
                // whole rows compared: the pad columns must be unchanged (exactly the input)
                std::string shape = fmt("rows=%d nq=%d nk=%d d=%d norm=%d pos<=30000", rows, cs.nq, cs.nk, hd, cs.norm);
                std::string mode_s = fmt("%s/%s", dname(d), mnames[mode]);
                report("rope q", shape, mode_s, download(d, qd, (size_t)rows * ldq), ldq, qref, ldq, rows, ldq,
                       tol_of(d), false);
                if (cs.nk)
                    report("rope k", shape, mode_s, download(d, kd, (size_t)rows * ldk), ldk, kref, ldk, rows, ldk,
                           tol_of(d), false);
                free_all();
            }
        }
}

// The decode step's fused rotation + cache store against the two kernels it
// replaces (hk_rope_qk on a copy of the k | v row, then hk_kv_store), both
// on the device: the slot's k and v rows must be the same bits, q too, and
// every other cache element must still hold the poison.
static void test_rope_store(Rng &rng) {
    struct Case { std::vector<int> pos; int nq, nk, d, dv, M, W, norm; };
    std::vector<Case> cases = {
        {{3, 130, 1500, 777}, 25, 5, 64, 128, 128, 1024, 0},  // Hymba-1.5B window layer: meta slot, ring wrapped
        {{5000, 129}, 25, 5, 64, 128, 128, 0, 0},            // global layer
        {{10, 200, 1}, 4, 2, 16, 32, 4, 64, 2},              // per-head kq norm, ring wrapped many times
    };
    if (g_small) cases = {{{10, 90, 3}, 4, 2, 16, 32, 4, 16, 1}};
    for (hk_dtype d : kDtypes)
        for (const Case &cs : cases) {
            const int B = (int)cs.pos.size(), hd = cs.d, kw = cs.nk * hd, vw = cs.nk * cs.dv;
            const int ldp = cs.nq * hd + kw + vw + 5, ldkc = kw + 1, ldvc = vw + 2;  // odd pitches
            const hk_rope_mode mode = d == HK_F32 ? HK_ROPE_FP32 : HK_ROPE_BF16_HF;
            const size_t es = hk_dtype_size(d);
            Vec proj = rand_vec(rng, (size_t)B * ldp, -2, 2), inv(hd / 2);
            Vec qn = rand_vec(rng, (size_t)cs.nq * hd, 0.5f, 1.5f), kn = rand_vec(rng, (size_t)cs.nk * hd, 0.5f, 1.5f);
            round_to(d, proj), round_to(d, qn), round_to(d, kn);
            hk_rope_inv_freq(inv.data(), hd, 10000.0);
            std::vector<int> slots(B), ropepos(B);
            for (int b = 0; b < B; b++) {
                slots[b] = cs.W > 0 ? cs.M + cs.W + 1 : cs.pos[b] + 9;
                ropepos[b] = cs.pos[b] > cs.M ? cs.pos[b] - cs.M : 0;  // the rotation's position (meta tokens: 0)
            }
            std::vector<void *> kc[2], vc[2];  // [0]: fused, [1]: separate
            for (int v = 0; v < 2; v++)
                for (int b = 0; b < B; b++) {
                    kc[v].push_back(poisoned(d, (size_t)slots[b] * ldkc));
                    vc[v].push_back(poisoned(d, (size_t)slots[b] * ldvc));
                }
            char *p_fused = (char *)upload(d, proj), *p_sep = (char *)upload(d, proj);
            char *kvb = (char *)poisoned(d, (size_t)B * (kw + vw));
            const int *posd = upload_int(cs.pos), *ropd = upload_int(ropepos);
            const float *invd = upload_f32(inv);
            const void *qnd = cs.norm ? upload(d, qn) : nullptr, *knd = cs.norm ? upload(d, kn) : nullptr;
            HK(hk_rope_qk_store(d, p_fused, ldp, cs.nq, p_fused + es * cs.nq * hd, ldp, cs.nk, hd, ropd, invd, B, mode,
                                1, qnd, knd, cs.norm == 2, 1e-6f, upload_ptrs(kc[0]), ldkc, upload_ptrs(vc[0]), ldvc,
                                p_fused + es * (cs.nq * hd + kw), ldp, cs.dv, posd, cs.M, cs.W, g_stream));
            CK(cudaMemcpy2D(kvb, (kw + vw) * es, p_sep + es * cs.nq * hd, ldp * es, (kw + vw) * es, B,
                            cudaMemcpyDeviceToDevice));
            HK(hk_rope_qk(d, p_sep, ldp, cs.nq, kvb, kw + vw, cs.nk, hd, ropd, invd, B, mode, 1, qnd, knd,
                          cs.norm == 2, 1e-6f, g_stream));
            HK(hk_kv_store(d, upload_ptrs(kc[1]), ldkc, upload_ptrs(vc[1]), ldvc, kvb, kw + vw, kvb + es * kw, kw + vw,
                           nullptr, posd, B, 1, cs.nk, hd, cs.dv, cs.M, cs.W, g_stream));
            HymbaConfig cfg;
            memset(&cfg, 0, sizeof cfg);
            cfg.n_meta = cs.M;
            cfg.sliding_window = cs.W;
            cfg.is_global[0] = cs.W <= 0;
            const std::string shape = fmt("pos=%s nq=%d nk=%d d=%d M=%d W=%d norm=%d", lens_str(cs.pos).c_str(), cs.nq,
                                          cs.nk, hd, cs.M, cs.W, cs.norm);
            report_exact("rope_store q", shape, dname(d), d, p_fused, ldp, p_sep, ldp, B, cs.nq * hd, false);
            for (int b = 0; b < B; b++) {
                const size_t slot = (size_t)cache_slot(&cfg, 0, cs.pos[b]);
                report_exact("rope_store k", fmt("seq %d: ", b) + shape, dname(d), d, (char *)kc[0][b] + es * slot * ldkc,
                             ldkc, (char *)kc[1][b] + es * slot * ldkc, ldkc, 1, kw, false);
                report_exact("rope_store v", fmt("seq %d: ", b) + shape, dname(d), d, (char *)vc[0][b] + es * slot * ldvc,
                             ldvc, (char *)vc[1][b] + es * slot * ldvc, ldvc, 1, vw, false);
                // nothing else written: the whole caches are byte for byte alike (the rest still poison)
                const bool same = download_raw(d, kc[0][b], (size_t)slots[b] * ldkc) ==
                                      download_raw(d, kc[1][b], (size_t)slots[b] * ldkc) &&
                                  download_raw(d, vc[0][b], (size_t)slots[b] * ldvc) ==
                                      download_raw(d, vc[1][b], (size_t)slots[b] * ldvc);
                g_checks++;
                if (!same) g_failures++;
                printf("%-13s %-46s %-11s %10s %8s  %s\n", "rope_store", fmt("seq %d: whole cache", b).c_str(),
                       dname(d), "-", "bytes", same ? "ok" : "FAIL (wrote outside the slot)");
            }
            free_all();
        }
}

// ------------------------------------------------------------------ attention

// Visible key positions of query position p (ARCHITECTURE §2.1 item 7), meta first.
static void visible_keys(int p, int M, int W, std::vector<int> &out) {
    out.clear();
    int meta_end = M < p + 1 ? M : p + 1;
    for (int kp = 0; kp < meta_end; kp++) out.push_back(kp);
    int band = W > 0 ? (p - W > M ? p - W : M) : M;
    for (int kp = band; kp <= p; kp++) out.push_back(kp);
}

struct AttnShape { std::vector<int> lens; int nh, nkv, dk, dv, M, W; };

// tag: "" runs every dtype with the kernels as set; otherwise BF16 alone,
// the mode column carrying the tag (the wgmma prefill's passes).
static void test_attn_prefill(Rng &rng, const char *tag = "") {
    std::vector<AttnShape> cases = {
        {{45, 300, 1}, 4, 2, 16, 32, 4, 64},           // tiny-model heads, window crossed, a 1-token sequence
        {{97, 64}, 4, 2, 32, 64, 6, 12},               // window 12 < tile
        {{700, 333}, 25, 5, 64, 128, 128, 256},        // Hymba-1.5B heads, window crossed after 128 meta tokens
        {{1100}, 25, 5, 64, 128, 128, 0},              // global layer
        {{129, 31}, 8, 8, 64, 64, 0, 0},               // dv = dk, no GQA, no meta
        {{77}, 4, 1, 128, 256, 5, 40},                 // largest head dims
    };
    if (g_small) cases = {{{45, 70, 1}, 4, 2, 16, 32, 4, 16}, {{40}, 2, 1, 64, 128, 3, 0}};
    for (hk_dtype d : kDtypes)
        if (!*tag || d == HK_BF16)
        for (size_t ci = 0; ci < cases.size(); ci++) {
            const AttnShape &cs = cases[ci];
            int B = (int)cs.lens.size(), nh = cs.nh, nkv = cs.nkv, dk = cs.dk, dv = cs.dv, group = nh / nkv;
            std::vector<int> cu = cu_of(cs.lens);
            int T = cu[B];
            // q | k | v in one row, as the in_proj output holds them
            // even cases: 16-byte aligned rows (vector loads); odd: a pitch that is not
            int ldp = nh * dk + nkv * dk + nkv * dv + (ci % 2 ? 5 : 8), ldo = nh * dv + 4;
            Vec proj = rand_vec(rng, (size_t)T * ldp, -2, 2);
            round_to(d, proj);
            void *pd = upload(d, proj), *out = poisoned(d, (size_t)T * ldo);
            char *pb = (char *)pd;
            size_t es = hk_dtype_size(d);
            float scale = 1.0f / sqrtf((float)dk);
            HK(hk_attn_prefill(d, out, ldo, pb, ldp, pb + es * nh * dk, ldp, pb + es * (nh + nkv) * dk, ldp,
                               upload_int(cu), B, max_of(cs.lens), nh, nkv, dk, dv, cs.M, cs.W, scale, g_stream));
            Vec ref((size_t)T * nh * dv);
            std::vector<int> vis;
            std::vector<const float *> keys, vals;
            Vec scores(T + 1);
            for (int b = 0; b < B; b++)
                for (int t = 0; t < cs.lens[b]; t++) {
                    visible_keys(t, cs.M, cs.W, vis);
                    for (int g = 0; g < nkv; g++) {
                        keys.clear(), vals.clear();
                        for (int kp : vis) {
                            const float *row = &proj[(size_t)(cu[b] + kp) * ldp];
                            keys.push_back(row + nh * dk + g * dk);
                            vals.push_back(row + (nh + nkv) * dk + g * dv);
                        }
                        for (int j = g * group; j < (g + 1) * group; j++)
                            attend(&ref[(size_t)(cu[b] + t) * nh * dv + j * dv],
                                   &proj[(size_t)(cu[b] + t) * ldp + j * dk], keys.data(), vals.data(),
                                   (int)keys.size(), dk, dv, scale, scores.data());
                    }
                }
            for (auto &x : ref) x = rnd(d, x);
            report("attn_prefill",
                   fmt("lens=%s nh=%d nkv=%d dk=%d dv=%d M=%d W=%d ld=%d", lens_str(cs.lens).c_str(), nh, nkv, dk, dv,
                       cs.M, cs.W, ldp),
                   std::string(dname(d)) + tag, download(d, out, (size_t)T * ldo), ldo, ref, (size_t)nh * dv, T, (size_t)nh * dv,
                   tol_of(d));
            free_all();
        }
}

// Prefill of chunks that continue a cached prefix: the keys before pos0 sit
// in per-sequence caches (a sliding-window ring written in position order,
// so it holds only the last W+1 positions), the chunk's own keys in the
// packed rows; the result must equal attention over the whole sequence.
static void test_attn_prefill_cached(Rng &rng, const char *tag = "") {
    struct Case { std::vector<int> lens, pos0; int nh, nkv, dk, dv, M, W; };
    std::vector<Case> cases = {
        {{45, 70, 1}, {4, 200, 90}, 4, 2, 16, 32, 4, 64},           // ring wrapped, prefix shorter than the window
        {{10, 3}, {2, 7}, 4, 2, 16, 32, 6, 12},                     // prefix ends inside the meta tokens
        {{300, 33}, {128, 1500}, 25, 5, 64, 128, 128, 256},         // Hymba-1.5B heads, long prefix, window crossed
        {{200}, {700}, 25, 5, 64, 128, 128, 0},                     // global layer
        {{64, 5}, {0, 3}, 8, 8, 64, 64, 0, 0},                      // no meta, an empty prefix
    };
    if (g_small) cases = {{{45, 3}, {20, 90}, 4, 2, 16, 32, 4, 16}, {{40}, {50}, 2, 1, 64, 128, 3, 0}};
    for (hk_dtype d : kDtypes)
        if (!*tag || d == HK_BF16)
        for (size_t ci = 0; ci < cases.size(); ci++) {
            const Case &cs = cases[ci];
            int B = (int)cs.lens.size(), nh = cs.nh, nkv = cs.nkv, dk = cs.dk, dv = cs.dv, M = cs.M, W = cs.W;
            int group = nh / nkv, kw = nkv * dk, vw = nkv * dv;
            HymbaConfig cfg;
            memset(&cfg, 0, sizeof cfg);
            cfg.n_meta = M;
            cfg.sliding_window = W;
            cfg.is_global[0] = W <= 0;
            std::vector<int> cu = cu_of(cs.lens);
            int T = cu[B];
            int ldp = nh * dk + kw + vw + (ci % 2 ? 3 : 8), ldo = nh * dv + 4;
            int ldkc = kw + (int)(ci % 2), ldvc = vw + (int)(ci % 2);  // odd cases: unaligned cache rows
            Vec proj = rand_vec(rng, (size_t)T * ldp, -2, 2);
            round_to(d, proj);
            size_t es = hk_dtype_size(d);
            std::vector<void *> kc(B), vc(B);
            std::vector<Vec> full(B);  // every key | value row of the sequence, positions 0 .. pos0+len-1
            for (int b = 0; b < B; b++) {
                int P0 = cs.pos0[b], n = P0 + cs.lens[b];
                full[b] = rand_vec(rng, (size_t)n * (kw + vw), -2, 2);
                round_to(d, full[b]);
                for (int t = 0; t < cs.lens[b]; t++)  // the chunk's k | v go into its packed rows
                    memcpy(&proj[(size_t)(cu[b] + t) * ldp + nh * dk], &full[b][(size_t)(P0 + t) * (kw + vw)],
                           sizeof(float) * (kw + vw));
                int slots = W > 0 ? M + W + 1 : n + 7;
                Vec hk((size_t)slots * ldkc, NAN), hv((size_t)slots * ldvc, NAN);
                for (int p = 0; p < P0; p++) {
                    int slot = cache_slot(&cfg, 0, p);
                    memcpy(&hk[(size_t)slot * ldkc], &full[b][(size_t)p * (kw + vw)], sizeof(float) * kw);
                    memcpy(&hv[(size_t)slot * ldvc], &full[b][(size_t)p * (kw + vw) + kw], sizeof(float) * vw);
                }
                kc[b] = upload(d, hk);
                vc[b] = upload(d, hv);
            }
            void *pd = upload(d, proj), *out = poisoned(d, (size_t)T * ldo);
            char *pb = (char *)pd;
            float scale = 1.0f / sqrtf((float)dk);
            HK(hk_attn_prefill_cached(d, out, ldo, pb, ldp, pb + es * nh * dk, ldp, pb + es * (nh * dk + kw), ldp,
                                      (const void *const *)upload_ptrs(kc), ldkc, (const void *const *)upload_ptrs(vc),
                                      ldvc, upload_int(cs.pos0), upload_int(cu), B, max_of(cs.lens), nh, nkv, dk, dv,
                                      M, W, scale, g_stream));
            Vec ref((size_t)T * nh * dv);
            std::vector<int> vis;
            std::vector<const float *> keys, vals;
            Vec scores(max_of(cs.pos0) + max_of(cs.lens) + 1);
            for (int b = 0; b < B; b++)
                for (int t = 0; t < cs.lens[b]; t++) {
                    visible_keys(cs.pos0[b] + t, M, W, vis);
                    for (int g = 0; g < nkv; g++) {
                        keys.clear(), vals.clear();
                        for (int kp : vis) {
                            keys.push_back(&full[b][(size_t)kp * (kw + vw) + g * dk]);
                            vals.push_back(&full[b][(size_t)kp * (kw + vw) + kw + g * dv]);
                        }
                        for (int j = g * group; j < (g + 1) * group; j++)
                            attend(&ref[(size_t)(cu[b] + t) * nh * dv + j * dv],
                                   &proj[(size_t)(cu[b] + t) * ldp + j * dk], keys.data(), vals.data(),
                                   (int)keys.size(), dk, dv, scale, scores.data());
                    }
                }
            for (auto &x : ref) x = rnd(d, x);
            report("attn_cached",
                   fmt("lens=%s pos0=%s nh=%d nkv=%d dk=%d dv=%d M=%d W=%d", lens_str(cs.lens).c_str(),
                       lens_str(cs.pos0).c_str(), nh, nkv, dk, dv, M, W),
                   std::string(dname(d)) + tag, download(d, out, (size_t)T * ldo), ldo, ref, (size_t)nh * dv, T, (size_t)nh * dv,
                   tol_of(d));
            free_all();
        }
}

// The prefill checks on the mma.sync kernel (hk_attn_wgmma setting 0, the
// only one of builds without wgmma), then (BF16) on each wgmma kernel
// (settings 1-9; 7 is the default where built).
static void test_attn_prefill_all(Rng &rng) {
    const int was = hk_attn_wgmma(0);
    test_attn_prefill(rng);
    test_attn_prefill_cached(rng);
    if (hk_attn_wgmma_built()) {  // the wgmma prefill, each block size, on the same cases
        for (int nwg : {1, 2, 3, 4, 5, 6, 7, 8, 9}) {
            hk_attn_wgmma(nwg);
            std::string tag = fmt(" wg%d", nwg);
            test_attn_prefill(rng, tag.c_str());
            test_attn_prefill_cached(rng, tag.c_str());
        }
    } else {
        printf("attn_prefill  wgmma: not in this build (sm_90a only)\n");
    }
    hk_attn_wgmma(was);
}

// kv_store of a packed prefill chunk and of one decode row, then decode
// attention; the cache contents are checked against a host cache filled in
// position order through the engine's own cache_slot().
static void test_attn_decode(Rng &rng) {
    struct Case { std::vector<int> pos; int nh, nkv, dk, dv, M, W; };
    std::vector<Case> cases = {
        {{10, 200, 1500, 3}, 4, 2, 16, 32, 4, 64},        // ring wrapped (W+1 = 65) many times, and p < M
        {{130, 1500, 3000}, 25, 5, 64, 128, 128, 1024},   // Hymba-1.5B sliding-window layer
        {{3000, 5000, 129}, 25, 5, 64, 128, 128, 0},      // global layer: long context, split-KV
        {{700}, 6, 6, 32, 32, 0, 0},                      // no meta, dv = dk
    };
    if (g_small) cases = {{{10, 90, 3}, 4, 2, 16, 32, 4, 16}, {{300}, 5, 1, 64, 128, 4, 0}};
    for (hk_dtype d : kDtypes)
        for (size_t ci = 0; ci < cases.size(); ci++) {
            const Case &cs = cases[ci];
            int B = (int)cs.pos.size(), nh = cs.nh, nkv = cs.nkv, dk = cs.dk, dv = cs.dv, M = cs.M, W = cs.W;
            int group = nh / nkv, kw = nkv * dk, vw = nkv * dv, maxp = max_of(cs.pos);
            // odd cases: cache rows one element longer (not 16-byte aligned: the scalar load path)
            int ldkc = kw + (int)(ci % 2), ldvc = vw + (int)(ci % 2);
            HymbaConfig cfg;
            memset(&cfg, 0, sizeof cfg);
            cfg.n_meta = M;
            cfg.sliding_window = W;
            cfg.is_global[0] = W <= 0;
            std::string shape = fmt("pos=%s nh=%d nkv=%d dk=%d dv=%d M=%d W=%d ld=%d", lens_str(cs.pos).c_str(), nh, nkv,
                                    dk, dv, M, W, ldkc);
            // positions 0..p-1 of each sequence as one packed prefill chunk (k row | v row)
            std::vector<int> lens(cs.pos), zeros(B, 0);
            std::vector<int> cu = cu_of(lens);
            int T = cu[B], ldkv = kw + vw + 3;
            Vec kv = rand_vec(rng, (size_t)T * ldkv, -2, 2), knew = rand_vec(rng, (size_t)B * ldkv, -2, 2);
            round_to(d, kv), round_to(d, knew);
            std::vector<int> slots(B);
            std::vector<void *> kc(B), vc(B);
            std::vector<Vec> hk(B), hv(B);  // host caches
            size_t es = hk_dtype_size(d);
            for (int b = 0; b < B; b++) {
                slots[b] = W > 0 ? M + W + 1 : cs.pos[b] + 1 + 17;  // a global cache has room to spare
                kc[b] = poisoned(d, (size_t)slots[b] * ldkc);
                vc[b] = poisoned(d, (size_t)slots[b] * ldvc);
                hk[b].assign((size_t)slots[b] * ldkc, NAN);
                hv[b].assign((size_t)slots[b] * ldvc, NAN);
                for (int p = 0; p <= cs.pos[b]; p++) {
                    const float *row = p < cs.pos[b] ? &kv[(size_t)(cu[b] + p) * ldkv] : &knew[(size_t)b * ldkv];
                    int slot = cache_slot(&cfg, 0, p);
                    memcpy(&hk[b][(size_t)slot * ldkc], row, kw * 4);
                    memcpy(&hv[b][(size_t)slot * ldvc], row + kw, vw * 4);
                }
            }
            void **kcd = upload_ptrs(kc), **vcd = upload_ptrs(vc);
            char *kvd = (char *)upload(d, kv), *knd = (char *)upload(d, knew);
            HK(hk_kv_store(d, kcd, ldkc, vcd, ldvc, kvd, ldkv, kvd + es * kw, ldkv, upload_int(cu), upload_int(zeros), B,
                           max_of(lens), nkv, dk, dv, M, W, g_stream));
            HK(hk_kv_store(d, kcd, ldkc, vcd, ldvc, knd, ldkv, knd + es * kw, ldkv, nullptr, upload_int(cs.pos), B, 1, nkv,
                           dk, dv, M, W, g_stream));
            for (int b = 0; b < B; b++) {
                int used = cs.pos[b] + 1 < slots[b] ? cs.pos[b] + 1 : slots[b];
                report("kv_store", fmt("seq %d: ", b) + shape, dname(d), download(d, kc[b], (size_t)used * ldkc),
                       ldkc, hk[b], ldkc, used, kw, tol_of(d), ldkc > kw);
                report("kv_store", fmt("seq %d (v): ", b) + shape, dname(d), download(d, vc[b], (size_t)used * ldvc),
                       ldvc, hv[b], ldvc, used, vw, tol_of(d), ldvc > vw);
            }
            // decode reference
            int ldq = nh * dk + 2, ldo = nh * dv + 3;
            Vec q = rand_vec(rng, (size_t)B * ldq, -2, 2);
            round_to(d, q);
            Vec ref((size_t)B * nh * dv), scores(maxp + 2);
            std::vector<int> vis;
            std::vector<const float *> keys, vals;
            for (int b = 0; b < B; b++) {
                visible_keys(cs.pos[b], M, W, vis);
                for (int g = 0; g < nkv; g++) {
                    keys.clear(), vals.clear();
                    for (int kp : vis) {
                        int slot = cache_slot(&cfg, 0, kp);
                        keys.push_back(&hk[b][(size_t)slot * ldkc + g * dk]);
                        vals.push_back(&hv[b][(size_t)slot * ldvc + g * dv]);
                    }
                    for (int j = g * group; j < (g + 1) * group; j++)
                        attend(&ref[(size_t)b * nh * dv + j * dv], &q[(size_t)b * ldq + j * dk], keys.data(),
                               vals.data(), (int)keys.size(), dk, dv, 1.0f / sqrtf((float)dk), scores.data());
                }
            }
            for (auto &x : ref) x = rnd(d, x);
            void *qd = upload(d, q);
            for (int split = 0; split < 2; split++) {  // one split, then split-KV with a workspace
                size_t wsb = split ? hk_attn_decode_workspace_bytes(B, nh, dv, 64) : 0;
                void *ws = split ? dmalloc(wsb) : nullptr;
                if (ws) CK(cudaMemset(ws, 0xFF, wsb));
                void *out = poisoned(d, (size_t)B * ldo);
                HK(hk_attn_decode(d, out, ldo, qd, ldq, (const void *const *)kcd, ldkc, (const void *const *)vcd, ldvc,
                                  upload_int(cs.pos), B, maxp, nh, nkv, dk, dv, M, W, 1.0f / sqrtf((float)dk), ws, wsb,
                                  g_stream));
                int ns = hk_attn_decode_splits(B, maxp, nh, nkv, dv, M, W, ws, wsb);
                report("attn_decode", shape + fmt(" splits=%d", ns), dname(d),
                       download(d, out, (size_t)B * ldo), ldo, ref, (size_t)nh * dv, B, (size_t)nh * dv, tol_of(d));
            }
            free_all();
        }
}

// ------------------------------------------------------------------ conv1d

// The conv states on the device (sd) against the host's (st, advanced by
// the reference): the first (K-1) C values of each sequence.
static void report_conv_states(const char *kernel, const std::string &shape, hk_dtype d,
                               const std::vector<void *> &sd, const std::vector<Vec> &st, int K, int C) {
    Vec got, ref;
    for (size_t b = 0; b < st.size(); b++) {
        Vec g = download(d, sd[b], (size_t)(K - 1) * C);
        got.insert(got.end(), g.begin(), g.end());
        ref.insert(ref.end(), st[b].begin(), st[b].begin() + (size_t)(K - 1) * C);
    }
    report_flat(kernel, shape, dname(d), got, ref, tol_of(d));
}

static void test_conv1d(Rng &rng) {
    struct Case { std::vector<int> lens; int C, K, bias, pad; };
    std::vector<Case> cases = {{{1, 50, 7}, 3200, 4, 1, 9}, {{2, 130, 64, 65}, 130, 4, 0, 0}, {{200}, 64, 2, 1, 1},
                               {{3, 1, 129}, 48, 8, 1, 0}};
    if (g_small) cases = {{{1, 9, 2, 70}, 40, 4, 1, 3}};
    for (hk_dtype d : kDtypes)
        for (const Case &cs : cases)
            for (int decode = 0; decode < 2; decode++) {
                std::vector<int> lens = cs.lens;
                if (decode) lens.assign(lens.size() + 1, 1);  // one row per sequence, cu == NULL
                int B = (int)lens.size(), C = cs.C, K = cs.K, ldx = C + cs.pad, ldo = C + 2;
                std::vector<int> cu = cu_of(lens);
                int T = cu[B];
                Vec x = rand_vec(rng, (size_t)T * ldx, -2, 2), w = rand_vec(rng, (size_t)C * K, -0.6f, 0.6f);
                Vec bias = rand_vec(rng, C, -0.3f, 0.3f);
                round_to(d, x), round_to(d, w), round_to(d, bias);
                std::vector<Vec> st(B);
                std::vector<void *> sd(B);
                for (int b = 0; b < B; b++) {
                    st[b] = rand_vec(rng, (size_t)(K - 1) * C + 1, -2, 2);
                    round_to(d, st[b]);
                    sd[b] = upload(d, st[b]);
                }
                void *out = poisoned(d, (size_t)T * ldo);
                HK(hk_conv1d_silu(d, out, ldo, upload(d, x), ldx, upload(d, w), cs.bias ? upload(d, bias) : nullptr,
                                  upload_ptrs(sd), decode ? nullptr : upload_int(cu), B, max_of(lens), C, K, g_stream));
                Vec ref((size_t)T * C), xt(C);
                for (int b = 0; b < B; b++)
                    for (int t = cu[b]; t < cu[b + 1]; t++) {
                        memcpy(xt.data(), &x[(size_t)t * ldx], C * 4);
                        conv1d_step(&ref[(size_t)t * C], st[b].data(), xt.data(), w.data(),
                                    cs.bias ? bias.data() : nullptr, C, K);
                    }
                for (auto &v : ref) v = rnd(d, v);
                std::string shape =
                    fmt("lens=%s C=%d K=%d bias=%d%s", lens_str(lens).c_str(), C, K, cs.bias, decode ? " decode" : "");
                report("conv1d", shape, dname(d), download(d, out, (size_t)T * ldo), ldo, ref, C, T, C, tol_of(d));
                report_conv_states("conv1d state", shape, d, sd, st, K, C);
                free_all();
            }
}

// ------------------------------------------------------------------ selective scan

// A scan's per-channel parameters (dt bias, A < 0 near -(n+1), D) and a
// random FP32 state per sequence, on the host (st) and the device (sd).
struct ScanParams {
    Vec bias, A, D;
    std::vector<Vec> st;
    std::vector<float *> sd;
    ScanParams(Rng &rng, int B, int C, int N) : A((size_t)C * N), st(B), sd(B) {
        bias = rand_vec(rng, C, -1, 0.5f);
        D = rand_vec(rng, C, -1, 1);
        for (int c = 0; c < C; c++)
            for (int n = 0; n < N; n++) A[(size_t)c * N + n] = -expf(logf((float)(n + 1)) + rng.uni(-0.2f, 0.2f));
        for (int b = 0; b < B; b++) {
            st[b] = rand_vec(rng, (size_t)C * N, -1, 1);
            sd[b] = upload_f32(st[b]);
        }
    }
    // the device states against the host ones (advanced by the reference)
    void report_states(const char *kernel, const std::string &shape, hk_dtype d, double tol) const {
        Vec got, ref;
        for (size_t b = 0; b < st.size(); b++) {
            Vec g = download(HK_F32, sd[b], st[b].size());
            got.insert(got.end(), g.begin(), g.end());
            ref.insert(ref.end(), st[b].begin(), st[b].end());
        }
        report_flat(kernel, shape, dname(d), got, ref, tol);
    }
};

static void test_scan(Rng &rng) {
    struct Case { std::vector<int> lens; int C, N, gate; };
    std::vector<Case> cases = {{{1, 200, 67}, 256, 16, 1}, {{300}, 3200, 16, 1}, {{64, 65, 3}, 100, 8, 0},
                               {{129}, 24, 32, 1}};
    if (g_small) cases = {{{1, 70, 9}, 40, 16, 1}, {{20}, 12, 8, 0}};
    for (hk_dtype d : kDtypes)
        for (const Case &cs : cases)
            for (int mode = 0; mode < 3; mode++) {  // 0: one pass, 1: chunked (workspace), 2: decode step
                std::vector<int> lens = cs.lens;
                if (mode == 2) lens.assign(lens.size() + 1, 1);
                int B = (int)lens.size(), C = cs.C, N = cs.N, R = 5, XDB = R + 2 * N;
                std::vector<int> cu = cu_of(lens);
                int T = cu[B], ldu = C + 1, ldy = C + 3, lddt = C;
                Vec u = rand_vec(rng, (size_t)T * ldu, -2, 2), z = rand_vec(rng, (size_t)T * ldu, -3, 3);
                Vec dt = rand_vec(rng, (size_t)T * lddt, -4, 2), xdb = rand_vec(rng, (size_t)T * XDB, -1.5f, 1.5f);
                for (int i = 0; i < T * lddt; i += 97) dt[i] = 21.0f + (float)(i % 7);  // softplus' linear regime
                round_to(d, u), round_to(d, z), round_to(d, dt), round_to(d, xdb);
                ScanParams sp(rng, B, C, N);
                Vec &bias = sp.bias, &A = sp.A, &D = sp.D;
                std::vector<Vec> &st = sp.st;
                std::vector<float *> &sd = sp.sd;
                int max_len = max_of(lens);
                size_t wsb = mode == 1 ? hk_scan_workspace_bytes(B, max_len, C, N) : 0;
                void *ws = wsb ? dmalloc(wsb) : nullptr;
                if (ws) CK(cudaMemset(ws, 0xFF, wsb));
                void *y = poisoned(d, (size_t)T * ldy);
                char *xd = (char *)upload(d, xdb);
                size_t es = hk_dtype_size(d);
                HK(hk_scan(d, y, ldy, upload(d, u), ldu, upload(d, dt), lddt, upload_f32(bias), upload_f32(A),
                           xd + es * R, XDB, xd + es * (R + N), XDB, upload_f32(D), cs.gate ? upload(d, z) : nullptr,
                           ldu, upload_ptrs(sd), mode == 2 ? nullptr : upload_int(cu), B, max_len, C, N, ws, wsb,
                           g_stream));
                Vec ref((size_t)T * C), delta(C), ut(C), zt(C);
                for (int b = 0; b < B; b++)
                    for (int t = cu[b]; t < cu[b + 1]; t++) {
                        for (int c = 0; c < C; c++) {
                            delta[c] = softplus(dt[(size_t)t * lddt + c] + bias[c]);
                            ut[c] = u[(size_t)t * ldu + c];
                            zt[c] = z[(size_t)t * ldu + c];
                        }
                        const float *row = &xdb[(size_t)t * XDB];
                        scan_step(&ref[(size_t)t * C], st[b].data(), delta.data(), A.data(), row + R, row + R + N,
                                  ut.data(), D.data(), cs.gate ? zt.data() : nullptr, C, N);
                    }
                for (auto &v : ref) v = rnd(d, v);
                static const char *mnames[3] = {"1 pass", "chunked", "decode"};
                std::string shape = fmt("lens=%s C=%d N=%d gate=%d %s", lens_str(lens).c_str(), C, N, cs.gate,
                                        mode == 1 && !wsb ? "(no chunks)" : mnames[mode]);
                report("scan", shape, dname(d), download(d, y, (size_t)T * ldy), ldy, ref, C, T, C, tol_of(d));
                // the state is FP32 in both modes: only the inputs differ, so the FP32 limit holds
                sp.report_states("scan state", shape, d, 1e-4);
                free_all();
            }
}

// hk_ssm_step (the decode step's dt/B/C norms, dt projection and scan step
// in one kernel) against the engine's operations in order on the host: the
// segment norms rounded to the dtype, the dt dot products (FP32) rounded,
// softplus(dt + bias), scan_step, y rounded; with K > 0, u is the conv's
// decode step (conv1d_step, rounded) and the conv state must advance too.
static void test_ssm_step(Rng &rng) {
    struct Case { int B, C, N, R, norm, gate, K; };
    std::vector<Case> cases = {{1, 3200, 16, 100, 1, 1, 4}, {5, 300, 16, 16, 1, 1, 0}, {3, 77, 8, 5, 0, 0, 2},
                               {2, 40, 32, 7, 1, 1, 0}};
    if (g_small) cases = {{3, 77, 8, 5, 1, 1, 4}};
    for (hk_dtype d : kDtypes)
        for (const Case &cs : cases) {
            const int B = cs.B, C = cs.C, N = cs.N, R = cs.R, XDB = R + 2 * N + 3, ldu = C + 1, ldz = C + 5, ldy = C + 2;
            Vec xdb = rand_vec(rng, (size_t)B * XDB, -1.5f, 1.5f), u = rand_vec(rng, (size_t)B * ldu, -2, 2);
            Vec z = rand_vec(rng, (size_t)B * ldz, -3, 3), w = rand_vec(rng, (size_t)C * R, -0.5f, 0.5f);
            Vec nw = rand_vec(rng, (size_t)R + 2 * N, 0.5f, 1.5f);
            round_to(d, xdb), round_to(d, u), round_to(d, z), round_to(d, w), round_to(d, nw);
            ScanParams sp(rng, B, C, N);
            Vec &bias = sp.bias, &A = sp.A, &D = sp.D;
            std::vector<Vec> &st = sp.st;
            std::vector<float *> &sd = sp.sd;
            // the conv (K > 0): its new inputs, taps, bias and state per sequence; u is then its output
            const int K = cs.K, ldcx = C + 3;
            Vec cx = rand_vec(rng, (size_t)B * ldcx, -2, 2), cw = rand_vec(rng, (size_t)C * (K ? K : 1), -0.6f, 0.6f);
            Vec cb = rand_vec(rng, C, -0.3f, 0.3f);
            round_to(d, cx), round_to(d, cw), round_to(d, cb);
            std::vector<Vec> cst(B);
            std::vector<void *> csd(B);
            if (K)
                for (int b = 0; b < B; b++) {
                    cst[b] = rand_vec(rng, (size_t)(K - 1) * C + 1, -2, 2);
                    round_to(d, cst[b]);
                    csd[b] = upload(d, cst[b]);
                }
            hk_conv_step conv = {K ? upload(d, cx) : nullptr, ldcx, K ? upload(d, cw) : nullptr,
                                 K ? upload(d, cb) : nullptr, K ? (void *const *)upload_ptrs(csd) : nullptr, K};
            char *nwd = (char *)upload(d, nw);
            const size_t es = hk_dtype_size(d);
            void *y = poisoned(d, (size_t)B * ldy);
            HK(hk_ssm_step(d, y, ldy, upload(d, xdb), XDB, cs.norm ? nwd : nullptr, cs.norm ? nwd + es * R : nullptr,
                           cs.norm ? nwd + es * (R + N) : nullptr, 1e-6f, upload(d, w), R, upload_f32(bias),
                           upload_f32(A), upload_f32(D), K ? nullptr : upload(d, u), ldu, K ? &conv : nullptr,
                           cs.gate ? upload(d, z) : nullptr, ldz, upload_ptrs(sd), B, C, N, g_stream));
            Vec ref((size_t)B * C), row(R + 2 * N), delta(C);
            for (int b = 0; K && b < B; b++) {  // u = the conv's output, as stored
                conv1d_step(&u[(size_t)b * ldu], cst[b].data(), &cx[(size_t)b * ldcx], cw.data(), cb.data(), C, K);
                for (int c = 0; c < C; c++) u[(size_t)b * ldu + c] = rnd(d, u[(size_t)b * ldu + c]);
            }
            for (int b = 0; b < B; b++) {
                const float *x = &xdb[(size_t)b * XDB];
                if (cs.norm) {
                    rmsnorm(row.data(), x, nw.data(), R, 1e-6f);
                    rmsnorm(row.data() + R, x + R, nw.data() + R, N, 1e-6f);
                    rmsnorm(row.data() + R + N, x + R + N, nw.data() + R + N, N, 1e-6f);
                    for (auto &v : row) v = rnd(d, v);
                } else {
                    memcpy(row.data(), x, sizeof(float) * (R + 2 * N));
                }
                for (int c = 0; c < C; c++) {
                    float dot = 0.0f;
                    for (int j = 0; j < R; j++) dot += w[(size_t)c * R + j] * row[j];
                    delta[c] = softplus(rnd(d, dot) + bias[c]);
                }
                scan_step(&ref[(size_t)b * C], st[b].data(), delta.data(), A.data(), row.data() + R,
                          row.data() + R + N, &u[(size_t)b * ldu], D.data(), cs.gate ? &z[(size_t)b * ldz] : nullptr, C,
                          N);
            }
            for (auto &v : ref) v = rnd(d, v);
            const std::string shape = fmt("B=%d C=%d N=%d R=%d norm=%d gate=%d K=%d", B, C, N, R, cs.norm, cs.gate, K);
            report("ssm_step", shape, dname(d), download(d, y, (size_t)B * ldy), ldy, ref, C, B, C, tol_of(d));
            // FP32 state: the BF16 inputs are the same on both sides, so only a rounding of dt can differ
            sp.report_states("ssm_step st", shape, d, d == HK_F32 ? 1e-4 : 1e-2);
            if (K > 1) report_conv_states("ssm_step conv", shape, d, csd, cst, K, C);  // the last K-1 inputs
            free_all();
        }
}

// ------------------------------------------------------------------ MLP activations

static void test_mlp(Rng &rng) {
    struct Case { int rows, n; };
    std::vector<Case> cases = {{9, 5504}, {3, 77}, {1, 1}};
    if (g_small) cases = {{3, 77}};
    for (hk_dtype d : kDtypes)
        for (const Case &cs : cases) {
            int rows = cs.rows, n = cs.n, ldgu = 2 * n + 1, ldo = n + 2;
            Vec gu = rand_vec(rng, (size_t)rows * ldgu, -4, 4);  // gate | up in one row (a fused GEMM's output)
            round_to(d, gu);
            char *gd = (char *)upload(d, gu);
            size_t es = hk_dtype_size(d);
            void *out = poisoned(d, (size_t)rows * ldo);
            HK(hk_swiglu(d, out, ldo, gd, ldgu, gd + es * n, ldgu, rows, n, g_stream));
            Vec ref((size_t)rows * n), ref2((size_t)rows * n);
            for (int r = 0; r < rows; r++)
                for (int i = 0; i < n; i++) {
                    float g = gu[(size_t)r * ldgu + i], u = gu[(size_t)r * ldgu + n + i];
                    ref[(size_t)r * n + i] = rnd(d, rnd(d, silu(g)) * u);
                    float rl = u > 0 ? u : 0.0f;
                    ref2[(size_t)r * n + i] = rnd(d, rl * rl);
                }
            report("swiglu", fmt("rows=%d n=%d", rows, n), dname(d), download(d, out, (size_t)rows * ldo), ldo, ref, n,
                   rows, n, tol_of(d));
            void *out2 = poisoned(d, (size_t)rows * ldo);
            HK(hk_relu2(d, out2, ldo, gd + es * n, ldgu, rows, n, g_stream));
            bool any = false;
            for (float v : ref2) any |= v != 0;
            if (any)
                report("relu2", fmt("rows=%d n=%d", rows, n), dname(d), download(d, out2, (size_t)rows * ldo), ldo,
                       ref2, n, rows, n, tol_of(d));
            free_all();
        }
}

// ------------------------------------------------------------------ GEMM

static void test_gemm(Rng &rng) {
    struct Case { int rows, in, out, bias, padx; };
    // rows <= 8 with 16-byte aligned rows take the weight-streaming kernel in BF16 (the others, cuBLASLt)
    std::vector<Case> cases = {{1, 1600, 3200, 0, 0}, {37, 100, 48, 1, 3}, {130, 1600, 6400, 0, 0},
                               {17, 1600, 32001, 0, 0}, {5, 3200, 1600, 1, 8},  {8, 5504, 1600, 1, 0},
                               {3, 24, 7, 1, 0},        {7, 1600, 333, 0, 3}};
    if (g_small) cases = {{3, 64, 40, 1, 3}, {2, 64, 40, 1, 0}};
    setenv("HYMEVAL_GEMV_ROWS", "8", 1);  // the weight-streaming kernel on every case it can take (read once)
    setenv("HYMEVAL_GEMM_PLANS", "1", 1);  // the plans kept per shape (read at hk_gemm_create)
    hk_gemm *g = nullptr;
    if (hk_gemm_create(&g, 0)) {
        printf("gemm          hk_gemm_create failed: %s  FAIL\n", hk_last_error());
        g_failures++;
        return;
    }
    // every shape twice, with fresh data, weights and bias: the second call
    // runs on the plan (descriptors, algorithm) hk_gemm kept from the first
    for (hk_dtype d : kDtypes)
        for (const Case &cs : cases)
            for (int call = 1; call <= 2; call++) {
                int rows = cs.rows, in = cs.in, out = cs.out, ldx = in + cs.padx, ldy = out + (cs.padx ? 1 : 0);
                Vec x = rand_vec(rng, (size_t)rows * ldx, -1, 1), w = rand_vec(rng, (size_t)out * in, -0.1f, 0.1f);
                Vec bias = rand_vec(rng, out, -1, 1);
                round_to(d, x), round_to(d, w), round_to(d, bias);
                void *y = poisoned(d, (size_t)rows * ldy);
                HK(hk_gemm_run(g, d, y, ldy, upload(d, x), ldx, upload(d, w), in, cs.bias ? upload(d, bias) : nullptr,
                               rows, in, out, g_stream));
                Vec ref((size_t)rows * out);
                matmul(ref.data(), out, x.data(), ldx, w.data(), cs.bias ? bias.data() : nullptr, rows, in, out);
                for (auto &v : ref) v = rnd(d, v);
                report("gemm",
                       fmt("rows=%d in=%d out=%d bias=%d ldx=%d ldy=%d call %d", rows, in, out, cs.bias, ldx, ldy, call),
                       dname(d), download(d, y, (size_t)rows * ldy), ldy, ref, out, rows, out, tol_of(d));
                free_all();
            }
    hk_gemm_destroy(g);
}

// ------------------------------------------------------------------ GEMV with prologue / residual epilogue

// hk_gemv in every input mode, with and without the residual epilogue (in
// place, y == resid, as the backend runs it, and out of place into
// poison): against the CPU (the engine's rmsnorm / silu, matmul, rounded
// where the separate kernels store), and bit for bit against the separate
// kernels (hk_rmsnorm or hk_swiglu, then hk_gemm_run's GEMV, then
// hk_add_rmsnorm's add). Shapes of Hymba-1.5B's decode projections, the
// tiny models' (in 64: a 32-thread norm), in not a multiple of 256, out
// not a multiple of the 8 columns of a block, 1 to 4 rows.
static void test_gemv_fused(Rng &rng) {
    struct Case { int rows, in, out, bias, padx; };
    std::vector<Case> cases = {{1, 1600, 1601, 1, 0}, {2, 1600, 3200, 1, 8}, {1, 3200, 1600, 1, 0},
                               {2, 5504, 1600, 0, 0}, {2, 64, 333, 0, 8},    {1, 72, 100, 1, 0},
                               {4, 1000, 77, 1, 0},   {3, 2056, 50, 0, 8}};
    if (g_small) cases = {{1, 64, 40, 1, 0}, {2, 72, 33, 0, 8}};
    setenv("HYMEVAL_GEMV_ROWS", "8", 1);  // as test_gemm (read once): the GEMV up to 8 rows
    hk_gemm *g = nullptr;
    if (hk_gemm_create(&g, 0)) {
        printf("gemv          hk_gemm_create failed: %s  FAIL\n", hk_last_error());
        g_failures++;
        return;
    }
    const hk_dtype d = HK_BF16;
    const float eps = 1e-6f;
    struct Mode { hk_gemv_in in; bool resid; const char *name; };
    const Mode modes[8] = {{HK_GEMV_RMSNORM, false, "gemv norm"},    {HK_GEMV_SWIGLU, false, "gemv swiglu"},
                           {HK_GEMV_X, true, "gemv x+res"},          {HK_GEMV_RMSNORM, true, "gemv norm+res"},
                           {HK_GEMV_SWIGLU, true, "gemv swig+res"},  {HK_GEMV_FUSE_AVG, false, "gemv fuse"},
                           {HK_GEMV_FUSE_AVG, true, "gemv fuse+res"}, {HK_GEMV_CONV, false, "gemv conv"}};
    const int K = 4;  // the conv mode's taps (Hymba's d_conv)
    for (const Case &cs : cases)
        for (const Mode &md : modes) {
            const int rows = cs.rows, in = cs.in, out = cs.out, ldy = out + (cs.padx ? 1 : 0);
            const bool swiglu = md.in == HK_GEMV_SWIGLU, fz = md.in == HK_GEMV_FUSE_AVG, cv = md.in == HK_GEMV_CONV;
            const int ldx = (swiglu ? 2 * in : in) + cs.padx;
            std::string shape = fmt("rows=%d in=%d out=%d bias=%d ldx=%d", rows, in, out, cs.bias, ldx);
            if (hk_gemv_rows(g, md.in, in) < rows) {  // the comparison with hk_gemm_run would not be the GEMV's
                printf("%-13s %s: hk_gemv_rows %d < rows  FAIL\n", md.name, shape.c_str(),
                       hk_gemv_rows(g, md.in, in));
                g_failures++;
                continue;
            }
            Vec x = rand_vec(rng, (size_t)rows * ldx, -2, 2), w = rand_vec(rng, (size_t)out * in, -0.1f, 0.1f);
            Vec bias = rand_vec(rng, out, -1, 1), nw = rand_vec(rng, in, 0.5f, 1.5f);
            Vec resid = rand_vec(rng, (size_t)rows * ldy, -3, 3);
            Vec x2 = rand_vec(rng, (size_t)rows * ldx, -1, 1), nw2 = rand_vec(rng, in, 0.5f, 1.5f);  // fuse: the SSM branch
            round_to(d, x), round_to(d, w), round_to(d, bias), round_to(d, nw), round_to(d, resid);
            round_to(d, x2), round_to(d, nw2);
            // conv: row r is sequence r's new input; taps, bias and a state per sequence
            Vec cw = rand_vec(rng, (size_t)in * K, -0.6f, 0.6f), cb = rand_vec(rng, in, -0.3f, 0.3f);
            round_to(d, cw), round_to(d, cb);
            std::vector<Vec> cst(rows);
            std::vector<void *> st_fused(rows), st_sep(rows);  // the separate conv advances its copy
            for (int r = 0; r < rows; r++) {
                cst[r] = rand_vec(rng, (size_t)(K - 1) * in, -2, 2);
                round_to(d, cst[r]);
                if (cv) st_fused[r] = upload(d, cst[r]), st_sep[r] = upload(d, cst[r]);
            }
            // the CPU: the input as the separate kernel stores it, the GEMM, the add
            Vec a((size_t)rows * in), ref((size_t)rows * out);
            for (int r = 0; r < rows; r++) {
                float *ar = &a[(size_t)r * in];
                const float *xr = &x[(size_t)r * ldx];
                if (md.in == HK_GEMV_RMSNORM || fz) rmsnorm(ar, xr, nw.data(), in, eps);
                if (cv) {  // the conv's decode step, stored
                    Vec win = cst[r];
                    conv1d_step(ar, win.data(), xr, cw.data(), cb.data(), in, K);
                    for (int i = 0; i < in; i++) ar[i] = rnd(d, ar[i]);
                } else if (fz) {  // (round(norm a) + round(norm s)) / 2, stored
                    Vec s2(in);
                    rmsnorm(s2.data(), &x2[(size_t)r * ldx], nw2.data(), in, eps);
                    for (int i = 0; i < in; i++) ar[i] = rnd(d, (rnd(d, ar[i]) + rnd(d, s2[i])) / 2.0f);
                } else
                for (int i = 0; i < in; i++)
                    ar[i] = md.in == HK_GEMV_RMSNORM ? rnd(d, ar[i]) : swiglu ? rnd(d, rnd(d, silu(xr[i])) * xr[in + i])
                                                                              : xr[i];
            }
            matmul(ref.data(), out, a.data(), in, w.data(), cs.bias ? bias.data() : nullptr, rows, in, out);
            for (int r = 0; r < rows; r++)
                for (int o = 0; o < out; o++) {
                    float &v = ref[(size_t)r * out + o];
                    v = md.resid ? rnd(d, resid[(size_t)r * ldy + o] + rnd(d, v)) : rnd(d, v);
                }
            void *xd = upload(d, x), *wd = upload(d, w), *bd = cs.bias ? upload(d, bias) : nullptr;
            void *nwd = upload(d, nw), *x2d = upload(d, x2), *nw2d = upload(d, nw2);
            // the separate kernels
            const size_t es = 2;
            void *ad = xd, *td = poisoned(d, (size_t)rows * ldy);
            int lda = ldx;
            if (md.in != HK_GEMV_X) {
                ad = poisoned(d, (size_t)rows * in), lda = in;
                if (swiglu) HK(hk_swiglu(d, ad, in, xd, ldx, (char *)xd + in * es, ldx, rows, in, g_stream));
                else if (fz) HK(hk_fuse_norm_avg(d, ad, in, xd, ldx, nwd, x2d, ldx, nw2d, rows, in, eps, g_stream));
                else if (cv)
                    HK(hk_conv1d_silu(d, ad, in, xd, ldx, upload(d, cw), upload(d, cb), upload_ptrs(st_sep), nullptr,
                                      rows, 1, in, K, g_stream));
                else HK(hk_rmsnorm(d, ad, in, xd, ldx, nwd, rows, in, eps, g_stream));
            }
            HK(hk_gemm_run(g, d, td, ldy, ad, lda, wd, in, bd, rows, in, out, g_stream));
            void *sep = td;
            if (md.resid) {
                sep = upload(d, resid);
                HK(hk_add_rmsnorm(d, sep, ldy, td, ldy, poisoned(d, (size_t)rows * out), out, nullptr, rows, out, eps,
                                  g_stream));
            }
            // fused: in place on resid (as the backend), and into poison
            void *yd = md.resid ? upload(d, resid) : poisoned(d, (size_t)rows * ldy);
            if (fz)
                HK(hk_gemv_fuse_avg(d, yd, ldy, md.resid ? yd : nullptr, ldy, xd, ldx, nwd, x2d, ldx, nw2d, eps, wd, in,
                                    bd, rows, in, out, g_stream));
            else if (cv)
                HK(hk_gemv_conv(d, yd, ldy, xd, ldx, upload_ptrs(st_fused), upload(d, cw), upload(d, cb), K, wd, in, bd,
                                rows, in, out, g_stream));
            else
                HK(hk_gemv(d, md.in, yd, ldy, md.resid ? yd : nullptr, ldy, xd, ldx, nwd, eps, wd, in, bd, rows, in,
                           out, g_stream));
            std::string sh = md.resid ? shape + " in place" : shape;
            report(md.name, sh, "bf16", download(d, yd, (size_t)rows * ldy), ldy, ref, out, rows, out, tol_of(d),
                   !md.resid);
            report_exact(md.name, sh, "bf16/sep.", d, yd, ldy, sep, ldy, rows, out, !md.resid);
            if (md.resid) {  // out of place: y poisoned, resid apart
                void *rd = upload(d, resid), *yo = poisoned(d, (size_t)rows * ldy);
                if (fz)
                    HK(hk_gemv_fuse_avg(d, yo, ldy, rd, ldy, xd, ldx, nwd, x2d, ldx, nw2d, eps, wd, in, bd, rows, in,
                                        out, g_stream));
                else
                    HK(hk_gemv(d, md.in, yo, ldy, rd, ldy, xd, ldx, nwd, eps, wd, in, bd, rows, in, out, g_stream));
                report_exact(md.name, shape, "bf16/sep.", d, yo, ldy, sep, ldy, rows, out);
            }
            free_all();
        }
    hk_gemm_destroy(g);
}

// ------------------------------------------------------------------ timings (--bench)

// Median of reps timed launches (CUDA events) after 2 warm-up launches.
template <typename F> static double median_ms(F f, int reps = 10) {
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    for (int i = 0; i < 2; i++) f();
    CK(cudaDeviceSynchronize());
    std::vector<float> t;
    for (int i = 0; i < reps; i++) {
        CK(cudaEventRecord(a, g_stream));
        f();
        CK(cudaEventRecord(b, g_stream));
        CK(cudaEventSynchronize(b));
        float ms;
        CK(cudaEventElapsedTime(&ms, a, b));
        t.push_back(ms);
    }
    CK(cudaEventDestroy(a));
    CK(cudaEventDestroy(b));
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}
#define LAUNCH(call)                                                                                 \
    do {                                                                                             \
        if ((call) != 0) {                                                                           \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, hk_last_error());          \
            exit(1);                                                                                 \
        }                                                                                            \
    } while (0)

// The scan of the backend's prefill passes: nb sequences of 8192 rows in
// one call (nb = 8 is a batch-128 prefill pass at the default 65536 rows,
// nb = 2 at the earlier 16384); HYMEVAL_SCAN_WAVE changes how many chunks
// they are cut into.
static void bench_scan_long(Rng &rng, int I, int N, const float *Ad, const float *bd, const float *Dd) {
    const hk_dtype d = HK_BF16;
    auto dev_rand = [&](size_t n) { Vec v = rand_vec(rng, n, -1, 1); return upload(d, v); };
    for (int nb : {1, 2, 4, 8}) {
        const int sl = 8192, rows = nb * sl;
        void *lu = dev_rand((size_t)rows * I), *ldt = dev_rand((size_t)rows * I), *lz = dev_rand((size_t)rows * I);
        void *lbc = dev_rand((size_t)rows * 2 * N), *ly = dmalloc((size_t)rows * I * 2);
        std::vector<float *> lh(nb);
        for (auto &p : lh) p = upload_f32(rand_vec(rng, (size_t)I * N, -1, 1));
        float **lhd = upload_ptrs(lh);
        std::vector<int> lcu(nb + 1);
        for (int b = 0; b <= nb; b++) lcu[b] = b * sl;
        int *lcud = upload_int(lcu);
        size_t lwsb = hk_scan_workspace_bytes(nb, sl, I, N);
        void *lws = lwsb ? dmalloc(lwsb) : nullptr;
        double ms = median_ms([&] {
            LAUNCH(hk_scan(d, ly, I, lu, I, ldt, I, bd, Ad, lbc, 2 * N, (char *)lbc + 2 * N, 2 * N, Dd, lz, I, lhd, lcud,
                           nb, sl, I, N, lws, lwsb, g_stream));
        });
        printf("%-13s %-46s %9.3f  %.0f GB/s (u, dt, z, y once), workspace %.1f MB\n", "scan",
               fmt("B=%d S=%d C=%d N=%d chunked", nb, sl, I, N).c_str(), ms, 4.0 * rows * I * 2 / (ms * 1e-3) / 1e9,
               lwsb / 1e6);
    }
}

// --bench-gemm: the GEMMs of a prefill pass at Hymba-1.5B's shapes (rows:
// one 8192-token sequence with its 128 meta rows, and a full batch-128
// pass of 65536 rows), cuBLASLt's choice in TFLOP/s and the best of its
// other candidates. Prefill spends about half its time here
// (docs/PERFORMANCE.md), so this tells which shapes fall short of the
// large-GEMM ceiling and whether a different algorithm would close it.
static void bench_gemm_prefill(Rng &rng) {
    const hk_dtype d = HK_BF16;
    hk_gemm *g = nullptr;
    if (hk_gemm_create(&g, 0)) {
        printf("gemm: cuBLASLt could not be set up\n");
        return;
    }
    printf("\nprefill GEMMs, BF16 (median of 10)\n");
    struct Shape { int in, out; const char *what; };
    for (int rows : {8320, 65536})
        for (const Shape &sh : {Shape{1600, 8960, "in_proj"}, Shape{3200, 132, "x_proj"}, Shape{100, 3200, "dt_proj"},
                                Shape{3200, 1600, "out_proj"}, Shape{1600, 11008, "mlp in"},
                                Shape{5504, 1600, "mlp down"}}) {
            auto dev_rand = [&](size_t n) { Vec v = rand_vec(rng, n, -1, 1); return upload(d, v); };
            void *w = dev_rand((size_t)sh.in * sh.out), *x = dev_rand((size_t)rows * sh.in);
            void *y = dmalloc((size_t)rows * sh.out * 2);
            const double ms = median_ms([&] {
                LAUNCH(hk_gemm_run(g, d, y, sh.out, x, sh.in, w, sh.in, nullptr, rows, sh.in, sh.out, g_stream));
            });
            const double flop = 2.0 * rows * sh.in * sh.out;
            float t[16];
            const int n = hk_gemm_time_algos(g, d, y, sh.out, x, sh.in, w, sh.in, rows, sh.in, sh.out, t, 16, g_stream);
            int best = 0;
            for (int k = 1; k < n; k++)
                if (t[k] > 0 && (t[best] <= 0 || t[k] < t[best])) best = k;
            printf("%-13s %-46s %9.3f  %.0f TFLOP/s; best of %d candidates #%d: %.3f ms, %.0f TFLOP/s\n", "gemm",
                   fmt("%s rows=%d in=%d out=%d", sh.what, rows, sh.in, sh.out).c_str(), ms, flop / (ms * 1e-3) / 1e12,
                   n, best, n > 0 ? t[best] : -1.0, n > 0 ? flop / (t[best] * 1e-3) / 1e12 : 0.0);
            free_all();
        }
    hk_gemm_destroy(g);
}

// --bench-scan: bench_scan_long alone, Hymba-1.5B's SSM shapes.
static void bench_scan_only(Rng &rng) {
    const int I = 3200, N = 16;
    Vec A((size_t)I * N);
    for (auto &a : A) a = -rng.uni(0.5f, 16.0f);
    float *Ad = upload_f32(A), *Dd = upload_f32(rand_vec(rng, I, -1, 1)), *bd = upload_f32(rand_vec(rng, I, -1, 0));
    bench_scan_long(rng, I, N, Ad, bd, Dd);
    free_all();
}

// The prefill attention kernels at Hymba-1.5B's heads, one sequence of S rows.
static void bench_attn_prefill(Rng &rng, int S) {
    const hk_dtype d = HK_BF16;
    const int nh = 25, nkv = 5, dk = 64, dv = 128, M = 128, W = 1024;
    std::vector<int> cu = {0, S};
    int *cud = upload_int(cu);
    auto dev_rand = [&](size_t n) { Vec v = rand_vec(rng, n, -1, 1); return upload(d, v); };
    // attention prefill: q | k | v rows as in_proj writes them
    int ldp = nh * dk + nkv * dk + nkv * dv;
    char *proj = (char *)dev_rand((size_t)S * ldp);
    void *att = dmalloc((size_t)S * nh * dv * 2);
    std::vector<int> variants = {0};  // the prefill kernels: mma.sync, then the wgmma ones (hk_attn_wgmma)
    if (hk_attn_wgmma_built()) variants.insert(variants.end(), {1, 2, 3, 4, 5, 6, 7, 8, 9});
    const int was = hk_attn_wgmma(-1);
    for (int w : {W, 0})
        for (int nwg : variants) {
            hk_attn_wgmma(nwg);
            double pairs = 0;  // visible (query, key) pairs
            for (int q = 0; q < S; q++) pairs += w ? (q < M + w ? q + 1 : M + w + 1) : q + 1;
            double flops = pairs * nh * 2.0 * (dk + dv);
            double ms = median_ms([&] {
                LAUNCH(hk_attn_prefill(d, att, nh * dv, proj, ldp, proj + 2 * nh * dk, ldp, proj + 2 * (nh + nkv) * dk,
                                       ldp, cud, 1, S, nh, nkv, dk, dv, M, w, 0.125f, g_stream));
            });
            printf("%-13s %-46s %9.3f  %.1f TFLOP/s\n", "attn_prefill",
                   fmt("S=%d nh=25 nkv=5 dk=64 dv=128 W=%d %s", S, w, nwg ? fmt("wg%d", nwg).c_str() : "mma.sync")
                       .c_str(),
                   ms, flops / (ms * 1e-3) / 1e12);
        }
    hk_attn_wgmma(was);
}

// For a profiler (ncu -k regex:prefill): the BF16 prefill attention at
// S = 8192 under the current setting, three launches with the window, then
// three global; nothing else is launched but the inputs' uploads.
static void profile_attn_prefill(Rng &rng) {
    const int S = 8192, nh = 25, nkv = 5, dk = 64, dv = 128, M = 128;
    std::vector<int> cu = {0, S};
    int *cud = upload_int(cu);
    const int ldp = nh * dk + nkv * dk + nkv * dv;
    Vec r = rand_vec(rng, (size_t)S * ldp, -1, 1);
    char *proj = (char *)upload(HK_BF16, r);
    void *att = dmalloc((size_t)S * nh * dv * 2);
    for (int w : {1024, 0})
        for (int i = 0; i < 3; i++)
            LAUNCH(hk_attn_prefill(HK_BF16, att, nh * dv, proj, ldp, proj + 2 * nh * dk, ldp,
                                   proj + 2 * (nh + nkv) * dk, ldp, cud, 1, S, nh, nkv, dk, dv, M, w, 0.125f, g_stream));
    CK(cudaStreamSynchronize(g_stream));
    printf("attn profile: setting %d, S=%d, window 1024 x3 then global x3\n", hk_attn_wgmma(-1), S);
    free_all();
}

static void bench(Rng &rng) {
    const hk_dtype d = HK_BF16;
    const int S = 4096, H = 1600, I = 3200, nh = 25, nkv = 5, dk = 64, dv = 128, N = 16, M = 128, W = 1024;
    printf("\ntimings, BF16, Hymba-1.5B shapes, one sequence of S=%d rows (median of 10)\n", S);
    printf("%-13s %-46s %9s  %s\n", "kernel", "shape", "ms", "rate");
    std::vector<int> cu = {0, S};
    int *cud = upload_int(cu);
    auto dev_rand = [&](size_t n) { Vec v = rand_vec(rng, n, -1, 1); return upload(d, v); };
    bench_attn_prefill(rng, S);
    int ldp = nh * dk + nkv * dk + nkv * dv;  // q | k | v rows as in_proj writes them
    char *proj = (char *)dev_rand((size_t)S * ldp);
    // decode against a long global cache and a sliding-window ring
    for (int B : {1, 16, 128}) {
        for (int w : {0, W}) {
            int pos = 8191, slots = w ? M + w + 1 : pos + 1;
            std::vector<void *> kc(B), vc(B);
            for (int b = 0; b < B; b++) {
                kc[b] = dev_rand((size_t)slots * nkv * dk);
                vc[b] = dev_rand((size_t)slots * nkv * dv);
            }
            void **kcd = upload_ptrs(kc), **vcd = upload_ptrs(vc);
            int *posd = upload_int(std::vector<int>(B, pos));
            void *q = dev_rand((size_t)B * nh * dk), *o = dmalloc((size_t)B * nh * dv * 2);
            size_t wsb = hk_attn_decode_workspace_bytes(B, nh, dv, 64);
            void *ws = dmalloc(wsb);
            double ms = median_ms([&] {
                LAUNCH(hk_attn_decode(d, o, nh * dv, q, nh * dk, (const void *const *)kcd, nkv * dk,
                                      (const void *const *)vcd, nkv * dv, posd, B, pos, nh, nkv, dk, dv, M, w, 0.125f,
                                      ws, wsb, g_stream));
            });
            double bytes = (double)B * slots * nkv * (dk + dv) * 2;
            printf("%-13s %-46s %9.3f  %.0f GB/s (KV read once), splits=%d\n", "attn_decode",
                   fmt("B=%d pos=%d W=%d", B, pos, w).c_str(), ms, bytes / (ms * 1e-3) / 1e9,
                   hk_attn_decode_splits(B, pos, nh, nkv, dv, M, w, ws, wsb));
        }
    }
    // projections of a decode step: the weight-streaming kernel against cuBLASLt (HYMEVAL_GEMV=0)
    {
        hk_gemm *gv = nullptr, *gl = nullptr;
        setenv("HYMEVAL_GEMV", "0", 1);
        int bad = hk_gemm_create(&gl, 0);
        unsetenv("HYMEVAL_GEMV");
        bad = bad || hk_gemm_create(&gv, 0);
        struct Shape { int in, out; const char *what; };
        for (const Shape &sh : {Shape{1600, 8960, "in_proj"}, Shape{3200, 1600, "out_proj"},
                                Shape{5504, 1600, "mlp down"}, Shape{1600, 11008, "mlp in"}})
            for (int rows : {1, 2, 4, 8, 32, 128}) {
                if (bad) break;
                void *w = dev_rand((size_t)sh.in * sh.out), *x = dev_rand((size_t)rows * sh.in);
                void *y = dmalloc((size_t)rows * sh.out * 2);
                double ms[2];
                hk_gemm *gs[2] = {gv, gl};
                for (int k = 0; k < 2; k++)
                    ms[k] = median_ms([&] { LAUNCH(hk_gemm_run(gs[k], d, y, sh.out, x, sh.in, w, sh.in, nullptr, rows,
                                                               sh.in, sh.out, g_stream)); });
                double bytes = (double)sh.in * sh.out * 2;
                printf("%-13s %-46s %9.3f  %.0f GB/s of weights (cuBLASLt: %.3f ms, %.0f GB/s)\n", "gemm",
                       fmt("%s rows=%d in=%d out=%d", sh.what, rows, sh.in, sh.out).c_str(), ms[0],
                       bytes / (ms[0] * 1e-3) / 1e9, ms[1], bytes / (ms[1] * 1e-3) / 1e9);
                if (rows >= 8) {  // what the heuristic's other candidates would take (batched decode)
                    float t[16];
                    int n = hk_gemm_time_algos(gl, d, y, sh.out, x, sh.in, w, sh.in, rows, sh.in, sh.out, t, 16,
                                               g_stream);
                    int best = 0;
                    for (int k = 1; k < n; k++)
                        if (t[k] > 0 && (t[best] <= 0 || t[k] < t[best])) best = k;
                    printf("%-13s %-46s %9.3f  best of %d cuBLASLt candidates: #%d, %.0f GB/s (its choice %.3f ms)\n",
                           "gemm algos", fmt("%s rows=%d", sh.what, rows).c_str(), n > 0 ? t[best] : -1.0, n, best,
                           n > 0 ? bytes / (t[best] * 1e-3) / 1e9 : 0.0, n > 0 ? t[0] : -1.0);
                }
            }
        // the fused GEMVs of a decode step against the separate kernels they replace (plain launches, no graph)
        struct Fused { hk_gemv_in in; bool resid; int k, n; const char *what; };
        for (const Fused &fz : {Fused{HK_GEMV_RMSNORM, false, 1600, 8960, "in_proj: norm"},
                                Fused{HK_GEMV_X, true, 3200, 1600, "out_proj: +resid"},
                                Fused{HK_GEMV_RMSNORM, false, 1600, 11008, "mlp in: norm"},
                                Fused{HK_GEMV_SWIGLU, true, 5504, 1600, "mlp down: swiglu+resid"}})
            for (int rows : {1, 2}) {
                if (bad) break;
                const bool sw = fz.in == HK_GEMV_SWIGLU;
                const int ldx = sw ? 2 * fz.k : fz.k;
                void *w = dev_rand((size_t)fz.k * fz.n), *x = dev_rand((size_t)rows * ldx), *nw = dev_rand(fz.k);
                void *a = dmalloc((size_t)rows * fz.k * 2), *y = dev_rand((size_t)rows * fz.n);
                void *t = dmalloc((size_t)rows * fz.n * 2), *hn = dmalloc((size_t)rows * fz.n * 2);
                double fused = median_ms([&] {
                    LAUNCH(hk_gemv(d, fz.in, y, fz.n, fz.resid ? y : nullptr, fz.n, x, ldx, nw, 1e-6f, w, fz.k, nullptr,
                                   rows, fz.k, fz.n, g_stream));
                });
                double sep = median_ms([&] {
                    const void *in = x;
                    if (fz.in == HK_GEMV_RMSNORM) LAUNCH(hk_rmsnorm(d, a, fz.k, x, ldx, nw, rows, fz.k, 1e-6f, g_stream));
                    if (sw) LAUNCH(hk_swiglu(d, a, fz.k, x, ldx, (char *)x + fz.k * 2, ldx, rows, fz.k, g_stream));
                    if (fz.in != HK_GEMV_X) in = a;
                    LAUNCH(hk_gemm_run(gv, d, fz.resid ? t : y, fz.n, in, fz.in == HK_GEMV_X ? ldx : fz.k, w, fz.k,
                                       nullptr, rows, fz.k, fz.n, g_stream));
                    if (fz.resid)  // the add (the backend's next add_rmsnorm also normalises)
                        LAUNCH(hk_add_rmsnorm(d, y, fz.n, t, fz.n, hn, fz.n, nullptr, rows, fz.n, 1e-6f, g_stream));
                });
                printf("%-13s %-46s %9.3f  (separate kernels: %.3f ms)\n", "gemv fused",
                       fmt("%s rows=%d in=%d out=%d", fz.what, rows, fz.k, fz.n).c_str(), fused, sep);
            }
        hk_gemm_destroy(gv);
        hk_gemm_destroy(gl);
    }
    // SSM branch
    void *x = dev_rand((size_t)S * I), *xc = dmalloc((size_t)S * I * 2), *cw = dev_rand((size_t)I * 4);
    void *st = dev_rand((size_t)3 * I);
    void **std_ = upload_ptrs(std::vector<void *>{st});
    double ms = median_ms([&] { LAUNCH(hk_conv1d_silu(d, xc, I, x, I, cw, nullptr, std_, cud, 1, S, I, 4, g_stream)); });
    printf("%-13s %-46s %9.3f  %.0f GB/s\n", "conv1d", fmt("S=%d C=%d K=4", S, I).c_str(), ms,
           2.0 * S * I * 2 / (ms * 1e-3) / 1e9);
    Vec A((size_t)I * N);
    for (auto &a : A) a = -rng.uni(0.5f, 16.0f);
    float *Ad = upload_f32(A), *Dd = upload_f32(rand_vec(rng, I, -1, 1)), *bd = upload_f32(rand_vec(rng, I, -1, 0));
    void *dt = dev_rand((size_t)S * I), *z = dev_rand((size_t)S * I), *bc = dev_rand((size_t)S * 2 * N);
    void *y = dmalloc((size_t)S * I * 2);
    float *hs = upload_f32(rand_vec(rng, (size_t)I * N, -1, 1));
    float **hsd = upload_ptrs(std::vector<float *>{hs});
    size_t wsb = hk_scan_workspace_bytes(1, S, I, N);
    void *ws = dmalloc(wsb);
    for (int chunked = 0; chunked < 2; chunked++) {
        ms = median_ms([&] {
            LAUNCH(hk_scan(d, y, I, xc, I, dt, I, bd, Ad, bc, 2 * N, (char *)bc + 2 * N, 2 * N, Dd, z, I, hsd, cud, 1,
                           S, I, N, chunked ? ws : nullptr, wsb, g_stream));
        });
        printf("%-13s %-46s %9.3f  %.0f GB/s (u, dt, z, y once)\n", "scan", fmt("S=%d C=%d N=%d %s", S, I, N,
               chunked ? "chunked" : "1 pass").c_str(), ms, 4.0 * S * I * 2 / (ms * 1e-3) / 1e9);
    }
    bench_scan_long(rng, I, N, Ad, bd, Dd);
    // row-wise kernels
    void *h = dev_rand((size_t)S * H), *u = dev_rand((size_t)S * H), *hn = dmalloc((size_t)S * H * 2), *wn = dev_rand(H);
    ms = median_ms([&] { LAUNCH(hk_add_rmsnorm(d, h, H, u, H, hn, H, wn, S, H, 1e-6f, g_stream)); });
    printf("%-13s %-46s %9.3f  %.0f GB/s\n", "add_rmsnorm", fmt("rows=%d n=%d", S, H).c_str(), ms,
           4.0 * S * H * 2 / (ms * 1e-3) / 1e9);
    void *a2 = dev_rand((size_t)S * I), *wa = dev_rand(I), *ws2 = dev_rand(I), *f = dmalloc((size_t)S * I * 2);
    ms = median_ms([&] { LAUNCH(hk_fuse_norm_avg(d, f, I, a2, I, wa, y, I, ws2, S, I, 1e-6f, g_stream)); });
    printf("%-13s %-46s %9.3f  %.0f GB/s\n", "fuse", fmt("rows=%d n=%d", S, I).c_str(), ms,
           3.0 * S * I * 2 / (ms * 1e-3) / 1e9);
    Vec inv(dk / 2);
    hk_rope_inv_freq(inv.data(), dk, 10000.0);
    float *invd = upload_f32(inv);
    std::vector<int> pos(S);
    for (int i = 0; i < S; i++) pos[i] = i;
    int *posd = upload_int(pos);
    ms = median_ms([&] {
        LAUNCH(hk_rope_qk(d, proj, ldp, nh, proj + 2 * nh * dk, ldp, nkv, dk, posd, invd, S, HK_ROPE_BF16_HF, 1,
                          nullptr, nullptr, 0, 1e-6f, g_stream));
    });
    printf("%-13s %-46s %9.3f  %.0f GB/s\n", "rope_qk", fmt("rows=%d nq=25 nk=5 d=64 bf16-hf", S).c_str(), ms,
           2.0 * S * (nh + nkv) * dk * 2 / (ms * 1e-3) / 1e9);
    int F = 5504;
    void *gu = dev_rand((size_t)S * 2 * F), *act = dmalloc((size_t)S * F * 2);
    ms = median_ms([&] { LAUNCH(hk_swiglu(d, act, F, gu, 2 * F, (char *)gu + 2 * F, 2 * F, S, F, g_stream)); });
    printf("%-13s %-46s %9.3f  %.0f GB/s\n", "swiglu", fmt("rows=%d n=%d", S, F).c_str(), ms,
           3.0 * S * F * 2 / (ms * 1e-3) / 1e9);
    free_all();
}

// ------------------------------------------------------------------ main

int main(int argc, char **argv) {
    bool do_bench = false, only_bench = false, only_scan = false, only_attn = false, only_profile = false,
         only_gemm = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--small") == 0) g_small = true;
        else if (strcmp(argv[i], "--bench-scan") == 0) only_scan = true;
        else if (strcmp(argv[i], "--bench-gemm") == 0) only_gemm = true;
        else if (strcmp(argv[i], "--attn") == 0) only_attn = true;
        else if (strcmp(argv[i], "--attn-profile") == 0) only_profile = true;
        else if (strcmp(argv[i], "--bench") == 0) do_bench = true;
        else if (strcmp(argv[i], "--bench-only") == 0) do_bench = only_bench = true;
        else {
            fprintf(stderr, "usage: %s [--small] [--bench | --bench-only | --bench-scan | --bench-gemm | --attn | --attn-profile]\n", argv[0]);
            return 2;
        }
    }
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        printf("no CUDA device: skipping\n");
        return 77;
    }
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    printf("device: %s (sm_%d%d, %d SMs)%s\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount,
           g_small ? ", small shapes" : "");
    CK(cudaStreamCreate(&g_stream));
    printf("%-13s %-46s %-11s %10s %8s\n", "kernel", "shape", "mode", "error", "limit");
    Rng rng(20261124);
    if (only_scan) {  // the scan's checks, then its timings
        test_scan(rng);
        printf("%d checks, %d failed\n", g_checks, g_failures);
        bench_scan_only(rng);
        CK(cudaStreamDestroy(g_stream));
        return g_failures ? 1 : 0;
    }
    if (only_gemm) {  // the GEMM's checks, then the prefill shapes' timings
        test_gemm(rng);
        printf("%d checks, %d failed\n", g_checks, g_failures);
        bench_gemm_prefill(rng);
        CK(cudaStreamDestroy(g_stream));
        return g_failures ? 1 : 0;
    }
    if (only_profile) {
        profile_attn_prefill(rng);
        CK(cudaStreamDestroy(g_stream));
        return 0;
    }
    if (only_attn) {  // the prefill attention's checks, then its timings
        test_attn_prefill_all(rng);
        printf("%d checks, %d failed\n", g_checks, g_failures);
        for (int S : {4096, 8192}) bench_attn_prefill(rng, S);
        CK(cudaStreamDestroy(g_stream));
        return g_failures ? 1 : 0;
    }
    if (only_bench) {  // timings alone (the checks are the default run)
        bench(rng);
        CK(cudaStreamDestroy(g_stream));
        return 0;
    }
    test_embed(rng);
    test_rmsnorm(rng);
    test_rmsnorm3(rng);
    test_fuse(rng);
    test_rope(rng);
    test_rope_store(rng);
    test_mlp(rng);
    test_conv1d(rng);
    test_scan(rng);
    test_ssm_step(rng);
    test_argmax(rng);
    test_attn_prefill_all(rng);
    test_attn_decode(rng);
    test_gemm(rng);
    test_gemv_fused(rng);
    printf("%d checks, %d failed\n", g_checks, g_failures);
    if (do_bench) bench(rng);
    CK(cudaStreamDestroy(g_stream));
    return g_failures ? 1 : 0;
}
