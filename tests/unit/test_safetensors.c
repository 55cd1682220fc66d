/* safetensors: fixtures from an independent writer (tests/ref/make_safetensors.py),
 * round trips, golden writer bytes, and every malformed case the reader rejects. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../test.h"
#include "lethe/fileio.h"
#include "lethe/safetensors.h"

static const char *st_tmp(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "/tmp/lethe-test-%ld-%s", (long)getpid(), name);
    return buf;
}

TEST(st_dtype_names)
{
    for (int d = 0; d < LETHE_DTYPE_COUNT; d++) {
        lethe_dtype back;
        CHECK(lethe_dtype_from_name(lethe_dtype_name((lethe_dtype)d), &back));
        CHECK(back == (lethe_dtype)d);
    }
    lethe_dtype d;
    CHECK(!lethe_dtype_from_name("F128", &d));
    CHECK(!lethe_dtype_from_name("f32", &d));
    CHECK(lethe_dtype_from_name("F8_E4M3", &d) && lethe_dtype_bits(d) == 8);
    CHECK(lethe_dtype_from_name("F6_E3M2", &d) && lethe_dtype_bits(d) == 6);
    CHECK(lethe_dtype_from_name("F4", &d) && lethe_dtype_bits(d) == 4);
    CHECK(lethe_dtype_from_name("C64", &d) && lethe_dtype_bits(d) == 64);
    CHECK(lethe_dtype_bits(LETHE_DTYPE_BF16) == 16);
    CHECK(lethe_dtype_to_f32_supported(LETHE_DTYPE_BF16));
    CHECK(!lethe_dtype_to_f32_supported(LETHE_DTYPE_U16));
}

/* Exact equality, with NaN matching NaN and the sign of zero checked. */
static int same_float(float got, const cJSON *want)
{
    if (cJSON_IsString(want)) {
        const char *s = want->valuestring;
        if (!strcmp(s, "nan"))
            return isnan(got);
        return isinf(got) && (got > 0) == !strcmp(s, "inf");
    }
    float w = (float)want->valuedouble;
    return got == w && signbit(got) == signbit(w);
}

TEST(st_reads_independent_fixture)
{
    unsigned char *text;
    size_t text_len;
    CHECK_OK(lethe_file_read(FIXTURES "st_mixed.json", &text, &text_len));
    cJSON *want = cJSON_ParseWithLength((const char *)text, text_len);
    free(text);
    CHECK(want);
    lethe_safetensors *st;
    lethe_status s = lethe_safetensors_open(FIXTURES "st_mixed.safetensors", &st);
    if (s != LETHE_OK)
        cJSON_Delete(want);
    CHECK_OK(s);
    int ok = 1;
    const cJSON *wt = cJSON_GetObjectItem(want, "tensors");
    const cJSON *wm = cJSON_GetObjectItem(want, "metadata");
    ok &= st->n_tensors == (size_t)cJSON_GetArraySize(wt);
    ok &= st->n_meta == (size_t)cJSON_GetArraySize(wm);
    for (const cJSON *m = wm->child; ok && m; m = m->next) {
        const char *v = lethe_safetensors_meta(st, m->string);
        ok &= v && !strcmp(v, m->valuestring);
    }
    /* Metadata entries come sorted by key. */
    for (size_t i = 1; ok && i < st->n_meta; i++)
        ok &= strcmp(st->meta[i - 1].key, st->meta[i].key) < 0;
    /* Tensors come in data order: the file's first tensor is "flag". */
    ok &= st->n_tensors > 0 && !strcmp(st->tensors[0].name, "flag");
    for (size_t i = 1; ok && i < st->n_tensors; i++)
        ok &= st->tensors[i - 1].end == st->tensors[i].begin;
    float buf[64];
    for (const cJSON *e = wt->child; ok && e; e = e->next) {
        const char *name = cJSON_GetObjectItem(e, "name")->valuestring;
        const lethe_st_tensor *t = lethe_safetensors_find(st, name);
        const char *dtype = cJSON_GetObjectItem(e, "dtype")->valuestring;
        if (!t || strcmp(lethe_dtype_name(t->dtype), dtype)) {
            test_fail_at(__FILE__, __LINE__, "tensor %s missing or wrong dtype", name);
            ok = 0;
            break;
        }
        const cJSON *shape = cJSON_GetObjectItem(e, "shape");
        ok &= t->rank == (size_t)cJSON_GetArraySize(shape);
        size_t d = 0, numel = 1;
        for (const cJSON *v = shape->child; ok && v; v = v->next, d++) {
            ok &= t->shape[d] == (size_t)v->valuedouble;
            numel *= t->shape[d];
        }
        ok &= t->numel == numel && numel <= 64;
        const cJSON *vals = cJSON_GetObjectItem(e, "values");
        if (!ok)
            break;
        if (cJSON_IsNull(vals)) {
            ok &= lethe_safetensors_to_f32(st, t, buf) == LETHE_ERR_UNSUPPORTED;
            ok &= strstr(lethe_error_detail(), "st_mixed.safetensors") &&
                  strstr(lethe_error_detail(), name) && strstr(lethe_error_detail(), "U16");
            continue;
        }
        ok &= lethe_safetensors_to_f32(st, t, buf) == LETHE_OK;
        ok &= (size_t)cJSON_GetArraySize(vals) == numel;
        size_t i = 0;
        for (const cJSON *v = vals->child; ok && v; v = v->next, i++)
            if (!same_float(buf[i], v)) {
                test_fail_at(__FILE__, __LINE__, "tensor %s value %zu: got %.9g", name, i,
                             (double)buf[i]);
                ok = 0;
            }
    }
    const lethe_st_tensor *sc = lethe_safetensors_find(st, "scalar");
    const lethe_st_tensor *em = lethe_safetensors_find(st, "empty");
    ok &= sc && sc->rank == 0 && sc->shape == NULL && sc->numel == 1;
    ok &= em && em->rank == 2 && em->numel == 0 && em->begin == em->end;
    ok &= lethe_safetensors_find(st, "nope") == NULL &&
          strstr(lethe_error_detail(), "no tensor named 'nope'") != NULL;
    lethe_safetensors_free(st);
    cJSON_Delete(want);
    CHECK(ok);
}

TEST(st_load_f32_checks_shape)
{
    lethe_safetensors *st;
    CHECK_OK(lethe_safetensors_open(FIXTURES "st_small.safetensors", &st));
    float w[6];
    size_t good[2] = {2, 3}, bad[2] = {3, 2};
    lethe_status a = lethe_safetensors_load_f32(st, "w", 2, good, w);
    lethe_status b = lethe_safetensors_load_f32(st, "w", 2, bad, w);
    int msg_ok = strstr(lethe_error_detail(), "has shape [2, 3], expected [3, 2]") != NULL;
    lethe_status c = lethe_safetensors_load_f32(st, "missing", 2, good, w);
    lethe_safetensors_free(st);
    CHECK(a == LETHE_OK && w[0] == 1.0f && w[5] == 6.0f);
    CHECK(b == LETHE_ERR_FORMAT && msg_ok);
    CHECK(c == LETHE_ERR_NOT_FOUND);
}

TEST(st_write_read_round_trip)
{
    float a[6] = {1.5f, -2.0f, 0.0f, -0.0f, 3e-45f, 1e30f}, z = 9.25f, nanv = NAN;
    size_t sa[2] = {2, 3}, se[2] = {4, 0}, sn[1] = {1};
    lethe_st_f32 ts[] = {
        {"layer.0.w", 2, sa, a}, {"scalar", 0, NULL, &z}, {"empty", 2, se, NULL},
        {"nan", 1, sn, &nanv},
    };
    lethe_st_meta meta[] = {{"arch", "mlp"}, {"quote", "a \"b\"\\c\n\x01"}};
    const char *path = st_tmp("rt.safetensors");
    CHECK_OK(lethe_safetensors_write(path, ts, 4, meta, 2));
    lethe_safetensors *st;
    CHECK_OK(lethe_safetensors_open(path, &st));
    unlink(path);
    int ok = st->n_tensors == 4 && st->n_meta == 2 && (st->header_len + 8) % 8 == 0;
    ok &= !strcmp(lethe_safetensors_meta(st, "quote"), meta[1].value);
    for (size_t i = 0; ok && i < 4; i++) {
        const lethe_st_tensor *t = lethe_safetensors_find(st, ts[i].name);
        float out[6];
        ok &= t && t->dtype == LETHE_DTYPE_F32 && t->rank == ts[i].rank;
        ok &= ok && (!t->rank || !memcmp(t->shape, ts[i].shape, t->rank * sizeof(size_t)));
        ok &= ok && lethe_safetensors_to_f32(st, t, out) == LETHE_OK;
        ok &= ok && (!t->numel || !memcmp(out, ts[i].data, t->numel * sizeof(float)));
    }
    /* Written in name order, so data offsets follow the names. */
    for (size_t i = 1; ok && i < st->n_tensors; i++)
        ok &= strcmp(st->tensors[i - 1].name, st->tensors[i].name) < 0;
    lethe_safetensors_free(st);
    CHECK(ok);
}

/* The writer's bytes equal the independent writer's golden file whatever
 * order tensors and metadata are given in. */
TEST(st_writer_matches_golden_bytes)
{
    float aw[4] = {-1.0f, -0.75f, -0.5f, -0.25f}, b[3] = {0.5f, -1.0f, 2.0f};
    float odd[2] = {1e-3f, -7.0f}, z = 42.0f;
    size_t sa[2] = {2, 2}, sb[1] = {3}, se[1] = {0}, so[2] = {1, 2};
    lethe_st_f32 ts[] = {
        {"z", 0, NULL, &z}, {"odd \"name\"\t/\xc3\xbc", 2, so, odd}, {"b", 1, sb, b},
        {"e", 1, se, NULL}, {"a.weight", 2, sa, aw},
    };
    lethe_st_meta meta[] = {{"seed", "7"}, {"arch", "mlp"}, {"note", "line1\nline2"}};
    unsigned char *want, *got;
    size_t want_len, got_len;
    CHECK_OK(lethe_file_read(FIXTURES "st_written.safetensors", &want, &want_len));
    const char *path = st_tmp("golden.safetensors");
    lethe_status s = lethe_safetensors_write(path, ts, 5, meta, 3);
    if (s == LETHE_OK)
        s = lethe_file_read(path, &got, &got_len);
    unlink(path);
    if (s != LETHE_OK)
        free(want);
    CHECK_OK(s);
    int same = got_len == want_len && !memcmp(got, want, want_len);
    size_t at = 0;
    while (at < got_len && at < want_len && got[at] == want[at])
        at++;
    free(want);
    free(got);
    CHECK_MSG(same, "written file differs from st_written.safetensors at byte %zu", at);
}

TEST(st_writer_rejects_bad_input)
{
    float x = 1.0f;
    size_t s1[1] = {1};
    const char *path = st_tmp("reject.safetensors");
    unlink(path);
    lethe_st_f32 dup[] = {{"w", 1, s1, &x}, {"w", 1, s1, &x}};
    CHECK_STATUS(lethe_safetensors_write(path, dup, 2, NULL, 0), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "'w' given twice"));
    lethe_st_f32 reserved[] = {{"__metadata__", 1, s1, &x}};
    CHECK_STATUS(lethe_safetensors_write(path, reserved, 1, NULL, 0), LETHE_ERR_INVALID);
    lethe_st_f32 badutf[] = {{"w\xff", 1, s1, &x}};
    CHECK_STATUS(lethe_safetensors_write(path, badutf, 1, NULL, 0), LETHE_ERR_INVALID);
    lethe_st_meta mdup[] = {{"k", "1"}, {"k", "2"}};
    CHECK_STATUS(lethe_safetensors_write(path, dup, 1, mdup, 2), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "'k' given twice"));
    CHECK(access(path, F_OK) != 0); /* nothing was left behind */
    CHECK_STATUS(lethe_safetensors_write("/nonexistent-dir/x.safetensors", dup, 1, NULL, 0),
                 LETHE_ERR_IO);
}

/* ---- malformed input ---------------------------------------------------- */

/* 8-byte length, header text, then data_len zero bytes. Caller frees. */
static unsigned char *mk(const char *header, size_t data_len, size_t *len)
{
    size_t n = strlen(header);
    *len = 8 + n + data_len;
    unsigned char *b = calloc(1, *len);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(b + 8, header, n);
    return b;
}

/* Parsing fails with `want`, and the detail is one line holding the file's
 * name and `needle`. Returns 1 when all hold; prints why not otherwise. */
static int rejects(const unsigned char *b, size_t len, lethe_status want, const char *needle)
{
    lethe_safetensors *st = NULL;
    lethe_status s = lethe_safetensors_parse(b, len, "bad.safetensors", &st);
    const char *d = lethe_error_detail();
    int ok = s == want && st == NULL && strstr(d, "bad.safetensors: ") == d &&
             strstr(d, needle) && !strchr(d, '\n');
    if (!ok)
        fprintf(stderr, "    expected %s with '%s', got %s: %s\n", lethe_strerror(want), needle,
                lethe_strerror(s), s == LETHE_OK ? "(parsed)" : d);
    lethe_safetensors_free(st);
    return ok;
}

static int rejects_header(const char *header, size_t data_len, const char *needle)
{
    size_t len;
    unsigned char *b = mk(header, data_len, &len);
    int ok = rejects(b, len, LETHE_ERR_FORMAT, needle);
    free(b);
    return ok;
}

#define TWO "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}," \
            "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}"

TEST(st_malformed_framing)
{
    size_t len;
    unsigned char *b = mk(TWO, 12, &len);
    lethe_safetensors *st;
    CHECK_OK(lethe_safetensors_parse(b, len, "bad.safetensors", &st)); /* the base is valid */
    lethe_safetensors_free(st);
    int ok = rejects(b, len - 1, LETHE_ERR_FORMAT, "truncated: the tensors need 12 data bytes but "
                                                   "only 11");
    ok &= rejects(b, 20, LETHE_ERR_FORMAT, "truncated: header length");
    ok &= rejects(b, 5, LETHE_ERR_FORMAT, "too short");
    ok &= rejects(b, 0, LETHE_ERR_FORMAT, "file is empty");
    unsigned char *big = realloc(b, len + 3);
    CHECK(big);
    b = big;
    memset(b + len, 0, 3);
    ok &= rejects(b, len + 3, LETHE_ERR_FORMAT, "3 trailing bytes");
    b[0] = 0x01, b[1] = 0xe1, b[2] = 0xf5, b[3] = 0x05; /* 100,000,001 */
    ok &= rejects(b, len, LETHE_ERR_FORMAT, "header length 100000001 exceeds the limit");
    b[0] = 0xff, b[4] = 0xff, b[7] = 0xff;
    ok &= rejects(b, len, LETHE_ERR_FORMAT, "exceeds the limit");
    free(b);
    ok &= rejects_header(" " TWO, 12, "does not start with '{'");
    ok &= rejects_header("[1, 2, 3]", 0, "does not start with '{'");
    ok &= rejects_header("{\"a\":", 0, "not valid JSON");
    ok &= rejects_header("{} x", 0, "bytes after its JSON object");
    ok &= rejects_header("{\"\xc3\x28\":1}", 0, "not valid UTF-8");
    CHECK(ok);
}

TEST(st_malformed_layout)
{
    int ok = rejects_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                            "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                            8, "tensor 'b' data_offsets [4, 8] overlap tensor 'a' [0, 8]");
    ok &= rejects_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                         16, "tensor 'b' data_offsets [8, 16] leave a gap after byte 4");
    ok &= rejects_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
                         "leave a gap after byte 0");
    ok &= rejects_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                         8, "tensor name 'a' appears twice");
    ok &= rejects_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
                         "holds 3 F32 elements (12 bytes) but data_offsets [0, 8] span 8 bytes");
    ok &= rejects_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8,
                         "end before they begin");
    ok &= rejects_header("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2,
                         "3 F4 elements, which do not fill whole bytes");
    CHECK(ok);
}

TEST(st_malformed_entries)
{
    int ok = rejects_header("{\"a\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}",
                            16, "tensor 'a' has unknown dtype 'F128'");
    ok &= rejects_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                         "\"data_offsets\":[0,4]}}", 4, "has too many elements (overflow)");
    ok &= rejects_header("{\"a\":{\"dtype\":\"F64\",\"shape\":[1073741824,1073741824],"
                         "\"data_offsets\":[0,4]}}", 4, "overflow");
    ok &= rejects_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[100000000000000000000],"
                         "\"data_offsets\":[0,4]}}", 4, "shape entry 0 is too large");
    ok &= rejects_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,-4],\"data_offsets\":[0,4]}}", 4,
                         "tensor 'a' shape entry 1 (-4) is negative");
    ok &= rejects_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4.5]}}", 4,
                         "header number '4.5' is not an integer");
    ok &= rejects_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4e0]}}", 4,
                         "not an integer");
    ok &= rejects_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[4.0],\"data_offsets\":[0,4]}}", 4,
                         "header number '4.0' is not an integer");
    ok &= rejects_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[04],\"data_offsets\":[0,4]}}", 4,
                         "header number '04' is not valid JSON");
    ok &= rejects_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,\"4\"]}}", 4,
                         "data_offsets end is not a number");
    ok &= rejects_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4,4]}}", 4,
                         "not an array of two integers");
    ok &= rejects_header("{\"a\":{\"dtype\":\"U8\",\"shape\":4,\"data_offsets\":[0,4]}}", 4,
                         "shape is not an array");
    ok &= rejects_header("{\"a\":{\"shape\":[4],\"data_offsets\":[0,4]}}", 4, "lacks 'dtype'");
    ok &= rejects_header("{\"a\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[4],"
                         "\"data_offsets\":[0,4]}}", 4, "two 'dtype' keys");
    ok &= rejects_header("{\"a\":5}", 0, "tensor 'a' is not an object");
    ok &= rejects_header("{\"a\\nb\":5}", 0, "tensor 'a\\x0ab' is not an object");
    ok &= rejects_header("{\"a\x01\":5}", 0, "control byte 0x01");
    size_t len;
    unsigned char *b = mk("{\"a\\u0000b\":5}", 0, &len);
    ok &= rejects(b, len, LETHE_ERR_UNSUPPORTED, "escaped NUL");
    free(b);
    CHECK(ok);
}

TEST(st_malformed_metadata)
{
    int ok = rejects_header("{\"__metadata__\":{\"k\":1}}", 0,
                            "__metadata__ value of 'k' is not a string");
    ok &= rejects_header("{\"__metadata__\":{\"k\":null}}", 0, "value of 'k' is not a string");
    ok &= rejects_header("{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0, "not a string");
    ok &= rejects_header("{\"__metadata__\":[\"k\"]}", 0, "__metadata__ is not a map");
    ok &= rejects_header("{\"__metadata__\":\"k\"}", 0, "__metadata__ is not a map");
    ok &= rejects_header("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0,
                         "__metadata__ key 'k' appears twice");
    ok &= rejects_header("{\"__metadata__\":{},\"__metadata__\":{}}", 0,
                         "__metadata__ appears twice");
    CHECK(ok);
}

/* What the specification allows: an empty header, padding, sub-byte dtypes,
 * unknown keys inside an entry, empty tensors at any boundary. */
TEST(st_accepts_edge_cases)
{
    const char *good[] = {
        "{}",
        "{}      ",
        "{\"__metadata__\":{}}",
        "{\"a\":{\"dtype\":\"F4\",\"shape\":[2,2],\"data_offsets\":[0,2]}}",
        "{\"a\":{\"dtype\":\"F6_E2M3\",\"shape\":[4],\"data_offsets\":[0,3],\"extra\":[1.5]}}",
        "{\"e\":{\"dtype\":\"I64\",\"shape\":[0,5],\"data_offsets\":[3,3]},"
        "\"a\":{\"dtype\":\"I8\",\"shape\":[3],\"data_offsets\":[0,3]}}",
    };
    size_t data[] = {0, 0, 0, 2, 3, 3};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        size_t len;
        unsigned char *b = mk(good[i], data[i], &len);
        lethe_safetensors *st;
        lethe_status s = lethe_safetensors_parse(b, len, "good.safetensors", &st);
        free(b);
        CHECK_MSG(s == LETHE_OK, "case %zu: %s", i, lethe_error_detail());
        lethe_safetensors_free(st);
    }
    float out[1];
    size_t len;
    unsigned char *b = mk(good[3], 2, &len);
    lethe_safetensors *st;
    CHECK_OK(lethe_safetensors_parse(b, len, "good.safetensors", &st));
    lethe_status s = lethe_safetensors_to_f32(st, &st->tensors[0], out);
    int named = strstr(lethe_error_detail(), "tensor 'a' has dtype F4") != NULL;
    lethe_safetensors_free(st);
    free(b);
    CHECK(s == LETHE_ERR_UNSUPPORTED && named);
}

TEST(st_open_reports_io_errors)
{
    lethe_safetensors *st = (lethe_safetensors *)1;
    CHECK_STATUS(lethe_safetensors_open("/nonexistent/m.safetensors", &st), LETHE_ERR_IO);
    CHECK(st == NULL && strstr(lethe_error_detail(), "/nonexistent/m.safetensors"));
    lethe_safetensors_free(NULL);
}
