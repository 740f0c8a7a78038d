package handlers

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
)

// The rapid offer: the estimated loss and compensation computed from the
// platform's ledger, with its inputs, before the merchant files. The BRN comes
// in the query string; request logs carry the route template only, never it.

func (s *Server) offerForRequest(c *gin.Context) (*models.Offer, error) {
	u := currentUser(c)
	if !u.HasRole(models.RoleMerchant) {
		return nil, models.Coded(models.EFORBIDDEN, "forbidden", "offers are for merchants")
	}
	brn, err := rules.ParseBRN(c.Query("brn"))
	if err != nil {
		return nil, models.FieldError("invalid_brn", "brn", "invalid_brn", "the business registration number is not valid")
	}
	return s.Store.OfferFor(c, c.Param("code"), brn, s.localizer(c).Lang)
}

func (s *Server) apiOffer(c *gin.Context) {
	o, err := s.offerForRequest(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, o)
}

type offerPage struct {
	Program *models.Program
	BRN     string
	Offer   *models.Offer
	Error   string // message id
	Partial bool
}

// pageOffer shows the offer: as a full page with a BRN form, or (htmx, from
// the claim form's BRN field) as the fragment "offer".
func (s *Server) pageOffer(c *gin.Context) {
	p, err := s.Store.ProgramByCode(c, c.Param("code"))
	if err != nil {
		s.fail(c, err)
		return
	}
	page := offerPage{Program: p, BRN: strings.TrimSpace(c.Query("brn")), Partial: c.GetHeader("HX-Request") == "true"}
	if page.BRN != "" {
		page.Offer, err = s.offerForRequest(c)
		var e *models.Error
		switch {
		case err == nil:
		case errors.As(err, &e) && e.Kind != models.EINTERNAL && e.Kind != models.EUNAVAILABLE:
			page.Error = "error." + e.Code
		default:
			s.fail(c, err)
			return
		}
	}
	if page.Partial {
		s.reviewPartial(c, "offer_panel", "offer", "title.offer", page)
		return
	}
	s.render(c, http.StatusOK, "offer_panel", "title.offer", page)
}
