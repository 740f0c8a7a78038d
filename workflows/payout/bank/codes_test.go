package bank_test

import (
	"testing"

	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows/payout/bank"
)

// models flags a claim's account for correction by these codes without
// importing the bank adapter; they must stay the adapter's codes.
func TestAccountFailureCodesMatchModels(t *testing.T) {
	for _, c := range []struct{ bank, models string }{
		{bank.CodeHolderMismatch, models.FailureHolderMismatch},
		{bank.CodeInvalidAccount, models.FailureInvalidAccount},
	} {
		if c.bank != c.models || !models.IsAccountFailure(c.bank) {
			t.Errorf("bank code %q, models code %q", c.bank, c.models)
		}
	}
	if models.IsAccountFailure(bank.CodeDailyLimit) {
		t.Errorf("%s is not an account failure", bank.CodeDailyLimit)
	}
}
