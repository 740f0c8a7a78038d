package handlers

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/relief/relief/models"
)

// Who viewed whose personal data: the auditor's review of the
// view_personal_data audit entries of their agency's claims.

func personalDataFilter(c *gin.Context) (models.ViewFilter, error) {
	f := models.ViewFilter{Claim: c.Query("claim"), Actor: c.Query("actor"), Cursor: c.Query("cursor")}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return f, models.FieldError("validation_failed", "limit", "out_of_range", "limit must be 1..500")
		}
		f.Limit = n
	}
	return f, nil
}

// apiPersonalDataViews: GET /api/v1/audit/personal-data-views?claim=&actor=&limit=&cursor= (auditor).
func (s *Server) apiPersonalDataViews(c *gin.Context) {
	f, err := personalDataFilter(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	views, next, err := s.Store.ListPersonalDataViews(c, currentUser(c), f)
	if err != nil {
		s.fail(c, err)
		return
	}
	if views == nil {
		views = []models.PersonalDataView{}
	}
	c.JSON(http.StatusOK, gin.H{"items": views, "next_cursor": next})
}

type personalDataPage struct {
	Filter models.ViewFilter
	Views  []models.PersonalDataView
	Next   string
}

// pagePersonalDataViews: GET /audit/personal-data (auditor).
func (s *Server) pagePersonalDataViews(c *gin.Context) {
	f, err := personalDataFilter(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	views, next, err := s.Store.ListPersonalDataViews(c, currentUser(c), f)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "privacy_views", "title.privacy_views", personalDataPage{Filter: f, Views: views, Next: next})
}
