package handlers_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"html"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/relief/relief/models"
)

func TestDashboardMatchesTheDatabase(t *testing.T) {
	e := newExpEnv(t)
	evil := seedProgram(t, e, 700)
	// Two claims waiting in review, one of them for ten days: an SLA breach.
	late, fresh := e.fileClaim(21, "늦은상회", "울산", "crafts", 500_000), e.fileClaim(22, "새상회", "울산", "crafts", 500_000)
	for _, id := range []uuid.UUID{late, fresh} {
		if err := e.store.SetClaimStatus(context.Background(), id, "review", models.StatusInReview, "system", ""); err != nil {
			t.Fatal(err)
		}
	}
	e.exec(`UPDATE claim_events SET at = now() - interval '10 days' WHERE claim_id = $1 AND status = 'in_review'`, late)
	// A decision 30 hours after filing, for the processing-time percentiles.
	e.exec(`INSERT INTO claim_events (claim_id, event_key, at, status, actor_role) SELECT id, 'decided', created_at + interval '30 hours', 'approved', 'reviewer' FROM claims WHERE id = $1`, evil)

	c := e.login("auditor@kpost.test")
	r := c.do("GET", "/api/v1/programs/"+models.DemoProgram+"/dashboard", nil).must(t, http.StatusOK)
	var d models.Dashboard
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatal(err)
	}
	var want models.DashboardBreakdown
	e.scan(`SELECT count(*), sum(claimed_loss), sum(owed_total), sum(paid_total) FROM claims WHERE program_code = $1`,
		[]any{models.DemoProgram}, &want.Claims, &want.Claimed, &want.Owed, &want.Paid)
	want.Key = "total"
	if d.Totals != want {
		t.Errorf("totals %+v, SQL %+v", d.Totals, want)
	}
	var daily int64
	for _, n := range d.Daily.Totals {
		daily += n
	}
	if daily != want.Claims || len(d.Daily.Counts) != len(d.Daily.Statuses) {
		t.Errorf("daily chart counts %d claims, SQL %d", daily, want.Claims)
	}
	regions := sqlTable(t, e, `SELECT region, count(*), sum(owed_total) FROM claims WHERE program_code = $1 GROUP BY 1`, func(s string) string { return s })
	if len(d.Regions) != len(regions) {
		t.Errorf("%d regions, SQL %d", len(d.Regions), len(regions))
	}
	for _, b := range d.Regions {
		if w := regions[b.Key]; w != [2]int64{b.Claims, b.Owed} {
			t.Errorf("region %s: %d/%d, SQL %v", b.Key, b.Claims, b.Owed, w)
		}
	}
	var inReview, breaches int64
	for _, b := range d.Backlog {
		if b.Status == models.StatusInReview {
			inReview, breaches = b.Claims, b.OverSLA
			if b.OldestDays < 9.9 {
				t.Errorf("oldest wait %.1f days", b.OldestDays)
			}
		}
	}
	var sqlInReview int64
	e.scan(`SELECT count(*) FROM claims WHERE program_code = $1 AND status = 'in_review'`, []any{models.DemoProgram}, &sqlInReview)
	if inReview != sqlInReview || breaches < 1 || breaches >= inReview {
		t.Errorf("in review %d (SQL %d), over SLA %d", inReview, sqlInReview, breaches)
	}
	for _, in := range d.Instruments {
		switch in.Instrument {
		case models.InstrumentCompensation:
			if in.Owed != 1_500_000 || in.Budget != 1_000_000_000 || in.Remaining != 1_000_000_000-1_500_000 || in.Claims != 1 {
				t.Errorf("compensation %+v", in)
			}
		case models.InstrumentFeeWaiver:
			if in.Owed != 90_000 || in.Paid != 0 {
				t.Errorf("fee waiver %+v", in)
			}
		}
	}
	for _, p := range d.Processing {
		if p.Milestone == "decided" && (p.Claims != 1 || p.P50 != 30) {
			t.Errorf("decision time %+v", p)
		}
	}

	page := c.do("GET", "/programs/"+models.DemoProgram+"/dashboard", nil).must(t, http.StatusOK)
	body := string(page.body)
	if inlineScript.MatchString(body) {
		t.Errorf("inline script or style: %s", inlineScript.FindString(body))
	}
	if !strings.Contains(body, `src="/static/vendor/chart/chart.umd.min.js"`) || !strings.Contains(body, `src="/static/dashboard_charts.js"`) {
		t.Error("chart scripts not loaded")
	}
	charts := regexp.MustCompile(`data-chart="([^"]*)"`).FindAllStringSubmatch(body, -1)
	if len(charts) < 6 {
		t.Errorf("%d charts", len(charts))
	}
	for _, m := range charts {
		var spec struct {
			Labels   []string `json:"labels"`
			Datasets []struct {
				Data []any `json:"data"`
			} `json:"datasets"`
		}
		if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &spec); err != nil || len(spec.Datasets) == 0 {
			t.Errorf("chart spec %q: %v", m[1], err)
		}
		for _, ds := range spec.Datasets {
			if len(ds.Data) != len(spec.Labels) {
				t.Errorf("dataset of %d values for %d labels", len(ds.Data), len(spec.Labels))
			}
		}
	}
	// The table beside the chart carries the same numbers.
	if !strings.Contains(body, `data-key="울산"><th scope="row">울산</th><td data-value="`+strconv.FormatInt(regions["울산"][0], 10)+`"`) {
		t.Error("region table does not match")
	}
	for _, asset := range []string{"/static/dashboard_charts.js", "/static/vendor/chart/chart.umd.min.js", "/static/export_progress.js"} {
		if r := e.anonymous().do("GET", asset, nil); r.status != http.StatusOK || len(r.body) < 100 {
			t.Errorf("%s: %d", asset, r.status)
		}
	}
}

// personal is every piece of personal data the claims hold, account numbers decrypted.
func personal(t *testing.T, e *expEnv) []string {
	t.Helper()
	rows, err := e.store.Pool.Query(context.Background(), `SELECT id, brn, business_name, representative, phone, account_holder,
		account_ciphertext, account_key_id FROM claims`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var id uuid.UUID
		var v [5]string
		var ct []byte
		var keyID string
		if err := rows.Scan(&id, &v[0], &v[1], &v[2], &v[3], &v[4], &ct, &keyID); err != nil {
			t.Fatal(err)
		}
		for _, s := range v {
			seen[s] = true
		}
		if account, err := e.store.Vault.Open(ct, keyID, []byte(id.String())); err == nil {
			seen[string(account)] = true
		}
	}
	var out []string
	for s := range seen {
		out = append(out, s)
	}
	return out
}

func TestPublicOpenDataIsAggregateOnly(t *testing.T) {
	e := newExpEnv(t)
	seedProgram(t, e, 0)
	// 12 paid claims in 광주, 7 in 부산 and 3 in 강원 (to be withheld).
	for i := range 22 {
		region := "광주"
		switch {
		case i >= 19:
			region = "강원"
		case i >= 12:
			region = "부산"
		}
		e.fileClaim(100+i, "공개상회 "+strconv.Itoa(i), region, "living", 1_000_000)
	}
	e.exec(`UPDATE claims SET owed_total = 500000, paid_total = 500000 WHERE business_name LIKE '공개상회%'`)

	anon := e.anonymous()
	r := anon.do("GET", "/public/programs/"+models.DemoProgram+".json", nil).must(t, http.StatusOK)
	var st models.PublicStats
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatal(err)
	}
	for _, s := range personal(t, e) {
		if strings.Contains(string(r.body), s) {
			t.Errorf("public JSON contains personal data %q", s)
		}
	}
	for _, field := range []string{"brn", "business_name", "representative", "phone", "account", "holder", "email"} {
		if strings.Contains(string(r.body), `"`+field) {
			t.Errorf("public JSON has a %q field", field)
		}
	}
	if !strings.Contains(r.header.Get("Cache-Control"), "public") {
		t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
	}
	byKey := map[string]models.PublicCell{}
	for _, c := range st.ByRegion {
		byKey[c.Key] = c
	}
	if c := byKey["광주"]; c.Claims == nil || *c.Claims != 12 || c.PaidAmount == nil || *c.PaidAmount != 6_000_000 || c.Label != "광주" {
		t.Errorf("광주 %+v", c)
	}
	if c := byKey["강원"]; c.Claims != nil || c.PaidAmount != nil || !c.Suppressed {
		t.Errorf("강원 (3 claims) not withheld: %+v", c)
	}
	// 강원 is the only region with a small paid count: the total paid would give
	// it away, so the next smallest paid cell (부산) is withheld as well, while
	// 부산's claim count (not small, and not the only small one) stays.
	if c := byKey["부산"]; c.Claims == nil || *c.Claims != 7 || c.PaidAmount != nil || c.PaidClaims != nil {
		t.Errorf("부산 %+v", c)
	}
	// 대전 and 서울 have one claim each: withheld; with several cells hidden no
	// single one can be recovered from the total.
	hidden := 0
	for _, c := range st.ByRegion {
		if c.Claims == nil {
			hidden++
		}
		if c.Claims != nil && *c.Claims > 0 && *c.Claims < models.PublicMinCell {
			t.Errorf("small cell published: %+v", c)
		}
	}
	if hidden < 2 {
		t.Errorf("%d cells withheld", hidden)
	}
	var total int64
	e.scan(`SELECT count(*) FROM claims WHERE program_code = $1`, []any{models.DemoProgram}, &total)
	if st.Totals.Claims == nil || *st.Totals.Claims != total || st.SuppressionThreshold != models.PublicMinCell {
		t.Errorf("totals %+v, SQL %d", st.Totals, total)
	}

	csvResp := anon.do("GET", "/public/programs/"+models.DemoProgram+".csv", nil).must(t, http.StatusOK)
	if !strings.HasPrefix(csvResp.header.Get("Content-Type"), "text/csv") {
		t.Errorf("Content-Type %q", csvResp.header.Get("Content-Type"))
	}
	records, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(csvResp.body), "\uFEFF"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(records[0], ",") != "program,section,key,label,claims,paid_claims,paid_amount,suppressed" {
		t.Errorf("header %v", records[0])
	}
	for _, rec := range records[1:] {
		if rec[2] == "강원" && (rec[4] != "" || rec[7] != "1") {
			t.Errorf("CSV publishes a small cell: %v", rec)
		}
		if rec[2] == "광주" && rec[4] != "12" {
			t.Errorf("CSV 광주 %v", rec)
		}
	}
	for _, s := range personal(t, e) {
		if strings.Contains(string(csvResp.body), s) {
			t.Errorf("public CSV contains personal data %q", s)
		}
	}

	page := anon.do("GET", "/public/programs/"+models.DemoProgram, nil).must(t, http.StatusOK)
	if inlineScript.Match(page.body) {
		t.Errorf("inline script or style on the public page")
	}
	for _, s := range personal(t, e) {
		if strings.Contains(string(page.body), s) {
			t.Errorf("public page contains personal data %q", s)
		}
	}
	if r := anon.do("GET", "/public/programs/NOPE.json", nil); r.status != http.StatusNotFound {
		t.Errorf("unknown program: %d", r.status)
	}
	e.exec(`UPDATE programs SET status = 'draft' WHERE code = $1`, models.DemoProgram)
	if r := anon.do("GET", "/public/programs/"+models.DemoProgram+".json", nil); r.status != http.StatusNotFound {
		t.Errorf("draft program: %d", r.status)
	}
}
