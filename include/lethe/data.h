/* The registry of data sets a fresh machine can install (DESIGN §7): where
 * each comes from, which files make it present, and whether it is there.
 *
 * Two sources:
 *   debian  a Debian package; its files live at fixed absolute paths.
 *   npm     an npm package installed into the data directory with
 *             npm install --prefix DATA_DIR --no-audit --no-fund PACKAGE
 *           so its files land in DATA_DIR/node_modules/PACKAGE/data/.
 * The data directory is $LETHE_DATA_DIR when set (and not empty), else
 * $HOME/.cache/lethe.
 *
 * The library only looks; installing is for scripts/deps.sh and
 * `lethe data install`, which run the package managers. */
#ifndef LETHE_DATA_H
#define LETHE_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

typedef enum lethe_data_source { LETHE_DATA_DEBIAN, LETHE_DATA_NPM } lethe_data_source;

/* One row of the registry. All strings are static. */
typedef struct lethe_data_entry {
    const char *name;        /* "fashion-mnist", "iris", "moby-dick", ... */
    const char *description; /* one line: what the data is */
    const char *use;         /* one line: what lethe uses it for */
    lethe_data_source source;
    const char *package;     /* Debian package, or npm package ("@stdlib/...") */
    /* debian: the absolute directory of the files; npm: the directory inside
     * the npm package ("data"). */
    const char *dir;
    /* NULL-terminated names relative to the location (lethe_data_location);
     * the data set is installed when all exist. The first is the main file.
     * A name may be a directory. */
    const char *const *files;
} lethe_data_entry;

/* Rows in a fixed order; i < lethe_data_count(). */
size_t lethe_data_count(void);
const lethe_data_entry *lethe_data_at(size_t i);

/* The row named `name` ("moby", the corpus name, is accepted for "moby-dick");
 * LETHE_ERR_NOT_FOUND with a hint listing the names. */
lethe_status lethe_data_find(const char *name, const lethe_data_entry **out);

/* "debian" or "npm". */
const char *lethe_data_source_name(lethe_data_source s);

/* The data directory into buf (cap bytes). LETHE_ERR_INVALID when neither
 * LETHE_DATA_DIR nor HOME is set, or the path does not fit. */
lethe_status lethe_data_dir(char *buf, size_t cap);

/* The directory holding e's files into buf: e->dir for debian,
 * DATA_DIR/node_modules/PACKAGE/DIR for npm. */
lethe_status lethe_data_location(const lethe_data_entry *e, char *buf, size_t cap);

/* The full path of `file` (usually one of e->files) into buf. */
lethe_status lethe_data_path(const lethe_data_entry *e, const char *file, char *buf, size_t cap);

/* What is on disk for one row. */
typedef struct lethe_data_state {
    int installed;             /* every listed file exists */
    size_t n_present;          /* listed files that exist */
    const char *first_missing; /* the first listed file that does not, or NULL */
    /* Bytes and regular files on disk: for npm rows the whole location (the
     * row owns it), for debian rows the listed files (directories walked),
     * since several rows share sklearn's directory. Symbolic links are not
     * followed or counted. */
    uint64_t bytes;
    uint64_t n_files;
} lethe_data_state;

/* Look at the disk. Fails only when the location cannot be formed (see
 * lethe_data_dir) or a directory cannot be read. */
lethe_status lethe_data_probe(const lethe_data_entry *e, lethe_data_state *st);

LETHE_API_END
#endif
