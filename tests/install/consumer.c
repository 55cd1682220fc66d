/* A program that knows lethe only through its installed headers and
 * `pkg-config lethe`: it runs a GPT forward pass and a SISA forget, and
 * checks that the forget equals training without the sample.
 *
 * Usage: consumer WORKDIR. Prints "gpt loss X" and "sisa forget ok"; exits 0
 * when both work, 1 otherwise. */
#include <lethe/dataset.h>
#include <lethe/gpt.h>
#include <lethe/recipe.h>
#include <lethe/sha256.h>
#include <lethe/sisa.h>
#include <lethe/status.h>
#include <lethe/task.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

static int gpt_forward(void)
{
    lethe_gpt_config cfg = {.vocab_size = 64, .n_positions = 16, .n_embd = 32, .n_layer = 2,
                            .n_head = 4};
    lethe_gpt *g = lethe_gpt_init(&cfg);
    if (!g)
        return 1;
    lethe_gpt_init_params(g, 1);
    int32_t tok[2 * 16], tgt[2 * 16];
    for (int i = 0; i < 2 * 16; i++) {
        tok[i] = (int32_t)((i * 7) % 64);
        tgt[i] = (int32_t)((i * 7 + 7) % 64);
    }
    lethe_status st = lethe_gpt_forward(g, tok, tgt, 2, 16);
    float loss = g->loss;
    lethe_gpt_free(g);
    if (st != LETHE_OK)
        return 1;
    /* A freshly initialised model predicts about uniformly: loss near ln 64. */
    printf("gpt loss %.4f (ln 64 = %.4f)\n", loss, log(64.0));
    return !(fabsf(loss - (float)log(64.0)) < 0.5f);
}

static lethe_sisa *ensemble(const char *dir, const lethe_rows *excluded)
{
    lethe_task_opts o = {.limit = 200};
    lethe_dataset *tr = NULL, *te = NULL;
    lethe_recipe r;
    char spec[512];
    lethe_sisa *s = NULL;
    if (lethe_task_load("digits", &o, &tr, &te) != LETHE_OK)
        return NULL;
    lethe_recipe_default(tr, "mlp", &r);
    r.cfg.epochs = 2;
    lethe_recipe_spec(&r, tr, spec, sizeof spec);
    lethe_status st = lethe_sisa_create(dir, "digits", &o, spec, &r.cfg, 2, 2, 3, LETHE_AGG_VOTE,
                                        excluded, NULL, 0, &s);
    if (st == LETHE_OK)
        st = lethe_sisa_sync(s);
    lethe_dataset_free(tr);
    lethe_dataset_free(te);
    if (st != LETHE_OK) {
        lethe_sisa_free(s);
        return NULL;
    }
    return s;
}

static int sisa_forget(const char *work)
{
    char a_dir[4096], b_dir[4096];
    snprintf(a_dir, sizeof a_dir, "%s/forgot", work);
    snprintf(b_dir, sizeof b_dir, "%s/never", work);
    long row = 17;
    lethe_rows one = {.n = 1, .row = &row};
    lethe_sisa *a = ensemble(a_dir, NULL), *b = ensemble(b_dir, &one);
    int bad = !a || !b;
    long req = -1;
    if (!bad)
        bad = lethe_ensemble_request(&a->e, &one, &req) != LETHE_OK || lethe_sisa_sync(a) != LETHE_OK;
    for (int k = 0; !bad && k < a->e.shards; k++) {
        char pa[4200], pb[4200], ha[65], hb[65];
        lethe_ensemble_model_path(&a->e, k, pa, sizeof pa);
        lethe_ensemble_model_path(&b->e, k, pb, sizeof pb);
        bad = lethe_sha256_file(pa, ha) != LETHE_OK || lethe_sha256_file(pb, hb) != LETHE_OK ||
              strcmp(ha, hb) != 0;
    }
    if (bad)
        fprintf(stderr, "consumer: sisa: %s\n", lethe_error_detail());
    else
        printf("sisa forget ok (request %ld, shards equal to training without row %ld)\n", req,
               row);
    lethe_sisa_free(a);
    lethe_sisa_free(b);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: consumer WORKDIR\n");
        return 2;
    }
    int bad = gpt_forward();
    bad |= sisa_forget(argv[1]);
    return bad;
}
