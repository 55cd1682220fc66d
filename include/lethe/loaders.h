/* File-format readers: JSON Lines, CSV, IDX (MNIST).
 *
 * Each reader parses from memory (`..._parse`, used by the fuzzers) or from a
 * path (`..._read`; gzip-compressed files are inflated transparently). Any
 * problem in the input gives a status and a one-line detail naming the file,
 * the line where it applies, and the problem. */
#ifndef LETHE_LOADERS_H
#define LETHE_LOADERS_H

#include <stddef.h>
#include <stdint.h>

#include "lethe/json.h"
#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

/* ---- JSON Lines ------------------------------------------------------- */

/* One JSON object per line (the TOFU layout: question, answer,
 * paraphrased_answer, perturbed_answer[], paraphrased_question). Blank
 * lines are skipped; "\r\n" line ends are accepted. */
typedef struct lethe_jsonl {
    cJSON **rows;  /* n parsed objects, in file order */
    size_t *lines; /* lines[i]: the 1-based line rows[i] came from */
    size_t n;
    char *name;    /* the file name given, for messages */
} lethe_jsonl;

/* Parse buf[0..len); `name` labels messages. A bad line fails with
 * LETHE_ERR_FORMAT "NAME:LINE:COL: invalid JSON near '...'" or
 * "NAME:LINE: expected a JSON object, got an array". On success the caller
 * owns *out and frees it with lethe_jsonl_free; on failure *out is empty. */
lethe_status lethe_jsonl_parse(const char *buf, size_t len, const char *name, lethe_jsonl *out);
lethe_status lethe_jsonl_read(const char *path, lethe_jsonl *out);
/* Frees the rows and arrays and zeroes *j; a zeroed or NULL j is a no-op. */
void lethe_jsonl_free(lethe_jsonl *j);

/* "NAME:LINE" for row i, written into buf (cap bytes), for the `where` of
 * the lethe_json_get_* getters. Returns buf. */
const char *lethe_jsonl_where(const lethe_jsonl *j, size_t i, char *buf, size_t cap);

/* ---- CSV -------------------------------------------------------------- */

typedef struct lethe_csv_opts {
    /* Field separator: ',' (used when 0), ';', '\t', ... or ' ', which
     * means "runs of spaces and tabs", with leading and trailing blanks
     * ignored and no quoting (sklearn's diabetes and linnerud files). */
    char delim;
    int header;        /* the first record holds column names */
    size_t skip_lines; /* physical lines skipped before parsing (sklearn's count line) */
    size_t max_rows;   /* stop after this many data rows; 0 = all */
} lethe_csv_opts;

/* A table of strings. With a delimiter other than ' ', fields follow RFC
 * 4180: a field may be quoted, a quote inside is doubled, and a quoted field
 * may hold the delimiter and line breaks. Records end at "\n" or "\r\n";
 * empty lines are skipped; a leading UTF-8 byte-order mark is ignored. Every
 * record must have as many fields as the first. */
typedef struct lethe_csv {
    size_t n_rows, n_cols;
    char **header; /* n_cols column names when opts.header, else NULL */
    char **cells;  /* n_rows * n_cols NUL-terminated fields, row-major */
    size_t *lines; /* lines[r]: the 1-based line where data row r starts */
    char *name;    /* the file name given, for messages */
    char *store;   /* backing text of header and cells */
} lethe_csv;

/* Parse buf[0..len); opts may be NULL (comma, no header). Failures are
 * LETHE_ERR_FORMAT, e.g. "NAME:LINE: row has 3 fields, expected 4" or
 * "NAME:LINE: unterminated quoted field". Caller frees with lethe_csv_free. */
lethe_status lethe_csv_parse(const char *buf, size_t len, const char *name,
                             const lethe_csv_opts *opts, lethe_csv *out);
lethe_status lethe_csv_read(const char *path, const lethe_csv_opts *opts, lethe_csv *out);
void lethe_csv_free(lethe_csv *c); /* zeroes *c; NULL or zeroed is a no-op */

/* The field at (row, col); both must be in range. */
const char *lethe_csv_cell(const lethe_csv *c, size_t row, size_t col);

/* The index of the column named `name` (needs a header);
 * LETHE_ERR_NOT_FOUND listing the columns otherwise. */
lethe_status lethe_csv_column(const lethe_csv *c, const char *name, size_t *col);

/* Convert columns [col, col + ncols) of every row to numbers, into the
 * caller's out[n_rows * ncols] (row-major). Surrounding blanks are allowed;
 * an empty, non-numeric or non-finite cell (or, for float, one beyond its
 * range) fails with "NAME:LINE: column 'x': 'abc' is not a number".
 * The column range must lie within the table (LETHE_ERR_INVALID otherwise). */
lethe_status lethe_csv_to_double(const lethe_csv *c, size_t col, size_t ncols, double *out);
lethe_status lethe_csv_to_float(const lethe_csv *c, size_t col, size_t ncols, float *out);

/* ---- IDX -------------------------------------------------------------- */

/* The IDX format of MNIST and Fashion-MNIST: magic 00 00 TT DD, DD
 * big-endian u32 dimensions, then the elements big-endian, row-major. */
typedef enum lethe_idx_type {
    LETHE_IDX_U8 = 0x08,
    LETHE_IDX_I8 = 0x09,
    LETHE_IDX_I16 = 0x0B,
    LETHE_IDX_I32 = 0x0C,
    LETHE_IDX_F32 = 0x0D,
    LETHE_IDX_F64 = 0x0E
} lethe_idx_type;

#define LETHE_IDX_MAX_DIMS 16

typedef struct lethe_idx {
    lethe_idx_type type;
    int ndim;                          /* 1..LETHE_IDX_MAX_DIMS */
    uint32_t dims[LETHE_IDX_MAX_DIMS]; /* dims[0] is the item count */
    size_t count;                      /* product of dims */
    size_t elem_size;                  /* 1, 2, 4 or 8 */
    /* count * elem_size bytes in host byte order: uint8_t for U8, int8_t,
     * int16_t, int32_t, float or double for the others. malloc'd. */
    unsigned char *data;
} lethe_idx;

/* Parse buf[0..len) (copied; buf stays the caller's). Fails with
 * LETHE_ERR_FORMAT for a bad magic, an unknown type, a dimension count of 0,
 * a truncated header, or a length other than exactly 4 + 4 * ndim +
 * count * elem_size (with an overflow check); more than LETHE_IDX_MAX_DIMS
 * dimensions gives LETHE_ERR_UNSUPPORTED. Caller frees with lethe_idx_free. */
lethe_status lethe_idx_parse(const unsigned char *buf, size_t len, const char *name,
                             lethe_idx *out);
lethe_status lethe_idx_read(const char *path, lethe_idx *out);
void lethe_idx_free(lethe_idx *x); /* zeroes *x; NULL or zeroed is a no-op */

/* out[i] = element i * scale, for any element type (scale 1/255 maps
 * ubyte pixels to [0, 1]). out holds x->count floats. */
void lethe_idx_to_float(const lethe_idx *x, float scale, float *out);

/* "ubyte", "sbyte", "short", "int", "float", "double". */
const char *lethe_idx_type_name(lethe_idx_type t);

LETHE_API_END
#endif
