// common.cu: error recording shared by the launchers.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hk_common.cuh"

static thread_local char last_error[512];

int hk_fail(int code, const char *file, int line, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(last_error, sizeof last_error, "%s:%d: %s", file, line, msg);
    fprintf(stderr, "hymeval kernels: %s\n", last_error);
    return code ? code : HK_EINVAL;
}

extern "C" const char *hk_last_error(void) { return last_error; }

extern "C" size_t hk_dtype_size(hk_dtype dtype) { return dtype == HK_BF16 ? 2 : 4; }

// On by default where the hardware has it (measured on the H100: batch-1
// decode 3.44 -> 3.33 ms a step); HYMEVAL_PDL=0 launches every kernel plainly.
bool hk_pdl_enabled() {
    static const bool on = [] {
        const char *e = getenv("HYMEVAL_PDL");
        int dev = 0, major = 0;
        if (e && strcmp(e, "0") == 0) return false;
        if (cudaGetDevice(&dev) != cudaSuccess ||
            cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess)
            return false;
        return major >= 9;
    }();
    return on;
}
