/* A lane's start and end: its pipes, poller and thread, and letting go of everything. */
#include "plane.h"
#include "poller.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static int nonblocking_pipe(int fds[2]) {
    if (pipe(fds) < 0) return -1;
    for (int k = 0; k < 2; k++) {
        fcntl(fds[k], F_SETFD, FD_CLOEXEC);
        fcntl(fds[k], F_SETFL, fcntl(fds[k], F_GETFL) | O_NONBLOCK);
    }
    return 0;
}

int plane_own_dup(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (!(flags & O_NONBLOCK)) {
        PyErr_Format(PyExc_ValueError,
                     "fd %d is blocking: the byte plane takes non-blocking ones only", fd);
        return -1;
    }
    int mine = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (mine < 0) PyErr_SetFromErrno(PyExc_OSError);
    return mine;
}

/* Plane(notify=-1): with `notify` (the write end of a non-blocking pipe, shared by several
   planes), the thread writes a byte there when it has events, and fileno() is -1. */
PyObject *plane_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *names[] = {"notify", NULL};
    int notify = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|i", names, &notify)) return NULL;
    PlaneObject *p = (PlaneObject *)type->tp_alloc(type, 0);
    if (p == NULL) return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->emu, NULL);
    p->poller = p->wake_r = p->wake_w = p->stop_r = p->stop_w = p->poke_r = p->poke_w = -1;
    int wake[2] = {-1, -1}, stop[2] = {-1, -1}, poke[2] = {-1, -1};
    int failed = (p->poller = poller_open()) < 0 ||
                 (notify < 0 ? nonblocking_pipe(wake) : (wake[1] = plane_own_dup(notify))) < 0 ||
                 nonblocking_pipe(stop) < 0 || nonblocking_pipe(poke) < 0;
    p->wake_r = wake[0], p->wake_w = wake[1], p->stop_r = stop[0], p->stop_w = stop[1];
    p->poke_r = poke[0], p->poke_w = poke[1];
    if (failed) {
        if (!PyErr_Occurred()) PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(p);
        return NULL;
    }
    int watching = -1, poking = -1;
    if (plane_watch(p, p->stop_r, TAG(T_STOP, 0, 0), &watching, 1) < 0 ||
        plane_watch(p, p->poke_r, TAG(T_POKE, 0, 0), &poking, 1) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(p);
        return NULL;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals stay the main thread's */
    p->running = 1;
    int rc = pthread_create(&p->thread, NULL, plane_thread, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        p->running = 0;
        errno = rc;
        PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(p);
        return NULL;
    }
    p->started = 1;
    return (PyObject *)p;
}

static void drop_everything(PlaneObject *p) {
    for (int o = 0; o < p->nouts; o++)
        if (p->outs[o].used) plane_drop_out(p, o);
    for (int i = 0; i < p->nins; i++)
        if (p->ins[i].used) plane_drop_in(p, i);
    for (int s = 0; s < p->nsess; s++) {
        Sess *S = &p->sess[s];
        if (!S->used) continue;
        plane_watch(p, S->fd, 0, &S->watching, 0);
        close(S->fd);
        ring_own(S->ring, NULL);
        S->used = 0;
    }
}

/* The rings after drop_everything, with the mutex let go: a ring's last reference may run
   any Python code as it goes. */
static void let_go_of_rings(PlaneObject *p) {
    for (int s = 0; s < p->nsess; s++) Py_CLEAR(p->sess[s].ring);
}

PyObject *plane_close(PlaneObject *p, PyObject *unused) {
    if (p->started) {
        char one = 1;
        (void)!write(p->stop_w, &one, 1); /* the pipe is never full: one byte, once */
        Py_BEGIN_ALLOW_THREADS
        pthread_join(p->thread, NULL);
        Py_END_ALLOW_THREADS
        p->started = 0;
        __atomic_store_n(&p->running, 0, __ATOMIC_RELEASE);
    }
    if (!p->closed) {
        lock_plane(p);
        p->closed = 1;
        drop_everything(p);
        pthread_mutex_unlock(&p->mu);
        let_go_of_rings(p);
    }
    Py_RETURN_NONE;
}

void plane_dealloc(PlaneObject *p) {
    PyObject *r = plane_close(p, NULL);
    Py_XDECREF(r);
    for (int k = 0; k < p->nevents; k++) free(p->events[k].raw);
    free(p->events);
    free(p->sess);
    free(p->outs);
    free(p->ins);
    int fds[] = {p->poller, p->wake_r, p->wake_w, p->stop_r, p->stop_w, p->poke_r, p->poke_w};
    for (int k = 0; k < 7; k++)
        if (fds[k] >= 0) close(fds[k]);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->emu);
    Py_TYPE(p)->tp_free((PyObject *)p);
}
