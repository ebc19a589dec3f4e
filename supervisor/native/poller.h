/* The byte plane's readiness loop: epoll on Linux, kqueue on the BSDs and macOS. Each fd is
   watched for reading, writing or neither, and carries a 64-bit tag. */
#ifndef PTYSUP_POLLER_H
#define PTYSUP_POLLER_H

#include <stdint.h>

#define WANT_IN 1
#define WANT_OUT 2

typedef struct {
    uint64_t tag;
    int events; /* WANT_IN | WANT_OUT, as ready (errors and hang-ups count as both) */
} poll_event;

int poller_open(void);
/* Watch `fd` for `want` (0 = registered, watching nothing); `had` is what it watched so far,
   -1 when it was not registered. */
int poller_set(int poller, int fd, uint64_t tag, int had, int want);
void poller_remove(int poller, int fd, int had);
/* timeout_us < 0: wait for ever */
int poller_wait(int poller, poll_event *events, int max, long timeout_us);

#endif
