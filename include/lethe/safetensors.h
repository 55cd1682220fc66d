/* safetensors: reading any file of the format, writing F32 tensors.
 *
 * File layout: an 8-byte little-endian u64 N, N bytes of UTF-8 JSON that
 * begin with '{' (right-padded with spaces), then the data buffer. The JSON
 * maps each tensor name to {"dtype", "shape", "data_offsets": [BEGIN, END]}
 * with offsets relative to the buffer, and may hold "__metadata__", a map of
 * strings to strings. The reader checks the whole specification: header at
 * most 100,000,000 bytes, known dtypes, non-negative integer shapes and
 * offsets, element count times dtype size equal to END - BEGIN, a buffer
 * covered exactly (no gaps, no overlaps, no trailing or missing bytes),
 * unique names. Anything else fails with LETHE_ERR_FORMAT and a one-line
 * detail naming the file and the problem.
 *
 * The writer produces F32 tensors sorted by name (the order the reference
 * writer uses when every tensor has the same dtype; I8 and U8 ones follow
 * the F32 ones with lethe_safetensors_write_typed), metadata keys sorted,
 * compact JSON padded with spaces so the data starts 8-byte aligned, and
 * no timestamps: the same tensors and metadata always give the same bytes,
 * whatever order they are passed in. */
#ifndef LETHE_SAFETENSORS_H
#define LETHE_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>

#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

#define LETHE_SAFETENSORS_MAX_HEADER 100000000u

/* Every dtype of the specification. */
typedef enum lethe_dtype {
    LETHE_DTYPE_BOOL,
    LETHE_DTYPE_U8,
    LETHE_DTYPE_I8,
    LETHE_DTYPE_I16,
    LETHE_DTYPE_U16,
    LETHE_DTYPE_F16,
    LETHE_DTYPE_BF16,
    LETHE_DTYPE_I32,
    LETHE_DTYPE_U32,
    LETHE_DTYPE_F32,
    LETHE_DTYPE_F64,
    LETHE_DTYPE_I64,
    LETHE_DTYPE_U64,
    LETHE_DTYPE_C64,
    LETHE_DTYPE_F8_E4M3,
    LETHE_DTYPE_F8_E5M2,
    LETHE_DTYPE_F8_E8M0,
    LETHE_DTYPE_F6_E2M3,
    LETHE_DTYPE_F6_E3M2,
    LETHE_DTYPE_F4,
    LETHE_DTYPE_COUNT
} lethe_dtype;

/* The specification's name of d ("F32", "F8_E4M3", ...). */
const char *lethe_dtype_name(lethe_dtype d);
/* Look a name up (case-sensitive); false when it names no dtype. */
bool lethe_dtype_from_name(const char *name, lethe_dtype *out);
/* Bits per element: 4 (F4), 6 (F6_*), 8, 16, 32 or 64. */
unsigned lethe_dtype_bits(lethe_dtype d);
/* True for the dtypes lethe_safetensors_to_f32 converts: F32, F16, BF16,
 * F64, I64, I32, U8, BOOL. */
bool lethe_dtype_to_f32_supported(lethe_dtype d);

/* One tensor of a parsed file. Everything is owned by the lethe_safetensors. */
typedef struct lethe_st_tensor {
    char *name;
    lethe_dtype dtype;
    size_t rank;               /* 0 for a scalar */
    size_t *shape;             /* rank entries; NULL when rank is 0 */
    size_t numel;              /* product of shape: 1 for a scalar, 0 if empty */
    size_t begin, end;         /* data_offsets, relative to the data buffer */
    const unsigned char *data; /* end - begin bytes, little-endian, maybe unaligned */
} lethe_st_tensor;

/* A metadata entry. As part of a parsed file it is owned by the file; given
 * to the writer it is only read. */
typedef struct lethe_st_meta {
    char *key;
    char *value;
} lethe_st_meta;

/* A parsed file. Tensors are ordered by data_offsets (then name); metadata
 * entries by key. */
typedef struct lethe_safetensors {
    char *name;               /* the label used in messages (usually the path) */
    size_t n_tensors;
    lethe_st_tensor *tensors;
    size_t n_meta;
    lethe_st_meta *meta;
    size_t header_len;        /* N */
    size_t data_len;          /* bytes in the data buffer */
    unsigned char *owned;     /* the file's bytes when it was opened from a path */
} lethe_safetensors;

/* Parse a whole file held in memory. `name` labels messages. Tensor data
 * points into buf, which must outlive the result. On success *out is a new
 * file to release with lethe_safetensors_free; on failure *out is NULL and
 * the status is LETHE_ERR_FORMAT (or LETHE_ERR_NOMEM) with the detail set. */
lethe_status lethe_safetensors_parse(const unsigned char *buf, size_t len, const char *name,
                                     lethe_safetensors **out);

/* Read and parse the file at `path`; the result owns the file's bytes.
 * A missing or unreadable file gives LETHE_ERR_IO. Free with
 * lethe_safetensors_free. */
lethe_status lethe_safetensors_open(const char *path, lethe_safetensors **out);

/* Frees st and everything it owns. NULL is a no-op. */
void lethe_safetensors_free(lethe_safetensors *st);

/* The tensor called `name`, or NULL when there is none (the detail then
 * says "FILE: no tensor named 'NAME'"). The pointer lives as long as st. */
const lethe_st_tensor *lethe_safetensors_find(const lethe_safetensors *st, const char *name);

/* The metadata value for `key`, or NULL. Owned by st. */
const char *lethe_safetensors_meta(const lethe_safetensors *st, const char *key);

/* Convert t (a tensor of st) to floats: out must hold t->numel floats.
 * F64 and the integers are rounded to the nearest float; BOOL gives 0 or 1.
 * Other dtypes give LETHE_ERR_UNSUPPORTED naming the file, tensor and dtype. */
lethe_status lethe_safetensors_to_f32(const lethe_safetensors *st, const lethe_st_tensor *t,
                                      float *out);

/* Find tensor `name`, check that its shape is exactly shape[0..rank), and
 * convert it into out (which holds the product of shape floats). A missing
 * tensor gives LETHE_ERR_NOT_FOUND, another shape LETHE_ERR_FORMAT. */
lethe_status lethe_safetensors_load_f32(const lethe_safetensors *st, const char *name,
                                        size_t rank, const size_t *shape, float *out);

/* One F32 tensor to write; the writer only reads it. */
typedef struct lethe_st_f32 {
    const char *name;
    size_t rank;
    const size_t *shape; /* rank entries (may be NULL when rank is 0) */
    const float *data;   /* product of shape floats (may be NULL when that is 0) */
} lethe_st_f32;

/* Write tensors[0..n) and meta[0..n_meta) to `path` atomically (a crash
 * leaves any old file intact). Names must be unique, valid UTF-8, and not
 * "__metadata__"; metadata keys unique, keys and values valid UTF-8.
 * Violations give LETHE_ERR_INVALID, write errors LETHE_ERR_IO. */
lethe_status lethe_safetensors_write(const char *path, const lethe_st_f32 *tensors, size_t n,
                                     const lethe_st_meta *meta, size_t n_meta);

/* One tensor of any byte-sized dtype to write (F32, I8 or U8 here): data
 * holds the product of shape elements, little-endian. */
typedef struct lethe_st_out {
    const char *name;
    lethe_dtype dtype;
    size_t rank;
    const size_t *shape;
    const void *data;
} lethe_st_out;

/* lethe_safetensors_write for tensors of mixed dtypes: F32, I8 and U8
 * (others give LETHE_ERR_UNSUPPORTED). The order is the reference writer's:
 * by element size, largest first, then by name, so every tensor stays
 * aligned to its element size. */
lethe_status lethe_safetensors_write_typed(const char *path, const lethe_st_out *tensors,
                                           size_t n, const lethe_st_meta *meta, size_t n_meta);

LETHE_API_END
#endif
