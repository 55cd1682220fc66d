/* Progress reporting for long work: a redrawn bar with rate and ETA on a
 * terminal, plain log lines otherwise, at most one every 5 seconds or every
 * LETHE_PROGRESS_INTERVAL seconds when that environment variable holds a
 * number >= 0 (0: a line at every update). */
#ifndef LETHE_PROGRESS_H
#define LETHE_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

#include "lethe/api.h"
LETHE_API_BEGIN

typedef struct lethe_progress {
    const char *label; /* not owned; must outlive the progress */
    const char *unit;  /* "steps", "samples", ...; not owned */
    uint64_t total;    /* 0 when unknown */
    uint64_t done;
    double t0, last;   /* start and last print, seconds */
    double interval;   /* seconds between plain lines */
    FILE *out;
    int tty;
    int quiet;
} lethe_progress;

/* Report to `out` (usually stderr); quiet or a NULL out suppresses everything. */
void lethe_progress_init(lethe_progress *p, FILE *out, const char *label, const char *unit,
                         uint64_t total, int quiet);
void lethe_progress_update(lethe_progress *p, uint64_t done);
/* Print the final line (total work, elapsed time, mean rate). */
void lethe_progress_finish(lethe_progress *p);

/* Monotonic seconds. */
double lethe_now(void);

LETHE_API_END
#endif
