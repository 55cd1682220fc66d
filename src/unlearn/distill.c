/* Helpers of the teacher-student methods (SCRUB, Bad Teacher) and of the
 * methods that need a second network or a keyed subset of rows. */
#include "common.h"
#include "lethe/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* log sum_v exp(z_v / T), in double. */
static double lse_t(const float *z, int V, double T)
{
    double zmax = z[0] / T;
    for (int v = 1; v < V; v++)
        zmax = z[v] / T > zmax ? z[v] / T : zmax;
    double sum = 0;
    for (int v = 0; v < V; v++)
        sum += exp(z[v] / T - zmax);
    return zmax + log(sum);
}

void ul_softmax_t(double *p, const float *z, int V, double T)
{
    double lse = lse_t(z, V, T);
    for (int v = 0; v < V; v++)
        p[v] = exp(z[v] / T - lse);
}

double ul_kl_t(float *dlogits, float *losses, const float *t_logits, const float *s_logits,
               int B, int V, double T, float scale)
{
    LETHE_ASSERT(T > 0);
    double total = 0;
    for (int i = 0; i < B; i++) {
        const float *t = t_logits + (long)i * V, *s = s_logits + (long)i * V;
        double at = lse_t(t, V, T), as = lse_t(s, V, T), kl = 0;
        for (int v = 0; v < V; v++) {
            double lt = t[v] / T - at, ls = s[v] / T - as, pt = exp(lt);
            if (pt > 0)
                kl += pt * (lt - ls);
            /* d KL / d s_v = (p_s,v - p_t,v) / T */
            if (dlogits)
                dlogits[(long)i * V + v] += (float)(scale * (exp(ls) - pt) / (T * B));
        }
        if (losses)
            losses[i] = (float)kl;
        total += kl;
    }
    return B > 0 ? total / B : 0;
}

lethe_net *ul_net_random(const lethe_net *like, uint64_t seed)
{
    lethe_net *net = lethe_net_init(like->spec);
    if (net)
        lethe_net_init_params(net, seed);
    return net;
}

lethe_status ul_rows_subset(lethe_rows *out, const lethe_dataset *ds, const lethe_rows *from,
                            double frac, uint64_t seed, uint64_t stream)
{
    out->n = 0;
    out->row = malloc(sizeof(long) * (size_t)(from->n + 1));
    if (!out->row)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory for %ld rows", from->n);
    for (long i = 0; i < from->n; i++)
        if (lethe_id_uniform(seed, stream, ds->ids[from->row[i]]) < frac)
            out->row[out->n++] = from->row[i];
    return LETHE_OK;
}
