/* npy.c: NumPy .npy v1.0 writer for little-endian float32 arrays. */
#include "npy.h"

#include <stdio.h>
#include <string.h>

int npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape, Err *err) {
    char header[256];
    int len = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    size_t count = 1;
    for (int d = 0; d < ndim; d++) {
        len += snprintf(header + len, sizeof header - (size_t)len, "%lld,%s", (long long)shape[d],
                        d + 1 < ndim ? " " : "");
        count *= (size_t)shape[d];
    }
    len += snprintf(header + len, sizeof header - (size_t)len, "), }");
    /* magic (6) + version (2) + header length (2) + header, padded with spaces
       and a final newline to a multiple of 64 */
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) return err_set(err, "%s: cannot write", path);
    unsigned short hlen = (unsigned short)(len + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hlen & 0xff, f);
    fputc(hlen >> 8, f);
    fwrite(header, 1, (size_t)len, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    size_t wrote = fwrite(data, sizeof(float), count, f);
    if (fclose(f) != 0 || wrote != count) return err_set(err, "%s: write failed", path);
    return 0;
}
