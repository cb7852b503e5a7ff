// backend_cuda.cu: the CUDA backend behind engine/backend.h. The model is
// engine/model.c's forward_chunk, op for op, on the kernels of kernels.h:
// FP32 weights and activations in the fp32 mode, BF16 weights and
// activations with FP32 accumulation in the three BF16 modes (the kernels
// round where the CPU engine's act_round does, so results agree up to
// summation order).
//
// Layout of the work:
// - Weights are uploaded once into one device arena (converted to BF16 on
//   the way when needed); the MLP's gate and up matrices sit one above the
//   other so one GEMM computes both.
// - A forward call is cut into passes of at most `pass_tokens` rows; the
//   sequences of a pass are packed without padding (cu_seqlens). A sequence
//   longer than the room left is split across passes: each piece is a
//   chunk continuing the cached prefix, which is exact.
// - Prefill passes attend with hk_attn_prefill_cached (keys before the
//   chunk from the cache, the chunk's own from the packed rows) and store
//   the chunk's keys/values only after all layers, as the CPU does: a
//   consumer layer reads them from the producer's pass buffer, and no ring
//   slot is overwritten while a query of the chunk still needs it. Passes
//   of one token per sequence (decode) store each producer's new key first
//   and then attend from the cache with the split-KV decode kernel; the
//   slot a new key takes in the ring is exactly the one its query no
//   longer sees, so this is the same computation.
// - Per-sequence state lives on the device in the engine/cache.h layout:
//   one block for the fixed-size parts (meta slots + ring of W+1 for
//   sliding-window layers, conv state, FP32 scan state) and one for the
//   global layers' K/V, which grows by reallocation. Consumer layers have no
//   cache: they read their producer's.
// - The meta-token prefix runs once (the first begin) and every new
//   sequence starts from a device-to-device copy of that state.
// - Decode passes (one token per sequence) replay a CUDA graph of the whole
//   step (run_decode_graph); HYMEVAL_CUDA_GRAPHS=0 turns that off.
// - Decode passes of one BF16 row (HYMEVAL_FUSE=N: up to N) fold the
//   RMSNorms, SwiGLU and the residual adds into the projections' GEMVs
//   (hk_gemv): the residual stream h is updated in place by out_proj and
//   mlp_down, and in_proj / mlp_in normalise it as they read it. The
//   roundings are the separate kernels', so the logits are the same bits;
//   one row by default, HYMEVAL_FUSE=N up to N rows, HYMEVAL_FUSE=0 never
//   (comparisons, timings); HYMEVAL_FUSE_NORM=0
//   keeps the RMSNorms as separate kernels (the rest fused).
// - Decode passes rotate each new key straight into its cache slot and copy
//   its value beside it (hk_rope_qk_store: one kernel where a staging copy,
//   the rotation and hk_kv_store were three graph nodes; the same bits);
//   HYMEVAL_ROPE_STORE=0 keeps the three (H200, 1.5B at 8k, batch 1: 3.42 ->
//   3.39 ms a step).
// - Fused passes form the branch fusion inside the out_proj GEMV
//   (hk_gemv_fuse_avg, the same bits as hk_fuse_norm_avg; HYMEVAL_FUSE_AVG=0:
//   a kernel of its own; 3.55 -> 3.38 ms).
// - Decode steps of at most 8 rows run the SSM branch after x_proj (dt/B/C
//   norms, dt_proj, the scan step) as one kernel, hk_ssm_step, and in fused
//   passes fold the conv into the x_proj GEMV (hk_gemv_conv) and that
//   kernel. Not the same bits as the separate kernels (its dt dot product
//   has its own order; test_backend holds it to the dtype's limit). Batch 1
//   at 8k, H100: 3.179 -> 3.141 ms a step. Each block stages its channels'
//   dt_proj rows once per sequence, so larger steps (batch 128: 128 times
//   over) keep the separate kernels until timed. HYMEVAL_SSM_STEP=1: every
//   decode step; =0: none.
// - HYMEVAL_CUDA_PASS_TOKENS=N sets the rows per pass (tests force chunking).
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <new>
#include <vector>

#include "hk_common.cuh"
extern "C" {  // the engine's headers are C
#include "backend.h"
#include "bf16.h"
#include "observe.h"
#include "ops_cpu.h"
}
#include "backend_cuda.h"

// Every CUDA runtime call and kernel launcher is checked; a failure becomes
// the Err of the call in progress (with file:line).
#define CU(call)                                                                                          \
    do {                                                                                                  \
        cudaError_t e_ = (call);                                                                          \
        if (e_ != cudaSuccess)                                                                            \
            return err_set(err, "%s:%d: %s: %s", __FILE__, __LINE__, #call, cudaGetErrorString(e_));      \
    } while (0)
#define HKR(call)                                                                                         \
    do {                                                                                                  \
        if ((call) != 0) return err_set(err, "CUDA kernel: %s", hk_last_error());                         \
    } while (0)

// The per-sequence state (backend.h declares the tag).
struct Sequence {
    int n_pos;           // positions held, meta tokens included (= the next position)
    int n_meta;          // positions before the first text token
    int cap;             // positions the global layers' K/V can hold
    char *fixed;         // rings, conv and scan states (Impl::fixed_bytes)
    char *global;        // global producers' K/V: per layer [cap][kw] then [cap][vw]
    size_t global_bytes;
};

namespace {

// Rows per pass (within an eighth of the free memory). Larger passes give
// the GEMMs taller operands and the attention and scan more sequences per
// launch: batch-128 prefill at 8k on an H100 took 11.76 s at 16384 rows,
// 11.41 s at 65536 and 11.05 s at 131072 (docs/PERFORMANCE.md); 65536 keeps
// the scratch near 8 GB for Hymba-1.5B.
constexpr int kDefaultPassTokens = 65536;
constexpr int kLmRows = 512;       // rows per LM-head GEMM (bounds the logits staging buffers)
constexpr size_t kAlign = 256;
constexpr int kCapQuantum = 256;   // global K/V capacity grows in multiples of this many positions

size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

struct DevLayer {
    void *input_norm, *in_proj, *in_proj_bias, *q_norm, *k_norm;
    void *conv_w, *conv_b, *x_proj, *dt_proj, *dt_norm, *B_norm, *C_norm;
    float *dt_bias, *A, *D;
    void *attn_out_norm, *ssm_out_norm, *out_proj, *out_proj_bias;
    void *mlp_norm, *mlp_in, *mlp_down;  // mlp_in: gate rows then up rows (silu), or up (relu2)
};

// One piece of a pass: `len` tokens of sequence `seq` of the forward call,
// starting at token `start` of its input.
struct Piece {
    int seq, start, len;
    bool last;  // ends the sequence's input in this call
};

// Decode passes replay a CUDA graph of the whole step (run_decode_graph): one launch
// instead of ~15 per layer. What the graph bakes in is fixed between steps
// (weights, scratch, the metadata buffer, the workspace); what changes (ids,
// positions, cache pointers) is data in the metadata buffer, uploaded
// before each launch. The key says when it must be captured again.
struct GraphKey {
    int B, max_pos, n_rows;
    bool top1;  // the LM head ends in the on-device argmax (LOGITS_TOP1)
    void *dec_ws;
    bool operator==(const GraphKey &o) const {
        return B == o.B && max_pos == o.max_pos && n_rows == o.n_rows && top1 == o.top1 && dec_ws == o.dec_ws;
    }
};

struct Impl {
    HymbaModel *m;
    const HymbaConfig *cfg;
    hk_dtype dt;
    size_t es;
    hk_rope_mode rope_mode;
    cudaStream_t stream;
    hk_gemm *gemm;
    size_t cur_bytes, peak_bytes, weight_bytes;

    // sizes
    int H, I, N, R, K, F, V, nh, nkv, dk, dv, M, W, L, XDB, rows_max, kw, vw, mlp_cols;

    // weights
    char *warena;
    size_t warena_bytes;
    void *embed, *meta, *final_norm, *lm_head;
    float *inv_freq;
    std::vector<DevLayer> layers;

    // cache layout: byte offsets in Sequence::fixed (SIZE_MAX: none), global producer index
    size_t fixed_bytes;
    std::vector<size_t> k_off, v_off, conv_off, ssm_off;
    std::vector<int> gidx;
    int n_global;

    // pass scratch, sized for T rows
    int T;
    char *scratch;
    size_t scratch_bytes;
    void *h, *u, *proj, *attn, *xc, *xdb, *delta, *ssm_y, *fused, *tmp, *gu, *act;
    std::vector<void *> kv;  // producers: [T][kw + vw] this pass's rotated keys | values
    char *meta_d;            // pointer table, then the int arrays of a pass
    size_t meta_bytes;
    void *lm_in, *lm_out;
    float *lm_f32, *lm_host;  // lm_host: pinned
    float *lm_top;            // [kLmRows][2] greedy id and logit per row (LOGITS_TOP1)
    float *obs_rows;          // observer only: attention scores | probabilities of a batch of rows
    size_t obs_bytes;
    void *scan_ws, *dec_ws;
    size_t scan_ws_bytes, dec_ws_bytes;

    bool use_graphs;         // decode passes replay a CUDA graph (HYMEVAL_CUDA_GRAPHS=0: never)
    int fuse_rows;           // decode passes of up to this many rows run the fused GEMVs (0: never)
    bool fuse_norm;          // ... with the RMSNorms inside them too (HYMEVAL_FUSE_NORM=0: a separate kernel)
    bool rope_store;         // decode: RoPE writes k, v to the cache (HYMEVAL_ROPE_STORE=0: copy, rope, store)
    int ssm_step_rows;       // decode steps of at most this many rows: hk_ssm_step after x_proj (else norms, dt_proj, scan)
    bool fuse_avg;           // fused decode: out_proj forms the branch fusion (HYMEVAL_FUSE_AVG=0: its own kernel)
    cudaGraphExec_t graph_exec;
    GraphKey graph_key;
    Sequence *prefix;        // state after the meta tokens (NULL until the first begin)
    int prefix_offset;       // the model's position_offset the prefix was computed with
    std::vector<char> host_meta;

    // profiling (backend_cuda_profile_enable): events of the pass in flight
    bool profiling;
    std::vector<cudaEvent_t> prof_events;
    std::vector<int> prof_part;  // the part that starts at each recorded event
    int prof_used;
    CudaProfile prof;
};

Impl *impl_of(Backend *b) { return (Impl *)b->impl; }

// ------------------------------------------------------------ profiling

// Marks the start of `part` in the stream (profiling only; never inside a
// graph capture: profiling keeps decode passes out of graphs).
int prof_mark(Impl *im, int part, Err *err) {
    if (!im->profiling) return 0;
    if (im->prof_used == (int)im->prof_events.size()) {
        cudaEvent_t e;
        CU(cudaEventCreate(&e));
        im->prof_events.push_back(e);
        im->prof_part.push_back(0);
    }
    CU(cudaEventRecord(im->prof_events[im->prof_used], im->stream));
    im->prof_part[im->prof_used++] = part;
    return 0;
}

// Closes the pass: waits for its last event and charges every interval.
int prof_end(Impl *im, bool decode, Err *err) {
    if (!im->profiling || im->prof_used == 0) return 0;
    if (prof_mark(im, PROF_N, err)) return -1;  // the end marker
    CU(cudaEventSynchronize(im->prof_events[im->prof_used - 1]));
    for (int i = 0; i + 1 < im->prof_used; i++) {
        float ms = 0;
        CU(cudaEventElapsedTime(&ms, im->prof_events[i], im->prof_events[i + 1]));
        (decode ? im->prof.decode_ms : im->prof.prefill_ms)[im->prof_part[i]] += ms;
    }
    im->prof_used = 0;
    (decode ? im->prof.decode_passes : im->prof.prefill_passes)++;
    return 0;
}

// ------------------------------------------------------------ device memory

int dev_alloc(Impl *im, void **p, size_t bytes, const char *what, Err *err) {
    *p = nullptr;
    if (bytes == 0) return 0;
    cudaError_t e = cudaMalloc(p, bytes);
    if (e != cudaSuccess) {
        *p = nullptr;
        cudaGetLastError();  // an allocation failure is not sticky; clear it
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        if (e == cudaErrorMemoryAllocation)
            return err_set(err,
                           "out of device memory allocating %s: asked for %zu bytes (%.2f GiB), %zu bytes "
                           "(%.2f GiB) free of %.2f GiB",
                           what, bytes, bytes / 1073741824.0, fr, fr / 1073741824.0, tot / 1073741824.0);
        return err_set(err, "cudaMalloc(%s, %zu bytes): %s", what, bytes, cudaGetErrorString(e));
    }
    im->cur_bytes += bytes;
    im->peak_bytes = std::max(im->peak_bytes, im->cur_bytes);
    return 0;
}

// Frees what dev_alloc gave; a failure here has no caller to report to, so it is printed.
void dev_free(Impl *im, void *p, size_t bytes) {
    if (!p) return;
    cudaError_t e = cudaFree(p);
    if (e != cudaSuccess) fprintf(stderr, "hymeval cuda: cudaFree: %s\n", cudaGetErrorString(e));
    im->cur_bytes -= bytes;
}

// ------------------------------------------------------------ weights

// Places tensors in the weight arena: a planning pass only counts bytes,
// the second pass uploads (converted to BF16 unless kept FP32).
struct Placer {
    Impl *im;
    bool plan;
    size_t off;
    std::vector<uint16_t> stage;
    Err *err;
    int failed;

    void *reserve(size_t n, bool f32) {
        size_t at = align_up(off, kAlign);
        off = at + n * (f32 ? 4 : im->es);
        return plan ? nullptr : im->warena + at;
    }
    void fill(void *dst, const float *host, size_t n, bool f32) {
        if (plan || failed) return;
        cudaError_t e;
        if (f32 || im->dt == HK_F32) {
            e = cudaMemcpy(dst, host, n * 4, cudaMemcpyHostToDevice);
        } else {  // convert in slices through a host buffer
            const size_t slice = (size_t)1 << 22;
            stage.resize(std::min(n, slice));
            e = cudaSuccess;
            for (size_t i = 0; i < n && e == cudaSuccess; i += slice) {
                size_t k = std::min(slice, n - i);
                for (size_t j = 0; j < k; j++) stage[j] = f32_to_bf16(host[i + j]);
                e = cudaMemcpy((char *)dst + i * 2, stage.data(), k * 2, cudaMemcpyHostToDevice);
            }
        }
        if (e != cudaSuccess) {
            err_set(err, "uploading weights: %s", cudaGetErrorString(e));
            failed = 1;
        }
    }
    // A tensor of n elements (NULL host: absent, NULL result).
    void *put(const float *host, size_t n, bool f32 = false) {
        if (!host) return nullptr;
        void *d = reserve(n, f32);
        fill(d, host, n, f32);
        return d;
    }
};

int place_weights(Impl *im, Placer &p) {
    const HymbaConfig *c = im->cfg;
    const Weights *w = &im->m->w;
    size_t H = im->H, I = im->I, N = im->N, R = im->R, K = im->K, F = im->F, V = im->V;
    im->embed = p.put(w->embed, V * H);
    im->lm_head = w->lm_head == w->embed ? im->embed : p.put(w->lm_head, V * H);
    im->meta = p.put(w->meta, (size_t)im->M * H);
    im->final_norm = p.put(w->final_norm, H);
    im->inv_freq = (float *)p.put(im->m->inv_freq, (size_t)im->dk / 2, true);
    for (int l = 0; l < im->L; l++) {
        const LayerWeights *lw = &w->layers[l];
        DevLayer &d = im->layers[l];
        const size_t rows = (size_t)config_in_proj_split(c, l).rows;
        const int perhead = c->kq_norm == KQ_NORM_PERHEAD;
        d.input_norm = p.put(lw->input_norm, H);
        d.in_proj = p.put(lw->in_proj, rows * H);
        d.in_proj_bias = p.put(lw->in_proj_bias, rows);
        d.q_norm = p.put(lw->q_norm, (size_t)im->dk * (perhead ? im->nh : 1));
        d.k_norm = p.put(lw->k_norm, (size_t)im->dk * (perhead ? im->nkv : 1));
        d.conv_w = p.put(lw->conv_w, I * K);
        d.conv_b = p.put(lw->conv_b, I);
        d.x_proj = p.put(lw->x_proj, (size_t)im->XDB * I);
        d.dt_proj = p.put(lw->dt_proj, I * R);
        d.dt_bias = (float *)p.put(lw->dt_bias, I, true);
        d.A = (float *)p.put(lw->A, I * N, true);
        d.D = (float *)p.put(lw->D, I, true);
        d.dt_norm = p.put(lw->dt_norm, R);
        d.B_norm = p.put(lw->B_norm, N);
        d.C_norm = p.put(lw->C_norm, N);
        d.attn_out_norm = p.put(lw->attn_out_norm, I);
        d.ssm_out_norm = p.put(lw->ssm_out_norm, I);
        d.out_proj = p.put(lw->out_proj, H * I);
        d.out_proj_bias = p.put(lw->out_proj_bias, H);
        d.mlp_norm = p.put(lw->mlp_norm, H);
        d.mlp_in = d.mlp_down = nullptr;
        if (F > 0) {
            if (lw->mlp_gate) {  // [gate; up]: one GEMM, swiglu reads the two halves of each row
                d.mlp_in = p.reserve(2 * F * H, false);
                p.fill(d.mlp_in, lw->mlp_gate, F * H, false);
                p.fill(p.plan ? nullptr : (char *)d.mlp_in + F * H * im->es, lw->mlp_up, F * H, false);
            } else {
                d.mlp_in = p.put(lw->mlp_up, F * H);
            }
            d.mlp_down = p.put(lw->mlp_down, H * F);
        }
    }
    return p.failed ? -1 : 0;
}

int upload_weights(Impl *im, Err *err) {
    Placer plan{im, true, 0, {}, err, 0};
    place_weights(im, plan);
    im->warena_bytes = plan.off;
    if (dev_alloc(im, (void **)&im->warena, im->warena_bytes, "the weights", err)) return -1;
    im->weight_bytes = im->warena_bytes;
    Placer put{im, false, 0, {}, err, 0};
    return place_weights(im, put);
}

// ------------------------------------------------------------ cache layout and sequences

void cache_layout(Impl *im) {
    const HymbaConfig *c = im->cfg;
    int L = im->L;
    im->k_off.assign(L, SIZE_MAX), im->v_off.assign(L, SIZE_MAX);
    im->conv_off.assign(L, SIZE_MAX), im->ssm_off.assign(L, SIZE_MAX);
    im->gidx.assign(L, -1);
    im->n_global = 0;
    size_t off = 0;
    const size_t ring = (size_t)im->M + im->W + 1;
    for (int l = 0; l < L; l++) {
        if (layer_owns_kv(c, l)) {
            if (c->is_global[l]) {
                im->gidx[l] = im->n_global++;
            } else {
                im->k_off[l] = off = align_up(off, kAlign);
                off += ring * im->kw * im->es;
                im->v_off[l] = off = align_up(off, kAlign);
                off += ring * im->vw * im->es;
            }
        }
        if (layer_has_ssm(c, l)) {
            im->conv_off[l] = off = align_up(off, kAlign);
            off += (size_t)(im->K - 1) * im->I * im->es;
            im->ssm_off[l] = off = align_up(off, kAlign);
            off += (size_t)im->I * im->N * 4;
        }
    }
    im->fixed_bytes = align_up(off, kAlign);
}

size_t global_layer_bytes(const Impl *im, int cap) { return align_up((size_t)cap * (im->kw + im->vw) * im->es, kAlign); }

// Where layer l keeps its own K / V for sequence s (NULL: not a producer).
char *seq_k(const Impl *im, const Sequence *s, int l) {
    if (im->gidx[l] >= 0) return s->global + (size_t)im->gidx[l] * global_layer_bytes(im, s->cap);
    return im->k_off[l] == SIZE_MAX ? nullptr : s->fixed + im->k_off[l];
}
char *seq_v(const Impl *im, const Sequence *s, int l) {
    if (im->gidx[l] >= 0) return seq_k(im, s, l) + (size_t)s->cap * im->kw * im->es;
    return im->v_off[l] == SIZE_MAX ? nullptr : s->fixed + im->v_off[l];
}

void seq_free(Impl *im, Sequence *s) {
    if (!s) return;
    dev_free(im, s->fixed, im->fixed_bytes);
    dev_free(im, s->global, s->global_bytes);
    free(s);
}

// A zeroed sequence able to hold `cap` positions in its global layers.
Sequence *seq_new(Impl *im, int cap, Err *err) {
    Sequence *s = (Sequence *)calloc(1, sizeof *s);
    if (!s) {
        err_set(err, "out of host memory");
        return nullptr;
    }
    s->n_meta = im->M;
    s->cap = (int)align_up((size_t)std::max(cap, 1), kCapQuantum);
    s->global_bytes = im->n_global * global_layer_bytes(im, s->cap);
    if (dev_alloc(im, (void **)&s->fixed, im->fixed_bytes, "a sequence's cache", err) ||
        dev_alloc(im, (void **)&s->global, s->global_bytes, "a sequence's global-layer K/V", err)) {
        seq_free(im, s);
        return nullptr;
    }
    // zero states (and never-written slots) so nothing undefined is ever read
    cudaError_t e = cudaMemsetAsync(s->fixed, 0, im->fixed_bytes, im->stream);
    if (e == cudaSuccess && s->global) e = cudaMemsetAsync(s->global, 0, s->global_bytes, im->stream);
    if (e != cudaSuccess) {
        err_set(err, "cudaMemsetAsync: %s", cudaGetErrorString(e));
        seq_free(im, s);
        return nullptr;
    }
    return s;
}

// dst takes src's state (dst->cap >= src->n_pos): device-to-device copies.
int seq_copy(Impl *im, Sequence *dst, const Sequence *src, Err *err) {
    CU(cudaMemcpyAsync(dst->fixed, src->fixed, im->fixed_bytes, cudaMemcpyDeviceToDevice, im->stream));
    for (int l = 0; l < im->L; l++) {
        if (im->gidx[l] < 0) continue;
        CU(cudaMemcpyAsync(seq_k(im, dst, l), seq_k(im, src, l), (size_t)src->n_pos * im->kw * im->es,
                           cudaMemcpyDeviceToDevice, im->stream));
        CU(cudaMemcpyAsync(seq_v(im, dst, l), seq_v(im, src, l), (size_t)src->n_pos * im->vw * im->es,
                           cudaMemcpyDeviceToDevice, im->stream));
    }
    dst->n_pos = src->n_pos;
    return 0;
}

// Grows the global layers' K/V to hold `positions` (by an eighth at least,
// so that decoding reallocates rarely).
int seq_reserve(Impl *im, Sequence *s, int positions, Err *err) {
    if (positions <= s->cap || im->n_global == 0) {
        if (im->n_global == 0) s->cap = std::max(s->cap, positions);
        return 0;
    }
    Sequence grown = *s;
    grown.cap = (int)align_up((size_t)std::max(positions, s->cap + s->cap / 8), kCapQuantum);
    grown.global_bytes = im->n_global * global_layer_bytes(im, grown.cap);
    if (dev_alloc(im, (void **)&grown.global, grown.global_bytes, "growing a sequence's global-layer K/V", err))
        return -1;
    for (int l = 0; l < im->L; l++) {
        if (im->gidx[l] < 0) continue;
        CU(cudaMemcpyAsync(seq_k(im, &grown, l), seq_k(im, s, l), (size_t)s->n_pos * im->kw * im->es,
                           cudaMemcpyDeviceToDevice, im->stream));
        CU(cudaMemcpyAsync(seq_v(im, &grown, l), seq_v(im, s, l), (size_t)s->n_pos * im->vw * im->es,
                           cudaMemcpyDeviceToDevice, im->stream));
    }
    CU(cudaStreamSynchronize(im->stream));  // the copies are done before the old block goes
    dev_free(im, s->global, s->global_bytes);
    *s = grown;
    return 0;
}

// ------------------------------------------------------------ scratch

size_t per_token_bytes(const Impl *im) {
    size_t elems = 2 * (size_t)im->H + im->rows_max + 5 * (size_t)im->I + im->XDB + im->H + im->mlp_cols + im->F;
    for (int l = 0; l < im->L; l++)
        if (layer_owns_kv(im->cfg, l)) elems += im->kw + im->vw;
    return elems * im->es + (size_t)im->L * 4 * sizeof(void *) + 6 * sizeof(int);  // + pass metadata
}

int alloc_scratch(Impl *im, Err *err) {
    const size_t T = (size_t)im->T, es = im->es;
    size_t off = 0;
    std::vector<std::pair<void **, size_t>> parts = {
        {&im->h, T * im->H},        {&im->u, T * im->H},           {&im->proj, T * im->rows_max},
        {&im->attn, T * im->I},     {&im->xc, T * im->I},          {&im->xdb, T * im->XDB},
        {&im->delta, T * im->I},    {&im->ssm_y, T * im->I},       {&im->fused, T * im->I},
        {&im->tmp, T * im->H},      {&im->gu, T * im->mlp_cols},   {&im->act, T * im->F},
    };
    im->kv.assign(im->L, nullptr);
    for (int l = 0; l < im->L; l++)
        if (layer_owns_kv(im->cfg, l)) parts.push_back({&im->kv[l], T * (im->kw + im->vw)});
    std::vector<size_t> offs;
    for (auto &p : parts) {
        offs.push_back(off = align_up(off, kAlign));
        off += std::max<size_t>(p.second, 1) * es;
    }
    im->scratch_bytes = align_up(off, kAlign);
    if (dev_alloc(im, (void **)&im->scratch, im->scratch_bytes, "activation scratch", err)) return -1;
    for (size_t i = 0; i < parts.size(); i++) *parts[i].first = im->scratch + offs[i];
    // pointer table [L][4][B] then ids, cu, pos0, rowpos, lm rows
    im->meta_bytes = align_up(T * im->L * 4 * sizeof(void *), kAlign) + (6 * T + 1) * sizeof(int);
    if (dev_alloc(im, (void **)&im->meta_d, im->meta_bytes, "pass metadata", err)) return -1;
    im->host_meta.resize(im->meta_bytes);
    const size_t lr = (size_t)std::min(kLmRows, im->T), V = (size_t)im->V;
    if (dev_alloc(im, &im->lm_in, lr * im->H * es, "LM-head input", err) ||
        dev_alloc(im, &im->lm_out, lr * V * es, "LM-head output", err))
        return -1;
    if (im->dt != HK_F32 && dev_alloc(im, (void **)&im->lm_f32, lr * V * 4, "FP32 logits", err)) return -1;
    if (dev_alloc(im, (void **)&im->lm_top, lr * 2 * 4, "greedy choices", err)) return -1;
    CU(cudaMallocHost((void **)&im->lm_host, lr * V * 4));
    return 0;
}

// Grows a lazily sized workspace; on failure returns NULL with no error (the
// kernels then run without it).
void *workspace(Impl *im, void **ws, size_t *have, size_t need) {
    if (need <= *have) return *ws;
    Err ignored;
    if (cudaStreamSynchronize(im->stream) != cudaSuccess) return nullptr;  // queued kernels may still use it
    dev_free(im, *ws, *have);
    *ws = nullptr, *have = 0;
    if (dev_alloc(im, ws, need, "workspace", &ignored)) return nullptr;
    *have = need;
    return *ws;
}

__global__ void bf16_to_f32_kernel(float *out, const bf16 *in, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = __bfloat162float(in[i]);
}

// ------------------------------------------------------------ one pass

// What the device work of a pass needs: sizes and the uploaded metadata.
struct Pass {
    int B, T, max_len, max_pos, n_rows;
    bool decode, meta_input;
    bool top1;                                 // LOGITS_TOP1: each wanted row leaves as (argmax id, logit)
    int meta_start;                            // first meta row (meta input)
    void *scan_ws;                             // chunked-scan workspace of im->scan_ws_bytes, or NULL
    void *const *tbl;                          // device [L][4][B]: k, v, conv, ssm per layer and sequence
    const int *ids, *cu, *pos0, *rowpos, *ropepos, *rows;  // device; ropepos = rowpos + the model's position_offset
    const int *h_rowpos;                       // host copy of rowpos (the observer's positions)
    void *const *table(int l, int j) const { return tbl + (size_t)(l * 4 + j) * B; }
};

// The model's observer (engine/observe.h): passes report what it asks for
// (observe_attn, observe_ssm, observe_hidden), waiting for the device, and
// never run as a graph.
bool observing(const Impl *im) {
    const HymbaObserver *o = im->m->observer;
    return o && (o->attn_row || o->ssm_token || o->hidden);
}

// rows x cols values of a device matrix (row pitch ld, the pass's dtype) as FP32 on the host.
int download_rows(Impl *im, std::vector<float> &out, const void *src, int ld, int rows, int cols, Err *err) {
    out.resize((size_t)rows * cols);
    if (im->dt == HK_F32) {
        CU(cudaMemcpy2DAsync(out.data(), (size_t)cols * 4, src, (size_t)ld * 4, (size_t)cols * 4, rows,
                             cudaMemcpyDeviceToHost, im->stream));
        CU(cudaStreamSynchronize(im->stream));
        return 0;
    }
    std::vector<uint16_t> raw((size_t)rows * cols);
    CU(cudaMemcpy2DAsync(raw.data(), (size_t)cols * 2, src, (size_t)ld * 2, (size_t)cols * 2, rows,
                         cudaMemcpyDeviceToHost, im->stream));
    CU(cudaStreamSynchronize(im->stream));
    for (size_t i = 0; i < raw.size(); i++) out[i] = bf16_to_f32(raw[i]);
    return 0;
}

// Hands the SSM layer l's tokens of this pass to the observer after its scan,
// as the CPU forward does: delta = softplus(dt_proj output + dt_bias) in FP32
// (the scan kernel forms the same inside), B and C after their norms, the
// conv + SiLU output x, and A = -exp(A_log); rows in pass order (each
// sequence's positions ascending).
int observe_ssm(Impl *im, const Pass &ps, int l, const void *xdb, Err *err) {
    const HymbaObserver *obs = im->m->observer;
    const LayerWeights *w = &im->m->w.layers[l];
    const int T = ps.T, I = im->I, N = im->N, R = im->R, XDB = im->XDB;
    std::vector<float> x, dt, bc;
    if (download_rows(im, x, im->xc, I, T, I, err) || download_rows(im, dt, im->delta, I, T, I, err) ||
        download_rows(im, bc, xdb, XDB, T, XDB, err))
        return -1;
    for (int r = 0; r < T; r++) {
        float *d = &dt[(size_t)r * I];
        for (int c = 0; c < I; c++) d[c] = softplus(d[c] + w->dt_bias[c]);
        const float *row = &bc[(size_t)r * XDB];
        obs->ssm_token(obs->user, l, ps.h_rowpos[r], I, N, d, row + R, row + R + N, &x[(size_t)r * I], w->A);
    }
    return 0;
}

// Hands every row's final hidden state (after the final norm: the LM head's
// input) to the observer, in pass order.
int observe_hidden(Impl *im, const Pass &ps, Err *err) {
    const HymbaObserver *obs = im->m->observer;
    std::vector<float> u;
    if (download_rows(im, u, im->u, im->H, ps.T, im->H, err)) return -1;
    for (int r = 0; r < ps.T; r++) obs->hidden(obs->user, ps.h_rowpos[r], &u[(size_t)r * im->H], im->H);
    return 0;
}

// Hands layer l's attention rows of this pass to the observer, as the CPU
// forward does (key order, positions, scores and softmax): a measurement
// path that waits for the device after each batch of rows.
int observe_attn(Impl *im, const Pass &ps, int l, const void *q, int ldq, const void *kv, int ldkv, int window,
                 float scale, Err *err) {
    const HymbaObserver *obs = im->m->observer;
    const int nh = im->nh, M = im->M;
    const int cap = window > 0 ? std::min(ps.max_pos + 1, M + window + 1) : ps.max_pos + 1;
    const size_t per_row = (size_t)nh * cap;
    const int batch = (int)std::min<size_t>((size_t)ps.T, std::max<size_t>(1, ((size_t)4 << 20) / per_row));
    const size_t need = 2 * sizeof(float) * (size_t)batch * per_row;
    if (need > im->obs_bytes) {
        dev_free(im, im->obs_rows, im->obs_bytes);
        im->obs_rows = nullptr, im->obs_bytes = 0;
        if (dev_alloc(im, (void **)&im->obs_rows, need, "observer rows", err)) return -1;
        im->obs_bytes = need;
    }
    float *d_scores = im->obs_rows, *d_probs = im->obs_rows + (size_t)batch * per_row;
    std::vector<float> host(2 * (size_t)batch * per_row);
    std::vector<int> key_pos((size_t)cap);
    cudaStream_t st = im->stream;
    for (int r0 = 0; r0 < ps.T; r0 += batch) {
        const int n = std::min(batch, ps.T - r0);
        HKR(hk_attn_rows(im->dt, d_scores, d_probs, cap, q, ldq, kv, ldkv, (const void *const *)ps.table(l, 0), im->kw,
                         ps.decode ? nullptr : ps.cu, ps.pos0, ps.rowpos, ps.B, r0, n, nh, im->nkv, im->dk, M, window,
                         scale, st));
        CU(cudaMemcpyAsync(host.data(), d_scores, (size_t)n * per_row * 4, cudaMemcpyDeviceToHost, st));
        CU(cudaMemcpyAsync(host.data() + (size_t)batch * per_row, d_probs, (size_t)n * per_row * 4,
                           cudaMemcpyDeviceToHost, st));
        CU(cudaStreamSynchronize(st));
        for (int i = 0; i < n; i++) {
            const int p = ps.h_rowpos[r0 + i];
            const int meta_end = std::min(M, p + 1), band_start = window > 0 ? std::max(M, p - window) : M;
            int nk = 0;
            for (int kp = 0; kp < meta_end; kp++) key_pos[nk++] = kp;
            for (int kp = band_start; kp <= p; kp++) key_pos[nk++] = kp;
            for (int h = 0; h < nh; h++) {
                const size_t off = ((size_t)i * nh + h) * cap;
                obs->attn_row(obs->user, l, h, p, nk, key_pos.data(), host.data() + off,
                              host.data() + (size_t)batch * per_row + off);
            }
        }
    }
    return 0;
}

// All device work of a pass from the embeddings to the final norm (no
// synchronisation, no allocation: a decode pass is captured into a graph;
// an observed pass, observe_attn, is the exception).
int pass_layers(Impl *im, const Pass &ps, Err *err) {
    const HymbaConfig *c = im->cfg;
    const hk_dtype d = im->dt;
    const size_t es = im->es;
    cudaStream_t st = im->stream;
    const int L = im->L, H = im->H, I = im->I, N = im->N, R = im->R, XDB = im->XDB, kv_ld = im->kw + im->vw;
    const int B = ps.B, T = ps.T, max_len = ps.max_len;
    const int *cu_arg = ps.decode ? nullptr : ps.cu;  // NULL: one row per sequence (decode kernels)
    // A decode step of a few rows is bound by kernel launches: the norms,
    // SwiGLU and residual adds then run inside the GEMVs (hk_gemv), h holds
    // the whole residual stream after every sublayer (no tmp), and the
    // observer, which reads the separate kernels' buffers, keeps them.
    const bool fuse = ps.decode && T <= im->fuse_rows && !observing(im);

    // embeddings (or the meta rows)
    im->prof_used = 0;  // a pass that failed earlier may have left events behind
    if (prof_mark(im, PROF_EMBED, err)) return -1;
    if (ps.meta_input)
        CU(cudaMemcpyAsync(im->h, (const char *)im->meta + (size_t)ps.meta_start * H * es, (size_t)T * H * es,
                           cudaMemcpyDeviceToDevice, st));
    else
        HKR(hk_embed(d, im->h, H, ps.ids, ps.cu, B, T, im->embed, im->V, nullptr, 0, H, st));

    const float scale = 1.0f / sqrtf((float)im->dk);
    const int perhead = c->kq_norm == KQ_NORM_PERHEAD;
    for (int l = 0; l < L; l++) {
        const DevLayer &w = im->layers[l];
        const InProjSplit sp = config_in_proj_split(c, l);
        const int rows = sp.rows, window = c->is_global[l] ? 0 : im->W;
        char *proj = (char *)im->proj;

        // u = RMSNorm(h) (after adding the previous sublayer's output); proj = in_proj u
        if (fuse && im->fuse_norm) {  // h is complete: the GEMV normalises it as it reads it
            if (prof_mark(im, PROF_PROJ, err)) return -1;
            HKR(hk_gemv(d, HK_GEMV_RMSNORM, proj, rows, nullptr, 0, im->h, H, w.input_norm, c->rms_eps, w.in_proj, H,
                        w.in_proj_bias, T, H, rows, st));
        } else if (fuse) {  // h is complete: no add before the norm
            if (prof_mark(im, PROF_NORM, err)) return -1;
            HKR(hk_rmsnorm(d, im->u, H, im->h, H, w.input_norm, T, H, c->rms_eps, st));
            if (prof_mark(im, PROF_PROJ, err)) return -1;
            HKR(hk_gemm_run(im->gemm, d, proj, rows, im->u, H, w.in_proj, H, w.in_proj_bias, T, H, rows, st));
        } else {
            if (prof_mark(im, PROF_NORM, err)) return -1;
            if (l == 0) HKR(hk_rmsnorm(d, im->u, H, im->h, H, w.input_norm, T, H, c->rms_eps, st));
            else HKR(hk_add_rmsnorm(d, im->h, H, im->tmp, H, im->u, H, w.input_norm, T, H, c->rms_eps, st));
            if (prof_mark(im, PROF_PROJ, err)) return -1;
            HKR(hk_gemm_run(im->gemm, d, proj, rows, im->u, H, w.in_proj, H, w.in_proj_bias, T, H, rows, st));
        }

        if (layer_has_attn(c, l)) {
            if (prof_mark(im, PROF_ATTN, err)) return -1;
            const int src = c->kv_source[l];
            const bool owns = src == l;
            char *kvb = (char *)im->kv[src];
            if (ps.decode && owns && im->rope_store && !observing(im)) {
                // the new k and v go from proj straight to their cache slots (no staging copy, no store kernel)
                HKR(hk_rope_qk_store(d, proj + (size_t)sp.q * es, rows, im->nh, proj + (size_t)sp.k * es, rows,
                                     im->nkv, im->dk, ps.ropepos, im->inv_freq, B, im->rope_mode, c->rope, w.q_norm,
                                     w.k_norm, perhead, 1e-6f, ps.table(l, 0), im->kw, ps.table(l, 1), im->vw,
                                     proj + (size_t)(sp.k + im->kw) * es, rows, im->dv, ps.rowpos, im->M, window, st));
            } else {
                if (owns)  // k | v leave proj (rewritten by the next layer) for the pass buffer
                    CU(cudaMemcpy2DAsync(kvb, kv_ld * es, proj + (size_t)sp.k * es, rows * es, kv_ld * es, T,
                                         cudaMemcpyDeviceToDevice, st));
                HKR(hk_rope_qk(d, proj + (size_t)sp.q * es, rows, im->nh, owns ? kvb : nullptr, kv_ld, im->nkv,
                               im->dk, ps.ropepos, im->inv_freq, T, im->rope_mode, c->rope, w.q_norm,
                               owns ? w.k_norm : nullptr, perhead, 1e-6f, st));
                if (ps.decode && owns)
                    HKR(hk_kv_store(d, ps.table(l, 0), im->kw, ps.table(l, 1), im->vw, kvb, kv_ld, kvb + im->kw * es,
                                    kv_ld, nullptr, ps.rowpos, B, 1, im->nkv, im->dk, im->dv, im->M, window, st));
            }
            if (ps.decode) {
                HKR(hk_attn_decode(d, im->attn, I, proj + (size_t)sp.q * es, rows, (const void *const *)ps.table(l, 0),
                                   im->kw, (const void *const *)ps.table(l, 1), im->vw, ps.rowpos, B, ps.max_pos,
                                   im->nh, im->nkv, im->dk, im->dv, im->M, window, scale, im->dec_ws,
                                   im->dec_ws_bytes, st));
            } else {
                HKR(hk_attn_prefill_cached(d, im->attn, I, proj + (size_t)sp.q * es, rows, kvb, kv_ld,
                                           kvb + im->kw * es, kv_ld, (const void *const *)ps.table(l, 0), im->kw,
                                           (const void *const *)ps.table(l, 1), im->vw, ps.pos0, ps.cu, B, max_len,
                                           im->nh, im->nkv, im->dk, im->dv, im->M, window, scale, st));
            }
            if (observing(im) && im->m->observer->attn_row &&
                observe_attn(im, ps, l, proj + (size_t)sp.q * es, rows, kvb, kv_ld, window, scale, err))
                return -1;
        }

        if (layer_has_ssm(c, l)) {
            char *xdb = (char *)im->xdb, *conv_x = proj + (size_t)sp.x * es;
            // decode: the norms, dt_proj and the scan step in one kernel (hk_ssm_step); fused, the x_proj
            // GEMV also forms the conv's output itself and hk_ssm_step then advances the conv state
            const bool step = ps.decode && T <= im->ssm_step_rows && !observing(im), conv_in_gemv = step && fuse;
            if (conv_in_gemv) {
                if (prof_mark(im, PROF_PROJ, err)) return -1;
                HKR(hk_gemv_conv(d, xdb, XDB, conv_x, rows, ps.table(l, 2), w.conv_w, w.conv_b, im->K, w.x_proj, I,
                                 nullptr, T, I, XDB, st));
            } else {
                if (prof_mark(im, PROF_SSM, err)) return -1;
                HKR(hk_conv1d_silu(d, im->xc, I, conv_x, rows, w.conv_w, w.conv_b, ps.table(l, 2), cu_arg, B, max_len,
                                   I, im->K, st));
                if (prof_mark(im, PROF_PROJ, err)) return -1;
                HKR(hk_gemm_run(im->gemm, d, xdb, XDB, im->xc, I, w.x_proj, I, nullptr, T, I, XDB, st));
            }
            if (prof_mark(im, PROF_SSM, err)) return -1;
            if (step) {
                const hk_conv_step conv = {conv_x, rows, w.conv_w, w.conv_b, ps.table(l, 2), im->K};
                HKR(hk_ssm_step(d, im->ssm_y, I, xdb, XDB, w.dt_norm, w.B_norm, w.C_norm, c->rms_eps, w.dt_proj, R,
                                w.dt_bias, w.A, w.D, im->xc, I, conv_in_gemv ? &conv : nullptr,
                                proj + (size_t)sp.z * es, rows, (float *const *)ps.table(l, 3), B, I, N, st));
            } else {
                if (w.dt_norm)  // dt | B | C normalised in place, each on its own
                    HKR(hk_rmsnorm3(d, xdb, XDB, xdb, XDB, w.dt_norm, R, w.B_norm, N, w.C_norm, N, T, c->rms_eps, st));
                if (prof_mark(im, PROF_PROJ, err)) return -1;
                HKR(hk_gemm_run(im->gemm, d, im->delta, I, xdb, XDB, w.dt_proj, R, nullptr, T, R, I, st));
                if (prof_mark(im, PROF_SSM, err)) return -1;
                void *ws = ps.scan_ws;  // NULL (decode, short rows, or no memory): one pass per sequence
                HKR(hk_scan(d, im->ssm_y, I, im->xc, I, im->delta, I, w.dt_bias, w.A, xdb + (size_t)R * es, XDB,
                            xdb + (size_t)(R + N) * es, XDB, w.D, proj + (size_t)sp.z * es, rows,
                            (float *const *)ps.table(l, 3), cu_arg, B, max_len, I, N, ws, ws ? im->scan_ws_bytes : 0,
                            st));
                if (observing(im) && im->m->observer->ssm_token && observe_ssm(im, ps, l, xdb, err)) return -1;
            }
        }

        // f = fused norms of the branches present; tmp = out_proj f (fused: h += out_proj f)
        const bool ha = layer_has_attn(c, l), hs = layer_has_ssm(c, l);
        if (fuse && im->fuse_norm && im->fuse_avg) {  // h += out_proj f, the fusion formed as the GEMV reads it
            if (prof_mark(im, PROF_PROJ, err)) return -1;
            if (ha && hs)
                HKR(hk_gemv_fuse_avg(d, im->h, H, im->h, H, im->attn, I, w.attn_out_norm, im->ssm_y, I,
                                     w.ssm_out_norm, c->rms_eps, w.out_proj, I, w.out_proj_bias, T, I, H, st));
            else  // one branch: its norm alone
                HKR(hk_gemv(d, HK_GEMV_RMSNORM, im->h, H, im->h, H, ha ? im->attn : im->ssm_y, I,
                            ha ? w.attn_out_norm : w.ssm_out_norm, c->rms_eps, w.out_proj, I, w.out_proj_bias, T, I,
                            H, st));
        } else {
            if (prof_mark(im, PROF_NORM, err)) return -1;
            HKR(hk_fuse_norm_avg(d, im->fused, I, ha ? im->attn : nullptr, I, w.attn_out_norm,
                                 hs ? im->ssm_y : nullptr, I, w.ssm_out_norm, T, I, c->rms_eps, st));
            if (prof_mark(im, PROF_PROJ, err)) return -1;
            if (fuse)
                HKR(hk_gemv(d, HK_GEMV_X, im->h, H, im->h, H, im->fused, I, nullptr, 0, w.out_proj, I,
                            w.out_proj_bias, T, I, H, st));
            else
                HKR(hk_gemm_run(im->gemm, d, im->tmp, H, im->fused, I, w.out_proj, I, w.out_proj_bias, T, I, H, st));
        }

        if (im->F > 0 && fuse) {  // h += MLP(RMSNorm(h)): norm, SwiGLU and add inside the GEMVs
            const int F = im->F;
            if (prof_mark(im, PROF_MLP, err)) return -1;
            if (im->fuse_norm) {
                HKR(hk_gemv(d, HK_GEMV_RMSNORM, im->gu, im->mlp_cols, nullptr, 0, im->h, H, w.mlp_norm, c->rms_eps,
                            w.mlp_in, H, nullptr, T, H, im->mlp_cols, st));
            } else {
                HKR(hk_rmsnorm(d, im->u, H, im->h, H, w.mlp_norm, T, H, c->rms_eps, st));
                HKR(hk_gemm_run(im->gemm, d, im->gu, im->mlp_cols, im->u, H, w.mlp_in, H, nullptr, T, H, im->mlp_cols,
                                st));
            }
            if (c->mlp_act == MLP_SILU) {
                HKR(hk_gemv(d, HK_GEMV_SWIGLU, im->h, H, im->h, H, im->gu, 2 * F, nullptr, 0, w.mlp_down, F, nullptr,
                            T, F, H, st));
            } else {
                HKR(hk_relu2(d, im->act, F, im->gu, F, T, F, st));
                HKR(hk_gemv(d, HK_GEMV_X, im->h, H, im->h, H, im->act, F, nullptr, 0, w.mlp_down, F, nullptr, T, F,
                            H, st));
            }
        } else if (im->F > 0) {  // h += tmp; tmp = MLP(RMSNorm(h))
            const int F = im->F;
            if (prof_mark(im, PROF_NORM, err)) return -1;
            HKR(hk_add_rmsnorm(d, im->h, H, im->tmp, H, im->u, H, w.mlp_norm, T, H, c->rms_eps, st));
            if (prof_mark(im, PROF_MLP, err)) return -1;
            HKR(hk_gemm_run(im->gemm, d, im->gu, im->mlp_cols, im->u, H, w.mlp_in, H, nullptr, T, H, im->mlp_cols, st));
            if (c->mlp_act == MLP_SILU)
                HKR(hk_swiglu(d, im->act, F, im->gu, 2 * F, (char *)im->gu + (size_t)F * es, 2 * F, T, F, st));
            else
                HKR(hk_relu2(d, im->act, F, im->gu, F, T, F, st));
            HKR(hk_gemm_run(im->gemm, d, im->tmp, H, im->act, F, w.mlp_down, F, nullptr, T, F, H, st));
        }
    }

    // The chunk's keys and values join the caches only now (see the top).
    if (!ps.decode && prof_mark(im, PROF_ATTN, err)) return -1;
    if (!ps.decode)
        for (int l = 0; l < L; l++) {
            if (!layer_owns_kv(c, l)) continue;
            char *kvb = (char *)im->kv[l];
            HKR(hk_kv_store(d, ps.table(l, 0), im->kw, ps.table(l, 1), im->vw, kvb, kv_ld, kvb + im->kw * es, kv_ld,
                            ps.cu, ps.pos0, B, max_len, im->nkv, im->dk, im->dv, im->M, c->is_global[l] ? 0 : im->W,
                            st));
        }
    const bool hidden = observing(im) && im->m->observer->hidden;
    if ((ps.n_rows > 0 || hidden) && prof_mark(im, PROF_NORM, err)) return -1;
    if (fuse && ps.n_rows > 0)  // the final norm of every row (h is already complete)
        HKR(hk_rmsnorm(d, im->u, H, im->h, H, im->final_norm, T, H, c->rms_eps, st));
    else if (ps.n_rows > 0 || hidden)  // the final norm of every row (its input h += tmp is needed only here)
        HKR(hk_add_rmsnorm(d, im->h, H, im->tmp, H, im->u, H, im->final_norm, T, H, c->rms_eps, st));
    if (hidden && observe_hidden(im, ps, err)) return -1;
    return 0;
}

// LM head on wanted rows r0 .. r0+n-1 (n <= kLmRows); FP32 logits land in
// the pinned lm_host (asynchronously), or with ps.top1 each row's argmax
// id and logit (2 floats a row).
int pass_lm_head(Impl *im, const Pass &ps, int r0, int n, Err *err) {
    const hk_dtype d = im->dt;
    const size_t V = (size_t)im->V;
    cudaStream_t st = im->stream;
    if (prof_mark(im, PROF_LM_HEAD, err)) return -1;
    HKR(hk_gather_rows(d, im->lm_in, im->H, im->u, im->H, ps.rows + r0, n, im->H, st));
    HKR(hk_gemm_run(im->gemm, d, im->lm_out, (int)V, im->lm_in, im->H, im->lm_head, im->H, nullptr, n, im->H, (int)V, st));
    if (ps.top1) {
        HKR(hk_argmax_rows(d, im->lm_top, im->lm_out, (int)V, n, (int)V, st));
        CU(cudaMemcpyAsync(im->lm_host, im->lm_top, (size_t)n * 2 * 4, cudaMemcpyDeviceToHost, st));
        return 0;
    }
    const float *src = (const float *)im->lm_out;
    if (d != HK_F32) {
        size_t count = (size_t)n * V;
        int blocks = (int)std::min<size_t>((count + 255) / 256, 4096);
        bf16_to_f32_kernel<<<blocks, 256, 0, st>>>(im->lm_f32, (const bf16 *)im->lm_out, count);
        CU(cudaGetLastError());
        src = im->lm_f32;
    }
    CU(cudaMemcpyAsync(im->lm_host, src, (size_t)n * V * 4, cudaMemcpyDeviceToHost, st));
    return 0;
}

int run_decode_graph(Impl *im, const Pass &ps, Err *err) {
    GraphKey key{ps.B, ps.max_pos, ps.n_rows, ps.top1, im->dec_ws};
    if (!im->graph_exec || !(key == im->graph_key)) {
        if (im->graph_exec) CU(cudaGraphExecDestroy(im->graph_exec));
        im->graph_exec = nullptr;
        CU(cudaStreamBeginCapture(im->stream, cudaStreamCaptureModeThreadLocal));
        int rc = pass_layers(im, ps, err);
        if (rc == 0 && ps.n_rows > 0) rc = pass_lm_head(im, ps, 0, ps.n_rows, err);
        cudaGraph_t graph = nullptr;
        cudaError_t e = cudaStreamEndCapture(im->stream, &graph);
        if (rc == 0 && e == cudaSuccess) e = cudaGraphInstantiate(&im->graph_exec, graph, 0);
        if (graph) cudaGraphDestroy(graph);
        if (rc || e != cudaSuccess) {
            // not capturable here: run this and later decode passes without a graph
            fprintf(stderr, "hymeval cuda: decode graph capture failed (%s); continuing without graphs\n",
                    rc ? err->msg : cudaGetErrorString(e));
            cudaGetLastError();
            im->graph_exec = nullptr;
            im->use_graphs = false;
            return 1;
        }
        im->graph_key = key;
    }
    CU(cudaGraphLaunch(im->graph_exec, im->stream));
    return 0;
}

// Runs the pieces through the model. ids == NULL: the input is the meta
// tokens (one piece, the prefix being built). Logits rows are written to
// logits[piece.seq] (+ row * V for LOGITS_ALL).
int run_pass(Impl *im, const Piece *pc, int B, Sequence *const *seqs, const int32_t *const *ids, LogitsWanted want,
             float *const *logits, Err *err) {
    const HymbaConfig *c = im->cfg;
    cudaStream_t st = im->stream;
    const int L = im->L;
    Pass ps{};
    ps.B = B;
    ps.meta_input = ids == nullptr;
    ps.top1 = want == LOGITS_TOP1;
    ps.meta_start = pc[0].start;
    ps.decode = !ps.meta_input;
    for (int b = 0; b < B; b++) {
        ps.T += pc[b].len;
        ps.max_len = std::max(ps.max_len, pc[b].len);
        ps.max_pos = std::max(ps.max_pos, seqs[pc[b].seq]->n_pos + pc[b].len - 1);
        if (pc[b].len != 1) ps.decode = false;
    }
    const int T = ps.T;
    for (int b = 0; b < B; b++)
        if (seq_reserve(im, seqs[pc[b].seq], seqs[pc[b].seq]->n_pos + pc[b].len, err)) return -1;

    // host side of the pass metadata, uploaded in two copies
    void **tbl = (void **)im->host_meta.data();
    const size_t tbl_bytes = (size_t)L * 4 * B * sizeof(void *);
    int *ints = (int *)(im->host_meta.data() + align_up((size_t)im->T * L * 4 * sizeof(void *), kAlign));
    int *h_ids = ints, *h_cu = h_ids + T, *h_pos0 = h_cu + B + 1, *h_rowpos = h_pos0 + B, *h_ropepos = h_rowpos + T,
        *h_rows = h_ropepos + T;
    const int offset = im->m->position_offset;  // RoPE sees shifted position ids; the cache slots do not move
    std::vector<float *> dests;
    h_cu[0] = 0;
    for (int b = 0; b < B; b++) {
        const Piece &p = pc[b];
        const Sequence *s = seqs[p.seq];
        h_cu[b + 1] = h_cu[b] + p.len;
        h_pos0[b] = s->n_pos;
        for (int t = 0; t < p.len; t++) {
            int r = h_cu[b] + t;
            h_ids[r] = ps.meta_input ? 0 : ids[p.seq][p.start + t];
            h_rowpos[r] = s->n_pos + t;
            h_ropepos[r] = s->n_pos + t + offset;
            bool wanted = want == LOGITS_ALL || ((want == LOGITS_LAST || want == LOGITS_TOP1) && p.last && t == p.len - 1);
            if (wanted) {
                h_rows[dests.size()] = r;
                dests.push_back(logits[p.seq] + (want == LOGITS_ALL ? (size_t)(p.start + t) * im->V : 0));
            }
        }
        for (int l = 0; l < L; l++) {
            int src = c->kv_source[l];
            tbl[(l * 4 + 0) * B + b] = layer_has_attn(c, l) ? seq_k(im, s, src) : nullptr;
            tbl[(l * 4 + 1) * B + b] = layer_has_attn(c, l) ? seq_v(im, s, src) : nullptr;
            tbl[(l * 4 + 2) * B + b] = im->conv_off[l] == SIZE_MAX ? nullptr : s->fixed + im->conv_off[l];
            tbl[(l * 4 + 3) * B + b] = im->ssm_off[l] == SIZE_MAX ? nullptr : s->fixed + im->ssm_off[l];
        }
    }
    ps.n_rows = (int)dests.size();
    const size_t ints_count = (size_t)(h_rows - ints) + ps.n_rows;
    char *ints_d = im->meta_d + ((char *)ints - im->host_meta.data());
    CU(cudaMemcpyAsync(im->meta_d, tbl, tbl_bytes, cudaMemcpyHostToDevice, st));
    CU(cudaMemcpyAsync(ints_d, ints, ints_count * sizeof(int), cudaMemcpyHostToDevice, st));
    ps.tbl = (void *const *)im->meta_d;
    ps.ids = (const int *)ints_d;
    ps.cu = ps.ids + T, ps.pos0 = ps.cu + B + 1, ps.rowpos = ps.pos0 + B, ps.ropepos = ps.rowpos + T;
    ps.rows = ps.ropepos + T;
    ps.h_rowpos = h_rowpos;

    // workspaces are sized here, before any capture
    if (ps.decode) {
        // max_pos only sizes the split-KV grid: rounding it up keeps the
        // grid (and a captured graph) the same for 256 steps
        ps.max_pos = (int)align_up((size_t)ps.max_pos + 1, 256) - 1;
        workspace(im, &im->dec_ws, &im->dec_ws_bytes, hk_attn_decode_workspace_bytes(B, im->nh, im->dv, 64));
    } else {
        size_t need = hk_scan_workspace_bytes(B, ps.max_len, im->I, im->N);
        ps.scan_ws = need ? workspace(im, &im->scan_ws, &im->scan_ws_bytes, need) : nullptr;
    }

    int lm_done = 0;  // wanted rows whose logits are already on their way to lm_host
    int graphed = 1;
    if (ps.decode && im->use_graphs && !im->profiling && !observing(im) && ps.n_rows <= kLmRows) {
        graphed = run_decode_graph(im, ps, err);
        if (graphed < 0) return -1;
        if (graphed == 0) lm_done = ps.n_rows;
    }
    if (graphed != 0) {
        if (pass_layers(im, ps, err)) return -1;
    }
    for (int b = 0; b < B; b++) seqs[pc[b].seq]->n_pos += pc[b].len;

    // logits: kLmRows rows at a time through lm_host (the graph did the first chunk)
    const size_t V = (size_t)im->V;
    for (int r0 = 0; r0 < ps.n_rows; r0 += kLmRows) {
        int n = std::min(kLmRows, ps.n_rows - r0);
        if (r0 >= lm_done && pass_lm_head(im, ps, r0, n, err)) return -1;
        CU(cudaStreamSynchronize(st));
        const size_t row = ps.top1 ? 2 : V;
        for (int i = 0; i < n; i++) memcpy(dests[r0 + i], im->lm_host + i * row, row * 4);
    }
    CU(cudaStreamSynchronize(st));  // errors of this pass surface here, and the host metadata may be reused
    return prof_end(im, ps.decode, err);
}

// Cuts the work into passes of at most T rows and runs them.
int run_pieces(Impl *im, Sequence *const *seqs, const int32_t *const *ids, const int *lens, int n, LogitsWanted want,
               float *const *logits, Err *err) {
    std::vector<Piece> pass;
    int room = im->T;
    for (int i = 0; i < n; i++) {
        for (int start = 0; start < lens[i];) {
            int take = std::min(room, lens[i] - start);
            pass.push_back({i, start, take, start + take == lens[i]});
            start += take;
            room -= take;
            if (room == 0) {
                if (run_pass(im, pass.data(), (int)pass.size(), seqs, ids, want, logits, err)) return -1;
                pass.clear();
                room = im->T;
            }
        }
    }
    if (!pass.empty() && run_pass(im, pass.data(), (int)pass.size(), seqs, ids, want, logits, err)) return -1;
    return 0;
}

// ------------------------------------------------------------ the interface

Sequence *cuda_begin(Backend *b, Err *err) {
    Impl *im = impl_of(b);
    if (observing(im) && im->M > 0) {
        // the observer sees the meta rows too (as model_begin does on the CPU): run them, no copy
        Sequence *s = seq_new(im, im->M + 1, err);
        if (!s) return nullptr;
        Sequence *seqs[1] = {s};
        int len = im->M;
        if (run_pieces(im, seqs, nullptr, &len, 1, LOGITS_NONE, nullptr, err)) {
            seq_free(im, s);
            err_prefix(err, "the meta tokens, observed");
            return nullptr;
        }
        return s;
    }
    if (im->prefix && im->prefix_offset != im->m->position_offset) {
        seq_free(im, im->prefix);  // the meta tokens' keys were rotated at the old positions
        im->prefix = nullptr;
    }
    if (im->M > 0 && !im->prefix) {
        // the meta tokens do not depend on the input: run them once
        Sequence *p = seq_new(im, im->M + 1, err);
        if (!p) return nullptr;
        Sequence *seqs[1] = {p};
        int len = im->M;
        if (run_pieces(im, seqs, nullptr, &len, 1, LOGITS_NONE, nullptr, err)) {
            seq_free(im, p);
            err_prefix(err, "computing the meta-token prefix");
            return nullptr;
        }
        im->prefix = p;
        im->prefix_offset = im->m->position_offset;
    }
    Sequence *s = seq_new(im, im->M + 1, err);
    if (!s) return nullptr;
    if (im->prefix && seq_copy(im, s, im->prefix, err)) {
        seq_free(im, s);
        return nullptr;
    }
    return s;
}

Sequence *cuda_fork(Backend *b, const Sequence *src, Err *err) {
    Impl *im = impl_of(b);
    Sequence *s = seq_new(im, src->cap, err);
    if (!s) return nullptr;
    if (seq_copy(im, s, src, err)) {
        seq_free(im, s);
        return nullptr;
    }
    return s;
}

void cuda_release(Backend *b, Sequence *s) {
    Impl *im = impl_of(b);
    cudaError_t e = cudaStreamSynchronize(im->stream);  // no queued work may still use it
    if (e != cudaSuccess) fprintf(stderr, "hymeval cuda: %s\n", cudaGetErrorString(e));
    seq_free(im, s);
}

int cuda_forward(Backend *b, Sequence *const *seqs, const int32_t *const *ids, const int *lens, int n,
                 LogitsWanted want, float *const *logits, Err *err) {
    Impl *im = impl_of(b);
    if (n < 0 || (n > 0 && (!seqs || !ids || !lens))) return err_set(err, "forward: bad arguments");
    if (want != LOGITS_NONE && !logits) return err_set(err, "forward: logits wanted but no output given");
    for (int i = 0; i < n; i++) {
        if (lens[i] < 0) return err_set(err, "forward: sequence %d has a negative length", i);
        if (lens[i] > 0 && want != LOGITS_NONE && !logits[i]) return err_set(err, "forward: no logits buffer for %d", i);
        for (int t = 0; t < lens[i]; t++)
            if (ids[i][t] < 0 || ids[i][t] >= im->V)
                return err_set(err, "token id %d at position %d of sequence %d is outside the vocabulary [0, %d)",
                               ids[i][t], t, i, im->V);
    }
    return run_pieces(im, seqs, ids, lens, n, want, logits, err);
}

int cuda_length(const Sequence *s) { return s->n_pos - s->n_meta; }

size_t cuda_cache_bytes(Backend *b, const Sequence *s) { return impl_of(b)->fixed_bytes + s->global_bytes; }

void impl_free(Impl *im) {
    if (!im) return;
    if (im->stream) cudaStreamSynchronize(im->stream);
    seq_free(im, im->prefix);
    dev_free(im, im->warena, im->warena_bytes);
    dev_free(im, im->scratch, im->scratch_bytes);
    dev_free(im, im->meta_d, im->meta_bytes);
    const size_t lr = (size_t)std::min(kLmRows, std::max(im->T, 1));
    dev_free(im, im->lm_in, lr * im->H * im->es);
    dev_free(im, im->lm_out, lr * im->V * im->es);
    dev_free(im, im->lm_f32, lr * im->V * 4);
    dev_free(im, im->lm_top, lr * 2 * 4);
    dev_free(im, im->obs_rows, im->obs_bytes);
    if (im->lm_host) cudaFreeHost(im->lm_host);
    dev_free(im, im->scan_ws, im->scan_ws_bytes);
    dev_free(im, im->dec_ws, im->dec_ws_bytes);
    if (im->graph_exec) cudaGraphExecDestroy(im->graph_exec);
    for (cudaEvent_t e : im->prof_events) cudaEventDestroy(e);
    if (im->gemm) hk_gemm_destroy(im->gemm);
    if (im->stream) cudaStreamDestroy(im->stream);
    delete im;
}

void cuda_close(Backend *b) {
    impl_free(impl_of(b));
    free(b);
}

}  // namespace

extern "C" Backend *backend_cuda_open(HymbaModel *m, Err *err) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        err_set(err, "--device cuda: no CUDA device (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "none found");
        return nullptr;
    }
    Backend *b = (Backend *)calloc(1, sizeof *b);
    Impl *im = new (std::nothrow) Impl();
    if (!b || !im) {
        free(b);
        delete im;
        err_set(err, "out of host memory");
        return nullptr;
    }
    const HymbaConfig *c = &m->cfg;
    im->m = m;
    im->cfg = c;
    im->dt = m->precision == PREC_FP32 ? HK_F32 : HK_BF16;
    im->es = hk_dtype_size(im->dt);
    im->rope_mode = (hk_rope_mode)m->precision;  // numbered alike (kernels.h)
    im->H = c->hidden_size, im->I = c->ssm_inner, im->N = c->ssm_state, im->R = c->ssm_dt_rank, im->K = c->ssm_conv;
    im->F = c->intermediate_size, im->V = c->vocab_size, im->nh = c->n_heads, im->nkv = c->n_kv_heads;
    im->dk = c->head_dim, im->dv = c->v_head_dim, im->M = c->n_meta, im->W = c->sliding_window, im->L = c->n_layers;
    im->XDB = im->R + 2 * im->N, im->kw = im->nkv * im->dk, im->vw = im->nkv * im->dv;
    im->mlp_cols = c->mlp_act == MLP_SILU ? 2 * im->F : im->F;
    im->rows_max = 1;
    for (int l = 0; l < im->L; l++) im->rows_max = std::max(im->rows_max, config_in_proj_split(c, l).rows);
    im->layers.assign(im->L, DevLayer{});
    b->impl = im;
    b->name = "cuda";
    b->model = m;

    cudaDeviceProp prop;
    size_t fr = 0, tot = 0;
    int dev = 0;
    if ((e = cudaGetDevice(&dev)) != cudaSuccess || (e = cudaGetDeviceProperties(&prop, dev)) != cudaSuccess ||
        (e = cudaStreamCreate(&im->stream)) != cudaSuccess) {
        err_set(err, "CUDA setup: %s", cudaGetErrorString(e));
        goto fail;
    }
    snprintf(b->device, sizeof b->device, "%.200s (%s)", prop.name, precision_name(m->precision));
    if (hk_gemm_create(&im->gemm, 0)) {
        err_set(err, "cuBLASLt: %s", hk_last_error());
        goto fail;
    }
    if (upload_weights(im, err)) goto fail;
    cache_layout(im);
    {
        // rows per pass: the default, or HYMEVAL_CUDA_PASS_TOKENS (tests use it
        // to force chunking), within an eighth of the free memory
        long t = kDefaultPassTokens;
        const char *env = getenv("HYMEVAL_CUDA_PASS_TOKENS");
        if (env && atol(env) > 0) t = atol(env);
        if ((e = cudaMemGetInfo(&fr, &tot)) != cudaSuccess) {
            err_set(err, "cudaMemGetInfo: %s", cudaGetErrorString(e));
            goto fail;
        }
        long fit = (long)(fr / 8 / per_token_bytes(im));
        if (!env && t > fit) t = std::max(64L, fit);
        im->T = (int)t;
    }
    if (alloc_scratch(im, err)) goto fail;
    hk_attn_decode_splits(1, 1, 1, 1, 1, 0, 0, nullptr, 0);  // caches the SM count outside any graph capture
    {
        const char *g = getenv("HYMEVAL_CUDA_GRAPHS");
        im->use_graphs = !(g && strcmp(g, "0") == 0);
        // fused decode (pass_layers) for passes of up to HYMEVAL_FUSE rows
        // (default 1: measured on the H100, 1.5B at 8k, it takes batch-1
        // decode from 3.63 to 3.45 ms a step but batch 2 from 3.88 to 4.00,
        // where every block redoing the norm of two rows costs more than the
        // launches it saves; 0: never), and only where every GEMV it
        // replaces is the weight-streaming kernel: the same bits
        const char *f = getenv("HYMEVAL_FUSE");
        const int fuse_max = f ? atoi(f) : 1;
        im->fuse_rows = 0;
        const char *fn = getenv("HYMEVAL_FUSE_NORM");
        im->fuse_norm = !(fn && strcmp(fn, "0") == 0);
        const char *rs = getenv("HYMEVAL_ROPE_STORE");
        im->rope_store = !(rs && strcmp(rs, "0") == 0);
        const char *ss = getenv("HYMEVAL_SSM_STEP");  // 1: every decode step, 0: none (see the top of the file)
        im->ssm_step_rows = !ss ? 8 : strcmp(ss, "1") == 0 ? INT_MAX : strcmp(ss, "0") == 0 ? 0 : 8;
        const char *fa = getenv("HYMEVAL_FUSE_AVG");
        im->fuse_avg = !(fa && strcmp(fa, "0") == 0);
        if (im->dt == HK_BF16 && fuse_max > 0) {
            const bool silu = c->mlp_act == MLP_SILU;
            int r = std::min(hk_gemv_rows(im->gemm, HK_GEMV_RMSNORM, im->H), hk_gemv_rows(im->gemm, HK_GEMV_X, im->I));
            r = std::min(r, hk_gemv_rows(im->gemm, HK_GEMV_FUSE_AVG, im->I));  // out_proj with the branch fusion
            r = std::min(r, hk_gemv_rows(im->gemm, HK_GEMV_CONV, im->I));      // x_proj with the conv
            if (im->F > 0) r = std::min(r, hk_gemv_rows(im->gemm, silu ? HK_GEMV_SWIGLU : HK_GEMV_X, im->F));
            im->fuse_rows = std::min(r, fuse_max);
        }
    }
    b->begin = cuda_begin;
    b->fork = cuda_fork;
    b->release = cuda_release;
    b->forward = cuda_forward;
    b->length = cuda_length;
    b->cache_bytes = cuda_cache_bytes;
    b->close = cuda_close;
    return b;
fail:
    impl_free(im);
    free(b);
    return nullptr;
}

extern "C" int backend_cuda_mem_stats(const Backend *b, CudaMemStats *out) {
    memset(out, 0, sizeof *out);
    if (!b || !b->name || strcmp(b->name, "cuda") != 0) return -1;
    const Impl *im = (const Impl *)b->impl;
    out->weights = im->weight_bytes;
    out->current = im->cur_bytes;
    out->peak = im->peak_bytes;
    out->pass_tokens = im->T;
    return 0;
}

extern "C" void backend_cuda_reset_peak(Backend *b) {
    if (!b || !b->name || strcmp(b->name, "cuda") != 0) return;
    Impl *im = (Impl *)b->impl;
    im->peak_bytes = im->cur_bytes;
}

extern "C" const char *const cuda_profile_part[PROF_N] = {"embed", "projections", "attention", "scan (conv, SSM)",
                                                             "mlp", "norms", "lm_head"};

extern "C" int backend_cuda_profile_enable(Backend *b, int on) {
    if (!b || !b->name || strcmp(b->name, "cuda") != 0) return -1;
    Impl *im = (Impl *)b->impl;
    im->profiling = on != 0;
    im->prof_used = 0;
    memset(&im->prof, 0, sizeof im->prof);
    return 0;
}

extern "C" int backend_cuda_profile_read(const Backend *b, CudaProfile *out) {
    memset(out, 0, sizeof *out);
    if (!b || !b->name || strcmp(b->name, "cuda") != 0) return -1;
    *out = ((const Impl *)b->impl)->prof;
    return 0;
}

extern "C" int backend_cuda_fuse_rows(const Backend *b) {
    if (!b || !b->name || strcmp(b->name, "cuda") != 0) return -1;
    return ((const Impl *)b->impl)->fuse_rows;
}

extern "C" int cuda_mem_info(size_t *free_bytes, size_t *total_bytes) {
    *free_bytes = *total_bytes = 0;
    return cudaMemGetInfo(free_bytes, total_bytes) == cudaSuccess ? 0 : -1;
}
