package plugins

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/zeebo/blake3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/voxflow/voxflow/internal/procgroup"
	"github.com/voxflow/voxflow/plugins/pluginpb"
	"github.com/voxflow/voxflow/stages"
)

const (
	// startTimeout bounds the handshake of a plugin that never answers.
	startTimeout = 30 * time.Second
	// exitWait is how long a failed run waits for the plugin process to be
	// reaped, so that the report can name its exit status.
	exitWait = 3 * time.Second
	// pluginGrace is how long the processes a plugin leaves behind get
	// between SIGTERM and SIGKILL once it exits; well under go-plugin's two
	// seconds, so that its supervisor ends by itself.
	pluginGrace = time.Second
)

// Client is one running plugin process. Its methods are safe for concurrent
// use; stages from Stages may run concurrently in the one process.
type Client struct {
	path   string
	digest string
	cmd    *exec.Cmd
	pc     *plugin.Client
	rpc    pluginpb.StagesClient
	descs  []stages.Description
	stderr *stderrTail

	closeOnce sync.Once
}

// Open starts the plugin executable at path with args, checks the
// handshake and asks for its stage kinds. ctx bounds the start-up only; the
// process lives until Close. A plugin built for another protocol version
// fails here with both versions named.
//
// The process runs under a supervisor in a process group of its own
// (internal/procgroup): when the host dies, even by SIGKILL, or the plugin
// exits, the supervisor kills the plugin and every process it started, so
// neither outlives the host. The plugin also exits by itself when it sees
// its parent gone.
func Open(ctx context.Context, path string, args ...string) (*Client, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", path, err)
	}
	digest, err := FileDigest(abs)
	if err != nil {
		return nil, err
	}
	c := &Client{path: abs, digest: digest, stderr: newStderrTail()}
	c.cmd = exec.Command(abs, args...)
	if err := procgroup.Wrap(c.cmd, procgroup.Options{Grace: pluginGrace}); err != nil {
		return nil, fmt.Errorf("plugin %s: %w", abs, err)
	}
	c.pc = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  HandshakeConfig(),
		Plugins:          plugin.PluginSet{PluginName: &GRPCPlugin{}},
		Cmd:              c.cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		StartTimeout:     startTimeout,
		Stderr:           c.stderr.source(),
		SyncStderr:       c.stderr.source(),
		SyncStdout:       c.stderr.source(),
		Logger:           hclog.NewNullLogger(),
	})

	type started struct {
		rpc plugin.ClientProtocol
		err error
	}
	ch := make(chan started, 1)
	go func() {
		// Pdeathsig fires when the thread that forked the child exits, not
		// the process. Go only retires threads whose goroutine exits while
		// locked, so forking from a goroutine we lock and unlock ourselves
		// keeps the signal tied to the host's life (the supervisor also
		// checks that its parent really changed).
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		rpc, err := c.pc.Client()
		ch <- started{rpc, err}
	}()
	var st started
	select {
	case st = <-ch:
	case <-ctx.Done():
		// go-plugin's Start cannot be interrupted and Kill waits for it, so
		// the kill happens once Start gives up (startTimeout at most);
		// Pdeathsig covers the host exiting meanwhile.
		go func() {
			<-ch
			c.kill()
		}()
		// Not c.fault: the process fields are still being written by Start.
		return nil, &FaultError{Plugin: c.path, Op: "start", Err: ctx.Err(), Stderr: c.stderr.tail()}
	}
	if st.err != nil {
		return nil, c.abort("start", startError(st.err))
	}
	raw, err := st.rpc.Dispense(PluginName)
	if err != nil {
		return nil, c.abort("start", fmt.Errorf("dispense %q: %w", PluginName, err))
	}
	c.rpc = raw.(pluginpb.StagesClient)
	resp, err := c.rpc.Describe(ctx, &pluginpb.DescribeRequest{})
	if err != nil {
		return nil, c.abort("describe", err)
	}
	for _, d := range resp.GetStages() {
		sd, err := descriptionFromPB(d)
		if err != nil {
			c.kill()
			return nil, fmt.Errorf("plugin %s: describe: %w", abs, err)
		}
		c.descs = append(c.descs, sd)
	}
	return c, nil
}

// abort kills a plugin that failed to start and reports why, with its
// whole stderr (killing drains it). Only an exit that came before our kill
// is reported: "signal: killed" would blame the plugin for our doing.
func (c *Client) abort(op string, cause error) error {
	exited := c.pc.Exited()
	c.kill()
	f := c.fault(op, "", cause)
	if !exited {
		f.Exit = ""
	}
	return f
}

// startError rewords go-plugin's handshake failures for someone who only
// knows voxflow.
func startError(err error) error {
	// go-plugin explains a failed handshake with a dozen lines of guesses
	// (architecture, libraries, permissions); the stderr tail that follows
	// in the FaultError usually names the real reason.
	if first, _, _ := strings.Cut(err.Error(), "\n"); strings.Contains(first, "Unrecognized remote plugin message") {
		return errors.New("it did not answer the plugin handshake: it exited, or wrote something else to stdout first (a voxflow plugin must call plugins.Serve before printing anything)")
	}
	if strings.Contains(strings.ToLower(err.Error()), "incompatible api version") {
		return fmt.Errorf("plugin speaks another voxflow plugin protocol than this voxflow (protocol %d); rebuild it against this voxflow's plugins package: %w", ProtocolVersion, err)
	}
	return err
}

// Describe starts the plugin at path, returns its kinds and the BLAKE3
// digest of its binary, and stops it.
func Describe(ctx context.Context, path string) ([]stages.Description, string, error) {
	c, err := Open(ctx, path)
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	return c.Descriptions(), c.Digest(), nil
}

// FileDigest returns the hex BLAKE3 digest of the file at path: a plugin's
// implementation digest, part of the cache key of every instance it runs.
func FileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("digest plugin binary: %w", err)
	}
	defer f.Close()
	h := blake3.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("digest plugin binary %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Path returns the plugin binary's absolute path.
func (c *Client) Path() string { return c.path }

// Digest returns the hex BLAKE3 digest of the plugin binary, taken when it
// was started.
func (c *Client) Digest() string { return c.digest }

// Pid returns the id of the plugin's process group, which is its
// supervisor's pid: SIGTERM to it stops the plugin and everything the plugin
// started; SIGKILL kills the plugin with it (a parent-death signal).
func (c *Client) Pid() int { return c.cmd.Process.Pid }

// Descriptions returns what the plugin's kinds declare, in its order.
func (c *Client) Descriptions() []stages.Description {
	return append([]stages.Description(nil), c.descs...)
}

// Stages returns one stages.Stage per kind the plugin provides; their Run
// runs the instance in the plugin process.
func (c *Client) Stages() []stages.Stage {
	out := make([]stages.Stage, len(c.descs))
	for i, d := range c.descs {
		out[i] = &remoteStage{c: c, desc: d}
	}
	return out
}

// Exited reports whether the plugin process has ended.
func (c *Client) Exited() bool { return c.pc.Exited() }

// Close stops the plugin process: it asks it to exit and kills it after two
// seconds. It returns once no process the plugin started is left. Runs in
// flight fail. Close is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(c.kill)
	return nil
}

// kill stops the plugin through go-plugin, which SIGKILLs the supervisor
// when the plugin does not exit within two seconds; the supervisor's group
// is then killed here, so that no process the plugin started survives it.
func (c *Client) kill() {
	c.pc.Kill()
	if c.cmd.Process == nil {
		return
	}
	deadline := time.Now().Add(exitWait)
	for !c.pc.Exited() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !c.pc.Exited() || !procgroup.Supervised(c.cmd.ProcessState) {
		_ = procgroup.KillGroup(c.cmd.Process.Pid, exitWait)
	}
}

// remoteStage is a stage kind served by a plugin process.
type remoteStage struct {
	c    *Client
	desc stages.Description
}

// Describe returns the plugin's description of the kind.
func (s *remoteStage) Describe() stages.Description { return s.desc }

// Run runs one instance in the plugin process.
func (s *remoteStage) Run(ctx context.Context, req *stages.Request) error {
	in, err := requestToPB(s.desc.Kind, req)
	if err != nil {
		return fmt.Errorf("plugin %s: %w", s.c.path, err)
	}
	progress := req.Progress
	if progress == nil {
		progress = stages.NopProgress{}
	}
	var log *syncWriter
	if req.Log != nil {
		log = &syncWriter{w: req.Log}
	} else {
		log = &syncWriter{w: io.Discard}
	}
	s.c.stderr.attach(log)
	defer s.c.stderr.detach(log)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := s.c.rpc.Run(ctx, in)
	if err != nil {
		return s.c.fault("run "+s.desc.Kind, req.Instance, s.cause(ctx, err))
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("plugin closed the run stream without a result")
			}
			return s.c.fault("run "+s.desc.Kind, req.Instance, s.cause(ctx, err))
		}
		switch e := ev.GetEvent().(type) {
		case *pluginpb.RunEvent_Progress:
			p := e.Progress
			progress.Update(stages.Update{
				Phase: p.GetPhase(), Done: p.GetDone(), Total: p.GetTotal(),
				Unit: p.GetUnit(), Rate: p.GetRate(), Message: p.GetMessage(),
			})
		case *pluginpb.RunEvent_Log:
			_, _ = log.Write(e.Log)
		case *pluginpb.RunEvent_Result:
			if msg := e.Result.GetError(); msg != "" {
				return &StageError{Plugin: s.c.path, Kind: s.desc.Kind, Instance: req.Instance, Message: shortError(msg, log)}
			}
			return nil
		}
	}
}

// cause prefers the caller's cancellation over the transport error it
// produced, and otherwise waits briefly for a dying plugin to be reaped so
// that the report can say how it ended.
func (s *remoteStage) cause(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// gRPC sends the deadline along, and the plugin's side may give up a
	// moment before ours does; report it as the caller's timeout.
	if c := status.Code(err); c == codes.DeadlineExceeded || c == codes.Canceled {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	deadline := time.Now().Add(exitWait)
	for !s.c.pc.Exited() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// maxErrorBytes bounds a plugin's error text as voxflow keeps and shows it
// (the index's error column, the terminal): a stage may return megabytes,
// a whole traceback or a dump of its input. The full text goes to the
// stage's log.
const maxErrorBytes = 4 << 10

// panicPrefix starts the error of a stage that panicked in a Go plugin (see
// runRecovered); the stack trace follows on the next lines.
const panicPrefix = "stage panicked: "

// shortError returns a stage's error text as voxflow reports it: a panic's
// first line without its stack, and at most maxErrorBytes of any error,
// with a note that the whole text is in the stage's log, where it is
// written.
func shortError(msg string, log io.Writer) string {
	short := msg
	if first, _, multi := strings.Cut(msg, "\n"); multi && strings.HasPrefix(msg, panicPrefix) {
		short = first + " (stack trace in the stage's log)"
	}
	if len(short) > maxErrorBytes {
		head := runePrefix(short, maxErrorBytes)
		short = fmt.Sprintf("%s... (%d more bytes; the whole error is in the stage's log)", head, len(msg)-len(head))
	}
	if short != msg {
		fmt.Fprintf(log, "stage error (as the plugin returned it):\n%s\n", strings.TrimRight(msg, "\n"))
	}
	return short
}

// fault builds a FaultError for op, with the process's state and stderr.
func (c *Client) fault(op, instance string, cause error) *FaultError {
	// During a run every stderr line is copied into the instance's log
	// (see stderrTail), so the error need not repeat them.
	f := &FaultError{Plugin: c.path, Op: op, Instance: instance, Err: cause, Stderr: c.stderr.tail(), InLog: instance != ""}
	if c.cmd.Process != nil {
		f.Pid = c.cmd.Process.Pid
	}
	if c.pc.Exited() && c.cmd.ProcessState != nil {
		f.Exit = c.cmd.ProcessState.String()
	}
	return f
}

// FaultError is a plugin failing as a process: it did not start, crashed,
// exited or was killed, broke the protocol, or the caller gave up on it
// (Err is then the context's error). It carries the tail of the plugin's
// stderr, where the reason usually is.
type FaultError struct {
	Plugin   string   // binary path
	Pid      int      // 0 when it never started
	Op       string   // "start", "describe", "run <kind>"
	Instance string   // stage instance, for runs
	Exit     string   // e.g. "exit status 2", "signal: killed"; "" while running
	Err      error    // the cause
	Stderr   []string // last lines of the plugin's stderr
	// InLog is set when the stderr lines are in the instance's log too:
	// Error then names only the line that explains the fault.
	InLog bool
}

// Error names the plugin, what it was doing, how it ended, and its stderr.
func (e *FaultError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plugin %s", filepath.Base(e.Plugin))
	if e.Pid != 0 {
		fmt.Fprintf(&b, " (pid %d)", e.Pid)
	}
	b.WriteString(": " + e.Op)
	if e.Instance != "" {
		b.WriteString(" " + e.Instance)
	}
	switch {
	case e.Exit != "":
		fmt.Fprintf(&b, ": plugin process ended (%s)", e.Exit)
	case errors.Is(e.Err, context.DeadlineExceeded):
		b.WriteString(": timed out")
	case errors.Is(e.Err, context.Canceled):
		b.WriteString(": cancelled")
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	if e.InLog {
		if l := keyLine(e.Stderr); l != "" {
			fmt.Fprintf(&b, "; plugin stderr: %s (all of it is in the stage's log)", l)
		}
		return b.String()
	}
	if len(e.Stderr) == 0 {
		b.WriteString("\nplugin stderr: (empty)")
	} else {
		fmt.Fprintf(&b, "\nplugin stderr (last %d lines):\n  %s", len(e.Stderr), strings.Join(e.Stderr, "\n  "))
	}
	return b.String()
}

// keyLine picks the stderr line that explains a fault in one line: a Go
// panic's or fatal error's first line, else the last non-blank line,
// bounded to a readable length.
func keyLine(lines []string) string {
	pick := ""
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			pick = l
			break
		}
		if pick == "" {
			pick = l
		}
	}
	if len(pick) > 500 {
		pick = runePrefix(pick, 500) + "..."
	}
	return pick
}

// runePrefix is s cut to at most n bytes (n < len(s)) without splitting a
// UTF-8 sequence.
func runePrefix(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Unwrap returns the cause.
func (e *FaultError) Unwrap() error { return e.Err }

// StageError is a stage in a plugin returning an error: the process is fine.
type StageError struct {
	Plugin   string
	Kind     string
	Instance string
	Message  string // the stage's error text
}

// Error names the plugin, kind and instance.
func (e *StageError) Error() string {
	return fmt.Sprintf("plugin %s: %s %s: %s", filepath.Base(e.Plugin), e.Kind, e.Instance, e.Message)
}
