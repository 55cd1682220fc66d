/* The run-directory lock: flock(2) on the directory's descriptor. */
#include "lethe/runlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

struct lethe_runlock {
    int fd;
};

lethe_status lethe_runlock_acquire(const char *dir, int wait, lethe_runlock **out)
{
    *out = NULL;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return lethe_fail(LETHE_ERR_IO, "%s: cannot lock the directory: %s", dir,
                          strerror(errno));
    int rc;
    while ((rc = flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB))) != 0 && errno == EINTR)
        ;
    if (rc != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return lethe_fail(LETHE_ERR_FAILED, "%s is locked by another writer; try again "
                              "when it has finished", dir);
        return lethe_fail(LETHE_ERR_IO, "%s: cannot lock the directory: %s", dir, strerror(e));
    }
    lethe_runlock *l = malloc(sizeof *l);
    if (!l) {
        close(fd);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    l->fd = fd;
    *out = l;
    return LETHE_OK;
}

void lethe_runlock_release(lethe_runlock *l)
{
    if (!l)
        return;
    close(l->fd); /* the last descriptor of the description: the lock goes */
    free(l);
}
