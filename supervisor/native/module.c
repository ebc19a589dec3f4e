/* The module: the Ring and Plane types and the kinds of the plane's events. */
#include "plane.h"

#include <string.h>

static const char *last_esc(const char *from, size_t n) {
#ifdef __GLIBC__
    return memrchr(from, 0x1b, n);
#else
    while (n > 0)
        if (from[--n] == 0x1b) return from + n;
    return NULL;
#endif
}

/* rfind_osc(data, end): data.rfind(b"\x1b]", 0, end), at the speed of memrchr. */
static PyObject *rfind_osc(PyObject *self, PyObject *args) {
    Py_buffer b;
    Py_ssize_t end, at = -1;
    if (!PyArg_ParseTuple(args, "y*n", &b, &end)) return NULL;
    const char *base = b.buf, *hi = base + (end < 0 ? 0 : end > b.len ? b.len : end);
    while (hi - base >= 2) {
        const char *esc = last_esc(base, (size_t)(hi - base - 1));
        if (esc == NULL) break;
        if (esc[1] == ']') {
            at = esc - base;
            break;
        }
        hi = esc + 1;
    }
    PyBuffer_Release(&b);
    return PyLong_FromSsize_t(at);
}

static PyMethodDef functions[] = {
    {"rfind_osc", rfind_osc, METH_VARARGS,
     "rfind_osc(data, end): where the last OSC (ESC ]) before `end` starts, or -1."},
    {NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_plane", "pty-supervisor's byte path in compiled code.", -1,
    functions};

PyMODINIT_FUNC PyInit__plane(void) {
    if (PyType_Ready(&RingType) < 0 || PyType_Ready(&PlaneType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&RingType);
    Py_INCREF(&PlaneType);
    PyModule_AddObject(m, "Ring", (PyObject *)&RingType);
    PyModule_AddObject(m, "Plane", (PyObject *)&PlaneType);
    PyModule_AddIntConstant(m, "DATA", EV_DATA);
    PyModule_AddIntConstant(m, "EOF", EV_EOF);
    PyModule_AddIntConstant(m, "HELD", EV_HELD);
    PyModule_AddIntConstant(m, "FLOWING", EV_FLOWING);
    PyModule_AddIntConstant(m, "RELEASED", EV_RELEASED);
    PyModule_AddIntConstant(m, "INPUT", EV_INPUT);
    PyModule_AddIntConstant(m, "DETACH", EV_DETACH);
    PyModule_AddIntConstant(m, "HANGUP", EV_HANGUP);
    PyModule_AddIntConstant(m, "STOPPED", EV_STOPPED);
    return m;
}
