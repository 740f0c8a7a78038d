// Package models holds Relief's domain types, coded errors and PostgreSQL storage.
// PostgreSQL is the system of record; workflows drive state changes through it.
package models

import (
	"errors"
	"fmt"
)

// Error codes. Each maps to one HTTP status in handlers (see handlers/errors.go);
// the code itself is the stable, machine-readable `error.code` of the API.
const (
	EINVALID      = "invalid"        // 422 validation failed
	EMALFORMED    = "malformed"      // 400 request cannot be parsed
	EUNAUTHORIZED = "unauthorized"   // 401 not signed in
	EFORBIDDEN    = "forbidden"      // 403 not allowed
	ENOTFOUND     = "not_found"      // 404 absent or not visible to the caller
	ECONFLICT     = "conflict"       // 409 state conflict
	ETOOLARGE     = "too_large"      // 413 body too large
	EOVERLOADED   = "overloaded"     // 429
	EUNAVAILABLE  = "unavailable"    // 503 dependency down
	EINTERNAL     = "internal_error" // 500 a bug, never bad input
)

// Error is a domain error with a kind (one of the E* constants, deciding the HTTP
// status), an API code (snake_case, specific), a message key for translation and
// optional per-field problems.
type Error struct {
	Kind    string
	Code    string
	Message string            // English fallback text; handlers translate by Code
	Fields  map[string]string // field → problem code
	Data    map[string]any    // extra response members (e.g. existing claim id)
}

func (e *Error) Error() string {
	if len(e.Fields) > 0 {
		return fmt.Sprintf("%s: %s %v", e.Code, e.Message, e.Fields)
	}
	return e.Code + ": " + e.Message
}

// Errorf builds an Error whose API code equals the kind.
func Errorf(kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: kind, Message: fmt.Sprintf(format, args...)}
}

// Coded builds an Error with a specific API code.
func Coded(kind, code, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message}
}

// FieldError is a 422 naming the offending field.
func FieldError(code, field, problem, message string) *Error {
	return &Error{Kind: EINVALID, Code: code, Message: message, Fields: map[string]string{field: problem}}
}

// ErrorKind returns the kind of err, EINTERNAL for anything that is not an *Error.
func ErrorKind(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return EINTERNAL
}

// IsKind reports whether err is an *Error of the given kind.
func IsKind(err error, kind string) bool { return err != nil && ErrorKind(err) == kind }

// ErrNotFound is the shared 404: absent and not-yours look the same.
var ErrNotFound = Coded(ENOTFOUND, "not_found", "not found")
