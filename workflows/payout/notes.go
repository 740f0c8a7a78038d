package payout

import (
	"github.com/relief/relief/models"
	"github.com/relief/relief/models/rules"
	"github.com/relief/relief/workflows/payout/bank"
)

// The merchant reads these on the claim's timeline (Korean, like the rest of
// the service). They name the amount and the bank, never the account.

var failureReasons = map[string]string{
	bank.CodeHolderMismatch:  "예금주명이 계좌의 예금주와 일치하지 않습니다",
	bank.CodeInvalidAccount:  "계좌번호가 유효하지 않거나 해지된 계좌입니다",
	bank.CodeDailyLimit:      "받는 계좌의 1일 입금 한도를 초과했습니다",
	bank.CodeUnsupportedBank: "지원하지 않는 은행입니다",
	bank.CodeInvalidRequest:  "은행이 이체 요청을 거절했습니다",
}

// FailureReason is the Korean reason shown for a failure code; the bank's own
// message when the code is not one of ours.
func FailureReason(code, bankMessage string) string {
	if r, ok := failureReasons[code]; ok {
		return r
	}
	if bankMessage != "" {
		return bankMessage
	}
	return "은행 처리 실패 (" + code + ")"
}

func bankName(code string) string {
	if n, ok := models.Banks[code]; ok {
		return n
	}
	return code
}

func payingNote(amount int64, bankCode string) string {
	return "지원금 " + rules.FormatWon(amount) + "을 " + bankName(bankCode) + " 계좌로 이체하고 있습니다."
}

func paidNote(amount int64, bankCode string) string {
	return "지원금 " + rules.FormatWon(amount) + "이 " + bankName(bankCode) + " 계좌로 입금되었습니다."
}

func partlyPaidNote(amount int64, bankCode string, left int64) string {
	return "지원금 " + rules.FormatWon(amount) + "이 " + bankName(bankCode) + " 계좌로 입금되었습니다. 남은 " +
		rules.FormatWon(left) + "은 다음 지급 차수에 지급됩니다."
}

const closedNote = "지원금 지급이 모두 끝나 신청을 종결합니다."

func failedNote(amount int64, code, reason string) string {
	if reason == "" {
		reason = FailureReason(code, "")
	}
	if models.IsAccountFailure(code) {
		// The claim waits for the merchant's correction (models.CorrectClaimBank).
		return "지원금 " + rules.FormatWon(amount) + " 지급에 실패했습니다: " + reason +
			". 신청 내역에서 지급 계좌 정보를 수정해 주세요. 수정하신 뒤 다음 지급 차수에 지급됩니다."
	}
	return "지원금 " + rules.FormatWon(amount) + " 지급에 실패했습니다: " + reason +
		". 계좌 정보를 확인해 주세요. 이 금액은 다음 지급 차수에 다시 포함됩니다."
}
