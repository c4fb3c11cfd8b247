#define _GNU_SOURCE
#include "CMilterShim.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/*
 * Signal ownership. libmilter's smfi_main starts a thread that sigwait()s for
 * SIGHUP, SIGTERM and SIGINT and stops the milter on any of them; relay-milter
 * wants SIGHUP to reload and SIGTERM to drain open sessions first. So the
 * process handles these signals itself (the pipe below), and libmilter's
 * thread must never take one.
 */

static int signal_pipe_fd = -1;

static void write_signal_byte(int signo) {
    int saved_errno = errno;
    unsigned char byte = (unsigned char)signo;
    /* A full pipe means a signal of this kind is already waiting: dropping it is fine. */
    ssize_t ignored = write(signal_pipe_fd, &byte, 1);
    (void)ignored;
    errno = saved_errno;
}

int CMilterShim_install_signal_pipe(int fd, const int *signals, size_t count) {
    signal_pipe_fd = fd;
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = write_signal_byte;
    /*
     * SA_NODEFER: the handler must never block its own signal, not even while
     * it runs, so that the thread running it stays a thread the kernel may
     * hand the next one to. The handler is reentrant (one write), so this is safe.
     */
    action.sa_flags = SA_RESTART | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < count; i++) {
        if (sigaction(signals[i], &action, NULL) != 0) {
            return -1;
        }
    }
    return 0;
}

static bool is_libmilters_set(const sigset_t *set) {
    return sigismember(set, SIGHUP) == 1 && sigismember(set, SIGTERM) == 1 && sigismember(set, SIGINT) == 1;
}

/*
 * This definition of sigwait(3) takes the place of the C library's in the whole
 * process: the dynamic linker looks in the executable before libc, and
 * libmilter.so is linked against the name, not against libc's copy.
 *
 * Why: a thread inside sigwait counts, for the kernel, as a thread that does
 * not block those signals, and sigwait takes a signal that is already pending
 * for the process when it is called. So libmilter's thread could take a SIGHUP
 * meant for our handler and stop the milter. Measured: 3 times in 600 starts
 * under CPU load, each with a SIGHUP right after start (the thread had just
 * been created), and 0 in 600 with this definition. Later, too, it could
 * happen whenever the main thread blocks signals for a moment
 * (pthread_create and posix_spawn do).
 *
 * A wait for HUP, TERM and INT together is libmilter's: it parks forever
 * instead, with those signals still blocked in its thread (libmilter blocks
 * them before creating it), so the kernel never hands it one. Any other set is
 * waited for as the C library would (sigwait is sigwaitinfo without EINTR).
 */
int sigwait(const sigset_t *restrict set, int *restrict sig) {
    if (is_libmilters_set(set)) {
        for (;;) {
            pause();
        }
    }
    for (;;) {
        int taken = sigwaitinfo(set, NULL);
        if (taken > 0) {
            *sig = taken;
            return 0;
        }
        if (errno != EINTR) {
            return errno;
        }
    }
}
