/*
 * noop-milter: the benchmark baseline, what libmilter alone costs.
 *
 * It registers the same callbacks relay-milter does (connect, helo, envfrom,
 * envrcpt, data, eom, abort, close), each returning SMFIS_CONTINUE, and leaves
 * everything else at libmilter's defaults: no negotiate callback, no macro
 * lists, no socket options. That is the simplest milter an admin could write.
 *
 *   cc -O2 -o noop-milter noop-milter.c -lmilter -lpthread
 *   noop-milter unix:/path/to/socket | inet:PORT@127.0.0.1
 */
#include <libmilter/mfapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static sfsistat on_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *addr) {
    (void)ctx; (void)host; (void)addr;
    return SMFIS_CONTINUE;
}

static sfsistat on_helo(SMFICTX *ctx, char *name) {
    (void)ctx; (void)name;
    return SMFIS_CONTINUE;
}

static sfsistat on_envelope(SMFICTX *ctx, char **argv) {
    (void)ctx; (void)argv;
    return SMFIS_CONTINUE;
}

static sfsistat on_stage(SMFICTX *ctx) {
    (void)ctx;
    return SMFIS_CONTINUE;
}

/* Set by main: whether DATA is skipped too (unix sockets). */
static int skip_data;

/* Every SMFIP_NO* step but RCPT (end of message cannot be skipped) and, over
   TCP, DATA, where the MTA offers it. */
static sfsistat skip_unneeded_steps(SMFICTX *ctx, unsigned long actions, unsigned long steps,
                                    unsigned long unused2, unsigned long unused3,
                                    unsigned long *want_actions, unsigned long *want_steps,
                                    unsigned long *want_unused2, unsigned long *want_unused3) {
    (void)ctx; (void)actions; (void)unused2; (void)unused3;
    const unsigned long skipped = SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL
        | SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOBODY | SMFIP_NOUNKNOWN | (skip_data ? SMFIP_NODATA : 0);
    *want_actions = 0;
    *want_steps = steps & skipped;
    *want_unused2 = 0;
    *want_unused3 = 0;
    return SMFIS_CONTINUE;
}

static struct smfiDesc description = {
    .xxfi_name = "noop-milter",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = 0,
    .xxfi_connect = on_connect,
    .xxfi_helo = on_helo,
    .xxfi_envfrom = on_envelope,
    .xxfi_envrcpt = on_envelope,
    .xxfi_data = on_stage,
    .xxfi_eom = on_stage,
    .xxfi_abort = on_stage,
    .xxfi_close = on_stage,
};

int main(int argc, char **argv) {
    const int fewest_steps = argc == 3 && strcmp(argv[1], "--fewest-steps") == 0;
    if (argc != 2 && !fewest_steps) {
        fprintf(stderr, "usage: %s [--fewest-steps] unix:/path | inet:PORT@127.0.0.1\n", argv[0]);
        return 64;
    }
    const char *socket_spec = argv[argc - 1];
    if (strncmp(socket_spec, "unix:", 5) == 0) {
        unlink(socket_spec + 5);
    }
    if (fewest_steps) {
        skip_data = strncmp(socket_spec, "unix:", 5) == 0;
        description.xxfi_negotiate = skip_unneeded_steps;
    }
    if (smfi_setconn((char *)socket_spec) != MI_SUCCESS || smfi_register(description) != MI_SUCCESS) {
        fprintf(stderr, "noop-milter: cannot set up %s\n", socket_spec);
        return 71;
    }
    /* The harness waits for this line before it sends load. */
    if (smfi_opensocket(1) != MI_SUCCESS) {
        fprintf(stderr, "noop-milter: cannot open %s\n", socket_spec);
        return 71;
    }
    printf("noop-milter listening on %s\n", socket_spec);
    fflush(stdout);
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
