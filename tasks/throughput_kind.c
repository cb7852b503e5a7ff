/* throughput_kind.c: the `throughput` measurement kind (DESIGN.md §5
   "Throughput"; docs/tasks/measurements.md): prefill and decode speed of the
   run's backend (CPU, or CUDA under --device cuda) at each batch size and
   context length:
     prefill tokens/s = batch x context / prefill seconds,
     decode tokens/s  = batch x decode steps / decode seconds,
     time to first token = begin + prefill + the first argmax,
   after warm-up runs, medians over the repeats. The protocol is
   engine/bench.c, the one `hymeval bench` runs, so the two agree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "bench.h"
#include "erf.h"
#include "model.h"
#include "task.h"
#ifdef HYMEVAL_HAVE_CUDA
#include "backend_cuda.h"

/* the device peak counts the timed runs only, as in `hymeval bench` */
static void reset_peak(Backend *b) { backend_cuda_reset_peak(b); }
#endif

static const char *const throughput_fields[] = {"batches", "contexts", "decode", "repeats", "warmup", NULL};
/* the paper's setting (context 8k, batch 128) is one of the pairs */
static const int default_batches[] = {1, 8, 32, 128};
static const int default_contexts[] = {1024, 4096, 8192};
enum { MAX_BATCH = 1 << 16, MAX_CONTEXT = 1 << 24, MAX_DECODE = 1 << 20 };
/* warm-up shape, as `hymeval bench` warms up: the batch at a short context */
enum { WARMUP_CONTEXT = 256, WARMUP_DECODE = 4 };

typedef struct {
    int *batches, n_batches, *contexts, n_contexts;
    int decode, repeats, warmup;
} ThroughputParams;

static void params_free(ThroughputParams *p) {
    free(p->batches), free(p->contexts);
    memset(p, 0, sizeof *p);
}

static int params_read(const TaskDef *t, ThroughputParams *p, Err *err) {
    memset(p, 0, sizeof *p);
    if (measure_int_list(t, "batches", default_batches, 4, 1, MAX_BATCH, 1, &p->batches, &p->n_batches, err) ||
        measure_int_list(t, "contexts", default_contexts, 3, 1, MAX_CONTEXT, 1, &p->contexts, &p->n_contexts, err) ||
        task_int(t, "decode", 32, 0, MAX_DECODE, &p->decode, err) ||
        task_int(t, "repeats", 3, 1, 1000, &p->repeats, err) ||
        task_int(t, "warmup", 1, 0, 100, &p->warmup, err)) {
        params_free(p);
        return -1;
    }
    return 0;
}

static int throughput_validate(const TaskDef *t, Err *err) {
    ThroughputParams p;
    if (params_read(t, &p, err)) return -1;
    params_free(&p);
    return 0;
}

static int throughput_build(const TaskDef *t, const Tokenizer *tok, ExampleList *out, Err *err) {
    (void)tok;
    ThroughputParams p;
    if (params_read(t, &p, err)) return -1;
    for (int c = 0; c < p.n_contexts; c++)
        for (int b = 0; b < p.n_batches; b++) {
            Example *ex = examples_push(out, err);
            if (!ex) {
                params_free(&p);
                return -1;
            }
            ex->request = REQ_MEASURE;
            snprintf(ex->id, sizeof ex->id, "b%d_c%d", p.batches[b], p.contexts[c]);
            snprintf(ex->group, sizeof ex->group, "b%d_c%d", p.batches[b], p.contexts[c]);
            ex->target_tokens = ex->prompt_tokens = p.contexts[c];
            ex->max_new_tokens = p.decode; /* what the scale-out cost estimate reads */
            ex->extra = cJSON_CreateObject();
            cJSON_AddNumberToObject(ex->extra, "batch", p.batches[b]);
            cJSON_AddNumberToObject(ex->extra, "context", p.contexts[c]);
        }
    params_free(&p);
    return 0;
}

static int extra_int(const Example *ex, const char *key) {
    const cJSON *v = ex->extra ? cJSON_GetObjectItemCaseSensitive(ex->extra, key) : NULL;
    return cJSON_IsNumber(v) ? (int)v->valuedouble : 0;
}

static int throughput_measure(const TaskDef *t, const MeasureEnv *env, const Example *ex, Scores *out,
                              cJSON **extra, Err *err) {
    ThroughputParams p;
    if (params_read(t, &p, err)) return -1;
    Backend *b = env->backend;
    const HymbaModel *m = b->model;
    int B = extra_int(ex, "batch"), L = extra_int(ex, "context");
    if (B < 1 || L < 1) {
        params_free(&p);
        return err_set(err, "throughput example %s: no batch/context", ex->id);
    }
    BenchSpec spec = {.batch = B, .context = L, .decode = p.decode, .repeats = p.repeats, .warmup = p.warmup,
                      .warmup_context = WARMUP_CONTEXT, .warmup_decode = WARMUP_DECODE,
                      .seed = measure_seed(t->seed, (uint64_t)B, (uint64_t)L), .halve_on_oom = 1};
#ifdef HYMEVAL_HAVE_CUDA
    CudaMemStats ms;
    const int on_gpu = backend_cuda_mem_stats(b, &ms) == 0;
    if (on_gpu) spec.after_warmup = reset_peak;
#endif
    BenchResult r;
    int rc = bench_run(b, &spec, &r, err);
    if (rc == 0) {
        scores_add(out, "prefill_tokens_per_s", r.prefill_tokens_per_s);
        scores_add(out, "decode_tokens_per_s", r.decode_tokens_per_s);
        scores_add(out, "ttft_seconds", r.ttft_s);
        scores_add(out, "prefill_seconds", r.prefill_s);
        scores_add(out, "decode_step_ms", p.decode > 0 ? r.decode_s / p.decode * 1e3 : 0);
        scores_add(out, "batch_run", r.batch);
        /* the cache the backend holds; the formula at the engine's element size */
        int elem = m->precision == PREC_FP32 ? 4 : 2;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "batch", B);
        cJSON_AddNumberToObject(o, "batch_run", r.batch);
        cJSON_AddStringToObject(o, "batch_halved_from", r.halvings);
        cJSON_AddNumberToObject(o, "context", L);
        cJSON_AddNumberToObject(o, "decode", p.decode);
        cJSON_AddNumberToObject(o, "repeats", p.repeats);
        cJSON_AddNumberToObject(o, "warmup", p.warmup);
        cJSON_AddNumberToObject(o, "warmup_context", r.warmup_context);
        cJSON_AddNumberToObject(o, "warmup_decode", r.warmup_decode);
        cJSON_AddStringToObject(o, "precision", precision_name(m->precision));
        cJSON_AddStringToObject(o, "weights_dtype", m->w.source_dtype);
        cJSON_AddStringToObject(o, "backend", b->name);
        cJSON_AddStringToObject(o, "device", b->device);
        cJSON_AddNumberToObject(o, "prefill_tokens_per_s", r.prefill_tokens_per_s);
        cJSON_AddNumberToObject(o, "decode_tokens_per_s", r.decode_tokens_per_s);
        cJSON_AddNumberToObject(o, "ttft_seconds", r.ttft_s);
        cJSON_AddNumberToObject(o, "begin_seconds", r.begin_s);
        cJSON_AddNumberToObject(o, "prefill_seconds", r.prefill_s);
        cJSON_AddNumberToObject(o, "decode_seconds", r.decode_s);
        cJSON_AddItemToObject(o, "prefill_seconds_each", measure_json_doubles(r.prefill_each, r.repeats));
        cJSON_AddItemToObject(o, "decode_seconds_each", measure_json_doubles(r.decode_each, r.repeats));
        cJSON_AddItemToObject(o, "ttft_seconds_each", measure_json_doubles(r.ttft_each, r.repeats));
        cJSON_AddNumberToObject(o, "cache_bytes_per_seq_backend", (double)r.cache_bytes);
        cJSON_AddNumberToObject(o, "cache_bytes_per_seq_formula",
                                config_cache_bytes(&m->cfg, (long)L + p.decode, elem, elem));
#ifdef HYMEVAL_HAVE_CUDA
        if (on_gpu && backend_cuda_mem_stats(b, &ms) == 0) {
            /* the allocator's own figures: weights held, and the peak of the timed runs */
            scores_add(out, "peak_device_mb", (double)ms.peak / 1e6);
            cJSON_AddNumberToObject(o, "device_weights_bytes", (double)ms.weights);
            cJSON_AddNumberToObject(o, "device_allocator_peak_bytes", (double)ms.peak);
        }
#endif
        cJSON_AddStringToObject(o, "timing", "wall clock around synchronising backend calls; medians over the repeats");
        *extra = o;
        bench_result_free(&r);
    }
    params_free(&p);
    return rc;
}

const TaskKind kind_throughput = {
    .name = "throughput",
    .fields = throughput_fields,
    .validate = throughput_validate,
    .build = throughput_build,
    .score = measure_no_score,
    .measure = throughput_measure,
};
