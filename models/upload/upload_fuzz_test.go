package upload

import (
	"bytes"
	"compress/flate"
	"testing"
)

func deflate(t testing.TB, data []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	_, _ = w.Write(data)
	_ = w.Close()
	return b.Bytes()
}

// FuzzCheck: any bytes under any name are accepted or refused with a coded
// error, never a panic, and an accepted file's kind agrees with its name.
func FuzzCheck(f *testing.F) {
	f.Add(workbook(f), "a.xlsx")
	f.Add([]byte("seller_brn,date\n1208147521,2025-09-01\n"), "a.csv")
	f.Add([]byte("PK\x05\x06\x00\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), "a.xlsx")
	f.Add([]byte("%PDF-1.4"), "a.pdf")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		for _, p := range []Policy{Spreadsheet, Document} {
			k, err := p.Check(bytes.NewReader(data), int64(len(data)), name)
			if err != nil {
				if code(err) == "" || code(err)[:5] == "other" {
					t.Fatalf("uncoded error %v", err)
				}
				continue
			}
			if !p.accepts(k) {
				t.Fatalf("accepted kind %q outside the policy", k)
			}
		}
	})
}
