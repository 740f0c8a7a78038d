package handlers

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/relief/relief/models"
	"github.com/relief/relief/web"
)

// statusOf maps error kinds to HTTP statuses: the one place that does.
var statusOf = map[string]int{
	models.EMALFORMED:    http.StatusBadRequest,
	models.EUNAUTHORIZED: http.StatusUnauthorized,
	models.EFORBIDDEN:    http.StatusForbidden,
	models.ENOTFOUND:     http.StatusNotFound,
	models.ECONFLICT:     http.StatusConflict,
	models.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	models.EINVALID:      http.StatusUnprocessableEntity,
	models.EOVERLOADED:   http.StatusTooManyRequests,
	models.EUNAVAILABLE:  http.StatusServiceUnavailable,
	models.EINTERNAL:     http.StatusInternalServerError,
}

// asDomainError turns any error into a *models.Error: domain errors as they are,
// a database that cannot be reached into 503, anything else into a 500 (a bug).
func asDomainError(err error) *models.Error {
	var e *models.Error
	if errors.As(err, &e) {
		return e
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return models.Coded(models.ETOOLARGE, "too_large", "request body too large")
	}
	if models.IsUnavailable(err) {
		return models.Coded(models.EUNAVAILABLE, "unavailable", "a dependency is unavailable, retry shortly")
	}
	return models.Coded(models.EINTERNAL, "internal_error", "internal error")
}

type errorBody struct {
	Error map[string]any `json:"error"`
}

func errorJSON(l *web.Localizer, e *models.Error) errorBody {
	msg := e.Message
	if l != nil {
		args := []any{}
		for k, v := range e.Data {
			args = append(args, k, v)
		}
		if day, ok := e.Data["opens_on"]; ok {
			args = append(args, "Day", day)
		}
		if t := l.T("error."+e.Code, args...); t != "error."+e.Code {
			msg = t
		}
	}
	body := map[string]any{"code": e.Code, "message": msg}
	if len(e.Fields) > 0 {
		body["fields"] = e.Fields
	}
	for k, v := range e.Data {
		body[k] = v
	}
	return errorBody{Error: body}
}

// writeJSONError is used outside Gin (the CSRF deny handler).
func writeJSONError(w http.ResponseWriter, r *http.Request, rw *web.Renderer, status int, e *models.Error) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorJSON(rw.Localizer(langFromRequest(r)), e))
}

// fail answers an error: JSON for the API, a page for browsers. Internal errors
// are logged with the request id; their details never reach the client.
func (s *Server) fail(c *gin.Context, err error) {
	e := asDomainError(err)
	status := statusOf[e.Kind]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		s.Log.Error("request failed", "request_id", c.GetString(ctxRequestID), "route", c.FullPath(), "err", err.Error())
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		c.Header("Retry-After", "5")
	}
	if isAPI(c.Request) {
		c.AbortWithStatusJSON(status, errorJSON(s.localizer(c), e))
		return
	}
	title, message := "title.error", "error."+e.Code
	c.Status(status)
	s.render(c, status, "error", "title.error", map[string]string{"Title": title, "Message": message})
	c.Abort()
}

func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }
