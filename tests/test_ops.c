/* test_ops.c: the FP32 CPU kernels of ops_cpu.h and the conversions of
   bf16.h, each against a naive implementation written here in double
   precision, on fresh seeded random inputs at several shapes (odd sizes
   included: the matmul tiles 4 output rows x 8 lanes in blocks of 64
   outputs and 16 rows).

   Error measure: max|got - ref| / max|ref| over the whole output (NaN or
   inf anywhere gives +inf, and a reference that is all zeros is refused).
   FP32 kernels must stay below 1e-5 against double. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "ops_cpu.h"
#include "testutil.h"

#define FP32_TOL 1e-5

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static float *falloc(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(p);
    return p;
}

static double *dalloc(size_t n) {
    double *p = calloc(n ? n : 1, sizeof(double));
    assert_non_null(p);
    return p;
}

static float uniform1(uint64_t *rng, float lo, float hi) {
    float v;
    tu_fill_uniform(&v, 1, rng, lo, hi);
    return v;
}

/* 32 random bits: two 16-bit draws. */
static uint32_t rand_u32(uint64_t *rng) {
    float v[2];
    tu_fill_uniform(v, 2, rng, 0.0f, 65536.0f);
    return ((uint32_t)v[0] & 0xffffu) << 16 | ((uint32_t)v[1] & 0xffffu);
}

/* max|got - ref| / max|ref|; +inf if anything is NaN or inf. */
static double rel_error_vs_double(const float *got, const double *ref, size_t n) {
    double max_diff = 0, max_ref = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) || !isfinite(ref[i])) return INFINITY;
        double d = fabs((double)got[i] - ref[i]);
        if (d > max_diff) max_diff = d;
        if (fabs(ref[i]) > max_ref) max_ref = fabs(ref[i]);
    }
    if (max_ref == 0) fail_msg("reference is all zeros: the comparison would prove nothing");
    return max_diff / max_ref;
}

static void expect_rel(const char *what, double err, double tol) {
    if (!(err < tol)) fail_msg("%s: relative error %.3g, limit %.3g", what, err, tol);
}

static double ref_silu(double x) { return x / (1.0 + exp(-x)); }

/* Rounds a finite x to sig_bits significant bits, to nearest, ties to
   even, with the quantum never below 2^(emin - sig_bits + 1) (gradual
   underflow of a format whose smallest normal is 2^emin). No overflow
   handling: the caller compares against the format's limit. */
static double ref_round(double x, int sig_bits, int emin) {
    if (x == 0 || !isfinite(x)) return x;
    int e;
    frexp(x, &e);       /* |x| = m * 2^e, m in [0.5, 1) */
    int q = e - sig_bits; /* exponent of one unit in the last place */
    if (q < emin - sig_bits + 1) q = emin - sig_bits + 1;
    return ldexp(nearbyint(ldexp(x, -q)), q);
}

/* BF16: 8 significant bits, smallest normal 2^-126, overflow at 2^128. */
static double ref_round_bf16(double x) {
    double r = ref_round(x, 8, -126);
    return fabs(r) >= ldexp(1.0, 128) ? copysign(INFINITY, x) : r;
}

/* F16: 11 significant bits, smallest normal 2^-14, overflow at 2^16. */
static double ref_round_f16(double x) {
    double r = ref_round(x, 11, -14);
    return fabs(r) >= 65536.0 ? copysign(INFINITY, x) : r;
}

static float bits_float(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ------------------------------------------------------------------ */
/* matmul                                                              */

static void ref_matmul(double *y, const float *x, size_t ldx, const float *w, const float *bias, int rows, int in,
                       int out) {
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            double acc = bias ? bias[o] : 0.0;
            for (int i = 0; i < in; i++) acc += (double)x[(size_t)r * ldx + i] * w[(size_t)o * in + i];
            y[(size_t)r * out + o] = acc;
        }
}

/* Runs one matmul with x/y row strides larger than the row width: x's
   padding is NaN (a read of it would poison the result), y's padding a
   sentinel that must survive. */
static void check_matmul(uint64_t *rng, int rows, int in, int out, int x_pad, int y_pad, int with_bias) {
    size_t ldx = (size_t)in + x_pad, ldy = (size_t)out + y_pad;
    float *x = falloc((size_t)rows * ldx), *w = falloc((size_t)out * in), *bias = falloc(out);
    float *y = falloc((size_t)rows * ldy), *got = falloc((size_t)rows * out);
    double *ref = dalloc((size_t)rows * out);
    for (int r = 0; r < rows; r++) {
        tu_fill_uniform(x + (size_t)r * ldx, in, rng, -1.0f, 1.0f);
        for (size_t i = in; i < ldx; i++) x[(size_t)r * ldx + i] = NAN;
    }
    tu_fill_uniform(w, (size_t)out * in, rng, -1.0f, 1.0f);
    tu_fill_uniform(bias, out, rng, -2.0f, 2.0f);
    const float sentinel = 12345.5f;
    for (size_t i = 0; i < (size_t)rows * ldy; i++) y[i] = sentinel;

    matmul(y, ldy, x, ldx, w, with_bias ? bias : NULL, rows, in, out);
    ref_matmul(ref, x, ldx, w, with_bias ? bias : NULL, rows, in, out);

    for (int r = 0; r < rows; r++) {
        memcpy(got + (size_t)r * out, y + (size_t)r * ldy, (size_t)out * sizeof(float));
        for (size_t o = out; o < ldy; o++)
            if (y[(size_t)r * ldy + o] != sentinel)
                fail_msg("matmul wrote y padding at row %d col %zu (rows=%d in=%d out=%d)", r, o, rows, in, out);
    }
    char what[128];
    snprintf(what, sizeof what, "matmul rows=%d in=%d out=%d ldx=%zu ldy=%zu bias=%d", rows, in, out, ldx, ldy,
             with_bias);
    expect_rel(what, rel_error_vs_double(got, ref, (size_t)rows * out), FP32_TOL);
    free(x), free(w), free(bias), free(y), free(got), free(ref);
}

static void test_matmul_shapes(void **state) {
    (void)state;
    uint64_t rng = 101;
    /* rows, in, out: single elements, tails of the 8-lane loop, of the
       4-row tile, of the 64-output and 16-row blocks, and sizes past them */
    static const int shapes[][3] = {
        {1, 1, 1},    {1, 7, 5},     {3, 13, 9},   {5, 8, 4},     {4, 9, 3},     {17, 33, 67},
        {16, 64, 64}, {37, 100, 131}, {2, 257, 3}, {20, 1000, 70}, {1, 1600, 130}, {33, 31, 129},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            int rows = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
            check_matmul(&rng, rows, in, out, 0, 0, with_bias);     /* dense */
            check_matmul(&rng, rows, in, out, 3, 5, with_bias);     /* strided */
        }
}

/* A row must come out bit-identical whether it is computed alone, in a
   short batch starting at an odd row, or inside a big batch. */
static void check_row_invariance(uint64_t *rng, int rows, int in, int out, int with_bias) {
    size_t ldx = (size_t)in + 5, ldy = (size_t)out + 3;
    float *x = falloc((size_t)rows * ldx), *w = falloc((size_t)out * in), *bias = falloc(out);
    float *y = falloc((size_t)rows * ldy), *one = falloc(out), *part = falloc(3 * ldy);
    tu_fill_uniform(x, (size_t)rows * ldx, rng, -1.0f, 1.0f);
    tu_fill_uniform(w, (size_t)out * in, rng, -1.0f, 1.0f);
    tu_fill_uniform(bias, out, rng, -1.0f, 1.0f);
    const float *b = with_bias ? bias : NULL;
    matmul(y, ldy, x, ldx, w, b, rows, in, out);
    for (int r = 0; r < rows; r++) {
        matmul(one, (size_t)out, x + (size_t)r * ldx, ldx, w, b, 1, in, out);
        if (memcmp(one, y + (size_t)r * ldy, (size_t)out * sizeof(float)) != 0)
            fail_msg("matmul row %d of %d (in=%d out=%d bias=%d) differs from the same row computed alone", r, rows,
                     in, out, with_bias);
        if (r + 3 <= rows) {
            matmul(part, ldy, x + (size_t)r * ldx, ldx, w, b, 3, in, out);
            for (int k = 0; k < 3; k++)
                if (memcmp(part + (size_t)k * ldy, y + (size_t)(r + k) * ldy, (size_t)out * sizeof(float)) != 0)
                    fail_msg("matmul row %d: a 3-row batch from row %d differs from the big batch", r + k, r);
        }
    }
    free(x), free(w), free(bias), free(y), free(one), free(part);
}

static void test_matmul_row_bit_identical(void **state) {
    (void)state;
    uint64_t rng = 202;
    check_row_invariance(&rng, 37, 100, 131, 1);
    check_row_invariance(&rng, 50, 1600, 67, 0);
    check_row_invariance(&rng, 19, 13, 5, 1);
    check_row_invariance(&rng, 64, 257, 200, 1);
}

/* ------------------------------------------------------------------ */
/* rmsnorm                                                             */

static void ref_rmsnorm(double *out, const float *x, const float *w, int n, double eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    double inv = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) out[i] = (w ? w[i] : 1.0) * x[i] * inv;
}

static void test_rmsnorm(void **state) {
    (void)state;
    uint64_t rng = 303;
    static const int sizes[] = {1, 3, 7, 8, 9, 15, 64, 100, 1600, 3201};
    /* scale 1e-3: mean(x^2) ~ 3e-7, the same order as eps, so eps matters */
    static const float scales[] = {1.0f, 50.0f, 1e-3f};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (size_t k = 0; k < sizeof scales / sizeof *scales; k++)
            for (int mode = 0; mode < 4; mode++) { /* bit 0: weight, bit 1: in place */
                int n = sizes[s], with_w = mode & 1, in_place = mode & 2;
                float eps = 1e-6f;
                float *x = falloc(n), *w = falloc(n), *out = falloc(n);
                double *ref = dalloc(n);
                tu_fill_uniform(x, n, &rng, -scales[k], scales[k]);
                tu_fill_uniform(w, n, &rng, -2.0f, 2.0f);
                ref_rmsnorm(ref, x, with_w ? w : NULL, n, eps);
                if (in_place) {
                    rmsnorm(x, x, with_w ? w : NULL, n, eps);
                    memcpy(out, x, (size_t)n * sizeof(float));
                } else {
                    float *x_copy = falloc(n);
                    memcpy(x_copy, x, (size_t)n * sizeof(float));
                    rmsnorm(out, x, with_w ? w : NULL, n, eps);
                    assert_memory_equal(x, x_copy, (size_t)n * sizeof(float)); /* input untouched */
                    free(x_copy);
                }
                char what[96];
                snprintf(what, sizeof what, "rmsnorm n=%d scale=%g weight=%d in_place=%d", n, scales[k], with_w,
                         in_place != 0);
                expect_rel(what, rel_error_vs_double(out, ref, n), FP32_TOL);
                free(x), free(w), free(out), free(ref);
            }
}

/* ------------------------------------------------------------------ */
/* RoPE                                                                */

/* cos/sin (as FP32) of d/2 angles: the RoPE angles pos * base^(-2i/d). */
static void rope_tables(float *cos_a, float *sin_a, int d, double pos, double base) {
    for (int i = 0; i < d / 2; i++) {
        double angle = pos * pow(base, -2.0 * i / d);
        cos_a[i] = (float)cos(angle);
        sin_a[i] = (float)sin(angle);
    }
}

static void ref_rope(double *out, const float *x, const float *cos_a, const float *sin_a, int d) {
    int h = d / 2;
    for (int i = 0; i < h; i++) {
        double a = x[i], b = x[i + h], c = cos_a[i], s = sin_a[i];
        out[i] = a * c - b * s;
        out[i + h] = b * c + a * s;
    }
}

static const int rope_dims[] = {2, 6, 14, 16, 64, 128};
static const double rope_positions[] = {0, 1, 17, 1000, 8191, 12345.5};

static void test_rope_apply_vs_formula(void **state) {
    (void)state;
    uint64_t rng = 404;
    for (size_t k = 0; k < sizeof rope_dims / sizeof *rope_dims; k++)
        for (size_t p = 0; p < sizeof rope_positions / sizeof *rope_positions + 1; p++) {
            int d = rope_dims[k];
            float *x = falloc(d), *cos_a = falloc(d / 2), *sin_a = falloc(d / 2);
            double *ref = dalloc(d);
            tu_fill_uniform(x, d, &rng, -3.0f, 3.0f);
            if (p < sizeof rope_positions / sizeof *rope_positions) {
                rope_tables(cos_a, sin_a, d, rope_positions[p], 10000.0);
            } else { /* arbitrary angles */
                for (int i = 0; i < d / 2; i++) {
                    double a = uniform1(&rng, -10.0f, 10.0f);
                    cos_a[i] = (float)cos(a);
                    sin_a[i] = (float)sin(a);
                }
            }
            ref_rope(ref, x, cos_a, sin_a, d);
            rope_apply(x, cos_a, sin_a, d);
            char what[64];
            snprintf(what, sizeof what, "rope_apply d=%d case=%zu", d, p);
            expect_rel(what, rel_error_vs_double(x, ref, d), FP32_TOL);
            free(x), free(cos_a), free(sin_a), free(ref);
        }
}

static void test_rope_preserves_pair_norm(void **state) {
    (void)state;
    uint64_t rng = 505;
    for (size_t k = 0; k < sizeof rope_dims / sizeof *rope_dims; k++)
        for (int trial = 0; trial < 8; trial++) {
            int d = rope_dims[k], h = d / 2;
            float *x = falloc(d), *cos_a = falloc(h), *sin_a = falloc(h), *after = falloc(h);
            double *before = dalloc(h);
            tu_fill_uniform(x, d, &rng, -3.0f, 3.0f);
            rope_tables(cos_a, sin_a, d, uniform1(&rng, 0.0f, 9000.0f), 10000.0);
            for (int i = 0; i < h; i++) before[i] = hypot(x[i], x[i + h]);
            rope_apply(x, cos_a, sin_a, d);
            for (int i = 0; i < h; i++) after[i] = (float)hypot(x[i], x[i + h]);
            char what[64];
            snprintf(what, sizeof what, "rope pair norms d=%d", d);
            expect_rel(what, rel_error_vs_double(after, before, h), FP32_TOL);
            free(x), free(cos_a), free(sin_a), free(after), free(before);
        }
}

static void test_rope_composes_angles(void **state) {
    (void)state;
    uint64_t rng = 606;
    for (size_t k = 0; k < sizeof rope_dims / sizeof *rope_dims; k++)
        for (int trial = 0; trial < 8; trial++) {
            int d = rope_dims[k], h = d / 2;
            float *x = falloc(d), *y = falloc(d);
            float *ca = falloc(h), *sa = falloc(h), *cb = falloc(h), *sb = falloc(h), *cab = falloc(h),
                  *sab = falloc(h);
            double *ref = dalloc(d);
            tu_fill_uniform(x, d, &rng, -3.0f, 3.0f);
            memcpy(y, x, (size_t)d * sizeof(float));
            for (int i = 0; i < h; i++) {
                double a = uniform1(&rng, -7.0f, 7.0f), b = uniform1(&rng, -7.0f, 7.0f);
                ca[i] = (float)cos(a), sa[i] = (float)sin(a);
                cb[i] = (float)cos(b), sb[i] = (float)sin(b);
                cab[i] = (float)cos(a + b), sab[i] = (float)sin(a + b);
            }
            rope_apply(x, ca, sa, d);
            rope_apply(x, cb, sb, d);
            rope_apply(y, cab, sab, d);
            for (int i = 0; i < d; i++) ref[i] = y[i];
            char what[64];
            snprintf(what, sizeof what, "rope(a) then rope(b) vs rope(a+b), d=%d", d);
            expect_rel(what, rel_error_vs_double(x, ref, d), FP32_TOL);
            free(x), free(y), free(ca), free(sa), free(cb), free(sb), free(cab), free(sab), free(ref);
        }
}

static void test_rope_apply_bf16(void **state) {
    (void)state;
    uint64_t rng = 707;
    for (size_t k = 0; k < sizeof rope_dims / sizeof *rope_dims; k++)
        for (int trial = 0; trial < 10; trial++) {
            int d = rope_dims[k], h = d / 2;
            float *x = falloc(d), *fp32 = falloc(d), *cos_a = falloc(h), *sin_a = falloc(h);
            double *emul = dalloc(d);
            tu_fill_uniform(x, d, &rng, -4.0f, 4.0f);
            rope_tables(cos_a, sin_a, d, uniform1(&rng, 0.0f, 9000.0f), 10000.0);
            for (int i = 0; i < d; i++) x[i] = round_bf16(x[i]);
            for (int i = 0; i < h; i++) cos_a[i] = round_bf16(cos_a[i]), sin_a[i] = round_bf16(sin_a[i]);
            /* independent emulation: products and sums exact in double,
               each rounded to BF16 by ref_round_bf16 */
            for (int i = 0; i < h; i++) {
                double a = x[i], b = x[i + h];
                emul[i] = ref_round_bf16(ref_round_bf16(a * cos_a[i]) + ref_round_bf16(-b * sin_a[i]));
                emul[i + h] = ref_round_bf16(ref_round_bf16(b * cos_a[i]) + ref_round_bf16(a * sin_a[i]));
            }
            memcpy(fp32, x, (size_t)d * sizeof(float));
            rope_apply(fp32, cos_a, sin_a, d);
            rope_apply_bf16(x, cos_a, sin_a, d);
            for (int i = 0; i < d; i++) {
                if (round_bf16(x[i]) != x[i] || ref_round_bf16(x[i]) != x[i])
                    fail_msg("rope_apply_bf16 d=%d: x[%d] = %.9g is not a BF16 value", d, i, x[i]);
                if (x[i] != emul[i])
                    fail_msg("rope_apply_bf16 d=%d: x[%d] = %.9g, BF16 emulation gives %.9g", d, i, x[i],
                             emul[i]);
            }
            char what[64];
            snprintf(what, sizeof what, "rope_apply_bf16 vs FP32 rotation d=%d", d);
            expect_rel(what, tu_max_rel_error(x, fp32, d), 1e-2);
            free(x), free(fp32), free(cos_a), free(sin_a), free(emul);
        }
}

/* ------------------------------------------------------------------ */
/* attend                                                              */

static void ref_attend(double *out, const float *q, const float *const *keys, const float *const *vals, int n, int dk,
                       int dv, double scale) {
    double *s = dalloc(n), max_s = -INFINITY, total = 0;
    for (int i = 0; i < n; i++) {
        double dot = 0;
        for (int j = 0; j < dk; j++) dot += (double)q[j] * keys[i][j];
        s[i] = dot * scale;
        if (s[i] > max_s) max_s = s[i];
    }
    for (int i = 0; i < n; i++) total += (s[i] = exp(s[i] - max_s));
    for (int j = 0; j < dv; j++) out[j] = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < dv; j++) out[j] += s[i] / total * vals[i][j];
    free(s);
}

/* Keys and values live in shuffled slots of one buffer (as in a ring
   cache); scores and out have guard floats after their ends. */
typedef struct {
    int n, dk, dv;
    float *q, *kbuf, *vbuf, *scores, *out;
    const float **keys, **vals;
} AttnCase;

static const float GUARD = -777.25f;

static void attn_case_init(AttnCase *a, uint64_t *rng, int n, int dk, int dv) {
    a->n = n, a->dk = dk, a->dv = dv;
    a->q = falloc(dk);
    a->kbuf = falloc((size_t)n * dk);
    a->vbuf = falloc((size_t)n * dv);
    a->scores = falloc((size_t)n + 4);
    a->out = falloc((size_t)dv + 4);
    a->keys = malloc((size_t)n * sizeof *a->keys);
    a->vals = malloc((size_t)n * sizeof *a->vals);
    assert_non_null(a->keys);
    assert_non_null(a->vals);
    int stride = 7; /* coprime with most n: slot i*7 mod n, a permutation when gcd(7, n) = 1 */
    if (n % 7 == 0) stride = 1;
    for (int i = 0; i < n; i++) {
        int slot = (int)(((long)i * stride + 3) % n);
        a->keys[i] = a->kbuf + (size_t)slot * dk;
        a->vals[i] = a->vbuf + (size_t)slot * dv;
    }
    tu_fill_uniform(a->q, dk, rng, -2.0f, 2.0f);
    tu_fill_uniform(a->kbuf, (size_t)n * dk, rng, -2.0f, 2.0f);
    tu_fill_uniform(a->vbuf, (size_t)n * dv, rng, -1.0f, 1.0f);
    for (int i = 0; i < 4; i++) a->scores[n + i] = GUARD, a->out[dv + i] = GUARD;
}

static void attn_case_check_guards(const AttnCase *a) {
    for (int i = 0; i < 4; i++) {
        if (a->scores[a->n + i] != GUARD) fail_msg("attend wrote past scores[%d]", a->n - 1);
        if (a->out[a->dv + i] != GUARD) fail_msg("attend wrote past out[%d]", a->dv - 1);
    }
}

static void attn_case_free(AttnCase *a) {
    free(a->q), free(a->kbuf), free(a->vbuf), free(a->scores), free(a->out);
    free((void *)a->keys), free((void *)a->vals);
}

static void test_attend_vs_naive(void **state) {
    (void)state;
    uint64_t rng = 808;
    static const int ns[] = {1, 2, 3, 7, 33, 64, 129, 300};
    static const int dims[][2] = {{16, 32}, {64, 128}, {16, 128}, {64, 32}, {10, 7}};
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
        for (size_t k = 0; k < sizeof dims / sizeof *dims; k++) {
            AttnCase a;
            attn_case_init(&a, &rng, ns[i], dims[k][0], dims[k][1]);
            double *ref = dalloc(a.dv);
            float scale = 1.0f / sqrtf((float)a.dk);
            ref_attend(ref, a.q, a.keys, a.vals, a.n, a.dk, a.dv, scale);
            attend(a.out, a.q, a.keys, a.vals, a.n, a.dk, a.dv, scale, a.scores);
            attn_case_check_guards(&a);
            char what[64];
            snprintf(what, sizeof what, "attend n=%d dk=%d dv=%d", a.n, a.dk, a.dv);
            expect_rel(what, rel_error_vs_double(a.out, ref, a.dv), FP32_TOL);
            free(ref);
            attn_case_free(&a);
        }
}

/* Scores spread over thousands: exp without subtracting the maximum would
   overflow (large positive scores) or give 0/0 (all scores very negative).
   q = e0 and scale 1 make each score exactly keys[i][0], so the test
   controls them; a few scores sit within a few units of the maximum so
   the softmax is not one-hot. */
static void test_attend_huge_score_spread(void **state) {
    (void)state;
    uint64_t rng = 909;
    static const float offsets[] = {0.0f, -6000.0f, 5000.0f};
    for (size_t o = 0; o < sizeof offsets / sizeof *offsets; o++)
        for (int n = 5; n <= 300; n += 59) {
            AttnCase a;
            attn_case_init(&a, &rng, n, 16, 32);
            for (int j = 0; j < a.dk; j++) a.q[j] = j == 0 ? 1.0f : 0.0f;
            for (int i = 0; i < n; i++)
                ((float *)a.keys[i])[0] = offsets[o] + (float)(int)uniform1(&rng, -3000.0f, 3000.0f);
            /* three near-ties at the top */
            float top = offsets[o] + 3001.0f;
            ((float *)a.keys[n / 2])[0] = top;
            ((float *)a.keys[1])[0] = top - 1.5f;
            ((float *)a.keys[n - 1])[0] = top - 0.25f;
            double *ref = dalloc(a.dv);
            ref_attend(ref, a.q, a.keys, a.vals, n, a.dk, a.dv, 1.0);
            attend(a.out, a.q, a.keys, a.vals, n, a.dk, a.dv, 1.0f, a.scores);
            attn_case_check_guards(&a);
            for (int j = 0; j < a.dv; j++)
                if (!isfinite(a.out[j])) fail_msg("attend n=%d offset=%g: out[%d] = %g", n, offsets[o], j, a.out[j]);
            char what[64];
            snprintf(what, sizeof what, "attend huge spread n=%d offset=%g", n, offsets[o]);
            expect_rel(what, rel_error_vs_double(a.out, ref, a.dv), FP32_TOL);
            free(ref);
            attn_case_free(&a);
        }
}

/* ------------------------------------------------------------------ */
/* conv1d_step                                                         */

static void test_conv1d_step(void **state) {
    (void)state;
    uint64_t rng = 1001;
    static const int channels[] = {1, 5, 8, 13, 64};
    static const int steps[] = {1, 2, 3, 11};
    for (int K = 2; K <= 4; K++)
        for (size_t ci = 0; ci < sizeof channels / sizeof *channels; ci++)
            for (size_t ti = 0; ti < sizeof steps / sizeof *steps; ti++)
                for (int with_bias = 0; with_bias < 2; with_bias++) {
                    int C = channels[ci], T = steps[ti];
                    float *x = falloc((size_t)T * C), *w = falloc((size_t)C * K), *bias = falloc(C);
                    float *window = falloc((size_t)(K - 1) * C), *out = falloc((size_t)T * C);
                    double *ref = dalloc((size_t)T * C);
                    tu_fill_uniform(x, (size_t)T * C, &rng, -2.0f, 2.0f);
                    tu_fill_uniform(w, (size_t)C * K, &rng, -1.0f, 1.0f);
                    tu_fill_uniform(bias, C, &rng, -0.5f, 0.5f);
                    memset(window, 0, (size_t)(K - 1) * C * sizeof(float));
                    for (int t = 0; t < T; t++)
                        conv1d_step(out + (size_t)t * C, window, x + (size_t)t * C, w, with_bias ? bias : NULL, C,
                                    K);
                    /* causal depthwise conv over the whole sequence, zeros before t = 0 */
                    for (int t = 0; t < T; t++)
                        for (int c = 0; c < C; c++) {
                            double acc = with_bias ? bias[c] : 0.0;
                            for (int j = 0; j < K; j++) {
                                int src = t - K + 1 + j;
                                if (src >= 0) acc += (double)w[(size_t)c * K + j] * x[(size_t)src * C + c];
                            }
                            ref[(size_t)t * C + c] = ref_silu(acc);
                        }
                    char what[80];
                    snprintf(what, sizeof what, "conv1d_step K=%d C=%d T=%d bias=%d", K, C, T, with_bias);
                    expect_rel(what, rel_error_vs_double(out, ref, (size_t)T * C), FP32_TOL);
                    /* the window: the last K-1 inputs, oldest first, zeros where t < 0 */
                    for (int j = 0; j < K - 1; j++) {
                        int src = T - (K - 1) + j;
                        for (int c = 0; c < C; c++) {
                            float want = src >= 0 ? x[(size_t)src * C + c] : 0.0f;
                            if (memcmp(&window[(size_t)j * C + c], &want, sizeof want) != 0)
                                fail_msg("%s: window[%d][%d] = %g, expected input of t=%d (%g)", what, j, c,
                                         window[(size_t)j * C + c], src, want);
                        }
                    }
                    free(x), free(w), free(bias), free(window), free(out), free(ref);
                }
}

/* ------------------------------------------------------------------ */
/* scan_step                                                           */

static void check_scan(uint64_t *rng, int C, int N, int T, float delta_lo, float delta_hi, int with_z) {
    float *A = falloc((size_t)C * N), *D = falloc(C), *state = falloc((size_t)C * N);
    float *delta = falloc((size_t)T * C), *B = falloc((size_t)T * N), *Cv = falloc((size_t)T * N);
    float *u = falloc((size_t)T * C), *z = falloc((size_t)T * C), *y = falloc((size_t)T * C);
    double *h = dalloc((size_t)C * N), *ref = dalloc((size_t)T * C);
    /* A = -exp(A_log), A_log in [-1, 2.5]: A in about [-12.2, -0.37] */
    tu_fill_uniform(A, (size_t)C * N, rng, -1.0f, 2.5f);
    for (size_t i = 0; i < (size_t)C * N; i++) A[i] = -expf(A[i]);
    tu_fill_uniform(D, C, rng, -1.0f, 1.0f);
    tu_fill_uniform(delta, (size_t)T * C, rng, delta_lo, delta_hi);
    tu_fill_uniform(B, (size_t)T * N, rng, -1.5f, 1.5f);
    tu_fill_uniform(Cv, (size_t)T * N, rng, -1.5f, 1.5f);
    tu_fill_uniform(u, (size_t)T * C, rng, -2.0f, 2.0f);
    tu_fill_uniform(z, (size_t)T * C, rng, -3.0f, 3.0f);
    memset(state, 0, (size_t)C * N * sizeof(float));

    for (int t = 0; t < T; t++) {
        size_t tc = (size_t)t * C, tn = (size_t)t * N;
        scan_step(y + tc, state, delta + tc, A, B + tn, Cv + tn, u + tc, D, with_z ? z + tc : NULL, C, N);
        for (int c = 0; c < C; c++) {
            double dt = delta[tc + c], acc = 0;
            for (int n = 0; n < N; n++) {
                double *hn = &h[(size_t)c * N + n];
                *hn = exp(dt * A[(size_t)c * N + n]) * *hn + dt * B[tn + n] * u[tc + c];
                acc += Cv[tn + n] * *hn;
            }
            double out = acc + (double)D[c] * u[tc + c];
            ref[tc + c] = with_z ? out * ref_silu(z[tc + c]) : out;
        }
    }
    char what[96];
    snprintf(what, sizeof what, "scan_step C=%d N=%d T=%d delta in (%g, %g) z=%d", C, N, T, delta_lo, delta_hi,
             with_z);
    expect_rel(what, rel_error_vs_double(y, ref, (size_t)T * C), FP32_TOL);
    strncat(what, " (final state)", sizeof what - strlen(what) - 1);
    expect_rel(what, rel_error_vs_double(state, h, (size_t)C * N), FP32_TOL);
    free(A), free(D), free(state), free(delta), free(B), free(Cv), free(u), free(z), free(y), free(h), free(ref);
}

static const int scan_shapes[][2] = {{1, 1}, {3, 5}, {17, 16}, {32, 16}, {64, 7}};

static void test_scan_step_small_delta(void **state) {
    (void)state;
    uint64_t rng = 1101;
    for (size_t s = 0; s < sizeof scan_shapes / sizeof *scan_shapes; s++)
        for (int with_z = 0; with_z < 2; with_z++)
            check_scan(&rng, scan_shapes[s][0], scan_shapes[s][1], 40, 0.001f, 0.1f, with_z);
}

/* Large steps: exp(delta*A) from ~0.8 down to underflow, the state forgets fast. */
static void test_scan_step_large_delta(void **state) {
    (void)state;
    uint64_t rng = 1202;
    for (size_t s = 0; s < sizeof scan_shapes / sizeof *scan_shapes; s++)
        for (int with_z = 0; with_z < 2; with_z++) {
            check_scan(&rng, scan_shapes[s][0], scan_shapes[s][1], 25, 0.1f, 2.0f, with_z);
            check_scan(&rng, scan_shapes[s][0], scan_shapes[s][1], 25, 0.5f, 10.0f, with_z);
        }
}

/* ------------------------------------------------------------------ */
/* silu, softplus                                                      */

static void test_silu(void **state) {
    (void)state;
    uint64_t rng = 1301;
    enum { N = 4001 };
    float *got = falloc(N);
    double *ref = dalloc(N);
    float x[N];
    tu_fill_uniform(x, N, &rng, -30.0f, 30.0f);
    x[0] = 0.0f, x[1] = 1.0f, x[2] = -1.0f, x[3] = 1e-20f, x[4] = -1e-20f;
    for (int i = 0; i < N; i++) got[i] = silu(x[i]), ref[i] = ref_silu(x[i]);
    expect_rel("silu on [-30, 30]", rel_error_vs_double(got, ref, N), FP32_TOL);
    /* element by element where the value is not tiny */
    for (int i = 0; i < N; i++)
        if (fabs(ref[i]) > 1e-30 && fabs(got[i] - ref[i]) > 1e-5 * fabs(ref[i]))
            fail_msg("silu(%.9g) = %.9g, expected %.9g", x[i], got[i], ref[i]);
    /* extremes stay finite */
    static const float big[] = {88.0f, 100.0f, 1000.0f, 3e38f, -88.0f, -100.0f, -1000.0f, -3e38f};
    for (size_t i = 0; i < sizeof big / sizeof *big; i++) {
        float v = silu(big[i]);
        if (!isfinite(v)) fail_msg("silu(%g) = %g", big[i], v);
        if (big[i] > 0 && v != big[i]) fail_msg("silu(%g) = %.9g, expected x", big[i], v);
        if (big[i] < 0 && fabs(v) > 1e-30) fail_msg("silu(%g) = %g, expected ~0", big[i], v);
    }
    free(got), free(ref);
}

static void test_softplus(void **state) {
    (void)state;
    uint64_t rng = 1401;
    enum { N = 4001 };
    float *got = falloc(N);
    double *ref = dalloc(N);
    float x[N];
    tu_fill_uniform(x, N, &rng, -80.0f, 20.0f);
    x[0] = 0.0f, x[1] = 20.0f, x[2] = -20.0f, x[3] = 1e-7f;
    for (int i = 0; i < N; i++) got[i] = softplus(x[i]), ref[i] = log1p(exp((double)x[i]));
    expect_rel("softplus on [-80, 20]", rel_error_vs_double(got, ref, N), FP32_TOL);
    for (int i = 0; i < N; i++)
        if (fabs(got[i] - ref[i]) > 1e-5 * fabs(ref[i]))
            fail_msg("softplus(%.9g) = %.9g, log1p(exp(x)) = %.9g", x[i], got[i], ref[i]);
    /* linear regime above 20: exactly x */
    float above[N];
    tu_fill_uniform(above, N, &rng, 20.001f, 1e4f);
    above[0] = nextafterf(20.0f, 21.0f), above[1] = 20.5f, above[2] = 88.8f, above[3] = 100.0f;
    above[4] = 1e30f, above[5] = FLT_MAX;
    for (int i = 0; i < N; i++)
        if (softplus(above[i]) != above[i]) fail_msg("softplus(%.9g) = %.9g, expected x", above[i], softplus(above[i]));
    float v100 = softplus(100.0f);
    assert_true(isfinite(v100));
    assert_true(v100 == 100.0f);
    /* continuous at the switch: log1p(e^20) - 20 ~ 2e-9 */
    assert_true(fabs(softplus(20.0f) - 20.0) < 1e-5);
    /* very negative: tiny, non-negative, finite */
    static const float neg[] = {-100.0f, -1000.0f, -FLT_MAX};
    for (size_t i = 0; i < sizeof neg / sizeof *neg; i++) {
        float v = softplus(neg[i]);
        if (!(v >= 0.0f && v < 1e-40f)) fail_msg("softplus(%g) = %g", neg[i], v);
    }
    free(got), free(ref);
}

/* ------------------------------------------------------------------ */
/* bf16.h                                                              */

static int bf16_is_nan(uint16_t h) { return (h & 0x7fffu) > 0x7f80u; }

/* For every BF16 value hi (not NaN/inf), the FP32 numbers just below,
   at and just above the midpoint to the next BF16 value. */
static void test_bf16_round_ties(void **state) {
    (void)state;
    for (uint32_t hi = 0; hi < 0x10000u; hi++) {
        if ((hi & 0x7fffu) >= 0x7f80u) continue; /* inf / NaN */
        uint16_t up = (uint16_t)(hi + 1);        /* next magnitude (may be inf: correct overflow) */
        uint16_t even = (hi & 1u) ? up : (uint16_t)hi;
        uint16_t below = f32_to_bf16(bits_float((hi << 16) | 0x7fffu));
        uint16_t tie = f32_to_bf16(bits_float((hi << 16) | 0x8000u));
        uint16_t above = f32_to_bf16(bits_float((hi << 16) | 0x8001u));
        uint16_t exact = f32_to_bf16(bits_float(hi << 16));
        if (exact != hi) fail_msg("f32_to_bf16(0x%08x) = 0x%04x, expected 0x%04x", hi << 16, exact, hi);
        if (below != hi) fail_msg("f32_to_bf16(0x%08x) = 0x%04x, expected 0x%04x", (hi << 16) | 0x7fffu, below, hi);
        if (tie != even)
            fail_msg("f32_to_bf16(0x%08x) (tie) = 0x%04x, expected even 0x%04x", (hi << 16) | 0x8000u, tie, even);
        if (above != up) fail_msg("f32_to_bf16(0x%08x) = 0x%04x, expected 0x%04x", (hi << 16) | 0x8001u, above, up);
    }
    /* a few written out */
    assert_int_equal(f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(f32_to_bf16(-2.0f), 0xc000);
    assert_int_equal(f32_to_bf16(1.00390625f), 0x3f80);  /* 1 + 2^-8: tie, to even 1 */
    assert_int_equal(f32_to_bf16(1.01171875f), 0x3f82);  /* 1 + 3*2^-8: tie, to even 1 + 2^-6 */
    assert_int_equal(f32_to_bf16(FLT_MAX), 0x7f80);      /* rounds up past the largest BF16 */
}

static void test_bf16_random_vs_ref(void **state) {
    (void)state;
    uint64_t rng = 1501;
    for (int i = 0; i < 1000000; i++) {
        uint32_t u = rand_u32(&rng);
        float f = bits_float(u);
        if (!isfinite(f)) continue;
        double want = ref_round_bf16(f);
        float got = bf16_to_f32(f32_to_bf16(f));
        if (!(got == want) || !signbit(got) != !signbit(want))
            fail_msg("f32_to_bf16(%.9g = 0x%08x) -> %.9g, expected %.9g", f, u, got, want);
    }
}

static void test_bf16_nan_inf(void **state) {
    (void)state;
    static const uint32_t nans[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu,
                                    0xffffffffu, 0x7f80ffffu, 0x7fbfffffu, 0x7f808000u};
    for (size_t i = 0; i < sizeof nans / sizeof *nans; i++) {
        uint16_t h = f32_to_bf16(bits_float(nans[i]));
        if (!bf16_is_nan(h)) fail_msg("f32_to_bf16(NaN 0x%08x) = 0x%04x, not a NaN", nans[i], h);
        if ((h >> 15) != (nans[i] >> 31)) fail_msg("f32_to_bf16(NaN 0x%08x) lost the sign", nans[i]);
        assert_true(isnan(bf16_to_f32(h)));
        assert_true(isnan(round_bf16(bits_float(nans[i]))));
    }
    assert_int_equal(f32_to_bf16(INFINITY), 0x7f80);
    assert_int_equal(f32_to_bf16(-INFINITY), 0xff80);
    assert_true(isinf(bf16_to_f32(0x7f80)) && bf16_to_f32(0x7f80) > 0);
    assert_true(isinf(bf16_to_f32(0xff80)) && bf16_to_f32(0xff80) < 0);
    assert_int_equal(f32_to_bf16(0.0f), 0x0000);
    assert_int_equal(f32_to_bf16(-0.0f), 0x8000);
}

static void test_bf16_roundtrip_all(void **state) {
    (void)state;
    int checked = 0;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        if (bf16_is_nan((uint16_t)h)) continue;
        float f = bf16_to_f32((uint16_t)h);
        /* the value, from its fields, independently */
        int e = (h >> 7) & 0xff;
        double m = h & 0x7f;
        double want = e == 0 ? ldexp(m, -133) : e == 255 ? INFINITY : ldexp(1.0 + m / 128.0, e - 127);
        if (h & 0x8000u) want = -want;
        if (!(f == want) || !signbit(f) != !signbit(want)) fail_msg("bf16_to_f32(0x%04x) = %.9g, expected %.9g", h, f, want);
        uint16_t back = f32_to_bf16(f);
        if (back != h) fail_msg("bf16 0x%04x -> %.9g -> 0x%04x", h, f, back);
        checked++;
    }
    assert_int_equal(checked, 65536 - 2 * 127);
}

/* ---- half precision ----
   Decoding (f16_to_f32) is checked for every pattern. Encoding is checked
   in the normal range by the first tests and in the subnormal range
   (|x| < 2^-14) by test_f32_to_f16_subnormals alone, so that a fault
   there shows up under one name. */

static int f16_is_nan(uint16_t h) { return (h & 0x7fffu) > 0x7c00u; }

static int f16_is_subnormal(uint16_t h) { return ((h >> 10) & 0x1f) == 0 && (h & 0x3ffu) != 0; }

/* The value of a half from its fields, independently of bf16.h. */
static double f16_value(uint16_t h) {
    int e = (h >> 10) & 0x1f;
    double m = h & 0x3ff;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? INFINITY : ldexp(1.0 + m / 1024.0, e - 15);
    return (h & 0x8000u) ? -v : v;
}

static int same_value(double a, double b) { return a == b && !signbit(a) == !signbit(b); }

typedef struct {
    float f;
    uint16_t h;
    int exact; /* f is the half value itself (so f16_to_f32(h) == f) */
} F16Known;

static const F16Known f16_known_normal[] = {
    {1.0f, 0x3c00, 1},
    {-2.0f, 0xc000, 1},
    {65504.0f, 0x7bff, 1},
    {0.1f, 0x2e66, 0},
    {0.0f, 0x0000, 1},
    {-0.0f, 0x8000, 1},
    {0.5f, 0x3800, 1},
    {0x1p-14f, 0x0400, 1}, /* smallest normal */
    {1.00048828125f, 0x3c00, 0}, /* 1 + 2^-11: tie, to even 1 */
    {1.00146484375f, 0x3c02, 0}, /* 1 + 3*2^-11: tie, to even 1 + 2^-9 */
    {0.33333334f, 0x3555, 0},
    {65519.0f, 0x7bff, 0},
    {65520.0f, 0x7c00, 0}, /* tie between 65504 and 65536: to even = inf */
    {1e6f, 0x7c00, 0},
    {1e-8f, 0x0000, 0},    /* below 2^-25: flushes to zero */
    {INFINITY, 0x7c00, 1},
    {-INFINITY, 0xfc00, 1},
};

static const F16Known f16_known_subnormal[] = {
    {0x1p-24f, 0x0001, 1},      /* smallest subnormal */
    {0x1.ff8p-15f, 0x03ff, 1},  /* largest subnormal, 1023 * 2^-24 */
    {0x1p-15f, 0x0200, 1},      /* 512 * 2^-24 */
    {-0x1.8p-20f, 0x8018, 1},   /* -24 * 2^-24 */
    {0x1p-25f, 0x0000, 0},      /* tie between 0 and 2^-24: to even 0 */
    {0x1.8p-24f, 0x0002, 0},    /* 1.5 * 2^-24: tie, to even 2 */
    {0x1.4p-24f, 0x0001, 0},    /* 1.25 * 2^-24 */
    {0x1.ffcp-15f, 0x0400, 0},  /* 1023.5 * 2^-24: tie, to even = smallest normal */
    {6.0e-8f, 0x0001, 0},       /* 1.0066 * 2^-24 */
};

static void check_f16_known(const F16Known *known, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint16_t h = f32_to_f16(known[i].f);
        if (h != known[i].h) fail_msg("f32_to_f16(%a) = 0x%04x, expected 0x%04x", known[i].f, h, known[i].h);
    }
}

static void test_f16_known_values(void **state) {
    (void)state;
    check_f16_known(f16_known_normal, sizeof f16_known_normal / sizeof *f16_known_normal);
    /* decoding, subnormals included */
    const F16Known *lists[2] = {f16_known_normal, f16_known_subnormal};
    size_t sizes[2] = {sizeof f16_known_normal / sizeof *f16_known_normal,
                       sizeof f16_known_subnormal / sizeof *f16_known_subnormal};
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < sizes[l]; i++) {
            float back = f16_to_f32(lists[l][i].h);
            if (lists[l][i].exact && !same_value(back, lists[l][i].f))
                fail_msg("f16_to_f32(0x%04x) = %a, expected %a", lists[l][i].h, back, lists[l][i].f);
        }
    assert_true(f16_to_f32(0x2e66) == 0.0999755859375f);
    assert_true(f16_to_f32(0x3555) == 0.333251953125f);
    assert_true(f16_is_nan(f32_to_f16(NAN)));
    assert_true(f16_is_nan(f32_to_f16(-NAN)));
    assert_true(isnan(f16_to_f32(0x7e00)));
    assert_true(isnan(f16_to_f32(0xfc01)));
}

/* Every finite pattern decodes to its value; every finite non-subnormal
   pattern encodes back to itself. */
static void test_f16_roundtrip_all_finite(void **state) {
    (void)state;
    int decoded = 0, round_tripped = 0;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        if (((h >> 10) & 0x1f) == 0x1f) continue; /* inf, NaN */
        float f = f16_to_f32((uint16_t)h);
        if (!same_value(f, f16_value((uint16_t)h)))
            fail_msg("f16_to_f32(0x%04x) = %a, expected %a", h, f, f16_value((uint16_t)h));
        decoded++;
        if (f16_is_subnormal((uint16_t)h)) continue; /* test_f32_to_f16_subnormals */
        uint16_t back = f32_to_f16(f);
        if (back != h) fail_msg("f16 0x%04x -> %a -> 0x%04x", h, f, back);
        round_tripped++;
    }
    assert_int_equal(decoded, 65536 - 2 * 1024);
    assert_int_equal(round_tripped, 65536 - 2 * 1024 - 2 * 1023);
}

/* The midpoint between half lo and the next half up (exact in FP32) must
   round to the even one of the two; one FP32 ulp either side of it to the
   nearer. Returns the number of wrong results, printing the first few. */
static int check_f16_midpoint(uint16_t lo, int *printed) {
    int neg = (lo & 0x8000u) != 0, bad = 0;
    uint16_t hi = (uint16_t)(lo + 1);
    double next = (lo & 0x7fffu) == 0x7bffu ? 65536.0 : fabs(f16_value(hi));
    double mid = (fabs(f16_value(lo)) + next) / 2;
    float m = (float)(neg ? -mid : mid);
    assert_true(fabs((double)m) == mid); /* exact in FP32 */
    float toward0 = nextafterf(m, 0.0f), away = nextafterf(m, neg ? -INFINITY : INFINITY);
    const float inputs[3] = {toward0, m, away};
    const uint16_t want[3] = {lo, (lo & 1u) ? hi : lo, hi};
    for (int k = 0; k < 3; k++) {
        uint16_t got = f32_to_f16(inputs[k]);
        if (got != want[k]) {
            if ((*printed)++ < 5)
                print_error("f32_to_f16(%a)%s = 0x%04x, expected 0x%04x\n", inputs[k], k == 1 ? " (tie)" : "", got,
                            want[k]);
            bad++;
        }
    }
    return bad;
}

/* Random FP32 values with exponents in [emin, emax] against ref_round_f16. */
static int check_f16_random(uint64_t *rng, int count, int emin, int emax, int *printed) {
    int bad = 0;
    for (int i = 0; i < count; i++) {
        float mant = uniform1(rng, 1.0f, 2.0f), sign = uniform1(rng, -1.0f, 1.0f);
        int e = emin + (int)uniform1(rng, 0.0f, (float)(emax - emin + 1));
        if (e > emax) e = emax;
        float f = ldexpf(sign < 0 ? -mant : mant, e);
        double want = ref_round_f16(f);
        float got = f16_to_f32(f32_to_f16(f));
        if (!same_value(got, want)) {
            if ((*printed)++ < 5) print_error("f32_to_f16(%a) -> %a, expected %a\n", f, got, want);
            bad++;
        }
    }
    return bad;
}

/* Normal results: |x| in [2^-14, 2^16) (and overflow to inf). */
static void test_f16_ties_and_random(void **state) {
    (void)state;
    int bad = 0, printed = 0;
    for (uint32_t h = 0x0400u; h < 0x7c00u; h++) {
        bad += check_f16_midpoint((uint16_t)h, &printed);
        bad += check_f16_midpoint((uint16_t)(h | 0x8000u), &printed);
    }
    uint64_t rng = 1601;
    bad += check_f16_random(&rng, 1000000, -14, 17, &printed);
    if (bad) fail_msg("%d wrong f32_to_f16 results in the normal range", bad);
}

/* Subnormal results: |x| < 2^-14. Known values, the round trip of all
   2046 subnormal patterns, midpoint ties, and random values. */
static void test_f32_to_f16_subnormals(void **state) {
    (void)state;
    int bad = 0, printed = 0;
    size_t n_known = sizeof f16_known_subnormal / sizeof *f16_known_subnormal;
    for (size_t i = 0; i < n_known; i++) {
        uint16_t h = f32_to_f16(f16_known_subnormal[i].f);
        if (h != f16_known_subnormal[i].h) {
            if (printed++ < 5)
                print_error("f32_to_f16(%a) = 0x%04x, expected 0x%04x\n", f16_known_subnormal[i].f, h,
                            f16_known_subnormal[i].h);
            bad++;
        }
    }
    for (uint32_t h = 0; h < 0x10000u; h++) {
        if (!f16_is_subnormal((uint16_t)h)) continue;
        float f = f16_to_f32((uint16_t)h);
        uint16_t back = f32_to_f16(f);
        if (back != h) {
            if (printed++ < 5) print_error("f16 0x%04x -> %a -> 0x%04x\n", h, f, back);
            bad++;
        }
    }
    for (uint32_t h = 0; h < 0x0400u; h++) {
        bad += check_f16_midpoint((uint16_t)h, &printed);
        bad += check_f16_midpoint((uint16_t)(h | 0x8000u), &printed);
    }
    uint64_t rng = 1701;
    bad += check_f16_random(&rng, 200000, -30, -15, &printed);
    if (bad) fail_msg("%d wrong f32_to_f16 results for inputs below 2^-14 (subnormal halves)", bad);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_shapes),
        cmocka_unit_test(test_matmul_row_bit_identical),
        cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_rope_apply_vs_formula),
        cmocka_unit_test(test_rope_preserves_pair_norm),
        cmocka_unit_test(test_rope_composes_angles),
        cmocka_unit_test(test_rope_apply_bf16),
        cmocka_unit_test(test_attend_vs_naive),
        cmocka_unit_test(test_attend_huge_score_spread),
        cmocka_unit_test(test_conv1d_step),
        cmocka_unit_test(test_scan_step_small_delta),
        cmocka_unit_test(test_scan_step_large_delta),
        cmocka_unit_test(test_silu),
        cmocka_unit_test(test_softplus),
        cmocka_unit_test(test_bf16_round_ties),
        cmocka_unit_test(test_bf16_random_vs_ref),
        cmocka_unit_test(test_bf16_nan_inf),
        cmocka_unit_test(test_bf16_roundtrip_all),
        cmocka_unit_test(test_f16_known_values),
        cmocka_unit_test(test_f16_roundtrip_all_finite),
        cmocka_unit_test(test_f16_ties_and_random),
        cmocka_unit_test(test_f32_to_f16_subnormals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
