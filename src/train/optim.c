/* SGD with momentum, AdamW, schedules, clipping. */
#include "lethe/optim.h"
#include "lethe/mem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Element loops shorter than this stay on one thread: they are memory-bound,
 * and waking a team (whose threads then spin) costs more than it saves while
 * the BLAS threads want the same cores. */
#define PARALLEL_MIN (1L << 22)

lethe_optim *lethe_optim_init(lethe_optim_kind kind, long n)
{
    lethe_optim *o = calloc(1, sizeof *o);
    if (!o) {
        lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    o->kind = kind;
    o->n = n;
    if (kind == LETHE_OPTIM_SGD) {
        o->lr = 0.01f;
        o->momentum = 0.9f;
    } else {
        o->lr = 1e-3f;
        o->beta1 = 0.9f;
        o->beta2 = 0.999f;
        o->eps = 1e-8f;
        o->weight_decay = 0.01f;
    }
    o->m = lethe_calloc((size_t)n, sizeof(float));
    o->v = kind == LETHE_OPTIM_ADAMW ? lethe_calloc((size_t)n, sizeof(float)) : NULL;
    if (!o->m || (kind == LETHE_OPTIM_ADAMW && !o->v)) {
        lethe_optim_free(o);
        return NULL;
    }
    return o;
}

void lethe_optim_free(lethe_optim *o)
{
    if (!o)
        return;
    lethe_free(o->m);
    lethe_free(o->v);
    free(o);
}

/* torch.optim.AdamW (single-tensor form) for one element:
 *   p *= 1 - lr wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
 *   p -= (lr / bc1) * (m / (sqrt(v) / sqrt(bc2) + eps)).
 * Returns the new p. */
static inline float adamw_elem(float g, float p, float *m, float *v, float b1, float b2,
                               float step, float sqrt_bc2, float eps, float decay)
{
    float mi = b1 * *m + (1.0f - b1) * g;
    float vi = b2 * *v + (1.0f - b2) * g * g;
    *m = mi;
    *v = vi;
    return p * decay - step * (mi / (sqrtf(vi) / sqrt_bc2 + eps));
}

/* One pass over the arrays; with `zero`, each gradient is cleared once read
 * (the test is loop-invariant, so the loops stay vectorised). Restrict and
 * simd let the compiler vectorise; threads only for long arrays. */
static void optim_update(lethe_optim *o, float *restrict p, float *restrict g, int zero, float lr)
{
    o->t++;
    long n = o->n;
    float *restrict m = o->m, *restrict v = o->v;
    if (o->kind == LETHE_OPTIM_SGD) {
        /* torch.optim.SGD: g += wd p; buf = g (first step) or mu buf + g;
         * p -= lr buf (buf is g itself without momentum) */
        float mu = o->momentum, wd = o->weight_decay, keep = o->t == 1 ? 0.0f : mu;
        if (mu == 0.0f) {
#pragma omp parallel for simd if (parallel : n > PARALLEL_MIN)
            for (long i = 0; i < n; i++) {
                p[i] -= lr * (g[i] + wd * p[i]);
                if (zero)
                    g[i] = 0.0f;
            }
        } else {
#pragma omp parallel for simd if (parallel : n > PARALLEL_MIN)
            for (long i = 0; i < n; i++) {
                float mi = keep * m[i] + (g[i] + wd * p[i]);
                m[i] = mi;
                p[i] -= lr * mi;
                if (zero)
                    g[i] = 0.0f;
            }
        }
        return;
    }
    float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    double bc1 = 1.0 - pow(b1, (double)o->t), bc2 = 1.0 - pow(b2, (double)o->t);
    float step = (float)(lr / bc1), sqrt_bc2 = (float)sqrt(bc2);
    float decay = 1.0f - lr * o->weight_decay;
#pragma omp parallel for simd if (parallel : n > PARALLEL_MIN)
    for (long i = 0; i < n; i++) {
        p[i] = adamw_elem(g[i], p[i], &m[i], &v[i], b1, b2, step, sqrt_bc2, eps, decay);
        if (zero)
            g[i] = 0.0f;
    }
}

void lethe_optim_step(lethe_optim *o, float *params, const float *grads, float lr)
{
    /* not written: zero == 0 */
    optim_update(o, params, (float *)grads, 0, lr);
}

void lethe_optim_step_zero_grad(lethe_optim *o, float *params, float *grads, float lr)
{
    optim_update(o, params, grads, 1, lr);
}

lethe_status lethe_optim_parse(const char *name, lethe_optim_kind *kind)
{
    if (!strcmp(name, "sgd"))
        *kind = LETHE_OPTIM_SGD;
    else if (!strcmp(name, "adamw"))
        *kind = LETHE_OPTIM_ADAMW;
    else
        return lethe_fail(LETHE_ERR_INVALID, "unknown optimizer '%s' (expected sgd or adamw)",
                          name);
    return LETHE_OK;
}

float lethe_sched_lr(const lethe_sched *s, long t)
{
    switch (s->kind) {
    case LETHE_SCHED_CONSTANT: return s->lr;
    case LETHE_SCHED_STEP:
        return s->step_size > 0 ? s->lr * powf(s->gamma, (float)(t / s->step_size)) : s->lr;
    case LETHE_SCHED_COSINE:
        if (t < s->warmup)
            return s->lr * (float)(t + 1) / (float)s->warmup;
        if (s->total <= s->warmup)
            return s->lr;
        double frac = (double)(t - s->warmup) / (double)(s->total - s->warmup);
        if (frac > 1)
            frac = 1;
        return (float)(s->min_lr + 0.5 * (s->lr - s->min_lr) * (1.0 + cos(M_PI * frac)));
    }
    return s->lr;
}

lethe_status lethe_sched_parse(const char *name, lethe_sched_kind *kind)
{
    if (!strcmp(name, "constant"))
        *kind = LETHE_SCHED_CONSTANT;
    else if (!strcmp(name, "step"))
        *kind = LETHE_SCHED_STEP;
    else if (!strcmp(name, "cosine"))
        *kind = LETHE_SCHED_COSINE;
    else
        return lethe_fail(LETHE_ERR_INVALID,
                          "unknown schedule '%s' (expected constant, step or cosine)", name);
    return LETHE_OK;
}

double lethe_grad_norm(const float *g, long n)
{
    double s = 0;
    for (long i = 0; i < n; i++)
        s += (double)g[i] * g[i];
    return sqrt(s);
}

double lethe_grad_clip(float *g, long n, double max_norm)
{
    double norm = lethe_grad_norm(g, n);
    if (norm > max_norm) {
        float scale = (float)(max_norm / (norm + 1e-6));
        for (long i = 0; i < n; i++)
            g[i] *= scale;
    }
    return norm;
}
