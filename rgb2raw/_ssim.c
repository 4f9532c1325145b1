/* The official SSIM of one image pair in one pass over its rows: rgb2raw._ssim.
 *
 * Why C: SSIM needs four Gaussian-filtered planes per channel (x, y, x^2 + y^2, xy; 13 taps,
 * float64). Through OpenCV each filtering is a separate call that writes a full plane, and the
 * SSIM formula then takes about ten more passes over those planes from Python; the memory
 * traffic and the calls cost as much again as the arithmetic. Here the row filter writes into a
 * 13-row ring per map, the column filter consumes the ring as soon as it holds an output row's
 * context, and that row's SSIM values are summed at once: everything stays in L1/L2, and only
 * the pixels inside the 5-pixel border crop are filtered at all.
 *
 * The numbers are those of rgb2raw.metrics (see its docstring): scipy's 'reflect' border
 * (d c b a | a b c d), values in their own units with the constants scaled by data_range^2,
 * var_x + var_y taken as G(x^2 + y^2) - ux^2 - uy^2. Only rounding differs (~1e-16 relative).
 *
 * The interpreter lock is released while a pair is scored, so scoring threads use every core.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RADIUS 6               /* int(4.0 * 1.5 + 0.5): scipy's truncate=4, sigma=1.5 */
#define TAPS (2 * RADIUS + 1)
#define CROP 5                 /* the official border crop of the SSIM map */
#define MAPS 4                 /* x, y, x^2 + y^2, x * y */

/* scipy's 'reflect' of index i into [0, n): -1 -> 0, n -> n - 1. Only |overhang| <= 1 is
 * ever needed: the crop (5) is one less than the filter radius (6). */
static inline Py_ssize_t reflect(Py_ssize_t i, Py_ssize_t n) {
    return i < 0 ? -i - 1 : (i >= n ? 2 * n - i - 1 : i);
}

/* Scratch memory of one call: the padded input lines, the rings of row-filtered lines and
 * one column-filtered line per map. */
typedef struct {
    double *line[MAPS];        /* one input row of each map, 1 reflected pixel each side */
    double *ring[MAPS][TAPS];  /* row-filtered rows, oldest first */
    double *out[MAPS];         /* column-filtered values of one output row */
    double *block;
} Scratch;

static int scratch_init(Scratch *s, Py_ssize_t padded, Py_ssize_t inner) {
    size_t doubles = (size_t)MAPS * ((size_t)padded + (size_t)(TAPS + 1) * (size_t)inner);
    s->block = malloc(doubles * sizeof(double));
    if (s->block == NULL) return -1;
    double *p = s->block;
    for (int m = 0; m < MAPS; m++) {
        s->line[m] = p; p += padded;
        for (int t = 0; t < TAPS; t++) { s->ring[m][t] = p; p += inner; }
        s->out[m] = p; p += inner;
    }
    return 0;
}

#define INLINE static inline __attribute__((always_inline))

/* One input row of each map into the padded lines; line[i] holds input column i - 1. */
#define DEFINE_LOAD_ROW(NAME, TYPE)                                                        \
INLINE void NAME(const TYPE *restrict xr, const TYPE *restrict yr, Py_ssize_t width,     \
                 Py_ssize_t step, Scratch *s) {                                         \
    double *restrict lx = s->line[0], *restrict ly = s->line[1];                        \
    double *restrict lq = s->line[2], *restrict lp = s->line[3];                        \
    for (Py_ssize_t i = 0; i < width; i++) {                                            \
        const double a = (double)xr[i * step], b = (double)yr[i * step];                \
        lx[i + 1] = a; ly[i + 1] = b; lq[i + 1] = a * a + b * b; lp[i + 1] = a * b;     \
    }                                                                                   \
    for (int m = 0; m < MAPS; m++) {                                                    \
        s->line[m][0] = s->line[m][1];                                                  \
        s->line[m][width + 1] = s->line[m][width];                                      \
    }                                                                                   \
}
DEFINE_LOAD_ROW(load_row_u16, uint16_t)
DEFINE_LOAD_ROW(load_row_f64, double)

/* The 13-tap filter along a padded line: output j is centred at q[j]. */
INLINE void filter_line(const double *restrict q, double *restrict o, Py_ssize_t n,
                        const double *k) {
    const double k0 = k[0], k1 = k[1], k2 = k[2], k3 = k[3], k4 = k[4], k5 = k[5], k6 = k[6];
    for (Py_ssize_t j = 0; j < n; j++)
        o[j] = k0 * q[j] + k1 * (q[j + 1] + q[j - 1]) + k2 * (q[j + 2] + q[j - 2])
             + k3 * (q[j + 3] + q[j - 3]) + k4 * (q[j + 4] + q[j - 4])
             + k5 * (q[j + 5] + q[j - 5]) + k6 * (q[j + 6] + q[j - 6]);
}

/* The 13-tap filter across the ring's rows (r[6] is the centre row). */
INLINE void filter_rows(double *const *r, double *restrict o, Py_ssize_t n, const double *k) {
    const double k0 = k[0], k1 = k[1], k2 = k[2], k3 = k[3], k4 = k[4], k5 = k[5], k6 = k[6];
    const double *restrict r0 = r[0], *restrict r1 = r[1], *restrict r2 = r[2];
    const double *restrict r3 = r[3], *restrict r4 = r[4], *restrict r5 = r[5];
    const double *restrict r6 = r[6], *restrict r7 = r[7], *restrict r8 = r[8];
    const double *restrict r9 = r[9], *restrict r10 = r[10], *restrict r11 = r[11];
    const double *restrict r12 = r[12];
    for (Py_ssize_t j = 0; j < n; j++)
        o[j] = k0 * r6[j] + k1 * (r7[j] + r5[j]) + k2 * (r8[j] + r4[j])
             + k3 * (r9[j] + r3[j]) + k4 * (r10[j] + r2[j]) + k5 * (r11[j] + r1[j])
             + k6 * (r12[j] + r0[j]);
}

/* The sum of one output row's SSIM values from its filtered moments. */
INLINE double ssim_row(const Scratch *s, Py_ssize_t n, double c1, double c2) {
    const double *restrict ux = s->out[0], *restrict uy = s->out[1];
    const double *restrict uq = s->out[2], *restrict up = s->out[3];
    double sum = 0.0;
    for (Py_ssize_t j = 0; j < n; j++) {
        const double uxuy = ux[j] * uy[j], squares = ux[j] * ux[j] + uy[j] * uy[j];
        sum += ((2.0 * uxuy + c1) * (2.0 * (up[j] - uxuy) + c2))
             / ((squares + c1) * (uq[j] - squares + c2));
    }
    return sum;
}

/* The SSIM sum of one channel. Written once and compiled twice (below): for the baseline
 * instruction set and, on x86-64 with GCC or Clang, for AVX2 + FMA, chosen at run time. */
#define DEFINE_CHANNEL_SUM(NAME, TYPE, LOAD_ROW, ATTR)                                     \
ATTR static double NAME(const TYPE *x, const TYPE *y, Py_ssize_t height, Py_ssize_t width, \
                        Py_ssize_t channels, Py_ssize_t channel, const double *k,          \
                        double c1, double c2, Scratch *s) {                                \
    const Py_ssize_t inner = width - 2 * CROP;                                              \
    double total = 0.0;                                                                     \
    /* Input rows -1 .. height: the context of output rows CROP .. height - CROP - 1. */    \
    for (Py_ssize_t row = CROP - RADIUS, filled = 0; row < height - CROP + RADIUS; row++) { \
        const Py_ssize_t offset = reflect(row, height) * width * channels + channel;        \
        LOAD_ROW(x + offset, y + offset, width, channels, s);                               \
        for (int m = 0; m < MAPS; m++) {                                                    \
            /* The oldest ring row becomes the newest. */                                  \
            double *newest = s->ring[m][0];                                                 \
            memmove(&s->ring[m][0], &s->ring[m][1], (TAPS - 1) * sizeof(double *));         \
            s->ring[m][TAPS - 1] = newest;                                                  \
            /* Output column j (input column j + CROP) sits at line[j + CROP + 1]. */       \
            filter_line(s->line[m] + CROP + 1, newest, inner, k);                           \
        }                                                                                   \
        if (++filled < TAPS) continue;                                                      \
        for (int m = 0; m < MAPS; m++) filter_rows(s->ring[m], s->out[m], inner, k);        \
        total += ssim_row(s, inner, c1, c2);                                                \
    }                                                                                       \
    return total;                                                                           \
}

#define NO_ATTR
DEFINE_CHANNEL_SUM(channel_sum_u16, uint16_t, load_row_u16, NO_ATTR)
DEFINE_CHANNEL_SUM(channel_sum_f64, double, load_row_f64, NO_ATTR)

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_AVX2_BUILD 1
#define AVX2_ATTR __attribute__((target("avx2,fma")))
DEFINE_CHANNEL_SUM(channel_sum_u16_avx2, uint16_t, load_row_u16, AVX2_ATTR)
DEFINE_CHANNEL_SUM(channel_sum_f64_avx2, double, load_row_f64, AVX2_ATTR)
#endif

static int use_avx2(void) {
#ifdef HAVE_AVX2_BUILD
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached;
#else
    return 0;
#endif
}

/* One channel's SSIM sum by the build for this CPU: the AVX2 one when the CPU has it (`avx2`
 * from use_avx2()), else the plain one; `type` is u16 or f64. */
#ifdef HAVE_AVX2_BUILD
#define CHANNEL_SUM(type, avx2, ...) \
    ((avx2) ? channel_sum_##type##_avx2(__VA_ARGS__) : channel_sum_##type(__VA_ARGS__))
#else
#define CHANNEL_SUM(type, avx2, ...) ((void)(avx2), channel_sum_##type(__VA_ARGS__))
#endif

PyDoc_STRVAR(ssim_doc,
"ssim(x, y, kind, height, width, channels, kernel, c1, c2) -> float\n\n"
"Mean over channels of the cropped-mean SSIM of two C-contiguous (height, width, channels)\n"
"buffers of one kind ('H': uint16, 'd': float64). kernel: the 7 weights of the centre and\n"
"one side of the symmetric 13-tap Gaussian. c1, c2: the constants in the data's units.");

static PyObject *ssim(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer bx, by;
    int kind;
    Py_ssize_t height, width, channels;
    double k[RADIUS + 1], c1, c2;
    if (!PyArg_ParseTuple(args, "y*y*Cnnn(ddddddd)dd", &bx, &by, &kind, &height, &width,
                          &channels, &k[0], &k[1], &k[2], &k[3], &k[4], &k[5], &k[6], &c1, &c2))
        return NULL;
    PyObject *result = NULL;
    const Py_ssize_t item = kind == 'H' ? 2 : 8;
    if (kind != 'H' && kind != 'd') {
        PyErr_SetString(PyExc_ValueError, "kind must be 'H' (uint16) or 'd' (float64)");
    } else if (height <= 2 * CROP || width <= 2 * CROP || channels < 1) {
        PyErr_SetString(PyExc_ValueError, "image too small for the 5-pixel SSIM crop");
    } else if (bx.len != height * width * channels * item || by.len != bx.len) {
        PyErr_SetString(PyExc_ValueError, "buffer sizes do not match the shape");
    } else {
        Scratch s;
        if (scratch_init(&s, width + 2, width - 2 * CROP) != 0) {
            PyErr_NoMemory();
        } else {
            double total = 0.0;
            const int avx2 = use_avx2();
            Py_BEGIN_ALLOW_THREADS
            for (Py_ssize_t c = 0; c < channels; c++) {
                const double sum = kind == 'H'
                    ? CHANNEL_SUM(u16, avx2, bx.buf, by.buf, height, width, channels, c, k, c1,
                                  c2, &s)
                    : CHANNEL_SUM(f64, avx2, bx.buf, by.buf, height, width, channels, c, k, c1,
                                  c2, &s);
                total += sum / ((double)(height - 2 * CROP) * (double)(width - 2 * CROP));
            }
            Py_END_ALLOW_THREADS
            free(s.block);
            result = PyFloat_FromDouble(total / (double)channels);
        }
    }
    PyBuffer_Release(&bx);
    PyBuffer_Release(&by);
    return result;
}

PyDoc_STRVAR(squared_error_doc,
"squared_error(x, y, kind) -> float\n\n"
"The sum of (x - y)^2 over two buffers of one kind ('H': uint16, 'd': float64); exact for\n"
"uint16.");

/* uint16 differences squared fit in 32 bits and sum exactly in 64: integers, which the
 * compiler may add in any order, so the loop vectorises. */
#define DEFINE_SQUARED_ERROR_U16(NAME, ATTR)                                               \
ATTR static double NAME(const uint16_t *x, const uint16_t *y, Py_ssize_t n) {              \
    uint64_t sum = 0;                                                                       \
    for (Py_ssize_t i = 0; i < n; i++) {                                                    \
        const uint32_t d = x[i] > y[i] ? (uint32_t)(x[i] - y[i]) : (uint32_t)(y[i] - x[i]); \
        sum += d * d;                                                                       \
    }                                                                                       \
    return (double)sum;                                                                     \
}
DEFINE_SQUARED_ERROR_U16(squared_error_u16_base, NO_ATTR)
#ifdef HAVE_AVX2_BUILD
DEFINE_SQUARED_ERROR_U16(squared_error_u16_avx2, AVX2_ATTR)
#endif

static double squared_error_u16(const uint16_t *x, const uint16_t *y, Py_ssize_t n) {
#ifdef HAVE_AVX2_BUILD
    if (use_avx2()) return squared_error_u16_avx2(x, y, n);
#endif
    return squared_error_u16_base(x, y, n);
}

/* Four partial sums: one chain of dependent additions would be latency-bound. */
static double squared_error_f64(const double *x, const double *y, Py_ssize_t n) {
    double part[4] = {0.0, 0.0, 0.0, 0.0};
    Py_ssize_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) {
            const double d = x[i + j] - y[i + j];
            part[j] += d * d;
        }
    for (; i < n; i++) {
        const double d = x[i] - y[i];
        part[0] += d * d;
    }
    return (part[0] + part[1]) + (part[2] + part[3]);
}

static PyObject *squared_error(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer bx, by;
    int kind;
    if (!PyArg_ParseTuple(args, "y*y*C", &bx, &by, &kind)) return NULL;
    PyObject *result = NULL;
    if (kind != 'H' && kind != 'd') {
        PyErr_SetString(PyExc_ValueError, "kind must be 'H' (uint16) or 'd' (float64)");
    } else if (bx.len != by.len || bx.len % (kind == 'H' ? 2 : 8) != 0) {
        PyErr_SetString(PyExc_ValueError, "buffer sizes differ");
    } else {
        double total;
        Py_BEGIN_ALLOW_THREADS
        total = kind == 'H' ? squared_error_u16(bx.buf, by.buf, bx.len / 2)
                            : squared_error_f64(bx.buf, by.buf, bx.len / 8);
        Py_END_ALLOW_THREADS
        result = PyFloat_FromDouble(total);
    }
    PyBuffer_Release(&bx);
    PyBuffer_Release(&by);
    return result;
}

static PyMethodDef methods[] = {
    {"ssim", ssim, METH_VARARGS, ssim_doc},
    {"squared_error", squared_error, METH_VARARGS, squared_error_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "rgb2raw._ssim",
    "The official SSIM computed in one pass per image (see rgb2raw.metrics).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__ssim(void) {
    (void)use_avx2();  /* detect the CPU once, under the interpreter lock */
    return PyModule_Create(&module);
}
