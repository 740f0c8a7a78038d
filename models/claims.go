package models

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/models/rules"
)

// Claim statuses (API.md).
const (
	StatusReceived              = "received"
	StatusVerifying             = "verifying"
	StatusInReview              = "in_review"
	StatusInfoRequested         = "info_requested"
	StatusPendingSecondApproval = "pending_second_approval"
	StatusAutoApproved          = "auto_approved"
	StatusApproved              = "approved"
	StatusRejected              = "rejected"
	StatusAppealed              = "appealed"
	StatusEntitled              = "entitled"
	StatusPaying                = "paying"
	StatusPaid                  = "paid"
	StatusClosed                = "closed"
)

// ClaimStatuses in lifecycle order.
var ClaimStatuses = []string{StatusReceived, StatusVerifying, StatusInReview, StatusInfoRequested,
	StatusPendingSecondApproval, StatusAutoApproved, StatusApproved, StatusRejected, StatusAppealed,
	StatusEntitled, StatusPaying, StatusPaid, StatusClosed}

// Categories of goods a seller trades in (ledger and claim form).
var Categories = []string{"food", "agri", "fishery", "processed", "living", "fashion", "crafts", "health", "other"}

// Regions are the 17 metropolitan/provincial governments.
var Regions = []string{"서울", "부산", "대구", "인천", "광주", "대전", "울산", "세종", "경기", "강원", "충북", "충남", "전북", "전남", "경북", "경남", "제주"}

// Banks accepted for payouts (code → name).
var Banks = map[string]string{
	"002": "KDB산업", "003": "IBK기업", "004": "KB국민", "007": "수협", "011": "NH농협", "020": "우리",
	"023": "SC제일", "027": "한국씨티", "031": "iM뱅크", "032": "부산", "034": "광주", "035": "제주",
	"037": "전북", "039": "경남", "045": "새마을금고", "048": "신협", "071": "우체국", "081": "하나",
	"088": "신한", "089": "케이뱅크", "090": "카카오뱅크", "092": "토스뱅크",
}

// ClaimInput is the body of POST /api/v1/claims.
type ClaimInput struct {
	Program        string      `json:"program"`
	BRN            string      `json:"brn"`
	BusinessName   string      `json:"business_name"`
	Representative string      `json:"representative"`
	Phone          string      `json:"phone"`
	Category       string      `json:"category"`
	Region         string      `json:"region"`
	ClaimedLoss    int64       `json:"claimed_loss"`
	AcceptOffer    bool        `json:"accept_offer"`
	Bank           BankInput   `json:"bank"`
	Goods          []GoodsItem `json:"goods,omitempty"`
}

// BankInput is the payout account as entered.
type BankInput struct {
	BankCode      string `json:"bank_code"`
	AccountNumber string `json:"account_number"`
	Holder        string `json:"holder"`
}

// GoodsItem is a product the merchant offers for government pre-purchase.
type GoodsItem struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	UnitPrice  int64  `json:"unit_price"`
	Quantity   int64  `json:"quantity"`
	Perishable bool   `json:"perishable"`
}

// Limits on a claim body; generous for real merchants, bounded for the database.
const (
	maxClaimedLoss = 100_000_000_000 // 1,000억 won
	maxGoods       = 50
	maxUnitPrice   = 1_000_000_000
	maxQuantity    = 1_000_000
)

// Normalize trims the input and validates it, returning the parsed BRN and the
// digits-only account number. Errors name every bad field.
func (in *ClaimInput) Normalize() (rules.BRN, string, error) {
	fields := map[string]string{}
	trim := func(s *string, field string, max int) {
		*s = strings.TrimSpace(*s)
		if *s == "" {
			fields[field] = "required"
		} else if utf8.RuneCountInString(*s) > max {
			fields[field] = "too_long"
		}
	}
	in.Program = strings.TrimSpace(in.Program)
	if in.Program == "" {
		fields["program"] = "required"
	}
	brn, brnErr := rules.ParseBRN(in.BRN)
	trim(&in.BusinessName, "business_name", 100)
	trim(&in.Representative, "representative", 50)
	trim(&in.Phone, "phone", 20)
	if _, bad := fields["phone"]; !bad && !validPhone(in.Phone) {
		fields["phone"] = "invalid_phone"
	}
	if !contains(Categories, in.Category) {
		fields["category"] = "unknown_category"
	}
	if !contains(Regions, in.Region) {
		fields["region"] = "unknown_region"
	}
	switch {
	case in.ClaimedLoss < 0:
		fields["claimed_loss"] = "negative"
	case in.ClaimedLoss > maxClaimedLoss:
		fields["claimed_loss"] = "too_large"
	case in.ClaimedLoss == 0 && !in.AcceptOffer:
		fields["claimed_loss"] = "required_unless_offer_accepted"
	}
	account := in.Bank.normalize(fields, "bank.")
	if len(in.Goods) > maxGoods {
		fields["goods"] = "too_many"
	}
	seen := map[string]bool{}
	for i := range in.Goods {
		g := &in.Goods[i]
		prefix := "goods[" + strconv.Itoa(i) + "]."
		trim(&g.SKU, prefix+"sku", 40)
		trim(&g.Name, prefix+"name", 100)
		if seen[g.SKU] {
			fields[prefix+"sku"] = "duplicate"
		}
		seen[g.SKU] = true
		if g.UnitPrice <= 0 || g.UnitPrice > maxUnitPrice {
			fields[prefix+"unit_price"] = "out_of_range"
		}
		if g.Quantity <= 0 || g.Quantity > maxQuantity {
			fields[prefix+"quantity"] = "out_of_range"
		}
	}
	// A bad BRN has its own code (API.md: 422 invalid_brn), reported with the field.
	if brnErr != nil {
		fields["brn"] = "invalid_brn"
		e := &Error{Kind: EINVALID, Code: "invalid_brn", Message: "the business registration number is not valid", Fields: fields}
		return brn, "", e
	}
	if len(fields) > 0 {
		return brn, "", &Error{Kind: EINVALID, Code: "validation_failed", Message: "some fields are invalid", Fields: fields}
	}
	return brn, account, nil
}

// accountSeparators are the characters people type inside an account number.
// Built once: building a Replacer costs more than using it, and it is safe
// for concurrent use.
var accountSeparators = strings.NewReplacer("-", "", " ", "")

// normalize trims and validates the payout account, naming bad fields in
// fields (prefixed with prefix), and returns the digits-only account number.
// Claim intake and the account correction share it.
func (b *BankInput) normalize(fields map[string]string, prefix string) string {
	if _, ok := Banks[b.BankCode]; !ok {
		fields[prefix+"bank_code"] = "unsupported_bank"
	}
	account := accountSeparators.Replace(b.AccountNumber)
	if len(account) < 10 || len(account) > 14 || strings.Trim(account, "0123456789") != "" {
		fields[prefix+"account_number"] = "invalid_account"
	}
	b.Holder = strings.TrimSpace(b.Holder)
	if b.Holder == "" {
		fields[prefix+"holder"] = "required"
	} else if utf8.RuneCountInString(b.Holder) > 50 {
		fields[prefix+"holder"] = "too_long"
	}
	return account
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Filed is the 202 answer to a claim submission.
type Filed struct {
	ID        uuid.UUID `json:"id"`
	ReceiptNo string    `json:"receipt_no"`
	Status    string    `json:"status"`
}

// OutboxClaimFiled is the outbox topic that starts a ClaimWorkflow.
const OutboxClaimFiled = "claim.filed"

// Claim is a claim as the API shows it.
type Claim struct {
	ID             uuid.UUID  `json:"id"`
	ReceiptNo      string     `json:"receipt_no"`
	Program        string     `json:"program"`
	ProgramName    string     `json:"program_name"`
	Agency         string     `json:"-"`
	MerchantID     uuid.UUID  `json:"-"`
	Status         string     `json:"status"`
	BRN            string     `json:"brn"`
	BusinessName   string     `json:"business_name"`
	Representative string     `json:"representative"`
	Phone          string     `json:"phone"`
	Category       string     `json:"category"`
	Region         string     `json:"region"`
	AcceptOffer    bool       `json:"accept_offer"`
	Amounts        Amounts    `json:"amounts"`
	RiskFlags      []RiskFlag `json:"risk_flags"`
	Bank           BankView   `json:"bank"`
	// AccountCheckFailed: the bank refused the payout account (holder
	// mismatch, invalid account); nothing is paid until the merchant
	// corrects it. AccountCheckFailure is the bank's code.
	AccountCheckFailed  bool        `json:"account_check_failed"`
	AccountCheckFailure string      `json:"account_check_failure"`
	Goods               []GoodsItem `json:"goods,omitempty"`
	Timeline            []Event     `json:"timeline,omitempty"`
	CreatedAt           time.Time   `json:"created_at"`
	UpdatedAt           time.Time   `json:"updated_at"`
}

// Amounts are everything computed about a claim, in won.
type Amounts struct {
	ClaimedLoss          int64  `json:"claimed_loss"`
	EstimatedLoss        *int64 `json:"estimated_loss"`
	ApprovedCompensation int64  `json:"approved_compensation"`
	PrepurchaseAllocated int64  `json:"prepurchase_allocated"`
	FeeWaived            int64  `json:"fee_waived"`
	OwedTotal            int64  `json:"owed_total"`
	PaidTotal            int64  `json:"paid_total"`
}

// RiskFlag is a reason a reviewer should look closer.
type RiskFlag struct {
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// BankView is the payout account as shown: the number masked.
type BankView struct {
	BankCode      string `json:"bank_code"`
	BankName      string `json:"bank_name"`
	AccountMasked string `json:"account_masked"`
	Holder        string `json:"holder"`
}

// Event is one timeline entry.
type Event struct {
	At        time.Time `json:"at"`
	Status    string    `json:"status"`
	ActorRole string    `json:"actor_role"`
	Note      string    `json:"note"`
}

// Viewer is who is asking; visibility rules depend on it.
type Viewer = User

const claimColumns = `c.id, c.receipt_no, c.program_code, p.name, p.agency_code, c.merchant_id, c.status, c.brn,
	c.business_name, c.representative, c.phone, c.category, c.region, c.accept_offer, c.claimed_loss, c.estimated_loss,
	c.approved_compensation, c.prepurchase_allocated, c.fee_waived, c.owed_total, c.paid_total, c.risk_flags,
	c.bank_code, c.account_last4, c.account_holder, c.account_check_failed_at IS NOT NULL, c.account_check_failure,
	c.created_at, c.updated_at`

func scanClaim(row pgx.Row) (*Claim, error) {
	c := &Claim{}
	a := &c.Amounts
	var flags []byte
	var last4 string
	err := row.Scan(&c.ID, &c.ReceiptNo, &c.Program, &c.ProgramName, &c.Agency, &c.MerchantID, &c.Status, &c.BRN,
		&c.BusinessName, &c.Representative, &c.Phone, &c.Category, &c.Region, &c.AcceptOffer, &a.ClaimedLoss, &a.EstimatedLoss,
		&a.ApprovedCompensation, &a.PrepurchaseAllocated, &a.FeeWaived, &a.OwedTotal, &a.PaidTotal, &flags,
		&c.Bank.BankCode, &last4, &c.Bank.Holder, &c.AccountCheckFailed, &c.AccountCheckFailure,
		&c.CreatedAt, &c.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	c.Bank.BankName = Banks[c.Bank.BankCode]
	c.Bank.AccountMasked = "******" + last4
	c.RiskFlags = []RiskFlag{}
	if err := json.Unmarshal(flags, &c.RiskFlags); err != nil {
		return nil, err
	}
	return c, nil
}

// visible is the SQL condition for what viewer may see: merchants their own
// claims, staff their agency's programs, nobody else anything.
func visible(v *Viewer, args *[]any) string {
	switch {
	case v.HasRole(RoleMerchant) && !v.IsStaff():
		*args = append(*args, v.ID)
		return "c.merchant_id = $" + strconv.Itoa(len(*args))
	case v.IsStaff():
		*args = append(*args, v.Agency)
		return "p.agency_code = $" + strconv.Itoa(len(*args))
	default:
		return "false"
	}
}

// ClaimForViewer loads a claim with goods and timeline if viewer may see it;
// otherwise 404, exactly as if it did not exist.
func (s *Store) ClaimForViewer(ctx context.Context, v *Viewer, id uuid.UUID) (*Claim, error) {
	args := []any{id}
	cond := visible(v, &args)
	c, err := scanClaim(s.Pool.QueryRow(ctx, `SELECT `+claimColumns+` FROM claims c JOIN programs p ON p.code = c.program_code
		WHERE c.id = $1 AND `+cond, args...))
	if err != nil {
		return nil, err
	}
	c.Goods = []GoodsItem{}
	rows, err := s.Pool.Query(ctx, `SELECT sku, name, unit_price, quantity, perishable FROM claim_goods WHERE claim_id = $1 ORDER BY line`, id)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var g GoodsItem
		if err := rows.Scan(&g.SKU, &g.Name, &g.UnitPrice, &g.Quantity, &g.Perishable); err != nil {
			rows.Close()
			return nil, err
		}
		c.Goods = append(c.Goods, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	c.Timeline, err = s.Timeline(ctx, id)
	return c, err
}

// Timeline returns a claim's events in order.
func (s *Store) Timeline(ctx context.Context, claimID uuid.UUID) ([]Event, error) {
	rows, err := s.Pool.Query(ctx, `SELECT at, status, actor_role, note FROM claim_events WHERE claim_id = $1 ORDER BY at, id`, claimID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var e Event
		err := r.Scan(&e.At, &e.Status, &e.ActorRole, &e.Note)
		return e, err
	})
}

// ClaimFilter selects a page of claims.
type ClaimFilter struct {
	Program string
	Status  string
	Limit   int
	Cursor  string
}

// ListClaims returns a keyset-paginated page of claims visible to v, newest first.
func (s *Store) ListClaims(ctx context.Context, v *Viewer, f ClaimFilter) ([]*Claim, string, error) {
	args := []any{}
	where := []string{visible(v, &args)}
	if f.Program != "" {
		args = append(args, f.Program)
		where = append(where, "c.program_code = $"+strconv.Itoa(len(args)))
	}
	if f.Status != "" {
		if !contains(ClaimStatuses, f.Status) {
			return nil, "", FieldError("validation_failed", "status", "unknown_status", "unknown status")
		}
		args = append(args, f.Status)
		where = append(where, "c.status = $"+strconv.Itoa(len(args)))
	}
	if f.Cursor != "" {
		at, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", FieldError("validation_failed", "cursor", "invalid_cursor", "invalid cursor")
		}
		args = append(args, at, id)
		where = append(where, "(c.created_at, c.id) < ($"+strconv.Itoa(len(args)-1)+", $"+strconv.Itoa(len(args))+")")
	}
	limit := clampLimit(f.Limit)
	args = append(args, limit+1)
	rows, err := s.Pool.Query(ctx, `SELECT `+claimColumns+` FROM claims c JOIN programs p ON p.code = c.program_code
		WHERE `+strings.Join(where, " AND ")+` ORDER BY c.created_at DESC, c.id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []*Claim
	for rows.Next() {
		c, err := scanClaim(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = encodeCursor(last.CreatedAt, last.ID)
	}
	return out, next, nil
}

// SetClaimStatus records a timeline event and moves the claim to status, once:
// event_key makes retries (activities are at-least-once) harmless.
func (s *Store) SetClaimStatus(ctx context.Context, claimID uuid.UUID, eventKey, status, actorRole, note string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO claim_events (claim_id, event_key, at, status, actor_role, note)
			VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (claim_id, event_key) DO NOTHING`, claimID, eventKey, s.Now(), status, actorRole, note)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		if _, err = tx.Exec(ctx, `UPDATE claims SET status = $2, updated_at = $3 WHERE id = $1`, claimID, status, s.Now()); err != nil {
			return err
		}
		if status == StatusAutoApproved {
			return s.entitleOnApproval(ctx, tx, claimID)
		}
		return nil
	})
}

// entitleOnApproval makes an approved claim's compensation owed in the
// approval's own transaction. A compensation budget too small for it is not
// the approval's failure: the claim stays approved and the next compensation
// sweep (run with every tranche and fee-waiver run) entitles it once the
// budget is topped up.
func (s *Store) entitleOnApproval(ctx context.Context, tx pgx.Tx, claimID uuid.UUID) error {
	_, _, err := s.EntitleCompensation(ctx, tx, claimID)
	if isCode(err, "insufficient_balance") {
		return nil
	}
	return err
}

// ClaimFiledPayload is the outbox payload of OutboxClaimFiled.
type ClaimFiledPayload struct {
	Program string `json:"program"`
}
