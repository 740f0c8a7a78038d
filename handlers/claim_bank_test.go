package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// flagAccount marks a claim's account as refused by the bank, as a failed
// payout line does.
func (a *apiServer) flagAccount(id uuid.UUID, code string) {
	a.t.Helper()
	if _, err := a.store.Pool.Exec(context.Background(),
		`UPDATE claims SET account_check_failed_at = now(), account_check_failure = $2 WHERE id = $1`, id, code); err != nil {
		a.t.Fatal(err)
	}
}

func TestCorrectBankAccount(t *testing.T) {
	a := newAPIServer(t)
	owner := a.merchant("owner@example.kr")
	f := owner.fileClaim("k", apiClaimBody("120-81-47521")).filed(t)
	path := "/api/v1/claims/" + f.ID.String() + "/bank"
	good := map[string]string{"bank_code": "088", "account_number": "110-222-333444", "holder": "김대전"}

	a.client().do("PUT", path, good).expect(t, http.StatusUnauthorized, "unauthorized")
	stranger := a.merchant("stranger@example.kr")
	stranger.do("PUT", path, good).expect(t, http.StatusNotFound, "not_found")
	// Not refused by the bank yet: nothing to correct.
	owner.do("PUT", path, good).expect(t, http.StatusConflict, "account_check_not_failed")

	a.flagAccount(f.ID, "holder_mismatch")
	var claim struct {
		Failed  bool   `json:"account_check_failed"`
		Failure string `json:"account_check_failure"`
	}
	if err := json.Unmarshal(owner.do("GET", "/api/v1/claims/"+f.ID.String(), nil).mustStatus(t, http.StatusOK).body, &claim); err != nil ||
		!claim.Failed || claim.Failure != "holder_mismatch" {
		t.Fatalf("claim JSON: %+v %v", claim, err)
	}
	stranger.do("PUT", path, good).expect(t, http.StatusNotFound, "not_found")
	owner.do("PUT", path, map[string]string{"bank_code": "004", "account_number": "12-34", "holder": "김대전"}).
		expect(t, http.StatusUnprocessableEntity, "validation_failed", "account_number")
	owner.do("PUT", path, map[string]string{"bank_code": "999", "account_number": "110222333444", "holder": ""}).
		expect(t, http.StatusUnprocessableEntity, "validation_failed", "bank_code", "holder")

	r := owner.do("PUT", path, good, "Idempotency-Key", "fix-1").mustStatus(t, http.StatusOK)
	var got struct {
		Bank struct {
			BankCode      string `json:"bank_code"`
			AccountMasked string `json:"account_masked"`
			Holder        string `json:"holder"`
		} `json:"bank"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil || got.Bank.BankCode != "088" || got.Bank.AccountMasked != "******3444" ||
		got.Bank.Holder != "김대전" || bytes.Contains(r.body, []byte("110222333444")) {
		t.Fatalf("200 body %s: %v", r.body, err)
	}
	// The same key replays; the same key with another body is refused; the
	// same body without a key changes nothing new.
	if again := owner.do("PUT", path, good, "Idempotency-Key", "fix-1").mustStatus(t, http.StatusOK); !bytes.Equal(again.body, r.body) {
		t.Fatalf("replay %s, want %s", again.body, r.body)
	}
	owner.do("PUT", path, map[string]string{"bank_code": "088", "account_number": "110222333000", "holder": "김대전"}, "Idempotency-Key", "fix-1").
		expect(t, http.StatusUnprocessableEntity, "idempotency_mismatch")
	owner.do("PUT", path, good).mustStatus(t, http.StatusOK)
	if n := a.count(`SELECT count(*) FROM claim_events WHERE claim_id = $1 AND note = 'claim.note.account_corrected'`, f.ID); n != 1 {
		t.Fatalf("timeline entries = %d", n)
	}
	if n := a.count(`SELECT count(*) FROM audit_log WHERE action = 'claim.bank.correct'`); n != 1 {
		t.Fatalf("audit entries = %d", n)
	}
	if n := a.count(`SELECT count(*) FROM claims WHERE id = $1 AND account_check_failed_at IS NULL AND account_last4 = '3444' AND bank_code = '088'`, f.ID); n != 1 {
		t.Fatal("the claim was not corrected")
	}
}

func TestCorrectBankAccountPage(t *testing.T) {
	a := newAPIServer(t)
	owner := a.merchant("owner@example.kr")
	f := owner.fileClaim("k", apiClaimBody("120-81-47521")).filed(t)
	page := "/claims/" + f.ID.String()
	if body := string(owner.do("GET", page, nil).mustStatus(t, http.StatusOK).body); strings.Contains(body, `data-testid="bank-form"`) {
		t.Fatal("the correction form shows on a claim whose account is fine")
	}
	a.flagAccount(f.ID, "invalid_account")
	body := string(owner.do("GET", page, nil).mustStatus(t, http.StatusOK).body)
	if !strings.Contains(body, `data-testid="account-check-failed"`) || !strings.Contains(body, `data-testid="bank-form"`) ||
		!strings.Contains(body, `action="/claims/`+f.ID.String()+`/bank"`) {
		t.Fatalf("no correction form on the claim page:\n%s", body)
	}
	post := func(form url.Values) (int, string) {
		status, _, out := roundTrip(t, owner.hc, "POST", a.url+page+"/bank", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded", nil)
		return status, string(out)
	}
	if status, out := post(url.Values{"bank_code": {"004"}, "account_number": {"12"}, "holder": {"김대전"}}); status != http.StatusUnprocessableEntity ||
		!strings.Contains(out, `data-testid="bank-error"`) {
		t.Fatalf("invalid account: %d\n%s", status, out)
	}
	status, out := post(url.Values{"bank_code": {"088"}, "account_number": {"110222333444"}, "holder": {"김대전"}})
	if status != http.StatusOK || !strings.Contains(out, `data-testid="claim-msg"`) || strings.Contains(out, `data-testid="bank-form"`) {
		t.Fatalf("after the correction: %d\n%s", status, out)
	}
	if n := a.count(`SELECT count(*) FROM claims WHERE id = $1 AND account_check_failed_at IS NULL AND account_last4 = '3444'`, f.ID); n != 1 {
		t.Fatal("the claim was not corrected")
	}
}
