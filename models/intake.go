package models

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/relief/relief/models/rules"
	"golang.org/x/sync/singleflight"
)

// FileClaim is the whole intake of one claim: validation, window and
// staggered-day rules, then ONE statement that writes the claim (receipt
// number from a sequence), its goods, its first timeline entry, its outbox row
// and the stored Idempotency-Key response, atomically. It never waits on
// Temporal. It answers (202, body) or an *Error; a replay answers the
// original response.
//
// The happy path costs one round trip to PostgreSQL (measured in
// docs/capacity.md). Replays are found on the failure path: a replayed request
// collides with its own claim (one claim per BRN) or its own idempotency row,
// and every failure looks the stored response up before answering, so a
// replay still returns the original status and body, and the same key with
// another body still answers 422 idempotency_mismatch, whatever the
// validation, window or day rules say by now.
func (s *Store) FileClaim(ctx context.Context, merchant *User, idemKey string, reqHash []byte, in *ClaimInput) (int, []byte, error) {
	if !merchant.HasRole(RoleMerchant) {
		return 0, nil, Coded(EFORBIDDEN, "forbidden", "only merchants file claims")
	}
	scope := claimScope(merchant)
	body, err := s.fileClaimOnce(ctx, merchant, scope, idemKey, reqHash, in)
	if err == nil {
		s.intake.outboxKick(s)
		return http.StatusAccepted, body, nil
	}
	var domain *Error
	if !errors.As(err, &domain) && !errors.Is(err, errIdemTaken) {
		return 0, nil, err // the database failed: nothing was written, nothing to replay
	}
	// A replay (or a reuse of the key with another body)?
	status, stored, found, serr := s.storedResponse(ctx, scope, idemKey, reqHash)
	switch {
	case serr != nil || found:
		return status, stored, serr
	case errors.Is(err, errIdemTaken):
		// The key's row existed at insert time but not now: cannot happen
		// (idempotency rows are never deleted while the key may be replayed).
		return 0, nil, errors.New("idempotency key vanished")
	}
	if domain.Code == "duplicate_claim" {
		// Name the existing claim (API.md).
		var existing uuid.UUID
		if qerr := s.Pool.QueryRow(ctx, `SELECT id FROM claims WHERE program_code = $1 AND brn = $2`, in.Program, domain.Data["brn"]).Scan(&existing); qerr != nil {
			return 0, nil, qerr
		}
		domain.Data = map[string]any{"id": existing}
	}
	return 0, nil, domain
}

// claimScope is the Idempotency-Key scope of a merchant's claims.
func claimScope(merchant *User) string { return "claims:" + merchant.ID.String() }

// duplicateClaim: the program already has a claim for brn (FileClaim names
// it, or answers the replay when it was this request's).
func duplicateClaim(brn string) *Error {
	e := Coded(ECONFLICT, "duplicate_claim", "a claim for this business number already exists in this program")
	e.Data = map[string]any{"brn": brn}
	return e
}

// errIdemTaken: the idempotency row of this (scope, key) already exists.
var errIdemTaken = errors.New("idempotency key taken")

func (s *Store) fileClaimOnce(ctx context.Context, merchant *User, scope, idemKey string, reqHash []byte, in *ClaimInput) ([]byte, error) {
	brn, account, err := in.Normalize()
	if err != nil {
		return nil, err
	}
	p, err := s.intake.program(ctx, s, in.Program)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	if !p.WindowOpen(now) {
		return nil, &Error{Kind: EINVALID, Code: "window_closed", Message: "the claim window is not open",
			Data: map[string]any{"opens_at": p.ClaimWindow.OpensAt, "closes_at": p.ClaimWindow.ClosesAt}}
	}
	if err := p.CheckApplicationDay(brn.LastDigit(), now); err != nil {
		return nil, err
	}

	row := s.newClaimRow(merchant, p.Code, brn, account, in, now, scope, idemKey, reqHash)
	return s.intake.write(ctx, s, row)
}

// newClaimRow draws the claim's id and seals its account number under it:
// the row intake writes for a validated claim.
func (s *Store) newClaimRow(merchant *User, program string, brn rules.BRN, account string, in *ClaimInput,
	at time.Time, scope, key string, hash []byte) *claimRow {
	id := newClaimID()
	sealed := s.sealAccount(id, in.Bank.BankCode, account)
	return &claimRow{id: id, program: program, merchant: merchant.ID, brn: brn.String(), in: in, at: at,
		scope: scope, key: key, hash: hash, last4: sealed.last4, blindIndex: sealed.blindIndex,
		ciphertext: sealed.ciphertext, keyID: sealed.keyID}
}

// claimRow is one validated claim, ready to be written.
type claimRow struct {
	id         uuid.UUID
	program    string
	merchant   uuid.UUID
	brn        string
	in         *ClaimInput
	at         time.Time
	ciphertext []byte
	keyID      string
	last4      string
	blindIndex []byte
	scope, key string
	hash       []byte
	done       chan claimResult // buffered: the writer never waits for the caller
}

type claimResult struct {
	body []byte
	err  error
}

// writeOne writes one claim with fileClaimSQL and maps its unique
// violations: a second claim for the BRN is 409 duplicate_claim, a taken
// Idempotency-Key is errIdemTaken (FileClaim then answers the replay).
func (s *Store) writeOne(ctx context.Context, r *claimRow) ([]byte, error) {
	in := r.in
	n := len(in.Goods)
	lines, prices, qtys := make([]int32, n), make([]int64, n), make([]int64, n)
	skus, names, perishable := make([]string, n), make([]string, n), make([]bool, n)
	for i, g := range in.Goods {
		lines[i], skus[i], names[i], prices[i], qtys[i], perishable[i] = int32(i+1), g.SKU, g.Name, g.UnitPrice, g.Quantity, g.Perishable
	}
	var body []byte
	err := s.Pool.QueryRow(ctx, fileClaimSQL,
		r.id, r.program, r.merchant, r.brn, in.BusinessName, in.Representative, in.Phone, in.Category, in.Region,
		in.ClaimedLoss, in.AcceptOffer, in.Bank.BankCode, r.ciphertext, r.keyID, r.last4,
		r.blindIndex, in.Bank.Holder, StatusReceived, r.at,
		lines, skus, names, prices, qtys, perishable,
		OutboxClaimFiled, ClaimFiledPayload{Program: r.program},
		r.scope, r.key, r.hash,
	).Scan(&body)
	switch {
	case isUniqueViolation(err, "claims_program_code_brn_key"):
		return nil, duplicateClaim(r.brn)
	case isUniqueViolation(err, "idempotency_keys_pkey"), isUniqueViolation(err, "claims_pkey"):
		// claims_pkey: this very claim (its id is drawn per request) is
		// already written, by a group statement that committed although its
		// answer was lost; its idempotency row went in with it, and FileClaim
		// answers the replay from there.
		return nil, errIdemTaken
	case err != nil:
		return nil, err
	}
	return body, nil
}

// fileClaimSQL writes a whole claim in one statement (one implicit
// transaction, one round trip): every data-modifying WITH runs exactly once,
// and the foreign keys from goods and timeline to the claim are checked at
// the end of the statement, when the claim row exists. The stored response is
// built here because the receipt number comes from the sequence; it is
// byte-for-byte what json.Marshal(Filed) gives.
//
// There is deliberately no pg_notify in it: a transaction that NOTIFYs takes
// a database-wide lock from its pre-commit until its commit record is
// flushed, so every claim would wait for the previous claim's fsync (measured:
// 400 commits/s instead of 8,000 with 64 clients). The dispatcher is woken
// after commit instead (see outboxKick).
const fileClaimSQL = `WITH c AS (
	INSERT INTO claims (id, receipt_no, program_code, merchant_id, brn, business_name, representative,
		phone, category, region, claimed_loss, accept_offer, bank_code, account_ciphertext, account_key_id,
		account_last4, account_blind_index, account_holder, status, created_at, updated_at)
	VALUES ($1, claim_receipt_no($19::timestamptz),
		$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$19)
	RETURNING id, receipt_no
), g AS (
	INSERT INTO claim_goods (claim_id, line, sku, name, unit_price, quantity, perishable)
	SELECT c.id, u.line, u.sku, u.name, u.unit_price, u.quantity, u.perishable
	FROM c, unnest($20::int[], $21::text[], $22::text[], $23::bigint[], $24::bigint[], $25::bool[])
		AS u(line, sku, name, unit_price, quantity, perishable)
), e AS (
	INSERT INTO claim_events (claim_id, event_key, at, status, actor_role, actor_id)
	SELECT c.id, 'received', $19::timestamptz, $18::text, 'merchant', $3::uuid FROM c
), o AS (
	INSERT INTO outbox (topic, aggregate_id, payload) SELECT $26::text, c.id, $27::jsonb FROM c
)
INSERT INTO idempotency_keys (scope, key, request_hash, status, body)
SELECT $28::text, $29::text, $30::bytea, 202, convert_to('{"id":"' || c.id::text || '","receipt_no":"' || c.receipt_no || '","status":"received"}', 'UTF8')
FROM c
RETURNING body`

// intakeState holds the intake path's per-process caches. The zero value is
// ready to use.
type intakeState struct {
	mu          sync.Mutex
	programs    map[string]cachedProgram
	programsGen uint64 // bumped by ForgetPrograms: reads begun before it are not cached
	// programReads lets one read per program refresh an expired entry while
	// every other claim arriving meanwhile waits for it (see program).
	programReads   singleflight.Group
	programDBReads atomic.Int64 // program rows read from the database (ProgramReads)

	batch claimBatcher

	// loseAnswer (tests only) is called after a group statement committed;
	// an error it returns is treated as a connection that broke before the
	// answer arrived, so the group's claims are written again one by one.
	loseAnswer func() error

	notifyPending atomic.Bool
	lastNotify    atomic.Int64 // UnixNano of the last NOTIFY sent
}

type cachedProgram struct {
	p       *Program
	fetched time.Time
}

// ProgramCacheTTL is how long intake trusts a program row it has read: a
// change to a program's window, status or staggered days reaches intake
// within this time on every process. The window itself is a time range, so
// only edits to it wait this long, never its opening or closing.
const ProgramCacheTTL = time.Second

// program returns the program for intake, read at most once per
// ProgramCacheTTL per process. Absent programs are not cached.
//
// The read is shared: all claims filed in a program find its entry expired
// at the same moment, and before this each of them read the program itself.
// At the start of a surge that was hundreds of reads at once, which grew
// the connection pool to its bound and held every claim, and the 429s behind
// them, for a few hundred milliseconds (measured on 2 cores).
func (st *intakeState) program(ctx context.Context, s *Store, code string) (*Program, error) {
	st.mu.Lock()
	c, ok := st.programs[code]
	gen := st.programsGen
	st.mu.Unlock()
	if ok && time.Since(c.fetched) < ProgramCacheTTL {
		return c.p, nil
	}
	// The generation is part of the key: after ForgetPrograms a claim does
	// not join a read that began before it.
	key := strconv.FormatUint(gen, 10) + "/" + code
	v, err, _ := st.programReads.Do(key, func() (any, error) {
		rctx, cancel := sharedReadContext(ctx)
		defer cancel()
		fetched := time.Now()
		st.programDBReads.Add(1)
		p, err := programByCode(rctx, s.Pool, code)
		if err != nil {
			return nil, err
		}
		st.mu.Lock()
		if st.programs == nil {
			st.programs = map[string]cachedProgram{}
		}
		if st.programsGen == gen && len(st.programs) < 1000 {
			st.programs[code] = cachedProgram{p: p, fetched: fetched}
		}
		st.mu.Unlock()
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*Program), nil
}

// ProgramReads reports how many times intake has read a program from the
// database in this process (for tests and benchmarks).
func (s *Store) ProgramReads() int64 { return s.intake.programDBReads.Load() }

// sharedReadContext is the context of a read that several requests wait on
// (the program and session reads): not the first caller's, whose client
// leaving must not fail the others, and bounded, since the statement timeout
// is longer and a request should not wait that long.
func sharedReadContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), sharedReadTimeout)
}

const sharedReadTimeout = 10 * time.Second

// ForgetPrograms drops intake's cached programs (tests and admin edits in
// this process; other processes pick a change up within ProgramCacheTTL).
func (s *Store) ForgetPrograms() {
	s.intake.mu.Lock()
	s.intake.programs = nil
	s.intake.programsGen++
	s.intake.mu.Unlock()
}

// outboxNotifyEvery bounds the NOTIFYs intake sends: at most one per interval
// per process, however many claims commit.
const outboxNotifyEvery = 20 * time.Millisecond

// outboxKick wakes the dispatcher after a claim committed. Claims committed
// close together share one NOTIFY, sent at most outboxNotifyEvery after the
// first of them. Every committed claim is followed by a NOTIFY: a claim that
// finds one pending relies on it, and the pending flag is cleared before the
// NOTIFY goes out, so a claim committed after that point schedules another.
// A lost NOTIFY (the process dies first) costs only latency: the dispatcher
// also polls.
func (st *intakeState) outboxKick(s *Store) {
	if !st.notifyPending.CompareAndSwap(false, true) {
		return
	}
	wait := outboxNotifyEvery - time.Duration(time.Now().UnixNano()-st.lastNotify.Load())
	time.AfterFunc(max(wait, 0), func() {
		st.notifyPending.Store(false)
		st.lastNotify.Store(time.Now().UnixNano())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = s.Pool.Exec(ctx, `SELECT pg_notify($1, '')`, OutboxChannel)
	})
}

// newClaimID returns a time-ordered (version 7) UUID. Claims are inserted in
// time order, so their primary key and the goods and timeline keys that
// start with it grow at their right edge instead of touching a random leaf
// page per claim: fewer pages dirtied, far fewer full-page images in the WAL
// after each checkpoint, and a hot set that stays in cache as the table grows.
func newClaimID() uuid.UUID {
	return uuid.Must(uuid.NewV7())
}
