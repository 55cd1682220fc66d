/* The deletion ledger: an append-only file of deletion requests.
 *
 * Each record is one line: a JSON object, a space, and the CRC-32 of the
 * object's bytes as 8 hex digits:
 *   {"req":3,"state":"received","time":"2026-11-28T12:00:00Z","ids":[17,42]} 1a2b3c4d
 *   {"req":3,"state":"applied","time":"2026-11-28T12:00:01Z"} 5e6f7a8b
 * A record is written with one write() and fsynced before the request is
 * acknowledged. Opening replays the file: a final line without its newline
 * is a write that a crash cut short (never acknowledged) and is dropped (the
 * next append truncates it); any other damage is LETHE_ERR_FORMAT naming the
 * record. A request is therefore always either applied or pending, and
 * pending requests are applied by the next command that opens the ledger. */
#ifndef LETHE_LEDGER_H
#define LETHE_LEDGER_H

#include <stdint.h>

#include "lethe/status.h"

#include "lethe/api.h"
LETHE_API_BEGIN

typedef enum lethe_req_state { LETHE_REQ_RECEIVED, LETHE_REQ_APPLIED } lethe_req_state;

typedef struct lethe_request {
    long id;               /* 1, 2, ... in order of receipt */
    lethe_req_state state;
    uint64_t *ids;         /* sample ids to delete */
    long n_ids;
    char received[32];     /* UTC time of receipt */
} lethe_request;

typedef struct lethe_ledger {
    char *path;
    lethe_request *req;    /* req[i].id == i + 1 */
    long n_req;
    long n_records;        /* complete records replayed */
    long valid_bytes;      /* length of the file's valid prefix */
    int torn;              /* a cut-short final record was dropped */
} lethe_ledger;

/* Open and replay the ledger at path (a missing file is an empty ledger).
 * Free with lethe_ledger_free. */
lethe_status lethe_ledger_open(const char *path, lethe_ledger **out);
void lethe_ledger_free(lethe_ledger *l); /* NULL is a no-op */
/* Open the ledger of directory dir (dir/ledger.log) to inspect it: a path
 * that is not a directory, or a directory without a ledger, is
 * LETHE_ERR_NOT_FOUND. */
lethe_status lethe_ledger_read(const char *dir, lethe_ledger **out);

/* Record a request for ids[0..n) (n >= 1) durably; its number in *req_id.
 * The caller checks the ids first: the ledger records what it is given. */
lethe_status lethe_ledger_receive(lethe_ledger *l, const uint64_t *ids, long n, long *req_id);
/* Record that request req_id has been applied (idempotent). */
lethe_status lethe_ledger_applied(lethe_ledger *l, long req_id);

/* Requests received and not yet applied. */
long lethe_ledger_pending(const lethe_ledger *l);
/* The request holding sample id, or 0 if none. */
long lethe_ledger_find(const lethe_ledger *l, uint64_t id);

LETHE_API_END
#endif
