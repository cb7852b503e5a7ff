/* fuzz_config.c: libFuzzer target for config.json parsing and validation.
   Not built by meson. Build and run from the repository root:

     clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
       -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iengine \
       engine/error.c engine/config.c tests/fuzz/fuzz_config.c -lcjson -lm -o /tmp/fuzz_config
     mkdir -p /tmp/cfg_corpus && cp models/configs/tiny-hymba.json models/configs/hymba-1.5b.json /tmp/cfg_corpus/
     /tmp/fuzz_config -max_total_time=60 /tmp/cfg_corpus

   A config that parses must also give consistent derived values: every
   query/key/value width and the in_proj split fit, every KV source is an
   earlier attention layer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    HymbaConfig cfg;
    Err err;
    if (config_parse(&cfg, text, "fuzz", &err) == 0) {
        if (cfg.head_dim * cfg.n_heads != cfg.hidden_size) abort();
        for (int l = 0; l < cfg.n_layers; l++) {
            int src = cfg.kv_source[l];
            if (src < 0 || src > l) abort();
            if (src != l && (!layer_has_attn(&cfg, src) || !layer_has_attn(&cfg, l))) abort();
            InProjSplit sp = config_in_proj_split(&cfg, l);
            if (sp.rows <= 0) abort();
        }
        (void)config_param_count(&cfg);
        (void)config_cache_bytes(&cfg, 8192, 2, 2);
    }
    free(text);
    return 0;
}
