// A small C API over libsentencepiece's C++ SentencePieceProcessor, so the Swift targets need no
// C++ interop. Every function that can fail returns an error message through `error` (a buffer
// of `error_size` bytes the caller owns), never aborts.
#ifndef HARP_CSENTENCEPIECE_H
#define HARP_CSENTENCEPIECE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hsp_processor hsp_processor;

// Loads a `tokenizer.model` file; NULL on failure (message in `error`).
hsp_processor *hsp_load_file(const char *path, char *error, size_t error_size);
// Loads a serialized ModelProto held in memory; NULL on failure (message in `error`).
hsp_processor *hsp_load_serialized(const void *bytes, size_t count, char *error, size_t error_size);
void hsp_free(hsp_processor *processor);

// Token ids of `count` bytes of UTF-8 text. Returns the number of ids, which may exceed
// `capacity` (only the first `capacity` are written: call again with a larger buffer), or -1 on
// failure (message in `error`).
int64_t hsp_encode(const hsp_processor *processor, const char *text, size_t count,
                   int32_t *ids, int64_t capacity, char *error, size_t error_size);

// Vocabulary.
int32_t hsp_piece_count(const hsp_processor *processor);
// The piece's bytes (valid as long as the processor) and their count in *length; NULL for an id out of range.
const char *hsp_piece(const hsp_processor *processor, int32_t id, size_t *length);
float hsp_score(const hsp_processor *processor, int32_t id);

// Piece kinds, numbered like GGUF's tokenizer.ggml.token_type (SentencePiece's ModelProto
// types): 1 normal, 2 unknown, 3 control, 5 unused, 6 byte. User-defined pieces report 1
// (the library does not expose that kind).
int32_t hsp_piece_type(const hsp_processor *processor, int32_t id);

// Special ids from the model's trainer spec; -1 when the model has none.
int32_t hsp_unk_id(const hsp_processor *processor);
int32_t hsp_bos_id(const hsp_processor *processor);
int32_t hsp_eos_id(const hsp_processor *processor);
int32_t hsp_pad_id(const hsp_processor *processor);

#ifdef __cplusplus
}
#endif

#endif
