package config

import (
	"strings"
	"testing"
	"time"

	"github.com/relief/relief/models/vault"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestDevDefaults(t *testing.T) {
	c, err := FromEnv(ModeDev, env())
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.Home != "./var" || c.TemporalNamespace != "default" || c.DatabaseURL != "" || c.TemporalAddress != "" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
	if c.SessionIdle != 30*time.Minute || c.MaxInFlight != 1024 {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestServeNeedsDatabaseAndKey(t *testing.T) {
	_, err := FromEnv(ModeServe, env())
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL is required") || !strings.Contains(err.Error(), "RELIEF_DATA_KEY is required") {
		t.Fatalf("want both problems reported, got %v", err)
	}
	c, err := FromEnv(ModeServe, env("DATABASE_URL", "postgres://u@db:5432/relief", "RELIEF_DATA_KEY", vault.NewKeySpec("k1")))
	if err != nil {
		t.Fatal(err)
	}
	if c.TemporalAddress != "localhost:7233" || c.Vault == nil || c.Vault.ActiveKeyID() != "k1" {
		t.Fatalf("got %+v", c)
	}
}

func TestInvalidValuesNameTheVariable(t *testing.T) {
	cases := map[string][]string{
		"DATABASE_URL":            {"DATABASE_URL", "mysql://x"},
		"TEMPORAL_ADDRESS":        {"TEMPORAL_ADDRESS", "nohostport"},
		"RELIEF_ADDR":             {"RELIEF_ADDR", "8080"},
		"RELIEF_MAX_INFLIGHT":     {"RELIEF_MAX_INFLIGHT", "0"},
		"RELIEF_DISPATCH_RATE":    {"RELIEF_DISPATCH_RATE", "-1"},
		"RELIEF_INTAKE_RATE":      {"RELIEF_INTAKE_RATE", "-5"},
		"RELIEF_INTAKE_WRITERS":   {"RELIEF_INTAKE_WRITERS", "0"},
		"RELIEF_LOG_LEVEL":        {"RELIEF_LOG_LEVEL", "loud"},
		"RELIEF_SESSION_IDLE":     {"RELIEF_SESSION_IDLE", "soon"},
		"RELIEF_SECURE_COOKIES":   {"RELIEF_SECURE_COOKIES", "yes please"},
		"RELIEF_DATA_KEY":         {"RELIEF_DATA_KEY", "k1:short"},
		"RELIEF_DEMO_PASSWORD":    {"RELIEF_DEMO_PASSWORD", "short"},
		"RELIEF_SESSION_ABSOLUTE": {"RELIEF_SESSION_ABSOLUTE", "1m"},
	}
	for name, kv := range cases {
		_, err := FromEnv(ModeDev, env(kv...))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: want an error naming it, got %v", name, err)
		}
	}
}
