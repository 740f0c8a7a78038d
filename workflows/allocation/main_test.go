package allocation_test

import (
	"os"
	"testing"

	"github.com/relief/relief/models/pgtest"
)

// envRecord turns on TestRecordHistory (see record_test.go).
const envRecord = "RELIEF_RECORD_HISTORY"

// TestMain starts PostgreSQL only when a history is being recorded: the unit
// and replay tests need no database.
func TestMain(m *testing.M) {
	if os.Getenv(envRecord) == "1" {
		pgtest.Main(m)
		return
	}
	os.Exit(m.Run())
}
