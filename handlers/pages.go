package handlers

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/relief/relief/models"
)

func (s *Server) pageHome(c *gin.Context) { s.render(c, http.StatusOK, "home", "title.home", nil) }

type loginForm struct {
	Email, Next, Error string
}

// safeNext keeps redirects on this site (no //evil.example or absolute URLs).
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/programs"
	}
	return next
}

func (s *Server) pageLogin(c *gin.Context) {
	s.render(c, http.StatusOK, "login", "title.login", loginForm{Next: safeNext(c.Query("next"))})
}

func (s *Server) pageLoginSubmit(c *gin.Context) {
	email := c.PostForm("email")
	next := safeNext(c.PostForm("next"))
	_, err := s.login(c, email, c.PostForm("password"))
	if err != nil {
		e := asDomainError(err)
		if e.Kind == models.EINTERNAL || e.Kind == models.EUNAVAILABLE {
			s.fail(c, err)
			return
		}
		status := statusOf[e.Kind]
		s.render(c, status, "login", "title.login", loginForm{Email: email, Next: next, Error: "error." + e.Code})
		return
	}
	c.Redirect(http.StatusSeeOther, next)
}

func (s *Server) pageLogout(c *gin.Context) {
	if err := s.endSession(c); err != nil {
		s.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/")
}

type signupForm struct {
	Email, Name, Phone, Error string
	Fields                    map[string]string
}

func (s *Server) pageSignup(c *gin.Context) {
	s.render(c, http.StatusOK, "signup", "title.signup", signupForm{})
}

func (s *Server) pageSignupSubmit(c *gin.Context) {
	form := signupForm{Email: c.PostForm("email"), Name: c.PostForm("name"), Phone: c.PostForm("phone")}
	u, err := s.Store.CreateUser(c, models.NewUser{Email: form.Email, Name: form.Name, Phone: form.Phone,
		Password: c.PostForm("password"), Roles: []string{models.RoleMerchant}})
	if err == nil {
		err = s.startSession(c, u)
	}
	if err != nil {
		e := asDomainError(err)
		if e.Kind == models.EINTERNAL || e.Kind == models.EUNAVAILABLE {
			s.fail(c, err)
			return
		}
		form.Error, form.Fields = "error."+e.Code, e.Fields
		s.render(c, statusOf[e.Kind], "signup", "title.signup", form)
		return
	}
	c.Redirect(http.StatusSeeOther, "/programs")
}

func (s *Server) pageLanguage(c *gin.Context) {
	lang := c.Param("lang")
	if lang != "ko" && lang != "en" {
		s.fail(c, models.ErrNotFound)
		return
	}
	s.setCookie(c, langCookie, lang, 365*24*3600, false)
	c.Redirect(http.StatusSeeOther, safeNext(c.Query("next")))
}

type programsPage struct {
	Programs []*models.Program
	Open     func(*models.Program) bool
}

func (s *Server) pagePrograms(c *gin.Context) {
	programs, err := s.Store.ListPrograms(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	now := s.Store.Now()
	s.render(c, http.StatusOK, "programs", "title.programs", programsPage{
		Programs: programs,
		Open:     func(p *models.Program) bool { return p.WindowOpen(now) },
	})
}
