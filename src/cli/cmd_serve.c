/* lethe serve: serve a run over HTTP (lethe/serve.h) until SIGINT or
 * SIGTERM. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "lethe/serve.h"

#define VERB "serve"

static void print_usage(FILE *out, const lethe_serve_cfg *d)
{
    fprintf(out,
            "Usage: lethe serve --run RUN [--guard GUARD --mode guard|eco|alu] [options]\n\n"
            "Serve RUN over HTTP until interrupted (SIGINT or SIGTERM: the requests in\n"
            "flight finish first). A GPT run (or a Hugging Face GPT-2 directory) answers\n"
            "OpenAI's API: POST /v1/completions and /v1/chat/completions (\"stream\": true\n"
            "for server-sent events), GET /v1/models. A classifier or regressor run (lethe\n"
            "train, sisa, s3t, fit) answers POST /v1/predict; SISA, S3T and linear runs also\n"
            "take deletions: POST /v1/deletions {\"ids\": [...]} answers 202 once the request\n"
            "is on disk in the run's ledger, and from then on no answer uses a model trained\n"
            "on those ids; GET /v1/deletions/ID says received or applied. Behind a guard,\n"
            "POST and DELETE /v1/guard/targets edit its targets live, in the guard file.\n"
            "GET /health (503 while loading, then 200) and GET /metrics (Prometheus' text\n"
            "format) are always there. docs/serving.md has the details.\n\n"
            "Options:\n"
            "  --run DIR            the run to serve\n"
            "  --guard FILE         answer behind this guard file (lethe guard fit)\n"
            "  --mode M             how the guard answers a flagged prompt: guard (GUARD's\n"
            "                       constrained beam search, the default), eco, or alu\n"
            "                       (ALU's agents, with the served model as their chat\n"
            "                       model, answer every request; the guard's automaton is\n"
            "                       their gate and audit)\n"
            "  --host ADDR          the address to listen on (default %s); any address but\n"
            "                       loopback needs --token-file\n"
            "  --port N             the port (default %d; 0: any free port)\n"
            "  --threads N          generation workers (default 0: one per core)\n"
            "  --token-file FILE    the bearer token (one line) that changes need\n"
            "                       (Authorization: Bearer TOKEN); without it the server\n"
            "                       takes no deletions and no guard edits\n"
            "  --open-reads         reads (completions, predictions, lists, metrics) need no\n"
            "                       token (default: with a token file, every endpoint but\n"
            "                       /health needs it)\n"
            "  --model-name NAME    the model id the API uses (default: RUN's name)\n"
            "  --max-body BYTES     larger request bodies get 413 (default %zu)\n"
            "  --max-prompt N       prompt tokens at most (default 0: the model's context)\n"
            "  --max-new N          max_tokens at most (default %d)\n"
            "  --timeout S          close a connection idle for S seconds (default %d)\n"
            "  --gen-timeout S      cut a generation off after S seconds (default %d)\n"
            "  --max-connections N  connections at once (default %d)\n"
            "  -h, --help           show this help\n\n"
            "Once listening and loaded it prints \"lethe serve: listening on http://HOST:PORT\"\n"
            "on stdout.\n"
            "Exit codes: 0 stopped by a signal, 1 failure, 2 usage error, 3 bad input (a run\n"
            "or guard that cannot be loaded, an unusable token file, a non-loopback address\n"
            "without a token).\n",
            d->host, d->port, d->max_body, d->max_new, d->timeout_s, d->gen_timeout_s,
            d->max_connections);
}

int cmd_serve(int argc, char **argv)
{
    enum { O_RUN = 1, O_GUARD, O_MODE, O_HOST, O_PORT, O_THREADS, O_TOKEN, O_OPEN, O_NAME,
           O_BODY, O_PROMPT, O_NEW, O_TIMEOUT, O_GEN_TIMEOUT, O_CONNS };
    static const struct option longopts[] = {
        {"run", 1, 0, O_RUN},         {"guard", 1, 0, O_GUARD},
        {"mode", 1, 0, O_MODE},       {"host", 1, 0, O_HOST},
        {"port", 1, 0, O_PORT},       {"threads", 1, 0, O_THREADS},
        {"token-file", 1, 0, O_TOKEN}, {"open-reads", 0, 0, O_OPEN},
        {"model-name", 1, 0, O_NAME}, {"max-body", 1, 0, O_BODY},
        {"max-prompt", 1, 0, O_PROMPT}, {"max-new", 1, 0, O_NEW},
        {"timeout", 1, 0, O_TIMEOUT}, {"gen-timeout", 1, 0, O_GEN_TIMEOUT},
        {"max-connections", 1, 0, O_CONNS}, {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    lethe_serve_cfg cfg;
    lethe_serve_defaults(&cfg);
    long port = cfg.port, threads = 0, body = (long)cfg.max_body, prompt = 0,
         max_new = cfg.max_new, timeout = cfg.timeout_s, gen_timeout = cfg.gen_timeout_s,
         conns = cfg.max_connections;
    const cli_long_opt ints[] = {{O_PORT, &port, 0, 65535},     {O_THREADS, &threads, 0, 1024},
                                 {O_BODY, &body, 64, 1L << 30}, {O_PROMPT, &prompt, 0, 1 << 20},
                                 {O_NEW, &max_new, 1, 1 << 20}, {O_TIMEOUT, &timeout, 1, 86400},
                                 {O_GEN_TIMEOUT, &gen_timeout, 1, 86400},
                                 {O_CONNS, &conns, 1, 65536}};
    int c;
    cli_getopt_begin();
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int done = cli_numeric_option(VERB, longopts, c, optarg, ints, sizeof ints / sizeof *ints,
                                      NULL, 0);
        if (done < 0)
            return -done;
        if (done)
            continue;
        switch (c) {
        case O_RUN: cfg.run = optarg; break;
        case O_GUARD: cfg.guard = optarg; break;
        case O_MODE: cfg.mode = optarg; break;
        case O_HOST: cfg.host = optarg; break;
        case O_TOKEN: cfg.token_file = optarg; break;
        case O_OPEN: cfg.open_reads = 1; break;
        case O_NAME: cfg.model_name = optarg; break;
        case 'h': print_usage(stdout, &cfg); return CLI_EXIT_OK;
        default: return cli_bad_option(VERB, argv, longopts);
        }
    }
    if (optind < argc)
        return cli_usage(VERB, "unexpected argument '%s'", argv[optind]);
    if (!cfg.run)
        return cli_usage(VERB, "--run is required");
    if (cfg.mode && !cfg.guard)
        return cli_usage(VERB, "--mode needs --guard");
    if (cfg.mode && strcmp(cfg.mode, "guard") && strcmp(cfg.mode, "eco") &&
        strcmp(cfg.mode, "alu"))
        return cli_usage(VERB, "--mode takes guard, eco or alu, not '%s'", cfg.mode);
    cfg.port = (int)port, cfg.threads = (int)threads, cfg.max_body = (size_t)body;
    cfg.max_prompt = (int)prompt, cfg.max_new = (int)max_new, cfg.timeout_s = (int)timeout;
    cfg.gen_timeout_s = (int)gen_timeout, cfg.max_connections = (int)conns;

    /* The signals are waited for here; every thread the server starts
     * inherits the mask and leaves them to this one. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    lethe_serve_t *s = NULL;
    lethe_status st = lethe_serve_start(&cfg, &s);
    if (st != LETHE_OK)
        return cli_report(VERB, st);
    printf("lethe serve: listening on http://%s%s%s:%d\n", strchr(cfg.host, ':') ? "[" : "",
           cfg.host, strchr(cfg.host, ':') ? "]" : "", lethe_serve_port(s));
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "lethe serve: %s, stopping\n", sig == SIGINT ? "interrupted" : "terminated");
    lethe_serve_stop(s);
    return CLI_EXIT_OK;
}
