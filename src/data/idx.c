/* IDX files (MNIST, Fashion-MNIST): big-endian typed n-dimensional arrays. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/fileio.h"
#include "lethe/loaders.h"

const char *lethe_idx_type_name(lethe_idx_type t)
{
    switch (t) {
    case LETHE_IDX_U8: return "ubyte";
    case LETHE_IDX_I8: return "sbyte";
    case LETHE_IDX_I16: return "short";
    case LETHE_IDX_I32: return "int";
    case LETHE_IDX_F32: return "float";
    case LETHE_IDX_F64: return "double";
    }
    return "unknown";
}

static size_t type_size(unsigned t)
{
    switch (t) {
    case LETHE_IDX_U8:
    case LETHE_IDX_I8: return 1;
    case LETHE_IDX_I16: return 2;
    case LETHE_IDX_I32:
    case LETHE_IDX_F32: return 4;
    case LETHE_IDX_F64: return 8;
    }
    return 0;
}

void lethe_idx_free(lethe_idx *x)
{
    if (!x)
        return;
    free(x->data);
    memset(x, 0, sizeof *x);
}

/* "10000x28x28" into buf. */
static const char *dims_text(const lethe_idx *x, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < x->ndim && k < cap; i++) {
        int w = snprintf(buf + k, cap - k, "%s%lu", i ? "x" : "", (unsigned long)x->dims[i]);
        if (w < 0)
            break;
        k += (size_t)w;
    }
    return buf;
}

/* Validate the header and the total length; fill x (not x->data) and the
 * header size. */
static lethe_status parse_header(const unsigned char *buf, size_t len, const char *name,
                                 lethe_idx *x, size_t *header)
{
    memset(x, 0, sizeof *x);
    if (len < 4)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: truncated IDX header (%zu bytes, need 4)", name,
                          len);
    if (buf[0] != 0 || buf[1] != 0)
        return lethe_fail(LETHE_ERR_FORMAT,
                          "%s: not an IDX file (magic %02x %02x %02x %02x, expected 00 00 TYPE "
                          "NDIM)%s",
                          name, buf[0], buf[1], buf[2], buf[3],
                          buf[0] == 0x1f && buf[1] == 0x8b ? "; it is gzip data" : "");
    size_t es = type_size(buf[2]);
    if (!es)
        return lethe_fail(LETHE_ERR_FORMAT,
                          "%s: unknown IDX element type 0x%02x (expected 08 ubyte, 09 sbyte, "
                          "0b short, 0c int, 0d float or 0e double)",
                          name, buf[2]);
    int ndim = buf[3];
    if (ndim == 0)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: IDX header declares 0 dimensions", name);
    if (ndim > LETHE_IDX_MAX_DIMS)
        return lethe_fail(LETHE_ERR_UNSUPPORTED, "%s: IDX file has %d dimensions, at most %d are "
                          "supported", name, ndim, LETHE_IDX_MAX_DIMS);
    size_t hdr = 4 + 4 * (size_t)ndim;
    if (len < hdr)
        return lethe_fail(LETHE_ERR_FORMAT,
                          "%s: truncated IDX header (%d dimensions need %zu bytes, the data "
                          "has %zu)",
                          name, ndim, hdr, len);
    x->type = (lethe_idx_type)buf[2];
    x->ndim = ndim;
    x->elem_size = es;
    size_t count = 1, bytes;
    int overflow = 0;
    for (int i = 0; i < ndim; i++) {
        const unsigned char *d = buf + 4 + 4 * i;
        x->dims[i] = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
        overflow |= __builtin_mul_overflow(count, (size_t)x->dims[i], &count);
    }
    overflow |= __builtin_mul_overflow(count, es, &bytes);
    char dt[LETHE_IDX_MAX_DIMS * 11 + 1];
    if (overflow)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: IDX dimensions %s of %s overflow the size of "
                          "memory", name, dims_text(x, dt, sizeof dt), lethe_idx_type_name(x->type));
    size_t have = len - hdr;
    if (have < bytes)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: IDX data truncated: %s %s needs %zu bytes, the "
                          "file has %zu", name, dims_text(x, dt, sizeof dt),
                          lethe_idx_type_name(x->type), bytes, have);
    if (have > bytes)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: %zu trailing bytes after the IDX data (%s %s "
                          "needs %zu bytes)", name, have - bytes, dims_text(x, dt, sizeof dt),
                          lethe_idx_type_name(x->type), bytes);
    x->count = count;
    *header = hdr;
    return LETHE_OK;
}

/* Big-endian elements to host order, in place. */
static void to_host(unsigned char *p, size_t count, size_t es)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    (void)p;
    (void)count;
    (void)es;
#else
    if (es == 1)
        return;
    for (size_t i = 0; i < count; i++, p += es)
        for (size_t a = 0, b = es - 1; a < b; a++, b--) {
            unsigned char t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
#endif
}

lethe_status lethe_idx_parse(const unsigned char *buf, size_t len, const char *name,
                             lethe_idx *out)
{
    size_t hdr;
    lethe_status st = parse_header(buf, len, name, out, &hdr);
    if (st != LETHE_OK)
        return st;
    size_t bytes = len - hdr;
    out->data = malloc(bytes ? bytes : 1);
    if (!out->data) {
        lethe_idx_free(out);
        return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory for %zu bytes", name, bytes);
    }
    memcpy(out->data, buf + hdr, bytes);
    to_host(out->data, out->count, out->elem_size);
    return LETHE_OK;
}

lethe_status lethe_idx_read(const char *path, lethe_idx *out)
{
    memset(out, 0, sizeof *out);
    unsigned char *data;
    size_t len, hdr;
    lethe_status st = lethe_file_read_gz(path, &data, &len);
    if (st != LETHE_OK)
        return st;
    if ((st = parse_header(data, len, path, out, &hdr)) != LETHE_OK) {
        free(data);
        return st;
    }
    /* Keep the read buffer: move the elements to its start. */
    memmove(data, data + hdr, len - hdr);
    out->data = data;
    to_host(out->data, out->count, out->elem_size);
    return LETHE_OK;
}

void lethe_idx_to_float(const lethe_idx *x, float scale, float *out)
{
    const void *d = x->data;
    size_t n = x->count;
    switch (x->type) {
    case LETHE_IDX_U8:
        for (size_t i = 0; i < n; i++)
            out[i] = (float)((const uint8_t *)d)[i] * scale;
        break;
    case LETHE_IDX_I8:
        for (size_t i = 0; i < n; i++)
            out[i] = (float)((const int8_t *)d)[i] * scale;
        break;
    case LETHE_IDX_I16:
        for (size_t i = 0; i < n; i++)
            out[i] = (float)((const int16_t *)d)[i] * scale;
        break;
    case LETHE_IDX_I32:
        for (size_t i = 0; i < n; i++)
            out[i] = (float)((double)((const int32_t *)d)[i] * scale);
        break;
    case LETHE_IDX_F32:
        for (size_t i = 0; i < n; i++)
            out[i] = ((const float *)d)[i] * scale;
        break;
    case LETHE_IDX_F64:
        for (size_t i = 0; i < n; i++)
            out[i] = (float)(((const double *)d)[i] * scale);
        break;
    }
}
