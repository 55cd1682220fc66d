/* LoRA adapters (lethe/lora.h): a fresh adapter changes nothing, the adapter
 * gradient against central differences and against the direct formula,
 * merge / unmerge, PEFT files, training through lethe_gpt_train, determinism.
 *
 * Tolerances (float32 model; losses summed and differences taken in double):
 *   finite differences: step 1e-2 on each of A and B's entries, the loss
 *     -sum(logprobs) / n_targets of lethe_gpt_forward;
 *     |num - ana| <= 2e-4 + 1e-2 |num| for every entry;
 *   direct formula: W0 + s A B, s dW B^T and s A^T dW from lethe_gemm_ref
 *     (double accumulation), |a - b| <= 1e-5 (1 + |b|) for every element;
 *   everything else (fresh adapter, unmerge, save / load, determinism) is
 *     compared bit for bit. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "../test.h"
#include "lethe/fileio.h"
#include "lethe/gemm.h"
#include "lethe/gpt_train.h"
#include "lethe/lora.h"
#include "lethe/rng.h"

static const lethe_gpt_config MICRO = {16, 8, 8, 2, 2};

/* A model for cfg with GPT-2's initialisation under seed. */
static lethe_gpt *model(const lethe_gpt_config *cfg, uint64_t seed)
{
    lethe_gpt *g = lethe_gpt_init(cfg);
    if (g)
        lethe_gpt_init_params(g, seed);
    return g;
}

/* B sequences of T tokens (and their next-token targets) below V. */
static void tokens(int32_t *tok, int32_t *tgt, int n, int V, uint64_t seed)
{
    lethe_rng r = lethe_rng_init(seed, 7);
    for (int i = 0; i < n; i++) {
        tok[i] = (int32_t)lethe_rng_below(&r, (uint32_t)V);
        tgt[i] = (int32_t)lethe_rng_below(&r, (uint32_t)V);
    }
}

/* Every adapter parameter uniform in [-a, a]: B nonzero, so the adapter
 * matters. */
static void randomize(lethe_lora *l, float a, uint64_t seed)
{
    lethe_rng r = lethe_rng_init(seed, 11);
    for (long i = 0; i < l->n_params; i++)
        l->params[i] = a * (2.0f * lethe_rng_uniformf(&r) - 1.0f);
}

/* The mean token loss of the last forward, summed in double. */
static double loss_of(const lethe_gpt *g)
{
    double s = 0;
    long n = (long)g->B * g->T;
    for (long i = 0; i < n; i++)
        s -= g->logprobs[i];
    return s / g->n_targets;
}

static float *copy(const float *x, long n)
{
    float *y = malloc(sizeof *y * (size_t)(n ? n : 1));
    if (y)
        memcpy(y, x, sizeof *y * (size_t)n);
    return y;
}

TEST(lora_config)
{
    unsigned m;
    CHECK_OK(lethe_lora_parse_targets("attn.c_attn,mlp.c_proj", &m));
    CHECK(m == (LETHE_LORA_ATTN_QKV | LETHE_LORA_MLP_PROJ));
    CHECK_OK(lethe_lora_parse_targets("all", &m));
    CHECK(m == LETHE_LORA_ALL);
    CHECK_STATUS(lethe_lora_parse_targets("c_proj", &m), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "c_proj"));
    CHECK(!strcmp(lethe_lora_target_name(LETHE_LORA_MLP_FC), "mlp.c_fc"));

    lethe_gpt *g = model(&MICRO, 1);
    CHECK(g);
    lethe_lora_config c;
    lethe_lora_config_defaults(&c);
    CHECK(c.rank == 8 && c.alpha == 16.0f && c.targets == LETHE_LORA_ALL);
    c.rank = 2, c.alpha = 3;
    lethe_lora *l = lethe_lora_init(g, &c, 5);
    CHECK(l);
    /* 2 blocks x 4 sites; A (in, r) + B (r, out) each */
    CHECK(l->n_sites == 8);
    CHECK(l->n_params == 2 * (2 * (8 + 24) + 2 * (8 + 8) + 2 * (8 + 32) + 2 * (32 + 8)));
    CHECK(l->scale == 1.5f);
    /* kaiming-uniform A within 1/sqrt(in), B zero */
    for (int i = 0; i < l->n_sites; i++) {
        const lethe_lora_site *s = &l->sites[i];
        float bound = 1.0f / sqrtf((float)s->in), amax = 0;
        for (long k = 0; k < (long)s->in * c.rank; k++)
            amax = fmaxf(amax, fabsf(l->params[s->a_offset + k]));
        CHECK(amax > 0.5f * bound && amax <= bound);
        for (long k = 0; k < (long)c.rank * s->out; k++)
            CHECK(l->params[s->b_offset + k] == 0.0f);
    }
    lethe_lora_free(l);
    /* a layer range and a subset */
    c.targets = LETHE_LORA_MLP_FC, c.layer_begin = 1, c.layer_end = 2;
    l = lethe_lora_init(g, &c, 5);
    CHECK(l && l->n_sites == 1 && l->sites[0].layer == 1 && l->sites[0].in == 8 &&
          l->sites[0].out == 32);
    lethe_lora_free(l);
    c.layer_end = 3; /* past the model */
    CHECK(!lethe_lora_init(g, &c, 5));
    CHECK(strstr(lethe_error_detail(), "blocks"));
    c.layer_end = 0, c.rank = 0;
    CHECK(!lethe_lora_init(g, &c, 5));
    lethe_gpt_free(g);
}

/* (a) A fresh adapter (B = 0) leaves weights and logits bit-identical. */
TEST(lora_fresh_adapter_is_identity)
{
    lethe_gpt_config cfg = {64, 16, 32, 2, 4};
    lethe_gpt *g = model(&cfg, 3);
    CHECK(g);
    enum { B = 2, T = 16 };
    int32_t tok[B * T], tgt[B * T];
    tokens(tok, tgt, B * T, cfg.vocab_size, 1);
    CHECK_OK(lethe_gpt_forward(g, tok, tgt, B, T));
    long nl = (long)B * T * cfg.vocab_size;
    float *logits = copy(g->logits, nl), *params = copy(g->params, g->n_params);
    lethe_lora_config c;
    lethe_lora_config_defaults(&c);
    lethe_lora *l = lethe_lora_init(g, &c, 9);
    CHECK(l);
    lethe_lora_apply(l, g);
    CHECK(!memcmp(params, g->params, sizeof(float) * (size_t)g->n_params));
    CHECK_OK(lethe_gpt_forward(g, tok, tgt, B, T));
    CHECK(!memcmp(logits, g->logits, sizeof(float) * (size_t)nl));
    free(logits);
    free(params);
    lethe_lora_free(l);
    lethe_gpt_free(g);
}

/* (b) dA, dB against central differences of the model's loss. */
TEST(lora_grad_finite_differences)
{
    lethe_gpt *g = model(&MICRO, 2);
    CHECK(g);
    enum { B = 2, T = 8 };
    int32_t tok[B * T], tgt[B * T];
    tokens(tok, tgt, B * T, MICRO.vocab_size, 2);
    tgt[3] = -1; /* a position without a target */
    lethe_lora_config c;
    lethe_lora_config_defaults(&c);
    c.rank = 2, c.alpha = 3;
    lethe_lora *l = lethe_lora_init(g, &c, 4);
    CHECK(l);
    randomize(l, 0.5f, 1);

    lethe_lora_apply(l, g);
    lethe_gpt_zero_grad(g);
    lethe_lora_zero_grad(l);
    CHECK_OK(lethe_gpt_forward(g, tok, tgt, B, T));
    lethe_gpt_backward(g);
    lethe_lora_backward(l, g);
    float *ana = copy(l->grads, l->n_params);

    const float h = 1e-2f;
    double worst = 0, gmax = 0;
    for (long i = 0; i < l->n_params; i++) {
        float keep = l->params[i];
        l->params[i] = keep + h;
        lethe_lora_apply(l, g);
        CHECK_OK(lethe_gpt_forward(g, tok, tgt, B, T));
        double lp = loss_of(g);
        l->params[i] = keep - h;
        lethe_lora_apply(l, g);
        CHECK_OK(lethe_gpt_forward(g, tok, tgt, B, T));
        double lm = loss_of(g);
        l->params[i] = keep;
        double num = (lp - lm) / (2.0 * h);
        double err = fabs(num - ana[i]);
        CHECK_MSG(err <= 2e-4 + 1e-2 * fabs(num), "adapter parameter %ld: numeric %.9g, "
                  "analytic %.9g", i, num, (double)ana[i]);
        worst = fmax(worst, err / (2e-4 + 1e-2 * fabs(num)));
        gmax = fmax(gmax, fabs(num));
    }
    CHECK(gmax > 1e-2); /* the check is not vacuous */
    if (getenv("LETHE_TEST_VERBOSE"))
        fprintf(stderr, "lora finite differences: %ld values, largest gradient %.3g, worst "
                        "error / tolerance %.3g\n", l->n_params, gmax, worst);
    free(ana);
    lethe_lora_free(l);
    lethe_gpt_free(g);
}

/* (c) apply and backward against the formulas, computed by lethe_gemm_ref. */
TEST(lora_matches_direct_formula)
{
    lethe_gpt_config cfg = {32, 8, 16, 2, 2};
    lethe_gpt *g = model(&cfg, 5);
    CHECK(g);
    enum { B = 3, T = 8 };
    int32_t tok[B * T], tgt[B * T];
    tokens(tok, tgt, B * T, cfg.vocab_size, 3);
    lethe_lora_config c;
    lethe_lora_config_defaults(&c);
    c.rank = 3, c.alpha = 5;
    lethe_lora *l = lethe_lora_init(g, &c, 6);
    CHECK(l);
    randomize(l, 0.3f, 2);
    lethe_lora_apply(l, g);
    lethe_gpt_zero_grad(g);
    lethe_lora_zero_grad(l);
    CHECK_OK(lethe_gpt_forward(g, tok, tgt, B, T));
    lethe_gpt_backward(g);
    lethe_lora_backward(l, g);
    const int r = c.rank;
    const float s = l->scale;
    for (int i = 0; i < l->n_sites; i++) {
        const lethe_lora_site *st = &l->sites[i];
        const float *A = l->params + st->a_offset, *Bm = l->params + st->b_offset;
        const float *dW = g->grads + st->w_offset, *W0 = l->w0 + st->w0_offset;
        long nw = (long)st->in * st->out;
        float *w = copy(W0, nw), *dA = calloc((size_t)st->in * r, sizeof *dA),
              *dB = calloc((size_t)r * st->out, sizeof *dB);
        lethe_gemm_ref(0, 0, st->in, st->out, r, s, A, r, Bm, st->out, 1.0f, w, st->out);
        lethe_gemm_ref(0, 1, st->in, r, st->out, s, dW, st->out, Bm, st->out, 0.0f, dA, r);
        lethe_gemm_ref(1, 0, r, st->out, st->in, s, A, r, dW, st->out, 0.0f, dB, st->out);
        int bad = 0;
        for (long k = 0; k < nw; k++)
            bad |= !(fabsf(g->params[st->w_offset + k] - w[k]) <= 1e-5f * (1 + fabsf(w[k])));
        for (long k = 0; k < (long)st->in * r; k++)
            bad |= !(fabsf(l->grads[st->a_offset + k] - dA[k]) <= 1e-5f * (1 + fabsf(dA[k])));
        for (long k = 0; k < (long)r * st->out; k++)
            bad |= !(fabsf(l->grads[st->b_offset + k] - dB[k]) <= 1e-5f * (1 + fabsf(dB[k])));
        double na = 0;
        for (long k = 0; k < (long)st->in * r; k++)
            na += fabs(dA[k]);
        free(w);
        free(dA);
        free(dB);
        CHECK_MSG(!bad, "site %d (block %d, %s) differs from the formula", i, st->layer,
                  lethe_lora_target_name(st->target));
        CHECK(na > 0);
    }
    /* Accumulation: a second backward doubles the gradient. */
    float *once = copy(l->grads, l->n_params);
    lethe_lora_backward(l, g);
    for (long k = 0; k < l->n_params; k++)
        CHECK(l->grads[k] == 2 * once[k]);
    free(once);
    lethe_lora_free(l);
    lethe_gpt_free(g);
}

/* (d) merge then unmerge restores the base bit for bit. */
TEST(lora_merge_unmerge_exact)
{
    lethe_gpt_config cfg = {32, 8, 16, 3, 2};
    lethe_gpt *g = model(&cfg, 7);
    CHECK(g);
    float *base = copy(g->params, g->n_params);
    lethe_lora_config c;
    lethe_lora_config_defaults(&c);
    c.rank = 4, c.targets = LETHE_LORA_ATTN_QKV | LETHE_LORA_MLP_PROJ, c.layer_begin = 1;
    lethe_lora *l = lethe_lora_init(g, &c, 8);
    CHECK(l);
    randomize(l, 0.2f, 3);
    for (int rep = 0; rep < 3; rep++) {
        lethe_lora_merge(l, g);
        CHECK(memcmp(base, g->params, sizeof(float) * (size_t)g->n_params));
        /* only the adapted weights changed */
        const lethe_gpt_tensor *fc = lethe_gpt_find(g, "h.1.mlp.c_fc.weight");
        const lethe_gpt_tensor *q0 = lethe_gpt_find(g, "h.0.attn.c_attn.weight");
        CHECK(!memcmp(base + fc->offset, g->params + fc->offset, sizeof(float) * fc->numel));
        CHECK(!memcmp(base + q0->offset, g->params + q0->offset, sizeof(float) * q0->numel));
        lethe_lora_unmerge(l, g);
        CHECK(!memcmp(base, g->params, sizeof(float) * (size_t)g->n_params));
    }
    /* apply twice gives the same bits as once (never accumulated) */
    lethe_lora_apply(l, g);
    float *once = copy(g->params, g->n_params);
    lethe_lora_apply(l, g);
    CHECK(!memcmp(once, g->params, sizeof(float) * (size_t)g->n_params));
    free(once);
    free(base);
    lethe_lora_free(l);
    lethe_gpt_free(g);
}

static lethe_status write_file(const char *path, const char *from)
{
    unsigned char *d;
    size_t n;
    lethe_status st = lethe_file_read(from, &d, &n);
    if (st != LETHE_OK)
        return st;
    st = lethe_file_write_atomic(path, d, n);
    free(d);
    return st;
}

static void remove_adapter(const char *dir)
{
    char p[512];
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", dir), unlink(p);
    snprintf(p, sizeof p, "%s/adapter_config.json", dir), unlink(p);
    rmdir(dir);
}

/* (e) save / load: identical logits; PEFT's names and shapes; clear errors. */
TEST(lora_save_load)
{
    lethe_gpt_config cfg = {32, 8, 16, 2, 2};
    lethe_gpt *g = model(&cfg, 9);
    CHECK(g);
    char root[] = "/tmp/lethe_lora_XXXXXX", d1[300], d2[300], p[400], q[400];
    CHECK(mkdtemp(root));
    snprintf(d1, sizeof d1, "%s/run1", root);
    snprintf(d2, sizeof d2, "%s/run2", root);
    lethe_lora_config c;
    lethe_lora_config_defaults(&c);
    c.rank = 3, c.alpha = 6;
    lethe_lora *l = lethe_lora_init(g, &c, 10), *m = NULL;
    CHECK(l);
    randomize(l, 0.3f, 4);
    CHECK_STATUS(lethe_lora_save(l, d1, "tiny-base"), LETHE_ERR_IO); /* not created here */
    CHECK(mkdir(d1, 0777) == 0 && mkdir(d2, 0777) == 0);
    CHECK_OK(lethe_lora_save(l, d1, "tiny-base"));

    enum { B = 2, T = 8 };
    int32_t tok[B * T], tgt[B * T];
    tokens(tok, tgt, B * T, cfg.vocab_size, 4);
    lethe_lora_apply(l, g);
    CHECK_OK(lethe_gpt_forward(g, tok, tgt, B, T));
    long nl = (long)B * T * cfg.vocab_size;
    float *logits = copy(g->logits, nl);
    lethe_lora_unmerge(l, g);
    CHECK_OK(lethe_lora_load(d1, g, &m));
    CHECK(m->n_params == l->n_params && m->scale == l->scale && m->n_sites == l->n_sites);
    CHECK(!memcmp(m->params, l->params, sizeof(float) * (size_t)l->n_params));
    CHECK(!memcmp(m->w0, l->w0, sizeof(float) * (size_t)l->n_w0));
    lethe_lora_apply(m, g);
    CHECK_OK(lethe_gpt_forward(g, tok, tgt, B, T));
    CHECK(!memcmp(logits, g->logits, sizeof(float) * (size_t)nl));
    lethe_lora_free(m);
    m = NULL;

    /* PEFT's names, shapes (lora_A (r, in) = A^T) and configuration */
    lethe_safetensors *st;
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", d1);
    CHECK_OK(lethe_safetensors_open(p, &st));
    CHECK(st->n_tensors == 16);
    const lethe_st_tensor *ta =
        lethe_safetensors_find(st, "base_model.model.transformer.h.1.mlp.c_fc.lora_A.weight");
    const lethe_st_tensor *tb =
        lethe_safetensors_find(st, "base_model.model.transformer.h.1.mlp.c_fc.lora_B.weight");
    CHECK(ta && ta->rank == 2 && ta->shape[0] == 3 && ta->shape[1] == 16);
    CHECK(tb && tb->rank == 2 && tb->shape[0] == 64 && tb->shape[1] == 3);
    const lethe_lora_site *fc = &l->sites[4 + 2]; /* block 1, mlp.c_fc */
    CHECK(fc->layer == 1 && fc->target == LETHE_LORA_MLP_FC);
    float a12, b21; /* lora_A[1][2] = A[2][1]; lora_B[2][1] = B[1][2] */
    memcpy(&a12, ta->data + 4 * (1 * 16 + 2), 4);
    memcpy(&b21, tb->data + 4 * (2 * 3 + 1), 4);
    CHECK(a12 == l->params[fc->a_offset + 2 * 3 + 1]);
    CHECK(b21 == l->params[fc->b_offset + 1 * 64 + 2]);
    lethe_safetensors_free(st);
    unsigned char *text;
    size_t len;
    snprintf(p, sizeof p, "%s/adapter_config.json", d1);
    CHECK_OK(lethe_file_read(p, &text, &len));
    CHECK(strstr((char *)text, "\"peft_type\":\t\"LORA\""));
    CHECK(strstr((char *)text, "\"fan_in_fan_out\":\ttrue"));
    CHECK(strstr((char *)text, "\"base_model_name_or_path\":\t\"tiny-base\""));
    CHECK(strstr((char *)text, "[\"c_attn\", \"c_proj\", \"c_fc\"]"));
    free(text);

    /* a base of another shape */
    lethe_gpt_config other = {32, 8, 32, 2, 2};
    lethe_gpt *h = model(&other, 9);
    CHECK(h);
    CHECK_STATUS(lethe_lora_load(d1, h, &m), LETHE_ERR_FORMAT);
    CHECK(!m);
    CHECK_MSG(strstr(lethe_error_detail(), "has shape (3, 16)") &&
                  strstr(lethe_error_detail(), "needs (3, 32)"),
              "detail: %s", lethe_error_detail());
    lethe_gpt_free(h);
    /* fewer blocks than the adapter targets */
    lethe_gpt_config shallow = {32, 8, 16, 1, 2};
    h = model(&shallow, 9);
    CHECK(h);
    CHECK_STATUS(lethe_lora_load(d1, h, &m), LETHE_ERR_FORMAT);
    CHECK_MSG(strstr(lethe_error_detail(), "do not fit the base model's 1 blocks"), "%s",
              lethe_error_detail());
    lethe_gpt_free(h);

    /* an adapter on c_attn alone, with the first one's configuration: a
     * missing tensor; and the reverse: unexpected tensors */
    lethe_lora_config c2 = c;
    c2.targets = LETHE_LORA_ATTN_QKV;
    lethe_lora *l2 = lethe_lora_init(g, &c2, 11);
    CHECK(l2);
    CHECK_OK(lethe_lora_save(l2, d2, NULL));
    snprintf(p, sizeof p, "%s/adapter_config.json", d2);
    snprintf(q, sizeof q, "%s/adapter_config.json", d1);
    CHECK_OK(write_file(p, q));
    CHECK_STATUS(lethe_lora_load(d2, g, &m), LETHE_ERR_NOT_FOUND);
    CHECK_MSG(strstr(lethe_error_detail(), "h.0.attn.c_proj.lora_A.weight"), "%s",
              lethe_error_detail());
    CHECK_OK(lethe_lora_save(l2, d2, NULL));
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", d2);
    snprintf(q, sizeof q, "%s/adapter_model.safetensors", d1);
    CHECK_OK(write_file(p, q));
    CHECK_STATUS(lethe_lora_load(d2, g, &m), LETHE_ERR_FORMAT);
    CHECK_MSG(strstr(lethe_error_detail(), "unexpected tensor"), "%s", lethe_error_detail());
    lethe_lora_free(l2);

    /* attn.c_proj without mlp.c_proj: PEFT's list cannot say it, a regex does;
     * lethe reads its own field back */
    c2.targets = LETHE_LORA_ATTN_PROJ, c2.layer_begin = 1;
    l2 = lethe_lora_init(g, &c2, 12);
    CHECK(l2);
    randomize(l2, 0.1f, 5);
    CHECK_OK(lethe_lora_save(l2, d2, NULL));
    snprintf(p, sizeof p, "%s/adapter_config.json", d2);
    CHECK_OK(lethe_file_read(p, &text, &len));
    CHECK_MSG(strstr((char *)text, "\"target_modules\":\t\"(.*\\\\.)?h\\\\.(1)\\\\.(attn\\\\.c_proj)\""),
              "%s", (char *)text);
    free(text);
    CHECK_OK(lethe_lora_load(d2, g, &m));
    CHECK(m->n_sites == 1 && m->sites[0].layer == 1 && m->sites[0].target == LETHE_LORA_ATTN_PROJ);
    CHECK(!memcmp(m->params, l2->params, sizeof(float) * (size_t)l2->n_params));
    lethe_lora_free(m);
    m = NULL;
    lethe_lora_free(l2);

    /* a missing directory */
    snprintf(p, sizeof p, "%s/none", root);
    CHECK_STATUS(lethe_lora_load(p, g, &m), LETHE_ERR_IO);

    remove_adapter(d1);
    remove_adapter(d2);
    rmdir(root);
    free(logits);
    lethe_lora_free(l);
    lethe_gpt_free(g);
}

/* A PEFT-style configuration without lethe's fields: target_modules and
 * layers_to_transform are read; options lethe lacks are refused. */
TEST(lora_load_peft_config)
{
    lethe_gpt_config cfg = {32, 8, 16, 3, 2};
    lethe_gpt *g = model(&cfg, 9);
    CHECK(g);
    char root[] = "/tmp/lethe_lora_XXXXXX", p[400];
    CHECK(mkdtemp(root));
    lethe_lora_config c;
    lethe_lora_config_defaults(&c);
    c.rank = 2, c.alpha = 4, c.targets = LETHE_LORA_ATTN_PROJ | LETHE_LORA_MLP_PROJ;
    c.layer_begin = 1, c.layer_end = 3;
    lethe_lora *l = lethe_lora_init(g, &c, 13), *m = NULL;
    CHECK(l);
    CHECK_OK(lethe_lora_save(l, root, NULL));
    snprintf(p, sizeof p, "%s/adapter_config.json", root);
    const char *peft = "{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4, "
                       "\"target_modules\": [\"c_proj\"], \"layers_to_transform\": [1, 2], "
                       "\"fan_in_fan_out\": true, \"bias\": \"none\"}";
    CHECK_OK(lethe_file_write_atomic(p, peft, strlen(peft)));
    CHECK_OK(lethe_lora_load(root, g, &m));
    CHECK(m->n_sites == 4 && m->scale == 2.0f);
    CHECK(!memcmp(m->params, l->params, sizeof(float) * (size_t)l->n_params));
    lethe_lora_free(m);
    m = NULL;
    const char *rs = "{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4, "
                     "\"target_modules\": [\"c_proj\"], \"use_rslora\": true}";
    CHECK_OK(lethe_file_write_atomic(p, rs, strlen(rs)));
    CHECK_STATUS(lethe_lora_load(root, g, &m), LETHE_ERR_UNSUPPORTED);
    const char *rank = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 4, "
                       "\"target_modules\": [\"c_proj\"], \"layers_to_transform\": [1, 2]}";
    CHECK_OK(lethe_file_write_atomic(p, rank, strlen(rank)));
    CHECK_STATUS(lethe_lora_load(root, g, &m), LETHE_ERR_FORMAT);
    CHECK_MSG(strstr(lethe_error_detail(), "rank 4"), "%s", lethe_error_detail());
    const char *nor = "{\"peft_type\": \"LORA\", \"lora_alpha\": 4, \"target_modules\": []}";
    CHECK_OK(lethe_file_write_atomic(p, nor, strlen(nor)));
    CHECK_STATUS(lethe_lora_load(root, g, &m), LETHE_ERR_NOT_FOUND);
    CHECK(strstr(lethe_error_detail(), "'r'"));
    remove_adapter(root);
    lethe_lora_free(l);
    lethe_gpt_free(g);
}

/* Train an adapter on a byte stream: the losses, the adapter and the model
 * afterwards (applied). */
struct run {
    lethe_gpt_train_result res;
    float *adapter, *params, *base;
    long n_adapter, n_params;
};

static void run_free(struct run *r)
{
    free(r->adapter);
    free(r->params);
    free(r->base);
}

static lethe_status train_lora(uint64_t seed, int accum, struct run *out)
{
    memset(out, 0, sizeof *out);
    lethe_gpt_config cfg = {260, 16, 16, 2, 2};
    lethe_gpt *g = model(&cfg, 1);
    if (!g)
        return LETHE_ERR_NOMEM;
    /* A frozen head of GPT-2's scale (0.02) caps the logits far below what
     * the stream needs; a base with embeddings of scale 0.5 stands in for a
     * trained one. */
    float *wte = lethe_gpt_param(g, "wte.weight", NULL, NULL);
    for (long i = 0; i < (long)cfg.vocab_size * cfg.n_embd; i++)
        wte[i] *= 25.0f;
    int32_t s[600], v[100];
    for (int i = 0; i < 600; i++)
        s[i] = "the cat sat on the mat. "[i % 24];
    for (int i = 0; i < 100; i++)
        v[i] = "the mat sat on the cat. "[i % 24];
    lethe_lora_config lc;
    lethe_lora_config_defaults(&lc);
    lc.rank = 4, lc.alpha = 8;
    lethe_lora *l = lethe_lora_init(g, &lc, seed);
    lethe_gpt_train_cfg c;
    lethe_gpt_train_defaults(&c);
    c.batch = 4, c.seq = 8, c.accum = accum, c.steps = 40, c.lr = 3e-2f, c.min_lr = 3e-3f;
    c.warmup = 4, c.eval_every = 10, c.seed = seed, c.quiet = 1, c.lora = l;
    out->base = copy(g->params, g->n_params);
    lethe_status st = l ? lethe_gpt_train(g, s, 600, v, 100, &c, NULL, &out->res)
                        : LETHE_ERR_NOMEM;
    if (st == LETHE_OK) {
        out->n_adapter = l->n_params;
        out->n_params = g->n_params;
        out->adapter = copy(l->params, l->n_params);
        out->params = copy(g->params, g->n_params);
        /* the model ends applied: W0 + s A B */
        float *applied = copy(g->params, g->n_params);
        lethe_lora_apply(l, g);
        if (memcmp(applied, g->params, sizeof(float) * (size_t)g->n_params))
            st = LETHE_ERR_FAILED;
        free(applied);
        /* the model's gradients are left zero */
        for (long i = 0; i < g->n_params; i++)
            if (g->grads[i] != 0.0f)
                st = LETHE_ERR_FAILED;
        /* unmerged: the base, bit for bit */
        lethe_lora_unmerge(l, g);
        if (memcmp(out->base, g->params, sizeof(float) * (size_t)g->n_params))
            st = LETHE_ERR_FAILED;
    }
    lethe_lora_free(l);
    lethe_gpt_free(g);
    return st;
}

/* (f) LoRA training lowers the loss and leaves W0 untouched. */
TEST(lora_train_lowers_loss)
{
    struct run r;
    lethe_status st = train_lora(3, 1, &r);
    CHECK_OK(st);
    if (getenv("LETHE_TEST_VERBOSE"))
        fprintf(stderr, "lora train: loss %.4f -> %.4f, val %.4f\n", r.res.first_loss,
                r.res.last_loss, r.res.val_loss);
    CHECK(r.res.steps == 40);
    CHECK_MSG(r.res.last_loss < r.res.first_loss - 1.0, "loss %g -> %g", r.res.first_loss,
              r.res.last_loss);
    CHECK(r.res.val_loss < r.res.first_loss);
    /* only the adapted weights differ from the base while applied */
    CHECK(memcmp(r.params, r.base, sizeof(float) * (size_t)r.n_params));
    run_free(&r);

    /* an adapter for another model is refused */
    lethe_gpt_config a = {260, 16, 16, 2, 2}, b = {260, 16, 16, 1, 2};
    lethe_gpt *ga = model(&a, 1), *gb = model(&b, 1);
    CHECK(ga && gb);
    lethe_lora_config lc;
    lethe_lora_config_defaults(&lc);
    lethe_lora *l = lethe_lora_init(gb, &lc, 1);
    CHECK(l);
    int32_t s[64];
    for (int i = 0; i < 64; i++)
        s[i] = i;
    lethe_gpt_train_cfg c;
    lethe_gpt_train_defaults(&c);
    c.batch = 2, c.seq = 8, c.steps = 1, c.quiet = 1, c.lora = l;
    lethe_gpt_train_result res;
    CHECK_STATUS(lethe_gpt_train(ga, s, 64, NULL, 0, &c, NULL, &res), LETHE_ERR_INVALID);
    CHECK(strstr(lethe_error_detail(), "adapter"));
    lethe_lora_free(l);
    lethe_gpt_free(ga);
    lethe_gpt_free(gb);
}

/* (g) The same seed gives the same bits; another seed other bits. */
TEST(lora_train_deterministic)
{
    struct run a, b, c;
    CHECK_OK(train_lora(5, 2, &a));
    CHECK_OK(train_lora(5, 2, &b));
    CHECK_OK(train_lora(6, 2, &c));
    CHECK(a.res.last_loss == b.res.last_loss && a.res.val_loss == b.res.val_loss);
    CHECK(!memcmp(a.adapter, b.adapter, sizeof(float) * (size_t)a.n_adapter));
    CHECK(!memcmp(a.params, b.params, sizeof(float) * (size_t)a.n_params));
    CHECK(memcmp(a.adapter, c.adapter, sizeof(float) * (size_t)a.n_adapter));
    CHECK(a.res.last_loss < a.res.first_loss);
    run_free(&a);
    run_free(&b);
    run_free(&c);
}

/* Floats of fixture tensor `name` (n of them in *n when n is not NULL). */
static float *fx(const lethe_safetensors *st, const char *name, size_t *n)
{
    const lethe_st_tensor *t = lethe_safetensors_find(st, name);
    float *x = t ? malloc(sizeof *x * (t->numel ? t->numel : 1)) : NULL;
    if (x && lethe_safetensors_to_f32(st, t, x) != LETHE_OK) {
        free(x);
        return NULL;
    }
    if (n)
        *n = t ? t->numel : 0;
    return x;
}

/* |a - b| / (1 + |b|), the worst over n values. */
static double worst(const float *a, const float *b, long n)
{
    double w = 0;
    for (long i = 0; i < n; i++)
        w = fmax(w, fabs((double)a[i] - b[i]) / (1.0 + fabs((double)b[i])));
    return w;
}

/* Against PyTorch (tests/ref/make_lora_fixture.py): an adapter written in
 * PEFT's layout and configuration (no lethe fields) loads, and the logits,
 * the loss and the gradient of every lora_A / lora_B agree within 1e-5 as
 * |a - b| / (1 + |b|). */
TEST(lora_twin_pytorch)
{
    lethe_safetensors *st = NULL;
    CHECK_OK(lethe_safetensors_open(FIXTURES "lora_twin.safetensors", &st));
    lethe_gpt_config c = {atoi(lethe_safetensors_meta(st, "vocab_size")),
                          atoi(lethe_safetensors_meta(st, "n_positions")),
                          atoi(lethe_safetensors_meta(st, "n_embd")),
                          atoi(lethe_safetensors_meta(st, "n_layer")),
                          atoi(lethe_safetensors_meta(st, "n_head"))};
    lethe_gpt *g = lethe_gpt_init(&c);
    CHECK(g);
    for (int i = 0; i < g->n_tensors; i++) {
        char name[80];
        snprintf(name, sizeof name, "base.%s", g->tensors[i].name);
        size_t n = 0;
        float *x = fx(st, name, &n);
        CHECK_MSG(x && (long)n == g->tensors[i].numel, "fixture tensor %s", name);
        memcpy(g->params + g->tensors[i].offset, x, sizeof(float) * n);
        free(x);
    }
    lethe_lora *l = NULL;
    CHECK_OK(lethe_lora_load(FIXTURES "lora_twin", g, &l));
    CHECK(l->n_sites == 4 * c.n_layer && l->cfg.rank == 2 && l->scale == 1.5f);
    size_t ntok = 0, nlog = 0;
    float *tokf = fx(st, "tokens", &ntok), *tgtf = fx(st, "targets", NULL);
    float *want = fx(st, "logits", &nlog);
    const lethe_st_tensor *tt = lethe_safetensors_find(st, "tokens");
    CHECK(tokf && tgtf && want && tt && tt->rank == 2);
    int B = (int)tt->shape[0], T = (int)tt->shape[1];
    int32_t *tok = malloc(sizeof *tok * ntok), *tgt = malloc(sizeof *tgt * ntok);
    for (size_t i = 0; i < ntok; i++)
        tok[i] = (int32_t)tokf[i], tgt[i] = (int32_t)tgtf[i];
    lethe_lora_apply(l, g);
    lethe_gpt_zero_grad(g);
    CHECK_OK(lethe_gpt_forward(g, tok, tgt, B, T));
    CHECK((long)nlog == (long)B * T * c.vocab_size);
    double e_logits = worst(g->logits, want, (long)nlog);
    double e_loss = fabs(g->loss - atof(lethe_safetensors_meta(st, "loss")));
    lethe_gpt_backward(g);
    lethe_lora_backward(l, g);
    double e_grad = 0, gmax = 0;
    for (int i = 0; i < l->n_sites; i++) {
        const lethe_lora_site *s = &l->sites[i];
        const int r = l->cfg.rank;
        for (int h = 0; h < 2; h++) {
            char name[128];
            snprintf(name, sizeof name, "grad.base_model.model.transformer.h.%d.%s.lora_%c.weight",
                     s->layer, lethe_lora_target_name(s->target), h ? 'B' : 'A');
            size_t n = 0;
            float *gw = fx(st, name, &n);
            CHECK_MSG(gw, "fixture tensor %s", name);
            for (int x = 0; x < (h ? s->out : s->in); x++)
                for (int k = 0; k < r; k++) {
                    /* PEFT: lora_A (r, in), lora_B (out, r) */
                    float ana = h ? l->grads[s->b_offset + (long)k * s->out + x]
                                  : l->grads[s->a_offset + (long)x * r + k];
                    float ref = h ? gw[(long)x * r + k] : gw[(long)k * s->in + x];
                    e_grad = fmax(e_grad, fabs((double)ana - ref) / (1.0 + fabs((double)ref)));
                    gmax = fmax(gmax, fabs((double)ref));
                }
            free(gw);
        }
    }
    if (getenv("LETHE_TEST_VERBOSE"))
        fprintf(stderr, "lora twin: logits %.3g, loss %.3g, adapter gradients %.3g (largest "
                        "%.3g)\n", e_logits, e_loss, e_grad, gmax);
    CHECK_MSG(e_logits < 1e-5, "logits differ by %g", e_logits);
    CHECK_MSG(e_loss < 1e-5, "loss differs by %g", e_loss);
    CHECK_MSG(e_grad < 1e-5 && gmax > 1e-2, "adapter gradients differ by %g (largest %g)",
              e_grad, gmax);
    free(tok);
    free(tgt);
    free(tokf);
    free(tgtf);
    free(want);
    lethe_lora_free(l);
    lethe_gpt_free(g);
    lethe_safetensors_free(st);
}
