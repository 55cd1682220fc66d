/* The run-directory lock: one writer at a time in a directory.
 *
 * Every writer of a run directory (training, a deletion with its ledger, a
 * pipeline stage) holds the directory's lock while it reads the state it
 * will change and until its writes are on disk. The lock is an exclusive
 * flock(2) on the directory itself (an O_RDONLY descriptor of DIR): no lock
 * file is created, so a directory's contents are the same with or without
 * locking, and the kernel releases the lock when the holder exits or dies.
 *
 * flock locks belong to an open file description, not to a process: two
 * acquisitions exclude each other whether they come from two processes or
 * from two threads (or two calls) of one process. A process must therefore
 * not acquire a directory it already holds; with wait set that call would
 * wait forever. Locks on NFS follow the server's flock emulation. */
#ifndef LETHE_RUNLOCK_H
#define LETHE_RUNLOCK_H

#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

typedef struct lethe_runlock lethe_runlock;

/* Take dir's exclusive lock into *out. wait != 0 blocks until the holder
 * releases it; wait == 0 returns LETHE_ERR_FAILED at once when it is held
 * ("... is locked by another writer"). A missing directory is
 * LETHE_ERR_IO. Release with lethe_runlock_release. */
lethe_status lethe_runlock_acquire(const char *dir, int wait, lethe_runlock **out);

/* Release and free the lock; NULL is a no-op. */
void lethe_runlock_release(lethe_runlock *l);

LETHE_API_END
#endif
