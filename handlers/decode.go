package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	gojson "github.com/goccy/go-json"

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
//
// Decoding was a tenth of the web process's CPU at capacity, so a body that
// is valid JSON in valid UTF-8 is decoded by go-json, several times faster
// than encoding/json. Everything else, and anything go-json refuses, goes to
// encoding/json, which alone decides what is an error and how it is worded:
// go-json names Go fields instead of JSON ones, words errors differently,
// accepts raw control characters inside strings and keeps invalid UTF-8
// where encoding/json substitutes U+FFFD. FuzzDecodeJSON holds the two to
// the same result.
func decodeJSON(body []byte, v any) error {
	if utf8.Valid(body) && json.Valid(body) && gojson.Unmarshal(body, v) == nil {
		return nil
	}
	reflect.ValueOf(v).Elem().SetZero() // go-json may have filled part of v
	return decodeStandard(body, v)
}

// warmDecoder builds go-json's decoder tables and the claim decoder now: the
// first Unmarshal does it under a lock every other decode waits on, and a
// process that starts in the middle of a surge would otherwise hold its first
// claims behind it.
func warmDecoder() {
	var in models.ClaimInput
	_ = decodeJSON([]byte(`{"program":"","claimed_loss":0,"bank":{"bank_code":""},"goods":[{"sku":"","unit_price":0}]}`), &in)
}

// decodeStandard is decodeJSON with encoding/json alone.
func decodeStandard(body []byte, v any) error {
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
