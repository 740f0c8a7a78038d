package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
)

// claimBodies builds the JSON body of POST /api/v1/claims for request i. The
// body is a pure function of (program, i, brn), so a retry resends exactly the
// same bytes under the same Idempotency-Key. Up to prebuildLimit bodies are
// built before the clock starts into one arena; beyond that a body is built
// when it is sent (a few hundred nanoseconds, no reflection), which keeps a
// million-claim run from holding ~400 MB of bodies.
type claimBodies struct {
	program []byte // JSON string literal, quotes included
	brns    []uint64
	arena   []byte
	offs    []uint32 // len(brns)+1 offsets into arena when prebuilt
}

const prebuildLimit = 100_000

func newClaimBodies(program string, brns []uint64) *claimBodies {
	p, _ := json.Marshal(program) // a string always marshals
	b := &claimBodies{program: p, brns: brns}
	if len(brns) <= prebuildLimit {
		b.arena = make([]byte, 0, len(brns)*480)
		b.offs = make([]uint32, 0, len(brns)+1)
		for i := range brns {
			b.offs = append(b.offs, uint32(len(b.arena)))
			b.arena = b.appendBody(b.arena, i)
		}
		b.offs = append(b.offs, uint32(len(b.arena)))
	}
	return b
}

// body returns request i's body; callers must not modify it.
func (b *claimBodies) body(i int) []byte {
	if b.offs != nil {
		lo, hi := b.offs[i], b.offs[i+1]
		return b.arena[lo:hi:hi]
	}
	return b.appendBody(make([]byte, 0, 560), i)
}

func appendPadded(dst []byte, v uint64, width int) []byte {
	var tmp [20]byte
	s := strconv.AppendUint(tmp[:0], v, 10)
	for k := len(s); k < width; k++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// appendBody writes a claim that passes the API's validation: valid BRN,
// Korean business name and representative, a mobile number, category food,
// region 대전, a claimed loss in whole won, KB국민 (004) account of 12–14
// digits, and one or two goods lines.
func (b *claimBodies) appendBody(dst []byte, i int) []byte {
	u := uint64(i)
	dst = append(dst, `{"program":`...)
	dst = append(dst, b.program...)
	dst = append(dst, `,"brn":"`...)
	dst = appendBRN(dst, b.brns[i])
	dst = append(dst, `","business_name":"부하시험상회 `...)
	dst = strconv.AppendUint(dst, u+1, 10)
	dst = append(dst, `","representative":"김시험","phone":"010-`...)
	dst = appendPadded(dst, 1000+(u/10000)%9000, 4)
	dst = append(dst, '-')
	dst = appendPadded(dst, u%10000, 4)
	dst = append(dst, `","category":"food","region":"대전","claimed_loss":`...)
	dst = strconv.AppendUint(dst, 500_000+(u*7919%9500)*1000, 10) // 0.5M – 10M won
	dst = append(dst, `,"accept_offer":false,"bank":{"bank_code":"004","account_number":"`...)
	accLen := 12 + i%3 // 12, 13 or 14 digits
	dst = append(dst, "9004"...)
	dst = appendPadded(dst, (u*2654435761+b.brns[i])%pow10[accLen-4], accLen-4)
	dst = append(dst, `","holder":"김시험"},"goods":[{"sku":"BENCH-RICE-10","name":"햅쌀 10kg","unit_price":`...)
	dst = strconv.AppendUint(dst, 25_000+(u%40)*500, 10)
	dst = append(dst, `,"quantity":`...)
	dst = strconv.AppendUint(dst, 1+u%200, 10)
	dst = append(dst, `,"perishable":true}`...)
	if i%2 == 1 {
		dst = append(dst, `,{"sku":"BENCH-APPLE-5","name":"사과 5kg","unit_price":`...)
		dst = strconv.AppendUint(dst, 30_000+(u%25)*1000, 10)
		dst = append(dst, `,"quantity":`...)
		dst = strconv.AppendUint(dst, 1+u%80, 10)
		dst = append(dst, `,"perishable":true}`...)
	}
	return append(dst, "]}"...)
}

var pow10 = [...]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12}

// idemKeys derives a distinct UUID (version 4 layout) per request from a
// random per-run seed, so keys need no storage and a retry reuses its key.
type idemKeys [16]byte

func (s *idemKeys) key(i int) string {
	u := [16]byte(*s)
	v := uint64(i)
	for k := 15; k >= 9; k-- { // i < 2^56: bytes 9..15 make keys distinct
		u[k] ^= byte(v)
		v >>= 8
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return formatUUID(u)
}

func formatUUID(u [16]byte) string {
	var buf [36]byte
	hex.Encode(buf[0:8], u[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], u[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], u[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], u[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:36], u[10:16])
	return string(buf[:])
}

var errBadUUID = errors.New("not a UUID")

// parseUUID parses the canonical 8-4-4-4-12 form (either case).
func parseUUID(s string) ([16]byte, error) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, errBadUUID
	}
	src := []byte(s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36])
	if _, err := hex.Decode(u[:], src); err != nil {
		return u, errBadUUID
	}
	return u, nil
}
