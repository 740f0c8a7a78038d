package handlers_test

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
)

// The access-control matrix: every route the router has (Server.Routes())
// × every role (and anonymous) × the caller's own object and a foreign one
// (another merchant's claim, another agency's program, batch, import, job,
// document). A route without an entry fails the test, so the matrix grows
// with the router.
//
// Expectations, from DESIGN.md and API.md:
//   - anonymous: 401 from the API, a redirect to /login from pages (public
//     routes excepted);
//   - a role the route is not for: 403 (entries marked deny404 hide the
//     route's objects from other roles with 404 instead, which leaks nothing);
//   - an allowed role on a foreign object: 404, exactly like a missing one;
//   - an allowed role on its own object: neither 401, 403, 404 nor a 5xx
//     (the request bodies are empty, so 400/409/422 are fine: access passed);
//   - no answer to anyone carries personal data of a claim they may not see
//     (lists never return foreign rows);
//   - a GET changes nothing in the database (only read audit entries and
//     session last-seen times may move).

// Who may use a route.
var (
	secPublic = []string{"public"}
	secAnyone = []string{"signed-in"}
	secStaff  = []string{models.RoleReviewer, models.RoleApprover, models.RoleProgramAdmin, models.RoleFinance, models.RoleAuditor}
)

func secOnly(roles ...string) []string { return roles }

var (
	secReviewers = secOnly(models.RoleReviewer, models.RoleApprover, models.RoleProgramAdmin, models.RoleAuditor)

	secHide        = []int{http.StatusNotFound}
	secHideOrDeny  = []int{http.StatusForbidden, http.StatusNotFound}
	secRedirectOff = []int{http.StatusSeeOther, http.StatusForbidden}
	// HTML forms redirect back with ?error=<code> (checked by judge), or fail outright.
	secForm       = []int{secFormRedirect, http.StatusForbidden}
	secFormOrHide = []int{secFormRedirect, http.StatusForbidden, http.StatusNotFound}
)

// secFormRedirect stands for "303 to a page with ?error=".
const secFormRedirect = 3030

type secRule struct {
	who []string
	// obj says how the route's path parameters name objects:
	//   "" none, "claim", "document", "program" (agency-scoped), "public-program"
	//   (readable by all: no foreign variant), "batch", "import", "export",
	//   "tranche", "po".
	obj string
	// deny: what other roles are told (default 403). Some routes hide their
	// objects from other roles with 404, which leaks nothing either; HTML
	// forms answer with a redirect back carrying ?error= (secForm).
	deny []int
	// ok: statuses an allowed role may get on its own object besides the
	// usual, e.g. 503 where the route needs Temporal (not running here).
	ok []int
	// list: the answer lists the caller's own claims (checked to be there).
	list bool
	// query appended to the path.
	query string
	// valid is a body that would succeed if access were granted: it is sent
	// on the refused variants, so that a refusal is access control's and not
	// validation's, and a wrongly granted one shows up as a database change.
	// {code} is the variant's program, {brnNew} an unused valid BRN. "pdf:",
	// "ledger:" and "results:" send a multipart upload. Allowed callers on
	// their own objects get an empty body.
	valid string
	// gap: a known deviation, reported to its owner; logged, not failed.
	gap string
	// viewLogGap: the route shows staff a claim's personal data without
	// audit-logging the view (reported; logged, not failed).
	viewLogGap string
	note       string
}

// secMatrix is keyed "METHOD /path" as Gin registers it.
var secMatrix = map[string]secRule{
	// Operations and static files.
	"GET /healthz":             {who: secPublic},
	"GET /readyz":              {who: secPublic, ok: []int{503}, note: "503 without Temporal"},
	"GET /metrics":             {who: secPublic, note: "Prometheus text: route templates and counts only"},
	"GET /static/*filepath":    {who: secPublic},
	"HEAD /static/*filepath":   {who: secPublic},
	"GET /api/v1/openapi.json": {who: secPublic},

	// Accounts and sessions.
	"POST /api/v1/merchants/signup": {who: secPublic},
	"POST /api/v1/session":          {who: secPublic, ok: []int{401}, note: "an empty body is invalid_credentials"},
	"DELETE /api/v1/session":        {who: secPublic},
	"GET /api/v1/me":                {who: secAnyone},
	"GET /":                         {who: secPublic},
	"GET /login":                    {who: secPublic},
	"POST /login":                   {who: secPublic, ok: []int{401}},
	"POST /logout":                  {who: secPublic},
	"GET /signup":                   {who: secPublic},
	"POST /signup":                  {who: secPublic},
	"GET /lang/:lang":               {who: secPublic},

	// Programs and claims (intake).
	"GET /api/v1/programs":       {who: secPublic},
	"GET /api/v1/programs/:code": {who: secPublic, obj: "public-program"},
	"GET /programs":              {who: secPublic},
	"GET /public/programs/:code": {who: secPublic, obj: "public-program", note: "aggregates only, small cells withheld"},
	"GET /programs/:code/claim":  {who: secAnyone, obj: "public-program", note: "staff see an empty form; filing refuses them"},
	"POST /programs/:code/claim": {who: secOnly(models.RoleMerchant), obj: "public-program", valid: secClaimForm},
	"POST /api/v1/claims":        {who: secOnly(models.RoleMerchant), valid: secClaimJSON},
	"GET /api/v1/claims":         {who: secAnyone, list: true, viewLogGap: "claim JSON/page shows BRN, representative, phone and holder to every staff role without logging the view"},
	"GET /api/v1/claims/:id":     {who: secAnyone, obj: "claim", viewLogGap: "claim JSON/page shows BRN, representative, phone and holder to every staff role without logging the view"},
	"GET /claims":                {who: secAnyone, list: true},
	"GET /claims/:id":            {who: secAnyone, obj: "claim", viewLogGap: "claim JSON/page shows BRN, representative, phone and holder to every staff role without logging the view"},
	"GET /claims/:id/timeline":   {who: secAnyone, obj: "claim"},
	"GET /api/v1/programs/:code/offer": {who: secOnly(models.RoleMerchant), obj: "public-program", query: "?brn={brnA}",
		note: "gap reported: any merchant may look up any BRN's sales"},
	"GET /programs/:code/offer": {who: secOnly(models.RoleMerchant), obj: "public-program", query: "?brn={brnA}",
		gap: "staff get the merchant's offer page (the API refuses them with 403); any merchant may look up any BRN's sales"},
	"POST /api/v1/claims/:id/info":   {who: secOnly(models.RoleMerchant), obj: "claim", ok: []int{503}, valid: `{"note":"보완 자료"}`},
	"POST /api/v1/claims/:id/appeal": {who: secOnly(models.RoleMerchant), obj: "claim", ok: []int{503}, valid: `{"reason":"재심사 요청"}`},
	"GET /claims/:id/respond":        {who: secOnly(models.RoleMerchant), obj: "claim"},
	"POST /claims/:id/info":          {who: secOnly(models.RoleMerchant), obj: "claim", ok: []int{503}, deny: secForm, valid: "note=x"},
	"POST /claims/:id/appeal":        {who: secOnly(models.RoleMerchant), obj: "claim", ok: []int{503}, deny: secForm, valid: "reason=x"},
	"POST /api/v1/claims/:id/documents": {who: secOnly(models.RoleMerchant, models.RoleReviewer, models.RoleApprover), obj: "claim", valid: "pdf:",
		note: "gap reported: the upload is parsed before the role check (422 instead of 403 for an empty body)"},
	"POST /claims/:id/documents":            {who: secOnly(models.RoleMerchant, models.RoleReviewer, models.RoleApprover), obj: "claim", deny: secForm, valid: "pdf:"},
	"GET /api/v1/claims/:id/documents/:doc": {who: secAnyone, obj: "document"},
	"GET /claims/:id/documents/:doc":        {who: secAnyone, obj: "document"},
	"PUT /api/v1/claims/:id/goods":          {who: secOnly(models.RoleMerchant), obj: "claim", valid: `{"goods":[]}`},
	"GET /claims/:id/goods":                 {who: secAnyone, obj: "claim", note: "staff see the goods read-only; only the merchant may change them"},
	"POST /claims/:id/goods":                {who: secOnly(models.RoleMerchant), obj: "claim", deny: secForm, valid: "goods_sku="},
	"PUT /api/v1/claims/:id/bank": {who: secOnly(models.RoleMerchant), obj: "claim",
		valid: `{"bank_code":"004","account_number":"12345678901","holder":"가짜"}`,
		note:  "staff 403; only after the bank's account check failed (409 otherwise)"},
	"POST /claims/:id/bank": {who: secOnly(models.RoleMerchant), obj: "claim", deny: secForm,
		valid: "bank_code=004&account_number=12345678901&holder=x"},

	// Review.
	"GET /api/v1/review/queue":              {who: secReviewers},
	"GET /api/v1/review/claims/:id":         {who: secReviewers, obj: "claim", deny: secHide},
	"POST /api/v1/claims/:id/decision":      {who: secOnly(models.RoleReviewer, models.RoleApprover), obj: "claim", ok: []int{503}, valid: `{"action":"approve","amount":100000}`},
	"GET /review":                           {who: secReviewers, deny: secRedirectOff},
	"GET /review/queue":                     {who: secReviewers, deny: secRedirectOff},
	"GET /review/approvals":                 {who: secReviewers, deny: secRedirectOff},
	"GET /review/claims/:id":                {who: secReviewers, obj: "claim", deny: secHide},
	"POST /review/claims/:id/decision":      {who: secOnly(models.RoleReviewer, models.RoleApprover), obj: "claim", ok: []int{503}, deny: secForm, valid: "action=approve&amount=100000"},
	"GET /review/claims/:id/documents/:doc": {who: secAnyone, obj: "document"},

	// Sales ledger (program administrators).
	"POST /api/v1/programs/:code/ledger": {who: secOnly(models.RoleProgramAdmin), obj: "program", valid: "ledger:"},
	"GET /api/v1/imports/:id":            {who: secOnly(models.RoleProgramAdmin, models.RoleAuditor), obj: "import", deny: secHide},
	"GET /admin/ledger":                  {who: secOnly(models.RoleProgramAdmin)},
	"GET /admin/programs/:code/ledger":   {who: secOnly(models.RoleProgramAdmin), obj: "program"},
	"POST /admin/programs/:code/ledger":  {who: secOnly(models.RoleProgramAdmin), obj: "program", valid: "ledger:"},
	"GET /admin/imports/:id":             {who: secOnly(models.RoleProgramAdmin, models.RoleAuditor), obj: "import", deny: secHide},
	"GET /admin/imports/:id/progress":    {who: secOnly(models.RoleProgramAdmin, models.RoleAuditor), obj: "import", deny: secHide},

	// Instruments: pre-purchase tranches, purchase orders, fee waivers.
	"GET /api/v1/programs/:code/budgets":          {who: secStaff, obj: "program", deny: secHideOrDeny},
	"GET /api/v1/programs/:code/tranches":         {who: secStaff, obj: "program", deny: secHideOrDeny},
	"POST /api/v1/programs/:code/tranches":        {who: secOnly(models.RoleProgramAdmin), obj: "program", ok: []int{503}, valid: `{"name":"2차","budget":1000000}`},
	"GET /api/v1/tranches/:id":                    {who: secStaff, obj: "tranche", deny: secHide},
	"GET /api/v1/tranches/:id/preview":            {who: secStaff, obj: "tranche", deny: secHide},
	"POST /api/v1/tranches/:id/preview":           {who: secOnly(models.RoleProgramAdmin, models.RoleApprover), obj: "tranche", ok: []int{503}, deny: secHideOrDeny, valid: `{}`},
	"POST /api/v1/tranches/:id/approve":           {who: secOnly(models.RoleApprover), obj: "tranche", ok: []int{503}, deny: secHideOrDeny, valid: `{"version":1}`},
	"GET /api/v1/tranches/:id/purchase-orders":    {who: secStaff, obj: "tranche", deny: secHide},
	"GET /api/v1/tranches/:id/sheet.xlsx":         {who: secStaff, obj: "tranche", deny: secHide},
	"POST /api/v1/purchase-orders/:id/receive":    {who: secOnly(models.RoleProgramAdmin), obj: "po", deny: secHideOrDeny, valid: `{}`},
	"POST /api/v1/programs/:code/fee-waivers/run": {who: secOnly(models.RoleProgramAdmin), obj: "program", ok: []int{503}, valid: `{}`},
	"GET /api/v1/programs/:code/fee-waivers":      {who: secStaff, obj: "program", deny: secHideOrDeny},
	"GET /programs/:code/instruments":             {who: secStaff, obj: "program", deny: secHideOrDeny},
	"POST /programs/:code/tranches":               {who: secOnly(models.RoleProgramAdmin), obj: "program", ok: []int{503}, deny: secFormOrHide, valid: "name=2차&budget=1000000"},
	"GET /tranches/:id":                           {who: secStaff, obj: "tranche", deny: secHide},
	"GET /tranches/:id/progress":                  {who: secStaff, obj: "tranche", deny: secHide},
	"POST /tranches/:id/preview":                  {who: secOnly(models.RoleProgramAdmin, models.RoleApprover), obj: "tranche", ok: []int{503}, deny: secFormOrHide},
	"POST /tranches/:id/approve":                  {who: secOnly(models.RoleApprover), obj: "tranche", ok: []int{503}, deny: secFormOrHide, valid: "version=1"},
	"POST /purchase-orders/:id/receive":           {who: secOnly(models.RoleProgramAdmin), obj: "po", deny: secFormOrHide},
	"GET /programs/:code/fee-waivers":             {who: secStaff, obj: "program", deny: secHideOrDeny},
	"POST /programs/:code/fee-waivers/run":        {who: secOnly(models.RoleProgramAdmin), obj: "program", ok: []int{503}, deny: secFormOrHide},

	// Payouts (finance; auditors read). Merchants are told 404, other staff 403.
	"POST /api/v1/payout-batches":                        {who: secOnly(models.RoleFinance), valid: `{"program":"` + models.DemoProgram + `"}`},
	"GET /api/v1/payout-batches":                         {who: secOnly(models.RoleFinance, models.RoleAuditor)},
	"GET /api/v1/payout-batches/:id":                     {who: secOnly(models.RoleFinance, models.RoleAuditor), obj: "batch", deny: secHideOrDeny},
	"POST /api/v1/payout-batches/:id/approve":            {who: secOnly(models.RoleFinance), obj: "batch", ok: []int{503}, deny: secHideOrDeny},
	"GET /api/v1/payout-batches/:id/bank-file":           {who: secOnly(models.RoleFinance), obj: "batch", deny: secHideOrDeny},
	"POST /api/v1/payout-batches/:id/results":            {who: secOnly(models.RoleFinance), obj: "batch", deny: secHideOrDeny, valid: "results:"},
	"GET /api/v1/payout-batches/:id/reconciliation":      {who: secOnly(models.RoleFinance, models.RoleAuditor), obj: "batch", deny: secHideOrDeny},
	"GET /api/v1/payout-batches/:id/reconciliation.xlsx": {who: secOnly(models.RoleFinance, models.RoleAuditor), obj: "batch", deny: secHideOrDeny},
	"GET /payouts":                         {who: secOnly(models.RoleFinance, models.RoleAuditor)},
	"POST /payouts":                        {who: secOnly(models.RoleFinance), deny: secForm, valid: "program=" + models.DemoProgram},
	"GET /payouts/:id":                     {who: secOnly(models.RoleFinance, models.RoleAuditor), obj: "batch", deny: secHideOrDeny},
	"GET /payouts/:id/progress":            {who: secOnly(models.RoleFinance, models.RoleAuditor), obj: "batch", deny: secHideOrDeny},
	"POST /payouts/:id/approve":            {who: secOnly(models.RoleFinance), obj: "batch", ok: []int{503}, deny: secFormOrHide},
	"POST /payouts/:id/results":            {who: secOnly(models.RoleFinance), obj: "batch", deny: secFormOrHide, valid: "results:"},
	"GET /payouts/:id/bank-file":           {who: secOnly(models.RoleFinance), obj: "batch", deny: secHideOrDeny},
	"GET /payouts/:id/reconciliation":      {who: secOnly(models.RoleFinance, models.RoleAuditor), obj: "batch", deny: secHideOrDeny},
	"GET /payouts/:id/reconciliation.xlsx": {who: secOnly(models.RoleFinance, models.RoleAuditor), obj: "batch", deny: secHideOrDeny},

	// Exports and dashboards (agency staff; jobs belong to who asked).
	"GET /api/v1/programs/:code/exports/:file": {who: secStaff, obj: "program"},
	"GET /api/v1/programs/:code/dashboard":     {who: secStaff, obj: "program"},
	"POST /api/v1/exports":                     {who: secStaff, ok: []int{404}, note: "an empty body names no program (404)", valid: `{"program":"` + models.DemoProgram + `","kind":"summary"}`},
	"GET /api/v1/exports/:id":                  {who: secStaff, obj: "export", deny: secHide},
	"GET /api/v1/exports/:id/file":             {who: secStaff, obj: "export", deny: secHide},
	"GET /programs/:code/exports":              {who: secStaff, obj: "program"},
	"POST /programs/:code/exports":             {who: secStaff, obj: "program", valid: "kind=summary"},
	"GET /exports/:id/progress":                {who: secStaff, obj: "export", deny: secHide},
	"GET /programs/:code/dashboard":            {who: secStaff, obj: "program"},

	// Security and privacy.
	"GET /api/v1/audit/personal-data-views": {who: secOnly(models.RoleAuditor)},
	"GET /audit/personal-data":              {who: secOnly(models.RoleAuditor)},
}

const (
	secClaimJSON = `{"program":"{code}","brn":"{brnNew}","business_name":"가짜상회","representative":"가짜","phone":"010-1234-5678",` +
		`"category":"food","region":"대전","claimed_loss":1000000,"bank":{"bank_code":"004","account_number":"12345678901","holder":"가짜"}}`
	secClaimForm = "brn={brnNew}&business_name=x&representative=x&phone=010-1234-5678&category=food&region=%EB%8C%80%EC%A0%84" +
		"&claimed_loss=1000&bank_code=004&account_number=12345678901&holder=x"
)

// secCase is one request of the matrix and what it must answer.
type secCase struct {
	route, role, variant string // variant: "own" or "foreign"
	path, program        string // program: the variant's program, for {code}
	rule                 secRule
}

func (r secRule) allows(role string) bool {
	switch {
	case slices.Equal(r.who, secPublic):
		return true
	case role == "":
		return false
	case slices.Equal(r.who, secAnyone):
		return true
	}
	return slices.Contains(r.who, role)
}

// params names the objects of a path for role: own, or foreign when own is
// false. ok is false when the route has no foreign variant.
func (e *secEnv) params(path string, rule secRule, role string, own bool) (string, string, bool) {
	if !own && (rule.obj == "" || rule.obj == "public-program") {
		return "", "", false
	}
	segs := strings.Split(path, "/")
	program := models.DemoProgram
	if !own {
		program = secForeignProgram
	}
	claimFor := func() secClaim {
		switch {
		case own:
			return e.A
		case role == models.RoleMerchant:
			return e.B // another merchant's claim in the same program
		default:
			return e.M // another agency's claim
		}
	}
	pick := func(kind string) string {
		o := e.objects[kind]
		if !own {
			return o.Foreign
		}
		if id, ok := o.OwnByRole[role]; ok {
			return id
		}
		return o.Own
	}
	for i, s := range segs {
		if !strings.HasPrefix(s, ":") && !strings.HasPrefix(s, "*") {
			continue
		}
		prev := ""
		if i > 0 {
			prev = segs[i-1]
		}
		switch {
		case s == "*filepath":
			segs[i] = "app.css"
		case s == ":lang":
			segs[i] = "ko"
		case s == ":file":
			segs[i] = "summary.xlsx"
		case s == ":code" && rule.obj == "public-program":
			segs[i] = models.DemoProgram
		case s == ":code":
			segs[i] = program
		case s == ":doc":
			segs[i] = pick("document")
		case s == ":id" && prev == "claims" && rule.obj == "document":
			segs[i] = map[bool]string{true: e.A.ID.String(), false: e.M.ID.String()}[own]
		case s == ":id" && prev == "claims":
			segs[i] = claimFor().ID.String()
		case s == ":id" && (prev == "payout-batches" || prev == "payouts"):
			segs[i] = pick("batch")
		case s == ":id" && prev == "imports":
			segs[i] = pick("import")
		case s == ":id" && prev == "exports":
			segs[i] = pick("export")
		case s == ":id" && prev == "tranches":
			segs[i] = pick("tranche")
		case s == ":id" && prev == "purchase-orders":
			segs[i] = pick("po")
		default:
			e.t.Fatalf("%s: no fixture for parameter %s after %q: add one to secEnv.params and secEnv.makeObjects", path, s, prev)
		}
	}
	q := strings.ReplaceAll(rule.query, "{brnA}", e.A.PII[2])
	return strings.Join(segs, "/") + q, program, true
}

// visibleClaims are the claims role may see in the fixture.
func (e *secEnv) visibleClaims(role string) []secClaim {
	switch role {
	case "":
		return nil
	case models.RoleMerchant:
		return []secClaim{e.A}
	}
	return []secClaim{e.A, e.B}
}

func (e *secEnv) hiddenClaims(role string) []secClaim {
	var out []secClaim
	for _, c := range []secClaim{e.A, e.B, e.M} {
		if !slices.ContainsFunc(e.visibleClaims(role), func(v secClaim) bool { return v.ID == c.ID }) {
			out = append(out, c)
		}
	}
	return out
}

var secBRNSeq = 900_000

// body is what the matrix sends to an unsafe route: for refused variants the
// rule's valid body (so access control, not validation, must refuse it);
// otherwise an empty one, so that a request that passes access control is
// refused by validation and changes nothing.
func (c secCase) body(refused bool) ([]byte, string) {
	api := strings.HasPrefix(c.path, "/api/")
	v := c.rule.valid
	if !refused || v == "" {
		if api {
			return []byte("{}"), "application/json"
		}
		return []byte(""), "application/x-www-form-urlencoded"
	}
	secBRNSeq += 13
	v = strings.ReplaceAll(v, "{code}", c.program)
	v = strings.ReplaceAll(v, "{brnNew}", rules.ValidBRNFromSeed(secBRNSeq).String())
	switch {
	case strings.HasPrefix(v, "pdf:"):
		return secMultipart("evidence.pdf", []byte("%PDF-1.7\n1 0 obj <<>> endobj\n"))
	case strings.HasPrefix(v, "ledger:"):
		return secMultipart("ledger.csv", []byte("seller_brn,date,gross_sales,commission,category\n1208147521,2025-09-01,100000,6000,food\n"))
	case strings.HasPrefix(v, "results:"):
		return secMultipart("results.csv", []byte("이체키,계좌번호,금액,결과코드\nK-1,110123456789,1000,0000\n"))
	case api:
		return []byte(v), "application/json"
	}
	return []byte(v), "application/x-www-form-urlencoded"
}

func secMultipart(name string, data []byte) ([]byte, string) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	fw, _ := w.CreateFormFile("file", name)
	_, _ = fw.Write(data)
	_ = w.Close()
	return b.Bytes(), w.FormDataContentType()
}

func TestAccessControlMatrix(t *testing.T) {
	e := newSecEnv(t)
	routes := e.srv.Routes()
	var missing []string
	var cases []secCase
	for _, r := range routes {
		key := r.Method + " " + r.Path
		rule, ok := secMatrix[key]
		if !ok {
			missing = append(missing, key)
			continue
		}
		for _, role := range secRoles {
			for _, own := range []bool{true, false} {
				path, program, ok := e.params(r.Path, rule, role, own)
				if !ok {
					continue
				}
				variant := map[bool]string{true: "own", false: "foreign"}[own]
				cases = append(cases, secCase{route: key, role: role, variant: variant, path: path, program: program, rule: rule})
			}
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("route %s has no entry in secMatrix (handlers/security_matrix_test.go): say who may use it", m)
	}
	for key := range secMatrix {
		if !slices.ContainsFunc(routes, func(r gin.RouteInfo) bool { return r.Method+" "+r.Path == key }) {
			t.Errorf("secMatrix has an entry for %s, which the router no longer has: remove it", key)
		}
	}

	var table, gaps []string
	for _, c := range cases {
		method, _, _ := strings.Cut(c.route, " ")
		refused := !c.rule.allows(c.role) || c.variant == "foreign"
		req := secReq{method: method, path: c.path, header: map[string]string{"Idempotency-Key": "matrix-" + c.role + "-" + c.variant + "-" + c.route}}
		if c.role != "" {
			req.token = e.session(e.users[c.role])
		}
		if method != http.MethodGet && method != http.MethodHead {
			req.body, req.contentType = c.body(refused)
		}
		// Reads and refused requests must leave the database as it was.
		check := method == http.MethodGet || method == http.MethodHead || refused
		var before map[string]string
		if check {
			before = e.dbState()
		}
		mark := e.auditMark()
		rec := e.do(req)
		who := or(c.role, "anonymous")
		// Every staff view of personal data is audit-logged (DESIGN.md).
		if c.role != "" && c.role != models.RoleMerchant && rec.Code == http.StatusOK {
			for _, v := range e.visibleClaims(c.role) {
				shown := slices.ContainsFunc(v.Personal, func(p string) bool {
					return strings.Contains(rec.Body.String(), p) && !strings.Contains(c.path, p)
				})
				if shown && !e.viewsLogged(mark, v) {
					msg := fmt.Sprintf("%s as %s showed claim %s's personal data without a view_personal_data audit entry", c.route, who, v.ReceiptNo)
					if c.rule.viewLogGap != "" {
						gaps = append(gaps, msg)
					} else {
						t.Error(msg)
					}
				}
			}
		}
		table = append(table, fmt.Sprintf("%-52s %-13s %-7s → %d %s", c.route, who, c.variant, rec.Code, rec.Header().Get("Location")))
		problem := e.judge(c, rec)
		if check {
			if changed := diffState(before, e.dbState()); len(changed) > 0 {
				problem = strings.TrimPrefix(problem+"; ", "; ") + fmt.Sprintf("changed the database: %v", changed)
			}
		}
		switch {
		case problem == "":
		case c.rule.gap != "":
			gaps = append(gaps, fmt.Sprintf("%s as %s (%s): %s", c.route, who, c.variant, problem))
		default:
			t.Errorf("%s as %s (%s object, %s): %s", c.route, who, c.variant, c.path, problem)
		}
	}
	if len(gaps) > 0 {
		t.Logf("KNOWN GAPS (reported; logged, not failed):\n%s", strings.Join(gaps, "\n"))
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("observed answers:\n%s", strings.Join(table, "\n"))
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// judge returns what is wrong with the answer to c, or "".
func (e *secEnv) judge(c secCase, rec *httptest.ResponseRecorder) string {
	status := rec.Code
	body := rec.Body.String()
	api := strings.HasPrefix(c.path, "/api/")
	for _, h := range e.hiddenClaims(c.role) {
		for _, v := range h.PII {
			// (pages echo the request's own path, e.g. in the language links)
			if strings.Contains(body, v) && !strings.Contains(c.path, v) {
				return fmt.Sprintf("answer carries %q of a claim the caller may not see", v)
			}
		}
	}
	if status >= 500 && !slices.Contains(c.rule.ok, status) {
		return fmt.Sprintf("server error %d: %.300s", status, body)
	}
	in := func(want []int) bool {
		if slices.Contains(want, status) {
			return true
		}
		loc := rec.Header().Get("Location")
		return status == http.StatusSeeOther && slices.Contains(want, secFormRedirect) && (strings.Contains(loc, "error=") || strings.Contains(loc, "err="))
	}
	allowed := c.rule.allows(c.role)
	switch {
	case c.role == "" && !allowed:
		if api && status != http.StatusUnauthorized {
			return fmt.Sprintf("anonymous: got %d, want 401", status)
		}
		if !api && !(status == http.StatusSeeOther && strings.HasPrefix(rec.Header().Get("Location"), "/login")) {
			return fmt.Sprintf("anonymous page: got %d %q, want 303 to /login", status, rec.Header().Get("Location"))
		}
	case !allowed:
		want := []int{http.StatusForbidden}
		if c.rule.deny != nil {
			want = c.rule.deny
		}
		if c.variant == "foreign" {
			want = append(slices.Clone(want), http.StatusForbidden, http.StatusNotFound)
		}
		if !in(want) {
			return fmt.Sprintf("role not allowed: got %d %s, want %v", status, rec.Header().Get("Location"), want)
		}
	case c.variant == "foreign":
		if status != http.StatusNotFound && !(slices.Contains(c.rule.deny, secFormRedirect) && in([]int{secFormRedirect})) {
			return fmt.Sprintf("foreign object: got %d %s, want 404", status, rec.Header().Get("Location"))
		}
	default:
		if slices.Contains(c.rule.ok, status) {
			break
		}
		if status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusNotFound {
			return fmt.Sprintf("allowed on its own object: got %d: %.300s", status, body)
		}
		if loc := rec.Header().Get("Location"); status == http.StatusSeeOther && (strings.Contains(loc, "error=forbidden") || strings.HasPrefix(loc, "/login")) {
			return fmt.Sprintf("allowed on its own object: redirected to %s", loc)
		}
		if c.rule.list && status == http.StatusOK {
			for _, v := range e.visibleClaims(c.role) {
				if !strings.Contains(body, v.ReceiptNo) {
					return fmt.Sprintf("list lacks the caller's own claim %s", v.ReceiptNo)
				}
			}
		}
	}
	return ""
}
