/* The ring: see ring.h. Python sees the same interface as supervisor.daemon.session.ring. */
#include "ring.h"

#include <string.h>

#define MIN_ALLOC 4096

void lock_ring(RingObject *r) {
    if (pthread_mutex_trylock(&r->mu) == 0) return;
    if (PyGILState_Check()) {
        Py_BEGIN_ALLOW_THREADS
        pthread_mutex_lock(&r->mu);
        Py_END_ALLOW_THREADS
    } else {
        pthread_mutex_lock(&r->mu);
    }
}

int ring_spans(RingObject *r, int64_t from, int64_t to, struct iovec iov[2]) {
    if (to <= from || r->alloc == 0) return 0;
    int64_t pos = from % r->alloc;
    int64_t n = to - from;
    int64_t first = r->alloc - pos < n ? r->alloc - pos : n;
    iov[0].iov_base = r->buf + pos;
    iov[0].iov_len = (size_t)first;
    if (first == n) return 1;
    iov[1].iov_base = r->buf;
    iov[1].iov_len = (size_t)(n - first);
    return 2;
}

int ring_own(RingObject *r, void *owner) {
    lock_ring(r);
    int done = r->owner == NULL || owner == NULL;
    if (done) r->owner = owner;
    pthread_mutex_unlock(&r->mu);
    return done;
}

static void copy_out(RingObject *r, int64_t from, int64_t to, char *dst) {
    struct iovec iov[2];
    int k = ring_spans(r, from, to, iov);
    for (int i = 0; i < k; i++) {
        memcpy(dst, iov[i].iov_base, iov[i].iov_len);
        dst += iov[i].iov_len;
    }
}

int ring_reserve(RingObject *r, int64_t want) {
    int64_t need = r->size + want;
    if (need > r->capacity) need = r->capacity;
    if (need <= r->alloc) return 0;
    int64_t alloc = r->alloc ? r->alloc : MIN_ALLOC;
    while (alloc < need) alloc *= 2;
    if (alloc > r->capacity) alloc = r->capacity;
    char *buf = malloc((size_t)alloc);
    if (buf == NULL) return -1;
    int64_t start = ring_start(r);
    if (r->size) {
        char *tmp = malloc((size_t)r->size);
        if (tmp == NULL) {
            free(buf);
            return -1;
        }
        copy_out(r, start, r->end, tmp);
        int64_t pos = start % alloc, first = alloc - pos < r->size ? alloc - pos : r->size;
        memcpy(buf + pos, tmp, (size_t)first);
        memcpy(buf, tmp + first, (size_t)(r->size - first));
        free(tmp);
    }
    free(r->buf);
    r->buf = buf;
    r->alloc = alloc;
    return 0;
}

char *ring_tail(RingObject *r, int64_t want, int64_t *span) {
    int64_t pos = r->end % r->alloc;
    int64_t room = r->alloc - pos;
    *span = want < room ? want : room;
    return r->buf + pos;
}

void ring_commit(RingObject *r, int64_t n) {
    r->end += n;
    r->size = r->size + n > r->alloc ? r->alloc : r->size + n;
}

void ring_put(RingObject *r, const char *src, int64_t n) {
    while (n > 0) {
        int64_t span;
        char *dst = ring_tail(r, n, &span);
        memcpy(dst, src, (size_t)span);
        ring_commit(r, span);
        src += span;
        n -= span;
    }
}

static int ring_init(RingObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"capacity", "end", NULL};
    long long capacity, end = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "L|L", kwlist, &capacity, &end)) return -1;
    if (capacity < 1) {
        PyErr_SetString(PyExc_ValueError, "ring capacity must be positive");
        return -1;
    }
    if (end < 0) {
        PyErr_SetString(PyExc_ValueError, "ring end must not be negative");
        return -1;
    }
    if (self->initialised) {
        PyErr_SetString(PyExc_RuntimeError, "a ring is initialised once");
        return -1;
    }
    self->initialised = 1;
    self->capacity = capacity;
    self->end = end;
    return 0;
}

static PyObject *ring_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    RingObject *self = (RingObject *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    pthread_mutex_init(&self->mu, NULL);
    self->buf = NULL;
    self->alloc = self->size = self->end = 0;
    self->capacity = 1;
    self->initialised = 0;
    self->owner = NULL;
    return (PyObject *)self;
}

static void ring_dealloc(RingObject *self) {
    free(self->buf);
    pthread_mutex_destroy(&self->mu);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *ring_append(RingObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    lock_ring(self);
    int64_t offset = self->end;
    const char *src = view.buf;
    int64_t n = view.len;
    if (self->owner != NULL || n > INT64_MAX - self->end) {
        int owned = self->owner != NULL;
        pthread_mutex_unlock(&self->mu);
        PyBuffer_Release(&view);
        if (owned)
            PyErr_SetString(PyExc_RuntimeError, "the ring is filled by a lane of the byte plane");
        else
            PyErr_SetString(PyExc_OverflowError, "the ring's end would pass 2**63 - 1");
        return NULL;
    }
    if (n > self->capacity) {
        self->end += n - self->capacity;
        self->size = 0;
        src += n - self->capacity;
        n = self->capacity;
    }
    if (ring_reserve(self, n) < 0) {
        pthread_mutex_unlock(&self->mu);
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    ring_put(self, src, n);
    pthread_mutex_unlock(&self->mu);
    PyBuffer_Release(&view);
    return PyLong_FromLongLong(offset);
}

/* (start, bytes) from `since` on, at most `limit` bytes (< 0: no limit). */
static PyObject *read_from(RingObject *self, int64_t since, int64_t limit) {
    lock_ring(self);
    int64_t start = since > ring_start(self) ? since : ring_start(self);
    int64_t stop = self->end;
    if (limit >= 0 && limit < stop - start) stop = start + limit;
    if (start >= stop) {
        int64_t at = start < self->end ? start : self->end;
        pthread_mutex_unlock(&self->mu);
        return Py_BuildValue("(Ly#)", (long long)at, "", (Py_ssize_t)0);
    }
    PyObject *data = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(stop - start));
    if (data == NULL) {
        pthread_mutex_unlock(&self->mu);
        return NULL;
    }
    copy_out(self, start, stop, PyBytes_AS_STRING(data));
    pthread_mutex_unlock(&self->mu);
    PyObject *result = Py_BuildValue("(LN)", (long long)start, data);
    return result;
}

static PyObject *ring_read(RingObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"since", "limit", NULL};
    long long since;
    PyObject *limit_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "L|O", kwlist, &since, &limit_obj)) return NULL;
    long long limit = -1;
    if (limit_obj != Py_None) {
        limit = PyLong_AsLongLong(limit_obj);
        if (limit == -1 && PyErr_Occurred()) return NULL;
    }
    return read_from(self, since, limit);
}

static PyObject *ring_snapshot(RingObject *self, PyObject *unused) {
    return read_from(self, 0, -1); /* from the oldest kept, which is never below 0 */
}

static PyObject *ring_get_start(RingObject *self, void *closure) {
    lock_ring(self);
    int64_t start = ring_start(self);
    pthread_mutex_unlock(&self->mu);
    return PyLong_FromLongLong(start);
}

static PyObject *ring_get_end(RingObject *self, void *closure) {
    lock_ring(self);
    int64_t end = self->end;
    pthread_mutex_unlock(&self->mu);
    return PyLong_FromLongLong(end);
}

static PyObject *ring_get_capacity(RingObject *self, void *closure) {
    return PyLong_FromLongLong(self->capacity);
}

static PyObject *ring_get_allocated(RingObject *self, void *closure) {
    lock_ring(self);
    int64_t alloc = self->alloc;
    pthread_mutex_unlock(&self->mu);
    return PyLong_FromLongLong(alloc);
}

static PyMethodDef ring_methods[] = {
    {"append", (PyCFunction)ring_append, METH_O, "Add output; return the offset it starts at."},
    {"read", (PyCFunction)(void (*)(void))ring_read, METH_VARARGS | METH_KEYWORDS,
     "read(since, limit=None) -> (start, bytes)"},
    {"snapshot", (PyCFunction)ring_snapshot, METH_NOARGS, "Everything kept: (start, bytes)."},
    {NULL}};

static PyGetSetDef ring_getset[] = {
    {"start", (getter)ring_get_start, NULL, "The oldest offset kept.", NULL},
    {"end", (getter)ring_get_end, NULL, "The offset one past the newest byte.", NULL},
    {"capacity", (getter)ring_get_capacity, NULL, "How many bytes are kept at most.", NULL},
    {"allocated", (getter)ring_get_allocated, NULL, "Bytes of memory the ring holds.", NULL},
    {NULL}};

PyTypeObject RingType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "supervisor.native._plane.Ring",
    .tp_basicsize = sizeof(RingObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The last `capacity` bytes of a session's output, by absolute offset.",
    .tp_new = ring_new,
    .tp_init = (initproc)ring_init,
    .tp_dealloc = (destructor)ring_dealloc,
    .tp_methods = ring_methods,
    .tp_getset = ring_getset,
};
