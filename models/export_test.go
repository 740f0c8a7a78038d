package models

import (
	"errors"
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
