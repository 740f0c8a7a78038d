package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/relief/relief/cmd/relief/banksim"
	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
	"github.com/relief/relief/models/vault"
	"github.com/relief/relief/workflows/claim"
	"github.com/relief/relief/workflows/payout"
	"github.com/relief/relief/workflows/payout/payouttest"
)

// The personal data of TestE2EPIIStaysOutOfTemporalAndLogs: distinctive
// values no other test uses, so that a hit can only come from this run.
const (
	piiBRN            = "739-86-42515" // valid NTS check digit
	piiBusinessName   = "청솔나루상회"
	piiRepresentative = "황보은결"
	piiPhone          = "010-7391-8264" // the claim's contact number
	piiUserPhone      = "010-4826-1937" // the merchant user's phone at signup
	piiAccount        = "73918264055021"
	piiHolder         = "남궁다온"
	piiUserName       = "독고채린"
	piiEmail          = "pii-scan-merchant@example.kr"
	piiPassword       = "correct horse battery"
)

// piiNeedles are the strings that must appear nowhere in Temporal or the logs:
// each personal value, with the BRN and the phone numbers also digits-only,
// and the non-ASCII ones also as ASCII-escaped JSON (\uXXXX) would carry them.
func piiNeedles(t *testing.T) map[string]string {
	t.Helper()
	brn, err := rules.ParseBRN(piiBRN)
	if err != nil {
		t.Fatalf("the test's BRN %s is invalid: %v", piiBRN, err)
	}
	digits := func(s string) string { return strings.ReplaceAll(s, "-", "") }
	n := map[string]string{
		"BRN (dashed)":            brn.Formatted(),
		"BRN (digits)":            brn.String(),
		"business name":           piiBusinessName,
		"representative":          piiRepresentative,
		"claim phone (dashed)":    piiPhone,
		"claim phone (digits)":    digits(piiPhone),
		"merchant phone (dashed)": piiUserPhone,
		"merchant phone (digits)": digits(piiUserPhone),
		"account number":          piiAccount,
		"account holder":          piiHolder,
		"merchant user name":      piiUserName,
		"merchant email":          piiEmail,
	}
	for what, s := range n {
		if q := strconv.QuoteToASCII(s); q[1:len(q)-1] != s {
			n[what+" (\\u-escaped)"] = q[1 : len(q)-1]
		}
	}
	return n
}

// bootPII is boot with the log at DEBUG, kept for the scan, the demo budgets
// funded, and the payout worker talking to bankURL.
func bootPII(t *testing.T, bankURL string) *program {
	return bootWith(t, bootOptions{logLevel: slog.LevelDebug, instruments: true,
		env: map[string]string{"RELIEF_LOG_LEVEL": "debug", "RELIEF_BANK_URL": bankURL, "RELIEF_DATA_KEY": vault.NewKeySpec("e2e-pii")}})
}

// startBank serves the sandbox bank in the test process on a loopback port
// until the test ends. Its own log is not the program's and is not scanned:
// the sandbox plays the bank, which does know account numbers.
func startBank(t *testing.T) (*banksim.Server, string) {
	t.Helper()
	srv, err := banksim.NewServer(banksim.Config{DataPath: filepath.Join(t.TempDir(), "bank.db"),
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = srv.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sandbox bank: %v", err)
		}
		_ = srv.Close()
	})
	return srv, "http://" + ln.Addr().String()
}

func (c *apiClient) login(email string) {
	c.t.Helper()
	c.must(http.StatusOK, "login "+email, "POST", "/api/v1/session", map[string]string{"email": email, "password": piiPassword})
}

// waitUntil polls cond every 100 ms until it holds or d passes.
func waitUntil(t *testing.T, what string, d time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (last: %s)", what, d, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestE2EPIIStaysOutOfTemporalAndLogs runs a claim through its whole life over
// the JSON API — signup, filing, review, approval, entitlement, a payout batch
// created and approved by two finance users, the transfer at the sandbox bank,
// paid — and then scans every workflow execution in the Temporal namespace (its
// ID, its search attributes and memo, its whole history) and the program's
// DEBUG log for the merchant's personal data: BRN, names, phone numbers,
// account number, email. Temporal keeps histories for the retention period
// and is not where personal data may live; the logs leave the system.
func TestE2EPIIStaysOutOfTemporalAndLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the whole program")
	}
	started := time.Now()
	bg := context.Background()
	needles := piiNeedles(t)
	bankSrv, bankURL := startBank(t) // before boot: it stops after the program
	if err := bankSrv.SetHolder(bg, "004", piiAccount, piiHolder); err != nil {
		t.Fatal(err)
	}
	p := bootPII(t, bankURL)

	// 1. The merchant signs up, logs in and files the claim.
	merchant := newAPIClient(t, p.url)
	merchant.must(http.StatusCreated, "signup", "POST", "/api/v1/merchants/signup",
		map[string]string{"email": piiEmail, "password": piiPassword, "name": piiUserName, "phone": piiUserPhone})
	merchant.login(piiEmail)
	claimBody := map[string]any{"program": models.DemoProgram, "brn": piiBRN, "business_name": piiBusinessName, "representative": piiRepresentative,
		"phone": piiPhone, "category": "food", "region": "대전", "claimed_loss": 3_500_000,
		"bank":  map[string]any{"bank_code": "004", "account_number": piiAccount, "holder": piiHolder},
		"goods": []map[string]any{{"sku": "A-1", "name": "사과", "unit_price": 25000, "quantity": 120, "perishable": true}}}
	b := merchant.must(http.StatusAccepted, "file claim", "POST", "/api/v1/claims", claimBody, "Idempotency-Key", "e2e-pii-1")
	var filed struct {
		ID        uuid.UUID `json:"id"`
		ReceiptNo string    `json:"receipt_no"`
	}
	if err := json.Unmarshal(b, &filed); err != nil || filed.ID == uuid.Nil {
		t.Fatalf("202 body %s (%v)", b, err)
	}
	id := filed.ID
	t.Cleanup(func() { // the claim workflow may still be waiting for a status change
		_ = ts.GetDefaultClient().TerminateWorkflow(context.Background(), claim.WorkflowID(id), "", "test over")
	})
	claimState := func() (string, int64, int64) {
		var st string
		var owed, paid int64
		if err := p.store.Pool.QueryRow(bg, `SELECT status, owed_total, paid_total FROM claims WHERE id = $1`, id).Scan(&st, &owed, &paid); err != nil {
			t.Fatal(err)
		}
		return st, owed, paid
	}
	waitUntil(t, "claim reaches in_review", 30*time.Second, func() (bool, string) {
		st, _, _ := claimState()
		return st == models.StatusInReview, st
	})

	// 2. A KPOST reviewer approves below the four-eyes threshold.
	if _, err := p.store.CreateUser(bg, models.NewUser{Email: "pii-reviewer@kpost.example.kr", Name: "이심사", Password: piiPassword,
		Roles: []string{models.RoleReviewer}, Agency: "KPOST"}); err != nil {
		t.Fatal(err)
	}
	prog, err := p.store.ProgramByCode(bg, models.DemoProgram)
	if err != nil {
		t.Fatal(err)
	}
	const amount = int64(3_000_000)
	if amount > prog.Rules.FourEyesThreshold {
		t.Fatalf("approval amount %d is above the four-eyes threshold %d", amount, prog.Rules.FourEyesThreshold)
	}
	reviewer := newAPIClient(t, p.url)
	reviewer.login("pii-reviewer@kpost.example.kr")
	reviewer.must(http.StatusOK, "approve", "POST", "/api/v1/claims/"+id.String()+"/decision",
		map[string]any{"action": "approve", "amount": amount, "reason": "피해 확인"})
	waitUntil(t, "claim is approved", 30*time.Second, func() (bool, string) {
		st, _, _ := claimState()
		return st == models.StatusApproved, st
	})

	// 3. The approval itself made the compensation owed, in its transaction.
	var owed int64
	{
		var st string
		st, owed, _ = claimState()
		var ents int64
		if err := p.store.Pool.QueryRow(bg, `SELECT count(*) FROM entitlements WHERE claim_id = $1 AND instrument = 'compensation' AND amount = $2`, id, amount).Scan(&ents); err != nil {
			t.Fatal(err)
		}
		if owed != amount || ents != 1 {
			t.Fatalf("after approval: status %s, owed %d, %d compensation entitlements of %d; want owed %d from one", st, owed, ents, amount, amount)
		}
	}

	// 4. One finance user creates the payout batch, another approves it; the
	// worker checks the holder and transfers through the sandbox bank.
	creatorU, approverU, err := payouttest.FinanceUsers(bg, p.store, "pii", "KPOST", piiPassword)
	if err != nil {
		t.Fatal(err)
	}
	creator, approver := newAPIClient(t, p.url), newAPIClient(t, p.url)
	creator.login(creatorU.Email)
	approver.login(approverU.Email)
	b = creator.must(http.StatusCreated, "create payout batch", "POST", "/api/v1/payout-batches",
		map[string]string{"program": models.DemoProgram}, "Idempotency-Key", "e2e-pii-batch")
	var created struct {
		ID    uuid.UUID `json:"id"`
		Lines int       `json:"lines"`
		Total int64     `json:"total"`
	}
	if err := json.Unmarshal(b, &created); err != nil || created.ID == uuid.Nil || created.Lines < 1 || created.Total != owed {
		t.Fatalf("201 body %s (%v): want %d owed", b, err, owed)
	}
	batchID := created.ID.String()
	type batchView struct {
		Status    string `json:"status"`
		PaidTotal int64  `json:"paid_total"`
		Lines     []struct {
			Status        string `json:"status"`
			FailureReason string `json:"failure_reason"`
		} `json:"lines"`
	}
	batch := func() batchView {
		var v batchView
		if err := json.Unmarshal(creator.must(http.StatusOK, "get batch", "GET", "/api/v1/payout-batches/"+batchID, nil), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	waitUntil(t, "batch passes the holder check", time.Minute, func() (bool, string) {
		v := batch()
		return v.Status == models.BatchAwaitingApproval, fmt.Sprintf("%+v", v)
	})
	for _, l := range batch().Lines {
		if l.Status == models.LineFailed {
			t.Fatalf("a line failed the holder check: %+v", batch())
		}
	}
	// The database says awaiting_approval as soon as the holder-check activity
	// commits, a moment before the batch workflow has taken that result in;
	// an approval in between is refused 409 precheck_running ("approve in a
	// moment"), so the approver tries again, as the message says.
	for attempt := 1; ; attempt++ {
		st, b := approver.call("POST", "/api/v1/payout-batches/"+batchID+"/approve", nil, "Idempotency-Key", fmt.Sprintf("e2e-pii-approve-%d", attempt))
		if st == http.StatusAccepted {
			if attempt > 1 {
				t.Logf("the batch approval was refused precheck_running %d time(s) before it was accepted", attempt-1)
			}
			break
		}
		if st != http.StatusConflict || !bytes.Contains(b, []byte(`"precheck_running"`)) || attempt == 50 {
			t.Fatalf("approve batch (attempt %d): status %d, want 202: %s", attempt, st, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitUntil(t, "batch completes and the claim is paid (then closed)", time.Minute, func() (bool, string) {
		v := batch()
		st, _, paid := claimState()
		return v.Status == models.BatchCompleted && (st == models.StatusPaid || st == models.StatusClosed) && paid == owed,
			fmt.Sprintf("batch %+v; claim %s, paid %d", v, st, paid)
	})
	t.Logf("lifecycle (boot → paid and closed) done in %v", time.Since(started).Round(time.Millisecond))

	// 5. The scan.
	rep := scanTemporal(t, needles, map[string]bool{claim.WorkflowID(id): false, payout.WorkflowID(created.ID): false})
	logText := logSnapshot(p.logs)
	logLines := strings.Count(logText, "\n")
	if logLines == 0 {
		t.Fatal("the program logged nothing: the log scan would be vacuous")
	}
	for what, s := range needles {
		if i := strings.Index(logText, s); i >= 0 {
			start := strings.LastIndexByte(logText[:i], '\n') + 1
			end := strings.IndexByte(logText[i:], '\n')
			if end < 0 {
				end = len(logText) - i
			}
			t.Errorf("the program log contains the %s %q: %s", what, s, logText[start:i+end])
		}
	}
	t.Logf("scanned %d workflow executions (%d payout), %d history events (%d payloads, %d bytes of payload data), and %d log lines (%d bytes) for %d personal strings; %v in all",
		rep.workflows, rep.payoutWorkflows, rep.events, rep.payloads, rep.payloadBytes, logLines, len(logText), len(needles), time.Since(started).Round(time.Millisecond))
}

// logSnapshot is everything logged so far.
func logSnapshot(b *syncBuffer) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type scanReport struct {
	workflows, payoutWorkflows, events, payloads, payloadBytes int
}

// scanTemporal lists every workflow execution in the namespace and checks its
// ID, its description (search attributes, memo, pending activities) and its
// whole history, as protojson and as raw payload bytes, for the needles. The
// workflow IDs in mustSee must be among them, each with a non-empty history.
func scanTemporal(t *testing.T, needles map[string]string, mustSee map[string]bool) scanReport {
	t.Helper()
	ctx := context.Background()
	c := ts.GetDefaultClient()
	check := func(where string, data []byte) {
		t.Helper()
		for what, s := range needles {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s contains the %s %q", where, what, s)
			}
		}
	}
	list := func() []*workflowservice.ListWorkflowExecutionsResponse {
		var pages []*workflowservice.ListWorkflowExecutionsResponse
		var token []byte
		for {
			resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
				Namespace: ts.GetDefaultNamespace(), PageSize: 100, NextPageToken: token})
			if err != nil {
				t.Fatalf("list workflows: %v", err)
			}
			pages = append(pages, resp)
			if token = resp.NextPageToken; len(token) == 0 {
				return pages
			}
		}
	}
	// Visibility is eventually consistent: wait until the list has the
	// workflows the lifecycle must have started.
	var pages []*workflowservice.ListWorkflowExecutionsResponse
	waitUntil(t, "visibility lists the claim and payout workflows", 30*time.Second, func() (bool, string) {
		pages = list()
		seen := map[string]bool{}
		for _, pg := range pages {
			for _, e := range pg.Executions {
				seen[e.GetExecution().GetWorkflowId()] = true
			}
		}
		var missing []string
		for id := range mustSee {
			if !seen[id] {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0, fmt.Sprintf("missing %v", missing)
	})

	var rep scanReport
	mo := protojson.MarshalOptions{UseProtoNames: true}
	for _, pg := range pages {
		for _, e := range pg.Executions {
			wid, rid := e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()
			where := fmt.Sprintf("workflow %s (%s)", wid, e.GetType().GetName())
			rep.workflows++
			if strings.HasPrefix(wid, "payout-") {
				rep.payoutWorkflows++
			}
			check(where+": workflow ID", []byte(wid))
			info, err := mo.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			check(where+": list entry (search attributes, memo)", info)
			desc, err := c.DescribeWorkflowExecution(ctx, wid, rid)
			if err != nil {
				t.Fatalf("describe %s: %v", wid, err)
			}
			dj, err := mo.Marshal(desc)
			if err != nil {
				t.Fatal(err)
			}
			check(where+": description (search attributes, memo, pending activities)", dj)
			n, np, nb := 0, 0, 0
			eachPayload(desc.ProtoReflect(), func(p *commonpb.Payload) {
				np++
				nb += len(p.GetData())
				check(where+": description payload data", p.GetData())
			})
			it := c.GetWorkflowHistory(ctx, wid, rid, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					t.Fatalf("history of %s: %v", wid, err)
				}
				n++
				ew := fmt.Sprintf("%s: event %d (%s)", where, ev.GetEventId(), ev.GetEventType())
				ej, err := mo.Marshal(ev)
				if err != nil {
					t.Fatal(err)
				}
				check(ew, ej)
				// The wire form carries every string and payload byte verbatim.
				raw, err := proto.Marshal(ev)
				if err != nil {
					t.Fatal(err)
				}
				check(ew+" (wire form)", raw)
				eachPayload(ev.ProtoReflect(), func(p *commonpb.Payload) {
					np++
					nb += len(p.GetData())
					check(ew+": payload data", p.GetData())
				})
			}
			if _, ok := mustSee[wid]; ok {
				if n == 0 {
					t.Errorf("%s: empty history", where)
				}
				mustSee[wid] = true
			}
			rep.events += n
			rep.payloads += np
			rep.payloadBytes += nb
		}
	}
	for wid, seen := range mustSee {
		if !seen {
			t.Errorf("the scan did not see workflow %s", wid)
		}
	}
	if rep.payoutWorkflows == 0 {
		t.Error("the scan saw no payout workflow")
	}
	if rep.payloads == 0 {
		t.Error("the scan saw no payloads: the history scan would be vacuous")
	}
	return rep
}

var payloadName = (&commonpb.Payload{}).ProtoReflect().Descriptor().FullName()

// eachPayload calls f for every common.v1.Payload in m, however deep: in
// messages, lists and map values (search attributes, memo, headers).
func eachPayload(m protoreflect.Message, f func(*commonpb.Payload)) {
	if m.Descriptor().FullName() == payloadName {
		if p, ok := m.Interface().(*commonpb.Payload); ok {
			f(p)
		}
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					eachPayload(mv.Message(), f)
					return true
				})
			}
		case fd.IsList():
			if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					eachPayload(l.Get(i).Message(), f)
				}
			}
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			eachPayload(v.Message(), f)
		}
		return true
	})
}
