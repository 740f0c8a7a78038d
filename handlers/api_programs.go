package handlers

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

func (s *Server) apiPrograms(c *gin.Context) {
	programs, err := s.Store.ListPrograms(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	items := make([]gin.H, 0, len(programs))
	for _, p := range programs {
		items = append(items, gin.H{"code": p.Code, "name": p.Name, "agency": p.Agency, "status": p.Status,
			"outage": p.Outage, "claim_window": p.ClaimWindow})
	}
	c.JSON(http.StatusOK, gin.H{"items": items})
}

func (s *Server) apiProgram(c *gin.Context) {
	p, err := s.Store.ProgramByCode(c, c.Param("code"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}
