package handlers

import (
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/relief/relief/models"
)

// The OpenAPI document is built from a table of operations (below) and JSON
// schemas reflected from the Go types the handlers really encode, so field
// names cannot drift from the code. A test fails when an /api/v1 route has no
// entry here.

type apiOp struct {
	Summary   string
	Tag       string
	Roles     []string // empty = public
	Request   any      // zero value of the JSON body type; nil for none
	Response  any      // zero value of the success body type; nil for none
	Status    int      // success status
	Idem      bool     // Idempotency-Key required
	Multipart bool
}

// apiOps is keyed by "METHOD /api/v1/path" with Gin's :param syntax.
var apiOps = map[string]apiOp{
	"POST /api/v1/merchants/signup": {Summary: "Merchant sign-up", Tag: "session", Request: signupRequest{}, Response: struct {
		ID    string `json:"id"`
		Email string `json:"email"`
	}{}, Status: 201},
	"POST /api/v1/session": {Summary: "Log in (sets the session cookie)", Tag: "session", Request: loginRequest{}, Response: struct {
		User models.User `json:"user"`
	}{}, Status: 200},
	"DELETE /api/v1/session":     {Summary: "Log out", Tag: "session", Status: 204},
	"GET /api/v1/me":             {Summary: "The signed-in user", Tag: "session", Roles: models.AllRoles, Response: models.User{}, Status: 200},
	"GET /api/v1/programs":       {Summary: "Relief programs", Tag: "programs", Response: listOf[models.Program](), Status: 200},
	"GET /api/v1/programs/:code": {Summary: "A program with its rules", Tag: "programs", Response: models.Program{}, Status: 200},
	"POST /api/v1/claims": {Summary: "File a claim (202 with a receipt; the workflow starts asynchronously)", Tag: "claims",
		Roles: []string{models.RoleMerchant}, Request: models.ClaimInput{}, Response: models.Filed{}, Status: 202, Idem: true},
	"GET /api/v1/claims":     {Summary: "Claims visible to the caller (keyset pagination)", Tag: "claims", Roles: models.AllRoles, Response: listOf[models.Claim](), Status: 200},
	"GET /api/v1/claims/:id": {Summary: "A claim with amounts, flags, masked bank account and timeline", Tag: "claims", Roles: models.AllRoles, Response: models.Claim{}, Status: 200},
}

type list[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func listOf[T any]() any { return list[T]{} }

func (s *Server) openAPIDocument() map[string]any {
	schemas := map[string]any{}
	paths := map[string]any{}
	keys := make([]string, 0, len(apiOps))
	for k := range apiOps {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		op := apiOps[k]
		method, path, _ := strings.Cut(k, " ")
		oaPath, params := openAPIPath(path)
		item, _ := paths[oaPath].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[oaPath] = item
		}
		o := map[string]any{"summary": op.Summary, "tags": []string{op.Tag}}
		if len(op.Roles) > 0 {
			o["security"] = []any{map[string]any{"session": []string{}}}
			o["x-roles"] = op.Roles
		} else {
			o["security"] = []any{}
		}
		var parameters []any
		for _, p := range params {
			parameters = append(parameters, map[string]any{"name": p, "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		if method != http.MethodGet {
			parameters = append(parameters, map[string]any{"name": "Idempotency-Key", "in": "header", "required": op.Idem, "schema": map[string]any{"type": "string", "maxLength": 200}})
		}
		if len(parameters) > 0 {
			o["parameters"] = parameters
		}
		if op.Multipart {
			o["requestBody"] = map[string]any{"required": true, "content": map[string]any{"multipart/form-data": map[string]any{
				"schema": map[string]any{"type": "object", "properties": map[string]any{"file": map[string]any{"type": "string", "format": "binary"}}}}}}
		} else if op.Request != nil {
			o["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(op.Request), schemas)}}}
		}
		responses := map[string]any{}
		success := map[string]any{"description": http.StatusText(op.Status)}
		if op.Response != nil {
			success["content"] = map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(op.Response), schemas)}}
		}
		responses[strconv.Itoa(op.Status)] = success
		for _, code := range []int{400, 401, 403, 404, 409, 413, 422, 429, 503} {
			responses[strconv.Itoa(code)] = map[string]any{"$ref": "#/components/responses/Error"}
		}
		o["responses"] = responses
		item[strings.ToLower(method)] = o
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "Relief API", "version": "1",
			"description": "Merchant damage claims after platform outages. Money is integer won; times are RFC 3339. Errors: {\"error\": {\"code\", \"message\", \"fields\"}}."},
		"servers": []any{map[string]any{"url": "/"}},
		"paths":   paths,
		"components": map[string]any{
			"schemas":         schemas,
			"securitySchemes": map[string]any{"session": map[string]any{"type": "apiKey", "in": "cookie", "name": sessionCookie}},
			"responses": map[string]any{"Error": map[string]any{"description": "Error", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{
				"type": "object", "required": []string{"error"}, "properties": map[string]any{"error": map[string]any{"type": "object", "required": []string{"code", "message"},
					"properties": map[string]any{"code": map[string]any{"type": "string"}, "message": map[string]any{"type": "string"},
						"fields": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}}}}}}}}}},
		},
	}
}

// openAPIPath turns /claims/:id into /claims/{id} and lists the parameters.
func openAPIPath(p string) (string, []string) {
	parts := strings.Split(p, "/")
	var params []string
	for i, part := range parts {
		if strings.HasPrefix(part, ":") || strings.HasPrefix(part, "*") {
			params = append(params, part[1:])
			parts[i] = "{" + part[1:] + "}"
		}
	}
	return strings.Join(parts, "/"), params
}

var timeType = reflect.TypeOf(time.Time{})

// schemaOf reflects a JSON schema from t, registering named structs as components.
func schemaOf(t reflect.Type, schemas map[string]any) map[string]any {
	for t.Kind() == reflect.Pointer {
		s := schemaOf(t.Elem(), schemas)
		s["nullable"] = true
		return s
	}
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t.Kind() == reflect.String:
		return map[string]any{"type": "string"}
	case t.Kind() == reflect.Bool:
		return map[string]any{"type": "boolean"}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return map[string]any{"type": "integer", "format": "int64"}
	case t.Kind() == reflect.Array && t.Elem().Kind() == reflect.Uint8: // uuid.UUID
		return map[string]any{"type": "string", "format": "uuid"}
	case t.Kind() == reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), schemas)}
	case t.Kind() == reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), schemas)}
	case t.Kind() == reflect.Struct:
		name := t.Name()
		if name != "" && !strings.Contains(name, "[") {
			if _, done := schemas[name]; !done {
				schemas[name] = map[string]any{} // placeholder against recursion
				schemas[name] = structSchema(t, schemas)
			}
			return map[string]any{"$ref": "#/components/schemas/" + name}
		}
		return structSchema(t, schemas)
	}
	return map[string]any{}
}

func structSchema(t reflect.Type, schemas map[string]any) map[string]any {
	props := map[string]any{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = schemaOf(f.Type, schemas)
	}
	return map[string]any{"type": "object", "properties": props}
}

func (s *Server) apiOpenAPI(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=300")
	c.JSON(http.StatusOK, s.openAPIDocument())
}
