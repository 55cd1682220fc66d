/* Ranks and byte messages over MPI, or one process without it. */
#include "lethe/mpi.h"

#include <stdlib.h>

/* The launcher's variables that say a process is one of several ranks:
 * Open MPI's, then those of PMI and PMIx launchers (srun, MPICH's hydra). */
long lethe_mpi_launched(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return strtol(v, NULL, 10);
    }
    return 1;
}

#ifdef LETHE_MPI

#include <limits.h>
#include <mpi.h>
#include <time.h>

static int joined, rank, size = 1;

int lethe_mpi_built(void) { return 1; }

lethe_status lethe_mpi_init(void)
{
    int provided = 0;
    if (joined || lethe_mpi_launched() <= 1)
        return LETHE_OK;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
        return lethe_fail(LETHE_ERR_FAILED, "MPI_Init_thread failed");
    joined = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (provided < MPI_THREAD_SERIALIZED)
        return lethe_fail(LETHE_ERR_UNSUPPORTED, "this MPI library does not let a second "
                          "thread send and receive (MPI_THREAD_SERIALIZED)");
    return LETHE_OK;
}

void lethe_mpi_finalize(void)
{
    if (joined)
        MPI_Finalize();
    joined = 0, rank = 0, size = 1;
}

int lethe_mpi_rank(void) { return rank; }
int lethe_mpi_size(void) { return size; }

lethe_status lethe_mpi_barrier(void)
{
    if (size > 1 && MPI_Barrier(MPI_COMM_WORLD) != MPI_SUCCESS)
        return lethe_fail(LETHE_ERR_FAILED, "MPI_Barrier failed on rank %d", rank);
    return LETHE_OK;
}

lethe_status lethe_mpi_send(int to, int tag, const void *buf, size_t n)
{
    if (to < 0 || to >= size || to == rank || tag < 0)
        return lethe_fail(LETHE_ERR_INVALID, "rank %d: no rank %d to send to", rank, to);
    if (n > INT_MAX)
        return lethe_fail(LETHE_ERR_UNSUPPORTED, "rank %d: a message of %zu bytes is too "
                          "large for one MPI send", rank, n);
    if (MPI_Send(buf, (int)n, MPI_BYTE, to, tag, MPI_COMM_WORLD) != MPI_SUCCESS)
        return lethe_fail(LETHE_ERR_FAILED, "rank %d: sending %zu bytes to rank %d failed",
                          rank, n, to);
    return LETHE_OK;
}

lethe_status lethe_mpi_recv(int from, int tag, void **buf, size_t *n, int *src, int *got_tag)
{
    MPI_Status ms;
    int flag = 0, count = 0;
    *buf = NULL, *n = 0;
    if (size <= 1)
        return lethe_fail(LETHE_ERR_INVALID, "no other rank to receive from");
    int f = from < 0 ? MPI_ANY_SOURCE : from, t = tag < 0 ? MPI_ANY_TAG : tag;
    /* MPI's blocking calls spin on their core; a waiting rank sleeps instead */
    const struct timespec nap = {0, 500000};
    while (!flag) {
        if (MPI_Iprobe(f, t, MPI_COMM_WORLD, &flag, &ms) != MPI_SUCCESS)
            return lethe_fail(LETHE_ERR_FAILED, "rank %d: MPI_Iprobe failed", rank);
        if (!flag)
            nanosleep(&nap, NULL);
    }
    MPI_Get_count(&ms, MPI_BYTE, &count);
    unsigned char *b = malloc((size_t)count + 1);
    if (!b)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (MPI_Recv(b, count, MPI_BYTE, ms.MPI_SOURCE, ms.MPI_TAG, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE) != MPI_SUCCESS) {
        free(b);
        return lethe_fail(LETHE_ERR_FAILED, "rank %d: receiving from rank %d failed", rank,
                          ms.MPI_SOURCE);
    }
    b[count] = 0;
    *buf = b, *n = (size_t)count;
    if (src)
        *src = ms.MPI_SOURCE;
    if (got_tag)
        *got_tag = ms.MPI_TAG;
    return LETHE_OK;
}

#else /* one process */

int lethe_mpi_built(void) { return 0; }

lethe_status lethe_mpi_init(void)
{
    long n = lethe_mpi_launched();
    if (n > 1)
        return lethe_fail(LETHE_ERR_UNSUPPORTED, "launched as one of %ld ranks, but this lethe "
                          "was built without MPI (rebuild with Open MPI installed, or MPI=1)",
                          n);
    return LETHE_OK;
}

void lethe_mpi_finalize(void) {}
int lethe_mpi_rank(void) { return 0; }
int lethe_mpi_size(void) { return 1; }
lethe_status lethe_mpi_barrier(void) { return LETHE_OK; }

lethe_status lethe_mpi_send(int to, int tag, const void *buf, size_t n)
{
    (void)tag, (void)buf, (void)n;
    return lethe_fail(LETHE_ERR_INVALID, "no rank %d to send to: one process", to);
}

lethe_status lethe_mpi_recv(int from, int tag, void **buf, size_t *n, int *src, int *got_tag)
{
    (void)from, (void)tag, (void)src, (void)got_tag;
    *buf = NULL, *n = 0;
    return lethe_fail(LETHE_ERR_INVALID, "no other rank to receive from: one process");
}

#endif
