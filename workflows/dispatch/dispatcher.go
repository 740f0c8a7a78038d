// Package dispatch delivers the transactional outbox to Temporal. Intake never
// waits on Temporal: a claim commits with an outbox row, and the dispatcher starts
// the workflow afterwards with a deterministic ID, so a restart or a second
// dispatcher replica can only ever start it once.
package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/time/rate"

	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows/claim"
)

// Dispatcher polls the outbox (woken early by NOTIFY) and starts workflows.
type Dispatcher struct {
	Store    *models.Store
	Temporal client.Client
	Log      *slog.Logger
	// Batch is how many messages one transaction takes; Parallel how many starts
	// run at once (a dev Temporal server takes tens per second).
	Batch    int
	Parallel int
	// Poll is the fallback interval when no notification arrives.
	Poll time.Duration
	// Rate, when above zero, bounds workflow starts per second. During a
	// filing surge the outbox absorbs the difference and drains afterwards,
	// so workflow execution cannot starve intake of CPU when Temporal and
	// the web share machines (as in `relief dev`).
	Rate    int
	limiter *rate.Limiter
	// BeforeMark, when set, runs after delivery and before the outbox rows are
	// marked; fault drills use it to crash the dispatcher in that window.
	BeforeMark func()
}

// Run dispatches until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) error {
	if d.Batch == 0 {
		d.Batch = 64
	}
	if d.Parallel == 0 {
		d.Parallel = 16
	}
	if d.Poll == 0 {
		d.Poll = time.Second
	}
	if d.Rate > 0 {
		d.limiter = rate.NewLimiter(rate.Limit(d.Rate), min(d.Rate, d.Parallel))
		d.Batch = min(d.Batch, d.Rate) // a transaction holds its rows about a second
	}
	wake := make(chan struct{}, 1)
	// NOTIFYs are wake-ups; while the listener is lost the poll keeps going.
	go d.Store.Listen(ctx, models.OutboxChannel, nil, func(string) {
		select {
		case wake <- struct{}{}:
		default:
		}
	}, func(err error) { d.Log.Debug("outbox listener reconnecting", "err", err) })
	for {
		n, err := d.Store.DispatchOutbox(ctx, d.Batch, d.deliver)
		if err != nil && ctx.Err() == nil {
			d.Log.Warn("outbox dispatch failed", "err", err)
		}
		if n == d.Batch && err == nil {
			continue // more waiting: drain without sleeping
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-time.After(d.Poll):
		}
	}
}

func (d *Dispatcher) deliver(ctx context.Context, msgs []models.OutboxMessage) []error {
	errs := make([]error, len(msgs))
	sem := make(chan struct{}, d.Parallel)
	var wg sync.WaitGroup
	for i := range msgs {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			if d.limiter != nil {
				if errs[i] = d.limiter.Wait(ctx); errs[i] != nil {
					return
				}
			}
			errs[i] = d.start(ctx, msgs[i])
		}(i)
	}
	wg.Wait()
	if d.BeforeMark != nil {
		d.BeforeMark()
	}
	return errs
}

func (d *Dispatcher) start(ctx context.Context, m models.OutboxMessage) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch m.Topic {
	case models.OutboxClaimFiled:
		var payload models.ClaimFiledPayload
		if err := json.Unmarshal(m.Payload, &payload); err != nil {
			return fmt.Errorf("outbox %d: %w", m.ID, err)
		}
		_, err := d.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:                                       claim.WorkflowID(m.AggregateID),
			TaskQueue:                                claim.TaskQueue,
			WorkflowIDReusePolicy:                    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
			WorkflowExecutionErrorWhenAlreadyStarted: true,
			TypedSearchAttributes:                    temporal.NewSearchAttributes(claim.SearchProgram.ValueSet(payload.Program), claim.SearchStatus.ValueSet(models.StatusReceived)),
		}, claim.WorkflowName, claim.Input{ClaimID: m.AggregateID})
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &started) {
			return nil // delivered before; the ID makes this a no-op
		}
		return err
	default:
		return fmt.Errorf("outbox: unknown topic %q", m.Topic)
	}
}
