package models

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// IntakeQueued reports how many validated claims wait for an intake writer
// (tests use it to know a group has formed).
func (s *Store) IntakeQueued() int {
	b := &s.intake.batch
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// LoseGroupAnswers makes the next n group statements of intake behave as if
// their connection broke after they committed: the answer is lost and each
// claim of the group is written again on its own. lost reports how many
// answers were lost so far.
func (s *Store) LoseGroupAnswers(n int) (lost func() int) {
	var mu sync.Mutex
	done := 0
	s.intake.loseAnswer = func() error {
		mu.Lock()
		defer mu.Unlock()
		if done == n {
			return nil
		}
		done++
		return errors.New("connection broke after commit (test)")
	}
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return done
	}
}

// WriteClaimGroup writes the claims in as ONE intake group statement, as the
// intake writer does, without the queue in front of it (benchmarks of the
// statement itself). Every claim must be new.
func (s *Store) WriteClaimGroup(ctx context.Context, merchant *User, keys []string, in []*ClaimInput) error {
	group := make([]*claimRow, len(in))
	now := s.Now()
	for i, c := range in {
		brn, account, err := c.Normalize()
		if err != nil {
			return err
		}
		group[i] = s.newClaimRow(merchant, c.Program, brn, account, c, now, claimScope(merchant), keys[i], []byte{byte(i)})
	}
	bodies, err := s.writeMany(ctx, group)
	if err != nil {
		return err
	}
	for i, b := range bodies {
		if b == nil {
			return fmt.Errorf("claim %d of the group was not written", i)
		}
	}
	return nil
}
