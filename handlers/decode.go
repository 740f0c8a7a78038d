package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/relief/relief/models"
)

const maxJSONBody = 1 << 20 // 1 MiB (API.md: larger bodies get 413)

// readBody reads a bounded request body.
func readBody(c *gin.Context) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxJSONBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, models.Coded(models.ETOOLARGE, "too_large", "request body over 1 MiB")
	}
	return body, err
}

// decodeJSON parses body into v: 400 malformed_json for syntax errors, naming
// the field for type errors.
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return &models.Error{Kind: models.EMALFORMED, Code: "malformed_json", Message: "wrong type for " + typeErr.Field,
				Fields: map[string]string{typeErr.Field: "wrong_type"}}
		}
		return models.Coded(models.EMALFORMED, "malformed_json", "request body is not valid JSON")
	}
	if dec.More() {
		return models.Coded(models.EMALFORMED, "malformed_json", "trailing data after the JSON body")
	}
	return nil
}

func bindJSON(c *gin.Context, v any) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	return decodeJSON(body, v)
}
