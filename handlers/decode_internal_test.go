package handlers

import (
	"reflect"
	"testing"

	"github.com/relief/relief/models"
)

var claimBody = []byte(`{"program":"KPOST-2025-NIRS","brn":"1234567890","business_name":"부하시험상회 123","representative":"김시험",` +
	`"phone":"010-1234-5678","category":"food","region":"대전","claimed_loss":1500000,"accept_offer":false,` +
	`"bank":{"bank_code":"004","account_number":"900412345678","holder":"김시험"},` +
	`"goods":[{"sku":"RICE-10","name":"햅쌀 10kg","unit_price":25500,"quantity":12,"perishable":true},` +
	`{"sku":"APPLE-5","name":"사과 5kg","unit_price":31000,"quantity":3,"perishable":true}]}`)

// FuzzDecodeJSON: whatever the body, decodeJSON gives the same claim and the
// same error (code, message, fields) as encoding/json alone (decodeStandard,
// which it falls back to).
func FuzzDecodeJSON(f *testing.F) {
	f.Add(claimBody)
	for _, s := range []string{
		`{"brn":"1"} x`, `{"brn":"1"}{"brn":"2"}`, `{"brn":"1"}  `, `{"brn":1}`, `{"bank":{"account_number":12}}`,
		`{"goods":[{"unit_price":"x"}]}`, `{"goods":[{"sku":"a"},{"unit_price":1.5}]}`, `{"claimed_loss":1e3}`,
		`{"claimed_loss":99999999999999999999}`, "{\"brn\":\"\xff\xfe\"}", `{"brn":"a\u0000b"}`, `{"BRN":"123"}`,
		`{"brn":"1","brn":"2"}`, `{"brn":null}`, `[]`, `null`, `{"claimed_loss":-0}`, `{"accept_offer":"true"}`,
		`{"goods":{}}`, `{`, ``, `{"brn":"\ud800"}`, `{"claimed_loss":1.0}`, `{"unknown":{"deep":[1,2,{"x":"y"}]}}`,
		"{\"brn\":\"a\nb\"}", `{"claimed_loss":01}`, `{"claimed_loss":+1}`, "\xef\xbb\xbf{}", `{"goods":[null]}`,
		`{"goods":null,"bank":null}`, `{"claimed_loss":"1"}`, `{"brn":"\/\b\f\n\r\t\"\\"}`, `{"program":"ＫＰＯＳＴ"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got, want models.ClaimInput
		gotErr, wantErr := decodeJSON(body, &got), decodeStandard(body, &want)
		if !reflect.DeepEqual(gotErr, wantErr) {
			t.Fatalf("%q: error %v, encoding/json gives %v", body, gotErr, wantErr)
		}
		if wantErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: decoded %+v, encoding/json gives %+v", body, got, want)
		}
	})
}

func BenchmarkDecodeClaim(b *testing.B) {
	for _, c := range []struct {
		name   string
		decode func([]byte, any) error
	}{{"decodeJSON", decodeJSON}, {"encoding/json", decodeStandard}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var in models.ClaimInput
				if err := c.decode(claimBody, &in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
