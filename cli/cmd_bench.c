/* cmd_bench.c: `hymeval bench`: prefill and decode throughput of a backend
   on a checkpoint, with the paper's protocol: B sequences of L random
   tokens prefilled together, then N greedy decode steps of the whole batch;
   the batch is halved on out-of-memory until it fits. One warm-up run (the
   same batch, a short context) precedes the timed repeats; every figure is
   the median over the repeats. The protocol itself is engine/bench.c (the
   `throughput` task kind runs the same); this file adds the floors, the
   device memory and the table.

   Floors (docs/PERFORMANCE.md): prefill >= (2 x layer-matmul parameters x
   tokens + attention FLOPs) / 784 TFLOP/s; a decode step >= (weight bytes
   + cache bytes read) / 3019 GB/s — the H100 ceilings measured there. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "backend.h"
#include "bench.h"
#include "cli.h"
#include "model.h"
#ifdef HYMEVAL_HAVE_CUDA
#include "backend_cuda.h"
#endif

#define CEIL_TFLOPS 784.0 /* BF16 GEMM, H100, docs/PERFORMANCE.md */
#define CEIL_GBS 3019.0   /* device copy bandwidth, idem */

static void usage(FILE *out) {
    fprintf(out,
            "usage: hymeval bench DIR [--batch B] [--context L] [--decode N] [--device cuda|cpu]\n"
            "                     [--precision fp32|bf16-paper|bf16-hf|bf16-all] [--repeats R] [--seed S] [--json]\n"
            "                     [--profile]\n\n"
            "Measures a backend on the checkpoint in DIR: B sequences of L random tokens are\n"
            "prefilled together, then decoded N greedy steps as one batch. Reports prefill and\n"
            "decode tokens/s, time to first token, cache bytes per sequence (held by the backend\n"
            "and by the formula, BF16 K/V and conv state, FP32 SSM state), device memory, and the\n"
            "floors of docs/PERFORMANCE.md. On out-of-memory the batch is halved and the run\n"
            "repeated (the paper's protocol); the table says so. --profile (CUDA) adds the device\n"
            "time per part of the model (projections, attention, scan, MLP, norms, LM head) over\n"
            "the timed runs, from CUDA events between the parts; it runs decode steps without their\n"
            "CUDA graph and waits after every pass, so its tokens/s are those of the profiled run.\n"
            "Defaults: --batch 1 --context 1024\n"
            "--decode 64 --repeats 3, --device cuda (cpu in a build without CUDA), --precision\n"
            "bf16-hf on cuda and fp32 on cpu.\n\n"
            "Any checkpoint works; the paper's setting is a random Hymba-1.5B:\n"
            "  hymeval init-model --config models/configs/hymba-1.5b.json --out /tmp/h15\n"
            "  hymeval bench /tmp/h15 --batch 128 --context 8192 --decode 64\n");
}

static size_t device_used(void) {
#ifdef HYMEVAL_HAVE_CUDA
    size_t fr, tot;
    if (cuda_mem_info(&fr, &tot) == 0) return tot - fr;
#endif
    return 0;
}

#ifdef HYMEVAL_HAVE_CUDA
/* the peak (and the profile, when asked for) counts the timed runs only */
static int profile_wanted;
static void reset_peak(Backend *b) {
    backend_cuda_reset_peak(b);
    if (profile_wanted) backend_cuda_profile_enable(b, 1);
}
#endif

/* Attention FLOPs of prefilling L text tokens after the M meta tokens, one sequence. */
static double attention_flops(const HymbaConfig *c, long L) {
    double pairs_global = 0, pairs_window = 0;
    for (long p = c->n_meta; p < c->n_meta + L; p++) {
        pairs_global += (double)(p + 1);
        long band_start = p - c->sliding_window > c->n_meta ? p - c->sliding_window : c->n_meta;
        pairs_window += (double)c->n_meta + (double)(p + 1 - band_start);
    }
    double per_pair = 2.0 * c->n_heads * (c->head_dim + c->v_head_dim), total = 0;
    for (int l = 0; l < c->n_layers; l++)
        if (layer_has_attn(c, l)) total += per_pair * (c->is_global[l] ? pairs_global : pairs_window);
    return total;
}

int cmd_bench(int argc, char **argv) {
#ifdef HYMEVAL_HAVE_CUDA
    const char *device = "cuda";
#else
    const char *device = "cpu";
#endif
    const char *dir = NULL, *prec_name = NULL;
    long batch = 1, context = 1024, n_decode = 64, repeats = 3, seed = 1;
    int json = 0, profile = 0;
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (strcmp(a, "--batch") == 0 && (v = cli_value(argc, argv, &i))) {
            if ((batch = cli_long(a, v, 1, 1 << 20)) < 0) return EXIT_USAGE;
        } else if (strcmp(a, "--context") == 0 && (v = cli_value(argc, argv, &i))) {
            if ((context = cli_long(a, v, 1, 1 << 24)) < 0) return EXIT_USAGE;
        } else if (strcmp(a, "--decode") == 0 && (v = cli_value(argc, argv, &i))) {
            if ((n_decode = cli_long(a, v, 0, 1 << 24)) < 0) return EXIT_USAGE;
        } else if (strcmp(a, "--repeats") == 0 && (v = cli_value(argc, argv, &i))) {
            if ((repeats = cli_long(a, v, 1, 1000)) < 0) return EXIT_USAGE;
        } else if (strcmp(a, "--seed") == 0 && (v = cli_value(argc, argv, &i))) {
            if ((seed = cli_long(a, v, 0, 0x7fffffff)) < 0) return EXIT_USAGE;
        } else if (strcmp(a, "--device") == 0 && (v = cli_value(argc, argv, &i))) {
            device = v;
        } else if (strcmp(a, "--precision") == 0 && (v = cli_value(argc, argv, &i))) {
            prec_name = v;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--profile") == 0) {
            profile = 1;
        } else if (a[0] != '-' && !dir) {
            dir = a;
        } else {
            if (i < argc) fprintf(stderr, "error: unexpected argument \"%s\"\n", a);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!dir) {
        fprintf(stderr,
                "error: hymeval bench needs a checkpoint directory (DIR). For the paper's setting make a\n"
                "random Hymba-1.5B first:\n"
                "  hymeval init-model --config models/configs/hymba-1.5b.json --out /tmp/h15\n"
                "  hymeval bench /tmp/h15 --batch 128 --context 8192 --decode 64\n\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!prec_name) prec_name = strcmp(device, "cuda") == 0 ? "bf16-hf" : "fp32";
    Precision prec;
    if (precision_parse(prec_name, &prec)) {
        fprintf(stderr, "error: unknown --precision \"%s\"\n", prec_name);
        return EXIT_USAGE;
    }

    Err err;
    size_t used_before = strcmp(device, "cuda") == 0 ? device_used() : 0;
    HymbaModel *m = model_load(dir, prec, &err);
    if (!m) {
        fprintf(stderr, "error: %s\n", err.msg);
        return EXIT_FAIL;
    }
    Backend *b = backend_open(m, device, &err);
    if (!b) {
        fprintf(stderr, "error: %s\n", err.msg);
        model_free(m);
        return EXIT_FAIL;
    }
    if (profile && strcmp(b->name, "cuda") != 0) {
        fprintf(stderr, "error: --profile times the parts of the CUDA backend: it needs --device cuda\n");
        backend_close(b);
        model_free(m);
        return EXIT_USAGE;
    }
#ifdef HYMEVAL_HAVE_CUDA
    profile_wanted = profile;
#endif
    const HymbaConfig *c = &m->cfg;
    const int V = c->vocab_size, L = (int)context, N = (int)n_decode;
    BenchSpec spec = {.batch = (int)batch, .context = L, .decode = N, .repeats = (int)repeats, .warmup = 1,
                      .warmup_context = 256, .warmup_decode = 4, .seed = (uint64_t)seed, .halve_on_oom = 1,
                      .device_used = device_used, .device_used_before = used_before};
#ifdef HYMEVAL_HAVE_CUDA
    spec.after_warmup = reset_peak;
#endif
    BenchResult res;
    int rc = EXIT_FAIL;
    if (bench_run(b, &spec, &res, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        goto out;
    }
    if (res.halvings[0]) fprintf(stderr, "bench: batch %s did not fit; ran batch %d\n", res.halvings, res.batch);

    {
        const int B = res.batch, warm_L = res.warmup_context, warm_N = res.warmup_decode;
        const char *halvings = res.halvings;
        double prefill_s = res.prefill_s, decode_s = res.decode_s, ttft_s = res.ttft_s, begin_s = res.begin_s;
        double prefill_tps = res.prefill_tokens_per_s, decode_tps = res.decode_tokens_per_s;
        double formula_bf16 = config_cache_bytes(c, (long)L + N, 2, 2);
        int elem = prec == PREC_FP32 ? 4 : 2;
        double formula_prec = config_cache_bytes(c, (long)L + N, elem, elem);
        ParamCount pc = config_param_count(c);
        double layer_params = (double)(pc.attn_qkv + pc.ssm + pc.fuse_out + pc.mlp);
        double lm_flops = 2.0 * V * c->hidden_size;
        double prefill_flops = (2.0 * layer_params * L + attention_flops(c, L) + lm_flops) * B;
        double prefill_floor_s = prefill_flops / (CEIL_TFLOPS * 1e12);
        /* a decode step reads every weight once and each sequence's cache (K/V, conv and SSM states) */
        double weight_bytes = (double)pc.total * elem;
        double step_bytes = weight_bytes + (double)B * config_cache_bytes(c, (long)L + N / 2, elem, elem);
        double step_floor_s = step_bytes / (CEIL_GBS * 1e9);
        size_t alloc_weights = 0, alloc_peak = 0;
        int pass_tokens = 0;
#ifdef HYMEVAL_HAVE_CUDA
        CudaMemStats ms;
        if (backend_cuda_mem_stats(b, &ms) == 0) alloc_weights = ms.weights, alloc_peak = ms.peak, pass_tokens = ms.pass_tokens;
        CudaProfile prof;
        const int have_prof = profile && backend_cuda_profile_read(b, &prof) == 0;
        /* per timed repeat (prefill) and per decode step */
        double prof_pre[PROF_N], prof_dec[PROF_N], pre_total = 0, dec_total = 0;
        for (int k = 0; have_prof && k < PROF_N; k++) {
            prof_pre[k] = prof.prefill_ms[k] / (double)repeats;
            prof_dec[k] = N > 0 ? prof.decode_ms[k] / ((double)repeats * N) : 0;
            pre_total += prof_pre[k], dec_total += prof_dec[k];
        }
#endif
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "checkpoint", dir);
            cJSON_AddStringToObject(o, "device", b->device);
            cJSON_AddStringToObject(o, "precision", precision_name(prec));
            cJSON_AddNumberToObject(o, "batch", B);
            cJSON_AddNumberToObject(o, "batch_asked", (double)batch);
            cJSON_AddStringToObject(o, "batch_halved_from", halvings);
            cJSON_AddNumberToObject(o, "context", L);
            cJSON_AddNumberToObject(o, "decode_steps", N);
            cJSON_AddNumberToObject(o, "repeats", (double)repeats);
            cJSON_AddNumberToObject(o, "warmup_context", warm_L);
            cJSON_AddNumberToObject(o, "warmup_decode_steps", warm_N);
            cJSON_AddNumberToObject(o, "begin_seconds", begin_s);
            cJSON_AddNumberToObject(o, "prefill_seconds", prefill_s);
            cJSON_AddNumberToObject(o, "prefill_tokens_per_s", prefill_tps);
            cJSON_AddNumberToObject(o, "ttft_seconds", ttft_s);
            cJSON_AddNumberToObject(o, "decode_seconds", decode_s);
            cJSON_AddNumberToObject(o, "decode_tokens_per_s", decode_tps);
            cJSON_AddNumberToObject(o, "decode_step_ms", N > 0 ? decode_s / N * 1e3 : 0);
            cJSON_AddNumberToObject(o, "cache_bytes_per_seq_backend", (double)res.cache_bytes);
            cJSON_AddNumberToObject(o, "cache_bytes_per_seq_formula_bf16", formula_bf16);
            cJSON_AddNumberToObject(o, "cache_bytes_per_seq_formula_at_precision", formula_prec);
            cJSON_AddNumberToObject(o, "device_weights_bytes", (double)alloc_weights);
            cJSON_AddNumberToObject(o, "device_allocator_peak_bytes", (double)alloc_peak);
            cJSON_AddNumberToObject(o, "device_used_bytes_memgetinfo", (double)res.device_used);
            cJSON_AddNumberToObject(o, "pass_tokens", pass_tokens);
            cJSON_AddNumberToObject(o, "prefill_floor_seconds", prefill_floor_s);
            cJSON_AddNumberToObject(o, "decode_step_floor_ms", step_floor_s * 1e3);
            /* the share of the floor reached: floor time / measured time */
            cJSON_AddNumberToObject(o, "prefill_floor_share", prefill_s > 0 ? prefill_floor_s / prefill_s : 0);
            cJSON_AddNumberToObject(o, "decode_floor_share", decode_s > 0 && N > 0 ? step_floor_s / (decode_s / N) : 0);
#ifdef HYMEVAL_HAVE_CUDA
            if (have_prof) {
                cJSON *po = cJSON_AddObjectToObject(o, "profile");
                cJSON_AddStringToObject(po, "what", "device ms per part from CUDA events; prefill per timed repeat, "
                                                    "decode per step (no graphs while profiling)");
                cJSON *pp = cJSON_AddObjectToObject(po, "prefill_ms_per_repeat");
                cJSON *pd = cJSON_AddObjectToObject(po, "decode_ms_per_step");
                for (int k = 0; k < PROF_N; k++) {
                    cJSON_AddNumberToObject(pp, cuda_profile_part[k], prof_pre[k]);
                    cJSON_AddNumberToObject(pd, cuda_profile_part[k], prof_dec[k]);
                }
                cJSON_AddNumberToObject(po, "prefill_passes", (double)prof.prefill_passes);
                cJSON_AddNumberToObject(po, "decode_passes", (double)prof.decode_passes);
            }
#endif
            char *text = cJSON_Print(o);
            if (text) printf("%s\n", text);
            free(text);
            cJSON_Delete(o);
        } else {
            printf("hymeval bench: %s on %s\n", dir, b->device);
            printf("batch %d%s%s%s, context %d, decode %d steps, median of %ld (after a warm-up: context %d, %d steps)\n",
                   B, halvings[0] ? " (halved on out-of-memory from " : "", halvings, halvings[0] ? ")" : "", L, N,
                   repeats, warm_L, warm_N);
            printf("| %-36s | %16s | %-36s |\n", "metric", "value", "floor (H100 ceilings), share reached");
            printf("| %-36s | %16.1f | %-36s |\n", "prefill tokens/s", prefill_tps, "");
            char fl[64];
            snprintf(fl, sizeof fl, "%.3f s (%.0f tok/s), %.1f%%", prefill_floor_s, (double)B * L / prefill_floor_s,
                     prefill_s > 0 ? 100 * prefill_floor_s / prefill_s : 0);
            printf("| %-36s | %16.3f | %-36s |\n", "prefill seconds", prefill_s, fl);
            printf("| %-36s | %16.3f | %-36s |\n", "time to first token (s)", ttft_s, "");
            printf("| %-36s | %16.4f | %-36s |\n", "  of which begin (s)", begin_s, "");
            printf("| %-36s | %16.1f | %-36s |\n", "decode tokens/s", decode_tps, "");
            snprintf(fl, sizeof fl, "%.3f ms (%.0f tok/s), %.1f%%", step_floor_s * 1e3, (double)B / step_floor_s,
                     decode_s > 0 && N > 0 ? 100 * step_floor_s / (decode_s / N) : 0);
            printf("| %-36s | %16.3f | %-36s |\n", "decode ms per step", N > 0 ? decode_s / N * 1e3 : 0, fl);
            printf("| %-36s | %16zu | %-36s |\n", "cache bytes/seq (backend)", res.cache_bytes, "");
            printf("| %-36s | %16.0f | %-36s |\n", "cache bytes/seq (formula, BF16)", formula_bf16, "");
            printf("| %-36s | %16.0f | %-36s |\n", "cache bytes/seq (formula, run dtype)", formula_prec, "");
            if (alloc_peak) {
                printf("| %-36s | %16zu | %-36s |\n", "device weights (bytes)", alloc_weights, "");
                printf("| %-36s | %16zu | %-36s |\n", "device allocator peak (bytes)", alloc_peak, "");
                printf("| %-36s | %16zu | %-36s |\n", "device used, cudaMemGetInfo (bytes)", res.device_used, "");
                printf("| %-36s | %16d | %-36s |\n", "rows per forward pass", pass_tokens, "");
            }
#ifdef HYMEVAL_HAVE_CUDA
            if (have_prof) {
                printf("\nprofile (device time per part, CUDA events; decode without graphs while profiling):\n");
                printf("| %-18s | %14s | %6s | %16s | %6s |\n", "part", "prefill ms/rep", "share", "decode ms/step",
                       "share");
                for (int k = 0; k < PROF_N; k++)
                    printf("| %-18s | %14.3f | %5.1f%% | %16.4f | %5.1f%% |\n", cuda_profile_part[k], prof_pre[k],
                           pre_total > 0 ? 100 * prof_pre[k] / pre_total : 0, prof_dec[k],
                           dec_total > 0 ? 100 * prof_dec[k] / dec_total : 0);
                printf("| %-18s | %14.3f | %6s | %16.4f | %6s |\n", "total", pre_total, "", dec_total, "");
            }
#endif
        }
    }
    rc = EXIT_OK;
    bench_result_free(&res);
out:
    backend_close(b);
    model_free(m);
    return rc;
}
