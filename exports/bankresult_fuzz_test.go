package exports

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseBankResults: any bytes as a CSV result file (and any bytes as an
// .xlsx) end in rows that are all valid, or a *ValidationError with bounded,
// located problems, or an error — never a panic. Once a problem is reported,
// no later row is yielded; yielded rows carry digits-only accounts, positive
// amounts, unique keys and increasing row numbers.
func FuzzParseBankResults(f *testing.F) {
	f.Add([]byte(resultCSV), false)
	f.Add([]byte("\ufeff이체키,계좌번호,금액,결과코드\nK1,110-123-456789,\"1,000\",0000\nK1,110123456789,10,E1\n"), false)
	f.Add([]byte("이체키,계좌번호,금액,결과코드\n\"K1,1,1,0\n"), false)
	f.Add([]byte("PK\x03\x04garbage"), true)
	f.Fuzz(func(t *testing.T, data []byte, xlsx bool) {
		format := CSV
		if xlsx {
			format = XLSX
		}
		var got []TransferResult
		keys := map[string]bool{}
		err := ParseBankResults(bytes.NewReader(data), format, func(r TransferResult) error {
			got = append(got, r)
			return nil
		})
		for i, r := range got {
			if r.Row < 2 || i > 0 && r.Row <= got[i-1].Row {
				t.Fatalf("row numbers %d after %v", r.Row, got[:i])
			}
			if r.Amount <= 0 || r.Account == "" || strings.Trim(r.Account, "0123456789") != "" || r.Key == "" || r.Code == "" {
				t.Fatalf("yielded an invalid row %+v", r)
			}
			if keys[r.Key] {
				t.Fatalf("duplicate key %q yielded twice", r.Key)
			}
			keys[r.Key] = true
			if utf8.RuneCountInString(r.Message) > 500 {
				t.Fatalf("message of %d runes", utf8.RuneCountInString(r.Message))
			}
		}
		var verr *ValidationError
		if errors.As(err, &verr) {
			if len(verr.Errors) == 0 || len(verr.Errors) > MaxReportedErrors {
				t.Fatalf("validation error with %d problems", len(verr.Errors))
			}
			for _, e := range verr.Errors {
				if e.Row < 1 || e.Message == "" {
					t.Fatalf("unlocated problem %+v", e)
				}
			}
		}
	})
}
