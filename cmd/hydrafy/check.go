package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"gitlab.com/hydrafy/hydrafy/bot"
	"gitlab.com/hydrafy/hydrafy/bot/watch"
)

// checkTimeout bounds one whole check, retries included.
const checkTimeout = 10 * time.Minute

// runCheck is `hydrafy check --config FILE [--dry-run] [--state-dir DIR]`:
// one bot pass now. It prints what the tracked tag resolves to and whether
// its digest is ready to propose; without --dry-run it records the
// observation and, when the digest is ready, opens or refreshes the merge
// requests and prints what it did per project.
func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", stderr)
	cfgPath := fs.String("config", "", "config `FILE` (required)")
	dryRun := fs.Bool("dry-run", false, "report only: write no state, propose nothing")
	stateDir := fs.String("state-dir", "", "state `DIR` (default server.state_dir)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "hydrafy check: unexpected argument %q\n", pos[0])
		return errUsage
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "hydrafy check: --config FILE is required")
		return errUsage
	}
	cfg, err := loadConfig(*cfgPath, !*dryRun)
	if err != nil {
		return err
	}
	if *stateDir == "" {
		*stateDir = cfg.Server.StateDir
	}

	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := bot.New(cfg, log, bot.Options{StateDir: *stateDir})
	if err != nil {
		return err
	}
	now := time.Now()
	rep, err := b.Pass(ctx, now, bot.PassOptions{DryRun: *dryRun})
	if err != nil {
		return err
	}
	printWatch(stdout, rep.Watch, now)
	if *dryRun {
		fmt.Fprintln(stdout, "state:      not written (--dry-run)")
		return nil
	}
	fmt.Fprintf(stdout, "state:      %s\n", filepath.Join(*stateDir, "watch.json"))
	if rep.Propose == nil {
		return nil
	}
	fmt.Fprint(stdout, rep.Propose.String())
	if failed := rep.Propose.Failed(); len(failed) > 0 {
		return fmt.Errorf("%d of %d projects failed", len(failed), len(rep.Propose.Projects))
	}
	return nil
}

// printWatch writes the result as aligned "name: value" lines.
func printWatch(w io.Writer, r watch.Result, now time.Time) {
	fmt.Fprintf(w, "image:      %s\n", r.Image)
	fmt.Fprintf(w, "tag:        %s\n", r.Tag)
	fmt.Fprintf(w, "digest:     %s\n", r.Digest)
	fmt.Fprintf(w, "platforms:  %s\n", strings.Join(r.Platforms, ", "))
	if len(r.MissingPlatforms) > 0 {
		fmt.Fprintf(w, "missing:    %s\n", strings.Join(r.MissingPlatforms, ", "))
	}
	seen := "unchanged since the last check"
	if r.Changed {
		seen = "new since the last check"
	}
	fmt.Fprintf(w, "first seen: %s (%s)\n", r.FirstSeen.UTC().Format(time.RFC3339), seen)
	fmt.Fprintf(w, "stable for: %s\n", r.StableFor.Round(time.Second))
	if !r.Created.IsZero() {
		fmt.Fprintf(w, "created:    %s\n", r.Created.UTC().Format(time.RFC3339))
	}
	if r.NixVersion != "" {
		fmt.Fprintf(w, "nix:        %s\n", r.NixVersion)
	}
	if r.Ready {
		fmt.Fprintf(w, "propose:    yes, %s\n", r.Reason)
		return
	}
	line := "propose:    no, " + r.Reason
	if r.Wait > 0 {
		line += fmt.Sprintf(" (ready at %s)", now.Add(r.Wait).UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(w, line)
}
