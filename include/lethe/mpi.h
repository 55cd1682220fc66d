/* Processes launched together by mpirun: rank, size and byte messages.
 *
 * Built with MPI (the build option MPI=1, which defines LETHE_MPI), a
 * process that mpirun started joins its job in lethe_mpi_init; every other
 * process, and every process of a build without MPI, is rank 0 of 1 and
 * the calls below are no-ops. Only `lethe sisa` distributes work
 * (lethe/sisa.h); the messages are raw bytes between processes of one
 * architecture. Receiving waits by polling with short sleeps, so a rank
 * waiting for a message leaves its core to the others.
 *
 * Calls come from one thread at a time (MPI_THREAD_SERIALIZED). */
#ifndef LETHE_MPI_H
#define LETHE_MPI_H

#include <stddef.h>

#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

/* 1 when this build has MPI, 0 otherwise. */
int lethe_mpi_built(void);

/* How many ranks the launcher (mpirun, srun) started this process among,
 * from its environment: 1 when it was not launched by one. Any build. */
long lethe_mpi_launched(void);

/* Join mpirun's job when this process was launched by it (several ranks);
 * otherwise do nothing. A build without MPI launched as one of several
 * ranks is LETHE_ERR_UNSUPPORTED (the ranks would each run the whole
 * command), as is an MPI without thread support. Call once, before any
 * other call here; end with lethe_mpi_finalize. */
lethe_status lethe_mpi_init(void);
/* Leave the job (after lethe_mpi_init succeeded; otherwise a no-op). */
void lethe_mpi_finalize(void);

int lethe_mpi_rank(void); /* 0 outside a job */
int lethe_mpi_size(void); /* 1 outside a job */

/* Wait until every rank has called it. */
lethe_status lethe_mpi_barrier(void);

/* Send n bytes to rank `to` with a tag (>= 0); returns once buf may be
 * reused. */
lethe_status lethe_mpi_send(int to, int tag, const void *buf, size_t n);

/* Receive the next message from rank `from` (-1: any rank) with tag `tag`
 * (-1: any tag) into a new buffer *buf (the caller frees it) of *n bytes;
 * *src and *got_tag, when not NULL, receive its sender and tag. */
lethe_status lethe_mpi_recv(int from, int tag, void **buf, size_t *n, int *src, int *got_tag);

LETHE_API_END
#endif
