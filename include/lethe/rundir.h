/* Run directories and the temporary files in flight.
 *
 * A verb that writes a run begins it here: an existing output is refused
 * unless forced, an output may not be, contain or lie inside one of the
 * verb's inputs, and a run that fails or is interrupted leaves nothing
 * behind. Temporary files and directories are kept in a process-wide,
 * thread-safe table that a SIGINT/SIGTERM handler empties before the
 * process dies. */
#ifndef LETHE_RUNDIR_H
#define LETHE_RUNDIR_H

#include <stddef.h>

#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

/* Record `path` (a file, or a directory with everything in it)
 * as temporary: removed if the process is interrupted by a signal handled
 * by lethe_inflight_handle_signals. Returns a slot for lethe_inflight_drop,
 * or -1 when the table is full or the name too long (the path is then not
 * removed on a signal). */
int lethe_inflight_add(const char *path);
/* Forget a slot (nothing is removed); -1 is a no-op. */
void lethe_inflight_drop(int slot);
/* Install handlers for SIGINT and SIGTERM that remove every recorded path
 * with async-signal-safe calls, then re-raise the signal with its default
 * action, so the process ends as it would have. Call once, early, from a
 * program's main. */
void lethe_inflight_handle_signals(void);

/* Remove `path` and, for a directory, everything beneath it, without
 * following symbolic links. 0 on success, -1 (errno set) otherwise. */
int lethe_remove_tree(const char *path);

typedef struct lethe_rundir lethe_rundir;

/* Begin writing the run directory `out`. An existing `out` is refused
 * (LETHE_ERR_INVALID) unless it is an empty directory or `force` is set;
 * with `force` the run's files replace the same-named files in it. `out` is
 * refused when, by real path, it equals, lies inside or contains one of the
 * n_inputs paths in `inputs` (NULL ones and those that do not exist are
 * skipped). `out` and any missing parents are created and recorded as
 * temporary until commit. The directory's lock (lethe/runlock.h) is taken
 * without waiting and held until commit or abort: while another writer
 * holds it, begin fails at once (LETHE_ERR_FAILED, "locked by another
 * writer") rather than wait and then overwrite that writer's run. The
 * caller must not take the lock again itself. *rd is set on success; end it
 * with commit or abort. */
lethe_status lethe_rundir_begin(const char *out, int force, const char *const *inputs,
                                size_t n_inputs, lethe_rundir **rd);
/* Keep the directory and free rd. */
void lethe_rundir_commit(lethe_rundir *rd);
/* Remove the directories begin created, with their contents, and free rd.
 * A directory that existed before begin is left (the run's temporary files
 * in it are removed by their writers). NULL is a no-op. */
void lethe_rundir_abort(lethe_rundir *rd);

/* End the run: commit when st is LETHE_OK, abort otherwise. Returns st. */
lethe_status lethe_rundir_end(lethe_rundir *rd, lethe_status st);

/* Check an output file before writing it: an existing regular file (or a
 * link to one) is refused (LETHE_ERR_INVALID) unless `force`; a device or
 * FIFO is written through and so allowed. `out` may not be one of `inputs`
 * (NULL ones skipped) nor lie inside one, by real path. */
lethe_status lethe_outfile_check(const char *out, int force, const char *const *inputs,
                                 size_t n_inputs);

LETHE_API_END
#endif
