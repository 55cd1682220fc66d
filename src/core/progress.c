/* Progress bar and log lines. */
#include "lethe/progress.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

double lethe_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void lethe_progress_init(lethe_progress *p, FILE *out, const char *label, const char *unit,
                         uint64_t total, int quiet)
{
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->done = 0;
    p->t0 = p->last = lethe_now();
    p->out = out;
    p->tty = out && isatty(fileno(out));
    p->quiet = quiet || !out;
    const char *env = getenv("LETHE_PROGRESS_INTERVAL");
    char *end = NULL;
    p->interval = env ? strtod(env, &end) : -1;
    if (!env || end == env || *end || !(p->interval >= 0))
        p->interval = 5.0;
}

static void format_seconds(char *buf, size_t n, double s)
{
    if (s < 0 || s > 1e7)
        snprintf(buf, n, "?");
    else if (s < 60)
        snprintf(buf, n, "%.1fs", s);
    else if (s < 3600)
        snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else
        snprintf(buf, n, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

static void progress_print(lethe_progress *p, double now, int final)
{
    double elapsed = now - p->t0;
    double rate = elapsed > 0 ? (double)p->done / elapsed : 0.0;
    char el[32], eta[32];
    format_seconds(el, sizeof el, elapsed);
    format_seconds(eta, sizeof eta,
                   p->total && rate > 0 ? (double)(p->total - p->done) / rate : -1);
    if (p->tty && !final && p->total) {
        int width = 30, filled = (int)(width * (double)p->done / (double)p->total);
        char bar[31];
        for (int i = 0; i < width; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[width] = '\0';
        fprintf(p->out, "\r%s [%s] %llu/%llu %s  %.1f/s  ETA %s ", p->label, bar,
                (unsigned long long)p->done, (unsigned long long)p->total, p->unit, rate, eta);
    } else if (final) {
        fprintf(p->out, "%s%s: %llu %s in %s (%.1f/s)\n", p->tty ? "\r\033[K" : "", p->label,
                (unsigned long long)p->done, p->unit, el, rate);
    } else if (p->total) {
        fprintf(p->out, "%s: %llu/%llu %s (%.0f%%), %.1f/s, ETA %s\n", p->label,
                (unsigned long long)p->done, (unsigned long long)p->total, p->unit,
                100.0 * (double)p->done / (double)p->total, rate, eta);
    } else {
        fprintf(p->out, "%s: %llu %s, %.1f/s, %s elapsed\n", p->label,
                (unsigned long long)p->done, p->unit, rate, el);
    }
    fflush(p->out);
    p->last = now;
}

void lethe_progress_update(lethe_progress *p, uint64_t done)
{
    p->done = done;
    if (p->quiet)
        return;
    double now = lethe_now();
    if (now - p->last >= (p->tty ? 0.1 : p->interval))
        progress_print(p, now, 0);
}

void lethe_progress_finish(lethe_progress *p)
{
    if (!p->quiet)
        progress_print(p, lethe_now(), 1);
}
