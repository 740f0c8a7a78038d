package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/relief/relief/cmd/relief/banksim"
	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows/payout/bank"
	"github.com/relief/relief/workflows/payout/payouttest"
)

// drillWorkerKillPayout: owed entitlements (seeded with payouttest, as the
// payout tests do) are paid in one batch driven through the public API: a
// finance user creates it, a second finance user approves it. The sandbox
// bank adds latency, loses some responses after committing the transfer and
// refuses a few calls. A quarter of the way through the transfers the worker
// is killed with SIGKILL and started again. Afterwards the bank holds exactly
// one debit per payout, every ledger transaction sums to zero, and the amount
// paid is the amount owed.
func drillWorkerKillPayout(ctx context.Context, e *env, o *options, r *result) {
	n := o.payouts
	tag := runTag()
	faults := banksim.Faults{Seed: 7, LatencyMS: 100, LatencyJitterMS: 100, LoseAfterCommitRate: 0.1, FailBeforeCommitRate: 0.02}
	if err := e.bankFaults(ctx, faults); err != nil {
		r.fail("set bank faults: %v", err)
		return
	}
	defer func() { _ = e.bankFaults(context.WithoutCancel(ctx), banksim.Faults{}) }()
	statsBefore, err := e.bankStats(ctx)
	if err != nil {
		r.fail("bank stats: %v", err)
		return
	}

	seeded, err := payouttest.Seed(ctx, e.store, payouttest.Options{Claims: n, Prefix: "fd" + tag, BRNSeed: 5_000_000,
		Holder: func(_ int, b, a string) string { return banksim.DefaultHolder(b, a) }})
	if err != nil {
		r.fail("seed owed entitlements: %v", err)
		return
	}
	creatorU, approverU, err := payouttest.FinanceUsers(ctx, e.store, "fd"+tag, "KPOST", drillPassword)
	if err != nil {
		r.fail("finance users: %v", err)
		return
	}
	creator, err := login(ctx, e.http, e.base, creatorU.Email, drillPassword)
	if err != nil {
		r.fail("%v", err)
		return
	}
	approver, err := login(ctx, e.http, e.base, approverU.Email, drillPassword)
	if err != nil {
		r.fail("%v", err)
		return
	}
	r.detail("seeded %d owed payouts totalling %d won; bank faults: latency %d+%dms, lose after commit %.0f%%, fail before commit %.0f%%",
		n, seeded.Total, faults.LatencyMS, faults.LatencyJitterMS, faults.LoseAfterCommitRate*100, faults.FailBeforeCommitRate*100)

	st, data, err := callRetrying(ctx, e.http, http.MethodPost, e.base+"/api/v1/payout-batches", creator.cookie, newKey(),
		models.PayoutBatchInput{Program: models.DemoProgram, Instrument: models.InstrumentCompensation})
	if err != nil || st != http.StatusCreated {
		r.fail("create batch: HTTP %d %v: %s", st, err, snippet(data))
		return
	}
	var created models.PayoutBatchCreated
	if err := json.Unmarshal(data, &created); err != nil {
		r.fail("create batch: %v", err)
		return
	}
	r.detail("batch %s: %d lines, %d won", created.ID, created.Lines, created.Total)
	if created.Lines != n || created.Total != seeded.Total {
		r.fail("the batch holds %d lines / %d won, want the %d seeded payouts / %d won (something else is owed)", created.Lines, created.Total, n, seeded.Total)
		return
	}
	if _, err := e.waitBatch(ctx, created.ID, 3*time.Minute, func(b *models.PayoutBatch) bool { return b.Status == models.BatchAwaitingApproval }); err != nil {
		r.fail("holder check: %v", err)
		return
	}
	st, data, err = callRetrying(ctx, e.http, http.MethodPost, e.base+"/api/v1/payout-batches/"+created.ID.String()+"/approve", approver.cookie, newKey(), nil)
	if err != nil || st != http.StatusAccepted {
		r.fail("approve batch: HTTP %d %v: %s", st, err, snippet(data))
		return
	}
	approvedAt := time.Now()

	// Kill the worker once a quarter of the lines are paid.
	b, err := e.waitBatch(ctx, created.ID, 3*time.Minute, func(b *models.PayoutBatch) bool {
		return b.Counts[models.LinePaid] >= n/4 || b.Status == models.BatchCompleted
	})
	if err != nil {
		r.fail("transfers: %v", err)
		return
	}
	pid := e.worker.pid()
	e.worker.kill9()
	paidAtKill := b.Counts[models.LinePaid]
	if after, err := e.store.PayoutBatchByID(ctx, created.ID); err == nil {
		paidAtKill = after.Counts[models.LinePaid]
	}
	r.detail("kill -9 relief worker (pid %d) %.1fs after approval with %d/%d lines paid", pid, time.Since(approvedAt).Seconds(), paidAtKill, n)
	if paidAtKill >= n {
		r.fail("the batch finished before the worker was killed: no proof (use more -payouts)")
	}
	_ = sleepCtx(ctx, 2*time.Second)
	if err := e.worker.start(); err != nil {
		r.fail("restart worker: %v", err)
		return
	}
	restarted := time.Now()
	b, err = e.waitBatch(ctx, created.ID, o.payoutWait, func(b *models.PayoutBatch) bool { return b.Status == models.BatchCompleted })
	if err != nil {
		r.fail("batch after the restart: %v", err)
		return
	}
	r.detail("batch completed %.1fs after the worker restart: paid %d (%d won), failed %d (%d won)",
		time.Since(restarted).Seconds(), b.Counts[models.LinePaid], b.PaidTotal, b.Counts[models.LineFailed], b.FailedTotal)

	// The bank: exactly one debit per payout.
	_ = e.bankFaults(ctx, banksim.Faults{})
	statsAfter, err := e.bankStats(ctx)
	if err != nil {
		r.fail("bank stats: %v", err)
		return
	}
	debits := statsAfter.Debits - statsBefore.Debits
	dupDebits := statsAfter.DuplicateDebits - statsBefore.DuplicateDebits
	debited := statsAfter.DebitedAmount - statsBefore.DebitedAmount
	lostReplies := statsAfter.InjectedLostReplies - statsBefore.InjectedLostReplies
	oneEach, lookupErrs := e.linesDebitedOnce(ctx, created.ID)
	r.detail("bank: %d debits (%d duplicate) totalling %d won; %d of %d payout keys found as one succeeded transfer of the line's amount; %d replies lost, %d calls refused (injected)",
		debits, dupDebits, debited, oneEach, n, lostReplies, statsAfter.InjectedFailures-statsBefore.InjectedFailures)
	if lookupErrs != nil {
		r.fail("bank lookups: %v", lookupErrs)
	}
	if debits != int64(n) || dupDebits != 0 || debited != seeded.Total || oneEach != n {
		r.fail("bank: %d debits (%d duplicate) of %d won, %d/%d payouts debited once; want exactly %d debits of %d won", debits, dupDebits, debited, oneEach, n, n, seeded.Total)
	}

	// The ledger and the claims.
	var unbalancedTx, payments, paidClaims int
	var ledgerSum int64
	err = e.store.Pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM (SELECT tx_id FROM ledger_lines GROUP BY tx_id HAVING sum(amount) <> 0) u),
			(SELECT coalesce(sum(amount), 0) FROM ledger_lines),
			(SELECT count(*) FROM ledger_transactions t WHERE t.kind = 'payment' AND EXISTS (
				SELECT 1 FROM ledger_lines l JOIN ledger_accounts a ON a.id = l.account_id WHERE l.tx_id = t.id AND a.claim_id = ANY($1))),
			(SELECT count(*) FROM claims WHERE id = ANY($1) AND paid_total = owed_total AND owed_total > 0)`,
		seeded.ClaimIDs).Scan(&unbalancedTx, &ledgerSum, &payments, &paidClaims)
	if err != nil {
		r.fail("ledger query: %v", err)
		return
	}
	sum, err := e.store.LedgerSummary(ctx, models.DemoProgram)
	if err != nil {
		r.fail("ledger summary: %v", err)
		return
	}
	r.detail("ledger: %d unbalanced transactions, all lines sum to %d, program total %d; %d payment transactions; %d/%d claims paid in full; batch paid %d of %d owed",
		unbalancedTx, ledgerSum, sum.Total, payments, paidClaims, n, b.PaidTotal, seeded.Total)
	if unbalancedTx != 0 || ledgerSum != 0 || sum.Total != 0 {
		r.fail("ledger does not balance: %d unbalanced transactions, sum %d, program total %d", unbalancedTx, ledgerSum, sum.Total)
	}
	if b.PaidTotal != seeded.Total || b.Counts[models.LinePaid] != n || paidClaims != n || payments != n {
		r.fail("paid %d won in %d lines (%d payments, %d claims in full), owed %d won in %d", b.PaidTotal, b.Counts[models.LinePaid], payments, paidClaims, seeded.Total, n)
	}
	r.counts = fmt.Sprintf("payouts=%d paid_at_kill=%d debits=%d dup_debits=%d once_each=%d/%d paid=%d owed=%d unbalanced_tx=%d",
		n, paidAtKill, debits, dupDebits, oneEach, n, b.PaidTotal, seeded.Total, unbalancedTx)
}

// waitBatch polls the batch until cond holds.
func (e *env) waitBatch(ctx context.Context, id uuid.UUID, timeout time.Duration, cond func(*models.PayoutBatch) bool) (*models.PayoutBatch, error) {
	deadline := time.Now().Add(timeout)
	var last *models.PayoutBatch
	for {
		b, err := e.store.PayoutBatchByID(ctx, id)
		if err == nil {
			last = b
			if cond(b) {
				return b, nil
			}
		}
		if time.Now().After(deadline) {
			if last != nil {
				return last, fmt.Errorf("timed out after %v: batch %s, lines %v", timeout, last.Status, last.Counts)
			}
			return nil, fmt.Errorf("timed out after %v: %v", timeout, err)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return last, err
		}
	}
}

func (e *env) bankStats(ctx context.Context) (banksim.Stats, error) {
	var s banksim.Stats
	st, data, _, err := apiCall(ctx, e.http, http.MethodGet, e.bankURL+"/v1/stats", "", "", nil)
	if err != nil {
		return s, err
	}
	if st != http.StatusOK {
		return s, fmt.Errorf("GET /v1/stats: HTTP %d: %s", st, snippet(data))
	}
	return s, json.Unmarshal(data, &s)
}

// linesDebitedOnce looks every line's transfer key up at the bank and counts
// the lines whose key names one succeeded transfer (the bank's idempotency
// keys are unique, and the debit count says there is one debit per key).
func (e *env) linesDebitedOnce(ctx context.Context, batch uuid.UUID) (int, error) {
	rows, err := e.store.Pool.Query(ctx, `SELECT transfer_key FROM payout_lines WHERE batch_id = $1`, batch)
	if err != nil {
		return 0, err
	}
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return 0, err
		}
		keys = append(keys, k)
	}
	rows.Close()
	var ok atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, k := range keys {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			st, data, _, err := apiCall(ctx, e.http, http.MethodGet, e.bankURL+"/v1/transfers/"+url.PathEscape(k), "", "", nil)
			var res bank.TransferResult
			if err == nil && st == http.StatusOK && json.Unmarshal(data, &res) == nil && res.Status == bank.StatusSucceeded {
				ok.Add(1)
				return
			}
			mu.Lock()
			if firstErr == nil {
				firstErr = fmt.Errorf("transfer %s: HTTP %d %v: %s", k, st, err, snippet(data))
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return int(ok.Load()), firstErr
}
