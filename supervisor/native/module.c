/* The module: the Ring and Plane types and the kinds of the plane's events. */
#include "plane.h"

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_plane", "pty-supervisor's byte path in compiled code.", -1, NULL};

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
    return m;
}
