package models

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// Group commit for intake. Each claim is validated in its own request, then
// queued for one of a few writers. A writer takes everything queued (up to
// claimBatchMax) and writes it with ONE statement: one round trip, one
// commit, one WAL flush for the whole group, and PostgreSQL's per-statement
// work (executor start-up, constraint expressions, trigger queues) paid once
// per group instead of once per claim. Measured on 2 cores: 10 claims per
// statement wrote about 4× the claims per second of one claim per statement
// (docs/capacity.md). Nothing waits for a group to fill: when a writer is
// free a claim goes alone at once, so batches only form when claims arrive
// faster than PostgreSQL commits them, which is exactly when they help.
//
// Every claim is still acknowledged only after its own group committed, so
// durability is unchanged. A claim whose BRN already has a claim (a
// duplicate, or a replay of a claim already written) is skipped by the group
// statement and answered duplicate_claim at once; FileClaim then tells a
// replay from a duplicate outside the writer, so a flood of resubmissions
// costs the writer no more than the claims it carries. A group statement
// commits all or nothing: when a claim in it collides on its Idempotency-Key
// (the key reused for another body) the group is split until that claim is
// alone and gets its own answer; after any other failure each claim is
// written again on its own, and a group that did commit before its
// connection broke turns into replays there (see FileClaim).

// claimBatchMax bounds one group statement (its arrays and its duration).
const claimBatchMax = 64

// DefaultIntakeWriters is how many group statements run at once when
// Store.IntakeWriters is zero. The second starts only when the first cannot
// keep up (see write), so at moderate rates one writer makes the largest
// groups, and past ~3,500 claims/s on 2 cores the statements, which each keep
// one PostgreSQL backend busy, run on both cores. Measured capacity on 2
// cores: 4,547 claims/s with two against 3,866 with one or three. A larger
// database server may want more (RELIEF_INTAKE_WRITERS); every web replica
// has its own writers.
const DefaultIntakeWriters = 2

type claimBatcher struct {
	mu      sync.Mutex
	queue   []*claimRow
	running int
	busy    bool // the last group held several claims: claims are arriving in numbers

	groups, grouped atomic.Int64 // statements that wrote several claims, and those claims
}

// IntakeGroups reports how many group statements intake has committed in this
// process and how many claims they carried (for tests and benchmarks).
func (s *Store) IntakeGroups() (statements, claims int64) {
	return s.intake.batch.groups.Load(), s.intake.batch.grouped.Load()
}

// write queues r and waits for its answer. If ctx ends first the claim may
// still be written (the client then retries with its Idempotency-Key and
// gets the replay).
func (st *intakeState) write(ctx context.Context, s *Store, r *claimRow) ([]byte, error) {
	r.done = make(chan claimResult, 1)
	writers := s.IntakeWriters
	if writers <= 0 {
		writers = DefaultIntakeWriters
	}
	b := &st.batch
	b.mu.Lock()
	b.queue = append(b.queue, r)
	// The first writer starts at once; each further one only when the queue
	// already holds half a group, i.e. the writers running cannot keep up.
	// Extra writers started on every arrival would split the claims into
	// small groups, each paying the fixed cost of a statement.
	if b.running == 0 || b.running < writers && len(b.queue) >= claimBatchMax/2 {
		b.running++
		go b.drain(s)
	}
	b.mu.Unlock()
	select {
	case res := <-r.done:
		return res.body, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// intakeLinger is how long a writer waits for a group to grow while claims
// are arriving in numbers (its previous group held several). A group
// statement costs ~0.8 ms whatever its size plus ~0.2 ms per claim (measured:
// 1.2 ms for 1 claim, 2.0 ms for 4, 4.4 ms for 16), so at a thousand claims a
// second a few milliseconds of waiting halve the database's work per claim;
// a lone claim in a quiet moment never waits.
const intakeLinger = 3 * time.Millisecond

// drain writes queued claims group by group until the queue is empty, then
// exits (no goroutine outlives the work).
func (b *claimBatcher) drain(s *Store) {
	lingered := false
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.running--
			b.mu.Unlock()
			return
		}
		if !lingered && b.busy && len(b.queue) < claimBatchMax/4 {
			b.mu.Unlock()
			lingered = true
			time.Sleep(intakeLinger)
			continue
		}
		lingered = false
		n := min(len(b.queue), claimBatchMax)
		b.busy = n > 1
		group := make([]*claimRow, n)
		copy(group, b.queue)
		rest := copy(b.queue, b.queue[n:])
		clear(b.queue[rest:])
		b.queue = b.queue[:rest]
		b.mu.Unlock()
		s.writeGroup(group)
	}
}

// writeGroup writes a group and answers every claim in it.
func (s *Store) writeGroup(group []*claimRow) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.writeSplit(ctx, group)
}

// writeSplit writes group as one statement; when a claim in it collides with
// another (a BRN or Idempotency-Key already taken: a duplicate or a replay),
// the statement fails as a whole, so the group is split in halves and each
// half tried again, which isolates the few colliding claims in a handful of
// statements. Any other failure (the database is down, or the connection
// broke and the outcome is unknown) is answered claim by claim.
func (s *Store) writeSplit(ctx context.Context, group []*claimRow) {
	if len(group) > 1 {
		bodies, err := s.writeMany(ctx, group)
		if err == nil && s.intake.loseAnswer != nil {
			err = s.intake.loseAnswer()
		}
		if err == nil {
			s.intake.batch.groups.Add(1)
			s.intake.batch.grouped.Add(int64(len(group)))
			for i, r := range group {
				if bodies[i] == nil {
					r.done <- claimResult{err: duplicateClaim(r.brn)}
					continue
				}
				r.done <- claimResult{body: bodies[i]}
			}
			return
		}
		if isCollision(err) {
			half := len(group) / 2
			s.writeSplit(ctx, group[:half])
			s.writeSplit(ctx, group[half:])
			return
		}
	}
	for _, r := range group {
		body, err := s.writeOne(ctx, r)
		r.done <- claimResult{body: body, err: err}
	}
}

// errSharedKey: two claims of one group carry the same Idempotency-Key.
var errSharedKey = errors.New("two claims of one group share an Idempotency-Key")

// isCollision: a unique violation (or the deadlock two groups colliding in
// opposite order can cause), which splitting the group resolves.
func isCollision(err error) bool {
	var pgErr *pgconn.PgError
	return errors.Is(err, errSharedKey) || errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "40P01")
}

// writeMany writes the whole group with fileClaimsSQL, all or nothing, and
// returns the stored response of each claim in group order; nil for a claim
// skipped because its BRN already has a claim in the program (one written
// before, or earlier in this group).
func (s *Store) writeMany(ctx context.Context, group []*claimRow) ([][]byte, error) {
	n := len(group)
	var (
		ids, merchants                                    = make([]pgtype.UUID, n), make([]pgtype.UUID, n)
		programs, brns, names, reps, phones, cats, region = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		losses                                            = make([]int64, n)
		accept                                            = make([]bool, n)
		banks, keyIDs, last4s, holders, payloads          = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		ciphers, bidx, hashes                             = make([][]byte, n), make([][]byte, n), make([][]byte, n)
		ats                                               = make([]time.Time, n)
		scopes, keys                                      = make([]string, n), make([]string, n)

		gClaim           []pgtype.UUID
		gLine            []int32
		gSKU, gName      []string
		gPrice, gQty     []int64
		gPerishable      []bool
		payloadByProgram = map[string]string{}
		index            = make(map[string]int, n) // scope+"\x00"+key → position
	)
	for i, r := range group {
		in := r.in
		ids[i], merchants[i], programs[i], brns[i] = pgUUID(r.id), pgUUID(r.merchant), r.program, r.brn
		names[i], reps[i], phones[i], cats[i], region[i] = in.BusinessName, in.Representative, in.Phone, in.Category, in.Region
		losses[i], accept[i], banks[i] = in.ClaimedLoss, in.AcceptOffer, in.Bank.BankCode
		ciphers[i], keyIDs[i], last4s[i], bidx[i], holders[i] = r.ciphertext, r.keyID, r.last4, r.blindIndex, in.Bank.Holder
		ats[i], scopes[i], keys[i], hashes[i] = r.at, r.scope, r.key, r.hash
		p, ok := payloadByProgram[r.program]
		if !ok {
			b, err := json.Marshal(ClaimFiledPayload{Program: r.program})
			if err != nil {
				return nil, err
			}
			p = string(b)
			payloadByProgram[r.program] = p
		}
		payloads[i] = p
		index[r.scope+"\x00"+r.key] = i
		for j, g := range in.Goods {
			gClaim = append(gClaim, ids[i])
			gLine = append(gLine, int32(j+1))
			gSKU, gName = append(gSKU, g.SKU), append(gName, g.Name)
			gPrice, gQty, gPerishable = append(gPrice, g.UnitPrice), append(gQty, g.Quantity), append(gPerishable, g.Perishable)
		}
	}
	if len(index) != n {
		return nil, errSharedKey
	}
	rows, err := s.Pool.Query(ctx, fileClaimsSQL,
		ids, programs, merchants, brns, names, reps, phones, cats, region, losses, accept,
		banks, ciphers, keyIDs, last4s, bidx, holders, ats, payloads, scopes, keys, hashes,
		gClaim, gLine, gSKU, gName, gPrice, gQty, gPerishable,
		StatusReceived, OutboxClaimFiled)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	bodies := make([][]byte, n)
	for rows.Next() {
		var scope, key string
		var body []byte
		if err := rows.Scan(&scope, &key, &body); err != nil {
			return nil, err
		}
		i, ok := index[scope+"\x00"+key]
		if !ok || bodies[i] != nil {
			return nil, errors.New("group insert returned an unexpected row")
		}
		bodies[i] = body
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return bodies, nil
}

// pgUUID hands a uuid to pgx in its binary form; a uuid.UUID goes through
// driver.Valuer, i.e. is printed and parsed again, which in the group
// statement's arrays cost about 5% of the web process's CPU at 2,000 claims/s.
func pgUUID(id uuid.UUID) pgtype.UUID {
	return pgtype.UUID{Bytes: id, Valid: true}
}

// fileClaimsSQL is fileClaimSQL for a group: one row per claim in the
// parallel arrays $1–$22, goods flattened into $23–$29 with their claim id.
// A claim whose (program, BRN) is taken is skipped (ON CONFLICT DO NOTHING,
// which also waits out a concurrent writer of the same BRN) and so are its
// goods, timeline, outbox and idempotency rows, which join on the claims
// actually inserted; it returns one row per inserted claim. Anything else
// commits all or nothing. The outbox rows name claims this statement
// created, so they cannot collide and need no ON CONFLICT (a speculative
// insertion costs an extra probe of the unique index per claim).
const fileClaimsSQL = `WITH r AS (
	SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
		$10::bigint[], $11::bool[], $12::text[], $13::bytea[], $14::text[], $15::text[], $16::bytea[], $17::text[],
		$18::timestamptz[], $19::text[], $20::text[], $21::text[], $22::bytea[])
	AS t(id, program_code, merchant_id, brn, business_name, representative, phone, category, region,
		claimed_loss, accept_offer, bank_code, account_ciphertext, account_key_id, account_last4, account_blind_index, account_holder,
		created_at, payload, scope, key, request_hash)
), c AS (
	INSERT INTO claims (id, receipt_no, program_code, merchant_id, brn, business_name, representative,
		phone, category, region, claimed_loss, accept_offer, bank_code, account_ciphertext, account_key_id,
		account_last4, account_blind_index, account_holder, status, created_at, updated_at)
	SELECT id, claim_receipt_no(created_at),
		program_code, merchant_id, brn, business_name, representative, phone, category, region,
		claimed_loss, accept_offer, bank_code, account_ciphertext, account_key_id, account_last4, account_blind_index, account_holder,
		$30::text, created_at, created_at
	FROM r
	ON CONFLICT (program_code, brn) DO NOTHING
	RETURNING id, receipt_no
), g AS (
	INSERT INTO claim_goods (claim_id, line, sku, name, unit_price, quantity, perishable)
	SELECT u.* FROM unnest($23::uuid[], $24::int[], $25::text[], $26::text[], $27::bigint[], $28::bigint[], $29::bool[])
		AS u(claim_id, line, sku, name, unit_price, quantity, perishable)
	JOIN c ON c.id = u.claim_id
), e AS (
	INSERT INTO claim_events (claim_id, event_key, at, status, actor_role, actor_id)
	SELECT r.id, 'received', r.created_at, $30::text, 'merchant', r.merchant_id FROM r JOIN c ON c.id = r.id
), o AS (
	INSERT INTO outbox (topic, aggregate_id, payload) SELECT $31::text, r.id, r.payload::jsonb FROM r JOIN c ON c.id = r.id
)
INSERT INTO idempotency_keys (scope, key, request_hash, status, body)
SELECT r.scope, r.key, r.request_hash, 202,
	convert_to('{"id":"' || c.id::text || '","receipt_no":"' || c.receipt_no || '","status":"received"}', 'UTF8')
FROM r JOIN c ON c.id = r.id
RETURNING scope, key, body`
