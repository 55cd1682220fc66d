/* Run directories, output checks, and the table of temporary paths that a
 * signal handler removes. */
#include "lethe/rundir.h"
#include "lethe/runlock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- the table of temporary paths ---- */

#define MAX_INFLIGHT 64
#define MAX_DEPTH 32

/* A slot is free (0), being filled (1) or live (2). Its path is written
 * before it turns live, and the signal handler reads live slots only, so
 * neither side needs a lock. */
static struct {
    atomic_int state;
    char path[PATH_MAX];
} inflight[MAX_INFLIGHT];

int lethe_inflight_add(const char *path)
{
    size_t n = strlen(path);
    if (n >= PATH_MAX)
        return -1;
    for (int i = 0; i < MAX_INFLIGHT; i++) {
        int expect = 0;
        if (atomic_compare_exchange_strong(&inflight[i].state, &expect, 1)) {
            memcpy(inflight[i].path, path, n + 1);
            atomic_store(&inflight[i].state, 2);
            return i;
        }
    }
    return -1;
}

void lethe_inflight_drop(int slot)
{
    if (slot >= 0 && slot < MAX_INFLIGHT)
        atomic_store(&inflight[slot].state, 0);
}

/* A getdents64 record. */
struct raw_dirent {
    unsigned long long ino;
    long long off;
    unsigned short reclen;
    unsigned char type;
    char name[];
};

/* Empty the directory open as fd. Only async-signal-safe calls: the raw
 * getdents64 system call, unlinkat, openat, lseek and close. */
static void empty_dir(int fd, int depth)
{
    _Alignas(8) char buf[2048];
    long n;
    while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
        int removed = 0;
        for (long off = 0; off < n;) {
            const struct raw_dirent *d = (const void *)(buf + off);
            off += d->reclen;
            const char *s = d->name;
            if (s[0] == '.' && (!s[1] || (s[1] == '.' && !s[2])))
                continue;
            if (unlinkat(fd, s, 0) == 0) {
                removed = 1;
                continue;
            }
            int sub = depth < MAX_DEPTH && errno == EISDIR
                          ? openat(fd, s, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                          : -1;
            if (sub < 0)
                continue;
            empty_dir(sub, depth + 1);
            close(sub);
            removed |= unlinkat(fd, s, AT_REMOVEDIR) == 0;
        }
        if (removed) /* removals can move the entries not yet read */
            lseek(fd, 0, SEEK_SET);
    }
}

int lethe_remove_tree(const char *path)
{
    if (unlink(path) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR)
        return -1;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    empty_dir(fd, 0);
    close(fd);
    return rmdir(path);
}

static atomic_int cleaning;

static void on_signal(int sig)
{
    /* A second signal may reach another thread while the first is being
     * handled: that thread waits here for the first to end the process. */
    if (atomic_exchange(&cleaning, 1))
        for (;;)
            pause();
    int saved = errno;
    for (int i = MAX_INFLIGHT - 1; i >= 0; i--)
        if (atomic_load(&inflight[i].state) == 2)
            lethe_remove_tree(inflight[i].path);
    errno = saved;
    /* The default action again; the signal stays blocked in this thread
     * until the handler returns, and then ends the process. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig);
}

void lethe_inflight_handle_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM};
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < 2; i++)
        sigaddset(&sa.sa_mask, sigs[i]);
    for (size_t i = 0; i < 2; i++)
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(sigs[i], &sa, NULL); /* an ignored signal stays ignored */
}

/* ---- run directories and output files ---- */

struct lethe_rundir {
    char *top; /* the topmost directory begin created, or NULL */
    int slot;
    lethe_runlock *lock; /* the directory's, held until commit or abort */
};

/* 1 when real paths a and b are the same or one lies inside the other. */
static int nested(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b), n = na < nb ? na : nb;
    if (strncmp(a, b, n))
        return 0;
    const char *longer = na > nb ? a : b;
    return na == nb || longer[n] == '/' || n == 1;
}

/* Refuse `out` (a real path) against each existing input; `dir` when out is
 * a directory, which may then also not contain an input. */
static lethe_status check_inputs(const char *shown, const char *out, int dir,
                                 const char *const *inputs, size_t n)
{
    lethe_status st = LETHE_OK;
    for (size_t i = 0; i < n && st == LETHE_OK; i++) {
        char *in = inputs[i] ? realpath(inputs[i], NULL) : NULL;
        if (!in)
            continue;
        size_t nin = strlen(in), nout = strlen(out);
        if (!strcmp(in, out))
            st = lethe_fail(LETHE_ERR_INVALID, "%s: is also an input; write to another path",
                            shown);
        else if (nested(in, out) && nout > nin)
            st = lethe_fail(LETHE_ERR_INVALID, "%s: lies inside the input %s; write outside it",
                            shown, inputs[i]);
        else if (dir && nested(in, out))
            st = lethe_fail(LETHE_ERR_INVALID, "%s: contains the input %s; write elsewhere",
                            shown, inputs[i]);
        free(in);
    }
    return st;
}

static int dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)))
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    return empty;
}

/* mkdir -p `path`, recording the topmost directory created in r (as
 * temporary before it exists, so a signal cannot strand it). */
static lethe_status make_dirs(const char *path, lethe_rundir *r)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return lethe_fail(LETHE_ERR_INVALID, "%s: directory name too long", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char c = *p;
        *p = 0;
        struct stat st;
        if (!r->top && stat(buf, &st) != 0) {
            if (!(r->top = strdup(buf)))
                return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
            r->slot = lethe_inflight_add(r->top);
        }
        int made = mkdir(buf, 0777) == 0;
        if (!made && errno != EEXIST)
            return lethe_fail(LETHE_ERR_IO, "%s: cannot create directory: %s", buf,
                              strerror(errno));
        if (!made && r->top && !strcmp(r->top, buf)) { /* another writer made it */
            lethe_inflight_drop(r->slot);
            free(r->top);
            r->top = NULL, r->slot = -1;
        }
        *p = c;
        if (!c)
            break;
    }
    return LETHE_OK;
}

static lethe_status refuse_full(const char *out)
{
    return lethe_fail(LETHE_ERR_INVALID, "%s: already exists and is not empty; name a new "
                      "directory, or overwrite it", out);
}

lethe_status lethe_rundir_begin(const char *out, int force, const char *const *inputs,
                                size_t n_inputs, lethe_rundir **rd)
{
    *rd = NULL;
    struct stat st;
    if (stat(out, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return lethe_fail(LETHE_ERR_INVALID, "%s: exists and is not a directory", out);
        if (!force && !dir_is_empty(out))
            return refuse_full(out);
    }
    lethe_rundir *r = calloc(1, sizeof *r);
    if (!r)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    r->slot = -1;
    lethe_status s = make_dirs(out, r);
    char *real = NULL;
    if (s == LETHE_OK && !(real = realpath(out, NULL)))
        s = lethe_fail(LETHE_ERR_IO, "%s: cannot resolve: %s", out, strerror(errno));
    if (s == LETHE_OK)
        s = check_inputs(out, real, 1, inputs, n_inputs);
    free(real);
    if (s == LETHE_OK) /* a second writer fails at once rather than wait to overwrite */
        s = lethe_runlock_acquire(out, 0, &r->lock);
    if (s == LETHE_OK && !force && !dir_is_empty(out)) /* filled by a writer that just ended */
        s = refuse_full(out);
    if (s != LETHE_OK) {
        lethe_rundir_abort(r);
        return s;
    }
    *rd = r;
    return LETHE_OK;
}

static void rundir_free(lethe_rundir *rd)
{
    lethe_runlock_release(rd->lock);
    lethe_inflight_drop(rd->slot);
    free(rd->top);
    free(rd);
}

void lethe_rundir_commit(lethe_rundir *rd)
{
    if (rd)
        rundir_free(rd);
}

void lethe_rundir_abort(lethe_rundir *rd)
{
    if (!rd)
        return;
    if (rd->top)
        lethe_remove_tree(rd->top);
    rundir_free(rd);
}

lethe_status lethe_outfile_check(const char *out, int force, const char *const *inputs,
                                 size_t n_inputs)
{
    struct stat st;
    char *real = NULL;
    if (stat(out, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return lethe_fail(LETHE_ERR_INVALID, "%s: is a directory; name a file", out);
        if (!S_ISREG(st.st_mode))
            return LETHE_OK; /* a device or FIFO: written through */
        if (!force)
            return lethe_fail(LETHE_ERR_INVALID,
                              "%s: already exists; name a new file, or overwrite it", out);
        real = realpath(out, NULL);
    } else {
        char *a = strdup(out), *b = strdup(out);
        char *parent = a && b ? realpath(dirname(a), NULL) : NULL;
        const char *base = parent ? basename(b) : "";
        size_t n = parent ? strlen(parent) + strlen(base) + 2 : 0;
        if (parent && (real = malloc(n)))
            snprintf(real, n, "%s/%s", parent, base);
        free(parent), free(a), free(b);
    }
    if (!real) /* an unreachable name fails when it is written, with its reason */
        return LETHE_OK;
    lethe_status s = check_inputs(out, real, 0, inputs, n_inputs);
    free(real);
    return s;
}

lethe_status lethe_rundir_end(lethe_rundir *rd, lethe_status st)
{
    if (st == LETHE_OK)
        lethe_rundir_commit(rd);
    else
        lethe_rundir_abort(rd);
    return st;
}
