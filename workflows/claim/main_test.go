package claim_test

import (
	"os"
	"testing"

	"github.com/relief/relief/models/pgtest"
)

// TestMain starts PostgreSQL only when a history is being recorded: the unit
// and replay tests need no database.
func TestMain(m *testing.M) {
	if os.Getenv(envRecord) == "1" {
		pgtest.Main(m)
		return
	}
	os.Exit(m.Run())
}
