/* Keys: a terminal's keys copied to its session's master. The master's write side has one
   owner at a time. The lane writes the keys itself while the input is `direct`; once a
   write to the master falls short (or Python takes the write side, set_direct(False)), it
   hands the keys over as INPUT events, and Python writes them with its own, in order. It
   takes the write side back only when Python has handed on every key it was given
   (`owed` is 0): keys read later never overtake them. While Python owes more than
   KEYS_OWED, the lane leaves the terminal unread, and the paste waits there. */
#include "plane.h"
#include "poller.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* Watch the terminal for keys while Python owes fewer than KEYS_OWED of them. */
static int watch_keys(PlaneObject *p, int i) {
    In *I = &p->ins[i];
    int want = I->owed < KEYS_OWED ? WANT_IN : 0;
    return plane_watch(p, I->fd, TAG(T_IN, i, I->gen), &I->watching, want);
}

void plane_in_read(PlaneObject *p, int i) {
    In *I = &p->ins[i];
    Sess *S = &p->sess[I->sess];
    long long handle = (long long)TAG(T_IN, i, I->gen);
    char buf[4096];
    if (I->owed >= KEYS_OWED) return; /* told in the same wake-up as it stopped watching */
    ssize_t n = read(I->fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
        plane_emit(p, EV_HANGUP, handle, 0, NULL, 0);
        plane_drop_in(p, i);
        return;
    }
    int64_t cut = n, done = 0;
    int detach = 0;
    if (I->detach_key >= 0) {
        char *at = memchr(buf, I->detach_key, (size_t)n);
        if (at != NULL) {
            cut = at - buf;
            detach = 1;
        }
    }
    while (I->direct && done < cut) {
        ssize_t w = write(S->fd, buf + done, (size_t)(cut - done));
        if (w > 0)
            done += w;
        else if (!(w < 0 && errno == EINTR))
            break;
    }
    if (done < cut) I->direct = 0; /* Python writes the rest, in order */
    if (detach) {
        plane_emit(p, EV_DETACH, handle, 0, buf + done, cut - done);
        plane_drop_in(p, i);
    } else if (done < cut) {
        plane_emit(p, EV_INPUT, handle, 0, buf + done, cut - done);
        I->owed += cut - done;
        watch_keys(p, i);
    }
}

PyObject *plane_set_direct(PlaneObject *p, PyObject *args) {
    unsigned long long h;
    int direct;
    if (!PyArg_ParseTuple(args, "Kp", &h, &direct)) return NULL;
    lock_plane(p);
    int i = plane_find(h, T_IN, p->nins, p->ins, sizeof(In));
    int done = i >= 0 && (!direct || p->ins[i].owed == 0);
    if (done) p->ins[i].direct = direct;
    pthread_mutex_unlock(&p->mu);
    return PyBool_FromLong(done);
}

PyObject *plane_handed_on(PlaneObject *p, PyObject *args) {
    unsigned long long h;
    long long n;
    if (!PyArg_ParseTuple(args, "KL", &h, &n)) return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "handed_on: a count of keys must not be negative");
        return NULL;
    }
    lock_plane(p);
    int i = plane_find(h, T_IN, p->nins, p->ins, sizeof(In)), rc = 0;
    if (i >= 0) {
        In *I = &p->ins[i];
        I->owed = n < I->owed ? I->owed - n : 0;
        rc = watch_keys(p, i);
    }
    int err = errno;
    pthread_mutex_unlock(&p->mu);
    if (rc < 0) {
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyBool_FromLong(i >= 0);
}
