/* ops_cpu.c: FP32 CPU kernels. Written for clarity first; the matmul is
   tiled and threaded because it is nearly all of the time. */
#include "ops_cpu.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "bf16.h"

#ifdef _OPENMP
#define OMP_PARALLEL_FOR _Pragma("omp parallel for schedule(static)")
#else
#define OMP_PARALLEL_FOR
#endif

#define LANES 8

/* Sums 8 lanes in a fixed order so every caller rounds identically. */
static inline float sum_lanes(const float *acc) {
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* One dot product with 8 independent lane accumulators (vectorisable
   without reassociation), then the tail, then the fixed lane sum. */
static inline float dot(const float *a, const float *b, int n) {
    float acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += a[i + j] * b[i + j];
    for (int j = 0; i < n; i++, j++) acc[j] += a[i] * b[i];
    return sum_lanes(acc);
}

/* 4 weight rows against one x row, same per-element operation order as dot(). */
static inline void dot4(float *y, const float *x, const float *w0, const float *w1, const float *w2,
                        const float *w3, int n) {
    float a0[LANES] = {0}, a1[LANES] = {0}, a2[LANES] = {0}, a3[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            float xv = x[i + j];
            a0[j] += xv * w0[i + j];
            a1[j] += xv * w1[i + j];
            a2[j] += xv * w2[i + j];
            a3[j] += xv * w3[i + j];
        }
    for (int j = 0; i < n; i++, j++) {
        a0[j] += x[i] * w0[i];
        a1[j] += x[i] * w1[i];
        a2[j] += x[i] * w2[i];
        a3[j] += x[i] * w3[i];
    }
    y[0] = sum_lanes(a0);
    y[1] = sum_lanes(a1);
    y[2] = sum_lanes(a2);
    y[3] = sum_lanes(a3);
}

void matmul(float *y, size_t ldy, const float *x, size_t ldx, const float *w, const float *bias, int rows, int in,
            int out) {
    /* Parallel over blocks of output features: each thread streams its own
       slice of w once per block of rows, which keeps it in cache. */
    enum { OUT_BLOCK = 64, ROW_BLOCK = 16 };
    int n_blocks = (out + OUT_BLOCK - 1) / OUT_BLOCK;
    OMP_PARALLEL_FOR
    for (int ob = 0; ob < n_blocks; ob++) {
        int o0 = ob * OUT_BLOCK, o1 = o0 + OUT_BLOCK < out ? o0 + OUT_BLOCK : out;
        for (int r0 = 0; r0 < rows; r0 += ROW_BLOCK) {
            int r1 = r0 + ROW_BLOCK < rows ? r0 + ROW_BLOCK : rows;
            int o = o0;
            for (; o + 4 <= o1; o += 4) {
                const float *w0 = w + (size_t)o * in;
                for (int r = r0; r < r1; r++)
                    dot4(y + (size_t)r * ldy + o, x + (size_t)r * ldx, w0, w0 + in, w0 + 2 * (size_t)in,
                         w0 + 3 * (size_t)in, in);
            }
            for (; o < o1; o++)
                for (int r = r0; r < r1; r++) y[(size_t)r * ldy + o] = dot(x + (size_t)r * ldx, w + (size_t)o * in, in);
        }
        if (bias)
            for (int r = 0; r < rows; r++)
                for (int o = o0; o < o1; o++) y[(size_t)r * ldy + o] += bias[o];
    }
}

void rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    float acc[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += x[i + j] * x[i + j];
    for (int j = 0; i < n; i++, j++) acc[j] += x[i] * x[i];
    float inv = 1.0f / sqrtf(sum_lanes(acc) / (float)n + eps);
    for (i = 0; i < n; i++) out[i] = w ? w[i] * (x[i] * inv) : x[i] * inv;
}

void rope_apply(float *x, const float *cos_a, const float *sin_a, int d) {
    int h = d / 2;
    for (int i = 0; i < h; i++) {
        float a = x[i], b = x[i + h];
        x[i] = a * cos_a[i] - b * sin_a[i];
        x[i + h] = b * cos_a[i] + a * sin_a[i];
    }
}

void rope_apply_bf16(float *x, const float *cos_a, const float *sin_a, int d) {
    /* q*cos + rotate_half(q)*sin, every tensor op rounding to BF16 */
    int h = d / 2;
    for (int i = 0; i < h; i++) {
        float a = x[i], b = x[i + h];
        x[i] = round_bf16(round_bf16(a * cos_a[i]) + round_bf16(-b * sin_a[i]));
        x[i + h] = round_bf16(round_bf16(b * cos_a[i]) + round_bf16(a * sin_a[i]));
    }
}

void attend(float *out, const float *q, const float *const *keys, const float *const *vals, int n, int dk, int dv,
            float scale, float *scores) {
    float max_score = -FLT_MAX;
    for (int i = 0; i < n; i++) {
        scores[i] = dot(q, keys[i], dk) * scale;
        if (scores[i] > max_score) max_score = scores[i];
    }
    float total = 0.0f;
    for (int i = 0; i < n; i++) {
        scores[i] = expf(scores[i] - max_score);
        total += scores[i];
    }
    float inv_total = 1.0f / total;
    memset(out, 0, (size_t)dv * sizeof(float));
    for (int i = 0; i < n; i++) {
        float p = scores[i] * inv_total;
        const float *v = vals[i];
        for (int j = 0; j < dv; j++) out[j] += p * v[j];
    }
}

void conv1d_step(float *out, float *window, const float *x, const float *w, const float *bias, int C, int K) {
    for (int c = 0; c < C; c++) {
        float acc = bias ? bias[c] : 0.0f;
        for (int j = 0; j < K - 1; j++) acc += w[(size_t)c * K + j] * window[(size_t)j * C + c];
        acc += w[(size_t)c * K + K - 1] * x[c];
        out[c] = silu(acc);
    }
    /* shift the window left by one token and append x */
    if (K > 1) {
        memmove(window, window + C, (size_t)(K - 2) * C * sizeof(float));
        memcpy(window + (size_t)(K - 2) * C, x, (size_t)C * sizeof(float));
    }
}

void scan_step(float *y, float *state, const float *delta, const float *A, const float *B, const float *Cv,
               const float *u, const float *D, const float *z, int C, int N) {
    for (int c = 0; c < C; c++) {
        float *h = state + (size_t)c * N;
        const float *a = A + (size_t)c * N;
        float du = delta[c] * u[c];
        float acc = 0.0f;
        for (int n = 0; n < N; n++) {
            h[n] = expf(delta[c] * a[n]) * h[n] + du * B[n];
            acc += Cv[n] * h[n];
        }
        float out = acc + D[c] * u[c];
        y[c] = z ? out * silu(z[c]) : out;
    }
}
