/* rope_drift.c: the `rope_drift` measurement kind (DESIGN.md §5, "RoPE
   drift"; research/eval-anchors.md §2; docs/tasks/measurements.md).

   RoPE is relative: shifting every position id by Δ (meta tokens included)
   must leave attention unchanged, and in exact arithmetic it does. In BF16
   it does not (AnchorAttention, arXiv 2411.13476). For N seeded sequences of
   length T, per precision mode, each Δ1 of a list is compared with Δ2:
     attn_diff         D(Δ1,Δ2) = Σ_{l,h} Σ_i n_i Σ_j |P_ij(Δ1) - P_ij(Δ2)|,
                       n_i = 1 / (keys visible to row i), every row of the
                       sequence (meta rows included);
     first_logit_diff  Σ_{l,h} mean_i |A_i,first(Δ1) - A_i,first(Δ2)| on the
                       pre-softmax scores q.k/sqrt(dk), to the first text
                       token (the rows that see it), and to the meta tokens
                       (mean over all meta keys, and the row's largest one);
     logit_kl, top1    of the final logits, Δ2 as the reference;
   plus, for the BF16 modes, the same attention difference against FP32 at
   Δ = 0, binned by absolute position.

   The two runs go in lockstep, chunk by chunk: the reference run (Δ2)
   stores the chunk's attention rows through the engine's observer
   (engine/observe.h), then each Δ1 run continues its own cache over the
   same chunk and compares row by row. Memory is chunk x layers x heads x
   keys; no T x T matrix is ever held. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "erf.h"
#include "backend.h"
#include "model.h"
#include "observe.h"
#include "task.h"

static const char *const drift_fields[] = {"num_sequences", "length", "delta2", "deltas", "modes",
                                           "source",        "bins",   "chunk",  NULL};
/* AnchorAttention Fig. 1: Δ1 with Δ2 = 16 */
static const int paper_deltas[] = {0, 2, 4, 6, 8, 10, 12, 14, 15, 17, 18, 20, 22, 50, 100, 200, 500, 1000, 2000};
enum { MAX_DELTA = 1 << 24, MAX_LENGTH = 1 << 20, ROW_BUDGET_FLOATS = 16 << 20 };

typedef struct {
    int num_sequences, length, delta2, bins, chunk;
    int *deltas, n_deltas;
    char **modes;
    int n_modes;
    const char *source;
} DriftParams;

static void drift_params_free(DriftParams *p) {
    free(p->deltas);
    strv_free(p->modes, p->n_modes);
    memset(p, 0, sizeof *p);
}

static int drift_params(const TaskDef *t, DriftParams *p, Err *err) {
    memset(p, 0, sizeof *p);
    if (task_int(t, "num_sequences", 2, 1, 10000, &p->num_sequences, err) ||
        task_int(t, "length", 512, 2, MAX_LENGTH, &p->length, err) ||
        task_int(t, "delta2", 16, 0, MAX_DELTA, &p->delta2, err) ||
        task_int(t, "bins", 16, 1, 4096, &p->bins, err) || task_int(t, "chunk", 0, 0, MAX_LENGTH, &p->chunk, err) ||
        task_string(t, "source", "prose", measure_sources, &p->source, err))
        return -1;
    /* default Δ list: the paper's, plus powers of two up to the length */
    int fallback[64], nf = 0;
    for (size_t i = 0; i < sizeof paper_deltas / sizeof *paper_deltas; i++) fallback[nf++] = paper_deltas[i];
    for (long d = 1; d <= p->length && nf < 64; d *= 2) {
        int dup = 0;
        for (int i = 0; i < nf; i++) dup |= fallback[i] == d;
        if (!dup) fallback[nf++] = (int)d;
    }
    if (measure_int_list(t, "deltas", fallback, nf, 0, MAX_DELTA, 1, &p->deltas, &p->n_deltas, err)) return -1;
    if (measure_modes(t, &p->modes, &p->n_modes, err)) goto fail;
    return 0;
fail:
    drift_params_free(p);
    return -1;
}

static int drift_validate(const TaskDef *t, Err *err) {
    DriftParams p;
    if (drift_params(t, &p, err)) return -1;
    drift_params_free(&p);
    return 0;
}

static int drift_build(const TaskDef *t, const Tokenizer *tok, ExampleList *out, Err *err) {
    (void)tok;
    DriftParams p;
    if (drift_params(t, &p, err)) return -1;
    for (int i = 0; i < p.n_modes; i++) {
        Example *ex = examples_push(out, err);
        if (!ex) {
            drift_params_free(&p);
            return -1;
        }
        ex->request = REQ_MEASURE;
        snprintf(ex->id, sizeof ex->id, "%s", p.modes[i]);
        snprintf(ex->group, sizeof ex->group, "%s", p.modes[i]);
        ex->target_tokens = ex->prompt_tokens = p.length;
    }
    drift_params_free(&p);
    return 0;
}

/* ---------------------------------------------------------------- lockstep runs */

typedef struct {
    const HymbaConfig *cfg;
    int L, nh, M, V;
    int *key_cap;       /* [L] keys a row of layer l can see at most */
    size_t *key_off;    /* [L] where layer l's heads start in a row block */
    size_t row_block;   /* floats per row */
    int rows;           /* chunk capacity in rows */
    int row0;           /* sequence position of the chunk's first row */
    int storing;        /* 1: the reference run stores; 0: a run compares */
    /* the reference run's rows */
    float *ref;         /* [rows][row_block] probabilities */
    float *ref_logit;   /* [rows][L][nh][1 + M]: score to the first text key (NAN: not visible), then to each meta key */
    int *ref_nkeys;     /* [rows][L][nh] */
    /* a compared run's per-row results */
    double *c_attn;     /* n_i Σ_j |Δp| (NAN: the key sets differ, a bug) */
    double *c_first;    /* |Δ score| to the first text key, NAN when not visible */
    double *c_meta;     /* mean over the meta keys of |Δ score| (text rows) */
    double *c_meta_max; /* |Δ score| to the meta key with the largest reference score */
} Lock;

static size_t lslot(const Lock *k, int row, int layer, int head) {
    return ((size_t)row * k->L + layer) * k->nh + head;
}

static void lock_free(Lock *k) {
    free(k->key_cap), free(k->key_off), free(k->ref), free(k->ref_logit), free(k->ref_nkeys);
    free(k->c_attn), free(k->c_first), free(k->c_meta), free(k->c_meta_max);
    memset(k, 0, sizeof *k);
}

static int lock_init(Lock *k, const HymbaConfig *cfg, int T, int chunk, Err *err) {
    memset(k, 0, sizeof *k);
    k->cfg = cfg;
    k->L = cfg->n_layers;
    k->nh = cfg->n_heads;
    k->M = cfg->n_meta;
    k->V = cfg->vocab_size;
    int S = cfg->n_meta + T;
    k->key_cap = calloc((size_t)k->L, sizeof *k->key_cap);
    k->key_off = calloc((size_t)k->L, sizeof *k->key_off);
    if (!k->key_cap || !k->key_off) goto oom;
    for (int l = 0; l < k->L; l++) {
        int cap = 0;
        if (layer_has_attn(cfg, l)) {
            cap = S;
            if (!cfg->is_global[l] && cfg->n_meta + cfg->sliding_window + 1 < S) cap = cfg->n_meta + cfg->sliding_window + 1;
        }
        k->key_cap[l] = cap;
        k->key_off[l] = k->row_block;
        k->row_block += (size_t)cap * k->nh;
    }
    int rows = chunk > 0 ? chunk : (int)(ROW_BUDGET_FLOATS / (k->row_block ? k->row_block : 1));
    if (rows < 1) rows = 1;
    if (rows > T) rows = T;
    if (rows < k->M) rows = k->M; /* the meta tokens come as one chunk */
    k->rows = rows;
    size_t slots = (size_t)rows * k->L * k->nh;
    k->ref = malloc(sizeof *k->ref * ((size_t)rows * k->row_block + 1));
    k->ref_logit = malloc(sizeof *k->ref_logit * slots * (1 + (size_t)k->M));
    k->ref_nkeys = calloc(slots, sizeof *k->ref_nkeys);
    k->c_attn = calloc(slots, sizeof(double));
    k->c_first = calloc(slots, sizeof(double));
    k->c_meta = calloc(slots, sizeof(double));
    k->c_meta_max = calloc(slots, sizeof(double));
    if (!k->ref || !k->ref_logit || !k->ref_nkeys || !k->c_attn || !k->c_first || !k->c_meta || !k->c_meta_max)
        goto oom;
    return 0;
oom:
    lock_free(k);
    return err_set(err, "out of memory for the drift rows (%d rows of %zu floats)", k->rows, k->row_block);
}

/* Where the first text key sits in a row's keys, or -1 when it is not visible. */
static int first_text_key(const Lock *k, int q_pos, int n_keys, const int *key_pos) {
    int metas = k->M < q_pos + 1 ? k->M : q_pos + 1;
    return n_keys > metas && key_pos[metas] == k->M ? metas : -1;
}

static void lock_attn_row(void *user, int layer, int head, int q_pos, int n_keys, const int *key_pos,
                          const float *scores, const float *probs) {
    Lock *k = user;
    int row = q_pos - k->row0;
    if (row < 0 || row >= k->rows) return; /* cannot happen: chunks fit */
    size_t slot = lslot(k, row, layer, head);
    float *P = k->ref + (size_t)row * k->row_block + k->key_off[layer] + (size_t)head * k->key_cap[layer];
    float *A = k->ref_logit + slot * (1 + (size_t)k->M);
    int first = first_text_key(k, q_pos, n_keys, key_pos);
    int metas = k->M < n_keys ? k->M : n_keys;
    if (k->storing) {
        if (n_keys > k->key_cap[layer]) {
            k->ref_nkeys[slot] = -1;
            return;
        }
        memcpy(P, probs, sizeof *P * (size_t)n_keys);
        k->ref_nkeys[slot] = n_keys;
        A[0] = first >= 0 ? scores[first] : NAN;
        for (int m = 0; m < metas; m++) A[1 + m] = scores[m];
        return;
    }
    if (k->ref_nkeys[slot] != n_keys) {
        k->c_attn[slot] = NAN;
        return;
    }
    double sum = 0;
    for (int j = 0; j < n_keys; j++) sum += fabs((double)probs[j] - P[j]);
    k->c_attn[slot] = sum / n_keys;
    k->c_first[slot] = first >= 0 ? fabs((double)scores[first] - A[0]) : NAN;
    if (q_pos >= k->M && k->M > 0) {
        double all = 0;
        int best = 0;
        for (int m = 0; m < k->M; m++) {
            all += fabs((double)scores[m] - A[1 + m]);
            if (A[1 + m] > A[1 + best]) best = m;
        }
        k->c_meta[slot] = all / k->M;
        k->c_meta_max[slot] = fabs((double)scores[best] - A[1 + best]);
    }
}

/* KL(softmax(ref) || softmax(x)) over V logits, in double, and whether the argmaxes agree. */
static double logit_kl(const float *ref, const float *x, int V, int *agree) {
    double mr = -INFINITY, mx = -INFINITY;
    int ar = 0, ax = 0;
    for (int i = 0; i < V; i++) {
        if (ref[i] > mr) mr = ref[i], ar = i;
        if (x[i] > mx) mx = x[i], ax = i;
    }
    double zr = 0, zx = 0;
    for (int i = 0; i < V; i++) zr += exp(ref[i] - mr), zx += exp(x[i] - mx);
    double lzr = log(zr), lzx = log(zx), kl = 0;
    for (int i = 0; i < V; i++) {
        double lr = ref[i] - mr - lzr, lx = x[i] - mx - lzx;
        kl += exp(lr) * (lr - lx);
    }
    *agree = ar == ax;
    return kl > 0 ? kl : 0.0; /* rounding can give -1e-17 for identical inputs' neighbours */
}

/* What one sequence's comparisons add up to, per compared run. */
typedef struct {
    int n_runs, L, bins;
    /* per run and layer: sums over rows and heads */
    double *attn, *first, *first_n, *meta, *meta_max, *meta_n; /* [n_runs][L] */
    double *kl, *top1, *text_rows;                              /* [n_runs] */
    /* by absolute position (the vs-FP32 comparison): per bin */
    double *pos_attn, *pos_rows, *pos_kl, *pos_text;            /* [bins] */
    int S;
    int bad;                                                    /* key sets differed somewhere */
} Sums;

static void sums_free(Sums *s) {
    free(s->attn), free(s->first), free(s->first_n), free(s->meta), free(s->meta_max), free(s->meta_n);
    free(s->kl), free(s->top1), free(s->text_rows);
    free(s->pos_attn), free(s->pos_rows), free(s->pos_kl), free(s->pos_text);
    memset(s, 0, sizeof *s);
}

static int sums_init(Sums *s, int n_runs, int L, int bins, int S, Err *err) {
    memset(s, 0, sizeof *s);
    s->n_runs = n_runs, s->L = L, s->bins = bins, s->S = S;
    size_t nl = (size_t)n_runs * L;
    s->attn = calloc(nl, sizeof(double)), s->first = calloc(nl, sizeof(double));
    s->first_n = calloc(nl, sizeof(double)), s->meta = calloc(nl, sizeof(double));
    s->meta_max = calloc(nl, sizeof(double)), s->meta_n = calloc(nl, sizeof(double));
    s->kl = calloc((size_t)n_runs, sizeof(double)), s->top1 = calloc((size_t)n_runs, sizeof(double));
    s->text_rows = calloc((size_t)n_runs, sizeof(double));
    s->pos_attn = calloc((size_t)bins, sizeof(double)), s->pos_rows = calloc((size_t)bins, sizeof(double));
    s->pos_kl = calloc((size_t)bins, sizeof(double)), s->pos_text = calloc((size_t)bins, sizeof(double));
    if (!s->attn || !s->first || !s->first_n || !s->meta || !s->meta_max || !s->meta_n || !s->kl || !s->top1 ||
        !s->text_rows || !s->pos_attn || !s->pos_rows || !s->pos_kl || !s->pos_text) {
        sums_free(s);
        return err_set(err, "out of memory");
    }
    return 0;
}

/* Adds compared run r's chunk (n rows from lock->row0) into s; logits
   (text rows only) may be NULL for the meta chunk. */
static void sums_add(Sums *s, const Lock *k, int r, int n, const float *ref_logits, const float *logits) {
    for (int row = 0; row < n; row++) {
        int q_pos = k->row0 + row;
        int text = q_pos >= k->M;
        double row_attn = 0;
        for (int l = 0; l < k->L; l++) {
            if (!layer_has_attn(k->cfg, l)) continue;
            size_t rl = (size_t)r * k->L + l;
            for (int h = 0; h < k->nh; h++) {
                size_t slot = lslot(k, row, l, h);
                if (isnan(k->c_attn[slot])) s->bad = 1;
                s->attn[rl] += k->c_attn[slot];
                row_attn += k->c_attn[slot];
                if (!text) continue;
                if (!isnan(k->c_first[slot])) s->first[rl] += k->c_first[slot], s->first_n[rl] += 1;
                if (k->M > 0) s->meta[rl] += k->c_meta[slot], s->meta_max[rl] += k->c_meta_max[slot], s->meta_n[rl] += 1;
            }
        }
        int bin = (int)((long)q_pos * s->bins / s->S);
        s->pos_attn[bin] += row_attn;
        s->pos_rows[bin] += 1;
        if (text && logits) {
            int agree;
            size_t off = (size_t)row * k->V;
            double kl = logit_kl(ref_logits + off, logits + off, k->V, &agree);
            s->kl[r] += kl;
            s->top1[r] += agree;
            s->text_rows[r] += 1;
            s->pos_kl[bin] += kl;
            s->pos_text[bin] += 1;
        }
    }
}

/* A run: a backend (the CPU forward, or the GPU's, which reports the same
   attention rows) and the shift of every position id. */
typedef struct {
    Backend *b;
    int offset;
} Run;

static void run_select(const Run *r, const HymbaObserver *obs) {
    r->b->model->observer = obs;
    r->b->model->position_offset = r->offset;
}

static void run_reset(const Run *r) { r->b->model->observer = NULL, r->b->model->position_offset = 0; }

/* Feeds n tokens to *s with every row's logits (the observer sees the rows). */
static int run_feed(const Run *r, Sequence **s, const int32_t *ids, int n, float *logits, Err *err) {
    return r->b->forward(r->b, s, &ids, &n, 1, LOGITS_ALL, &logits, err);
}

static void lock_clear(Lock *k) {
    size_t slots = (size_t)k->rows * k->L * k->nh;
    memset(k->c_attn, 0, slots * sizeof(double));
    memset(k->c_meta, 0, slots * sizeof(double));
    memset(k->c_meta_max, 0, slots * sizeof(double));
    for (size_t i = 0; i < slots; i++) k->c_first[i] = NAN;
}

/* The reference run and n compared runs over one sequence, chunk by chunk. */
static int lockstep(Lock *k, Run ref, const Run *runs, int n, const int32_t *ids, int T, Sums *s, Err *err) {
    HymbaObserver obs = {.user = k, .attn_row = lock_attn_row};
    Sequence *rseq = NULL, **seqs = calloc((size_t)n, sizeof *seqs);
    float *ref_logits = malloc(sizeof(float) * (size_t)k->rows * k->V);
    float *logits = malloc(sizeof(float) * (size_t)k->rows * k->V);
    int rc = -1;
    if (!seqs || !ref_logits || !logits) {
        err_set(err, "out of memory");
        goto done;
    }
    /* the meta tokens: begin runs them with the observer set */
    k->row0 = 0;
    k->storing = 1;
    run_select(&ref, &obs);
    if (!(rseq = ref.b->begin(ref.b, err))) goto done;
    for (int r = 0; r < n; r++) {
        k->storing = 0;
        lock_clear(k);
        run_select(&runs[r], &obs);
        if (!(seqs[r] = runs[r].b->begin(runs[r].b, err))) goto done;
        sums_add(s, k, r, k->M, NULL, NULL);
    }
    for (int start = 0; start < T;) {
        int len = T - start < k->rows ? T - start : k->rows;
        k->row0 = k->M + start;
        k->storing = 1;
        run_select(&ref, &obs);
        if (run_feed(&ref, &rseq, ids + start, len, ref_logits, err)) goto done;
        for (int r = 0; r < n; r++) {
            k->storing = 0;
            lock_clear(k);
            run_select(&runs[r], &obs);
            if (run_feed(&runs[r], &seqs[r], ids + start, len, logits, err)) goto done;
            sums_add(s, k, r, len, ref_logits, logits);
        }
        start += len;
    }
    rc = 0;
done:
    run_reset(&ref);
    for (int r = 0; r < n; r++) run_reset(&runs[r]);
    if (rseq) ref.b->release(ref.b, rseq);
    for (int r = 0; seqs && r < n; r++)
        if (seqs[r]) runs[r].b->release(runs[r].b, seqs[r]);
    free(seqs), free(ref_logits), free(logits);
    return rc;
}

/* ---------------------------------------------------------------- measure */

/* Spearman's rank correlation of x and y (average ranks for ties). */
static void ranks(const double *v, int n, double *out) {
    for (int i = 0; i < n; i++) {
        int less = 0, equal = 0;
        for (int j = 0; j < n; j++) less += v[j] < v[i], equal += v[j] == v[i];
        out[i] = less + (equal + 1) / 2.0;
    }
}

static double spearman(const double *x, const double *y, int n) {
    if (n < 3) return NAN;
    double *rx = malloc(sizeof *rx * (size_t)n), *ry = malloc(sizeof *ry * (size_t)n);
    if (!rx || !ry) return free(rx), free(ry), NAN;
    ranks(x, n, rx), ranks(y, n, ry);
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) mx += rx[i] / n, my += ry[i] / n;
    for (int i = 0; i < n; i++) {
        sxy += (rx[i] - mx) * (ry[i] - my);
        sxx += (rx[i] - mx) * (rx[i] - mx);
        syy += (ry[i] - my) * (ry[i] - my);
    }
    free(rx), free(ry);
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

/* Curves over Δ, summed over sequences (divided at the end). */
typedef struct {
    int nd, L;
    double *attn, *attn_sq, *first, *meta, *meta_max, *kl, *top1;  /* [nd] */
    double *layer_attn, *layer_first, *layer_meta;                  /* [nd][L] */
    double *type_attn[2], *type_first[2], *type_meta[2];            /* [nd], 0 = global, 1 = sliding window */
} Curves;

static void curves_free(Curves *c) {
    double **all[] = {&c->attn, &c->attn_sq, &c->first, &c->meta, &c->meta_max, &c->kl, &c->top1,
                      &c->layer_attn, &c->layer_first, &c->layer_meta, &c->type_attn[0], &c->type_attn[1],
                      &c->type_first[0], &c->type_first[1], &c->type_meta[0], &c->type_meta[1]};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(*all[i]), *all[i] = NULL;
}

static int curves_init(Curves *c, int nd, int L) {
    memset(c, 0, sizeof *c);
    c->nd = nd, c->L = L;
    double **per_d[] = {&c->attn, &c->attn_sq, &c->first, &c->meta, &c->meta_max, &c->kl, &c->top1,
                        &c->type_attn[0], &c->type_attn[1], &c->type_first[0], &c->type_first[1],
                        &c->type_meta[0], &c->type_meta[1]};
    int ok = 1;
    for (size_t i = 0; i < sizeof per_d / sizeof *per_d; i++) ok &= (*per_d[i] = calloc((size_t)nd, sizeof(double))) != NULL;
    ok &= (c->layer_attn = calloc((size_t)nd * L, sizeof(double))) != NULL;
    ok &= (c->layer_first = calloc((size_t)nd * L, sizeof(double))) != NULL;
    ok &= (c->layer_meta = calloc((size_t)nd * L, sizeof(double))) != NULL;
    if (!ok) curves_free(c);
    return ok ? 0 : -1;
}

/* One sequence's sums into the curves. first/meta per (layer, head) are
   means over the rows that see the key; Σ_h of means = nh x sum / count. */
static void curves_add(Curves *c, const Sums *s, const HymbaConfig *cfg) {
    for (int d = 0; d < c->nd; d++) {
        double a = 0, f = 0, me = 0, mm = 0;
        for (int l = 0; l < c->L; l++) {
            size_t i = (size_t)d * c->L + l;
            double la = s->attn[i];
            double lf = s->first_n[i] > 0 ? cfg->n_heads * s->first[i] / s->first_n[i] : 0;
            double lm = s->meta_n[i] > 0 ? cfg->n_heads * s->meta[i] / s->meta_n[i] : 0;
            double lmm = s->meta_n[i] > 0 ? cfg->n_heads * s->meta_max[i] / s->meta_n[i] : 0;
            a += la, f += lf, me += lm, mm += lmm;
            c->layer_attn[i] += la, c->layer_first[i] += lf, c->layer_meta[i] += lm;
            if (layer_has_attn(cfg, l)) {
                int type = cfg->is_global[l] ? 0 : 1;
                c->type_attn[type][d] += la, c->type_first[type][d] += lf, c->type_meta[type][d] += lm;
            }
        }
        c->attn[d] += a, c->attn_sq[d] += a * a, c->first[d] += f, c->meta[d] += me, c->meta_max[d] += mm;
        c->kl[d] += s->text_rows[d] > 0 ? s->kl[d] / s->text_rows[d] : 0;
        c->top1[d] += s->text_rows[d] > 0 ? s->top1[d] / s->text_rows[d] : 0;
    }
}

static cJSON *scaled(const double *v, int n, double scale) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i] * scale));
    return a;
}

static int drift_measure(const TaskDef *t, const MeasureEnv *env, const Example *ex, Scores *out, cJSON **extra,
                         Err *err) {
    HymbaModel *m = env->model;
    DriftParams p;
    if (drift_params(t, &p, err)) return -1;
    Precision mode;
    if (precision_parse(ex->id, &mode)) {
        drift_params_free(&p);
        return err_set(err, "rope_drift example \"%s\" does not name a precision mode", ex->id);
    }
    const HymbaConfig *cfg = &m->cfg;
    const int T = p.length, L = cfg->n_layers, nd = p.n_deltas, S = cfg->n_meta + T;
    HymbaModel *mm = NULL, *fp = NULL;
    Backend *bm = NULL, *bfp = NULL, *own_bm = NULL, *own_bfp = NULL;
    int own_mm = 0, own_fp = 0, rc = -1, have_lock = 0, have_curves = 0, have_pos = 0;
    int saved_offset = m->position_offset;
    const HymbaObserver *saved_obs = m->observer;
    int32_t *ids = NULL;
    Run *runs = NULL;
    Lock lock;
    Curves cv;
    Sums pos = {0};
    double vs_total = 0;
    if (!(mm = measure_model_at(env, mode, &own_mm, err))) goto done;
    if (mode != PREC_FP32 && !(fp = measure_model_at(env, PREC_FP32, &own_fp, err))) goto done;
    /* the runs go through the run's backend (the GPU reports the same attention rows) */
    if (!(bm = measure_backend_on(env, mm, &own_bm, err))) goto done;
    if (fp && !(bfp = measure_backend_on(env, fp, &own_bfp, err))) goto done;
    if (lock_init(&lock, cfg, T, p.chunk, err)) goto done;
    have_lock = 1;
    if (curves_init(&cv, nd, L)) {
        err_set(err, "out of memory");
        goto done;
    }
    have_curves = 1;
    if (sums_init(&pos, 1, L, p.bins, S, err)) goto done;
    have_pos = 1;
    runs = malloc(sizeof *runs * (size_t)nd);
    if (!runs) {
        err_set(err, "out of memory");
        goto done;
    }
    for (int d = 0; d < nd; d++) runs[d] = (Run){bm, p.deltas[d]};
    for (int seq = 0; seq < p.num_sequences; seq++) {
        free(ids);
        ids = NULL;
        if (measure_sequence(m, p.source, measure_seed(t->seed, (uint64_t)T, (uint64_t)seq), T, &ids, err)) goto done;
        Sums s;
        if (sums_init(&s, nd, L, p.bins, S, err)) goto done;
        if (lockstep(&lock, (Run){bm, p.delta2}, runs, nd, ids, T, &s, err)) {
            sums_free(&s);
            goto done;
        }
        if (s.bad) {
            sums_free(&s);
            err_set(err, "internal error: the shifted and reference runs saw different key sets");
            goto done;
        }
        curves_add(&cv, &s, cfg);
        sums_free(&s);
        if (fp) { /* the plain BF16-vs-FP32 difference at Δ = 0, by absolute position */
            Run bf = {bm, 0};
            if (lockstep(&lock, (Run){bfp, 0}, &bf, 1, ids, T, &pos, err)) goto done;
        }
    }
    /* means over sequences */
    double inv = 1.0 / p.num_sequences;
    int big = nd - 1; /* the largest Δ1 that is not Δ2 */
    while (big > 0 && p.deltas[big] == p.delta2) big--;
    int zero = -1;
    for (int d = 0; d < nd; d++)
        if (p.deltas[d] == 0) zero = d;
    double *sd = calloc((size_t)nd, sizeof *sd), *dist = calloc((size_t)nd, sizeof *dist),
           *mean = calloc((size_t)nd, sizeof *mean);
    if (!sd || !dist || !mean) {
        free(sd), free(dist), free(mean);
        err_set(err, "out of memory");
        goto done;
    }
    int ng = 0;
    for (int d = 0; d < nd; d++) {
        double mu = cv.attn[d] * inv, var = cv.attn_sq[d] * inv - mu * mu;
        sd[d] = p.num_sequences > 1 && var > 0 ? sqrt(var * p.num_sequences / (p.num_sequences - 1)) : 0;
        if (p.deltas[d] != p.delta2) {
            dist[ng] = fabs((double)p.deltas[d] - p.delta2);
            mean[ng++] = mu;
        }
    }
    double rho = spearman(dist, mean, ng);
    free(dist), free(mean);

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "mode", ex->id);
    cJSON_AddNumberToObject(root, "length", T);
    cJSON_AddNumberToObject(root, "num_sequences", p.num_sequences);
    cJSON_AddStringToObject(root, "source", p.source);
    cJSON_AddNumberToObject(root, "meta_tokens", cfg->n_meta);
    cJSON_AddNumberToObject(root, "delta2", p.delta2);
    cJSON_AddItemToObject(root, "deltas", measure_json_ints(p.deltas, nd));
    cJSON_AddItemToObject(root, "attn_diff", scaled(cv.attn, nd, inv));
    cJSON_AddItemToObject(root, "attn_diff_sd", measure_json_doubles(sd, nd));
    cJSON_AddItemToObject(root, "first_logit_diff", scaled(cv.first, nd, inv));
    if (cfg->n_meta > 0) {
        cJSON_AddItemToObject(root, "meta_logit_diff", scaled(cv.meta, nd, inv));
        cJSON_AddItemToObject(root, "meta_max_logit_diff", scaled(cv.meta_max, nd, inv));
    }
    cJSON_AddItemToObject(root, "logit_kl", scaled(cv.kl, nd, inv));
    cJSON_AddItemToObject(root, "top1_agree", scaled(cv.top1, nd, inv));
    if (isfinite(rho)) cJSON_AddNumberToObject(root, "growth_spearman", rho);
    else cJSON_AddNullToObject(root, "growth_spearman");
    free(sd);
    cJSON *by_type = cJSON_AddObjectToObject(root, "by_type");
    static const char *const type_names[] = {"global", "sliding_window"};
    for (int ty = 0; ty < 2; ty++) {
        int present = 0;
        for (int l = 0; l < L; l++) present |= layer_has_attn(cfg, l) && (cfg->is_global[l] ? 0 : 1) == ty;
        if (!present) continue;
        cJSON *o = cJSON_AddObjectToObject(by_type, type_names[ty]);
        cJSON_AddItemToObject(o, "attn_diff", scaled(cv.type_attn[ty], nd, inv));
        cJSON_AddItemToObject(o, "first_logit_diff", scaled(cv.type_first[ty], nd, inv));
        if (cfg->n_meta > 0) cJSON_AddItemToObject(o, "meta_logit_diff", scaled(cv.type_meta[ty], nd, inv));
    }
    cJSON *per_layer = cJSON_AddObjectToObject(root, "per_layer");
    const char *const names[] = {"attn_diff", "first_logit_diff", "meta_logit_diff"};
    const double *src[] = {cv.layer_attn, cv.layer_first, cv.layer_meta};
    for (int q = 0; q < (cfg->n_meta > 0 ? 3 : 2); q++) {
        cJSON *arr = cJSON_AddArrayToObject(per_layer, names[q]);
        for (int l = 0; l < L; l++) {
            if (!layer_has_attn(cfg, l)) {
                cJSON_AddItemToArray(arr, cJSON_CreateNull());
                continue;
            }
            cJSON *row = cJSON_CreateArray();
            for (int d = 0; d < nd; d++) cJSON_AddItemToArray(row, cJSON_CreateNumber(src[q][(size_t)d * L + l] * inv));
            cJSON_AddItemToArray(arr, row);
        }
    }
    if (fp) {
        cJSON *vs = cJSON_AddObjectToObject(root, "vs_fp32");
        cJSON *starts = cJSON_AddArrayToObject(vs, "bin_start"), *va = cJSON_AddArrayToObject(vs, "attn_diff_per_row"),
              *vk = cJSON_AddArrayToObject(vs, "logit_kl");
        for (int b = 0; b < p.bins; b++) {
            cJSON_AddItemToArray(starts, cJSON_CreateNumber((double)((long)b * S / p.bins)));
            cJSON_AddItemToArray(va, cJSON_CreateNumber(pos.pos_rows[b] > 0 ? pos.pos_attn[b] / pos.pos_rows[b] : 0));
            cJSON_AddItemToArray(vk, cJSON_CreateNumber(pos.pos_text[b] > 0 ? pos.pos_kl[b] / pos.pos_text[b] : 0));
        }
        for (int l = 0; l < L; l++) vs_total += pos.attn[l];
        vs_total *= inv;
        cJSON_AddNumberToObject(vs, "attn_diff", vs_total);
        cJSON_AddNumberToObject(vs, "logit_kl", pos.text_rows[0] > 0 ? pos.kl[0] / pos.text_rows[0] : 0);
        cJSON_AddNumberToObject(vs, "top1_agree", pos.text_rows[0] > 0 ? pos.top1[0] / pos.text_rows[0] : 0);
    }

    /* headline numbers: at the largest Δ1 (and Δ1 = 0, the paper's Fig. 1 middle) */
    scores_add(out, "attn_diff", cv.attn[big] * inv);
    if (zero >= 0) scores_add(out, "attn_diff_d0", cv.attn[zero] * inv);
    scores_add(out, "first_logit_diff", cv.first[big] * inv);
    if (cfg->n_meta > 0) {
        scores_add(out, "meta_logit_diff", cv.meta[big] * inv);
        scores_add(out, "meta_max_logit_diff", cv.meta_max[big] * inv);
    }
    scores_add(out, "logit_kl", cv.kl[big] * inv);
    scores_add(out, "top1_agree", cv.top1[big] * inv);
    if (fp) scores_add(out, "bf16_vs_fp32_attn", vs_total);
    cJSON_AddNumberToObject(root, "headline_delta", p.deltas[big]);
    *extra = root;
    rc = 0;
done:
    if (have_lock) lock_free(&lock);
    if (have_curves) curves_free(&cv);
    if (have_pos) sums_free(&pos);
    free(runs);
    free(ids);
    backend_close(own_bm);
    backend_close(own_bfp);
    if (own_mm) model_free(mm);
    if (own_fp) model_free(fp);
    m->position_offset = saved_offset;
    m->observer = saved_obs;
    drift_params_free(&p);
    return rc;
}

const TaskKind kind_rope_drift = {
    .name = "rope_drift",
    .fields = drift_fields,
    .validate = drift_validate,
    .build = drift_build,
    .score = measure_no_score,
    .measure = drift_measure,
};
