/* Optimizers, schedules and clipping against their definitions. The
 * step-for-step comparison with torch.optim lives in test_twin.c. */
#include <stdlib.h>

#include "../test.h"
#include "lethe/optim.h"

TEST(optim_sgd_momentum_by_hand)
{
    lethe_optim *o = lethe_optim_init(LETHE_OPTIM_SGD, 2);
    CHECK(o);
    o->momentum = 0.5f;
    o->weight_decay = 0.1f;
    float p[2] = {1, -2}, g[2] = {0.5f, 1};
    lethe_optim_step(o, p, g, 0.1f);
    /* g' = g + wd p = (0.6, 0.8); buf = g'; p -= 0.1 g' */
    CHECK_CLOSE(p[0], 0.94, 1e-6, 0);
    CHECK_CLOSE(p[1], -2.08, 1e-6, 0);
    lethe_optim_step(o, p, g, 0.1f);
    /* g' = (0.5 + 0.094, 1 - 0.208); buf = 0.5 buf + g' */
    CHECK_CLOSE(p[0], 0.94 - 0.1 * (0.5 * 0.6 + 0.594), 1e-6, 0);
    CHECK_CLOSE(p[1], -2.08 - 0.1 * (0.5 * 0.8 + 0.792), 1e-6, 0);
    lethe_optim_free(o);
    lethe_optim_free(NULL);
}

TEST(optim_adamw_by_hand)
{
    lethe_optim *o = lethe_optim_init(LETHE_OPTIM_ADAMW, 1);
    CHECK(o);
    float p = 1.0f, g = 0.2f;
    lethe_optim_step(o, &p, &g, 0.01f);
    /* step 1: mhat = g, vhat = g^2, so p = p (1 - lr wd) - lr g / (|g| + eps) */
    double want = 1.0 * (1 - 0.01 * 0.01) - 0.01 * 0.2 / (0.2 + 1e-8);
    CHECK_CLOSE(p, want, 1e-6, 0);
    float g2 = -0.4f;
    lethe_optim_step(o, &p, &g2, 0.01f);
    double m = 0.9 * 0.1 * 0.2 + 0.1 * -0.4, v = 0.999 * 0.001 * 0.04 + 0.001 * 0.16;
    double mhat = m / (1 - 0.81), vhat = v / (1 - 0.999 * 0.999);
    want = want * (1 - 1e-4) - 0.01 * mhat / (sqrt(vhat) + 1e-8);
    CHECK_CLOSE(p, want, 1e-6, 0);
    lethe_optim_kind k;
    CHECK_OK(lethe_optim_parse("adamw", &k));
    CHECK(k == LETHE_OPTIM_ADAMW);
    CHECK_STATUS(lethe_optim_parse("adam", &k), LETHE_ERR_INVALID);
    lethe_optim_free(o);
}

TEST(optim_schedules)
{
    lethe_sched s = {LETHE_SCHED_COSINE, 1.0f, 110, 10, 0.1f, 0, 0};
    CHECK_CLOSE(lethe_sched_lr(&s, 0), 0.1, 1e-6, 0);
    CHECK_CLOSE(lethe_sched_lr(&s, 9), 1.0, 1e-6, 0);
    CHECK_CLOSE(lethe_sched_lr(&s, 10), 1.0, 1e-6, 0);
    CHECK_CLOSE(lethe_sched_lr(&s, 60), 0.55, 1e-6, 0);
    CHECK_CLOSE(lethe_sched_lr(&s, 110), 0.1, 1e-6, 0);
    lethe_sched st = {LETHE_SCHED_STEP, 1.0f, 100, 0, 0, 30, 0.5f};
    CHECK_CLOSE(lethe_sched_lr(&st, 29), 1.0, 0, 0);
    CHECK_CLOSE(lethe_sched_lr(&st, 30), 0.5, 0, 0);
    CHECK_CLOSE(lethe_sched_lr(&st, 95), 0.125, 0, 0);
    lethe_sched c = {LETHE_SCHED_CONSTANT, 0.3f, 10, 0, 0, 0, 0};
    CHECK_CLOSE(lethe_sched_lr(&c, 1000), 0.3, 1e-7, 0);
    lethe_sched_kind k;
    CHECK_OK(lethe_sched_parse("cosine", &k));
    CHECK_STATUS(lethe_sched_parse("linear", &k), LETHE_ERR_INVALID);
}

TEST(optim_clip_grad_norm)
{
    float g[4] = {3, 4, 0, 0};
    CHECK_CLOSE(lethe_grad_clip(g, 4, 10.0), 5.0, 1e-12, 0);
    CHECK(g[0] == 3 && g[1] == 4);
    CHECK_CLOSE(lethe_grad_clip(g, 4, 1.0), 5.0, 1e-12, 0);
    CHECK_CLOSE(lethe_grad_norm(g, 4), 1.0, 1e-6, 0);
    CHECK_CLOSE(g[0], 0.6, 1e-6, 0);
}
