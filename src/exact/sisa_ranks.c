/* SISA over several ranks (lethe/mpi.h): rank 0 plans and hands out the
 * shards to train, trains its own and writes what the others send; the
 * other ranks train in a scratch directory and send their checkpoints.
 * The one-process training it builds on is sisa.c. */
#include "lethe/sisa.h"
#include "lethe/fileio.h"
#include "lethe/mpi.h"
#include "lethe/run.h"
#include "lethe/rundir.h"
#include "ensemble_impl.h"
#include "sisa_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- training over several ranks (lethe/mpi.h) ----------------------------
 *
 * Messages: rank 0 sends each rank with work one JOB (the configuration
 * text, the deleted mask, then per shard its index, the first slice to
 * train and the bytes of the checkpoint before it), and a STOP when its
 * command is done; a rank sends a CKPT per checkpoint it trains (shard,
 * slice, key, the file's bytes) and a DONE (status, message) per JOB. */

enum { TAG_JOB = 1, TAG_STOP, TAG_CKPT, TAG_DONE };

typedef struct msgbuf {
    unsigned char *p;
    size_t n, cap;
    int bad; /* out of memory */
} msgbuf;

static void put(msgbuf *b, const void *x, size_t n)
{
    if (b->bad)
        return;
    if (b->n + n > b->cap) {
        size_t cap = (b->n + n) * 2 + 256;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->bad = 1;
            return;
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, x, n);
    b->n += n;
}

static void put_i64(msgbuf *b, int64_t v) { put(b, &v, sizeof v); }

/* Read n bytes at *p (before end) into x; 0 when the message is too short. */
static int take(const unsigned char **p, const unsigned char *end, void *x, size_t n)
{
    if ((size_t)(end - *p) < n)
        return 0;
    memcpy(x, *p, n);
    *p += n;
    return 1;
}

/* The file's bytes appended to b, after their length. */
static lethe_status put_file(msgbuf *b, const char *path)
{
    unsigned char *data = NULL;
    size_t n = 0;
    lethe_status st = lethe_file_read(path, &data, &n);
    if (st == LETHE_OK) {
        put_i64(b, (int64_t)n);
        put(b, data, n);
    }
    free(data);
    return st;
}

/* What rank 0's receiving thread knows and finds. */
typedef struct ranks_recv {
    lethe_sisa *s;
    const char (*expect)[65]; /* every shard's chain of keys */
    const int *owner, *from;  /* per shard: its rank, its first slice to train */
    int waiting;              /* ranks whose DONE has not come */
    long trained;
    lethe_status st;          /* the first failure, with its message */
    char msg[1100];
} ranks_recv;

static void recv_fail(ranks_recv *d, lethe_status st, const char *msg)
{
    if (d->st == LETHE_OK) {
        d->st = st;
        snprintf(d->msg, sizeof d->msg, "%s", msg);
    }
}

/* Rank 0's receiving thread: write each checkpoint the ranks send, after
 * checking it is one they were asked for, until every rank is done. */
static void *receive_ranks(void *arg)
{
    ranks_recv *d = arg;
    const lethe_ensemble *e = &d->s->e;
    char path[4200], msg[1100];
    while (d->waiting > 0) {
        void *buf = NULL;
        size_t n = 0;
        int src = -1, tag = -1;
        lethe_status st = lethe_mpi_recv(-1, -1, &buf, &n, &src, &tag);
        if (st != LETHE_OK) {
            recv_fail(d, st, lethe_error_detail());
            break;
        }
        const unsigned char *p = buf, *end = p + n;
        int32_t shard = -1, slice = -1, code = 0;
        char key[65] = "";
        if (tag == TAG_DONE) {
            d->waiting--;
            if (take(&p, end, &code, sizeof code) && code != LETHE_OK) {
                snprintf(msg, sizeof msg, "rank %d: %s", src, (const char *)p);
                recv_fail(d, (lethe_status)code, msg);
            }
        } else if (tag != TAG_CKPT || !take(&p, end, &shard, sizeof shard) ||
                   !take(&p, end, &slice, sizeof slice) || !take(&p, end, key, 64) ||
                   shard < 0 || shard >= e->shards || d->owner[shard] != src ||
                   slice < d->from[shard] || slice >= e->slices) {
            snprintf(msg, sizeof msg, "rank %d sent a message that rank 0 did not ask for "
                     "(tag %d, shard %d, slice %d)", src, tag, (int)shard, (int)slice);
            recv_fail(d, LETHE_ERR_FAILED, msg);
        } else if (strcmp(key, d->expect[(size_t)shard * (size_t)e->slices + (size_t)slice])) {
            snprintf(msg, sizeof msg, "rank %d trained shard %d, slice %d on other samples than "
                     "rank 0 holds (checkpoint key %.12s..., not %.12s...): is the same data "
                     "set installed on every node?", src, (int)shard, (int)slice, key,
                     d->expect[(size_t)shard * (size_t)e->slices + (size_t)slice]);
            recv_fail(d, LETHE_ERR_FORMAT, msg);
        } else {
            lethe_ensemble_ckpt_path(e, key, path, sizeof path);
            if ((st = lethe_file_write_atomic(path, p, (size_t)(end - p))) == LETHE_OK)
                d->trained++;
            else
                recv_fail(d, st, lethe_error_detail());
        }
        free(buf);
    }
    return NULL;
}

/* Rank 0's half of a sync over several ranks: plan, hand out, train its
 * own shards, write what the others send. What remains for the locked pass
 * is to find every checkpoint in place. */
lethe_status sisa_train_ranks(lethe_sisa *s, char (*chains)[65], char (*was)[65])
{
    lethe_ensemble *e = &s->e;
    const int P = lethe_mpi_size(), S = e->shards, R = e->slices;
    char path[4200];
    ex_keep(e); /* the checkpoints finished before a rank fails are kept */
    lethe_status st = ex_replay(e);
    if (st == LETHE_OK)
        st = sisa_read_state(s, was);
    if (st != LETHE_OK)
        return st;
    int *owner = malloc(sizeof(int) * (size_t)S), *from = malloc(sizeof(int) * (size_t)S);
    int *order = malloc(sizeof(int) * (size_t)S);
    long *cost = calloc((size_t)S, sizeof(long)), *load = calloc((size_t)P, sizeof(long));
    char (*expect)[65] = calloc((size_t)S * (size_t)R, 65);
    lethe_rows cum = {0, malloc(sizeof(long) * (size_t)(e->train->n + 1))};
    msgbuf *jobs = calloc((size_t)P, sizeof(msgbuf));
    unsigned char *conf = NULL;
    size_t conf_n = 0;
    if (!owner || !from || !order || !cost || !load || !expect || !cum.row || !jobs)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    /* each shard's chain, its first missing slice and the steps from there */
    int n_work = 0;
    for (int k = 0; k < S && st == LETHE_OK; k++) {
        char key[65];
        struct stat sb;
        ex_root_key(e, "lethe-sisa-1", 0, k, key);
        from[k] = R, owner[k] = -1;
        for (int r = 0; r < R; r++) {
            long steps = sisa_slice_key(s, k, r, key, &cum);
            memcpy(expect[(size_t)k * (size_t)R + (size_t)r], key, 65);
            lethe_ensemble_ckpt_path(e, key, path, sizeof path);
            if (from[k] == R && stat(path, &sb) != 0)
                from[k] = r;
            if (from[k] < R)
                cost[k] += steps + 1;
        }
        if (from[k] < R)
            order[n_work++] = k;
    }
    /* heaviest first, each to the rank with the least work (ties: the
     * lower shard, the lower rank): the same plan on every run */
    for (int i = 1; i < n_work; i++)
        for (int j = i; j > 0 && cost[order[j]] > cost[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    for (int i = 0; i < n_work; i++) {
        int best = 0;
        for (int q = 1; q < P; q++)
            best = load[q] < load[best] ? q : best;
        owner[order[i]] = best;
        load[best] += cost[order[i]];
    }
    for (int q = 0; s->notes && n_work && st == LETHE_OK && q < P; q++) {
        fprintf(s->notes, "sisa: rank %d of %d trains", q, P);
        int any = 0;
        for (int k = 0; k < S; k++)
            if (owner[k] == q)
                fprintf(s->notes, "%s%d", any++ ? ", " : " shards ", k);
        fprintf(s->notes, any ? " (%ld steps)\n" : " nothing\n", load[q]);
    }
    if (s->notes && n_work)
        fflush(s->notes);
    /* the jobs: configuration, deleted rows, shards with their prefixes */
    ex_path(e, "sisa.json", path, sizeof path);
    if (st == LETHE_OK && n_work)
        st = lethe_file_read(path, &conf, &conf_n);
    ranks_recv d = {s, (const char (*)[65])expect, owner, from, 0, 0, LETHE_OK, ""};
    for (int q = 1; q < P && st == LETHE_OK; q++) {
        msgbuf *b = &jobs[q];
        int32_t mine = 0;
        for (int k = 0; k < S; k++)
            mine += owner[k] == q;
        if (!mine)
            continue;
        put_i64(b, e->train->n);
        put_i64(b, (int64_t)conf_n);
        put(b, conf, conf_n);
        put(b, e->deleted, (size_t)e->train->n);
        put(b, &mine, sizeof mine);
        for (int32_t k = 0; k < S && st == LETHE_OK; k++) {
            if (owner[k] != q)
                continue;
            int32_t f = from[k];
            put(b, &k, sizeof k);
            put(b, &f, sizeof f);
            if (f == 0) {
                put_i64(b, 0);
                continue;
            }
            lethe_ensemble_ckpt_path(e, expect[(size_t)k * (size_t)R + (size_t)f - 1], path,
                                     sizeof path);
            st = put_file(b, path);
        }
        if (st == LETHE_OK && b->bad)
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
        if (st == LETHE_OK && (st = lethe_mpi_send(q, TAG_JOB, b->p, b->n)) == LETHE_OK)
            d.waiting++;
    }
    pthread_t th;
    int threaded = 0;
    if (d.waiting > 0) {
        if (pthread_create(&th, NULL, receive_ranks, &d) == 0)
            threaded = 1;
        else /* rank 0 receives first, then trains its own shards */
            receive_ranks(&d);
    }
    for (int k = 0; k < S && st == LETHE_OK; k++)
        if (owner[k] == 0)
            st = sisa_sync_shard(s, k, chains + (size_t)k * (size_t)R, was[2 * k],
                                 was[2 * k + 1], 0, NULL, NULL);
    if (threaded)
        pthread_join(th, NULL);
    s->trained_slices += d.trained;
    if (st == LETHE_OK && d.st != LETHE_OK)
        st = lethe_fail(d.st, "%s; %s/ckpt keeps the checkpoints finished so far, and the "
                        "next training of %s reuses them", d.msg, e->dir, e->dir);
    for (int q = 0; jobs && q < P; q++)
        free(jobs[q].p);
    free(jobs);
    free(conf);
    free(cum.row);
    free(expect);
    free(load);
    free(cost);
    free(order);
    free(from);
    free(owner);
    return st;
}

void lethe_sisa_workers_stop(void)
{
    if (lethe_mpi_rank() != 0)
        return;
    for (int q = 1; q < lethe_mpi_size(); q++)
        lethe_mpi_send(q, TAG_STOP, "", 0);
}

/* A rank's checkpoint: its bytes to rank 0, then gone from the scratch
 * directory. */
static lethe_status send_ckpt(void *ctx, int shard, int slice, const char *key,
                              const char *path)
{
    (void)ctx;
    msgbuf b = {0};
    int32_t k = shard, r = slice;
    unsigned char *data = NULL;
    size_t n = 0;
    lethe_status st = lethe_file_read(path, &data, &n);
    put(&b, &k, sizeof k);
    put(&b, &r, sizeof r);
    put(&b, key, 64);
    put(&b, data, n);
    if (st == LETHE_OK && b.bad)
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (st == LETHE_OK)
        st = lethe_mpi_send(0, TAG_CKPT, b.p, b.n);
    unlink(path);
    free(data);
    free(b.p);
    return st;
}

/* One JOB on a rank: rebuild the ensemble from rank 0's configuration in a
 * scratch directory, then train each shard handed over. */
static lethe_status run_job(const unsigned char *p, const unsigned char *end, char *scratch)
{
    int64_t n_rows = 0, conf_n = 0;
    int32_t mine = 0;
    lethe_sisa *w = calloc(1, sizeof *w);
    cJSON *j = NULL;
    char path[4200], (*chain)[65] = NULL;
    const char *where = "rank 0's sisa.json";
    lethe_status st = w ? LETHE_OK : lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    if (st == LETHE_OK && (!take(&p, end, &n_rows, sizeof n_rows) ||
                           !take(&p, end, &conf_n, sizeof conf_n) || conf_n < 0 ||
                           end - p < conf_n))
        st = lethe_fail(LETHE_ERR_FORMAT, "a job from rank 0 is truncated");
    if (st == LETHE_OK && !(j = cJSON_ParseWithLength((const char *)p, (size_t)conf_n)))
        st = lethe_fail(LETHE_ERR_FORMAT, "%s does not parse", where);
    if (st == LETHE_OK)
        p += conf_n;
    if (st == LETHE_OK)
        st = ex_config(&w->e, scratch, "sisa", j, where);
    if (st == LETHE_OK)
        st = ex_place(&w->e, j);
    if (st == LETHE_OK && w->e.train->n != n_rows)
        st = lethe_fail(LETHE_ERR_FORMAT, "the task %s has %ld training samples here and %lld "
                        "on rank 0: is the same data set installed on every node?", w->e.task,
                        w->e.train->n, (long long)n_rows);
    if (st == LETHE_OK && (!take(&p, end, w->e.deleted, (size_t)n_rows) ||
                           !take(&p, end, &mine, sizeof mine)))
        st = lethe_fail(LETHE_ERR_FORMAT, "a job from rank 0 is truncated");
    if (st == LETHE_OK) {
        ex_path(&w->e, "ckpt", path, sizeof path);
        st = lethe_run_mkdir(path);
    }
    if (st == LETHE_OK && !(chain = calloc((size_t)w->e.slices, 65)))
        st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < mine && st == LETHE_OK; i++) {
        int32_t k = -1, f = -1;
        int64_t len = 0;
        if (!take(&p, end, &k, sizeof k) || !take(&p, end, &f, sizeof f) ||
            !take(&p, end, &len, sizeof len) || len < 0 || end - p < len || k < 0 ||
            k >= w->e.shards || f < 0 || f >= w->e.slices || (f > 0) != (len > 0)) {
            st = lethe_fail(LETHE_ERR_FORMAT, "a job from rank 0 is damaged");
            break;
        }
        path[0] = 0;
        if (f > 0) { /* the checkpoint before slice f, where training resumes */
            char key[65];
            lethe_rows cum = {0, malloc(sizeof(long) * (size_t)(w->e.train->n + 1))};
            if (!cum.row) {
                st = lethe_fail(LETHE_ERR_NOMEM, "out of memory");
                break;
            }
            ex_root_key(&w->e, "lethe-sisa-1", 0, k, key);
            for (int r = 0; r < f; r++)
                sisa_slice_key(w, k, r, key, &cum);
            free(cum.row);
            lethe_ensemble_ckpt_path(&w->e, key, path, sizeof path);
            st = lethe_file_write_atomic(path, p, (size_t)len);
            p += len;
        }
        if (st == LETHE_OK)
            st = sisa_sync_shard(w, k, chain, "", "", f, send_ckpt, NULL);
        if (path[0])
            unlink(path);
        if (st != LETHE_OK)
            st = lethe_fail(st, "shard %d: %s", (int)k, lethe_error_detail());
    }
    free(chain);
    cJSON_Delete(j);
    lethe_sisa_free(w);
    return st;
}

lethe_status lethe_sisa_worker(void)
{
    for (;;) {
        void *buf = NULL;
        size_t n = 0;
        int tag = -1;
        lethe_status st = lethe_mpi_recv(0, -1, &buf, &n, NULL, &tag);
        if (st != LETHE_OK)
            return st;
        if (tag != TAG_JOB) {
            free(buf);
            return tag == TAG_STOP ? LETHE_OK
                                   : lethe_fail(LETHE_ERR_FAILED, "rank %d: an unknown message "
                                                "(tag %d) from rank 0", lethe_mpi_rank(), tag);
        }
        /* a scratch directory for this rank's checkpoints on their way */
        const char *tmp = getenv("TMPDIR");
        char scratch[4096];
        snprintf(scratch, sizeof scratch, "%s/lethe-sisa-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        int made = mkdtemp(scratch) != NULL, slot = made ? lethe_inflight_add(scratch) : -1;
        if (!made)
            st = lethe_fail(LETHE_ERR_IO, "%s: cannot create: %s", scratch, strerror(errno));
        else
            st = run_job(buf, (const unsigned char *)buf + n, scratch);
        if (made)
            lethe_remove_tree(scratch);
        lethe_inflight_drop(slot);
        free(buf);
        /* the outcome, to rank 0, which reports it */
        msgbuf b = {0};
        int32_t code = st;
        const char *msg = st == LETHE_OK ? "" : lethe_error_detail();
        put(&b, &code, sizeof code);
        put(&b, msg, strlen(msg) + 1);
        lethe_status sent = b.bad ? lethe_fail(LETHE_ERR_NOMEM, "out of memory")
                                  : lethe_mpi_send(0, TAG_DONE, b.p, b.n);
        free(b.p);
        if (sent != LETHE_OK)
            return sent;
    }
}
