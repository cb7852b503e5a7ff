/* bench.c: see bench.h. */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values (sorts a copy: the caller keeps them in run order). */
static double median(const double *v, int n) {
    double *s = malloc(sizeof *s * (size_t)n);
    if (!s) return v[0];
    memcpy(s, v, sizeof *s * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

/* One run's figures. */
typedef struct {
    double begin_s, prefill_s, ttft_s, decode_s;
    size_t cache_bytes, dev_used;
} RunFigures;

/* Buffers of one batch size. */
typedef struct {
    int B, L;
    int32_t **prompts, *next;
    const int32_t **feed;
    int *lens, *ones;
    float *logits; /* [B][V] */
    float **rows;
    Sequence **seqs;
} Batch;

static void batch_free(Batch *bt) {
    for (int i = 0; bt->prompts && i < bt->B; i++) free(bt->prompts[i]);
    free(bt->prompts), free(bt->next), free(bt->feed), free(bt->lens), free(bt->ones);
    free(bt->logits), free(bt->rows), free(bt->seqs);
    memset(bt, 0, sizeof *bt);
}

static int batch_alloc(Batch *bt, int B, int L, int V, uint64_t seed) {
    memset(bt, 0, sizeof *bt);
    bt->B = B, bt->L = L;
    bt->prompts = calloc((size_t)B, sizeof *bt->prompts);
    bt->next = calloc((size_t)B, sizeof *bt->next);
    bt->feed = calloc((size_t)B, sizeof *bt->feed);
    bt->lens = calloc((size_t)B, sizeof *bt->lens);
    bt->ones = calloc((size_t)B, sizeof *bt->ones);
    bt->logits = malloc(sizeof(float) * (size_t)B * V);
    bt->rows = calloc((size_t)B, sizeof *bt->rows);
    bt->seqs = calloc((size_t)B, sizeof *bt->seqs);
    if (!bt->prompts || !bt->next || !bt->feed || !bt->lens || !bt->ones || !bt->logits || !bt->rows || !bt->seqs)
        return -1;
    uint64_t s = seed;
    for (int i = 0; i < B; i++) {
        bt->prompts[i] = malloc(sizeof(int32_t) * (size_t)L);
        if (!bt->prompts[i]) return -1;
        for (int t = 0; t < L; t++) { /* splitmix64 ids, away from the special ids 0..2 */
            uint64_t z = (s += 0x9e3779b97f4a7c15ull);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            z ^= z >> 31;
            bt->prompts[i][t] = (int32_t)(3 + z % (uint64_t)(V > 3 ? V - 3 : 1));
        }
        bt->ones[i] = 1;
        bt->rows[i] = bt->logits + (size_t)i * V;
        bt->feed[i] = &bt->next[i];
    }
    return 0;
}

/* begin + prefill of the first L prompt tokens + n_decode greedy steps; the
   backend picks each step's token (LOGITS_TOP1), as generate_batch has it do. */
static int run_once(Backend *b, Batch *bt, int L, int n_decode, const BenchSpec *spec, RunFigures *f, Err *err) {
    const int B = bt->B;
    int rc = -1;
    memset(f, 0, sizeof *f);
    for (int i = 0; i < B; i++) bt->lens[i] = L;
    double t0 = now_s();
    for (int i = 0; i < B; i++)
        if (!(bt->seqs[i] = b->begin(b, err))) goto done;
    double t1 = now_s();
    if (b->forward(b, bt->seqs, (const int32_t *const *)bt->prompts, bt->lens, B, LOGITS_TOP1, bt->rows, err)) goto done;
    double t2 = now_s();
    for (int i = 0; i < B; i++) bt->next[i] = (int32_t)bt->rows[i][0];
    double t3 = now_s();
    f->begin_s = t1 - t0;
    f->prefill_s = t2 - t1;
    f->ttft_s = t3 - t0;
    for (int step = 0; step < n_decode; step++) {
        if (b->forward(b, bt->seqs, bt->feed, bt->ones, B, LOGITS_TOP1, bt->rows, err)) goto done;
        for (int i = 0; i < B; i++) bt->next[i] = (int32_t)bt->rows[i][0];
    }
    f->decode_s = now_s() - t3;
    f->cache_bytes = b->cache_bytes(b, bt->seqs[0]);
    if (spec->device_used) {
        size_t used = spec->device_used();
        f->dev_used = used > spec->device_used_before ? used - spec->device_used_before : 0;
    }
    rc = 0;
done:
    for (int i = 0; i < B; i++) {
        if (bt->seqs[i]) b->release(b, bt->seqs[i]);
        bt->seqs[i] = NULL;
    }
    return rc;
}

static int is_oom(const Err *err) { return strstr(err->msg, "out of device memory") || strstr(err->msg, "out of memory"); }

void bench_result_free(BenchResult *r) {
    free(r->prefill_each), free(r->decode_each), free(r->ttft_each);
    r->prefill_each = r->decode_each = r->ttft_each = NULL;
}

int bench_run(Backend *b, const BenchSpec *spec, BenchResult *out, Err *err) {
    memset(out, 0, sizeof *out);
    const int V = b->model->cfg.vocab_size, L = spec->context, N = spec->decode, R = spec->repeats;
    if (spec->batch < 1 || L < 1 || N < 0 || R < 1 || spec->warmup < 0)
        return err_set(err, "bench: batch %d, context %d, decode %d, repeats %d, warm-up %d: out of range",
                       spec->batch, L, N, R, spec->warmup);
    int warm_L = spec->warmup_context > 0 && spec->warmup_context < L ? spec->warmup_context : L;
    int warm_N = spec->warmup_decode >= 0 && spec->warmup_decode < N ? spec->warmup_decode : N;
    double *beg = calloc((size_t)R, sizeof *beg);
    out->prefill_each = calloc((size_t)R, sizeof(double));
    out->decode_each = calloc((size_t)R, sizeof(double));
    out->ttft_each = calloc((size_t)R, sizeof(double));
    if (!beg || !out->prefill_each || !out->decode_each || !out->ttft_each) {
        free(beg);
        bench_result_free(out);
        return err_set(err, "out of memory");
    }
    int B = spec->batch, rc = -1;
    RunFigures last = {0};
    for (;;) {
        Batch bt;
        if (batch_alloc(&bt, B, L, V, spec->seed)) {
            batch_free(&bt);
            err_set(err, "out of host memory for a batch of %d x %d tokens", B, L);
            break;
        }
        RunFigures f;
        int failed = 0;
        for (int w = 0; !failed && w < spec->warmup; w++) failed = run_once(b, &bt, warm_L, warm_N, spec, &f, err);
        if (!failed && spec->after_warmup) spec->after_warmup(b);
        for (int r = 0; !failed && r < R; r++) {
            failed = run_once(b, &bt, L, N, spec, &f, err);
            if (!failed) {
                out->prefill_each[r] = f.prefill_s, out->decode_each[r] = f.decode_s, out->ttft_each[r] = f.ttft_s;
                beg[r] = f.begin_s;
                last = f;
            }
        }
        batch_free(&bt);
        if (!failed) {
            rc = 0;
            break;
        }
        if (!spec->halve_on_oom || !is_oom(err) || B == 1) {
            err_prefix(err, "batch %d", B);
            break;
        }
        size_t used = strlen(out->halvings);
        snprintf(out->halvings + used, sizeof out->halvings - used, "%s%d", used ? ", " : "", B);
        B /= 2;
    }
    if (rc == 0) {
        out->batch = B;
        out->repeats = R;
        out->warmup_context = warm_L;
        out->warmup_decode = warm_N;
        out->begin_s = median(beg, R);
        out->prefill_s = median(out->prefill_each, R);
        out->ttft_s = median(out->ttft_each, R);
        out->decode_s = median(out->decode_each, R);
        out->prefill_tokens_per_s = (double)B * L / out->prefill_s;
        out->decode_tokens_per_s = N > 0 ? (double)B * N / out->decode_s : 0;
        out->cache_bytes = last.cache_bytes;
        out->device_used = last.dev_used;
    } else {
        bench_result_free(out);
    }
    free(beg);
    return rc;
}
