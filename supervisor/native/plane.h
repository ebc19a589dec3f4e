/* The byte plane: one thread, its own readiness loop, no GIL. It drains the sessions' PTY
   masters into their rings, writes output to the terminals the daemon holds, copies keys
   from those terminals to the masters, and wakes Python in batches through one fd. */
#ifndef PTYSUP_PLANE_H
#define PTYSUP_PLANE_H

#include "ring.h"

enum {
    EV_DATA = 1, EV_EOF, EV_HELD, EV_FLOWING, EV_RELEASED, EV_INPUT, EV_DETACH, EV_HANGUP,
    EV_STOPPED /* the thread could not wait any more and ended: key 0, value the errno */
};

typedef struct {
    int used;
    uint32_t gen;
    long long key;
    int fd;       /* the plane's own duplicate of the master, closed by remove_session */
    int watching; /* -1: not registered */
    RingObject *ring; /* a reference, and the ring's owner is this plane */
    int64_t limit; /* Python's: read no further than this offset; -1: no limit (atomic) */
    int limit_changed; /* atomic: set_limit changed it; the thread rearms */
    int eof;
    int dirty;   /* events' mutex: a DATA event is waiting to be taken */
    int relaxed; /* no one in Python waits for its output: told of it later */
} Sess;

typedef struct {
    int used;
    uint32_t gen;
    long long key;
    int sess; /* slot */
    int fd, watching;
    int64_t written, hold; /* hold < 0: never hold the child back; released when it blocks.
                              The hold used is at most the ring's capacity: out_hold() */
    int held, released; /* released: the plane let go; Python takes the slot back */
} Out;

typedef struct {
    int used;
    uint32_t gen;
    long long key;
    int sess;
    int fd, watching;
    int detach_key, direct; /* direct: the lane writes the keys; only while owed is 0 */
    int64_t owed; /* keys handed to Python (INPUT) that it has not handed on yet */
} In;

/* What Python may owe a terminal's lane in keys before the lane stops reading it. */
#define KEYS_OWED (64 * 1024)

typedef struct {
    int kind;
    long long key, value;
    PyObject *data; /* NULL, or bytes: made by Python when taken */
    char *raw;
    int64_t rawlen;
} Event;

/* Who guards what:
   - `mu`: the sessions, outputs and inputs (every field but those below), `frozen`,
     `closed`, `reads` and `wakeups`. The thread holds it through each wake-up, its system
     calls included; Python takes it for every call but take, set_limit, set_relaxed and
     fileno, and lets go of it before it builds a Python object (which may run any code).
   - `emu`: the events, `notified`, `prompt`, `unsent`, `unsent_since`, and each session's
     `dirty` and `relaxed`: Python takes the events (and sets `relaxed`) without waiting
     for the thread's system calls.
   - Order: `mu` before `emu`, and `mu` before a ring's mutex; no one takes `mu` holding
     either, nor `emu` and a ring's mutex together.
   - Only Python changes which slots are used and grows the arrays, under `mu`: it reads
     them without it (set_limit, take), the thread only under it.
   - Atomic: each session's `limit` and `limit_changed`; `running` and `failed`.
   - Python's alone (under the GIL): `started`. The thread's alone: `read_now`, `window_at`,
     `flood_at` and `slice`. Set before the thread starts and then only read: the fds.
   - The rings of its sessions are the plane's: its thread alone changes them (ring.h). */
typedef struct {
    PyObject_HEAD
    pthread_mutex_t mu, emu;
    pthread_t thread;
    int started; /* the thread was created and is not joined yet */
    int running; /* 1 until the thread ends, by close or because its loop failed */
    int failed;  /* why the loop failed (errno), or 0 */
    int closed;  /* close() let go of everything: nothing is added any more */
    int poller, wake_r, wake_w, stop_r, stop_w, poke_r, poke_w;
    int frozen;
    int notified;         /* emu */
    int prompt;           /* emu: output of a session that is not relaxed is unsent */
    int64_t unsent;       /* emu: bytes read that Python was not told of yet */
    uint64_t unsent_since; /* emu: when the first of them was read (ns) */
    Sess *sess;
    int nsess;
    Out *outs;
    int nouts;
    In *ins;
    int nins;
    Event *events;
    int nevents, cap_events;
    uint32_t gen;
    long long reads, wakeups;
    int64_t read_now;   /* bytes read since window_at */
    uint64_t window_at, flood_at; /* when the lane last read a flood (ns) */
    int slice;          /* the slice asked for: 0 the system's, else SHORT */
} PlaneObject;

extern PyTypeObject PlaneType;

/* plane_io.c: the thread's side; the plane's mutex held. */
void *plane_thread(void *arg);
uint64_t plane_now_ns(void);
/* Called by the lane's thread between rounds, without the plane's mutex. */
void plane_pace(PlaneObject *p);
void plane_rearm(PlaneObject *p, int s);
void plane_flush(PlaneObject *p, int o);
int plane_watch(PlaneObject *p, int fd, uint64_t tag, int *watching, int want);
void plane_emit(PlaneObject *p, int kind, long long key, long long value, const char *raw,
                int64_t rawlen); /* takes emu */
void plane_drop_out(PlaneObject *p, int o);
void plane_release_out(PlaneObject *p, int o);
void plane_drop_in(PlaneObject *p, int i);
int plane_free_slot(void **array, int *count, size_t size);

/* plane_keys.c: a terminal's keys; the first on the thread, the others from Python. */
void plane_in_read(PlaneObject *p, int i);
PyObject *plane_set_direct(PlaneObject *p, PyObject *args);
PyObject *plane_handed_on(PlaneObject *p, PyObject *args);

/* plane.c: take `mu` from Python, letting go of the GIL while it waits. */
void lock_plane(PlaneObject *p);

/* plane_life.c: the type's start and end, for plane.c's table. */
PyObject *plane_new(PyTypeObject *type, PyObject *args, PyObject *kwds);
void plane_dealloc(PlaneObject *p);
PyObject *plane_close(PlaneObject *p, PyObject *unused);
/* A duplicate of `fd` for the plane to keep (close-on-exec); -1 with an exception set when
   it cannot, or when `fd` is blocking: the thread must never wait in a read or a write. */
int plane_own_dup(int fd);
int plane_find(uint64_t handle, int type, int count, void *array, size_t size);

#define TAG(type, slot, gen) (((uint64_t)(type) << 60) | ((uint64_t)(gen) << 32) | (uint32_t)(slot))
#define TAG_TYPE(t) ((int)((t) >> 60))
#define TAG_GEN(t) ((uint32_t)(((t) >> 32) & 0x0fffffff))
#define TAG_SLOT(t) ((int)((t) & 0xffffffff))
enum { T_STOP = 1, T_SESS, T_OUT, T_IN, T_POKE };

#endif
