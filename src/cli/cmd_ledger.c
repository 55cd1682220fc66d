/* lethe ledger: show or verify the deletion ledger of a directory. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "lethe/ledger.h"

static void print_usage(FILE *out)
{
    fprintf(out,
            "Usage: lethe ledger show DIR [--quiet]\n"
            "       lethe ledger verify DIR [--quiet]\n\n"
            "The deletion ledger DIR/ledger.log records every deletion request before it\n"
            "is acknowledged, each record with a CRC-32, fsynced. show lists the requests\n"
            "and their state; verify checks every record and exits 3 on damage. A final\n"
            "record cut short by a crash was never acknowledged: verify reports it, and\n"
            "the next write drops it. --quiet prints nothing: the exit code tells.\n\n"
            "Exit codes: 0 ok, 2 usage error, 3 a damaged or missing ledger (a directory\n"
            "where no deletion was ever requested has none).\n");
}

int cmd_ledger(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        print_usage(stdout);
        return CLI_EXIT_OK;
    }
    static const struct option longopts[] = {
        {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int quiet = 0, c;
    if (argc < 2 || (strcmp(argv[1], "show") && strcmp(argv[1], "verify")))
        return cli_usage("ledger", "expected 'show DIR' or 'verify DIR' (and --quiet)");
    cli_getopt_begin();
    while ((c = getopt_long(argc - 1, argv + 1, "h", longopts, NULL)) != -1) {
        if (c == 'h') {
            print_usage(stdout);
            return CLI_EXIT_OK;
        }
        if (c != 'q')
            return cli_bad_option("ledger", argv + 1, longopts);
        quiet = 1;
    }
    if (optind != argc - 2)
        return cli_usage("ledger", "%s needs one directory", argv[1]);
    lethe_ledger *l;
    lethe_status st = lethe_ledger_read(argv[optind + 1], &l);
    if (st != LETHE_OK)
        return cli_report("ledger", st);
    long pending = lethe_ledger_pending(l);
    if (quiet) {
        /* the exit code says it all */
    } else if (!strcmp(argv[1], "verify")) {
        printf("%s: %ld records, %ld requests (%ld applied, %ld pending), checksums ok%s\n",
               l->path, l->n_records, l->n_req, l->n_req - pending, pending,
               l->torn ? "; a final record cut short by a crash (never acknowledged) will be "
                         "dropped"
                       : "");
    } else {
        printf("%-5s %-8s %-21s %s\n", "REQ", "STATE", "RECEIVED", "IDS");
        for (long i = 0; i < l->n_req; i++) {
            const lethe_request *r = &l->req[i];
            printf("%-5ld %-8s %-21s", r->id,
                   r->state == LETHE_REQ_APPLIED ? "applied" : "pending", r->received);
            for (long k = 0; k < r->n_ids && k < 20; k++)
                printf(" %llu", (unsigned long long)r->ids[k]);
            printf(r->n_ids > 20 ? " ... (%ld ids)\n" : "\n", r->n_ids);
        }
    }
    lethe_ledger_free(l);
    return CLI_EXIT_OK;
}
