package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"

	"github.com/relief/relief/cmd/relief/app"
	"github.com/relief/relief/cmd/relief/banksim"
)

// runBanksim is `relief banksim`: the sandbox bank on its own, for a worker
// started with RELIEF_BANK_URL=http://<addr>. Its books (SQLite) live under
// RELIEF_HOME unless --data says otherwise.
func runBanksim(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("banksim", flag.ContinueOnError)
	addr := fs.String("addr", banksim.DefaultAddr, "listen address (keep it on loopback: the admin endpoints have no authentication)")
	home := os.Getenv("RELIEF_HOME")
	if home == "" {
		home = "./var"
	}
	data := fs.String("data", filepath.Join(home, "banksim.db"), "SQLite file with the sandbox's books")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*data), 0o755); err != nil {
		return err
	}
	level := os.Getenv("RELIEF_LOG_LEVEL")
	if level == "" {
		level = "info"
	}
	return banksim.Run(ctx, banksim.Config{Addr: *addr, DataPath: *data, Logger: app.NewLogger(level)})
}
