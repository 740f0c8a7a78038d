package models

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/relief/relief/models/rules"
)

// Relief instruments (DESIGN.md): compensation entitlements, pre-purchase
// tranches (tranche.go) and fee waivers (feewaiver.go) on the double-entry
// ledger (ledger.go). This file holds what they share: budgets, the
// compensation entitlement, goods offers and replayable responses.

// ApprovedStatuses are the statuses of a claim whose approval stands: approved
// (by a reviewer or the fast track) and the later payment steps. Such a claim
// may sell goods to a tranche and is owed its approved compensation.
var ApprovedStatuses = []string{StatusApproved, StatusAutoApproved, StatusEntitled, StatusPaying, StatusPaid}

// goodsEditable are the statuses in which the merchant may still change the
// goods offered: the claim is not decided.
var goodsEditable = []string{StatusReceived, StatusVerifying, StatusInReview, StatusInfoRequested, StatusAppealed}

// GoodsEditable reports whether a claim in status may still change its goods.
func GoodsEditable(status string) bool { return contains(goodsEditable, status) }

// fundBudget puts amount into a program's instrument budget, once per key, in tx.
func fundBudget(ctx context.Context, tx pgx.Tx, program, instrument string, amount int64, key string) error {
	if amount <= 0 {
		return FieldError("validation_failed", "amount", "out_of_range", "amount must be positive")
	}
	_, _, err := postTx(ctx, tx, program, "funding", key, "budget "+instrument, nil, []posting{
		{code: fundingAccount(program), kind: "funding", amount: -amount},
		{code: budgetAccount(program, instrument), kind: "budget", instrument: instrument, amount: amount},
	})
	return err
}

// Demo budgets (DESIGN.md "The real-world figures"): about 126억 won of
// estimated lost sales, about 8억 won of commission waived. Pre-purchase is
// funded per tranche when the admin creates one (11억, then 22억).
const (
	DemoCompensationBudget int64 = 12_600_000_000
	DemoFeeWaiverBudget    int64 = 1_000_000_000
)

// SeedInstruments funds the demo program's compensation and fee-waiver budgets;
// idempotent (each funding has a fixed key), so every `relief dev` may call it.
func (s *Store) SeedInstruments(ctx context.Context) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := programByCode(ctx, tx, DemoProgram); err != nil {
			return err
		}
		if err := fundBudget(ctx, tx, DemoProgram, InstrumentCompensation, DemoCompensationBudget, "seed:"+DemoProgram+":"+InstrumentCompensation); err != nil {
			return err
		}
		return fundBudget(ctx, tx, DemoProgram, InstrumentFeeWaiver, DemoFeeWaiverBudget, "seed:"+DemoProgram+":"+InstrumentFeeWaiver)
	})
}

// CompensationSourceKey is the entitlement source key of a claim's approved compensation.
func CompensationSourceKey(claimID uuid.UUID) string { return "compensation:" + claimID.String() }

// EntitleCompensation makes a claim's approved compensation, truncated to 10
// won (국고금관리법 §47), an entitlement: compensation budget → the claim's
// payable, source key "compensation:<claim id>". It runs in tx (the caller's
// approval transaction) under a savepoint, so a refusal leaves tx usable.
//
//   - Idempotent: a second call returns the first entitlement, created=false.
//   - A claim whose status is not approved (ApprovedStatuses) is 409
//     claim_not_approved; an unknown claim is 404.
//   - Nothing to entitle (approved_compensation under 10 won) returns uuid.Nil, false, nil.
//   - A compensation budget too small is 409 insufficient_balance; nothing is written.
func (s *Store) EntitleCompensation(ctx context.Context, tx pgx.Tx, claimID uuid.UUID) (id uuid.UUID, created bool, err error) {
	var program, status, receipt string
	var approved int64
	err = tx.QueryRow(ctx, `SELECT program_code, status, approved_compensation, receipt_no FROM claims WHERE id = $1 FOR UPDATE`, claimID).
		Scan(&program, &status, &approved, &receipt)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, false, ErrNotFound
	}
	if err != nil {
		return uuid.Nil, false, err
	}
	if !contains(ApprovedStatuses, status) {
		return uuid.Nil, false, Coded(ECONFLICT, "claim_not_approved", "the claim is not approved")
	}
	amount, _ := rules.Truncate10(approved)
	if amount <= 0 {
		return uuid.Nil, false, nil
	}
	err = pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
		id, created, err = s.PostEntitlement(ctx, sp, NewEntitlement{ClaimID: claimID, Program: program, Instrument: InstrumentCompensation,
			Amount: amount, SourceKey: CompensationSourceKey(claimID), Memo: "compensation " + receipt})
		return err
	})
	if err != nil {
		return uuid.Nil, false, err
	}
	return id, created, nil
}

// SweepPage is one page of a compensation sweep.
type SweepPage struct {
	Next     uuid.UUID `json:"next"` // cursor: the last claim looked at
	Done     bool      `json:"done"`
	Entitled int       `json:"entitled"` // entitlements created
	Amount   int64     `json:"amount"`
	Short    int       `json:"short"` // left without entitlement: budget too small
}

// SweepCompensation entitles, in one transaction, up to limit approved claims of
// program after the cursor that have approved compensation but no compensation
// entitlement yet, so no approval is missed whatever happened to the call made
// at approval. Claims the budget cannot cover are counted and skipped.
func (s *Store) SweepCompensation(ctx context.Context, program string, after uuid.UUID, limit int) (SweepPage, error) {
	page := SweepPage{Next: after}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		page = SweepPage{Next: after}
		rows, err := tx.Query(ctx, `SELECT c.id FROM claims c
			WHERE c.program_code = $1 AND c.status = ANY($2) AND c.approved_compensation >= 10 AND c.id > $3
			  AND NOT EXISTS (SELECT 1 FROM entitlements e WHERE e.source_key = 'compensation:' || c.id::text)
			ORDER BY c.id LIMIT $4`, program, ApprovedStatuses, after, limit)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return err
		}
		page.Done = len(ids) < limit
		for _, id := range ids {
			page.Next = id
			eid, created, err := s.EntitleCompensation(ctx, tx, id)
			switch {
			case err != nil && isCode(err, "insufficient_balance"):
				page.Short++
			case err != nil:
				return err
			case created:
				page.Entitled++
				var amount int64
				if err := tx.QueryRow(ctx, `SELECT amount FROM entitlements WHERE id = $1`, eid).Scan(&amount); err != nil {
					return err
				}
				page.Amount += amount
			}
		}
		return nil
	})
	return page, err
}

func isCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// Budget is one instrument's budget in a program.
type Budget struct {
	Instrument string `json:"instrument"`
	Funded     int64  `json:"funded"`    // put in by funding transactions
	Entitled   int64  `json:"entitled"`  // moved to merchants (net of reversals)
	Available  int64  `json:"available"` // the budget account's balance
}

// ProgramBudgets returns each instrument's budget, in Instruments order.
func (s *Store) ProgramBudgets(ctx context.Context, program string) ([]Budget, error) {
	rows, err := s.Pool.Query(ctx, `SELECT a.instrument, a.balance,
			coalesce(sum(l.amount) FILTER (WHERE t.kind = 'funding'), 0)
		FROM ledger_accounts a
		LEFT JOIN ledger_lines l ON l.account_id = a.id
		LEFT JOIN ledger_transactions t ON t.id = l.tx_id
		WHERE a.program_code = $1 AND a.kind = 'budget'
		GROUP BY a.instrument, a.balance`, program)
	if err != nil {
		return nil, err
	}
	byInstrument := map[string]Budget{}
	for rows.Next() {
		var b Budget
		if err := rows.Scan(&b.Instrument, &b.Available, &b.Funded); err != nil {
			rows.Close()
			return nil, err
		}
		b.Entitled = b.Funded - b.Available
		byInstrument[b.Instrument] = b
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]Budget, 0, len(Instruments))
	for _, in := range Instruments {
		b := byInstrument[in]
		b.Instrument = in
		out = append(out, b)
	}
	return out, nil
}

// staffProgram loads a program the viewer may work on: staff of the program's
// agency only. Anyone else gets 404 program_not_found, as if it did not exist.
func staffProgram(ctx context.Context, q Querier, v *User, code string) (*Program, error) {
	notFound := Coded(ENOTFOUND, "program_not_found", "no such program")
	if v == nil || !v.IsStaff() {
		return nil, notFound
	}
	p, err := programByCode(ctx, q, code)
	if err != nil {
		return nil, err
	}
	if p.Agency != v.Agency {
		return nil, notFound
	}
	return p, nil
}

// StaffProgram is staffProgram on the pool, for handlers.
func (s *Store) StaffProgram(ctx context.Context, v *User, code string) (*Program, error) {
	return staffProgram(ctx, s.Pool, v, code)
}

func requireRole(v *User, role string) error {
	if v == nil || !v.HasRole(role) {
		return Coded(EFORBIDDEN, "forbidden", "your role may not do this")
	}
	return nil
}

// NormalizeGoods trims and validates goods offered for pre-purchase, naming
// every bad field as goods[i].field (the same rules as the claim form).
func NormalizeGoods(goods []GoodsItem) ([]GoodsItem, error) {
	fields := map[string]string{}
	if len(goods) > maxGoods {
		fields["goods"] = "too_many"
	}
	out := make([]GoodsItem, len(goods))
	seen := map[string]bool{}
	for i, g := range goods {
		prefix := "goods[" + strconv.Itoa(i) + "]."
		g.SKU, g.Name = strings.TrimSpace(g.SKU), strings.TrimSpace(g.Name)
		switch {
		case g.SKU == "":
			fields[prefix+"sku"] = "required"
		case utf8.RuneCountInString(g.SKU) > 40:
			fields[prefix+"sku"] = "too_long"
		case seen[g.SKU]:
			fields[prefix+"sku"] = "duplicate"
		}
		seen[g.SKU] = true
		switch {
		case g.Name == "":
			fields[prefix+"name"] = "required"
		case utf8.RuneCountInString(g.Name) > 100:
			fields[prefix+"name"] = "too_long"
		}
		if g.UnitPrice <= 0 || g.UnitPrice > maxUnitPrice {
			fields[prefix+"unit_price"] = "out_of_range"
		}
		if g.Quantity <= 0 || g.Quantity > maxQuantity {
			fields[prefix+"quantity"] = "out_of_range"
		}
		out[i] = g
	}
	if len(fields) > 0 {
		return nil, &Error{Kind: EINVALID, Code: "validation_failed", Message: "some goods are invalid", Fields: fields}
	}
	return out, nil
}

// ReplaceGoods replaces the goods a merchant offers on their claim, while the
// claim is not decided (409 claim_decided afterwards). Only the claim's
// merchant may (anyone else: 404; staff: 403). An empty list withdraws the offer.
func (s *Store) ReplaceGoods(ctx context.Context, v *User, claimID uuid.UUID, goods []GoodsItem, ip string) ([]GoodsItem, error) {
	if v == nil || !v.HasRole(RoleMerchant) || v.IsStaff() {
		return nil, Coded(EFORBIDDEN, "forbidden", "only the claim's merchant changes its goods")
	}
	goods, err := NormalizeGoods(goods)
	if err != nil {
		return nil, err
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var merchant uuid.UUID
		var status string
		err := tx.QueryRow(ctx, `SELECT merchant_id, status FROM claims WHERE id = $1 FOR UPDATE`, claimID).Scan(&merchant, &status)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && merchant != v.ID {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if !GoodsEditable(status) {
			e := Coded(ECONFLICT, "claim_decided", "the claim is decided: its goods can no longer change")
			e.Data = map[string]any{"status": status}
			return e
		}
		if _, err := tx.Exec(ctx, `DELETE FROM claim_goods WHERE claim_id = $1`, claimID); err != nil {
			return err
		}
		if len(goods) > 0 {
			rows := make([][]any, len(goods))
			for i, g := range goods {
				rows[i] = []any{claimID, i + 1, g.SKU, g.Name, g.UnitPrice, g.Quantity, g.Perishable}
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"claim_goods"},
				[]string{"claim_id", "line", "sku", "name", "unit_price", "quantity", "perishable"}, pgx.CopyFromRows(rows)); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE claims SET updated_at = $2 WHERE id = $1`, claimID, s.Now()); err != nil {
			return err
		}
		return s.Audit(ctx, tx, AuditEntry{ActorID: &v.ID, Actor: v.Email, Action: "claim.goods.replace",
			Subject: "claim:" + claimID.String(), IP: ip, Details: map[string]any{"items": len(goods)}})
	})
	if err != nil {
		return nil, err
	}
	return goods, nil
}

// StoredResponse returns the response stored for (scope, key): found=false if
// none; 422 idempotency_mismatch if the key was used with another request.
// With RememberResponse it gives Idempotency-Key replay to actions that cannot
// run inside one database transaction (those that wait on a workflow).
func (s *Store) StoredResponse(ctx context.Context, scope, key string, reqHash []byte) (status int, body []byte, found bool, err error) {
	return s.storedResponse(ctx, scope, key, reqHash)
}

// RememberResponse stores a response for replay; the first one stored wins.
func (s *Store) RememberResponse(ctx context.Context, scope, key string, reqHash []byte, status int, body []byte) error {
	_, err := s.Pool.Exec(ctx, `INSERT INTO idempotency_keys (scope, key, request_hash, status, body) VALUES ($1,$2,$3,$4,$5)
		ON CONFLICT (scope, key) DO NOTHING`, scope, key, reqHash, status, body)
	return err
}

// checkViolation reports whether err is the CHECK constraint named constraint.
func checkViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514" && pgErr.ConstraintName == constraint
}

// dateOf turns a date column (scanned as UTC midnight) into a rules.Date.
func dateOf(t time.Time) rules.Date {
	return rules.Date{Year: t.Year(), Month: t.Month(), Day: t.Day()}
}
