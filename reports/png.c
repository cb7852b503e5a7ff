/* png.c: see png.h. Layout (PNG specification, ISO/IEC 15948): the 8-byte
   signature, then chunks of [length (4 bytes, big-endian, data only)]
   [type (4 ASCII bytes)] [data] [CRC-32 of type and data]: IHDR, tEXt, IDAT,
   IEND. */
#include "png.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "textbuf.h"

static void put_u32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Appends one chunk at *pos of out (which has room for it). */
static void put_chunk(unsigned char *out, size_t *pos, const char type[4], const unsigned char *data, size_t n) {
    unsigned char *p = out + *pos;
    put_u32(p, (uint32_t)n);
    memcpy(p + 4, type, 4);
    if (n) memcpy(p + 8, data, n);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, p + 4, (uInt)(n + 4));
    put_u32(p + 8 + n, (uint32_t)crc);
    *pos += n + 12;
}

static int paeth(int a, int b, int c) {
    int p = a + b - c;
    int pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    if (pa <= pb && pa <= pc) return a;
    return pb <= pc ? b : c;
}

/* Filters one scanline (row, previous row or NULL for the first) with
   filter type `type` into out (row_bytes long). Bytes left of the row and the
   row above the first are 0 (PNG spec §9). */
static void filter_row(int type, const uint8_t *row, const uint8_t *prev, size_t row_bytes, uint8_t *out) {
    const size_t bpp = 3;
    for (size_t i = 0; i < row_bytes; i++) {
        int a = i >= bpp ? row[i - bpp] : 0;
        int b = prev ? prev[i] : 0;
        int c = prev && i >= bpp ? prev[i - bpp] : 0;
        int predicted = 0;
        switch (type) {
        case 1: predicted = a; break;
        case 2: predicted = b; break;
        case 3: predicted = (a + b) / 2; break;
        case 4: predicted = paeth(a, b, c); break;
        default: predicted = 0;
        }
        out[i] = (uint8_t)(row[i] - predicted);
    }
}

/* The usual heuristic: the filter whose output, read as signed bytes, has
   the smallest sum of magnitudes. */
static unsigned long filtered_cost(const uint8_t *f, size_t n) {
    unsigned long sum = 0;
    for (size_t i = 0; i < n; i++) sum += (unsigned long)abs((int)(int8_t)f[i]);
    return sum;
}

int png_encode_rgb(const uint8_t *rgb, int w, int h, unsigned char **out, size_t *out_len, Err *err) {
    *out = NULL;
    *out_len = 0;
    if (w <= 0 || h <= 0 || w > (1 << 24) || h > (1 << 24)) return err_set(err, "png: bad image size %dx%d", w, h);
    size_t row_bytes = (size_t)w * 3, raw_len = (row_bytes + 1) * (size_t)h;
    uint8_t *raw = malloc(raw_len), *trial = malloc(row_bytes);
    uLongf z_len = compressBound((uLong)raw_len);
    unsigned char *z = malloc(z_len);
    if (!raw || !trial || !z) {
        free(raw), free(trial), free(z);
        return err_set(err, "png: out of memory for a %dx%d image", w, h);
    }
    for (int y = 0; y < h; y++) {
        const uint8_t *row = rgb + (size_t)y * row_bytes, *prev = y ? row - row_bytes : NULL;
        uint8_t *dst = raw + (size_t)y * (row_bytes + 1);
        unsigned long best_cost = 0;
        for (int type = 0; type <= 4; type++) {
            filter_row(type, row, prev, row_bytes, trial);
            unsigned long cost = filtered_cost(trial, row_bytes);
            if (type == 0 || cost < best_cost) {
                best_cost = cost;
                dst[0] = (uint8_t)type;
                memcpy(dst + 1, trial, row_bytes);
            }
        }
    }
    int zrc = compress2(z, &z_len, raw, (uLong)raw_len, 9);
    free(raw), free(trial);
    if (zrc != Z_OK) {
        free(z);
        return err_set(err, "png: zlib compress2 failed (%d)", zrc);
    }
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const char software[] = "Software\0hymeval";
    unsigned char ihdr[13];
    put_u32(ihdr, (uint32_t)w);
    put_u32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8;  /* bit depth */
    ihdr[9] = 2;  /* colour type: RGB */
    ihdr[10] = 0; /* compression: deflate */
    ihdr[11] = 0; /* filter method: adaptive, five types */
    ihdr[12] = 0; /* no interlace */
    size_t total = sizeof signature + (12 + sizeof ihdr) + (12 + sizeof software - 1) + (12 + z_len) + 12;
    unsigned char *file = malloc(total);
    if (!file) {
        free(z);
        return err_set(err, "png: out of memory");
    }
    size_t pos = 0;
    memcpy(file, signature, sizeof signature);
    pos += sizeof signature;
    put_chunk(file, &pos, "IHDR", ihdr, sizeof ihdr);
    put_chunk(file, &pos, "tEXt", (const unsigned char *)software, sizeof software - 1);
    put_chunk(file, &pos, "IDAT", z, z_len);
    put_chunk(file, &pos, "IEND", NULL, 0);
    free(z);
    *out = file;
    *out_len = pos;
    return 0;
}

int png_write_rgb(const char *path, const uint8_t *rgb, int w, int h, Err *err) {
    unsigned char *data;
    size_t n;
    if (png_encode_rgb(rgb, w, h, &data, &n, err)) return err_prefix(err, "%s", path);
    int rc = write_file_atomic(path, data, n, err);
    free(data);
    return rc;
}
