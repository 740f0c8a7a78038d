package handlers_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// Every JSON API route the router serves is in the OpenAPI document that
// integrators read (API.md: "The full API is described by an OpenAPI 3
// document"), with its method; nothing in the document is unserved.
func TestOpenAPIDescribesEveryAPIRoute(t *testing.T) {
	e := newSecEnv(t)
	rec := e.do(secReq{method: http.MethodGet, path: "/api/v1/openapi.json"})
	if rec.Code != http.StatusOK {
		t.Fatalf("openapi.json: %d", rec.Code)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("not an OpenAPI 3 document (%v): %.200s", err, rec.Body.String())
	}
	param := regexp.MustCompile(`:([a-zA-Z_]+)`)
	served := map[string]bool{}
	var missing []string
	for _, r := range e.srv.Routes() {
		if !strings.HasPrefix(r.Path, "/api/v1/") || r.Path == "/api/v1/openapi.json" || r.Method == http.MethodHead {
			continue
		}
		oaPath := strings.TrimPrefix(param.ReplaceAllString(r.Path, "{$1}"), "/api/v1")
		key := strings.ToLower(r.Method) + " " + oaPath
		served[key] = true
		if _, ok := doc.Paths[oaPath][strings.ToLower(r.Method)]; !ok {
			if _, ok := doc.Paths["/api/v1"+oaPath][strings.ToLower(r.Method)]; !ok {
				missing = append(missing, r.Method+" "+r.Path)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d API routes are not in openapi.json:\n  %s", len(missing), strings.Join(missing, "\n  "))
	}
	if len(served) < 30 {
		t.Fatalf("only %d API routes seen: the route walk is broken", len(served))
	}
}
