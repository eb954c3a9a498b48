package network

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads best unqualified
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/voxflow/voxflow/numerics/accel"
)

// Objective is what Fit trains: named trainable parameters, named state
// updated by training steps but not by gradients (BatchNorm running
// statistics), and a loss over one batch.
type Objective struct {
	Trainable []ParamSpec
	State     []ParamSpec
	// Loss builds the mean loss of one batch. p holds every trainable and
	// state parameter; batch holds the nodes of the tensors Batch returned.
	// In training mode it also returns the updated state, by name.
	Loss func(p map[string]*Node, batch []*Node, train bool) (loss *Node, state map[string]*Node)
	// Batch assembles the input tensors for the examples idx of a split
	// ("train" or "val"). rng is Fit's seeded generator, for dropout masks
	// and other training-time randomness.
	Batch func(split string, idx []int, rng *rand.Rand) ([]*tensors.Tensor, error)
}

// TrainConfig holds the optimiser and schedule settings shared by every
// training stage.
type TrainConfig struct {
	Epochs       int
	BatchSize    int
	LR           float64
	WeightDecay  float64 // decoupled (AdamW), applied to every parameter as torch.optim.AdamW does
	WarmupEpochs float64 // linear warm-up from 0, then cosine decay to 0
	Patience     int     // stop after this many epochs without a better validation loss; 0 = never
	Seed         uint64
	Beta1, Beta2 float64 // 0 means torch's defaults 0.9, 0.999
	Eps          float64 // 0 means 1e-8
	// ValBatchSize is the batch size for validation (0 = BatchSize).
	ValBatchSize int
	// LRScale multiplies the learning rate of the named trainable
	// parameters (absent names: 1), e.g. a smaller rate for a pretrained
	// backbone than for a freshly initialised head.
	LRScale map[string]float64
}

// EpochStats is one point of the training curve.
type EpochStats struct {
	Epoch        int     `json:"epoch"`
	TrainLoss    float64 `json:"train_loss"`
	ValLoss      float64 `json:"val_loss"`
	LR           float64 `json:"lr"`
	ImagesPerSec float64 `json:"images_per_s"`
	Seconds      float64 `json:"seconds"`
}

// FitResult is what Fit returns: the best checkpoint and the curve.
type FitResult struct {
	Best      Weights // trainable + state at the best validation loss
	BestEpoch int     // 1-based; 0 when no epoch ran (Best = init)
	BestVal   float64
	Curve     []EpochStats
	// ImagesPerSec is the mean training throughput over all epochs.
	ImagesPerSec float64
	Stopped      string // why training ended: "epochs", "patience"
}

// Reporter receives progress from Fit; Phase/Done/Total mirror
// stages.Update without importing it.
type Reporter func(phase string, done, total float64, unit, message string)

// LRAt returns the learning rate at step (0-based) of total steps, with
// linear warm-up over warm steps and cosine decay to 0 afterwards.
func LRAt(base float64, step, warm, total int) float64 {
	if warm > 0 && step < warm {
		return base * float64(step+1) / float64(warm)
	}
	if total <= warm {
		return base
	}
	prog := float64(step-warm) / float64(total-warm)
	return base * 0.5 * (1 + math.Cos(math.Pi*prog))
}

// Fit trains obj from init on ntrain training and nval validation examples
// with AdamW, keeping the weights of the epoch with the lowest validation
// loss. report may be nil. Training batches are fixed-size (the last partial batch of each
// shuffled epoch is dropped), so the step graph compiles once. It is
// deterministic for a fixed seed on one backend. Between steps it may run
// the garbage collector to hold the heap near its live size (heapTrimmer);
// a caller that drops init after the call lets Fit free it before the first
// step.
func Fit(ctx context.Context, backend backends.Backend, obj Objective, init Weights, ntrain, nval int,
	cfg TrainConfig, report Reporter, log io.Writer) (*FitResult, error) {
	if report == nil {
		report = func(string, float64, float64, string, string) {}
	}
	if cfg.Beta1 == 0 {
		cfg.Beta1 = 0.9
	}
	if cfg.Beta2 == 0 {
		cfg.Beta2 = 0.999
	}
	if cfg.Eps == 0 {
		cfg.Eps = 1e-8
	}
	if cfg.BatchSize > ntrain {
		fmt.Fprintf(log, "warning: batch_size %d > %d training examples; using %d\n", cfg.BatchSize, ntrain, ntrain)
		cfg.BatchSize = ntrain
	}
	if cfg.BatchSize < 2 || nval < 1 {
		return nil, fmt.Errorf("fit: need batch_size >= 2 and validation examples, have batch %d, %d train, %d val", cfg.BatchSize, ntrain, nval)
	}
	if cfg.ValBatchSize <= 0 {
		cfg.ValBatchSize = cfg.BatchSize
	}
	if err := CheckWeights(append(append([]ParamSpec{}, obj.Trainable...), obj.State...), init); err != nil {
		return nil, fmt.Errorf("fit: %w", err)
	}
	nt, ns := len(obj.Trainable), len(obj.State)
	names := func(list []ParamSpec) []string {
		out := make([]string, len(list))
		for i, p := range list {
			out[i] = p.Name
		}
		return out
	}
	tNames, sNames := names(obj.Trainable), names(obj.State)

	// The step graph computes loss and gradients only; AdamW runs on the
	// host in one fused pass per parameter (accel.AdamW), which reads and
	// writes each optimiser value once instead of the dozen element-wise
	// graph ops (each a full pass over 61M values for AlexNet) it would
	// take in gomlx.
	// Inputs: params, state, batch...; outputs: grads, state, loss.
	stepFn := func(in []*Node) []*Node {
		p := map[string]*Node{}
		for i, n := range tNames {
			p[n] = in[i]
		}
		for i, n := range sNames {
			p[n] = in[nt+i]
		}
		loss, state := obj.Loss(p, in[nt+ns:], true)
		out := Gradient(loss, in[:nt]...)
		for _, n := range sNames {
			out = append(out, state[n])
		}
		return append(out, loss)
	}
	evalFn := func(in []*Node) *Node {
		p := map[string]*Node{}
		for i, n := range tNames {
			p[n] = in[i]
		}
		for i, n := range sNames {
			p[n] = in[nt+i]
		}
		loss, _ := obj.Loss(p, in[nt+ns:], false)
		return loss
	}
	step, err := NewExec(backend, stepFn)
	if err != nil {
		return nil, fmt.Errorf("fit: build train step: %w", err)
	}
	defer step.Finalize()
	eval, err := NewExec(backend, evalFn)
	if err != nil {
		return nil, fmt.Errorf("fit: build eval step: %w", err)
	}
	defer eval.Finalize()

	// Parameters live in backend buffers shared with the host where the
	// backend allows (the go backend does), so the host optimiser updates
	// them in place with no transfer; elsewhere MutableFlatData re-uploads.
	// Either way they are copies: init is never aliased.
	params := make([]*tensors.Tensor, nt)
	ms := make([][]float32, nt)
	vs := make([][]float32, nt)
	state := make([]*tensors.Tensor, ns)
	for i, p := range obj.Trainable {
		var err error
		if params[i], err = backendTensor(backend, init[p.Name].Data, p.Shape); err != nil {
			return nil, fmt.Errorf("fit: parameter %s to backend: %w", p.Name, err)
		}
		ms[i] = make([]float32, numel(p.Shape))
		vs[i] = make([]float32, numel(p.Shape))
	}
	for i, p := range obj.State {
		state[i] = tensors.FromFlatDataAndDimensions(init[p.Name].Data, p.Shape...)
	}
	// Nothing below reads init: a caller that let go of it has it
	// collected here, before the first step.
	var trim heapTrimmer
	trim.collect()
	// snapshot copies the current values into dst (reusing its buffers, so
	// a new best epoch costs no allocation) or into a new Weights when dst
	// is nil. With final set, training is over and the Adam moments are
	// dead: a trainable parameter without a buffer in dst takes over its
	// first moment's storage, so that the checkpoint after the last epoch
	// adds nothing to peak memory.
	snapshot := func(dst Weights, final bool) (Weights, error) {
		if dst == nil {
			dst = Weights{}
		}
		save := func(p ParamSpec, t *tensors.Tensor, reuse []float32) error {
			buf, ok := dst[p.Name]
			if !ok {
				if reuse != nil {
					buf = Tensor{Shape: append([]int(nil), p.Shape...), Data: reuse}
				} else {
					buf = NewTensor(p.Shape...)
				}
				dst[p.Name] = buf
			}
			return tensors.ConstFlatData(t, func(flat []float32) { copy(buf.Data, flat) })
		}
		for i, p := range obj.Trainable {
			var reuse []float32
			if final {
				reuse, ms[i] = ms[i], nil
			}
			if err := save(p, params[i], reuse); err != nil {
				return nil, fmt.Errorf("copy %s: %w", p.Name, err)
			}
		}
		for i, p := range obj.State {
			if err := save(p, state[i], nil); err != nil {
				return nil, fmt.Errorf("copy %s: %w", p.Name, err)
			}
		}
		return dst, nil
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x666974))
	valLoss := func() (float64, error) {
		var sum float64
		var count int
		for lo := 0; lo < nval; lo += cfg.ValBatchSize {
			hi := min(lo+cfg.ValBatchSize, nval)
			if hi-lo < 2 && lo > 0 {
				// A trailing batch of one has no negatives and no batch
				// statistics; it is left out of the mean.
				break
			}
			idx := make([]int, hi-lo)
			for i := range idx {
				idx[i] = lo + i
			}
			batch, err := obj.Batch("val", idx, rng)
			if err != nil {
				return 0, err
			}
			args := execArgs(params, state, batch)
			out, err := eval.Exec(args...)
			if err != nil {
				return 0, fmt.Errorf("validation step: %w", err)
			}
			sum += float64(tensors.ToScalar[float32](out[0])) * float64(hi-lo)
			count += hi - lo
			for _, t := range batch {
				t.FinalizeAll()
			}
			out[0].FinalizeAll()
		}
		return sum / float64(count), nil
	}

	res := &FitResult{BestVal: math.Inf(1), Stopped: "epochs"}
	if cfg.Epochs == 0 {
		v, err := valLoss()
		if err != nil {
			return nil, fmt.Errorf("fit: %w", err)
		}
		res.BestVal = v
		if res.Best, err = snapshot(nil, true); err != nil {
			return nil, fmt.Errorf("fit: checkpoint: %w", err)
		}
		return res, nil
	}
	stepsPer := ntrain / cfg.BatchSize
	total := stepsPer * cfg.Epochs
	warm := int(math.Round(cfg.WarmupEpochs * float64(stepsPer)))
	var trainSecs float64
	var trainImgs int
	t := 0
	sinceBest := 0
	for epoch := 1; epoch <= cfg.Epochs; epoch++ {
		start := time.Now()
		perm := rng.Perm(ntrain)
		var lossSum float64
		var lr float64
		for s := range stepsPer {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			lr = LRAt(cfg.LR, t, warm, total)
			t++
			idx := perm[s*cfg.BatchSize : (s+1)*cfg.BatchSize]
			batch, err := obj.Batch("train", idx, rng)
			if err != nil {
				return nil, err
			}
			args := execArgs(params, state, batch)
			restore := trim.bound()
			out, err := step.Exec(args...)
			restore()
			if err != nil {
				return nil, fmt.Errorf("fit: train step %d: %w", t, err)
			}
			for _, x := range batch {
				x.FinalizeAll()
			}
			hp := adamHyper{lr: lr, b1: cfg.Beta1, b2: cfg.Beta2, eps: cfg.Eps, wd: cfg.WeightDecay, t: t}
			for i := range nt {
				hp.lr = lr
				if sc, ok := cfg.LRScale[tNames[i]]; ok {
					hp.lr = lr * sc
				}
				if err := adamW(params[i], out[i], ms[i], vs[i], hp); err != nil {
					return nil, fmt.Errorf("fit: update %s: %w", tNames[i], err)
				}
				out[i].FinalizeAll()
			}
			for i := range ns {
				state[i].FinalizeAll()
				state[i] = out[nt+i]
			}
			l := float64(tensors.ToScalar[float32](out[nt+ns]))
			out[nt+ns].FinalizeAll()
			if math.IsNaN(l) || math.IsInf(l, 0) {
				return nil, fmt.Errorf("fit: training loss is %v at epoch %d step %d (lower lr?)", l, epoch, s+1)
			}
			lossSum += l
			trim.step()
			done := float64((s + 1) * cfg.BatchSize)
			el := time.Since(start).Seconds()
			report(fmt.Sprintf("epoch %d/%d", epoch, cfg.Epochs), done, float64(stepsPer*cfg.BatchSize), "img",
				fmt.Sprintf("step %d/%d loss %.4f %.1f img/s", s+1, stepsPer, l, done/el))
		}
		secs := time.Since(start).Seconds()
		trainSecs += secs
		trainImgs += stepsPer * cfg.BatchSize
		v, err := valLoss()
		if err != nil {
			return nil, fmt.Errorf("fit: epoch %d: %w", epoch, err)
		}
		st := EpochStats{Epoch: epoch, TrainLoss: lossSum / float64(stepsPer), ValLoss: v, LR: lr,
			ImagesPerSec: float64(stepsPer*cfg.BatchSize) / secs, Seconds: secs}
		res.Curve = append(res.Curve, st)
		fmt.Fprintf(log, "epoch %d/%d train_loss %.5f val_loss %.5f lr %.3g %.1f img/s\n", epoch, cfg.Epochs, st.TrainLoss, v, lr, st.ImagesPerSec)
		if v < res.BestVal {
			res.BestVal, res.BestEpoch, sinceBest = v, epoch, 0
			if res.Best, err = snapshot(res.Best, epoch == cfg.Epochs); err != nil {
				return nil, fmt.Errorf("fit: checkpoint: %w", err)
			}
		} else {
			sinceBest++
			if cfg.Patience > 0 && sinceBest >= cfg.Patience {
				fmt.Fprintf(log, "early stop after epoch %d: no better validation loss for %d epochs (best %.5f at epoch %d)\n",
					epoch, sinceBest, res.BestVal, res.BestEpoch)
				res.Stopped = "patience"
				break
			}
		}
	}
	if res.Best == nil {
		// Every validation loss was NaN; keep the last weights rather than none.
		var err error
		if res.Best, err = snapshot(nil, true); err != nil {
			return nil, fmt.Errorf("fit: checkpoint: %w", err)
		}
	}
	if trainSecs > 0 {
		res.ImagesPerSec = float64(trainImgs) / trainSecs
	}
	return res, nil
}

// adamHyper are one AdamW step's settings; t is the 1-based step.
type adamHyper struct {
	lr, b1, b2, eps, wd float64
	t                   int
}

// adamW applies one torch.optim.AdamW step to param in place, with first
// and second moments m and v (host slices), through accel's fused,
// vectorised update.
func adamW(param, grad *tensors.Tensor, m, v []float32, h adamHyper) error {
	opt := accel.AdamW{LR: h.lr, Beta1: h.b1, Beta2: h.b2, Eps: h.eps, WeightDecay: h.wd}
	var gerr error
	err := tensors.ConstFlatData(grad, func(g []float32) {
		gerr = tensors.MutableFlatData(param, func(p []float32) {
			gerr = opt.Step(h.t, p, g, m, v)
		})
	})
	if err != nil {
		return err
	}
	return gerr
}

// execArgs lines up a step's inputs as the compiled graph takes them:
// trainable parameters, then state, then the batch.
func execArgs(params, state, batch []*tensors.Tensor) []any {
	args := make([]any, 0, len(params)+len(state)+len(batch))
	for _, group := range [][]*tensors.Tensor{params, state, batch} {
		for _, t := range group {
			args = append(args, t)
		}
	}
	return args
}
