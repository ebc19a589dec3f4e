#include "poller.h"

#include <errno.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/epoll.h>

int poller_open(void) { return epoll_create1(EPOLL_CLOEXEC); }

int poller_set(int poller, int fd, uint64_t tag, int had, int want) {
    struct epoll_event ev = {0};
    ev.events = (want & WANT_IN ? EPOLLIN : 0) | (want & WANT_OUT ? EPOLLOUT : 0);
    ev.data.u64 = tag;
    return epoll_ctl(poller, had < 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
}

void poller_remove(int poller, int fd, int had) {
    struct epoll_event ev = {0};
    if (had >= 0) epoll_ctl(poller, EPOLL_CTL_DEL, fd, &ev);
}

int poller_wait(int poller, poll_event *events, int max, long timeout_us) {
    struct epoll_event evs[64];
    if (max > 64) max = 64;
    int ms = timeout_us < 0 ? -1 : (int)((timeout_us + 999) / 1000);
    int n = epoll_wait(poller, evs, max, ms);
    for (int i = 0; i < n; i++) {
        uint32_t e = evs[i].events;
        events[i].tag = evs[i].data.u64;
        events[i].events = (e & (EPOLLIN | EPOLLHUP | EPOLLERR) ? WANT_IN : 0) |
                           (e & (EPOLLOUT | EPOLLHUP | EPOLLERR) ? WANT_OUT : 0);
    }
    return n;
}

#else
#include <sys/event.h>
#include <sys/time.h>
#include <sys/types.h>

int poller_open(void) { return kqueue(); }

int poller_set(int poller, int fd, uint64_t tag, int had, int want) {
    struct kevent ch[2];
    if (had < 0) had = 0;
    int n = 0;
    void *udata = (void *)(uintptr_t)tag;
    if ((want & WANT_IN) != (had & WANT_IN))
        EV_SET(&ch[n++], fd, EVFILT_READ, want & WANT_IN ? EV_ADD : EV_DELETE, 0, 0, udata);
    else if (want & WANT_IN)
        EV_SET(&ch[n++], fd, EVFILT_READ, EV_ADD, 0, 0, udata);
    if ((want & WANT_OUT) != (had & WANT_OUT))
        EV_SET(&ch[n++], fd, EVFILT_WRITE, want & WANT_OUT ? EV_ADD : EV_DELETE, 0, 0, udata);
    else if (want & WANT_OUT)
        EV_SET(&ch[n++], fd, EVFILT_WRITE, EV_ADD, 0, 0, udata);
    return n ? kevent(poller, ch, n, NULL, 0, NULL) : 0;
}

void poller_remove(int poller, int fd, int had) {
    if (had > 0) poller_set(poller, fd, 0, had, 0);
}

int poller_wait(int poller, poll_event *events, int max, long timeout_us) {
    struct kevent evs[64];
    if (max > 64) max = 64;
    struct timespec ts = {timeout_us / 1000000, (timeout_us % 1000000) * 1000};
    int n = kevent(poller, NULL, 0, evs, max, timeout_us < 0 ? NULL : &ts);
    for (int i = 0; i < n; i++) {
        events[i].tag = (uint64_t)(uintptr_t)evs[i].udata;
        int eof = (evs[i].flags & (EV_EOF | EV_ERROR)) != 0;
        events[i].events = evs[i].filter == EVFILT_READ ? WANT_IN : WANT_OUT;
        if (eof) events[i].events |= WANT_IN | WANT_OUT;
    }
    return n;
}
#endif
