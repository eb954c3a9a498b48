// Package procgroup runs a child process so that it and everything it
// starts die together: with the caller's cancellation, after the child
// exits, and when the caller itself dies, even by SIGKILL.
//
// A parent-death signal reaches only the direct child, and a background
// subshell (`(work) &`) is not a direct child, so killing the child's
// process group is not enough when the caller is SIGKILLed: nothing is left
// to send the kill. Wrap therefore interposes a small supervisor, a re-exec
// of the running binary (/proc/self/exe, caught by this package's init
// before main runs), which
//
//   - is a session and process-group leader (setsid), so the command and its
//     descendants share its group and no terminal signal reaches them;
//   - gets a parent-death signal and also polls its parent, so the caller's
//     death takes the group down;
//   - is a child subreaper, so members that daemonise (double fork, setsid)
//     are reparented to it and still killed, and zombies are reaped;
//   - on SIGTERM, on its parent's death or once the command exits, sends
//     SIGTERM to every remaining member, SIGKILL after a grace period, and
//     exits only when no member is left, with the command's own exit status
//     (a signal death is reproduced as such).
//
// So when the supervisor has exited, no process of the command can still
// write, which is what makes it safe to hash a command's outputs. cgroups
// would track members without the subreaper and /proc scans, but they are
// not available to unprivileged users on every host voxflow runs on.
package procgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// marker is the supervisor's argv[0]; init recognises it. It also names the
// supervisor in ps listings.
const marker = "voxflow-procgroup-supervisor"

// pdeathSignal is the signal the kernel sends the supervisor when the thread
// that forked it exits. It is not SIGTERM because a thread can exit while
// its process lives on: the supervisor checks its parent before acting.
const pdeathSignal = syscall.SIGUSR2

const (
	// DefaultGrace is how long members get between SIGTERM and SIGKILL.
	DefaultGrace = 3 * time.Second
	// killTimeout bounds the wait for SIGKILLed members to disappear; a
	// process stuck in the kernel (D state on a dead NFS server) can
	// outlive SIGKILL for a while.
	killTimeout = 10 * time.Second
)

// Options configure a supervised command.
type Options struct {
	// Grace is how long remaining members get between SIGTERM and SIGKILL;
	// 0 means DefaultGrace.
	Grace time.Duration
	// HoldDir makes the supervisor hold a shared flock(2) on cmd.Dir until
	// the last member of its group is gone, so that DirInUse can tell a
	// directory that some process of the command may still write.
	HoldDir bool
	// ReadOnly lists directories the command must not write, even as
	// root, except for the Writable directories below them. Where the
	// supervisor may create a mount namespace (root or CAP_SYS_ADMIN), the
	// command runs in a private one in which each ReadOnly directory is a
	// read-only bind mount and each Writable one a read-write mount inside
	// it; elsewhere nothing is enforced. Either way the caller must not
	// trust what it reads back: voxflow's store checks objects before use.
	ReadOnly, Writable []string
}

func (o Options) grace() time.Duration {
	if o.Grace <= 0 {
		return DefaultGrace
	}
	return o.Grace
}

// Wrap rewrites cmd, which must not have been started, so that it runs under
// a supervisor in a new session and process group (see the package doc).
// cmd.Path, Args, Dir, Env, stdio and ExtraFiles keep their meaning for the
// command; cmd.Process becomes the supervisor, whose pid is the group's id
// and whose exit status is the command's. SysProcAttr's Setsid and
// Pdeathsig are taken over.
func Wrap(cmd *exec.Cmd, opt Options) error {
	if cmd.Process != nil {
		return errors.New("procgroup: command already started")
	}
	if cmd.Err != nil {
		return cmd.Err
	}
	if cmd.Path == "" {
		return errors.New("procgroup: command has no path")
	}
	// A relative path stays relative: exec evaluates it in cmd.Dir, and so
	// does the supervisor, which runs there.
	path := cmd.Path
	argv := cmd.Args
	if len(argv) == 0 {
		argv = []string{cmd.Path}
	}
	args := []string{
		marker,
		"-ppid", strconv.Itoa(os.Getpid()),
		"-grace", opt.grace().String(),
		"-files", strconv.Itoa(len(cmd.ExtraFiles)),
	}
	if opt.HoldDir {
		args = append(args, "-holddir")
	}
	for _, d := range opt.ReadOnly {
		args = append(args, "-ro", d)
	}
	for _, d := range opt.Writable {
		args = append(args, "-rw", d)
	}
	args = append(args, "--", path)
	cmd.Path = "/proc/self/exe"
	cmd.Args = append(args, argv...)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Setpgid = false
	cmd.SysProcAttr.Pdeathsig = pdeathSignal
	// The supervisor exits only once its group is empty, so the pipes it
	// shares with the command close with it; the delay only bounds a Wait
	// on a supervisor that was itself killed while members kept the pipes.
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = opt.grace() + killTimeout
	}
	return nil
}

// Run runs cmd under a supervisor (Wrap) and waits for it. When ctx ends
// first, the supervisor takes the group down (SIGTERM, then SIGKILL after
// the grace period); Run returns once no member is left, with an error
// wrapping ctx.Err(). Otherwise it returns cmd.Wait's error: nil only when
// the command exited 0 and every process it left behind is gone.
func Run(ctx context.Context, cmd *exec.Cmd, opt Options) error {
	name := cmd.Path
	if err := Wrap(cmd, opt); err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s under a supervisor: %w", name, err)
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return afterExit(pgid, cmd, err)
	case <-ctx.Done():
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-done:
		err = afterExit(pgid, cmd, err)
	case <-time.After(opt.grace() + killTimeout + 2*time.Second):
		// The supervisor is stuck: take the group down, supervisor and all.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		err = errors.Join(<-done, WaitGone(pgid, killTimeout))
	}
	if err != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return ctx.Err()
}

// afterExit is the backstop for a supervisor that did not end by itself
// (SIGKILLed, e.g. by the OOM killer): its members may be alive, and they
// still hold the group id, so the id cannot name another group yet.
func afterExit(pgid int, cmd *exec.Cmd, err error) error {
	if Supervised(cmd.ProcessState) {
		return err
	}
	return errors.Join(err, KillGroup(pgid, killTimeout))
}

// Supervised reports whether a wrapped command's supervisor ended by itself,
// that is after emptying its group. It did not when SIGKILLed: exit
// statuses of the command itself are reproduced as exits or as deaths by
// other signals.
func Supervised(ps *os.ProcessState) bool {
	if ps == nil {
		return false
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	return !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL
}

// KillGroup SIGKILLs every process of group pgid and waits up to timeout
// for them to be gone. It is for the caller of a wrapped command whose
// supervisor was killed without its group (see Supervised).
func KillGroup(pgid int, timeout time.Duration) error {
	if pgid <= 1 {
		return fmt.Errorf("procgroup: refusing to kill process group %d", pgid)
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill process group %d: %w", pgid, err)
	}
	return WaitGone(pgid, timeout)
}

// WaitGone waits up to timeout until process group pgid has no live member
// (zombies waiting for a reaper cannot write and do not count).
func WaitGone(pgid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if !GroupAlive(pgid) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process group %d still has live members after %s", pgid, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// GroupAlive reports whether process group pgid has a live (non-zombie)
// member.
func GroupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	// kill(2) counts zombies; look closer.
	alive := false
	scanProcs(func(pid int, st procStat) bool {
		if st.pgrp == pgid && st.state != 'Z' && st.state != 'X' {
			alive = true
			return false
		}
		return true
	})
	return alive
}

// procStat is what the supervisor needs from /proc/<pid>/stat.
type procStat struct {
	state byte
	ppid  int
	pgrp  int
}

// scanProcs calls fn for every process in /proc until fn returns false.
// Processes that vanish during the scan are skipped.
func scanProcs(fn func(pid int, st procStat) bool) {
	d, err := os.Open("/proc")
	if err != nil {
		return
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return
	}
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		st, ok := readStat(pid)
		if !ok {
			continue
		}
		if !fn(pid, st) {
			return
		}
	}
}

// readStat parses /proc/<pid>/stat: "pid (comm) state ppid pgrp ...";
// comm may contain spaces and parentheses, hence the last ')'.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 || len(f[0]) != 1 {
		return procStat{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return procStat{}, false
	}
	return procStat{state: f[0][0], ppid: ppid, pgrp: pgrp}, true
}

// DirInUse reports whether a process may still write in dir: whether some
// supervisor started with Options.HoldDir in dir, or some caller of
// HoldDir, still holds it. A path that does not exist or is not a
// directory is not in use.
func DirInUse(dir string) (bool, error) {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR) {
			return false, nil // nothing can hold what is not a directory
		}
		return false, fmt.Errorf("open %s: %w", dir, err)
	}
	defer syscall.Close(fd)
	if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return true, nil
		}
		return false, fmt.Errorf("flock %s: %w", dir, err)
	}
	return false, nil
}

// HoldDir takes a shared flock(2) on dir, which DirInUse sees, until the
// returned function is called or the process dies.
func HoldDir(dir string) (release func(), err error) {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	if err := syscall.Flock(fd, syscall.LOCK_SH); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("flock %s: %w", dir, err)
	}
	return func() { syscall.Close(fd) }, nil
}
