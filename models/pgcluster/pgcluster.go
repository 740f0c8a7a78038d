// Package pgcluster runs a private PostgreSQL cluster from the machine's
// PostgreSQL binaries (initdb, pg_ctl): `relief dev` keeps one under its home
// directory and integration tests start a throwaway one per test binary.
//
// The cluster listens on 127.0.0.1 only and trusts every local connection, so
// it is for development and tests, never for production data.
//
// PostgreSQL refuses to run as root. When the caller is root, the cluster
// directory is handed to the `postgres` OS user and initdb/pg_ctl run through
// `runuser -u postgres`; every parent directory must then be searchable by
// that user (see checkReachable).
package pgcluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Options configure Start.
type Options struct {
	// Dir holds the cluster: data in Dir/pgdata, the unix socket and the
	// server log (postgres.log) in Dir itself. Created when missing.
	Dir string
	// Port to listen on (127.0.0.1). Zero picks one: the port recorded in Dir
	// by a previous start when it is still free, else a free one.
	Port int
	// NoSync turns fsync off. Only for throwaway test clusters: it survives
	// a crash of PostgreSQL, not of the machine.
	NoSync bool
	// Logf reports progress (initdb, start, reuse); nil discards it.
	Logf func(format string, args ...any)
}

// DefaultDatabase is created on first start.
const DefaultDatabase = "relief"

// superuser is the role initdb creates; trust authentication lets it in without a password.
const superuser = "postgres"

// Cluster is a running private PostgreSQL cluster.
type Cluster struct {
	dir, data string
	port      int
	bin       string
	noSync    bool
	owner     *osUser // non-nil when we are root and run PostgreSQL as this user
	logf      func(string, ...any)
}

// Start creates the cluster when Dir/pgdata is missing, starts it (adopting a
// server left running from this Dir by an earlier process) and makes sure the
// database "relief" exists.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Dir == "" {
		return nil, errors.New("pgcluster: Options.Dir is required")
	}
	c, err := newCluster(opts.Dir, opts.Logf)
	if err != nil {
		return nil, err
	}
	c.noSync = opts.NoSync
	if err := c.prepareDir(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(c.data, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(ctx); err != nil {
			return nil, err
		}
	}

	adopted, err := c.adoptRunning(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case !adopted:
		if err := c.startFresh(ctx, opts.Port); err != nil {
			return nil, err
		}
	case opts.Port != 0 && opts.Port != c.port:
		return nil, fmt.Errorf("pgcluster: the server already running from %s listens on port %d, not %d; stop it with: pg_ctl -D %s stop -m fast", c.dir, c.port, opts.Port, c.data)
	}
	if err := c.CreateDatabase(ctx, DefaultDatabase, ""); err != nil {
		return nil, err
	}
	return c, nil
}

func newCluster(dir string, logf func(string, ...any)) (*Cluster, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	bin, err := findBinDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, data: filepath.Join(dir, "pgdata"), bin: bin, logf: logf}
	if c.logf == nil {
		c.logf = func(string, ...any) {}
	}
	if os.Geteuid() == 0 {
		if c.owner, err = lookupUser(superuser); err != nil {
			return nil, fmt.Errorf("pgcluster: running as root needs the %q OS user: %w", superuser, err)
		}
	}
	return c, nil
}

// Port is the TCP port on 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// Dir is the cluster directory given to Start, made absolute.
func (c *Cluster) Dir() string { return c.dir }

// URL is the connection URL of database db as the superuser.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, c.port, db)
}

// CreateDatabase creates database name, copied from template when template is not empty.
func (c *Cluster) CreateDatabase(ctx context.Context, name, template string) error {
	return CreateDatabase(ctx, c.URL("postgres"), name, template)
}

// Stop shuts the server down, rolling back open transactions (pg_ctl -m fast).
func (c *Cluster) Stop(ctx context.Context) error { return c.stop(ctx, "fast") }

// StopImmediate kills the server without a shutdown checkpoint, as a crash
// would (pg_ctl -m immediate); the next start runs crash recovery. For fault drills.
func (c *Cluster) StopImmediate() error { return c.stop(context.Background(), "immediate") }

// Restart stops the server if it runs (fast) and starts it again on the same
// port, so URLs handed out before stay valid.
func (c *Cluster) Restart(ctx context.Context) error {
	if c.running() {
		if err := c.Stop(ctx); err != nil {
			return err
		}
	}
	if err := c.removeStalePIDFile(); err != nil {
		return err
	}
	if !portFree(c.port) {
		return fmt.Errorf("pgcluster: cannot restart %s: port %d is taken", c.dir, c.port)
	}
	return c.start(ctx)
}

// StopDir immediately stops a server left running from dir by a process
// that is gone (a crashed test binary, say) without starting anything.
// It is a no-op when no server runs from dir.
func StopDir(dir string) error {
	c, err := newCluster(dir, nil)
	if err != nil {
		return err
	}
	return c.StopImmediate()
}

func (c *Cluster) stop(ctx context.Context, mode string) error {
	if !c.running() {
		return nil
	}
	if out, err := c.pg(ctx, "pg_ctl", "stop", "-D", c.data, "-m", mode, "-w", "-t", "60"); err != nil {
		return fmt.Errorf("pgcluster: pg_ctl stop -m %s: %w: %s", mode, err, out)
	}
	return nil
}

// CreateDatabase creates database name on the server at adminURL, copied from
// template when template is not empty. It is a no-op when name exists.
func CreateDatabase(ctx context.Context, adminURL, name, template string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("pgcluster: connect: %w", err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil || exists {
		return err
	}
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	_, err = conn.Exec(ctx, sql)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: created concurrently
		return nil
	}
	if err != nil {
		return fmt.Errorf("pgcluster: %s: %w", sql, err)
	}
	return nil
}

// prepareDir creates Dir and, when we are root, hands it to the postgres user.
func (c *Cluster) prepareDir() error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	if c.owner == nil {
		return nil
	}
	if err := os.Chown(c.dir, c.owner.uid, c.owner.gid); err != nil {
		return err
	}
	return c.owner.checkReachable(c.dir)
}

func (c *Cluster) initdb(ctx context.Context) error {
	c.logf("pgcluster: initdb %s", c.data)
	args := []string{"-D", c.data, "-U", superuser, "-E", "UTF8", "--locale=C", "--auth=trust"}
	if c.noSync {
		args = append(args, "--no-sync")
	}
	if out, err := c.pg(ctx, "initdb", args...); err != nil {
		_ = os.RemoveAll(c.data) // a half-made cluster would block the next attempt
		return fmt.Errorf("pgcluster: initdb: %w: %s", err, out)
	}
	// Only loopback and the socket: listen_addresses keeps everyone else out,
	// this keeps it so even if someone widens listen_addresses by hand.
	hba := "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"
	if err := c.writeFile(filepath.Join(c.data, "pg_hba.conf"), hba); err != nil {
		return err
	}
	// relief.conf is rewritten by every start (port, socket dir), so a manual
	// `pg_ctl -D pgdata start` behaves the same as ours.
	f, err := os.OpenFile(filepath.Join(c.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString("\n# written by relief pgcluster\ninclude_if_exists = 'relief.conf'\n")
	return errors.Join(err, f.Close())
}

// adoptRunning reports whether a server from this data dir is already up
// (typically left by a `relief dev` that was killed) and, if so, takes it over.
// A postmaster.pid whose process is gone is removed, as PostgreSQL would be
// fooled by its PID having been reused.
func (c *Cluster) adoptRunning(ctx context.Context) (bool, error) {
	pid, port, ok := c.readPIDFile()
	if !ok || !isPostgres(pid) {
		return false, c.removeStalePIDFile()
	}
	c.port = port
	deadline := time.Now().Add(10 * time.Second) // it may still be starting up
	for {
		if err := ping(ctx, c.URL("postgres")); err == nil {
			c.logf("pgcluster: reusing the server already running from %s (pid %d, port %d)", c.dir, pid, port)
			return true, c.recordPort()
		} else if time.Now().After(deadline) {
			return false, fmt.Errorf("pgcluster: a server from %s is running (pid %d, port %d) but does not accept connections (%v); stop it with: pg_ctl -D %s stop -m fast", c.dir, pid, port, err, c.data)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// removeStalePIDFile removes the lock files of a postmaster that is gone.
// PostgreSQL removes them itself unless the dead PID now belongs to another process.
func (c *Cluster) removeStalePIDFile() error {
	pid, port, ok := c.readPIDFile()
	if ok && isPostgres(pid) {
		return nil
	}
	if err := removeIfExists(filepath.Join(c.data, "postmaster.pid")); err != nil || !ok {
		return err // without a readable PID file there is no port, hence no socket lock to find
	}
	c.logf("pgcluster: removed stale postmaster.pid (pid %d is no PostgreSQL process)", pid)
	return removeIfExists(filepath.Join(c.dir, fmt.Sprintf(".s.PGSQL.%d.lock", port)))
}

// startFresh picks the port and starts the server, retrying with another port
// when a port we chose is grabbed by someone else before PostgreSQL binds it.
func (c *Cluster) startFresh(ctx context.Context, port int) error {
	if port != 0 {
		c.port = port
		return c.start(ctx)
	}
	if p := c.recordedPort(); p != 0 && portFree(p) {
		c.port = p
	}
	for attempt := 0; ; attempt++ {
		if c.port == 0 {
			p, err := freePort()
			if err != nil {
				return err
			}
			c.port = p
		}
		err := c.start(ctx)
		if err == nil || attempt == 2 || portFree(c.port) {
			return err
		}
		c.logf("pgcluster: port %d was taken meanwhile; trying another", c.port)
		c.port = 0
	}
}

func (c *Cluster) start(ctx context.Context) error {
	if err := c.writeConf(); err != nil {
		return err
	}
	logFile := filepath.Join(c.dir, "postgres.log")
	t0 := time.Now()
	if out, err := c.pg(ctx, "pg_ctl", "start", "-D", c.data, "-l", logFile, "-w", "-t", "60"); err != nil {
		return fmt.Errorf("pgcluster: pg_ctl start: %w: %s\n%s: …\n%s", err, out, logFile, tail(logFile, 15))
	}
	c.logf("pgcluster: PostgreSQL up on 127.0.0.1:%d in %v (data %s)", c.port, time.Since(t0).Round(time.Millisecond), c.data)
	return c.recordPort()
}

// writeConf writes the settings that may change between starts. Durability
// settings stay at PostgreSQL's defaults (fsync, synchronous_commit on)
// unless NoSync asks otherwise.
func (c *Cluster) writeConf() error {
	socketDir := c.dir
	// A unix socket path is limited to 107 bytes; without a socket, TCP still works.
	if len(filepath.Join(socketDir, ".s.PGSQL.65535")) > 107 {
		socketDir = ""
	}
	conf := fmt.Sprintf(`# Rewritten by relief pgcluster at every start; edit postgresql.conf instead.
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = %s
max_connections = 200
`, c.port, confQuote(socketDir))
	if c.noSync {
		// Throwaway test clusters: PostgreSQL's defaults, minus the fsyncs.
		conf += "fsync = off\n"
	} else {
		conf += writeHeavySettings(memTotal(), c.walCompression())
	}
	return c.writeFile(filepath.Join(c.data, "relief.conf"), conf)
}

// writeHeavySettings is the part of a durable cluster's configuration that
// lets it take a surge of claims without pauses (README, Capacity): each
// setting was measured at 3,300 claims/s on a database of 540,000 claims.
func writeHeavySettings(memBytes int64, walCompression string) string {
	return fmt.Sprintf(`# A quarter of the machine's memory: the intake tables and their indexes
# grow ~2.3 kB a claim, and once they outgrow shared_buffers every insert
# evicts a dirty page and writes it out (p99 184 ms at 3,300 claims/s on
# 540,000 claims with 1GB; no backend writes at all with 4GB).
shared_buffers = %dMB
# Checkpoints far apart: after each one every page is first written to the
# WAL whole, and with the default 1GB a surge forced one every ~90 s.
# Compressing those full-page images halves the burst that follows
# (p99 290 ms -> 145 ms in a run with a checkpoint in it).
max_wal_size = 16GB
checkpoint_timeout = 15min
wal_compression = %s
# New WAL segments are not zero-filled: PostgreSQL fills a new 16MB segment
# while holding the WAL write lock, and each one (every ~1.6 s at 3,300
# claims/s) stopped every commit for 150-200 ms. Segments kept for reuse
# after a checkpoint (min_wal_size) need no filling either.
wal_init_zero = off
min_wal_size = 2GB
`, sharedBuffersMB(memBytes), walCompression)
}

// sharedBuffersMB is a quarter of memBytes, at least 128MB (PostgreSQL's
// default) and at most 8GB; 1GB when the memory size is unknown.
func sharedBuffersMB(memBytes int64) int64 {
	if memBytes <= 0 {
		return 1024
	}
	return min(max(memBytes/4>>20, 128), 8192)
}

// memTotal is the machine's memory in bytes (MemTotal of /proc/meminfo), or
// 0 when it cannot be read.
func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// walCompression is lz4 when this PostgreSQL was built with it (several
// times cheaper in CPU than pglz), else pglz ("on").
func (c *Cluster) walCompression() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.pg(ctx, "postgres", "-D", c.data, "-C", "wal_compression", "-c", "wal_compression=lz4"); err == nil {
		return "lz4"
	}
	return "on"
}

// running reports whether the postmaster of this cluster is alive.
func (c *Cluster) running() bool {
	pid, _, ok := c.readPIDFile()
	return ok && isPostgres(pid)
}

// readPIDFile returns the PID (line 1) and port (line 4) of postmaster.pid.
func (c *Cluster) readPIDFile() (pid, port int, ok bool) {
	b, err := os.ReadFile(filepath.Join(c.data, "postmaster.pid"))
	if err != nil {
		return 0, 0, false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, 0, false
	}
	pid, err1 := strconv.Atoi(strings.TrimSpace(lines[0]))
	port, err2 := strconv.Atoi(strings.TrimSpace(lines[3]))
	return pid, port, err1 == nil && err2 == nil && pid > 0
}

// The port file lets a second start reuse the port, so URLs saved by
// developers (psql, IDE) keep working across restarts.
func (c *Cluster) portFile() string { return filepath.Join(c.dir, "port") }

func (c *Cluster) recordedPort() int {
	b, _ := os.ReadFile(c.portFile())
	p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return p
}

func (c *Cluster) recordPort() error {
	return os.WriteFile(c.portFile(), []byte(strconv.Itoa(c.port)+"\n"), 0o644)
}

// pg runs a PostgreSQL program from the bin dir, as the postgres user when we are root.
func (c *Cluster) pg(ctx context.Context, prog string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, prog)
	if c.owner != nil {
		args = append([]string{"-u", c.owner.name, "--", path}, args...)
		path = "runuser"
	}
	cmd := exec.CommandContext(ctx, path, args...)
	// The caller's cwd may be unreadable for the postgres user; LC_ALL=C
	// keeps the messages we quote in errors in one language.
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return bytes.TrimSpace(out.Bytes()), err
}

// writeFile writes a file PostgreSQL must read.
func (c *Cluster) writeFile(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	if c.owner != nil {
		return os.Chown(path, c.owner.uid, c.owner.gid)
	}
	return nil
}

// findBinDir locates initdb and pg_ctl: pg_config's bindir, else the highest
// /usr/lib/postgresql/N/bin (Debian), else $PATH.
func findBinDir() (string, error) {
	has := func(dir string) bool {
		for _, p := range []string{"initdb", "pg_ctl"} {
			if st, err := os.Stat(filepath.Join(dir, p)); err != nil || st.IsDir() {
				return false
			}
		}
		return true
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); has(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return pgVersion(b) - pgVersion(a) })
	for _, dir := range dirs {
		if has(dir) {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if dir := filepath.Dir(p); has(dir) {
			return dir, nil
		}
	}
	return "", errors.New("pgcluster: PostgreSQL server binaries (initdb, pg_ctl) not found; install PostgreSQL 15+ (Debian: apt-get install postgresql) or set DATABASE_URL")
}

// pgVersion is N of /usr/lib/postgresql/N/bin.
func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

type osUser struct {
	name     string
	uid, gid int
	groups   []int
}

func lookupUser(name string) (*osUser, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	o := &osUser{name: name}
	o.uid, _ = strconv.Atoi(u.Uid)
	o.gid, _ = strconv.Atoi(u.Gid)
	gids, _ := u.GroupIds()
	for _, g := range gids {
		n, _ := strconv.Atoi(g)
		o.groups = append(o.groups, n)
	}
	return o, nil
}

// checkReachable makes sure the user can traverse every parent of dir. Parents
// inside the temp dir (tests: t.TempDir and os.MkdirTemp make 0700 dirs) get
// o+x, which lets others pass through but not list them; anywhere else we
// touch nothing and explain, since loosening a home directory is the
// owner's call.
func (o *osUser) checkReachable(dir string) error {
	tmp, _ := filepath.Abs(os.TempDir())
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if !o.canSearch(st) {
			if rel, err := filepath.Rel(tmp, p); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
				if err := os.Chmod(p, st.Mode().Perm()|0o001); err != nil {
					return err
				}
			} else {
				return fmt.Errorf("pgcluster: PostgreSQL runs as the %q user, which cannot reach %s because %s is not searchable by it; "+
					"choose a directory outside it (e.g. set RELIEF_HOME), run as a non-root user, use DATABASE_URL, or allow traversal with: chmod o+x %s",
					o.name, dir, p, p)
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func (o *osUser) canSearch(st os.FileInfo) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	mode := st.Mode().Perm()
	switch {
	case int(sys.Uid) == o.uid:
		return mode&0o100 != 0
	case int(sys.Gid) == o.gid || slices.Contains(o.groups, int(sys.Gid)):
		return mode&0o010 != 0
	default:
		return mode&0o001 != 0
	}
}

// isPostgres reports whether pid is a live PostgreSQL process, not an
// unrelated process that got a recycled PID (common in containers).
func isPostgres(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return true // no procfs: trust the signal check
	}
	return strings.HasPrefix(strings.TrimSpace(string(comm)), "postgres")
}

func ping(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// confQuote quotes a postgresql.conf string value.
func confQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	for s := bufio.NewScanner(f); s.Scan(); {
		lines = append(lines, s.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
