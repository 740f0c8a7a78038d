package models_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
)

// FuzzClaimInput: any request body decoded as the API decodes it and then
// normalised either yields a claim that satisfies every intake rule, or a
// 422 that names fields without echoing what was sent. Normalising twice
// changes nothing. Never a panic.
func FuzzClaimInput(f *testing.F) {
	valid := `{"program":"KPOST-2025-NIRS","brn":"120-81-47521","business_name":"대전상회","representative":"김대전","phone":"010-1234-5678",` +
		`"category":"food","region":"대전","claimed_loss":3500000,"accept_offer":false,` +
		`"bank":{"bank_code":"004","account_number":"123-4567-8901-23","holder":"김대전"},` +
		`"goods":[{"sku":"A-1","name":"사과","unit_price":25000,"quantity":120,"perishable":true}]}`
	f.Add([]byte(valid))
	f.Add([]byte(`{"program":" X ","brn":"1208147522","claimed_loss":-1,"bank":{"account_number":"12"}}`))
	f.Add([]byte(`{"goods":[{"sku":"a"},{"sku":"a"}],"accept_offer":true}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var in models.ClaimInput
		dec := json.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(&in); err != nil {
			return // 400 malformed_json, handled before Normalize
		}
		raw := in
		raw.Goods = append([]models.GoodsItem(nil), in.Goods...)
		brn, account, err := in.Normalize()
		if err != nil {
			var e *models.Error
			if !errors.As(err, &e) || e.Kind != models.EINVALID || len(e.Fields) == 0 {
				t.Fatalf("want a 422 naming fields, got %#v", err)
			}
			msg := err.Error()
			for _, v := range []string{raw.BRN, raw.Phone, raw.Bank.AccountNumber, raw.Representative, raw.Bank.Holder} {
				if len(strings.TrimSpace(v)) >= 6 && strings.Contains(msg, strings.TrimSpace(v)) {
					t.Fatalf("error %q echoes personal data %q", msg, v)
				}
			}
			return
		}
		if _, perr := rules.ParseBRN(brn.String()); perr != nil || in.Program == "" {
			t.Fatalf("accepted brn %q program %q", brn, in.Program)
		}
		if len(account) < 10 || len(account) > 14 || strings.Trim(account, "0123456789") != "" {
			t.Fatalf("accepted account %q", account)
		}
		if _, ok := models.Banks[in.Bank.BankCode]; !ok || in.ClaimedLoss < 0 || in.ClaimedLoss == 0 && !in.AcceptOffer {
			t.Fatalf("accepted bank %q loss %d", in.Bank.BankCode, in.ClaimedLoss)
		}
		for _, s := range []string{in.Program, in.BusinessName, in.Representative, in.Phone, in.Bank.Holder} {
			if s != strings.TrimSpace(s) || s == "" || !utf8.ValidString(s) && utf8.RuneCountInString(s) > 100 {
				t.Fatalf("accepted untrimmed or empty field %q", s)
			}
		}
		if len(in.Goods) > 50 {
			t.Fatalf("accepted %d goods", len(in.Goods))
		}
		skus := map[string]bool{}
		for _, g := range in.Goods {
			if g.UnitPrice <= 0 || g.Quantity <= 0 || skus[g.SKU] || g.SKU == "" {
				t.Fatalf("accepted goods line %+v", g)
			}
			skus[g.SKU] = true
		}
		again := in
		brn2, account2, err := again.Normalize()
		if err != nil || brn2 != brn || account2 != account || again.BusinessName != in.BusinessName {
			t.Fatalf("normalising twice differs: %v", err)
		}
	})
}
