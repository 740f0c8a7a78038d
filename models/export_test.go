package models

// IntakeQueued reports how many validated claims wait for an intake writer
// (tests use it to know a group has formed).
func (s *Store) IntakeQueued() int {
	b := &s.intake.batch
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}
