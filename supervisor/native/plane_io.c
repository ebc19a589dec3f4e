/* The byte plane's thread and what it does, always with the plane's mutex held. */
#include "plane.h"
#include "poller.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define READ_SIZE 65536
#define BATCH (256 * 1024)
#define SHARE (16 * 1024)
/* New output is told to Python this long after it came, or at once past BATCH bytes:
   Python then runs beside a flood in batches, and not in the way of each keystroke's
   echo. Every other event is told at once. */
#define TELL_AFTER_US 2000
/* Output of a session whose every reader in Python is a terminal the plane writes (or
   none) is told this long after it came: Python's batch work then lands on one in a
   hundred of an interactive session's keystrokes, not on one in thirty. */
#define TELL_RELAXED_US 20000

static void emit_locked(PlaneObject *p, int kind, long long key, long long value,
                        const char *raw, int64_t rawlen) {
    if (p->nevents == p->cap_events) {
        int cap = p->cap_events ? p->cap_events * 2 : 64;
        Event *grown = realloc(p->events, sizeof(Event) * (size_t)cap);
        if (grown == NULL) return;
        p->events = grown;
        p->cap_events = cap;
    }
    Event *e = &p->events[p->nevents++];
    e->kind = kind;
    e->key = key;
    e->value = value;
    e->data = NULL;
    e->raw = NULL;
    e->rawlen = 0;
    if (raw != NULL && rawlen > 0 && (e->raw = malloc((size_t)rawlen)) != NULL) {
        memcpy(e->raw, raw, (size_t)rawlen);
        e->rawlen = rawlen;
    }
}

void plane_emit(PlaneObject *p, int kind, long long key, long long value, const char *raw,
                int64_t rawlen) {
    pthread_mutex_lock(&p->emu);
    emit_locked(p, kind, key, value, raw, rawlen);
    pthread_mutex_unlock(&p->emu);
}

int plane_watch(PlaneObject *p, int fd, uint64_t tag, int *watching, int want) {
    if (want == *watching) return 0;
    if (want == 0) {
        /* epoll reports a hang-up even on an fd watched for nothing: let go of it instead */
        poller_remove(p->poller, fd, *watching);
        *watching = -1;
        return 0;
    }
    int rc = poller_set(p->poller, fd, tag, *watching, want);
    if (rc == 0) *watching = want;
    return rc;
}

/* How far behind the ring's end the output may fall: never more than the ring keeps. */
static int64_t out_hold(const Out *O, const RingObject *r) {
    return O->hold >= 0 && O->hold < r->capacity ? O->hold : r->capacity;
}

static int64_t allowed(PlaneObject *p, int s) {
    Sess *S = &p->sess[s];
    if (p->frozen) return 0;
    int64_t limit = __atomic_load_n(&S->limit, __ATOMIC_RELAXED);
    if (limit < 0) limit = INT64_MAX;
    for (int o = 0; o < p->nouts; o++) {
        Out *O = &p->outs[o];
        if (!O->used || O->released || O->sess != s) continue;
        int64_t hold = out_hold(O, S->ring); /* limit >= 0, hold >= 0: no overflow */
        if (O->written < limit - hold) limit = O->written + hold;
    }
    return limit == INT64_MAX ? BATCH : limit - S->ring->end;
}

static uint64_t sess_tag(PlaneObject *p, int s) { return TAG(T_SESS, s, p->sess[s].gen); }

void plane_rearm(PlaneObject *p, int s) {
    Sess *S = &p->sess[s];
    if (!S->used || S->eof) return;
    int want = allowed(p, s) > 0 ? WANT_IN : 0;
    plane_watch(p, S->fd, sess_tag(p, s), &S->watching, want);
}

void plane_release_out(PlaneObject *p, int o) {
    Out *O = &p->outs[o];
    if (O->released) return;
    plane_watch(p, O->fd, 0, &O->watching, 0);
    close(O->fd);
    O->released = 1;
    plane_rearm(p, O->sess);
}

void plane_drop_out(PlaneObject *p, int o) {
    Out *O = &p->outs[o];
    plane_release_out(p, o);
    O->used = 0;
    O->gen = (O->gen + 1) & 0x0fffffff;
}

void plane_drop_in(PlaneObject *p, int i) {
    In *I = &p->ins[i];
    plane_watch(p, I->fd, 0, &I->watching, 0);
    close(I->fd);
    I->used = 0;
    I->gen = (I->gen + 1) & 0x0fffffff;
}

void plane_flush(PlaneObject *p, int o) {
    Out *O = &p->outs[o];
    RingObject *r = p->sess[O->sess].ring;
    long long handle = (long long)TAG(T_OUT, o, O->gen);
    int blocked = 0, gone = 0;
    int lost = O->written < ring_start(r); /* it started behind what the ring keeps */
    while (!gone && !lost && O->written < r->end) {
        struct iovec iov[2];
        int k = ring_spans(r, O->written, r->end, iov);
        ssize_t n = writev(O->fd, iov, k);
        if (n > 0) {
            O->written += n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            blocked = 1;
            break;
        } else {
            gone = 1;
        }
    }
    int64_t behind = r->end - O->written;
    if (gone || lost || (blocked && O->hold < 0)) {
        plane_emit(p, gone ? EV_HANGUP : EV_RELEASED, handle, O->written, NULL, 0);
        plane_release_out(p, o);
        return;
    }
    plane_watch(p, O->fd, TAG(T_OUT, o, O->gen), &O->watching, blocked ? WANT_OUT : 0);
    if (O->held && behind <= out_hold(O, r) / 2) {
        O->held = 0;
        plane_emit(p, EV_FLOWING, handle, O->written, NULL, 0);
    }
    plane_rearm(p, O->sess);
}

static void sess_read(PlaneObject *p, int s, int64_t budget) {
    Sess *S = &p->sess[s];
    RingObject *r = S->ring;
    int64_t total = 0, room = 0;
    char spill[READ_SIZE];
    while (total < budget) {
        room = allowed(p, s);
        if (room <= 0) break;
        int64_t want = room < READ_SIZE ? room : READ_SIZE, span;
        /* Only this thread changes the ring: it holds the ring's lock only while it
           changes what readers may see, never during a system call. A read goes straight
           into the ring where it overwrites nothing kept; into `spill` once the ring is
           full, and is copied in after, so that the ring keeps min(end, capacity) bytes
           readable at every moment. */
        pthread_mutex_lock(&r->mu);
        if (ring_reserve(r, want) < 0) {
            pthread_mutex_unlock(&r->mu);
            break;
        }
        char *dst = ring_tail(r, want, &span);
        int direct = r->size + span <= r->alloc;
        pthread_mutex_unlock(&r->mu);
        if (!direct) dst = spill, span = want;
        ssize_t n = read(S->fd, dst, (size_t)span);
        if (n > 0) {
            pthread_mutex_lock(&r->mu);
            if (direct) ring_commit(r, n);
            else ring_put(r, spill, n);
            pthread_mutex_unlock(&r->mu);
            total += n;
            p->reads++;
            p->read_now += n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            S->eof = 1;
            break;
        }
    }
    int64_t end = r->end;
    long long handle = (long long)sess_tag(p, s);
    pthread_mutex_lock(&p->emu);
    if (total && !S->dirty) {
        S->dirty = 1;
        emit_locked(p, EV_DATA, handle, end, NULL, 0);
    }
    if (total && p->unsent == 0) p->unsent_since = plane_now_ns();
    p->unsent += total;
    if (total && !S->relaxed) p->prompt = 1;
    pthread_mutex_unlock(&p->emu);
    for (int o = 0; o < p->nouts; o++)
        if (p->outs[o].used && !p->outs[o].released && p->outs[o].sess == s) plane_flush(p, o);
    if (S->eof) {
        plane_watch(p, S->fd, 0, &S->watching, 0);
        plane_emit(p, EV_EOF, handle, end, NULL, 0);
        return;
    }
    if (room <= 0) {
        for (int o = 0; o < p->nouts; o++) {
            Out *O = &p->outs[o];
            if (O->used && !O->released && O->sess == s && O->hold >= 0 && !O->held &&
                r->end - O->written >= out_hold(O, r)) {
                O->held = 1;
                plane_emit(p, EV_HELD, (long long)TAG(T_OUT, o, O->gen), O->written, NULL, 0);
            }
        }
    }
    plane_rearm(p, s);
}

/* How long the loop may wait before it must tell Python of output; -1: no hurry. */
static long tell(PlaneObject *p) {
    long timeout = -1;
    pthread_mutex_lock(&p->emu);
    if (!p->notified && p->nevents > 0) {
        int urgent = p->unsent >= BATCH;
        for (int k = 0; k < p->nevents && !urgent; k++) urgent = p->events[k].kind != EV_DATA;
        uint64_t waited = (plane_now_ns() - p->unsent_since) / 1000;
        uint64_t after = p->prompt || p->unsent == 0 ? TELL_AFTER_US : TELL_RELAXED_US;
        if (!urgent && waited < after) {
            timeout = (long)(after - waited);
        } else {
            char one = 1;
            if (write(p->wake_w, &one, 1) == 1) p->notified = 1;
            p->unsent = 0;
            p->prompt = 0;
        }
    }
    pthread_mutex_unlock(&p->emu);
    return timeout;
}

/* set_limit changed some limits: watch those masters again, or stop. */
static void rearm_changed(PlaneObject *p) {
    char sink[64];
    while (read(p->poke_r, sink, sizeof sink) > 0) {
    }
    for (int s = 0; s < p->nsess; s++)
        if (__atomic_exchange_n(&p->sess[s].limit_changed, 0, __ATOMIC_ACQ_REL))
            plane_rearm(p, s);
}

/* The loop cannot wait any more: the thread ends, and says so to Python at once. */
static void stopped(PlaneObject *p, int err) {
    __atomic_store_n(&p->failed, err, __ATOMIC_RELAXED);
    __atomic_store_n(&p->running, 0, __ATOMIC_RELEASE);
    pthread_mutex_lock(&p->emu);
    emit_locked(p, EV_STOPPED, 0, err, NULL, 0);
    char one = 1;
    if (write(p->wake_w, &one, 1) == 1) p->notified = 1;
    pthread_mutex_unlock(&p->emu);
}

void *plane_thread(void *arg) {
    PlaneObject *p = arg;
    poll_event evs[64];
    long timeout = -1;
#ifdef __linux__
    pthread_setname_np(pthread_self(), "ptysup-plane");
#else
    pthread_setname_np("ptysup-plane");
#endif
    plane_pace(p);
    for (;;) {
        int n = poller_wait(p->poller, evs, 64, timeout);
        if (n < 0) {
            if (errno == EINTR) continue;
            stopped(p, errno);
            break;
        }
        int stop = 0, floods = 0;
        pthread_mutex_lock(&p->mu);
        p->wakeups++;
        for (int k = 0; k < n; k++) floods += TAG_TYPE(evs[k].tag) == T_SESS;
        /* Keys first; then each terminal in turn, a share each when several have output,
           so that a keystroke's echo waits behind little of the others' floods. */
        int64_t budget = floods > 1 ? SHARE : BATCH;
        for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < n; k++) {
            uint64_t tag = evs[k].tag;
            int slot = TAG_SLOT(tag);
            uint32_t gen = TAG_GEN(tag);
            if ((TAG_TYPE(tag) == T_IN) != (pass == 0)) continue;
            switch (TAG_TYPE(tag)) {
            case T_STOP:
                stop = 1;
                break;
            case T_POKE:
                rearm_changed(p);
                break;
            case T_SESS:
                if (slot < p->nsess && p->sess[slot].used && p->sess[slot].gen == gen &&
                    !p->sess[slot].eof && p->sess[slot].watching > 0)
                    sess_read(p, slot, budget);
                break;
            case T_OUT:
                if (slot < p->nouts && p->outs[slot].used && !p->outs[slot].released &&
                    p->outs[slot].gen == gen)
                    plane_flush(p, slot);
                break;
            case T_IN:
                if (slot < p->nins && p->ins[slot].used && p->ins[slot].gen == gen)
                    plane_in_read(p, slot);
                break;
            }
        }
        timeout = tell(p);
        pthread_mutex_unlock(&p->mu);
        plane_pace(p);
        if (stop) break;
    }
    return NULL;
}
