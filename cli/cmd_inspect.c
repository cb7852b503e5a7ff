/* cmd_inspect.c: `hymeval inspect`: load and validate everything in a
   checkpoint directory, then describe it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "model.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: hymeval inspect DIR\n\n"
            "Loads and validates config.json, every tensor of the (possibly sharded) safetensors\n"
            "checkpoint and tokenizer.json, then prints a config summary, parameter counts by\n"
            "component, and the per-sequence cache size (KV in BF16, SSM state in FP32).\n");
}

static void print_layers(const HymbaConfig *c) {
    printf("layers:        ");
    for (int l = 0; l < c->n_layers; l++) {
        printf(" %d:%c", l, c->layer_kind[l]);
        if (layer_has_attn(c, l)) printf("%c", c->is_global[l] ? 'G' : 'W');
        if (layer_has_attn(c, l) && !layer_owns_kv(c, l)) printf("<%d", c->kv_source[l]);
    }
    printf("\n                (h hybrid, a attention, m Mamba; G global, W sliding window; <N reuses layer N's KV)\n");
}

static void print_count(const char *what, int64_t n, int64_t total) {
    printf("  %-22s %14lld  %5.1f%%\n", what, (long long)n, total ? 100.0 * n / total : 0.0);
}

int cmd_inspect(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    if (argc != 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    Err err;
    HymbaModel *m = model_load(argv[1], PREC_FP32, &err);
    if (!m) {
        fprintf(stderr, "error: %s\n", err.msg);
        return EXIT_FAIL;
    }
    const HymbaConfig *c = &m->cfg;
    int producers = 0, globals = 0, ssm_layers = 0;
    for (int l = 0; l < c->n_layers; l++) {
        producers += layer_owns_kv(c, l);
        globals += layer_has_attn(c, l) && c->is_global[l];
        ssm_layers += layer_has_ssm(c, l);
    }
    printf("checkpoint:     %s (%zu tensors, weights stored as %s)\n", argv[1], st_count(m->ck), m->w.source_dtype);
    printf("hidden:         %d   layers: %d   vocab: %d   MLP: %d (%s)\n", c->hidden_size, c->n_layers,
           c->vocab_size, c->intermediate_size, c->intermediate_size ? (c->mlp_act == MLP_SILU ? "SwiGLU" : "relu2") : "none");
    printf("attention:      %d heads x %d (q/k), v %d, %d KV heads; %d global layer(s); sliding window %d; "
           "%d meta tokens\n", c->n_heads, c->head_dim, c->v_head_dim, c->n_kv_heads, globals, c->sliding_window,
           c->n_meta);
    printf("kv:             %d layer(s) own their KV; kq_norm %s\n", producers,
           c->kq_norm == KQ_NORM_NONE ? "none" : c->kq_norm == KQ_NORM_RMS ? "rms" : "perhead-rms");
    printf("rope:           %s, %s, theta %.1f -> base %.1f\n", c->rope ? "on" : "off",
           c->rope_type == ROPE_NTK ? "ntk" : "default", c->rope_theta, config_rope_base(c));
    printf("ssm:            %d layer(s); inner %d, state %d, conv %d, dt rank %d, inner norms %s\n", ssm_layers,
           c->ssm_inner, c->ssm_state, c->ssm_conv, c->ssm_dt_rank, c->inner_norms ? "yes" : "no");
    print_layers(c);
    if (m->tok)
        printf("tokenizer:      %d tokens, bos %d, eos %d, adds BOS: %s\n", tokenizer_vocab_size(m->tok),
               tokenizer_bos_id(m->tok), tokenizer_eos_id(m->tok), tokenizer_adds_bos(m->tok) ? "yes" : "no");
    else
        printf("tokenizer:      none (no tokenizer.json)\n");

    ParamCount p = config_param_count(c);
    printf("\nparameters:     %lld (%.3f B)\n", (long long)p.total, p.total / 1e9);
    print_count("embedding", p.embed, p.total);
    print_count("lm_head (untied)", p.lm_head, p.total);
    print_count("meta tokens", p.meta, p.total);
    print_count("attention q/k/v", p.attn_qkv, p.total);
    print_count("SSM (x,z,conv,scan)", p.ssm, p.total);
    print_count("out_proj (fusion)", p.fuse_out, p.total);
    print_count("MLP", p.mlp, p.total);
    print_count("norms", p.norms, p.total);
    if ((size_t)p.total != m->w.n_floats)
        printf("  (checkpoint holds %zu values)\n", m->w.n_floats);

    double per_token = config_cache_bytes(c, 2, 2, 2) - config_cache_bytes(c, 1, 2, 2);
    printf("\ncache per sequence (KV and conv state BF16, SSM state FP32):\n");
    printf("  fixed (meta KV + SSM/conv state): %.2f MB\n", config_cache_bytes(c, 0, 2, 2) / 1e6);
    printf("  per text token (early tokens):    %.1f KB\n", per_token / 1e3);
    long lens[] = {1024, 8192, 32768};
    for (int i = 0; i < 3; i++)
        printf("  at %5ld tokens:                  %.2f MB\n", lens[i], config_cache_bytes(c, lens[i], 2, 2) / 1e6);
    model_free(m);
    return EXIT_OK;
}
