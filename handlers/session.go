package handlers

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/relief/relief/models"
	"github.com/relief/relief/web"
)

const (
	sessionCookie   = "relief_session"
	langCookie      = "relief_lang"
	staffHintCookie = "relief_staff" // admission hint (admission.go), never trusted for authorisation
)

// loadSession resolves the session cookie to a user, if any. A dead or unknown
// token is just "not signed in".
func (s *Server) loadSession(c *gin.Context) {
	token, err := c.Cookie(sessionCookie)
	if err == nil && token != "" {
		u, err := s.Store.SessionUser(c, token, s.Config.SessionIdle)
		switch {
		case err == nil:
			c.Set(ctxUser, u)
			c.Set(ctxToken, token)
		case !models.IsKind(err, models.ENOTFOUND):
			s.fail(c, err)
			return
		}
	}
	c.Next()
}

func currentUser(c *gin.Context) *models.User {
	if u, ok := c.Get(ctxUser); ok {
		return u.(*models.User)
	}
	return nil
}

// requireUser answers 401 to API calls without a session.
func (s *Server) requireUser(c *gin.Context) {
	if currentUser(c) == nil {
		s.fail(c, models.Coded(models.EUNAUTHORIZED, "unauthorized", "please sign in"))
		return
	}
	c.Next()
}

// requirePageUser sends browsers without a session to the login page.
func (s *Server) requirePageUser(c *gin.Context) {
	if currentUser(c) == nil {
		c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request.URL.RequestURI()))
		c.Abort()
		return
	}
	c.Next()
}

// startSession issues a fresh token (rotation: any previous one is deleted) and
// sets the cookies.
func (s *Server) startSession(c *gin.Context, u *models.User) error {
	previous, _ := c.Cookie(sessionCookie)
	token := models.NewSessionToken()
	if err := s.Store.CreateSession(c, u.ID, token, previous, s.Config.SessionAbsolute); err != nil {
		return err
	}
	s.setCookie(c, sessionCookie, token, int(s.Config.SessionAbsolute.Seconds()), true)
	if u.IsStaff() {
		s.setCookie(c, staffHintCookie, s.staffHint(token), int(s.Config.SessionAbsolute.Seconds()), true)
	} else {
		s.setCookie(c, staffHintCookie, "", -1, true)
	}
	c.Set(ctxUser, u)
	return nil
}

func (s *Server) endSession(c *gin.Context) error {
	if token, err := c.Cookie(sessionCookie); err == nil && token != "" {
		if err := s.Store.DeleteSession(c, token); err != nil {
			return err
		}
	}
	s.setCookie(c, sessionCookie, "", -1, true)
	s.setCookie(c, staffHintCookie, "", -1, true)
	return nil
}

// setCookie sets a cookie for the whole site: SameSite=Lax (a top-level link
// from an e-mail keeps the session; cross-site POSTs are refused anyway by the
// cross-origin protection), and Secure whenever the request came over TLS or
// RELIEF_SECURE_COOKIES says a TLS proxy sits in front.
func (s *Server) setCookie(c *gin.Context, name, value string, maxAge int, httpOnly bool) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: httpOnly, Secure: s.Config.SecureCookies || c.Request.TLS != nil, SameSite: http.SameSiteLaxMode,
	})
}

// langFromRequest: the language cookie (the page's switch), else Korean for
// pages — the site is Korean-first whatever the browser's locale — while API
// messages follow Accept-Language, as API.md promises.
func langFromRequest(r *http.Request) string {
	if ck, err := r.Cookie(langCookie); err == nil && (ck.Value == "ko" || ck.Value == "en") {
		return ck.Value
	}
	if !strings.HasPrefix(r.URL.Path, "/api/") {
		return "ko"
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
		switch {
		case strings.HasPrefix(tag, "ko"):
			return "ko"
		case strings.HasPrefix(tag, "en"):
			return "en"
		}
	}
	return "ko"
}

func (s *Server) localizer(c *gin.Context) *web.Localizer {
	return s.Web.Localizer(langFromRequest(c.Request))
}

func (s *Server) pageFor(c *gin.Context, title string, data any) *web.Page {
	p := &web.Page{L: s.localizer(c), Title: title, Path: c.Request.URL.Path, RequestID: c.GetString(ctxRequestID), Data: data}
	if u := currentUser(c); u != nil {
		p.User = u
	}
	return p
}

// render writes a full page.
func (s *Server) render(c *gin.Context, status int, page, title string, data any) {
	p := s.pageFor(c, title, data)
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Header("Cache-Control", "no-store")
	c.Status(status)
	if err := s.Web.Render(c.Writer, page, p); err != nil {
		s.Log.Error("render failed", "page", page, "err", err.Error())
	}
}
