package handlers_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/relief/relief/models"
)

// The auditor's page lists who viewed whose personal data: the views the
// review screens log, downloads of evidence, and views logged by any handler
// with the agreed action; only for the auditor's agency; only to auditors.
func TestAuditorReviewsPersonalDataViews(t *testing.T) {
	e := newSecEnv(t)
	rev, fin := e.users[models.RoleReviewer], e.users[models.RoleFinance]
	// A reviewer opens a claim's review file; finance downloads its evidence;
	// an MSS reviewer opens an MSS claim.
	if rec := e.do(secReq{method: http.MethodGet, path: "/api/v1/review/claims/" + e.A.ID.String(), token: e.session(rev)}); rec.Code != http.StatusOK {
		t.Fatalf("review file: %d", rec.Code)
	}
	doc := e.objects["document"].Own
	if rec := e.do(secReq{method: http.MethodGet, path: "/api/v1/claims/" + e.A.ID.String() + "/documents/" + doc, token: e.session(fin)}); rec.Code != http.StatusOK {
		t.Fatalf("document: %d", rec.Code)
	}
	if rec := e.do(secReq{method: http.MethodGet, path: "/api/v1/review/claims/" + e.M.ID.String(), token: e.session(e.mss[models.RoleReviewer])}); rec.Code != http.StatusOK {
		t.Fatalf("MSS review file: %d", rec.Code)
	}
	if err := e.store.AuditPersonalDataView(t.Context(), e.users[models.RoleApprover], e.B.ID, "192.0.2.9", "account"); err != nil {
		t.Fatal(err)
	}

	auditor := e.session(e.users[models.RoleAuditor])
	rec := e.do(secReq{method: http.MethodGet, path: "/api/v1/audit/personal-data-views", token: auditor})
	var list struct {
		Items []models.PersonalDataView `json:"items"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &list) != nil {
		t.Fatalf("views: %d %s", rec.Code, rec.Body.String())
	}
	if len(list.Items) != 3 {
		t.Fatalf("want 3 views of KPOST claims, got %d: %s", len(list.Items), rec.Body.String())
	}
	byActor := map[string]models.PersonalDataView{}
	for _, v := range list.Items {
		byActor[v.Actor] = v
	}
	if v := byActor[rev.Email]; v.ClaimID != e.A.ID || v.Action != "claim.view_personal_data" || len(v.Fields) == 0 || v.Roles[0] != models.RoleReviewer {
		t.Fatalf("reviewer's view: %+v", v)
	}
	if v := byActor[fin.Email]; v.Action != "claim.document.download" || v.Fields[0] != "document" {
		t.Fatalf("finance's download: %+v", v)
	}
	if v := byActor[e.users[models.RoleApprover].Email]; v.Action != models.ActionViewPersonalData || v.ReceiptNo != e.B.ReceiptNo {
		t.Fatalf("approver's view: %+v", v)
	}
	// The page: the same, by receipt number, and nothing personal on it.
	page := e.do(secReq{method: http.MethodGet, path: "/audit/personal-data?claim=" + e.A.ReceiptNo, token: auditor})
	body := page.Body.String()
	if page.Code != http.StatusOK || !strings.Contains(body, rev.Email) || !strings.Contains(body, fin.Email) || strings.Contains(body, e.users[models.RoleApprover].Email) {
		t.Fatalf("page: %d", page.Code)
	}
	for _, c := range []secClaim{e.A, e.B, e.M} {
		for _, p := range c.Personal {
			if strings.Contains(body, p) {
				t.Fatalf("the audit page shows personal data %q", p)
			}
		}
	}
	// Filter by the viewer, English page.
	page = e.do(secReq{method: http.MethodGet, path: "/audit/personal-data?actor=" + fin.Email, token: auditor, header: map[string]string{"Cookie": "relief_lang=en"}})
	if !strings.Contains(page.Body.String(), "Personal data views") || strings.Contains(page.Body.String(), rev.Email) {
		t.Fatal("filtered English page")
	}
	// The MSS auditor sees only the MSS view.
	rec = e.do(secReq{method: http.MethodGet, path: "/api/v1/audit/personal-data-views", token: e.session(e.mss[models.RoleAuditor])})
	list.Items = nil
	_ = json.Unmarshal(rec.Body.Bytes(), &list)
	if len(list.Items) != 1 || list.Items[0].ClaimID != e.M.ID {
		t.Fatalf("MSS auditor sees %d views", len(list.Items))
	}
	if rec := e.do(secReq{method: http.MethodGet, path: "/api/v1/audit/personal-data-views?limit=0", token: auditor}); rec.Code != http.StatusUnprocessableEntity {
		t.Fatalf("limit=0: %d", rec.Code)
	}
}
