package banksim

import (
	"hash/fnv"
	"strings"
	"unicode"
)

// banks are the bank codes the sandbox serves (금융결제원 표준 코드); any other
// code fails with unsupported_bank.
var banks = map[string]string{
	"002": "KDB산업", "003": "IBK기업", "004": "KB국민", "007": "수협", "011": "NH농협",
	"020": "우리", "023": "SC제일", "027": "한국씨티", "031": "iM뱅크", "032": "부산",
	"034": "광주", "035": "제주", "037": "전북", "039": "경남", "045": "새마을금고",
	"048": "신협", "071": "우체국", "081": "하나", "088": "신한", "089": "케이뱅크",
	"090": "카카오뱅크", "092": "토스뱅크",
}

// normalizeAccount strips the hyphens and spaces people type into account
// numbers. It reports whether the result is an account the sandbox treats as
// open: 10–14 digits, not starting with "999" (the documented "closed account"
// prefix for demos and tests).
func normalizeAccount(s string) (string, bool) {
	s = strings.Map(func(r rune) rune {
		if r == '-' || unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
	if len(s) < 10 || len(s) > 14 || strings.HasPrefix(s, "999") {
		return s, false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return s, false
		}
	}
	return s, true
}

var (
	surnames   = []rune("김이박최정강조윤장임한오서신권황안송류홍")
	givenNames = []string{"민준", "서연", "도윤", "서윤", "하준", "지우", "시우", "하은", "주원", "지유",
		"지호", "수아", "예준", "지아", "도현", "채원", "건우", "윤서", "우진", "다은"}
)

// DefaultHolder is the holder the sandbox reports for an open account nobody
// registered: a stable Korean name derived from the bank code and the account
// number, so demo data can be generated to match without talking to the sandbox.
// Register a different holder with PUT /admin/accounts/{bank}/{account}.
func DefaultHolder(bankCode, account string) string {
	account, _ = normalizeAccount(account)
	h := fnv.New32a()
	h.Write([]byte(bankCode + "/" + account))
	n := h.Sum32()
	return string(surnames[n%uint32(len(surnames))]) + givenNames[(n/uint32(len(surnames)))%uint32(len(givenNames))]
}

// forcedMismatchHolder is what holder inquiry reports for an account under the
// holder_mismatch fault: a name no caller will have on file.
const forcedMismatchHolder = "다른예금주"

// sameHolder compares holder names the way banks do: ignoring spaces and letter
// case, and treating the usual spellings of 주식회사 alike.
func sameHolder(a, b string) bool {
	norm := func(s string) string {
		s = strings.NewReplacer("㈜", "(주)", "주식회사", "(주)").Replace(s)
		return strings.ToLower(strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) {
				return -1
			}
			return r
		}, s))
	}
	return norm(a) == norm(b)
}
