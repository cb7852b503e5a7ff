/* png.h: a PNG encoder for 8-bit RGB images (colour type 2, no interlace).
   Each scanline gets the filter (None, Sub, Up, Average or Paeth) with the
   smallest sum of absolute filtered bytes; the filtered data is compressed
   with zlib's compress2 into one IDAT chunk; chunk CRCs are zlib's crc32. */
#ifndef HYMEVAL_PNG_H
#define HYMEVAL_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* rgb: h rows of w pixels, 3 bytes each, top row first. The PNG file's bytes
   are returned in *out (caller frees) and *out_len. */
int png_encode_rgb(const uint8_t *rgb, int w, int h, unsigned char **out, size_t *out_len, Err *err);
int png_write_rgb(const char *path, const uint8_t *rgb, int w, int h, Err *err);

#endif
