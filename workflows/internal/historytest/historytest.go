// Package historytest holds what the replay and record tests of the workflow
// packages share. Every workflow package commits recorded histories under
// testdata/histories; its tests
//
//   - replay each of them against today's workflow (ReplayCommitted): a
//     failure means a change is not compatible with workflows already
//     running, and must be guarded with workflow.GetVersion;
//   - prove that replay can fail, with a deliberately incompatible variant of
//     the workflow (ReplayRejects);
//   - record a new history from a real run, only with RELIEF_RECORD_HISTORY=1
//     (SkipUnlessRecording, Path, Record).
//
// Record a new history whenever a workflow changes shape, under a new file
// name (RELIEF_RECORD_FILE), and keep the old files: every one of them must go
// on replaying.
package historytest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/temporaltest"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/pgtest"
	"github.com/relief/relief/models/vault"
)

// EnvRecord turns on the TestRecordHistory of a workflow package.
const EnvRecord = "RELIEF_RECORD_HISTORY"

// EnvFile names the file (a base name inside testdata/histories) that
// TestRecordHistory writes instead of its default.
const EnvFile = "RELIEF_RECORD_FILE"

// Dir is where the committed histories are, relative to the package under test.
var Dir = filepath.Join("testdata", "histories")

// Recording reports whether a history is being recorded (EnvRecord=1).
func Recording() bool { return os.Getenv(EnvRecord) == "1" }

// Main is TestMain for a package whose unit and replay tests need no
// database: it starts PostgreSQL only when a history is being recorded.
func Main(m *testing.M) {
	if Recording() {
		pgtest.Main(m)
		return
	}
	os.Exit(m.Run())
}

// SkipUnlessRecording skips a TestRecordHistory unless EnvRecord=1.
func SkipUnlessRecording(t testing.TB) {
	t.Helper()
	if !Recording() {
		t.Skip("records a history only with " + EnvRecord + "=1")
	}
}

// Files lists the committed histories; there must be at least one.
func Files(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(Dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no histories in %s: record one (see TestRecordHistory)", filepath.ToSlash(Dir))
	}
	return files
}

// replay replays one history file against wf registered under name.
func replay(name string, wf any, logger tlog.Logger, file string) error {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: name})
	return r.ReplayWorkflowHistoryFromJSONFile(logger, file)
}

// ReplayCommitted replays every committed history, one subtest each, against
// wf registered as the workflow type name.
func ReplayCommitted(t *testing.T, name string, wf any) {
	t.Helper()
	for _, file := range Files(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			if err := replay(name, wf, nil, file); err != nil {
				t.Fatalf("%s does not replay: %v", file, err)
			}
		})
	}
}

// ReplayRejects proves the replay test can fail: every committed history
// must be rejected by incompatible, a variant of the workflow with a change
// that is not backward compatible, registered under name. without describes
// that variant for the failure message ("a workflow without ...").
func ReplayRejects(t *testing.T, name string, incompatible any, without string) {
	t.Helper()
	quiet := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))) // the mismatch is expected
	for _, file := range Files(t) {
		if err := replay(name, incompatible, quiet, file); err == nil {
			t.Fatalf("%s replayed against a workflow %s", file, without)
		}
	}
}

// OpenStore opens a store on a fresh pgtest database (the package's TestMain
// must be Main or pgtest.Main), seeds the demo program and then runs the
// further seeds, such as (*models.Store).SeedInstruments; the store is closed
// when the test ends.
func OpenStore(ctx context.Context, t testing.TB, seeds ...func(*models.Store, context.Context) error) *models.Store {
	t.Helper()
	v, err := vault.Parse(vault.NewKeySpec("rec"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := models.Open(ctx, pgtest.NewDB(t), 8, v)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	for _, seed := range append([]func(*models.Store, context.Context) error{(*models.Store).Seed}, seeds...) {
		if err := seed(store, ctx); err != nil {
			t.Fatal(err)
		}
	}
	return store
}

// StartWorker starts a Temporal server for the test and one worker on
// taskQueue with what register registers; the worker stops when the test
// ends. It returns the server's client.
func StartWorker(t *testing.T, taskQueue string, register func(worker.Worker)) client.Client {
	t.Helper()
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	c := ts.GetDefaultClient()
	w := worker.New(c, taskQueue, worker.Options{})
	register(w)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return c
}

// Staff creates a staff user of the KPOST agency with role.
func Staff(ctx context.Context, t testing.TB, store *models.Store, email, role string) *models.User {
	t.Helper()
	u, err := store.CreateUser(ctx, models.NewUser{Email: email, Name: "직원", Password: "correct horse", Roles: []string{role}, Agency: "KPOST"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// DemoClaim is a claim on the demo program by the business with brn.
func DemoClaim(brn string) *models.ClaimInput {
	return &models.ClaimInput{Program: models.DemoProgram, BRN: brn, BusinessName: "상회", Representative: "대표",
		Phone: "010-1234-5678", Category: "food", Region: "대전", ClaimedLoss: 3_000_000,
		Bank: models.BankInput{BankCode: "004", AccountNumber: "12345678901234", Holder: "대표"}}
}

// FileClaims has n new merchants, m<i>@example.kr, file one claim each: the
// one claim(i) returns.
func FileClaims(ctx context.Context, t testing.TB, store *models.Store, n int, claim func(i int) *models.ClaimInput) {
	t.Helper()
	for i := range n {
		u, err := store.CreateUser(ctx, models.NewUser{Email: fmt.Sprintf("m%d@example.kr", i), Name: "상인", Password: "correct horse", Roles: []string{models.RoleMerchant}})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := store.FileClaim(ctx, u, "k", models.RequestHash("POST", "/api/v1/claims", []byte{byte(i)}), claim(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// Path is the file TestRecordHistory writes: name in Dir, unless EnvFile
// names another one.
func Path(name string) string {
	if n := os.Getenv(EnvFile); n != "" {
		name = filepath.Base(n)
	}
	return filepath.Join(Dir, name)
}

// NewPath is Path for packages that never overwrite a committed history: it
// fails the test when the file exists, since that file is the proof that
// workflows started by an older version still replay.
func NewPath(t testing.TB, name string) string {
	t.Helper()
	path := Path(name)
	if _, err := os.Stat(path); err == nil {
		t.Fatalf("%s exists and must stay as it is: name a new file with %s", path, EnvFile)
	}
	return path
}

// Fetch reads the whole history of a workflow.
func Fetch(ctx context.Context, c client.Client, workflowID string) (*historypb.History, error) {
	it := c.GetWorkflowHistory(ctx, workflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, err
		}
		h.Events = append(h.Events, e)
	}
	return h, nil
}

// Write writes h to path as protojson, the format of
// `temporal workflow show --output json` that the replayer reads.
func Write(t testing.TB, path string, h *historypb.History) {
	t.Helper()
	out, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: %d events", path, len(h.Events))
}

// Record fetches the history of workflowID and writes it to Path(name).
func Record(ctx context.Context, t testing.TB, c client.Client, workflowID, name string) {
	t.Helper()
	h, err := Fetch(ctx, c, workflowID)
	if err != nil {
		t.Fatal(err)
	}
	Write(t, Path(name), h)
}
