/* The byte plane as Python sees it: handles for sessions, outputs and inputs, and `take`. */
#include "plane.h"
#include "poller.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void lock_plane(PlaneObject *p) {
    if (pthread_mutex_trylock(&p->mu) == 0) return;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&p->mu);
    Py_END_ALLOW_THREADS
}

static void lock_events(PlaneObject *p) {
    if (pthread_mutex_trylock(&p->emu) == 0) return;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&p->emu);
    Py_END_ALLOW_THREADS
}


#define FIND_SESS(p, h) plane_find((h), T_SESS, (p)->nsess, (p)->sess, sizeof(Sess))
#define FIND_OUT(p, h) plane_find((h), T_OUT, (p)->nouts, (p)->outs, sizeof(Out))
#define FIND_IN(p, h) plane_find((h), T_IN, (p)->nins, (p)->ins, sizeof(In))

static PyObject *unknown(const char *what, unsigned long long handle) {
    PyErr_Format(PyExc_KeyError, "no %s %llu on the byte plane", what, handle);
    return NULL;
}


static PyObject *closed_plane(void) {
    PyErr_SetString(PyExc_ValueError, "the byte plane is closed");
    return NULL;
}

static PyObject *plane_add_session(PlaneObject *p, PyObject *args) {
    int fd;
    RingObject *ring;
    long long limit = -1;
    if (!PyArg_ParseTuple(args, "iO!|L", &fd, &RingType, &ring, &limit)) return NULL;
    /* The thread reads a duplicate of its own: the caller's number may be closed, and given
       to another file, while the session is on the plane. */
    int mine = plane_own_dup(fd);
    if (mine < 0) return NULL;
    enum { ADDED, CLOSED, TAKEN, NO_MEMORY, UNWATCHED } failed = ADDED;
    int s = -1, err = 0;
    unsigned long long handle = 0;
    lock_plane(p);
    if (p->closed) failed = CLOSED;
    else if (!ring_own(ring, p)) failed = TAKEN;
    else if ((s = plane_free_slot((void **)&p->sess, &p->nsess, sizeof(Sess))) < 0)
        failed = NO_MEMORY;
    else {
        Sess *S = &p->sess[s];
        uint32_t gen = S->gen;
        memset(S, 0, sizeof *S);
        S->used = 1, S->gen = gen, S->fd = mine, S->watching = -1, S->limit = limit;
        handle = TAG(T_SESS, s, gen);
        if (plane_watch(p, mine, handle, &S->watching, WANT_IN) < 0) {
            err = errno;
            S->used = 0;
            failed = UNWATCHED;
        } else {
            Py_INCREF(ring);
            S->ring = ring;
        }
    }
    if (failed == NO_MEMORY || failed == UNWATCHED) ring_own(ring, NULL);
    pthread_mutex_unlock(&p->mu);
    if (failed == ADDED) return PyLong_FromUnsignedLongLong(handle);
    close(mine);
    switch (failed) {
    case CLOSED:
        return closed_plane();
    case TAKEN:
        PyErr_SetString(PyExc_RuntimeError, "the ring is filled by a lane of the byte plane");
        return NULL;
    case NO_MEMORY:
        return PyErr_NoMemory();
    default:
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
}

static PyObject *plane_remove_session(PlaneObject *p, PyObject *arg) {
    unsigned long long h = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    lock_plane(p);
    int s = FIND_SESS(p, h);
    if (s < 0) {
        pthread_mutex_unlock(&p->mu);
        return unknown("session", h);
    }
    for (int o = 0; o < p->nouts; o++)
        if (p->outs[o].used && p->outs[o].sess == s) plane_drop_out(p, o);
    for (int i = 0; i < p->nins; i++)
        if (p->ins[i].used && p->ins[i].sess == s) plane_drop_in(p, i);
    Sess *S = &p->sess[s];
    plane_watch(p, S->fd, 0, &S->watching, 0);
    close(S->fd);
    RingObject *ring = S->ring;
    int eof = S->eof;
    ring_own(ring, NULL);
    S->ring = NULL;
    S->used = 0;
    S->gen = (S->gen + 1) & 0x0fffffff;
    pthread_mutex_unlock(&p->mu);
    Py_DECREF(ring);
    return PyBool_FromLong(eof);
}

static PyObject *plane_set_limit(PlaneObject *p, PyObject *args) {
    unsigned long long h;
    long long limit;
    if (!PyArg_ParseTuple(args, "KL", &h, &limit)) return NULL;
    /* Without the mutex: only Python changes which slots are used, and the thread rearms
       the session at its next wake-up, which the poke brings at once. */
    int s = FIND_SESS(p, h);
    if (s < 0) return unknown("session", h);
    __atomic_store_n(&p->sess[s].limit, (int64_t)limit, __ATOMIC_RELAXED);
    __atomic_store_n(&p->sess[s].limit_changed, 1, __ATOMIC_RELEASE);
    char one = 1;
    (void)!write(p->poke_w, &one, 1); /* a full pipe: a poke is on its way already */
    Py_RETURN_NONE;
}

static PyObject *plane_set_relaxed(PlaneObject *p, PyObject *args) {
    unsigned long long h;
    int relaxed;
    if (!PyArg_ParseTuple(args, "Kp", &h, &relaxed)) return NULL;
    lock_events(p);
    int s = FIND_SESS(p, h);
    if (s >= 0) p->sess[s].relaxed = relaxed;
    pthread_mutex_unlock(&p->emu);
    if (s < 0) return unknown("session", h);
    Py_RETURN_NONE;
}

static PyObject *plane_add_output(PlaneObject *p, PyObject *args) {
    unsigned long long h;
    int fd;
    long long written, hold;
    if (!PyArg_ParseTuple(args, "KiLL", &h, &fd, &written, &hold)) return NULL;
    if (written < 0) {
        PyErr_SetString(PyExc_ValueError, "an output's offset must not be negative");
        return NULL;
    }
    int mine = plane_own_dup(fd);
    if (mine < 0) return NULL;
    lock_plane(p);
    int closed = p->closed;
    int s = FIND_SESS(p, h), o = -1;
    if (s >= 0 && (o = plane_free_slot((void **)&p->outs, &p->nouts, sizeof(Out))) >= 0) {
        Out *O = &p->outs[o];
        uint32_t gen = O->gen;
        memset(O, 0, sizeof *O);
        O->used = 1, O->gen = gen, O->sess = s, O->fd = mine, O->watching = -1;
        O->written = written, O->hold = hold;
        /* the thread writes what is there already as soon as the terminal takes it */
        if (plane_watch(p, mine, TAG(T_OUT, o, gen), &O->watching, WANT_OUT) < 0) {
            O->used = 0;
            o = -2;
        }
    }
    unsigned long long handle = o >= 0 ? TAG(T_OUT, o, p->outs[o].gen) : 0;
    int err = errno;
    pthread_mutex_unlock(&p->mu);
    if (o < 0) {
        close(mine);
        errno = err;
        if (o == -2) return PyErr_SetFromErrno(PyExc_OSError); /* a terminal it cannot watch */
        if (closed) return closed_plane();
        return s < 0 ? unknown("session", h) : PyErr_NoMemory();
    }
    return PyLong_FromUnsignedLongLong(handle);
}

static PyObject *plane_remove_output(PlaneObject *p, PyObject *arg) {
    unsigned long long h = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    lock_plane(p);
    int o = FIND_OUT(p, h);
    long long written = o >= 0 ? p->outs[o].written : -1;
    if (o >= 0) plane_drop_out(p, o);
    pthread_mutex_unlock(&p->mu);
    if (o < 0) return unknown("output", h);
    return PyLong_FromLongLong(written);
}

static PyObject *plane_add_input(PlaneObject *p, PyObject *args) {
    unsigned long long h;
    int fd, detach_key, direct;
    if (!PyArg_ParseTuple(args, "Kiip", &h, &fd, &detach_key, &direct)) return NULL;
    int mine = plane_own_dup(fd);
    if (mine < 0) return NULL;
    lock_plane(p);
    int closed = p->closed;
    int s = FIND_SESS(p, h), i = -1;
    if (s >= 0 && (i = plane_free_slot((void **)&p->ins, &p->nins, sizeof(In))) >= 0) {
        In *I = &p->ins[i];
        uint32_t gen = I->gen;
        memset(I, 0, sizeof *I);
        I->used = 1, I->gen = gen, I->sess = s, I->fd = mine, I->watching = -1;
        I->detach_key = detach_key, I->direct = direct;
        if (plane_watch(p, mine, TAG(T_IN, i, gen), &I->watching, WANT_IN) < 0) {
            I->used = 0;
            i = -2;
        }
    }
    unsigned long long handle = i >= 0 ? TAG(T_IN, i, p->ins[i].gen) : 0;
    int err = errno;
    pthread_mutex_unlock(&p->mu);
    if (i < 0) {
        close(mine);
        errno = err;
        if (i == -2) return PyErr_SetFromErrno(PyExc_OSError);
        if (closed) return closed_plane();
        return s < 0 ? unknown("session", h) : PyErr_NoMemory();
    }
    return PyLong_FromUnsignedLongLong(handle);
}

static PyObject *plane_remove_input(PlaneObject *p, PyObject *arg) {
    unsigned long long h = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    lock_plane(p);
    int i = FIND_IN(p, h);
    if (i >= 0) plane_drop_in(p, i);
    pthread_mutex_unlock(&p->mu);
    return PyBool_FromLong(i >= 0);
}

static PyObject *plane_take(PlaneObject *p, PyObject *unused) {
    char sink[256];
    lock_events(p);
    while (p->wake_r >= 0 && read(p->wake_r, sink, sizeof sink) > 0) {
    }
    p->notified = 0;
    p->unsent = 0;
    p->prompt = 0;
    for (int s = 0; s < p->nsess; s++) p->sess[s].dirty = 0;
    int n = p->nevents;
    Event *events = p->events;
    p->events = NULL;
    p->nevents = p->cap_events = 0;
    pthread_mutex_unlock(&p->emu);
    PyObject *list = PyList_New(n);
    for (int k = 0; k < n; k++) {
        Event *e = &events[k];
        if (list != NULL) {
            PyObject *item =
                e->raw != NULL
                    ? Py_BuildValue("(iKLy#)", e->kind, (unsigned long long)e->key, e->value,
                                    e->raw, (Py_ssize_t)e->rawlen)
                    : Py_BuildValue("(iKLO)", e->kind, (unsigned long long)e->key, e->value,
                                    Py_None);
            if (item == NULL) Py_CLEAR(list);
            else PyList_SET_ITEM(list, k, item);
        }
        free(e->raw);
    }
    free(events);
    return list;
}

static PyObject *plane_freeze(PlaneObject *p, PyObject *arg) {
    int frozen = PyObject_IsTrue(arg);
    if (frozen < 0) return NULL;
    lock_plane(p);
    p->frozen = frozen;
    for (int s = 0; s < p->nsess; s++) plane_rearm(p, s);
    pthread_mutex_unlock(&p->mu);
    Py_RETURN_NONE;
}

static PyObject *plane_fileno(PlaneObject *p, PyObject *unused) {
    return PyLong_FromLong(p->wake_r);
}

static PyObject *plane_stats(PlaneObject *p, PyObject *unused) {
    lock_plane(p);
    int sessions = 0, outputs = 0, inputs = 0;
    for (int s = 0; s < p->nsess; s++) sessions += p->sess[s].used;
    for (int o = 0; o < p->nouts; o++) outputs += p->outs[o].used;
    for (int i = 0; i < p->nins; i++) inputs += p->ins[i].used;
    long long reads = p->reads, wakeups = p->wakeups;
    pthread_mutex_unlock(&p->mu);
    /* built without the mutex: building may run the collector, and so any Python code */
    int running = __atomic_load_n(&p->running, __ATOMIC_ACQUIRE);
    int failed = __atomic_load_n(&p->failed, __ATOMIC_RELAXED);
    PyObject *error = failed ? PyUnicode_FromFormat("poller_wait: %s", strerror(failed))
                             : Py_NewRef(Py_None);
    if (error == NULL) return NULL;
    return Py_BuildValue("{s:i,s:i,s:i,s:L,s:L,s:O,s:N}", "sessions", sessions, "outputs",
                         outputs, "inputs", inputs, "reads", reads, "wakeups", wakeups,
                         "running", running ? Py_True : Py_False, "error", error);
}

static PyMethodDef plane_methods[] = {
    {"add_session", (PyCFunction)plane_add_session, METH_VARARGS,
     "add_session(master_fd, ring, limit=-1) -> handle: drain the master into the ring."},
    {"remove_session", (PyCFunction)plane_remove_session, METH_O,
     "Stop reading the session, with its outputs and inputs; whether its master ended."},
    {"set_limit", (PyCFunction)plane_set_limit, METH_VARARGS,
     "set_limit(session, offset): read no further than offset (-1: no limit)."},
    {"set_relaxed", (PyCFunction)plane_set_relaxed, METH_VARARGS,
     "set_relaxed(session, bool): tell Python of its output later (no one there waits)."},
    {"add_output", (PyCFunction)plane_add_output, METH_VARARGS,
     "add_output(session, fd, written, hold) -> handle: write output from `written` on."},
    {"remove_output", (PyCFunction)plane_remove_output, METH_O,
     "Stop writing (or forget one the plane let go of); the offset written up to."},
    {"add_input", (PyCFunction)plane_add_input, METH_VARARGS,
     "add_input(session, fd, detach_key, direct) -> handle: copy keys to the master."},
    {"set_direct", (PyCFunction)plane_set_direct, METH_VARARGS,
     "set_direct(input, bool) -> whether it is so: write its keys to the master, or hand "
     "them to Python. Not back to the master while Python owes it keys (handed_on)."},
    {"handed_on", (PyCFunction)plane_handed_on, METH_VARARGS,
     "handed_on(input, n): Python handed on n bytes of the keys it was given (INPUT); the "
     "terminal is read again once it owes fewer than 64 KiB."},
    {"remove_input", (PyCFunction)plane_remove_input, METH_O, "Stop reading the terminal."},
    {"take", (PyCFunction)plane_take, METH_NOARGS,
     "The events since the last call: [(kind, handle, value, bytes | None)]."},
    {"freeze", (PyCFunction)plane_freeze, METH_O,
     "freeze(True): read no terminal from now on, until freeze(False)."},
    {"fileno", (PyCFunction)plane_fileno, METH_NOARGS, "Readable when there are events."},
    {"stats", (PyCFunction)plane_stats, METH_NOARGS,
     "Counts, whether the thread runs, and why it stopped if its loop failed: for status."},
    {"close", (PyCFunction)plane_close, METH_NOARGS, "Stop the thread and let go of all."},
    {NULL}};

PyTypeObject PlaneType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "supervisor.native._plane.Plane",
    .tp_basicsize = sizeof(PlaneObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The byte plane: a thread moving bytes between PTYs, rings and terminals.",
    .tp_new = plane_new,
    .tp_dealloc = (destructor)plane_dealloc,
    .tp_methods = plane_methods,
};
