/* The scrollback ring: the last `capacity` bytes of a session's output by absolute offset,
   shared by the byte plane's thread (which reads the terminal into it) and Python.

   `mu` guards buf, alloc, end, size and owner. While a lane owns the ring (`owner`, set by
   add_session), its thread is the only one that changes it, always under `mu`, and reads
   it without; everyone else reads it under `mu`, and Python may not append. `capacity` is
   set once, by __init__. */
#ifndef PTYSUP_RING_H
#define PTYSUP_RING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct {
    PyObject_HEAD
    pthread_mutex_t mu;
    char *buf;
    int64_t alloc;    /* bytes allocated; grows up to capacity as output comes */
    int64_t capacity;
    int64_t end;      /* absolute offset one past the last byte */
    int64_t size;     /* bytes held, at most capacity and alloc */
    int initialised;
    void *owner; /* the plane (lane) whose thread fills it, or NULL */
} RingObject;

extern PyTypeObject RingType;

/* All below expect the ring's mutex held. */
int ring_reserve(RingObject *r, int64_t want);
/* Where the next `want` bytes go: a contiguous span at the end (after ring_reserve). */
char *ring_tail(RingObject *r, int64_t want, int64_t *span);
void ring_commit(RingObject *r, int64_t n);
/* Copy `n` bytes in at the end (after ring_reserve(r, n)), the oldest giving way. */
void ring_put(RingObject *r, const char *src, int64_t n);
/* Up to two spans holding [from, to); returns how many. */
int ring_spans(RingObject *r, int64_t from, int64_t to, struct iovec iov[2]);
static inline int64_t ring_start(RingObject *r) { return r->end - r->size; }

void lock_ring(RingObject *r);
/* Takes the mutex: make `owner` the ring's, if it has none (NULL: let go); whether it did. */
int ring_own(RingObject *r, void *owner);
#endif
