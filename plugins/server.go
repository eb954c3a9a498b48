package plugins

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/voxflow/voxflow/plugins/pluginpb"
	"github.com/voxflow/voxflow/stages"
)

// parentPollInterval is how often a plugin checks that its host is alive.
const parentPollInterval = 250 * time.Millisecond

// Serve serves ss as a voxflow plugin and does not return while the host
// keeps the plugin running. Call it from a plugin's main:
//
//	func main() { plugins.Serve(pca.New()) }
//
// Run by hand (not by a voxflow host) it prints a note and exits 1. Two
// stages of one kind are a programming error: Serve reports it on stderr,
// where the host shows it, and exits 1.
func Serve(ss ...stages.Stage) {
	if _, err := newServer(ss); err != nil {
		fmt.Fprintf(os.Stderr, "voxflow plugin: %v\n", err)
		os.Exit(1)
	}
	// The host kills plugins through Pdeathsig as well, but Pdeathsig is
	// Linux-only and tied to the forking thread; watching our parent makes
	// "plugins never outlive voxflow" hold regardless.
	go exitWhenOrphaned(os.Getppid())
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: HandshakeConfig(),
		Plugins:         plugin.PluginSet{PluginName: &GRPCPlugin{Stages: ss}},
		GRPCServer:      plugin.DefaultGRPCServer,
		// go-plugin logs at trace level by default; only errors are worth
		// landing in the stderr tail the host shows on failure.
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Error, Output: os.Stderr}),
	})
}

func exitWhenOrphaned(parent int) {
	for range time.Tick(parentPollInterval) {
		if os.Getppid() != parent {
			fmt.Fprintf(os.Stderr, "voxflow plugin: host process %d is gone; exiting\n", parent)
			os.Exit(3)
		}
	}
}

// server adapts stages.Stage implementations to the gRPC service.
type server struct {
	pluginpb.UnimplementedStagesServer
	descs []*pluginpb.Description
	kinds map[string]stages.Stage
}

func newServer(ss []stages.Stage) (*server, error) {
	s := &server{kinds: make(map[string]stages.Stage, len(ss))}
	for _, st := range ss {
		d := st.Describe()
		if d.Kind == "" {
			return nil, fmt.Errorf("stage %T describes itself with an empty kind", st)
		}
		if _, dup := s.kinds[d.Kind]; dup {
			return nil, fmt.Errorf("two stages of kind %q; want one per kind", d.Kind)
		}
		pd, err := descriptionToPB(d)
		if err != nil {
			return nil, err
		}
		s.kinds[d.Kind] = st
		s.descs = append(s.descs, pd)
	}
	return s, nil
}

// Describe lists the kinds served.
func (s *server) Describe(context.Context, *pluginpb.DescribeRequest) (*pluginpb.DescribeResponse, error) {
	return &pluginpb.DescribeResponse{Stages: s.descs}, nil
}

// Run runs one stage instance, streaming its progress and log back.
func (s *server) Run(in *pluginpb.RunRequest, stream pluginpb.Stages_RunServer) error {
	st, ok := s.kinds[in.GetKind()]
	if !ok {
		return status.Errorf(codes.NotFound, "this plugin has no stage kind %q", in.GetKind())
	}
	req, err := requestFromPB(in)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	snd := &sender{stream: stream}
	// The stage may keep goroutines that log after Run returns; a send on a
	// finished stream is undefined in gRPC, so the sender is closed first.
	defer snd.close()
	req.Progress = stages.ProgressFunc(func(u stages.Update) {
		_ = snd.send(&pluginpb.RunEvent{Event: &pluginpb.RunEvent_Progress{Progress: &pluginpb.Progress{
			Phase: u.Phase, Done: u.Done, Total: u.Total, Unit: u.Unit, Rate: u.Rate, Message: u.Message,
		}}})
	})
	req.Log = logWriter{snd}

	runErr := runRecovered(stream.Context(), st, req)
	msg := ""
	if runErr != nil {
		msg = runErr.Error()
		if msg == "" {
			msg = fmt.Sprintf("stage %s failed with an empty error (%T)", in.GetKind(), runErr)
		}
	}
	return snd.send(&pluginpb.RunEvent{Event: &pluginpb.RunEvent_Result{Result: &pluginpb.Result{Error: msg}}})
}

// runRecovered turns a panic in the stage's own goroutine into an error, so
// that one bad instance does not take down a plugin serving others. Panics
// in goroutines the stage starts still crash the process; the host reports
// those with the stderr tail.
func runRecovered(ctx context.Context, st stages.Stage, req *stages.Request) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf(panicPrefix+"%v\n%s", r, debug.Stack())
		}
	}()
	return st.Run(ctx, req)
}

// sender serialises sends on one run stream: gRPC streams are not safe for
// concurrent SendMsg, and stages log and report progress from any goroutine.
type sender struct {
	mu     sync.Mutex
	stream pluginpb.Stages_RunServer
	closed bool
}

var errRunOver = errors.New("stage run is over; log and progress after Run returns are dropped")

func (s *sender) send(ev *pluginpb.RunEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errRunOver
	}
	return s.stream.Send(ev)
}

func (s *sender) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

type logWriter struct{ s *sender }

func (w logWriter) Write(p []byte) (int, error) {
	// Copy: the event is marshalled after Write returns only if Send
	// buffers, and callers may reuse p.
	b := append([]byte(nil), p...)
	if err := w.s.send(&pluginpb.RunEvent{Event: &pluginpb.RunEvent_Log{Log: b}}); err != nil {
		return 0, err
	}
	return len(p), nil
}
