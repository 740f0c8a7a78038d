package models

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/models/rules"
)

// DecisionView is one decision as reviewers see it.
type DecisionView struct {
	At          time.Time `json:"at"`
	Action      string    `json:"action"`
	By          string    `json:"by"` // the decider's name
	ByID        uuid.UUID `json:"by_id"`
	Amount      *int64    `json:"amount,omitempty"`
	ReasonCode  string    `json:"reason_code,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	StatusAfter string    `json:"status_after"`
}

// InfoRequestView is an info request and its answer.
type InfoRequestView struct {
	At         time.Time  `json:"at"`
	Note       string     `json:"note"`
	DueAt      time.Time  `json:"due_at"`
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
	Answer     string     `json:"answer,omitempty"`
	ExpiredAt  *time.Time `json:"expired_at,omitempty"`
}

// Open reports whether the request still waits for the merchant.
func (r InfoRequestView) Open() bool { return r.AnsweredAt == nil && r.ExpiredAt == nil }

// AppealView is a claim's appeal.
type AppealView struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// Document is an uploaded evidence file (without its bytes).
type Document struct {
	ID          uuid.UUID `json:"id"`
	Filename    string    `json:"filename"`
	ContentType string    `json:"content_type"`
	SizeBytes   int64     `json:"size_bytes"`
	SHA256      string    `json:"sha256"`
	CreatedAt   time.Time `json:"created_at"`
}

// ReviewFile is everything a reviewer sees about a claim.
type ReviewFile struct {
	Claim        *Claim            `json:"claim"`
	Program      *Program          `json:"-"`
	Offer        *Offer            `json:"offer,omitempty"`
	Sales        []SalesPoint      `json:"sales"`
	Decisions    []DecisionView    `json:"decisions"`
	InfoRequests []InfoRequestView `json:"info_requests"`
	Appeal       *AppealView       `json:"appeal,omitempty"`
	Documents    []Document        `json:"documents"`
	// FirstApprover is who approved first while a second approval is pending.
	FirstApprover *uuid.UUID `json:"-"`
	Rejecter      *uuid.UUID `json:"-"`
}

// ClaimExtras loads what the claim page of any viewer shows beyond the claim:
// decisions, info requests, the appeal and documents. The caller has checked
// that v may see the claim.
func (s *Store) ClaimExtras(ctx context.Context, c *Claim) (*ReviewFile, error) {
	rf := &ReviewFile{Claim: c, Decisions: []DecisionView{}, InfoRequests: []InfoRequestView{}, Documents: []Document{}}
	rows, err := s.Pool.Query(ctx, `SELECT d.at, d.action, u.name, d.decided_by, d.amount, d.reason_code, d.reason, d.status_after
		FROM review_decisions d JOIN users u ON u.id = d.decided_by WHERE d.claim_id = $1 ORDER BY d.id`, c.ID)
	if err != nil {
		return nil, err
	}
	rf.Decisions, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (DecisionView, error) {
		var d DecisionView
		err := r.Scan(&d.At, &d.Action, &d.By, &d.ByID, &d.Amount, &d.ReasonCode, &d.Reason, &d.StatusAfter)
		return d, err
	})
	if err != nil {
		return nil, err
	}
	for i := range rf.Decisions {
		d := &rf.Decisions[i]
		switch d.Action {
		case ActionApprove:
			if d.StatusAfter == StatusPendingSecondApproval {
				rf.FirstApprover = &d.ByID
			}
		case ActionReject:
			rf.Rejecter = &d.ByID
		}
	}
	rows, err = s.Pool.Query(ctx, `SELECT created_at, note, due_at, answered_at, answer, expired_at FROM review_info_requests WHERE claim_id = $1 ORDER BY id`, c.ID)
	if err != nil {
		return nil, err
	}
	rf.InfoRequests, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (InfoRequestView, error) {
		var v InfoRequestView
		err := r.Scan(&v.At, &v.Note, &v.DueAt, &v.AnsweredAt, &v.Answer, &v.ExpiredAt)
		return v, err
	})
	if err != nil {
		return nil, err
	}
	var a AppealView
	err = s.Pool.QueryRow(ctx, `SELECT filed_at, reason FROM review_appeals WHERE claim_id = $1`, c.ID).Scan(&a.At, &a.Reason)
	switch {
	case err == nil:
		rf.Appeal = &a
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, err
	}
	rf.Documents, err = s.Documents(ctx, c.ID)
	return rf, err
}

// ReviewFileFor loads a claim for agency staff with the estimate, the seller's
// daily sales around the outage, decisions, info requests, the appeal and
// documents, and audit-logs the view (it shows personal data).
func (s *Store) ReviewFileFor(ctx context.Context, v *Viewer, id uuid.UUID, ip string) (*ReviewFile, error) {
	if !CanReview(v) {
		return nil, ErrNotFound
	}
	c, err := s.ClaimForViewer(ctx, v, id)
	if err != nil {
		return nil, err
	}
	rf, err := s.ClaimExtras(ctx, c)
	if err != nil {
		return nil, err
	}
	if rf.Program, err = s.ProgramByCode(ctx, c.Program); err != nil {
		return nil, err
	}
	if brn, err := rules.ParseBRN(c.BRN); err == nil {
		offer, err := ComputeOffer(ctx, s.Pool, rf.Program, brn, "en")
		switch {
		case err == nil:
			rf.Offer = offer
		case !errors.Is(err, ErrNotASeller):
			return nil, err
		}
	}
	if rf.Sales, err = SalesSeries(ctx, s.Pool, rf.Program, c.BRN); err != nil {
		return nil, err
	}
	err = s.Audit(ctx, nil, AuditEntry{ActorID: &v.ID, Actor: v.Email, Action: "claim.view_personal_data",
		Subject: "claim:" + id.String(), IP: ip, Details: map[string]any{"fields": []string{"brn", "representative", "phone", "account_holder"}}})
	return rf, err
}

// Document limits.
const MaxDocumentBytes = 10 << 20

// SniffDocument names the content type of an evidence file from its first
// bytes: PDF, PNG or JPEG only.
func SniffDocument(head []byte) (string, bool) {
	switch {
	case bytes.HasPrefix(head, []byte("%PDF-")):
		return "application/pdf", true
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return "image/png", true
	case bytes.HasPrefix(head, []byte("\xff\xd8\xff")):
		return "image/jpeg", true
	}
	return "", false
}

// AddDocument stores an evidence file for a claim the uploader may see (its
// merchant, or agency reviewers and approvers). The same bytes twice are one
// document (idempotent): it answers the existing id.
func (s *Store) AddDocument(ctx context.Context, v *Viewer, claimID uuid.UUID, filename string, data []byte) (*Document, bool, error) {
	c, err := s.ClaimForViewer(ctx, v, claimID)
	if err != nil {
		return nil, false, err
	}
	if v.IsStaff() && !(v.HasRole(RoleReviewer) || v.HasRole(RoleApprover)) {
		return nil, false, Coded(EFORBIDDEN, "forbidden", "only the merchant and reviewers add documents")
	}
	if len(data) == 0 {
		return nil, false, FieldError("validation_failed", "file", "required", "the file is empty")
	}
	if len(data) > MaxDocumentBytes {
		return nil, false, Coded(ETOOLARGE, "too_large", "documents are at most 10 MiB")
	}
	ct, ok := SniffDocument(data)
	if !ok {
		return nil, false, FieldError("unsupported_file_type", "file", "unsupported_file_type", "documents must be PDF, PNG or JPEG")
	}
	name := cleanFilename(filename)
	sum := sha256.Sum256(data)
	d := &Document{ID: uuid.New(), Filename: name, ContentType: ct, SizeBytes: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), CreatedAt: s.Now()}
	created := false
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO claim_documents (id, claim_id, uploaded_by, filename, content_type, size_bytes, sha256, data, created_at)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (claim_id, sha256) DO NOTHING`, d.ID, claimID, v.ID, name, ct, d.SizeBytes, sum[:], data, d.CreatedAt)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return tx.QueryRow(ctx, `SELECT id, filename, created_at FROM claim_documents WHERE claim_id = $1 AND sha256 = $2`, claimID, sum[:]).
				Scan(&d.ID, &d.Filename, &d.CreatedAt)
		}
		created = true
		role := RoleMerchant
		if v.IsStaff() {
			role = RoleReviewer
		}
		_, err = addEvent(ctx, tx, claimID, "document:"+d.ID.String(), d.CreatedAt, c.Status, role, &v.ID, "review.note.document_added")
		return err
	})
	return d, created, err
}

func cleanFilename(name string) string {
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' || r == '/' {
			return '_'
		}
		return r
	}, name)
	for utf8.RuneCountInString(name) > 120 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	if name == "" || name == "." {
		name = "document"
	}
	return name
}

// Documents lists a claim's documents, oldest first.
func (s *Store) Documents(ctx context.Context, claimID uuid.UUID) ([]Document, error) {
	rows, err := s.Pool.Query(ctx, `SELECT id, filename, content_type, size_bytes, sha256, created_at FROM claim_documents WHERE claim_id = $1 ORDER BY created_at, id`, claimID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Document, error) {
		var d Document
		var sum []byte
		err := r.Scan(&d.ID, &d.Filename, &d.ContentType, &d.SizeBytes, &sum, &d.CreatedAt)
		d.SHA256 = hex.EncodeToString(sum)
		return d, err
	})
}

// DocumentFor returns a document and its bytes to a viewer who may see the
// claim; a staff download is audit-logged.
func (s *Store) DocumentFor(ctx context.Context, v *Viewer, claimID, docID uuid.UUID, ip string) (*Document, []byte, error) {
	if _, err := s.ClaimForViewer(ctx, v, claimID); err != nil {
		return nil, nil, err
	}
	d := &Document{}
	var sum, data []byte
	err := s.Pool.QueryRow(ctx, `SELECT id, filename, content_type, size_bytes, sha256, created_at, data FROM claim_documents WHERE claim_id = $1 AND id = $2`,
		claimID, docID).Scan(&d.ID, &d.Filename, &d.ContentType, &d.SizeBytes, &sum, &d.CreatedAt, &data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	d.SHA256 = hex.EncodeToString(sum)
	if v.IsStaff() {
		if err := s.Audit(ctx, nil, AuditEntry{ActorID: &v.ID, Actor: v.Email, Action: "claim.document.download",
			Subject: "claim:" + claimID.String(), IP: ip, Details: map[string]any{"document": docID.String()}}); err != nil {
			return nil, nil, err
		}
	}
	return d, data, nil
}
