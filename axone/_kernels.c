/*
 * axone's optional compiled kernels.  Each has a NumPy form in the package, which stays the
 * reference and the fallback when this module is not built:
 *   - fused optimizer updates over flat parameter buffers (bit-identical to the NumPy rules);
 *   - LSTM time steps: the point-wise work of a step, and whole step loops around NumPy's own
 *     BLAS when it is handed over (ops/recurrent.py);
 *   - Dense epilogues (bias, ReLU, mask, bias gradient; bit-identical) and softmax /
 *     cross-entropy rows (ops/nn.py, ops/math.py).
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
 * Python signature of every rule:  rule(is_double, w, g, state..., scalars...)
 * where every buffer is a writable C-contiguous float32/float64 array of the same length (the
 * caller checks this).  Large buffers are split across threads (see set_num_threads).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

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

/* ------------------------------------------------------------------ LSTM steps */
/* The point-wise part of one LSTM time step, forward and backward, for the LSTM fast path of
 * axone/ops/recurrent.py (tanh / sigmoid).  The step's matrix product stays in NumPy's BLAS; these
 * replace the dozen NumPy passes around it with one pass.
 *
 * exp is evaluated inline, so that the loops vectorize: e^x = 2^n · e^r with n = round(x/ln 2),
 * r = x − n·ln 2 (ln 2 split in two parts, the first exact in n·ln2_hi), |r| ≤ ln 2 / 2, and e^r
 * by its Taylor polynomial (degree 7 for float: truncation 5·10⁻⁹ relative; degree 13 for double:
 * 4·10⁻¹⁸), 2^n built in the exponent bits.  x is clamped to the normal range first, so that
 * e^x never overflows (σ(z) = 1/(1 + e⁻ᶻ) then rounds to 0 or 1 as it should); NaN passes
 * through the comparisons and gives NaN.
 *   σ(z) = 1/(1 + e⁻ᶻ),   tanh(z) = 1 − 2/(1 + e²ᶻ). */
static inline float exp_f(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
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
    bits = (bits - 0x4B400000u + 127u) << 23;              /* 2ⁿ */
    float s;
    memcpy(&s, &bits, sizeof s);
    return p * s;
}

static inline double exp_d(double x) {
    x = x < -708.0 ? -708.0 : x;
    x = x > 709.0 ? 709.0 : x;
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
    bits = (bits - 0x4338000000000000ull + 1023ull) << 52;
    double s;
    memcpy(&s, &bits, sizeof s);
    return p * s;
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
#define GEMM_f gemm_f
#define GEMM_d gemm_d_

/* Forward, steps 0 … T−1:  A[j] = Hc[j]·Wc, then the step kernel.
 * Backward, steps hi−1 down to lo: the step kernel (finishing step j+1 with P when j+1 < T, and
 * adding the upstream G at steps marked live), then P = ∂Z[j]·Uᵀ with U = Wc[:u]. */
#define LSTM_SEQ(T_, SUF)                                                                       \
static void lstm_fwd_seq_##SUF(Py_ssize_t T, Py_ssize_t N, Py_ssize_t u, Py_ssize_t K,          \
                               T_ *A, T_ *C, T_ *AC, T_ *Hc, T_ *H, const T_ *rm,              \
                               const unsigned char *fr, const T_ *Wc) {                         \
    for (Py_ssize_t j = 0; j < T; j++) {                                                        \
        GEMM_##SUF(0, N, 4 * u, K, Hc + j * N * K, K, Wc, 4 * u, A + j * N * 4 * u, 4 * u);     \
        lstm_fwd_##SUF(j, N, u, K, A, C, AC, Hc, H, rm, fr);                                    \
    }                                                                                           \
}                                                                                               \
static void lstm_bwd_seq_##SUF(Py_ssize_t hi, Py_ssize_t lo, Py_ssize_t T, Py_ssize_t N,        \
                               Py_ssize_t u, const T_ *A, const T_ *C, const T_ *AC, T_ *dZ,    \
                               T_ *gh, T_ *gc, T_ *P, const T_ *G, const unsigned char *live,   \
                               const T_ *rm, const unsigned char *fr, const T_ *Wc) {           \
    for (Py_ssize_t j = hi - 1; j >= lo; j--) {                                                 \
        lstm_bwd_##SUF(j, T, N, u, A, C, AC, dZ, gh, gc, j + 1 < T ? P : NULL,                  \
                       G && live[j] ? G : NULL, rm, fr);                                         \
        GEMM_##SUF(1, N, u, 4 * u, dZ + j * N * 4 * u, 4 * u, Wc, 4 * u, P, u);                 \
    }                                                                                           \
}

LSTM_SEQ(float, f)
LSTM_SEQ(double, d)

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
WIDE static void dense_bwd_##SUF(const T_ *g, const T_ *y, T_ *gm, T_ *db, Py_ssize_t m,        \
                                 Py_ssize_t n) {                                                \
    if (db && m == 0) memset(db, 0, n * sizeof(T_));                                            \
    for (Py_ssize_t i = 0; i < m; i++) {                                                        \
        const T_ *r = g + i * n;                                                                \
        if (y) { mask_row_##SUF(gm + i * n, r, y + i * n, n); r = gm + i * n; }                 \
        if (db) {                                                                               \
            if (i == 0) memcpy(db, r, n * sizeof(T_));                                          \
            else acc_row_##SUF(db, r, n);                                                       \
        }                                                                                       \
    }                                                                                           \
}

DENSE_KERNELS(float, f)
DENSE_KERNELS(double, d)

/* ------------------------------------------------------------------ softmax rows */
/* Softmax and categorical cross-entropy along the last axis of a C-contiguous array, row by row
 * (rows = size / K), for ops.math.Softmax and ops.nn.SoftmaxCrossEntropy:
 *   m = max z (NaN if any z is NaN), s = z − m,  p = e^s / Σ e^s,  log p = s − log Σ e^s
 *   loss = −Σ y·log p;    dL/dz = g·(p·Σ y − y)
 * e^s by the inline exp above (s ≤ 0, so only its lower clamp can matter: e^s below ~1e-38
 * (float) or ~1e-308 (double) counts as that; log p is formed from s, not from e^s). */
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

/* LSTM steps: every array is checked for dtype, C-contiguity, writability where written, and
 * shape, so that a wrong call raises instead of touching memory it does not own. */
typedef struct { Py_buffer v[12]; int n; } Views;

static void release(Views *vs) {
    for (int i = 0; i < vs->n; i++) PyBuffer_Release(&vs->v[i]);
    vs->n = 0;
}

/* o: a C-contiguous array of item type code (f, d or B) and ndim dims, writable when it is
 * written; dims[k] < 0 accepts any size (and stores it back).  None gives NULL when optional. */
static int view(Views *vs, PyObject *o, const char *name, char code, int ndim, Py_ssize_t *dims,
                int optional, int writable, void **out) {
    *out = NULL;
    if (o == Py_None && optional) return 0;
    Py_buffer *v = &vs->v[vs->n];
    if (PyObject_GetBuffer(o, v, (writable ? PyBUF_WRITABLE : 0) | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    vs->n++;
    const char *f = v->format ? v->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    char got = *f == '?' ? 'B' : *f;
    if (got != code || f[1] != '\0' || v->ndim != ndim) {
        PyErr_Format(PyExc_TypeError, "%s must be a %d-d array of type '%c', received "
                     "type '%s' with %d dimensions", name, ndim, code, v->format ? v->format : "B",
                     v->ndim);
        return -1;
    }
    for (int k = 0; k < ndim; k++) {
        if (dims[k] < 0) dims[k] = v->shape[k];
        else if (v->shape[k] != dims[k]) {
            PyErr_Format(PyExc_ValueError, "%s has size %zd on axis %d, expected %zd",
                         name, v->shape[k], k, dims[k]);
            return -1;
        }
    }
    *out = v->buf;
    return 0;
}

/* 'f' or 'd' for a float32/float64 array, else 0 with a TypeError */
static char array_code(PyObject *o) {
    Py_buffer probe;
    if (PyObject_GetBuffer(o, &probe, PyBUF_FORMAT | PyBUF_ND) < 0) return 0;
    const char *f = probe.format ? probe.format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    char code = (f[1] == '\0' && (*f == 'f' || *f == 'd')) ? *f : 0;
    PyBuffer_Release(&probe);
    if (!code) PyErr_SetString(PyExc_TypeError, "expected a float32 or float64 array");
    return code;
}

/* lstm_forward(j, A, C, AC, Hc, H, rm, fr) */
static PyObject *py_lstm_forward(PyObject *self, PyObject *args) {
    Py_ssize_t j;
    PyObject *oA, *oC, *oAC, *oHc, *oH, *orm, *ofr;
    if (!PyArg_ParseTuple(args, "nOOOOOOO", &j, &oA, &oC, &oAC, &oHc, &oH, &orm, &ofr))
        return NULL;
    Views vs = {.n = 0};
    void *A, *C, *AC, *Hc, *H, *rm, *fr;
    Py_buffer probe;
    if (PyObject_GetBuffer(oA, &probe, PyBUF_FORMAT | PyBUF_ND) < 0) return NULL;
    const char *f = probe.format ? probe.format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    char code = *f;
    PyBuffer_Release(&probe);
    if (code != 'f' && code != 'd') {
        PyErr_SetString(PyExc_TypeError, "lstm step: A must be float32 or float64");
        return NULL;
    }
    Py_ssize_t dA[3] = {-1, -1, -1};
    if (view(&vs, oA, "A", code, 3, dA, 0, 1, &A) < 0) goto fail;
    Py_ssize_t T = dA[0], N = dA[1], u = dA[2] / 4;
    if (dA[2] % 4 || j < 0 || j >= T) {
        PyErr_SetString(PyExc_ValueError, "lstm step: A's last axis must hold 4 gates, 0 <= j < T");
        goto fail;
    }
    Py_ssize_t dC[3] = {T + 1, N, u}, dAC[3] = {T, N, u}, dHc[3] = {T + 1, N, -1},
               dH[3] = {T + 1, N, u}, drm[2] = {N, u}, dfr[2] = {T, N};
    if (view(&vs, oC, "C", code, 3, dC, 0, 1, &C) < 0 || view(&vs, oAC, "AC", code, 3, dAC, 0, 1, &AC) < 0
        || view(&vs, oHc, "Hc", code, 3, dHc, 0, 1, &Hc) < 0
        || view(&vs, oH, "H", code, 3, dH, 1, 1, &H) < 0 || view(&vs, orm, "rm", code, 2, drm, 1, 0, &rm) < 0
        || view(&vs, ofr, "fr", 'B', 2, dfr, 1, 0, &fr) < 0)
        goto fail;
    if (dHc[2] < u || (rm && !H)) {
        PyErr_SetString(PyExc_ValueError, "lstm step: Hc rows must hold at least u values, and rm "
                        "needs H");
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    if (code == 'f') lstm_fwd_f(j, N, u, dHc[2], A, C, AC, Hc, H, rm, fr);
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
    Views vs = {.n = 0};
    void *A, *C, *AC, *dZ, *gh, *gc, *P, *G, *rm, *fr;
    Py_buffer probe;
    if (PyObject_GetBuffer(oA, &probe, PyBUF_FORMAT | PyBUF_ND) < 0) return NULL;
    const char *f = probe.format ? probe.format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    char code = *f;
    PyBuffer_Release(&probe);
    if (code != 'f' && code != 'd') {
        PyErr_SetString(PyExc_TypeError, "lstm step: A must be float32 or float64");
        return NULL;
    }
    Py_ssize_t dA[3] = {-1, -1, -1};
    if (view(&vs, oA, "A", code, 3, dA, 0, 1, &A) < 0) goto fail;
    Py_ssize_t T = dA[0], N = dA[1], u = dA[2] / 4;
    if (dA[2] % 4 || j < -1 || j >= T) {
        PyErr_SetString(PyExc_ValueError, "lstm step: A's last axis must hold 4 gates, -1 <= j < T");
        goto fail;
    }
    Py_ssize_t dC[3] = {T + 1, N, u}, dAC[3] = {T, N, u}, dZd[3] = {T, N, 4 * u}, dgh[2] = {N, u},
               dgc[2] = {N, u}, dP[2] = {N, u}, dG[3] = {N, T + 1, u}, drm[2] = {N, u},
               dfr[2] = {T, N};
    if (view(&vs, oC, "C", code, 3, dC, 0, 1, &C) < 0 || view(&vs, oAC, "AC", code, 3, dAC, 0, 1, &AC) < 0
        || view(&vs, odZ, "dZ", code, 3, dZd, 0, 1, &dZ) < 0
        || view(&vs, ogh, "gh", code, 2, dgh, 0, 1, &gh) < 0
        || view(&vs, ogc, "gc", code, 2, dgc, 0, 1, &gc) < 0
        || view(&vs, oP, "P", code, 2, dP, 1, 0, &P) < 0 || view(&vs, oG, "G", code, 3, dG, 1, 0, &G) < 0
        || view(&vs, orm, "rm", code, 2, drm, 1, 0, &rm) < 0
        || view(&vs, ofr, "fr", 'B', 2, dfr, 1, 0, &fr) < 0)
        goto fail;
    if (P && j + 1 >= T) {
        PyErr_SetString(PyExc_ValueError, "lstm step: P finishes step j+1, which must be < T");
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    if (code == 'f') lstm_bwd_f(j, T, N, u, A, C, AC, dZ, gh, gc, P, G, rm, fr);
    else lstm_bwd_d(j, T, N, u, A, C, AC, dZ, gh, gc, P, G, rm, fr);
    Py_END_ALLOW_THREADS
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

/* dense_forward(y, b or None, relu): y (m, n) in place */
static PyObject *py_dense_forward(PyObject *self, PyObject *args) {
    PyObject *oy, *ob;
    int relu;
    if (!PyArg_ParseTuple(args, "OOp", &oy, &ob, &relu)) return NULL;
    Views vs = {.n = 0};
    void *y, *b;
    char code = array_code(oy);
    if (!code) return NULL;
    Py_ssize_t dy[2] = {-1, -1};
    if (view(&vs, oy, "y", code, 2, dy, 0, 1, &y) < 0) goto fail;
    Py_ssize_t db[1] = {dy[1]};
    if (view(&vs, ob, "b", code, 1, db, 1, 0, &b) < 0) goto fail;
    Py_BEGIN_ALLOW_THREADS
    if (code == 'f') dense_fwd_f(y, b, dy[0], dy[1], relu);
    else dense_fwd_d(y, b, dy[0], dy[1], relu);
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
    Views vs = {.n = 0};
    void *g, *y, *gm, *db;
    char code = array_code(og);
    if (!code) return NULL;
    Py_ssize_t dg[2] = {-1, -1};
    if (view(&vs, og, "g", code, 2, dg, 0, 0, &g) < 0) goto fail;
    Py_ssize_t dy[2] = {dg[0], dg[1]}, dgm[2] = {dg[0], dg[1]}, ddb[1] = {dg[1]};
    if (view(&vs, oy, "y", code, 2, dy, 1, 0, &y) < 0 || view(&vs, ogm, "gm", code, 2, dgm, 1, 1, &gm) < 0
        || view(&vs, odb, "db", code, 1, ddb, 1, 1, &db) < 0)
        goto fail;
    if (y && !gm) {
        PyErr_SetString(PyExc_ValueError, "dense_backward: the mask needs an output gm");
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    if (code == 'f') dense_bwd_f(g, y, gm, db, dg[0], dg[1]);
    else dense_bwd_d(g, y, gm, db, dg[0], dg[1]);
    Py_END_ALLOW_THREADS
    release(&vs);
    Py_RETURN_NONE;
fail:
    release(&vs);
    return NULL;
}

/* softmax_rows(z, p, logp or None): z, p, logp (rows, K) */
static PyObject *py_softmax_rows(PyObject *self, PyObject *args) {
    PyObject *oz, *op, *olp;
    if (!PyArg_ParseTuple(args, "OOO", &oz, &op, &olp)) return NULL;
    Views vs = {.n = 0};
    void *z, *p, *lp;
    char code = array_code(oz);
    if (!code) return NULL;
    Py_ssize_t dz[2] = {-1, -1};
    if (view(&vs, oz, "z", code, 2, dz, 0, 0, &z) < 0) goto fail;
    Py_ssize_t dp[2] = {dz[0], dz[1]}, dl[2] = {dz[0], dz[1]};
    if (view(&vs, op, "p", code, 2, dp, 0, 1, &p) < 0 || view(&vs, olp, "logp", code, 2, dl, 1, 1, &lp) < 0)
        goto fail;
    if (dz[1] < 1) { PyErr_SetString(PyExc_ValueError, "softmax_rows: K must be at least 1"); goto fail; }
    Py_BEGIN_ALLOW_THREADS
    if (code == 'f') softmax_rows_f(z, p, lp, dz[0], dz[1]);
    else softmax_rows_d(z, p, lp, dz[0], dz[1]);
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
    Views vs = {.n = 0};
    void *y, *lp, *l;
    char code = array_code(oy);
    if (!code) return NULL;
    Py_ssize_t dy[2] = {-1, -1};
    if (view(&vs, oy, "y", code, 2, dy, 0, 0, &y) < 0) goto fail;
    Py_ssize_t dl[2] = {dy[0], dy[1]}, dloss[1] = {dy[0]};
    if (view(&vs, olp, "logp", code, 2, dl, 0, 0, &lp) < 0 || view(&vs, ol, "loss", code, 1, dloss, 0, 1, &l) < 0)
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
    Views vs = {.n = 0};
    void *g, *p, *y, *gz;
    char code = array_code(op);
    if (!code) return NULL;
    Py_ssize_t dp[2] = {-1, -1};
    if (view(&vs, op, "p", code, 2, dp, 0, 0, &p) < 0) goto fail;
    Py_ssize_t dg[1] = {dp[0]}, dy[2] = {dp[0], dp[1]}, dgz[2] = {dp[0], dp[1]};
    if (view(&vs, og, "g", code, 1, dg, 0, 0, &g) < 0 || view(&vs, oy, "y", code, 2, dy, 0, 0, &y) < 0
        || view(&vs, ogz, "gz", code, 2, dgz, 0, 1, &gz) < 0)
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

/* set_gemm(sgemm_address, dgemm_address, ilp64): NumPy's cblas_sgemm / cblas_dgemm */
static PyObject *py_set_gemm(PyObject *self, PyObject *args) {
    unsigned long long s_addr, d_addr;
    int ilp64;
    if (!PyArg_ParseTuple(args, "KKp", &s_addr, &d_addr, &ilp64)) return NULL;
    gemm_s = (void *)(uintptr_t)s_addr;
    gemm_d = (void *)(uintptr_t)d_addr;
    gemm_ilp64 = ilp64;
    Py_RETURN_NONE;
}

static int need_gemm(void) {
    if (gemm_s && gemm_d) return 0;
    PyErr_SetString(PyExc_RuntimeError, "lstm sequence: no BLAS was handed over (set_gemm)");
    return -1;
}

/* lstm_forward_seq(A, C, AC, Hc, H, rm, fr, Wc): all T steps */
static PyObject *py_lstm_forward_seq(PyObject *self, PyObject *args) {
    PyObject *oA, *oC, *oAC, *oHc, *oH, *orm, *ofr, *oW;
    if (!PyArg_ParseTuple(args, "OOOOOOOO", &oA, &oC, &oAC, &oHc, &oH, &orm, &ofr, &oW))
        return NULL;
    if (need_gemm() < 0) return NULL;
    Views vs = {.n = 0};
    void *A, *C, *AC, *Hc, *H, *rm, *fr, *W;
    char code = array_code(oA);
    if (!code) return NULL;
    Py_ssize_t dA[3] = {-1, -1, -1};
    if (view(&vs, oA, "A", code, 3, dA, 0, 1, &A) < 0) goto fail;
    Py_ssize_t T = dA[0], N = dA[1], u = dA[2] / 4;
    if (dA[2] % 4) { PyErr_SetString(PyExc_ValueError, "lstm sequence: A must hold 4 gates"); goto fail; }
    Py_ssize_t dC[3] = {T + 1, N, u}, dAC[3] = {T, N, u}, dHc[3] = {T + 1, N, -1},
               dH[3] = {T + 1, N, u}, drm[2] = {N, u}, dfr[2] = {T, N}, dW[2] = {-1, 4 * u};
    if (view(&vs, oC, "C", code, 3, dC, 0, 1, &C) < 0 || view(&vs, oAC, "AC", code, 3, dAC, 0, 1, &AC) < 0
        || view(&vs, oHc, "Hc", code, 3, dHc, 0, 1, &Hc) < 0
        || view(&vs, oH, "H", code, 3, dH, 1, 1, &H) < 0 || view(&vs, orm, "rm", code, 2, drm, 1, 0, &rm) < 0
        || view(&vs, ofr, "fr", 'B', 2, dfr, 1, 0, &fr) < 0 || view(&vs, oW, "Wc", code, 2, dW, 0, 0, &W) < 0)
        goto fail;
    if (dHc[2] < u || dW[0] != dHc[2] || (rm && !H)) {
        PyErr_SetString(PyExc_ValueError, "lstm sequence: Wc must be (K, 4u) for Hc rows of K >= u "
                        "values, and rm needs H");
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    if (code == 'f') lstm_fwd_seq_f(T, N, u, dHc[2], A, C, AC, Hc, H, rm, fr, W);
    else lstm_fwd_seq_d(T, N, u, dHc[2], A, C, AC, Hc, H, rm, fr, W);
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
    if (need_gemm() < 0) return NULL;
    Views vs = {.n = 0};
    void *A, *C, *AC, *dZ, *gh, *gc, *P, *G, *live, *rm, *fr, *W;
    char code = array_code(oA);
    if (!code) return NULL;
    Py_ssize_t dA[3] = {-1, -1, -1};
    if (view(&vs, oA, "A", code, 3, dA, 0, 1, &A) < 0) goto fail;
    Py_ssize_t T = dA[0], N = dA[1], u = dA[2] / 4;
    if (dA[2] % 4 || lo < 0 || hi > T || lo > hi) {
        PyErr_SetString(PyExc_ValueError, "lstm sequence: A must hold 4 gates, 0 <= lo <= hi <= T");
        goto fail;
    }
    Py_ssize_t dC[3] = {T + 1, N, u}, dAC[3] = {T, N, u}, dZd[3] = {T, N, 4 * u}, dgh[2] = {N, u},
               dgc[2] = {N, u}, dP[2] = {N, u}, dG[3] = {N, T + 1, u}, dl[1] = {T}, drm[2] = {N, u},
               dfr[2] = {T, N}, dW[2] = {-1, 4 * u};
    if (view(&vs, oC, "C", code, 3, dC, 0, 1, &C) < 0 || view(&vs, oAC, "AC", code, 3, dAC, 0, 1, &AC) < 0
        || view(&vs, odZ, "dZ", code, 3, dZd, 0, 1, &dZ) < 0
        || view(&vs, ogh, "gh", code, 2, dgh, 0, 1, &gh) < 0
        || view(&vs, ogc, "gc", code, 2, dgc, 0, 1, &gc) < 0
        || view(&vs, oP, "P", code, 2, dP, 0, 1, &P) < 0 || view(&vs, oG, "G", code, 3, dG, 1, 0, &G) < 0
        || view(&vs, olive, "live", 'B', 1, dl, 0, 0, &live) < 0
        || view(&vs, orm, "rm", code, 2, drm, 1, 0, &rm) < 0
        || view(&vs, ofr, "fr", 'B', 2, dfr, 1, 0, &fr) < 0
        || view(&vs, oW, "Wc", code, 2, dW, 0, 0, &W) < 0)
        goto fail;
    if (dW[0] < u) {
        PyErr_SetString(PyExc_ValueError, "lstm sequence: Wc must have at least u rows");
        goto fail;
    }
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
    {"dense_forward", py_dense_forward, METH_VARARGS,
     "dense_forward(y, b, relu): y <- y + b (b may be None), then max(y, 0) with relu; in place."},
    {"dense_backward", py_dense_backward, METH_VARARGS,
     "dense_backward(g, y, gm, db): gm = g*(y > 0) when y is given; db = column sums (if given)."},
    {"softmax_rows", py_softmax_rows, METH_VARARGS,
     "softmax_rows(z, p, logp): softmax (and log-softmax, if logp is not None) of each row."},
    {"xent_rows", py_xent_rows, METH_VARARGS, "xent_rows(y, logp, loss): loss = -sum(y*logp) per row."},
    {"xent_grad_rows", py_xent_grad_rows, METH_VARARGS,
     "xent_grad_rows(g, p, y, gz): gz = g*(p*sum(y) - y) per row."},
    {"set_gemm", py_set_gemm, METH_VARARGS,
     "set_gemm(sgemm, dgemm, ilp64): addresses of NumPy's cblas_sgemm / cblas_dgemm."},
    {"lstm_forward_seq", py_lstm_forward_seq, METH_VARARGS,
     "lstm_forward_seq(A, C, AC, Hc, H, rm, fr, Wc): all steps (products included), in place."},
    {"lstm_backward_seq", py_lstm_backward_seq, METH_VARARGS,
     "lstm_backward_seq(hi, lo, A, C, AC, dZ, gh, gc, P, G, live, rm, fr, Wc): steps hi-1 down "
     "to lo."},
    {"lstm_forward", py_lstm_forward, METH_VARARGS,
     "lstm_forward(j, A, C, AC, Hc, H, rm, fr): the point-wise part of LSTM step j, in place."},
    {"lstm_backward", py_lstm_backward, METH_VARARGS,
     "lstm_backward(j, A, C, AC, dZ, gh, gc, P, G, rm, fr): finish step j+1 (with P), then the "
     "point-wise backward of step j."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels", "Fused optimizer updates over flat buffers and LSTM step kernels.", -1, methods,
};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
