/*
 * axone's optional compiled kernels.  Each has a NumPy form in the package, which stays the
 * reference and the fallback when this module is not built:
 *   - fused optimizer updates over flat parameter buffers (bit-identical to the NumPy rules);
 *   - LSTM time steps: the point-wise work of a step, and whole step loops around NumPy's own
 *     BLAS when it is handed over (ops/recurrent.py);
 *   - GRU (both reset_after forms) and SimpleRNN step loops the same way;
 *   - Dense epilogues (bias, ReLU, mask, bias gradient; bit-identical; also Conv's ReLU mask and
 *     bias gradient) and softmax / cross-entropy rows (ops/nn.py, ops/conv.py, ops/math.py);
 *   - 2-D max and average pooling, forward and backward (ops/conv.py).
 *
 * Fused optimizer updates over flat parameter buffers.
 *
 * Each function applies one optimizer rule element by element in a single pass over the
 * parameter, gradient and state buffers, instead of the ~10 whole-buffer NumPy passes of the
 * reference implementation in axone/optimizers/__init__.py.  The arithmetic is the same, operation
 * for operation and in the same order, in the buffers' own precision (float32 or float64), so
 * both paths give the same bits; the NumPy path remains the reference and the fallback when this
 * module is not built.
 *
 * Python signature of every rule:  rule(is_double, flags, (w, g, state...), (scalars...))
 * where every buffer is a C-contiguous float32/float64 array of the same length, writable except
 * g (the glue below checks all of this, and that no two buffers share memory).  Large buffers
 * are split across threads (see set_num_threads).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#define AXONE_HAVE_DLADDR 1
#endif

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
static Py_ssize_t min_per_thread = 1 << 15;

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

/* the product pool (below): one caller at a time runs tasks on its workers */
typedef struct { void (*fn)(void *); void *arg; } PoolTask;
#ifdef AXONE_THREADS
static pthread_mutex_t pool_use;
static void pool_run(const PoolTask *tasks, Py_ssize_t n);

static void part_fn(void *arg) { run_part(arg); }
#endif

/* A rule over n elements: split into k ≤ num_threads 64-byte-aligned parts of at least
 * min_per_thread elements, run on the pool's threads (the calling thread takes a part too);
 * when the pool is in use by another caller, or cannot start, on this thread. */
static void run(const Job *job, Py_ssize_t n) {
    int k = num_threads;
    if (k > 1 && n / k < min_per_thread) k = (int)(n / min_per_thread);
    if (k <= 1) { job->fn(job, 0, n); return; }
#ifdef AXONE_THREADS
    if (k > 64) k = 64;
    Part parts[64];
    PoolTask tasks[64];
    Py_ssize_t chunk = ((n + k - 1) / k + 15) & ~(Py_ssize_t)15;  /* 64-byte aligned splits */
    for (int i = 0; i < k; i++) {
        Py_ssize_t lo = chunk * i, hi = lo + chunk;
        if (lo > n) lo = n;
        if (hi > n) hi = n;
        parts[i].job = job; parts[i].lo = lo; parts[i].hi = hi;
        tasks[i].fn = part_fn; tasks[i].arg = parts + i;
    }
    if (pthread_mutex_trylock(&pool_use) == 0) {
        pool_run(tasks, k);
        pthread_mutex_unlock(&pool_use);
    } else {
        job->fn(job, 0, n);
    }
#else
    job->fn(job, 0, n);
#endif
}

/* ------------------------------------------------------------------ LSTM steps */
/* The point-wise part of one LSTM time step, forward and backward, for the LSTM fast path of
 * axone/ops/recurrent.py (tanh / sigmoid).  The step's matrix product stays in NumPy's BLAS; these
 * replace the dozen NumPy passes around it with one pass.
 *
 * exp is evaluated inline, so that the loops vectorize: e^x = 2^n · e^r with n = round(x/ln 2),
 * r = x − n·ln 2 (ln 2 split in two parts, the first exact in n·ln2_hi), |r| ≤ ln 2 / 2, and e^r
 * by its Taylor polynomial (degree 7 for float: truncation 5·10⁻⁹ relative; degree 13 for double:
 * 4·10⁻¹⁸).  2^n is applied as two factors 2^n₁·2^n₂ (n₁ = n/2 truncated, n₂ = n − n₁), each a
 * normal number built in the exponent bits: the first product is exact, the second rounds once,
 * so the result follows np.exp over the whole range, into the subnormals (one rounding, as a
 * single factor 2^n would give where it exists), to 0 below them and to inf above the largest
 * float.  x is first clamped to [−104, 89] (float) or [−746, 710] (double), just beyond those
 * limits, so that n stays small; NaN passes through the comparisons and gives NaN.
 *   σ(z) = 1/(1 + e⁻ᶻ),   tanh(z) = 1 − 2/(1 + e²ᶻ)   (e^±∞ of the clamp: σ → 0 or 1, tanh → ±1). */
static inline float exp_f(float x) {
    x = x < -104.0f ? -104.0f : x;                         /* e^−104 < 2⁻¹⁵⁰: rounds to 0 */
    x = x > 89.0f ? 89.0f : x;                             /* e^89 > FLT_MAX: inf */
    float t = x * 1.44269504088896341f + 12582912.0f;      /* 1.5·2²³: rounds to an integer */
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits);
    int32_t k = (int32_t)(bits - 0x4B400000u);             /* n, in [−150, 128] */
    int32_t k1 = k / 2, k2 = k - k1;
    uint32_t b1 = (uint32_t)(k1 + 127) << 23, b2 = (uint32_t)(k2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    return (p * s1) * s2;
}

static inline double exp_d(double x) {
    x = x < -746.0 ? -746.0 : x;                           /* e^−746 < 2⁻¹⁰⁷⁵: rounds to 0 */
    x = x > 710.0 ? 710.0 : x;                             /* e^710 > DBL_MAX: inf */
    double t = x * 1.4426950408889634074 + 6755399441055744.0;   /* 1.5·2⁵² */
    double n = t - 6755399441055744.0;
    double r = x - n * 6.93147180369123816490e-01;
    r = r - n * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    uint64_t bits;
    memcpy(&bits, &t, sizeof bits);
    int64_t k = (int64_t)(bits - 0x4338000000000000ull);   /* n, in [−1076, 1024] */
    int64_t k1 = k / 2, k2 = k - k1;
    uint64_t b1 = (uint64_t)(k1 + 1023) << 52, b2 = (uint64_t)(k2 + 1023) << 52;
    double s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    return (p * s1) * s2;
}

/* Shapes (all C-contiguous, one dtype; the Python glue checks them):
 *   A  (T, N, 4u)  gates in Keras's order i, f, g, o; holds z on entry of the forward step and the
 *                  activations after it          C  (T+1, N, u)  cell states, C[0] = c0
 *   AC (T, N, u)   tanh(C[1:])                    Hc (T+1, N, K)  [hᵣ, x, 1] rows, K ≥ u
 *   H  (T+1, N, u) the hidden states when a recurrent dropout mask rm (N, u) is used (Hc then
 *                  holds hᵣ = h·rm); without one, h lives in Hc[:, :, :u]
 *   fr (T, N)      uint8, 1 where the mask is False: the row keeps its state at that step
 *   dZ (T, N, 4u)  ∂L/∂z;  gh, gc, P (N, u);  G (N, T+1, u) the upstream gradient of the output. */
#define LSTM_KERNELS(T_, SUF)                                                                   \
/* One row of a forward step (separate restrict pointers per gate, so that the loop vectorizes) */ \
static inline void lstm_fwd_row_##SUF(T_ *restrict ai, T_ *restrict af, T_ *restrict ag,          \
                                      T_ *restrict ao, const T_ *restrict cp, T_ *restrict cn,  \
                                      T_ *restrict ac, T_ *restrict hn, Py_ssize_t u) {          \
    for (Py_ssize_t k = 0; k < u; k++) {                                                        \
        T_ i = 1 / (1 + exp_##SUF(-ai[k]));                                                     \
        T_ f = 1 / (1 + exp_##SUF(-af[k]));                                                     \
        T_ g = 1 - 2 / (1 + exp_##SUF(2 * ag[k]));                                              \
        T_ o = 1 / (1 + exp_##SUF(-ao[k]));                                                     \
        ai[k] = i; af[k] = f; ag[k] = g; ao[k] = o;                                             \
        T_ c = f * cp[k] + i * g;                                                               \
        T_ t = 1 - 2 / (1 + exp_##SUF(2 * c));                                                  \
        cn[k] = c; ac[k] = t; hn[k] = o * t;                                                    \
    }                                                                                           \
}                                                                                               \
/* Forward, step j:  i, f, o = σ(zᵢ, z_f, zₒ);  g = tanh(z_g);  c = f·cⱼ + i·g;  h = o·tanh(c) */ \
WIDE static void lstm_fwd_##SUF(Py_ssize_t j, Py_ssize_t N, Py_ssize_t u, Py_ssize_t K,        \
                                T_ *A, T_ *C, T_ *AC, T_ *Hc, T_ *H, const T_ *rm,             \
                                const unsigned char *fr) {                                       \
    for (Py_ssize_t n = 0; n < N; n++) {                                                        \
        T_ *a = A + (j * N + n) * 4 * u;                                                        \
        const T_ *cp = C + (j * N + n) * u;                                                     \
        T_ *cn = C + ((j + 1) * N + n) * u;                                                     \
        T_ *hr = Hc + ((j + 1) * N + n) * K;                                                    \
        const T_ *hp = H ? H + (j * N + n) * u : Hc + (j * N + n) * K;                          \
        T_ *hn = H ? H + ((j + 1) * N + n) * u : hr;                                            \
        lstm_fwd_row_##SUF(a, a + u, a + 2 * u, a + 3 * u, cp, cn, AC + (j * N + n) * u, hn, u); \
        if (fr && fr[j * N + n]) {                                                              \
            memcpy(cn, cp, u * sizeof(T_));                                                     \
            memcpy(hn, hp, u * sizeof(T_));                                                     \
        }                                                                                       \
        if (H) {                                                                                \
            if (rm) { const T_ *m = rm + n * u;                                                 \
                      for (Py_ssize_t k = 0; k < u; k++) hr[k] = hn[k] * m[k]; }                \
            else memcpy(hr, hn, u * sizeof(T_));                                                \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
/* One row of a backward step */                                                                \
static inline void lstm_bwd_row_##SUF(const T_ *restrict ai, const T_ *restrict af,             \
                                      const T_ *restrict ag, const T_ *restrict ao,             \
                                      const T_ *restrict cp, const T_ *restrict ac,             \
                                      const T_ *restrict h, T_ *restrict s, T_ *restrict di,    \
                                      T_ *restrict df, T_ *restrict dg, T_ *restrict dO,        \
                                      Py_ssize_t u) {                                           \
    for (Py_ssize_t k = 0; k < u; k++) {                                                        \
        T_ i = ai[k], f = af[k], g = ag[k], o = ao[k], t = ac[k];                               \
        T_ hk = h[k];                                                                           \
        T_ gcn = s[k] + hk * (o * (1 - t * t));                                                 \
        di[k] = gcn * (g * (i * (1 - i)));                                                      \
        df[k] = gcn * (cp[k] * (f * (1 - f)));                                                  \
        dg[k] = gcn * (i * (1 - g * g));                                                        \
        dO[k] = hk * (t * (o * (1 - o)));                                                       \
        s[k] = gcn * f;                                                                         \
    }                                                                                           \
}                                                                                               \
/* Backward.  First, when P = ∂zⱼ₊₁·Uᵀ is given, finish step j+1: gh ← P·rm on the rows that    \
 * stepped (frozen rows pass gh on unchanged).  Then step j (j ≥ 0), with gh = ∂L/∂hⱼ₊₁ (plus     \
 * the upstream G) and gc = ∂L/∂cⱼ₊₁:                                                            \
 *   gcn = gc + gh·o·(1 − tanh²c);   ∂zᵢ = gcn·g·i(1 − i);  ∂z_f = gcn·cⱼ·f(1 − f);               \
 *   ∂z_g = gcn·i·(1 − g²);  ∂zₒ = gh·tanh(c)·o(1 − o);   gc ← gcn·f                              \
 * (frozen rows: ∂z = 0, gh and gc unchanged). */                                               \
WIDE static void lstm_bwd_##SUF(Py_ssize_t j, Py_ssize_t T, Py_ssize_t N, Py_ssize_t u,       \
                                const T_ *A, const T_ *C, const T_ *AC, T_ *dZ, T_ *gh,        \
                                T_ *gc, const T_ *P, const T_ *G, const T_ *rm,                \
                                const unsigned char *fr) {                                       \
    if (P) {                                                                                    \
        Py_ssize_t jp = j + 1;                                                                  \
        for (Py_ssize_t n = 0; n < N; n++) {                                                    \
            if (fr && fr[jp * N + n]) continue;                                                 \
            T_ *h = gh + n * u;                                                                 \
            const T_ *p = P + n * u;                                                            \
            if (rm) { const T_ *m = rm + n * u;                                                 \
                      for (Py_ssize_t k = 0; k < u; k++) h[k] = p[k] * m[k]; }                  \
            else memcpy(h, p, u * sizeof(T_));                                                  \
        }                                                                                       \
    }                                                                                           \
    if (j < 0) return;                                                                          \
    for (Py_ssize_t n = 0; n < N; n++) {                                                        \
        T_ *h = gh + n * u;                                                                     \
        T_ *d = dZ + (j * N + n) * 4 * u;                                                       \
        if (G) { const T_ *up = G + (n * (T + 1) + j) * u;                                      \
                 for (Py_ssize_t k = 0; k < u; k++) h[k] += up[k]; }                            \
        if (fr && fr[j * N + n]) { memset(d, 0, 4 * u * sizeof(T_)); continue; }               \
        const T_ *a = A + (j * N + n) * 4 * u;                                                  \
        lstm_bwd_row_##SUF(a, a + u, a + 2 * u, a + 3 * u, C + (j * N + n) * u,                 \
                           AC + (j * N + n) * u, h, gc + n * u, d, d + u, d + 2 * u, d + 3 * u, u); \
    }                                                                                           \
}

LSTM_KERNELS(float, f)
LSTM_KERNELS(double, d)

/* The float step kernels once more for CPUs with AVX2 and FMA, the multiply-adds of the
 * polynomials and gates contracted into FMAs (one rounding instead of two: results within the
 * same float rounding of np.exp and the NumPy forms); picked at run time (lstm_fma). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define AXONE_FMA_CLONE 1
#undef WIDE
#define WIDE __attribute__((target("avx2,fma"), optimize("fp-contract=fast")))
#define exp_fx exp_fx_
static inline __attribute__((always_inline)) float exp_fx_(float x) { return exp_f(x); }
LSTM_KERNELS(float, fx)
#undef WIDE
#define WIDE __attribute__((target_clones("avx2", "default")))
static int lstm_fma(void) {
    static int has = -1;
    if (has < 0) has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return has;
}
#endif

/* ------------------------------------------------------------------ LSTM sequences */
/* Whole LSTM loops in C: each step's product through the BLAS that NumPy itself loaded (its
 * cblas_?gemm, handed over once by set_gemm), then the step kernel above, with the GIL released
 * for the whole loop.  Without set_gemm these are unavailable and Python runs the loop. */
typedef void (*sgemm64_t)(int, int, int, int64_t, int64_t, int64_t, float, const float *, int64_t,
                          const float *, int64_t, float, float *, int64_t);
typedef void (*dgemm64_t)(int, int, int, int64_t, int64_t, int64_t, double, const double *, int64_t,
                          const double *, int64_t, double, double *, int64_t);
typedef void (*sgemm32_t)(int, int, int, int, int, int, float, const float *, int, const float *,
                          int, float, float *, int);
typedef void (*dgemm32_t)(int, int, int, int, int, int, double, const double *, int,
                          const double *, int, double, double *, int);
static void *gemm_s = NULL, *gemm_d = NULL;
static int gemm_ilp64 = 0;

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

/* C (M×N) = A (M×K) · B (K×N), or A · Bᵀ with B (N×K) when transb; row-major */
static void gemm_f(int transb, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float *A,
                   Py_ssize_t lda, const float *B, Py_ssize_t ldb, float *C, Py_ssize_t ldc) {
    int tb = transb ? TRANS : NO_TRANS;
    if (gemm_ilp64)
        ((sgemm64_t)gemm_s)(ROW_MAJOR, NO_TRANS, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
    else
        ((sgemm32_t)gemm_s)(ROW_MAJOR, NO_TRANS, tb, (int)M, (int)N, (int)K, 1.0f, A, (int)lda, B,
                            (int)ldb, 0.0f, C, (int)ldc);
}

static void gemm_d_(int transb, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const double *A,
                    Py_ssize_t lda, const double *B, Py_ssize_t ldb, double *C, Py_ssize_t ldc) {
    int tb = transb ? TRANS : NO_TRANS;
    if (gemm_ilp64)
        ((dgemm64_t)gemm_d)(ROW_MAJOR, NO_TRANS, tb, M, N, K, 1.0, A, lda, B, ldb, 0.0, C, ldc);
    else
        ((dgemm32_t)gemm_d)(ROW_MAJOR, NO_TRANS, tb, (int)M, (int)N, (int)K, 1.0, A, (int)lda, B,
                            (int)ldb, 0.0, C, (int)ldc);
}
/* A step's product for one or two rows (a single sequence: predict on one sample) without the
 * BLAS call, whose fixed cost (a few microseconds) is most of such a small product: c = Σₖ aₖ·Bₖ,
 * row by row of B, vectorized along the row.  Only the untransposed form (the forward steps).
 * The row is taken in blocks of JB entries whose sums stay in registers over the whole of k
 * (each entry's terms added in the order k = 0, 1, …, as the plain loop does: the same bits). */
#define SMALL_GEMM(T_, SUF, JB)                                                                 \
WIDE static void small_gemm_##SUF(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const T_ *A,      \
                                  Py_ssize_t lda, const T_ *B, Py_ssize_t ldb, T_ *C,          \
                                  Py_ssize_t ldc) {                                             \
    for (Py_ssize_t i = 0; i < M; i++) {                                                        \
        T_ *restrict c = C + i * ldc;                                                           \
        const T_ *a = A + i * lda;                                                              \
        Py_ssize_t j0 = 0;                                                                      \
        for (; j0 + JB <= N; j0 += JB) {                                                        \
            T_ acc[JB];                                                                         \
            for (int j = 0; j < JB; j++) acc[j] = 0;                                            \
            for (Py_ssize_t k = 0; k < K; k++) {                                                \
                const T_ av = a[k];                                                             \
                const T_ *restrict b = B + k * ldb + j0;                                        \
                for (int j = 0; j < JB; j++) acc[j] += av * b[j];                               \
            }                                                                                   \
            for (int j = 0; j < JB; j++) c[j0 + j] = acc[j];                                    \
        }                                                                                       \
        if (j0 < N) {                                                                           \
            for (Py_ssize_t j = j0; j < N; j++) c[j] = 0;                                       \
            for (Py_ssize_t k = 0; k < K; k++) {                                                \
                const T_ av = a[k];                                                             \
                const T_ *restrict b = B + k * ldb;                                             \
                for (Py_ssize_t j = j0; j < N; j++) c[j] += av * b[j];                          \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
}
SMALL_GEMM(float, f_plain, 64)
SMALL_GEMM(double, d, 32)
/* The float form with its 64 sums held in eight AVX registers (a compiler keeps the block's
 * array in memory): a product, then a sum, each rounded, in the same order: the same bits. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx2")))
static void small_gemm_f_avx(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float *A,
                             Py_ssize_t lda, const float *B, Py_ssize_t ldb, float *C,
                             Py_ssize_t ldc) {
    for (Py_ssize_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        const float *a = A + i * lda;
        Py_ssize_t j0 = 0;
        for (; j0 + 64 <= N; j0 += 64) {
            __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0,
                   s7 = s0;
            const float *b = B + j0;
            for (Py_ssize_t k = 0; k < K; k++, b += ldb) {
                const __m256 av = _mm256_set1_ps(a[k]);
                s0 = _mm256_add_ps(s0, _mm256_mul_ps(av, _mm256_loadu_ps(b)));
                s1 = _mm256_add_ps(s1, _mm256_mul_ps(av, _mm256_loadu_ps(b + 8)));
                s2 = _mm256_add_ps(s2, _mm256_mul_ps(av, _mm256_loadu_ps(b + 16)));
                s3 = _mm256_add_ps(s3, _mm256_mul_ps(av, _mm256_loadu_ps(b + 24)));
                s4 = _mm256_add_ps(s4, _mm256_mul_ps(av, _mm256_loadu_ps(b + 32)));
                s5 = _mm256_add_ps(s5, _mm256_mul_ps(av, _mm256_loadu_ps(b + 40)));
                s6 = _mm256_add_ps(s6, _mm256_mul_ps(av, _mm256_loadu_ps(b + 48)));
                s7 = _mm256_add_ps(s7, _mm256_mul_ps(av, _mm256_loadu_ps(b + 56)));
            }
            _mm256_storeu_ps(c + j0, s0); _mm256_storeu_ps(c + j0 + 8, s1);
            _mm256_storeu_ps(c + j0 + 16, s2); _mm256_storeu_ps(c + j0 + 24, s3);
            _mm256_storeu_ps(c + j0 + 32, s4); _mm256_storeu_ps(c + j0 + 40, s5);
            _mm256_storeu_ps(c + j0 + 48, s6); _mm256_storeu_ps(c + j0 + 56, s7);
        }
        for (; j0 + 8 <= N; j0 += 8) {
            __m256 s0 = _mm256_setzero_ps();
            const float *b = B + j0;
            for (Py_ssize_t k = 0; k < K; k++, b += ldb)
                s0 = _mm256_add_ps(s0, _mm256_mul_ps(_mm256_set1_ps(a[k]), _mm256_loadu_ps(b)));
            _mm256_storeu_ps(c + j0, s0);
        }
        for (Py_ssize_t j = j0; j < N; j++) {
            float t = 0;
            for (Py_ssize_t k = 0; k < K; k++) t += a[k] * B[k * ldb + j];
            c[j] = t;
        }
    }
}
static int has_avx2(void) {
    static int has = -1;
    if (has < 0) has = __builtin_cpu_supports("avx2");
    return has;
}
static void small_gemm_f(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float *A, Py_ssize_t lda,
                         const float *B, Py_ssize_t ldb, float *C, Py_ssize_t ldc) {
    if (has_avx2()) small_gemm_f_avx(M, N, K, A, lda, B, ldb, C, ldc);
    else small_gemm_f_plain(M, N, K, A, lda, B, ldb, C, ldc);
}
#else
#define small_gemm_f small_gemm_f_plain
#endif
#define SMALL_ROWS 2
static inline void gemm_step_f(int transb, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                               const float *A, Py_ssize_t lda, const float *B, Py_ssize_t ldb,
                               float *C, Py_ssize_t ldc) {
    if (!transb && M <= SMALL_ROWS) small_gemm_f(M, N, K, A, lda, B, ldb, C, ldc);
    else gemm_f(transb, M, N, K, A, lda, B, ldb, C, ldc);
}
static inline void gemm_step_d(int transb, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                               const double *A, Py_ssize_t lda, const double *B, Py_ssize_t ldb,
                               double *C, Py_ssize_t ldc) {
    if (!transb && M <= SMALL_ROWS) small_gemm_d(M, N, K, A, lda, B, ldb, C, ldc);
    else gemm_d_(transb, M, N, K, A, lda, B, ldb, C, ldc);
}
#define GEMM_f gemm_step_f
#define GEMM_d gemm_step_d

/* C += A·B (row-major, B untransposed): the forward steps whose input part X·W + b was formed
 * for all steps at once before the loop */
#define ACC_GEMM(T_, SUF, BLAS_T, GEMM_PTR)                                                     \
static void gemm_acc_##SUF(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const T_ *A,              \
                           Py_ssize_t lda, const T_ *B, Py_ssize_t ldb, T_ *C, Py_ssize_t ldc) { \
    if (M <= SMALL_ROWS) {                                                                      \
        for (Py_ssize_t i = 0; i < M; i++) {                                                    \
            T_ *restrict c = C + i * ldc;                                                       \
            const T_ *a = A + i * lda;                                                          \
            for (Py_ssize_t k = 0; k < K; k++) {                                                \
                const T_ av = a[k];                                                             \
                const T_ *restrict b = B + k * ldb;                                             \
                for (Py_ssize_t j = 0; j < N; j++) c[j] += av * b[j];                           \
            }                                                                                   \
        }                                                                                       \
        return;                                                                                 \
    }                                                                                           \
    if (gemm_ilp64)                                                                             \
        ((BLAS_T##64_t)GEMM_PTR)(ROW_MAJOR, NO_TRANS, NO_TRANS, M, N, K, 1, A, lda, B, ldb, 1,  \
                                 C, ldc);                                                       \
    else                                                                                        \
        ((BLAS_T##32_t)GEMM_PTR)(ROW_MAJOR, NO_TRANS, NO_TRANS, (int)M, (int)N, (int)K, 1, A,   \
                                 (int)lda, B, (int)ldb, 1, C, (int)ldc);                        \
}
ACC_GEMM(float, f, sgemm, gemm_s)
ACC_GEMM(double, d, dgemm, gemm_d)

/* Forward, steps 0 … T−1:  A[j] = Hc[j]·Wc, then the step kernel.
 * Backward, steps hi−1 down to lo: the step kernel (finishing step j+1 with P when j+1 < T, and
 * adding the upstream G at steps marked live), then P = ∂Z[j]·Uᵀ with U = Wc[:u]. */
#ifdef AXONE_FMA_CLONE
#define LSTM_FWD_f(...) (lstm_fma() ? lstm_fwd_fx(__VA_ARGS__) : lstm_fwd_f(__VA_ARGS__))
#define LSTM_BWD_f(...) (lstm_fma() ? lstm_bwd_fx(__VA_ARGS__) : lstm_bwd_f(__VA_ARGS__))
#else
#define LSTM_FWD_f lstm_fwd_f
#define LSTM_BWD_f lstm_bwd_f
#endif
#define LSTM_FWD_d lstm_fwd_d
#define LSTM_BWD_d lstm_bwd_d
#define LSTM_SEQ(T_, SUF)                                                                       \
static void lstm_fwd_seq_##SUF(Py_ssize_t T, Py_ssize_t N, Py_ssize_t u, Py_ssize_t K,          \
                               T_ *A, T_ *C, T_ *AC, T_ *Hc, T_ *H, const T_ *rm,              \
                               const unsigned char *fr, const T_ *Wc, int pre) {                \
    for (Py_ssize_t j = 0; j < T; j++) {                                                        \
        if (pre)       /* A[j] holds [xₜ, 1]·[W; b]: add hᵣ·U */                              \
            gemm_acc_##SUF(N, 4 * u, u, Hc + j * N * K, K, Wc, 4 * u, A + j * N * 4 * u, 4 * u); \
        else                                                                                    \
            GEMM_##SUF(0, N, 4 * u, K, Hc + j * N * K, K, Wc, 4 * u, A + j * N * 4 * u, 4 * u); \
        LSTM_FWD_##SUF(j, N, u, K, A, C, AC, Hc, H, rm, fr);                                    \
    }                                                                                           \
}                                                                                               \
static void lstm_bwd_seq_##SUF(Py_ssize_t hi, Py_ssize_t lo, Py_ssize_t T, Py_ssize_t N,        \
                               Py_ssize_t u, const T_ *A, const T_ *C, const T_ *AC, T_ *dZ,    \
                               T_ *gh, T_ *gc, T_ *P, const T_ *G, const unsigned char *live,   \
                               const T_ *rm, const unsigned char *fr, const T_ *Wc) {           \
    for (Py_ssize_t j = hi - 1; j >= lo; j--) {                                                 \
        LSTM_BWD_##SUF(j, T, N, u, A, C, AC, dZ, gh, gc, j + 1 < T ? P : NULL,                  \
                       G && live[j] ? G : NULL, rm, fr);                                         \
        GEMM_##SUF(1, N, u, 4 * u, dZ + j * N * 4 * u, 4 * u, Wc, 4 * u, P, u);                 \
    }                                                                                           \
}

LSTM_SEQ(float, f)
LSTM_SEQ(double, d)

/* ------------------------------------------------------------------ GRU and SimpleRNN sequences */
/* Whole GRU (reset_after=True, Keras's default) and SimpleRNN loops in C, for tanh / sigmoid, the
 * same equations as the general loop of ops/recurrent.py; the input projection X·W + b₀ of all
 * steps is formed before (one product), the step's recurrent product here through the gemm.
 * Shapes (C-contiguous, one dtype; time-major, steps in processing order):
 *   XP (T, N, G·u)  x·W + b₀ on entry; the GRU forward leaves z, r, h̃ in it
 *   R  (T, N, 3u)   the GRU's h·U; its third block is left holding rₕ = (h·U)ₕ + b₁ₕ
 *   H  (T+1, N, u)  the states, H[0] = h0;   HR (T+1, N, u) hᵣ = h·rm when rm (N, u) is given
 *   fr (T, N)       uint8, 1 where the mask is False: the row keeps its state at that step
 *   dX (T, N, G·u)  ∂L/∂(x·W + b₀);  dR (T, N, 3u) ∂L/∂(h·U + b₁);  gh, P (N, u)
 *   G  (N, T, u)    the upstream gradient of the states (processing order), live (T) its steps.
 * GRU:  z = σ(x_z + r_z + b₁z), r = σ(x_r + r_r + b₁r), h̃ = tanh(x_h + r·rₕ),
 *       h = z·hₚ + (1 − z)·h̃;
 *   backward: ∂h̃ = gh(1 − z)(1 − h̃²), ∂z = gh(hₚ − h̃)z(1 − z), ∂r = ∂h̃·rₕ·r(1 − r),
 *       dX = [∂z, ∂r, ∂h̃], dR = [∂z, ∂r, ∂h̃·r],   ghₚ = gh·z + (dR·Uᵀ)·rm.
 * SimpleRNN:  h = tanh(x + hᵣ·U);   backward: d = gh(1 − h²), ghₚ = (d·Uᵀ)·rm. */
#define RNN_SEQ(T_, SUF)                                                                        \
static inline T_ sig_##SUF(T_ x) { return 1 / (1 + exp_##SUF(-x)); }                             \
static inline T_ tanh_##SUF(T_ x) { return 1 - 2 / (1 + exp_##SUF(2 * x)); }                    \
static inline void gru_fwd_row_##SUF(T_ *restrict xz, T_ *restrict xr, T_ *restrict xh,          \
                                     const T_ *restrict rz, const T_ *restrict rr,              \
                                     T_ *restrict rh, const T_ *restrict b1,                    \
                                     const T_ *restrict hp, T_ *restrict hn, Py_ssize_t u) {    \
    for (Py_ssize_t k = 0; k < u; k++) {                                                        \
        T_ z = sig_##SUF(xz[k] + (rz[k] + b1[k]));                                              \
        T_ r = sig_##SUF(xr[k] + (rr[k] + b1[u + k]));                                          \
        T_ q = rh[k] + b1[2 * u + k];                                                           \
        T_ hh = tanh_##SUF(xh[k] + r * q);                                                      \
        xz[k] = z; xr[k] = r; xh[k] = hh; rh[k] = q;                                            \
        hn[k] = z * hp[k] + (1 - z) * hh;                                                       \
    }                                                                                           \
}                                                                                               \
static inline void hr_row_##SUF(T_ *restrict hr, const T_ *restrict h, const T_ *restrict m,    \
                                Py_ssize_t u) {                                                 \
    for (Py_ssize_t k = 0; k < u; k++) hr[k] = h[k] * m[k];                                     \
}                                                                                               \
static void gru_fwd_seq_##SUF(Py_ssize_t T, Py_ssize_t N, Py_ssize_t u, T_ *XP, T_ *R, T_ *H,    \
                              T_ *HR, const T_ *rm, const unsigned char *fr, const T_ *U,       \
                              const T_ *b1) {                                                   \
    Py_ssize_t G = 3 * u;                                                                       \
    for (Py_ssize_t j = 0; j < T; j++) {                                                        \
        const T_ *in = HR ? HR + j * N * u : H + j * N * u;                                     \
        GEMM_##SUF(0, N, G, u, in, u, U, G, R + j * N * G, G);                                  \
        for (Py_ssize_t n = 0; n < N; n++) {                                                    \
            T_ *x = XP + (j * N + n) * G, *r = R + (j * N + n) * G;                             \
            const T_ *hp = H + (j * N + n) * u;                                                 \
            T_ *hn = H + ((j + 1) * N + n) * u;                                                 \
            gru_fwd_row_##SUF(x, x + u, x + 2 * u, r, r + u, r + 2 * u, b1, hp, hn, u);          \
            if (fr && fr[j * N + n]) memcpy(hn, hp, u * sizeof(T_));                            \
            if (HR) hr_row_##SUF(HR + ((j + 1) * N + n) * u, hn, rm + n * u, u);                \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
static inline void gru_bwd_row_##SUF(const T_ *restrict z_, const T_ *restrict r_,              \
                                     const T_ *restrict hh_, const T_ *restrict rh_,            \
                                     const T_ *restrict hp, T_ *restrict gh,                    \
                                     T_ *restrict dx, T_ *restrict dr, Py_ssize_t u) {          \
    for (Py_ssize_t k = 0; k < u; k++) {                                                        \
        T_ z = z_[k], r = r_[k], hh = hh_[k], g = gh[k];                                        \
        T_ gph = g * (1 - z) * (1 - hh * hh);                                                   \
        T_ gpz = g * (hp[k] - hh) * (z * (1 - z));                                              \
        T_ gpr = gph * rh_[k] * (r * (1 - r));                                                  \
        dx[k] = gpz; dx[u + k] = gpr; dx[2 * u + k] = gph;                                      \
        dr[k] = gpz; dr[u + k] = gpr; dr[2 * u + k] = gph * r;                                  \
        gh[k] = g * z;                                                                          \
    }                                                                                           \
}                                                                                               \
static void gru_bwd_seq_##SUF(Py_ssize_t T, Py_ssize_t N, Py_ssize_t u, const T_ *XP,            \
                              const T_ *R, const T_ *H, T_ *dX, T_ *dR, T_ *gh, T_ *P,           \
                              const T_ *G, const unsigned char *live, const T_ *rm,              \
                              const unsigned char *fr, const T_ *U) {                           \
    Py_ssize_t Gu = 3 * u;                                                                      \
    for (Py_ssize_t j = T - 1; j >= 0; j--) {                                                   \
        for (Py_ssize_t n = 0; n < N; n++) {                                                    \
            T_ *h = gh + n * u;                                                                 \
            T_ *dx = dX + (j * N + n) * Gu, *dr = dR + (j * N + n) * Gu;                        \
            if (G && live[j]) { const T_ *up = G + (n * T + j) * u;                             \
                                for (Py_ssize_t k = 0; k < u; k++) h[k] += up[k]; }             \
            if (fr && fr[j * N + n]) { memset(dx, 0, Gu * sizeof(T_));                          \
                                       memset(dr, 0, Gu * sizeof(T_)); continue; }              \
            const T_ *x = XP + (j * N + n) * Gu, *r = R + (j * N + n) * Gu;                     \
            gru_bwd_row_##SUF(x, x + u, x + 2 * u, r + 2 * u, H + (j * N + n) * u, h, dx, dr, u); \
        }                                                                                       \
        GEMM_##SUF(1, N, u, Gu, dR + j * N * Gu, Gu, U, Gu, P, u);                              \
        for (Py_ssize_t n = 0; n < N; n++) {                                                    \
            if (fr && fr[j * N + n]) continue;                                                  \
            T_ *h = gh + n * u;                                                                 \
            const T_ *p = P + n * u;                                                            \
            if (rm) { const T_ *m = rm + n * u;                                                 \
                      for (Py_ssize_t k = 0; k < u; k++) h[k] += p[k] * m[k]; }                 \
            else for (Py_ssize_t k = 0; k < u; k++) h[k] += p[k];                               \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
static void simple_fwd_seq_##SUF(Py_ssize_t T, Py_ssize_t N, Py_ssize_t u, const T_ *XP, T_ *H, \
                                 T_ *HR, const T_ *rm, const unsigned char *fr, const T_ *U) {  \
    for (Py_ssize_t j = 0; j < T; j++) {                                                        \
        const T_ *in = HR ? HR + j * N * u : H + j * N * u;                                     \
        T_ *out = H + (j + 1) * N * u;                                                          \
        GEMM_##SUF(0, N, u, u, in, u, U, u, out, u);                                            \
        for (Py_ssize_t n = 0; n < N; n++) {                                                    \
            T_ *hn = out + n * u;                                                               \
            const T_ *x = XP + (j * N + n) * u, *hp = H + (j * N + n) * u;                      \
            if (fr && fr[j * N + n]) memcpy(hn, hp, u * sizeof(T_));                            \
            else for (Py_ssize_t k = 0; k < u; k++) hn[k] = tanh_##SUF(x[k] + hn[k]);           \
            if (HR) hr_row_##SUF(HR + ((j + 1) * N + n) * u, hn, rm + n * u, u);                \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
static void simple_bwd_seq_##SUF(Py_ssize_t T, Py_ssize_t N, Py_ssize_t u, const T_ *H,          \
                                 T_ *dX, T_ *gh, T_ *P, const T_ *G,                             \
                                 const unsigned char *live, const T_ *rm,                       \
                                 const unsigned char *fr, const T_ *U) {                        \
    for (Py_ssize_t j = T - 1; j >= 0; j--) {                                                   \
        for (Py_ssize_t n = 0; n < N; n++) {                                                    \
            T_ *h = gh + n * u, *d = dX + (j * N + n) * u;                                      \
            if (G && live[j]) { const T_ *up = G + (n * T + j) * u;                             \
                                for (Py_ssize_t k = 0; k < u; k++) h[k] += up[k]; }             \
            if (fr && fr[j * N + n]) { memset(d, 0, u * sizeof(T_)); continue; }                \
            const T_ *y = H + ((j + 1) * N + n) * u;                                            \
            for (Py_ssize_t k = 0; k < u; k++) d[k] = h[k] * (1 - y[k] * y[k]);                 \
        }                                                                                       \
        GEMM_##SUF(1, N, u, u, dX + j * N * u, u, U, u, P, u);                                  \
        for (Py_ssize_t n = 0; n < N; n++) {                                                    \
            if (fr && fr[j * N + n]) continue;                                                  \
            T_ *h = gh + n * u;                                                                 \
            const T_ *p = P + n * u;                                                            \
            if (rm) { const T_ *m = rm + n * u;                                                 \
                      for (Py_ssize_t k = 0; k < u; k++) h[k] = p[k] * m[k]; }                  \
            else memcpy(h, p, u * sizeof(T_));                                                  \
        }                                                                                       \
    }                                                                                           \
}

RNN_SEQ(float, f)
RNN_SEQ(double, d)

/* ------------------------------------------------------------ GRU reset_after=False sequences */
/* The GRU of Keras 2's default (reset_after=False: the reset gate applied to the state before its
 * product), tanh / sigmoid, the same equations as the general loop of ops/recurrent.py:
 *   z = σ(x_z + hᵣ·U_z),  r = σ(x_r + hᵣ·U_r),  h̃ = tanh(x_h + (r·hᵣ)·U_h),
 *   h = z·hₚ + (1 − z)·h̃                     (x = xₜ·W + b, one bias row; hᵣ = hₚ·rm)
 * backward, gh = ∂L/∂h:
 *   ∂h̃ = gh(1 − z)(1 − h̃²),  ∂z = gh(hₚ − h̃)z(1 − z),  q = ∂h̃·U_hᵀ,  ∂r = q·hᵣ·r(1 − r),
 *   ghₚ = gh·z + ([∂z, ∂r]·[U_z, U_r]ᵀ + q·r)·rm
 * Two products per step each way (U_z, U_r together, then U_h), through the gemm.  Shapes
 * (C-contiguous, one dtype; time-major, steps in processing order):
 *   XP (T, N, 3u)  x·W + b on entry; the forward leaves z, r, h̃ in it
 *   S  (N, 3u)     the forward's scratch: hᵣ·[U_z, U_r] and (r·hᵣ)·U_h of the current step
 *   RH (T, N, u)   r·hᵣ of every step (for ∂U_h = Σ (r·hᵣ)ᵀ·∂h̃ after the loop)
 *   H  (T+1, N, u) the states, H[0] = h0;  HR (T+1, N, u) hᵣ = h·rm when rm (N, u) is given
 *   fr (T, N)      uint8, 1 where the mask is False: the row keeps its state at that step
 *   dX (T, N, 3u)  ∂L/∂(x·W + b) = [∂z, ∂r, ∂h̃];  gh (N, u);  P (2, N, u) the backward's scratch
 *   G  (N, T, u)   the upstream gradient of the states (processing order), live (T) its steps. */
#define GRU_RB_SEQ(T_, SUF)                                                                     \
static inline void grb_gates_row_##SUF(T_ *restrict xz, T_ *restrict xr, const T_ *restrict s,   \
                                       const T_ *restrict hr, T_ *restrict rh, Py_ssize_t u) {  \
    for (Py_ssize_t k = 0; k < u; k++) {                                                        \
        T_ z = sig_##SUF(xz[k] + s[k]);                                                         \
        T_ r = sig_##SUF(xr[k] + s[u + k]);                                                     \
        xz[k] = z; xr[k] = r; rh[k] = r * hr[k];                                                \
    }                                                                                           \
}                                                                                               \
static inline void grb_state_row_##SUF(const T_ *restrict z_, T_ *restrict xh,                  \
                                       const T_ *restrict q, const T_ *restrict hp,             \
                                       T_ *restrict hn, Py_ssize_t u) {                         \
    for (Py_ssize_t k = 0; k < u; k++) {                                                        \
        T_ z = z_[k];                                                                           \
        T_ hh = tanh_##SUF(xh[k] + q[k]);                                                       \
        xh[k] = hh;                                                                             \
        hn[k] = z * hp[k] + (1 - z) * hh;                                                       \
    }                                                                                           \
}                                                                                               \
static void grb_fwd_seq_##SUF(Py_ssize_t T, Py_ssize_t N, Py_ssize_t u, T_ *XP, T_ *S, T_ *RH,   \
                              T_ *H, T_ *HR, const T_ *rm, const unsigned char *fr,             \
                              const T_ *U) {                                                    \
    Py_ssize_t G = 3 * u;                                                                       \
    for (Py_ssize_t j = 0; j < T; j++) {                                                        \
        const T_ *in = HR ? HR + j * N * u : H + j * N * u;                                     \
        T_ *rh = RH + j * N * u;                                                                \
        GEMM_##SUF(0, N, 2 * u, u, in, u, U, G, S, G);                                          \
        for (Py_ssize_t n = 0; n < N; n++) {                                                    \
            T_ *x = XP + (j * N + n) * G;                                                       \
            grb_gates_row_##SUF(x, x + u, S + n * G, in + n * u, rh + n * u, u);                \
        }                                                                                       \
        GEMM_##SUF(0, N, u, u, rh, u, U + 2 * u, G, S + 2 * u, G);                              \
        for (Py_ssize_t n = 0; n < N; n++) {                                                    \
            T_ *x = XP + (j * N + n) * G;                                                       \
            const T_ *hp = H + (j * N + n) * u;                                                 \
            T_ *hn = H + ((j + 1) * N + n) * u;                                                 \
            grb_state_row_##SUF(x, x + 2 * u, S + n * G + 2 * u, hp, hn, u);                    \
            if (fr && fr[j * N + n]) memcpy(hn, hp, u * sizeof(T_));                            \
            if (HR) hr_row_##SUF(HR + ((j + 1) * N + n) * u, hn, rm + n * u, u);                \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
static inline void grb_bwd_row_##SUF(const T_ *restrict z_, const T_ *restrict hh_,             \
                                     const T_ *restrict hp, T_ *restrict gh, T_ *restrict dx,   \
                                     Py_ssize_t u) {                                            \
    for (Py_ssize_t k = 0; k < u; k++) {                                                        \
        T_ z = z_[k], hh = hh_[k], g = gh[k];                                                   \
        T_ gph = g * (1 - z) * (1 - hh * hh);                                                   \
        T_ gpz = g * (hp[k] - hh) * (z * (1 - z));                                              \
        dx[k] = gpz; dx[2 * u + k] = gph;                                                       \
        gh[k] = g * z;                                                                          \
    }                                                                                           \
}                                                                                               \
static inline void grb_bwd_r_##SUF(const T_ *restrict r_, const T_ *restrict q,                 \
                                   const T_ *restrict hr, T_ *restrict dr, Py_ssize_t u) {      \
    for (Py_ssize_t k = 0; k < u; k++) {                                                        \
        T_ r = r_[k];                                                                           \
        T_ gr = q[k] * hr[k];                                                                   \
        dr[k] = gr * (r * (1 - r));                                                             \
    }                                                                                           \
}                                                                                               \
static void grb_bwd_seq_##SUF(Py_ssize_t T, Py_ssize_t N, Py_ssize_t u, const T_ *XP,            \
                              const T_ *H, const T_ *HR, T_ *dX, T_ *gh, T_ *P, const T_ *G,     \
                              const unsigned char *live, const T_ *rm,                          \
                              const unsigned char *fr, const T_ *U) {                           \
    Py_ssize_t Gu = 3 * u;                                                                      \
    T_ *Q = P, *P2 = P + N * u;                                                                 \
    for (Py_ssize_t j = T - 1; j >= 0; j--) {                                                   \
        const T_ *hin = HR ? HR + j * N * u : H + j * N * u;                                    \
        for (Py_ssize_t n = 0; n < N; n++) {                                                    \
            T_ *h = gh + n * u;                                                                 \
            T_ *dx = dX + (j * N + n) * Gu;                                                     \
            if (G && live[j]) { const T_ *up = G + (n * T + j) * u;                             \
                                for (Py_ssize_t k = 0; k < u; k++) h[k] += up[k]; }             \
            if (fr && fr[j * N + n]) { memset(dx, 0, Gu * sizeof(T_)); continue; }              \
            const T_ *x = XP + (j * N + n) * Gu;                                                \
            grb_bwd_row_##SUF(x, x + 2 * u, H + (j * N + n) * u, h, dx, u);                     \
        }                                                                                       \
        GEMM_##SUF(1, N, u, u, dX + j * N * Gu + 2 * u, Gu, U + 2 * u, Gu, Q, u);               \
        for (Py_ssize_t n = 0; n < N; n++) {                                                    \
            if (fr && fr[j * N + n]) continue;                                                  \
            const T_ *x = XP + (j * N + n) * Gu;                                                \
            grb_bwd_r_##SUF(x + u, Q + n * u, hin + n * u, dX + (j * N + n) * Gu + u, u);       \
        }                                                                                       \
        GEMM_##SUF(1, N, u, 2 * u, dX + j * N * Gu, Gu, U, Gu, P2, u);                          \
        for (Py_ssize_t n = 0; n < N; n++) {                                                    \
            if (fr && fr[j * N + n]) continue;                                                  \
            T_ *h = gh + n * u;                                                                 \
            const T_ *p = P2 + n * u, *q = Q + n * u, *r = XP + (j * N + n) * Gu + u;           \
            if (rm) { const T_ *m = rm + n * u;                                                 \
                      for (Py_ssize_t k = 0; k < u; k++) h[k] += (p[k] + q[k] * r[k]) * m[k]; } \
            else for (Py_ssize_t k = 0; k < u; k++) h[k] += p[k] + q[k] * r[k];                 \
        }                                                                                       \
    }                                                                                           \
}

GRU_RB_SEQ(float, f)
GRU_RB_SEQ(double, d)

/* ------------------------------------------------------------------ Dense epilogues */
/* The element-wise ends of a Dense node (axone/ops/nn.py), one pass each instead of two or three
 * NumPy passes; the same operations in the same order as the NumPy form, so the same bits.
 *   forward:   y ← y + b, then max(y, 0) when relu (NaN stays NaN)
 *   backward:  gm = g·[y > 0] (or g itself), db = Σ_rows gm accumulated row after row, as
 *              np.add.reduce(gm, axis=0) does for a C-contiguous array. */
#define DENSE_KERNELS(T_, SUF)                                                                  \
static inline void bias_row_##SUF(T_ *restrict y, const T_ *restrict b, Py_ssize_t n, int relu) { \
    if (relu) for (Py_ssize_t j = 0; j < n; j++) { T_ v = y[j] + b[j]; y[j] = v < 0 ? 0 : v; } \
    else for (Py_ssize_t j = 0; j < n; j++) y[j] = y[j] + b[j];                                  \
}                                                                                               \
static inline void relu_row_##SUF(T_ *restrict y, Py_ssize_t n) {                               \
    for (Py_ssize_t j = 0; j < n; j++) { T_ v = y[j]; y[j] = v < 0 ? 0 : v; }                   \
}                                                                                               \
WIDE static void dense_fwd_##SUF(T_ *y, const T_ *b, Py_ssize_t m, Py_ssize_t n, int relu) {   \
    for (Py_ssize_t i = 0; i < m; i++) {                                                        \
        if (b) bias_row_##SUF(y + i * n, b, n, relu);                                           \
        else if (relu) relu_row_##SUF(y + i * n, n);                                            \
    }                                                                                           \
}                                                                                               \
static inline void mask_row_##SUF(T_ *restrict gm, const T_ *restrict g, const T_ *restrict y,  \
                                  Py_ssize_t n) {                                               \
    for (Py_ssize_t j = 0; j < n; j++) gm[j] = g[j] * (T_)(y[j] > 0);                           \
}                                                                                               \
static inline void acc_row_##SUF(T_ *restrict db, const T_ *restrict r, Py_ssize_t n) {         \
    for (Py_ssize_t j = 0; j < n; j++) db[j] = db[j] + r[j];                                    \
}                                                                                               \
/* rows of n values ld apart (a column block of wider rows: the same per-column order) */    \
WIDE static void dense_bwd_##SUF(const T_ *g, const T_ *y, T_ *gm, T_ *db, Py_ssize_t m,        \
                                 Py_ssize_t n, Py_ssize_t ld) {                                 \
    if (db && m == 0) memset(db, 0, n * sizeof(T_));                                            \
    for (Py_ssize_t i = 0; i < m; i++) {                                                        \
        const T_ *r = g + i * ld;                                                               \
        if (y) { mask_row_##SUF(gm + i * ld, r, y + i * ld, n); r = gm + i * ld; }              \
        if (db) {                                                                               \
            if (i == 0) memcpy(db, r, n * sizeof(T_));                                          \
            else acc_row_##SUF(db, r, n);                                                       \
        }                                                                                       \
    }                                                                                           \
}

DENSE_KERNELS(float, f)
DENSE_KERNELS(double, d)

/* ------------------------------------------------------------------ 2-D pooling */
/* Max and average pooling of a channels-last x (N, H, W, C), for ops/conv.py's Pool node: pool
 * ph×pw, strides sh×sw, padding pt, pb (rows) and pl, pr (columns) with 0 ≤ pad < pool, output
 * (N, OH, OW, C), OH = (H + pt + pb − ph)/sh + 1.  Window (i, j) covers rows i·sh − pt + a and
 * columns j·sw − pl + b (a < ph, b < pw); the padded ones are outside x.
 *   max:   y = the window's maximum, in row-major window order with a strict >, so that the first
 *          maximum is kept (a NaN wins and then stays: np.argmax's first NaN); padded entries
 *          count as −∞ (ops/conv.py pads with −∞), so a window of −∞ keeps its first entry.
 *          idx = the flat index (r·W + q)·C + c of that entry within its sample, −1 for a padded
 *          one.  Backward: dL/dx[idx] += dL/dy, the windows taken in reverse row-major order
 *          (the order in which the NumPy form's offset-slice adds reach an entry).
 *   avg:   y = Σ over the window's entries inside x / their count (padding is not counted,
 *          as Keras's "same" average pooling); the sum runs in row-major window order.
 *          Backward: dL/dx += dL/dy / count over those entries, windows in reverse order. */
typedef struct { Py_ssize_t N, H, W, C, OH, OW, ph, pw, sh, sw, pt, pl; } PoolGeom;

#define POOL_KERNELS(T_, SUF)                                                                   \
/* Windows j0 … j1−1 of an output row at one offset: xp, pos the entry of window j0 (the next  \
 * window's is sw·C further); assign (init) or keep the strict maximum (a NaN wins, then stays) */ \
static inline void max_row_##SUF(                               \
        T_ *restrict yr, int32_t *restrict ir, const T_ *restrict xp, int32_t pos,              \
        Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t sw, Py_ssize_t C, int init) {                  \
    const Py_ssize_t step = sw * C;                                                             \
    if (init) {                                                                                 \
        for (Py_ssize_t j = j0; j < j1; j++, xp += step, pos += (int32_t)step) {                \
            T_ *restrict yo = yr + j * C;                                                       \
            int32_t *restrict io = ir + j * C;                                                  \
            for (Py_ssize_t c = 0; c < C; c++) { yo[c] = xp[c]; io[c] = pos + (int32_t)c; }     \
        }                                                                                       \
        return;                                                                                 \
    }                                                                                           \
    if (C == 1) {                          /* one channel: a plain strided row */               \
        for (Py_ssize_t j = j0; j < j1; j++, pos += (int32_t)step) {                            \
            T_ v = xp[(j - j0) * step], m = yr[j];                                              \
            int take = (v > m) | ((v != v) & (m == m));                                         \
            yr[j] = take ? v : m;                                                               \
            ir[j] = take ? pos : ir[j];                                                         \
        }                                                                                       \
        return;                                                                                 \
    }                                                                                           \
    for (Py_ssize_t j = j0; j < j1; j++, xp += step, pos += (int32_t)step) {                    \
        T_ *restrict yo = yr + j * C;                                                           \
        int32_t *restrict io = ir + j * C;                                                      \
        for (Py_ssize_t c = 0; c < C; c++) {                                                    \
            T_ v = xp[c], m = yo[c];                                                            \
            int take = (v > m) | ((v != v) & (m == m));                                         \
            yo[c] = take ? v : m;                                                               \
            io[c] = take ? pos + (int32_t)c : io[c];                                            \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
/* Row by row: for each offset (a, b) in row-major order, one pass over the output row's       \
 * windows whose entry at that offset lies inside x (columns j0 … j1−1); the first offset assigns \
 * (its padded windows get −∞ and −1), the others compare. */                                   \
WIDE static void max_pool2d_##SUF(const PoolGeom *g, const T_ *x, T_ *y, int32_t *idx) {        \
    const Py_ssize_t H = g->H, W = g->W, C = g->C, OW = g->OW;                                  \
    for (Py_ssize_t n = 0; n < g->N; n++) {                                                     \
        const T_ *xn = x + n * H * W * C;                                                       \
        for (Py_ssize_t i = 0; i < g->OH; i++) {                                                \
            T_ *yr = y + (n * g->OH + i) * OW * C;                                              \
            int32_t *ir = idx + (n * g->OH + i) * OW * C;                                       \
            for (Py_ssize_t a = 0; a < g->ph; a++) {                                            \
                Py_ssize_t r = i * g->sh - g->pt + a;                                           \
                for (Py_ssize_t b = 0; b < g->pw; b++) {                                        \
                    int init = a == 0 && b == 0;                                                \
                    Py_ssize_t j0 = 0, j1 = 0, lim = W - 1 + g->pl - b;                         \
                    if (r >= 0 && r < H && lim >= 0) {                                          \
                        j0 = g->pl > b ? (g->pl - b + g->sw - 1) / g->sw : 0;                   \
                        j1 = lim / g->sw + 1;                                                   \
                        j1 = j1 > OW ? OW : j1;                                                 \
                        j0 = j0 > j1 ? j1 : j0;                                                 \
                    }                                                                           \
                    if (init) {                        /* padded first entries: −∞, index −1 */ \
                        for (Py_ssize_t t = 0; t < j0 * C; t++) { yr[t] = -(T_)INFINITY;        \
                                                                   ir[t] = -1; }               \
                        for (Py_ssize_t t = j1 * C; t < OW * C; t++) { yr[t] = -(T_)INFINITY;   \
                                                                        ir[t] = -1; }          \
                    }                                                                           \
                    if (j0 >= j1) continue;                                                     \
                    Py_ssize_t q0 = j0 * g->sw - g->pl + b;                                     \
                    const T_ *xp = xn + (r * W + q0) * C;                                       \
                    int32_t pos = (int32_t)((r * W + q0) * C);                                  \
                    max_row_##SUF(yr, ir, xp, pos, j0, j1, g->sw, C, init);                     \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
/* returns 0, or −1 when an index lies outside its sample (nothing is written there) */         \
WIDE static int max_pool2d_bwd_##SUF(const PoolGeom *g, const T_ *gy, const int32_t *idx,       \
                                     T_ *gx) {                                                  \
    const Py_ssize_t C = g->C, HWC = g->H * g->W * g->C, OWC = g->OW * C;                       \
    int bad = 0;                                                                                \
    memset(gx, 0, (size_t)(g->N * HWC) * sizeof(T_));                                           \
    for (Py_ssize_t n = 0; n < g->N; n++) {                                                     \
        T_ *gn = gx + n * HWC;                                                                  \
        const T_ *gyn = gy + n * g->OH * OWC;                                                   \
        const int32_t *in = idx + n * g->OH * OWC;                                              \
        for (Py_ssize_t o = g->OH * OWC - C; o >= 0; o -= C)                                    \
            for (Py_ssize_t c = 0; c < C; c++) {                                                \
                int32_t id = in[o + c];                                                         \
                if (id < 0) { bad |= id != -1; continue; }                                      \
                if (id >= HWC) { bad = 1; continue; }                                           \
                gn[id] += gyn[o + c];                                                           \
            }                                                                                   \
    }                                                                                           \
    return bad ? -1 : 0;                                                                        \
}                                                                                               \
/* the window's rows [r0, r1) and columns [q0, q1) inside x */                                  \
WIDE static void avg_pool2d_##SUF(const PoolGeom *g, const T_ *x, T_ *y) {                      \
    const Py_ssize_t H = g->H, W = g->W, C = g->C;                                              \
    for (Py_ssize_t n = 0; n < g->N; n++) {                                                     \
        const T_ *xn = x + n * H * W * C;                                                       \
        for (Py_ssize_t i = 0; i < g->OH; i++) {                                                \
            Py_ssize_t r0 = i * g->sh - g->pt, r1 = r0 + g->ph;                                 \
            r0 = r0 < 0 ? 0 : r0; r1 = r1 > H ? H : r1;                                         \
            for (Py_ssize_t j = 0; j < g->OW; j++) {                                            \
                Py_ssize_t q0 = j * g->sw - g->pl, q1 = q0 + g->pw;                             \
                q0 = q0 < 0 ? 0 : q0; q1 = q1 > W ? W : q1;                                     \
                T_ *restrict yo = y + ((n * g->OH + i) * g->OW + j) * C;                        \
                int first = 1;                                                                  \
                for (Py_ssize_t r = r0; r < r1; r++)                                            \
                    for (Py_ssize_t q = q0; q < q1; q++) {                                      \
                        const T_ *restrict xp = xn + (r * W + q) * C;                           \
                        if (first) { memcpy(yo, xp, C * sizeof(T_)); first = 0; }               \
                        else for (Py_ssize_t c = 0; c < C; c++) yo[c] = yo[c] + xp[c];          \
                    }                                                                           \
                T_ cnt = (T_)((r1 - r0) * (q1 - q0));                                           \
                for (Py_ssize_t c = 0; c < C; c++) yo[c] = yo[c] / cnt;                         \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
WIDE static void avg_pool2d_bwd_##SUF(const PoolGeom *g, const T_ *gy, T_ *gx) {                \
    const Py_ssize_t H = g->H, W = g->W, C = g->C;                                              \
    memset(gx, 0, (size_t)(g->N * H * W * C) * sizeof(T_));                                     \
    for (Py_ssize_t n = 0; n < g->N; n++) {                                                     \
        T_ *gn = gx + n * H * W * C;                                                            \
        for (Py_ssize_t i = g->OH - 1; i >= 0; i--) {                                           \
            Py_ssize_t r0 = i * g->sh - g->pt, r1 = r0 + g->ph;                                 \
            r0 = r0 < 0 ? 0 : r0; r1 = r1 > H ? H : r1;                                         \
            for (Py_ssize_t j = g->OW - 1; j >= 0; j--) {                                       \
                Py_ssize_t q0 = j * g->sw - g->pl, q1 = q0 + g->pw;                             \
                q0 = q0 < 0 ? 0 : q0; q1 = q1 > W ? W : q1;                                     \
                const T_ *restrict go = gy + ((n * g->OH + i) * g->OW + j) * C;                 \
                T_ cnt = (T_)((r1 - r0) * (q1 - q0));                                           \
                for (Py_ssize_t r = r0; r < r1; r++)                                            \
                    for (Py_ssize_t q = q0; q < q1; q++) {                                      \
                        T_ *restrict gp = gn + (r * W + q) * C;                                 \
                        for (Py_ssize_t c = 0; c < C; c++) gp[c] = gp[c] + go[c] / cnt;         \
                    }                                                                           \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
}

POOL_KERNELS(float, f)
POOL_KERNELS(double, d)

/* ------------------------------------------------------------------ softmax rows */
/* Softmax and categorical cross-entropy along the last axis of a C-contiguous array, row by row
 * (rows = size / K), for ops.math.Softmax and ops.nn.SoftmaxCrossEntropy:
 *   m = max z (NaN if any z is NaN), s = z − m,  p = e^s / Σ e^s,  log p = s − log Σ e^s
 *   loss = −Σ y·log p;    dL/dz = g·(p·Σ y − y)
 * e^s by the inline exp above, which follows np.exp down into the subnormals and to 0 (s ≤ 0);
 * log p is formed from s, not from e^s. */
#define SOFTMAX_KERNELS(T_, SUF, LOG)                                                           \
WIDE static void softmax_rows_##SUF(const T_ *z, T_ *p, T_ *lp, Py_ssize_t rows, Py_ssize_t K) { \
    for (Py_ssize_t r = 0; r < rows; r++) {                                                     \
        const T_ *zr = z + r * K;                                                               \
        T_ *pr = p + r * K;                                                                     \
        T_ m = zr[0];                                                                           \
        for (Py_ssize_t k = 1; k < K; k++) {                                                    \
            T_ v = zr[k];                                                                       \
            if (v > m || v != v) m = v;                                                         \
            if (m != m) break;                                                                  \
        }                                                                                       \
        T_ se = 0;                                                                              \
        for (Py_ssize_t k = 0; k < K; k++) { T_ e = exp_##SUF(zr[k] - m); pr[k] = e; se += e; } \
        for (Py_ssize_t k = 0; k < K; k++) pr[k] = pr[k] / se;                                  \
        if (lp) {                                                                               \
            T_ ls = LOG(se);                                                                    \
            T_ *lr = lp + r * K;                                                                \
            for (Py_ssize_t k = 0; k < K; k++) lr[k] = (zr[k] - m) - ls;                        \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
WIDE static void xent_rows_##SUF(const T_ *y, const T_ *lp, T_ *loss, Py_ssize_t rows,         \
                                 Py_ssize_t K) {                                                \
    for (Py_ssize_t r = 0; r < rows; r++) {                                                     \
        T_ acc = 0;                                                                             \
        for (Py_ssize_t k = 0; k < K; k++) acc += y[r * K + k] * lp[r * K + k];                 \
        loss[r] = -acc;                                                                         \
    }                                                                                           \
}                                                                                               \
WIDE static void xent_grad_rows_##SUF(const T_ *g, const T_ *p, const T_ *y, T_ *gz,           \
                                      Py_ssize_t rows, Py_ssize_t K) {                          \
    for (Py_ssize_t r = 0; r < rows; r++) {                                                     \
        const T_ *yr = y + r * K, *pr = p + r * K;                                              \
        T_ *o = gz + r * K;                                                                     \
        T_ sy = 0;                                                                              \
        for (Py_ssize_t k = 0; k < K; k++) sy += yr[k];                                         \
        T_ gr = g[r];                                                                           \
        for (Py_ssize_t k = 0; k < K; k++) o[k] = gr * (pr[k] * sy - yr[k]);                    \
    }                                                                                           \
}

SOFTMAX_KERNELS(float, f, logf)
SOFTMAX_KERNELS(double, d, log)

/* ------------------------------------------------------------ Python glue */
/* Every entry point checks every array it is given before it touches any memory: present where
 * the call needs it, its item type (float32 or float64 as the call says, uint8 or bool for the
 * masks, int32 for the pooling indices), C-contiguous, writable where it is written, the shape that the other arguments imply,
 * and no array that is written sharing memory with another argument.  A wrong call raises
 * TypeError (not an array, or the wrong item type) or ValueError (shape, layout, aliasing, flags)
 * naming the function and the argument. */
#define MAXVIEW 16

typedef struct {
    const char *fn;                 /* the function, for the messages */
    int n;
    Py_buffer v[MAXVIEW];
    const char *name[MAXVIEW];
    int written[MAXVIEW];
} Views;

static void release(Views *vs) {
    for (int i = 0; i < vs->n; i++) PyBuffer_Release(&vs->v[i]);
    vs->n = 0;
}

static const char *type_name(char code) {
    return code == 'f' ? "float32" : code == 'd' ? "float64" : code == 'i' ? "int32"
                                                                : "uint8 or bool";
}

/* 'f' (float32), 'd' (float64), 'B' (uint8 or bool), 'i' (int32) for a buffer of that native
 * item, else 0 */
static char item_code(const Py_buffer *v) {
    static const int one = 1;
    const int little = *(const char *)&one;
    const char *f = v->format ? v->format : "B";
    if (*f == '@' || *f == '=' || (*f == '<' && little) || (*f == '>' && !little)) f++;
    if (f[0] == '\0' || f[1] != '\0') return 0;
    char c = f[0] == '?' ? 'B' : f[0];
    if (c == 'l' && v->itemsize == 4) c = 'i';            /* int32 where long is 32-bit */
    if ((c == 'f' && v->itemsize == 4) || (c == 'd' && v->itemsize == 8)
        || (c == 'B' && v->itemsize == 1) || (c == 'i' && v->itemsize == 4))
        return c;
    return 0;
}

static void wrong_type(const Views *vs, const char *name, char code, PyObject *o) {
    PyObject *dt = PyObject_GetAttrString(o, "dtype");
    if (dt == NULL) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: %s must be a %s array, received %s", vs->fn, name,
                     type_name(code), Py_TYPE(o)->tp_name);
        return;
    }
    PyErr_Format(PyExc_TypeError, "%s: %s must be a %s array, received an array of dtype %S",
                 vs->fn, name, type_name(code), dt);
    Py_DECREF(dt);
}

/* o: a C-contiguous array of item code (f, d or B), writable when it is written; ndim ≥ 0 checks
 * the dimensions against dims (dims[k] < 0 accepts any size and stores it back), ndim < 0 takes
 * any dimensions and checks the item count against dims[0] the same way.  None gives NULL when
 * optional. */
static int view(Views *vs, PyObject *o, const char *name, char code, int ndim, Py_ssize_t *dims,
                int optional, int written, void **out) {
    *out = NULL;
    if (o == Py_None) {
        if (optional) return 0;
        PyErr_Format(PyExc_TypeError, "%s: %s is required (a %s array), received None", vs->fn,
                     name, type_name(code));
        return -1;
    }
    if (vs->n >= MAXVIEW) {
        PyErr_Format(PyExc_RuntimeError, "%s: too many arrays", vs->fn);
        return -1;
    }
    Py_buffer *v = &vs->v[vs->n];
    if (PyObject_GetBuffer(o, v, PyBUF_STRIDES | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: %s must be a %s array, received %s", vs->fn, name,
                     type_name(code), Py_TYPE(o)->tp_name);
        return -1;
    }
    vs->name[vs->n] = name;
    vs->written[vs->n] = written;
    vs->n++;
    if (item_code(v) != code) {
        wrong_type(vs, name, code, o);
        return -1;
    }
    if (ndim >= 0 && v->ndim != ndim) {
        PyErr_Format(PyExc_ValueError, "%s: %s must have %d dimensions, received %d", vs->fn, name,
                     ndim, v->ndim);
        return -1;
    }
    if (!PyBuffer_IsContiguous(v, 'C')) {
        PyErr_Format(PyExc_ValueError, "%s: %s must be C-contiguous, received a strided view",
                     vs->fn, name);
        return -1;
    }
    if (written && v->readonly) {
        PyErr_Format(PyExc_ValueError, "%s: %s is written and must be writable, received a "
                     "read-only array", vs->fn, name);
        return -1;
    }
    if (ndim < 0) {
        Py_ssize_t len = v->len / v->itemsize;
        if (dims[0] < 0) dims[0] = len;
        else if (len != dims[0]) {
            PyErr_Format(PyExc_ValueError, "%s: buffers of different lengths: %s holds %zd values, "
                         "expected %zd", vs->fn, name, len, dims[0]);
            return -1;
        }
    }
    for (int k = 0; k < ndim; k++) {
        if (dims[k] < 0) dims[k] = v->shape[k];
        else if (v->shape[k] != dims[k]) {
            PyErr_Format(PyExc_ValueError, "%s: %s has size %zd on axis %d, expected %zd", vs->fn,
                         name, v->shape[k], k, dims[k]);
            return -1;
        }
    }
    *out = v->buf;
    return 0;
}

/* No array that is written may share memory with another argument (the kernels read their
 * inputs through restrict pointers, and an overlap would mix results into inputs). */
static int distinct(const Views *vs) {
    for (int a = 0; a < vs->n; a++) {
        for (int b = 0; b < a; b++) {
            if (!vs->written[a] && !vs->written[b]) continue;
            const char *a0 = vs->v[a].buf, *b0 = vs->v[b].buf;
            const char *a1 = a0 + vs->v[a].len, *b1 = b0 + vs->v[b].len;
            if (vs->v[a].len > 0 && vs->v[b].len > 0 && a0 < b1 && b0 < a1) {
                const char *w = vs->written[a] ? vs->name[a] : vs->name[b];
                PyErr_Format(PyExc_ValueError, "%s: %s and %s share memory; %s is written, so they "
                             "must be separate arrays", vs->fn, vs->name[b], vs->name[a], w);
                return -1;
            }
        }
    }
    return 0;
}

/* The float item type of o ('f' or 'd'), which sets the type of the other arrays of a call */
static char float_code(const Views *vs, PyObject *o, const char *name) {
    if (o == Py_None) {
        PyErr_Format(PyExc_TypeError, "%s: %s is required (a float32 or float64 array), received "
                     "None", vs->fn, name);
        return 0;
    }
    Py_buffer probe;
    if (PyObject_GetBuffer(o, &probe, PyBUF_STRIDES | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: %s must be a float32 or float64 array, received %s",
                     vs->fn, name, Py_TYPE(o)->tp_name);
        return 0;
    }
    char code = item_code(&probe);
    PyBuffer_Release(&probe);
    if (code == 'f' || code == 'd') return code;
    PyObject *dt = PyObject_GetAttrString(o, "dtype");
    if (dt == NULL) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: %s must be a float32 or float64 array, received %s",
                     vs->fn, name, Py_TYPE(o)->tp_name);
    } else {
        PyErr_Format(PyExc_TypeError, "%s: %s must be a float32 or float64 array, received an "
                     "array of dtype %S", vs->fn, name, dt);
        Py_DECREF(dt);
    }
    return 0;
}

/* Optimizer rules: buffer names, and for each value of flags the buffers it reads (bit i:
 * buffer i); a buffer outside that set may be None. */
typedef struct {
    const char *name;
    kernel_fn f32, f64;
    int nbuf, nscalar, nflags;
    unsigned need[4];
    const char *buf[MAXBUF];
} Rule;

static const Rule rules[] = {
    {"sgd", sgd_f, sgd_d, 3, 3, 3, {0x3, 0x7, 0x7}, {"w", "g", "momentum"}},
    {"adam", adam_f, adam_d, 5, 5, 2, {0xF, 0x1F}, {"w", "g", "m", "v", "vhat"}},
    {"rmsprop", rmsprop_f, rmsprop_d, 5, 6, 4, {0x7, 0xF, 0x17, 0x1F},
     {"w", "g", "velocity", "average_gradient", "momentum"}},
    {"adagrad", adagrad_f, adagrad_d, 3, 3, 1, {0x7}, {"w", "g", "accumulator"}},
    {"adadelta", adadelta_f, adadelta_d, 4, 5, 1, {0xF},
     {"w", "g", "accumulated_grad", "accumulated_delta_var"}},
    {"adamax", adamax_f, adamax_d, 4, 5, 1, {0xF}, {"w", "g", "m", "u"}},
    {"nadam", nadam_f, nadam_d, 4, 8, 1, {0xF}, {"w", "g", "m", "v"}},
};

/* rule(is_double, flags, buffers (tuple; None for unused), scalars (tuple of floats)): every
 * buffer given is a flat float32 (is_double false) or float64 array of the length of w; w and the
 * state are written, g is only read. */
static PyObject *apply_rule(const Rule *rule, PyObject *args) {
    int is_double, flags;
    PyObject *bufs, *scalars;
    if (!PyArg_ParseTuple(args, "iiO!O!", &is_double, &flags, &PyTuple_Type, &bufs,
                          &PyTuple_Type, &scalars))
        return NULL;
    if (PyTuple_GET_SIZE(bufs) != rule->nbuf || PyTuple_GET_SIZE(scalars) != rule->nscalar) {
        PyErr_Format(PyExc_TypeError, "%s: expected %d buffers and %d scalars, received %zd and %zd",
                     rule->name, rule->nbuf, rule->nscalar, PyTuple_GET_SIZE(bufs),
                     PyTuple_GET_SIZE(scalars));
        return NULL;
    }
    if (flags < 0 || flags >= rule->nflags) {
        PyErr_Format(PyExc_ValueError, "%s: flags must lie in [0, %d], received %d", rule->name,
                     rule->nflags - 1, flags);
        return NULL;
    }
    Job job;
    memset(&job, 0, sizeof job);
    job.flags = flags;
    job.fn = is_double ? rule->f64 : rule->f32;
    const char code = is_double ? 'd' : 'f';
    Views vs = {.fn = rule->name, .n = 0};
    Py_ssize_t n[1] = {-1};
    for (int i = 0; i < rule->nbuf; i++) {
        int needed = (rule->need[flags] >> i) & 1;
        if (view(&vs, PyTuple_GET_ITEM(bufs, i), rule->buf[i], code, -1, n, !needed, i != 1,
                 &job.p[i]) < 0)
            goto fail;
    }
    if (distinct(&vs) < 0) goto fail;
    for (int i = 0; i < rule->nscalar; i++) {
        job.s[i] = PyFloat_AsDouble(PyTuple_GET_ITEM(scalars, i));
        if (job.s[i] == -1.0 && PyErr_Occurred()) goto fail;
    }
    if (n[0] > 0) {
        Py_BEGIN_ALLOW_THREADS
        run(&job, n[0]);
        Py_END_ALLOW_THREADS
    }
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

/* lstm_forward(j, A, C, AC, Hc, H, rm, fr) */
static PyObject *py_lstm_forward(PyObject *self, PyObject *args) {
    Py_ssize_t j;
    PyObject *oA, *oC, *oAC, *oHc, *oH, *orm, *ofr;
    if (!PyArg_ParseTuple(args, "nOOOOOOO", &j, &oA, &oC, &oAC, &oHc, &oH, &orm, &ofr))
        return NULL;
    Views vs = {.fn = "lstm_forward", .n = 0};
    void *A, *C, *AC, *Hc, *H, *rm, *fr;
    char code = float_code(&vs, oA, "A");
    if (!code) return NULL;
    Py_ssize_t dA[3] = {-1, -1, -1};
    if (view(&vs, oA, "A", code, 3, dA, 0, 1, &A) < 0) goto fail;
    Py_ssize_t T = dA[0], N = dA[1], u = dA[2] / 4;
    if (dA[2] % 4 || j < 0 || j >= T) {
        PyErr_Format(PyExc_ValueError, "lstm_forward: A's last axis must hold 4 gates and "
                     "0 <= j < T, received A of %zd values per row, j = %zd, T = %zd", dA[2], j, T);
        goto fail;
    }
    Py_ssize_t dC[3] = {T + 1, N, u}, dAC[3] = {T, N, u}, dHc[3] = {T + 1, N, -1},
               dH[3] = {T + 1, N, u}, drm[2] = {N, u}, dfr[2] = {T, N};
    if (view(&vs, oC, "C", code, 3, dC, 0, 1, &C) < 0 || view(&vs, oAC, "AC", code, 3, dAC, 0, 1, &AC) < 0
        || view(&vs, oHc, "Hc", code, 3, dHc, 0, 1, &Hc) < 0
        || view(&vs, oH, "H", code, 3, dH, 1, 1, &H) < 0 || view(&vs, orm, "rm", code, 2, drm, 1, 0, &rm) < 0
        || view(&vs, ofr, "fr", 'B', 2, dfr, 1, 0, &fr) < 0 || distinct(&vs) < 0)
        goto fail;
    if (dHc[2] < u || (rm && !H)) {
        PyErr_SetString(PyExc_ValueError, "lstm_forward: Hc rows must hold at least u values, and "
                        "rm needs H");
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    if (code == 'f') LSTM_FWD_f(j, N, u, dHc[2], A, C, AC, Hc, H, rm, fr);
    else lstm_fwd_d(j, N, u, dHc[2], A, C, AC, Hc, H, rm, fr);
    Py_END_ALLOW_THREADS
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

/* lstm_backward(j, A, C, AC, dZ, gh, gc, P, G, rm, fr) */
static PyObject *py_lstm_backward(PyObject *self, PyObject *args) {
    Py_ssize_t j;
    PyObject *oA, *oC, *oAC, *odZ, *ogh, *ogc, *oP, *oG, *orm, *ofr;
    if (!PyArg_ParseTuple(args, "nOOOOOOOOOO", &j, &oA, &oC, &oAC, &odZ, &ogh, &ogc, &oP, &oG,
                          &orm, &ofr))
        return NULL;
    Views vs = {.fn = "lstm_backward", .n = 0};
    void *A, *C, *AC, *dZ, *gh, *gc, *P, *G, *rm, *fr;
    char code = float_code(&vs, oA, "A");
    if (!code) return NULL;
    Py_ssize_t dA[3] = {-1, -1, -1};
    if (view(&vs, oA, "A", code, 3, dA, 0, 0, &A) < 0) goto fail;
    Py_ssize_t T = dA[0], N = dA[1], u = dA[2] / 4;
    if (dA[2] % 4 || j < -1 || j >= T) {
        PyErr_Format(PyExc_ValueError, "lstm_backward: A's last axis must hold 4 gates and "
                     "-1 <= j < T, received A of %zd values per row, j = %zd, T = %zd", dA[2], j, T);
        goto fail;
    }
    Py_ssize_t dC[3] = {T + 1, N, u}, dAC[3] = {T, N, u}, dZd[3] = {T, N, 4 * u}, dgh[2] = {N, u},
               dgc[2] = {N, u}, dP[2] = {N, u}, dG[3] = {N, T + 1, u}, drm[2] = {N, u},
               dfr[2] = {T, N};
    if (view(&vs, oC, "C", code, 3, dC, 0, 0, &C) < 0 || view(&vs, oAC, "AC", code, 3, dAC, 0, 0, &AC) < 0
        || view(&vs, odZ, "dZ", code, 3, dZd, 0, 1, &dZ) < 0
        || view(&vs, ogh, "gh", code, 2, dgh, 0, 1, &gh) < 0
        || view(&vs, ogc, "gc", code, 2, dgc, 0, 1, &gc) < 0
        || view(&vs, oP, "P", code, 2, dP, 1, 0, &P) < 0 || view(&vs, oG, "G", code, 3, dG, 1, 0, &G) < 0
        || view(&vs, orm, "rm", code, 2, drm, 1, 0, &rm) < 0
        || view(&vs, ofr, "fr", 'B', 2, dfr, 1, 0, &fr) < 0 || distinct(&vs) < 0)
        goto fail;
    if (P && j + 1 >= T) {
        PyErr_Format(PyExc_ValueError, "lstm_backward: P finishes step j+1, which must be < T, "
                     "received j = %zd, T = %zd", j, T);
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    if (code == 'f') LSTM_BWD_f(j, T, N, u, A, C, AC, dZ, gh, gc, P, G, rm, fr);
    else lstm_bwd_d(j, T, N, u, A, C, AC, dZ, gh, gc, P, G, rm, fr);
    Py_END_ALLOW_THREADS
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

/* dense_forward(y, b or None, relu): y (m, n) in place */
/* The Dense epilogues on the pool's threads, from DENSE_PART_MIN values a part: the forward in
 * runs of rows, the backward in blocks of 16·k columns (each column's bias-gradient sum still
 * runs over the rows in order): the one-thread bits either way. */
#define DENSE_PART_MIN ((Py_ssize_t)1 << 15)
typedef struct {
    char code; int fwd, relu;
    const void *g, *y, *b;
    void *gm, *db, *yw;
    Py_ssize_t m, n, ld;
} DensePart;

static void dense_part_fn(void *arg) {
    DensePart *q = (DensePart *)arg;
    if (q->fwd) {
        if (q->code == 'f') dense_fwd_f(q->yw, q->b, q->m, q->n, q->relu);
        else dense_fwd_d(q->yw, q->b, q->m, q->n, q->relu);
    } else {
        if (q->code == 'f') dense_bwd_f(q->g, q->y, q->gm, q->db, q->m, q->n, q->ld);
        else dense_bwd_d(q->g, q->y, q->gm, q->db, q->m, q->n, q->ld);
    }
}

static void dense_split(char code, int fwd, const void *g, void *y, void *gm, void *db,
                        const void *b, Py_ssize_t m, Py_ssize_t n, int relu) {
    Py_ssize_t it = code == 'f' ? 4 : 8;
    Py_ssize_t k = num_threads < 8 ? num_threads : 8;
    if (k > m * n / DENSE_PART_MIN) k = m * n / DENSE_PART_MIN;
    if (fwd ? k > m : k > n / 16) k = fwd ? m : n / 16;
    DensePart parts[8];
    PoolTask tasks[8];
    Py_ssize_t np_ = 0;
    if (k < 2) {
        DensePart one = {code, fwd, relu, g, y, b, gm, db, y, m, n, n};
        dense_part_fn(&one);
        return;
    }
    if (fwd) {
        Py_ssize_t per = (m + k - 1) / k;
        for (Py_ssize_t lo = 0; lo < m; lo += per, np_++) {
            Py_ssize_t hi = lo + per < m ? lo + per : m;
            DensePart q = {code, 1, relu, NULL, NULL, b, NULL, NULL, (char *)y + lo * n * it,
                           hi - lo, n, n};
            parts[np_] = q;
        }
    } else {
        Py_ssize_t per = ((n + k - 1) / k + 15) & ~(Py_ssize_t)15;
        for (Py_ssize_t lo = 0; lo < n; lo += per, np_++) {
            Py_ssize_t hi = lo + per < n ? lo + per : n;
            DensePart q = {code, 0, 0, (const char *)g + lo * it,
                           y ? (const char *)y + lo * it : NULL, NULL,
                           gm ? (char *)gm + lo * it : NULL, db ? (char *)db + lo * it : NULL,
                           NULL, m, hi - lo, n};
            parts[np_] = q;
        }
    }
    for (Py_ssize_t i = 0; i < np_; i++) { tasks[i].fn = dense_part_fn; tasks[i].arg = parts + i; }
#ifdef AXONE_THREADS
    if (pthread_mutex_trylock(&pool_use) == 0) {
        pool_run(tasks, np_);
        pthread_mutex_unlock(&pool_use);
        return;
    }
#endif
    for (Py_ssize_t i = 0; i < np_; i++) dense_part_fn(parts + i);
}

static PyObject *py_dense_forward(PyObject *self, PyObject *args) {
    PyObject *oy, *ob;
    int relu;
    if (!PyArg_ParseTuple(args, "OOp", &oy, &ob, &relu)) return NULL;
    Views vs = {.fn = "dense_forward", .n = 0};
    void *y, *b;
    char code = float_code(&vs, oy, "y");
    if (!code) return NULL;
    Py_ssize_t dy[2] = {-1, -1};
    if (view(&vs, oy, "y", code, 2, dy, 0, 1, &y) < 0) goto fail;
    Py_ssize_t db[1] = {dy[1]};
    if (view(&vs, ob, "b", code, 1, db, 1, 0, &b) < 0 || distinct(&vs) < 0) goto fail;
    Py_BEGIN_ALLOW_THREADS
    dense_split(code, 1, NULL, y, NULL, NULL, b, dy[0], dy[1], relu);
    Py_END_ALLOW_THREADS
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

/* small_matmul(x, w, y): y = x·w for a few rows (x (M, K), w (K, N), y (M, N), one float
 * dtype, C-contiguous), without the BLAS: small_gemm above (Dense on one or two rows). */
static PyObject *py_small_matmul(PyObject *self, PyObject *args) {
    PyObject *ox, *ow, *oy;
    if (!PyArg_ParseTuple(args, "OOO", &ox, &ow, &oy)) return NULL;
    Views vs = {.fn = "small_matmul", .n = 0};
    void *x, *w, *y;
    char code = float_code(&vs, ox, "x");
    if (!code) return NULL;
    Py_ssize_t dx[2] = {-1, -1};
    if (view(&vs, ox, "x", code, 2, dx, 0, 0, &x) < 0) goto fail;
    Py_ssize_t dw[2] = {dx[1], -1};
    if (view(&vs, ow, "w", code, 2, dw, 0, 0, &w) < 0) goto fail;
    Py_ssize_t dy[2] = {dx[0], dw[1]};
    if (view(&vs, oy, "y", code, 2, dy, 0, 1, &y) < 0 || distinct(&vs) < 0) goto fail;
    Py_BEGIN_ALLOW_THREADS
    if (code == 'f') small_gemm_f(dx[0], dw[1], dx[1], x, dx[1], w, dw[1], y, dw[1]);
    else small_gemm_d(dx[0], dw[1], dx[1], x, dx[1], w, dw[1], y, dw[1]);
    Py_END_ALLOW_THREADS
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

/* dense_backward(g, y or None, gm, db or None): gm = g·[y > 0] (with y), db = Σ_rows */
static PyObject *py_dense_backward(PyObject *self, PyObject *args) {
    PyObject *og, *oy, *ogm, *odb;
    if (!PyArg_ParseTuple(args, "OOOO", &og, &oy, &ogm, &odb)) return NULL;
    Views vs = {.fn = "dense_backward", .n = 0};
    void *g, *y, *gm, *db;
    char code = float_code(&vs, og, "g");
    if (!code) return NULL;
    Py_ssize_t dg[2] = {-1, -1};
    if (view(&vs, og, "g", code, 2, dg, 0, 0, &g) < 0) goto fail;
    Py_ssize_t dy[2] = {dg[0], dg[1]}, dgm[2] = {dg[0], dg[1]}, ddb[1] = {dg[1]};
    if (view(&vs, oy, "y", code, 2, dy, 1, 0, &y) < 0 || view(&vs, ogm, "gm", code, 2, dgm, 1, 1, &gm) < 0
        || view(&vs, odb, "db", code, 1, ddb, 1, 1, &db) < 0 || distinct(&vs) < 0)
        goto fail;
    if (y && !gm) {
        PyErr_SetString(PyExc_ValueError, "dense_backward: the mask (y given) needs an output gm, "
                        "received None");
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    dense_split(code, 0, g, y, gm, db, NULL, dg[0], dg[1], 0);
    Py_END_ALLOW_THREADS
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

/* softmax_rows(z, p, logp or None): z, p, logp (rows, K) */
/* softmax rows in consecutive runs of rows on the pool's threads (each row is its own: the
 * same bits), from SOFTMAX_PART_MIN values a run */
#define SOFTMAX_PART_MIN ((Py_ssize_t)1 << 15)
typedef struct { char code; const void *z; void *p, *lp; Py_ssize_t rows, K; } SoftmaxPart;

static void softmax_part_fn(void *arg) {
    SoftmaxPart *q = (SoftmaxPart *)arg;
    if (q->code == 'f') softmax_rows_f(q->z, q->p, q->lp, q->rows, q->K);
    else softmax_rows_d(q->z, q->p, q->lp, q->rows, q->K);
}

static void softmax_split(char code, const void *z, void *p, void *lp, Py_ssize_t rows,
                          Py_ssize_t K) {
    Py_ssize_t k = num_threads < 8 ? num_threads : 8;
    if (k > rows) k = rows;
    if (k > rows * K / SOFTMAX_PART_MIN) k = rows * K / SOFTMAX_PART_MIN;
    SoftmaxPart parts[8];
    PoolTask tasks[8];
    if (k < 2) {
        SoftmaxPart one = {code, z, p, lp, rows, K};
        softmax_part_fn(&one);
        return;
    }
    Py_ssize_t per = (rows + k - 1) / k, it = code == 'f' ? 4 : 8, n = 0;
    for (Py_ssize_t lo = 0; lo < rows; lo += per, n++) {
        Py_ssize_t hi = lo + per < rows ? lo + per : rows;
        parts[n].code = code;
        parts[n].z = (const char *)z + lo * K * it;
        parts[n].p = (char *)p + lo * K * it;
        parts[n].lp = lp ? (char *)lp + lo * K * it : NULL;
        parts[n].rows = hi - lo;
        parts[n].K = K;
        tasks[n].fn = softmax_part_fn;
        tasks[n].arg = parts + n;
    }
#ifdef AXONE_THREADS
    if (pthread_mutex_trylock(&pool_use) == 0) {
        pool_run(tasks, n);
        pthread_mutex_unlock(&pool_use);
        return;
    }
#endif
    for (Py_ssize_t i = 0; i < n; i++) softmax_part_fn(parts + i);
}

static PyObject *py_softmax_rows(PyObject *self, PyObject *args) {
    PyObject *oz, *op, *olp;
    if (!PyArg_ParseTuple(args, "OOO", &oz, &op, &olp)) return NULL;
    Views vs = {.fn = "softmax_rows", .n = 0};
    void *z, *p, *lp;
    char code = float_code(&vs, oz, "z");
    if (!code) return NULL;
    Py_ssize_t dz[2] = {-1, -1};
    if (view(&vs, oz, "z", code, 2, dz, 0, 0, &z) < 0) goto fail;
    Py_ssize_t dp[2] = {dz[0], dz[1]}, dl[2] = {dz[0], dz[1]};
    if (view(&vs, op, "p", code, 2, dp, 0, 1, &p) < 0 || view(&vs, olp, "logp", code, 2, dl, 1, 1, &lp) < 0
        || distinct(&vs) < 0)
        goto fail;
    if (dz[1] < 1) {
        PyErr_SetString(PyExc_ValueError, "softmax_rows: rows must hold at least 1 value, received 0");
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    softmax_split(code, z, p, lp, dz[0], dz[1]);
    Py_END_ALLOW_THREADS
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

/* xent_rows(y, logp, loss): y, logp (rows, K), loss (rows,) */
static PyObject *py_xent_rows(PyObject *self, PyObject *args) {
    PyObject *oy, *olp, *ol;
    if (!PyArg_ParseTuple(args, "OOO", &oy, &olp, &ol)) return NULL;
    Views vs = {.fn = "xent_rows", .n = 0};
    void *y, *lp, *l;
    char code = float_code(&vs, oy, "y");
    if (!code) return NULL;
    Py_ssize_t dy[2] = {-1, -1};
    if (view(&vs, oy, "y", code, 2, dy, 0, 0, &y) < 0) goto fail;
    Py_ssize_t dl[2] = {dy[0], dy[1]}, dloss[1] = {dy[0]};
    if (view(&vs, olp, "logp", code, 2, dl, 0, 0, &lp) < 0
        || view(&vs, ol, "loss", code, 1, dloss, 0, 1, &l) < 0 || distinct(&vs) < 0)
        goto fail;
    Py_BEGIN_ALLOW_THREADS
    if (code == 'f') xent_rows_f(y, lp, l, dy[0], dy[1]);
    else xent_rows_d(y, lp, l, dy[0], dy[1]);
    Py_END_ALLOW_THREADS
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

/* xent_grad_rows(g, p, y, gz): g (rows,), p, y, gz (rows, K) */
static PyObject *py_xent_grad_rows(PyObject *self, PyObject *args) {
    PyObject *og, *op, *oy, *ogz;
    if (!PyArg_ParseTuple(args, "OOOO", &og, &op, &oy, &ogz)) return NULL;
    Views vs = {.fn = "xent_grad_rows", .n = 0};
    void *g, *p, *y, *gz;
    char code = float_code(&vs, op, "p");
    if (!code) return NULL;
    Py_ssize_t dp[2] = {-1, -1};
    if (view(&vs, op, "p", code, 2, dp, 0, 0, &p) < 0) goto fail;
    Py_ssize_t dg[1] = {dp[0]}, dy[2] = {dp[0], dp[1]}, dgz[2] = {dp[0], dp[1]};
    if (view(&vs, og, "g", code, 1, dg, 0, 0, &g) < 0 || view(&vs, oy, "y", code, 2, dy, 0, 0, &y) < 0
        || view(&vs, ogz, "gz", code, 2, dgz, 0, 1, &gz) < 0 || distinct(&vs) < 0)
        goto fail;
    Py_BEGIN_ALLOW_THREADS
    if (code == 'f') xent_grad_rows_f(g, p, y, gz, dp[0], dp[1]);
    else xent_grad_rows_d(g, p, y, gz, dp[0], dp[1]);
    Py_END_ALLOW_THREADS
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

/* The gemm handed over must be NumPy's OpenBLAS cblas_sgemm / cblas_dgemm under one of the names
 * whose integer width is certain (scipy_cblas_?gemm: 32-bit, scipy_cblas_?gemm64_ and
 * cblas_?gemm64_: 64-bit): the address is looked up among the loaded libraries' symbols.  Once
 * handed over it stays (the loops read it with the GIL released). */
#ifdef AXONE_HAVE_DLADDR
/* 1 (64-bit integers) or 0 (32-bit) for the start of such a symbol for type t ('s', 'd'), else -1 */
static int gemm_symbol(uintptr_t addr, char t) {
    Dl_info info;
    if (!addr || !dladdr((void *)addr, &info) || !info.dli_sname || (uintptr_t)info.dli_saddr != addr)
        return -1;
    const char *s = info.dli_sname;
    int scipy = strncmp(s, "scipy_", 6) == 0;
    if (scipy) s += 6;
    char want[] = "cblas_?gemm";
    want[6] = t;
    if (strncmp(s, want, sizeof want - 1) != 0) return -1;
    s += sizeof want - 1;
    if (strcmp(s, "64_") == 0) return 1;
    if (*s == '\0' && scipy) return 0;
    return -1;
}
#endif

/* set_gemm(sgemm_address, dgemm_address, ilp64): NumPy's cblas_sgemm / cblas_dgemm */
static PyObject *py_set_gemm(PyObject *self, PyObject *args) {
    unsigned long long s_addr, d_addr;
    int ilp64;
    if (!PyArg_ParseTuple(args, "KKp", &s_addr, &d_addr, &ilp64)) return NULL;
#ifdef AXONE_HAVE_DLADDR
    int ws = gemm_symbol((uintptr_t)s_addr, 's'), wd = gemm_symbol((uintptr_t)d_addr, 'd');
    if (ws < 0 || wd != ws || ws != ilp64) {
        PyErr_SetString(PyExc_ValueError, "set_gemm: expected the addresses of NumPy's OpenBLAS "
                        "cblas_sgemm and cblas_dgemm (scipy_cblas_?gemm, scipy_cblas_?gemm64_ or "
                        "cblas_?gemm64_) and their integer width");
        return NULL;
    }
    void *s = (void *)(uintptr_t)s_addr, *d = (void *)(uintptr_t)d_addr;
    if (gemm_s || gemm_d) {
        if (gemm_s == s && gemm_d == d && gemm_ilp64 == ilp64) Py_RETURN_NONE;
        PyErr_SetString(PyExc_ValueError, "set_gemm: a gemm was already handed over, and it stays");
        return NULL;
    }
    gemm_ilp64 = ilp64;
    gemm_s = s;
    gemm_d = d;
    Py_RETURN_NONE;
#else
    PyErr_SetString(PyExc_NotImplementedError, "set_gemm: cannot check a gemm address on this "
                    "platform");
    return NULL;
#endif
}

/* The loops' products through the gemm: there, and sizes that its integers hold */
static int need_gemm(const char *fn, Py_ssize_t N, Py_ssize_t K, Py_ssize_t u) {
    if (!gemm_s || !gemm_d) {
        PyErr_Format(PyExc_RuntimeError, "%s: no BLAS was handed over (set_gemm)", fn);
        return -1;
    }
    if (!gemm_ilp64 && (N > INT32_MAX || K > INT32_MAX || 4 * u > INT32_MAX)) {
        PyErr_Format(PyExc_ValueError, "%s: sizes beyond the 32-bit integers of the BLAS", fn);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ products on a thread pool */
/* gemm_many(tasks): independent matrix products C = op(A)·op(B) (+ beta·C), run by the calling
 * thread and the pool's worker threads with the GIL released, each task whole by one thread
 * through the BLAS that NumPy loaded (handed over by set_gemm; the caller keeps that BLAS on one
 * thread).  A task is (A, B, C) or (A, B, C, beta): 2-D arrays of one float dtype, A (M×K),
 * B (K×N), C (M×N) writable with unit column stride; A and B each have a unit column stride
 * (row-major, op = identity) or a unit row stride (a transposed view, op = transpose).
 * Each product is the BLAS's own, so the result does not depend on which thread ran it.
 *
 * The pool: num_threads − 1 workers, started on first use.  Tasks are claimed one at a time
 * under a lock, by the caller as well, so a worker slow to wake leaves its share to the caller
 * and the batch never waits for it.  A worker spins (pause) for spin_us after its last task,
 * for the next batch of a training step is usually a few microseconds away, then sleeps on a
 * condition variable.  One caller uses the pool at a time; another (a second Python thread)
 * runs its tasks itself.  A forked child starts a pool of its own. */
#ifdef AXONE_THREADS
#include <stdatomic.h>
#include <time.h>
#include <sched.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() do { } while (0)
#endif
#endif

typedef struct {
    char code;                      /* 'f' or 'd' */
    int ta, tb;                     /* transpose A / B */
    Py_ssize_t M, N, K, lda, ldb, ldc;
    const void *A, *B;
    void *C;
    double beta;
    /* a stack of products, 1 or 2 leading axes: counts, and each operand's strides (bytes) */
    Py_ssize_t batch, batch2, sa, sb, sc, sa2, sb2, sc2;
} GemmTask;

static void gemm_one(const GemmTask *t) {
    int ta = t->ta ? TRANS : NO_TRANS, tb = t->tb ? TRANS : NO_TRANS;
    if (t->code == 'f') {
        if (gemm_ilp64)
            ((sgemm64_t)gemm_s)(ROW_MAJOR, ta, tb, t->M, t->N, t->K, 1.0f, t->A, t->lda, t->B,
                                t->ldb, (float)t->beta, t->C, t->ldc);
        else
            ((sgemm32_t)gemm_s)(ROW_MAJOR, ta, tb, (int)t->M, (int)t->N, (int)t->K, 1.0f, t->A,
                                (int)t->lda, t->B, (int)t->ldb, (float)t->beta, t->C, (int)t->ldc);
    } else {
        if (gemm_ilp64)
            ((dgemm64_t)gemm_d)(ROW_MAJOR, ta, tb, t->M, t->N, t->K, 1.0, t->A, t->lda, t->B,
                                t->ldb, t->beta, t->C, t->ldc);
        else
            ((dgemm32_t)gemm_d)(ROW_MAJOR, ta, tb, (int)t->M, (int)t->N, (int)t->K, 1.0, t->A,
                                (int)t->lda, t->B, (int)t->ldb, t->beta, t->C, (int)t->ldc);
    }
}

static void gemm_task(const GemmTask *t) {
    if (t->batch <= 1 && t->batch2 <= 1) { gemm_one(t); return; }
    GemmTask one = *t;
    for (Py_ssize_t i = 0; i < t->batch; i++)
        for (Py_ssize_t j = 0; j < t->batch2; j++) {
            one.A = (const char *)t->A + i * t->sa + j * t->sa2;
            one.B = (const char *)t->B + i * t->sb + j * t->sb2;
            one.C = (char *)t->C + i * t->sc + j * t->sc2;
            gemm_one(&one);
        }
}

static void gemm_task_fn(void *arg) { gemm_task((const GemmTask *)arg); }

#ifdef AXONE_THREADS
#define POOL_MAX 63
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t pool_use = PTHREAD_MUTEX_INITIALIZER;   /* one caller at a time */
static unsigned pool_gen = 0;                /* the batch in force (under pool_mu) */
static const PoolTask *pool_tasks = NULL;    /* its tasks (under pool_mu) */
static Py_ssize_t pool_n = 0, pool_next = 0; /* its size, its next unclaimed task (under pool_mu) */
static atomic_uint pool_pub;                 /* pool_gen, read while spinning */
static atomic_long pool_left;                /* tasks of the batch not finished */
static int pool_workers = 0;                 /* workers started (under pool_use) */
static long pool_spin_ns = 200000;

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* the next task of batch gen, or NULL when it has none left */
static const PoolTask *pool_claim(unsigned gen) {
    const PoolTask *t = NULL;
    pthread_mutex_lock(&pool_mu);
    if (pool_gen == gen && pool_next < pool_n) t = pool_tasks + pool_next++;
    pthread_mutex_unlock(&pool_mu);
    return t;
}

static void pool_work(unsigned gen) {
    const PoolTask *t;
    while ((t = pool_claim(gen)) != NULL) {
        t->fn(t->arg);
        atomic_fetch_sub_explicit(&pool_left, 1, memory_order_release);
    }
}

static void *pool_worker(void *arg) {
    (void)arg;
    unsigned seen = atomic_load_explicit(&pool_pub, memory_order_acquire);
    for (;;) {
        long until = now_ns() + pool_spin_ns;
        unsigned gen;
        for (int i = 0;; i++) {
            gen = atomic_load_explicit(&pool_pub, memory_order_acquire);
            if (gen != seen) break;
            CPU_RELAX();
            if ((i & 63) == 63 && now_ns() > until) {
                pthread_mutex_lock(&pool_mu);
                while (pool_gen == seen) pthread_cond_wait(&pool_cv, &pool_mu);
                gen = pool_gen;
                pthread_mutex_unlock(&pool_mu);
                break;
            }
        }
        seen = gen;
        pool_work(gen);
    }
    return NULL;
}

static void pool_after_fork(void) {          /* the child has none of the parent's workers */
    pthread_mutex_init(&pool_mu, NULL);
    pthread_cond_init(&pool_cv, NULL);
    pthread_mutex_init(&pool_use, NULL);
    pool_workers = 0;
    pool_n = pool_next = 0;
    pool_tasks = NULL;
}

/* run the n tasks; the caller holds pool_use */
static void pool_run(const PoolTask *tasks, Py_ssize_t n) {
    int want = num_threads - 1;
    if (want > POOL_MAX) want = POOL_MAX;
    while (pool_workers < want) {
        pthread_t tid;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int err = pthread_create(&tid, &attr, pool_worker, NULL);
        pthread_attr_destroy(&attr);
        if (err) break;
        pool_workers++;
    }
    if (pool_workers == 0 || n < 2) {
        for (Py_ssize_t i = 0; i < n; i++) tasks[i].fn(tasks[i].arg);
        return;
    }
    atomic_store_explicit(&pool_left, n, memory_order_relaxed);
    pthread_mutex_lock(&pool_mu);
    unsigned gen = ++pool_gen;
    pool_tasks = tasks;
    pool_n = n;
    pool_next = 0;
    atomic_store_explicit(&pool_pub, gen, memory_order_release);
    pthread_cond_broadcast(&pool_cv);
    pthread_mutex_unlock(&pool_mu);
    pool_work(gen);
    for (long i = 0; atomic_load_explicit(&pool_left, memory_order_acquire) > 0; i++) {
        CPU_RELAX();
        if ((i & 1023) == 1023) sched_yield();
    }
    pthread_mutex_lock(&pool_mu);
    pool_tasks = NULL;
    pool_n = pool_next = 0;
    pthread_mutex_unlock(&pool_mu);
}
#endif

/* one operand of a task: a 2-D float array of dtype code, or a stack of them with `stacked`
 * (1 or 2) leading axes; its op, leading dimension and, stacked, its leading sizes and strides
 * in bytes */
static int gemm_operand(PyObject *o, const char *name, Py_ssize_t i, Py_buffer *v, int writable,
                        char *code, int *trans, Py_ssize_t *ld, int stacked, Py_ssize_t *items,
                        Py_ssize_t *item_stride) {
    int flags = PyBUF_STRIDES | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    int nd = 2 + stacked;
    if (PyObject_GetBuffer(o, v, flags) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "gemm_many: task %zd: %s must be a%s %d-D float32 or float64 "
                     "array, received %s", i, name, writable ? " writable" : "", nd,
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    char c = item_code(v);
    if (v->ndim != nd || (c != 'f' && c != 'd') || (*code && c != *code)) {
        PyErr_Format(PyExc_TypeError, "gemm_many: task %zd: %s must be a %d-D array of the task's "
                     "float dtype (float32 or float64), received %d-D of format '%s'", i, name,
                     nd, v->ndim, v->format ? v->format : "B");
        PyBuffer_Release(v);
        return -1;
    }
    *code = c;
    Py_ssize_t it = v->itemsize, r = v->shape[nd - 2], k = v->shape[nd - 1];
    Py_ssize_t s0 = r <= 1 ? (k > 0 ? k : 1) * it : v->strides[nd - 2];
    Py_ssize_t s1 = k <= 1 ? it : v->strides[nd - 1];
    for (int a = 0; a < stacked; a++) { items[a] = v->shape[a]; item_stride[a] = v->strides[a]; }
    if (s1 == it && s0 % it == 0 && s0 / it >= (k > 0 ? k : 1)) {
        *trans = 0; *ld = s0 / it;
    } else if (!writable && s0 == it && s1 % it == 0 && s1 / it >= (r > 0 ? r : 1)) {
        *trans = 1; *ld = s1 / it;
    } else if (!writable && r <= 1 && k <= 1) {
        *trans = 0; *ld = 1;
    } else {
        PyErr_Format(PyExc_ValueError, "gemm_many: task %zd: %s must have a unit %s stride, "
                     "received strides (%zd, %zd)", i, name, writable ? "column" : "row or column",
                     v->strides[nd - 2], v->strides[nd - 1]);
        PyBuffer_Release(v);
        return -1;
    }
    return 0;
}

#define GEMM_MANY_MAX 256
static PyObject *py_gemm_many(PyObject *self, PyObject *args) {
    PyObject *seq;
    if (!PyArg_ParseTuple(args, "O", &seq)) return NULL;
    PyObject *fast = PySequence_Fast(seq, "gemm_many: tasks must be a sequence of (A, B, C[, beta])");
    if (!fast) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n > GEMM_MANY_MAX) {
        Py_DECREF(fast);
        PyErr_Format(PyExc_ValueError, "gemm_many: at most %d tasks, received %zd", GEMM_MANY_MAX, n);
        return NULL;
    }
    if (!gemm_s || !gemm_d) {
        Py_DECREF(fast);
        PyErr_SetString(PyExc_RuntimeError, "gemm_many: no BLAS was handed over (set_gemm)");
        return NULL;
    }
    GemmTask tasks[GEMM_MANY_MAX];
    Py_buffer views[3 * GEMM_MANY_MAX];
    Py_ssize_t held = 0, i;
    for (i = 0; i < n; i++) {
        PyObject *t = PySequence_Fast_GET_ITEM(fast, i);
        Py_ssize_t len = PyTuple_Check(t) ? PyTuple_GET_SIZE(t) : -1;
        if (len != 3 && len != 4) {
            PyErr_Format(PyExc_TypeError, "gemm_many: task %zd must be a tuple (A, B, C) or "
                         "(A, B, C, beta)", i);
            goto fail;
        }
        GemmTask *g = tasks + i;
        g->code = 0;
        g->beta = 0.0;
        if (len == 4) {
            g->beta = PyFloat_AsDouble(PyTuple_GET_ITEM(t, 3));
            if (g->beta == -1.0 && PyErr_Occurred()) goto fail;
        }
        Py_buffer *va = views + held, *vb = va + 1, *vc = va + 2;
        int tc;
        Py_ssize_t ldc, na[2] = {1, 1}, nb[2] = {1, 1}, nc[2] = {1, 1};
        Py_ssize_t sa[2] = {0, 0}, sb[2] = {0, 0}, sc[2] = {0, 0};
        PyObject *oa = PyTuple_GET_ITEM(t, 0);
        int stacked = 0;
        {   /* a stack of products when A is 3-D or 4-D */
            Py_buffer probe;
            if (PyObject_GetBuffer(oa, &probe, PyBUF_STRIDES | PyBUF_FORMAT) == 0) {
                stacked = probe.ndim == 3 ? 1 : probe.ndim == 4 ? 2 : 0;
                PyBuffer_Release(&probe);
            } else {
                PyErr_Clear();
            }
        }
        if (gemm_operand(oa, "A", i, va, 0, &g->code, &g->ta, &g->lda, stacked, na, sa) < 0)
            goto fail;
        held++;
        if (gemm_operand(PyTuple_GET_ITEM(t, 1), "B", i, vb, 0, &g->code, &g->tb, &g->ldb, stacked,
                         nb, sb) < 0)
            goto fail;
        held++;
        if (gemm_operand(PyTuple_GET_ITEM(t, 2), "C", i, vc, 1, &g->code, &tc, &ldc, stacked, nc,
                         sc) < 0)
            goto fail;
        held++;
        int d = stacked;
        g->M = va->shape[d]; g->K = va->shape[d + 1]; g->N = vb->shape[d + 1]; g->ldc = ldc;
        if (na[0] != nb[0] || na[0] != nc[0] || na[1] != nb[1] || na[1] != nc[1]) {
            PyErr_Format(PyExc_ValueError, "gemm_many: task %zd: stacks of %zd, %zd and %zd "
                         "products do not match", i, na[0] * na[1], nb[0] * nb[1], nc[0] * nc[1]);
            goto fail;
        }
        g->batch = na[0]; g->batch2 = na[1];
        g->sa = sa[0]; g->sb = sb[0]; g->sc = sc[0];
        g->sa2 = sa[1]; g->sb2 = sb[1]; g->sc2 = sc[1];
        if (vb->shape[d] != g->K || vc->shape[d] != g->M || vc->shape[d + 1] != g->N) {
            PyErr_Format(PyExc_ValueError, "gemm_many: task %zd: shapes (%zd, %zd) x (%zd, %zd) -> "
                         "(%zd, %zd) do not match", i, va->shape[d], va->shape[d + 1], vb->shape[d],
                         vb->shape[d + 1], vc->shape[d], vc->shape[d + 1]);
            goto fail;
        }
        g->A = va->buf; g->B = vb->buf; g->C = vc->buf;
    }
    /* drop empty products (nothing to compute; an empty K with beta 0 is handled by the BLAS) */
    Py_ssize_t m = 0;
    for (i = 0; i < n; i++)
        if (tasks[i].M > 0 && tasks[i].N > 0 && tasks[i].batch > 0 && tasks[i].batch2 > 0)
            tasks[m++] = tasks[i];
    Py_BEGIN_ALLOW_THREADS
#ifdef AXONE_THREADS
    if (m > 1 && num_threads > 1 && pthread_mutex_trylock(&pool_use) == 0) {
        PoolTask pt[GEMM_MANY_MAX];
        for (i = 0; i < m; i++) { pt[i].fn = gemm_task_fn; pt[i].arg = tasks + i; }
        pool_run(pt, m);
        pthread_mutex_unlock(&pool_use);
    } else
#endif
    {
        for (i = 0; i < m; i++) gemm_task(tasks + i);
    }
    Py_END_ALLOW_THREADS
    for (i = 0; i < held; i++) PyBuffer_Release(views + i);
    Py_DECREF(fast);
    Py_RETURN_NONE;
fail:
    for (i = 0; i < held; i++) PyBuffer_Release(views + i);
    Py_DECREF(fast);
    return NULL;
}

/* copy_into(dst, src): dst[...] = src for two arrays of one shape (at most 8 axes) and one
 * item size, any strides (src may be a strided view with repeated entries; dst writable, its
 * entries distinct, and the two not overlapping): the trailing axes that are contiguous in both
 * merged into runs, the leading axis cut into runs on the pool's threads from COPY_PART_MIN
 * items a run.  A copy: the same bytes whatever the split. */
#define COPY_MAXDIM 8
#define COPY_PART_MIN ((Py_ssize_t)1 << 16)
typedef struct {
    char *dst; const char *src; int nd;
    Py_ssize_t item, shape[COPY_MAXDIM], ds[COPY_MAXDIM], ss[COPY_MAXDIM];
} CopyPart;

static void copy_rec(const CopyPart *j, int ax, char *d, const char *s) {
    Py_ssize_t n = j->shape[ax], dst_ = j->ds[ax], sst = j->ss[ax];
    if (ax == j->nd - 1) {
        Py_ssize_t it = j->item;
        if (dst_ == it && sst == it) { memcpy(d, s, (size_t)(n * it)); return; }
        if (it == 4) { for (Py_ssize_t i = 0; i < n; i++) memcpy(d + i * dst_, s + i * sst, 4); }
        else if (it == 8) { for (Py_ssize_t i = 0; i < n; i++) memcpy(d + i * dst_, s + i * sst, 8); }
        else { for (Py_ssize_t i = 0; i < n; i++) memcpy(d + i * dst_, s + i * sst, (size_t)it); }
        return;
    }
    for (Py_ssize_t i = 0; i < n; i++) copy_rec(j, ax + 1, d + i * dst_, s + i * sst);
}

static void copy_part_fn(void *arg) {
    const CopyPart *j = (const CopyPart *)arg;
    if (j->nd == 0) { memcpy(j->dst, j->src, (size_t)j->item); return; }
    for (int a = 0; a < j->nd; a++) if (j->shape[a] == 0) return;
    copy_rec(j, 0, j->dst, j->src);
}

static PyObject *py_copy_into(PyObject *self, PyObject *args) {
    PyObject *od, *os_;
    if (!PyArg_ParseTuple(args, "OO", &od, &os_)) return NULL;
    Py_buffer vd, vs;
    if (PyObject_GetBuffer(od, &vd, PyBUF_STRIDES | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "copy_into: dst must be a writable array, received %s",
                     Py_TYPE(od)->tp_name);
        return NULL;
    }
    if (PyObject_GetBuffer(os_, &vs, PyBUF_STRIDES | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        PyBuffer_Release(&vd);
        PyErr_Format(PyExc_TypeError, "copy_into: src must be an array, received %s",
                     Py_TYPE(os_)->tp_name);
        return NULL;
    }
    PyObject *res = NULL;
    const char *fd = vd.format ? vd.format : "B", *fs = vs.format ? vs.format : "B";
    if (vd.ndim != vs.ndim || vd.ndim > COPY_MAXDIM || vd.itemsize != vs.itemsize
        || strcmp(fd, fs) != 0) {
        PyErr_Format(PyExc_ValueError, "copy_into: dst and src must have one format, item size and "
                     "number of axes (at most %d), received '%s'/%zd/%d and '%s'/%zd/%d",
                     COPY_MAXDIM, fd, vd.itemsize, vd.ndim, fs, vs.itemsize, vs.ndim);
        goto done;
    }
    CopyPart j = {.dst = vd.buf, .src = vs.buf, .nd = 0, .item = vd.itemsize};
    Py_ssize_t total = 1;
    char *dlo = vd.buf, *dhi = (char *)vd.buf + vd.itemsize;
    const char *slo = vs.buf, *shi = (const char *)vs.buf + vs.itemsize;
    for (int a = 0; a < vd.ndim; a++) {
        if (vd.shape[a] != vs.shape[a]) {
            PyErr_Format(PyExc_ValueError, "copy_into: shapes differ on axis %d: %zd and %zd", a,
                         vd.shape[a], vs.shape[a]);
            goto done;
        }
        total *= vd.shape[a];
    }
    if (total == 0) { res = Py_None; Py_INCREF(res); goto done; }
    for (int a = 0; a < vd.ndim; a++) {
        Py_ssize_t span = (vd.shape[a] - 1) * vd.strides[a];
        if (span < 0) dlo += span; else dhi += span;
        Py_ssize_t sspan = (vs.shape[a] - 1) * vs.strides[a];
        if (sspan < 0) slo += sspan; else shi += sspan;
    }
    if (dlo < shi && slo < dhi) {
        PyErr_SetString(PyExc_ValueError, "copy_into: dst and src overlap in memory");
        goto done;
    }
    /* axes of length 1 dropped, then trailing axes contiguous in both merged */
    for (int a = 0; a < vd.ndim; a++) {
        if (vd.shape[a] == 1) continue;
        j.shape[j.nd] = vd.shape[a]; j.ds[j.nd] = vd.strides[a]; j.ss[j.nd] = vs.strides[a];
        j.nd++;
    }
    while (j.nd >= 2) {
        int l = j.nd - 1;
        if (j.ds[l - 1] == j.ds[l] * j.shape[l] && j.ss[l - 1] == j.ss[l] * j.shape[l]) {
            j.shape[l - 1] *= j.shape[l];
            j.ds[l - 1] = j.ds[l];
            j.ss[l - 1] = j.ss[l];
            j.nd--;
        } else {
            break;
        }
    }
    Py_ssize_t k = num_threads < 8 ? num_threads : 8;
    if (j.nd == 0) k = 1;
    else {
        if (k > j.shape[0]) k = j.shape[0];
        if (k > total / COPY_PART_MIN) k = total / COPY_PART_MIN;
    }
    Py_BEGIN_ALLOW_THREADS
    if (k < 2) {
        copy_part_fn(&j);
    } else {
        CopyPart parts[8];
        PoolTask tasks[8];
        Py_ssize_t per = (j.shape[0] + k - 1) / k, n = 0;
        for (Py_ssize_t lo = 0; lo < j.shape[0]; lo += per, n++) {
            Py_ssize_t hi = lo + per < j.shape[0] ? lo + per : j.shape[0];
            parts[n] = j;
            parts[n].shape[0] = hi - lo;
            parts[n].dst = j.dst + lo * j.ds[0];
            parts[n].src = j.src + lo * j.ss[0];
            tasks[n].fn = copy_part_fn;
            tasks[n].arg = parts + n;
        }
#ifdef AXONE_THREADS
        if (pthread_mutex_trylock(&pool_use) == 0) {
            pool_run(tasks, n);
            pthread_mutex_unlock(&pool_use);
        } else
#endif
        {
            for (Py_ssize_t i = 0; i < n; i++) copy_part_fn(parts + i);
        }
    }
    Py_END_ALLOW_THREADS
    res = Py_None;
    Py_INCREF(res);
done:
    PyBuffer_Release(&vs);
    PyBuffer_Release(&vd);
    return res;
}

/* ------------------------------------------------------------------ banded input gradient */
/* band_add(dst, src, src_off, dst_off, run): for every sample n and every i in turn,
 * dst[n][dst_off[i] : dst_off[i] + run] += src[n][src_off[i] : src_off[i] + run] (offsets in
 * items within a sample; dst, src C-contiguous, float32 or float64, leading axis the sample).
 * The input gradient of the banded convolution (ops/conv.py, Conv._band_input_grad): each row
 * of the product dL/dy·bandᵀ added to the stretch of the padded input it came from, in the
 * order the caller lists them (the NumPy form's order, so the same sums); runs of samples on
 * the pool's threads, each writing its own samples only. */
typedef struct {
    char code; char *dst; const char *src; const int64_t *so, *dof;
    Py_ssize_t m, run, dstep, sstep, n;
} BandPart;

#define BAND_ADD(T_, SUF)                                                                       \
WIDE static void band_add_##SUF(const BandPart *p) {                                           \
    for (Py_ssize_t s = 0; s < p->n; s++) {                                                    \
        T_ *dn = (T_ *)(p->dst + s * p->dstep);                                                 \
        const T_ *sn = (const T_ *)(p->src + s * p->sstep);                                     \
        for (Py_ssize_t i = 0; i < p->m; i++) {                                                 \
            T_ *restrict d = dn + p->dof[i];                                                    \
            const T_ *restrict x = sn + p->so[i];                                               \
            for (Py_ssize_t j = 0; j < p->run; j++) d[j] += x[j];                               \
        }                                                                                       \
    }                                                                                           \
}
BAND_ADD(float, f)
BAND_ADD(double, d)

static void band_part_fn(void *arg) {
    const BandPart *p = (const BandPart *)arg;
    if (p->code == 'f') band_add_f(p); else band_add_d(p);
}

static PyObject *py_band_add(PyObject *self, PyObject *args) {
    PyObject *od, *os_, *oso, *odo;
    Py_ssize_t run;
    if (!PyArg_ParseTuple(args, "OOOOn", &od, &os_, &oso, &odo, &run)) return NULL;
    Py_buffer vd = {0}, vs = {0}, vso = {0}, vdo = {0};
    PyObject *res = NULL;
    if (PyObject_GetBuffer(od, &vd, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, "band_add: dst must be a writable C-contiguous array");
        return NULL;
    }
    if (PyObject_GetBuffer(os_, &vs, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, "band_add: src must be a C-contiguous array");
        goto done;
    }
    if (PyObject_GetBuffer(oso, &vso, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0 ||
        PyObject_GetBuffer(odo, &vdo, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, "band_add: the offsets must be C-contiguous int64 arrays");
        goto done;
    }
    const char *fd = vd.format ? vd.format : "B", *fs = vs.format ? vs.format : "B";
    char code = (strcmp(fd, "f") == 0 && strcmp(fs, "f") == 0) ? 'f'
              : (strcmp(fd, "d") == 0 && strcmp(fs, "d") == 0) ? 'd' : 0;
    if (!code) {
        PyErr_Format(PyExc_TypeError, "band_add: dst and src must both be float32 or both float64, "
                     "received '%s' and '%s'", fd, fs);
        goto done;
    }
    const char *fo = vso.format ? vso.format : "B", *fo2 = vdo.format ? vdo.format : "B";
    if (vso.itemsize != 8 || vdo.itemsize != 8 || vso.len != vdo.len || !strchr("lq", fo[0])
        || !strchr("lq", fo2[0]) || fo[1] || fo2[1]) {
        PyErr_SetString(PyExc_ValueError, "band_add: src_off and dst_off must be int64 arrays of "
                        "one length");
        goto done;
    }
    if (vd.ndim < 1 || vs.ndim < 1 || vd.shape[0] != vs.shape[0] || run < 0) {
        PyErr_SetString(PyExc_ValueError, "band_add: dst and src must share their leading axis");
        goto done;
    }
    if ((char *)vd.buf < (char *)vs.buf + vs.len && (char *)vs.buf < (char *)vd.buf + vd.len) {
        PyErr_SetString(PyExc_ValueError, "band_add: dst and src overlap in memory");
        goto done;
    }
    Py_ssize_t n = vd.shape[0], item = vd.itemsize, m = vso.len / 8;
    Py_ssize_t dper = n ? vd.len / item / n : 0, sper = n ? vs.len / item / n : 0;
    const int64_t *so = vso.buf, *dof = vdo.buf;
    for (Py_ssize_t i = 0; i < m; i++)
        if (so[i] < 0 || dof[i] < 0 || so[i] + run > sper || dof[i] + run > dper) {
            PyErr_Format(PyExc_ValueError, "band_add: run %zd of offsets %lld/%lld out of the "
                         "sample (%zd/%zd items)", i, (long long)so[i], (long long)dof[i], sper,
                         dper);
            goto done;
        }
    BandPart whole = {code, vd.buf, vs.buf, so, dof, m, run, dper * item, sper * item, n};
    Py_ssize_t k = num_threads < 8 ? num_threads : 8;
    if (k > n) k = n;
    if (k > (n * m * run) / COPY_PART_MIN) k = (n * m * run) / COPY_PART_MIN;
    Py_BEGIN_ALLOW_THREADS
    if (k < 2) {
        band_part_fn(&whole);
    } else {
        BandPart parts[8];
        PoolTask tasks[8];
        Py_ssize_t per = (n + k - 1) / k, cnt = 0;
        for (Py_ssize_t lo = 0; lo < n; lo += per, cnt++) {
            parts[cnt] = whole;
            parts[cnt].n = (lo + per < n ? lo + per : n) - lo;
            parts[cnt].dst = (char *)vd.buf + lo * whole.dstep;
            parts[cnt].src = (const char *)vs.buf + lo * whole.sstep;
            tasks[cnt].fn = band_part_fn;
            tasks[cnt].arg = parts + cnt;
        }
#ifdef AXONE_THREADS
        if (pthread_mutex_trylock(&pool_use) == 0) {
            pool_run(tasks, cnt);
            pthread_mutex_unlock(&pool_use);
        } else
#endif
        {
            for (Py_ssize_t i = 0; i < cnt; i++) band_part_fn(parts + i);
        }
    }
    Py_END_ALLOW_THREADS
    res = Py_None;
    Py_INCREF(res);
done:
    if (vdo.obj) PyBuffer_Release(&vdo);
    if (vso.obj) PyBuffer_Release(&vso);
    if (vs.obj) PyBuffer_Release(&vs);
    PyBuffer_Release(&vd);
    return res;
}

/* ------------------------------------------------------------------ Winograd F(2×2, 3×3) */
/* The four data transforms of a 3×3, stride-1 convolution in Winograd's minimal filtering form
 * F(2×2, 3×3) (Lavin & Gray 2016): the padded input cut into 4×4 tiles d_p at rows 2·th − pt,
 * columns 2·tw − pl of x (p = (n·TH + th)·TW + tw; entries outside x are 0), each tile's 2×2
 * outputs  Y_p = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d_p B) ] A  for each (input channel, filter) pair, the sum
 * over the channels taken by 16 matrix products in the caller (ops/winograd.py), with
 *     Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],   Aᵀ = [1 1 1 0; 0 1 −1 −1].
 *   winograd_input(x, V, pt, pl, TH, TW, parts):  V[(r, s), p, c] = (Bᵀ d_p B)[r, s]
 *   winograd_output(M, y, bias, relu, parts):     y[n, 2th + a, 2tw + b, f] = (Aᵀ M_p A)[a, b]
 *                                                 (+ bias[f], then max(·, 0) with relu), the
 *                                                 positions inside y only
 *   winograd_output_grad(gy, dM, parts):          dM_p = A gY_p Aᵀ  (the adjoint of the output)
 *   winograd_input_grad(dV, gx, pt, pl, TH, TW, parts):
 *                                                 gx[tile p's positions] += B dV_p Bᵀ (the
 *                                                 adjoint of the input), tiles in order p
 * Each product by a transform matrix runs along the tile's rows first, then along its columns,
 * each entry in the order written in the NumPy forms of ops/winograd.py, so the results are
 * theirs bit for bit.  Channels go through in blocks of WINO_CB, held in local arrays (the
 * loops over a block vectorize).  Runs of tiles (of samples for winograd_input_grad, whose
 * tiles overlap) go to at most ``parts`` of the pool's threads. */
#define WINO_CB 16
/* dst[0 : n] = src[0 : n], the whole block's constant length where it is full (vectorized) */
#define WINO_MOVE(dst, src, n) do {                                                          \
        if ((n) == WINO_CB) { for (int e_ = 0; e_ < WINO_CB; e_++) (dst)[e_] = (src)[e_]; }     \
        else { for (Py_ssize_t e_ = 0; e_ < (n); e_++) (dst)[e_] = (src)[e_]; }                \
    } while (0)

typedef struct {
    char code; const char *src; char *dst; const char *bias;
    Py_ssize_t N, H, W, C, TH, TW, pt, pl, P, lo, hi; int relu;
    const char *zero;
    int m;                           /* outputs per tile side: 2 (F(2×2, 3×3)) or 4 (F(4×4, 3×3)) */
} WinoPart;

/* The rows of tile p (channels c0 on) of a (taps, P, C) array asked for into L2 ahead of their
 * use: a tile's rows lie in 16 or 36 streams P·C apart, and where P·C·itemsize is a multiple
 * of 4 kB they fall in the same cache sets, where the hardware prefetchers lose them (the
 * F(4×4) output transform of 16×48×48×128 took 15 ms a call without, 8.5 with). */
#define WINO_AHEAD 4
#define WINO_PREFETCH(T_, taps, base, P, p, C, c0)                                              \
    for (int k_ = 0; k_ < (taps); k_++) {                                                       \
        const char *a_ = (const char *)((base) + ((Py_ssize_t)k_ * (P) + (p)) * (C) + (c0));    \
        __builtin_prefetch(a_, 0, 2);                                                           \
        if (sizeof(T_) * WINO_CB > 64) __builtin_prefetch(a_ + 64, 0, 2);                       \
    }

#define WINO_KERNELS(T_, SUF)                                                                   \
WIDE static void wino_in_##SUF(const WinoPart *q) {                                             \
    const T_ *x = (const T_ *)q->src, *zero = (const T_ *)q->zero;                              \
    T_ *V = (T_ *)q->dst;                                                                       \
    const Py_ssize_t H = q->H, W = q->W, C = q->C, P = q->P, tt = q->TH * q->TW;               \
    for (Py_ssize_t p = q->lo; p < q->hi; p++) {                                                \
        Py_ssize_t n = p / tt, th = (p % tt) / q->TW, tw = p % q->TW;                          \
        Py_ssize_t i0 = 2 * th - q->pt, j0 = 2 * tw - q->pl;                                    \
        const T_ *src[16];                                                                      \
        for (int i = 0; i < 4; i++)                                                             \
            for (int j = 0; j < 4; j++) {                                                       \
                Py_ssize_t r = i0 + i, c = j0 + j;                                              \
                src[4 * i + j] = (r >= 0 && r < H && c >= 0 && c < W)                           \
                    ? x + ((n * H + r) * W + c) * C : zero;                                     \
            }                                                                                   \
        for (Py_ssize_t c0 = 0; c0 < C; c0 += WINO_CB) {                                        \
            Py_ssize_t cb = C - c0 < WINO_CB ? C - c0 : WINO_CB;                               \
            T_ d[16][WINO_CB], t[16][WINO_CB], v[16][WINO_CB];                                  \
            if (cb < WINO_CB) memset(d, 0, sizeof d);                                           \
            for (int k = 0; k < 16; k++)                                                        \
                WINO_MOVE(d[k], src[k] + c0, cb);                   \
            for (int j = 0; j < 4; j++)                                                         \
                for (int e = 0; e < WINO_CB; e++) {                                             \
                    t[0 + j][e] = d[0 + j][e] - d[8 + j][e];                                    \
                    t[4 + j][e] = d[4 + j][e] + d[8 + j][e];                                    \
                    t[8 + j][e] = d[8 + j][e] - d[4 + j][e];                                    \
                    t[12 + j][e] = d[4 + j][e] - d[12 + j][e];                                  \
                }                                                                               \
            for (int r = 0; r < 4; r++)                                                         \
                for (int e = 0; e < WINO_CB; e++) {                                             \
                    v[4 * r + 0][e] = t[4 * r + 0][e] - t[4 * r + 2][e];                        \
                    v[4 * r + 1][e] = t[4 * r + 1][e] + t[4 * r + 2][e];                        \
                    v[4 * r + 2][e] = t[4 * r + 2][e] - t[4 * r + 1][e];                        \
                    v[4 * r + 3][e] = t[4 * r + 1][e] - t[4 * r + 3][e];                        \
                }                                                                               \
            for (int k = 0; k < 16; k++) {                                                      \
                T_ *dst = V + ((Py_ssize_t)k * P + p) * C + c0;                                 \
                WINO_MOVE(dst, v[k], cb);                           \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
WIDE static void wino_out_##SUF(const WinoPart *q) {                                            \
    const T_ *Mt = (const T_ *)q->src, *bias = (const T_ *)q->bias;                             \
    T_ *y = (T_ *)q->dst;                                                                       \
    const Py_ssize_t H = q->H, W = q->W, C = q->C, P = q->P, tt = q->TH * q->TW;               \
    for (Py_ssize_t p = q->lo; p < q->hi; p++) {                                                \
        Py_ssize_t n = p / tt, th = (p % tt) / q->TW, tw = p % q->TW;                          \
        T_ *dst[4];                                                                             \
        for (int a = 0; a < 2; a++)                                                             \
            for (int b = 0; b < 2; b++) {                                                       \
                Py_ssize_t r = 2 * th + a, c = 2 * tw + b;                                      \
                dst[2 * a + b] = (r < H && c < W) ? y + ((n * H + r) * W + c) * C : NULL;       \
            }                                                                                   \
        for (Py_ssize_t c0 = 0; c0 < C; c0 += WINO_CB) {                                        \
            Py_ssize_t cb = C - c0 < WINO_CB ? C - c0 : WINO_CB;                               \
            T_ m[16][WINO_CB], t[8][WINO_CB], o[4][WINO_CB], bb[WINO_CB];                       \
            if (cb < WINO_CB) { memset(m, 0, sizeof m); memset(bb, 0, sizeof bb); }             \
            if (p + WINO_AHEAD < q->hi) WINO_PREFETCH(T_, 16, Mt, P, p + WINO_AHEAD, C, c0);       \
            for (int k = 0; k < 16; k++) {                                                      \
                const T_ *s = Mt + ((Py_ssize_t)k * P + p) * C + c0;                            \
                WINO_MOVE(m[k], s, cb);                             \
            }                                                                                   \
            for (int s = 0; s < 4; s++)                                                         \
                for (int e = 0; e < WINO_CB; e++) {                                             \
                    t[0 + s][e] = (m[0 + s][e] + m[4 + s][e]) + m[8 + s][e];                    \
                    t[4 + s][e] = (m[4 + s][e] - m[8 + s][e]) - m[12 + s][e];                   \
                }                                                                               \
            for (int a = 0; a < 2; a++)                                                         \
                for (int e = 0; e < WINO_CB; e++) {                                             \
                    o[2 * a + 0][e] = (t[4 * a + 0][e] + t[4 * a + 1][e]) + t[4 * a + 2][e];    \
                    o[2 * a + 1][e] = (t[4 * a + 1][e] - t[4 * a + 2][e]) - t[4 * a + 3][e];    \
                }                                                                               \
            if (bias) {                                                                         \
                for (Py_ssize_t e = 0; e < cb; e++) bb[e] = bias[c0 + e];                       \
                for (int k = 0; k < 4; k++)                                                     \
                    for (int e = 0; e < WINO_CB; e++) o[k][e] = o[k][e] + bb[e];                \
            }                                                                                   \
            if (q->relu)                                                                        \
                for (int k = 0; k < 4; k++)                                                     \
                    for (int e = 0; e < WINO_CB; e++) o[k][e] = o[k][e] < 0 ? (T_)0 : o[k][e];  \
            for (int k = 0; k < 4; k++) {                                                       \
                if (!dst[k]) continue;                                                          \
                T_ *d = dst[k] + c0;                                                            \
                WINO_MOVE(d, o[k], cb);                             \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
WIDE static void wino_out_grad_##SUF(const WinoPart *q) {                                       \
    const T_ *g = (const T_ *)q->src, *zero = (const T_ *)q->zero;                              \
    T_ *dM = (T_ *)q->dst;                                                                      \
    const Py_ssize_t H = q->H, W = q->W, C = q->C, P = q->P, tt = q->TH * q->TW;               \
    for (Py_ssize_t p = q->lo; p < q->hi; p++) {                                                \
        Py_ssize_t n = p / tt, th = (p % tt) / q->TW, tw = p % q->TW;                          \
        const T_ *src[4];                                                                       \
        for (int a = 0; a < 2; a++)                                                             \
            for (int b = 0; b < 2; b++) {                                                       \
                Py_ssize_t r = 2 * th + a, c = 2 * tw + b;                                      \
                src[2 * a + b] = (r < H && c < W) ? g + ((n * H + r) * W + c) * C : zero;       \
            }                                                                                   \
        for (Py_ssize_t c0 = 0; c0 < C; c0 += WINO_CB) {                                        \
            Py_ssize_t cb = C - c0 < WINO_CB ? C - c0 : WINO_CB;                               \
            T_ gg[4][WINO_CB], u[8][WINO_CB], m[16][WINO_CB];                                   \
            if (cb < WINO_CB) memset(gg, 0, sizeof gg);                                         \
            for (int k = 0; k < 4; k++)                                                         \
                WINO_MOVE(gg[k], src[k] + c0, cb);                  \
            for (int b = 0; b < 2; b++)                                                         \
                for (int e = 0; e < WINO_CB; e++) {                                             \
                    u[0 + b][e] = gg[0 + b][e];                                                 \
                    u[2 + b][e] = gg[0 + b][e] + gg[2 + b][e];                                  \
                    u[4 + b][e] = gg[0 + b][e] - gg[2 + b][e];                                  \
                    u[6 + b][e] = -gg[2 + b][e];                                                \
                }                                                                               \
            for (int r = 0; r < 4; r++)                                                         \
                for (int e = 0; e < WINO_CB; e++) {                                             \
                    m[4 * r + 0][e] = u[2 * r + 0][e];                                          \
                    m[4 * r + 1][e] = u[2 * r + 0][e] + u[2 * r + 1][e];                        \
                    m[4 * r + 2][e] = u[2 * r + 0][e] - u[2 * r + 1][e];                        \
                    m[4 * r + 3][e] = -u[2 * r + 1][e];                                         \
                }                                                                               \
            for (int k = 0; k < 16; k++) {                                                      \
                T_ *d = dM + ((Py_ssize_t)k * P + p) * C + c0;                                  \
                WINO_MOVE(d, m[k], cb);                             \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
WIDE static void wino_in_grad_##SUF(const WinoPart *q) {                                        \
    const T_ *dV = (const T_ *)q->src;                                                          \
    T_ *gx = (T_ *)q->dst;                                                                      \
    const Py_ssize_t H = q->H, W = q->W, C = q->C, P = q->P, tt = q->TH * q->TW;               \
    for (Py_ssize_t p = q->lo * tt; p < q->hi * tt; p++) {                                      \
        Py_ssize_t n = p / tt, th = (p % tt) / q->TW, tw = p % q->TW;                          \
        Py_ssize_t i0 = 2 * th - q->pt, j0 = 2 * tw - q->pl;                                    \
        T_ *dst[16];                                                                            \
        for (int i = 0; i < 4; i++)                                                             \
            for (int j = 0; j < 4; j++) {                                                       \
                Py_ssize_t r = i0 + i, c = j0 + j;                                              \
                dst[4 * i + j] = (r >= 0 && r < H && c >= 0 && c < W)                           \
                    ? gx + ((n * H + r) * W + c) * C : NULL;                                    \
            }                                                                                   \
        for (Py_ssize_t c0 = 0; c0 < C; c0 += WINO_CB) {                                        \
            Py_ssize_t cb = C - c0 < WINO_CB ? C - c0 : WINO_CB;                               \
            T_ w[16][WINO_CB], z[16][WINO_CB], dd[16][WINO_CB];                                 \
            if (cb < WINO_CB) memset(w, 0, sizeof w);                                           \
            if (p + WINO_AHEAD < q->hi * tt) WINO_PREFETCH(T_, 16, dV, P, p + WINO_AHEAD, C, c0);  \
            for (int k = 0; k < 16; k++) {                                                      \
                const T_ *s = dV + ((Py_ssize_t)k * P + p) * C + c0;                            \
                WINO_MOVE(w[k], s, cb);                             \
            }                                                                                   \
            for (int s = 0; s < 4; s++)                                                         \
                for (int e = 0; e < WINO_CB; e++) {                                             \
                    z[0 + s][e] = w[0 + s][e];                                                  \
                    z[4 + s][e] = (w[4 + s][e] - w[8 + s][e]) + w[12 + s][e];                   \
                    z[8 + s][e] = (w[4 + s][e] + w[8 + s][e]) - w[0 + s][e];                    \
                    z[12 + s][e] = -w[12 + s][e];                                               \
                }                                                                               \
            for (int i = 0; i < 4; i++)                                                         \
                for (int e = 0; e < WINO_CB; e++) {                                             \
                    dd[4 * i + 0][e] = z[4 * i + 0][e];                                         \
                    dd[4 * i + 1][e] = (z[4 * i + 1][e] - z[4 * i + 2][e]) + z[4 * i + 3][e];   \
                    dd[4 * i + 2][e] = (z[4 * i + 1][e] + z[4 * i + 2][e]) - z[4 * i + 0][e];   \
                    dd[4 * i + 3][e] = -z[4 * i + 3][e];                                        \
                }                                                                               \
            for (int k = 0; k < 16; k++) {                                                      \
                if (!dst[k]) continue;                                                          \
                T_ *d = dst[k] + c0;                                                            \
                if (cb == WINO_CB) { for (int e = 0; e < WINO_CB; e++) d[e] += dd[k][e]; }              \
                else { for (Py_ssize_t e = 0; e < cb; e++) d[e] += dd[k][e]; }                  \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
}
WINO_KERNELS(float, f)
WINO_KERNELS(double, d)

/* The kernel transform U[4r + s, c, f] = (G g[·, ·, c, f] Gᵀ)[r, s] for channels c in [lo, hi):
 * t[r][j] = G[r][0]·g[0][j] + G[r][1]·g[1][j] + G[r][2]·g[2][j], then
 * u[r][s] = G[s][0]·t[r][0] + G[s][1]·t[r][1] + G[s][2]·t[r][2], each sum from the left, as the
 * NumPy form's two products with G take them; WINO_CB filters at a time. */
static const double WINO_G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
#define WINO_KERNEL_TRANSFORM(T_, SUF)                                                          \
WIDE static void wino_kern_##SUF(const WinoPart *q) {                                           \
    const T_ *g = (const T_ *)q->src; T_ *U = (T_ *)q->dst;                                     \
    const Py_ssize_t C = q->C, F = q->W, CF = C * F;                                            \
    T_ G[4][3];                                                                                 \
    for (int r = 0; r < 4; r++) for (int j = 0; j < 3; j++) G[r][j] = (T_)WINO_G[r][j];         \
    for (Py_ssize_t c = q->lo; c < q->hi; c++)                                                  \
        for (Py_ssize_t f0 = 0; f0 < F; f0 += WINO_CB) {                                        \
            const Py_ssize_t fb = F - f0 < WINO_CB ? F - f0 : WINO_CB;                          \
            T_ gv[9][WINO_CB], t[12][WINO_CB], u[WINO_CB];                                      \
            for (int k = 0; k < 9; k++) WINO_MOVE(gv[k], g + k * CF + c * F + f0, fb);           \
            for (int r = 0; r < 4; r++)                                                         \
                for (int j = 0; j < 3; j++)                                                     \
                    for (int e = 0; e < WINO_CB; e++)                                           \
                        t[3 * r + j][e] = G[r][0] * gv[j][e] + G[r][1] * gv[3 + j][e]           \
                                          + G[r][2] * gv[6 + j][e];                             \
            for (int r = 0; r < 4; r++)                                                         \
                for (int s_ = 0; s_ < 4; s_++) {                                                \
                    for (int e = 0; e < WINO_CB; e++)                                           \
                        u[e] = G[s_][0] * t[3 * r][e] + G[s_][1] * t[3 * r + 1][e]              \
                               + G[s_][2] * t[3 * r + 2][e];                                    \
                    WINO_MOVE(U + (4 * r + s_) * CF + c * F + f0, u, fb);                       \
                }                                                                               \
        }                                                                                       \
}
WINO_KERNEL_TRANSFORM(float, f)
WINO_KERNEL_TRANSFORM(double, d)

/* ------------------------------------------------------------------ Winograd F(4×4, 3×3) */
/* The same four data transforms and the kernel transform for 6×6 tiles at rows 4·th − pt,
 * columns 4·tw − pl, each giving 4×4 outputs, from the Toom-Cook construction on the points
 * 0, 1, −1, ½, −2 and ∞ (measured: about a quarter of the float32 error of the usual points
 * 0, ±1, ±2; on the choice of points, Barabasz et al., "Error analysis and improving the
 * accuracy of Winograd convolution for deep neural networks", 2020):
 *   Bᵀ = [1 −3/2 −2 3/2 1 0; 0 −1 ½ 5/2 1 0; 0 1 −5/2 ½ 1 0; 0 −2 −1 2 1 0; 0 ½ −1 −½ 1 0;
 *         0 1 −3/2 −2 3/2 1]
 *   G  = [1 0 0; ⅓ ⅓ ⅓; −⅓ ⅓ −⅓; −16/15 −8/15 −4/15; 1/15 −2/15 4/15; 0 0 1]
 *   Aᵀ = [1 1 1 1 1 0; 0 1 −1 ½ −2 0; 0 1 1 ¼ 4 0; 0 1 −1 ⅛ −8 1]
 * Each product by a matrix runs along the tile's rows, then along its columns; each entry is the
 * sum of the matrix's nonzero coefficients times their values, from the left, the first term a
 * product alone (the W4_MUL_ macros), as the NumPy forms of ops/winograd.py (``_combine``) take
 * them, so the results are theirs bit for bit.  36 transformed values per tile against
 * F(2×2, 3×3)'s 16 per four outputs: 1.78× fewer multiply-adds in the products. */
/* dst[ob + r·os] = Σ_i M[r][i]·src[ib + i·is] for each row r of the named matrix, over its
 * nonzero coefficients from the left (a coefficient ±1 as an add or subtract: the same bits),
 * WINO_CB lanes at a time; the rows' product of a tile takes ib = ob = j, is = os = the row
 * length, the columns' product ib = r·S, ob = r·R, is = os = 1. */
#define W4_MUL_BT(T_, src, dst, ib, is, ob, os)                                                 \
    for (int e = 0; e < WINO_CB; e++) {                                                         \
        const T_ x0 = (src)[(ib) + 0 * (is)][e];                                                \
        const T_ x1 = (src)[(ib) + 1 * (is)][e];                                                \
        const T_ x2 = (src)[(ib) + 2 * (is)][e];                                                \
        const T_ x3 = (src)[(ib) + 3 * (is)][e];                                                \
        const T_ x4 = (src)[(ib) + 4 * (is)][e];                                                \
        const T_ x5 = (src)[(ib) + 5 * (is)][e];                                                \
        (dst)[(ob) + 0 * (os)][e] = x0 - (T_)(1.5) * x1 - (T_)2 * x2 + (T_)(1.5) * x3 + x4;     \
        (dst)[(ob) + 1 * (os)][e] = -x1 + (T_)(0.5) * x2 + (T_)(2.5) * x3 + x4;                 \
        (dst)[(ob) + 2 * (os)][e] = x1 - (T_)(2.5) * x2 + (T_)(0.5) * x3 + x4;                  \
        (dst)[(ob) + 3 * (os)][e] = (T_)-2 * x1 - x2 + (T_)2 * x3 + x4;                         \
        (dst)[(ob) + 4 * (os)][e] = (T_)(0.5) * x1 - x2 - (T_)(0.5) * x3 + x4;                  \
        (dst)[(ob) + 5 * (os)][e] = x1 - (T_)(1.5) * x2 - (T_)2 * x3 + (T_)(1.5) * x4 + x5;     \
    }
#define W4_MUL_B(T_, src, dst, ib, is, ob, os)                                                  \
    for (int e = 0; e < WINO_CB; e++) {                                                         \
        const T_ x0 = (src)[(ib) + 0 * (is)][e];                                                \
        const T_ x1 = (src)[(ib) + 1 * (is)][e];                                                \
        const T_ x2 = (src)[(ib) + 2 * (is)][e];                                                \
        const T_ x3 = (src)[(ib) + 3 * (is)][e];                                                \
        const T_ x4 = (src)[(ib) + 4 * (is)][e];                                                \
        const T_ x5 = (src)[(ib) + 5 * (is)][e];                                                \
        (dst)[(ob) + 0 * (os)][e] = x0;                                                         \
        (dst)[(ob) + 1 * (os)][e] = (T_)(-1.5) * x0 - x1 + x2 - (T_)2 * x3 + (T_)(0.5) * x4 + x5;\
        (dst)[(ob) + 2 * (os)][e] = (T_)-2 * x0 + (T_)(0.5) * x1 - (T_)(2.5) * x2 - x3 - x4 - (T_)(1.5) * x5;\
        (dst)[(ob) + 3 * (os)][e] = (T_)(1.5) * x0 + (T_)(2.5) * x1 + (T_)(0.5) * x2 + (T_)2 * x3 - (T_)(0.5) * x4 - (T_)2 * x5;\
        (dst)[(ob) + 4 * (os)][e] = x0 + x1 + x2 + x3 + x4 + (T_)(1.5) * x5;                    \
        (dst)[(ob) + 5 * (os)][e] = x5;                                                         \
    }
#define W4_MUL_AT(T_, src, dst, ib, is, ob, os)                                                 \
    for (int e = 0; e < WINO_CB; e++) {                                                         \
        const T_ x0 = (src)[(ib) + 0 * (is)][e];                                                \
        const T_ x1 = (src)[(ib) + 1 * (is)][e];                                                \
        const T_ x2 = (src)[(ib) + 2 * (is)][e];                                                \
        const T_ x3 = (src)[(ib) + 3 * (is)][e];                                                \
        const T_ x4 = (src)[(ib) + 4 * (is)][e];                                                \
        const T_ x5 = (src)[(ib) + 5 * (is)][e];                                                \
        (dst)[(ob) + 0 * (os)][e] = x0 + x1 + x2 + x3 + x4;                                     \
        (dst)[(ob) + 1 * (os)][e] = x1 - x2 + (T_)(0.5) * x3 - (T_)2 * x4;                      \
        (dst)[(ob) + 2 * (os)][e] = x1 + x2 + (T_)(0.25) * x3 + (T_)4 * x4;                     \
        (dst)[(ob) + 3 * (os)][e] = x1 - x2 + (T_)(0.125) * x3 - (T_)8 * x4 + x5;               \
    }
#define W4_MUL_A(T_, src, dst, ib, is, ob, os)                                                  \
    for (int e = 0; e < WINO_CB; e++) {                                                         \
        const T_ x0 = (src)[(ib) + 0 * (is)][e];                                                \
        const T_ x1 = (src)[(ib) + 1 * (is)][e];                                                \
        const T_ x2 = (src)[(ib) + 2 * (is)][e];                                                \
        const T_ x3 = (src)[(ib) + 3 * (is)][e];                                                \
        (dst)[(ob) + 0 * (os)][e] = x0;                                                         \
        (dst)[(ob) + 1 * (os)][e] = x0 + x1 + x2 + x3;                                          \
        (dst)[(ob) + 2 * (os)][e] = x0 - x1 + x2 - x3;                                          \
        (dst)[(ob) + 3 * (os)][e] = x0 + (T_)(0.5) * x1 + (T_)(0.25) * x2 + (T_)(0.125) * x3;   \
        (dst)[(ob) + 4 * (os)][e] = x0 - (T_)2 * x1 + (T_)4 * x2 - (T_)8 * x3;                  \
        (dst)[(ob) + 5 * (os)][e] = x3;                                                         \
    }
#define W4_MUL_G(T_, src, dst, ib, is, ob, os)                                                  \
    for (int e = 0; e < WINO_CB; e++) {                                                         \
        const T_ x0 = (src)[(ib) + 0 * (is)][e];                                                \
        const T_ x1 = (src)[(ib) + 1 * (is)][e];                                                \
        const T_ x2 = (src)[(ib) + 2 * (is)][e];                                                \
        (dst)[(ob) + 0 * (os)][e] = x0;                                                         \
        (dst)[(ob) + 1 * (os)][e] = (T_)(1.0 / 3) * x0 + (T_)(1.0 / 3) * x1 + (T_)(1.0 / 3) * x2;\
        (dst)[(ob) + 2 * (os)][e] = (T_)(-1.0 / 3) * x0 + (T_)(1.0 / 3) * x1 - (T_)(1.0 / 3) * x2;\
        (dst)[(ob) + 3 * (os)][e] = (T_)(-16.0 / 15) * x0 - (T_)(8.0 / 15) * x1 - (T_)(4.0 / 15) * x2;\
        (dst)[(ob) + 4 * (os)][e] = (T_)(1.0 / 15) * x0 - (T_)(2.0 / 15) * x1 + (T_)(4.0 / 15) * x2;\
        (dst)[(ob) + 5 * (os)][e] = x2;                                                         \
    }

#define WINO4_KERNELS(T_, SUF)                                                                  \
WIDE static void wino4_in_##SUF(const WinoPart *q) {                                            \
    const T_ *x = (const T_ *)q->src, *zero = (const T_ *)q->zero;                              \
    T_ *V = (T_ *)q->dst;                                                                       \
    const Py_ssize_t H = q->H, W = q->W, C = q->C, P = q->P, tt = q->TH * q->TW;               \
    for (Py_ssize_t p = q->lo; p < q->hi; p++) {                                                \
        Py_ssize_t n = p / tt, th = (p % tt) / q->TW, tw = p % q->TW;                          \
        Py_ssize_t i0 = 4 * th - q->pt, j0 = 4 * tw - q->pl;                                    \
        const T_ *src[36];                                                                      \
        for (int i = 0; i < 6; i++)                                                             \
            for (int j = 0; j < 6; j++) {                                                       \
                Py_ssize_t r = i0 + i, c = j0 + j;                                              \
                src[6 * i + j] = (r >= 0 && r < H && c >= 0 && c < W)                           \
                    ? x + ((n * H + r) * W + c) * C : zero;                                     \
            }                                                                                   \
        for (Py_ssize_t c0 = 0; c0 < C; c0 += WINO_CB) {                                        \
            Py_ssize_t cb = C - c0 < WINO_CB ? C - c0 : WINO_CB;                               \
            T_ d[36][WINO_CB], t[36][WINO_CB], v[36][WINO_CB];                                  \
            if (cb < WINO_CB) memset(d, 0, sizeof d);                                           \
            for (int k = 0; k < 36; k++) WINO_MOVE(d[k], src[k] + c0, cb);                      \
            for (int j = 0; j < 6; j++) W4_MUL_BT(T_, d, t, j, 6, j, 6);                        \
            for (int r = 0; r < 6; r++) W4_MUL_BT(T_, t, v, 6 * r, 1, 6 * r, 1);                \
            for (int k = 0; k < 36; k++) {                                                      \
                T_ *dst = V + ((Py_ssize_t)k * P + p) * C + c0;                                 \
                WINO_MOVE(dst, v[k], cb);                                                       \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
WIDE static void wino4_out_##SUF(const WinoPart *q) {                                           \
    const T_ *Mt = (const T_ *)q->src, *bias = (const T_ *)q->bias;                             \
    T_ *y = (T_ *)q->dst;                                                                       \
    const Py_ssize_t H = q->H, W = q->W, C = q->C, P = q->P, tt = q->TH * q->TW;               \
    for (Py_ssize_t p = q->lo; p < q->hi; p++) {                                                \
        Py_ssize_t n = p / tt, th = (p % tt) / q->TW, tw = p % q->TW;                          \
        T_ *dst[16];                                                                            \
        for (int a = 0; a < 4; a++)                                                             \
            for (int b = 0; b < 4; b++) {                                                       \
                Py_ssize_t r = 4 * th + a, c = 4 * tw + b;                                      \
                dst[4 * a + b] = (r < H && c < W) ? y + ((n * H + r) * W + c) * C : NULL;       \
            }                                                                                   \
        for (Py_ssize_t c0 = 0; c0 < C; c0 += WINO_CB) {                                        \
            Py_ssize_t cb = C - c0 < WINO_CB ? C - c0 : WINO_CB;                               \
            T_ m[36][WINO_CB], t[24][WINO_CB], o[16][WINO_CB], bb[WINO_CB];                     \
            if (cb < WINO_CB) { memset(m, 0, sizeof m); memset(bb, 0, sizeof bb); }             \
            if (p + WINO_AHEAD < q->hi) WINO_PREFETCH(T_, 36, Mt, P, p + WINO_AHEAD, C, c0);       \
            for (int k = 0; k < 36; k++) {                                                      \
                const T_ *s = Mt + ((Py_ssize_t)k * P + p) * C + c0;                            \
                WINO_MOVE(m[k], s, cb);                                                         \
            }                                                                                   \
            for (int s = 0; s < 6; s++) W4_MUL_AT(T_, m, t, s, 6, s, 6);                        \
            for (int a = 0; a < 4; a++) W4_MUL_AT(T_, t, o, 6 * a, 1, 4 * a, 1);                \
            if (bias) {                                                                         \
                for (Py_ssize_t e = 0; e < cb; e++) bb[e] = bias[c0 + e];                       \
                for (int k = 0; k < 16; k++)                                                    \
                    for (int e = 0; e < WINO_CB; e++) o[k][e] = o[k][e] + bb[e];                \
            }                                                                                   \
            if (q->relu)                                                                        \
                for (int k = 0; k < 16; k++)                                                    \
                    for (int e = 0; e < WINO_CB; e++) o[k][e] = o[k][e] < 0 ? (T_)0 : o[k][e];  \
            for (int k = 0; k < 16; k++) {                                                      \
                if (!dst[k]) continue;                                                          \
                T_ *dd = dst[k] + c0;                                                           \
                WINO_MOVE(dd, o[k], cb);                                                        \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
WIDE static void wino4_out_grad_##SUF(const WinoPart *q) {                                      \
    const T_ *g = (const T_ *)q->src, *zero = (const T_ *)q->zero;                              \
    T_ *dM = (T_ *)q->dst;                                                                      \
    const Py_ssize_t H = q->H, W = q->W, C = q->C, P = q->P, tt = q->TH * q->TW;               \
    for (Py_ssize_t p = q->lo; p < q->hi; p++) {                                                \
        Py_ssize_t n = p / tt, th = (p % tt) / q->TW, tw = p % q->TW;                          \
        const T_ *src[16];                                                                      \
        for (int a = 0; a < 4; a++)                                                             \
            for (int b = 0; b < 4; b++) {                                                       \
                Py_ssize_t r = 4 * th + a, c = 4 * tw + b;                                      \
                src[4 * a + b] = (r < H && c < W) ? g + ((n * H + r) * W + c) * C : zero;       \
            }                                                                                   \
        for (Py_ssize_t c0 = 0; c0 < C; c0 += WINO_CB) {                                        \
            Py_ssize_t cb = C - c0 < WINO_CB ? C - c0 : WINO_CB;                               \
            T_ gg[16][WINO_CB], u[24][WINO_CB], m[36][WINO_CB];                                 \
            if (cb < WINO_CB) memset(gg, 0, sizeof gg);                                         \
            for (int k = 0; k < 16; k++) WINO_MOVE(gg[k], src[k] + c0, cb);                     \
            for (int b = 0; b < 4; b++) W4_MUL_A(T_, gg, u, b, 4, b, 4);                        \
            for (int r = 0; r < 6; r++) W4_MUL_A(T_, u, m, 4 * r, 1, 6 * r, 1);                 \
            for (int k = 0; k < 36; k++) {                                                      \
                T_ *d = dM + ((Py_ssize_t)k * P + p) * C + c0;                                  \
                WINO_MOVE(d, m[k], cb);                                                         \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
WIDE static void wino4_in_grad_##SUF(const WinoPart *q) {                                       \
    const T_ *dV = (const T_ *)q->src;                                                          \
    T_ *gx = (T_ *)q->dst;                                                                      \
    const Py_ssize_t H = q->H, W = q->W, C = q->C, P = q->P, tt = q->TH * q->TW;               \
    for (Py_ssize_t p = q->lo * tt; p < q->hi * tt; p++) {                                      \
        Py_ssize_t n = p / tt, th = (p % tt) / q->TW, tw = p % q->TW;                          \
        Py_ssize_t i0 = 4 * th - q->pt, j0 = 4 * tw - q->pl;                                    \
        T_ *dst[36];                                                                            \
        for (int i = 0; i < 6; i++)                                                             \
            for (int j = 0; j < 6; j++) {                                                       \
                Py_ssize_t r = i0 + i, c = j0 + j;                                              \
                dst[6 * i + j] = (r >= 0 && r < H && c >= 0 && c < W)                           \
                    ? gx + ((n * H + r) * W + c) * C : NULL;                                    \
            }                                                                                   \
        for (Py_ssize_t c0 = 0; c0 < C; c0 += WINO_CB) {                                        \
            Py_ssize_t cb = C - c0 < WINO_CB ? C - c0 : WINO_CB;                               \
            T_ w[36][WINO_CB], z[36][WINO_CB], dd[36][WINO_CB];                                 \
            if (cb < WINO_CB) memset(w, 0, sizeof w);                                           \
            if (p + WINO_AHEAD < q->hi * tt) WINO_PREFETCH(T_, 36, dV, P, p + WINO_AHEAD, C, c0);  \
            for (int k = 0; k < 36; k++) {                                                      \
                const T_ *s = dV + ((Py_ssize_t)k * P + p) * C + c0;                            \
                WINO_MOVE(w[k], s, cb);                                                         \
            }                                                                                   \
            for (int s = 0; s < 6; s++) W4_MUL_B(T_, w, z, s, 6, s, 6);                         \
            for (int i = 0; i < 6; i++) W4_MUL_B(T_, z, dd, 6 * i, 1, 6 * i, 1);                \
            for (int k = 0; k < 36; k++) {                                                      \
                if (!dst[k]) continue;                                                          \
                T_ *d = dst[k] + c0;                                                            \
                if (cb == WINO_CB) { for (int e = 0; e < WINO_CB; e++) d[e] += dd[k][e]; }      \
                else { for (Py_ssize_t e = 0; e < cb; e++) d[e] += dd[k][e]; }                  \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
WIDE static void wino4_kern_##SUF(const WinoPart *q) {                                          \
    const T_ *g = (const T_ *)q->src; T_ *U = (T_ *)q->dst;                                     \
    const Py_ssize_t C = q->C, F = q->W, CF = C * F;                                            \
    for (Py_ssize_t c = q->lo; c < q->hi; c++)                                                  \
        for (Py_ssize_t f0 = 0; f0 < F; f0 += WINO_CB) {                                        \
            const Py_ssize_t fb = F - f0 < WINO_CB ? F - f0 : WINO_CB;                          \
            T_ gv[9][WINO_CB], t[18][WINO_CB], u[36][WINO_CB];                                  \
            if (fb < WINO_CB) memset(gv, 0, sizeof gv);                                         \
            for (int k = 0; k < 9; k++) WINO_MOVE(gv[k], g + k * CF + c * F + f0, fb);           \
            for (int j = 0; j < 3; j++) W4_MUL_G(T_, gv, t, j, 3, j, 3);                        \
            for (int r = 0; r < 6; r++) W4_MUL_G(T_, t, u, 3 * r, 1, 6 * r, 1);                 \
            for (int k = 0; k < 36; k++) WINO_MOVE(U + k * CF + c * F + f0, u[k], fb);          \
        }                                                                                       \
}
WINO4_KERNELS(float, f)
WINO4_KERNELS(double, d)

enum { WINO_IN, WINO_OUT, WINO_OUT_GRAD, WINO_IN_GRAD, WINO_KERN };
typedef struct { WinoPart part; int op; } WinoTask;

static void wino_part_fn(void *arg) {
    const WinoTask *t = (const WinoTask *)arg;
    const WinoPart *q = &t->part;
    int f = q->code == 'f';
    if (q->m == 4) {
        switch (t->op) {
        case WINO_IN: if (f) wino4_in_f(q); else wino4_in_d(q); break;
        case WINO_OUT: if (f) wino4_out_f(q); else wino4_out_d(q); break;
        case WINO_OUT_GRAD: if (f) wino4_out_grad_f(q); else wino4_out_grad_d(q); break;
        case WINO_KERN: if (f) wino4_kern_f(q); else wino4_kern_d(q); break;
        default: if (f) wino4_in_grad_f(q); else wino4_in_grad_d(q); break;
        }
        return;
    }
    switch (t->op) {
    case WINO_IN: if (f) wino_in_f(q); else wino_in_d(q); break;
    case WINO_OUT: if (f) wino_out_f(q); else wino_out_d(q); break;
    case WINO_OUT_GRAD: if (f) wino_out_grad_f(q); else wino_out_grad_d(q); break;
    case WINO_KERN: if (f) wino_kern_f(q); else wino_kern_d(q); break;
    default: if (f) wino_in_grad_f(q); else wino_in_grad_d(q); break;
    }
}

#define WINO_PARTS 8
#define WINO_PART_MIN ((Py_ssize_t)1 << 15)   /* items moved by a part, at least */

/* q's range [0, count) (tiles, or samples of ``per`` items) in at most ``parts`` runs on the
 * pool's threads (this one takes the first); on this thread alone when the pool is busy. */
static void wino_run(const WinoPart *whole, int op, Py_ssize_t count, Py_ssize_t per, long parts) {
    Py_ssize_t k = parts < WINO_PARTS ? parts : WINO_PARTS;
    if (k > num_threads) k = num_threads;
    if (k > count) k = count;
    if (per > 0 && k > count * per / WINO_PART_MIN) k = count * per / WINO_PART_MIN;
    if (k < 1) k = 1;
    WinoTask tasks_[WINO_PARTS];
    PoolTask pool[WINO_PARTS];
    Py_ssize_t step = (count + k - 1) / k, cnt = 0;
    for (Py_ssize_t lo = 0; lo < count; lo += step, cnt++) {
        tasks_[cnt].part = *whole;
        tasks_[cnt].op = op;
        tasks_[cnt].part.lo = lo;
        tasks_[cnt].part.hi = lo + step < count ? lo + step : count;
        pool[cnt].fn = wino_part_fn;
        pool[cnt].arg = tasks_ + cnt;
    }
#ifdef AXONE_THREADS
    if (cnt > 1 && pthread_mutex_trylock(&pool_use) == 0) {
        pool_run(pool, cnt);
        pthread_mutex_unlock(&pool_use);
    } else
#endif
    {
        for (Py_ssize_t i = 0; i < cnt; i++) wino_part_fn(tasks_ + i);
    }
}

/* winograd_input(x, V, pt, pl, TH, TW, parts) and winograd_input_grad(dV, gx, pt, pl, TH, TW,
 * parts): x / gx (N, H, W, C), V / dV (16, N·TH·TW, C) */
static PyObject *wino_input_call(PyObject *args, int grad) {
    PyObject *ox, *ov;
    Py_ssize_t pt, pl, TH, TW;
    long parts, mt = 2;
    const char *fn = grad ? "winograd_input_grad" : "winograd_input";
    if (grad) {
        if (!PyArg_ParseTuple(args, "OOnnnnl|l", &ov, &ox, &pt, &pl, &TH, &TW, &parts, &mt))
            return NULL;
    } else if (!PyArg_ParseTuple(args, "OOnnnnl|l", &ox, &ov, &pt, &pl, &TH, &TW, &parts, &mt)) {
        return NULL;
    }
    if (TH < 0 || TW < 0 || pt < 0 || pl < 0 || pt > 2 || pl > 2 || parts < 1
        || (mt != 2 && mt != 4)) {
        PyErr_Format(PyExc_ValueError, "%s: expected TH, TW >= 0, pt and pl in 0..2, parts >= 1 "
                     "and m 2 or 4, received TH=%zd TW=%zd pt=%zd pl=%zd parts=%ld m=%ld", fn, TH,
                     TW, pt, pl, parts, mt);
        return NULL;
    }
    const Py_ssize_t taps = (mt + 2) * (mt + 2);
    Views vs = {.fn = fn, .n = 0};
    void *x, *v;
    const char *xn = grad ? "gx" : "x", *vn = grad ? "dV" : "V";
    char code = float_code(&vs, grad ? ov : ox, grad ? "dV" : "x");
    if (!code) return NULL;
    Py_ssize_t dx[4] = {-1, -1, -1, -1};
    if (grad) {
        Py_ssize_t d0[3] = {taps, -1, -1};
        if (view(&vs, ov, vn, code, 3, d0, 0, 0, &v) < 0) goto fail;
        dx[3] = d0[2];
        if (view(&vs, ox, xn, code, 4, dx, 0, 1, &x) < 0) goto fail;
        if (d0[1] != dx[0] * TH * TW) {
            PyErr_Format(PyExc_ValueError, "%s: dV has %zd tiles on axis 1, expected N·TH·TW = %zd",
                         fn, d0[1], dx[0] * TH * TW);
            goto fail;
        }
    } else {
        if (view(&vs, ox, xn, code, 4, dx, 0, 0, &x) < 0) goto fail;
        Py_ssize_t d0[3] = {taps, dx[0] * TH * TW, dx[3]};
        if (view(&vs, ov, vn, code, 3, d0, 0, 1, &v) < 0) goto fail;
    }
    if (mt * TH + 2 < dx[1] + pt || mt * TW + 2 < dx[2] + pl || mt * TH > dx[1] + pt + mt
        || mt * TW > dx[2] + pl + mt) {
        PyErr_Format(PyExc_ValueError, "%s: %zd×%zd tiles from offset (%zd, %zd) do not cover the "
                     "%zd×%zd input", fn, TH, TW, pt, pl, dx[1], dx[2]);
        goto fail;
    }
    if (distinct(&vs) < 0) goto fail;
    {
        Py_ssize_t item = code == 'f' ? 4 : 8, C = dx[3];
        char *zero = grad ? NULL : calloc((size_t)(C > 0 ? C : 1), (size_t)item);
        if (!grad && !zero) { PyErr_NoMemory(); goto fail; }
        WinoPart whole = {code, grad ? v : x, grad ? x : v, NULL, dx[0], dx[1], dx[2], C, TH, TW,
                          pt, pl, dx[0] * TH * TW, 0, 0, 0, zero, (int)mt};
        Py_BEGIN_ALLOW_THREADS
        if (grad) wino_run(&whole, WINO_IN_GRAD, dx[0], taps * TH * TW * C, parts);
        else wino_run(&whole, WINO_IN, whole.P, taps * C, parts);
        Py_END_ALLOW_THREADS
        free(zero);
    }
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

static PyObject *py_winograd_input(PyObject *self, PyObject *args) { return wino_input_call(args, 0); }
static PyObject *py_winograd_input_grad(PyObject *self, PyObject *args) {
    return wino_input_call(args, 1);
}

/* winograd_output(M, y, bias, relu, parts): M (16, N·⌈H/2⌉·⌈W/2⌉, F), y (N, H, W, F);
 * winograd_output_grad(gy, dM, parts) its adjoint */
static PyObject *py_winograd_output(PyObject *self, PyObject *args) {
    PyObject *om, *oy, *ob;
    int relu;
    long parts, mt = 2;
    if (!PyArg_ParseTuple(args, "OOOpl|l", &om, &oy, &ob, &relu, &parts, &mt)) return NULL;
    if (parts < 1 || (mt != 2 && mt != 4)) {
        PyErr_Format(PyExc_ValueError, "winograd_output: expected parts >= 1 and m 2 or 4, "
                     "received parts=%ld m=%ld", parts, mt);
        return NULL;
    }
    const Py_ssize_t taps = (mt + 2) * (mt + 2);
    Views vs = {.fn = "winograd_output", .n = 0};
    void *m, *y, *b;
    char code = float_code(&vs, om, "M");
    if (!code) return NULL;
    Py_ssize_t dy[4] = {-1, -1, -1, -1};
    if (view(&vs, oy, "y", code, 4, dy, 0, 1, &y) < 0) goto fail;
    {
        Py_ssize_t TH = (dy[1] + mt - 1) / mt, TW = (dy[2] + mt - 1) / mt;
        Py_ssize_t dm[3] = {taps, dy[0] * TH * TW, dy[3]}, db[1] = {dy[3]};
        if (view(&vs, om, "M", code, 3, dm, 0, 0, &m) < 0
            || view(&vs, ob, "bias", code, 1, db, 1, 0, &b) < 0 || distinct(&vs) < 0)
            goto fail;
        Py_ssize_t F = dy[3];
        WinoPart whole = {code, m, y, b, dy[0], dy[1], dy[2], F, TH, TW, 0, 0, dm[1], 0, 0, relu,
                          NULL, (int)mt};
        Py_BEGIN_ALLOW_THREADS
        wino_run(&whole, WINO_OUT, whole.P, taps * F, parts);
        Py_END_ALLOW_THREADS
    }
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

static PyObject *py_winograd_output_grad(PyObject *self, PyObject *args) {
    PyObject *og, *om;
    long parts, mt = 2;
    if (!PyArg_ParseTuple(args, "OOl|l", &og, &om, &parts, &mt)) return NULL;
    if (parts < 1 || (mt != 2 && mt != 4)) {
        PyErr_Format(PyExc_ValueError, "winograd_output_grad: expected parts >= 1 and m 2 or 4, "
                     "received parts=%ld m=%ld", parts, mt);
        return NULL;
    }
    const Py_ssize_t taps = (mt + 2) * (mt + 2);
    Views vs = {.fn = "winograd_output_grad", .n = 0};
    void *g, *m;
    char code = float_code(&vs, og, "gy");
    if (!code) return NULL;
    Py_ssize_t dg[4] = {-1, -1, -1, -1};
    if (view(&vs, og, "gy", code, 4, dg, 0, 0, &g) < 0) goto fail;
    {
        Py_ssize_t TH = (dg[1] + mt - 1) / mt, TW = (dg[2] + mt - 1) / mt;
        Py_ssize_t dm[3] = {taps, dg[0] * TH * TW, dg[3]};
        if (view(&vs, om, "dM", code, 3, dm, 0, 1, &m) < 0 || distinct(&vs) < 0) goto fail;
        Py_ssize_t item = code == 'f' ? 4 : 8, F = dg[3];
        char *zero = calloc((size_t)(F > 0 ? F : 1), (size_t)item);
        if (!zero) { PyErr_NoMemory(); goto fail; }
        WinoPart whole = {code, g, m, NULL, dg[0], dg[1], dg[2], F, TH, TW, 0, 0, dm[1], 0, 0, 0,
                          zero, (int)mt};
        Py_BEGIN_ALLOW_THREADS
        wino_run(&whole, WINO_OUT_GRAD, whole.P, taps * F, parts);
        Py_END_ALLOW_THREADS
        free(zero);
    }
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

/* winograd_kernel(g, U, parts): U (16, C, F) = G g Gᵀ of a (3, 3, C, F) kernel g, runs of
 * input channels on at most ``parts`` of the pool's threads */
static PyObject *py_winograd_kernel(PyObject *self, PyObject *args) {
    PyObject *og, *ou;
    long parts, mt = 2;
    if (!PyArg_ParseTuple(args, "OOl|l", &og, &ou, &parts, &mt)) return NULL;
    if (parts < 1 || (mt != 2 && mt != 4)) {
        PyErr_Format(PyExc_ValueError, "winograd_kernel: expected parts >= 1 and m 2 or 4, "
                     "received parts=%ld m=%ld", parts, mt);
        return NULL;
    }
    const Py_ssize_t taps = (mt + 2) * (mt + 2);
    Views vs = {.fn = "winograd_kernel", .n = 0};
    void *g, *u;
    char code = float_code(&vs, og, "g");
    if (!code) return NULL;
    Py_ssize_t dg[4] = {3, 3, -1, -1};
    if (view(&vs, og, "g", code, 4, dg, 0, 0, &g) < 0) goto fail;
    {
        Py_ssize_t du[3] = {taps, dg[2], dg[3]};
        if (view(&vs, ou, "U", code, 3, du, 0, 1, &u) < 0 || distinct(&vs) < 0) goto fail;
        WinoPart whole = {code, g, u, NULL, 0, 0, dg[3], dg[2], 0, 0, 0, 0, 0, 0, 0, 0, NULL,
                          (int)mt};
        Py_BEGIN_ALLOW_THREADS
        wino_run(&whole, WINO_KERN, dg[2], (9 + taps) * dg[3], parts);
        Py_END_ALLOW_THREADS
    }
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

/* ------------------------------------------------------------------ layer normalization rows */
/* layer_norm_rows(x, gamma, beta, eps, y, xhat, inv, parts): over each row of x (R, n),
 *   μ = Σ x / n,  σ² = Σ (x − μ)² / n,  r = 1/√(σ² + ε),  x̂ = (x − μ)·r,  y = x̂·γ + β
 * (γ, β (n,) or None; the sums in double, eight running partial sums each); x̂ and r kept for
 * layer_norm_rows_backward(g, xhat, inv, gamma, dx, parts):
 *   u = g·γ,  dx = r·(u − Σu/n − x̂·Σ(u·x̂)/n)
 * (ops/normalization.py, LayerNorm over the last axis).  One pass over a row each way instead of
 * NumPy's dozen; the same equations, the sums in another order (within float rounding of the
 * NumPy form: tests/ops/test_layer_norm_rows.py).  Runs of rows on the pool's threads. */
typedef struct {
    char code; const char *x, *g, *gamma, *beta; char *y, *xhat, *inv, *dx;
    double eps; Py_ssize_t n, lo, hi;
} LNPart;

#define LN_KERNELS(T_, SUF)                                                                     \
WIDE static void ln_fwd_##SUF(const LNPart *q) {                                                \
    const Py_ssize_t n = q->n;                                                                  \
    const T_ *gm = (const T_ *)q->gamma, *bt = (const T_ *)q->beta;                             \
    for (Py_ssize_t r = q->lo; r < q->hi; r++) {                                                \
        const T_ *restrict x = (const T_ *)q->x + r * n;                                        \
        T_ *restrict xh = (T_ *)q->xhat + r * n, *restrict y = (T_ *)q->y + r * n;             \
        double sa[8] = {0}, va[8] = {0}, s = 0, v = 0;                                          \
        Py_ssize_t j8 = n & ~(Py_ssize_t)7;                                                     \
        for (Py_ssize_t j = 0; j < j8; j += 8)                                                  \
            for (int e = 0; e < 8; e++) sa[e] += x[j + e];                                      \
        for (int e = 0; e < 8; e++) s += sa[e];                                                 \
        for (Py_ssize_t j = j8; j < n; j++) s += x[j];                                          \
        const double mu = s / (double)n;                                                        \
        for (Py_ssize_t j = 0; j < j8; j += 8)                                                  \
            for (int e = 0; e < 8; e++) { double d = x[j + e] - mu; va[e] += d * d; }          \
        for (int e = 0; e < 8; e++) v += va[e];                                                 \
        for (Py_ssize_t j = j8; j < n; j++) { double d = x[j] - mu; v += d * d; }              \
        const double inv = 1.0 / sqrt(v / (double)n + q->eps);                                  \
        ((T_ *)q->inv)[r] = (T_)inv;                                                            \
        for (Py_ssize_t j = 0; j < n; j++) xh[j] = (T_)((x[j] - mu) * inv);                     \
        if (gm && bt) for (Py_ssize_t j = 0; j < n; j++) y[j] = xh[j] * gm[j] + bt[j];          \
        else if (gm) for (Py_ssize_t j = 0; j < n; j++) y[j] = xh[j] * gm[j];                   \
        else if (bt) for (Py_ssize_t j = 0; j < n; j++) y[j] = xh[j] + bt[j];                   \
        else for (Py_ssize_t j = 0; j < n; j++) y[j] = xh[j];                                   \
    }                                                                                           \
}                                                                                               \
WIDE static void ln_bwd_##SUF(const LNPart *q) {                                                \
    const Py_ssize_t n = q->n;                                                                  \
    const T_ *gm = (const T_ *)q->gamma;                                                        \
    for (Py_ssize_t r = q->lo; r < q->hi; r++) {                                                \
        const T_ *restrict g = (const T_ *)q->g + r * n, *restrict xh = (const T_ *)q->xhat + r * n; \
        T_ *restrict dx = (T_ *)q->dx + r * n;                                                  \
        double a1[8] = {0}, a2[8] = {0}, s1 = 0, s2 = 0;                                        \
        Py_ssize_t j8 = n & ~(Py_ssize_t)7;                                                     \
        for (Py_ssize_t j = 0; j < j8; j += 8)                                                  \
            for (int e = 0; e < 8; e++) {                                                       \
                double u = gm ? (double)(g[j + e] * gm[j + e]) : (double)g[j + e];             \
                a1[e] += u; a2[e] += u * xh[j + e];                                             \
            }                                                                                   \
        for (int e = 0; e < 8; e++) { s1 += a1[e]; s2 += a2[e]; }                               \
        for (Py_ssize_t j = j8; j < n; j++) {                                                   \
            double u = gm ? (double)(g[j] * gm[j]) : (double)g[j];                             \
            s1 += u; s2 += u * xh[j];                                                           \
        }                                                                                       \
        const T_ m1 = (T_)(s1 / (double)n), m2 = (T_)(s2 / (double)n);                          \
        const T_ inv = ((const T_ *)q->inv)[r];                                                 \
        if (gm) for (Py_ssize_t j = 0; j < n; j++) dx[j] = ((g[j] * gm[j] - m1) - xh[j] * m2) * inv; \
        else for (Py_ssize_t j = 0; j < n; j++) dx[j] = ((g[j] - m1) - xh[j] * m2) * inv;      \
    }                                                                                           \
}
LN_KERNELS(float, f)
LN_KERNELS(double, d)

typedef struct { LNPart part; int back; } LNTask;

static void ln_part_fn(void *arg) {
    const LNTask *t = (const LNTask *)arg;
    if (t->back) { if (t->part.code == 'f') ln_bwd_f(&t->part); else ln_bwd_d(&t->part); }
    else { if (t->part.code == 'f') ln_fwd_f(&t->part); else ln_fwd_d(&t->part); }
}

static void ln_run(const LNPart *whole, int back, Py_ssize_t rows, long parts) {
    Py_ssize_t k = parts < 8 ? parts : 8;
    if (k > num_threads) k = num_threads;
    if (k > rows) k = rows;
    if (k > rows * whole->n / WINO_PART_MIN) k = rows * whole->n / WINO_PART_MIN;
    if (k < 1) k = 1;
    LNTask tasks_[8];
    PoolTask pool[8];
    Py_ssize_t step = (rows + k - 1) / k, cnt = 0;
    for (Py_ssize_t lo = 0; lo < rows; lo += step, cnt++) {
        tasks_[cnt].part = *whole;
        tasks_[cnt].back = back;
        tasks_[cnt].part.lo = lo;
        tasks_[cnt].part.hi = lo + step < rows ? lo + step : rows;
        pool[cnt].fn = ln_part_fn;
        pool[cnt].arg = tasks_ + cnt;
    }
#ifdef AXONE_THREADS
    if (cnt > 1 && pthread_mutex_trylock(&pool_use) == 0) {
        pool_run(pool, cnt);
        pthread_mutex_unlock(&pool_use);
    } else
#endif
    {
        for (Py_ssize_t i = 0; i < cnt; i++) ln_part_fn(tasks_ + i);
    }
}

static PyObject *py_layer_norm_rows(PyObject *self, PyObject *args) {
    PyObject *ox, *og, *ob, *oy, *oh, *oi;
    double eps;
    long parts;
    if (!PyArg_ParseTuple(args, "OOOdOOOl", &ox, &og, &ob, &eps, &oy, &oh, &oi, &parts)) return NULL;
    if (!(eps >= 0) || parts < 1) {
        PyErr_Format(PyExc_ValueError, "layer_norm_rows: expected eps >= 0 and parts >= 1, "
                     "received eps=%g parts=%ld", eps, parts);
        return NULL;
    }
    Views vs = {.fn = "layer_norm_rows", .n = 0};
    void *x, *g, *b, *y, *h, *inv;
    char code = float_code(&vs, ox, "x");
    if (!code) return NULL;
    Py_ssize_t dx[2] = {-1, -1};
    if (view(&vs, ox, "x", code, 2, dx, 0, 0, &x) < 0) goto fail;
    {
        Py_ssize_t dg[1] = {dx[1]}, db[1] = {dx[1]}, dy[2] = {dx[0], dx[1]}, dh[2] = {dx[0], dx[1]},
                   di[1] = {dx[0]};
        if (view(&vs, og, "gamma", code, 1, dg, 1, 0, &g) < 0
            || view(&vs, ob, "beta", code, 1, db, 1, 0, &b) < 0
            || view(&vs, oy, "y", code, 2, dy, 0, 1, &y) < 0
            || view(&vs, oh, "xhat", code, 2, dh, 0, 1, &h) < 0
            || view(&vs, oi, "inv", code, 1, di, 0, 1, &inv) < 0 || distinct(&vs) < 0)
            goto fail;
        if (dx[1] < 1) {
            PyErr_SetString(PyExc_ValueError, "layer_norm_rows: x must have at least one column");
            goto fail;
        }
        LNPart whole = {code, x, NULL, g, b, y, h, inv, NULL, eps, dx[1], 0, 0};
        Py_BEGIN_ALLOW_THREADS
        ln_run(&whole, 0, dx[0], parts);
        Py_END_ALLOW_THREADS
    }
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

static PyObject *py_layer_norm_rows_backward(PyObject *self, PyObject *args) {
    PyObject *og, *oh, *oi, *ogm, *od;
    long parts;
    if (!PyArg_ParseTuple(args, "OOOOOl", &og, &oh, &oi, &ogm, &od, &parts)) return NULL;
    if (parts < 1) {
        PyErr_Format(PyExc_ValueError, "layer_norm_rows_backward: parts must be >= 1, received %ld",
                     parts);
        return NULL;
    }
    Views vs = {.fn = "layer_norm_rows_backward", .n = 0};
    void *g, *h, *inv, *gm, *d;
    char code = float_code(&vs, og, "g");
    if (!code) return NULL;
    Py_ssize_t dg[2] = {-1, -1};
    if (view(&vs, og, "g", code, 2, dg, 0, 0, &g) < 0) goto fail;
    {
        Py_ssize_t dh[2] = {dg[0], dg[1]}, di[1] = {dg[0]}, dm[1] = {dg[1]}, dd[2] = {dg[0], dg[1]};
        if (view(&vs, oh, "xhat", code, 2, dh, 0, 0, &h) < 0
            || view(&vs, oi, "inv", code, 1, di, 0, 0, &inv) < 0
            || view(&vs, ogm, "gamma", code, 1, dm, 1, 0, &gm) < 0
            || view(&vs, od, "dx", code, 2, dd, 0, 1, &d) < 0 || distinct(&vs) < 0)
            goto fail;
        if (dg[1] < 1) {
            PyErr_SetString(PyExc_ValueError, "layer_norm_rows_backward: g must have at least one "
                            "column");
            goto fail;
        }
        LNPart whole = {code, NULL, g, gm, NULL, NULL, h, inv, d, 0.0, dg[1], 0, 0};
        Py_BEGIN_ALLOW_THREADS
        ln_run(&whole, 1, dg[0], parts);
        Py_END_ALLOW_THREADS
    }
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

/* ------------------------------------------------------------------ softmax gradient rows */
/* softmax_grad_rows(dp, p, parts): dp ← p·(dp − Σ_j dp_j·p_j) over each row of (R, S), in place
 * (dL/ds of s → p = softmax(s) given dL/dp; the attention's backward, ops/attention.py).  The
 * row sum in double in eight running partial sums (NumPy's pairwise float sum differs by
 * rounding); runs of rows on the pool's threads. */
typedef struct { char code; char *dp; const char *p; Py_ssize_t S, lo, hi; } SGPart;

#define SOFTMAX_GRAD(T_, SUF)                                                                   \
WIDE static void softmax_grad_##SUF(const SGPart *q) {                                          \
    const Py_ssize_t S = q->S, j8 = S & ~(Py_ssize_t)7;                                         \
    for (Py_ssize_t r = q->lo; r < q->hi; r++) {                                                \
        T_ *restrict d = (T_ *)q->dp + r * S;                                                   \
        const T_ *restrict p = (const T_ *)q->p + r * S;                                        \
        double acc[8] = {0}, s = 0;                                                             \
        for (Py_ssize_t j = 0; j < j8; j += 8)                                                  \
            for (int e = 0; e < 8; e++) acc[e] += (double)d[j + e] * (double)p[j + e];          \
        for (int e = 0; e < 8; e++) s += acc[e];                                                \
        for (Py_ssize_t j = j8; j < S; j++) s += (double)d[j] * (double)p[j];                  \
        const T_ dot = (T_)s;                                                                   \
        for (Py_ssize_t j = 0; j < S; j++) d[j] = (d[j] - dot) * p[j];                          \
    }                                                                                           \
}
SOFTMAX_GRAD(float, f)
SOFTMAX_GRAD(double, d)

static void sg_part_fn(void *arg) {
    const SGPart *q = (const SGPart *)arg;
    if (q->code == 'f') softmax_grad_f(q); else softmax_grad_d(q);
}

static PyObject *py_softmax_grad_rows(PyObject *self, PyObject *args) {
    PyObject *od, *op;
    long parts;
    if (!PyArg_ParseTuple(args, "OOl", &od, &op, &parts)) return NULL;
    if (parts < 1) {
        PyErr_Format(PyExc_ValueError, "softmax_grad_rows: parts must be >= 1, received %ld", parts);
        return NULL;
    }
    Views vs = {.fn = "softmax_grad_rows", .n = 0};
    void *d, *p;
    char code = float_code(&vs, od, "dp");
    if (!code) return NULL;
    Py_ssize_t dd[2] = {-1, -1};
    if (view(&vs, od, "dp", code, 2, dd, 0, 1, &d) < 0) goto fail;
    {
        Py_ssize_t dq[2] = {dd[0], dd[1]};
        if (view(&vs, op, "p", code, 2, dq, 0, 0, &p) < 0 || distinct(&vs) < 0) goto fail;
        Py_ssize_t R = dd[0], k = parts < 8 ? parts : 8;
        if (k > num_threads) k = num_threads;
        if (k > R) k = R;
        if (k > R * dd[1] / WINO_PART_MIN) k = R * dd[1] / WINO_PART_MIN;
        if (k < 1) k = 1;
        SGPart ps[8];
        PoolTask pool[8];
        Py_ssize_t step = R > 0 ? (R + k - 1) / k : 1, cnt = 0;
        for (Py_ssize_t lo = 0; lo < R; lo += step, cnt++) {
            SGPart q = {code, d, p, dd[1], lo, lo + step < R ? lo + step : R};
            ps[cnt] = q;
            pool[cnt].fn = sg_part_fn;
            pool[cnt].arg = ps + cnt;
        }
        Py_BEGIN_ALLOW_THREADS
#ifdef AXONE_THREADS
        if (cnt > 1 && pthread_mutex_trylock(&pool_use) == 0) {
            pool_run(pool, cnt);
            pthread_mutex_unlock(&pool_use);
        } else
#endif
        {
            for (Py_ssize_t i = 0; i < cnt; i++) sg_part_fn(ps + i);
        }
        Py_END_ALLOW_THREADS
    }
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

/* ------------------------------------------------------------------ per-channel affine + clip */
/* affine_clip(x, scale, shift, lo, hi, y): y = min(max(x·scale + shift, lo), hi) over rows of
 * C channels (x, y (rows, C) C-contiguous, y may be x; scale, shift (C,) or None; lo, hi may be
 * ±inf), the product, then the sum, then the two comparisons, as NumPy's x * s + b, maximum and
 * minimum in turn (a NaN stays NaN): the same bits in one pass, runs of rows on the pool's
 * threads.  BatchNormalization at inference (x·s + (β − μ·s)) and ReLU6 / clipped ReLUs. */
typedef struct {
    char code; const void *x, *sc, *sh; void *y; double lo, hi; Py_ssize_t rows, C;
} AffPart;

#define AFFINE(T_, SUF)                                                                         \
WIDE static void affine_##SUF(const AffPart *p) {                                               \
    const T_ *x = p->x, *sc = p->sc, *sh = p->sh; T_ *y = p->y;                                 \
    const T_ lo = (T_)p->lo, hi = (T_)p->hi;                                                    \
    const int clo = p->lo != -INFINITY, chi = p->hi != INFINITY;                                \
    const Py_ssize_t C = p->C;                                                                  \
    for (Py_ssize_t r = 0; r < p->rows; r++) {                                                  \
        const T_ *restrict xr = x + r * C;                                                      \
        T_ *restrict yr = y + r * C;                                                            \
        for (Py_ssize_t c = 0; c < C; c++) {                                                    \
            T_ v = xr[c];                                                                       \
            if (sc) v = v * sc[c];                                                              \
            if (sh) v = v + sh[c];                                                              \
            if (clo) v = v < lo ? lo : v;                                                       \
            if (chi) v = v > hi ? hi : v;                                                       \
            yr[c] = v;                                                                          \
        }                                                                                       \
    }                                                                                           \
}
AFFINE(float, f)
AFFINE(double, d)

static void aff_part_fn(void *arg) {
    const AffPart *p = (const AffPart *)arg;
    if (p->code == 'f') affine_f(p); else affine_d(p);
}

#define AFF_PARTS 8
#define AFF_PART_MIN ((Py_ssize_t)1 << 16)

static PyObject *py_affine_clip(PyObject *self, PyObject *args) {
    PyObject *ox, *osc, *osh, *oy;
    double lo, hi;
    if (!PyArg_ParseTuple(args, "OOOddO", &ox, &osc, &osh, &lo, &hi, &oy)) return NULL;
    if (lo != lo || hi != hi || lo > hi) {
        PyErr_Format(PyExc_ValueError, "affine_clip: expected lo <= hi (no NaN), received %g and %g",
                     lo, hi);
        return NULL;
    }
    Views vs = {.fn = "affine_clip", .n = 0};
    void *x, *sc, *sh, *y;
    char code = float_code(&vs, ox, "x");
    if (!code) return NULL;
    Py_ssize_t dx[2] = {-1, -1};
    if (view(&vs, ox, "x", code, 2, dx, 0, 0, &x) < 0) goto fail;
    Py_ssize_t dc[1] = {dx[1]}, dc2[1] = {dx[1]}, dy[2] = {dx[0], dx[1]};
    if (view(&vs, osc, "scale", code, 1, dc, 1, 0, &sc) < 0
        || view(&vs, osh, "shift", code, 1, dc2, 1, 0, &sh) < 0)
        goto fail;
    if (oy == ox) {
        y = x;
        if (vs.v[0].readonly) {
            PyErr_SetString(PyExc_ValueError, "affine_clip: y is written and must be writable, "
                            "received a read-only array");
            goto fail;
        }
        vs.written[0] = 1;                /* x is y: scale and shift must not share its memory */
        if (distinct(&vs) < 0) goto fail;
    } else if (view(&vs, oy, "y", code, 2, dy, 0, 1, &y) < 0 || distinct(&vs) < 0) {
        goto fail;
    }
    AffPart base = {.code = code, .x = x, .sc = sc, .sh = sh, .y = y, .lo = lo, .hi = hi,
                    .rows = dx[0], .C = dx[1]};
    Py_ssize_t k = num_threads < AFF_PARTS ? num_threads : AFF_PARTS;
    if (k > dx[0]) k = dx[0];
    if (k > dx[0] * dx[1] / AFF_PART_MIN) k = dx[0] * dx[1] / AFF_PART_MIN;
    Py_BEGIN_ALLOW_THREADS
    if (k < 2) {
        aff_part_fn(&base);
    } else {
        AffPart parts[AFF_PARTS];
        PoolTask tasks[AFF_PARTS];
        Py_ssize_t per = (dx[0] + k - 1) / k, n = 0, it = code == 'f' ? 4 : 8;
        for (Py_ssize_t lo_ = 0; lo_ < dx[0]; lo_ += per, n++) {
            Py_ssize_t hi_ = lo_ + per < dx[0] ? lo_ + per : dx[0];
            parts[n] = base;
            parts[n].rows = hi_ - lo_;
            parts[n].x = (const char *)x + lo_ * dx[1] * it;
            parts[n].y = (char *)y + lo_ * dx[1] * it;
            tasks[n].fn = aff_part_fn;
            tasks[n].arg = parts + n;
        }
#ifdef AXONE_THREADS
        if (pthread_mutex_trylock(&pool_use) == 0) {
            pool_run(tasks, n);
            pthread_mutex_unlock(&pool_use);
        } else
#endif
        {
            for (Py_ssize_t i = 0; i < n; i++) aff_part_fn(parts + i);
        }
    }
    Py_END_ALLOW_THREADS
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

/* ------------------------------------------------------------------ depthwise 2-D convolution */
/* Depthwise convolution of a padded channels-last x (N, H, W, C) with k (kh, kw, C), one filter
 * a channel (depth multiplier 1), strides sh, sw and dilations dh, dw, output y (N, OH, OW, C):
 *   y[n, i, j, c] = Σ_{a, b} x[n, i·sh + a·dh, j·sw + b·dw, c] · k[a, b, c]
 * (the offsets in row-major order, each output accumulated from 0).  Backward, given gy:
 *   gx[n, r, q, c] = Σ over the (i, j, a, b) that read (r, q): gy[n, i, j, c] · k[a, b, c]
 *   gk[a, b, c]    = Σ_{n, i, j} x[n, i·sh + a·dh, j·sw + b·dw, c] · gy[n, i, j, c]
 * Every inner loop runs along the channels (contiguous).  Samples are independent: runs of them
 * go to the pool's threads; gk is summed per run and the runs' sums added in run order, so a
 * given thread count gives the same bits every time. */
typedef struct {
    char code; int mode;                /* 0 forward, 1 input gradient, 2 kernel gradient */
    const void *x, *k, *gy; void *y, *gx, *gk;
    Py_ssize_t N, H, W, C, OH, OW, kh, kw, sh, sw, dh, dw;
    Py_ssize_t r0, r1;                  /* forward: the output rows n·OH + i it computes */
} DwPart;

#define DW_CB 16                      /* forward: channels a block */
#define DEPTHWISE(T_, SUF)                                                                      \
WIDE static void dw_fwd_##SUF(const DwPart *p) {                                                \
    const T_ *x = p->x, *k = p->k; T_ *y = p->y;                                                \
    const Py_ssize_t C = p->C, W = p->W, Cb = C - C % DW_CB;                                    \
    for (Py_ssize_t r = p->r0; r < p->r1; r++) {                                                \
        const Py_ssize_t n = r / p->OH, i = r % p->OH;                                          \
        for (Py_ssize_t j = 0; j < p->OW; j++) {                                                \
            T_ *restrict yo = y + (r * p->OW + j) * C;                                          \
            const T_ *xo = x + ((n * p->H + i * p->sh) * W + j * p->sw) * C;                    \
            /* DW_CB channels at a time in a local array (registers), the taps in row-major     \
             * order from 0: what a whole-row loop computes, without storing each partial sum */ \
            for (Py_ssize_t c0 = 0; c0 < Cb; c0 += DW_CB) {                                     \
                T_ acc[DW_CB];                                                                  \
                for (int t = 0; t < DW_CB; t++) acc[t] = 0;                                     \
                for (Py_ssize_t a = 0; a < p->kh; a++)                                          \
                    for (Py_ssize_t b = 0; b < p->kw; b++) {                                    \
                        const T_ *restrict xv = xo + (a * p->dh * W + b * p->dw) * C + c0;      \
                        const T_ *restrict kv = k + (a * p->kw + b) * C + c0;                   \
                        for (int t = 0; t < DW_CB; t++) acc[t] += xv[t] * kv[t];                \
                    }                                                                           \
                for (int t = 0; t < DW_CB; t++) yo[c0 + t] = acc[t];                            \
            }                                                                                   \
            for (Py_ssize_t c = Cb; c < C; c++) {                                               \
                T_ acc = 0;                                                                     \
                for (Py_ssize_t a = 0; a < p->kh; a++)                                          \
                    for (Py_ssize_t b = 0; b < p->kw; b++)                                      \
                        acc += xo[(a * p->dh * W + b * p->dw) * C + c] * k[(a * p->kw + b) * C + c]; \
                yo[c] = acc;                                                                    \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
WIDE static void dw_gx_##SUF(const DwPart *p) {                                                 \
    const T_ *gy = p->gy, *k = p->k; T_ *gx = p->gx;                                            \
    const Py_ssize_t C = p->C, W = p->W;                                                        \
    memset(gx, 0, (size_t)(p->N * p->H * W * C) * sizeof(T_));                                  \
    for (Py_ssize_t n = 0; n < p->N; n++)                                                       \
        for (Py_ssize_t i = 0; i < p->OH; i++)                                                  \
            for (Py_ssize_t j = 0; j < p->OW; j++) {                                            \
                const T_ *restrict g = gy + ((n * p->OH + i) * p->OW + j) * C;                  \
                for (Py_ssize_t a = 0; a < p->kh; a++) {                                        \
                    T_ *xr = gx + ((n * p->H + i * p->sh + a * p->dh) * W + j * p->sw) * C;     \
                    for (Py_ssize_t b = 0; b < p->kw; b++) {                                    \
                        T_ *restrict xv = xr + b * p->dw * C;                                   \
                        const T_ *restrict kv = k + (a * p->kw + b) * C;                        \
                        for (Py_ssize_t c = 0; c < C; c++) xv[c] += g[c] * kv[c];               \
                    }                                                                           \
                }                                                                               \
            }                                                                                   \
}                                                                                               \
WIDE static void dw_gk_##SUF(const DwPart *p) {                                                 \
    const T_ *gy = p->gy, *x = p->x; T_ *gk = p->gk;                                            \
    const Py_ssize_t C = p->C, W = p->W;                                                        \
    memset(gk, 0, (size_t)(p->kh * p->kw * C) * sizeof(T_));                                    \
    for (Py_ssize_t n = 0; n < p->N; n++)                                                       \
        for (Py_ssize_t i = 0; i < p->OH; i++)                                                  \
            for (Py_ssize_t j = 0; j < p->OW; j++) {                                            \
                const T_ *restrict g = gy + ((n * p->OH + i) * p->OW + j) * C;                  \
                for (Py_ssize_t a = 0; a < p->kh; a++) {                                        \
                    const T_ *xr = x + ((n * p->H + i * p->sh + a * p->dh) * W + j * p->sw) * C; \
                    for (Py_ssize_t b = 0; b < p->kw; b++) {                                    \
                        const T_ *restrict xv = xr + b * p->dw * C;                             \
                        T_ *restrict kv = gk + (a * p->kw + b) * C;                             \
                        for (Py_ssize_t c = 0; c < C; c++) kv[c] += xv[c] * g[c];               \
                    }                                                                           \
                }                                                                               \
            }                                                                                   \
}
DEPTHWISE(float, f)
DEPTHWISE(double, d)

static void dw_part_fn(void *arg) {
    const DwPart *p = (const DwPart *)arg;
    if (p->code == 'f') { if (p->mode == 0) dw_fwd_f(p); else if (p->mode == 1) dw_gx_f(p); else dw_gk_f(p); }
    else { if (p->mode == 0) dw_fwd_d(p); else if (p->mode == 1) dw_gx_d(p); else dw_gk_d(p); }
}

#define DW_PARTS 8
#define DW_PART_MIN ((Py_ssize_t)1 << 16)      /* multiply-adds a run, at least */

/* depthwise2d(mode, x, k, gy, out, sh, sw, dh, dw): mode 0 out = y (forward, gy None), 1 out = gx
 * (x None: only its shape is out's), 2 out = gk (k None: out's shape) */
static PyObject *py_depthwise2d(PyObject *self, PyObject *args) {
    int mode;
    PyObject *ox, *ok, *og, *oo;
    Py_ssize_t sh, sw, dh, dw;
    if (!PyArg_ParseTuple(args, "iOOOOnnnn", &mode, &ox, &ok, &og, &oo, &sh, &sw, &dh, &dw))
        return NULL;
    if (mode < 0 || mode > 2 || sh < 1 || sw < 1 || dh < 1 || dw < 1) {
        PyErr_Format(PyExc_ValueError, "depthwise2d: expected mode 0, 1 or 2 and strides and "
                     "dilations >= 1, received mode %d, (%zd, %zd), (%zd, %zd)", mode, sh, sw, dh, dw);
        return NULL;
    }
    Views vs = {.fn = "depthwise2d", .n = 0};
    void *x = NULL, *k = NULL, *gy = NULL, *out = NULL;
    PyObject *first = mode == 0 ? ox : og;
    char code = float_code(&vs, first, mode == 0 ? "x" : "gy");
    if (!code) return NULL;
    /* the shapes: x (N, H, W, C) from x or gx, k (kh, kw, C) from k or gk, y / gy (N, OH, OW, C) */
    Py_ssize_t dx[4] = {-1, -1, -1, -1}, dk[3] = {-1, -1, -1}, dy[4] = {-1, -1, -1, -1};
    if (view(&vs, mode == 1 ? oo : ox, mode == 1 ? "gx" : "x", code, 4, dx, 0, mode == 1, mode == 1 ? &out : &x) < 0)
        goto fail;
    dk[2] = dx[3];
    if (view(&vs, mode == 2 ? oo : ok, mode == 2 ? "gk" : "k", code, 3, dk, 0, mode == 2, mode == 2 ? &out : &k) < 0)
        goto fail;
    Py_ssize_t eh = (dk[0] - 1) * dh + 1, ew = (dk[1] - 1) * dw + 1;
    if (dx[1] < eh || dx[2] < ew || dk[0] < 1 || dk[1] < 1) {
        PyErr_Format(PyExc_ValueError, "depthwise2d: a (%zd, %zd) kernel dilated by (%zd, %zd) does "
                     "not fit the (padded) input of %zd x %zd", dk[0], dk[1], dh, dw, dx[1], dx[2]);
        goto fail;
    }
    dy[0] = dx[0]; dy[1] = (dx[1] - eh) / sh + 1; dy[2] = (dx[2] - ew) / sw + 1; dy[3] = dx[3];
    if (view(&vs, mode == 0 ? oo : og, mode == 0 ? "y" : "gy", code, 4, dy, 0, mode == 0, mode == 0 ? &out : &gy) < 0)
        goto fail;
    if (distinct(&vs) < 0) goto fail;
    DwPart base = {.code = code, .mode = mode, .x = x, .k = k, .gy = gy,
                   .y = mode == 0 ? out : NULL, .gx = mode == 1 ? out : NULL,
                   .gk = mode == 2 ? out : NULL, .N = dx[0], .H = dx[1], .W = dx[2], .C = dx[3],
                   .OH = dy[1], .OW = dy[2], .kh = dk[0], .kw = dk[1], .sh = sh, .sw = sw,
                   .dh = dh, .dw = dw};
    base.r0 = 0; base.r1 = base.N * base.OH;
    Py_ssize_t it = code == 'f' ? 4 : 8;
    Py_ssize_t work = base.N * base.OH * base.OW * base.C * base.kh * base.kw;
    Py_ssize_t kparts = num_threads < DW_PARTS ? num_threads : DW_PARTS;
    /* the forward's output rows are independent: runs of them, so that one sample is shared
     * out too; the two gradients write rows or sums that neighbouring rows share: runs of
     * samples */
    Py_ssize_t units = mode == 0 ? base.r1 : base.N;
    if (kparts > units) kparts = units;
    if (kparts > work / DW_PART_MIN) kparts = work / DW_PART_MIN;
    if (kparts < 1) kparts = 1;
    DwPart parts[DW_PARTS];
    PoolTask tasks[DW_PARTS];
    char *partial = NULL;                 /* the kernel-gradient sums of runs 1 … */
    Py_ssize_t ksize = base.kh * base.kw * base.C;
    if (mode == 2 && kparts > 1) {
        partial = PyMem_Malloc((size_t)((kparts - 1) * ksize * it));
        if (!partial) { PyErr_NoMemory(); goto fail; }
    }
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t per, np_ = 0;
    if (mode == 0) {
        per = (units + kparts - 1) / kparts;
        for (Py_ssize_t lo = 0; lo < units || np_ == 0; lo += per > 0 ? per : 1, np_++) {
            parts[np_] = base;
            parts[np_].r0 = lo;
            parts[np_].r1 = lo + per < units ? lo + per : units;
            tasks[np_].fn = dw_part_fn;
            tasks[np_].arg = parts + np_;
            if (units == 0) { np_++; break; }
        }
    }
    per = (base.N + kparts - 1) / kparts;
    for (Py_ssize_t lo = 0; mode != 0 && (lo < base.N || np_ == 0); lo += per > 0 ? per : 1, np_++) {
        Py_ssize_t hi = lo + per < base.N ? lo + per : base.N;
        DwPart q = base;
        q.N = hi - lo;
        q.x = x ? (const char *)x + lo * base.H * base.W * base.C * it : NULL;
        q.gy = gy ? (const char *)gy + lo * base.OH * base.OW * base.C * it : NULL;
        if (mode == 0) q.y = (char *)out + lo * base.OH * base.OW * base.C * it;
        if (mode == 1) q.gx = (char *)out + lo * base.H * base.W * base.C * it;
        if (mode == 2 && np_ > 0) q.gk = partial + (np_ - 1) * ksize * it;
        parts[np_] = q;
        tasks[np_].fn = dw_part_fn;
        tasks[np_].arg = parts + np_;
        if (base.N == 0) { np_++; break; }
    }
#ifdef AXONE_THREADS
    if (np_ > 1 && pthread_mutex_trylock(&pool_use) == 0) {
        pool_run(tasks, np_);
        pthread_mutex_unlock(&pool_use);
    } else
#endif
    {
        for (Py_ssize_t i = 0; i < np_; i++) dw_part_fn(parts + i);
    }
    if (partial) {                        /* runs' sums added in run order */
        for (Py_ssize_t r = 1; r < np_; r++) {
            if (code == 'f') {
                float *g = out; const float *s_ = (const float *)(partial + (r - 1) * ksize * it);
                for (Py_ssize_t t = 0; t < ksize; t++) g[t] += s_[t];
            } else {
                double *g = out; const double *s_ = (const double *)(partial + (r - 1) * ksize * it);
                for (Py_ssize_t t = 0; t < ksize; t++) g[t] += s_[t];
            }
        }
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(partial);
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

/* set_pool_spin(us): how long an idle worker spins before it sleeps (≥ 0) */
static PyObject *py_set_pool_spin(PyObject *self, PyObject *args) {
    double us;
    if (!PyArg_ParseTuple(args, "d", &us)) return NULL;
    if (!(us >= 0 && us <= 1e6)) {
        PyErr_Format(PyExc_ValueError, "set_pool_spin: expected 0 <= us <= 1e6, received %g", us);
        return NULL;
    }
#ifdef AXONE_THREADS
    pool_spin_ns = (long)(us * 1000);
#endif
    Py_RETURN_NONE;
}

/* lstm_forward_seq(A, C, AC, Hc, H, rm, fr, Wc): all T steps */
static PyObject *py_lstm_forward_seq(PyObject *self, PyObject *args) {
    PyObject *oA, *oC, *oAC, *oHc, *oH, *orm, *ofr, *oW;
    int pre = 0;
    if (!PyArg_ParseTuple(args, "OOOOOOOO|p", &oA, &oC, &oAC, &oHc, &oH, &orm, &ofr, &oW, &pre))
        return NULL;
    Views vs = {.fn = "lstm_forward_seq", .n = 0};
    void *A, *C, *AC, *Hc, *H, *rm, *fr, *W;
    char code = float_code(&vs, oA, "A");
    if (!code) return NULL;
    Py_ssize_t dA[3] = {-1, -1, -1};
    if (view(&vs, oA, "A", code, 3, dA, 0, 1, &A) < 0) goto fail;
    Py_ssize_t T = dA[0], N = dA[1], u = dA[2] / 4;
    if (dA[2] % 4) {
        PyErr_Format(PyExc_ValueError, "lstm_forward_seq: A's last axis must hold 4 gates, "
                     "received %zd values per row", dA[2]);
        goto fail;
    }
    Py_ssize_t dC[3] = {T + 1, N, u}, dAC[3] = {T, N, u}, dHc[3] = {T + 1, N, -1},
               dH[3] = {T + 1, N, u}, drm[2] = {N, u}, dfr[2] = {T, N}, dW[2] = {-1, 4 * u};
    if (view(&vs, oC, "C", code, 3, dC, 0, 1, &C) < 0 || view(&vs, oAC, "AC", code, 3, dAC, 0, 1, &AC) < 0
        || view(&vs, oHc, "Hc", code, 3, dHc, 0, 1, &Hc) < 0
        || view(&vs, oH, "H", code, 3, dH, 1, 1, &H) < 0 || view(&vs, orm, "rm", code, 2, drm, 1, 0, &rm) < 0
        || view(&vs, ofr, "fr", 'B', 2, dfr, 1, 0, &fr) < 0 || view(&vs, oW, "Wc", code, 2, dW, 0, 0, &W) < 0
        || distinct(&vs) < 0)
        goto fail;
    if (dHc[2] < u || dW[0] != dHc[2] || (rm && !H)) {
        PyErr_SetString(PyExc_ValueError, "lstm_forward_seq: Wc must be (K, 4u) for Hc rows of "
                        "K >= u values, and rm needs H");
        goto fail;
    }
    if (need_gemm("lstm_forward_seq", N, dHc[2], u) < 0) goto fail;
    Py_BEGIN_ALLOW_THREADS
    if (code == 'f') lstm_fwd_seq_f(T, N, u, dHc[2], A, C, AC, Hc, H, rm, fr, W, pre);
    else lstm_fwd_seq_d(T, N, u, dHc[2], A, C, AC, Hc, H, rm, fr, W, pre);
    Py_END_ALLOW_THREADS
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

/* lstm_backward_seq(hi, lo, A, C, AC, dZ, gh, gc, P, G, live, rm, fr, Wc): steps hi−1 … lo */
static PyObject *py_lstm_backward_seq(PyObject *self, PyObject *args) {
    Py_ssize_t hi, lo;
    PyObject *oA, *oC, *oAC, *odZ, *ogh, *ogc, *oP, *oG, *olive, *orm, *ofr, *oW;
    if (!PyArg_ParseTuple(args, "nnOOOOOOOOOOOO", &hi, &lo, &oA, &oC, &oAC, &odZ, &ogh, &ogc, &oP,
                          &oG, &olive, &orm, &ofr, &oW))
        return NULL;
    Views vs = {.fn = "lstm_backward_seq", .n = 0};
    void *A, *C, *AC, *dZ, *gh, *gc, *P, *G, *live, *rm, *fr, *W;
    char code = float_code(&vs, oA, "A");
    if (!code) return NULL;
    Py_ssize_t dA[3] = {-1, -1, -1};
    if (view(&vs, oA, "A", code, 3, dA, 0, 0, &A) < 0) goto fail;
    Py_ssize_t T = dA[0], N = dA[1], u = dA[2] / 4;
    if (dA[2] % 4 || lo < 0 || hi > T || lo > hi) {
        PyErr_Format(PyExc_ValueError, "lstm_backward_seq: A's last axis must hold 4 gates and "
                     "0 <= lo <= hi <= T, received A of %zd values per row, lo = %zd, hi = %zd, "
                     "T = %zd", dA[2], lo, hi, T);
        goto fail;
    }
    Py_ssize_t dC[3] = {T + 1, N, u}, dAC[3] = {T, N, u}, dZd[3] = {T, N, 4 * u}, dgh[2] = {N, u},
               dgc[2] = {N, u}, dP[2] = {N, u}, dG[3] = {N, T + 1, u}, dl[1] = {T}, drm[2] = {N, u},
               dfr[2] = {T, N}, dW[2] = {-1, 4 * u};
    if (view(&vs, oC, "C", code, 3, dC, 0, 0, &C) < 0 || view(&vs, oAC, "AC", code, 3, dAC, 0, 0, &AC) < 0
        || view(&vs, odZ, "dZ", code, 3, dZd, 0, 1, &dZ) < 0
        || view(&vs, ogh, "gh", code, 2, dgh, 0, 1, &gh) < 0
        || view(&vs, ogc, "gc", code, 2, dgc, 0, 1, &gc) < 0
        || view(&vs, oP, "P", code, 2, dP, 0, 1, &P) < 0 || view(&vs, oG, "G", code, 3, dG, 1, 0, &G) < 0
        || view(&vs, olive, "live", 'B', 1, dl, 0, 0, &live) < 0
        || view(&vs, orm, "rm", code, 2, drm, 1, 0, &rm) < 0
        || view(&vs, ofr, "fr", 'B', 2, dfr, 1, 0, &fr) < 0
        || view(&vs, oW, "Wc", code, 2, dW, 0, 0, &W) < 0 || distinct(&vs) < 0)
        goto fail;
    if (dW[0] < u) {
        PyErr_Format(PyExc_ValueError, "lstm_backward_seq: Wc must have at least u = %zd rows, "
                     "received %zd", u, dW[0]);
        goto fail;
    }
    if (need_gemm("lstm_backward_seq", N, 4 * u, u) < 0) goto fail;
    Py_BEGIN_ALLOW_THREADS
    if (code == 'f') lstm_bwd_seq_f(hi, lo, T, N, u, A, C, AC, dZ, gh, gc, P, G, live, rm, fr, W);
    else lstm_bwd_seq_d(hi, lo, T, N, u, A, C, AC, dZ, gh, gc, P, G, live, rm, fr, W);
    Py_END_ALLOW_THREADS
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

/* gru_forward_seq(XP, R, H, HR, rm, fr, U, b1) and simple_forward_seq(XP, None, H, HR, rm, fr, U,
 * None): all T steps, in place (R and b1 for the GRU only) */
static PyObject *rnn_forward_seq(PyObject *args, int gru) {
    PyObject *oX, *oR, *oH, *oHR, *orm, *ofr, *oU, *ob;
    if (!PyArg_ParseTuple(args, "OOOOOOOO", &oX, &oR, &oH, &oHR, &orm, &ofr, &oU, &ob))
        return NULL;
    const char *fn = gru ? "gru_forward_seq" : "simple_forward_seq";
    Views vs = {.fn = fn, .n = 0};
    void *X, *R = NULL, *H, *HR, *rm, *fr, *U, *b = NULL;
    char code = float_code(&vs, oH, "H");
    if (!code) return NULL;
    Py_ssize_t dH[3] = {-1, -1, -1};
    if (view(&vs, oH, "H", code, 3, dH, 0, 1, &H) < 0) goto fail;
    Py_ssize_t T = dH[0] - 1, N = dH[1], u = dH[2], G = (gru ? 3 : 1) * u;
    if (T < 0) {
        PyErr_Format(PyExc_ValueError, "%s: H must hold T+1 >= 1 states", fn);
        goto fail;
    }
    Py_ssize_t dX[3] = {T, N, G}, dR[3] = {T, N, G}, dHR[3] = {T + 1, N, u}, drm[2] = {N, u},
               dfr[2] = {T, N}, dU[2] = {u, G}, db[1] = {G};
    if (view(&vs, oX, "XP", code, 3, dX, 0, 1, &X) < 0
        || (gru && view(&vs, oR, "R", code, 3, dR, 0, 1, &R) < 0)
        || view(&vs, oHR, "HR", code, 3, dHR, 1, 1, &HR) < 0
        || view(&vs, orm, "rm", code, 2, drm, 1, 0, &rm) < 0
        || view(&vs, ofr, "fr", 'B', 2, dfr, 1, 0, &fr) < 0
        || view(&vs, oU, "U", code, 2, dU, 0, 0, &U) < 0
        || (gru && view(&vs, ob, "b1", code, 1, db, 0, 0, &b) < 0) || distinct(&vs) < 0)
        goto fail;
    if (!rm != !HR) {
        PyErr_Format(PyExc_ValueError, "%s: rm and HR go together (both or neither)", fn);
        goto fail;
    }
    if (need_gemm(fn, N, G, u) < 0) goto fail;
    Py_BEGIN_ALLOW_THREADS
    if (gru) {
        if (code == 'f') gru_fwd_seq_f(T, N, u, X, R, H, HR, rm, fr, U, b);
        else gru_fwd_seq_d(T, N, u, X, R, H, HR, rm, fr, U, b);
    } else {
        if (code == 'f') simple_fwd_seq_f(T, N, u, X, H, HR, rm, fr, U);
        else simple_fwd_seq_d(T, N, u, X, H, HR, rm, fr, U);
    }
    Py_END_ALLOW_THREADS
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

static PyObject *py_gru_forward_seq(PyObject *self, PyObject *args) { return rnn_forward_seq(args, 1); }
static PyObject *py_simple_forward_seq(PyObject *self, PyObject *args) { return rnn_forward_seq(args, 0); }

/* gru_backward_seq(XP, R, H, dX, dR, gh, P, G, live, rm, fr, U) and
 * simple_backward_seq(None, None, H, dX, None, gh, P, G, live, rm, fr, U): steps T−1 … 0 */
static PyObject *rnn_backward_seq(PyObject *args, int gru) {
    PyObject *oX, *oR, *oH, *odX, *odR, *ogh, *oP, *oG, *olive, *orm, *ofr, *oU;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOO", &oX, &oR, &oH, &odX, &odR, &ogh, &oP, &oG, &olive,
                          &orm, &ofr, &oU))
        return NULL;
    const char *fn = gru ? "gru_backward_seq" : "simple_backward_seq";
    Views vs = {.fn = fn, .n = 0};
    void *X = NULL, *R = NULL, *H, *dXp, *dRp = NULL, *gh, *P, *G, *live, *rm, *fr, *U;
    char code = float_code(&vs, oH, "H");
    if (!code) return NULL;
    Py_ssize_t dH[3] = {-1, -1, -1};
    if (view(&vs, oH, "H", code, 3, dH, 0, 0, &H) < 0) goto fail;
    Py_ssize_t T = dH[0] - 1, N = dH[1], u = dH[2], Gu = (gru ? 3 : 1) * u;
    if (T < 0) {
        PyErr_Format(PyExc_ValueError, "%s: H must hold T+1 >= 1 states", fn);
        goto fail;
    }
    Py_ssize_t dX[3] = {T, N, Gu}, dR[3] = {T, N, Gu}, ddX[3] = {T, N, Gu}, ddR[3] = {T, N, Gu},
               dgh[2] = {N, u}, dP[2] = {N, u}, dG[3] = {N, T, u}, dl[1] = {T}, drm[2] = {N, u},
               dfr[2] = {T, N}, dU[2] = {u, Gu};
    if ((gru && (view(&vs, oX, "XP", code, 3, dX, 0, 0, &X) < 0
                 || view(&vs, oR, "R", code, 3, dR, 0, 0, &R) < 0
                 || view(&vs, odR, "dR", code, 3, ddR, 0, 1, &dRp) < 0))
        || view(&vs, odX, "dX", code, 3, ddX, 0, 1, &dXp) < 0
        || view(&vs, ogh, "gh", code, 2, dgh, 0, 1, &gh) < 0
        || view(&vs, oP, "P", code, 2, dP, 0, 1, &P) < 0
        || view(&vs, oG, "G", code, 3, dG, 1, 0, &G) < 0
        || view(&vs, olive, "live", 'B', 1, dl, 0, 0, &live) < 0
        || view(&vs, orm, "rm", code, 2, drm, 1, 0, &rm) < 0
        || view(&vs, ofr, "fr", 'B', 2, dfr, 1, 0, &fr) < 0
        || view(&vs, oU, "U", code, 2, dU, 0, 0, &U) < 0 || distinct(&vs) < 0)
        goto fail;
    if (need_gemm(fn, N, Gu, u) < 0) goto fail;
    Py_BEGIN_ALLOW_THREADS
    if (gru) {
        if (code == 'f') gru_bwd_seq_f(T, N, u, X, R, H, dXp, dRp, gh, P, G, live, rm, fr, U);
        else gru_bwd_seq_d(T, N, u, X, R, H, dXp, dRp, gh, P, G, live, rm, fr, U);
    } else {
        if (code == 'f') simple_bwd_seq_f(T, N, u, H, dXp, gh, P, G, live, rm, fr, U);
        else simple_bwd_seq_d(T, N, u, H, dXp, gh, P, G, live, rm, fr, U);
    }
    Py_END_ALLOW_THREADS
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

static PyObject *py_gru_backward_seq(PyObject *self, PyObject *args) { return rnn_backward_seq(args, 1); }
static PyObject *py_simple_backward_seq(PyObject *self, PyObject *args) { return rnn_backward_seq(args, 0); }

/* gru_rb_forward_seq(XP, S, RH, H, HR, rm, fr, U): all steps of the GRU with reset_after=False */
static PyObject *py_gru_rb_forward_seq(PyObject *self, PyObject *args) {
    PyObject *oX, *oS, *oRH, *oH, *oHR, *orm, *ofr, *oU;
    if (!PyArg_ParseTuple(args, "OOOOOOOO", &oX, &oS, &oRH, &oH, &oHR, &orm, &ofr, &oU))
        return NULL;
    const char *fn = "gru_rb_forward_seq";
    Views vs = {.fn = fn, .n = 0};
    void *X, *S, *RH, *H, *HR, *rm, *fr, *U;
    char code = float_code(&vs, oH, "H");
    if (!code) return NULL;
    Py_ssize_t dH[3] = {-1, -1, -1};
    if (view(&vs, oH, "H", code, 3, dH, 0, 1, &H) < 0) goto fail;
    Py_ssize_t T = dH[0] - 1, N = dH[1], u = dH[2];
    if (T < 0) {
        PyErr_Format(PyExc_ValueError, "%s: H must hold T+1 >= 1 states", fn);
        goto fail;
    }
    Py_ssize_t dX[3] = {T, N, 3 * u}, dS[2] = {N, 3 * u}, dRH[3] = {T, N, u},
               dHR[3] = {T + 1, N, u}, drm[2] = {N, u}, dfr[2] = {T, N}, dU[2] = {u, 3 * u};
    if (view(&vs, oX, "XP", code, 3, dX, 0, 1, &X) < 0
        || view(&vs, oS, "S", code, 2, dS, 0, 1, &S) < 0
        || view(&vs, oRH, "RH", code, 3, dRH, 0, 1, &RH) < 0
        || view(&vs, oHR, "HR", code, 3, dHR, 1, 1, &HR) < 0
        || view(&vs, orm, "rm", code, 2, drm, 1, 0, &rm) < 0
        || view(&vs, ofr, "fr", 'B', 2, dfr, 1, 0, &fr) < 0
        || view(&vs, oU, "U", code, 2, dU, 0, 0, &U) < 0 || distinct(&vs) < 0)
        goto fail;
    if (!rm != !HR) {
        PyErr_Format(PyExc_ValueError, "%s: rm and HR go together (both or neither)", fn);
        goto fail;
    }
    if (need_gemm(fn, N, 3 * u, u) < 0) goto fail;
    Py_BEGIN_ALLOW_THREADS
    if (code == 'f') grb_fwd_seq_f(T, N, u, X, S, RH, H, HR, rm, fr, U);
    else grb_fwd_seq_d(T, N, u, X, S, RH, H, HR, rm, fr, U);
    Py_END_ALLOW_THREADS
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

/* gru_rb_backward_seq(XP, H, HR, dX, gh, P, G, live, rm, fr, U): steps T−1 … 0 */
static PyObject *py_gru_rb_backward_seq(PyObject *self, PyObject *args) {
    PyObject *oX, *oH, *oHR, *odX, *ogh, *oP, *oG, *olive, *orm, *ofr, *oU;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOO", &oX, &oH, &oHR, &odX, &ogh, &oP, &oG, &olive, &orm,
                          &ofr, &oU))
        return NULL;
    const char *fn = "gru_rb_backward_seq";
    Views vs = {.fn = fn, .n = 0};
    void *X, *H, *HR, *dXp, *gh, *P, *G, *live, *rm, *fr, *U;
    char code = float_code(&vs, oH, "H");
    if (!code) return NULL;
    Py_ssize_t dH[3] = {-1, -1, -1};
    if (view(&vs, oH, "H", code, 3, dH, 0, 0, &H) < 0) goto fail;
    Py_ssize_t T = dH[0] - 1, N = dH[1], u = dH[2];
    if (T < 0) {
        PyErr_Format(PyExc_ValueError, "%s: H must hold T+1 >= 1 states", fn);
        goto fail;
    }
    Py_ssize_t dX[3] = {T, N, 3 * u}, dHR[3] = {T + 1, N, u}, ddX[3] = {T, N, 3 * u},
               dgh[2] = {N, u}, dP[3] = {2, N, u}, dG[3] = {N, T, u}, dl[1] = {T},
               drm[2] = {N, u}, dfr[2] = {T, N}, dU[2] = {u, 3 * u};
    if (view(&vs, oX, "XP", code, 3, dX, 0, 0, &X) < 0
        || view(&vs, oHR, "HR", code, 3, dHR, 1, 0, &HR) < 0
        || view(&vs, odX, "dX", code, 3, ddX, 0, 1, &dXp) < 0
        || view(&vs, ogh, "gh", code, 2, dgh, 0, 1, &gh) < 0
        || view(&vs, oP, "P", code, 3, dP, 0, 1, &P) < 0
        || view(&vs, oG, "G", code, 3, dG, 1, 0, &G) < 0
        || view(&vs, olive, "live", 'B', 1, dl, 0, 0, &live) < 0
        || view(&vs, orm, "rm", code, 2, drm, 1, 0, &rm) < 0
        || view(&vs, ofr, "fr", 'B', 2, dfr, 1, 0, &fr) < 0
        || view(&vs, oU, "U", code, 2, dU, 0, 0, &U) < 0 || distinct(&vs) < 0)
        goto fail;
    if (!rm != !HR) {
        PyErr_Format(PyExc_ValueError, "%s: rm and HR go together (both or neither)", fn);
        goto fail;
    }
    if (need_gemm(fn, N, 3 * u, u) < 0) goto fail;
    Py_BEGIN_ALLOW_THREADS
    if (code == 'f') grb_bwd_seq_f(T, N, u, X, H, HR, dXp, gh, P, G, live, rm, fr, U);
    else grb_bwd_seq_d(T, N, u, X, H, HR, dXp, gh, P, G, live, rm, fr, U);
    Py_END_ALLOW_THREADS
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

/* The pooling geometry (ph, pw, sh, sw, pt, pb, pl, pr) against x's H, W: pool and strides
 * ≥ 1, each pad in [0, pool), windows inside the padded input; sets OH, OW. */
static int pool_geom(const char *fn, const Py_ssize_t *p, PoolGeom *g) {
    for (int k = 0; k < 8; k++) {
        Py_ssize_t lo = k < 4 ? 1 : 0, hi = k < 4 ? INT32_MAX : p[k < 6 ? 0 : 1] - 1;
        if (p[k] < lo || p[k] > hi) {
            static const char *names[8] = {"pool height", "pool width", "stride height",
                                           "stride width", "top pad", "bottom pad", "left pad",
                                           "right pad"};
            PyErr_Format(PyExc_ValueError, "%s: %s must lie in [%zd, %zd], received %zd", fn,
                         names[k], lo, hi, p[k]);
            return -1;
        }
    }
    if (g->H + p[4] + p[5] < p[0] || g->W + p[6] + p[7] < p[1]) {
        PyErr_Format(PyExc_ValueError, "%s: a %zdx%zd pool does not fit the padded %zdx%zd input",
                     fn, p[0], p[1], g->H + p[4] + p[5], g->W + p[6] + p[7]);
        return -1;
    }
    g->ph = p[0]; g->pw = p[1]; g->sh = p[2]; g->sw = p[3]; g->pt = p[4]; g->pl = p[6];
    g->OH = (g->H + p[4] + p[5] - p[0]) / p[2] + 1;
    g->OW = (g->W + p[6] + p[7] - p[1]) / p[3] + 1;
    return 0;
}

/* pool2d(kind, forward, args): max_pool2d(x, y, idx, ph, pw, sh, sw, pt, pb, pl, pr),
 * max_pool2d_backward(gy, idx, gx, …), avg_pool2d(x, y, …), avg_pool2d_backward(gy, gx, …) */
/* A pooling call on consecutive runs of its samples (each sample's work is its own: the same
 * results), on the product pool's threads when the batch is large enough to pay for it. */
#define POOL_PARTS 8
#define POOL_PART_MIN ((Py_ssize_t)1 << 16)      /* input values per part, at least */
typedef struct { PoolGeom g; void *x, *y; int32_t *idx; char code; int is_max, fwd, bad; } PoolPart;

static void pool_part_fn(void *arg) {
    PoolPart *q = (PoolPart *)arg;
    PoolGeom *g = &q->g;
    if (q->is_max && q->fwd) {
        if (q->code == 'f') max_pool2d_f(g, q->x, q->y, q->idx); else max_pool2d_d(g, q->x, q->y, q->idx);
    } else if (q->is_max) {
        q->bad = q->code == 'f' ? max_pool2d_bwd_f(g, q->y, q->idx, q->x)
                                : max_pool2d_bwd_d(g, q->y, q->idx, q->x);
    } else if (q->fwd) {
        if (q->code == 'f') avg_pool2d_f(g, q->x, q->y); else avg_pool2d_d(g, q->x, q->y);
    } else {
        if (q->code == 'f') avg_pool2d_bwd_f(g, q->y, q->x); else avg_pool2d_bwd_d(g, q->y, q->x);
    }
}

/* parts for n samples of `values` input values in all: 1 unless threads and work allow more */
static Py_ssize_t pool_parts(Py_ssize_t n, Py_ssize_t values) {
    Py_ssize_t k = num_threads < POOL_PARTS ? num_threads : POOL_PARTS;
    if (k > n) k = n;
    if (k > values / POOL_PART_MIN) k = values / POOL_PART_MIN;
    return k < 1 ? 1 : k;
}

static void run_parts(PoolPart *parts, Py_ssize_t n) {
#ifdef AXONE_THREADS
    if (n > 1 && pthread_mutex_trylock(&pool_use) == 0) {
        PoolTask pt[POOL_PARTS];
        for (Py_ssize_t i = 0; i < n; i++) { pt[i].fn = pool_part_fn; pt[i].arg = parts + i; }
        pool_run(pt, n);
        pthread_mutex_unlock(&pool_use);
        return;
    }
#endif
    for (Py_ssize_t i = 0; i < n; i++) pool_part_fn(parts + i);
}

static PyObject *pool2d(PyObject *args, int is_max, int fwd) {
    PyObject *oa, *ob, *oi = Py_None;
    Py_ssize_t p[8];
    const char *fn = is_max ? (fwd ? "max_pool2d" : "max_pool2d_backward")
                            : (fwd ? "avg_pool2d" : "avg_pool2d_backward");
    int ok = is_max ? PyArg_ParseTuple(args, "OOOnnnnnnnn", &oa, &ob, &oi, &p[0], &p[1], &p[2],
                                       &p[3], &p[4], &p[5], &p[6], &p[7])
                    : PyArg_ParseTuple(args, "OOnnnnnnnn", &oa, &ob, &p[0], &p[1], &p[2], &p[3],
                                       &p[4], &p[5], &p[6], &p[7]);
    if (!ok) return NULL;
    /* forward: (x, y[, idx]); backward: (gy, idx, gx) for max, (gy, gx) for avg */
    if (is_max && !fwd) { PyObject *t = ob; ob = oi; oi = t; }
    PyObject *ox = fwd ? oa : ob, *oy = fwd ? ob : oa;
    const char *xn = fwd ? "x" : "gx", *yn = fwd ? "y" : "gy";
    Views vs = {.fn = fn, .n = 0};
    void *x, *y, *idx = NULL;
    char code = float_code(&vs, oa, fwd ? "x" : "gy");
    if (!code) return NULL;
    Py_ssize_t dx[4] = {-1, -1, -1, -1};
    if (view(&vs, ox, xn, code, 4, dx, 0, !fwd, &x) < 0) goto fail;
    PoolGeom g = {.N = dx[0], .H = dx[1], .W = dx[2], .C = dx[3]};
    if (pool_geom(fn, p, &g) < 0) goto fail;
    if (is_max && g.H * g.W * g.C > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s: a sample of %zd values is beyond the int32 indices",
                     fn, g.H * g.W * g.C);
        goto fail;
    }
    Py_ssize_t dy[4] = {g.N, g.OH, g.OW, g.C}, di[4] = {g.N, g.OH, g.OW, g.C};
    if (view(&vs, oy, yn, code, 4, dy, 0, fwd, &y) < 0
        || (is_max && view(&vs, oi, "idx", 'i', 4, di, 0, fwd, &idx) < 0) || distinct(&vs) < 0)
        goto fail;
    int bad = 0;
    PoolPart parts[POOL_PARTS];
    Py_ssize_t k = pool_parts(g.N, g.N * g.H * g.W * g.C);
    Py_ssize_t per = (g.N + k - 1) / (k > 0 ? k : 1);
    Py_ssize_t xs = g.H * g.W * g.C * (code == 'f' ? 4 : 8), ys = g.OH * g.OW * g.C;
    Py_ssize_t yb = ys * (code == 'f' ? 4 : 8);
    Py_ssize_t nparts = 0;
    for (Py_ssize_t lo = 0; lo < g.N || (g.N == 0 && nparts == 0); lo += per) {
        PoolPart *q = parts + nparts++;
        Py_ssize_t hi = lo + per < g.N ? lo + per : g.N;
        q->g = g;
        q->g.N = hi - lo;
        q->x = (char *)x + lo * xs;
        q->y = (char *)y + lo * yb;
        q->idx = idx ? (int32_t *)idx + lo * ys : NULL;
        q->code = code; q->is_max = is_max; q->fwd = fwd; q->bad = 0;
        if (per <= 0) break;
    }
    Py_BEGIN_ALLOW_THREADS
    run_parts(parts, nparts);
    Py_END_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < nparts; i++) bad |= parts[i].bad;
    if (bad) {
        PyErr_Format(PyExc_ValueError, "%s: idx holds indices outside [-1, %zd) (a sample's "
                     "values); their gradients were dropped", fn, g.H * g.W * g.C);
        goto fail;
    }
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

static PyObject *py_max_pool2d(PyObject *self, PyObject *args) { return pool2d(args, 1, 1); }
static PyObject *py_max_pool2d_backward(PyObject *self, PyObject *args) { return pool2d(args, 1, 0); }
static PyObject *py_avg_pool2d(PyObject *self, PyObject *args) { return pool2d(args, 0, 1); }
static PyObject *py_avg_pool2d_backward(PyObject *self, PyObject *args) { return pool2d(args, 0, 0); }

#define WRAP(IDX, NAME)                                                                        \
    static PyObject *py_##NAME(PyObject *self, PyObject *args) { return apply_rule(&rules[IDX], args); }
WRAP(0, sgd)
WRAP(1, adam)
WRAP(2, rmsprop)
WRAP(3, adagrad)
WRAP(4, adadelta)
WRAP(5, adamax)
WRAP(6, nadam)

/* set_num_threads(k, min_per_thread): k ≥ 1 threads (at most 64 are used), min_per_thread ≥ 1 */
static PyObject *py_set_num_threads(PyObject *self, PyObject *args) {
    int k;
    Py_ssize_t per = min_per_thread;
    if (!PyArg_ParseTuple(args, "i|n", &k, &per)) return NULL;
    if (k < 1 || per < 1) {
        PyErr_Format(PyExc_ValueError, "set_num_threads: expected k >= 1 and min_per_thread >= 1, "
                     "received %d and %zd", k, per);
        return NULL;
    }
    num_threads = k;
    min_per_thread = per;
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
     "set_num_threads(k, min_per_thread=32768): threads for buffers of at least k·min_per_thread."},
    {"get_num_threads", py_get_num_threads, METH_NOARGS, "(threads, min_per_thread)."},
    {"dense_forward", py_dense_forward, METH_VARARGS,
     "dense_forward(y, b, relu): y <- y + b (b may be None), then max(y, 0) with relu; in place."},
    {"dense_backward", py_dense_backward, METH_VARARGS,
     "dense_backward(g, y, gm, db): gm = g*(y > 0) when y is given; db = column sums (if given)."},
    {"softmax_rows", py_softmax_rows, METH_VARARGS,
     "softmax_rows(z, p, logp): softmax (and log-softmax, if logp is not None) of each row."},
    {"xent_rows", py_xent_rows, METH_VARARGS, "xent_rows(y, logp, loss): loss = -sum(y*logp) per row."},
    {"xent_grad_rows", py_xent_grad_rows, METH_VARARGS,
     "xent_grad_rows(g, p, y, gz): gz = g*(p*sum(y) - y) per row."},
    {"gemm_many", py_gemm_many, METH_VARARGS,
     "gemm_many(tasks): C = op(A)·op(B) (+ beta·C) for each task (A, B, C[, beta]), the tasks "
     "shared by the calling thread and the pool's workers."},
    {"affine_clip", py_affine_clip, METH_VARARGS,
     "affine_clip(x, scale, shift, lo, hi, y): y = min(max(x*scale + shift, lo), hi) over rows of "
     "channels (scale, shift may be None; y may be x), runs of rows on the pool's threads."},
    {"depthwise2d", py_depthwise2d, METH_VARARGS,
     "depthwise2d(mode, x, k, gy, out, sh, sw, dh, dw): depthwise 2-D convolution of a padded "
     "(N, H, W, C) x with a (kh, kw, C) kernel: mode 0 out = y, 1 out = dL/dx, 2 out = dL/dk."},
    {"small_matmul", py_small_matmul, METH_VARARGS,
     "small_matmul(x, w, y): y = x·w for a few rows without the BLAS (C-contiguous, one float "
     "dtype)."},
    {"band_add", py_band_add, METH_VARARGS,
     "band_add(dst, src, src_off, dst_off, run): dst[n][dst_off[i]:+run] += src[n][src_off[i]:+run] "
     "for every sample n and i in turn (the banded convolution's input gradient)."},
    {"winograd_input", py_winograd_input, METH_VARARGS,
     "winograd_input(x, V, pt, pl, TH, TW, parts[, m]): V[(r,s), p, c] = (B^T d_p B)[r, s] for the "
     "(m+2)x(m+2) tiles d_p of x (Winograd F(mxm, 3x3), m 2 or 4)."},
    {"winograd_input_grad", py_winograd_input_grad, METH_VARARGS,
     "winograd_input_grad(dV, gx, pt, pl, TH, TW, parts[, m]): gx += the adjoint of winograd_input."},
    {"winograd_output", py_winograd_output, METH_VARARGS,
     "winograd_output(M, y, bias, relu, parts[, m]): y's mxm tiles = A^T M_p A (+ bias, ReLU)."},
    {"winograd_kernel", py_winograd_kernel, METH_VARARGS,
     "winograd_kernel(g, U, parts[, m]): the Winograd F(mxm, 3x3) kernel transform U = G g G^T"},
    {"winograd_output_grad", py_winograd_output_grad, METH_VARARGS,
     "winograd_output_grad(gy, dM, parts[, m]): dM_p = A gY_p A^T (the adjoint of "
     "winograd_output)."},
    {"layer_norm_rows", py_layer_norm_rows, METH_VARARGS,
     "layer_norm_rows(x, gamma, beta, eps, y, xhat, inv, parts): layer normalization of each row "
     "of x (gamma, beta may be None)."},
    {"layer_norm_rows_backward", py_layer_norm_rows_backward, METH_VARARGS,
     "layer_norm_rows_backward(g, xhat, inv, gamma, dx, parts): dL/dx of layer_norm_rows."},
    {"softmax_grad_rows", py_softmax_grad_rows, METH_VARARGS,
     "softmax_grad_rows(dp, p, parts): dp = p*(dp - sum(dp*p)) over each row, in place."},
    {"copy_into", py_copy_into, METH_VARARGS,
     "copy_into(dst, src): dst[...] = src (one shape and item size, any strides), its leading "
     "axis in runs on the pool's threads."},
    {"set_pool_spin", py_set_pool_spin, METH_VARARGS,
     "set_pool_spin(us): how long an idle pool worker spins before it sleeps."},
    {"set_gemm", py_set_gemm, METH_VARARGS,
     "set_gemm(sgemm, dgemm, ilp64): addresses of NumPy's cblas_sgemm / cblas_dgemm."},
    {"lstm_forward_seq", py_lstm_forward_seq, METH_VARARGS,
     "lstm_forward_seq(A, C, AC, Hc, H, rm, fr, Wc, pre=False): all steps (products included), in "
     "place; with pre, A holds [x, 1]·[W; b] on entry and each step adds h·U."},
    {"lstm_backward_seq", py_lstm_backward_seq, METH_VARARGS,
     "lstm_backward_seq(hi, lo, A, C, AC, dZ, gh, gc, P, G, live, rm, fr, Wc): steps hi-1 down "
     "to lo."},
    {"gru_forward_seq", py_gru_forward_seq, METH_VARARGS,
     "gru_forward_seq(XP, R, H, HR, rm, fr, U, b1): all GRU steps (reset_after), in place."},
    {"gru_backward_seq", py_gru_backward_seq, METH_VARARGS,
     "gru_backward_seq(XP, R, H, dX, dR, gh, P, G, live, rm, fr, U): steps T-1 down to 0."},
    {"simple_forward_seq", py_simple_forward_seq, METH_VARARGS,
     "simple_forward_seq(XP, None, H, HR, rm, fr, U, None): all SimpleRNN steps, in place."},
    {"simple_backward_seq", py_simple_backward_seq, METH_VARARGS,
     "simple_backward_seq(None, None, H, dX, None, gh, P, G, live, rm, fr, U): steps T-1 down "
     "to 0."},
    {"gru_rb_forward_seq", py_gru_rb_forward_seq, METH_VARARGS,
     "gru_rb_forward_seq(XP, S, RH, H, HR, rm, fr, U): all GRU steps (reset_after=False), in "
     "place."},
    {"gru_rb_backward_seq", py_gru_rb_backward_seq, METH_VARARGS,
     "gru_rb_backward_seq(XP, H, HR, dX, gh, P, G, live, rm, fr, U): steps T-1 down to 0."},
    {"max_pool2d", py_max_pool2d, METH_VARARGS,
     "max_pool2d(x, y, idx, ph, pw, sh, sw, pt, pb, pl, pr): y = window maxima, idx = the flat "
     "index of each window's first maximum in its sample (-1: padding)."},
    {"max_pool2d_backward", py_max_pool2d_backward, METH_VARARGS,
     "max_pool2d_backward(gy, idx, gx, ph, pw, sh, sw, pt, pb, pl, pr): gx = 0, then "
     "gx[idx] += gy."},
    {"avg_pool2d", py_avg_pool2d, METH_VARARGS,
     "avg_pool2d(x, y, ph, pw, sh, sw, pt, pb, pl, pr): y = window means over the unpadded "
     "entries."},
    {"avg_pool2d_backward", py_avg_pool2d_backward, METH_VARARGS,
     "avg_pool2d_backward(gy, gx, ph, pw, sh, sw, pt, pb, pl, pr): gx = gy / count spread over "
     "each window's unpadded entries."},
    {"lstm_forward", py_lstm_forward, METH_VARARGS,
     "lstm_forward(j, A, C, AC, Hc, H, rm, fr): the point-wise part of LSTM step j, in place."},
    {"lstm_backward", py_lstm_backward, METH_VARARGS,
     "lstm_backward(j, A, C, AC, dZ, gh, gc, P, G, rm, fr): finish step j+1 (with P), then the "
     "point-wise backward of step j."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels", "Fused optimizer updates, recurrent step loops, Dense epilogues, softmax rows and 2-D pooling.", -1, methods,
};

PyMODINIT_FUNC PyInit__kernels(void) {
#ifdef AXONE_THREADS
    pthread_atfork(NULL, NULL, pool_after_fork);
#endif
    return PyModule_Create(&module);
}
