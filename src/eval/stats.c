/* Statistics behind the evaluation suites: Kolmogorov-Smirnov, ROC, harmonic
 * mean, Wasserstein distance, and one-value-per-line readers. Each follows
 * the reference named in include/lethe/stats.h; the comments say where an
 * algorithm comes from. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lethe/fileio.h"
#include "lethe/stats.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif
#ifndef M_LN2
#define M_LN2 0.69314718055994530942
#endif

/* ---------------------------------------------------------------- helpers */

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return (a > b) - (a < b);
}

static double *sorted_copy(const double *x, size_t n)
{
    double *s = malloc((n ? n : 1) * sizeof *s);
    if (!s)
        return NULL;
    memcpy(s, x, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    return s;
}

static lethe_status check_sample(const char *what, const double *x, size_t n)
{
    if (n == 0)
        return lethe_fail(LETHE_ERR_INVALID, "%s: the sample is empty", what);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return lethe_fail(LETHE_ERR_INVALID, "%s: value %zu (%g) is not finite", what, i + 1,
                              x[i]);
    return LETHE_OK;
}

/* Neumaier's compensated sum: far more accurate than numpy's pairwise sum,
 * so results agree with scipy to a few ulps. */
typedef struct {
    double s, c;
} ksum;

static void ksum_add(ksum *k, double x)
{
    double t = k->s + x;
    if (fabs(k->s) >= fabs(x))
        k->c += (k->s - t) + x;
    else
        k->c += (x - t) + k->s;
    k->s = t;
}

static double clip01(double p) /* np.clip(p, 0, 1): NaN stays NaN */
{
    return p < 0.0 ? 0.0 : p > 1.0 ? 1.0 : p;
}

/* ------------------------------------------------------------------ input */

/* 'text' for a message: at most 40 bytes, control bytes shown as '?'. */
static void quote(char *dst, size_t cap, const char *s, size_t len)
{
    size_t o = 0, max = 40;
    for (size_t i = 0; i < len && i < max && o + 1 < cap; i++)
        dst[o++] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    if (len > max && o + 4 < cap) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = '\0';
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

lethe_status lethe_stats_numbers_read(const char *path, double **values, size_t *n)
{
    unsigned char *data;
    size_t len, cap = 1, count = 0, line = 0, blank = 0;
    double *v = NULL;
    lethe_status st;
    *values = NULL;
    *n = 0;
    if ((st = lethe_file_read(path, &data, &len)) != LETHE_OK)
        return st;
    for (size_t i = 0; i < len; i++)
        cap += data[i] == '\n';
    if (!(v = malloc(cap * sizeof *v))) {
        st = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory for %zu lines", path, cap);
        goto done;
    }
    char *p = (char *)data, *end = p + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *s = p, *e = nl ? nl : end;
        line++;
        p = nl ? nl + 1 : end;
        while (s < e && is_space(*s))
            s++;
        while (e > s && is_space(e[-1]))
            e--;
        if (s == e) {
            if (!blank)
                blank = line;
            continue;
        }
        if (blank) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s:%zu: blank line before the last number", path,
                            blank);
            goto done;
        }
        char saved = *e, *q, shown[48];
        *e = '\0';
        double x = strtod(s, &q);
        *e = saved;
        if (q != e || !isfinite(x)) {
            quote(shown, sizeof shown, s, (size_t)(e - s));
            st = lethe_fail(LETHE_ERR_FORMAT, "%s:%zu: '%s' is not a %snumber", path, line, shown,
                            q == e ? "finite " : "");
            goto done;
        }
        v[count++] = x;
    }
    if (count == 0)
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: no numbers", path);
done:
    free(data);
    if (st != LETHE_OK) {
        free(v);
        return st;
    }
    *values = v;
    *n = count;
    return LETHE_OK;
}

lethe_status lethe_stats_lines_read(const char *path, char ***lines, size_t *n)
{
    unsigned char *data;
    size_t len, count = 0;
    lethe_status st;
    *lines = NULL;
    *n = 0;
    if ((st = lethe_file_read(path, &data, &len)) != LETHE_OK)
        return st;
    if (len == 0) {
        free(data);
        return lethe_fail(LETHE_ERR_FORMAT, "%s: no lines", path);
    }
    const unsigned char *nul = memchr(data, '\0', len);
    if (nul) {
        size_t at = 1;
        for (const unsigned char *c = data; c < nul; c++)
            at += *c == '\n';
        free(data);
        return lethe_fail(LETHE_ERR_FORMAT, "%s:%zu: NUL byte (not a text file?)", path, at);
    }
    for (size_t i = 0; i < len; i++)
        count += data[i] == '\n';
    count += data[len - 1] != '\n';
    char **block = malloc(count * sizeof(char *) + len + 1);
    if (!block) {
        free(data);
        return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory for %zu lines", path, count);
    }
    char *text = (char *)(block + count);
    memcpy(text, data, len + 1);
    free(data);
    for (size_t i = 0; i < count; i++) {
        char *nl = strchr(text, '\n');
        block[i] = text;
        if (!nl)
            break;
        *nl = '\0';
        if (nl > text && nl[-1] == '\r')
            nl[-1] = '\0';
        text = nl + 1;
    }
    *lines = block;
    *n = count;
    return LETHE_OK;
}

/* ---------------------------------------- kstwo: P(D_n >= d), one sample */

/* log(n! / n^n) by Stirling's series, as scipy's _ksstats. */
static double log_nfact_over_npown(long n)
{
    static const double c[8] = {-2.955065359477124183e-2, 6.4102564102564102564e-3,
                                -1.9175269175269175269e-3, 8.4175084175084175084e-4,
                                -5.952380952380952381e-4, 7.9365079365079365079e-4,
                                -2.7777777777777777778e-3, 8.3333333333333333333e-2};
    double rn = 1.0 / (double)n, x = rn / (double)n, poly = 0.0;
    for (int i = 0; i < 8; i++)
        poly = poly * x + c[i];
    return log((double)n) / 2 - (double)n + log(2 * M_PI) / 2 + rn * poly;
}

/* Smirnov's one-sided P(D_n+ >= x) (scipy.special.smirnov) by the
 * Birnbaum-Tingey sum of positive terms
 *     x * sum_{v=0}^{floor(n(1-x))} C(n,v) (x + v/n)^(v-1) (1 - x - v/n)^(n-v),
 * each term formed in logarithms and summed relative to the largest so far,
 * with scipy's special cases and, above a million observations, its
 * approximation exp(-(6nx + 1)^2 / 18n). */
static double smirnov_sf(long n, double x)
{
    if (!(n > 0 && x >= 0.0 && x <= 1.0))
        return NAN;
    if (n == 1)
        return 1.0 - x;
    if (x == 0.0)
        return 1.0;
    if (x == 1.0)
        return 0.0;
    /* n x = nxfl + alpha exactly, 0 <= alpha < 1 */
    double nx = (double)n * x, err = fma((double)n, x, -nx), fl = floor(nx);
    double alpha = (nx - fl) + err;
    if (alpha < 0) {
        fl -= 1;
        alpha += 1;
    }
    if (alpha >= 1) {
        fl += 1;
        alpha = 0;
    }
    long nxfl = (long)fl;
    if (nxfl == 0 || (nxfl == 1 && alpha == 0)) /* x <= 1/n */
        return clip01(1.0 - x * pow(1.0 + x, (double)(n - 1)));
    if (-2.0 * (double)n * x * x < -7.08396418532264106224e2) /* cephes MINLOG: underflows */
        return 0.0;
    if (nxfl >= n - 1)
        return clip01(pow(1.0 - x, (double)n));
    if (n > 1000000) {
        double logp = -pow(6.0 * (double)n * x + 1, 2) / 18.0 / (double)n;
        return logp < -M_LN2 ? exp(logp) : 1 - -expm1(logp);
    }
    double lgn = lgamma((double)n + 1), maxlt = -INFINITY, sum = 0.0;
    for (long v = 0; v <= n - nxfl - 1; v++) {
        double up = ((double)(nxfl + v) + alpha) / (double)n;       /* x + v/n */
        double down = ((double)(n - nxfl - v) - alpha) / (double)n; /* 1 - x - v/n */
        double lt = lgn - lgamma((double)v + 1) - lgamma((double)(n - v) + 1) +
                    (double)(v - 1) * log(up) + (double)(n - v) * log(down);
        if (lt > maxlt) {
            sum = sum * exp(maxlt - lt) + 1.0;
            maxlt = lt;
        } else {
            sum += exp(lt - maxlt);
        }
    }
    return clip01(x * exp(maxlt) * sum);
}

/* c = a b for m x m matrices. */
static void matmul(const double *a, const double *b, double *c, int m)
{
    for (int i = 0; i < m; i++) {
        double *ci = c + (size_t)i * m;
        for (int j = 0; j < m; j++)
            ci[j] = 0.0;
        for (int l = 0; l < m; l++) {
            double ail = a[(size_t)i * m + l];
            const double *bl = b + (size_t)l * m;
            for (int j = 0; j < m; j++)
                ci[j] += ail * bl[j];
        }
    }
}

/* Keep a non-negative matrix below 2^128 by powers of two, counted in *e. */
static void rescale(double *a, int m, int *e)
{
    double mx = 0.0;
    for (int i = 0; i < m * m; i++)
        mx = a[i] > mx ? a[i] : mx;
    while (mx > 0x1p128) {
        for (int i = 0; i < m * m; i++)
            a[i] *= 0x1p-128;
        mx *= 0x1p-128;
        *e += 128;
    }
}

/* P(D_n < d) by Durbin's matrix formula in Marsaglia, Tsang and Wang's
 * form: with k = ceil(n d), h = k - n d and the (2k-1)-square matrix H, the
 * probability is n!/n^n (H^n)[k-1][k-1]. Exact; NaN if memory runs out. */
static double dmtw_cdf(long n, double d)
{
    if (d >= 1.0)
        return 1.0;
    double nd = (double)n * d;
    if (nd <= 0.5)
        return 0.0;
    int k = (int)ceil(nd), m = 2 * k - 1, eh = 0, ep = 0;
    double h = k - nd;
    size_t mm = (size_t)m * (size_t)m;
    double *H = calloc(3 * mm, sizeof *H);
    if (!H)
        return NAN;
    double *P = H + mm, *T = H + 2 * mm;
    /* H[r][c] = 1/(r-c+1)! on and below the superdiagonal; then the first
     * column and last row hold (1 - h^i)/i!, and the corner
     * (1 - 2h^m + max(0, 2h-1)^m)/m!. */
    double fac = 1.0; /* 1/i! */
    for (int i = 0; i < m; i++) {
        if (i > 0)
            fac /= i;
        for (int c = 1; c < m; c++) /* rows with r - c + 1 == i */
            if (c + i - 1 < m)
                H[(size_t)(c + i - 1) * m + c] = fac;
    }
    fac = 1.0;
    for (int i = 1; i <= m; i++) {
        fac /= i;
        double v = (1.0 - pow(h, i)) * fac;
        H[(size_t)(i - 1) * m] = v;           /* first column, row i-1 */
        H[(size_t)(m - 1) * m + (m - i)] = v; /* last row, column m-i */
    }
    double tt = pow(fmax(2 * h - 1.0, 0.0), m) - 2 * pow(h, m);
    H[(size_t)(m - 1) * m] = (1.0 + tt) * fac;
    for (int i = 0; i < m; i++)
        P[(size_t)i * m + i] = 1.0;
    for (long nn = n; nn > 0; nn >>= 1) {
        if (nn & 1) {
            matmul(P, H, T, m);
            memcpy(P, T, mm * sizeof *P);
            ep += eh;
            rescale(P, m, &ep);
        }
        if (nn > 1) {
            matmul(H, H, T, m);
            memcpy(H, T, mm * sizeof *H);
            eh *= 2;
            rescale(H, m, &eh);
        }
    }
    double p = P[(size_t)(k - 1) * m + (k - 1)];
    free(H);
    for (long i = 1; i <= n; i++) { /* times n!/n^n */
        p = (double)i * p / (double)n;
        if (p > 0 && p < 0x1p-128) {
            p *= 0x1p128;
            ep -= 128;
        }
    }
    return ldexp(p, ep);
}

/* The Pelz-Good approximation to P(D_n <= x): the Li-Chien/Korolyuk
 * expansion K0 + K1/sqrt(n) + K2/n + K3/n^1.5 in z = x sqrt(n), each term
 * rewritten through Jacobi's theta identity (Pelz and Good 1976), evaluated
 * with the same truncation as scipy's _kolmogn_PelzGood. */
static double pelzgood_cdf(long n, double x)
{
    const double pi2 = M_PI * M_PI, pi4 = pi2 * pi2, pi6 = pi4 * pi2;
    const double sqrt2pi = sqrt(2 * M_PI), sqrt3 = sqrt(3.0);
    if (x <= 0.0)
        return 0.0;
    if (x >= 1.0)
        return 1.0;
    double z = sqrt((double)n) * x;
    double z2 = z * z, z3 = z2 * z, z4 = z2 * z2, z6 = z4 * z2;
    double qlog = -pi2 / 8 / z2;
    if (qlog < -708)
        return 0.0;
    double q = exp(qlog);
    double k1a = -z2, k1b = pi2 / 4;
    double k2a = 6 * z6 + 2 * z4, k2b = (2 * z4 - 5 * z2) * pi2 / 4, k2c = pi4 * (1 - 2 * z2) / 16;
    double k3d = pi6 * (5 - 30 * z2) / 64, k3c = pi4 * (-60 * z2 + 212 * z4) / 16;
    double k3b = pi2 * (135 * z4 - 96 * z6) / 4, k3a = -30 * z6 - 90 * z4 * z4;
    double K[4] = {0, 0, 0, 0};
    int maxk = (int)ceil(16 * z / M_PI);
    /* sum over odd m = 2k-1 of c_m q^(m^2), Horner in q^(8k) */
    for (int k = maxk; k >= 1; k--) {
        double m = 2.0 * k - 1, m2 = m * m, m4 = m2 * m2, m6 = m4 * m2;
        double qp = pow(q, 8.0 * k);
        K[0] = K[0] * qp + 1.0;
        K[1] = K[1] * qp + (k1a + k1b * m2);
        K[2] = K[2] * qp + (k2a + k2b * m2 + k2c * m4);
        K[3] = K[3] * qp + (k3a + k3b * m2 + k3c * m4 + k3d * m6);
    }
    double div[4] = {z, 6 * z4, 72 * pow(z, 7), 6480 * pow(z, 10)};
    for (int i = 0; i < 4; i++)
        K[i] = K[i] * q * sqrt2pi / div[i];
    /* the terms over all integers k in K2 and K3 */
    double q2 = exp(-pi2 / 2 / z2), k2extra = 0.0, k3extra = 0.0;
    for (int k = maxk; k >= 1; k--) {
        double ks = (double)k * k, qp = pow(q2, ks), kpi = M_PI * k;
        k2extra += ks * qp;
        k3extra += (sqrt3 * z + kpi) * (sqrt3 * z - kpi) * ks * qp;
    }
    K[2] += k2extra * (pi2 * sqrt2pi / (-36 * z3));
    K[3] += k3extra * (pi2 * sqrt2pi / (216 * z6));
    double rn = (double)n;
    return K[0] + K[1] / sqrt(rn) + K[2] / rn + K[3] / pow(rn, 1.5);
}

/* scipy's _kolmogn(n, x, cdf=False): Simard and L'Ecuyer's (2011) choice of
 * method. For n <= 140 and n x^2 <= 4 scipy uses Durbin's matrix below
 * 0.754693 and Pomeranz's recursion above; both are exact, and Durbin's
 * matrix serves for the whole range here. */
static double kolmogn_sf(long n, double x)
{
    if (x >= 1.0)
        return 0.0;
    if (x <= 0.0)
        return 1.0;
    double t = (double)n * x;
    if (t <= 1.0) { /* Ruben-Gambino: P(D_n < x) = n!/n^n (2t - 1)^n */
        if (t <= 0.5)
            return 1.0;
        double prob;
        if (n <= 140) {
            double r = 1.0 / (double)n, f = 2 * t - 1;
            prob = 1.0;
            for (long i = 1; i <= n; i++)
                prob *= ((double)i * r) * f;
        } else {
            prob = exp(log_nfact_over_npown(n) + (double)n * log(2 * t - 1));
        }
        return clip01(1.0 - prob);
    }
    if (t >= (double)(n - 1)) /* Ruben-Gambino */
        return clip01(2 * pow(1.0 - x, (double)n));
    if (x >= 0.5) /* D+ >= x and D- >= x cannot both hold */
        return clip01(2 * smirnov_sf(n, x));
    double nx2 = t * x, cdf;
    if (n <= 140) {
        if (nx2 <= 4)
            return clip01(1.0 - dmtw_cdf(n, x));
        return clip01(2 * smirnov_sf(n, x)); /* Miller's approximation */
    }
    if (nx2 >= 370.0)
        return 0.0;
    if (nx2 >= 2.2)
        return clip01(2 * smirnov_sf(n, x));
    if (n <= 100000 && (double)n * pow(x, 1.5) <= 1.4)
        cdf = dmtw_cdf(n, x);
    else
        cdf = pelzgood_cdf(n, x);
    return clip01(1.0 - cdf);
}

double lethe_stats_kstwo_sf(double d, long n)
{
    if (n < 1 || isnan(d))
        return NAN;
    if (d <= 0.5 / (double)n) /* below the support */
        return 1.0;
    if (d >= 1.0)
        return 0.0;
    return kolmogn_sf(n, d);
}

/* --------------------------------------------- two-sample exact p-values */

/* P(D_{n,n} >= h/n) = 2 (A0 - A0 A1 + A0 A1 A2 - ...), each ratio of binomial
 * coefficients binom(2n, n - jh) / binom(2n, n) formed as a product, and the
 * alternating series summed Horner-wise from its tail (as scipy's
 * _compute_prob_outside_square). */
static double ks_exact_square(long long n, long long h)
{
    double P = 0.0;
    for (long long k = n / h; k >= 0; k--) {
        double p1 = 1.0;
        for (long long j = 0; j < h; j++)
            p1 = (double)(n - k * h - j) * p1 / (double)(n + k * h + j + 1);
        P = p1 * (1.0 - P);
    }
    return 2 * P;
}

/* The fraction of monotone lattice paths from (0,0) to (m,n) that touch
 * |x/m - y/n| >= h/lcm(m,n) (Hodges 1958, inside method), carried as the
 * fraction itself column by column so it never overflows (Viehmann 2021),
 * with the sliding window of scipy's _compute_outer_prob_inside_method. */
static lethe_status ks_exact_inside(long long m, long long n, long long g, long long h,
                                    double *out)
{
    if (m < n) {
        long long t = m;
        m = n;
        n = t;
    }
    long long mg = m / g, ng = n / g;
    long long minj = 0, maxj = (long long)ceil((double)h / (double)mg);
    if (maxj > n + 1)
        maxj = n + 1;
    long long curlen = maxj - minj, lenA = 2 * maxj + 2 < n + 1 ? 2 * maxj + 2 : n + 1;
    double *A = malloc((size_t)lenA * sizeof *A);
    if (!A)
        return lethe_fail(LETHE_ERR_NOMEM, "ks_2samp: out of memory");
    for (long long j = 0; j < lenA; j++)
        A[j] = j < maxj ? 0.0 : 1.0;
    for (long long i = 1; i <= m; i++) {
        long long lastminj = minj, lastlen = curlen;
        minj = (long long)floor((double)(ng * i - h) / (double)mg) + 1;
        minj = minj < 0 ? 0 : minj > n ? n : minj;
        maxj = (long long)ceil((double)(ng * i + h) / (double)mg);
        maxj = maxj > n + 1 ? n + 1 : maxj;
        if (maxj <= minj) {
            free(A);
            *out = 1.0;
            return LETHE_OK;
        }
        LETHE_ASSERT(maxj - 1 - lastminj < lenA && maxj - minj <= lenA);
        double val = minj == 0 ? 0.0 : 1.0;
        for (long long jj = 0; jj < maxj - minj; jj++) {
            long long j = jj + minj;
            val = (A[jj + minj - lastminj] * (double)i + val * (double)j) / (double)(i + j);
            A[jj] = val;
        }
        curlen = maxj - minj;
        for (long long j = curlen; j < curlen + (lastlen - curlen) && j < lenA; j++)
            A[j] = 1.0;
    }
    *out = A[maxj - minj - 1];
    free(A);
    return LETHE_OK;
}

static long long gcd_ll(long long a, long long b)
{
    while (b) {
        long long t = a % b;
        a = b;
        b = t;
    }
    return a;
}

lethe_status lethe_stats_ks_2samp(const double *a, size_t na, const double *b, size_t nb,
                                  lethe_ks_result *out)
{
    lethe_status st;
    if ((st = check_sample("ks_2samp: first sample", a, na)) != LETHE_OK ||
        (st = check_sample("ks_2samp: second sample", b, nb)) != LETHE_OK)
        return st;
    double *sa = sorted_copy(a, na), *sb = sorted_copy(b, nb);
    if (!sa || !sb) {
        free(sa);
        free(sb);
        return lethe_fail(LETHE_ERR_NOMEM, "ks_2samp: out of memory");
    }
    /* max and min of F1 - F2 over the pooled values (both empirical CDFs
     * taken right-continuous), formed as scipy forms them: i/n1 - j/n2 */
    double maxd = 0.0, mind = 0.0;
    for (size_t i = 0, j = 0; i < na || j < nb;) {
        double v = (j >= nb || (i < na && sa[i] <= sb[j])) ? sa[i] : sb[j];
        while (i < na && sa[i] <= v)
            i++;
        while (j < nb && sb[j] <= v)
            j++;
        double diff = (double)i / (double)na - (double)j / (double)nb;
        maxd = diff > maxd ? diff : maxd;
        mind = diff < mind ? diff : mind;
    }
    free(sa);
    free(sb);
    double mins = clip01(-mind), d = mins > maxd ? mins : maxd, p = NAN;
    lethe_ks_method method = LETHE_KS_ASYMPTOTIC;
    if ((na > nb ? na : nb) <= 10000) {
        long long n1 = (long long)na, n2 = (long long)nb, g = gcd_ll(n1, n2);
        long long lcm = (n1 / g) * n2, h = (long long)rint(d * (double)lcm);
        d = (double)h / (double)lcm;
        if (h == 0)
            p = 1.0;
        else if (n1 == n2)
            p = ks_exact_square(n1, h);
        else if ((st = ks_exact_inside(n1, n2, g, h, &p)) != LETHE_OK)
            return st;
        if (p >= 0.0 && p <= 1.0) /* otherwise scipy falls back, as here */
            method = LETHE_KS_EXACT;
    }
    if (method == LETHE_KS_ASYMPTOTIC) {
        double m = (double)(na > nb ? na : nb), n = (double)(na > nb ? nb : na);
        double en = m * n / (m + n);
        p = lethe_stats_kstwo_sf(d, (long)rint(en));
        if (isnan(p)) /* only when memory runs out: rint(en) >= 1 here */
            return lethe_fail(LETHE_ERR_NOMEM, "ks_2samp: out of memory");
    }
    out->statistic = d;
    out->pvalue = clip01(p);
    out->method = method;
    return LETHE_OK;
}

/* -------------------------------------------------------------------- ROC */

typedef struct {
    double s;
    int y;
} scored;

static int cmp_scored_desc(const void *pa, const void *pb)
{
    double a = ((const scored *)pa)->s, b = ((const scored *)pb)->s;
    return (a < b) - (a > b);
}

/* The ROC curve as sklearn's roc_curve without dropping collinear points
 * (which changes neither the area nor any interpolated value): (0, 0), then
 * one point per distinct score from the highest down. */
typedef struct {
    size_t np;
    double *fpr, *tpr; /* one allocation, fpr first */
    double auc;
    size_t n_pos, n_neg;
} roc_curve;

static lethe_status roc_build(const double *scores, const int *labels, size_t n, roc_curve *rc)
{
    memset(rc, 0, sizeof *rc);
    for (size_t i = 0; i < n; i++) {
        if (labels[i] != 0 && labels[i] != 1)
            return lethe_fail(LETHE_ERR_INVALID, "roc: label %zu is %d, not 0 or 1", i + 1,
                              labels[i]);
        if (!isfinite(scores[i]))
            return lethe_fail(LETHE_ERR_INVALID, "roc: score %zu (%g) is not finite", i + 1,
                              scores[i]);
        rc->n_pos += labels[i] == 1;
    }
    rc->n_neg = n - rc->n_pos;
    if (rc->n_pos == 0 || rc->n_neg == 0)
        return lethe_fail(LETHE_ERR_INVALID,
                          "roc: only one class present (%zu positives, %zu negatives); "
                          "the ROC curve needs both",
                          rc->n_pos, rc->n_neg);
    if (n > (size_t)3000000000u)
        return lethe_fail(LETHE_ERR_UNSUPPORTED, "roc: %zu scores are too many", n);
    scored *sc = malloc(n * sizeof *sc);
    rc->fpr = malloc(2 * (n + 1) * sizeof *rc->fpr);
    if (!sc || !rc->fpr) {
        free(sc);
        free(rc->fpr);
        rc->fpr = NULL;
        return lethe_fail(LETHE_ERR_NOMEM, "roc: out of memory for %zu scores", n);
    }
    rc->tpr = rc->fpr + n + 1;
    for (size_t i = 0; i < n; i++) {
        sc[i].s = scores[i];
        sc[i].y = labels[i];
    }
    qsort(sc, n, sizeof *sc, cmp_scored_desc);
    double P = (double)rc->n_pos, N = (double)rc->n_neg;
    uint64_t tp = 0, fp = 0, area2 = 0; /* twice the area, in units of 1/(P N) */
    rc->fpr[0] = rc->tpr[0] = 0.0;
    rc->np = 1;
    for (size_t i = 0; i < n;) {
        uint64_t tp0 = tp, fp0 = fp;
        double s = sc[i].s;
        for (; i < n && sc[i].s == s; i++) {
            tp += (uint64_t)sc[i].y;
            fp += (uint64_t)!sc[i].y;
        }
        area2 += (fp - fp0) * (tp + tp0);
        rc->fpr[rc->np] = (double)fp / N;
        rc->tpr[rc->np] = (double)tp / P;
        rc->np++;
    }
    free(sc);
    rc->auc = (double)area2 / (2.0 * P * N);
    return LETHE_OK;
}

/* numpy.interp(x, fpr, tpr): the last point with fpr <= x, then linear. */
static double roc_interp(const roc_curve *rc, double x)
{
    const double *fx = rc->fpr, *fy = rc->tpr;
    size_t lo = 0, hi = rc->np - 1;
    if (x < fx[0])
        return fy[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        if (fx[mid] <= x)
            lo = mid;
        else
            hi = mid - 1;
    }
    if (lo == rc->np - 1 || fx[lo] == x)
        return fy[lo];
    double slope = (fy[lo + 1] - fy[lo]) / (fx[lo + 1] - fx[lo]);
    return slope * (x - fx[lo]) + fy[lo];
}

lethe_status lethe_stats_roc(const double *scores, const int *labels, size_t n,
                             lethe_roc_result *out)
{
    roc_curve rc;
    lethe_status st = roc_build(scores, labels, n, &rc);
    if (st != LETHE_OK)
        return st;
    out->auc = rc.auc;
    out->tpr_at_1fpr = roc_interp(&rc, 0.01);
    out->tpr_at_5fpr = roc_interp(&rc, 0.05);
    out->n_pos = rc.n_pos;
    out->n_neg = rc.n_neg;
    free(rc.fpr);
    return LETHE_OK;
}

lethe_status lethe_stats_tpr_at_fpr(const double *scores, const int *labels, size_t n,
                                    double fpr, double *tpr)
{
    if (!(fpr >= 0.0 && fpr <= 1.0))
        return lethe_fail(LETHE_ERR_INVALID, "roc: FPR %g is outside [0, 1]", fpr);
    roc_curve rc;
    lethe_status st = roc_build(scores, labels, n, &rc);
    if (st != LETHE_OK)
        return st;
    *tpr = roc_interp(&rc, fpr);
    free(rc.fpr);
    return LETHE_OK;
}

/* ------------------------------------------------ hmean and wasserstein */

lethe_status lethe_stats_hmean(const double *x, size_t n, double *out)
{
    lethe_status st = check_sample("hmean", x, n);
    if (st != LETHE_OK)
        return st;
    int zero = 0;
    for (size_t i = 0; i < n; i++) {
        if (x[i] < 0)
            return lethe_fail(LETHE_ERR_INVALID,
                              "hmean: value %zu (%g) is negative; the harmonic mean needs "
                              "values >= 0",
                              i + 1, x[i]);
        zero |= x[i] == 0;
    }
    if (zero) { /* 1 / mean(1/x) with an infinite term */
        *out = 0.0;
        return LETHE_OK;
    }
    ksum s = {0, 0};
    for (size_t i = 0; i < n; i++)
        ksum_add(&s, 1.0 / x[i]);
    *out = 1.0 / ((s.s + s.c) / (double)n);
    return LETHE_OK;
}

lethe_status lethe_stats_wasserstein(const double *a, size_t na, const double *b, size_t nb,
                                     double *out)
{
    lethe_status st;
    if ((st = check_sample("wasserstein: first sample", a, na)) != LETHE_OK ||
        (st = check_sample("wasserstein: second sample", b, nb)) != LETHE_OK)
        return st;
    double *sa = sorted_copy(a, na), *sb = sorted_copy(b, nb);
    if (!sa || !sb) {
        free(sa);
        free(sb);
        return lethe_fail(LETHE_ERR_NOMEM, "wasserstein: out of memory");
    }
    /* sum over the pooled sorted values v_k of |F_a(v_k) - F_b(v_k)| (v_{k+1} - v_k) */
    ksum s = {0, 0};
    size_t i = 0, j = 0;
    double v = (sa[0] <= sb[0]) ? sa[0] : sb[0];
    while (i < na || j < nb) {
        while (i < na && sa[i] <= v)
            i++;
        while (j < nb && sb[j] <= v)
            j++;
        if (i == na && j == nb)
            break;
        double next = (j >= nb || (i < na && sa[i] <= sb[j])) ? sa[i] : sb[j];
        ksum_add(&s, fabs((double)i / (double)na - (double)j / (double)nb) * (next - v));
        v = next;
    }
    free(sa);
    free(sb);
    *out = s.s + s.c;
    return LETHE_OK;
}
