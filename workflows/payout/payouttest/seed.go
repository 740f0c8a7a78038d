// Package payouttest seeds what payouts consume — claims with sealed bank
// accounts and owed entitlements on a funded, balanced ledger — straight into
// PostgreSQL with COPY, fast enough for a 10,000-payout benchmark, and makes
// the finance users that create and approve batches. Tests and bench/payout
// use it; production code never does.
package payouttest

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
)

// Options shape a seed. Zero values take the defaults.
type Options struct {
	Program    string // default models.DemoProgram
	Instrument string // default compensation
	Claims     int
	// Prefix keeps several seeds in one database apart (receipt numbers, keys).
	Prefix string
	// BRNSeed is the first rules.ValidBRNFromSeed index used.
	BRNSeed int
	// Amount of claim i, a positive multiple of 10; default 50,000–549,990 won.
	Amount func(i int) int64
	// Account of claim i; default bank 004/088/020/081/011 in turn and a
	// 14-digit number derived from Prefix and i.
	Account func(i int) (bankCode, account string)
	// Holder on claim i; default "김상인". Pass banksim.DefaultHolder to match
	// the sandbox bank.
	Holder func(i int, bankCode, account string) string
}

// Seeded is what a seed made.
type Seeded struct {
	ClaimIDs []uuid.UUID
	Amounts  []int64
	Total    int64
}

var defaultBanks = []string{"004", "088", "020", "081", "011"}

// Seed creates o.Claims claims of one merchant, each owed one entitlement, in
// one transaction; the program's budget is funded with exactly their total.
func Seed(ctx context.Context, s *models.Store, o Options) (*Seeded, error) {
	if o.Program == "" {
		o.Program = models.DemoProgram
	}
	if o.Instrument == "" {
		o.Instrument = models.InstrumentCompensation
	}
	if o.Prefix == "" {
		o.Prefix = "s" + uuid.NewString()[:6]
	}
	if o.Amount == nil {
		o.Amount = func(i int) int64 { return 50_000 + int64(i%500)*1_000 + int64(i%7)*10 }
	}
	if o.Account == nil {
		salt := int64(0)
		for _, r := range o.Prefix {
			salt = (salt*31 + int64(r)) % 1_000_000
		}
		o.Account = func(i int) (string, string) {
			return defaultBanks[i%len(defaultBanks)], fmt.Sprintf("110%05d%06d", salt%100_000, i)
		}
	}
	if o.Holder == nil {
		o.Holder = func(int, string, string) string { return "김상인" }
	}
	merchant, err := s.CreateUser(ctx, models.NewUser{Email: o.Prefix + "-merchant@seed.relief", Name: "김상인",
		Password: "seed-password-1", Roles: []string{models.RoleMerchant}})
	if err != nil {
		return nil, err
	}
	out := &Seeded{ClaimIDs: make([]uuid.UUID, o.Claims), Amounts: make([]int64, o.Claims)}
	claimRows := make([][]any, o.Claims)
	for i := range o.Claims {
		id := uuid.New()
		amount := o.Amount(i)
		if amount <= 0 || amount%10 != 0 {
			return nil, fmt.Errorf("payouttest: amount %d of claim %d is not a positive multiple of 10", amount, i)
		}
		bankCode, account := o.Account(i)
		ciphertext, keyID := s.Vault.Seal([]byte(account), []byte(id.String()))
		out.ClaimIDs[i], out.Amounts[i] = id, amount
		out.Total += amount
		claimRows[i] = []any{id, fmt.Sprintf("P%s-%06d", o.Prefix, i), o.Program, merchant.ID,
			rules.ValidBRNFromSeed(o.BRNSeed + i).String(), fmt.Sprintf("상점%06d", i), "김대표", "010-1234-5678", "food", "대전",
			amount, true, bankCode, ciphertext, keyID, account[len(account)-4:], s.Vault.BlindIndex(bankCode + ":" + account),
			o.Holder(i, bankCode, account), models.StatusEntitled, amount, amount}
	}
	if err := s.FundBudget(ctx, o.Program, o.Instrument, out.Total, "seed:"+o.Prefix); err != nil {
		return nil, err
	}
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"claims"}, []string{"id", "receipt_no", "program_code", "merchant_id",
			"brn", "business_name", "representative", "phone", "category", "region", "claimed_loss", "accept_offer", "bank_code",
			"account_ciphertext", "account_key_id", "account_last4", "account_blind_index", "account_holder", "status",
			"owed_total", "approved_compensation"}, pgx.CopyFromRows(claimRows)); err != nil {
			return fmt.Errorf("claims: %w", err)
		}
		// One payable account per claim, then one balanced entitlement
		// transaction (budget → payable) per claim, as PostEntitlement writes them.
		if _, err := tx.Exec(ctx, `INSERT INTO ledger_accounts (code, kind, program_code, claim_id)
			SELECT 'payable:' || id::text, 'payable', program_code, id FROM claims WHERE id = ANY($1)`, out.ClaimIDs); err != nil {
			return fmt.Errorf("payable accounts: %w", err)
		}
		var budget int64
		if err := tx.QueryRow(ctx, `SELECT id FROM ledger_accounts WHERE code = $1`,
			"budget:"+o.Program+":"+o.Instrument).Scan(&budget); err != nil {
			return fmt.Errorf("budget account: %w", err)
		}
		payable := map[uuid.UUID]int64{}
		rows, err := tx.Query(ctx, `SELECT claim_id, id FROM ledger_accounts WHERE kind = 'payable' AND claim_id = ANY($1)`, out.ClaimIDs)
		if err != nil {
			return err
		}
		for rows.Next() {
			var c uuid.UUID
			var a int64
			if err := rows.Scan(&c, &a); err != nil {
				rows.Close()
				return err
			}
			payable[c] = a
		}
		rows.Close()
		txRows := make([][]any, o.Claims)
		lineRows := make([][]any, 0, 2*o.Claims)
		entRows := make([][]any, o.Claims)
		for i, c := range out.ClaimIDs {
			txID := uuid.New()
			source := o.Instrument + ":" + c.String()
			txRows[i] = []any{txID, o.Program, "entitlement", "entitlement:" + source, "seed"}
			lineRows = append(lineRows, []any{txID, budget, -out.Amounts[i]}, []any{txID, payable[c], out.Amounts[i]})
			entRows[i] = []any{uuid.New(), c, o.Program, o.Instrument, out.Amounts[i], source, txID}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger_transactions"}, []string{"id", "program_code", "kind", "idempotency_key", "memo"},
			pgx.CopyFromRows(txRows)); err != nil {
			return fmt.Errorf("ledger transactions: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger_lines"}, []string{"tx_id", "account_id", "amount"}, pgx.CopyFromRows(lineRows)); err != nil {
			return fmt.Errorf("ledger lines: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"entitlements"}, []string{"id", "claim_id", "program_code", "instrument", "amount", "source_key", "tx_id"},
			pgx.CopyFromRows(entRows)); err != nil {
			return fmt.Errorf("entitlements: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FinanceUsers returns two finance users of the program's agency: one to
// create batches, one to approve them.
func FinanceUsers(ctx context.Context, s *models.Store, prefix, agency, password string) (creator, approver *models.User, err error) {
	mk := func(n string) (*models.User, error) {
		return s.CreateUser(ctx, models.NewUser{Email: prefix + "-" + n + "@finance.relief", Name: "재무" + n, Password: password,
			Roles: []string{models.RoleFinance}, Agency: agency})
	}
	if creator, err = mk("a"); err != nil {
		return nil, nil, err
	}
	approver, err = mk("b")
	return creator, approver, err
}

// CreateBatch creates a batch of everything the program owes, as u.
func CreateBatch(ctx context.Context, s *models.Store, u *models.User, in models.PayoutBatchInput) (*models.PayoutBatchCreated, error) {
	var created *models.PayoutBatchCreated
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		created, err = s.CreatePayoutBatch(ctx, tx, u, in)
		return err
	})
	return created, err
}
