package models

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The reviewer queue: SQL only (never Temporal visibility), scoped to the
// reviewer's agency, filtered, sorted and keyset-paginated on indexes
// (00003_review.sql), with counts per status.

// Queue sorts.
const (
	SortOldest     = "oldest"
	SortNewest     = "newest"
	SortAmountDesc = "amount_desc"
	SortAmountAsc  = "amount_asc"
)

// QueueSorts in display order.
var QueueSorts = []string{SortOldest, SortNewest, SortAmountDesc, SortAmountAsc}

// QueueFilter selects a page of the queue.
type QueueFilter struct {
	Program   string
	Status    string
	Flag      string
	Region    string
	Category  string
	MinAmount *int64 // claimed loss, won
	MaxAmount *int64
	Sort      string
	Limit     int
	Cursor    string
}

// QueueItem is one claim in the queue: no personal data (no BRN, names,
// phone or account), so listing is not an audited view.
type QueueItem struct {
	ID                   uuid.UUID  `json:"id"`
	ReceiptNo            string     `json:"receipt_no"`
	Status               string     `json:"status"`
	BusinessName         string     `json:"business_name"`
	Region               string     `json:"region"`
	Category             string     `json:"category"`
	AcceptOffer          bool       `json:"accept_offer"`
	ClaimedLoss          int64      `json:"claimed_loss"`
	EstimatedLoss        *int64     `json:"estimated_loss"`
	ApprovedCompensation int64      `json:"approved_compensation"`
	RiskFlags            []RiskFlag `json:"risk_flags"`
	CreatedAt            time.Time  `json:"created_at"`
}

// QueuePage is a page of the queue with the program's counts per status.
type QueuePage struct {
	Program    string           `json:"program"`
	Items      []QueueItem      `json:"items"`
	NextCursor string           `json:"next_cursor"`
	Counts     map[string]int64 `json:"counts"`
}

// CanReview reports whether v works a review queue (reviewers, approvers, and
// read-only auditors and program administrators of the agency).
func CanReview(v *Viewer) bool {
	return v != nil && v.IsStaff() && (v.HasRole(RoleReviewer) || v.HasRole(RoleApprover) || v.HasRole(RoleAuditor) || v.HasRole(RoleProgramAdmin))
}

// AgencyPrograms lists the programs of v's agency, newest outage first.
func (s *Store) AgencyPrograms(ctx context.Context, v *Viewer) ([]*Program, error) {
	all, err := s.ListPrograms(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Program
	for _, p := range all {
		if p.Agency == v.Agency {
			out = append(out, p)
		}
	}
	return out, nil
}

func queueCursor(sort string, key string, id uuid.UUID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(sort + "|" + key + "|" + id.String()))
}

func parseQueueCursor(sort, s string) (any, uuid.UUID, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, uuid.Nil, err
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 3 || parts[0] != sort {
		return nil, uuid.Nil, errors.New("cursor of another sort")
	}
	id, err := uuid.Parse(parts[2])
	if err != nil {
		return nil, uuid.Nil, err
	}
	switch sort {
	case SortOldest, SortNewest:
		t, err := time.Parse(time.RFC3339Nano, parts[1])
		return t, id, err
	default:
		n, err := strconv.ParseInt(parts[1], 10, 64)
		return n, id, err
	}
}

// ReviewQueue returns a page of the queue of one of v's agency's programs.
func (s *Store) ReviewQueue(ctx context.Context, v *Viewer, f QueueFilter) (*QueuePage, error) {
	if !CanReview(v) {
		return nil, Coded(EFORBIDDEN, "forbidden", "only agency staff see the review queue")
	}
	p, err := s.ProgramByCode(ctx, f.Program)
	if err != nil {
		return nil, err
	}
	if p.Agency != v.Agency {
		return nil, Coded(ENOTFOUND, "program_not_found", "no such program")
	}
	fields := map[string]string{}
	args := []any{p.Code}
	where := []string{"c.program_code = $1"}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.Status != "" {
		if !contains(ClaimStatuses, f.Status) {
			fields["status"] = "unknown_status"
		}
		add("c.status = ?", f.Status)
	}
	if f.Flag != "" {
		if !contains(RiskFlagCodes, f.Flag) {
			fields["flag"] = "unknown_flag"
		}
		b, _ := json.Marshal([]map[string]string{{"code": f.Flag}})
		add("c.risk_flags @> ?::jsonb", string(b))
	}
	if f.Region != "" {
		if !contains(Regions, f.Region) {
			fields["region"] = "unknown_region"
		}
		add("c.region = ?", f.Region)
	}
	if f.Category != "" {
		if !contains(Categories, f.Category) {
			fields["category"] = "unknown_category"
		}
		add("c.category = ?", f.Category)
	}
	if f.MinAmount != nil {
		add("c.claimed_loss >= ?", *f.MinAmount)
	}
	if f.MaxAmount != nil {
		add("c.claimed_loss <= ?", *f.MaxAmount)
	}
	if f.MinAmount != nil && f.MaxAmount != nil && *f.MinAmount > *f.MaxAmount {
		fields["max_amount"] = "below_min_amount"
	}
	if f.Sort == "" {
		f.Sort = SortOldest
	}
	var order, keyCol, cmp string
	switch f.Sort {
	case SortOldest:
		order, keyCol, cmp = "c.created_at, c.id", "c.created_at", ">"
	case SortNewest:
		order, keyCol, cmp = "c.created_at DESC, c.id DESC", "c.created_at", "<"
	case SortAmountDesc:
		order, keyCol, cmp = "c.claimed_loss DESC, c.id DESC", "c.claimed_loss", "<"
	case SortAmountAsc:
		order, keyCol, cmp = "c.claimed_loss, c.id", "c.claimed_loss", ">"
	default:
		fields["sort"] = "unknown_sort"
	}
	if len(fields) > 0 {
		return nil, &Error{Kind: EINVALID, Code: "validation_failed", Message: "some filters are invalid", Fields: fields}
	}
	if f.Cursor != "" {
		key, id, err := parseQueueCursor(f.Sort, f.Cursor)
		if err != nil {
			return nil, FieldError("invalid_cursor", "cursor", "invalid_cursor", "invalid cursor")
		}
		args = append(args, key, id)
		n := len(args)
		where = append(where, "("+keyCol+", c.id) "+cmp+" ($"+strconv.Itoa(n-1)+", $"+strconv.Itoa(n)+")")
	}
	limit := clampLimit(f.Limit)
	args = append(args, limit+1)
	orderAndLimit := ` ORDER BY ` + order + ` LIMIT $` + strconv.Itoa(len(args))
	const columns = `c.id, c.receipt_no, c.status, c.business_name, c.region, c.category, c.accept_offer,
			c.claimed_loss, c.estimated_loss, c.approved_compensation, c.risk_flags, c.created_at`
	query := `SELECT ` + columns + ` FROM claims c WHERE ` + strings.Join(where, " AND ") + orderAndLimit
	if f.Status == "" && (f.Sort == SortAmountDesc || f.Sort == SortAmountAsc) {
		// Every status by amount: no index is led by (program, amount) (intake
		// would pay for it on every claim, 00015), so take the page from each
		// status's (program, status, amount) index and merge: a dozen short
		// index scans instead of sorting the whole program.
		args = append(args, ClaimStatuses)
		query = `SELECT ` + columns + ` FROM unnest($` + strconv.Itoa(len(args)) + `::text[]) AS st(status)
			CROSS JOIN LATERAL (SELECT ` + columns + ` FROM claims c WHERE ` + strings.Join(where, " AND ") + ` AND c.status = st.status` + orderAndLimit + `) c` + orderAndLimit
	}
	rows, err := s.Pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (QueueItem, error) {
		var it QueueItem
		var flags []byte
		if err := r.Scan(&it.ID, &it.ReceiptNo, &it.Status, &it.BusinessName, &it.Region, &it.Category, &it.AcceptOffer,
			&it.ClaimedLoss, &it.EstimatedLoss, &it.ApprovedCompensation, &flags, &it.CreatedAt); err != nil {
			return it, err
		}
		it.RiskFlags = []RiskFlag{}
		return it, json.Unmarshal(flags, &it.RiskFlags)
	})
	if err != nil {
		return nil, err
	}
	page := &QueuePage{Program: p.Code, Items: items}
	if page.Items == nil {
		page.Items = []QueueItem{}
	}
	if len(items) > limit {
		page.Items = items[:limit]
		last := page.Items[limit-1]
		key := last.CreatedAt.UTC().Format(time.RFC3339Nano)
		if f.Sort == SortAmountAsc || f.Sort == SortAmountDesc {
			key = strconv.FormatInt(last.ClaimedLoss, 10)
		}
		page.NextCursor = queueCursor(f.Sort, key, last.ID)
	}
	page.Counts, err = s.StatusCounts(ctx, p.Code)
	return page, err
}

// StatusCounts counts a program's claims per status (every status present, 0
// when none), from the trigger-kept claim_status_counts.
func (s *Store) StatusCounts(ctx context.Context, program string) (map[string]int64, error) {
	counts := make(map[string]int64, len(ClaimStatuses))
	for _, st := range ClaimStatuses {
		counts[st] = 0
	}
	rows, err := s.Pool.Query(ctx, `SELECT status, sum(n)::bigint FROM claim_status_counts WHERE program_code = $1 GROUP BY status`, program)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		counts[st] = n
	}
	return counts, rows.Err()
}
