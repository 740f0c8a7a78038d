package payout

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows/payout/bank"
)

// Activities are the payout workflow's side effects, each idempotent: lines
// carry their outcome in PostgreSQL, so a retried page skips finished lines and
// looks unfinished ones up at the bank before sending anything.
type Activities struct {
	Store *models.Store
	Bank  bank.Bank // nil: no bank configured; bank work waits for a worker that has one
	Log   *slog.Logger
}

func (a *Activities) log() *slog.Logger {
	if a.Log == nil {
		return slog.Default()
	}
	return a.Log
}

// domainError turns the store's coded refusals into non-retryable
// application errors whose type is the API code.
func domainError(err error) error {
	var e *models.Error
	if errors.As(err, &e) && e.Kind != models.EUNAVAILABLE && e.Kind != models.EINTERNAL {
		return temporal.NewNonRetryableApplicationError(e.Message, e.Code, nil)
	}
	return err
}

// PayoutLoadBatch reads the batch's state.
func (a *Activities) PayoutLoadBatch(ctx context.Context, batchID uuid.UUID) (BatchInfo, error) {
	b, err := a.Store.PayoutBatchByID(ctx, batchID)
	if err != nil {
		return BatchInfo{}, domainError(err)
	}
	return BatchInfo{Status: b.Status, Channel: b.Channel, LineCount: b.LineCount, CreatedBy: b.CreatedBy, ApprovedBy: b.ApprovedBy}, nil
}

// PayoutApproveBatch records the approval (the database enforces segregation
// of duties and approving once).
func (a *Activities) PayoutApproveBatch(ctx context.Context, in ApproveInput) (ApproveResult, error) {
	b, err := a.Store.ApprovePayoutBatch(ctx, in.BatchID, in.ApproverID, in.RequestID)
	if err != nil {
		return ApproveResult{}, domainError(err)
	}
	res := ApproveResult{Status: b.Status}
	if b.ApprovedCount != nil {
		res.ApprovedCount, res.ApprovedTotal = *b.ApprovedCount, *b.ApprovedTotal
	}
	return res, nil
}

// PayoutFinishPrecheck ends the holder check and returns the batch's status.
func (a *Activities) PayoutFinishPrecheck(ctx context.Context, batchID uuid.UUID) (string, error) {
	return a.Store.FinishPayoutPrecheck(ctx, batchID)
}

// PayoutMarkSent hands a file-channel batch's approved lines to the bank.
func (a *Activities) PayoutMarkSent(ctx context.Context, batchID uuid.UUID) error {
	return a.Store.MarkBatchSent(ctx, batchID)
}

// PayoutOutstanding counts approved lines without an outcome.
func (a *Activities) PayoutOutstanding(ctx context.Context, batchID uuid.UUID) (int, error) {
	return a.Store.PayoutProgress(ctx, batchID)
}

var errNoBank = temporal.NewApplicationError("no bank adapter is configured on this worker (RELIEF_BANK_URL)", ErrTypeNoBank)

// lineOutcome is what working one line came to.
type lineOutcome int

const (
	outcomeUnknown lineOutcome = iota // ask the bank again later
	outcomeOK                         // checked / paid
	outcomeFailed                     // failed: owed again
)

// eachLine works lines with at most n at once, heartbeating the count done
// from this goroutine, and returns the counts.
func eachLine(ctx context.Context, lines []models.PayoutWorkLine, n int, work func(models.PayoutWorkLine) lineOutcome) (ok, failed, unknown int) {
	if n <= 0 {
		n = 1
	}
	jobs := make(chan models.PayoutWorkLine)
	results := make(chan lineOutcome)
	var wg sync.WaitGroup
	for i := 0; i < min(n, len(lines)); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range jobs {
				results <- work(l)
			}
		}()
	}
	go func() {
		defer close(jobs)
		for _, l := range lines {
			select {
			case jobs <- l:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	for r := range results {
		switch r {
		case outcomeOK:
			ok++
		case outcomeFailed:
			failed++
		default:
			unknown++
		}
		activity.RecordHeartbeat(ctx, ok+failed)
	}
	unknown += len(lines) - ok - failed - unknown // never handed out (cancelled)
	return ok, failed, unknown
}

// PayoutPrecheckPage asks the bank who holds each unchecked line's account
// (예금주 조회). A holder other than the one on the claim, a closed account or
// an unserved bank fails the line before approval and returns its
// entitlements to owed; an unanswered inquiry is asked again on retry.
func (a *Activities) PayoutPrecheckPage(ctx context.Context, in PageInput) (PageResult, error) {
	if a.Bank == nil {
		return PageResult{}, errNoBank
	}
	lines, err := a.Store.PayoutWorkLines(ctx, in.BatchID, in.From, in.To, false)
	if err != nil {
		return PageResult{}, err
	}
	var mu sync.Mutex
	var passed []uuid.UUID
	var firstErr error
	var told notified
	ok, failed, unknown := eachLine(ctx, lines, in.Concurrency, func(l models.PayoutWorkLine) lineOutcome {
		holder, err := a.Bank.InquireHolder(ctx, l.BankCode, l.Account)
		for attempt := 1; attempt < sendAttempts && err != nil && !bank.IsPermanent(err); attempt++ {
			if !sleep(ctx, time.Duration(100<<attempt)*time.Millisecond) {
				return outcomeUnknown
			}
			holder, err = a.Bank.InquireHolder(ctx, l.BankCode, l.Account) // no side effects: simply ask again
		}
		var code string
		switch {
		case err == nil && SameHolder(holder, l.Holder):
			mu.Lock()
			passed = append(passed, l.ID)
			mu.Unlock()
			return outcomeOK
		case err == nil:
			code = bank.CodeHolderMismatch
		case bank.IsPermanent(err):
			var p *bank.PermanentError
			errors.As(err, &p)
			code = p.Code
		default:
			return outcomeUnknown
		}
		o, err := a.Store.FailPayoutLine(ctx, l.ID, code, FailureReason(code, ""), "holder_check")
		if err != nil {
			mu.Lock()
			firstErr = errors.Join(firstErr, err)
			mu.Unlock()
			return outcomeUnknown
		}
		told.add(a.notify(ctx, o))
		return outcomeFailed
	})
	if err := a.Store.MarkPayoutLinesChecked(ctx, passed); err != nil {
		return PageResult{}, err
	}
	if err := told.flush(ctx, a.Store); err != nil {
		return PageResult{}, err
	}
	if ctx.Err() != nil {
		return PageResult{}, ctx.Err()
	}
	if firstErr != nil {
		return PageResult{}, firstErr
	}
	if unknown > 0 {
		return PageResult{}, temporal.NewApplicationError("holder inquiry unanswered; asking again", ErrTypeOutcomeUnknown, unknown)
	}
	return PageResult{Checked: ok + failed, Failed: failed}, nil
}

// sendAttempts is how often a page tries an ambiguous line before leaving it
// to the activity's retry (which looks the key up again, later).
const sendAttempts = 3

// PayoutTransferPage pays the page's approved lines: each is marked sending,
// its claim paying, then bank.TransferOnce with the line's key (lookup first,
// send only if the bank never saw the key); a success is settled in the
// ledger, a definite refusal fails the line. Lines whose outcome stays unknown
// make the activity fail retryably, so they are looked up again later.
func (a *Activities) PayoutTransferPage(ctx context.Context, in PageInput) (PageResult, error) {
	if a.Bank == nil {
		return PageResult{}, errNoBank
	}
	lines, err := a.Store.PayoutWorkLines(ctx, in.BatchID, in.From, in.To, true)
	if err != nil || len(lines) == 0 {
		return PageResult{}, err
	}
	ids := make([]uuid.UUID, len(lines))
	for i, l := range lines {
		ids[i] = l.ID
	}
	if err := a.Store.MarkPayoutLinesSending(ctx, ids); err != nil {
		return PageResult{}, err
	}
	var mu sync.Mutex
	var firstErr error
	keep := func(err error) lineOutcome {
		mu.Lock()
		firstErr = errors.Join(firstErr, err)
		mu.Unlock()
		return outcomeUnknown
	}
	settle, stop := a.settler(ctx, in.Concurrency)
	defer stop()
	var told notified
	paid, failed, unknown := eachLine(ctx, lines, in.Concurrency, func(l models.PayoutWorkLine) lineOutcome {
		if err := a.Store.SetClaimStatus(ctx, l.ClaimID, "payout:"+l.ID.String()+":paying", models.StatusPaying, "system",
			payingNote(l.Amount, l.BankCode)); err != nil {
			return keep(err)
		}
		req := bank.TransferRequest{Key: l.TransferKey, BankCode: l.BankCode, Account: l.Account, Holder: l.Holder,
			Amount: l.Amount, Memo: models.BankFileMemo}
		for attempt := 0; attempt < sendAttempts; attempt++ {
			if attempt > 0 && !sleep(ctx, time.Duration(100<<attempt)*time.Millisecond) {
				return outcomeUnknown
			}
			res, err := bank.TransferOnce(ctx, a.Bank, req)
			switch {
			case err == nil:
				o, err := settle(l.ID, res.BankRef)
				if err != nil {
					return keep(err)
				}
				told.add(a.notify(ctx, o))
				return outcomeOK
			case bank.IsPermanent(err) && !errors.Is(err, bank.ErrKeyConflict):
				var p *bank.PermanentError
				errors.As(err, &p)
				o, err := a.Store.FailPayoutLine(ctx, l.ID, p.Code, FailureReason(p.Code, res.FailureMessage), "api")
				if err != nil {
					return keep(err)
				}
				told.add(a.notify(ctx, o))
				return outcomeFailed
			}
			// Ambiguous (or a key conflict: another request with this key is
			// at the bank right now): the lookup on the next try tells.
			a.log().Debug("payout transfer outcome unknown", "line", l.ID, "attempt", attempt+1, "err", err.Error())
		}
		return outcomeUnknown
	})
	if err := told.flush(ctx, a.Store); err != nil {
		return PageResult{}, err
	}
	if ctx.Err() != nil {
		return PageResult{}, ctx.Err()
	}
	if firstErr != nil {
		return PageResult{}, firstErr
	}
	if unknown > 0 {
		return PageResult{}, temporal.NewApplicationError("transfer outcome unknown; looking the keys up again", ErrTypeOutcomeUnknown, unknown)
	}
	return PageResult{Paid: paid, Failed: failed}, nil
}

// maxSettleGroup bounds how many settlements share one transaction.
const maxSettleGroup = 64

type settleReq struct {
	s     models.Settlement
	reply chan settleRes
}

type settleRes struct {
	o   *models.PayoutOutcome
	err error
}

// settler records successful transfers in groups: whatever lines finished
// while the previous group's transaction ran go into the next one, so the
// program's clearing account (a row every payment updates) is locked once
// per group, not once per line. A group that fails is retried line by line,
// so one bad line never holds up the others. settle blocks until its line
// is recorded; stop ends the settler once no settle call is running.
func (a *Activities) settler(ctx context.Context, queue int) (settle func(uuid.UUID, string) (*models.PayoutOutcome, error), stop func()) {
	reqs := make(chan settleReq, max(queue, 1))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for first := range reqs {
			group := []settleReq{first}
		drain:
			for len(group) < maxSettleGroup {
				select {
				case r, ok := <-reqs:
					if !ok {
						break drain
					}
					group = append(group, r)
				default:
					break drain
				}
			}
			batch := make([]models.Settlement, len(group))
			for i, r := range group {
				batch[i] = r.s
			}
			outs, err := a.Store.SettlePayoutLines(ctx, batch, "api")
			for i, r := range group {
				if err == nil {
					r.reply <- settleRes{o: outs[i]}
					continue
				}
				o, err := a.Store.SettlePayoutLine(ctx, r.s.LineID, r.s.BankRef, "api")
				r.reply <- settleRes{o: o, err: err}
			}
		}
	}()
	settle = func(line uuid.UUID, ref string) (*models.PayoutOutcome, error) {
		reply := make(chan settleRes, 1)
		reqs <- settleReq{s: models.Settlement{LineID: line, BankRef: ref}, reply: reply}
		r := <-reply
		return r.o, r.err
	}
	return settle, func() { close(reqs); <-done }
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// PayoutFinishBatch writes the outcome of every line not on its claim's
// timeline yet (lines settled by a result file, or whose note a crash
// interrupted), then completes the batch.
func (a *Activities) PayoutFinishBatch(ctx context.Context, batchID uuid.UUID) (Result, error) {
	for {
		notices, err := a.Store.PayoutLinesToNotify(ctx, batchID, 500)
		if err != nil {
			return Result{}, err
		}
		if len(notices) == 0 {
			break
		}
		ids := make([]uuid.UUID, len(notices))
		for i, n := range notices {
			if err := a.notifyOnce(ctx, &n.PayoutOutcome); err != nil {
				return Result{}, err
			}
			ids[i] = n.LineID
		}
		if err := a.Store.MarkPayoutLinesNotified(ctx, ids); err != nil {
			return Result{}, err
		}
		activity.RecordHeartbeat(ctx)
	}
	b, err := a.Store.PayoutBatchByID(ctx, batchID)
	if err != nil {
		return Result{}, domainError(err)
	}
	if b.Status == models.BatchTransferring {
		done, err := a.Store.CompletePayoutBatch(ctx, batchID)
		if err != nil {
			return Result{}, err
		}
		if !done {
			return Result{}, temporal.NewApplicationError("lines still at the bank", ErrTypeOutcomeUnknown)
		}
		b.Status = models.BatchCompleted
	}
	return Result{Status: b.Status, Paid: b.Counts[models.LinePaid], Failed: b.Counts[models.LineFailed],
		PaidTotal: b.PaidTotal, FailedTotal: b.FailedTotal}, nil
}

// notify writes a line's outcome on its claim's timeline and returns the
// line's id, or uuid.Nil when there was nothing to write or the write failed
// (PayoutFinishBatch's sweep writes it later).
func (a *Activities) notify(ctx context.Context, o *models.PayoutOutcome) uuid.UUID {
	if o == nil || !o.Changed {
		return uuid.Nil
	}
	if err := a.notifyOnce(ctx, o); err != nil {
		a.log().Warn("payout: claim timeline not written yet", "line", o.LineID, "err", err.Error())
		return uuid.Nil
	}
	return o.LineID
}

// notified collects the lines whose claims were told, to mark them in one
// statement: a mark lost to a crash only means telling again, which the
// timeline's event keys make a no-op.
type notified struct {
	mu  sync.Mutex
	ids []uuid.UUID
}

func (n *notified) add(id uuid.UUID) {
	if id == uuid.Nil {
		return
	}
	n.mu.Lock()
	n.ids = append(n.ids, id)
	n.mu.Unlock()
}

func (n *notified) flush(ctx context.Context, s *models.Store) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	err := s.MarkPayoutLinesNotified(context.WithoutCancel(ctx), n.ids)
	n.ids = nil
	return err
}

// notifyOnce moves the claim and writes the merchant's note, once per line
// (event keys).
func (a *Activities) notifyOnce(ctx context.Context, o *models.PayoutOutcome) error {
	key := "payout:" + o.LineID.String()
	switch o.Status {
	case models.LinePaid:
		if o.PaidTotal >= o.OwedTotal {
			if err := a.Store.SetClaimStatus(ctx, o.ClaimID, key+":paid", models.StatusPaid, "system", paidNote(o.Amount, o.BankCode)); err != nil {
				return err
			}
			if err := a.Store.SetClaimStatus(ctx, o.ClaimID, key+":closed", models.StatusClosed, "system", closedNote); err != nil {
				return err
			}
		} else if err := a.Store.SetClaimStatus(ctx, o.ClaimID, key+":paid", models.StatusEntitled, "system",
			partlyPaidNote(o.Amount, o.BankCode, o.OwedTotal-o.PaidTotal)); err != nil {
			return err
		}
	case models.LineFailed:
		status, err := a.Store.ClaimStatusOf(ctx, o.ClaimID)
		if err != nil {
			return err
		}
		if status == models.StatusPaying {
			status = models.StatusEntitled // not paying any more: owed, for the next batch
		}
		if err := a.Store.SetClaimStatus(ctx, o.ClaimID, key+":failed", status, "system", failedNote(o.Amount, o.Code, o.Reason)); err != nil {
			return err
		}
	}
	return nil
}

// SameHolder compares holder names the way banks do: ignoring spaces and
// letter case, and treating the spellings of 주식회사 alike.
func SameHolder(a, b string) bool {
	norm := func(s string) string {
		s = strings.NewReplacer("㈜", "(주)", "주식회사", "(주)", "（주）", "(주)").Replace(s)
		return strings.ToLower(strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) {
				return -1
			}
			return r
		}, s))
	}
	return norm(a) != "" && norm(a) == norm(b)
}
