// Package devserver runs the Temporal server embedded in `relief dev`: all
// services in-process, state in one SQLite file, every port on 127.0.0.1 and
// chosen by the system, so two copies (two checkouts, a test next to a
// running `relief dev`) never collide.
//
// The setup follows go.temporal.io/server/temporaltest/internal/lite_server.go
// (Temporal Technologies, MIT licence), which is internal to that module; the
// differences are static membership instead of ringpop, a persisted frontend
// port, SQLite pragmas that take effect, search attributes reconciled at
// boot, a lock against two servers on one file, and quiet slog logging.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

// Options configure Start.
type Options struct {
	// DBPath is the SQLite file; created with the schema on first start.
	DBPath string
	// Namespace is registered at every start if missing ("default" when empty).
	Namespace string
	// SearchAttributes are added to the namespace when missing.
	SearchAttributes map[string]enumspb.IndexedValueType
	// Logger receives the server's WARN and ERROR records; nil discards them.
	Logger *slog.Logger
}

// Server is a running embedded Temporal server.
type Server struct {
	srv      temporal.Server
	hostPort string
	logs     *gate
	lock     *os.File
	stopOnce sync.Once
	stopErr  error
}

const (
	host        = "127.0.0.1"
	clusterName = "active"
)

// Start boots the server and returns once a client can connect, the namespace
// is served and its search attributes exist.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.DBPath == "" {
		return nil, errors.New("devserver: Options.DBPath is required")
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	dbPath, err := filepath.Abs(opts.DBPath)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o755); err != nil {
		return nil, err
	}
	lock, err := lockFile(dbPath + ".lock")
	if err != nil {
		return nil, err
	}
	s, err := boot(ctx, opts, dbPath)
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	s.lock = lock
	return s, nil
}

func boot(ctx context.Context, opts Options, dbPath string) (*Server, error) {
	sqlConfig := &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: dbPath,
		// Keys other than SQLite URI parameters become pragmas (lite_server.go
		// prefixes them with "_", which SQLite ignores as unknown). WAL lets
		// readers run beside the writer; synchronous=normal is durable
		// across crashes of this process (the fault `relief dev` meets),
		// though an OS crash may lose the last commits: PostgreSQL, not
		// Temporal, is the system of record, and the outbox starts lost
		// workflows again.
		ConnectAttributes: map[string]string{"mode": "rwc", "journal_mode": "wal", "synchronous": "normal"},
	}
	if err := setupSchema(sqlConfig, dbPath); err != nil {
		return nil, err
	}
	ns, err := sqlite.NewNamespaceConfig(clusterName, opts.Namespace, false, opts.SearchAttributes)
	if err != nil {
		return nil, fmt.Errorf("devserver: namespace %q: %w", opts.Namespace, err)
	}
	if err := sqlite.CreateNamespaces(sqlConfig, ns); err != nil { // no-op when it exists
		return nil, fmt.Errorf("devserver: register namespace: %w", err)
	}

	ports, err := pickPorts(dbPath+".port", len(services))
	if err != nil {
		return nil, err
	}
	cfg := serverConfig(sqlConfig, ports)
	logs := &gate{}
	logger := newServerLogger(opts.Logger, logs)
	authorizer, err := authorization.GetAuthorizerFromConfig(&cfg.Global.Authorization)
	if err != nil {
		return nil, err
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&cfg.Global.Authorization, logger)
	if err != nil {
		return nil, err
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(staticHosts(ports)),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dynamicconfig.StaticClient{
			// Search attributes added at boot are usable at once.
			dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
			// Relief does not use Nexus, which would want an HTTP port and warn without one.
			dynamicconfig.EnableNexus.Key(): false,
		}),
	)
	if err != nil {
		logs.close(true)
		return nil, fmt.Errorf("devserver: %w", err)
	}
	if err := srv.Start(); err != nil {
		logs.close(true)
		return nil, fmt.Errorf("devserver: start: %w", err)
	}
	s := &Server{srv: srv, hostPort: cfg.PublicClient.HostPort, logs: logs}
	if err := s.ready(ctx, opts); err != nil {
		logs.close(true)
		_ = srv.Stop()
		return nil, err
	}
	logs.open()
	return s, nil
}

// HostPort is the frontend address for clients and workers.
func (s *Server) HostPort() string { return s.hostPort }

// Stop shuts the server down and releases the database file. Safe to call twice.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.logs.close(false)
		s.stopErr = errors.Join(s.srv.Stop(), s.lock.Close())
	})
	return s.stopErr
}

// ready waits until the namespace answers, then adds missing search attributes:
// namespaces made by an earlier version of relief lack the newer ones.
func (s *Server) ready(ctx context.Context, opts Options) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	// Dial checks the connection; CheckHealth the frontend; DescribeNamespace
	// that the namespace cache has loaded ours.
	var c client.Client
	err := retry(ctx, func() (err error) {
		c, err = client.DialContext(ctx, client.Options{HostPort: s.hostPort, Namespace: opts.Namespace, Logger: slog.New(slog.DiscardHandler)})
		return err
	})
	if err != nil {
		return fmt.Errorf("devserver: dial %s: %w", s.hostPort, err)
	}
	defer c.Close()
	err = retry(ctx, func() error {
		if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			return err
		}
		_, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: opts.Namespace})
		return err
	})
	if err != nil {
		return fmt.Errorf("devserver: namespace %q not served: %w", opts.Namespace, err)
	}
	if len(opts.SearchAttributes) == 0 {
		return nil
	}
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: opts.Namespace})
	if err != nil {
		return fmt.Errorf("devserver: list search attributes: %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range opts.SearchAttributes {
		got, ok := have.CustomAttributes[name]
		switch {
		case !ok:
			missing[name] = typ
		case got != typ:
			return fmt.Errorf("devserver: search attribute %s is %s in %s, want %s", name, got, opts.DBPath, typ)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: opts.Namespace, SearchAttributes: missing})
	if err != nil {
		return fmt.Errorf("devserver: add search attributes: %w", err)
	}
	return nil
}

// retry calls f every 100 ms until it succeeds or ctx ends.
func retry(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// setupSchema creates the schema in a new (or empty) database file. A file
// left half-made by a failed setup is removed so the next start retries.
func setupSchema(cfg *config.SQL, dbPath string) error {
	if st, err := os.Stat(dbPath); err == nil && st.Size() > 0 {
		return nil
	}
	if err := sqlite.SetupSchema(cfg); err != nil {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			_ = os.Remove(dbPath + suffix)
		}
		return fmt.Errorf("devserver: set up schema in %s: %w", dbPath, err)
	}
	return nil
}

// services in port order: ports[i] is the gRPC port of services[i].
var services = []primitives.ServiceName{primitives.FrontendService, primitives.HistoryService, primitives.MatchingService, primitives.WorkerService}

// staticHosts replaces ringpop membership. All services live in this process,
// so there is nothing to discover, and ringpop would seed itself from the
// previous run's members recorded in the database: after a restart, matching
// stayed unreachable for most of a minute and Stop took 8 s.
func staticHosts(ports []int) map[primitives.ServiceName]static.Hosts {
	hosts := map[primitives.ServiceName]static.Hosts{}
	for i, svc := range services {
		hosts[svc] = static.SingleLocalHost(net.JoinHostPort(host, strconv.Itoa(ports[i])))
	}
	return hosts
}

// serverConfig is lite_server.go's apply for a file database, without
// membership (see staticHosts), metrics and pprof listeners (nothing reads
// them in dev).
func serverConfig(sqlConfig *config.SQL, ports []int) *config.Config {
	frontend := net.JoinHostPort(host, strconv.Itoa(ports[0]))
	svcs := map[string]config.Service{}
	for i, svc := range services {
		svcs[string(svc)] = config.Service{RPC: config.RPC{GRPCPort: ports[i], BindOnIP: host}}
	}
	disabled := config.Archival{
		History:    config.HistoryArchival{State: "disabled"},
		Visibility: config.VisibilityArchival{State: "disabled"},
	}
	return &config.Config{
		Persistence: config.Persistence{
			DefaultStore:     sqliteplugin.PluginName,
			VisibilityStore:  sqliteplugin.PluginName,
			NumHistoryShards: 1,
			DataStores:       map[string]config.DataStore{sqliteplugin.PluginName: {SQL: sqlConfig}},
		},
		ClusterMetadata: &cluster.Config{
			EnableGlobalNamespace:    false,
			FailoverVersionIncrement: 10,
			MasterClusterName:        clusterName,
			CurrentClusterName:       clusterName,
			ClusterInformation: map[string]cluster.ClusterInformation{
				clusterName: {Enabled: true, InitialFailoverVersion: 1, RPCAddress: frontend},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services:            svcs,
		Archival:            disabled,
		// The server's own worker service dials the frontend through this.
		PublicClient: config.PublicClient{HostPort: frontend},
		NamespaceDefaults: config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
			History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
			Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
		}},
	}
}

// usedFrontends holds the frontend ports of servers started by this process.
// A stopped server leaves system workers behind that keep polling its
// frontend address, so a later server in the same process must not take it.
var usedFrontends sync.Map

// pickPorts returns n distinct free loopback ports, the first being the
// frontend. The frontend port is saved in portFile and reused while free, so
// workers and CLIs reconnecting after a restart find the server again.
func pickPorts(portFile string, n int) ([]int, error) {
	var ports []int
	b, _ := os.ReadFile(portFile)
	if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && !isUsedFrontend(p) {
		if l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p))); err == nil {
			_ = l.Close()
			ports = append(ports, p)
		}
	}
	// Hold every listener until all are chosen so the kernel hands out distinct ports.
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", host+":0")
		if err != nil {
			return nil, fmt.Errorf("devserver: pick a port: %w", err)
		}
		held = append(held, l)
		if p := l.Addr().(*net.TCPAddr).Port; !isUsedFrontend(p) && !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	usedFrontends.Store(ports[0], true)
	return ports, os.WriteFile(portFile, []byte(strconv.Itoa(ports[0])+"\n"), 0o644)
}

func isUsedFrontend(port int) bool {
	_, used := usedFrontends.Load(port)
	return used
}

// lockFile takes an exclusive lock: two servers writing one SQLite file would
// fight over it, so the second one fails clearly instead.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("devserver: %s is in use by another Temporal dev server (is another `relief dev` running?)", strings.TrimSuffix(path, ".lock"))
	}
	return f, nil
}
