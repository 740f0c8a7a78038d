package models

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/exports"
)

// PayoutImport is the answer to a bank result-file import.
type PayoutImport struct {
	BatchID   uuid.UUID `json:"batch_id"`
	Rows      int       `json:"rows"`
	Settled   int       `json:"settled"`   // lines newly paid
	Failed    int       `json:"failed"`    // lines newly failed (owed again)
	Unchanged int       `json:"unchanged"` // lines that already had the file's outcome
	Total     int64     `json:"total"`
	SHA256    string    `json:"sha256"`
}

// ResultFileMeta describes an uploaded result file for the audit log.
type ResultFileMeta struct {
	Filename string
	Bank     string // the bank whose result file it is, if given
	SHA256   string
	Bytes    int64
	IP       string
}

// IsSuccessCode reports whether a bank result code means "transferred":
// "0000" by the usual Korean bank convention (also written 00 or 0).
func IsSuccessCode(code string) bool {
	switch code {
	case "0000", "00", "0", "000":
		return true
	}
	return false
}

// CheckBulkBank is 422 unsupported_bank (field bank) unless code names a
// bank with a bulk-transfer template.
func CheckBulkBank(code string) error {
	if slices.Contains(exports.SupportedBanks(), code) {
		return nil
	}
	e := FieldError("unsupported_bank", "bank", "unsupported_bank", "no bulk-transfer template for this bank")
	e.Data = map[string]any{"supported": exports.SupportedBanks()}
	return e
}

// ErrPayoutNotApproved: bank files and results exist only for approved batches.
var ErrPayoutNotApproved = Coded(ECONFLICT, "batch_not_approved", "this payout batch is not approved")

type resultLine struct {
	id, claimID uuid.UUID
	amount      int64
	status      string
	ciphertext  []byte
	keyID       string
}

// ImportPayoutResults reconciles a bank result file with an approved batch,
// line by line by transfer key. Every row must name a line of the batch with
// the amount and account sent, and the file must account for the whole
// approved instruction (count and total); a result may not contradict an
// outcome already recorded. If anything is wrong nothing changes and the
// problems come back by row and column; otherwise, in one transaction, lines
// the file reports as transferred are settled (ledger included), the others
// failed and their entitlements owed again. Outcomes already recorded are
// left alone, so importing the same file twice changes nothing.
func (s *Store) ImportPayoutResults(ctx context.Context, v *User, batchID uuid.UUID, rows []exports.TransferResult, meta ResultFileMeta) (*PayoutImport, error) {
	if err := RequireFinance(v); err != nil {
		return nil, err
	}
	b, err := s.PayoutBatchForViewer(ctx, v, batchID, false)
	if err != nil {
		return nil, err
	}
	if meta.Bank != "" {
		if err := CheckBulkBank(meta.Bank); err != nil {
			return nil, err
		}
	}
	if b.ApprovedBy == nil {
		return nil, ErrPayoutNotApproved
	}
	out := &PayoutImport{BatchID: batchID, Rows: len(rows), SHA256: meta.SHA256}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		// Lock the batch: two imports of the same batch run one after the other.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM payout_batches WHERE id = $1 FOR UPDATE`, batchID); err != nil {
			return err
		}
		lines := map[string]*resultLine{}
		q, err := tx.Query(ctx, `SELECT l.transfer_key, l.id, l.claim_id, l.amount, l.status, c.account_ciphertext, c.account_key_id
			FROM payout_lines l JOIN claims c ON c.id = l.claim_id WHERE l.batch_id = $1 AND l.approved`, batchID)
		if err != nil {
			return err
		}
		for q.Next() {
			var key string
			l := &resultLine{}
			if err := q.Scan(&key, &l.id, &l.claimID, &l.amount, &l.status, &l.ciphertext, &l.keyID); err != nil {
				q.Close()
				return err
			}
			lines[key] = l
		}
		q.Close()
		if err := q.Err(); err != nil {
			return err
		}

		var problems []exports.RowError
		var conflicts []exports.RowError
		add := func(list *[]exports.RowError, row int, column, msg string) {
			if len(*list) < exports.MaxReportedErrors {
				*list = append(*list, exports.RowError{Row: row, Column: column, Message: msg})
			}
		}
		var total int64
		for _, r := range rows {
			total += r.Amount
			l, ok := lines[r.Key]
			if !ok {
				add(&problems, r.Row, "이체키", "이 지급 배치에 없는 이체키입니다")
				continue
			}
			if r.Amount != l.amount {
				add(&problems, r.Row, "금액", fmt.Sprintf("금액이 지시한 금액(%d원)과 다릅니다", l.amount))
			}
			account, err := s.Vault.Open(l.ciphertext, l.keyID, []byte(l.claimID.String()))
			if err != nil {
				return fmt.Errorf("payout line %s: account: %w", l.id, err)
			}
			if string(account) != r.Account {
				add(&problems, r.Row, "계좌번호", "계좌번호가 지시한 계좌와 다릅니다")
			}
			success := IsSuccessCode(r.Code)
			if (success && l.status == LineFailed) || (!success && l.status == LinePaid) {
				add(&conflicts, r.Row, "결과코드", "이미 기록된 처리 결과("+l.status+")와 다릅니다")
			}
		}
		if len(problems) > 0 {
			return &Error{Kind: EINVALID, Code: "invalid_result_file", Message: "the result file does not match this batch",
				Fields: map[string]string{"file": "invalid_rows"}, Data: map[string]any{"errors": problems}}
		}
		if len(rows) != *b.ApprovedCount || total != *b.ApprovedTotal {
			return &Error{Kind: EINVALID, Code: "total_mismatch", Message: "the result file's count or total differs from the approved batch",
				Fields: map[string]string{"file": "total_mismatch"},
				Data: map[string]any{"expected_count": *b.ApprovedCount, "expected_total": *b.ApprovedTotal,
					"file_count": len(rows), "file_total": total}}
		}
		if len(conflicts) > 0 {
			return &Error{Kind: ECONFLICT, Code: "result_conflict", Message: "the result file contradicts outcomes already recorded",
				Data: map[string]any{"errors": conflicts}}
		}
		var payments []payoutPayment
		for _, r := range rows {
			l := lines[r.Key]
			var o *PayoutOutcome
			if IsSuccessCode(r.Code) {
				var p *payoutPayment
				if o, p, err = s.settleLineTx(ctx, tx, l.id, "", "result_file"); p != nil {
					payments = append(payments, *p)
				}
			} else {
				reason := r.Message
				if reason == "" {
					reason = "은행 처리 결과 " + r.Code
				}
				o, err = s.failLineTx(ctx, tx, l.id, r.Code, reason, "result_file")
			}
			if err != nil {
				return err
			}
			switch {
			case !o.Changed:
				out.Unchanged++
			case o.Status == LinePaid:
				out.Settled++
			default:
				out.Failed++
			}
		}
		if err := s.postPayoutPayments(ctx, tx, payments); err != nil {
			return err
		}
		out.Total = total
		return s.Audit(ctx, tx, AuditEntry{ActorID: &v.ID, Actor: v.Email, Action: "payout.results_imported", Subject: "payout_batch:" + batchID.String(),
			IP: meta.IP, Details: map[string]any{"sha256": meta.SHA256, "bytes": meta.Bytes, "bank": meta.Bank, "rows": len(rows),
				"settled": out.Settled, "failed": out.Failed, "unchanged": out.Unchanged}})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AuditPayoutRejection logs a refused bank file download or result import
// (bad bank, bad rows, wrong total) with the reason and the file's hash.
func (s *Store) AuditPayoutRejection(ctx context.Context, v *User, batchID uuid.UUID, action string, meta ResultFileMeta, reason *Error) error {
	e := AuditEntry{Action: action, Subject: "payout_batch:" + batchID.String(), IP: meta.IP,
		Details: map[string]any{"code": reason.Code, "sha256": meta.SHA256, "bytes": meta.Bytes, "bank": meta.Bank}}
	if v != nil {
		e.ActorID, e.Actor = &v.ID, v.Email
	} else {
		e.Actor = "anonymous"
	}
	return s.Audit(ctx, nil, e)
}
