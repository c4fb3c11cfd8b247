/*
 * Many SMTP targets at once for the open-relay tests of benchmark section 4:
 * one process, one thread, one listening socket per loopback address
 * 127.1.X.Y on the same port. A share of them are tarpits (accept, read,
 * never answer), spread evenly, so that any run of consecutive addresses
 * holds that share; the rest answer like an MX that refuses to relay, and
 * offer PIPELINING as Postfix does: the replies to the commands of one read
 * go back in one write.
 *
 *     loopback-targets --count 1000 --port P [--tarpit-share 0.33]
 *
 * Prints "ready" once every address listens; runs until killed.
 *
 * The targets stand for remote hosts, whose CPU is not ours. Written in C
 * with epoll so that they take little of the cores they share with the
 * milter under test: the Python stand-in it replaces used 40 to 65 % of a
 * core while 1,000 tests ran (docs/DESIGN.md, profiling item 23).
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum kind { FREE = 0, LISTENER, TARPIT, REFUSING_MX };

/* What each file descriptor is; a refusing MX keeps its partial line. */
struct slot {
    enum kind kind;
    int tarpit; /* for a listener: whether its connections are tarpits */
    size_t used;
    char line[512];
};

static struct slot *slots;
static size_t slot_count;

static void usage(void) {
    fprintf(stderr, "usage: loopback-targets --count N --port P [--tarpit-share S]\n");
    exit(2);
}

static void fail(const char *what) {
    perror(what);
    exit(1);
}

/* Room for a listening socket and a few connections per target address. */
static void raise_open_file_limit(long listeners) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) fail("getrlimit");
    rlim_t wanted = (rlim_t)(4 * listeners + 100);
    if (limit.rlim_cur < wanted) limit.rlim_cur = wanted < limit.rlim_max ? wanted : limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) fail("setrlimit");
    slot_count = (size_t)limit.rlim_cur;
    slots = calloc(slot_count, sizeof *slots);
    if (slots == NULL) fail("calloc");
}

/* The same address the Python harness computes (mailharness.loopback_targets.address). */
static void target_address(long i, char *text, size_t size) {
    snprintf(text, size, "127.1.%ld.%ld", i / 250, i % 250 + 1);
}

static void watch(int epoll, int fd) {
    struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) != 0) fail("epoll_ctl");
}

static void drop(int fd) {
    slots[fd].kind = FREE;
    close(fd); /* also leaves the epoll set */
}

/* Loopback replies are a few bytes into an empty socket buffer: one write
   each; 0 if the client is gone. */
static int reply(int fd, const char *text) {
    return write(fd, text, strlen(text)) >= 0 || errno == EAGAIN;
}

/* The replies to the commands of one read, sent together. */
struct replies {
    size_t used;
    char text[8192];
};

static void add(struct replies *replies, const char *text) {
    size_t length = strlen(text);
    /* Room for a few hundred replies; the prober writes three commands at most at once. */
    if (replies->used + length >= sizeof replies->text) return;
    memcpy(replies->text + replies->used, text, length);
    replies->used += length;
}

static int starts_with(const char *line, const char *word) {
    return strncasecmp(line, word, strlen(word)) == 0;
}

/* One command line of a refusing MX; returns 0 once the session is over. */
static int answer(struct replies *replies, const char *line) {
    if (starts_with(line, "EHLO")) add(replies, "250-closed.bench.example\r\n250 PIPELINING\r\n");
    else if (starts_with(line, "HELO")) add(replies, "250 closed.bench.example\r\n");
    else if (starts_with(line, "RCPT")) add(replies, "554 5.7.1 Relay access denied\r\n");
    else if (starts_with(line, "QUIT")) {
        add(replies, "221 bye\r\n");
        return 0;
    } else add(replies, "250 ok\r\n");
    return 1;
}

static void accept_all(int epoll, int listener) {
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return; /* EAGAIN: all taken; anything else: the client's loss */
        if ((size_t)fd >= slot_count) {
            close(fd);
            continue;
        }
        slots[fd] = (struct slot){.kind = slots[listener].tarpit ? TARPIT : REFUSING_MX};
        watch(epoll, fd);
        if (slots[fd].kind == REFUSING_MX && !reply(fd, "220 closed.bench.example ESMTP\r\n")) drop(fd);
    }
}

static void read_from(int fd) {
    struct slot *slot = &slots[fd];
    char buffer[4096];
    ssize_t count = read(fd, buffer, sizeof buffer);
    if (count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR)) {
        drop(fd);
        return;
    }
    if (count < 0 || slot->kind == TARPIT) return;
    struct replies replies = {.used = 0};
    int open = 1;
    for (ssize_t i = 0; i < count && open; i++) {
        if (buffer[i] == '\n') {
            slot->line[slot->used] = '\0';
            slot->used = 0;
            open = answer(&replies, slot->line);
        } else if (slot->used < sizeof slot->line - 1) {
            slot->line[slot->used++] = buffer[i];
        }
    }
    replies.text[replies.used] = '\0';
    if ((replies.used > 0 && !reply(fd, replies.text)) || !open) drop(fd);
}

int main(int argc, char **argv) {
    long count = 1000, port = 0;
    double tarpit_share = 0.33;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--count") == 0) count = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--port") == 0) port = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--tarpit-share") == 0) tarpit_share = atof(argv[i + 1]);
        else usage();
    }
    if (argc % 2 == 0 || count < 1 || count > 62500 || port < 1 || port > 65535) usage();
    raise_open_file_limit(count);

    int epoll = epoll_create1(EPOLL_CLOEXEC);
    if (epoll < 0) fail("epoll_create1");
    for (long i = 0; i < count; i++) {
        char text[32];
        target_address(i, text, sizeof text);
        struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        if (inet_pton(AF_INET, text, &address.sin_addr) != 1) fail("inet_pton");
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) fail("socket");
        if ((size_t)fd >= slot_count) {
            fprintf(stderr, "loopback-targets: the open-file limit (%zu) is too low for %ld targets\n", slot_count, count);
            return 1;
        }
        int on = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0) fail(text);
        if (listen(fd, 64) != 0) fail("listen");
        /* Target i is a tarpit when the share's running count steps up at i. */
        int tarpit = (long)((i + 1) * tarpit_share) > (long)(i * tarpit_share);
        slots[fd] = (struct slot){.kind = LISTENER, .tarpit = tarpit};
        watch(epoll, fd);
    }
    printf("ready\n");
    fflush(stdout);

    struct epoll_event events[256];
    for (;;) {
        int ready = epoll_wait(epoll, events, 256, -1);
        if (ready < 0) {
            if (errno == EINTR) continue;
            fail("epoll_wait");
        }
        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;
            if (slots[fd].kind == LISTENER) accept_all(epoll, fd);
            else if (slots[fd].kind != FREE) read_from(fd);
        }
    }
}
