package models

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/relief/relief/exports"
	"github.com/relief/relief/models/rules"
)

// Government pre-purchase (선매입). A program admin creates a tranche with a
// budget (funding the program's pre-purchase budget in the same transaction);
// a preview computes the allocation with rules.Allocate over the approved
// claims that offer goods and stores it as a draft; an approver other than
// the creator approves the draft, which writes one purchase order per merchant
// in the same transaction; the claims are told their allocation; receiving the
// goods makes the order's amount (truncated to 10 won) an entitlement.
//
// A later tranche allocates only the residual need: what earlier approved
// tranches allocated counts against the program cap, and goods units already
// ordered are no longer on offer. Previews and approvals of one program are
// serialised by locking the program's row; an approval whose draft was
// computed before another tranche's approval is refused (preview_stale).

// Tranche statuses.
const (
	TrancheDraft     = "draft"
	TranchePreviewed = "previewed"
	TrancheApproved  = "approved" // purchase orders written; claims being told
	TrancheNotified  = "notified" // every claim told its allocation
)

// Tranche is a pre-purchase tranche.
type Tranche struct {
	ID             uuid.UUID  `json:"id"`
	Program        string     `json:"program"`
	Agency         string     `json:"-"`
	Seq            int        `json:"seq"`
	Name           string     `json:"name"`
	Budget         int64      `json:"budget"`
	Status         string     `json:"status"`
	CreatedBy      uuid.UUID  `json:"created_by"`
	CreatedAt      time.Time  `json:"created_at"`
	PreviewVersion int        `json:"preview_version"`
	PreviewedAt    *time.Time `json:"previewed_at"`
	Candidates     int64      `json:"candidates"`
	TotalAllocated int64      `json:"total_allocated"`
	Unallocated    int64      `json:"unallocated"`
	ApprovedBy     *uuid.UUID `json:"approved_by"`
	ApprovedAt     *time.Time `json:"approved_at"`
	PurchaseOrders int64      `json:"purchase_orders"`
	Notified       int64      `json:"notified"` // purchase orders whose claim was told
	Received       int64      `json:"received"` // purchase orders whose goods arrived
	NotifiedAt     *time.Time `json:"notified_at"`
}

// Approved reports whether the tranche's purchase orders exist.
func (t *Tranche) Approved() bool { return t.Status == TrancheApproved || t.Status == TrancheNotified }

const trancheColumns = `t.id, t.program_code, p.agency_code, t.seq, t.name, t.budget, t.status, t.created_by, t.created_at,
	t.preview_version, t.previewed_at, t.candidates, t.total_allocated, t.approved_by, t.approved_at, t.purchase_orders,
	(SELECT count(*) FROM purchase_orders po WHERE po.tranche_id = t.id AND po.notified_at IS NOT NULL),
	(SELECT count(*) FROM purchase_orders po WHERE po.tranche_id = t.id AND po.status = 'received'),
	t.notified_at`

const trancheFrom = ` FROM tranches t JOIN programs p ON p.code = t.program_code `

func scanTranche(row pgx.Row) (*Tranche, error) {
	t := &Tranche{}
	err := row.Scan(&t.ID, &t.Program, &t.Agency, &t.Seq, &t.Name, &t.Budget, &t.Status, &t.CreatedBy, &t.CreatedAt,
		&t.PreviewVersion, &t.PreviewedAt, &t.Candidates, &t.TotalAllocated, &t.ApprovedBy, &t.ApprovedAt, &t.PurchaseOrders,
		&t.Notified, &t.Received, &t.NotifiedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Coded(ENOTFOUND, "tranche_not_found", "no such tranche")
	}
	t.Unallocated = t.Budget - t.TotalAllocated
	return t, err
}

// TrancheInput is the body of POST /api/v1/programs/{code}/tranches.
type TrancheInput struct {
	Name   string `json:"name"`
	Budget int64  `json:"budget"`
}

// Validate trims the name and checks both fields.
func (in *TrancheInput) Validate() error {
	fields := map[string]string{}
	in.Name = strings.TrimSpace(in.Name)
	switch {
	case in.Name == "":
		fields["name"] = "required"
	case utf8.RuneCountInString(in.Name) > 50:
		fields["name"] = "too_long"
	}
	switch {
	case in.Budget <= 0:
		fields["budget"] = "must_be_positive"
	case in.Budget > rules.MaxAmount:
		fields["budget"] = "too_large"
	}
	if len(fields) > 0 {
		return &Error{Kind: EINVALID, Code: "validation_failed", Message: "some fields are invalid", Fields: fields}
	}
	return nil
}

// TrancheSourceKey is the ledger key funding a tranche's budget.
func TrancheSourceKey(id uuid.UUID) string { return "tranche:" + id.String() }

// CreateTranche writes a tranche (program_admin of the program's agency) and
// funds the program's pre-purchase budget with its budget, in tx.
func (s *Store) CreateTranche(ctx context.Context, tx pgx.Tx, v *User, program string, in TrancheInput, ip string) (*Tranche, error) {
	if err := requireRole(v, RoleProgramAdmin); err != nil {
		return nil, err
	}
	p, err := staffProgram(ctx, tx, v, program)
	if err != nil {
		return nil, err
	}
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM programs WHERE code = $1 FOR UPDATE`, p.Code); err != nil {
		return nil, err
	}
	id := uuid.New()
	if _, err := tx.Exec(ctx, `INSERT INTO tranches (id, program_code, seq, name, budget, created_by, created_at)
		VALUES ($1, $2, (SELECT coalesce(max(seq), 0) + 1 FROM tranches WHERE program_code = $2), $3, $4, $5, $6)`,
		id, p.Code, in.Name, in.Budget, v.ID, s.Now()); err != nil {
		return nil, err
	}
	if err := fundBudget(ctx, tx, p.Code, InstrumentPrepurchase, in.Budget, TrancheSourceKey(id)); err != nil {
		return nil, err
	}
	if err := s.Audit(ctx, tx, AuditEntry{ActorID: &v.ID, Actor: v.Email, Action: "tranche.create", Subject: "tranche:" + id.String(), IP: ip,
		Details: map[string]any{"program": p.Code, "budget": in.Budget}}); err != nil {
		return nil, err
	}
	return scanTranche(tx.QueryRow(ctx, `SELECT `+trancheColumns+trancheFrom+`WHERE t.id = $1`, id))
}

// TrancheByID loads a tranche whatever the viewer (workflows, activities).
func (s *Store) TrancheByID(ctx context.Context, id uuid.UUID) (*Tranche, error) {
	return scanTranche(s.Pool.QueryRow(ctx, `SELECT `+trancheColumns+trancheFrom+`WHERE t.id = $1`, id))
}

// TrancheForViewer loads a tranche for staff of its program's agency; anyone
// else gets 404 tranche_not_found.
func (s *Store) TrancheForViewer(ctx context.Context, v *User, id uuid.UUID) (*Tranche, error) {
	t, err := s.TrancheByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if v == nil || !v.IsStaff() || v.Agency != t.Agency {
		return nil, Coded(ENOTFOUND, "tranche_not_found", "no such tranche")
	}
	return t, nil
}

// ProgramTranches lists a program's tranches in order (exports and pages).
func ProgramTranches(ctx context.Context, q Querier, program string) ([]*Tranche, error) {
	rows, err := q.Query(ctx, `SELECT `+trancheColumns+trancheFrom+`WHERE t.program_code = $1 ORDER BY t.seq`, program)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Tranche, error) { return scanTranche(r) })
}

// ListTranches lists a program's tranches for staff of its agency.
func (s *Store) ListTranches(ctx context.Context, v *User, program string) ([]*Tranche, error) {
	p, err := s.StaffProgram(ctx, v, program)
	if err != nil {
		return nil, err
	}
	return ProgramTranches(ctx, s.Pool, p.Code)
}

// lockTranche locks the tranche's program row (serialising the program's
// previews and approvals), then the tranche row, in that order.
func lockTranche(ctx context.Context, tx pgx.Tx, id uuid.UUID) (*Tranche, int64, error) {
	var program string
	err := tx.QueryRow(ctx, `SELECT program_code FROM tranches WHERE id = $1`, id).Scan(&program)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, Coded(ENOTFOUND, "tranche_not_found", "no such tranche")
	}
	if err != nil {
		return nil, 0, err
	}
	var programCap int64
	if err := tx.QueryRow(ctx, `SELECT prepurchase_cap FROM programs WHERE code = $1 FOR UPDATE`, program).Scan(&programCap); err != nil {
		return nil, 0, err
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM tranches WHERE id = $1 FOR UPDATE`, id); err != nil {
		return nil, 0, err
	}
	t, err := scanTranche(tx.QueryRow(ctx, `SELECT `+trancheColumns+trancheFrom+`WHERE t.id = $1`, id))
	return t, programCap, err
}

// PreviewSummary is what a stored draft allocation adds up to.
type PreviewSummary struct {
	TrancheID      uuid.UUID `json:"tranche_id"`
	Version        int       `json:"preview_version"`
	Candidates     int       `json:"candidates"`
	Allocated      int       `json:"allocated_claims"`
	TotalAllocated int64     `json:"total_allocated"`
	Unallocated    int64     `json:"unallocated"`
}

// errAlreadyApproved is the answer to changing an approved tranche.
func errAlreadyApproved() *Error {
	return Coded(ECONFLICT, "tranche_already_approved", "the tranche is already approved")
}

// PreviewTranche computes the tranche's allocation over the program's
// eligible claims and stores it as the draft, replacing any earlier draft. It
// changes nothing else: no order, no claim, no money. Idempotent up to the
// version number: the same data gives the same draft.
func (s *Store) PreviewTranche(ctx context.Context, id, by uuid.UUID) (PreviewSummary, error) {
	var sum PreviewSummary
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		t, programCap, err := lockTranche(ctx, tx, id)
		if err != nil {
			return err
		}
		if t.Approved() {
			return errAlreadyApproved()
		}
		var basis int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(approval_seq), 0) FROM tranches WHERE program_code = $1`, t.Program).Scan(&basis); err != nil {
			return err
		}
		candidates, extra, err := trancheCandidates(ctx, tx, t)
		if err != nil {
			return err
		}
		// rules.Allocate computes while the server deletes the previous draft.
		type allocation struct {
			alloc rules.Allocation
			err   error
		}
		computed := make(chan allocation, 1)
		go func() {
			alloc, err := rules.Allocate(t.Budget, programCap, candidates)
			computed <- allocation{alloc, err}
		}()
		// Items first: a line's items must go before the line (tranche_lines_check).
		if _, err := tx.Exec(ctx, `DELETE FROM tranche_items WHERE tranche_id = $1`, t.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tranche_lines WHERE tranche_id = $1`, t.ID); err != nil {
			return err
		}
		r := <-computed
		if r.err != nil {
			return fmt.Errorf("tranche %s: %w", t.ID, r.err)
		}
		alloc := r.alloc
		// Ids go to COPY as [16]byte, which pgx encodes directly (a uuid.UUID
		// value takes a much slower path, per value). Line k is candidate k:
		// both are in claim id order.
		if len(alloc.Lines) != len(candidates) {
			return fmt.Errorf("tranche %s: %d lines for %d candidates", t.ID, len(alloc.Lines), len(candidates))
		}
		trancheID := [16]byte(t.ID)
		lines := make([][]any, 0, len(alloc.Lines))
		var items [][]any
		allocated := 0
		for k, l := range alloc.Lines {
			c, e := &candidates[k], &extra[k]
			if l.ClaimID != c.ClaimID {
				return fmt.Errorf("tranche %s: line %d is claim %s, candidate %s", t.ID, k, l.ClaimID, c.ClaimID)
			}
			lines = append(lines, []any{trancheID, e.id, l.Tier, l.Weight, l.TierWeight, l.Offer, l.AlreadyAllocated, l.Cap, l.Share, l.Converted, l.Allocated})
			if l.Allocated > 0 {
				allocated++
			}
			for _, it := range l.Items {
				items = append(items, []any{trancheID, e.id, it.SKU, e.name(c, it.SKU), it.Perishable, it.UnitPrice, it.Quantity, it.Amount})
			}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"tranche_lines"}, []string{"tranche_id", "claim_id", "tier", "weight", "tier_weight",
			"offer", "already_allocated", "cap", "share", "converted", "allocated"}, pgx.CopyFromRows(lines)); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"tranche_items"}, []string{"tranche_id", "claim_id", "sku", "name", "perishable",
			"unit_price", "quantity", "amount"}, pgx.CopyFromRows(items)); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `UPDATE tranches SET status = 'previewed', preview_version = preview_version + 1, preview_basis = $2,
				previewed_by = $3, previewed_at = $4, candidates = $5, total_allocated = $6
			WHERE id = $1 RETURNING preview_version`, t.ID, basis, by, s.Now(), len(alloc.Lines), alloc.TotalAllocated).Scan(&sum.Version); err != nil {
			return err
		}
		sum = PreviewSummary{TrancheID: t.ID, Version: sum.Version, Candidates: len(alloc.Lines), Allocated: allocated,
			TotalAllocated: alloc.TotalAllocated, Unallocated: alloc.Unallocated}
		return s.Audit(ctx, tx, AuditEntry{ActorID: &by, Actor: actorName(ctx, tx, by), Action: "tranche.preview", Subject: "tranche:" + t.ID.String(),
			Details: map[string]any{"version": sum.Version, "total_allocated": sum.TotalAllocated, "candidates": sum.Candidates}})
	})
	return sum, err
}

// trancheCandidates loads the program's eligible claims: approved (the
// approval stands), with goods on offer. Weight is the verified loss: the
// approved compensation, else the estimated loss. Earlier approved tranches
// count: their allocations against the cap, their ordered units off the offer.
// The candidates are in claim id order, which is rules.Allocate's line order
// (PostgreSQL orders uuids bytewise, as their canonical strings sort); extra
// holds, for each candidate, its id and its items' names.
//
// One query, one row per item: the earlier tranches' allocations and ordered
// units are each summed once and joined (not a subquery per claim), and a
// claim is a candidate when it has a row, whether or not units are left.
func trancheCandidates(ctx context.Context, tx pgx.Tx, t *Tranche) ([]rules.Candidate, []candidateExtra, error) {
	rows, err := tx.Query(ctx, `SELECT c.id,
			CASE WHEN c.approved_compensation > 0 THEN c.approved_compensation ELSE coalesce(c.estimated_loss, 0) END,
			coalesce(a.allocated, 0)::bigint,
			g.sku, g.name, g.unit_price, (g.quantity - coalesce(o.quantity, 0))::bigint, g.perishable
		FROM claims c
		JOIN claim_goods g ON g.claim_id = c.id
		LEFT JOIN (SELECT l.claim_id, sum(l.allocated) AS allocated FROM tranche_lines l JOIN tranches e ON e.id = l.tranche_id
			WHERE e.program_code = $1 AND e.id <> $2 AND e.status IN ('approved','notified') GROUP BY l.claim_id) a ON a.claim_id = c.id
		LEFT JOIN (SELECT i.claim_id, i.sku, sum(i.quantity) AS quantity FROM tranche_items i JOIN tranches e ON e.id = i.tranche_id
			WHERE e.program_code = $1 AND e.id <> $2 AND e.status IN ('approved','notified') GROUP BY i.claim_id, i.sku) o
			ON o.claim_id = g.claim_id AND o.sku = g.sku
		WHERE c.program_code = $1 AND c.status = ANY($3)
		ORDER BY c.id, g.line`, t.Program, t.ID, ApprovedStatuses)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var candidates []rules.Candidate
	var extra []candidateExtra
	for rows.Next() {
		var id pgtype.UUID
		var weight, already int64
		var it rules.OfferItem
		var name string
		if err := rows.Scan(&id, &weight, &already, &it.SKU, &name, &it.UnitPrice, &it.Quantity, &it.Perishable); err != nil {
			return nil, nil, err
		}
		if n := len(extra); n == 0 || extra[n-1].id != id.Bytes {
			candidates = append(candidates, rules.Candidate{ClaimID: uuid.UUID(id.Bytes).String(), Weight: weight, AlreadyAllocated: already})
			extra = append(extra, candidateExtra{id: id.Bytes})
		}
		if it.Quantity <= 0 {
			continue // no longer on offer: ordered by earlier tranches
		}
		i := len(candidates) - 1
		candidates[i].Items = append(candidates[i].Items, it)
		extra[i].names = append(extra[i].names, name)
	}
	return candidates, extra, rows.Err()
}

// candidateExtra is what the draft stores about a candidate besides
// rules.Candidate: its id, and its items' names (names[j] is Items[j]'s).
type candidateExtra struct {
	id    [16]byte
	names []string
}

// name is the name of the candidate's item sku.
func (e *candidateExtra) name(c *rules.Candidate, sku string) string {
	for j, it := range c.Items {
		if it.SKU == sku {
			return e.names[j]
		}
	}
	return ""
}

// PreviewItem is one item of a draft line.
type PreviewItem struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	Perishable bool   `json:"perishable"`
	Quantity   int64  `json:"quantity"`
	UnitPrice  int64  `json:"unit_price"`
	Amount     int64  `json:"amount"`
}

// PreviewLine is one candidate of a draft allocation, with its figures.
type PreviewLine struct {
	ClaimID          uuid.UUID     `json:"claim_id"`
	ReceiptNo        string        `json:"receipt_no"`
	BusinessName     string        `json:"-"`
	Tier             int           `json:"tier"`
	Weight           int64         `json:"weight"`
	TierWeight       int64         `json:"-"`
	Offer            int64         `json:"offer"`
	AlreadyAllocated int64         `json:"already_allocated"`
	Cap              int64         `json:"cap"`
	Share            int64         `json:"-"`
	Converted        int64         `json:"-"`
	Allocated        int64         `json:"allocated"`
	Items            []PreviewItem `json:"items"`
}

// Explanation says how the line was allocated ("why"), in Korean unless lang is English.
func (l PreviewLine) Explanation(lang string) []string {
	r := rules.AllocationLine{ClaimID: l.ClaimID.String(), Tier: l.Tier, Weight: l.Weight, TierWeight: l.TierWeight, Offer: l.Offer,
		AlreadyAllocated: l.AlreadyAllocated, Cap: l.Cap, Share: l.Share, Converted: l.Converted, Allocated: l.Allocated}
	for _, it := range l.Items {
		r.Items = append(r.Items, rules.AllocatedItem{SKU: it.SKU, Perishable: it.Perishable, UnitPrice: it.UnitPrice, Quantity: it.Quantity, Amount: it.Amount})
	}
	return r.Explanation(lang)
}

// Units is the number of units the line buys.
func (l PreviewLine) Units() int64 {
	var n int64
	for _, it := range l.Items {
		n += it.Quantity
	}
	return n
}

// TranchePreview is a tranche with its stored draft.
type TranchePreview struct {
	Tranche *Tranche
	Lines   []PreviewLine // in claim id order
}

// TranchePreview loads the stored draft of a tranche the viewer may see.
func (s *Store) TranchePreview(ctx context.Context, v *User, id uuid.UUID) (*TranchePreview, error) {
	t, err := s.TrancheForViewer(ctx, v, id)
	if err != nil {
		return nil, err
	}
	out := &TranchePreview{Tranche: t, Lines: []PreviewLine{}}
	rows, err := s.Pool.Query(ctx, `SELECT l.claim_id, c.receipt_no, c.business_name, l.tier, l.weight, l.tier_weight, l.offer,
			l.already_allocated, l.cap, l.share, l.converted, l.allocated
		FROM tranche_lines l JOIN claims c ON c.id = l.claim_id WHERE l.tranche_id = $1 ORDER BY l.claim_id`, id)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var l PreviewLine
		var claimID pgtype.UUID
		if err := rows.Scan(&claimID, &l.ReceiptNo, &l.BusinessName, &l.Tier, &l.Weight, &l.TierWeight, &l.Offer,
			&l.AlreadyAllocated, &l.Cap, &l.Share, &l.Converted, &l.Allocated); err != nil {
			rows.Close()
			return nil, err
		}
		l.ClaimID = claimID.Bytes
		l.Items = []PreviewItem{}
		out.Lines = append(out.Lines, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.Pool.Query(ctx, `SELECT claim_id, sku, name, perishable, unit_price, quantity, amount FROM tranche_items
		WHERE tranche_id = $1 ORDER BY claim_id, perishable DESC, sku`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	i := 0 // lines and items are both in claim id order: merged, not looked up
	for rows.Next() {
		var claimID pgtype.UUID
		var it PreviewItem
		if err := rows.Scan(&claimID, &it.SKU, &it.Name, &it.Perishable, &it.UnitPrice, &it.Quantity, &it.Amount); err != nil {
			return nil, err
		}
		for i < len(out.Lines) && bytes.Compare(out.Lines[i].ClaimID[:], claimID.Bytes[:]) < 0 {
			i++
		}
		if i < len(out.Lines) && out.Lines[i].ClaimID == claimID.Bytes {
			out.Lines[i].Items = append(out.Lines[i].Items, it)
		}
	}
	return out, rows.Err()
}

// ApproveResult is the answer to an approval.
type ApproveResult struct {
	PurchaseOrders int   `json:"purchase_orders"`
	Total          int64 `json:"total"`
}

// ApproveTranche approves the stored draft and writes its purchase orders, in
// one transaction with set-based SQL (one order per merchant with an
// allocation; its lines are the draft's units). The approver must hold the
// approver role in the program's agency and must not be the creator (403
// segregation_of_duties, also a CHECK in the database). expectVersion, when
// not 0, must be the draft's version (409 preview_changed); a draft computed
// before another tranche of the program was approved is 409 preview_stale.
// Retrying after a success by the same approver answers the same result.
func (s *Store) ApproveTranche(ctx context.Context, id, approver uuid.UUID, expectVersion int) (ApproveResult, error) {
	var res ApproveResult
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		t, _, err := lockTranche(ctx, tx, id)
		if err != nil {
			return err
		}
		if t.Approved() {
			if t.ApprovedBy != nil && *t.ApprovedBy == approver {
				res = ApproveResult{PurchaseOrders: int(t.PurchaseOrders), Total: t.TotalAllocated}
				return nil
			}
			return errAlreadyApproved()
		}
		var roles []string
		var agency *string
		err = tx.QueryRow(ctx, `SELECT roles, agency_code FROM users WHERE id = $1`, approver).Scan(&roles, &agency)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if err != nil || !contains(roles, RoleApprover) || agency == nil || *agency != t.Agency {
			return Coded(EFORBIDDEN, "forbidden", "only an approver of the program's agency approves tranches")
		}
		if approver == t.CreatedBy {
			return errSegregation()
		}
		if t.Status == TrancheDraft {
			return Coded(ECONFLICT, "preview_required", "preview the tranche before approving it")
		}
		if expectVersion != 0 && expectVersion != t.PreviewVersion {
			e := Coded(ECONFLICT, "preview_changed", "the draft changed since you saw it: look at it again")
			e.Data = map[string]any{"preview_version": t.PreviewVersion}
			return e
		}
		var basis, current int
		if err := tx.QueryRow(ctx, `SELECT preview_basis, (SELECT coalesce(max(approval_seq), 0) FROM tranches WHERE program_code = $2)
			FROM tranches WHERE id = $1`, id, t.Program).Scan(&basis, &current); err != nil {
			return err
		}
		if basis != current {
			return Coded(ECONFLICT, "preview_stale", "another tranche was approved since this preview: preview again")
		}
		now := s.Now()
		if _, err := tx.Exec(ctx, `UPDATE tranches SET status = 'approved', approved_by = $2, approved_at = $3, approval_seq = $4 WHERE id = $1`,
			id, approver, now, current+1); err != nil {
			if checkViolation(err, "tranches_sod") {
				return errSegregation()
			}
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO purchase_orders (id, order_no, tranche_id, claim_id, program_code, amount, created_at)
			SELECT gen_random_uuid(), $2::text || lpad((row_number() OVER (ORDER BY l.claim_id))::text, 5, '0'),
				l.tranche_id, l.claim_id, $3, l.allocated, $4
			FROM tranche_lines l WHERE l.tranche_id = $1 AND l.allocated > 0`, id, fmt.Sprintf("%s-T%d-", t.Program, t.Seq), t.Program, now)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO purchase_order_items (po_id, sku, name, perishable, unit_price, quantity, amount)
			SELECT po.id, i.sku, i.name, i.perishable, i.unit_price, i.quantity, i.amount
			FROM tranche_items i JOIN purchase_orders po ON po.tranche_id = i.tranche_id AND po.claim_id = i.claim_id
			WHERE i.tranche_id = $1`, id); err != nil {
			return err
		}
		var total int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(sum(amount), 0) FROM purchase_orders WHERE tranche_id = $1`, id).Scan(&total); err != nil {
			return err
		}
		if total != t.TotalAllocated || total > t.Budget {
			return fmt.Errorf("tranche %s: orders total %d, draft %d, budget %d", id, total, t.TotalAllocated, t.Budget)
		}
		res = ApproveResult{PurchaseOrders: int(tag.RowsAffected()), Total: total}
		if _, err := tx.Exec(ctx, `UPDATE tranches SET purchase_orders = $2 WHERE id = $1`, id, res.PurchaseOrders); err != nil {
			return err
		}
		return s.Audit(ctx, tx, AuditEntry{ActorID: &approver, Actor: actorName(ctx, tx, approver), Action: "tranche.approve", Subject: "tranche:" + id.String(),
			Details: map[string]any{"purchase_orders": res.PurchaseOrders, "total": total, "preview_version": t.PreviewVersion}})
	})
	return res, err
}

func errSegregation() *Error {
	return Coded(EFORBIDDEN, "segregation_of_duties", "nobody approves a tranche they created")
}

// NotifyPage is one page of claims told their allocation.
type NotifyPage struct {
	Notified int  `json:"notified"`
	Done     bool `json:"done"`
}

// NotifyAllocations tells up to limit claims of an approved tranche their
// allocation, in one transaction: each claim's prepurchase_allocated grows by
// its order and its timeline gets a note. Each order is told once
// (notified_at), so a retried page changes nothing. When no order is left the
// tranche becomes notified.
func (s *Store) NotifyAllocations(ctx context.Context, id uuid.UUID, limit int) (NotifyPage, error) {
	var page NotifyPage
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var name, status string
		err := tx.QueryRow(ctx, `SELECT name, status FROM tranches WHERE id = $1`, id).Scan(&name, &status)
		if errors.Is(err, pgx.ErrNoRows) {
			return Coded(ENOTFOUND, "tranche_not_found", "no such tranche")
		}
		if err != nil {
			return err
		}
		if status != TrancheApproved && status != TrancheNotified {
			return Coded(ECONFLICT, "tranche_not_approved", "the tranche is not approved")
		}
		now := s.Now()
		tag, err := tx.Exec(ctx, `WITH page AS (
				SELECT id FROM purchase_orders WHERE tranche_id = $1 AND notified_at IS NULL ORDER BY claim_id LIMIT $2 FOR UPDATE),
			marked AS (
				UPDATE purchase_orders po SET notified_at = $3 FROM page WHERE po.id = page.id RETURNING po.claim_id, po.amount, po.order_no),
			told AS (
				UPDATE claims c SET prepurchase_allocated = c.prepurchase_allocated + m.amount, updated_at = $3
				FROM marked m WHERE c.id = m.claim_id RETURNING c.id, c.status)
			INSERT INTO claim_events (claim_id, event_key, at, status, actor_role, note)
			SELECT t.id, $5::text, $3, t.status, 'system',
				$4::text || to_char(m.amount, 'FM999,999,999,999,999,990') || '원 (발주번호 ' || m.order_no || ')'
			FROM told t JOIN marked m ON m.claim_id = t.id
			ON CONFLICT (claim_id, event_key) DO NOTHING`, id, limit, now, "정부 선매입 "+name+" 배정: ", "prepurchase:"+id.String())
		if err != nil {
			return err
		}
		page.Notified = int(tag.RowsAffected())
		var left int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM purchase_orders WHERE tranche_id = $1 AND notified_at IS NULL`, id).Scan(&left); err != nil {
			return err
		}
		page.Done = left == 0
		if page.Done {
			_, err = tx.Exec(ctx, `UPDATE tranches SET status = 'notified', notified_at = $2 WHERE id = $1 AND status = 'approved'`, id, now)
		}
		return err
	})
	return page, err
}

// PurchaseOrder is an order to a merchant.
type PurchaseOrder struct {
	ID           uuid.UUID     `json:"id"`
	OrderNo      string        `json:"order_no"`
	TrancheID    uuid.UUID     `json:"tranche_id"`
	ClaimID      uuid.UUID     `json:"claim_id"`
	ReceiptNo    string        `json:"receipt_no"`
	BusinessName string        `json:"business_name"`
	Program      string        `json:"program"`
	Agency       string        `json:"-"`
	Amount       int64         `json:"amount"`
	Status       string        `json:"status"`
	Entitled     int64         `json:"entitled"`  // the amount owed once received, truncated to 10 won
	Remainder    int64         `json:"remainder"` // 끝수 left in the budget
	CreatedAt    time.Time     `json:"created_at"`
	NotifiedAt   *time.Time    `json:"notified_at"`
	ReceivedAt   *time.Time    `json:"received_at"`
	Items        []PreviewItem `json:"items,omitempty"`
}

const poColumns = `po.id, po.order_no, po.tranche_id, po.claim_id, c.receipt_no, c.business_name, po.program_code, p.agency_code,
	po.amount, po.status, po.entitled, po.created_at, po.notified_at, po.received_at`

const poFrom = ` FROM purchase_orders po JOIN claims c ON c.id = po.claim_id JOIN programs p ON p.code = po.program_code `

func scanPO(row pgx.Row) (*PurchaseOrder, error) {
	po := &PurchaseOrder{}
	err := row.Scan(&po.ID, &po.OrderNo, &po.TrancheID, &po.ClaimID, &po.ReceiptNo, &po.BusinessName, &po.Program, &po.Agency,
		&po.Amount, &po.Status, &po.Entitled, &po.CreatedAt, &po.NotifiedAt, &po.ReceivedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Coded(ENOTFOUND, "purchase_order_not_found", "no such purchase order")
	}
	if po.Status != "received" {
		po.Entitled, _ = rules.Truncate10(po.Amount)
	}
	po.Remainder = po.Amount - po.Entitled
	return po, err
}

// PurchaseOrderSourceKey is the entitlement source key of a received order.
func PurchaseOrderSourceKey(id uuid.UUID) string { return "po:" + id.String() }

// ReceivePurchaseOrder records that an order's goods arrived (program_admin of
// the program's agency): the amount, truncated to 10 won, becomes a
// pre-purchase entitlement (source key "po:<id>") and the claim's timeline
// says so. Receiving twice changes nothing and answers the same order.
func (s *Store) ReceivePurchaseOrder(ctx context.Context, v *User, id uuid.UUID, ip string) (*PurchaseOrder, error) {
	if err := requireRole(v, RoleProgramAdmin); err != nil {
		return nil, err
	}
	var out *PurchaseOrder
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM purchase_orders WHERE id = $1 FOR UPDATE`, id); err != nil {
			return err
		}
		po, err := scanPO(tx.QueryRow(ctx, `SELECT `+poColumns+poFrom+`WHERE po.id = $1`, id))
		if err != nil {
			return err
		}
		if !v.IsStaff() || v.Agency != po.Agency {
			return Coded(ENOTFOUND, "purchase_order_not_found", "no such purchase order")
		}
		if po.Status == "received" {
			out = po
			return nil
		}
		var entitlement *uuid.UUID
		if po.Entitled > 0 {
			eid, _, err := s.PostEntitlement(ctx, tx, NewEntitlement{ClaimID: po.ClaimID, Program: po.Program, Instrument: InstrumentPrepurchase,
				Amount: po.Entitled, SourceKey: PurchaseOrderSourceKey(po.ID), Memo: "purchase order " + po.OrderNo})
			if err != nil {
				return err
			}
			entitlement = &eid
		}
		now := s.Now()
		if _, err := tx.Exec(ctx, `UPDATE purchase_orders SET status = 'received', received_at = $2, received_by = $3, entitlement_id = $4, entitled = $5
			WHERE id = $1`, id, now, v.ID, entitlement, po.Entitled); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO claim_events (claim_id, event_key, at, status, actor_role, actor_id, note)
			SELECT id, $2, $3, status, 'program_admin', $4, $5 FROM claims WHERE id = $1
			ON CONFLICT (claim_id, event_key) DO NOTHING`, po.ClaimID, "po-received:"+id.String(), now, v.ID,
			"선매입 물품 입고 확인 (발주번호 "+po.OrderNo+"): "+rules.FormatWon(po.Entitled)+" 지급 예정"); err != nil {
			return err
		}
		if err := s.Audit(ctx, tx, AuditEntry{ActorID: &v.ID, Actor: v.Email, Action: "purchase_order.receive", Subject: "purchase_order:" + id.String(), IP: ip,
			Details: map[string]any{"amount": po.Amount, "entitled": po.Entitled}}); err != nil {
			return err
		}
		out, err = scanPO(tx.QueryRow(ctx, `SELECT `+poColumns+poFrom+`WHERE po.id = $1`, id))
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, s.loadPOItems(ctx, []*PurchaseOrder{out})
}

func (s *Store) loadPOItems(ctx context.Context, pos []*PurchaseOrder) error {
	if len(pos) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(pos))
	byID := map[uuid.UUID]*PurchaseOrder{}
	for i, po := range pos {
		ids[i] = po.ID
		byID[po.ID] = po
		po.Items = []PreviewItem{}
	}
	rows, err := s.Pool.Query(ctx, `SELECT po_id, sku, name, perishable, unit_price, quantity, amount FROM purchase_order_items
		WHERE po_id = ANY($1) ORDER BY po_id, perishable DESC, sku`, ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var it PreviewItem
		if err := rows.Scan(&id, &it.SKU, &it.Name, &it.Perishable, &it.UnitPrice, &it.Quantity, &it.Amount); err != nil {
			return err
		}
		byID[id].Items = append(byID[id].Items, it)
	}
	return rows.Err()
}

// ListPurchaseOrders returns a page of a tranche's orders (by order number)
// for staff of its agency.
func (s *Store) ListPurchaseOrders(ctx context.Context, v *User, trancheID uuid.UUID, cursor string, limit int) ([]*PurchaseOrder, string, error) {
	if _, err := s.TrancheForViewer(ctx, v, trancheID); err != nil {
		return nil, "", err
	}
	after := ""
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil {
			return nil, "", FieldError("validation_failed", "cursor", "invalid_cursor", "invalid cursor")
		}
		after = string(b)
	}
	limit = clampLimit(limit)
	rows, err := s.Pool.Query(ctx, `SELECT `+poColumns+poFrom+`WHERE po.tranche_id = $1 AND po.order_no > $2 ORDER BY po.order_no LIMIT $3`,
		trancheID, after, limit+1)
	if err != nil {
		return nil, "", err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*PurchaseOrder, error) { return scanPO(r) })
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = base64.RawURLEncoding.EncodeToString([]byte(out[limit-1].OrderNo))
	}
	if out == nil {
		out = []*PurchaseOrder{}
	}
	return out, next, s.loadPOItems(ctx, out)
}

// AllocationRows yields a tranche's allocation as purchase-order lines for
// exports.WriteAllocations: the orders' lines once approved, the draft's lines
// (without order numbers) before. q may be a snapshot transaction.
func AllocationRows(ctx context.Context, q Querier, trancheID uuid.UUID) iter.Seq2[exports.AllocationLine, error] {
	return func(yield func(exports.AllocationLine, error) bool) {
		rows, err := q.Query(ctx, `SELECT po.order_no, c.receipt_no, c.brn, c.business_name, i.sku, i.name, i.perishable, i.unit_price, i.quantity, i.amount
			FROM purchase_orders po JOIN purchase_order_items i ON i.po_id = po.id JOIN claims c ON c.id = po.claim_id
			WHERE po.tranche_id = $1
			UNION ALL
			SELECT '', c.receipt_no, c.brn, c.business_name, i.sku, i.name, i.perishable, i.unit_price, i.quantity, i.amount
			FROM tranche_items i JOIN tranches t ON t.id = i.tranche_id JOIN claims c ON c.id = i.claim_id
			WHERE i.tranche_id = $1 AND t.status IN ('draft','previewed')
			ORDER BY 1, 2, 5`, trancheID)
		if err != nil {
			yield(exports.AllocationLine{}, err)
			return
		}
		defer rows.Close()
		for rows.Next() {
			var l exports.AllocationLine
			if err := rows.Scan(&l.OrderNo, &l.ReceiptNo, &l.BRN, &l.BusinessName, &l.SKU, &l.ItemName, &l.Perishable, &l.UnitPrice, &l.Quantity, &l.Amount); err != nil {
				yield(l, err)
				return
			}
			if !yield(l, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(exports.AllocationLine{}, err)
		}
	}
}

// AllocationRows is AllocationRows on the pool.
func (s *Store) AllocationRows(ctx context.Context, trancheID uuid.UUID) iter.Seq2[exports.AllocationLine, error] {
	return AllocationRows(ctx, s.Pool, trancheID)
}

// actorName is the audit log's name for a user acting through a workflow.
func actorName(ctx context.Context, tx pgx.Tx, id uuid.UUID) string {
	var email string
	if err := tx.QueryRow(ctx, `SELECT email FROM users WHERE id = $1`, id).Scan(&email); err != nil {
		return "user:" + id.String()
	}
	return email
}
