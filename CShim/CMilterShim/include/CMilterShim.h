#ifndef CMILTERSHIM_H
#define CMILTERSHIM_H
/*
 * CMilterShim: the few helpers that make libmilter callable from Swift.
 *
 * A function lives here only when Swift cannot make the call itself, or
 * cannot make it safely:
 *  - libmilter takes `char *` for strings it never writes; the wrappers take
 *    `const char *` so Swift can pass its strings without a mutable copy.
 *  - smfi_setmlreply is variadic, and Swift cannot call C variadics; the
 *    wrapper takes an array.
 *  - libmilter never sets TCP_NODELAY and hides its listening descriptor;
 *    CMilterShim_opensocket finds it (see shim.c for why this matters).
 *  - A signal handler must be async-signal-safe: it is written in C and only
 *    calls write(2).
 *  - libmilter's signal thread must never take SIGHUP, SIGTERM or SIGINT:
 *    signals.c defines sigwait(3) for the process (see there why).
 * Every other symbol carries the CMilterShim_ prefix.
 */
#include <stdbool.h>
#include <stddef.h>
#include <libmilter/mfapi.h>

/* The most lines libmilter accepts in one reply (smfi_setmlreply). */
#define CMilterShim_MAX_REPLY_LINES 32

int CMilterShim_setsymlist(SMFICTX *ctx, int stage, const char *macros);
const char *CMilterShim_getsymval(SMFICTX *ctx, const char *name);
int CMilterShim_setreply(SMFICTX *ctx, const char *rcode, const char *xcode, const char *message);
int CMilterShim_addheader(SMFICTX *ctx, const char *name, const char *value);
int CMilterShim_setconn(const char *spec);

/* smfi_setmlreply with the lines in an array; 1 <= count <= CMilterShim_MAX_REPLY_LINES. */
int CMilterShim_setmlreply(SMFICTX *ctx, const char *rcode, const char *xcode,
                           const char *const *lines, size_t count);

/*
 * smfi_opensocket, then TCP_NODELAY on the TCP listening socket it created
 * (accepted sockets inherit it on Linux). Returns MI_SUCCESS or MI_FAILURE;
 * *nodelay_set tells how many listening sockets got TCP_NODELAY.
 */
int CMilterShim_opensocket(bool remove_stale_socket, int *nodelay_set);

/*
 * Installs one handler for each of `signals` that writes the signal number
 * as one byte to `fd` (a pipe's write end, set non-blocking by the caller).
 */
int CMilterShim_install_signal_pipe(int fd, const int *signals, size_t count);

#endif
