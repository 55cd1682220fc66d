/* Round-to-nearest weight quantization of GPT models (lethe/gpt_quant.h):
 * quantize, read back, the quantized matrix-vector product, and the file. */
#include "lethe/gpt_quant.h"

#include "lethe/gpt_hf.h"
#include "lethe/json.h"
#include "lethe/rundir.h"
#include "lethe/tokenizer.h"
#include "par.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK4 32 /* inputs per packed 4-bit block */

static const char *const mat_suffix[4] = {"attn.c_attn.weight", "attn.c_proj.weight",
                                          "mlp.c_fc.weight", "mlp.c_proj.weight"};

const lethe_qmat *lethe_gpt_quant_block(const lethe_gpt_quant *q, int l, int k)
{
    return &q->mats[1 + 4 * l + k];
}

lethe_status lethe_gpt_quant_check(const lethe_gpt_config *cfg, int bits, int group)
{
    if (bits != 8 && bits != 4)
        return lethe_fail(LETHE_ERR_INVALID, "quantization takes 8 or 4 bits, not %d", bits);
    if (group <= 0 || group % BLOCK4)
        return lethe_fail(LETHE_ERR_INVALID, "the group size must be a positive multiple of %d, "
                          "not %d", BLOCK4, group);
    if (cfg->n_embd % group)
        return lethe_fail(LETHE_ERR_INVALID, "the group size %d does not divide the model's "
                          "width n_embd = %d", group, cfg->n_embd);
    return LETHE_OK;
}

/* The name of matrix i of the table and its F32 tensor in g. */
static const lethe_gpt_tensor *mat_tensor(const lethe_gpt *g, int i)
{
    char name[LETHE_GPT_NAME_MAX];
    if (i == 0)
        return lethe_gpt_find(g, "wte.weight");
    snprintf(name, sizeof name, "h.%d.%s", (i - 1) / 4, mat_suffix[(i - 1) % 4]);
    return lethe_gpt_find(g, name);
}

/* wte is (rows, cols) as stored; the Conv1D weights are (cols, rows). */
static float weight_at(const lethe_gpt *g, const lethe_gpt_tensor *t, int i, long r, long c)
{
    const float *w = g->params + t->offset;
    return i == 0 ? w[r * t->shape[1] + c] : w[c * t->shape[1] + r];
}

static int code_at(const lethe_qmat *m, long r, long c)
{
    if (m->bits == 8)
        return (int8_t)m->q[r * m->cols + c];
    long b = c % BLOCK4;
    uint8_t byte = m->q[(r * m->cols + c - b) / 2 + b % 16];
    return (b < 16 ? byte & 15 : byte >> 4) - 8;
}

static void set_code(lethe_qmat *m, long r, long c, int v)
{
    if (m->bits == 8) {
        m->q[r * m->cols + c] = (uint8_t)(int8_t)v;
        return;
    }
    long b = c % BLOCK4;
    uint8_t *byte = &m->q[(r * m->cols + c - b) / 2 + b % 16];
    uint8_t u = (uint8_t)(v + 8);
    *byte = b < 16 ? (uint8_t)((*byte & 0xf0) | u) : (uint8_t)((*byte & 0x0f) | u << 4);
}

static size_t code_bytes(const lethe_qmat *m)
{
    return (size_t)m->rows * (size_t)m->cols / (m->bits == 8 ? 1 : 2);
}

static lethe_status mat_alloc(lethe_qmat *m, int rows, int cols, int bits, int group)
{
    *m = (lethe_qmat){rows, cols, bits, group, NULL, NULL};
    m->q = calloc(code_bytes(m), 1);
    m->scales = malloc(sizeof(float) * (size_t)rows * (size_t)(cols / group));
    return m->q && m->scales ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
}

static lethe_status quant_new(const lethe_gpt_config *cfg, int bits, int group,
                              lethe_gpt_quant **out)
{
    lethe_gpt_quant *q = calloc(1, sizeof *q);
    int n = 1 + 4 * cfg->n_layer, C = cfg->n_embd;
    if (!q || !(q->mats = calloc((size_t)n, sizeof *q->mats))) {
        free(q);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    q->bits = bits, q->group = group, q->n_mats = n;
    static const int out_mult[4] = {3, 1, 4, 1}, in_mult[4] = {1, 1, 1, 4};
    lethe_status st = mat_alloc(&q->mats[0], cfg->vocab_size, C, bits, group);
    for (int i = 1; i < n && st == LETHE_OK; i++)
        st = mat_alloc(&q->mats[i], out_mult[(i - 1) % 4] * C, in_mult[(i - 1) % 4] * C, bits,
                       group);
    if (st != LETHE_OK)
        lethe_gpt_quant_free(q), q = NULL;
    *out = q;
    return st;
}

void lethe_gpt_quant_free(lethe_gpt_quant *q)
{
    if (!q)
        return;
    for (int i = 0; i < q->n_mats; i++)
        free(q->mats[i].q), free(q->mats[i].scales);
    free(q->mats);
    free(q);
}

static void quantize_mat(const lethe_gpt *g, int i, lethe_qmat *m)
{
    const lethe_gpt_tensor *t = mat_tensor(g, i);
    const int qmax = m->bits == 8 ? 127 : 7, G = m->group, ng = m->cols / G;
    PAR_FOR(m->rows > 64, long, r, m->rows, {
        for (int k = 0; k < ng; k++) {
            float mx = 0.0f;
            for (long c = (long)k * G; c < (long)(k + 1) * G; c++)
                mx = fmaxf(mx, fabsf(weight_at(g, t, i, r, c)));
            float s = mx / (float)qmax;
            m->scales[r * ng + k] = s;
            for (long c = (long)k * G; c < (long)(k + 1) * G; c++) {
                float v = s > 0.0f ? rintf(weight_at(g, t, i, r, c) / s) : 0.0f;
                set_code(m, r, c, (int)fminf(fmaxf(v, (float)(-qmax - 1)), (float)qmax));
            }
        }
    });
}

lethe_status lethe_gpt_quantize(const lethe_gpt *g, int bits, int group, lethe_gpt_quant **out)
{
    *out = NULL;
    lethe_status st = lethe_gpt_quant_check(&g->cfg, bits, group);
    if (st == LETHE_OK)
        st = quant_new(&g->cfg, bits, group, out);
    for (int i = 0; st == LETHE_OK && i < (*out)->n_mats; i++)
        quantize_mat(g, i, &(*out)->mats[i]);
    return st;
}

void lethe_gpt_quant_apply(const lethe_gpt_quant *q, lethe_gpt *g)
{
    for (int i = 0; i < q->n_mats; i++) {
        const lethe_qmat *m = &q->mats[i];
        const lethe_gpt_tensor *t = mat_tensor(g, i);
        float *w = g->params + t->offset;
        const int ng = m->cols / m->group;
        for (long r = 0; r < m->rows; r++)
            for (long c = 0; c < m->cols; c++) {
                float v = (float)code_at(m, r, c) * m->scales[r * ng + c / m->group];
                if (i == 0)
                    w[r * m->cols + c] = v;
                else
                    w[c * m->rows + r] = v;
            }
    }
}

void lethe_gpt_quant_attach(lethe_gpt *g, lethe_gpt_quant *q)
{
    if (g->quant != q)
        lethe_gpt_quant_free(g->quant);
    g->quant = q;
}

void lethe_gpt_quant_drop(lethe_gpt *g) { lethe_gpt_quant_attach(g, NULL); }

/* ---- the product ---------------------------------------------------------- */

/* The row sums run in 16 fixed lanes (lane j takes inputs j, j + 16, ...
 * of each group; for 4 bits, j and j + 16 of each block of 32 in two sets of
 * lanes), each group's lanes scaled and added to the row's, and the lanes
 * summed last in a fixed order. The lanes are GCC vectors, which the
 * compiler lowers to the widest registers the target has: the bits do not
 * depend on the width (no fused multiply-add: C11 mode keeps a * b + c as
 * two roundings). */
typedef float v16f __attribute__((vector_size(64)));
typedef uint8_t v16u8 __attribute__((vector_size(16)));
typedef int32_t v16i32 __attribute__((vector_size(64)));

/* (No vector is passed by value: without wide registers that changes the
 * ABI, and GCC warns.) */
static float lanes_sum(const v16f *a)
{
    float s8[8], s4[4];
    for (int j = 0; j < 8; j++)
        s8[j] = (*a)[j] + (*a)[j + 8];
    for (int j = 0; j < 4; j++)
        s4[j] = s8[j] + s8[j + 4];
    return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

/* The vector v (16 floats or 16 bytes) from memory at x, unaligned. */
#define LOAD16(v, x) memcpy(&(v), (x), sizeof(v))

/* x . (row r's codes), each group's sum scaled. */
static float row_dot8(const lethe_qmat *m, long r, const float *x)
{
    const int8_t *q = (const int8_t *)m->q + r * m->cols;
    const float *s = m->scales + r * (m->cols / m->group);
    v16f acc = {0};
    for (int c0 = 0, k = 0; c0 < m->cols; c0 += m->group, k++) {
        v16f d = {0};
        for (int c = c0; c < c0 + m->group; c += 16) {
            v16u8 b; /* as unsigned: q + 128 (GCC widens unsigned bytes in one instruction) */
            v16f xv;
            LOAD16(b, q + c);
            LOAD16(xv, x + c);
            b ^= 0x80;
            d += xv * __builtin_convertvector(__builtin_convertvector(b, v16i32) - 128, v16f);
        }
        acc += d * s[k];
    }
    return lanes_sum(&acc);
}

/* The same over 4-bit codes: byte b of a block of 32 holds input b (low
 * nibble) and input b + 16 (high nibble), each as q + 8. */
static float row_dot4(const lethe_qmat *m, long r, const float *x)
{
    const uint8_t *q = m->q + r * m->cols / 2;
    const float *s = m->scales + r * (m->cols / m->group);
    v16f acc = {0};
    for (int c0 = 0, k = 0; c0 < m->cols; c0 += m->group, k++) {
        v16f lo = {0}, hi = {0};
        for (int b0 = c0; b0 < c0 + m->group; b0 += BLOCK4) {
            v16u8 b;
            v16f xl, xh;
            LOAD16(b, q + b0 / 2);
            LOAD16(xl, x + b0);
            LOAD16(xh, x + b0 + 16);
            lo += xl * __builtin_convertvector(__builtin_convertvector(b & 15, v16i32) - 8, v16f);
            hi += xh * __builtin_convertvector(__builtin_convertvector(b >> 4, v16i32) - 8, v16f);
        }
        acc += (lo + hi) * s[k];
    }
    return lanes_sum(&acc);
}

void lethe_qgemv(const lethe_qmat *m, const float *x, float *y, int accumulate)
{
    /* threads only for the products worth a parallel region */
    PAR_FOR((long)m->rows * m->cols >= (1L << 18), long, r, m->rows, {
        float v = m->bits == 8 ? row_dot8(m, r, x) : row_dot4(m, r, x);
        y[r] = accumulate ? y[r] + v : v;
    });
}

/* ---- the file --------------------------------------------------------------- */

static int is_quantized(const lethe_gpt *g, const lethe_gpt_tensor *t)
{
    for (int i = 0; i < 1 + 4 * g->cfg.n_layer; i++)
        if (mat_tensor(g, i) == t)
            return 1;
    return 0;
}

lethe_status lethe_gpt_save_quant(const lethe_gpt *g, const lethe_gpt_quant *q,
                                  const char *path, const lethe_st_meta *meta, size_t n_meta)
{
    static const char *const config_keys[5] = {"vocab_size", "n_positions", "n_embd",
                                               "n_layer", "n_head"};
    size_t n = (size_t)g->n_tensors + (size_t)q->n_mats;
    lethe_st_out *ts = calloc(n, sizeof *ts);
    size_t *shapes = calloc(n * 2, sizeof *shapes);
    char (*names)[LETHE_GPT_NAME_MAX + 16] = calloc((size_t)q->n_mats * 2, sizeof *names);
    lethe_st_meta *all = calloc(n_meta + 7, sizeof *all);
    char values[7][16];
    lethe_status st = LETHE_OK;
    if (!ts || !shapes || !names || !all) {
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t k = 0;
    for (int i = 0; i < g->n_tensors; i++) {
        const lethe_gpt_tensor *t = &g->tensors[i];
        if (is_quantized(g, t))
            continue;
        shapes[2 * k] = (size_t)t->shape[0], shapes[2 * k + 1] = (size_t)t->shape[1];
        ts[k] = (lethe_st_out){t->name, LETHE_DTYPE_F32, (size_t)t->rank, shapes + 2 * k,
                               g->params + t->offset};
        k++;
    }
    for (int i = 0; i < q->n_mats; i++) {
        const lethe_qmat *m = &q->mats[i];
        const char *base = mat_tensor(g, i)->name;
        snprintf(names[2 * i], sizeof names[0], "%s.qweight", base);
        snprintf(names[2 * i + 1], sizeof names[0], "%s.scales", base);
        shapes[2 * k] = (size_t)m->rows, shapes[2 * k + 1] = (size_t)m->cols / (m->bits == 8 ? 1 : 2);
        ts[k] = (lethe_st_out){names[2 * i], m->bits == 8 ? LETHE_DTYPE_I8 : LETHE_DTYPE_U8, 2,
                               shapes + 2 * k, m->q};
        k++;
        shapes[2 * k] = (size_t)m->rows, shapes[2 * k + 1] = (size_t)(m->cols / m->group);
        ts[k] = (lethe_st_out){names[2 * i + 1], LETHE_DTYPE_F32, 2, shapes + 2 * k, m->scales};
        k++;
    }
    const lethe_gpt_config *c = &g->cfg;
    const int cv[7] = {c->vocab_size, c->n_positions, c->n_embd, c->n_layer, c->n_head,
                       q->bits, q->group};
    static const char *const quant_keys[2] = {"quant_bits", "quant_group"};
    for (int j = 0; j < 7; j++) {
        snprintf(values[j], sizeof values[j], "%d", cv[j]);
        all[j] = (lethe_st_meta){(char *)(j < 5 ? config_keys[j] : quant_keys[j - 5]), values[j]};
    }
    for (size_t j = 0; j < n_meta; j++)
        all[7 + j] = meta[j];
    st = lethe_safetensors_write_typed(path, ts, k, all, n_meta + 7);
done:
    free(ts);
    free(shapes);
    free(names);
    free(all);
    return st;
}

static lethe_status meta_int(const lethe_safetensors *st, const char *path, const char *key,
                             int *out)
{
    const char *v = lethe_safetensors_meta(st, key);
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || x <= 0 || x > INT_MAX)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: metadata '%s' is missing or not a positive "
                          "integer", path, key);
    *out = (int)x;
    return LETHE_OK;
}

/* Tensor NAME of dtype d and shape (r, c) from st, or a one-line error. */
static lethe_status find_exact(const lethe_safetensors *st, const char *path, const char *name,
                               lethe_dtype d, size_t r, size_t c, const lethe_st_tensor **out)
{
    const lethe_st_tensor *t = *out = lethe_safetensors_find(st, name);
    if (!t)
        return lethe_fail(LETHE_ERR_NOT_FOUND, "%s: no tensor '%s'", path, name);
    if (t->dtype != d || t->rank != 2 || t->shape[0] != r || t->shape[1] != c)
        return lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%s' is not %s (%zu, %zu)", path, name,
                          lethe_dtype_name(d), r, c);
    return LETHE_OK;
}

lethe_status lethe_gpt_quant_read(const lethe_safetensors *st, const char *path, lethe_gpt *g)
{
    int bits = 0, group = 0;
    lethe_status s = meta_int(st, path, "quant_bits", &bits);
    if (s == LETHE_OK)
        s = meta_int(st, path, "quant_group", &group);
    if (s == LETHE_OK && lethe_gpt_quant_check(&g->cfg, bits, group) != LETHE_OK)
        s = lethe_fail(LETHE_ERR_FORMAT, "%s: %s", path, lethe_error_detail());
    lethe_gpt_quant *q = NULL;
    if (s == LETHE_OK)
        s = quant_new(&g->cfg, bits, group, &q);
    for (int i = 0; s == LETHE_OK && i < q->n_mats; i++) {
        lethe_qmat *m = &q->mats[i];
        char name[LETHE_GPT_NAME_MAX + 16];
        const lethe_st_tensor *tq, *ts;
        snprintf(name, sizeof name, "%s.qweight", mat_tensor(g, i)->name);
        s = find_exact(st, path, name, bits == 8 ? LETHE_DTYPE_I8 : LETHE_DTYPE_U8,
                       (size_t)m->rows, (size_t)m->cols / (bits == 8 ? 1 : 2), &tq);
        snprintf(name, sizeof name, "%s.scales", mat_tensor(g, i)->name);
        if (s == LETHE_OK)
            s = find_exact(st, path, name, LETHE_DTYPE_F32, (size_t)m->rows,
                           (size_t)(m->cols / group), &ts);
        if (s == LETHE_OK) {
            memcpy(m->q, tq->data, code_bytes(m));
            s = lethe_safetensors_to_f32(st, ts, m->scales);
        }
        for (long j = 0; s == LETHE_OK && j < (long)m->rows * (m->cols / group); j++)
            if (!isfinite(m->scales[j]) || m->scales[j] < 0.0f)
                s = lethe_fail(LETHE_ERR_FORMAT, "%s: tensor '%s' holds a scale that is negative "
                               "or not finite", path, name);
    }
    if (s != LETHE_OK) {
        lethe_gpt_quant_free(q);
        return s;
    }
    lethe_gpt_quant_apply(q, g);
    lethe_gpt_quant_attach(g, q);
    return LETHE_OK;
}

/* ---- runs ------------------------------------------------------------------- */

/* The error of q against g's F32 weights, and the sizes. */
static void measure(const lethe_gpt *g, const lethe_gpt_quant *q, lethe_quant_result *r)
{
    double num = 0.0, den = 0.0, mx = 0.0;
    *r = (lethe_quant_result){0};
    for (int i = 0; i < q->n_mats; i++) {
        const lethe_qmat *m = &q->mats[i];
        const lethe_gpt_tensor *t = mat_tensor(g, i);
        const int ng = m->cols / m->group;
        for (long rr = 0; rr < m->rows; rr++)
            for (long c = 0; c < m->cols; c++) {
                double w = weight_at(g, t, i, rr, c);
                double e = w - (double)((float)code_at(m, rr, c) * m->scales[rr * ng + c / m->group]);
                num += e * e, den += w * w, mx = fabs(e) > mx ? fabs(e) : mx;
            }
        r->weights += (long)m->rows * m->cols;
        r->bytes_after += (long)code_bytes(m) + 4L * m->rows * ng;
    }
    r->kept = g->n_params - r->weights;
    r->rel_error = den > 0.0 ? sqrt(num / den) : 0.0;
    r->max_error = mx;
    r->bytes_before = 4 * r->weights;
}

lethe_status lethe_gpt_quantize_run(const char *run, int bits, int group, const char *out,
                                    int force, lethe_quant_result *res)
{
    lethe_gpt_dir d = {0};
    lethe_gpt_quant *q = NULL;
    lethe_rundir *rd = NULL;
    cJSON *config = NULL;
    char path[4096], cfg_path[4096];
    lethe_status st = lethe_gpt_dir_load(run, 1, &d);
    if (st == LETHE_OK && d.model->quant)
        st = lethe_fail(LETHE_ERR_INVALID, "%s is already quantized (%d bits); quantize the "
                        "run it was made from", run, d.model->quant->bits);
    if (st == LETHE_OK)
        st = lethe_gpt_quantize(d.model, bits, group, &q);
    if (st == LETHE_OK && res)
        measure(d.model, q, res);
    const char *inputs[1] = {run};
    if (st == LETHE_OK)
        st = lethe_rundir_begin(out, force, inputs, 1, &rd);
    if (st == LETHE_OK) {
        snprintf(cfg_path, sizeof cfg_path, "%s/config.json", run);
        FILE *f = fopen(cfg_path, "r");
        if (f) {
            fclose(f);
            st = lethe_json_read(cfg_path, &config);
        } else {
            config = cJSON_CreateObject();
        }
    }
    if (st == LETHE_OK) {
        const lethe_gpt_config *c = &d.model->cfg;
        const int cv[5] = {c->vocab_size, c->n_positions, c->n_embd, c->n_layer, c->n_head};
        static const char *const keys[5] = {"vocab_size", "n_positions", "n_embd", "n_layer",
                                            "n_head"};
        cJSON *qj = cJSON_CreateObject();
        char *abs = realpath(run, NULL);
        if (!config || !qj || !abs) {
            cJSON_Delete(qj);
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        } else {
            for (int k = 0; k < 5; k++) {
                cJSON_DeleteItemFromObjectCaseSensitive(config, keys[k]);
                cJSON_AddNumberToObject(config, keys[k], cv[k]);
            }
            cJSON_DeleteItemFromObjectCaseSensitive(config, "quantize");
            cJSON_AddNumberToObject(qj, "bits", bits);
            cJSON_AddNumberToObject(qj, "group", group);
            cJSON_AddStringToObject(qj, "from", abs);
            cJSON_AddItemToObject(config, "quantize", qj);
        }
        free(abs);
    }
    if (st == LETHE_OK && d.tok) {
        snprintf(path, sizeof path, "%s/tokenizer.json", out);
        st = lethe_tokenizer_save_json(d.tok, path);
    }
    if (st == LETHE_OK) {
        snprintf(path, sizeof path, "%s/model.safetensors", out);
        st = lethe_gpt_save_quant(d.model, q, path, NULL, 0);
    }
    if (st == LETHE_OK)
        st = lethe_json_write(out, "config.json", config);
    if (rd)
        st = lethe_rundir_end(rd, st);
    cJSON_Delete(config);
    lethe_gpt_quant_free(q);
    lethe_gpt_dir_free(&d);
    return st;
}
