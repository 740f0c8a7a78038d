package handlers

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relief/relief/models"
)

func (s *Server) apiFileClaim(c *gin.Context) {
	key := strings.TrimSpace(c.GetHeader("Idempotency-Key"))
	if key == "" || len(key) > 200 {
		s.fail(c, &models.Error{Kind: models.EMALFORMED, Code: "idempotency_key_required", Message: "the Idempotency-Key header is required (at most 200 characters)",
			Fields: map[string]string{"Idempotency-Key": "required"}})
		return
	}
	body, err := readBody(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var in models.ClaimInput
	if err := decodeJSON(body, &in); err != nil {
		s.fail(c, err)
		return
	}
	status, resp, err := s.Store.FileClaim(c, currentUser(c), key, models.RequestHash(c.Request.Method, c.Request.URL.Path, body), &in)
	if err != nil {
		s.fail(c, err)
		return
	}
	if status == http.StatusAccepted {
		s.metrics.claimsFiled.Inc()
	}
	c.Data(status, "application/json; charset=utf-8", resp)
}

// claimID parses the :id path parameter; a malformed id is simply not found.
func claimID(c *gin.Context) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return uuid.Nil, models.ErrNotFound
	}
	return id, nil
}

func (s *Server) apiGetClaim(c *gin.Context) {
	id, err := claimID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	claim, err := s.Store.ClaimForViewer(c, currentUser(c), id)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, claim)
}

func (s *Server) apiListClaims(c *gin.Context) {
	limit := 0
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			s.fail(c, models.FieldError("validation_failed", "limit", "out_of_range", "limit must be 1..500"))
			return
		}
		limit = n
	}
	claims, next, err := s.Store.ListClaims(c, currentUser(c), models.ClaimFilter{
		Program: c.Query("program"), Status: c.Query("status"), Limit: limit, Cursor: c.Query("cursor"),
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	if claims == nil {
		claims = []*models.Claim{}
	}
	c.JSON(http.StatusOK, gin.H{"items": claims, "next_cursor": next})
}

// apiCorrectBank is PUT /api/v1/claims/{id}/bank: the merchant corrects the
// payout account the bank refused. With an Idempotency-Key, a repeat replays
// the first answer (the same key with another body is 422
// idempotency_mismatch); without one, a repeat is harmless anyway.
func (s *Server) apiCorrectBank(c *gin.Context) {
	id, err := claimID(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	v := currentUser(c)
	apiCreate(s, c, func(in models.BankInput, key string, body []byte) (int, []byte, error) {
		return inTxOnce(s, c, "claim-bank:"+v.ID.String(), key, models.RequestHash(c.Request.Method, c.Request.URL.Path, body),
			func(tx pgx.Tx) (int, []byte, error) {
				view, _, err := s.Store.CorrectClaimBank(c, tx, v, id, in, c.ClientIP())
				if err != nil {
					return 0, nil, err
				}
				out, err := json.Marshal(gin.H{"bank": view})
				return http.StatusOK, out, err
			})
	})
}
