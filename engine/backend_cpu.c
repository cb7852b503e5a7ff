/* backend_cpu.c: the CPU reference engine behind the backend interface. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

#ifdef _OPENMP
#include <omp.h>
#endif

struct Sequence {
    SeqCache cache;
    int n_meta; /* positions before the first text token */
};

static Sequence *cpu_begin(Backend *b, Err *err) {
    Sequence *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(err, "out of memory");
        return NULL;
    }
    if (model_begin(b->model, &s->cache, err)) {
        free(s);
        return NULL;
    }
    s->n_meta = s->cache.n_pos;
    return s;
}

static Sequence *cpu_fork(Backend *b, const Sequence *src, Err *err) {
    Sequence *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(err, "out of memory");
        return NULL;
    }
    if (cache_clone(&s->cache, &src->cache, &b->model->cfg, err)) {
        free(s);
        return NULL;
    }
    s->n_meta = src->n_meta;
    return s;
}

static void cpu_release(Backend *b, Sequence *s) {
    (void)b;
    if (!s) return;
    cache_free(&s->cache);
    free(s);
}

static int cpu_forward(Backend *b, Sequence *const *seqs, const int32_t *const *ids, const int *lens, int n,
                       LogitsWanted want, float *const *logits, Err *err) {
    /* Sequences run one after another; the matmuls inside are threaded, so
       a batch computes exactly what each sequence computes alone. */
    const int V = b->model->cfg.vocab_size;
    float *row = NULL; /* LOGITS_TOP1: the last row, reduced to (id, logit) below */
    if (want == LOGITS_TOP1 && !(row = malloc(sizeof(float) * (size_t)V))) return err_set(err, "out of memory");
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (lens[i] == 0) continue;
        float *dst = want == LOGITS_TOP1 ? row : logits ? logits[i] : NULL;
        if (model_forward(b->model, &seqs[i]->cache, ids[i], lens[i], want == LOGITS_TOP1 ? LOGITS_LAST : want, dst,
                          err)) {
            rc = n > 1 ? err_prefix(err, "batch sequence %d", i) : -1;
        } else if (want == LOGITS_TOP1) {
            int best = 0;
            for (int v = 1; v < V; v++)
                if (row[v] > row[best]) best = v;
            logits[i][0] = (float)best, logits[i][1] = row[best];
        }
    }
    free(row);
    return rc;
}

static int cpu_length(const Sequence *s) { return s->cache.n_pos - s->n_meta; }

static size_t cpu_cache_bytes(Backend *b, const Sequence *s) { return cache_bytes_allocated(&s->cache, &b->model->cfg); }

static void cpu_close(Backend *b) { free(b); }

Backend *backend_cpu_open(HymbaModel *m, Err *err) {
    Backend *b = calloc(1, sizeof *b);
    if (!b) {
        err_set(err, "out of memory");
        return NULL;
    }
    b->name = "cpu";
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    snprintf(b->device, sizeof b->device, "cpu (%d thread%s, %s)", threads, threads == 1 ? "" : "s",
             precision_name(m->precision));
    b->model = m;
    b->begin = cpu_begin;
    b->fork = cpu_fork;
    b->release = cpu_release;
    b->forward = cpu_forward;
    b->length = cpu_length;
    b->cache_bytes = cpu_cache_bytes;
    b->close = cpu_close;
    return b;
}

Backend *backend_open(HymbaModel *m, const char *device, Err *err) {
    if (!device || strcmp(device, "cpu") == 0) return backend_cpu_open(m, err);
    if (strcmp(device, "cuda") == 0) {
#ifdef HYMEVAL_HAVE_CUDA
        return backend_cuda_open(m, err);
#else
        err_set(err, "--device cuda: this hymeval was built without CUDA (configure with -Dcuda=enabled)");
        return NULL;
#endif
    }
    err_set(err, "unknown device \"%s\" (expected cpu or cuda)", device);
    return NULL;
}

void backend_close(Backend *b) {
    if (b) b->close(b);
}
