package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows/claim"
)

// claimCheck is what PostgreSQL and Temporal say about the claims of a load.
type claimCheck struct {
	acked         int // claims the client holds a 202 for
	lost          int // acknowledged but not in PostgreSQL
	idMismatch    int // stored under another id than the 202 named
	storedUnacked int // stored although the client gave up or was refused (allowed)
	stored        int // claims in PostgreSQL with the load's BRNs
	dupBRN        int // BRNs stored more than once
	dispatched    int // stored claims whose outbox row is marked
	reached       int // stored claims whose workflow recorded "verifying"
	inTemporal    int // stored claims whose workflow Temporal knows
	waited        time.Duration
}

func (c claimCheck) ok() bool {
	return c.lost == 0 && c.idMismatch == 0 && c.dupBRN == 0 &&
		c.dispatched == c.stored && c.reached == c.stored && c.inTemporal == c.stored
}

func (c claimCheck) String() string {
	return fmt.Sprintf("acked=%d stored=%d lost=%d id_mismatch=%d dup_brn=%d dispatched=%d/%d workflow_verifying=%d/%d in_temporal=%d/%d",
		c.acked, c.stored, c.lost, c.idMismatch, c.dupBRN, c.dispatched, c.stored, c.reached, c.stored, c.inTemporal, c.stored)
}

// checkClaims verifies a load's claims: every acknowledged claim is in
// PostgreSQL under the id its 202 named, no BRN twice, and (waiting up to
// wait) every stored claim's outbox row is dispatched and its workflow ran
// its first step and exists in Temporal.
func (e *env) checkClaims(ctx context.Context, reqs []*request, wait time.Duration) (claimCheck, error) {
	var c claimCheck
	brns := make([]string, 0, len(reqs))
	for _, r := range reqs {
		brns = append(brns, r.brn)
		if r.acked {
			c.acked++
		}
	}
	byBRN := map[string]uuid.UUID{}
	rows, err := e.store.Pool.Query(ctx, `SELECT brn, id FROM claims WHERE program_code = $1 AND brn = ANY($2)`, models.DemoProgram, brns)
	if err != nil {
		return c, err
	}
	for rows.Next() {
		var brn string
		var id uuid.UUID
		if err := rows.Scan(&brn, &id); err != nil {
			rows.Close()
			return c, err
		}
		if _, dup := byBRN[brn]; dup {
			c.dupBRN++
		}
		byBRN[brn] = id
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return c, err
	}
	ids := make([]uuid.UUID, 0, len(byBRN))
	for _, id := range byBRN {
		ids = append(ids, id)
	}
	c.stored = len(ids)
	for _, r := range reqs {
		id, ok := byBRN[r.brn]
		switch {
		case r.acked && !ok:
			c.lost++
		case r.acked && id != r.id:
			c.idMismatch++
		case !r.acked && ok:
			c.storedUnacked++
		}
	}

	t0 := time.Now()
	deadline := t0.Add(wait)
	for {
		err := e.store.Pool.QueryRow(ctx, `SELECT
				count(*) FILTER (WHERE o.dispatched_at IS NOT NULL),
				count(*) FILTER (WHERE EXISTS (SELECT 1 FROM claim_events ev WHERE ev.claim_id = c.id AND ev.status = $3))
			FROM claims c LEFT JOIN outbox o ON o.topic = $2 AND o.aggregate_id = c.id
			WHERE c.id = ANY($1)`, ids, models.OutboxClaimFiled, models.StatusVerifying).Scan(&c.dispatched, &c.reached)
		if err == nil && c.dispatched == c.stored && c.reached == c.stored {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		_ = sleepCtx(ctx, 500*time.Millisecond)
	}
	c.waited = time.Since(t0)
	c.inTemporal = e.countWorkflows(ctx, ids)
	return c, nil
}

// countWorkflows counts the claims whose workflow Temporal describes.
func (e *env) countWorkflows(ctx context.Context, ids []uuid.UUID) int {
	var n atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, id := range ids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if _, err := e.tc.DescribeWorkflowExecution(dctx, claim.WorkflowID(id), ""); err == nil {
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(n.Load())
}

// workflowRuns counts the runs Temporal's visibility lists for a workflow id.
func (e *env) workflowRuns(ctx context.Context, workflowID string) (int, error) {
	resp, err := e.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: e.namespace,
		Query:     fmt.Sprintf("WorkflowId = '%s'", workflowID),
		PageSize:  10,
	})
	if err != nil {
		return 0, err
	}
	return len(resp.Executions), nil
}
