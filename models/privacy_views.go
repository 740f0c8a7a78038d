package models

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ActionViewPersonalData is the audit action of every staff view of a
// merchant's personal data; its subject is "claim:<claim id>". Handlers that
// show personal data to staff call AuditPersonalDataView (or log the same
// action and subject themselves); the auditor reviews them with
// ListPersonalDataViews.
const ActionViewPersonalData = "view_personal_data"

// PersonalDataActions are the audit actions the auditor's page lists: the
// agreed name, the name the review screens log, and evidence downloads.
var PersonalDataActions = []string{ActionViewPersonalData, "claim.view_personal_data", "claim.document.download"}

// PersonalDataSubject is the audit subject of a claim's personal data.
func PersonalDataSubject(claimID uuid.UUID) string { return "claim:" + claimID.String() }

// AuditPersonalDataView records that viewer saw the personal data of a claim
// (fields names what was shown, e.g. "brn", "phone", "account"). Merchants
// looking at their own claims are not logged: it is their data.
func (s *Store) AuditPersonalDataView(ctx context.Context, viewer *User, claimID uuid.UUID, ip string, fields ...string) error {
	if viewer == nil || !viewer.IsStaff() {
		return nil
	}
	details := map[string]any{"roles": viewer.Roles}
	if len(fields) > 0 {
		details["fields"] = fields
	}
	return s.Audit(ctx, nil, AuditEntry{ActorID: &viewer.ID, Actor: viewer.Email, Action: ActionViewPersonalData,
		Subject: PersonalDataSubject(claimID), IP: ip, Details: details})
}

// PersonalDataView is one audited view, as the auditor sees it: who, when,
// from where, and which claim (by receipt number, not by personal data).
type PersonalDataView struct {
	At        time.Time `json:"at"`
	Action    string    `json:"action"`
	Actor     string    `json:"actor"`
	Roles     []string  `json:"roles"`
	Fields    []string  `json:"fields"`
	IP        string    `json:"ip"`
	ClaimID   uuid.UUID `json:"claim_id"`
	ReceiptNo string    `json:"receipt_no"`
	Program   string    `json:"program"`
	Hash      []byte    `json:"hash"`
}

// ViewFilter selects personal-data views.
type ViewFilter struct {
	Claim  string // a claim id or receipt number
	Actor  string // the viewer's email
	Limit  int
	Cursor string
}

// ListPersonalDataViews returns, newest first, the views of personal data of
// claims in the auditor's agency's programs. Only auditors may ask (403).
func (s *Store) ListPersonalDataViews(ctx context.Context, auditor *User, f ViewFilter) ([]PersonalDataView, string, error) {
	if auditor == nil || !auditor.HasRole(RoleAuditor) || !auditor.IsStaff() {
		return nil, "", Coded(EFORBIDDEN, "forbidden", "only auditors review personal-data views")
	}
	args := []any{PersonalDataActions, auditor.Agency}
	where := []string{"a.action = ANY($1)", "p.agency_code = $2"}
	if f.Claim = strings.TrimSpace(f.Claim); f.Claim != "" {
		if id, err := uuid.Parse(f.Claim); err == nil {
			args = append(args, id)
			where = append(where, "c.id = $"+strconv.Itoa(len(args)))
		} else {
			args = append(args, f.Claim)
			where = append(where, "c.receipt_no = $"+strconv.Itoa(len(args)))
		}
	}
	if f.Actor = strings.TrimSpace(f.Actor); f.Actor != "" {
		args = append(args, strings.ToLower(f.Actor))
		where = append(where, "lower(a.actor) = $"+strconv.Itoa(len(args)))
	}
	if f.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(f.Cursor)
		id, perr := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || perr != nil || id <= 0 {
			return nil, "", FieldError("validation_failed", "cursor", "invalid_cursor", "invalid cursor")
		}
		args = append(args, id)
		where = append(where, "a.id < $"+strconv.Itoa(len(args)))
	}
	limit := clampLimit(f.Limit)
	args = append(args, limit+1)
	rows, err := s.Pool.Query(ctx, `SELECT a.id, a.at, a.action, a.actor, a.ip, a.details, a.hash, c.id, c.receipt_no, c.program_code,
			coalesce(u.roles, '{}')
		FROM audit_log a
		LEFT JOIN users u ON u.id = a.actor_id
		JOIN claims c ON c.id = (CASE WHEN a.subject ~ '^claim:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
		                              THEN substr(a.subject, 7)::uuid END)
		JOIN programs p ON p.code = c.program_code
		WHERE `+strings.Join(where, " AND ")+` ORDER BY a.id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []PersonalDataView
	var lastID int64
	for rows.Next() {
		var v PersonalDataView
		var details []byte
		var currentRoles []string
		if err := rows.Scan(&lastID, &v.At, &v.Action, &v.Actor, &v.IP, &details, &v.Hash, &v.ClaimID, &v.ReceiptNo, &v.Program, &currentRoles); err != nil {
			return nil, "", err
		}
		var d struct {
			Roles    []string `json:"roles"`
			Fields   []string `json:"fields"`
			Document string   `json:"document"`
		}
		_ = json.Unmarshal(details, &d) // entries written by other code may carry other details
		v.Roles, v.Fields = d.Roles, d.Fields
		if v.Roles == nil {
			v.Roles = currentRoles // entries that did not record the roles at the time
		}
		if d.Document != "" && len(v.Fields) == 0 {
			v.Fields = []string{"document"}
		}
		if v.Roles == nil {
			v.Roles = []string{}
		}
		if v.Fields == nil {
			v.Fields = []string{}
		}
		out = append(out, v)
		if len(out) == limit {
			break
		}
	}
	next := ""
	if rows.Next() {
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(lastID, 10)))
	}
	return out, next, rows.Err()
}
