/* fuzz_safetensors.c: libFuzzer target for the safetensors reader.
   Not built by meson. Build and run from the repository root:

     clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
       -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iengine \
       engine/error.c engine/safetensors.c tests/fuzz/fuzz_safetensors.c \
       -lcjson -lm -o /tmp/fuzz_safetensors
     mkdir -p /tmp/st_corpus && cp some/model.safetensors /tmp/st_corpus/
     /tmp/fuzz_safetensors -max_total_time=60 -max_len=4096 /tmp/st_corpus

   Each input is written to a temp file and opened as a checkpoint; every
   byte of every tensor the reader accepts is read, and the F32/F16/BF16
   ones are converted, so an out-of-mapping pointer shows up under ASan. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"

static char temp_path[64];

static int write_input(const uint8_t *data, size_t size) {
    if (!temp_path[0]) {
        snprintf(temp_path, sizeof temp_path, "/tmp/fuzz_st_XXXXXX");
        int fd = mkstemp(temp_path);
        if (fd < 0) abort();
        close(fd);
    }
    FILE *f = fopen(temp_path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f) != 0) abort();
    return 0;
}

static void touch_tensors(const StCheckpoint *ck) {
    for (size_t i = 0; i < st_count(ck); i++) {
        const StTensor *t = st_tensor_at(ck, i);
        if (st_find(ck, t->name) != t) abort();
        volatile uint8_t sum = 0;
        for (size_t k = 0; k < t->nbytes; k++) sum += ((const uint8_t *)t->data)[k];
        (void)sum;
        if (t->dtype == ST_OTHER || t->numel > (1 << 20)) continue;
        float *buf = malloc((size_t)t->numel * sizeof(float) + 1);
        Err err;
        if (buf && st_to_f32(t, buf, &err) != 0) abort();
        free(buf);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    write_input(data, size);
    Err err;
    StCheckpoint *ck = st_open(temp_path, &err);
    if (ck) touch_tensors(ck);
    st_close(ck);
    return 0;
}
