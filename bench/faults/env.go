package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/relief/relief/bench/internal/loadgen"
	"github.com/relief/relief/models"
	"github.com/relief/relief/models/pgcluster"
	"github.com/relief/relief/models/vault"
)

// env is the system under test, all on loopback under one temp dir: a private
// PostgreSQL cluster (pgcluster, driven in-process), the embedded Temporal
// server (a child process), the sandbox bank (`relief banksim`), and
// `relief serve` (web + outbox dispatcher) and `relief worker` as separate
// processes, plus a Store and a Temporal client for the checks.
type env struct {
	dir       string
	relief    string // the relief binary
	self      string // this tool's binary, for the internal helpers
	namespace string
	dataKey   string
	verbose   bool
	out       io.Writer

	cluster  *pgcluster.Cluster
	dbURL    string
	temporal *proc
	tempAddr string
	bank     *proc
	bankURL  string
	serve    *proc
	worker   *proc
	webAddr  string
	base     string // http://127.0.0.1:port

	store *models.Store
	tc    client.Client
	http  *http.Client

	merchants []*session // merchant sessions shared by the load drills
	merchUser []*models.User
}

const drillPassword = "faults-drill-Passw0rd"

func (e *env) logf(format string, args ...any) {
	if e.verbose {
		fmt.Fprintf(e.out, "  · "+format+"\n", args...)
	}
}

// setup brings everything up and signs the load merchants in.
func setupEnv(ctx context.Context, e *env) error {
	t0 := time.Now()
	var err error
	e.dataKey = vault.NewKeySpec("faults1")
	v, err := vault.Parse(e.dataKey)
	if err != nil {
		return err
	}
	e.http = loadgen.NewClient(128)

	e.logf("starting PostgreSQL under %s", e.dir)
	e.cluster, err = pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(e.dir, "postgres"), Logf: func(f string, a ...any) { e.logf(f, a...) }})
	if err != nil {
		return fmt.Errorf("start PostgreSQL: %w", err)
	}
	e.dbURL = e.cluster.URL(pgcluster.DefaultDatabase)

	e.temporal = &proc{name: "temporal", path: e.self, logPath: filepath.Join(e.dir, "temporal.log"),
		args: []string{"-internal", internalTemporal, filepath.Join(e.dir, "temporal.db"), e.namespace, e.temporalReadyFile()}}
	if err := e.startTemporal(ctx); err != nil {
		return err
	}

	bankAddr, err := freeAddr()
	if err != nil {
		return err
	}
	e.bankURL = "http://" + bankAddr
	e.bank = &proc{name: "banksim", path: e.relief, logPath: filepath.Join(e.dir, "banksim.log"),
		args: []string{"banksim", "--addr", bankAddr, "--data", filepath.Join(e.dir, "banksim.db")},
		env:  []string{"RELIEF_HOME=" + e.dir, "RELIEF_LOG_LEVEL=warn"}}
	if err := e.bank.start(); err != nil {
		return err
	}

	e.logf("relief migrate, relief seed")
	for _, sub := range []string{"migrate", "seed"} {
		if err := e.runRelief(ctx, sub); err != nil {
			return err
		}
	}
	if err := waitHTTP(ctx, e.http, e.bankURL+"/healthz", 30*time.Second); err != nil {
		return fmt.Errorf("sandbox bank: %w (see %s)", err, e.bank.logPath)
	}

	e.webAddr, err = freeAddr()
	if err != nil {
		return err
	}
	e.base = "http://" + e.webAddr
	e.serve = &proc{name: "serve", path: e.relief, args: []string{"serve"}, env: e.reliefEnv(), logPath: filepath.Join(e.dir, "serve.log")}
	e.worker = &proc{name: "worker", path: e.relief, args: []string{"worker"}, env: e.reliefEnv(), logPath: filepath.Join(e.dir, "worker.log")}
	if err := e.worker.start(); err != nil {
		return err
	}
	if err := e.startServe(ctx); err != nil {
		return err
	}

	e.store, err = models.Open(ctx, e.dbURL, 8, v)
	if err != nil {
		return err
	}
	e.tc, err = client.DialContext(ctx, client.Options{HostPort: e.tempAddr, Namespace: e.namespace, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("dial Temporal: %w", err)
	}

	// Merchants are made in the database (sign-up is not what is drilled)
	// and sign in through the API, as clients do.
	const nMerchants = 8
	for j := range nMerchants {
		u, err := e.store.CreateUser(ctx, models.NewUser{Email: fmt.Sprintf("faults-m%d@drill.relief", j), Name: fmt.Sprintf("장애훈련 상점 %d", j),
			Password: drillPassword, Roles: []string{models.RoleMerchant}})
		if err != nil {
			return fmt.Errorf("create merchant: %w", err)
		}
		s, err := login(ctx, e.http, e.base, u.Email, drillPassword)
		if err != nil {
			return err
		}
		e.merchants = append(e.merchants, s)
		e.merchUser = append(e.merchUser, u)
	}
	if err := e.preflight(ctx); err != nil {
		return err
	}
	e.logf("ready in %v: web %s, temporal %s, bank %s", time.Since(t0).Round(time.Millisecond), e.base, e.tempAddr, e.bankURL)
	return nil
}

// preflight files one claim through the API before any fault, so a system
// that cannot take claims at all fails here, once, with the server's error,
// instead of in every drill.
func (e *env) preflight(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	in := claimInput(9_000_000)
	st, data, err := callRetrying(ctx, e.http, http.MethodPost, e.base+"/api/v1/claims", e.merchants[0].cookie, newKey(), in)
	if err != nil {
		return fmt.Errorf("preflight claim: %w", err)
	}
	if st != http.StatusAccepted {
		return fmt.Errorf("preflight claim without any fault: HTTP %d, want 202: %s", st, snippet(data))
	}
	return nil
}

func (e *env) reliefEnv() []string {
	return []string{
		"DATABASE_URL=" + e.dbURL,
		"TEMPORAL_ADDRESS=" + e.tempAddr,
		"TEMPORAL_NAMESPACE=" + e.namespace,
		"RELIEF_ADDR=" + e.webAddr,
		"RELIEF_DATA_KEY=" + e.dataKey,
		"RELIEF_HOME=" + e.dir,
		"RELIEF_BANK_URL=" + e.bankURL,
		"RELIEF_LOG_LEVEL=warn",
		"RELIEF_DB_MAX_CONNS=16",
	}
}

// runRelief runs a one-shot relief subcommand (migrate, seed).
func (e *env) runRelief(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.relief, args...)
	cmd.Env = append(os.Environ(), e.reliefEnv()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("relief %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (e *env) temporalReadyFile() string { return filepath.Join(e.dir, "temporal.addr") }

// startTemporal starts the Temporal child and waits until it serves. A
// restart must come back on the address serve and worker were given.
func (e *env) startTemporal(ctx context.Context) error {
	_ = os.Remove(e.temporalReadyFile())
	if err := e.temporal.start(); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if b, err := os.ReadFile(e.temporalReadyFile()); err == nil && len(b) > 0 {
			addr := strings.TrimSpace(string(b))
			if e.tempAddr != "" && addr != e.tempAddr {
				return fmt.Errorf("the Temporal server came back on %s, not %s: serve and worker cannot find it", addr, e.tempAddr)
			}
			e.tempAddr = addr
			return nil
		}
		select {
		case <-e.temporal.exited():
			return fmt.Errorf("the Temporal server exited during start: %v (see %s)", e.temporal.exitError(), e.temporal.logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the Temporal server was not ready after 2m (see %s)", e.temporal.logPath)
		}
	}
}

// startServe starts relief serve and waits until /readyz answers 200.
func (e *env) startServe(ctx context.Context) error {
	if err := e.serve.start(); err != nil {
		return err
	}
	return e.waitReady(ctx, 90*time.Second)
}

// waitReady waits until /readyz answers 200.
func (e *env) waitReady(ctx context.Context, timeout time.Duration) error {
	if err := waitHTTP(ctx, e.http, e.base+"/readyz", timeout); err != nil {
		if !e.serve.running() {
			return fmt.Errorf("relief serve exited: %v (see %s)", e.serve.exitError(), e.serve.logPath)
		}
		return fmt.Errorf("relief serve not ready: %w (see %s)", err, e.serve.logPath)
	}
	return nil
}

// heal restores whatever an earlier (maybe failed) drill left down, so each
// drill starts from a healthy system.
func (e *env) heal(ctx context.Context) error {
	if !e.pgUp(ctx) {
		if err := e.cluster.Restart(ctx); err != nil {
			return fmt.Errorf("PostgreSQL: %w", err)
		}
	}
	if !e.temporal.running() {
		if err := e.startTemporal(ctx); err != nil {
			return err
		}
	}
	if !e.bank.running() {
		if err := e.bank.start(); err != nil {
			return err
		}
	}
	if !e.worker.running() {
		if err := e.worker.start(); err != nil {
			return err
		}
	}
	if !e.serve.running() {
		return e.startServe(ctx)
	}
	return e.waitReady(ctx, 60*time.Second)
}

func (e *env) pgUp(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return e.store != nil && e.store.Ping(ctx) == nil
}

// close stops everything; safe on a half-made env.
func (e *env) close() {
	for _, p := range []*proc{e.serve, e.worker, e.bank} {
		if p != nil {
			p.stop(10 * time.Second)
		}
	}
	if e.tc != nil {
		e.tc.Close()
	}
	if e.temporal != nil {
		e.temporal.stop(20 * time.Second)
	}
	if e.store != nil {
		e.store.Close()
	}
	if e.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := e.cluster.Stop(ctx); err != nil {
			_ = e.cluster.StopImmediate()
		}
		cancel()
	} else if e.dir != "" {
		_ = pgcluster.StopDir(filepath.Join(e.dir, "postgres"))
	}
}

// bankFaults sets the sandbox bank's injected faults.
func (e *env) bankFaults(ctx context.Context, faults any) error {
	b, _ := json.Marshal(faults)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, e.bankURL+"/admin/faults", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("PUT /admin/faults: HTTP %d: %s", resp.StatusCode, body)
	}
	return nil
}

// freeAddr returns 127.0.0.1:port with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

// waitHTTP polls url until it answers 200.
func waitHTTP(ctx context.Context, c *http.Client, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cancel()
				return nil
			}
			err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
		}
		cancel()
		last = err
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w", url, last)
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
