/* Whole-file reads, gzip inflation and atomic writes. */
#include "lethe/fileio.h"
#include "lethe/rundir.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

lethe_status lethe_file_read(const char *path, unsigned char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return lethe_fail(LETHE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return lethe_fail(LETHE_ERR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    unsigned char *buf = malloc(size + 1);
    if (!buf) {
        fclose(fp);
        return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory for %zu bytes", path, size);
    }
    size_t got = fread(buf, 1, size, fp);
    int err = ferror(fp);
    fclose(fp);
    if (err || got != size) {
        free(buf);
        return lethe_fail(LETHE_ERR_IO, "%s: read failed after %zu of %zu bytes", path, got, size);
    }
    buf[size] = '\0';
    *data = buf;
    *len = size;
    return LETHE_OK;
}

lethe_status lethe_gunzip(const unsigned char *in, size_t n, size_t max_out, const char *name,
                          unsigned char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    size_t cap = n * 4 + 1024, used = 0;
    if (cap > max_out + 1)
        cap = max_out + 1;
    unsigned char *buf = malloc(cap);
    if (!buf)
        return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory inflating", name);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        free(buf);
        return lethe_fail(LETHE_ERR_FAILED, "%s: zlib initialisation failed", name);
    }
    lethe_status st = LETHE_OK;
    size_t consumed = 0;
    for (;;) {
        if (used + 1 >= cap) {
            if (cap > max_out) {
                st = lethe_fail(LETHE_ERR_FORMAT, "%s: inflates to more than %zu bytes", name,
                                max_out);
                break;
            }
            size_t ncap = cap * 2 > max_out + 1 ? max_out + 1 : cap * 2;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                st = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory inflating", name);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t in_left = n - consumed;
        zs.next_in = (unsigned char *)in + consumed;
        zs.avail_in = in_left > 0x40000000u ? 0x40000000u : (unsigned)in_left;
        size_t out_room = cap - 1 - used;
        zs.next_out = buf + used;
        zs.avail_out = out_room > 0x40000000u ? 0x40000000u : (unsigned)out_room;
        unsigned in_before = zs.avail_in, out_before = zs.avail_out;
        int rc = inflate(&zs, Z_NO_FLUSH);
        consumed += in_before - zs.avail_in;
        used += out_before - zs.avail_out;
        if (rc == Z_STREAM_END) {
            if (consumed == n)
                break;
            /* Another gzip member follows. */
            if (inflateReset(&zs) != Z_OK) {
                st = lethe_fail(LETHE_ERR_FORMAT, "%s: corrupt gzip data", name);
                break;
            }
            continue;
        }
        if (rc == Z_BUF_ERROR && consumed == n && zs.avail_out > 0) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s: gzip data is truncated", name);
            break;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            st = lethe_fail(LETHE_ERR_FORMAT, "%s: corrupt gzip data (%s)", name,
                            zs.msg ? zs.msg : "inflate failed");
            break;
        }
    }
    inflateEnd(&zs);
    if (st != LETHE_OK) {
        free(buf);
        return st;
    }
    buf[used] = '\0';
    *out = buf;
    *out_len = used;
    return LETHE_OK;
}

lethe_status lethe_file_read_gz(const char *path, unsigned char **data, size_t *len)
{
    lethe_status st = lethe_file_read(path, data, len);
    if (st != LETHE_OK || *len < 2 || (*data)[0] != 0x1f || (*data)[1] != 0x8b)
        return st;
    unsigned char *raw = *data;
    size_t raw_len = *len;
    st = lethe_gunzip(raw, raw_len, (size_t)1 << 34, path, data, len);
    free(raw);
    return st;
}

/* Where an atomic write of `path` really goes. A symlink is followed, so the
 * file it names is replaced and the link itself stays; a device, FIFO or
 * other non-regular file is written through, as a shell's '>' would (set
 * *through); a directory or a dangling symlink is refused. *target is the
 * name to rename over (malloc'd). */
static lethe_status afile_target(const char *path, char **target, int *through)
{
    struct stat st, lst;
    *target = NULL;
    *through = 0;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT && lstat(path, &lst) == 0)
            return lethe_fail(LETHE_ERR_IO, "%s: a symbolic link to a missing file; "
                              "remove it or point it at a file", path);
        st.st_mode = 0; /* missing: created under its own name */
    } else if (S_ISDIR(st.st_mode)) {
        return lethe_fail(LETHE_ERR_IO, "%s: is a directory; name a file", path);
    } else if (!S_ISREG(st.st_mode)) {
        *through = 1;
    } else if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
        if (!(*target = realpath(path, NULL)))
            return lethe_fail(LETHE_ERR_IO, "%s: cannot resolve: %s", path, strerror(errno));
        return LETHE_OK;
    }
    if (!(*target = strdup(path)))
        return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", path);
    return LETHE_OK;
}

lethe_afile *lethe_afile_open(const char *path)
{
    lethe_afile *f = calloc(1, sizeof *f);
    if (!f) {
        lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    f->slot = -1;
    if (afile_target(path, &f->path, &f->through) != LETHE_OK)
        goto fail;
    size_t n = strlen(f->path) + 32;
    if (!(f->tmp = malloc(n))) {
        lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    if (f->through) {
        snprintf(f->tmp, n, "%s", f->path);
        if (!(f->fp = fopen(f->path, "wb"))) {
            lethe_fail(LETHE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
            goto fail;
        }
        return f;
    }
    snprintf(f->tmp, n, "%s.tmp.%ld", f->path, (long)getpid());
    f->slot = lethe_inflight_add(f->tmp); /* before it exists: a signal cannot strand it */
    int fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0 || !(f->fp = fdopen(fd, "wb"))) {
        lethe_fail(LETHE_ERR_IO, "%s: cannot create: %s", f->tmp, strerror(errno));
        if (fd >= 0)
            close(fd), unlink(f->tmp);
        goto fail;
    }
    return f;
fail:
    lethe_inflight_drop(f->slot);
    free(f->path);
    free(f->tmp);
    free(f);
    return NULL;
}

static void afile_release(lethe_afile *f)
{
    lethe_inflight_drop(f->slot);
    free(f->path);
    free(f->tmp);
    free(f);
}

void lethe_afile_abort(lethe_afile *f)
{
    if (!f)
        return;
    if (f->fp)
        fclose(f->fp);
    if (!f->through)
        unlink(f->tmp);
    afile_release(f);
}

/* fsync the directory holding `path`, so the rename itself is durable. */
static void sync_parent_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

lethe_status lethe_afile_commit(lethe_afile *f)
{
    /* A device or FIFO written through is flushed, not synced or renamed. */
    int bad = fflush(f->fp) != 0 || ferror(f->fp) || (!f->through && fsync(fileno(f->fp)) != 0);
    int err = errno;
    bad |= fclose(f->fp) != 0;
    f->fp = NULL;
    if (bad) {
        lethe_status st = lethe_fail(LETHE_ERR_IO, "%s: write failed: %s", f->path, strerror(err));
        lethe_afile_abort(f);
        return st;
    }
    if (f->through) {
        afile_release(f);
        return LETHE_OK;
    }
    if (rename(f->tmp, f->path) != 0) {
        lethe_status st =
            lethe_fail(LETHE_ERR_IO, "%s: cannot rename into place: %s", f->path, strerror(errno));
        lethe_afile_abort(f);
        return st;
    }
    sync_parent_dir(f->path);
    afile_release(f);
    return LETHE_OK;
}

lethe_status lethe_file_write_atomic(const char *path, const void *data, size_t len)
{
    lethe_afile *f = lethe_afile_open(path);
    if (!f)
        return LETHE_ERR_IO;
    if (len && fwrite(data, 1, len, f->fp) != len) {
        lethe_status st = lethe_fail(LETHE_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        lethe_afile_abort(f);
        return st;
    }
    return lethe_afile_commit(f);
}

lethe_status lethe_file_fnv1a(const char *path, char out[17])
{
    unsigned char *data;
    size_t len;
    lethe_status st = lethe_file_read(path, &data, &len);
    if (st != LETHE_OK)
        return st;
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ data[i]) * 0x100000001b3u;
    free(data);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return LETHE_OK;
}
