#define _GNU_SOURCE
#include "CMilterShim.h"

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

_Static_assert(sizeof(sfsistat) == sizeof(int), "Swift maps sfsistat to Int32");
_Static_assert(SMFIS_CONTINUE == 0 && SMFIS_REJECT == 1 && SMFIS_DISCARD == 2 &&
               SMFIS_ACCEPT == 3 && SMFIS_TEMPFAIL == 4 && SMFIS_NOREPLY == 7,
               "MilterKit's SMFIStatus mirrors these values");

/*
 * libmilter declares these parameters `char *` but only reads them (see
 * libmilter/smfi.c); the casts below drop a const libmilter never relied on.
 */
int CMilterShim_setsymlist(SMFICTX *ctx, int stage, const char *macros) {
    return smfi_setsymlist(ctx, stage, (char *)macros);
}

const char *CMilterShim_getsymval(SMFICTX *ctx, const char *name) {
    return smfi_getsymval(ctx, (char *)name);
}

int CMilterShim_setreply(SMFICTX *ctx, const char *rcode, const char *xcode, const char *message) {
    return smfi_setreply(ctx, (char *)rcode, (char *)xcode, (char *)message);
}

int CMilterShim_addheader(SMFICTX *ctx, const char *name, const char *value) {
    return smfi_addheader(ctx, (char *)name, (char *)value);
}

int CMilterShim_setconn(const char *spec) {
    /* smfi_setconn keeps the pointer; give it a copy that lives as long as the process. */
    char *copy = strdup(spec);
    if (copy == NULL) {
        return MI_FAILURE;
    }
    return smfi_setconn(copy);
}

/*
 * smfi_setmlreply is variadic and NULL-terminated; Swift cannot call it. The
 * only portable way to forward an array is to spell out each arity, which the
 * macros below do for 1..32 lines (libmilter's own limit).
 */
#define L(i) lines[i]
#define ARGS1 L(0)
#define ARGS2 ARGS1, L(1)
#define ARGS3 ARGS2, L(2)
#define ARGS4 ARGS3, L(3)
#define ARGS5 ARGS4, L(4)
#define ARGS6 ARGS5, L(5)
#define ARGS7 ARGS6, L(6)
#define ARGS8 ARGS7, L(7)
#define ARGS9 ARGS8, L(8)
#define ARGS10 ARGS9, L(9)
#define ARGS11 ARGS10, L(10)
#define ARGS12 ARGS11, L(11)
#define ARGS13 ARGS12, L(12)
#define ARGS14 ARGS13, L(13)
#define ARGS15 ARGS14, L(14)
#define ARGS16 ARGS15, L(15)
#define ARGS17 ARGS16, L(16)
#define ARGS18 ARGS17, L(17)
#define ARGS19 ARGS18, L(18)
#define ARGS20 ARGS19, L(19)
#define ARGS21 ARGS20, L(20)
#define ARGS22 ARGS21, L(21)
#define ARGS23 ARGS22, L(22)
#define ARGS24 ARGS23, L(23)
#define ARGS25 ARGS24, L(24)
#define ARGS26 ARGS25, L(25)
#define ARGS27 ARGS26, L(26)
#define ARGS28 ARGS27, L(27)
#define ARGS29 ARGS28, L(28)
#define ARGS30 ARGS29, L(29)
#define ARGS31 ARGS30, L(30)
#define ARGS32 ARGS31, L(31)
#define CASE(n) case n: return smfi_setmlreply(ctx, rcode, xcode, ARGS##n, (char *)NULL);

int CMilterShim_setmlreply(SMFICTX *ctx, const char *rcode, const char *xcode,
                           const char *const *lines, size_t count) {
    switch (count) {
    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
    CASE(9) CASE(10) CASE(11) CASE(12) CASE(13) CASE(14) CASE(15) CASE(16)
    CASE(17) CASE(18) CASE(19) CASE(20) CASE(21) CASE(22) CASE(23) CASE(24)
    CASE(25) CASE(26) CASE(27) CASE(28) CASE(29) CASE(30) CASE(31) CASE(32)
    default: return MI_FAILURE;
    }
}

/*
 * Why TCP_NODELAY. Over an inet: socket every libmilter filter, even a no-op
 * one, stalls Postfix in Nagle + delayed-ACK waits: small milter packets sit
 * up to 40 ms waiting for an ACK the peer delays. libmilter never sets
 * TCP_NODELAY and keeps its listening descriptor in a static variable, so we
 * find it: the TCP listening sockets that exist after smfi_opensocket but did
 * not before. Linux copies TCP_NODELAY from a listening socket to the sockets
 * accept(2) returns, so setting it once covers every MTA connection.
 */
static bool is_tcp_listener(int fd) {
    int value = 0;
    socklen_t len = sizeof(value);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &len) != 0 || value == 0) {
        return false;
    }
    len = sizeof(value);
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &value, &len) != 0) {
        return false;
    }
    return value == AF_INET || value == AF_INET6;
}

enum { MAX_TRACKED_FDS = 4096 };

int CMilterShim_opensocket(bool remove_stale_socket, int *nodelay_set) {
    static bool listening_before[MAX_TRACKED_FDS];
    memset(listening_before, 0, sizeof(listening_before));
    for (int fd = 0; fd < MAX_TRACKED_FDS; fd++) {
        listening_before[fd] = is_tcp_listener(fd);
    }
    int result = smfi_opensocket(remove_stale_socket);
    *nodelay_set = 0;
    if (result != MI_SUCCESS) {
        return result;
    }
    for (int fd = 0; fd < MAX_TRACKED_FDS; fd++) {
        if (!listening_before[fd] && is_tcp_listener(fd)) {
            int one = 1;
            if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0) {
                *nodelay_set += 1;
            }
        }
    }
    return result;
}
