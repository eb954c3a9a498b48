package procgroup

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"syscall"
	"time"
)

// init turns this process into a supervisor when Wrap started it, before
// any other package's init or main runs: the supervisor must work in every
// binary that links this package (voxflow, plugin binaries, test binaries),
// and the Go runtime keeps init on the main thread, which the command's
// parent-death signal is tied to.
func init() {
	if len(os.Args) > 0 && os.Args[0] == marker {
		os.Exit(supervise(os.Args[1:]))
	}
}

const (
	// pollInterval is how often a running supervisor checks its parent, in
	// case the parent-death signal was lost.
	pollInterval = 200 * time.Millisecond
	// stopPoll is how often a stopping supervisor looks for members left.
	stopPoll = 10 * time.Millisecond
	// exitStuck is the supervisor's status when members survived SIGKILL
	// for killTimeout: the command's outputs cannot be trusted.
	exitStuck = 125
)

// config is the supervisor's command line, as Wrap writes it.
type config struct {
	ppid    int
	grace   time.Duration
	files   int
	holdDir bool
	ro, rw  []string // see Options.ReadOnly, Options.Writable
	path    string
	argv    []string
}

func parseConfig(args []string) (config, error) {
	var c config
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			if len(args) < i+3 {
				return c, fmt.Errorf("want a path and argv after --, have %q", args[i+1:])
			}
			c.path, c.argv = args[i+1], args[i+2:]
			if c.ppid <= 0 {
				return c, fmt.Errorf("missing -ppid")
			}
			return c, nil
		}
		if a == "-holddir" {
			c.holdDir = true
			continue
		}
		if i+1 >= len(args) {
			return c, fmt.Errorf("flag %s wants a value", a)
		}
		v := args[i+1]
		i++
		var err error
		switch a {
		case "-ppid":
			c.ppid, err = strconv.Atoi(v)
		case "-grace":
			c.grace, err = time.ParseDuration(v)
		case "-files":
			c.files, err = strconv.Atoi(v)
		case "-ro":
			c.ro = append(c.ro, v)
		case "-rw":
			c.rw = append(c.rw, v)
		default:
			err = fmt.Errorf("unknown flag")
		}
		if err != nil {
			return c, fmt.Errorf("flag %s %q: %v", a, v, err)
		}
	}
	return c, fmt.Errorf("missing -- before the command")
}

// supervise runs the command of args in this process's group and returns
// the exit code to leave with (it exits by the command's signal itself).
func supervise(args []string) int {
	c, err := parseConfig(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "voxflow supervisor: %v\n", err)
		return 2
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, pdeathSignal, syscall.SIGCHLD)
	if os.Getppid() != c.ppid {
		// The caller died before we could watch it; nothing started yet.
		return 1
	}
	// PR_SET_CHILD_SUBREAPER: orphaned descendants become our children, so
	// escaping the group does not escape the kill, and zombies get reaped.
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, 36, 1, 0); errno != 0 {
		fmt.Fprintf(os.Stderr, "voxflow supervisor: PR_SET_CHILD_SUBREAPER: %v (processes that leave the group may survive)\n", errno)
	}
	if c.holdDir {
		// Held until we exit, that is until the group is empty.
		if _, err := HoldDir("."); err != nil {
			fmt.Fprintf(os.Stderr, "voxflow supervisor: hold the working directory: %v\n", err)
			return 126
		}
	}
	if len(c.ro) > 0 {
		// init runs on the main thread, locked to it, and ForkExec below
		// forks from this thread, so the command inherits the namespace.
		if err := protect(c.ro, c.rw); err != nil && !errors.Is(err, syscall.EPERM) {
			fmt.Fprintf(os.Stderr, "voxflow supervisor: %v (the command runs without write protection)\n", err)
		}
	}
	files := []uintptr{0, 1, 2}
	for i := 0; i < c.files; i++ {
		files = append(files, uintptr(3+i))
	}
	leader, err := syscall.ForkExec(c.path, c.argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: files,
		// The command dies with us even if we are SIGKILLed; what it
		// started is then the caller's to kill (see afterExit).
		Sys: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "voxflow supervisor: start %s: %v\n", c.path, err)
		return 127
	}
	s := &supervisor{cfg: c, self: os.Getpid(), leader: leader}
	ws, code := s.loop(sigs)
	if code != 0 || ws == nil {
		return code
	}
	return exitLike(*ws)
}

// supervisor is the state of one supervising process.
type supervisor struct {
	cfg      config
	self     int
	leader   int
	leaderWS *syscall.WaitStatus // set once the command is reaped

	stopping bool
	termAt   time.Time
	killAt   time.Time // zero until SIGKILL is due
}

// loop waits for the command and then for the group to empty; it returns
// the command's status, or a non-zero code of its own when members could
// not be killed.
func (s *supervisor) loop(sigs chan os.Signal) (*syscall.WaitStatus, int) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		var poll <-chan time.Time
		if s.stopping {
			poll = time.After(stopPoll)
		}
		select {
		case sig := <-sigs:
			switch sig {
			case syscall.SIGCHLD:
			case pdeathSignal:
				// Also sent when the forking thread exits while the
				// caller lives on; only a changed parent means death.
				if os.Getppid() != s.cfg.ppid {
					s.stop()
				}
			default:
				s.stop()
			}
		case <-tick.C:
			if os.Getppid() != s.cfg.ppid {
				s.stop()
			}
		case <-poll:
		}
		s.reap()
		if s.leaderWS != nil {
			s.stop()
		}
		if !s.stopping {
			continue
		}
		members := s.members()
		if len(members) == 0 && s.leaderWS != nil {
			return s.leaderWS, 0
		}
		if s.killAt.IsZero() && time.Since(s.termAt) >= s.cfg.grace {
			s.killAt = time.Now()
		}
		if !s.killAt.IsZero() {
			for _, pid := range members {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			if time.Since(s.killAt) > killTimeout {
				fmt.Fprintf(os.Stderr, "voxflow supervisor: processes %v of %s survived SIGKILL for %s; giving up on them\n", members, s.cfg.path, killTimeout)
				return nil, exitStuck
			}
		}
	}
}

// stop starts taking the group down: SIGTERM now, SIGKILL after the grace
// period (in loop). It is idempotent.
func (s *supervisor) stop() {
	if s.stopping {
		return
	}
	s.stopping = true
	s.termAt = time.Now()
	// Reaches ourselves as well; we are stopping already, so that is moot.
	_ = syscall.Kill(-s.self, syscall.SIGTERM)
	for _, pid := range s.members() {
		_ = syscall.Kill(pid, syscall.SIGTERM) // those that left the group
	}
}

// reap collects every exited child, recording the command's status.
func (s *supervisor) reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		if pid == s.leader {
			s.leaderWS = &ws
		}
	}
}

// members lists the live processes that belong to the command: those in our
// group and those reparented to us after leaving it.
func (s *supervisor) members() []int {
	var out []int
	scanProcs(func(pid int, st procStat) bool {
		if pid != s.self && (st.pgrp == s.self || st.ppid == s.self) && st.state != 'Z' && st.state != 'X' {
			out = append(out, pid)
		}
		return true
	})
	sort.Ints(out)
	return out
}

// exitLike ends this process the way the command ended, so that the caller
// sees the command's exit status or signal.
func exitLike(ws syscall.WaitStatus) int {
	if ws.Exited() {
		return ws.ExitStatus()
	}
	if !ws.Signaled() {
		return 1
	}
	sig := ws.Signal()
	switch sig {
	case syscall.SIGKILL, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGALRM, syscall.SIGUSR1, syscall.SIGUSR2:
		// Go's runtime ends the process by an unhandled signal of these
		// kinds; the others it handles itself (crash dumps, SIGPIPE rules).
		signal.Reset(sig)
		_ = syscall.Kill(os.Getpid(), sig)
		time.Sleep(time.Second)
	}
	return 128 + int(sig)
}

// protect moves this thread into a private mount namespace in which every
// ro directory is mounted read-only, except the rw directories, which stay
// writable. It fails with EPERM where mount namespaces are not allowed (no
// CAP_SYS_ADMIN); then nothing changed.
func protect(ro, rw []string) error {
	if err := syscall.Unshare(syscall.CLONE_NEWNS); err != nil {
		return fmt.Errorf("mount namespace: %w", err)
	}
	// Our mounts must not propagate back to the host's namespace.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	// The writable directories get mounts of their own first, so that the
	// read-only remount of the enclosing directory below, which changes
	// only its own mount, leaves them writable.
	for _, d := range rw {
		if err := syscall.Mount(d, d, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s: %w", d, err)
		}
	}
	for _, d := range ro {
		if err := syscall.Mount(d, d, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s: %w", d, err)
		}
		if err := syscall.Mount("", d, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("remount %s read-only: %w", d, err)
		}
	}
	return nil
}
