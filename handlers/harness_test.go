package handlers_test

// What the test environments of package handlers_test share (apiServer,
// expEnv, instEnv, reviewEnv, secEnv): a store on a fresh database with the
// demo program, the real handler chain served over loopback with every 5xx
// reported, and the HTTP round trip of their clients.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/relief/relief/cmd/relief/config"
	"github.com/relief/relief/handlers"
	"github.com/relief/relief/models"
	"github.com/relief/relief/models/pgtest"
	"github.com/relief/relief/models/vault"
	"github.com/relief/relief/web"
)

// newTestStore opens a store on a fresh database seeded with the demo
// program, and the server's configuration for it. env adds to (or overrides)
// the environment the configuration is read from.
func newTestStore(t *testing.T, env map[string]string) (*models.Store, *config.Config) {
	t.Helper()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	vars := map[string]string{"DATABASE_URL": db, "RELIEF_DATA_KEY": vault.NewKeySpec("t1"), "RELIEF_ADDR": "127.0.0.1:0"}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.FromEnv(config.ModeServe, func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	store, err := models.Open(ctx, db, 16, cfg.Vault)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if err := store.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	return store, cfg
}

// newTestServer is the server on deps (Store and Config set), with the real
// templates and, unless deps has one, a log that goes nowhere.
func newTestServer(t *testing.T, deps handlers.Deps) *handlers.Server {
	t.Helper()
	renderer, err := web.New()
	if err != nil {
		t.Fatal(err)
	}
	deps.Web = renderer
	if deps.Log == nil {
		deps.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return handlers.New(deps)
}

// serveTest serves srv's handler chain over a loopback socket and
// returns its URL. Every 5xx it answers fails the test when it ends (why
// says what that means), except for the "METHOD /path"s in expected.
func serveTest(t *testing.T, srv *handlers.Server, why string, expected ...string) string {
	t.Helper()
	var mu sync.Mutex
	var failures []string
	h := srv.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		if rec.status >= 500 {
			mu.Lock()
			failures = append(failures, r.Method+" "+r.URL.Path)
			mu.Unlock()
		}
	}))
	t.Cleanup(hs.Close)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, f := range failures {
			if !slices.Contains(expected, f) {
				t.Errorf("server error for %s%s", f, why)
			}
		}
	})
	return hs.URL
}

// statusRecorder notes the status a handler answers.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }

// Flush keeps streaming responses streaming through the recorder.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// jsonBody is v as a JSON request body.
func jsonBody(t *testing.T, v any) io.Reader {
	t.Helper()
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(j)
}

// roundTrip sends a request with body (of contentType, when there is one) and
// header, pairs of name and value, and reads the whole answer.
func roundTrip(t *testing.T, hc *http.Client, method, url string, body io.Reader, contentType string, header []string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, out
}
