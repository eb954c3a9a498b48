package accel

/*
#cgo LDFLAGS: -ldnnl -lgomp
#include <stdlib.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

// The three convolution primitives, each seen as two inputs and one output
// (all NCHW / OIHW in the caller's memory):
//   fwd:          src, weights  -> dst
//   bwd_data:     diff_dst, weights -> diff_src
//   bwd_weights:  src, diff_dst -> diff_weights
enum { VF_FWD = 0, VF_BWD_DATA = 1, VF_BWD_WEIGHTS = 2 };

typedef struct {
	dnnl_engine_t eng;
	dnnl_primitive_t prim;
	int arg[3];                   // exec arg ids of in0, in1, out
	dnnl_memory_desc_t user[3];   // plain layouts
	dnnl_memory_desc_t md[3];     // layouts the primitive chose
	dnnl_primitive_t reorder[3];  // user->md for inputs, md->user for the output; NULL when equal
	size_t bytes[3];              // size of md[i] when reordered, else 0
	size_t scratch;               // user-managed scratchpad bytes
} vf_conv;

static void vf_conv_free(vf_conv *c) {
	if (!c) return;
	if (c->prim) dnnl_primitive_destroy(c->prim);
	for (int i = 0; i < 3; i++) if (c->reorder[i]) dnnl_primitive_destroy(c->reorder[i]);
	free(c);
}

static dnnl_status_t vf_reorder(dnnl_engine_t eng, const dnnl_memory_desc_t *from,
                                const dnnl_memory_desc_t *to, dnnl_primitive_t *out) {
	dnnl_primitive_desc_t pd;
	dnnl_status_t s = dnnl_reorder_primitive_desc_create(&pd, from, eng, to, eng, NULL);
	if (s != dnnl_success) return s;
	s = dnnl_primitive_create(out, pd);
	dnnl_primitive_desc_destroy(pd);
	return s;
}

// vf_conv_new plans one convolution for a batch of n on one thread (the
// caller splits batches across its own threads). dy/dx are oneDNN
// dilations (0 = dense). On failure it returns NULL with *status set.
static vf_conv *vf_conv_new(dnnl_engine_t eng, int kind, long n, long c, long h, long w,
                            long o, long kh, long kw, long oh, long ow,
                            long sy, long sx, long dy, long dx,
                            long ply, long plx, long pry, long prx, int *status) {
	// Before planning too: oneDNN sizes its kernels' work split for the
	// thread count it sees at creation.
	omp_set_num_threads(1);
	dnnl_dims_t src_d = {n, c, h, w}, wei_d = {o, c, kh, kw}, dst_d = {n, o, oh, ow};
	dnnl_dims_t strides = {sy, sx}, dil = {dy, dx}, pl = {ply, plx}, pr = {pry, prx};
	dnnl_memory_desc_t src_any, wei_any, dst_any, src_u, wei_u, dst_u;
	dnnl_status_t s;
	dnnl_primitive_desc_t fpd = NULL, pd = NULL;
	dnnl_primitive_attr_t attr = NULL;
	vf_conv *c0 = calloc(1, sizeof(vf_conv));
	if (!c0) { *status = dnnl_out_of_memory; return NULL; }
	c0->eng = eng;
#define TRY(x) do { s = (x); if (s != dnnl_success) goto fail; } while (0)
	TRY(dnnl_memory_desc_init_by_tag(&src_any, 4, src_d, dnnl_f32, dnnl_format_tag_any));
	TRY(dnnl_memory_desc_init_by_tag(&wei_any, 4, wei_d, dnnl_f32, dnnl_format_tag_any));
	TRY(dnnl_memory_desc_init_by_tag(&dst_any, 4, dst_d, dnnl_f32, dnnl_format_tag_any));
	TRY(dnnl_memory_desc_init_by_tag(&src_u, 4, src_d, dnnl_f32, dnnl_nchw));
	TRY(dnnl_memory_desc_init_by_tag(&wei_u, 4, wei_d, dnnl_f32, dnnl_oihw));
	TRY(dnnl_memory_desc_init_by_tag(&dst_u, 4, dst_d, dnnl_f32, dnnl_nchw));
	TRY(dnnl_primitive_attr_create(&attr));
	TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
	dnnl_convolution_desc_t fd, bd;
	TRY(dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct,
		&src_any, &wei_any, NULL, &dst_any, strides, dil, pl, pr));
	TRY(dnnl_primitive_desc_create(&fpd, &fd, attr, eng, NULL));
	dnnl_query_t q[3];
	switch (kind) {
	case VF_FWD:
		pd = fpd; fpd = NULL;
		q[0] = dnnl_query_src_md; q[1] = dnnl_query_weights_md; q[2] = dnnl_query_dst_md;
		c0->arg[0] = DNNL_ARG_SRC; c0->arg[1] = DNNL_ARG_WEIGHTS; c0->arg[2] = DNNL_ARG_DST;
		c0->user[0] = src_u; c0->user[1] = wei_u; c0->user[2] = dst_u;
		break;
	case VF_BWD_DATA:
		TRY(dnnl_dilated_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct,
			&src_any, &wei_any, &dst_any, strides, dil, pl, pr));
		TRY(dnnl_primitive_desc_create(&pd, &bd, attr, eng, fpd));
		q[0] = dnnl_query_diff_dst_md; q[1] = dnnl_query_weights_md; q[2] = dnnl_query_diff_src_md;
		c0->arg[0] = DNNL_ARG_DIFF_DST; c0->arg[1] = DNNL_ARG_WEIGHTS; c0->arg[2] = DNNL_ARG_DIFF_SRC;
		c0->user[0] = dst_u; c0->user[1] = wei_u; c0->user[2] = src_u;
		break;
	default:
		TRY(dnnl_dilated_convolution_backward_weights_desc_init(&bd, dnnl_convolution_direct,
			&src_any, &wei_any, NULL, &dst_any, strides, dil, pl, pr));
		TRY(dnnl_primitive_desc_create(&pd, &bd, attr, eng, fpd));
		q[0] = dnnl_query_src_md; q[1] = dnnl_query_diff_dst_md; q[2] = dnnl_query_diff_weights_md;
		c0->arg[0] = DNNL_ARG_SRC; c0->arg[1] = DNNL_ARG_DIFF_DST; c0->arg[2] = DNNL_ARG_DIFF_WEIGHTS;
		c0->user[0] = src_u; c0->user[1] = dst_u; c0->user[2] = wei_u;
	}
	for (int i = 0; i < 3; i++) {
		c0->md[i] = *dnnl_primitive_desc_query_md(pd, q[i], 0);
		if (!dnnl_memory_desc_equal(&c0->md[i], &c0->user[i])) {
			c0->bytes[i] = dnnl_memory_desc_get_size(&c0->md[i]);
			if (i < 2) TRY(vf_reorder(eng, &c0->user[i], &c0->md[i], &c0->reorder[i]));
			else TRY(vf_reorder(eng, &c0->md[i], &c0->user[i], &c0->reorder[i]));
		}
	}
	c0->scratch = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));
	TRY(dnnl_primitive_create(&c0->prim, pd));
	dnnl_primitive_desc_destroy(pd);
	if (fpd) dnnl_primitive_desc_destroy(fpd);
	dnnl_primitive_attr_destroy(attr);
	return c0;
fail:
	*status = s;
	if (pd) dnnl_primitive_desc_destroy(pd);
	if (fpd) dnnl_primitive_desc_destroy(fpd);
	if (attr) dnnl_primitive_attr_destroy(attr);
	vf_conv_free(c0);
	return NULL;
#undef TRY
}

static size_t vf_conv_bytes(vf_conv *c, int i) { return i < 3 ? c->bytes[i] : c->scratch; }

// vf_conv_run runs c on plain buffers a, b -> out; t0..t2 hold the
// primitive's own layouts where bytes[i] > 0, scratch its scratchpad.
static int vf_conv_run(vf_conv *c, float *a, float *b, float *out,
                       float *t0, float *t1, float *t2, void *scratch) {
	omp_set_num_threads(1);
	float *user[3] = {a, b, out}, *tmp[3] = {t0, t1, t2};
	dnnl_memory_t um[3] = {0}, pm[3] = {0}, sm = NULL;
	dnnl_stream_t st = NULL;
	dnnl_status_t s;
#define TRY(x) do { s = (x); if (s != dnnl_success) goto done; } while (0)
	TRY(dnnl_stream_create(&st, c->eng, dnnl_stream_default_flags));
	for (int i = 0; i < 3; i++) {
		TRY(dnnl_memory_create(&um[i], &c->user[i], c->eng, user[i]));
		if (c->reorder[i]) TRY(dnnl_memory_create(&pm[i], &c->md[i], c->eng, tmp[i]));
	}
	for (int i = 0; i < 2; i++) {
		if (!c->reorder[i]) continue;
		dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, um[i]}, {DNNL_ARG_TO, pm[i]}};
		TRY(dnnl_primitive_execute(c->reorder[i], st, 2, ra));
	}
	dnnl_exec_arg_t args[4];
	int nargs = 3;
	for (int i = 0; i < 3; i++) {
		args[i].arg = c->arg[i];
		args[i].memory = c->reorder[i] ? pm[i] : um[i];
	}
	if (c->scratch) {
		dnnl_memory_desc_t smd;
		dnnl_dims_t sd = {(dnnl_dim_t)c->scratch};
		TRY(dnnl_memory_desc_init_by_tag(&smd, 1, sd, dnnl_u8, dnnl_a));
		TRY(dnnl_memory_create(&sm, &smd, c->eng, scratch));
		args[nargs].arg = DNNL_ARG_SCRATCHPAD;
		args[nargs].memory = sm;
		nargs++;
	}
	TRY(dnnl_primitive_execute(c->prim, st, nargs, args));
	if (c->reorder[2]) {
		dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, pm[2]}, {DNNL_ARG_TO, um[2]}};
		TRY(dnnl_primitive_execute(c->reorder[2], st, 2, ra));
	}
	TRY(dnnl_stream_wait(st));
done:
	for (int i = 0; i < 3; i++) {
		if (um[i]) dnnl_memory_destroy(um[i]);
		if (pm[i]) dnnl_memory_destroy(pm[i]);
	}
	if (sm) dnnl_memory_destroy(sm);
	if (st) dnnl_stream_destroy(st);
	return s;
#undef TRY
}

static dnnl_engine_t vf_engine(int *status) {
	dnnl_engine_t e = NULL;
	*status = dnnl_engine_create(&e, dnnl_cpu, 0);
	return e;
}

static void vf_add(float *dst, const float *src, long n) {
	for (long i = 0; i < n; i++) dst[i] += src[i];
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/gomlx/gomlx/backends/simplego"
)

// convKind is which oneDNN convolution primitive computes a ConvGeneral.
type convKind int

const (
	convForward     convKind = C.VF_FWD
	convBackData    convKind = C.VF_BWD_DATA
	convBackWeights convKind = C.VF_BWD_WEIGHTS
	// convIm2col is not a oneDNN primitive: it counts, in
	// Backend.convPaths, the convolutions left on im2col + sgemm.
	convIm2col convKind = 3
)

func (k convKind) String() string {
	return [...]string{"forward", "backward-data", "backward-weights", "im2col"}[k]
}

// dnnlEngine is the process's oneDNN CPU engine. An engine is a stateless
// handle that every primitive keeps a reference to, so one is created on
// first use and lives as long as the process, like oneDNN's own global
// state (kernel caches, thread pools).
var dnnlEngine = sync.OnceValues(func() (C.dnnl_engine_t, error) {
	var st C.int
	e := C.vf_engine(&st)
	if st != C.dnnl_success {
		return nil, fmt.Errorf("accel: create oneDNN CPU engine: status %d", int(st))
	}
	return e, nil
})

// dnnlConv computes one 2-D float32 convolution node with oneDNN. Geometry
// is in oneDNN's terms, that of the forward convolution src [n, c, h, w] *
// weights [o, c, kh, kw] -> dst [n, o, oh, ow], whichever of its three
// primitives the node is: gomlx expresses the gradients of a convolution as
// convolutions with swapped axes, input dilation and kernel dilation, which
// the builder recognises and maps back onto the primitives oneDNN (and
// PyTorch through it) runs them with.
type dnnlConv struct {
	kind                   convKind
	n, c, h, w, o, kh, kw  int
	oh, ow                 int
	stride, dilate, pl, pr [2]int      // dilate: oneDNN's (0 = dense)
	flip                   bool        // backward-data weights arrive spatially reversed
	serial                 *sync.Mutex // the backend's: one convolution at a time
	chunkBytes             int         // overrides the package's chunkBytes when > 0
	threads                int
	eng                    C.dnnl_engine_t
	mu                     sync.Mutex
	plans                  map[int]*dnnlPlan // by batch size of one thread's share
}

// dnnlPlan owns the C primitive for one batch size.
type dnnlPlan struct{ c *C.vf_conv }

func (d *dnnlConv) plan(n int) (*dnnlPlan, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.plans[n]; ok {
		return p, nil
	}
	var st C.int
	c := C.vf_conv_new(d.eng, C.int(d.kind), C.long(n), C.long(d.c), C.long(d.h), C.long(d.w),
		C.long(d.o), C.long(d.kh), C.long(d.kw), C.long(d.oh), C.long(d.ow),
		C.long(d.stride[0]), C.long(d.stride[1]), C.long(d.dilate[0]), C.long(d.dilate[1]),
		C.long(d.pl[0]), C.long(d.pl[1]), C.long(d.pr[0]), C.long(d.pr[1]), &st)
	if c == nil {
		return nil, fmt.Errorf("accel: oneDNN convolution %s for src [%d %d %d %d] weights [%d %d %d %d] dst [%d %d %d %d] "+
			"stride %v dilation %v padding %v/%v: status %d", d.kind, n, d.c, d.h, d.w, d.o, d.c, d.kh, d.kw, n, d.o, d.oh, d.ow,
			d.stride, d.dilate, d.pl, d.pr, int(st))
	}
	p := &dnnlPlan{c: c}
	runtime.AddCleanup(p, func(c *C.vf_conv) { C.vf_conv_free(c) }, c)
	if d.plans == nil {
		d.plans = map[int]*dnnlPlan{}
	}
	d.plans[n] = p
	return p, nil
}

// newDNNLConv returns d with its engine, and checks that oneDNN accepts
// the geometry by planning the full batch's share (so that a shape oneDNN
// refuses falls back to im2col at build time, not fails at run time).
func newDNNLConv(d *dnnlConv) (*dnnlConv, error) {
	eng, err := dnnlEngine()
	if err != nil {
		return nil, err
	}
	d.eng = eng
	// Splitting the batch across goroutines, each with a one-thread
	// primitive, measured as fast as oneDNN's own two OpenMP threads on
	// AlexNet and alexnet-mini, and composes with the Go scheduler.
	d.threads = max(1, min(d.threads, d.n))
	if _, err := d.plan((d.n + d.threads - 1) / d.threads); err != nil {
		return nil, err
	}
	return d, nil
}

// chunkBytes bounds the oneDNN-layout copies of one primitive call: the
// batch is fed to oneDNN in chunks of about this many bytes of activations
// per thread, so that its reordered copies of the inputs and outputs stay a
// few MB instead of a second copy of a layer's whole activations (at batch
// 256, AlexNet's conv1 output alone is 198 MB).
const chunkBytes = 16 << 20

// chunk is the number of samples per primitive call.
func (d *dnnlConv) chunk(part int) int {
	round16 := func(c int) int { return (c + 15) / 16 * 16 }
	perSample := 4 * max(round16(d.c)*d.h*d.w, round16(d.o)*d.oh*d.ow)
	limit := chunkBytes
	if d.chunkBytes > 0 {
		limit = d.chunkBytes
	}
	return max(1, min(part, limit/max(1, perSample)))
}

// exec runs the node's convolution (the dnnlConv is the node's data, which
// the patched executor table hands its buffers).
func (d *dnnlConv) exec(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer) (*simplego.Buffer, error) {
	a, err := f32(backend, inputs[0])
	if err != nil {
		return nil, fmt.Errorf("accel ConvGeneral input: %w", err)
	}
	b, err := f32(backend, inputs[1])
	if err != nil {
		return nil, fmt.Errorf("accel ConvGeneral kernel: %w", err)
	}
	out := backend.NewBuffer(mirror(node).shape)
	o, err := f32(backend, out)
	if err != nil {
		return nil, fmt.Errorf("accel ConvGeneral output: %w", err)
	}
	if err := d.compute(a, b, o); err != nil {
		return nil, err
	}
	return out, nil
}

// compute runs the convolution on float32 data a, b (the primitive's two
// inputs, plain layout) into out, splitting the batch across threads, each
// with a single-threaded primitive: like OpenBLAS here, oneDNN's OpenMP
// pool would otherwise compete with gomlx's own parallel ops for cores.
// Each thread feeds its share in chunks (see chunkBytes).
func (d *dnnlConv) compute(a, b, out []float32) error {
	// Each convolution already keeps every thread busy; two at once
	// (gomlx runs a layer's two gradients in parallel) would only share
	// the cores and thrash their caches, and hold twice the scratch.
	d.serial.Lock()
	defer d.serial.Unlock()

	// Scratch comes from C's allocator, not the backend's buffer pool: the
	// pool keeps buffers by size until the next GC, so a training step's
	// peak would count every layer's scratch at once; malloc'd blocks are
	// reused across sizes and large ones go back to the OS on free.
	var scratch []unsafe.Pointer
	defer func() {
		for _, p := range scratch {
			C.free(p)
		}
	}()
	alloc := func(nbytes int) ([]float32, error) {
		n := max(1, (nbytes+3)/4)
		p := C.malloc(C.size_t(4 * n))
		if p == nil {
			return nil, fmt.Errorf("accel: oneDNN convolution %s: out of memory for %d bytes of scratch", d.kind, 4*n)
		}
		scratch = append(scratch, p)
		return unsafe.Slice((*float32)(p), n), nil
	}
	if d.flip {
		// Backward data needs the forward kernel; a reversed one arrives
		// when the builder could not see through gomlx's Reverse.
		k, err := alloc(4 * len(b))
		if err != nil {
			return err
		}
		ks := d.kh * d.kw
		for i := 0; i < len(b); i += ks {
			for j := range ks {
				k[i+j] = b[i+ks-1-j]
			}
		}
		b = k
	}
	parts := max(1, min(d.threads, d.n))
	wsize := d.o * d.c * d.kh * d.kw
	inA, inB := d.c*d.h*d.w, d.o*d.oh*d.ow // src and dst per sample
	type job struct {
		lo, hi, chunk int
		plans         map[int]*dnnlPlan // by chunk size
		t             [4][]float32      // oneDNN-layout copies and scratchpad
		out, tmp      []float32         // backward-weights: this share's sum and one chunk's
	}
	jobs := make([]job, parts)
	for p := range parts {
		j := job{lo: d.n * p / parts, hi: d.n * (p + 1) / parts, plans: map[int]*dnnlPlan{}}
		j.chunk = d.chunk(j.hi - j.lo)
		sizes := []int{j.chunk}
		if r := (j.hi - j.lo) % j.chunk; r != 0 {
			sizes = append(sizes, r)
		}
		var need [4]int
		for _, n := range sizes {
			plan, err := d.plan(n)
			if err != nil {
				return err
			}
			j.plans[n] = plan
			for i := range need {
				need[i] = max(need[i], int(C.vf_conv_bytes(plan.c, C.int(i))))
			}
		}
		for i, n := range need {
			if n > 0 {
				var err error
				if j.t[i], err = alloc(n); err != nil {
					return err
				}
			}
		}
		if d.kind == convBackWeights {
			// Kernel gradients of later chunks and shares are summed into
			// the first's, in a fixed order.
			j.out = out
			var err error
			if p > 0 {
				if j.out, err = alloc(4 * wsize); err != nil {
					return err
				}
			}
			if j.hi-j.lo > j.chunk {
				if j.tmp, err = alloc(4 * wsize); err != nil {
					return err
				}
			}
		}
		jobs[p] = j
	}
	run := func(j *job) error {
		for c0 := j.lo; c0 < j.hi; c0 += j.chunk {
			c1 := min(c0+j.chunk, j.hi)
			var x, y, z []float32
			switch d.kind {
			case convForward:
				x, y, z = a[c0*inA:c1*inA], b, out[c0*inB:c1*inB]
			case convBackData:
				x, y, z = a[c0*inB:c1*inB], b, out[c0*inA:c1*inA]
			case convBackWeights:
				x, y, z = a[c0*inA:c1*inA], b[c0*inB:c1*inB], j.out
				if c0 > j.lo {
					z = j.tmp
				}
			}
			if st := C.vf_conv_run(j.plans[c1-c0].c, fptr(x), fptr(y), fptr(z), fptr(j.t[0]), fptr(j.t[1]), fptr(j.t[2]),
				unsafe.Pointer(fptr(j.t[3]))); st != C.dnnl_success {
				return fmt.Errorf("accel: oneDNN convolution %s: status %d", d.kind, int(st))
			}
			if d.kind == convBackWeights && c0 > j.lo {
				C.vf_add(fptr(j.out), fptr(j.tmp), C.long(wsize))
			}
		}
		return nil
	}
	errs := make([]error, parts)
	splitRange(parts, parts, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			errs[p] = run(&jobs[p])
		}
	})
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	if d.kind == convBackWeights {
		for p := 1; p < parts; p++ {
			C.vf_add(fptr(out), fptr(jobs[p].out), C.long(wsize))
		}
	}
	return nil
}

// fptr is the C view of a float32 slice, nil when empty.
func fptr(s []float32) *C.float {
	if len(s) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&s[0]))
}
