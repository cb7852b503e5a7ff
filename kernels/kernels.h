/* kernels.h: the CUDA kernels of the Hymba forward pass (docs/ARCHITECTURE.md),
   as plain C-callable launchers. Built only with -Dcuda=enabled.

   Conventions (every launcher):
   - Pointers are device pointers unless the comment says host.
   - `dtype` says what the activation/weight buffers hold: HK_F32 (float) or
     HK_BF16 (__nv_bfloat16). Arithmetic and every reduction are FP32 in both;
     with HK_BF16 each value the CPU engine rounds with act_round() is rounded
     to BF16 at the same point, so the BF16 modes of the CPU engine are
     reproduced up to summation order.
   - Matrices are row-major, token-major; `ld*` is the distance in elements
     between two rows, so a launcher can read a column slice of a wider buffer
     (e.g. the q | k | v | x | z in_proj output) in place.
   - Packed variable-length batches: `cu_seqlens` (device, B+1 ints, cu[0]=0)
     gives the first row of each sequence; sequence b has rows
     [cu[b], cu[b+1]). Launchers also take the host-known maximum length
     `max_len` to size their grids.
   - Per-sequence state (KV cache, conv state, SSM state) is reached through a
     device array of B pointers, one per sequence, so sequences can live in
     separate allocations (engine/cache.h layouts).
   - Return 0 on success, otherwise a cudaError_t value or HK_EINVAL; the
     error, with file:line, is printed to stderr and kept for hk_last_error().
   - Nothing synchronises: all work is queued on `stream`. */
#ifndef HYMEVAL_KERNELS_H
#define HYMEVAL_KERNELS_H

#include <stddef.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { HK_F32 = 0, HK_BF16 = 1 } hk_dtype;

/* RoPE precision modes, numbered as the engine's Precision (docs §7). */
typedef enum { HK_ROPE_FP32 = 0, HK_ROPE_BF16_PAPER = 1, HK_ROPE_BF16_HF = 2, HK_ROPE_BF16_ALL = 3 } hk_rope_mode;

enum { HK_EINVAL = -1 };

/* The last error message of this thread ("" if none). */
const char *hk_last_error(void);
/* Bytes per element of a dtype (4 or 2). */
size_t hk_dtype_size(hk_dtype dtype);

/* ---- embed.cu ---------------------------------------------------------- */

/* Packs B sequences: sequence b gets the M meta rows (meta, [M, H]) followed
   by the embeddings table[ids[cu_text[b] .. cu_text[b+1])] ([V, H]). Output
   rows of sequence b start at cu_text[b] + b*M; total_text = cu_text[B]
   (host). An id outside [0, V) yields a row of NaN. */
int hk_embed(hk_dtype dtype, void *out, int ldo, const int *ids, const int *cu_text, int B, int total_text,
             const void *table, int V, const void *meta, int M, int H, cudaStream_t stream);

/* out[i, :width] = in[rows[i], :width] for i < n (e.g. last row of each
   sequence, or the text rows after the meta rows, before the LM head). */
int hk_gather_rows(hk_dtype dtype, void *out, int ldo, const void *in, int ldi, const int *rows, int n, int width,
                   cudaStream_t stream);

/* ---- attn_rows.cu ------------------------------------------------------ */

/* The observer's attention rows (engine/observe.h) for rows r0 .. r0+nrows-1
   of a pass: scores[i][h][0..n) = q.k * scale over the row's n visible keys
   (meta keys, then text keys in position order) and probs[i][h] their
   softmax; rows of cap floats. q: the rotated query rows; keys before a
   sequence's pos0 (prefill, cu given) come from k_cache[b] (ring slots as
   hk_kv_store writes them), the others from the pass rows kv (row cu[b] +
   position - pos0[b]); in decode (cu NULL) row b is sequence b and every key
   is in the cache. */
int hk_attn_rows(hk_dtype dtype, float *scores, float *probs, int cap, const void *q, int ldq, const void *kv, int ldkv,
                 const void *const *k_cache, int ldkc, const int *cu, const int *pos0, const int *rowpos, int B, int r0,
                 int nrows, int nh, int nkv, int dk, int M, int window, float scale, cudaStream_t stream);

/* ---- argmax.cu --------------------------------------------------------- */

/* out[2i] = the index of row i's largest of `width` values (the first one
   among equals; NaN never chosen), as a float; out[2i+1] = that value.
   Rows are ld elements apart. The greedy choice without the row leaving
   the device. */
int hk_argmax_rows(hk_dtype dtype, float *out, const void *in, int ld, int n, int width, cudaStream_t stream);

/* ---- rmsnorm.cu -------------------------------------------------------- */

/* out[r] = w * x[r] / sqrt(mean(x[r]^2) + eps) for r < rows, n columns.
   w may be NULL (no weight). out may equal x (in place). */
int hk_rmsnorm(hk_dtype dtype, void *out, int ldo, const void *x, int ldx, const void *w, int rows, int n, float eps,
               cudaStream_t stream);

/* Residual add then norm: h[r] += x[r] (stored, rounded to dtype), then
   out[r] = RMSNorm(h[r]; w). */
int hk_add_rmsnorm(hk_dtype dtype, void *h, int ldh, const void *x, int ldx, void *out, int ldo, const void *w,
                   int rows, int n, float eps, cudaStream_t stream);

/* Three RMSNorms in one launch: the consecutive column segments [0, n0),
   [n0, n0+n1) and [n0+n1, n0+n1+n2) of each row, each normalised on its own
   with its weight (w0, w1, w2; each may be NULL), e.g. the dt | B | C
   columns of x_proj's output. Bit for bit the numbers of hk_rmsnorm on
   each column slice. out may equal x (in place). */
int hk_rmsnorm3(hk_dtype dtype, void *out, int ldo, const void *x, int ldx, const void *w0, int n0, const void *w1,
                int n1, const void *w2, int n2, int rows, float eps, cudaStream_t stream);

/* ---- fuse.cu ----------------------------------------------------------- */

/* out[r] = (RMSNorm(a[r]; wa) + RMSNorm(s[r]; ws)) / 2 (each norm rounded to
   dtype first, as the engine does). With a == NULL or s == NULL: the other
   branch's norm alone. */
int hk_fuse_norm_avg(hk_dtype dtype, void *out, int ldo, const void *a, int lda, const void *wa, const void *s,
                     int lds, const void *ws, int rows, int n, float eps, cudaStream_t stream);

/* ---- rope.cu ----------------------------------------------------------- */

/* Host: inv_freq[i] = 1 / base^(2i/d), i < d/2, in FP32 exactly as the CPU
   engine computes it (powf on FP32 operands). */
void hk_rope_inv_freq(float *inv_freq_host, int d, double base);

/* In place on rows r < rows: optional per-head RMSNorm (kq_norm, eps given,
   weights [d] or, with norm_per_head, [heads][d]; NULL = none), then RoPE
   (half-split pairing) at position pos[r] with cos/sin computed per `mode`
   from inv_freq (device, d/2 floats). q: nq heads of d at q + r*ldq; k (may
   be NULL): nk heads at k + r*ldk. rope = 0 skips the rotation. */
int hk_rope_qk(hk_dtype dtype, void *q, int ldq, int nq, void *k, int ldk, int nk, int d, const int *pos,
               const float *inv_freq, int rows, hk_rope_mode mode, int rope, const void *q_norm, const void *k_norm,
               int norm_per_head, float norm_eps, cudaStream_t stream);

/* The decode step's hk_rope_qk and hk_kv_store in one kernel: row b < B is
   sequence b's new token. q is normalised and rotated in place as
   hk_rope_qk does; k (read only) is normalised and rotated into the token's
   cache slot (cache position cache_pos[b], slots as hk_kv_store lays them
   out for M meta tokens and the window), and v (nk heads of dv) is copied
   beside it: the same bits as hk_rope_qk on a copy of k then hk_kv_store. */
int hk_rope_qk_store(hk_dtype dtype, void *q, int ldq, int nq, const void *k, int ldk, int nk, int d, const int *pos,
                     const float *inv_freq, int B, hk_rope_mode mode, int rope, const void *q_norm,
                     const void *k_norm, int norm_per_head, float norm_eps, void *const *k_cache, int ldkc,
                     void *const *v_cache, int ldvc, const void *v, int ldv, int dv, const int *cache_pos, int M,
                     int window, cudaStream_t stream);

/* ---- attention.cu ------------------------------------------------------ */

/* Causal prefill over a packed batch, flash style (online softmax over key
   tiles, no score matrix in memory). Within each sequence row j has position
   j (meta tokens first). Query head h uses KV head h / (nh/nkv).
   Key kp is visible to query qp iff kp <= qp and (window <= 0, or kp < M, or
   qp - kp <= window). q: [T, ldq] heads of dk; k: [T, ldk] heads of dk;
   v: [T, ldv] heads of dv; out: [T, ldo] heads of dv. Supported:
   dk in {16, 32, 64, 128}, dv in {dk, 2*dk}. FP32 runs on the FP32 pipes;
   BF16 with dv <= 128 on the tensor cores (FP32 accumulation; the softmax
   weights enter the P·V product rounded to BF16), unless the environment
   sets HYMEVAL_ATTN_SIMT=1. */
int hk_attn_prefill(hk_dtype dtype, void *out, int ldo, const void *q, int ldq, const void *k, int ldk,
                    const void *v, int ldv, const int *cu_seqlens, int B, int max_len, int nh, int nkv, int dk,
                    int dv, int M, int window, float scale, cudaStream_t stream);

/* The same for chunks that continue a cached prefix: row r of sequence b
   has position pos0[b] + (r - cu[b]); keys at positions < pos0[b] are read
   from the caches k_cache[b] / v_cache[b] (laid out as in hk_kv_store, so
   a sliding-window ring must still hold positions pos0[b]-window ..
   pos0[b]-1: store the chunk's own keys only after this call), keys at
   positions >= pos0[b] from the packed k / v rows. pos0 == NULL: every
   pos0 is 0 and the caches are not read (hk_attn_prefill). */
int hk_attn_prefill_cached(hk_dtype dtype, void *out, int ldo, const void *q, int ldq, const void *k, int ldk,
                           const void *v, int ldv, const void *const *k_cache, int ldkc, const void *const *v_cache,
                           int ldvc, const int *pos0, const int *cu_seqlens, int B, int max_len, int nh, int nkv,
                           int dk, int dv, int M, int window, float scale, cudaStream_t stream);

/* Which kernel runs the BF16 prefill attention (both functions above):
   0 the mma.sync kernel; on Hopper builds (sm_90a), for dk = 64 and dv = 64
   or 128 (other shapes stay on mma.sync), 1 the wgmma kernel whose three
   warpgroups copy and compute together, 2 or 3 the warp-specialized wgmma
   kernel (that many computing warpgroups, one copying warpgroup, mbarriers),
   4 or 5 its persistent form (3 or 2 computing warpgroups, one block an SM
   walking the query tiles), 6 and 7 are 3 and 4 with the copier's step for
   tiles of the chunk's own rows hoisted, 8 and 9 the persistent kernel with
   that and pipelined computing warpgroups (3 or 2). The default is 4 in builds that have the wgmma
   kernels, else 0;
   HYMEVAL_ATTN_WGMMA gives the initial setting; setting < 0 only asks.
   Returns the setting before the call. */
int hk_attn_wgmma(int setting);
/* 1 where this build has the wgmma kernel (compiled for sm_90a). */
int hk_attn_wgmma_built(void);

/* Writes rows of new keys/values into per-sequence caches laid out as
   engine/cache.h: slot of position p is p when p < M or window <= 0
   (global), else M + (p - M) mod (window + 1). Row r of sequence b has
   position pos0[b] + (r - cu[b]); cu_seqlens == NULL means one row per
   sequence (row b). Rows that a later row of the same call overwrites in the
   ring are skipped. k_cache[b]: [slots][ldkc], v_cache[b]: [slots][ldvc];
   a row copies nkv*dk (resp. nkv*dv) elements. */
int hk_kv_store(hk_dtype dtype, void *const *k_cache, int ldkc, void *const *v_cache, int ldvc, const void *k,
                int ldk, const void *v, int ldv, const int *cu_seqlens, const int *pos0, int B, int max_len,
                int nkv, int dk, int dv, int M, int window, cudaStream_t stream);

/* Bytes of workspace hk_attn_decode can use for split-KV with up to
   max_splits splits. */
size_t hk_attn_decode_workspace_bytes(int B, int nh, int dv, int max_splits);

/* The number of key splits hk_attn_decode uses for these arguments (1 =
   no split-KV). */
int hk_attn_decode_splits(int B, int max_pos, int nh, int nkv, int dv, int M, int window, const void *workspace,
                          size_t workspace_bytes);

/* One query per sequence (decode) against the KV cache: q: [B, ldq] rows,
   query of sequence b at position pos[b] (its own key/value already stored
   in the cache). k_cache/v_cache as in hk_kv_store. max_pos: host upper
   bound of pos[b] (sizes the split). Long contexts are split over blocks
   (split-KV) when a workspace is given (NULL: one split). Needs
   nh/nkv <= 16. */
int hk_attn_decode(hk_dtype dtype, void *out, int ldo, const void *q, int ldq, const void *const *k_cache, int ldkc,
                   const void *const *v_cache, int ldvc, const int *pos, int B, int max_pos, int nh, int nkv, int dk,
                   int dv, int M, int window, float scale, void *workspace, size_t workspace_bytes,
                   cudaStream_t stream);

/* ---- conv1d.cu --------------------------------------------------------- */

/* Causal depthwise conv (K taps, w: [C, K], bias [C] or NULL) + SiLU over a
   packed batch, out[t, c] = SiLU(bias[c] + sum_j w[c,j] x[t-K+1+j, c]).
   Inputs before a sequence's first row come from its state (state[b]:
   [K-1][C], oldest first, dtype), which is then replaced by the last K-1
   inputs. cu_seqlens == NULL: one row per sequence (decode step; max_len is
   then ignored). Rows are processed in parallel chunks; K <= 8. */
int hk_conv1d_silu(hk_dtype dtype, void *out, int ldo, const void *x, int ldx, const void *w, const void *bias,
                   void *const *state, const int *cu_seqlens, int B, int max_len, int C, int K, cudaStream_t stream);

/* ---- scan.cu ----------------------------------------------------------- */

/* Bytes of workspace the chunked prefill scan uses (0 if it would not chunk). */
size_t hk_scan_workspace_bytes(int B, int max_len, int C, int N);

/* Selective scan over a packed batch (cu_seqlens == NULL: one row per
   sequence, the decode step). Per row t and channel c:
     delta = softplus(dt[t, c] + dt_bias[c])   (linear above 20)
     h[c,n] = exp(delta A[c,n]) h[c,n] + delta Bm[t,n] u[t,c]
     y[t,c] = (sum_n Cm[t,n] h[c,n] + D[c] u[t,c]) * SiLU(z[t,c])   (z NULL: no gate)
   State h: state[b] ([C][N], FP32) read at the start, written at the end.
   dt_bias, A ([C][N] = -exp(A_log)), D: FP32. N a power of two <= 32.
   With a workspace of hk_scan_workspace_bytes, long sequences are scanned
   in parallel chunks (three passes); NULL scans each sequence in one pass. */
int hk_scan(hk_dtype dtype, void *y, int ldy, const void *u, int ldu, const void *dt, int lddt, const float *dt_bias,
            const float *A, const void *Bm, int ldb, const void *Cm, int ldc, const float *D, const void *z, int ldz,
            float *const *state, const int *cu_seqlens, int B, int max_len, int C, int N, void *workspace,
            size_t workspace_bytes, cudaStream_t stream);

/* The decode step of the SSM branch after x_proj, in one kernel: for row b
   < B (sequence b's new token) and channel c < C, xdb[b] = dt (R) | B (N) |
   C (N) is normalised as hk_rmsnorm3 does (dt_norm == NULL: not at all;
   B_norm / C_norm may be NULL weights), dt = round(sum_j dt[j] dt_w[c, j])
   as hk_gemm_run would store it (dt_w: [C][R]), then state[b] and y[b, c]
   as hk_scan's one-row step (softplus(dt + dt_bias), D skip, SiLU(z) gate
   when z is given). Not bit for bit hk_rmsnorm3 + hk_gemm_run + hk_scan: the
   dot product's order is its own. u [B][ldu]: the conv's output; or, with
   conv, each channel's u is hk_conv1d_silu's decode step of conv->x (bit
   for bit) and the conv state then advances by that input, as
   hk_conv1d_silu's would (u is then not read and may be NULL). */
typedef struct {
    const void *x;  /* [B][ldx]: the conv's new input row per sequence */
    int ldx;
    const void *w, *bias;  /* taps [C][K]; bias [C] or NULL */
    void *const *state;    /* per sequence [K-1][C] */
    int K;
} hk_conv_step;
int hk_ssm_step(hk_dtype dtype, void *y, int ldy, const void *xdb, int ldx, const void *dt_norm, const void *B_norm,
                const void *C_norm, float eps, const void *dt_w, int R, const float *dt_bias, const float *A,
                const float *D, const void *u, int ldu, const hk_conv_step *conv, const void *z, int ldz,
                float *const *state, int B, int C, int N, cudaStream_t stream);

/* ---- mlp.cu ------------------------------------------------------------ */

/* out = round(round(SiLU(gate)) * up) (SwiGLU as the engine rounds it). */
int hk_swiglu(hk_dtype dtype, void *out, int ldo, const void *gate, int ldg, const void *up, int ldu, int rows,
              int n, cudaStream_t stream);
/* out = relu(up)^2 */
int hk_relu2(hk_dtype dtype, void *out, int ldo, const void *up, int ldu, int rows, int n, cudaStream_t stream);

/* ---- gemm.cu (cuBLASLt) ------------------------------------------------ */

typedef struct hk_gemm hk_gemm;
/* A cuBLASLt handle and a workspace of workspace_bytes (0: 32 MiB). */
int hk_gemm_create(hk_gemm **out, size_t workspace_bytes);
void hk_gemm_destroy(hk_gemm *g);
/* y[r, o] = sum_i x[r, i] w[o, i] (+ bias[o]) for r < rows, o < out;
   w: [out, ldw >= in]. BF16: BF16 in/out, FP32 accumulation; F32:
   CUBLAS_COMPUTE_32F (no TF32). bias (dtype) may be NULL. */
int hk_gemm_run(hk_gemm *g, hk_dtype dtype, void *y, int ldy, const void *x, int ldx, const void *w, int ldw,
                const void *bias, int rows, int in, int out, cudaStream_t stream);

/* Diagnostics: times (ms, median of 11) of up to max_algos of the candidates
   cuBLASLt's heuristic offers for y = x W^T (no bias), its own choice first;
   -1 where a candidate failed. Returns how many were timed, or -1. */
int hk_gemm_time_algos(hk_gemm *g, hk_dtype dtype, void *y, int ldy, const void *x, int ldx, const void *w, int ldw,
                       int rows, int in, int out, float *ms, int max_algos, cudaStream_t stream);

/* The weight-streaming GEMV of hk_gemm_run (BF16, 1..8 rows) with the
   kernels around a decode step's projections folded in. The input a[r, i]
   is formed from x as the BF16 values the separate kernel would write:
     HK_GEMV_X        a = x
     HK_GEMV_RMSNORM  a = hk_rmsnorm(x[r]; norm_w, eps) (norm_w may be NULL)
     HK_GEMV_SWIGLU   a = hk_swiglu(gate = x[r, 0..in), up = x[r, in..2in))
   then t[r, o] = round(sum_i a[r, i] w[o, i] + bias[o]) (bias may be NULL),
   and y = t, or with resid y[r, o] = round(resid[r, o] + t[r, o]) (the add
   of hk_add_rmsnorm). y may equal resid (same ld), not x. Bit for bit what
   the separate kernels and hk_gemm_run give where hk_gemm_run streams the
   weights itself: up to hk_gemv_rows(g, in_mode, in) rows. Needs in % 8 == 0,
   16-byte aligned x, w (with their row pitches) and norm_w. */
typedef enum { HK_GEMV_X = 0, HK_GEMV_RMSNORM = 1, HK_GEMV_SWIGLU = 2, HK_GEMV_FUSE_AVG = 3, HK_GEMV_CONV = 4 } hk_gemv_in;
int hk_gemv(hk_dtype dtype, hk_gemv_in in_mode, void *y, int ldy, const void *resid, int ldr, const void *x, int ldx,
            const void *norm_w, float eps, const void *w, int ldw, const void *bias, int rows, int in, int out,
            cudaStream_t stream);
/* hk_gemv with the branch fusion as its prologue (HK_GEMV_FUSE_AVG): the
   input is hk_fuse_norm_avg(a, wa, s, ws) of both branches, bit for bit
   (single-branch layers take HK_GEMV_RMSNORM with that branch's weight). */
int hk_gemv_fuse_avg(hk_dtype dtype, void *y, int ldy, const void *resid, int ldr, const void *a, int lda,
                     const void *wa, const void *s, int lds, const void *ws, float eps, const void *w, int ldw,
                     const void *bias, int rows, int in, int out, cudaStream_t stream);
/* hk_gemv with the decode step of the causal conv + SiLU as its prologue
   (HK_GEMV_CONV): row r's input is hk_conv1d_silu's output for one new row
   x[r] of sequence r (conv_state[r]: [K-1][in], taps [in][K], conv_b or
   NULL), bit for bit; the state is only read (hk_ssm_step with `conv`
   advances it). */
int hk_gemv_conv(hk_dtype dtype, void *y, int ldy, const void *x, int ldx, void *const *conv_state, const void *conv_w,
                 const void *conv_b, int K, const void *w, int ldw, const void *bias, int rows, int in, int out,
                 cudaStream_t stream);
/* The most rows (0..8) for which hk_gemm_run(g) takes its own GEMV kernel on
   BF16 inputs of `in` columns (0 with HYMEVAL_GEMV=0; HYMEVAL_GEMV_ROWS sets
   the cut-over, default 2) and hk_gemv takes in_mode (its staged input fits
   in shared memory). */
int hk_gemv_rows(const hk_gemm *g, hk_gemv_in in_mode, int in);

#ifdef __cplusplus
}
#endif

#endif
