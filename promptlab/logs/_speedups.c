/* promptlab.logs._speedups: Logger.log's common case, in C.
 *
 * Optional. Everything here has a pure-Python twin that gives the same answers (tests
 * check that), so a build without a C compiler only runs slower. The GIL serialises every
 * function here; the module keeps its state (id generator, caches) in statics.
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
 *
 * new_id(ms=None) -> str, seed(random_bytes)
 *   entry.new_id's ULIDs: the same algorithm, its random parts from a generator seeded with
 *   OS entropy at import and in every forked child.
 *
 * FastLog(...)
 *   What Logger installs as `logger.log`: build, encode, pre-check and append in one call,
 *   handing every call it does not cover to the Python method before anything is written.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

/* -- maybe_secret ------------------------------------------------------------------------ */

static int
has_anchor_in(const char *s, Py_ssize_t n, int nul_free)
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
    if (nul_free || memchr(s, '\0', (size_t)n) == NULL)
        return strstr(s, "ccess") != NULL || strstr(s, "earer") != NULL;
    return memmem(s, (size_t)n, "ccess", 5) != NULL || memmem(s, (size_t)n, "earer", 5) != NULL;
}

/* Any bytes (NUL included; a PyBytes buffer always ends in a NUL, which strstr needs). */
static int
has_anchor(const char *s, Py_ssize_t n)
{
    return has_anchor_in(s, n, 0);
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
typedef struct {
    PyObject *template;
    const char *code;
    long idx[5];
} Plan;

static int
read_plan(PyObject *plan, Py_ssize_t n, Plan *out)
{
    PyObject *codes;
    int i;

    if (!PyTuple_CheckExact(plan) || PyTuple_GET_SIZE(plan) != 7) {
        PyErr_SetString(PyExc_TypeError, "build() needs a 7-tuple plan");
        return -1;
    }
    out->template = PyTuple_GET_ITEM(plan, 0);
    codes = PyTuple_GET_ITEM(plan, 1);
    if (!PyDict_CheckExact(out->template) || !PyBytes_CheckExact(codes)
            || PyBytes_GET_SIZE(codes) != n || n > MAX_FIELDS) {
        PyErr_SetString(PyExc_TypeError, "build(): the plan does not fit these fields");
        return -1;
    }
    out->code = PyBytes_AS_STRING(codes);
    for (i = 0; i < 5; i++) {
        out->idx[i] = PyLong_AsLong(PyTuple_GET_ITEM(plan, 2 + i));
        if (out->idx[i] == -1 && PyErr_Occurred())
            return -1;
        if (out->idx[i] >= n) {
            PyErr_SetString(PyExc_ValueError, "build(): a plan index is out of range");
            return -1;
        }
    }
    return 0;
}

/* The entry for the n fields keys[i] = vals[i] (already checked against plan->code).
   Returns a new dict; NULL with an error set; or NULL with no error: "fall back". */
static PyObject *
build_core(PyObject *const *keys, PyObject *const *vals, Py_ssize_t n, const Plan *plan,
           PyObject *entry_id, PyObject *kind, long long now_ns, PyObject *start_obj,
           PyObject *rates)
{
    const long *idx = plan->idx;
    long long start_ns;
    PyObject *e, *item;
    Py_ssize_t i;
    int overflow;

    /* The start of the call: given, or now minus the latency. */
    if (start_obj != NULL && start_obj != Py_None) {
        start_ns = PyLong_AsLongLongAndOverflow(start_obj, &overflow);
        if (start_ns == -1 && PyErr_Occurred())
            return NULL;
        if (overflow)
            return NULL;  /* fall back */
    }
    else if (idx[4] >= 0) {
        double latency, delta;
        if (PyFloat_CheckExact(vals[idx[4]])) {
            latency = PyFloat_AS_DOUBLE(vals[idx[4]]);
        }
        else {
            latency = PyLong_AsDouble(vals[idx[4]]);
            if (latency == -1.0 && PyErr_Occurred()) {  /* an int too large for a float */
                PyErr_Clear();
                return NULL;
            }
        }
        delta = latency * 1e6;
        if (!(delta < 9e18))
            return NULL;  /* fall back: Python reports the time as out of range */
        start_ns = now_ns - (long long)delta;  /* int() truncates toward zero, like this */
    }
    else {
        start_ns = now_ns;
    }

    e = PyDict_Copy(plan->template);
    if (e == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        if (plan->code[i] == 't') {  /* the entry keeps its own list */
            PyObject *copy = PyList_GetSlice(vals[i], 0, PyList_GET_SIZE(vals[i]));
            if (copy == NULL || PyDict_SetItem(e, keys[i], copy) < 0) {
                Py_XDECREF(copy);
                goto error;
            }
            Py_DECREF(copy);
        }
        else if (PyDict_SetItem(e, keys[i], vals[i]) < 0) {
            goto error;
        }
    }
    if (PyDict_SetItem(e, s_id, entry_id) < 0 || PyDict_SetItem(e, s_kind, kind) < 0)
        goto error;
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
                    if (!ok)
                        goto fallback;  /* a count beyond 64 bits */
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
        goto fallback;
    }
    if (PyDict_SetItem(e, s_timestamp, item) < 0) {
        Py_DECREF(item);
        goto error;
    }
    Py_DECREF(item);
    return e;

fallback:
error:
    Py_DECREF(e);
    return NULL;
}

static PyObject *
build(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *fields, *vals[MAX_FIELDS], *keys[MAX_FIELDS], *key, *value, *e;
    Py_ssize_t pos = 0, n, i = 0;
    long long now_ns;
    int overflow;
    Plan plan;

    (void)module;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "build() takes 7 arguments");
        return NULL;
    }
    fields = args[0];
    if (!PyDict_CheckExact(fields)) {
        PyErr_SetString(PyExc_TypeError, "build() needs a dict of fields");
        return NULL;
    }
    n = PyDict_GET_SIZE(fields);
    if (read_plan(args[1], n, &plan) < 0)
        return NULL;
    now_ns = PyLong_AsLongLongAndOverflow(args[4], &overflow);
    if (now_ns == -1 && PyErr_Occurred())
        return NULL;
    if (overflow)
        Py_RETURN_NONE;
    while (PyDict_Next(fields, &pos, &key, &value)) {
        if (i >= n || !canonical(plan.code[i], value))
            Py_RETURN_NONE;
        keys[i] = key;
        vals[i++] = value;
    }
    e = build_core(keys, vals, n, &plan, args[2], args[3], now_ns, args[5], args[6]);
    if (e == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return e;
}

/* -- ULIDs ------------------------------------------------------------------------------- */

/* The state of promptlab.logs.entry.new_id, in C: monotonic within a process (same
   millisecond: the previous random part + 1), random parts from a generator seeded with
   OS entropy by `seed()` (at import and in every forked child). The GIL serialises
   callers. */
static long long ulid_last_ms = -1;
static uint64_t ulid_hi, ulid_lo;  /* the 80-bit random part: 16 + 64 bits */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static char ulid_text[26];
static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static uint64_t
splitmix64(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void
ulid_encode(long long ms)
{
    int i;
    uint64_t t = (uint64_t)ms;
    for (i = 9; i >= 0; i--) {
        ulid_text[i] = crockford[t & 31];
        t >>= 5;
    }
    /* 80 random bits = 16 characters: the low 60 bits of lo, then hi:lo's top 20 bits. */
    {
        uint64_t lo = ulid_lo, top = (ulid_hi << 4) | (ulid_lo >> 60);  /* 20 bits */
        for (i = 25; i >= 14; i--) {
            ulid_text[i] = crockford[lo & 31];
            lo >>= 5;
        }
        for (i = 13; i >= 10; i--) {
            ulid_text[i] = crockford[top & 31];
            top >>= 5;
        }
    }
}

static PyObject *
ulid_new(long long ms)
{
    if (ms <= ulid_last_ms) {
        ms = ulid_last_ms;
        if (++ulid_lo == 0 && (++ulid_hi & 0xFFFF) == 0) {  /* 2**80 ids in one millisecond */
            ms += 1;
            ulid_hi = splitmix64() & 0xFFFF;
            ulid_lo = splitmix64();
        }
        ulid_hi &= 0xFFFF;
    }
    else {
        ulid_hi = splitmix64() & 0xFFFF;
        ulid_lo = splitmix64();
    }
    ulid_last_ms = ms;
    ulid_encode(ms);
    return PyUnicode_FromStringAndSize(ulid_text, 26);
}

static PyObject *
new_id(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long long ms;
    int overflow;

    (void)module;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "new_id() takes at most 1 argument");
        return NULL;
    }
    if (nargs == 0 || args[0] == Py_None) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    else {
        ms = PyLong_AsLongLongAndOverflow(args[0], &overflow);
        if (ms == -1 && PyErr_Occurred())
            return NULL;
        if (overflow || ms < 0 || ms >= (1LL << 48)) {
            PyErr_SetString(PyExc_ValueError, "new_id(): the time is outside 48-bit milliseconds");
            return NULL;
        }
    }
    return ulid_new(ms);
}

static PyObject *
seed(PyObject *module, PyObject *arg)
{
    (void)module;
    if (!PyBytes_Check(arg) || PyBytes_GET_SIZE(arg) < 8) {
        PyErr_SetString(PyExc_TypeError, "seed() takes at least 8 random bytes");
        return NULL;
    }
    memcpy(&rng_state, PyBytes_AS_STRING(arg), 8);
    ulid_last_ms = -1;
    Py_RETURN_NONE;
}

/* -- FastLog: Logger.log's common case --------------------------------------------------- */

/* logger.log(**fields) when every value has its canonical type, no span is open and the
   day's file is open and due for no check: the entry is built, encoded, pre-checked and
   appended without the interpreter. Anything else goes to `slow` (the Python method),
   before anything is written. The GIL is held from start to end, so no Python thread can
   take the writer's lock meanwhile; when one holds it, the write goes through Python. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *slow;        /* Logger.log, the Python method, bound */
    PyObject *write_line;  /* Logger._write_line(line, day, now_ns, written) */
    PyObject *writer;      /* LogWriter */
    PyObject *plans;       /* keys tuple -> C plan (entry._c_plans) */
    PyObject *rates;       /* model -> (input, output, cached) or None; or None */
    PyObject *span_var;    /* the ContextVar of the open span */
    PyObject *time_mod;    /* the time module: time_ns is looked up per call */
    PyObject *redacted;    /* redact.redact_rules */
    PyObject *decode;      /* orjson.loads */
    PyObject *dumps;       /* orjson.dumps */
    PyObject *option;      /* OPT_APPEND_NEWLINE */
    PyObject *day;         /* the last day written to, "YYYY-MM-DD" */
    PyObject *last_names;  /* the last keyword names seen ... */
    PyObject *last_cplan;  /* ... their plan tuple ... */
    Plan last_plan;        /* ... read (it points into last_cplan) */
    int redact;
    int fsync;             /* writer.fsync: every write goes through Python */
    int check_files;       /* writer.check_interval >= 0 */
    Py_ssize_t pipe_buf;
} FastLog;

static PyObject *s_files, *s_lock, *s_locked, *s_fd, *s_due, *s_checked, *s_time_ns, *real_time_ns,
                *s_llm, *s_option_kw;

static long long
attr_ll(PyObject *obj, PyObject *name, int *ok)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    long long x;
    int overflow;
    if (v == NULL) {
        *ok = 0;
        return 0;
    }
    x = PyLong_AsLongLongAndOverflow(v, &overflow);
    Py_DECREF(v);
    *ok = !(x == -1 && PyErr_Occurred()) && !overflow;
    if (!*ok && !PyErr_Occurred())
        PyErr_SetString(PyExc_OverflowError, "a writer handle field is out of range");
    return x;
}

/* Append `line` to `day`'s file. 0 done, -1 error. */
static int
append(FastLog *self, PyObject *line, PyObject *day, long long now_ns)
{
    PyObject *files = NULL, *lock = NULL, *flag = NULL, *handle, *res;
    long long fd = -1, due, checked;
    Py_ssize_t size = PyBytes_GET_SIZE(line), written = 0;
    int ok, direct = 0;

    files = PyObject_GetAttr(self->writer, s_files);
    lock = files ? PyObject_GetAttr(self->writer, s_lock) : NULL;
    flag = lock ? PyObject_CallMethodNoArgs(lock, s_locked) : NULL;
    if (flag == NULL)
        goto error;
    if (flag == Py_False && size <= self->pipe_buf && !self->fsync && PyDict_CheckExact(files)) {
        handle = PyDict_GetItemWithError(files, day);
        if (handle == NULL && PyErr_Occurred())
            goto error;
        if (handle != NULL) {
            fd = attr_ll(handle, s_fd, &ok);
            if (!ok)
                goto error;
            due = attr_ll(handle, s_due, &ok);
            if (!ok)
                goto error;
            checked = attr_ll(handle, s_checked, &ok);
            if (!ok)
                goto error;
            direct = !self->check_files || (now_ns < due && now_ns >= checked);
        }
    }
    if (direct) {
        const char *buf = PyBytes_AS_STRING(line);
        while (written < size) {
            ssize_t w = write((int)fd, buf + written, (size_t)(size - written));
            if (w < 0) {
                if (errno == EINTR) {
                    if (PyErr_CheckSignals() < 0)
                        goto error;
                    continue;
                }
                break;  /* Python retries and reports the error */
            }
            written += w;
        }
        if (written == size)
            goto done;
    }
    res = PyObject_CallFunction(self->write_line, "OOLn", line, day, now_ns, written);
    if (res == NULL)
        goto error;
    Py_DECREF(res);
done:
    Py_XDECREF(files);
    Py_XDECREF(lock);
    Py_XDECREF(flag);
    return 0;
error:
    Py_XDECREF(files);
    Py_XDECREF(lock);
    Py_XDECREF(flag);
    return -1;
}

/* Build, encode, pre-check and append the entry of the n fields keys[i] = vals[i], which
   passed plan's checks. entry_id NULL: a new one; start_obj NULL: now minus the latency.
   Returns the entry; NULL with an error set; or NULL with none: hand the call to Python
   (nothing was written). */
static PyObject *
emit(FastLog *self, PyObject *const *keys, PyObject *const *vals, Py_ssize_t n,
     const Plan *plan, PyObject *entry_id, PyObject *start_obj, long long now_ns)
{
    PyObject *e = NULL, *line = NULL, *ts, *day = NULL;

    if (now_ns < 0 || now_ns / 1000000 >= (1LL << 48))
        return NULL;
    if (entry_id == NULL) {
        entry_id = ulid_new(now_ns / 1000000);
        if (entry_id == NULL)
            return NULL;
    }
    else {
        Py_INCREF(entry_id);
    }
    e = build_core(keys, vals, n, plan, entry_id, s_llm, now_ns, start_obj, self->rates);
    Py_DECREF(entry_id);
    if (e == NULL)
        return NULL;
    {
        PyObject *kwvals[2] = {e, self->option};
        line = PyObject_Vectorcall(self->dumps, kwvals, 1, s_option_kw);
    }
    if (line == NULL) {
        Py_DECREF(e);
        if (!PyErr_ExceptionMatches(PyExc_TypeError))
            return NULL;
        PyErr_Clear();  /* not plain JSON: Python converts what it can */
        return NULL;
    }
    if (!PyBytes_CheckExact(line)) {
        PyErr_SetString(PyExc_TypeError, "dumps() did not return bytes");
        goto error;
    }
    /* orjson escapes NUL in JSON text, so its lines hold none. */
    if (self->redact && has_anchor_in(PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line), 1)) {
        PyObject *clean = PyObject_CallOneArg(self->redacted, line);
        if (clean == NULL)
            goto error;
        if (clean != line) {  /* a secret: the entry is what the line now says */
            PyObject *decoded = PyObject_CallOneArg(self->decode, clean);
            if (decoded == NULL) {
                Py_DECREF(clean);
                goto error;
            }
            Py_SETREF(e, decoded);
        }
        Py_SETREF(line, clean);
    }
    ts = PyDict_GetItemWithError(e, s_timestamp);
    if (ts == NULL || !PyUnicode_Check(ts)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "entry without a timestamp");
        goto error;
    }
    /* The day: the previous call's string while it is the same (its hash is cached). */
    if (self->day != NULL && PyUnicode_GET_LENGTH(ts) >= 10
            && PyUnicode_Tailmatch(ts, self->day, 0, 10, -1) == 1) {
        day = self->day;
        Py_INCREF(day);
    }
    else {
        day = PyUnicode_Substring(ts, 0, 10);
        if (day == NULL)
            goto error;
        Py_INCREF(day);
        Py_XSETREF(self->day, day);
    }
    if (append(self, line, day, now_ns) < 0)
        goto error;
    Py_DECREF(day);
    Py_DECREF(line);
    return e;

error:
    Py_XDECREF(day);
    Py_XDECREF(line);
    Py_XDECREF(e);
    if (!PyErr_Occurred())  /* never "hand over" once something may have been written */
        PyErr_SetString(PyExc_RuntimeError, "the log entry could not be written");
    return NULL;
}

static PyObject *
fastlog_call(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    FastLog *self = (FastLog *)op;
    Py_ssize_t n, i;
    PyObject *cplan, *span = NULL, *now_obj, *tn, *e;
    long long now_ns;
    int overflow;
    Plan plan;

    if (PyVectorcall_NARGS(nargsf) != 0 || kwnames == NULL)
        goto slow;
    n = PyTuple_GET_SIZE(kwnames);
    if (kwnames == self->last_names) {
        /* The same call site again: its keyword names are one constant tuple. */
        plan = self->last_plan;
    }
    else {
        cplan = PyDict_GetItemWithError(self->plans, kwnames);
        if (cplan == NULL) {
            if (PyErr_Occurred())
                return NULL;
            goto slow;  /* a new set of fields: Python compiles its plan */
        }
        if (cplan == Py_None || read_plan(cplan, n, &plan) < 0) {
            PyErr_Clear();
            goto slow;
        }
        /* Remember it (holding the names and the plan keeps both pointers valid). */
        Py_INCREF(kwnames);
        Py_XSETREF(self->last_names, kwnames);
        Py_INCREF(cplan);
        Py_XSETREF(self->last_cplan, cplan);
        self->last_plan = plan;
    }
    for (i = 0; i < n; i++)
        if (!canonical(plan.code[i], args[i]))
            goto slow;
    if (PyContextVar_Get(self->span_var, Py_None, &span) < 0)
        return NULL;
    Py_DECREF(span);
    if (span != Py_None)
        goto slow;  /* inside a span: Python attaches the trace fields */

    tn = PyObject_GetAttr(self->time_mod, s_time_ns);  /* looked up: tests may patch it */
    if (tn == NULL)
        return NULL;
    if (tn == real_time_ns) {
        struct timespec now;
        Py_DECREF(tn);
        clock_gettime(CLOCK_REALTIME, &now);  /* what time.time_ns() reads */
        now_ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
    }
    else {
        now_obj = PyObject_CallNoArgs(tn);
        Py_DECREF(tn);
        if (now_obj == NULL)
            return NULL;
        now_ns = PyLong_AsLongLongAndOverflow(now_obj, &overflow);
        Py_DECREF(now_obj);
        if (now_ns == -1 && PyErr_Occurred())
            return NULL;
        if (overflow)
            goto slow;
    }
    e = emit(self, &PyTuple_GET_ITEM(kwnames, 0), args, n, &plan, NULL, NULL, now_ns);
    if (e != NULL || PyErr_Occurred())
        return e;
slow:
    return PyObject_Vectorcall(self->slow, args, nargsf, kwnames);
}

/* emit_fields(fields, entry_id, start_ns, now_ns) -> entry | None: the same for a dict of
   fields with its id chosen, and its start (None: now minus the latency): logger.call, and
   calls inside a span. None hands it to Python, with nothing written. */
static PyObject *
fastlog_emit_fields(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    FastLog *self = (FastLog *)op;
    PyObject *fields, *names, *cplan, *key, *value, *e;
    PyObject *keys[MAX_FIELDS], *vals[MAX_FIELDS];
    Py_ssize_t n, i = 0, pos = 0;
    long long now_ns;
    int overflow;
    Plan plan;

    if (nargs != 4 || !PyDict_CheckExact(args[0]) || !PyUnicode_CheckExact(args[1])
            || !(PyLong_CheckExact(args[2]) || args[2] == Py_None)) {
        PyErr_SetString(PyExc_TypeError, "emit_fields(fields: dict, entry_id: str, "
                        "start_ns: int | None, now_ns: int)");
        return NULL;
    }
    fields = args[0];
    n = PyDict_GET_SIZE(fields);
    if (n == 0 || n > MAX_FIELDS)
        Py_RETURN_NONE;
    now_ns = PyLong_AsLongLongAndOverflow(args[3], &overflow);
    if (now_ns == -1 && PyErr_Occurred())
        return NULL;
    if (overflow)
        Py_RETURN_NONE;
    while (PyDict_Next(fields, &pos, &key, &value) && i < n) {
        keys[i] = key;
        vals[i++] = value;
    }
    names = PyTuple_New(n);
    if (names == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        Py_INCREF(keys[i]);
        PyTuple_SET_ITEM(names, i, keys[i]);
    }
    cplan = PyDict_GetItemWithError(self->plans, names);
    Py_DECREF(names);
    if (cplan == NULL) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    if (cplan == Py_None || read_plan(cplan, n, &plan) < 0) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    for (i = 0; i < n; i++)
        if (!canonical(plan.code[i], vals[i]))
            Py_RETURN_NONE;
    /* The plan's tuple is borrowed from the plans dict: hold it while it is used. */
    Py_INCREF(cplan);
    e = emit(self, keys, vals, n, &plan, args[1], args[2], now_ns);
    Py_DECREF(cplan);
    if (e != NULL || PyErr_Occurred())
        return e;
    Py_RETURN_NONE;
}

static PyObject *
fastlog_append(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    long long now_ns;
    int overflow;

    if (nargs != 3 || !PyBytes_CheckExact(args[0]) || !PyUnicode_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "append(line: bytes, day: str, now_ns: int)");
        return NULL;
    }
    now_ns = PyLong_AsLongLongAndOverflow(args[2], &overflow);
    if (now_ns == -1 && PyErr_Occurred())
        return NULL;
    if (overflow) {
        PyErr_SetString(PyExc_OverflowError, "append(): now_ns is out of range");
        return NULL;
    }
    if (append((FastLog *)op, args[0], args[1], now_ns) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef fastlog_methods[] = {
    {"emit_fields", (PyCFunction)(void (*)(void))fastlog_emit_fields, METH_FASTCALL,
     "emit_fields(fields, entry_id, start_ns, now_ns) -> dict | None\n\nLog a dict of "
     "fields with its id (and start time, or None) chosen; None: not covered here, "
     "nothing written."},
    {"append", (PyCFunction)(void (*)(void))fastlog_append, METH_FASTCALL,
     "append(line, day, now_ns)\n\nAppend one encoded line to the file of `day`, as "
     "Logger.log does (through the writer when the file needs opening or checking)."},
    {NULL, NULL, 0, NULL}
};

static PyObject *
fastlog_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    FastLog *self;
    PyObject *slow, *write_line, *writer, *plans, *rates, *span_var, *time_mod, *redacted,
             *decode, *dumps, *option;
    int redact, fsync, check_files;
    Py_ssize_t pipe_buf;

    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError, "FastLog() takes positional arguments only");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OOOO!OOOOOOOpppn:FastLog", &slow, &write_line, &writer,
                          &PyDict_Type, &plans, &rates, &span_var, &time_mod, &redacted,
                          &decode, &dumps, &option, &redact, &fsync, &check_files, &pipe_buf))
        return NULL;
    if (!PyContextVar_CheckExact(span_var)) {
        PyErr_SetString(PyExc_TypeError, "FastLog(): span_var must be a ContextVar");
        return NULL;
    }
    self = (FastLog *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = fastlog_call;
    Py_INCREF(slow); self->slow = slow;
    Py_INCREF(write_line); self->write_line = write_line;
    Py_INCREF(writer); self->writer = writer;
    Py_INCREF(plans); self->plans = plans;
    Py_INCREF(rates); self->rates = rates;
    Py_INCREF(span_var); self->span_var = span_var;
    Py_INCREF(time_mod); self->time_mod = time_mod;
    Py_INCREF(redacted); self->redacted = redacted;
    Py_INCREF(decode); self->decode = decode;
    Py_INCREF(dumps); self->dumps = dumps;
    Py_INCREF(option); self->option = option;
    self->redact = redact;
    self->fsync = fsync;
    self->check_files = check_files;
    self->pipe_buf = pipe_buf;
    return (PyObject *)self;
}

static int
fastlog_traverse(FastLog *self, visitproc visit, void *arg)
{
    Py_VISIT(self->slow);
    Py_VISIT(self->write_line);
    Py_VISIT(self->writer);
    Py_VISIT(self->plans);
    Py_VISIT(self->rates);
    Py_VISIT(self->span_var);
    Py_VISIT(self->time_mod);
    Py_VISIT(self->redacted);
    Py_VISIT(self->decode);
    Py_VISIT(self->dumps);
    Py_VISIT(self->option);
    Py_VISIT(self->day);
    Py_VISIT(self->last_names);
    Py_VISIT(self->last_cplan);
    return 0;
}

static int
fastlog_clear(FastLog *self)
{
    Py_CLEAR(self->slow);
    Py_CLEAR(self->write_line);
    Py_CLEAR(self->writer);
    Py_CLEAR(self->plans);
    Py_CLEAR(self->rates);
    Py_CLEAR(self->span_var);
    Py_CLEAR(self->time_mod);
    Py_CLEAR(self->redacted);
    Py_CLEAR(self->decode);
    Py_CLEAR(self->dumps);
    Py_CLEAR(self->option);
    Py_CLEAR(self->day);
    Py_CLEAR(self->last_names);
    Py_CLEAR(self->last_cplan);
    return 0;
}

static void
fastlog_dealloc(FastLog *self)
{
    PyObject_GC_UnTrack(self);
    fastlog_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
fastlog_tp_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return PyVectorcall_Call(self, args, kwargs);
}

static PyTypeObject FastLogType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "promptlab.logs._speedups.FastLog",
    .tp_basicsize = sizeof(FastLog),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "logger.log(**fields): write one entry and return it as written.\n\n"
              "The C fast path of promptlab.Logger.log (see its documentation).",
    .tp_new = fastlog_new,
    .tp_dealloc = (destructor)fastlog_dealloc,
    .tp_traverse = (traverseproc)fastlog_traverse,
    .tp_clear = (inquiry)fastlog_clear,
    .tp_call = fastlog_tp_call,
    .tp_methods = fastlog_methods,
    .tp_vectorcall_offset = offsetof(FastLog, vectorcall),
};

static PyMethodDef speedup_methods[] = {
    {"maybe_secret", maybe_secret, METH_O,
     "maybe_secret(line: bytes) -> bool\n\n"
     "False when no built-in redaction rule can match `line` (none of their anchors is "
     "in it)."},
    {"build", (PyCFunction)(void (*)(void))build, METH_FASTCALL,
     "build(fields, plan, entry_id, kind, now_ns, start_ns, rates) -> dict | None\n\n"
     "The entry for `fields` when every value has its canonical type, else None."},
    {"new_id", (PyCFunction)(void (*)(void))new_id, METH_FASTCALL,
     "new_id(ms=None) -> str\n\nA new ULID (see promptlab.logs.entry.new_id)."},
    {"seed", seed, METH_O,
     "seed(random_bytes)\n\nReseed the id generator (at import and in forked children)."},
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
    s_files = PyUnicode_InternFromString("_files");
    s_lock = PyUnicode_InternFromString("_lock");
    s_locked = PyUnicode_InternFromString("locked");
    s_fd = PyUnicode_InternFromString("fd");
    s_due = PyUnicode_InternFromString("due");
    s_checked = PyUnicode_InternFromString("checked");
    s_time_ns = PyUnicode_InternFromString("time_ns");
    s_llm = PyUnicode_InternFromString("llm");
    {  /* orjson matches keyword names by identity: use the interned string */
        PyObject *option = PyUnicode_InternFromString("option");
        s_option_kw = option ? PyTuple_Pack(1, option) : NULL;
        Py_XDECREF(option);
    }
    if (!s_files || !s_lock || !s_locked || !s_fd || !s_due || !s_checked
            || !s_time_ns || !s_llm || !s_option_kw)
        return NULL;
    {  /* time.time_ns itself: while it is not patched, the clock is read directly */
        PyObject *time_mod = PyImport_ImportModule("time");
        real_time_ns = time_mod ? PyObject_GetAttr(time_mod, s_time_ns) : NULL;
        Py_XDECREF(time_mod);
    }
    if (real_time_ns == NULL)
        return NULL;
    if (PyType_Ready(&FastLogType) < 0)
        return NULL;
    builtins = PyImport_ImportModule("builtins");
    round_fn = builtins ? PyObject_GetAttrString(builtins, "round") : NULL;
    Py_XDECREF(builtins);
    if (!s_id || !s_kind || !s_timestamp || !s_cost_usd || !ten || !round_fn)
        return NULL;
    {
        PyObject *m = PyModule_Create(&speedups_module);
        if (m == NULL)
            return NULL;
        Py_INCREF(&FastLogType);
        if (PyModule_AddObject(m, "FastLog", (PyObject *)&FastLogType) < 0) {
            Py_DECREF(&FastLogType);
            Py_DECREF(m);
            return NULL;
        }
        return m;
    }
}
