package handlers

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
)

// brnEnding returns a valid BRN whose last digit is d, distinct per n.
func brnEnding(d, n int) rules.BRN {
	for i := n * 10; ; i++ {
		if b := rules.ValidBRNFromSeed(i); b.LastDigit() == d {
			return b
		}
	}
}

func claimJSON(brn string) string {
	b, _ := json.Marshal(map[string]any{"program": models.DemoProgram, "brn": brn, "business_name": "대전상회", "representative": "김대전",
		"phone": "010-1234-5678", "category": "food", "region": "대전", "claimed_loss": 3_500_000,
		"bank": map[string]any{"bank_code": "004", "account_number": "12345678901234", "holder": "김대전"}})
	return string(b)
}

func (f *floodServer) fileJSON(t *testing.T, cookie, key, lang, body string) floodAnswer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.url+"/api/v1/claims", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Accept-Language", lang)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return floodAnswer{resp.StatusCode, resp.Header, string(b)}
}

// TestStaggeredApplicationDays: under 5부제 and 홀짝제 the API answers 422
// not_your_day with the day the BRN's turn comes (in the message too, in
// Korean and English), the claim form shows the schedule and the same day,
// and a BRN whose day it is files as usual.
func TestStaggeredApplicationDays(t *testing.T) {
	f := newFloodServer(t, 64, 10)
	ctx := context.Background()
	merchant := f.login(t, "stagger@example.kr", []string{models.RoleMerchant}, "")
	kst := time.FixedZone("KST", 9*3600)
	today := time.Now().In(kst)
	day := func(offset int) string { return today.AddDate(0, 0, offset).Format(time.DateOnly) }

	// 5부제 from today: today is for last digits 1 and 6, tomorrow 2 and 7, …
	if err := f.store.SetStagger(ctx, models.DemoProgram, "five_day", today); err != nil {
		t.Fatal(err)
	}
	a := f.fileJSON(t, merchant, "k-2", "ko", claimJSON(brnEnding(2, 1).Formatted()))
	var e struct {
		Error struct {
			Code    string            `json:"code"`
			Message string            `json:"message"`
			Fields  map[string]string `json:"fields"`
			OpensOn string            `json:"opens_on"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(a.body), &e); err != nil || a.status != http.StatusUnprocessableEntity || e.Error.Code != "not_your_day" {
		t.Fatalf("digit 2 on day 1 of 5부제: %d %s", a.status, a.body)
	}
	if e.Error.OpensOn != day(1) || e.Error.Fields["brn"] != "not_your_day" || !strings.Contains(e.Error.Message, day(1)) {
		t.Fatalf("not_your_day must name tomorrow (%s): %s", day(1), a.body)
	}
	if a := f.fileJSON(t, merchant, "k-0", "en", claimJSON(brnEnding(0, 2).Formatted())); a.status != http.StatusUnprocessableEntity ||
		!strings.Contains(a.body, `"opens_on":"`+day(4)+`"`) || !strings.Contains(a.body, "You can apply from "+day(4)) {
		t.Fatalf("digit 0 opens on day 5 (%s), in English: %d %s", day(4), a.status, a.body)
	}
	if a := f.fileJSON(t, merchant, "k-6", "ko", claimJSON(brnEnding(6, 3).Formatted())); a.status != http.StatusAccepted {
		t.Fatalf("digit 6 on its day: %d %s", a.status, a.body)
	}

	// The form shows the schedule, and the day when the BRN is refused.
	page := f.do(t, http.MethodGet, "/programs/"+models.DemoProgram+"/claim", merchant, "text/html", nil)
	if page.status != http.StatusOK || !strings.Contains(page.body, `data-testid="stagger-schedule"`) ||
		!strings.Contains(page.body, day(0)) || !strings.Contains(page.body, "1, 6") || !strings.Contains(page.body, "5, 0") ||
		!strings.Contains(page.body, day(5)) {
		t.Fatalf("claim form without the 5부제 schedule: %d\n%s", page.status, page.body)
	}
	form := url.Values{"brn": {brnEnding(3, 4).Formatted()}, "business_name": {"대전상회"}, "representative": {"김대전"},
		"phone": {"010-1234-5678"}, "category": {"food"}, "region": {"대전"}, "claimed_loss": {"3500000"},
		"bank_code": {"004"}, "account_number": {"12345678901234"}, "holder": {"김대전"}, "idempotency_key": {"form-3"}}
	page = f.do(t, http.MethodPost, "/programs/"+models.DemoProgram+"/claim", merchant, "text/html", form)
	if page.status != http.StatusUnprocessableEntity || !strings.Contains(page.body, day(2)+"부터 신청하실 수 있습니다") ||
		!strings.Contains(page.body, "오늘은 이 사업자등록번호의 신청일이 아닙니다") || strings.Contains(page.body, "problem.not_your_day") {
		t.Fatalf("form with a digit-3 BRN on day 1: %d\n%s", page.status, page.body)
	}

	// 홀짝제 that began yesterday: today is the even digits' day; odd digits
	// had theirs and may apply again from tomorrow, when everyone may.
	if err := f.store.SetStagger(ctx, models.DemoProgram, "odd_even", today.AddDate(0, 0, -1)); err != nil {
		t.Fatal(err)
	}
	if a := f.fileJSON(t, merchant, "k-7", "ko", claimJSON(brnEnding(7, 5).Formatted())); a.status != http.StatusUnprocessableEntity ||
		!strings.Contains(a.body, `"opens_on":"`+day(1)+`"`) {
		t.Fatalf("odd digit on the even day: %d %s", a.status, a.body)
	}
	if a := f.fileJSON(t, merchant, "k-8", "ko", claimJSON(brnEnding(8, 6).Formatted())); a.status != http.StatusAccepted {
		t.Fatalf("even digit on the even day: %d %s", a.status, a.body)
	}
	// A replay of an accepted claim answers 202 whatever the day rules say now.
	if err := f.store.SetStagger(ctx, models.DemoProgram, "odd_even", today); err != nil {
		t.Fatal(err)
	}
	if a := f.fileJSON(t, merchant, "k-8", "ko", claimJSON(brnEnding(8, 6).Formatted())); a.status != http.StatusAccepted {
		t.Fatalf("replay after the rules changed: %d %s", a.status, a.body)
	}
	// Without staggering every digit files.
	if err := f.store.SetStagger(ctx, models.DemoProgram, "none", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if a := f.fileJSON(t, merchant, "k-9", "ko", claimJSON(brnEnding(9, 7).Formatted())); a.status != http.StatusAccepted {
		t.Fatalf("no staggering: %d %s", a.status, a.body)
	}
	if page := f.do(t, http.MethodGet, "/programs/"+models.DemoProgram+"/claim", merchant, "text/html", nil); strings.Contains(page.body, "stagger-schedule") {
		t.Fatal("schedule shown for a program that does not stagger")
	}
}
