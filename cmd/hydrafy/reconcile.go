package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/reconciler"
)

// runReconcile is `hydrafy reconcile --config FILE [--json]`: one reconcile
// pass now, on this runner host. It refuses to run while `hydrafy serve`
// holds the same state dir.
func runReconcile(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("reconcile", "usage: hydrafy reconcile --config FILE [--json]\n\nOne reconcile pass now on this runner host: seed the digests the watched\nprojects pin (stage, drain, merge, restart) and pin the runner's config.toml.\nIt refuses to run while hydrafy serve holds the same state dir.", stdout, stderr)
	cfgPath := fs.String("config", "", "config `FILE` (required)")
	asJSON := fs.Bool("json", false, "print the pass's report as JSON")
	if err := fs.parseFlagsOnly(args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return fs.usageError("--config FILE is required")
	}
	cfg, err := loadConfig(*cfgPath, true)
	if err != nil {
		return err
	}
	if !cfg.Reconcile.Enabled {
		return errors.New("this config is of a bot-only host (reconcile.enabled = false): it has no store to reconcile")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	stager, err := newStager(cfg, log)
	if err != nil {
		return err
	}
	return reconcileOnce(ctx, cfg, log, stager, *asJSON, stdout)
}

// reconcileOnce runs one pass with the given stager and prints its report.
func reconcileOnce(ctx context.Context, cfg config.Config, log *slog.Logger, stager reconciler.Stager, asJSON bool, stdout io.Writer) error {
	d, err := newDaemon(cfg, log, stager)
	if err != nil {
		return err
	}
	defer d.Close()
	rep := d.rec.Once(ctx, reconciler.Reason{Kind: reconciler.KindManual, Detail: "hydrafy reconcile"})
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printReport(stdout, rep)
	}
	if rep.Result == reconciler.ResultFailed {
		return fmt.Errorf("reconcile %s failed: %s", rep.ID, firstLine(rep.Error))
	}
	return nil
}

// printReport writes the report as aligned "name: value" lines and one
// line per step.
func printReport(w io.Writer, r reconciler.Report) {
	fmt.Fprintf(w, "run:      %s\n", r.ID)
	fmt.Fprintf(w, "result:   %s\n", r.Result)
	if r.Recovery {
		what := "restored"
		if len(r.Restored) > 0 {
			what = "runner " + strings.Join(r.Restored, " and ")
		}
		fmt.Fprintf(w, "recovery: the runner was left paused or stopped by an interrupted pass; %s first (down %.3fs since its stop)\n", what, r.DowntimeSeconds)
	}
	fmt.Fprintf(w, "desired:  %s\n", orNone(r.Desired))
	fmt.Fprintf(w, "missing:  %s\n", orNone(r.Missing))
	fmt.Fprintf(w, "seeded:   %s\n", orNone(r.Seeded))
	if r.Image != "" {
		fmt.Fprintf(w, "image:    %s (config.toml changed: %v)\n", r.Image, r.Changed)
	}
	if r.Mode != "" {
		fmt.Fprintf(w, "mode:     %s\n", r.Mode)
	}
	fmt.Fprintf(w, "downtime: %.3fs\n", r.DowntimeSeconds)
	if r.Mode != "" {
		fmt.Fprintf(w, "drain:    %.3fs (queue stall %.3fs)\n", r.DrainSeconds, r.StallSeconds)
	}
	for _, s := range r.Steps {
		line := fmt.Sprintf("  %-10s %8.3fs", s.Name, s.Seconds)
		if s.Digest != "" {
			line += " " + s.Digest
		}
		if s.Error != "" {
			line += "  error: " + firstLine(s.Error)
		}
		fmt.Fprintln(w, line)
	}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
