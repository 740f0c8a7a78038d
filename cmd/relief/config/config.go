// Package config reads Relief's configuration from the environment and validates
// it at start, so a typo fails the boot with a clear message instead of at 3 a.m.
package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/relief/relief/models/vault"
)

// Config is the whole runtime configuration. Env names are in the field comments
// and in the README's configuration table.
type Config struct {
	DatabaseURL       string        // DATABASE_URL; empty in dev = start a private cluster
	DBMaxConns        int32         // RELIEF_DB_MAX_CONNS
	TemporalAddress   string        // TEMPORAL_ADDRESS; empty in dev = embedded server
	TemporalNamespace string        // TEMPORAL_NAMESPACE
	Addr              string        // RELIEF_ADDR
	Home              string        // RELIEF_HOME
	DataKey           string        // RELIEF_DATA_KEY (id:base64key[,...])
	DemoPassword      string        // RELIEF_DEMO_PASSWORD (dev only)
	LogLevel          string        // RELIEF_LOG_LEVEL: debug|info|warn|error
	MaxInFlight       int           // RELIEF_MAX_INFLIGHT: admission control bound
	StaffReserve      int           // RELIEF_STAFF_RESERVE: share of MaxInFlight kept for staff
	DispatchRate      int           // RELIEF_DISPATCH_RATE: workflow starts per second per process, 0 = unbounded
	IntakeWriters     int           // RELIEF_INTAKE_WRITERS: claim group statements in flight per process
	IntakeRate        int           // RELIEF_INTAKE_RATE: claim submissions admitted per second per web process, 0 = unbounded
	SessionIdle       time.Duration // RELIEF_SESSION_IDLE
	SessionAbsolute   time.Duration // RELIEF_SESSION_ABSOLUTE
	SecureCookies     bool          // RELIEF_SECURE_COOKIES: set Secure on cookies (behind TLS)
	BankURL           string        // RELIEF_BANK_URL: bank adapter endpoint (sandbox in dev)
	TLSCert           string        // RELIEF_TLS_CERT: PEM certificate (chain) file; with TLSKey, serve HTTPS
	TLSKey            string        // RELIEF_TLS_KEY: PEM private key file
	TrustedProxies    []string      // RELIEF_TRUSTED_PROXIES: CIDRs/IPs whose X-Forwarded-For is believed

	Vault *vault.Vault `json:"-"` // parsed DataKey
}

// Mode says which subcommand is validating, because needs differ.
type Mode int

const (
	ModeDev    Mode = iota // may start PostgreSQL, Temporal and a key itself
	ModeServe              // web server, needs everything external
	ModeWorker             // Temporal worker, same needs as serve
	ModeDB                 // migrate, seed, user: needs only the database
)

// FromEnv reads the environment (through getenv, for tests) and validates.
func FromEnv(mode Mode, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var errs []error
	str := func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			return v
		}
		return def
	}
	integer := func(key string, def, min, max int) int {
		v := str(key, "")
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < min || n > max {
			errs = append(errs, fmt.Errorf("%s=%q: want an integer in [%d, %d]", key, v, min, max))
			return def
		}
		return n
	}
	duration := func(key string, def time.Duration) time.Duration {
		v := str(key, "")
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a positive duration like 30m", key, v))
			return def
		}
		return d
	}
	boolean := func(key string) bool {
		v := str(key, "false")
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want true or false", key, v))
		}
		return b
	}

	c := &Config{
		DatabaseURL:       str("DATABASE_URL", ""),
		DBMaxConns:        int32(integer("RELIEF_DB_MAX_CONNS", 32, 2, 1000)),
		TemporalAddress:   str("TEMPORAL_ADDRESS", ""),
		TemporalNamespace: str("TEMPORAL_NAMESPACE", "default"),
		Addr:              str("RELIEF_ADDR", ":8080"),
		Home:              str("RELIEF_HOME", "./var"),
		DataKey:           str("RELIEF_DATA_KEY", ""),
		DemoPassword:      getenv("RELIEF_DEMO_PASSWORD"),
		LogLevel:          strings.ToLower(str("RELIEF_LOG_LEVEL", "info")),
		// Twice C × the 100 ms latency goal (Little's law) for the C measured
		// on 2 cores (~5,000 claims/s), plus the staff reserve: with 512 a
		// ramp step of 5,116/s within its p99 goal was turned away in short
		// stalls (README, Capacity). The surge bound is RELIEF_INTAKE_RATE.
		MaxInFlight:     integer("RELIEF_MAX_INFLIGHT", 1024, 1, 100000),
		StaffReserve:    integer("RELIEF_STAFF_RESERVE", 10, 0, 90),
		DispatchRate:    integer("RELIEF_DISPATCH_RATE", 0, 0, 100000),
		IntakeWriters:   integer("RELIEF_INTAKE_WRITERS", 2, 1, 64), // models.DefaultIntakeWriters
		IntakeRate:      integer("RELIEF_INTAKE_RATE", 0, 0, 1000000),
		SessionIdle:     duration("RELIEF_SESSION_IDLE", 30*time.Minute),
		SessionAbsolute: duration("RELIEF_SESSION_ABSOLUTE", 12*time.Hour),
		SecureCookies:   boolean("RELIEF_SECURE_COOKIES"),
		BankURL:         str("RELIEF_BANK_URL", ""),
		TLSCert:         str("RELIEF_TLS_CERT", ""),
		TLSKey:          str("RELIEF_TLS_KEY", ""),
	}
	for _, p := range strings.Split(str("RELIEF_TRUSTED_PROXIES", ""), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		_, _, cidrErr := net.ParseCIDR(p)
		if cidrErr != nil && net.ParseIP(p) == nil {
			errs = append(errs, fmt.Errorf("RELIEF_TRUSTED_PROXIES: %q is neither an IP address nor a CIDR", p))
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, p)
	}
	switch {
	case (c.TLSCert == "") != (c.TLSKey == ""):
		errs = append(errs, errors.New("RELIEF_TLS_CERT and RELIEF_TLS_KEY: set both (HTTPS) or neither"))
	case c.TLSCert != "":
		if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			errs = append(errs, fmt.Errorf("RELIEF_TLS_CERT/RELIEF_TLS_KEY: %v", err))
		}
		// Served over TLS: cookies are Secure and HSTS is sent.
		c.SecureCookies = true
	}

	if c.DatabaseURL != "" {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			errs = append(errs, errors.New("DATABASE_URL: want postgres://user@host:port/db"))
		}
	} else if mode != ModeDev {
		errs = append(errs, errors.New("DATABASE_URL is required (only `relief dev` starts its own PostgreSQL)"))
	}
	if c.TemporalAddress == "" && (mode == ModeServe || mode == ModeWorker) {
		c.TemporalAddress = "localhost:7233"
	}
	if c.TemporalAddress != "" {
		if _, _, err := net.SplitHostPort(c.TemporalAddress); err != nil {
			errs = append(errs, fmt.Errorf("TEMPORAL_ADDRESS=%q: want host:port", c.TemporalAddress))
		}
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("RELIEF_ADDR=%q: want [host]:port, e.g. :8080", c.Addr))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("RELIEF_LOG_LEVEL=%q: want debug, info, warn or error", c.LogLevel))
	}
	if c.SessionAbsolute < c.SessionIdle {
		errs = append(errs, errors.New("RELIEF_SESSION_ABSOLUTE must be at least RELIEF_SESSION_IDLE"))
	}
	if c.DataKey != "" {
		v, err := vault.Parse(c.DataKey)
		if err != nil {
			errs = append(errs, err)
		}
		c.Vault = v
	} else if mode == ModeServe || mode == ModeWorker || mode == ModeDB {
		errs = append(errs, errors.New("RELIEF_DATA_KEY is required: id:base64(32 random bytes); `relief keygen` prints one"))
	}
	if mode == ModeDev && c.DemoPassword != "" && len(c.DemoPassword) < 10 {
		errs = append(errs, errors.New("RELIEF_DEMO_PASSWORD: at least 10 characters"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}
