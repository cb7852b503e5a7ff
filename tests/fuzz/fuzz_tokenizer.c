/* fuzz_tokenizer.c: libFuzzer target for the tokenizer: the input's first
   byte picks one of the seed tokenizers, the rest is text to encode and
   decode (any bytes, invalid UTF-8 included). Not built by meson:

     clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
       -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iengine \
       engine/error.c engine/tokenizer.c tests/fuzz/fuzz_tokenizer.c -lcjson -lpcre2-8 -lm \
       -o /tmp/fuzz_tokenizer
     HYMEVAL_FUZZ_TOKENIZERS=models/tokenizer:../shared/fixtures/llama2-tokenizer \
       /tmp/fuzz_tokenizer -max_total_time=60

   Checks: encoding never fails on text, every id is in range, and decoding
   the ids never crashes. (Loading malformed tokenizer.json files is covered
   by tests/test_tokenizer.c.) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

static Tokenizer *toks[8];
static int n_toks;

static void load_all(void) {
    const char *list = getenv("HYMEVAL_FUZZ_TOKENIZERS");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", list ? list : "models/tokenizer");
    for (char *p = strtok(buf, ":"); p && n_toks < 8; p = strtok(NULL, ":")) {
        Err err;
        Tokenizer *t = tokenizer_load(p, &err);
        if (t) toks[n_toks++] = t;
    }
    if (n_toks == 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!n_toks) load_all();
    if (size == 0) return 0;
    const Tokenizer *tok = toks[data[0] % n_toks];
    int32_t *ids = NULL;
    size_t n = 0;
    Err err;
    if (tokenizer_encode(tok, (const char *)data + 1, size - 1, -1, &ids, &n, &err) != 0) abort();
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= tokenizer_vocab_size(tok)) abort();
    free(tokenizer_decode(tok, ids, n, 0));
    free(tokenizer_decode(tok, ids, n, 1));
    free(ids);
    return 0;
}
