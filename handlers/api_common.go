package handlers

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/exports"
	"github.com/relief/relief/models"
)

// What the instruments and payout handlers share: paging, idempotent state
// changes and workbook downloads.

// limitParam reads ?limit= (1..500; absent is 0, the default).
func limitParam(c *gin.Context) (int, error) {
	v := c.Query("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 500 {
		return 0, models.FieldError("validation_failed", "limit", "out_of_range", "limit must be 1..500")
	}
	return n, nil
}

// listJSON answers one page of a list; no items is [], never null.
func listJSON[T any](c *gin.Context, items []T, next string) {
	if items == nil {
		items = []T{}
	}
	c.JSON(http.StatusOK, gin.H{"items": items, "next_cursor": next})
}

// apiCreate answers a POST that creates something (or a PUT that replaces
// it): the optional Idempotency-Key and the JSON body, decoded into a T, go
// to create, whose answer (JSON) is sent as it is.
func apiCreate[T any](s *Server, c *gin.Context, create func(in T, key string, body []byte) (int, []byte, error)) {
	key, err := idempotencyKey(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	body, err := readBody(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var in T
	if err := decodeJSON(body, &in); err != nil {
		s.fail(c, err)
		return
	}
	status, out, err := create(in, key, body)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Data(status, "application/json; charset=utf-8", out)
}

// createOnce runs create in one transaction and answers 201 with what it
// made, as JSON, once per Idempotency-Key (see inTxOnce).
func createOnce[T any](s *Server, c *gin.Context, scope, key string, reqHash []byte, create func(tx pgx.Tx) (T, error)) (int, []byte, error) {
	return inTxOnce(s, c, scope, key, reqHash, func(tx pgx.Tx) (int, []byte, error) {
		made, err := create(tx)
		if err != nil {
			return 0, nil, err
		}
		out, err := json.Marshal(made)
		return http.StatusCreated, out, err
	})
}

// inTxOnce runs run in one transaction. With an Idempotency-Key, its answer
// is committed with it (under scope) and a repeated key replays it.
func inTxOnce(s *Server, c *gin.Context, scope, key string, reqHash []byte, run func(tx pgx.Tx) (int, []byte, error)) (int, []byte, error) {
	if key != "" {
		status, out, _, err := s.Store.Idempotent(c, scope, key, reqHash, run)
		return status, out, err
	}
	var status int
	var out []byte
	err := s.Store.InTx(c, func(tx pgx.Tx) error {
		var err error
		status, out, err = run(tx)
		return err
	})
	return status, out, err
}

// replayable answers a state change that waits on a workflow (and so cannot
// commit its response in the same transaction): with an Idempotency-Key, a
// response stored under scope for the same request is replayed; otherwise
// run's answer is stored after it succeeds. run must itself be safe to repeat
// (the workflows make it so).
func (s *Server) replayable(c *gin.Context, scope string, body []byte, run func() (int, any, error)) {
	key, err := idempotencyKey(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	hash := models.RequestHash(c.Request.Method, c.Request.URL.Path, body)
	if key != "" {
		status, stored, found, err := s.Store.StoredResponse(c, scope, key, hash)
		if err != nil {
			s.fail(c, err)
			return
		}
		if found {
			c.Data(status, "application/json; charset=utf-8", stored)
			return
		}
	}
	status, v, err := run()
	if err != nil {
		s.fail(c, err)
		return
	}
	out, err := json.Marshal(v)
	if err != nil {
		s.fail(c, err)
		return
	}
	if key != "" {
		if err := s.Store.RememberResponse(c, scope, key, hash, status, out); err != nil {
			s.Log.Warn("idempotency response not stored", "request_id", c.GetString(ctxRequestID), "scope", scope, "err", err.Error())
		}
	}
	c.Data(status, "application/json; charset=utf-8", out)
}

// sendWorkbook answers a finished workbook as the download name, with its SHA-256.
func sendWorkbook(c *gin.Context, name, sum string, data []byte) {
	setDownloadHeaders(c, name)
	c.Header("X-Content-SHA256", sum)
	c.Data(http.StatusOK, xlsxContentType, data)
}

// programWorkbook starts a workbook about the program code, made by by at at.
func (s *Server) programWorkbook(c *gin.Context, code, title, by string, at time.Time) (*exports.Workbook, error) {
	p, err := s.Store.ProgramByCode(c, code)
	if err != nil {
		return nil, err
	}
	return exports.NewWorkbook(exports.Meta{Title: title, Program: exports.Program{Code: p.Code, Name: p.Name},
		GeneratedAt: at, GeneratedBy: by, RuleVersion: p.Rules.RuleVersion})
}

// pageRefusal is err as a refusal that a page shows with its form again, or
// nil once it has answered the error page: for internal errors, outages and
// the kinds in also.
func (s *Server) pageRefusal(c *gin.Context, err error, also ...string) *models.Error {
	e := asDomainError(err)
	if e.Kind == models.EINTERNAL || e.Kind == models.EUNAVAILABLE || slices.Contains(also, e.Kind) {
		s.fail(c, err)
		return nil
	}
	return e
}

// redirectCreated follows a form that created something to its page, path
// plus the id in created (its JSON), announcing it.
func (s *Server) redirectCreated(c *gin.Context, created []byte, path string) {
	var made struct {
		ID uuid.UUID `json:"id"`
	}
	if err := json.Unmarshal(created, &made); err != nil {
		s.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, path+made.ID.String()+"?msg=created")
}
