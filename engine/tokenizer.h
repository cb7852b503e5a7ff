/* tokenizer.h: Hugging Face tokenizer.json (BPE with byte fallback and the
   SentencePiece-style normaliser/decoder of Llama-2), encode and decode,
   byte-for-byte as the `tokenizers` library does. */
#ifndef HYMEVAL_TOKENIZER_H
#define HYMEVAL_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct Tokenizer Tokenizer;

/* path: a tokenizer.json file, or a directory holding tokenizer.json (and
   optionally tokenizer_config.json, which decides add_bos_token). */
Tokenizer *tokenizer_load(const char *path, Err *err);
void tokenizer_free(Tokenizer *tok);

/* Encodes len bytes of text. Special/added tokens in the text are matched as
   the library does. add_bos: 1 prepends BOS, 0 never, -1 follows the
   tokenizer's own default (post_processor / tokenizer_config.json). When BOS
   is added, so is anything the post_processor template puts after the text
   (as add_special_tokens=True does; Llama-2's template puts nothing there).
   *ids is malloc'd; returns 0, or -1 with err set (e.g. out of memory). */
int tokenizer_encode(const Tokenizer *tok, const char *text, size_t len, int add_bos,
                     int32_t **ids, size_t *n_ids, Err *err);

/* Decodes ids to a malloc'd NUL-terminated UTF-8 string (the library's
   decode(ids, skip_special_tokens=skip_special)). NULL only on out of memory. */
char *tokenizer_decode(const Tokenizer *tok, const int32_t *ids, size_t n_ids, int skip_special);
/* The same, also giving the length in bytes: decoded text may hold NUL bytes
   (from <0x00>), which a plain C string cannot show. out_len may be NULL. */
char *tokenizer_decode_len(const Tokenizer *tok, const int32_t *ids, size_t n_ids, int skip_special,
                           size_t *out_len);

/* The vocabulary string of one id (e.g. "▁the", "<0x0A>", "<s>"); NULL if out of range. */
const char *tokenizer_piece(const Tokenizer *tok, int32_t id);
/* Id of an exact vocabulary/added-token string, or -1. */
int32_t tokenizer_lookup(const Tokenizer *tok, const char *piece);

int32_t tokenizer_vocab_size(const Tokenizer *tok); /* 1 + largest id */
int32_t tokenizer_bos_id(const Tokenizer *tok);     /* -1 if none */
int32_t tokenizer_eos_id(const Tokenizer *tok);     /* -1 if none */
int tokenizer_adds_bos(const Tokenizer *tok);       /* the default for add_bos = -1 */

#endif
