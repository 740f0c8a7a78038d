package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/upload"
	"github.com/relief/relief/workflows/claim"
)

// reviewUpdateTimeout bounds how long a decision waits for its workflow.
const reviewUpdateTimeout = 20 * time.Second

// reviewUpdateCall is one Update sent to a claim's workflow on behalf of a user.
type reviewUpdateCall struct {
	claim  *models.Claim
	name   string // claim.UpdateDecision, UpdateInfo, UpdateAppeal
	arg    any
	key    string // Idempotency-Key ("" for none)
	hash   []byte // request fingerprint for replays
	userID uuid.UUID
}

// runUpdate sends an Update to the claim's workflow and waits for it to
// complete. Validator rejections come back as coded errors (403
// segregation_of_duties, 409 invalid_state, 422 ...). With an Idempotency-Key
// the update id is derived from it, so a retried request is the same update
// (Temporal answers it from the completed one), and the answer is stored for
// replays.
func (s *Server) reviewUpdate(c *gin.Context, u reviewUpdateCall) (int, []byte, error) {
	scope := "update:" + u.name + ":" + u.userID.String() + ":" + u.claim.ID.String()
	if u.key != "" {
		status, body, found, err := s.Store.ReplayResponse(c, scope, u.key, u.hash)
		if err != nil || found {
			return status, body, err
		}
	}
	if s.Temporal == nil {
		return 0, nil, models.Coded(models.EUNAVAILABLE, "unavailable", "the workflow service is not configured")
	}
	updateID := u.name + "-" + uuid.NewString()
	if u.key != "" {
		sum := sha256.Sum256([]byte(scope + "\n" + u.key))
		updateID = u.name + "-" + hex.EncodeToString(sum[:16])
	}
	ctx, cancel := context.WithTimeout(c, reviewUpdateTimeout)
	defer cancel()
	handle, err := s.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: claim.WorkflowID(u.claim.ID), UpdateID: updateID, UpdateName: u.name,
		Args: []any{u.arg}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	var res claim.UpdateResult
	if err == nil {
		err = handle.Get(ctx, &res)
	}
	if err != nil {
		return 0, nil, s.reviewUpdateFailure(c, u, err)
	}
	body, _ := json.Marshal(gin.H{"status": res.Status, "amount": res.Amount})
	if u.key != "" {
		if err := s.Store.KeepResponse(context.WithoutCancel(c), scope, u.key, u.hash, http.StatusOK, body); err != nil {
			s.Log.Warn("keep idempotent response", "err", err.Error())
		}
	}
	return http.StatusOK, body, nil
}

func (s *Server) reviewUpdateFailure(c *gin.Context, u reviewUpdateCall, err error) error {
	if kind, code, msg, ok := claim.ErrorCode(err); ok {
		return models.Coded(kind, code, msg)
	}
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		// No running workflow: not started yet (the outbox is behind) or finished.
		if u.name == claim.UpdateAppeal && (u.claim.Status == models.StatusClosed || u.claim.Status == models.StatusRejected) {
			return models.Coded(models.EINVALID, "appeal_window_closed", "the appeal window has closed")
		}
		if u.claim.Status == models.StatusReceived {
			return models.Coded(models.ECONFLICT, "claim_not_ready", "the claim is still being registered: try again in a moment")
		}
		return models.Coded(models.ECONFLICT, "invalid_state", "the claim is not waiting for this action")
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(c.Request.Context().Err(), context.DeadlineExceeded) {
		return models.Coded(models.EUNAVAILABLE, "unavailable", "the workflow service did not answer in time, retry with the same Idempotency-Key")
	}
	var unavailable *serviceerror.Unavailable
	if errors.As(err, &unavailable) {
		return models.Coded(models.EUNAVAILABLE, "unavailable", "the workflow service is unavailable, retry shortly")
	}
	return err
}

// visibleClaim loads :id for the current user (404 when not theirs to see).
func (s *Server) reviewVisibleClaim(c *gin.Context) (*models.Claim, error) {
	id, err := claimID(c)
	if err != nil {
		return nil, err
	}
	return s.Store.ClaimForViewer(c, currentUser(c), id)
}

// DecisionBody is POST /api/v1/claims/{id}/decision.
type DecisionBody struct {
	Action     string `json:"action"`
	Amount     *int64 `json:"amount"`
	ReasonCode string `json:"reason_code"`
	Reason     string `json:"reason"`
}

func (s *Server) reviewDecide(c *gin.Context, in DecisionBody, key string, hash []byte) (int, []byte, error) {
	u := currentUser(c)
	if !u.IsStaff() || !(u.HasRole(models.RoleReviewer) || u.HasRole(models.RoleApprover)) {
		return 0, nil, models.Coded(models.EFORBIDDEN, "forbidden", "only reviewers and approvers decide on claims")
	}
	cl, err := s.reviewVisibleClaim(c)
	if err != nil {
		return 0, nil, err
	}
	if in.Action == models.ActionReject && in.ReasonCode == "" {
		in.ReasonCode = "other"
	}
	return s.reviewUpdate(c, reviewUpdateCall{claim: cl, name: claim.UpdateDecision, key: key, hash: hash, userID: u.ID,
		arg: claim.DecisionRequest{Action: in.Action, Amount: in.Amount, ReasonCode: in.ReasonCode, Reason: in.Reason,
			ActorID: u.ID, ActorRoles: u.Roles, IP: c.ClientIP()}})
}

func (s *Server) reviewRespond(c *gin.Context, status int, body []byte, err error) {
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Data(status, "application/json; charset=utf-8", body)
}

func reviewIdemKey(c *gin.Context) (string, error) {
	key := strings.TrimSpace(c.GetHeader("Idempotency-Key"))
	if len(key) > 200 {
		return "", models.FieldError("idempotency_key_too_long", "Idempotency-Key", "too_long", "the Idempotency-Key is at most 200 characters")
	}
	return key, nil
}

// jsonUpdate reads a bounded JSON body and the Idempotency-Key.
func reviewJSONUpdate(c *gin.Context, v any) (string, []byte, error) {
	key, err := reviewIdemKey(c)
	if err != nil {
		return "", nil, err
	}
	body, err := readBody(c)
	if err != nil {
		return "", nil, err
	}
	if err := decodeJSON(body, v); err != nil {
		return "", nil, err
	}
	return key, models.RequestHash(c.Request.Method, c.Request.URL.Path, body), nil
}

func (s *Server) apiDecision(c *gin.Context) {
	var in DecisionBody
	key, hash, err := reviewJSONUpdate(c, &in)
	if err != nil {
		s.fail(c, err)
		return
	}
	status, body, err := s.reviewDecide(c, in, key, hash)
	s.reviewRespond(c, status, body, err)
}

// merchantClaim loads :id for its merchant (staff are refused: these are the
// merchant's own actions).
func (s *Server) reviewMerchantClaim(c *gin.Context) (*models.Claim, error) {
	u := currentUser(c)
	if !u.HasRole(models.RoleMerchant) {
		return nil, models.Coded(models.EFORBIDDEN, "forbidden", "only the merchant who filed the claim may do this")
	}
	cl, err := s.reviewVisibleClaim(c)
	if err != nil {
		return nil, err
	}
	if cl.MerchantID != u.ID {
		return nil, models.ErrNotFound
	}
	return cl, nil
}

func (s *Server) reviewAnswerInfo(c *gin.Context, note, key string, hash []byte) (int, []byte, error) {
	cl, err := s.reviewMerchantClaim(c)
	if err != nil {
		return 0, nil, err
	}
	u := currentUser(c)
	return s.reviewUpdate(c, reviewUpdateCall{claim: cl, name: claim.UpdateInfo, key: key, hash: hash, userID: u.ID,
		arg: claim.InfoRequest{ActorID: u.ID, Note: note, IP: c.ClientIP()}})
}

func (s *Server) reviewFileAppeal(c *gin.Context, reason, key string, hash []byte) (int, []byte, error) {
	cl, err := s.reviewMerchantClaim(c)
	if err != nil {
		return 0, nil, err
	}
	u := currentUser(c)
	return s.reviewUpdate(c, reviewUpdateCall{claim: cl, name: claim.UpdateAppeal, key: key, hash: hash, userID: u.ID,
		arg: claim.AppealRequest{ActorID: u.ID, Reason: reason, IP: c.ClientIP()}})
}

func (s *Server) apiInfo(c *gin.Context) {
	var in struct {
		Note string `json:"note"`
	}
	key, hash, err := reviewJSONUpdate(c, &in)
	if err != nil {
		s.fail(c, err)
		return
	}
	status, body, err := s.reviewAnswerInfo(c, in.Note, key, hash)
	s.reviewRespond(c, status, body, err)
}

func (s *Server) apiAppeal(c *gin.Context) {
	var in struct {
		Reason string `json:"reason"`
	}
	key, hash, err := reviewJSONUpdate(c, &in)
	if err != nil {
		s.fail(c, err)
		return
	}
	status, body, err := s.reviewFileAppeal(c, in.Reason, key, hash)
	s.reviewRespond(c, status, body, err)
}

// addDocument checks and stores an uploaded evidence file.
func (s *Server) reviewAddDocument(c *gin.Context) (*models.Document, bool, error) {
	id, err := claimID(c)
	if err != nil {
		return nil, false, err
	}
	// Visibility first: a stranger learns nothing, not even the upload rules.
	if _, err := s.Store.ClaimForViewer(c, currentUser(c), id); err != nil {
		return nil, false, err
	}
	f, err := upload.Document.FromRequest(c.Writer, c.Request, "file")
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, models.MaxDocumentBytes+1))
	if err != nil {
		return nil, false, err
	}
	return s.Store.AddDocument(c, currentUser(c), id, f.Name, data)
}

func (s *Server) apiAddDocument(c *gin.Context) {
	d, created, err := s.reviewAddDocument(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK // the same file again: the existing document
	}
	c.JSON(status, gin.H{"id": d.ID, "sha256": d.SHA256})
}

func (s *Server) downloadDocument(c *gin.Context) {
	id, err := claimID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	docID, err := uuid.Parse(c.Param("doc"))
	if err != nil {
		s.fail(c, models.ErrNotFound)
		return
	}
	d, data, err := s.Store.DocumentFor(c, currentUser(c), id, docID, c.ClientIP())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Content-Disposition", `attachment; filename="document"; filename*=UTF-8''`+reviewPathEscape(d.Filename))
	c.Header("Cache-Control", "private, no-store")
	c.Data(http.StatusOK, d.ContentType, data)
}

func reviewPathEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
	}
	return b.String()
}

// queueFilter reads the queue's query string; bad numbers are 422s naming the field.
func reviewQueueFilter(c *gin.Context) (models.QueueFilter, error) {
	f := models.QueueFilter{Program: c.Query("program"), Status: c.Query("status"), Flag: c.Query("flag"),
		Region: c.Query("region"), Category: c.Query("category"), Sort: c.Query("sort"), Cursor: c.Query("cursor")}
	fields := map[string]string{}
	amount := func(name string) *int64 {
		v := strings.NewReplacer(",", "", "원", "", " ", "").Replace(c.Query(name))
		if v == "" {
			return nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			fields[name] = "invalid_number"
			return nil
		}
		return &n
	}
	f.MinAmount, f.MaxAmount = amount("min_amount"), amount("max_amount")
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			fields["limit"] = "out_of_range"
		}
		f.Limit = n
	}
	if len(fields) > 0 {
		return f, &models.Error{Kind: models.EINVALID, Code: "validation_failed", Message: "some filters are invalid", Fields: fields}
	}
	return f, nil
}

// defaultProgram fills in the agency's newest program when none is chosen.
func (s *Server) reviewDefaultProgram(c *gin.Context, f *models.QueueFilter) error {
	if f.Program != "" {
		return nil
	}
	programs, err := s.Store.AgencyPrograms(c, currentUser(c))
	if err != nil {
		return err
	}
	if len(programs) == 0 {
		return models.Coded(models.ENOTFOUND, "program_not_found", "no such program")
	}
	f.Program = programs[0].Code
	return nil
}

func (s *Server) apiReviewQueue(c *gin.Context) {
	f, err := reviewQueueFilter(c)
	if err == nil && models.CanReview(currentUser(c)) {
		err = s.reviewDefaultProgram(c, &f)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	page, err := s.Store.ReviewQueue(c, currentUser(c), f)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

func (s *Server) apiReviewFile(c *gin.Context) {
	id, err := claimID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	rf, err := s.Store.ReviewFileFor(c, currentUser(c), id, c.ClientIP())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, rf)
}
