/* Loops shared out among OpenMP threads only when they are worth it. */
#ifndef LETHE_PAR_H
#define LETHE_PAR_H

/* for (TYPE VAR = 0; VAR < N; VAR++) CALL; shared out among threads when
 * COND holds. A parallel region costs system calls even when its `if`
 * clause is false, so small loops (generation runs one row at a time) do
 * not enter one. */
#define PAR_FOR(cond, type, var, n, call)                                      \
    do {                                                                       \
        if (cond) {                                                            \
            _Pragma("omp parallel for schedule(static)")                       \
            for (type var = 0; var < (n); var++)                               \
                call;                                                          \
        } else {                                                               \
            for (type var = 0; var < (n); var++)                               \
                call;                                                          \
        }                                                                      \
    } while (0)

#endif
