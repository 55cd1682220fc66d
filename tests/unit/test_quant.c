/* Weight quantization (lethe/gpt_quant.h) on a small random model: the
 * rounding error of every weight against its group's scale, the quantized
 * product against a double-precision sum over the values read back, the
 * file round trip and its refusals, generation from the codes against
 * generation from the values read back, and the codes dropped when the
 * weights change. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "gpt_small.h"
#include "lethe/gpt.h"
#include "lethe/gpt_generate.h"
#include "lethe/gpt_hf.h"
#include "lethe/gpt_quant.h"
#include "lethe/lm_unlearn.h"
#include "lethe/rng.h"
#include "lethe/safetensors.h"

/* A copy of g's configuration and parameters (no codes). */
static lethe_gpt *copy_model(const lethe_gpt *g)
{
    lethe_gpt *c = lethe_gpt_init(&g->cfg);
    if (c)
        memcpy(c->params, g->params, sizeof(float) * (size_t)g->n_params);
    return c;
}

/* Weight (r, c) of quantized matrix i as the F32 parameters hold it. */
static float param_at(const lethe_gpt *g, int i, const lethe_qmat *m, long r, long c)
{
    char name[64];
    if (i == 0)
        return lethe_gpt_param(g, "wte.weight", NULL, NULL)[r * m->cols + c];
    static const char *const suffix[4] = {"attn.c_attn.weight", "attn.c_proj.weight",
                                          "mlp.c_fc.weight", "mlp.c_proj.weight"};
    snprintf(name, sizeof name, "h.%d.%s", (i - 1) / 4, suffix[(i - 1) % 4]);
    return lethe_gpt_param(g, name, NULL, NULL)[c * m->rows + r];
}

TEST(quant_check_refuses_bad_settings)
{
    lethe_gpt_config cfg = {97, NPOS, 64, 2, 4};
    CHECK_OK(lethe_gpt_quant_check(&cfg, 8, 32));
    CHECK_OK(lethe_gpt_quant_check(&cfg, 4, 64));
    CHECK_STATUS(lethe_gpt_quant_check(&cfg, 5, 32), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_gpt_quant_check(&cfg, 8, 48), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_gpt_quant_check(&cfg, 8, 0), LETHE_ERR_INVALID);
    CHECK_STATUS(lethe_gpt_quant_check(&cfg, 8, 128), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "does not divide"));
}

/* Every weight read back lies within half its group's scale of the original,
 * the scale is the group's max |w| / qmax, and the codes stay in range. */
TEST(quant_rounding_error_within_half_a_step)
{
    for (int bits = 8; bits >= 4; bits -= 4) {
        lethe_gpt *g = small_model(97, 11);
        CHECK(g);
        lethe_gpt *r = copy_model(g);
        lethe_gpt_quant *q = NULL;
        CHECK_OK(lethe_gpt_quantize(g, bits, 32, &q));
        CHECK(q->n_mats == 1 + 4 * g->cfg.n_layer && q->bits == bits);
        lethe_gpt_quant_apply(q, r);
        const float qmax = bits == 8 ? 127.0f : 7.0f;
        double worst = 0.0, scale_err = 0.0;
        long changed = 0;
        for (int i = 0; i < q->n_mats; i++) {
            const lethe_qmat *m = &q->mats[i];
            const int ng = m->cols / m->group;
            for (long row = 0; row < m->rows; row++)
                for (int k = 0; k < ng; k++) {
                    float s = m->scales[row * ng + k], mx = 0.0f;
                    for (long c = (long)k * m->group; c < (long)(k + 1) * m->group; c++) {
                        float w = param_at(g, i, m, row, c), v = param_at(r, i, m, row, c);
                        mx = fmaxf(mx, fabsf(w));
                        double e = fabs((double)w - v) / (0.5 * s + 1e-12);
                        worst = e > worst ? e : worst;
                        changed += w != v;
                    }
                    scale_err = fmax(scale_err, fabs((double)s - mx / qmax));
                }
        }
        CHECK_MSG(worst <= 1.0 + 1e-4, "bits %d: an error of %.4f half-steps", bits, worst);
        CHECK(scale_err < 1e-9);
        CHECK(changed > 0); /* the check above is not vacuous */
        /* the F32 tensors outside the table are untouched */
        CHECK(!memcmp(lethe_gpt_param(g, "wpe.weight", NULL, NULL),
                      lethe_gpt_param(r, "wpe.weight", NULL, NULL), sizeof(float) * NPOS * 32));
        lethe_gpt_quant_free(q);
        lethe_gpt_free(g);
        lethe_gpt_free(r);
    }
}

/* lethe_qgemv against sum_c x_c w'_c in double, over w' read back; and
 * accumulate adds to y. */
TEST(quant_gemv_matches_double_sum)
{
    for (int bits = 8; bits >= 4; bits -= 4) {
        lethe_gpt *g = small_model(97, 12);
        lethe_gpt_quant *q = NULL;
        CHECK_OK(lethe_gpt_quantize(g, bits, 32, &q));
        lethe_gpt_quant_apply(q, g);
        double worst = 0.0;
        for (int i = 0; i < q->n_mats; i++) {
            const lethe_qmat *m = &q->mats[i];
            float *x = malloc(sizeof(float) * (size_t)m->cols);
            float *y = malloc(sizeof(float) * (size_t)m->rows);
            lethe_rng rng = lethe_rng_init(40 + (uint64_t)i, 0);
            for (int c = 0; c < m->cols; c++)
                x[c] = lethe_rng_normal(&rng);
            for (int pass = 0; pass < 2; pass++) {
                if (pass == 0)
                    lethe_qgemv(m, x, y, 0);
                else {
                    for (long row = 0; row < m->rows; row++)
                        y[row] = 1.5f;
                    lethe_qgemv(m, x, y, 1);
                }
                for (long row = 0; row < m->rows; row++) {
                    double want = pass ? 1.5 : 0.0, mag = 0.0;
                    for (long c = 0; c < m->cols; c++) {
                        double t = (double)x[c] * param_at(g, i, m, row, c);
                        want += t, mag += fabs(t);
                    }
                    double e = fabs(y[row] - want) / (1e-6 + 1e-5 * (mag + 1.5));
                    worst = e > worst ? e : worst;
                }
            }
            free(x);
            free(y);
        }
        CHECK_MSG(worst <= 1.0, "bits %d: %.3f tolerances off", bits, worst);
        lethe_gpt_quant_free(q);
        lethe_gpt_free(g);
    }
}

/* Save, load: the same codes, scales and parameters; the codes attached. */
TEST(quant_file_round_trip)
{
    char dir[] = "/tmp/lethe_quant_XXXXXX", path[256];
    CHECK(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    for (int bits = 8; bits >= 4; bits -= 4) {
        lethe_gpt *g = small_model(97, 13);
        lethe_gpt_quant *q = NULL;
        CHECK_OK(lethe_gpt_quantize(g, bits, 32, &q));
        lethe_gpt_quant_apply(q, g);
        CHECK_OK(lethe_gpt_save_quant(g, q, path, NULL, 0));
        lethe_gpt *h = NULL;
        CHECK_OK(lethe_gpt_load_config(path, NULL, &h));
        CHECK(h && h->quant && h->quant->bits == bits && h->quant->group == 32);
        CHECK(!memcmp(&h->cfg, &g->cfg, sizeof g->cfg));
        CHECK(!memcmp(h->params, g->params, sizeof(float) * (size_t)g->n_params));
        int same = h->quant->n_mats == q->n_mats;
        for (int i = 0; same && i < q->n_mats; i++) {
            const lethe_qmat *a = &q->mats[i], *b = &h->quant->mats[i];
            size_t nq = (size_t)a->rows * (size_t)a->cols / (bits == 8 ? 1 : 2);
            same = a->rows == b->rows && a->cols == b->cols && !memcmp(a->q, b->q, nq) &&
                   !memcmp(a->scales, b->scales,
                           sizeof(float) * (size_t)a->rows * (size_t)(a->cols / a->group));
        }
        CHECK(same);
        /* the inspector reads the codes too */
        lethe_safetensors *st = NULL;
        CHECK_OK(lethe_safetensors_open(path, &st));
        const lethe_st_tensor *t = lethe_safetensors_find(st, "h.0.mlp.c_fc.weight.qweight");
        CHECK(t && t->dtype == (bits == 8 ? LETHE_DTYPE_I8 : LETHE_DTYPE_U8));
        CHECK(t && lethe_dtype_to_f32_supported(t->dtype));
        CHECK(!lethe_safetensors_find(st, "h.0.mlp.c_fc.weight"));
        lethe_safetensors_free(st);
        lethe_gpt_free(h);
        lethe_gpt_quant_free(q);
        lethe_gpt_free(g);
    }
    unlink(path);
    rmdir(dir);
}

/* A file with a scale that is negative, or without a scales tensor, is
 * refused with a one-line error naming the tensor. */
TEST(quant_file_refuses_damage)
{
    char dir[] = "/tmp/lethe_quant_XXXXXX", path[256], bad[256];
    CHECK(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    lethe_gpt *g = small_model(97, 14);
    lethe_gpt_quant *q = NULL;
    CHECK_OK(lethe_gpt_quantize(g, 8, 32, &q));
    q->mats[3].scales[5] = -1.0f;
    CHECK_OK(lethe_gpt_save_quant(g, q, path, NULL, 0));
    lethe_gpt *h = NULL;
    CHECK_STATUS(lethe_gpt_load_config(path, NULL, &h), LETHE_ERR_FORMAT);
    CHECK_MSG(!h && strstr(lethe_error_detail(), "h.0.mlp.c_fc.weight.scales"), "%s",
              lethe_error_detail());
    /* the same file without that tensor */
    lethe_safetensors *st = NULL;
    CHECK_OK(lethe_safetensors_open(path, &st));
    size_t n = st->n_tensors, k = 0;
    lethe_st_out *ts = calloc(n, sizeof *ts);
    size_t *shapes = calloc(2 * n, sizeof *shapes);
    for (size_t i = 0; i < n; i++) {
        const lethe_st_tensor *t = &st->tensors[i];
        if (!strcmp(t->name, "h.0.mlp.c_fc.weight.scales"))
            continue;
        for (size_t d = 0; d < t->rank; d++)
            shapes[2 * k + d] = t->shape[d];
        ts[k] = (lethe_st_out){t->name, t->dtype, t->rank, shapes + 2 * k, t->data};
        k++;
    }
    lethe_st_meta meta[2] = {{"quant_bits", "8"}, {"quant_group", "32"}};
    CHECK_OK(lethe_safetensors_write_typed(bad, ts, k, meta, 2));
    CHECK_STATUS(lethe_gpt_load_config(bad, &g->cfg, &h), LETHE_ERR_NOT_FOUND);
    CHECK(strstr(lethe_error_detail(), "no tensor 'h.0.mlp.c_fc.weight.scales'"));
    free(shapes);
    free(ts);
    lethe_safetensors_free(st);
    lethe_gpt_quant_free(q);
    lethe_gpt_free(g);
    unlink(path);
    unlink(bad);
    rmdir(dir);
}

/* Greedy decoding through the codes (the cached steps use lethe_qgemv)
 * against the full forward over the values read back (no_cache), and the
 * cached logits against the full forward's. */
TEST(quant_generation_matches_values_read_back)
{
    for (int bits = 8; bits >= 4; bits -= 4) {
        lethe_gpt *g = small_model(97, 15);
        lethe_gpt_quant *q = NULL;
        CHECK_OK(lethe_gpt_quantize(g, bits, 32, &q));
        lethe_gpt_quant_apply(q, g);
        lethe_gpt_quant_attach(g, q);
        int32_t prompt[6];
        random_tokens(prompt, 6, 97, 16);
        lethe_gen_opts o;
        lethe_gen_defaults(&o);
        o.max_new = 24;
        lethe_gen_result a = {0}, b = {0};
        CHECK_OK(lethe_gpt_generate(g, prompt, 6, &o, &a));
        o.no_cache = 1;
        CHECK_OK(lethe_gpt_generate(g, prompt, 6, &o, &b));
        CHECK(a.n == 24 && b.n == 24);
        CHECK(!memcmp(a.tokens, b.tokens, sizeof(int32_t) * 24));
        double worst = 0.0;
        for (int i = 0; i < a.n; i++)
            worst = fmax(worst, fabs((double)a.logprobs[i] - b.logprobs[i]));
        CHECK_MSG(worst < 1e-3, "bits %d: log-probabilities differ by %g", bits, worst);
        lethe_gen_result_free(&a);
        lethe_gen_result_free(&b);
        lethe_gpt_free(g);
    }
}

/* Changing the weights drops the codes, so decoding follows the new ones. */
TEST(quant_dropped_when_weights_change)
{
    lethe_gpt *g = small_model(97, 17), *r = small_model(97, 18);
    lethe_gpt_quant *q = NULL;
    CHECK_OK(lethe_gpt_quantize(g, 8, 32, &q));
    lethe_gpt_quant_apply(q, g);
    lethe_gpt_quant_attach(g, q);
    CHECK(g->quant == q);
    CHECK_OK(lethe_lm_task_vector(g, r, 1.0));
    CHECK(g->quant == NULL);
    lethe_gpt_free(g);
    lethe_gpt_free(r);
}
