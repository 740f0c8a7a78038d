package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relief/relief/cmd/relief/config"
	"github.com/relief/relief/models"
	"github.com/relief/relief/models/pgcluster"
	"github.com/relief/relief/models/vault"
	"github.com/relief/relief/workflows"
	"github.com/relief/relief/workflows/devserver"
)

// Dev runs everything on one machine: a private PostgreSQL cluster (unless
// DATABASE_URL is set), an embedded Temporal server (unless TEMPORAL_ADDRESS is
// set), migrations, the demo seed, the worker, the dispatcher and the web server.
// State lives under RELIEF_HOME, so a second start keeps every claim.
func Dev(ctx context.Context, cfg *config.Config, log *slog.Logger, out io.Writer) error {
	started := time.Now()
	home, err := filepath.Abs(cfg.Home)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(home, 0o755); err != nil {
		return fmt.Errorf("RELIEF_HOME %s: %w", home, err)
	}
	if cfg.DataKey == "" {
		spec, err := keepSecret(filepath.Join(home, "data.key"), func() string { return vault.NewKeySpec("dev1") })
		if err != nil {
			return err
		}
		cfg.DataKey = spec
	}
	if cfg.Vault, err = vault.Parse(cfg.DataKey); err != nil {
		return err
	}
	password := cfg.DemoPassword
	if password == "" {
		if password, err = keepSecret(filepath.Join(home, "demo-password"), models.NewPassword); err != nil {
			return err
		}
	}

	if cfg.DatabaseURL == "" {
		cluster, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(home, "postgres"), Logf: func(f string, a ...any) {
			log.Info(fmt.Sprintf(f, a...), "component", "postgres")
		}})
		if err != nil {
			return fmt.Errorf("start PostgreSQL: %w", err)
		}
		defer func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := cluster.Stop(stopCtx); err != nil {
				log.Warn("stop PostgreSQL", "err", err.Error())
			}
		}()
		cfg.DatabaseURL = cluster.URL("relief")
	}
	if cfg.TemporalAddress == "" {
		ts, err := devserver.Start(ctx, devserver.Options{
			DBPath:           filepath.Join(home, "temporal.db"),
			Namespace:        cfg.TemporalNamespace,
			SearchAttributes: workflows.SearchAttributes,
			Logger:           log.With("component", "temporal-server"),
		})
		if err != nil {
			return fmt.Errorf("start embedded Temporal: %w", err)
		}
		defer func() {
			if err := ts.Stop(); err != nil {
				log.Warn("stop Temporal", "err", err.Error())
			}
		}()
		cfg.TemporalAddress = ts.HostPort()
	}
	if cfg.BankURL == "" {
		// The sandbox bank, in-process on a free loopback port, its books under RELIEF_HOME.
		bankURL, stopBank, err := startSandboxBank(ctx, filepath.Join(home, "banksim.db"), log)
		if err != nil {
			return err
		}
		defer stopBank()
		cfg.BankURL = bankURL
	}
	if err := models.Migrate(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	store, err := models.Open(ctx, cfg.DatabaseURL, 4, cfg.Vault)
	if err != nil {
		return err
	}
	err = store.Seed(ctx)
	if err == nil {
		_, err = store.SeedDemoUsers(ctx, password)
	}
	err = errors.Join(err, store.SeedDemoLedger(ctx)) // demo sales ledger (COPY, once)
	store.Close()
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}

	return Run(ctx, cfg, log, Options{Web: true, Dispatcher: true, Worker: true, Ready: func(addr string) {
		printBanner(out, addr, password, home, time.Since(started))
	}})
}

// keepSecret returns the secret stored at path, creating it (mode 0600) first.
func keepSecret(path string, generate func() string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	secret := generate()
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", err
	}
	return secret, nil
}

func printBanner(out io.Writer, addr, password, home string, took time.Duration) {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	fmt.Fprintf(out, "\n  Relief is running: http://%s:%s  (ready in %.1fs, data in %s)\n\n", host, port, took.Seconds(), home)
	fmt.Fprintf(out, "  Demo logins (password: %s)\n", password)
	for _, u := range models.DemoUsers {
		fmt.Fprintf(out, "    %-24s %s\n", u.Email, strings.Join(u.Roles, ", "))
	}
	fmt.Fprintf(out, "\n  Press Ctrl-C to stop.\n\n")
}
