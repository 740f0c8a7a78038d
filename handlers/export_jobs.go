package handlers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/relief/relief/models"
)

// Export jobs run inside the web replicas: any replica may run any job, the
// file lands in PostgreSQL, and a lease with a heartbeat hands the job of a
// crashed replica to another one (models.ClaimExportJob). Runners start on
// demand (a new job, or a poll of an unfinished one) and stop when there is
// nothing left, so an idle replica runs no goroutine for exports; RunExportJobs
// adds a periodic sweep for jobs nobody polls.
const (
	exportRunnersPerReplica = 2                // concurrent jobs per replica: memory stays bounded
	exportStaleAfter        = 2 * time.Minute  // a runner silent this long is presumed dead
	exportHeartbeatEvery    = 15 * time.Second // well inside exportStaleAfter
	exportJobTimeout        = 30 * time.Minute
)

type exportRunner struct {
	s         *Server
	slots     chan struct{}
	stale     time.Duration
	heartbeat time.Duration
	wg        sync.WaitGroup
}

var exportRunners sync.Map // *Server → *exportRunner

// exportJobs is the server's export runner.
func (s *Server) exportJobs() *exportRunner {
	if r, ok := exportRunners.Load(s); ok {
		return r.(*exportRunner)
	}
	r, _ := exportRunners.LoadOrStore(s, &exportRunner{
		s: s, slots: make(chan struct{}, exportRunnersPerReplica), stale: exportStaleAfter, heartbeat: exportHeartbeatEvery,
	})
	return r.(*exportRunner)
}

// RunExportJobs sweeps for runnable export jobs (queued ones, and those of a
// replica that died) every interval until ctx ends, then waits for the jobs
// this replica is running. Polls and new jobs start runners anyway; the sweep
// makes sure a job nobody watches is still finished after a restart.
func (s *Server) RunExportJobs(ctx context.Context, interval time.Duration) {
	r := s.exportJobs()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		r.kick()
		select {
		case <-ctx.Done():
			r.wg.Wait()
			return
		case <-t.C:
		}
	}
}

// kick starts a runner unless this replica already runs as many as it may;
// the busy runners take the next job when they finish theirs.
func (r *exportRunner) kick() {
	select {
	case r.slots <- struct{}{}:
		r.wg.Add(1)
		go r.drain()
	default:
	}
}

func (r *exportRunner) drain() {
	defer r.wg.Done()
	defer func() { <-r.slots }()
	ctx := context.Background()
	for {
		job, err := r.s.Store.ClaimExportJob(ctx, r.stale)
		if err != nil {
			if !models.IsKind(err, models.ENOTFOUND) {
				r.s.Log.Error("export jobs: claim", "err", err.Error())
			}
			break
		}
		r.run(job)
	}
	if n, err := r.s.Store.DeleteExpiredExportJobs(ctx); err != nil {
		r.s.Log.Warn("export jobs: retention", "err", err.Error())
	} else if n > 0 {
		r.s.Log.Info("export jobs: expired files removed", "jobs", n)
	}
}

// run builds one job under its lease, with a heartbeat beside it; a runner
// that loses its lease stops at once and leaves the job to its successor.
func (r *exportRunner) run(job *models.ExportJob) {
	ctx, cancel := context.WithTimeout(context.Background(), exportJobTimeout)
	defer cancel()
	beat := make(chan struct{})
	defer close(beat)
	go func() {
		t := time.NewTicker(r.heartbeat)
		defer t.Stop()
		for {
			select {
			case <-beat:
				return
			case <-t.C:
				if err := r.s.Store.ExportJobHeartbeat(ctx, job); errors.Is(err, models.ErrLeaseLost) {
					cancel()
					return
				}
			}
		}
	}()
	log := r.s.Log.With("job", job.ID.String(), "kind", job.Kind, "program", job.Program, "attempt", job.Attempts)
	start := time.Now()
	err := r.build(ctx, job)
	switch {
	case err == nil:
		log.Info("export job done", "ms", time.Since(start).Milliseconds())
		return
	case errors.Is(err, models.ErrLeaseLost):
		log.Warn("export job taken over by another runner")
		return
	}
	code := "internal_error"
	var e *models.Error
	if errors.As(err, &e) {
		code = e.Code
	}
	log.Error("export job failed", "err", err.Error())
	failCtx, failCancel := context.WithTimeout(context.Background(), auditTimeout)
	defer failCancel()
	if err := r.s.Store.FailExportJob(failCtx, job, code); err != nil {
		log.Error("export job: recording the failure", "err", err.Error())
	}
}

func (r *exportRunner) build(ctx context.Context, job *models.ExportJob) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	s := r.s
	u, err := s.Store.UserByID(ctx, job.RequestedBy)
	if err != nil {
		return err
	}
	// Access is checked again: the requester may have left the agency since.
	p, err := s.staffProgram(ctx, u, job.Program)
	if err != nil {
		return err
	}
	req := &exportRequest{program: p, kind: job.Kind, user: u, full: job.FullAccounts && u.HasRole(models.RoleFinance)}
	progress := func(done, total int64) error { return s.Store.ExportJobProgress(ctx, job, done, total) }
	wb, rows, err := s.buildExport(ctx, req, true, 0, progress)
	if err != nil {
		return err
	}
	defer wb.Close()
	w := s.Store.ExportJobWriter(ctx, job)
	n, sum, err := wb.Save(w)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return s.Store.FinishExportJob(ctx, job, rows, n, sum, models.AuditEntry{
		ActorID: &u.ID, Actor: u.Email, Action: "export.generate", Subject: "program:" + p.Code,
		Details: map[string]any{"kind": job.Kind, "job": job.ID.String(), "rows": rows, "bytes": n, "sha256": sum,
			"accounts": req.accounts(), "via": "job"},
	})
}
