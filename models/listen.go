package models

import (
	"context"
	"time"
)

// Listen delivers the payloads NOTIFYed on channel to notify until ctx ends,
// on a connection of its own. connected runs each time LISTEN is in place
// (every notification sent from then on arrives); lost runs each time the
// connection is gone, before Listen reconnects after a pause. Either may be
// nil.
func (s *Store) Listen(ctx context.Context, channel string, connected func(), notify func(payload string), lost func(error)) {
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, channel, connected, notify)
		if ctx.Err() != nil {
			return
		}
		if lost != nil {
			lost(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

func (s *Store) listenOnce(ctx context.Context, channel string, connected func(), notify func(string)) error {
	conn, err := s.Pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return err
	}
	if connected != nil {
		connected()
	}
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		notify(n.Payload)
	}
}
