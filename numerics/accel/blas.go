package accel

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
#include <string.h>

// im2col writes rows (c, ky, kx) x cols (b, oy, ox) of the patch matrix of a
// 2-D convolution into P (leading dimension ld), reading the input through
// arbitrary element strides so that any gomlx axes layout works in place.
// Positions in the padding or between input-dilated samples read as zero.
static void im2col(const float *in, float *P, long ld, int c0, int c1, int nb,
                   long sb, long sc, long sy, long sx, int ih, int iw,
                   int kh, int kw, int oh, int ow, int sty, int stx,
                   int pady, int padx, int kdy, int kdx, int idy, int idx) {
	long dh = (long)(ih - 1) * idy, dw = (long)(iw - 1) * idx; // last dilated index
	for (int c = c0; c < c1; c++)
	for (int ky = 0; ky < kh; ky++)
	for (int kx = 0; kx < kw; kx++) {
		float *row = P + (long)((c - c0) * kh * kw + ky * kw + kx) * ld;
		for (int b = 0; b < nb; b++) {
			const float *plane = in + b * sb + c * sc;
			for (int oy = 0; oy < oh; oy++) {
				float *dst = row + ((long)b * oh + oy) * ow;
				long qy = (long)oy * sty + (long)ky * kdy - pady;
				if (qy < 0 || qy > dh || qy % idy) {
					memset(dst, 0, sizeof(float) * ow);
					continue;
				}
				const float *src = plane + (qy / idy) * sy;
				long q0 = (long)kx * kdx - padx;
				if (idx == 1) {
					// Valid ox satisfy 0 <= q0 + ox*stx <= dw.
					int lo = q0 >= 0 ? 0 : (int)((-q0 + stx - 1) / stx);
					int hi = q0 > dw ? 0 : (int)((dw - q0) / stx) + 1;
					if (hi > ow) hi = ow;
					if (lo > hi) lo = hi;
					for (int ox = 0; ox < lo; ox++) dst[ox] = 0;
					if (sx == 1 && stx == 1) {
						memcpy(dst + lo, src + q0 + lo, sizeof(float) * (hi - lo));
					} else {
						for (int ox = lo; ox < hi; ox++) dst[ox] = src[(q0 + (long)ox * stx) * sx];
					}
					for (int ox = hi; ox < ow; ox++) dst[ox] = 0;
				} else {
					for (int ox = 0; ox < ow; ox++) {
						long qx = q0 + (long)ox * stx;
						dst[ox] = (qx < 0 || qx > dw || qx % idx) ? 0 : src[(qx / idx) * sx];
					}
				}
			}
		}
	}
}

// im2colT writes the transpose of im2col's matrix: rows (b, oy, ox) x cols
// (c, ky, kx), leading dimension ld. It suits convolutions whose kernel
// window is wider than their output (gomlx's kernel-gradient convolution),
// where im2col's rows would be only a few elements long.
static void im2colT(const float *in, float *P, long ld, int c0, int c1, int b0, int b1,
                    long sb, long sc, long sy, long sx, int ih, int iw,
                    int kh, int kw, int oh, int ow, int sty, int stx,
                    int pady, int padx, int kdy, int kdx, int idy, int idx) {
	long dh = (long)(ih - 1) * idy, dw = (long)(iw - 1) * idx;
	for (int b = b0; b < b1; b++)
	for (int oy = 0; oy < oh; oy++)
	for (int ox = 0; ox < ow; ox++) {
		float *row = P + ((long)(b - b0) * oh * ow + (long)oy * ow + ox) * ld;
		long q0 = (long)ox * stx - padx;
		for (int c = c0; c < c1; c++) {
			const float *plane = in + b * sb + c * sc;
			for (int ky = 0; ky < kh; ky++) {
				float *dst = row + ((long)(c - c0) * kh + ky) * kw;
				long qy = (long)oy * sty + (long)ky * kdy - pady;
				if (qy < 0 || qy > dh || qy % idy) {
					memset(dst, 0, sizeof(float) * kw);
					continue;
				}
				const float *src = plane + (qy / idy) * sy;
				if (idx == 1) {
					// Valid kx satisfy 0 <= q0 + kx*kdx <= dw.
					int lo = q0 >= 0 ? 0 : (int)((-q0 + kdx - 1) / kdx);
					int hi = q0 > dw ? 0 : (int)((dw - q0) / kdx) + 1;
					if (hi > kw) hi = kw;
					if (lo > hi) lo = hi;
					for (int kx = 0; kx < lo; kx++) dst[kx] = 0;
					if (sx == 1 && kdx == 1) {
						memcpy(dst + lo, src + q0 + lo, sizeof(float) * (hi - lo));
					} else {
						for (int kx = lo; kx < hi; kx++) dst[kx] = src[(q0 + (long)kx * kdx) * sx];
					}
					for (int kx = hi; kx < kw; kx++) dst[kx] = 0;
				} else {
					for (int kx = 0; kx < kw; kx++) {
						long qx = q0 + (long)kx * kdx;
						dst[kx] = (qx < 0 || qx > dw || qx % idx) ? 0 : src[(qx / idx) * sx];
					}
				}
			}
		}
	}
}

// col2im adds G's rows (co, ky, kx) x cols (b, iy, ix) into the output
// positions each input position feeds in a stride-1 convolution:
// y = iy*idy - ky*kdy + pady, x likewise. It writes output channels
// [co0, co1) only, so channel ranges can run concurrently.
static void col2im(const float *G, long ld, float *out, int co0, int co1, int nb,
                   long ob, long oc, long oy, long ox, int oh, int ow,
                   int kh, int kw, int ih, int iw,
                   int pady, int padx, int kdy, int kdx, int idy, int idx) {
	for (int co = co0; co < co1; co++) {
		for (int b = 0; b < nb; b++)
		for (int y = 0; y < oh; y++)
		for (int x = 0; x < ow; x++) out[b * ob + co * oc + y * oy + x * ox] = 0;
		for (int ky = 0; ky < kh; ky++)
		for (int kx = 0; kx < kw; kx++) {
			const float *row = G + (long)((co * kh + ky) * kw + kx) * ld;
			for (int b = 0; b < nb; b++)
			for (int iy = 0; iy < ih; iy++) {
				long y = (long)iy * idy - (long)ky * kdy + pady;
				if (y < 0 || y >= oh) continue;
				const float *src = row + ((long)b * ih + iy) * iw;
				float *dst = out + b * ob + co * oc + y * oy;
				for (int ix = 0; ix < iw; ix++) {
					long x = (long)ix * idx - (long)kx * kdx + padx;
					if (x >= 0 && x < ow) dst[x * ox] += src[ix];
				}
			}
		}
	}
}
*/
import "C"

import (
	"sync"
	"unsafe"
)

// OpenBLAS runs single-threaded and sgemm splits each product across
// goroutines itself: OpenBLAS's own pool spins (sched_yield) between calls
// and would steal the cores from gomlx's parallel element-wise ops, and the
// Go scheduler can only balance threads it knows about.
func init() {
	C.openblas_set_num_threads(1)
}

// sgemm computes C = alpha op(A) op(B) + beta C on row-major float32
// matrices, splitting the larger of the M and N dimensions across up to
// threads goroutines.
func sgemm(threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	// Below ~2 MFLOP a split costs more than it saves.
	parts := min(threads, max(1, 2*m*n*k>>21))
	if parts <= 1 {
		gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	const align = 16
	var wg sync.WaitGroup
	split := func(size int, part func(lo, hi int)) {
		for p := range parts {
			lo, hi := size*p/parts/align*align, size*(p+1)/parts/align*align
			if p == parts-1 {
				hi = size
			}
			if lo >= hi {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				part(lo, hi)
			}()
		}
		wg.Wait()
	}
	if m >= n {
		split(m, func(lo, hi int) {
			aOff := lo * lda // row lo of op(A)
			if transA {
				aOff = lo
			}
			gemm(transA, transB, hi-lo, n, k, alpha, a[aOff:], lda, b, ldb, beta, c[lo*ldc:], ldc)
		})
		return
	}
	split(n, func(lo, hi int) {
		bOff := lo // column lo of op(B)
		if transB {
			bOff = lo * ldb
		}
		gemm(transA, transB, m, hi-lo, k, alpha, a, lda, b[bOff:], ldb, beta, c[lo:], ldc)
	})
}

// gemm is one single-threaded cblas_sgemm call.
func gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	ta, tb := uint32(C.CblasNoTrans), uint32(C.CblasNoTrans)
	if transA {
		ta = C.CblasTrans
	}
	if transB {
		tb = C.CblasTrans
	}
	var pa, pb *float32
	if k > 0 {
		pa, pb = &a[0], &b[0]
	}
	C.cblas_sgemm(C.CblasRowMajor, ta, tb, C.blasint(m), C.blasint(n), C.blasint(k),
		C.float(alpha), (*C.float)(unsafe.Pointer(pa)), C.blasint(lda),
		(*C.float)(unsafe.Pointer(pb)), C.blasint(ldb),
		C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.blasint(ldc))
}

// im2colArgs describes where the patch rows come from; see the C im2col.
type im2colArgs struct {
	in                     []float32
	nb                     int
	sb, sc, sy, sx         int
	ih, iw, kh, kw, oh, ow int
	sty, stx, pady, padx   int
	kdy, kdx, idy, idx     int
}

// im2colT fills P (leading dimension ld) with transposed patch rows for
// batch entries [0, a.nb) and channels [c0, c1), split across threads
// goroutines.
func im2colT(a *im2colArgs, p []float32, ld, c0, c1, threads int) {
	run := func(lo, hi int) {
		off := lo * a.oh * a.ow * ld
		C.im2colT((*C.float)(unsafe.Pointer(&a.in[0])), (*C.float)(unsafe.Pointer(&p[off])), C.long(ld),
			C.int(c0), C.int(c1), C.int(lo), C.int(hi),
			C.long(a.sb), C.long(a.sc), C.long(a.sy), C.long(a.sx), C.int(a.ih), C.int(a.iw),
			C.int(a.kh), C.int(a.kw), C.int(a.oh), C.int(a.ow), C.int(a.sty), C.int(a.stx),
			C.int(a.pady), C.int(a.padx), C.int(a.kdy), C.int(a.kdx), C.int(a.idy), C.int(a.idx))
	}
	splitRange(threads, a.nb, run)
}

// col2imArgs describes where col2im's sums land.
type col2imArgs struct {
	out                    []float32
	nb, no                 int
	ob, oc, oy, ox         int
	oh, ow, kh, kw, ih, iw int
	pady, padx, kdy, kdx   int
	idy, idx               int
}

// col2im scatters G (leading dimension ld) into a.out, output channels
// split across threads goroutines.
func col2im(a *col2imArgs, g []float32, ld, threads int) {
	run := func(lo, hi int) {
		C.col2im((*C.float)(unsafe.Pointer(&g[0])), C.long(ld), (*C.float)(unsafe.Pointer(&a.out[0])),
			C.int(lo), C.int(hi), C.int(a.nb), C.long(a.ob), C.long(a.oc), C.long(a.oy), C.long(a.ox),
			C.int(a.oh), C.int(a.ow), C.int(a.kh), C.int(a.kw), C.int(a.ih), C.int(a.iw),
			C.int(a.pady), C.int(a.padx), C.int(a.kdy), C.int(a.kdx), C.int(a.idy), C.int(a.idx))
	}
	splitRange(threads, a.no, run)
}

// im2col fills P (leading dimension ld) with patch rows for channels
// [c0, c1), split across threads goroutines.
func im2col(a *im2colArgs, p []float32, ld, c0, c1, threads int) {
	run := func(lo, hi int) {
		off := (lo - c0) * a.kh * a.kw * ld
		C.im2col((*C.float)(unsafe.Pointer(&a.in[0])), (*C.float)(unsafe.Pointer(&p[off])), C.long(ld),
			C.int(lo), C.int(hi), C.int(a.nb),
			C.long(a.sb), C.long(a.sc), C.long(a.sy), C.long(a.sx), C.int(a.ih), C.int(a.iw),
			C.int(a.kh), C.int(a.kw), C.int(a.oh), C.int(a.ow), C.int(a.sty), C.int(a.stx),
			C.int(a.pady), C.int(a.padx), C.int(a.kdy), C.int(a.kdx), C.int(a.idy), C.int(a.idx))
	}
	splitRange(threads, c1-c0, func(lo, hi int) { run(c0+lo, c0+hi) })
}
