/*
 * Fused optimizer updates over flat parameter buffers.
 *
 * Each function applies one optimizer rule element by element in a single pass over the
 * parameter, gradient and state buffers, instead of the ~10 whole-buffer NumPy passes of the
 * reference implementation in axone/optimizers/__init__.py.  The arithmetic is the same, operation
 * for operation and in the same order, in the buffers' own precision (float32 or float64), so
 * both paths give the same bits; the NumPy path remains the reference and the fallback when this
 * module is not built.
 *
 * Python signature of every rule:  rule(is_double, w, g, state..., scalars...)
 * where every buffer is a writable C-contiguous float32/float64 array of the same length (the
 * caller checks this).  Large buffers are split across threads (see set_num_threads).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

#ifndef _WIN32
#include <pthread.h>
#define AXONE_THREADS 1
#endif

#define SQRT_f sqrtf
#define SQRT_d sqrt
#define FABS_f fabsf
#define FABS_d fabs

/* x86-64 GCC: each rule also compiled for AVX2, picked at load time (same IEEE operations, wider) */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define WIDE __attribute__((target_clones("avx2", "default")))
#else
#define WIDE
#endif

#define MAXBUF 6
#define MAXSCALAR 8

typedef struct Job Job;
typedef void (*kernel_fn)(const Job *, Py_ssize_t, Py_ssize_t);

struct Job {
    void *p[MAXBUF];
    double s[MAXSCALAR];
    int flags;
    kernel_fn fn;
};

static int num_threads = 1;
static Py_ssize_t min_per_thread = 1 << 17;

/* ------------------------------------------------------------------ rules */
/* Each rule is written once as a macro body over element type T, then instantiated for float
 * and double.  w: parameters, g: gradient; scalars are rounded to T once, as NumPy does with
 * Python floats. */

#define RULES(T, SUF)                                                                          \
/* SGD.  w ← w·df − η·g;  momentum μ: v ← μ·v − η·g, w ← w·df + v (Nesterov: w ← w·df − η·g + μ·v) */ \
WIDE static void sgd_##SUF(const Job *j, Py_ssize_t lo, Py_ssize_t hi) {                            \
    T *restrict w = j->p[0]; const T *restrict g = j->p[1]; T *restrict v = j->p[2];          \
    const T lr = (T)j->s[0], df = (T)j->s[1], mu = (T)j->s[2];                                 \
    if (j->flags == 0) {                                                                        \
        for (Py_ssize_t i = lo; i < hi; i++) { T x = w[i] * df; w[i] = x - g[i] * lr; }        \
    } else if (j->flags == 1) {                                                                 \
        for (Py_ssize_t i = lo; i < hi; i++) {                                                  \
            T t = g[i] * lr; T vv = v[i] * mu - t; v[i] = vv; w[i] = w[i] * df + vv; }          \
    } else {                                                                                    \
        for (Py_ssize_t i = lo; i < hi; i++) {                                                  \
            T t = g[i] * lr; T vv = v[i] * mu - t; v[i] = vv;                                    \
            T x = w[i] * df - t; w[i] = x + vv * mu; }                                          \
    }                                                                                           \
}                                                                                               \
/* Adam.  m ← m + (g − m)(1 − β₁);  v ← v + (g² − v)(1 − β₂);  [v̂ ← max(v̂, v)]                 \
 * w ← w·df − α·m/(√v + ε) */                                                                   \
WIDE static void adam_##SUF(const Job *j, Py_ssize_t lo, Py_ssize_t hi) {                           \
    T *restrict w = j->p[0]; const T *restrict g = j->p[1];                                    \
    T *restrict m = j->p[2]; T *restrict v = j->p[3]; T *restrict vh = j->p[4];                \
    const T alpha = (T)j->s[0], df = (T)j->s[1], c1 = (T)j->s[2], c2 = (T)j->s[3],             \
            eps = (T)j->s[4];                                                                   \
    if (!j->flags) {                                                                            \
        for (Py_ssize_t i = lo; i < hi; i++) {                                                  \
            T gi = g[i];                                                                        \
            T mi = m[i] + (gi - m[i]) * c1; m[i] = mi;                                          \
            T vi = v[i] + (gi * gi - v[i]) * c2; v[i] = vi;                                     \
            T d = SQRT_##SUF(vi) + eps;                                                            \
            T x = w[i] * df; w[i] = x - (mi / d) * alpha; }                                     \
    } else {                                                                                    \
        for (Py_ssize_t i = lo; i < hi; i++) {                                                  \
            T gi = g[i];                                                                        \
            T mi = m[i] + (gi - m[i]) * c1; m[i] = mi;                                          \
            T vi = v[i] + (gi * gi - v[i]) * c2; v[i] = vi;                                     \
            T h = vh[i]; h = (h != h || h >= vi) ? h : vi; vh[i] = h;                           \
            T d = SQRT_##SUF(h) + eps;                                                             \
            T x = w[i] * df; w[i] = x - (mi / d) * alpha; }                                     \
    }                                                                                           \
}                                                                                               \
/* RMSprop.  s ← ρs + (1 − ρ)g²;  [centered: a ← ρa + (1 − ρ)g, s − a² under the root]           \
 * Δ = η·g/√(s + ε);  w ← w·df − Δ  (momentum μ: u ← μu + Δ, w ← w·df − u) */                   \
WIDE static void rmsprop_##SUF(const Job *j, Py_ssize_t lo, Py_ssize_t hi) {                        \
    T *restrict w = j->p[0]; const T *restrict g = j->p[1];                                    \
    T *restrict s = j->p[2]; T *restrict a = j->p[3]; T *restrict u = j->p[4];                 \
    const T lr = (T)j->s[0], df = (T)j->s[1], rho = (T)j->s[2], c = (T)j->s[3],                \
            eps = (T)j->s[4], mu = (T)j->s[5];                                                  \
    const int centered = j->flags & 1, mom = j->flags & 2;                                      \
    for (Py_ssize_t i = lo; i < hi; i++) {                                                      \
        T gi = g[i];                                                                            \
        T si = s[i] * rho + (gi * gi) * c; s[i] = si;                                           \
        T d;                                                                                    \
        if (centered) { T ai = a[i] * rho + c * gi; a[i] = ai; d = (si - ai * ai) + eps; }      \
        else d = si + eps;                                                                      \
        T delta = (gi / SQRT_##SUF(d)) * lr;                                                       \
        T x = w[i] * df;                                                                        \
        if (mom) { T ui = u[i] * mu + delta; u[i] = ui; w[i] = x - ui; }                        \
        else w[i] = x - delta;                                                                  \
    }                                                                                           \
}                                                                                               \
/* Adagrad.  a ← a + g²;  w ← w·df − η·g/√(a + ε) */                                            \
WIDE static void adagrad_##SUF(const Job *j, Py_ssize_t lo, Py_ssize_t hi) {                        \
    T *restrict w = j->p[0]; const T *restrict g = j->p[1]; T *restrict a = j->p[2];          \
    const T lr = (T)j->s[0], df = (T)j->s[1], eps = (T)j->s[2];                                \
    for (Py_ssize_t i = lo; i < hi; i++) {                                                      \
        T gi = g[i]; T ai = a[i] + gi * gi; a[i] = ai;                                          \
        T x = w[i] * df; w[i] = x - (gi / SQRT_##SUF(ai + eps)) * lr; }                            \
}                                                                                               \
/* Adadelta.  E[g²] ← ρE[g²] + (1−ρ)g²;  Δ = −√(E[Δ²] + ε)/√(E[g²] + ε)·g;                      \
 * E[Δ²] ← ρE[Δ²] + (1−ρ)Δ²;  w ← w·df + η·Δ */                                                 \
WIDE static void adadelta_##SUF(const Job *j, Py_ssize_t lo, Py_ssize_t hi) {                       \
    T *restrict w = j->p[0]; const T *restrict g = j->p[1];                                    \
    T *restrict ag = j->p[2]; T *restrict ad = j->p[3];                                        \
    const T lr = (T)j->s[0], df = (T)j->s[1], rho = (T)j->s[2], c = (T)j->s[3],                \
            eps = (T)j->s[4];                                                                   \
    for (Py_ssize_t i = lo; i < hi; i++) {                                                      \
        T gi = g[i];                                                                            \
        T agi = ag[i] * rho + (c * gi) * gi; ag[i] = agi;                                       \
        T delta = (-SQRT_##SUF(ad[i] + eps) / SQRT_##SUF(agi + eps)) * gi;                            \
        ad[i] = ad[i] * rho + (c * delta) * delta;                                              \
        T x = w[i] * df; w[i] = x + delta * lr; }                                               \
}                                                                                               \
/* Adamax.  m ← m + (g − m)(1 − β₁);  u ← max(β₂u, |g|);  w ← w·df − η_t·m/(u + ε) */           \
WIDE static void adamax_##SUF(const Job *j, Py_ssize_t lo, Py_ssize_t hi) {                         \
    T *restrict w = j->p[0]; const T *restrict g = j->p[1];                                    \
    T *restrict m = j->p[2]; T *restrict u = j->p[3];                                          \
    const T lrt = (T)j->s[0], df = (T)j->s[1], c1 = (T)j->s[2], b2 = (T)j->s[3],               \
            eps = (T)j->s[4];                                                                   \
    for (Py_ssize_t i = lo; i < hi; i++) {                                                      \
        T gi = g[i];                                                                            \
        T mi = m[i] + (gi - m[i]) * c1; m[i] = mi;                                              \
        T ui = u[i] * b2; T ag = FABS_##SUF(gi);                                             \
        ui = (ui != ui || ui >= ag) ? ui : ag; u[i] = ui;                                       \
        T x = w[i] * df; w[i] = x - (mi / (ui + eps)) * lrt; }                                  \
}                                                                                               \
/* Nadam.  m, v as Adam;  m̂ = c_m·m + c_g·g;  v̂ = v·c_v;  w ← w·df − η·m̂/(√v̂ + ε) */           \
WIDE static void nadam_##SUF(const Job *j, Py_ssize_t lo, Py_ssize_t hi) {                          \
    T *restrict w = j->p[0]; const T *restrict g = j->p[1];                                    \
    T *restrict m = j->p[2]; T *restrict v = j->p[3];                                          \
    const T lr = (T)j->s[0], df = (T)j->s[1], c1 = (T)j->s[2], c2 = (T)j->s[3],                \
            eps = (T)j->s[4], cm = (T)j->s[5], cg = (T)j->s[6], cv = (T)j->s[7];               \
    for (Py_ssize_t i = lo; i < hi; i++) {                                                      \
        T gi = g[i];                                                                            \
        T mi = m[i] + (gi - m[i]) * c1; m[i] = mi;                                              \
        T vi = v[i] + (gi * gi - v[i]) * c2; v[i] = vi;                                         \
        T d = SQRT_##SUF(vi * cv) + eps;                                                           \
        T mh = mi * cm + gi * cg;                                                               \
        T x = w[i] * df; w[i] = x - (mh / d) * lr; }                                            \
}

RULES(float, f)
RULES(double, d)

/* ---------------------------------------------------------------- threads */
#ifdef AXONE_THREADS
typedef struct { const Job *job; Py_ssize_t lo, hi; } Part;

static void *run_part(void *arg) {
    Part *p = (Part *)arg;
    p->job->fn(p->job, p->lo, p->hi);
    return NULL;
}
#endif

static void run(const Job *job, Py_ssize_t n) {
    int k = num_threads;
    if (k > 1 && n / k < min_per_thread) k = (int)(n / min_per_thread);
    if (k <= 1) { job->fn(job, 0, n); return; }
#ifdef AXONE_THREADS
    if (k > 64) k = 64;
    Part parts[64];
    pthread_t tid[64];
    int started[64];
    Py_ssize_t chunk = ((n + k - 1) / k + 15) & ~(Py_ssize_t)15;  /* 64-byte aligned splits */
    for (int i = 0; i < k; i++) {
        Py_ssize_t lo = chunk * i, hi = lo + chunk;
        if (lo > n) lo = n;
        if (hi > n) hi = n;
        parts[i].job = job; parts[i].lo = lo; parts[i].hi = hi;
        started[i] = 0;
    }
    for (int i = 1; i < k; i++)
        started[i] = pthread_create(&tid[i], NULL, run_part, &parts[i]) == 0;
    job->fn(job, parts[0].lo, parts[0].hi);
    for (int i = 1; i < k; i++) {
        if (started[i]) pthread_join(tid[i], NULL);
        else job->fn(job, parts[i].lo, parts[i].hi);   /* could not start a thread: run here */
    }
#else
    job->fn(job, 0, n);
#endif
}

/* ------------------------------------------------------------ Python glue */
typedef struct { const char *name; kernel_fn f32, f64; int nbuf, nscalar; } Rule;

static const Rule rules[] = {
    {"sgd", sgd_f, sgd_d, 3, 3},
    {"adam", adam_f, adam_d, 5, 5},
    {"rmsprop", rmsprop_f, rmsprop_d, 5, 6},
    {"adagrad", adagrad_f, adagrad_d, 3, 3},
    {"adadelta", adadelta_f, adadelta_d, 4, 5},
    {"adamax", adamax_f, adamax_d, 4, 5},
    {"nadam", nadam_f, nadam_d, 4, 8},
};

/* rule(is_double, flags, buffers (tuple; None for unused), scalars (tuple of floats)) */
static PyObject *apply_rule(const Rule *rule, PyObject *args) {
    int is_double, flags;
    PyObject *bufs, *scalars;
    if (!PyArg_ParseTuple(args, "iiO!O!", &is_double, &flags, &PyTuple_Type, &bufs,
                          &PyTuple_Type, &scalars))
        return NULL;
    if (PyTuple_GET_SIZE(bufs) != rule->nbuf || PyTuple_GET_SIZE(scalars) != rule->nscalar) {
        PyErr_Format(PyExc_TypeError, "%s: expected %d buffers and %d scalars", rule->name,
                     rule->nbuf, rule->nscalar);
        return NULL;
    }
    Job job;
    memset(&job, 0, sizeof job);
    job.flags = flags;
    job.fn = is_double ? rule->f64 : rule->f32;
    Py_ssize_t item = is_double ? sizeof(double) : sizeof(float), n = -1;
    Py_buffer views[MAXBUF];
    int got = 0, ok = 1;
    for (int i = 0; i < rule->nbuf && ok; i++) {
        PyObject *o = PyTuple_GET_ITEM(bufs, i);
        if (o == Py_None) continue;
        if (PyObject_GetBuffer(o, &views[got], PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
            ok = 0;
            break;
        }
        Py_ssize_t len = views[got].len / item;
        job.p[i] = views[got].buf;
        got++;
        if (n < 0) n = len;
        else if (len != n) {
            PyErr_Format(PyExc_ValueError, "%s: buffers of different lengths", rule->name);
            ok = 0;
        }
    }
    for (int i = 0; i < rule->nscalar && ok; i++) {
        job.s[i] = PyFloat_AsDouble(PyTuple_GET_ITEM(scalars, i));
        if (job.s[i] == -1.0 && PyErr_Occurred()) ok = 0;
    }
    if (ok && (job.p[0] == NULL || job.p[1] == NULL)) {
        PyErr_Format(PyExc_ValueError, "%s: parameters and gradient are required", rule->name);
        ok = 0;
    }
    if (ok && n > 0) {
        Py_BEGIN_ALLOW_THREADS
        run(&job, n);
        Py_END_ALLOW_THREADS
    }
    for (int i = 0; i < got; i++) PyBuffer_Release(&views[i]);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

#define WRAP(IDX, NAME)                                                                        \
    static PyObject *py_##NAME(PyObject *self, PyObject *args) { return apply_rule(&rules[IDX], args); }
WRAP(0, sgd)
WRAP(1, adam)
WRAP(2, rmsprop)
WRAP(3, adagrad)
WRAP(4, adadelta)
WRAP(5, adamax)
WRAP(6, nadam)

static PyObject *py_set_num_threads(PyObject *self, PyObject *args) {
    int k;
    Py_ssize_t per = min_per_thread;
    if (!PyArg_ParseTuple(args, "i|n", &k, &per)) return NULL;
    num_threads = k < 1 ? 1 : k;
    min_per_thread = per < 1 ? 1 : per;
    Py_RETURN_NONE;
}

static PyObject *py_get_num_threads(PyObject *self, PyObject *noargs) {
    return Py_BuildValue("in", num_threads, min_per_thread);
}

static PyMethodDef methods[] = {
    {"sgd", py_sgd, METH_VARARGS, "SGD (flags: 0 plain, 1 momentum, 2 Nesterov)."},
    {"adam", py_adam, METH_VARARGS, "Adam (flags: 1 amsgrad)."},
    {"rmsprop", py_rmsprop, METH_VARARGS, "RMSprop (flags: 1 centered, 2 momentum)."},
    {"adagrad", py_adagrad, METH_VARARGS, "Adagrad."},
    {"adadelta", py_adadelta, METH_VARARGS, "Adadelta."},
    {"adamax", py_adamax, METH_VARARGS, "Adamax."},
    {"nadam", py_nadam, METH_VARARGS, "Nadam."},
    {"set_num_threads", py_set_num_threads, METH_VARARGS,
     "set_num_threads(k, min_per_thread=131072): threads for buffers of at least k·min_per_thread."},
    {"get_num_threads", py_get_num_threads, METH_NOARGS, "(threads, min_per_thread)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels", "Fused optimizer updates over flat buffers.", -1, methods,
};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
