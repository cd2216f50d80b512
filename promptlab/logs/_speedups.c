/* promptlab.logs._speedups: the log hot path's two slowest steps, in C.
 *
 * Optional. Each function has a pure-Python twin that gives the same answers (tests check
 * that), so a build without a C compiler only runs slower.
 *
 * maybe_secret(line) -> bool
 *   Every built-in redaction rule (promptlab/logs/redact.py) needs one of a few literal
 *   anchors in the line: "sk-", "AKIA"/"ASIA", "-----BEGIN ", "ccess" (secret_access_key,
 *   SecretAccessKey) or "earer" (Bearer). When none is present no rule can match and the
 *   line is written as it is. Python's regex engine needs one pass per rule (about 0.5 us
 *   each for a 1.5 KB line); memchr and strstr find all anchors in about 0.15 us.
 *
 * build(fields, plan, entry_id, kind, now_ns, start_ns, rates) -> dict | None
 *   The entry for `fields` when every value already has its canonical type: the work of the
 *   builder that promptlab/logs/entry.py generates for a set of field names (validation,
 *   schema order, cost, timestamp), without the interpreter. Returns None for anything
 *   else (a value to convert, a field to report, a model not priced yet): the Python
 *   builder then does the job and words the error.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>
#include <time.h>

/* -- maybe_secret ------------------------------------------------------------------------ */

static int
has_anchor(const char *s, Py_ssize_t n)
{
    const char *end = s + n;
    const char *p;

    /* "sk-" (API keys) and "-----BEGIN " (private keys), from each '-'. */
    for (p = s; p < end && (p = memchr(p, '-', (size_t)(end - p))) != NULL; p++) {
        if (p - s >= 2 && p[-2] == 's' && p[-1] == 'k')
            return 1;
        if (end - p >= 11 && memcmp(p, "-----BEGIN ", 11) == 0)
            return 1;
    }
    /* "AKIA" / "ASIA" (AWS access key ids), from each 'I'. */
    for (p = s; p < end && (p = memchr(p, 'I', (size_t)(end - p))) != NULL; p++) {
        if (p - s >= 2 && end - p >= 2 && p[-2] == 'A' && (p[-1] == 'K' || p[-1] == 'S')
                && p[1] == 'A')
            return 1;
    }
    /* "ccess" (secret_access_key, SecretAccessKey) and "earer" (Bearer tokens). glibc's
       strstr is vectorised and about six times faster than its memmem on short needles;
       it needs text without NUL bytes, which an encoded JSON line is (NUL is escaped). */
    if (memchr(s, '\0', (size_t)n) == NULL)
        return strstr(s, "ccess") != NULL || strstr(s, "earer") != NULL;
    return memmem(s, (size_t)n, "ccess", 5) != NULL || memmem(s, (size_t)n, "earer", 5) != NULL;
}

static PyObject *
maybe_secret(PyObject *module, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "maybe_secret() takes bytes, not %.100s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    if (has_anchor(PyBytes_AS_STRING(arg), PyBytes_GET_SIZE(arg)))
        Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

/* -- build ------------------------------------------------------------------------------- */

#define MAX_FIELDS 64

static PyObject *s_id, *s_kind, *s_timestamp, *s_cost_usd, *round_fn, *ten;

/* An int >= 0 that fits in 64 bits (bool is not an int here). 1 yes, 0 no, -1 error. */
static int
small_count(PyObject *v, long long *out)
{
    int overflow;
    long long x;

    if (!PyLong_CheckExact(v))
        return 0;
    x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred())
        return -1;
    if (overflow || x < 0)
        return 0;
    *out = x;
    return 1;
}

/* An exact int (not bool) >= 0, of any size. */
static int
nonnegative_int(PyObject *v)
{
    int overflow;
    long long x;

    if (!PyLong_CheckExact(v))
        return 0;
    x = PyLong_AsLongLongAndOverflow(v, &overflow);  /* cannot fail for an exact int */
    return overflow > 0 || (overflow == 0 && x >= 0);
}

/* Does `v` have the canonical type of its field? (The generated Python builder's test.) */
static int
canonical(char code, PyObject *v)
{
    switch (code) {
    case 's':  /* text, non-empty */
        return PyUnicode_CheckExact(v) && PyUnicode_GET_LENGTH(v) > 0;
    case 'S':  /* text, empty kept */
        return PyUnicode_CheckExact(v);
    case 'q':  /* status */
        return PyUnicode_CheckExact(v) && (PyUnicode_CompareWithASCIIString(v, "ok") == 0
                                           || PyUnicode_CompareWithASCIIString(v, "error") == 0);
    case 'i':  /* int >= 0 */
        return nonnegative_int(v);
    case 'n':  /* int >= 0 or finite float >= 0 */
        if (PyFloat_CheckExact(v)) {
            double d = PyFloat_AS_DOUBLE(v);
            return isfinite(d) && d >= 0;
        }
        return nonnegative_int(v);
    case 'b':
        return PyBool_Check(v);
    case 't': {  /* non-empty list of str */
        Py_ssize_t i, n;
        if (!PyList_CheckExact(v) || (n = PyList_GET_SIZE(v)) == 0)
            return 0;
        for (i = 0; i < n; i++)
            if (!PyUnicode_Check(PyList_GET_ITEM(v, i)))
                return 0;
        return 1;
    }
    case 'o':  /* non-empty dict */
        return PyDict_CheckExact(v) && PyDict_GET_SIZE(v) > 0;
    case 'd':  /* id: str or int */
        return PyUnicode_CheckExact(v) || PyLong_CheckExact(v);
    default:
        return 0;
    }
}

/* "YYYY-MM-DDTHH:MM:SS." for the last second seen (the GIL serialises callers). */
static long long cached_second = LLONG_MIN;
static char cached_prefix[32];

/* UTC ISO 8601 with microseconds, like entry.format_timestamp; NULL (no error set) for
   years outside 1000-9999, which the Python formatter handles. */
static PyObject *
timestamp(long long ns)
{
    long long sec = ns / 1000000000LL, rem = ns % 1000000000LL;
    char text[40];

    if (rem < 0) {  /* floor division, like Python's divmod */
        rem += 1000000000LL;
        sec -= 1;
    }
    if (sec != cached_second) {
        struct tm tm;
        time_t t = (time_t)sec;
        if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 1000 || tm.tm_year + 1900 > 9999)
            return NULL;
        snprintf(cached_prefix, sizeof cached_prefix, "%04d-%02d-%02dT%02d:%02d:%02d.",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_second = sec;
    }
    memcpy(text, cached_prefix, 20);
    {
        long us = (long)(rem / 1000);
        int i;
        for (i = 25; i >= 20; i--) {
            text[i] = (char)('0' + us % 10);
            us /= 10;
        }
    }
    text[26] = 'Z';
    return PyUnicode_FromStringAndSize(text, 27);
}

/* Price.cost, in the same floating-point steps, rounded with Python's round(x, 10). */
static PyObject *
cost(PyObject *rate, long long it, long long out, long long ct)
{
    double r_in, r_out, r_cached, total;
    PyObject *x, *rounded;

    if (!PyTuple_CheckExact(rate) || PyTuple_GET_SIZE(rate) != 3)
        return NULL;
    r_in = PyFloat_AsDouble(PyTuple_GET_ITEM(rate, 0));
    r_out = PyFloat_AsDouble(PyTuple_GET_ITEM(rate, 1));
    r_cached = PyFloat_AsDouble(PyTuple_GET_ITEM(rate, 2));
    if (PyErr_Occurred())
        return NULL;
    if (ct) {
        if (ct > it)
            ct = it;
        total = (double)(it - ct) * r_in + (double)ct * r_cached + (double)out * r_out;
    }
    else {
        total = (double)it * r_in + (double)out * r_out;
    }
    total /= 1000000.0;
    /* round(total, 10) without its decimal conversion: y = total * 1e10 is within half an
       ulp of the exact product, so unless its fraction is that close to one half, the
       nearest integer to y is the exact rounding, and r / 1e10 is the double nearest to
       r * 10**-10, which is what round() returns. Near a tie, Python's round decides. */
    {
        double y = total * 1e10, fl = floor(y), frac = y - fl;
        if (fabs(y) < 4e15 && fabs(frac - 0.5) > fabs(y) * 4.5e-16 + 1e-9)
            return PyFloat_FromDouble((frac < 0.5 ? fl : fl + 1.0) / 1e10);
    }
    x = PyFloat_FromDouble(total);
    if (x == NULL)
        return NULL;
    rounded = PyObject_CallFunctionObjArgs(round_fn, x, ten, NULL);
    Py_DECREF(x);
    return rounded;
}

/* plan = (template, codes, model_i, in_i, out_i, cached_i, latency_i), indices into the
   fields in their order (-1: absent); the template has a cost_usd slot iff model_i >= 0. */
static PyObject *
build(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *fields, *plan, *entry_id, *kind, *now_obj, *start_obj, *rates;
    PyObject *template, *codes, *vals[MAX_FIELDS], *keys[MAX_FIELDS];
    PyObject *key, *value, *e = NULL, *item;
    Py_ssize_t pos = 0, n, i = 0;
    const char *code;
    long idx[5];
    long long now_ns, start_ns;
    int overflow;

    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "build() takes 7 arguments");
        return NULL;
    }
    fields = args[0]; plan = args[1]; entry_id = args[2]; kind = args[3];
    now_obj = args[4]; start_obj = args[5]; rates = args[6];
    if (!PyDict_CheckExact(fields) || !PyTuple_CheckExact(plan) || PyTuple_GET_SIZE(plan) != 7) {
        PyErr_SetString(PyExc_TypeError, "build() needs a dict of fields and a 7-tuple plan");
        return NULL;
    }
    template = PyTuple_GET_ITEM(plan, 0);
    codes = PyTuple_GET_ITEM(plan, 1);
    n = PyDict_GET_SIZE(fields);
    if (!PyDict_CheckExact(template) || !PyBytes_CheckExact(codes)
            || PyBytes_GET_SIZE(codes) != n || n > MAX_FIELDS) {
        PyErr_SetString(PyExc_TypeError, "build(): the plan does not fit these fields");
        return NULL;
    }
    for (i = 0; i < 5; i++) {
        idx[i] = PyLong_AsLong(PyTuple_GET_ITEM(plan, 2 + i));
        if (idx[i] == -1 && PyErr_Occurred())
            return NULL;
        if (idx[i] >= n) {
            PyErr_SetString(PyExc_ValueError, "build(): a plan index is out of range");
            return NULL;
        }
    }
    now_ns = PyLong_AsLongLongAndOverflow(now_obj, &overflow);
    if ((now_ns == -1 && PyErr_Occurred()) || overflow)
        goto fallback;

    /* Validate, in the fields' own order. */
    code = PyBytes_AS_STRING(codes);
    i = 0;
    while (PyDict_Next(fields, &pos, &key, &value)) {
        if (i >= n || !canonical(code[i], value)) {
            if (PyErr_Occurred())
                return NULL;
            goto fallback;
        }
        keys[i] = key;
        vals[i++] = value;
    }

    /* The start of the call: given, or now minus the latency. */
    if (start_obj != Py_None) {
        start_ns = PyLong_AsLongLongAndOverflow(start_obj, &overflow);
        if ((start_ns == -1 && PyErr_Occurred()) || overflow)
            goto fallback;
    }
    else if (idx[4] >= 0) {
        double latency = PyLong_CheckExact(vals[idx[4]]) ? PyLong_AsDouble(vals[idx[4]])
                                                          : PyFloat_AS_DOUBLE(vals[idx[4]]);
        double delta;
        if (latency == -1.0 && PyErr_Occurred())
            goto fallback;
        delta = latency * 1e6;
        if (!(delta < 9e18))
            goto fallback;
        start_ns = now_ns - (long long)delta;  /* int() truncates toward zero, like this */
    }
    else {
        start_ns = now_ns;
    }

    e = PyDict_Copy(template);
    if (e == NULL || PyDict_Update(e, fields) < 0)
        goto error;
    if (PyDict_SetItem(e, s_id, entry_id) < 0 || PyDict_SetItem(e, s_kind, kind) < 0)
        goto error;
    for (i = 0; i < n; i++) {
        if (code[i] == 't') {  /* the entry keeps its own list */
            PyObject *copy = PyList_GetSlice(vals[i], 0, PyList_GET_SIZE(vals[i]));
            if (copy == NULL || PyDict_SetItem(e, keys[i], copy) < 0) {
                Py_XDECREF(copy);
                goto error;
            }
            Py_DECREF(copy);
        }
    }
    if (idx[0] >= 0) {  /* a cost_usd slot: fill it, or remove it when there is no price */
        PyObject *rate = NULL;
        if (rates != Py_None) {
            if (!PyDict_CheckExact(rates)) {
                PyErr_SetString(PyExc_TypeError, "build(): rates must be a dict or None");
                goto error;
            }
            rate = PyDict_GetItemWithError(rates, vals[idx[0]]);
            if (rate == NULL) {
                if (PyErr_Occurred())
                    goto error;
                Py_DECREF(e);
                goto fallback;  /* a model not looked up yet: Python prices it, once */
            }
        }
        if (rate == NULL || rate == Py_None) {
            if (PyDict_DelItem(e, s_cost_usd) < 0)
                goto error;
        }
        else {
            long long count[3] = {0, 0, 0};
            int k;
            for (k = 0; k < 3; k++) {
                if (idx[1 + k] >= 0) {
                    int ok = small_count(vals[idx[1 + k]], &count[k]);
                    if (ok < 0)
                        goto error;
                    if (!ok) {
                        Py_DECREF(e);
                        goto fallback;  /* a count beyond 64 bits */
                    }
                }
            }
            item = cost(rate, count[0], count[1], count[2]);
            if (item == NULL || PyDict_SetItem(e, s_cost_usd, item) < 0) {
                Py_XDECREF(item);
                goto error;
            }
            Py_DECREF(item);
        }
    }
    item = timestamp(start_ns);
    if (item == NULL) {
        if (PyErr_Occurred())
            goto error;
        Py_DECREF(e);
        goto fallback;
    }
    if (PyDict_SetItem(e, s_timestamp, item) < 0) {
        Py_DECREF(item);
        goto error;
    }
    Py_DECREF(item);
    return e;

fallback:
    Py_RETURN_NONE;
error:
    Py_XDECREF(e);
    return NULL;
}

static PyMethodDef speedup_methods[] = {
    {"maybe_secret", maybe_secret, METH_O,
     "maybe_secret(line: bytes) -> bool\n\n"
     "False when no built-in redaction rule can match `line` (none of their anchors is "
     "in it)."},
    {"build", (PyCFunction)(void (*)(void))build, METH_FASTCALL,
     "build(fields, plan, entry_id, kind, now_ns, start_ns, rates) -> dict | None\n\n"
     "The entry for `fields` when every value has its canonical type, else None."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "_speedups", "The log hot path's two slowest steps, in C.", 0,
    speedup_methods, NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *builtins;

    s_id = PyUnicode_InternFromString("id");
    s_kind = PyUnicode_InternFromString("kind");
    s_timestamp = PyUnicode_InternFromString("timestamp");
    s_cost_usd = PyUnicode_InternFromString("cost_usd");
    ten = PyLong_FromLong(10);
    builtins = PyImport_ImportModule("builtins");
    round_fn = builtins ? PyObject_GetAttrString(builtins, "round") : NULL;
    Py_XDECREF(builtins);
    if (!s_id || !s_kind || !s_timestamp || !s_cost_usd || !ten || !round_fn)
        return NULL;
    return PyModule_Create(&speedups_module);
}
