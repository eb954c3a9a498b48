package accel

/*
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

// The plane kernels of pooling and its gradient. One call runs planes
// [p0, p1) of a window geometry (see planes); the window taps that fall in
// the padding are skipped, as in the Go reference they replaced.
#pragma GCC optimize ("O3")

enum { WIN_MAX, WIN_MIN, WIN_SUM };

typedef struct {
	int ih, iw, oh, ow;
	long isy, isx, osy, osx;
	int wh, ww, sy, sx, py, px;
} geom;

static inline void wrange(int o, int stride, int pad, int window, int n, int *start, int *lo, int *hi) {
	*start = o * stride - pad;
	*lo = *start < 0 ? -*start : 0;
	*hi = n - *start < window ? n - *start : window;
	if (*hi < *lo) *hi = *lo;
}

// The window loops are written without data-dependent branches: pooled
// values compare unpredictably, and a mispredicted branch per tap cost
// more than the loads. NaN and signed zeros are fixed up after the loop so
// that max/min match Go's built-ins (NaN wins, +0 > -0), as simplego does.
#define POOL(NAME, INIT, STEP, FIX) \
static void NAME(const geom *g, const long *in_off, const long *out_off, long p0, long p1, const float *x, float *o) { \
	for (long p = p0; p < p1; p++) { \
		const float *xp = x + in_off[p]; \
		float *op = o + out_off[p]; \
		for (int oy = 0; oy < g->oh; oy++) { \
			int y0, ylo, yhi; \
			wrange(oy, g->sy, g->py, g->wh, g->ih, &y0, &ylo, &yhi); \
			for (int ox = 0; ox < g->ow; ox++) { \
				int x0, xlo, xhi; \
				wrange(ox, g->sx, g->px, g->ww, g->iw, &x0, &xlo, &xhi); \
				float acc = INIT; \
				int nan = 0, pz = 0, nz = 0; \
				for (int ky = ylo; ky < yhi; ky++) { \
					const float *r = xp + (long)(y0 + ky) * g->isy; \
					for (int kx = xlo; kx < xhi; kx++) { \
						float v = r[(long)(x0 + kx) * g->isx]; \
						STEP; \
					} \
				} \
				FIX; \
				op[oy * g->osy + ox * g->osx] = acc; \
			} \
		} \
	} \
}
#define ZEROS nan |= v != v; pz |= (v == 0) & !signbit(v); nz |= (v == 0) & (signbit(v) != 0)
POOL(pool_max, -INFINITY, acc = v > acc ? v : acc; ZEROS,
     if (nan) acc = NAN; else if (acc == 0) acc = pz ? 0.0f : -0.0f)
POOL(pool_min, INFINITY, acc = v < acc ? v : acc; ZEROS,
     if (nan) acc = NAN; else if (acc == 0) acc = nz ? -0.0f : 0.0f)
POOL(pool_sum, 0.0f, acc += v, (void)nan; (void)pz; (void)nz)

// special reports whether the plane at xp (rows contiguous) holds a NaN
// or a -0, the values on which an ordered compare differs from Go's max
// and min. It tests bits, so that it vectorises.
static int special(const geom *g, const float *xp) {
	unsigned bad = 0;
	for (int y = 0; y < g->ih; y++) {
		const float *r = xp + (long)y * g->isy;
		for (int x = 0; x < g->iw; x++) {
			unsigned b;
			memcpy(&b, &r[x], sizeof b); // not a pointer cast: strict aliasing
			bad |= ((b & 0x7fffffffu) > 0x7f800000u) | (b == 0x80000000u);
		}
	}
	return bad != 0;
}

// pool_sep is max/min pooling of one plane whose rows are contiguous
// (isx == 1) and free of NaN and -0, as two separable passes: the window's
// rows reduced column-wise into m (vectorised), then m reduced along each
// window's columns. Its compares are then exact.
static void pool_sep(int is_max, const geom *g, const float *xp, float *op, float *m, float *acc) {
	float init = is_max ? -INFINITY : INFINITY;
	// Windows [oxa, oxb) have all their x taps inside the plane.
	int oxa = (g->px + g->sx - 1) / g->sx;
	int oxb = g->iw - g->ww + g->px >= 0 ? (g->iw - g->ww + g->px) / g->sx + 1 : 0;
	if (oxb > g->ow) oxb = g->ow;
	if (oxb < oxa) oxb = oxa;
	for (int oy = 0; oy < g->oh; oy++) {
		int y0, ylo, yhi;
		wrange(oy, g->sy, g->py, g->wh, g->ih, &y0, &ylo, &yhi);
		if (ylo == yhi) {
			for (int ox = 0; ox < g->ow; ox++) op[oy * g->osy + ox * g->osx] = init;
			continue;
		}
		const float *r = xp + (long)(y0 + ylo) * g->isy;
		for (int x = 0; x < g->iw; x++) m[x] = r[x];
		for (int ky = ylo + 1; ky < yhi; ky++) {
			r = xp + (long)(y0 + ky) * g->isy;
			if (is_max) {
				for (int x = 0; x < g->iw; x++) m[x] = r[x] > m[x] ? r[x] : m[x];
			} else {
				for (int x = 0; x < g->iw; x++) m[x] = r[x] < m[x] ? r[x] : m[x];
			}
		}
		// Inner windows tap by tap across the row: independent
		// compares, where a loop per window would chain them.
		const float *m0 = m + (long)oxa * g->sx - g->px;
		int n = oxb - oxa;
		for (int i = 0; i < n; i++) acc[i] = m0[(long)i * g->sx];
		for (int kx = 1; kx < g->ww; kx++) {
			if (is_max) {
				for (int i = 0; i < n; i++) {
					float v = m0[(long)i * g->sx + kx];
					acc[i] = v > acc[i] ? v : acc[i];
				}
			} else {
				for (int i = 0; i < n; i++) {
					float v = m0[(long)i * g->sx + kx];
					acc[i] = v < acc[i] ? v : acc[i];
				}
			}
		}
		for (int i = 0; i < n; i++) op[oy * g->osy + (oxa + i) * g->osx] = acc[i];
		// Windows clipped by the padding along x.
		for (int ox = 0; ox < g->ow; ox++) {
			if (ox == oxa) ox = oxb;
			if (ox >= g->ow) break;
			int x0, xlo, xhi;
			wrange(ox, g->sx, g->px, g->ww, g->iw, &x0, &xlo, &xhi);
			float a = init;
			if (is_max) {
				for (int kx = xlo; kx < xhi; kx++) a = m[x0 + kx] > a ? m[x0 + kx] : a;
			} else {
				for (int kx = xlo; kx < xhi; kx++) a = m[x0 + kx] < a ? m[x0 + kx] : a;
			}
			op[oy * g->osy + ox * g->osx] = a;
		}
	}
}


// The AVX-512 kernels below cover the windows whose x taps all lie inside
// the plane, on rows stored contiguously (isx == osx == 1) at x stride 1
// or 2: AlexNet's 3x3 stride-2 pools. They take 16 windows of a row at a
// time, one tap at a time, so the compares of a tap are one vector
// instruction and no loop runs per window or per tap of a window; a
// stride-2 tap is two masked loads and a permute that keeps the even
// lanes. The masked loads never touch memory past the taps, so the last
// plane's row may end the buffer. The rest (padding along x, other
// strides, CPUs without AVX-512) keeps the kernels above.

// prefetch_rows asks for n rows of w floats at stride s from p, for
// writing when write is set. The vector kernels run it one plane ahead:
// planes are a few KiB, and the hardware prefetchers, which stop at page
// boundaries, left most of each plane's lines to demand misses.
static inline void prefetch_rows(const float *p, int n, int w, long s, int write) {
	if (s == w) { // contiguous: one run
		w *= n;
		n = 1;
	}
	for (int y = 0; y < n; y++) {
		const char *r = (const char *)(p + (long)y * s);
		for (long b = 0; b < (long)w * (long)sizeof(float); b += 64) {
			if (write) __builtin_prefetch(r + b, 1, 3);
			else __builtin_prefetch(r + b, 0, 3);
		}
	}
}

// vec_ok reports whether the plane geometry g takes the AVX-512 kernels.
static int vec_ok(const geom *g) {
	// libgcc's constructor has filled the CPU model by now; reading it
	// is a load, and no shared flag of ours races between the threads.
	return __builtin_cpu_supports("avx512f") && g->isx == 1 && g->osx == 1 && (g->sx == 1 || g->sx == 2) && g->px == 0 &&
	       g->ow > 0 && (long)(g->ow - 1) * g->sx + g->ww <= g->iw;
}

// vtap loads tap kx of the n (<= 16) windows starting at window ob of
// row r: r[(ob+i)*sx + kx] for i < n; lanes >= n are unspecified.
__attribute__((target("avx512f")))
static inline __m512 vtap(const float *r, int sx, int ob, int kx, int n) {
	if (sx == 1) return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), r + ob + kx);
	// Elements 0, 2, ..., 2n-2 from r + 2ob + kx: 2n-1 floats over two vectors.
	const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
	int m = 2 * n - 1;
	const float *q = r + 2 * ob + kx;
	__m512 lo = _mm512_maskz_loadu_ps((__mmask16)(m >= 16 ? 0xffffu : (1u << m) - 1), q);
	__m512 hi = _mm512_maskz_loadu_ps((__mmask16)(m > 16 ? (1u << (m - 16)) - 1 : 0), q + 16);
	return _mm512_permutex2var_ps(lo, even, hi);
}

// vspecial is special on AVX-512.
__attribute__((target("avx512f")))
static int vspecial(const geom *g, const float *xp) {
	const __m512i negzero = _mm512_set1_epi32((int)0x80000000u);
	__mmask16 bad = 0;
	for (int y = 0; y < g->ih; y++) {
		const float *r = xp + (long)y * g->isy;
		for (int x = 0; x < g->iw; x += 16) {
			int n = g->iw - x < 16 ? g->iw - x : 16;
			__mmask16 m = (__mmask16)((1u << n) - 1);
			__m512 v = _mm512_maskz_loadu_ps(m, r + x);
			bad |= _mm512_mask_cmp_ps_mask(m, v, v, _CMP_UNORD_Q) |
			       _mm512_mask_cmpeq_epi32_mask(m, _mm512_castps_si512(v), negzero);
		}
	}
	return bad != 0;
}

// vpool is max (min) pooling of one plane free of NaN and -0, on which
// the vector max (min) is exact in any tap order.
__attribute__((target("avx512f")))
static void vpool(int is_max, const geom *g, const float *xp, float *op) {
	__m512 init = _mm512_set1_ps(is_max ? -INFINITY : INFINITY);
	for (int oy = 0; oy < g->oh; oy++) {
		int y0, ylo, yhi;
		wrange(oy, g->sy, g->py, g->wh, g->ih, &y0, &ylo, &yhi);
		float *o = op + (long)oy * g->osy;
		for (int ob = 0; ob < g->ow; ob += 16) {
			int n = g->ow - ob < 16 ? g->ow - ob : 16;
			__m512 acc = init;
			for (int ky = ylo; ky < yhi; ky++) {
				const float *r = xp + (long)(y0 + ky) * g->isy;
				for (int kx = 0; kx < g->ww; kx++) {
					__m512 v = vtap(r, g->sx, ob, kx, n);
					acc = is_max ? _mm512_max_ps(acc, v) : _mm512_min_ps(acc, v);
				}
			}
			_mm512_mask_storeu_ps(o + ob, (__mmask16)((1u << n) - 1), acc);
		}
	}
}

// vscatter is scatter_rows on AVX-512: each window starts from its first
// tap and, visiting its taps in row-major order, takes a later one only
// when strictly more extreme (an ordered compare: a NaN neither wins nor
// is displaced), the tap-by-tap reference's choice on every input. The
// sums then run in window order, as the reference's, so that rounding
// matches where windows share their extreme element. dp must be cleared.
__attribute__((target("avx512f")))
static void vscatter(int is_max, const geom *g, const float *xp, const float *sp, float *dp) {
	int at[16];
	__m512i col = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
	                                 _mm512_set1_epi32(g->sx));
	for (int oy = 0; oy < g->oh; oy++) {
		int y0, ylo, yhi;
		wrange(oy, g->sy, g->py, g->wh, g->ih, &y0, &ylo, &yhi);
		if (ylo == yhi) continue;
		const float *s = sp + (long)oy * g->osy;
		for (int ob = 0; ob < g->ow; ob += 16) {
			int n = g->ow - ob < 16 ? g->ow - ob : 16;
			// Offsets in the plane of the windows' taps at kx = 0.
			__m512i first = _mm512_add_epi32(col, _mm512_set1_epi32(ob * g->sx));
			__m512 best = _mm512_setzero_ps();
			__m512i bi = _mm512_setzero_si512();
			for (int ky = ylo; ky < yhi; ky++) {
				long roff = (long)(y0 + ky) * g->isy;
				const float *r = xp + roff;
				for (int kx = 0; kx < g->ww; kx++) {
					__m512 v = vtap(r, g->sx, ob, kx, n);
					__m512i ti = _mm512_add_epi32(first, _mm512_set1_epi32((int)(roff + kx)));
					if (ky == ylo && kx == 0) {
						best = v;
						bi = ti;
						continue;
					}
					__mmask16 take = is_max ? _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) : _mm512_cmp_ps_mask(v, best, _CMP_LT_OQ);
					best = _mm512_mask_mov_ps(best, take, v);
					bi = _mm512_mask_mov_epi32(bi, take, ti);
				}
			}
			_mm512_storeu_si512((void *)at, bi);
			for (int i = 0; i < n; i++) dp[at[i]] += s[ob + i];
		}
	}
}

// clear_plane zeroes the plane of dst at dp: scatter adds into it.
static void clear_plane(const geom *g, float *dp) {
	for (int y = 0; y < g->ih; y++) {
		float *r = dp + (long)y * g->isy;
		if (g->isx == 1) memset(r, 0, sizeof(float) * g->iw);
		else for (int x = 0; x < g->iw; x++) r[(long)x * g->isx] = 0;
	}
}

static void pool(int op, geom gv, const long *in_off, const long *out_off, long p0, long p1, const float *x, float *o) {
	const geom *g = &gv;
	if (op != WIN_SUM && vec_ok(g)) {
		for (long p = p0; p < p1; p++) {
			if (p + 1 < p1) prefetch_rows(x + in_off[p + 1], g->ih, g->iw, g->isy, 0);
			if (vspecial(g, x + in_off[p])) {
				if (op == WIN_MAX) pool_max(g, in_off, out_off, p, p + 1, x, o);
				else pool_min(g, in_off, out_off, p, p + 1, x, o);
			} else {
				vpool(op == WIN_MAX, g, x + in_off[p], o + out_off[p]);
			}
		}
		return;
	}
	if (op != WIN_SUM && g->isx == 1) {
		float *m = malloc(sizeof(float) * ((long)g->iw + g->ow + 1));
		if (m) {
			for (long p = p0; p < p1; p++) {
				if (special(g, x + in_off[p])) {
					if (op == WIN_MAX) pool_max(g, in_off, out_off, p, p + 1, x, o);
					else pool_min(g, in_off, out_off, p, p + 1, x, o);
				} else {
					pool_sep(op == WIN_MAX, g, x + in_off[p], o + out_off[p], m, m + g->iw);
				}
			}
			free(m);
			return;
		}
	}
	switch (op) {
	case WIN_MAX: pool_max(g, in_off, out_off, p0, p1, x, o); break;
	case WIN_MIN: pool_min(g, in_off, out_off, p0, p1, x, o); break;
	case WIN_SUM: pool_sum(g, in_off, out_off, p0, p1, x, o); break;
	}
}

// scatter_rows is scatter for one plane, one row of windows at a time:
// the windows that lie inside the plane along x advance together tap by
// tap, so that their compares are independent and run back to back
// instead of as one long dependent chain per window. Each window still
// sees its taps in row-major order, starts from its first tap and takes a
// later one only when strictly more extreme, exactly as the tap-by-tap
// scan below. best and at hold one entry per window of a row.
static void scatter_rows(int is_max, const geom *g, const float *xp, const float *sp, float *dp, float *best, int *at) {
	// Windows [oxa, oxb) have all their x taps inside the plane.
	int oxa = (g->px + g->sx - 1) / g->sx;
	int oxb = g->iw - g->ww + g->px >= 0 ? (g->iw - g->ww + g->px) / g->sx + 1 : 0;
	if (oxb > g->ow) oxb = g->ow;
	if (oxb < oxa) oxb = oxa;
	int n = oxb - oxa;
	long step = (long)g->sx * g->isx;
	for (int oy = 0; oy < g->oh; oy++) {
		int y0, ylo, yhi;
		wrange(oy, g->sy, g->py, g->wh, g->ih, &y0, &ylo, &yhi);
		if (ylo == yhi) continue;
		long first = (long)(y0 + ylo) * g->isy + ((long)oxa * g->sx - g->px) * g->isx;
		float *bi = best + oxa;
		int *ai = at + oxa;
		for (int i = 0; i < n; i++) {
			bi[i] = xp[first + i * step];
			ai[i] = (int)(first + i * step);
		}
		for (int ky = ylo; ky < yhi; ky++) {
			for (int kx = 0; kx < g->ww; kx++) {
				if (ky == ylo && kx == 0) continue;
				long base = (long)(y0 + ky) * g->isy + ((long)oxa * g->sx - g->px + kx) * g->isx;
				if (is_max) {
					for (int i = 0; i < n; i++) {
						float v = xp[base + i * step];
						int t = -(v > bi[i]);
						bi[i] = v > bi[i] ? v : bi[i];
						ai[i] = (ai[i] & ~t) | ((int)(base + i * step) & t);
					}
				} else {
					for (int i = 0; i < n; i++) {
						float v = xp[base + i * step];
						int t = -(v < bi[i]);
						bi[i] = v < bi[i] ? v : bi[i];
						ai[i] = (ai[i] & ~t) | ((int)(base + i * step) & t);
					}
				}
			}
		}
		// Windows clipped by the padding along x, tap by tap.
		for (int ox = 0; ox < g->ow; ox++) {
			if (ox == oxa) ox = oxb;
			if (ox >= g->ow) break;
			int x0, xlo, xhi;
			wrange(ox, g->sx, g->px, g->ww, g->iw, &x0, &xlo, &xhi);
			if (xlo == xhi) {
				at[ox] = -1;
				continue;
			}
			long a = (long)(y0 + ylo) * g->isy + (long)(x0 + xlo) * g->isx;
			float b = xp[a];
			for (int ky = ylo; ky < yhi; ky++) {
				for (int kx = xlo; kx < xhi; kx++) {
					long q = (long)(y0 + ky) * g->isy + (long)(x0 + kx) * g->isx;
					float v = xp[q];
					int take = is_max ? v > b : v < b;
					b = take ? v : b;
					a = take ? q : a;
				}
			}
			at[ox] = (int)a;
		}
		// Sums in window order, as the reference, so that rounding
		// matches where windows share a maximum.
		for (int ox = 0; ox < g->ow; ox++) {
			if (at[ox] >= 0) dp[at[ox]] += sp[oy * g->osy + ox * g->osx];
		}
	}
}

// scatter adds each source value to dst at its window's first maximum
// (minimum when is_max is 0) of x. It clears each plane of dst first,
// while the plane is about to be in cache anyway: the planes cover dst.
static void scatter(int is_max, geom gv, const long *in_off, const long *out_off, long p0, long p1,
                    const float *x, const float *src, float *dst) {
	const geom *g = &gv;
	// Offsets within a plane are ints in scatter_rows and vscatter.
	int fits = (long)g->ih * g->isy + (long)g->iw * g->isx < 0x7fffffffL;
	int vec = fits && vec_ok(g);
	float *best = fits && !vec ? malloc(sizeof(float) * (g->ow > 0 ? g->ow : 1)) : NULL;
	int *at = fits && !vec ? malloc(sizeof(int) * (g->ow > 0 ? g->ow : 1)) : NULL;
	for (long p = p0; p < p1; p++) {
		clear_plane(g, dst + in_off[p]);
		if (vec) {
			if (p + 1 < p1) {
				prefetch_rows(x + in_off[p + 1], g->ih, g->iw, g->isy, 0);
				prefetch_rows(dst + in_off[p + 1], g->ih, g->iw, g->isy, 1);
				prefetch_rows(src + out_off[p + 1], g->oh, g->ow, g->osy, 0);
			}
			vscatter(is_max, g, x + in_off[p], src + out_off[p], dst + in_off[p]);
			continue;
		}
		if (best && at) {
			scatter_rows(is_max, g, x + in_off[p], src + out_off[p], dst + in_off[p], best, at);
			continue;
		}
		long in0 = in_off[p], out0 = out_off[p];
		for (int oy = 0; oy < g->oh; oy++) {
			int y0, ylo, yhi;
			wrange(oy, g->sy, g->py, g->wh, g->ih, &y0, &ylo, &yhi);
			for (int ox = 0; ox < g->ow; ox++) {
				int x0, xlo, xhi;
				wrange(ox, g->sx, g->px, g->ww, g->iw, &x0, &xlo, &xhi);
				if (ylo == yhi || xlo == xhi) continue;
				// The first tap starts the search; a later one wins only
				// when strictly more extreme, so ties keep the first.
				long at = in0 + (long)(y0 + ylo) * g->isy + (long)(x0 + xlo) * g->isx;
				float best = x[at];
				for (int ky = ylo; ky < yhi; ky++) {
					long base = in0 + (long)(y0 + ky) * g->isy;
					for (int kx = xlo; kx < xhi; kx++) {
						long i = base + (long)(x0 + kx) * g->isx;
						float v = x[i];
						int take = is_max ? v > best : v < best;
						best = take ? v : best;
						at = take ? i : at;
					}
				}
				dst[at] += src[out0 + oy * g->osy + ox * g->osx];
			}
		}
	}
	free(best);
	free(at);
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// planes is the geometry of a windowed op whose window spans at most two
// axes: the other ("free") axes enumerate independent 2-D planes, each
// pooled with its own strides, so any axes layout runs without copies.
type planes struct {
	inOff, outOff  []C.long // start of every plane in the operand and window grid
	ih, iw, oh, ow int
	isy, isx       int // operand strides of the two window axes
	osy, osx       int // window-grid strides of the two window axes
	wh, ww         int
	sy, sx         int
	py, px         int // low padding
}

// newPlanes returns the plane geometry, or false when the window spans
// more than two axes.
func newPlanes(in, out shapes.Shape, window, strides []int, paddings [][2]int) (*planes, bool) {
	rank := in.Rank()
	var spatial, free []int
	for i := range rank {
		if window[i] == 1 && strides[i] == 1 && paddings[i] == [2]int{} {
			free = append(free, i)
		} else {
			spatial = append(spatial, i)
		}
	}
	if len(spatial) > 2 {
		return nil, false
	}
	is, os := in.Strides(), out.Strides()
	p := &planes{ih: 1, iw: 1, oh: 1, ow: 1, wh: 1, ww: 1, sy: 1, sx: 1}
	set := func(a int, ih, oh, isy, osy, wh, sy, py *int) {
		*ih, *oh, *isy, *osy = in.Dimensions[a], out.Dimensions[a], is[a], os[a]
		*wh, *sy, *py = window[a], strides[a], paddings[a][0]
	}
	switch len(spatial) {
	case 2:
		set(spatial[0], &p.ih, &p.oh, &p.isy, &p.osy, &p.wh, &p.sy, &p.py)
		set(spatial[1], &p.iw, &p.ow, &p.isx, &p.osx, &p.ww, &p.sx, &p.px)
	case 1:
		set(spatial[0], &p.iw, &p.ow, &p.isx, &p.osx, &p.ww, &p.sx, &p.px)
	}
	p.inOff, p.outOff = []C.long{0}, []C.long{0}
	for _, a := range free {
		var ni, no []C.long
		for j := range in.Dimensions[a] {
			for k := range p.inOff {
				ni = append(ni, p.inOff[k]+C.long(j*is[a]))
				no = append(no, p.outOff[k]+C.long(j*os[a]))
			}
		}
		p.inOff, p.outOff = ni, no
	}
	return p, true
}

// geom is p's scalars as the C kernels take them (the offset arrays go
// separately: cgo forbids Go pointers inside arguments).
func (p *planes) geom() C.geom {
	return C.geom{ih: C.int(p.ih), iw: C.int(p.iw), oh: C.int(p.oh), ow: C.int(p.ow),
		isy: C.long(p.isy), isx: C.long(p.isx), osy: C.long(p.osy), osx: C.long(p.osx),
		wh: C.int(p.wh), ww: C.int(p.ww), sy: C.int(p.sy), sx: C.int(p.sx), py: C.int(p.py), px: C.int(p.px)}
}

// each runs fn over ranges of planes [p0, p1) on up to threads
// goroutines.
func (p *planes) each(threads int, fn func(p0, p1 int)) {
	n := len(p.inOff)
	if n*p.oh*p.ow*p.wh*p.ww < 1<<14 {
		threads = 1
	}
	splitRange(threads, n, fn)
}

// reduceWindowParams is the data of our float32 ReduceWindow nodes.
type reduceWindowParams struct {
	op      backends.ReduceOpType
	geo     *planes
	threads int
}

// ReduceWindow implements backends.Builder: float32 max/min/sum pooling
// over at most two axes without dilations runs on a plane kernel; the rest
// goes to simplego.
func (b *builder) ReduceWindow(x backends.Op, op backends.ReduceOpType, window, strides, baseDilations, windowDilations []int, paddings [][2]int) (backends.Op, error) {
	stock := func() (backends.Op, error) {
		return b.Builder.ReduceWindow(x, op, window, strides, baseDilations, windowDilations, paddings)
	}
	in, err := b.nodes("ReduceWindow", x)
	if err != nil {
		return nil, err
	}
	xs := shapeOf(in[0])
	if b.backend.stock || xs.DType != dtypes.Float32 || len(window) != xs.Rank() || !unit(baseDilations) || !unit(windowDilations) ||
		(op != backends.ReduceOpMax && op != backends.ReduceOpMin && op != backends.ReduceOpSum) {
		return stock()
	}
	if len(strides) == 0 {
		strides = window
	}
	pads := make([][2]int, xs.Rank())
	copy(pads, paddings)
	out, err := shapeinference.ReduceWindowOp(xs, window, strides, nil, nil, pads)
	if err != nil {
		return nil, fmt.Errorf("accel ReduceWindow of %s: %w", xs, err)
	}
	geo, ok := newPlanes(xs, out, window, strides, pads)
	if !ok {
		return stock()
	}
	p := &reduceWindowParams{op: op, geo: geo, threads: b.backend.threads}
	return b.newNode(backends.OpTypeReduceWindow, out, p, in[0]), nil
}

func unit(s []int) bool {
	for _, v := range s {
		if v != 1 {
			return false
		}
	}
	return true
}

func (p *reduceWindowParams) exec(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer) (*simplego.Buffer, error) {
	x, err := f32(backend, inputs[0])
	if err != nil {
		return nil, fmt.Errorf("accel ReduceWindow: %w", err)
	}
	out := backend.NewBuffer(mirror(node).shape)
	o, err := f32(backend, out)
	if err != nil {
		return nil, fmt.Errorf("accel ReduceWindow: %w", err)
	}
	if len(o) == 0 {
		return out, nil
	}
	poolPlanes(p.geo, p.threads, p.op, x, o)
	return out, nil
}

// poolPlanes is the plane kernel of ReduceWindow: o gets op over each
// window of x; o must not be empty.
func poolPlanes(g *planes, threads int, op backends.ReduceOpType, x, o []float32) {
	cop := C.int(C.WIN_SUM)
	switch op {
	case backends.ReduceOpMax:
		cop = C.WIN_MAX
	case backends.ReduceOpMin:
		cop = C.WIN_MIN
	}
	cg := g.geom()
	g.each(threads, func(p0, p1 int) {
		C.pool(cop, cg, &g.inOff[0], &g.outOff[0], C.long(p0), C.long(p1), (*C.float)(unsafe.Pointer(&x[0])), (*C.float)(unsafe.Pointer(&o[0])))
	})
}

// scatterPlanes is the plane kernel of SelectAndScatterMax/Min: dst gets
// each source value at its window's first extreme element.
func scatterPlanes(g *planes, threads int, isMax bool, x, src, dst []float32) {
	if len(src) == 0 || len(x) == 0 {
		clear(dst)
		return
	}
	m := C.int(0)
	if isMax {
		m = 1
	}
	cg := g.geom()
	g.each(threads, func(p0, p1 int) {
		C.scatter(m, cg, &g.inOff[0], &g.outOff[0], C.long(p0), C.long(p1), (*C.float)(unsafe.Pointer(&x[0])),
			(*C.float)(unsafe.Pointer(&src[0])), (*C.float)(unsafe.Pointer(&dst[0])))
	})
}
