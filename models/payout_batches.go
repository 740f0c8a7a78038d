package models

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Payout batch statuses.
const (
	BatchChecking         = "checking"          // holder inquiry at the bank running
	BatchAwaitingApproval = "awaiting_approval" // checked; a second finance user approves
	BatchTransferring     = "transferring"      // approved; transfers (or the bank file) under way
	BatchCompleted        = "completed"         // every approved line paid or failed
)

// Payout line statuses.
const (
	LinePending = "pending" // in the batch, not handed to the bank yet
	LineSending = "sending" // handed to the bank; outcome not recorded yet
	LinePaid    = "paid"
	LineFailed  = "failed" // entitlements are owed again
)

// Payout channels: how approved lines reach the bank.
const (
	ChannelAPI  = "api"  // the bank adapter (sandbox bank in dev), line by line
	ChannelFile = "file" // a bulk-transfer file uploaded by finance; results imported back
)

// PayoutBatchInput is the body of POST /api/v1/payout-batches.
type PayoutBatchInput struct {
	Program    string `json:"program"`
	Cutoff     string `json:"cutoff,omitempty"`     // RFC 3339 instant or YYYY-MM-DD (end of that KST day); default now
	Instrument string `json:"instrument,omitempty"` // compensation | prepurchase | fee_waiver; default all
	Channel    string `json:"channel,omitempty"`    // api (default) | file
}

// PayoutBatchCreated is the 201 answer to a batch creation.
type PayoutBatchCreated struct {
	ID     uuid.UUID `json:"id"`
	Lines  int       `json:"lines"`
	Total  int64     `json:"total"`
	Status string    `json:"status"`
}

// PayoutBatch is a batch as the API shows it.
type PayoutBatch struct {
	ID            uuid.UUID      `json:"id"`
	Program       string         `json:"program"`
	ProgramName   string         `json:"program_name"`
	Agency        string         `json:"-"`
	Instrument    *string        `json:"instrument"`
	Cutoff        time.Time      `json:"cutoff"`
	Channel       string         `json:"channel"`
	Status        string         `json:"status"`
	LineCount     int            `json:"line_count"`
	Total         int64          `json:"total"`
	ApprovedCount *int           `json:"approved_count"`
	ApprovedTotal *int64         `json:"approved_total"`
	PaidTotal     int64          `json:"paid_total"`
	FailedTotal   int64          `json:"failed_total"`
	Counts        map[string]int `json:"counts"` // lines by status
	CreatedBy     uuid.UUID      `json:"created_by"`
	CreatedAt     time.Time      `json:"created_at"`
	CheckedAt     *time.Time     `json:"checked_at"`
	ApprovedBy    *uuid.UUID     `json:"approved_by"`
	ApprovedAt    *time.Time     `json:"approved_at"`
	CompletedAt   *time.Time     `json:"completed_at"`
	Lines         []PayoutLine   `json:"lines,omitempty"`
}

// Done counts the lines whose outcome is known.
func (b *PayoutBatch) Done() int { return b.Counts[LinePaid] + b.Counts[LineFailed] }

// LineCount64 and Count are LineCount and Counts[status] for templates, whose
// number formatting takes int64.
func (b *PayoutBatch) LineCount64() int64 { return int64(b.LineCount) }

// Count is the number of lines in status, as int64.
func (b *PayoutBatch) Count(status string) int64 { return int64(b.Counts[status]) }

// PayoutLine is one line of a batch: what one claim is paid. No personal
// data: the account stays encrypted on the claim.
type PayoutLine struct {
	ID            uuid.UUID  `json:"id"`
	Seq           int        `json:"seq"`
	ClaimID       uuid.UUID  `json:"claim_id"`
	ReceiptNo     string     `json:"receipt_no"`
	BankCode      string     `json:"bank_code"`
	Amount        int64      `json:"amount"`
	Status        string     `json:"status"`
	Approved      bool       `json:"approved"`
	FailureCode   string     `json:"failure_code,omitempty"`
	FailureReason string     `json:"failure_reason"`
	TransferKey   string     `json:"transfer_key"`
	BankRef       string     `json:"bank_ref,omitempty"`
	SettledAt     *time.Time `json:"settled_at"`
}

// TransferKeyFor is the bank idempotency key of a line's attempt: random (the
// line id), short enough for every bank file (≤ 64), no personal data.
func TransferKeyFor(lineID uuid.UUID, attempt int) string {
	return "RLF-" + strings.ReplaceAll(lineID.String(), "-", "") + "-" + strconv.Itoa(attempt)
}

// canReadPayouts: finance and auditors of the program's agency.
func canReadPayouts(v *User) bool {
	return v.IsStaff() && (v.HasRole(RoleFinance) || v.HasRole(RoleAuditor))
}

// RequireFinance is 403 unless v is finance staff.
func RequireFinance(v *User) error {
	if v == nil || !v.IsStaff() || !v.HasRole(RoleFinance) {
		return Coded(EFORBIDDEN, "forbidden", "only finance staff may do this")
	}
	return nil
}

// normalize validates the input, returning the cutoff instant.
func (in *PayoutBatchInput) normalize(now time.Time) (time.Time, error) {
	fields := map[string]string{}
	in.Program = strings.TrimSpace(in.Program)
	in.Instrument = strings.TrimSpace(in.Instrument)
	in.Channel = strings.TrimSpace(in.Channel)
	in.Cutoff = strings.TrimSpace(in.Cutoff)
	if in.Program == "" {
		fields["program"] = "required"
	}
	if in.Instrument != "" && !contains(Instruments, in.Instrument) {
		fields["instrument"] = "unknown_instrument"
	}
	if in.Channel == "" {
		in.Channel = ChannelAPI
	} else if in.Channel != ChannelAPI && in.Channel != ChannelFile {
		fields["channel"] = "unknown_channel"
	}
	cutoff := now
	if in.Cutoff != "" {
		if t, err := time.Parse(time.RFC3339, in.Cutoff); err == nil {
			cutoff = t
		} else if d, err := time.ParseInLocation(time.DateOnly, in.Cutoff, kst); err == nil {
			cutoff = d.AddDate(0, 0, 1).Add(-time.Microsecond) // the whole KST day
		} else {
			fields["cutoff"] = "invalid_time"
		}
		if cutoff.After(now) {
			cutoff = now // nothing owed in the future: a cutoff never reaches past the batch's creation
		}
	}
	if len(fields) > 0 {
		return cutoff, &Error{Kind: EINVALID, Code: "validation_failed", Message: "some fields are invalid", Fields: fields}
	}
	return cutoff, nil
}

// CreatePayoutBatch takes everything the program owes (entitlements 'owed',
// not in a batch, created up to the cutoff, of the instrument if given, of
// claims whose account has not failed the bank's check) into
// a new batch, one line per claim summing its entitlements, and marks those
// entitlements batched, all in tx. The holder inquiry and approval follow in
// the batch's workflow. 409 nothing_owed when there is nothing to pay.
func (s *Store) CreatePayoutBatch(ctx context.Context, tx pgx.Tx, u *User, in PayoutBatchInput) (*PayoutBatchCreated, error) {
	if err := RequireFinance(u); err != nil {
		return nil, err
	}
	now := s.Now()
	cutoff, err := in.normalize(now)
	if err != nil {
		return nil, err
	}
	p, err := programByCode(ctx, tx, in.Program)
	if err != nil || p.Agency != u.Agency {
		// another agency's program is as absent as a missing one
		return nil, FieldError("program_not_found", "program", "unknown_program", "no such program")
	}
	var instrument *string
	if in.Instrument != "" {
		instrument = &in.Instrument
	}
	id := uuid.New()
	if _, err := tx.Exec(ctx, `INSERT INTO payout_batches (id, program_code, instrument, cutoff, channel, created_by, created_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7)`, id, p.Code, instrument, cutoff, in.Channel, u.ID, now); err != nil {
		return nil, err
	}
	// Mark first, then build from what was marked: only this transaction
	// sets batch_id to the new id, so the lines sum exactly the entitlements
	// marked, even while producers keep writing new ones. A concurrent batch
	// blocks on the row locks and then skips rows no longer 'owed'. (One
	// statement joining CTEs would do the same, but CTE results carry no
	// statistics and the planner nests loops over them: 30 s for 10,000 lines.)
	if _, err := tx.Exec(ctx, `UPDATE entitlements e SET status = 'batched', batch_id = $1
		WHERE e.program_code = $2 AND e.status = 'owed' AND e.batch_id IS NULL AND e.created_at <= $3
		  AND ($4::text IS NULL OR e.instrument = $4)
		  AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.id = e.claim_id AND c.account_check_failed_at IS NOT NULL)`,
		id, p.Code, cutoff, instrument); err != nil {
		return nil, err
	}
	var lines int
	var total int64
	err = tx.QueryRow(ctx, `WITH inserted AS (
			INSERT INTO payout_lines (id, batch_id, seq, claim_id, program_code, bank_code, amount, transfer_key)
			SELECT n.id, $1, n.seq, n.claim_id, $2, n.bank_code, n.amount, 'RLF-' || replace(n.id::text, '-', '') || '-1'
			FROM (SELECT gen_random_uuid() AS id, row_number() OVER (ORDER BY c.bank_code, pc.claim_id)::int AS seq,
			             pc.claim_id, c.bank_code, pc.amount
			      FROM (SELECT claim_id, sum(amount)::bigint AS amount FROM entitlements WHERE batch_id = $1 GROUP BY claim_id) pc
			      JOIN claims c ON c.id = pc.claim_id) n
			RETURNING amount)
		SELECT count(*)::int, coalesce(sum(amount), 0)::bigint FROM inserted`, id, p.Code).Scan(&lines, &total)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO payout_line_entitlements (line_id, entitlement_id, amount)
		SELECT l.id, e.id, e.amount FROM entitlements e JOIN payout_lines l ON l.batch_id = $1 AND l.claim_id = e.claim_id
		WHERE e.batch_id = $1`, id); err != nil {
		return nil, err
	}
	if lines == 0 {
		return nil, Coded(ECONFLICT, "nothing_owed", "nothing is owed that is not already in a batch")
	}
	if _, err := tx.Exec(ctx, `UPDATE payout_batches SET line_count = $2, total = $3 WHERE id = $1`, id, lines, total); err != nil {
		return nil, err
	}
	if err := s.Audit(ctx, tx, AuditEntry{ActorID: &u.ID, Actor: u.Email, Action: "payout.batch_created",
		Subject: "payout_batch:" + id.String(),
		Details: map[string]any{"program": p.Code, "lines": lines, "total": total, "channel": in.Channel, "cutoff": cutoff.UTC().Format(time.RFC3339Nano)}}); err != nil {
		return nil, err
	}
	return &PayoutBatchCreated{ID: id, Lines: lines, Total: total, Status: BatchChecking}, nil
}

const batchColumns = `b.id, b.program_code, p.name, p.agency_code, b.instrument, b.cutoff, b.channel, b.status, b.line_count,
	b.total, b.approved_count, b.approved_total, b.created_by, b.created_at, b.checked_at, b.approved_by, b.approved_at, b.completed_at`

func scanBatch(row pgx.Row) (*PayoutBatch, error) {
	b := &PayoutBatch{Counts: map[string]int{}}
	err := row.Scan(&b.ID, &b.Program, &b.ProgramName, &b.Agency, &b.Instrument, &b.Cutoff, &b.Channel, &b.Status, &b.LineCount,
		&b.Total, &b.ApprovedCount, &b.ApprovedTotal, &b.CreatedBy, &b.CreatedAt, &b.CheckedAt, &b.ApprovedBy, &b.ApprovedAt, &b.CompletedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return b, err
}

// fillTotals adds the per-status counts and the paid and failed totals.
func fillTotals(ctx context.Context, q Querier, b *PayoutBatch) error {
	for _, st := range []string{LinePending, LineSending, LinePaid, LineFailed} {
		b.Counts[st] = 0
	}
	rows, err := q.Query(ctx, `SELECT status, count(*), coalesce(sum(amount), 0) FROM payout_lines WHERE batch_id = $1 GROUP BY status`, b.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var n int
		var sum int64
		if err := rows.Scan(&st, &n, &sum); err != nil {
			return err
		}
		b.Counts[st] = n
		switch st {
		case LinePaid:
			b.PaidTotal = sum
		case LineFailed:
			b.FailedTotal = sum
		}
	}
	return rows.Err()
}

// PayoutBatchByID loads a batch with its totals, for activities (no viewer).
func (s *Store) PayoutBatchByID(ctx context.Context, id uuid.UUID) (*PayoutBatch, error) {
	b, err := scanBatch(s.Pool.QueryRow(ctx, `SELECT `+batchColumns+` FROM payout_batches b JOIN programs p ON p.code = b.program_code WHERE b.id = $1`, id))
	if err != nil {
		return nil, err
	}
	return b, fillTotals(ctx, s.Pool, b)
}

// PayoutBatchForViewer loads a batch that v may see (finance and auditors of
// the program's agency; anyone else: 404), with its lines when withLines.
func (s *Store) PayoutBatchForViewer(ctx context.Context, v *User, id uuid.UUID, withLines bool) (*PayoutBatch, error) {
	if v == nil || !v.IsStaff() {
		return nil, ErrNotFound
	}
	b, err := scanBatch(s.Pool.QueryRow(ctx, `SELECT `+batchColumns+` FROM payout_batches b JOIN programs p ON p.code = b.program_code
		WHERE b.id = $1 AND p.agency_code = $2`, id, v.Agency))
	if err != nil {
		return nil, err
	}
	if !canReadPayouts(v) {
		return nil, Coded(EFORBIDDEN, "forbidden", "only finance staff and auditors see payout batches")
	}
	if err := fillTotals(ctx, s.Pool, b); err != nil {
		return nil, err
	}
	if withLines {
		b.Lines, err = s.payoutLines(ctx, b.ID, "", 0)
	}
	return b, err
}

// PayoutLines returns a batch's lines in order, optionally only one status and
// at most limit (0: all).
func (s *Store) PayoutLines(ctx context.Context, batchID uuid.UUID, status string, limit int) ([]PayoutLine, error) {
	return s.payoutLines(ctx, batchID, status, limit)
}

func (s *Store) payoutLines(ctx context.Context, batchID uuid.UUID, status string, limit int) ([]PayoutLine, error) {
	if limit <= 0 {
		limit = 1 << 30
	}
	rows, err := s.Pool.Query(ctx, `SELECT l.id, l.seq, l.claim_id, c.receipt_no, l.bank_code, l.amount, l.status, l.approved,
			l.failure_code, l.failure_reason, l.transfer_key, l.bank_ref, l.settled_at
		FROM payout_lines l JOIN claims c ON c.id = l.claim_id
		WHERE l.batch_id = $1 AND ($2 = '' OR l.status = $2) ORDER BY l.seq LIMIT $3`, batchID, status, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (PayoutLine, error) {
		var l PayoutLine
		err := r.Scan(&l.ID, &l.Seq, &l.ClaimID, &l.ReceiptNo, &l.BankCode, &l.Amount, &l.Status, &l.Approved,
			&l.FailureCode, &l.FailureReason, &l.TransferKey, &l.BankRef, &l.SettledAt)
		return l, err
	})
}

// ListPayoutBatches returns a page of the batches v may see, newest first.
func (s *Store) ListPayoutBatches(ctx context.Context, v *User, program string, limit int, cursor string) ([]*PayoutBatch, string, error) {
	if v == nil || !canReadPayouts(v) {
		return nil, "", Coded(EFORBIDDEN, "forbidden", "only finance staff and auditors see payout batches")
	}
	args := []any{v.Agency}
	where := []string{"p.agency_code = $1"}
	if program != "" {
		args = append(args, program)
		where = append(where, "b.program_code = $"+strconv.Itoa(len(args)))
	}
	if cursor != "" {
		at, id, err := decodeCursor(cursor)
		if err != nil {
			return nil, "", FieldError("validation_failed", "cursor", "invalid_cursor", "invalid cursor")
		}
		args = append(args, at, id)
		where = append(where, "(b.created_at, b.id) < ($"+strconv.Itoa(len(args)-1)+", $"+strconv.Itoa(len(args))+")")
	}
	limit = clampLimit(limit)
	args = append(args, limit+1)
	rows, err := s.Pool.Query(ctx, `SELECT `+batchColumns+` FROM payout_batches b JOIN programs p ON p.code = b.program_code
		WHERE `+strings.Join(where, " AND ")+` ORDER BY b.created_at DESC, b.id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, "", err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*PayoutBatch, error) { return scanBatch(r) })
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = encodeCursor(out[limit-1].CreatedAt, out[limit-1].ID)
	}
	for _, b := range out {
		if err := fillTotals(ctx, s.Pool, b); err != nil {
			return nil, "", err
		}
	}
	return out, next, nil
}

// Errors of approval, with the API codes the handler and the workflow's
// update validator share.
var (
	ErrPayoutSegregation     = Coded(EFORBIDDEN, "segregation_of_duties", "the user who created a payout batch cannot approve it")
	ErrPayoutAlreadyApproved = Coded(ECONFLICT, "already_approved", "this payout batch is already approved")
	ErrPayoutPrecheckRunning = Coded(ECONFLICT, "precheck_running", "the holder check at the bank is still running; approve when it has finished")
	ErrPayoutBatchClosed     = Coded(ECONFLICT, "batch_closed", "this payout batch has no line left to approve")
)

// ApprovePayoutBatch records approver's approval: the batch moves to
// transferring and its pending lines become the approved instruction. The
// database refuses an approval by the creator (payout_batches_segregation)
// and a second approval (payout_batches_approved_once); this function only
// translates those refusals. Approving again as the same approver is a no-op,
// so a retried activity succeeds.
func (s *Store) ApprovePayoutBatch(ctx context.Context, batchID, approver uuid.UUID, requestID string) (*PayoutBatch, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var status string
		var approvedBy *uuid.UUID
		err := tx.QueryRow(ctx, `SELECT status, approved_by FROM payout_batches WHERE id = $1 FOR UPDATE`, batchID).Scan(&status, &approvedBy)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if approvedBy != nil && *approvedBy == approver {
			return nil // this approval, retried
		}
		if status == BatchChecking {
			return ErrPayoutPrecheckRunning
		}
		if status == BatchCompleted && approvedBy == nil {
			return ErrPayoutBatchClosed
		}
		now := s.Now()
		_, err = tx.Exec(ctx, `UPDATE payout_batches b SET approved_by = $2, approved_at = $3, status = 'transferring',
				approved_count = (SELECT count(*) FROM payout_lines WHERE batch_id = b.id AND status = 'pending'),
				approved_total = (SELECT coalesce(sum(amount), 0) FROM payout_lines WHERE batch_id = b.id AND status = 'pending')
			WHERE b.id = $1`, batchID, approver, now)
		if err != nil {
			return approvalError(err)
		}
		if _, err := tx.Exec(ctx, `UPDATE payout_lines SET approved = true WHERE batch_id = $1 AND status = 'pending'`, batchID); err != nil {
			return err
		}
		var email string
		if err := tx.QueryRow(ctx, `SELECT email FROM users WHERE id = $1`, approver).Scan(&email); err != nil {
			return err
		}
		return s.Audit(ctx, tx, AuditEntry{ActorID: &approver, Actor: email, Action: "payout.batch_approved",
			Subject: "payout_batch:" + batchID.String(), Details: map[string]any{"request_id": requestID}})
	})
	if err != nil {
		return nil, err
	}
	return s.PayoutBatchByID(ctx, batchID)
}

// approvalError maps the database's refusals to the API's codes.
func approvalError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.ConstraintName {
		case "payout_batches_segregation":
			return ErrPayoutSegregation
		case "payout_batches_approved_once":
			return ErrPayoutAlreadyApproved
		case "payout_batches_approvable":
			return ErrPayoutBatchClosed
		}
	}
	return err
}
