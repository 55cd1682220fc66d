/* Whole-file reads, gzip, and atomic writes (DESIGN §4.8).
 *
 * Failures return a status and set a detail message that names the file. */
#ifndef LETHE_FILEIO_H
#define LETHE_FILEIO_H

#include <stddef.h>
#include <stdio.h>

#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

/* Read all of `path` into a new buffer (NUL-terminated one byte past *len, so
 * text can be parsed in place). The caller frees *data with free(). */
lethe_status lethe_file_read(const char *path, unsigned char **data, size_t *len);

/* As lethe_file_read, but a file starting with the gzip magic is inflated. */
lethe_status lethe_file_read_gz(const char *path, unsigned char **data, size_t *len);

/* Inflate gzip data (all members) held in memory into a new NUL-terminated
 * buffer of at most max_out bytes. `name` labels messages. Caller frees. */
lethe_status lethe_gunzip(const unsigned char *in, size_t n, size_t max_out, const char *name,
                          unsigned char **out, size_t *out_len);

/* An output file that appears under its final name only when committed:
 * data goes to "<path>.tmp.<pid>", commit flushes, fsyncs, renames over
 * `path` and fsyncs the directory; abort (or a crash) leaves `path` as it was.
 * What is already at `path` is never replaced by something else: a symbolic
 * link is followed (the file it names is replaced the same way, in its own
 * directory, and the link stays); a device, FIFO or other non-regular file
 * is opened and written through, as a shell's '>' does, with nothing
 * renamed; a directory or a link to a missing file is refused. The
 * temporary name is recorded with lethe_inflight_add (lethe/rundir.h), so a
 * signal handled there removes it. */
typedef struct lethe_afile {
    FILE *fp;    /* write through this */
    char *path;  /* final name (a symbolic link's target, resolved) */
    char *tmp;   /* temporary name; `path` itself when written through */
    int through; /* 1 when writing straight into a non-regular file */
    int slot;    /* the temporary name's slot in lethe/rundir.h's table, or -1 */
} lethe_afile;

/* NULL (detail set) on failure. */
lethe_afile *lethe_afile_open(const char *path);
/* Commits and frees f; on failure the temporary file is removed and `path`
 * is untouched. */
lethe_status lethe_afile_commit(lethe_afile *f);
/* Discards the temporary file and frees f. NULL is a no-op. */
void lethe_afile_abort(lethe_afile *f);

/* Write `len` bytes to `path` atomically. */
lethe_status lethe_file_write_atomic(const char *path, const void *data, size_t len);

/* The 64-bit FNV-1a hash of a file's bytes as 16 hex digits and a NUL: the
 * short content hash runs record for their parent model and input files. */
lethe_status lethe_file_fnv1a(const char *path, char out[17]);

LETHE_API_END
#endif
