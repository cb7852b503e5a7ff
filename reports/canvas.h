/* canvas.h: a small RGB raster for the report pictures: rectangles, lines,
   and text in a built-in bitmap font (5x7 glyphs with 2-row descenders, ASCII
   32-126, drawn at an integer scale; scale 2 reads well on a slide). */
#ifndef HYMEVAL_CANVAS_H
#define HYMEVAL_CANVAS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef uint32_t Rgb; /* 0xRRGGBB */

typedef struct {
    int w, h;
    uint8_t *px; /* h rows of w pixels, 3 bytes each (R, G, B) */
} Canvas;

/* Font metrics at scale 1: each character advances CANVAS_GLYPH_ADVANCE
   pixels; a line is CANVAS_GLYPH_HEIGHT pixels from the top of capitals to
   the bottom of descenders. */
enum { CANVAS_GLYPH_ADVANCE = 6, CANVAS_GLYPH_HEIGHT = 9, CANVAS_CAP_HEIGHT = 7 };

int canvas_init(Canvas *c, int w, int h, Rgb background, Err *err);
void canvas_free(Canvas *c);

void canvas_pixel(Canvas *c, int x, int y, Rgb color);
void canvas_fill_rect(Canvas *c, int x, int y, int w, int h, Rgb color);
/* The outline of a rectangle, 1 pixel wide, inside (x, y, w, h). */
void canvas_rect(Canvas *c, int x, int y, int w, int h, Rgb color);
/* A straight line of the given thickness (square pen centred on the line). */
void canvas_line(Canvas *c, int x0, int y0, int x1, int y1, int thickness, Rgb color);

/* Width and height in pixels of text drawn at scale (UTF-8: one glyph per
   code point; those outside ASCII show as '?'). */
int canvas_text_width(const char *text, int scale);
int canvas_text_height(int scale);

/* Horizontal alignment relative to x and vertical relative to y. */
typedef enum { ALIGN_START, ALIGN_CENTER, ALIGN_END } Align;

/* Text with its box's top-left corner at (x, y) before alignment; `bold`
   draws it twice, one pixel apart. */
void canvas_text(Canvas *c, int x, int y, const char *text, int scale, Rgb color, Align halign, Align valign,
                 int bold);
/* Text rotated 90 degrees anticlockwise (reads bottom to top), centred on
   (cx, cy): for vertical axis titles. */
void canvas_text_up(Canvas *c, int cx, int cy, const char *text, int scale, Rgb color, int bold);

int canvas_encode_png(const Canvas *c, unsigned char **out, size_t *out_len, Err *err);
int canvas_write_png(const Canvas *c, const char *path, Err *err);

#endif
