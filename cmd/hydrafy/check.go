package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gitlab.com/hydrafy/hydrafy/bot"
	"gitlab.com/hydrafy/hydrafy/bot/propose"
	"gitlab.com/hydrafy/hydrafy/bot/watch"
	"gitlab.com/hydrafy/hydrafy/config"
	"gitlab.com/hydrafy/hydrafy/reconciler"
	"gitlab.com/hydrafy/hydrafy/server"
)

// checkTimeout bounds the registry and GitLab work of one check, retries
// included; seeding may take the runner's drain and the store's lock
// timeouts on top.
const checkTimeout = 10 * time.Minute

// errNotBot refuses a proposing check on a host whose bot is off: it
// would act as a second bot with a token that may not write.
var errNotBot = errors.New("this host does not run the bot (bot.enabled = false): a check here would propose as a second bot; add --dry-run to see what the watcher sees")

const checkUsage = `usage: hydrafy check --config FILE [--dry-run | --no-seed] [--state-dir DIR]

One pass of the bot now, as the daemon's schedule runs it: resolve the
tracked tag; when its digest is ready, seed it into the store on this host
(stage, drain, merge, restart), then open or update one merge request per
watched project. When the daemon (hydrafy serve) holds the state dir, the
pass is asked of it through POST /resync?watch=1 instead.

--dry-run resolves the tag and prints, per project and file, the diff that
would be proposed; it writes nothing. --no-seed proposes without seeding,
for a host that holds no store (the merge requests then say that the store
does not hold the digest yet).`

// runCheck is `hydrafy check`: one bot pass now.
func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", checkUsage, stdout, stderr)
	cfgPath := fs.String("config", "", "config `FILE` (required)")
	dryRun := fs.Bool("dry-run", false, "report only: print the diffs that would be proposed, write no state, propose nothing")
	noSeed := fs.Bool("no-seed", false, "propose without seeding the digest into this host's store first")
	stateDir := fs.String("state-dir", "", "state `DIR` (default server.state_dir)")
	if err := fs.parseFlagsOnly(args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return fs.usageError("--config FILE is required")
	}
	if *dryRun && *noSeed {
		return fs.usageError("--dry-run and --no-seed are exclusive")
	}
	cfg, err := loadConfig(*cfgPath, !*dryRun)
	if err != nil {
		return err
	}
	if !cfg.Bot.Enabled && !*dryRun {
		return errNotBot
	}
	if *stateDir == "" {
		*stateDir = cfg.Server.StateDir
	}
	cfg.Server.StateDir = *stateDir

	ctx, cancel := context.WithTimeout(ctx, checkTimeout+cfg.Runner.DrainTimeout.D()+cfg.Store.LockTimeout.D())
	defer cancel()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	now := time.Now()
	switch {
	case *dryRun:
		b, err := bot.New(cfg, log, bot.Options{})
		if err != nil {
			return err
		}
		rep, err := b.Pass(ctx, now, bot.PassOptions{DryRun: true, Preview: cfg.GitLab.Token != ""})
		if err != nil {
			return err
		}
		printWatch(stdout, rep.Watch, now)
		fmt.Fprintln(stdout, "state:      not written (--dry-run)")
		return printPreview(stdout, rep.Propose)
	case *noSeed:
		b, err := bot.New(cfg, log, bot.Options{})
		if err != nil {
			return err
		}
		rep, err := b.Pass(ctx, now, bot.PassOptions{})
		if err != nil {
			return err
		}
		printWatch(stdout, rep.Watch, now)
		if rep.Propose != nil {
			fmt.Fprintln(stdout, "seeding:    skipped (--no-seed): the store does not hold the digest until the runner hosts reconcile")
		}
		return printPass(stdout, rep, *stateDir)
	}
	return checkSeeding(ctx, cfg, log, nil, now, stdout)
}

// checkSeeding runs the daemon's own pass in this process: the watcher
// seeds a ready digest through the reconciler before proposing it. When
// the daemon holds the state dir, it asks the daemon to run that pass.
// stager nil is the store's.
func checkSeeding(ctx context.Context, cfg config.Config, log *slog.Logger, stager reconciler.Stager, now time.Time, stdout io.Writer) error {
	if stager == nil {
		var err error
		if stager, err = newStager(cfg, log); err != nil {
			return err
		}
	}
	d, err := newDaemon(cfg, log, stager)
	if errors.Is(err, reconciler.ErrStateInUse) {
		return askDaemon(ctx, cfg, stdout)
	}
	if err != nil {
		return err
	}
	w, ok := d.watcher.(botWatcher)
	if !ok {
		d.Close()
		return errors.New("the bot is off in this config (bot.enabled = false): it proposes nothing here")
	}
	w.canSeed = func() error {
		if _, err := os.Stat(filepath.Join(cfg.Store.Dir, "nix/var/nix/db/db.sqlite")); err != nil {
			return fmt.Errorf("store.dir %s holds no Nix store: hydrafy check seeds a ready digest into it before proposing it, as the daemon does; run it on the runner host, or pass --no-seed", cfg.Store.Dir)
		}
		return nil
	}
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() {
		if d.rec != nil {
			d.rec.Run(runCtx)
		}
		close(ran)
	}()
	p, err := w.run(ctx)
	stop()
	<-ran
	d.Close()
	seen := p.Seed.Watch
	if seen.Digest == "" {
		seen = p.Report.Watch // no seeder: one pass
	}
	if seen.Digest == "" {
		return err
	}
	printWatch(stdout, seen, now)
	if err != nil && p.Report.Propose == nil {
		return err // the watch or the seeding failed: nothing was proposed
	}
	switch {
	case p.Seeding != "":
		fmt.Fprintf(stdout, "seeding:    %s (in this process, as the daemon does)\n", p.Seeding)
	case d.rec == nil && p.Report.Propose != nil:
		fmt.Fprintln(stdout, "seeding:    none on this host (reconcile.enabled = false): the runner hosts seed the digest when the proposal branch is pushed")
	}
	if p.Report.Propose == nil {
		fmt.Fprintf(stdout, "state:      %s\n", filepath.Join(cfg.Server.StateDir, "watch.json"))
		return err
	}
	if perr := printPass(stdout, p.Report, cfg.Server.StateDir); perr != nil {
		return perr
	}
	return err
}

// askDaemon runs the pass in the daemon that holds the state dir, through
// POST /resync?watch=1 on server.listen.
func askDaemon(ctx context.Context, cfg config.Config, stdout io.Writer) error {
	url := "http://" + cfg.Server.Listen + "/resync?watch=1"
	if cfg.Server.ResyncToken == "" {
		return fmt.Errorf("the daemon (hydrafy serve) holds state dir %s; to ask it for the pass, set HYDRAFY_RESYNC_TOKEN or server.resync_token_file", cfg.Server.StateDir)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.Server.ResyncToken.Reveal())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("the daemon holds state dir %s, and asking it at %s failed: %w", cfg.Server.StateDir, cfg.Server.Listen, cause(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("the daemon at %s answered %s: %s", cfg.Server.Listen, resp.Status, strings.TrimSpace(string(body)))
	}
	var st struct {
		At     time.Time           `json:"at"`
		Result *server.WatchResult `json:"result"`
		Error  string              `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return fmt.Errorf("reading the daemon's answer: %w", err)
	}
	fmt.Fprintf(stdout, "pass:       run by the daemon at %s (POST /resync?watch=1), which seeds a ready digest before proposing it\n", cfg.Server.Listen)
	if r := st.Result; r != nil {
		fmt.Fprintf(stdout, "digest:     %s\n", r.Digest)
		for _, mr := range r.MergeRequests {
			line := fmt.Sprintf("%s: %s", mr.Project, mr.Action)
			if mr.IID != 0 {
				line += fmt.Sprintf(" !%d %s", mr.IID, mr.URL)
			}
			fmt.Fprintln(stdout, line)
		}
	}
	if st.Error != "" {
		return errors.New(st.Error)
	}
	return nil
}

// printPass prints where the state went and what the proposer did.
func printPass(stdout io.Writer, rep bot.Report, stateDir string) error {
	fmt.Fprintf(stdout, "state:      %s\n", filepath.Join(stateDir, "watch.json"))
	if rep.Propose == nil {
		return nil
	}
	fmt.Fprint(stdout, rep.Propose.String())
	if failed := rep.Propose.Failed(); len(failed) > 0 {
		return fmt.Errorf("%d of %d projects failed", len(failed), len(rep.Propose.Projects))
	}
	return nil
}

// printPreview prints, per project and file, the diff a pass would
// propose.
func printPreview(w io.Writer, rep *propose.Report) error {
	if rep == nil {
		fmt.Fprintln(w, "diffs:      not shown (no GitLab token to read the projects' files)")
		return nil
	}
	for _, p := range rep.Projects {
		fmt.Fprintln(w)
		fmt.Fprintln(w, p.String())
		for _, f := range p.Files {
			if err := writeUnifiedDiff(w, p.Path+"/"+f.Path, []byte(f.Before), []byte(f.After)); err != nil {
				return err
			}
		}
	}
	if failed := rep.Failed(); len(failed) > 0 {
		return fmt.Errorf("%d of %d projects failed", len(failed), len(rep.Projects))
	}
	return nil
}

// printWatch writes the result as aligned "name: value" lines.
func printWatch(w io.Writer, r watch.Result, now time.Time) {
	fmt.Fprintf(w, "image:      %s\n", r.Image)
	fmt.Fprintf(w, "tag:        %s\n", r.Tag)
	fmt.Fprintf(w, "digest:     %s\n", r.Digest)
	if r.VersionTag != "" {
		fmt.Fprintf(w, "version:    %s\n", r.VersionTag)
	}
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
