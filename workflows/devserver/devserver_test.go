package devserver

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

const namespace = "relief"

var programKey = temporal.NewSearchAttributeKeyKeyword("ReliefProgram")

func greet(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var out string
	err := workflow.ExecuteActivity(ctx, greeting, name).Get(ctx, &out)
	return out, err
}

func greeting(ctx context.Context, name string) (string, error) {
	activity.GetLogger(ctx).Info("greeting")
	return "안녕하세요, " + name, nil
}

// runGreet runs the greet workflow to completion with a worker of its own.
func runGreet(t *testing.T, s *Server, workflowID string) {
	t.Helper()
	t0 := time.Now()
	c := dial(t, s)
	defer c.Close()
	w := worker.New(c, "greet", worker.Options{})
	w.RegisterWorkflow(greet)
	w.RegisterActivity(greeting)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{
		ID:                    workflowID,
		TaskQueue:             "greet",
		TypedSearchAttributes: temporal.NewSearchAttributes(programKey.ValueSet("KPOST-2025-NIRS")),
	}, greet, "김민준")
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := run.Get(t.Context(), &got); err != nil || got != "안녕하세요, 김민준" {
		t.Fatalf("result %q, %v", got, err)
	}
	t.Logf("workflow %s completed in %v", workflowID, time.Since(t0).Round(time.Millisecond))
}

func start(t *testing.T, opts Options) *Server {
	t.Helper()
	t0 := time.Now()
	s, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Start took %v (frontend %s)", time.Since(t0).Round(time.Millisecond), s.HostPort())
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func stop(t *testing.T, s *Server) {
	t.Helper()
	t0 := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Stop took %v", time.Since(t0).Round(time.Millisecond))
}

func dial(t *testing.T, s *Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: s.HostPort(), Namespace: namespace, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func describe(t *testing.T, c client.Client, workflowID string) enumspb.WorkflowExecutionStatus {
	t.Helper()
	d, err := c.DescribeWorkflowExecution(t.Context(), workflowID, "")
	if err != nil {
		t.Fatalf("describe %s: %v", workflowID, err)
	}
	return d.WorkflowExecutionInfo.Status
}

// TestRestartKeepsWorkflows is the `relief dev` cycle: run a workflow, stop,
// start again on the same file, find the workflow.
func TestRestartKeepsWorkflows(t *testing.T) {
	var logs bytes.Buffer
	opts := Options{
		DBPath:           filepath.Join(t.TempDir(), "temporal.db"),
		Namespace:        namespace,
		SearchAttributes: map[string]enumspb.IndexedValueType{programKey.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD},
		Logger:           slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	s := start(t, opts)
	runGreet(t, s, "greet-1")
	stop(t, s)

	// The new search attribute stands for one added by a later relief version.
	opts.SearchAttributes["ReliefStatus"] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	s = start(t, opts)
	c := dial(t, s)
	if st := describe(t, c, "greet-1"); st != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("after restart: status %v", st)
	}
	sas, err := c.OperatorService().ListSearchAttributes(t.Context(), &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		t.Fatal(err)
	}
	for name := range opts.SearchAttributes {
		if _, ok := sas.CustomAttributes[name]; !ok {
			t.Errorf("search attribute %s missing after restart", name)
		}
	}
	stop(t, s)

	// SQLite connections live as long as the process (the server's pool never
	// closes them), so only a new process proves the data is in the file. It
	// is also where the frontend port is reused, as after a `relief dev` restart.
	cmd := exec.Command(os.Args[0], "-test.run=^TestReopenInNewProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "DEVSERVER_REOPEN="+opts.DBPath, "DEVSERVER_HOSTPORT="+s.HostPort())
	out, err := cmd.CombinedOutput()
	t.Logf("new process:\n%s", out)
	if err != nil {
		t.Fatal(err)
	}

	header := make([]byte, 20)
	f, err := os.Open(opts.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Read(header); err != nil || header[18] != 2 || header[19] != 2 { // bytes 18-19: file format versions, 2 = WAL
		t.Errorf("database is not in WAL mode (header %v, %v)", header[18:20], err)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if line != "" && !strings.Contains(line, "level=WARN") && !strings.Contains(line, "level=ERROR") {
			t.Errorf("server logged below WARN: %s", line)
		}
	}
	t.Logf("server WARN+ logs:\n%s", logs.String())
}

func TestReopenInNewProcess(t *testing.T) {
	db := os.Getenv("DEVSERVER_REOPEN")
	if db == "" {
		t.Skip("helper for TestRestartKeepsWorkflows")
	}
	s := start(t, Options{DBPath: db, Namespace: namespace})
	if want := os.Getenv("DEVSERVER_HOSTPORT"); s.HostPort() != want {
		t.Errorf("frontend on %s, want the saved %s", s.HostPort(), want)
	}
	if st := describe(t, dial(t, s), "greet-1"); st != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("status %v", st)
	}
	runGreet(t, s, "greet-2") // and it still runs new work
	stop(t, s)
}

func TestSideBySide(t *testing.T) {
	aDB := filepath.Join(t.TempDir(), "a.db")
	a := start(t, Options{DBPath: aDB, Namespace: namespace})
	b := start(t, Options{DBPath: filepath.Join(t.TempDir(), "b.db"), Namespace: namespace})
	if a.HostPort() == b.HostPort() {
		t.Fatalf("both on %s", a.HostPort())
	}
	for _, s := range []*Server{a, b} {
		if _, err := dial(t, s).CheckHealth(t.Context(), &client.CheckHealthRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Start(t.Context(), Options{DBPath: aDB}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second server on the same file: %v", err)
	}
}
