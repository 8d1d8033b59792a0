package standin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Main is the stand-in's command line, for a binary (or a test binary) that
// hands it the arguments after its own: it returns the exit status.
//
//	run   [flags]   run in the foreground until a signal ends it
//	start [flags]   start `run` detached and return once it runs
//	stop  -status FILE [-signal QUIT]   signal it and wait until it exited
//
// start re-executes the current binary with the arguments that preceded
// args in os.Args, followed by "run", so args must be a tail of os.Args.
func Main(args []string, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: standin run|start|stop [flags]")
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = mainRun(args[1:], stderr)
	case "start":
		err = mainStart(args, stderr)
	case "stop":
		err = mainStop(args[1:])
	default:
		err = fmt.Errorf("unknown subcommand %q", args[0])
	}
	if err != nil {
		fmt.Fprintf(stderr, "standin %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func runFlags(fs *flag.FlagSet) *Options {
	o := &Options{}
	fs.StringVar(&o.ConfigFile, "config", "", "runner config.toml")
	fs.StringVar(&o.StatusFile, "status", "", "status file (JSON)")
	fs.StringVar(&o.StoreDir, "store", "", "store dir whose big-lock jobs hold shared")
	fs.IntVar(&o.Jobs, "jobs", -1, "jobs to run before going idle; negative = without end")
	fs.DurationVar(&o.JobDuration, "job-duration", time.Second, "duration of one job")
	fs.IntVar(&o.Concurrent, "concurrent", 1, "jobs at a time")
	fs.DurationVar(&o.ReloadInterval, "reload-interval", 3*time.Second, "config.toml change check")
	fs.IntVar(&o.Parent, "parent", 0, "abort (as on SIGTERM) when the process with this pid ends; 0 = never")
	return o
}

func mainRun(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := runFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Log = slog.New(slog.NewTextHandler(stderr, nil)).With("pid", os.Getpid())
	return Run(context.Background(), *o)
}

func mainStart(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("start", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := runFlags(fs)
	logFile := fs.String("log", "", "file for the detached process's log")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if o.StatusFile == "" {
		return errors.New("start needs -status")
	}
	n := len(os.Args) - len(args)
	if n < 1 || !slices.Equal(os.Args[n:], args) {
		return errors.New("arguments are not a tail of the command line")
	}
	runArgs := append(append([]string{}, os.Args[1:n]...), "run")
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "log" {
			runArgs = append(runArgs, "-"+f.Name+"="+f.Value.String())
		}
	})
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.Remove(o.StatusFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	cmd := exec.Command(exe, runArgs...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if *logFile != "" {
		f, err := os.OpenFile(*logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting stand-in: %w", err)
	}
	pid := cmd.Process.Pid
	cmd.Process.Release()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if s, err := ReadStatus(o.StatusFile); err == nil && s.PID == pid {
			return nil
		}
		if !Alive(pid) {
			return fmt.Errorf("stand-in %d exited at start", pid)
		}
	}
	return fmt.Errorf("stand-in %d did not report its status", pid)
}

func mainStop(args []string) error {
	fs := flag.NewFlagSet("stop", flag.ContinueOnError)
	status := fs.String("status", "", "status file of the stand-in to stop")
	sigName := fs.String("signal", "QUIT", "QUIT (drain) or TERM (abort)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sig := map[string]syscall.Signal{"QUIT": syscall.SIGQUIT, "TERM": syscall.SIGTERM, "INT": syscall.SIGINT}[strings.TrimPrefix(*sigName, "SIG")]
	if sig == 0 {
		return fmt.Errorf("unknown signal %q", *sigName)
	}
	s, err := ReadStatus(*status)
	if err != nil {
		return err
	}
	if !Alive(s.PID) {
		return nil
	}
	if err := syscall.Kill(s.PID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling stand-in %d: %w", s.PID, err)
	}
	for Alive(s.PID) {
		time.Sleep(10 * time.Millisecond)
	}
	if s, err = ReadStatus(*status); err != nil {
		return err
	}
	if s.State != StateExited {
		return fmt.Errorf("stand-in %d ended %s", s.PID, s.State)
	}
	return nil
}

// Alive reports whether process pid exists and is not a zombie: a detached
// stand-in's zombie may linger until its new parent reaps it.
func Alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}
