package banksim

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "modernc.org/sqlite" // pure-Go SQLite: no cgo, same driver the embedded Temporal uses

	"github.com/relief/relief/workflows/payout/bank"
)

// The sandbox's books. transfers holds one row per idempotency key, succeeded
// or failed; UNIQUE(key) is what makes executing a key twice impossible, even
// for requests racing each other. debits is the payer account's statement, one
// row per debit and deliberately without a unique key: /v1/stats counts
// duplicates in it instead of assuming there are none.
const schema = `
CREATE TABLE IF NOT EXISTS accounts (
	bank_code TEXT NOT NULL,
	account   TEXT NOT NULL,
	holder    TEXT NOT NULL,
	PRIMARY KEY (bank_code, account)
);
CREATE TABLE IF NOT EXISTS transfers (
	id              INTEGER PRIMARY KEY,
	key             TEXT    NOT NULL UNIQUE,
	bank_code       TEXT    NOT NULL,
	account         TEXT    NOT NULL,
	holder          TEXT    NOT NULL,
	amount          INTEGER NOT NULL CHECK (amount > 0),
	memo            TEXT    NOT NULL,
	status          TEXT    NOT NULL CHECK (status IN ('succeeded', 'failed')),
	failure_code    TEXT    NOT NULL DEFAULT '',
	failure_message TEXT    NOT NULL DEFAULT '',
	day             TEXT    NOT NULL, -- KST date: daily limits and the result file
	at              TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS transfers_payee_day ON transfers (bank_code, account, day);
CREATE INDEX IF NOT EXISTS transfers_day ON transfers (day);
CREATE TABLE IF NOT EXISTS debits (
	id           INTEGER PRIMARY KEY,
	transfer_key TEXT    NOT NULL REFERENCES transfers (key),
	amount       INTEGER NOT NULL,
	at           TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS debits_transfer_key ON debits (transfer_key);
`

// openDB opens (creating if needed) the SQLite file. WAL lets lookups read while
// a transfer writes; _txlock=immediate makes every transaction take the write
// lock at BEGIN, so the checks inside a transfer (daily limit, existing key) see
// all committed transfers and concurrent writers queue on busy_timeout instead
// of failing. synchronous=NORMAL in WAL mode survives a killed process, which is
// the crash the sandbox exists to exercise (not a power cut).
func openDB(path string) (*sql.DB, error) {
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + url.Values{
		"_pragma": {"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)"},
		"_txlock": {"immediate"},
	}.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("banksim: initialising %s: %w", path, err)
	}
	return db, nil
}

var kst = time.FixedZone("KST", 9*60*60)

// transferRow is a transfers row; the request fields are kept to recognise a
// replay and to tell it from a different transfer reusing the key.
type transferRow struct {
	id                            int64
	req                           bank.TransferRequest
	status, failCode, failMessage string
	at                            string
}

func (t transferRow) result() bank.TransferResult {
	at, _ := time.Parse(time.RFC3339Nano, t.at)
	return bank.TransferResult{
		Key:            t.req.Key,
		Status:         bank.Status(t.status),
		FailureCode:    t.failCode,
		FailureMessage: t.failMessage,
		BankRef:        fmt.Sprintf("SBX%012d", t.id),
		At:             at,
	}
}

// differences names the request fields (never their values: they are personal
// data) in which req differs from the transfer stored under the same key.
func (t transferRow) differences(req bank.TransferRequest) []string {
	var d []string
	for _, f := range []struct {
		name string
		same bool
	}{
		{"bank_code", t.req.BankCode == req.BankCode},
		{"account", t.req.Account == req.Account},
		{"holder", t.req.Holder == req.Holder},
		{"amount", t.req.Amount == req.Amount},
		{"memo", t.req.Memo == req.Memo},
	} {
		if !f.same {
			d = append(d, f.name)
		}
	}
	return d
}

const transferColumns = `id, key, bank_code, account, holder, amount, memo, status, failure_code, failure_message, at`

func scanTransfer(row interface{ Scan(...any) error }) (transferRow, error) {
	var t transferRow
	err := row.Scan(&t.id, &t.req.Key, &t.req.BankCode, &t.req.Account, &t.req.Holder, &t.req.Amount,
		&t.req.Memo, &t.status, &t.failCode, &t.failMessage, &t.at)
	return t, err
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getTransfer(ctx context.Context, q querier, key string) (transferRow, error) {
	return scanTransfer(q.QueryRowContext(ctx, `SELECT `+transferColumns+` FROM transfers WHERE key = ?`, key))
}

// registeredHolder returns the holder set with PUT /admin/accounts, if any.
func registeredHolder(ctx context.Context, q querier, bankCode, account string) (string, bool, error) {
	var h string
	err := q.QueryRowContext(ctx, `SELECT holder FROM accounts WHERE bank_code = ? AND account = ?`, bankCode, account).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return h, err == nil, err
}

// Stats are the sandbox's books as counted from storage.
type Stats struct {
	Transfers       int64 `json:"transfers"` // distinct keys processed
	Succeeded       int64 `json:"succeeded"`
	Failed          int64 `json:"failed"`
	Debits          int64 `json:"debits"`
	DebitedAmount   int64 `json:"debited_amount"`
	DuplicateDebits int64 `json:"duplicate_debits"` // debits beyond the first for a key: must be 0
	// Faults injected since start (in memory, unlike the rest).
	InjectedFailures    int `json:"injected_fail_before_commit"`
	InjectedLostReplies int `json:"injected_lose_after_commit"`
}

func readStats(ctx context.Context, db *sql.DB) (Stats, error) {
	var s Stats
	err := db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM transfers),
		(SELECT COUNT(*) FROM transfers WHERE status = 'succeeded'),
		(SELECT COUNT(*) FROM transfers WHERE status = 'failed'),
		(SELECT COUNT(*) FROM debits),
		(SELECT COALESCE(SUM(amount), 0) FROM debits),
		(SELECT COUNT(*) - COUNT(DISTINCT transfer_key) FROM debits)`).
		Scan(&s.Transfers, &s.Succeeded, &s.Failed, &s.Debits, &s.DebitedAmount, &s.DuplicateDebits)
	return s, err
}

// resultCode is the result file's code: "0000" for a completed transfer (the
// usual Korean bank convention), the failure code otherwise.
func resultCode(status, failCode string) string {
	if status == string(bank.StatusSucceeded) {
		return "0000"
	}
	return strings.TrimSpace(failCode)
}
