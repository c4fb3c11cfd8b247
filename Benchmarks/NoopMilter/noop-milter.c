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
    if (argc != 2) {
        fprintf(stderr, "usage: %s unix:/path | inet:PORT@127.0.0.1\n", argv[0]);
        return 64;
    }
    if (strncmp(argv[1], "unix:", 5) == 0) {
        unlink(argv[1] + 5);
    }
    if (smfi_setconn(argv[1]) != MI_SUCCESS || smfi_register(description) != MI_SUCCESS) {
        fprintf(stderr, "noop-milter: cannot set up %s\n", argv[1]);
        return 71;
    }
    /* The harness waits for this line before it sends load. */
    if (smfi_opensocket(1) != MI_SUCCESS) {
        fprintf(stderr, "noop-milter: cannot open %s\n", argv[1]);
        return 71;
    }
    printf("noop-milter listening on %s\n", argv[1]);
    fflush(stdout);
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
