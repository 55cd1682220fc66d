/* The run-directory lock: exclusive across calls, threads and processes. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../test.h"
#include "lethe/rundir.h"
#include "lethe/runlock.h"

static char dir[64] = "/tmp/lethe_runlock_XXXXXX";
static atomic_int got;

static void *waiter(void *arg)
{
    lethe_runlock *l;
    (void)arg;
    if (lethe_runlock_acquire(dir, 1, &l) == LETHE_OK) {
        atomic_store(&got, 1);
        lethe_runlock_release(l);
    } else {
        atomic_store(&got, -1);
    }
    return NULL;
}

static void pause_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* A child process's try without waiting: 0 when it got the lock, 1 when it
 * was refused as held, 2 otherwise. */
static int child_try(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        lethe_runlock *l;
        lethe_status st = lethe_runlock_acquire(dir, 0, &l);
        _exit(st == LETHE_OK ? 0 : st == LETHE_ERR_FAILED ? 1 : 2);
    }
    int ws = 0;
    waitpid(pid, &ws, 0);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 3;
}

TEST(runlock_excludes_calls_threads_and_processes)
{
    CHECK(mkdtemp(dir));
    lethe_runlock *a = NULL, *b = NULL;
    lethe_runlock_release(NULL);
    /* two acquisitions in one thread: the second is refused at once */
    CHECK_OK(lethe_runlock_acquire(dir, 0, &a));
    CHECK_STATUS(lethe_runlock_acquire(dir, 0, &b), LETHE_ERR_FAILED);
    CHECK(b == NULL && strstr(lethe_error_detail(), "locked by another writer"));
    /* another process is refused while it is held, and gets it after */
    CHECK(child_try() == 1);
    /* a waiting thread gets it only once it is released */
    pthread_t t;
    atomic_store(&got, 0);
    CHECK(pthread_create(&t, NULL, waiter, NULL) == 0);
    pause_ms(100);
    int early = atomic_load(&got);
    lethe_runlock_release(a);
    pthread_join(t, NULL);
    CHECK_MSG(early == 0, "the thread got the lock while it was held");
    CHECK(atomic_load(&got) == 1);
    CHECK(child_try() == 0);
    CHECK_OK(lethe_runlock_acquire(dir, 0, &a));
    lethe_runlock_release(a);
    /* a missing directory */
    char missing[80];
    snprintf(missing, sizeof missing, "%s/none", dir);
    CHECK_STATUS(lethe_runlock_acquire(missing, 1, &a), LETHE_ERR_IO);
    CHECK(a == NULL);
    rmdir(dir);
}

/* A run being written holds its directory's lock from begin to commit or
 * abort: a second writer, forced or not, in this process or another, fails
 * at once and leaves the first one's directory as it was. */
TEST(runlock_held_by_rundir_begin)
{
    char top[] = "/tmp/lethe_rundir_lock_XXXXXX";
    CHECK(mkdtemp(top));
    snprintf(dir, sizeof dir, "%s", top); /* child_try locks dir */
    char out[64], file[80];
    snprintf(out, sizeof out, "%s/run", top);
    snprintf(file, sizeof file, "%s/model", out);
    lethe_rundir *a = NULL, *b = NULL;
    CHECK_OK(lethe_rundir_begin(out, 0, NULL, 0, &a));
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    fclose(f);
    CHECK_STATUS(lethe_rundir_begin(out, 1, NULL, 0, &b), LETHE_ERR_FAILED);
    CHECK(b == NULL && strstr(lethe_error_detail(), "locked by another writer"));
    CHECK(access(file, F_OK) == 0); /* the refused writer removed nothing */
    snprintf(dir, sizeof dir, "%s", out);
    CHECK(child_try() == 1);
    lethe_rundir_commit(a);
    CHECK(child_try() == 0);
    CHECK_OK(lethe_rundir_begin(out, 1, NULL, 0, &b));
    lethe_rundir_abort(b); /* it existed: kept */
    CHECK(access(file, F_OK) == 0);
    unlink(file), rmdir(out), rmdir(top);
}
