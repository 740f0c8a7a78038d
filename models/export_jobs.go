package models

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Export job statuses.
const (
	ExportQueued  = "queued"
	ExportRunning = "running"
	ExportDone    = "done"
	ExportFailed  = "failed"
)

// Export job limits.
const (
	// ExportChunkSize is the size of one stored piece of a finished file.
	ExportChunkSize = 1 << 20
	// ExportMaxAttempts bounds how often a job is taken over after its runner
	// stopped answering before it is marked failed.
	ExportMaxAttempts = 3
	// ExportRetention is how long a finished job and its file are kept.
	ExportRetention = 7 * 24 * time.Hour
)

// ExportJob is a background export (API.md, "Exports").
type ExportJob struct {
	ID           uuid.UUID  `json:"id"`
	Program      string     `json:"program"`
	Kind         string     `json:"kind"`
	Status       string     `json:"status"`
	RowsDone     int64      `json:"rows_done"`
	RowsTotal    int64      `json:"rows_total"`
	Error        string     `json:"error,omitempty"`
	SHA256       string     `json:"sha256,omitempty"`
	Bytes        int64      `json:"bytes,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	FinishedAt   *time.Time `json:"finished_at,omitempty"`
	RequestedBy  uuid.UUID  `json:"-"`
	FullAccounts bool       `json:"-"`
	Attempts     int        `json:"-"`
	Lease        uuid.UUID  `json:"-"` // set on a job handed to a runner
}

// Percent is the job's progress, 0–100.
func (j *ExportJob) Percent() int {
	switch {
	case j.Status == ExportDone:
		return 100
	case j.RowsTotal <= 0:
		return 0
	}
	return int(min(100, j.RowsDone*100/j.RowsTotal))
}

const exportJobColumns = `id, program_code, kind, status, rows_done, rows_total, error, coalesce(sha256, ''), coalesce(bytes, 0),
	created_at, finished_at, requested_by, full_accounts, attempts, coalesce(lease, '00000000-0000-0000-0000-000000000000')`

func scanExportJob(row pgx.Row) (*ExportJob, error) {
	j := &ExportJob{}
	err := row.Scan(&j.ID, &j.Program, &j.Kind, &j.Status, &j.RowsDone, &j.RowsTotal, &j.Error, &j.SHA256, &j.Bytes,
		&j.CreatedAt, &j.FinishedAt, &j.RequestedBy, &j.FullAccounts, &j.Attempts, &j.Lease)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return j, err
}

// CreateExportJob queues a job in tx.
func (s *Store) CreateExportJob(ctx context.Context, tx pgx.Tx, program, kind string, by uuid.UUID, fullAccounts bool) (*ExportJob, error) {
	if !IsExportKind(kind) {
		return nil, FieldError("validation_failed", "kind", "unknown_export_kind", "unknown export kind")
	}
	return scanExportJob(tx.QueryRow(ctx, `INSERT INTO export_jobs (id, program_code, kind, requested_by, full_accounts, created_at)
		VALUES ($1,$2,$3,$4,$5,$6) RETURNING `+exportJobColumns, uuid.New(), program, kind, by, fullAccounts, s.Now()))
}

// ExportJobFor loads a job for the user who requested it; to anyone else it
// does not exist (a finance user's file may hold full account numbers).
func (s *Store) ExportJobFor(ctx context.Context, v *Viewer, id uuid.UUID) (*ExportJob, error) {
	return scanExportJob(s.Pool.QueryRow(ctx, `SELECT `+exportJobColumns+` FROM export_jobs WHERE id = $1 AND requested_by = $2`, id, v.ID))
}

// ExportJobsFor lists a user's recent jobs for a program, newest first.
func (s *Store) ExportJobsFor(ctx context.Context, v *Viewer, program string, limit int) ([]*ExportJob, error) {
	rows, err := s.Pool.Query(ctx, `SELECT `+exportJobColumns+` FROM export_jobs WHERE requested_by = $1 AND program_code = $2
		ORDER BY created_at DESC, id LIMIT $3`, v.ID, program, clampLimit(limit))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*ExportJob, error) { return scanExportJob(r) })
}

// ClaimExportJob hands the oldest runnable job to a runner under a fresh
// lease: a queued job, or a running one whose runner has not sent a
// heartbeat for stale (its replica crashed or was stopped). A job taken over
// ExportMaxAttempts times is marked failed instead. Replicas skip each
// other's locked rows, so each job has one runner at a time. It returns
// ErrNotFound when there is nothing to do.
func (s *Store) ClaimExportJob(ctx context.Context, stale time.Duration) (*ExportJob, error) {
	now := s.Now()
	var job *ExportJob
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE export_jobs SET status = 'failed', lease = NULL, finished_at = $1,
				error = 'the export stopped answering too often'
			WHERE status = 'running' AND heartbeat_at < $2 AND attempts >= $3`, now, now.Add(-stale), ExportMaxAttempts); err != nil {
			return err
		}
		var err error
		job, err = scanExportJob(tx.QueryRow(ctx, `UPDATE export_jobs SET status = 'running', lease = $1, attempts = attempts + 1,
				heartbeat_at = $2, started_at = $2, rows_done = 0, error = ''
			WHERE id = (SELECT id FROM export_jobs WHERE status = 'queued' OR (status = 'running' AND heartbeat_at < $3)
				ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
			RETURNING `+exportJobColumns, uuid.New(), now, now.Add(-stale)))
		if errors.Is(err, ErrNotFound) {
			job = nil
			return nil // keep the failures marked above
		}
		if err != nil {
			return err
		}
		// A taken-over job starts again from nothing.
		_, err = tx.Exec(ctx, `DELETE FROM export_chunks WHERE job_id = $1`, job.ID)
		return err
	})
	if err == nil && job == nil {
		err = ErrNotFound
	}
	return job, err
}

// ErrLeaseLost means another runner took the job over; the loser stops.
var ErrLeaseLost = Coded(ECONFLICT, "export_lease_lost", "the export job was taken over by another runner")

// ExportJobProgress records progress and is the runner's heartbeat.
func (s *Store) ExportJobProgress(ctx context.Context, j *ExportJob, done, total int64) error {
	tag, err := s.Pool.Exec(ctx, `UPDATE export_jobs SET rows_done = $3, rows_total = $4, heartbeat_at = $5
		WHERE id = $1 AND lease = $2 AND status = 'running'`, j.ID, j.Lease, done, total, s.Now())
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrLeaseLost
	}
	return err
}

// ExportJobWriter stores what is written to it as the job's file, in
// ExportChunkSize pieces; Close stores the last piece.
func (s *Store) ExportJobWriter(ctx context.Context, j *ExportJob) io.WriteCloser {
	return &chunkWriter{ctx: ctx, s: s, job: j, buf: make([]byte, 0, ExportChunkSize)}
}

type chunkWriter struct {
	ctx context.Context
	s   *Store
	job *ExportJob
	buf []byte
	seq int
	err error
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 && w.err == nil {
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+k]
		p, n = p[k:], n+k
		if len(w.buf) == cap(w.buf) {
			w.flush()
		}
	}
	return n, w.err
}

func (w *chunkWriter) flush() {
	if w.err != nil || len(w.buf) == 0 {
		return
	}
	tag, err := w.s.Pool.Exec(w.ctx, `INSERT INTO export_chunks (job_id, seq, data)
		SELECT id, $3, $4 FROM export_jobs WHERE id = $1 AND lease = $2 AND status = 'running'`, w.job.ID, w.job.Lease, w.seq, w.buf)
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrLeaseLost
	}
	if err == nil {
		_, err = w.s.Pool.Exec(w.ctx, `UPDATE export_jobs SET heartbeat_at = $3 WHERE id = $1 AND lease = $2`, w.job.ID, w.job.Lease, w.s.Now())
	}
	w.err = err
	w.seq++
	w.buf = w.buf[:0]
}

func (w *chunkWriter) Close() error {
	w.flush()
	return w.err
}

// FinishExportJob marks the job done with its file's hash and size and writes
// the audit entry, in one transaction: a finished export always has its audit
// line, and a runner that lost its lease finishes nothing.
func (s *Store) FinishExportJob(ctx context.Context, j *ExportJob, rows, size int64, sha256hex string, audit AuditEntry) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE export_jobs SET status = 'done', rows_done = $3, rows_total = $3, bytes = $4, sha256 = $5,
				finished_at = $6, lease = NULL
			WHERE id = $1 AND lease = $2 AND status = 'running'`, j.ID, j.Lease, rows, size, sha256hex, s.Now())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrLeaseLost
		}
		return s.Audit(ctx, tx, audit)
	})
}

// FailExportJob marks the job failed with a message the requester sees, and
// drops whatever part of the file was stored.
func (s *Store) FailExportJob(ctx context.Context, j *ExportJob, message string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE export_jobs SET status = 'failed', error = $3, finished_at = $4, lease = NULL
			WHERE id = $1 AND lease = $2 AND status = 'running'`, j.ID, j.Lease, truncate(message, 500), s.Now())
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM export_chunks WHERE job_id = $1`, j.ID)
		return err
	})
}

// WriteExportFile copies a finished job's file to w one stored piece at a
// time, so memory holds one piece however large the file is.
func (s *Store) WriteExportFile(ctx context.Context, j *ExportJob, w io.Writer) (int64, error) {
	if j.Status != ExportDone {
		return 0, Coded(ECONFLICT, "export_not_ready", "the export is not finished")
	}
	var written int64
	for seq := 0; ; seq++ {
		var data []byte
		err := s.Pool.QueryRow(ctx, `SELECT data FROM export_chunks WHERE job_id = $1 AND seq = $2`, j.ID, seq).Scan(&data)
		if errors.Is(err, pgx.ErrNoRows) {
			break
		}
		if err != nil {
			return written, err
		}
		n, err := w.Write(data)
		written += int64(n)
		if err != nil {
			return written, err
		}
	}
	if written != j.Bytes {
		return written, errors.New("export file is incomplete")
	}
	return written, nil
}

// DeleteExpiredExportJobs removes finished jobs (and their files) older than
// ExportRetention. It reports how many it removed.
func (s *Store) DeleteExpiredExportJobs(ctx context.Context) (int64, error) {
	tag, err := s.Pool.Exec(ctx, `DELETE FROM export_jobs WHERE finished_at < $1`, s.Now().Add(-ExportRetention))
	return tag.RowsAffected(), err
}

// ExportJobHeartbeat tells the other replicas the job's runner is alive.
func (s *Store) ExportJobHeartbeat(ctx context.Context, j *ExportJob) error {
	tag, err := s.Pool.Exec(ctx, `UPDATE export_jobs SET heartbeat_at = $3 WHERE id = $1 AND lease = $2 AND status = 'running'`,
		j.ID, j.Lease, s.Now())
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrLeaseLost
	}
	return err
}
