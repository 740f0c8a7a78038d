package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
)

// checkBatch is how many claim ids go into one `= ANY($1::uuid[])` query.
const checkBatch = 5000

// checkResult is the correctness check against PostgreSQL.
type checkResult struct {
	Accepted        int      `json:"accepted"`
	Found           int      `json:"found_in_db"`
	WrongProgram    int      `json:"wrong_program"`
	DuplicateBRNs   int      `json:"duplicate_brns"`
	DuplicateSample []string `json:"duplicate_brn_sample,omitempty"`
	Dispatched      int      `json:"dispatched"`
	Reached         int      `json:"reached_workflow"`
	WaitedSeconds   float64  `json:"waited_seconds"`
	Failures        []string `json:"failures,omitempty"`
}

func batches(ids [][16]byte, fn func([][16]byte) error) error {
	for lo := 0; lo < len(ids); lo += checkBatch {
		if err := fn(ids[lo:min(lo+checkBatch, len(ids))]); err != nil {
			return err
		}
	}
	return nil
}

// runCheck verifies, for the distinct accepted claim ids:
//   - every one is a row in claims, filed to program;
//   - no BRN appears twice for the program;
//   - within wait, every one reached its workflow: its outbox row (of
//     outboxTopic, or any topic when empty) has dispatched_at set, and the
//     claim has a claim_events row with status 'verifying', which the
//     workflow's first activity writes.
func runCheck(ctx context.Context, dbURL, program, outboxTopic string, ids [][16]byte, wait time.Duration, progress io.Writer) (*checkResult, error) {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	conn, err := pgx.Connect(cctx, dbURL)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("connect to -db: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	res := &checkResult{Accepted: len(ids)}

	// 1. Every accepted claim is stored, under the right program.
	err = batches(ids, func(b [][16]byte) error {
		rows, err := conn.Query(ctx, `SELECT program_code FROM claims WHERE id = ANY($1::uuid[])`, b)
		if err != nil {
			return err
		}
		for rows.Next() {
			var pc string
			if err := rows.Scan(&pc); err != nil {
				rows.Close()
				return err
			}
			res.Found++
			if pc != program {
				res.WrongProgram++
			}
		}
		rows.Close()
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("look up claims: %w", err)
	}

	// 2. One claim per BRN per program (over the whole program, not only this run).
	rows, err := conn.Query(ctx, `SELECT brn, count(*) FROM claims WHERE program_code=$1 GROUP BY brn HAVING count(*)>1`, program)
	if err != nil {
		return nil, fmt.Errorf("duplicate BRN query: %w", err)
	}
	for rows.Next() {
		var brn string
		var c int64
		if err := rows.Scan(&brn, &c); err != nil {
			rows.Close()
			return nil, err
		}
		res.DuplicateBRNs++
		if len(res.DuplicateSample) < 5 {
			res.DuplicateSample = append(res.DuplicateSample, fmt.Sprintf("%s×%d", brn, c))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("duplicate BRN query: %w", err)
	}

	// 3. Wait for the dispatcher and the workflows to catch up.
	const reachedSQL = `SELECT c.id FROM claims c WHERE c.id = ANY($1::uuid[])
  AND EXISTS (SELECT 1 FROM outbox o WHERE o.aggregate_id = c.id AND o.dispatched_at IS NOT NULL AND ($2 = '' OR o.topic = $2))
  AND EXISTS (SELECT 1 FROM claim_events e WHERE e.claim_id = c.id AND e.status = 'verifying')`
	pending := ids
	t0 := time.Now()
	deadline := t0.Add(wait)
	lastReport := t0
	for {
		var still [][16]byte
		err := batches(pending, func(b [][16]byte) error {
			rows, err := conn.Query(ctx, reachedSQL, b, outboxTopic)
			if err != nil {
				return err
			}
			done := make(map[[16]byte]bool, len(b))
			for rows.Next() {
				var id [16]byte
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				done[id] = true
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, id := range b {
				if !done[id] {
					still = append(still, id)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("workflow progress query: %w", err)
		}
		pending = still
		res.Reached = len(ids) - len(pending)
		if len(pending) == 0 || !time.Now().Before(deadline) || ctx.Err() != nil {
			break
		}
		if time.Since(lastReport) >= 5*time.Second {
			fmt.Fprintf(progress, "  … %d/%d claims reached their workflow after %s\n", res.Reached, len(ids), time.Since(t0).Round(time.Second))
			lastReport = time.Now()
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(time.Second, time.Until(deadline))):
		}
	}
	res.WaitedSeconds = time.Since(t0).Seconds()

	// 4. Dispatched, counted on its own so a stuck dispatcher and a stuck
	// worker can be told apart.
	err = batches(ids, func(b [][16]byte) error {
		var c int
		err := conn.QueryRow(ctx, `SELECT count(DISTINCT aggregate_id) FROM outbox
WHERE aggregate_id = ANY($1::uuid[]) AND dispatched_at IS NOT NULL AND ($2 = '' OR topic = $2)`, b, outboxTopic).Scan(&c)
		res.Dispatched += c
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("outbox query: %w", err)
	}

	if res.Found != res.Accepted {
		res.Failures = append(res.Failures, fmt.Sprintf("%d accepted claims are missing from the claims table", res.Accepted-res.Found))
	}
	if res.WrongProgram > 0 {
		res.Failures = append(res.Failures, fmt.Sprintf("%d accepted claims are stored under another program", res.WrongProgram))
	}
	if res.DuplicateBRNs > 0 {
		res.Failures = append(res.Failures, fmt.Sprintf("%d BRNs have more than one claim in %s", res.DuplicateBRNs, program))
	}
	if res.Dispatched != res.Accepted {
		res.Failures = append(res.Failures, fmt.Sprintf("%d accepted claims were not dispatched from the outbox within %s", res.Accepted-res.Dispatched, wait))
	}
	if res.Reached != res.Accepted {
		res.Failures = append(res.Failures, fmt.Sprintf("%d accepted claims did not reach their workflow ('verifying' on the timeline) within %s", res.Accepted-res.Reached, wait))
	}
	return res, nil
}
