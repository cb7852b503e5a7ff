/* ops_cpu.h: the CPU reference kernels of the Hymba forward pass, FP32.
   Every CUDA kernel is checked against the function here of the same name. */
#ifndef HYMEVAL_OPS_CPU_H
#define HYMEVAL_OPS_CPU_H

#include <stddef.h>

/* y[r, o] = sum_i x[r, i] * w[o, i] (+ bias[o]) for r < rows, o < out.
   x rows are ldx apart, y rows ldy apart; w is [out, in] row-major (PyTorch
   nn.Linear). Each output element is computed by the same sequence of
   operations whatever `rows` is, so a token gives bit-identical results in
   a long prefill and in a one-token decode. */
void matmul(float *y, size_t ldy, const float *x, size_t ldx, const float *w, const float *bias, int rows, int in,
            int out);

/* out[i] = w[i] * x[i] / sqrt(mean(x^2) + eps), for one vector of n. out may equal x. */
void rmsnorm(float *out, const float *x, const float *w, int n, float eps);

static inline float silu(float x);
static inline float softplus(float x);

/* RoPE on one head vector of d (half-split pairing), given cos/sin of d/2 angles. */
void rope_apply(float *x, const float *cos_a, const float *sin_a, int d);
/* The bf16-hf / bf16-all rotation: x, cos, sin already BF16 values; each
   product and each sum rounded to BF16, as BF16 tensor ops do. */
void rope_apply_bf16(float *x, const float *cos_a, const float *sin_a, int d);

/* One query head over n keys (pointers into cache or chunk): softmax(q.k*scale) . v.
   scores: scratch of n floats. out: dv floats. */
void attend(float *out, const float *q, const float *const *keys, const float *const *vals, int n, int dk, int dv,
            float scale, float *scores);

/* Causal depthwise conv1d of one token for all channels: window holds the
   last K-1 inputs ([K-1][C], oldest first), x the new input [C].
   out[c] = SiLU(bias[c] + sum_j w[c, j] * in[t-K+1+j, c]). The window is then
   shifted to include x. */
void conv1d_step(float *out, float *window, const float *x, const float *w, const float *bias, int C, int K);

/* One selective-scan step for all channels: state [C][N] (FP32), delta [C]
   (already softplus'ed), A [C][N], B [N], C_in [N], u [C], D [C], z [C]
   (gate, NULL for none). y[c] = (sum_n C_n h[c,n] + D[c] u[c]) * SiLU(z[c]). */
void scan_step(float *y, float *state, const float *delta, const float *A, const float *B, const float *Cv,
               const float *u, const float *D, const float *z, int C, int N);

/* ---- inline elementwise functions ---- */
#include <math.h>
static inline float silu(float x) { return x / (1.0f + expf(-x)); }
/* softplus with the linear regime above 20 (as the reference Mamba kernels) */
static inline float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

#endif
