package handlers

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/relief/relief/models"
)

type signupRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
	Phone    string `json:"phone"`
}

func (s *Server) apiSignup(c *gin.Context) {
	var req signupRequest
	if err := bindJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	u, err := s.Store.CreateUser(c, models.NewUser{Email: req.Email, Password: req.Password, Name: req.Name, Phone: req.Phone, Roles: []string{models.RoleMerchant}})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"id": u.ID, "email": u.Email})
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// login authenticates with throttling; shared by the API and the login page.
func (s *Server) login(c *gin.Context, email, password string) (*models.User, error) {
	key := strings.ToLower(strings.TrimSpace(email))
	if !s.throttle.allow(key, c.ClientIP(), s.Store.Now()) {
		return nil, models.Coded(models.EOVERLOADED, "throttled", "too many login attempts")
	}
	u, err := s.Store.Authenticate(c, email, password)
	if err != nil {
		if models.IsKind(err, models.EUNAUTHORIZED) {
			_ = s.Store.Audit(c, nil, models.AuditEntry{Actor: "anonymous", Action: "login_failed", Subject: "user", IP: c.ClientIP()})
		}
		return nil, err
	}
	s.throttle.reset(key)
	if err := s.startSession(c, u); err != nil {
		return nil, err
	}
	return u, s.Store.Audit(c, nil, models.AuditEntry{ActorID: &u.ID, Actor: u.Email, Action: "login", Subject: "user:" + u.ID.String(), IP: c.ClientIP()})
}

func (s *Server) apiLogin(c *gin.Context) {
	var req loginRequest
	if err := bindJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	u, err := s.login(c, req.Email, req.Password)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"user": u})
}

func (s *Server) apiLogout(c *gin.Context) {
	if err := s.endSession(c); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) apiMe(c *gin.Context) { c.JSON(http.StatusOK, currentUser(c)) }
