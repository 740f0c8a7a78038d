package allocation

import (
	"context"
	"errors"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/relief/relief/models"
)

// Domain errors cross Temporal as non-retryable application errors whose type
// is the API code and whose details are the kind, fields and data, so the
// HTTP layer answers an update's refusal exactly as it would a direct call.

// Failure turns a domain error into an application error (workflow
// validators, update handlers and activities return it).
func Failure(e *models.Error) error {
	return temporal.NewApplicationErrorWithOptions(e.Message, e.Code, temporal.ApplicationErrorOptions{
		NonRetryable: true,
		Category:     temporal.ApplicationErrorCategoryBenign, // expected refusals, not alerts
		Details:      []any{e.Kind, e.Fields, e.Data},
	})
}

// ActivityError is what an activity returns for err: domain refusals (bad
// state, forbidden, not found, conflict) as non-retryable failures; anything
// else (a database outage, a bug) as is, so Temporal retries it.
func ActivityError(err error) error {
	var e *models.Error
	if errors.As(err, &e) && e.Kind != models.EINTERNAL && e.Kind != models.EUNAVAILABLE {
		return Failure(e)
	}
	return err
}

// unwrap returns the application error inside an activity error, so an update
// fails with the domain error itself.
func unwrap(err error) error {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae
	}
	return err
}

// DomainError turns what a Temporal client call returned back into a domain
// error: an application error carrying a kind becomes that *models.Error;
// Temporal unreachable or too slow becomes 503 workflow_unavailable.
func DomainError(err error) error {
	if err == nil {
		return nil
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.HasDetails() {
		var kind string
		var fields map[string]string
		var data map[string]any
		if derr := ae.Details(&kind, &fields, &data); derr == nil && kind != "" {
			return &models.Error{Kind: kind, Code: ae.Type(), Message: ae.Message(), Fields: fields, Data: data}
		}
	}
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	var exhausted *serviceerror.ResourceExhausted
	if errors.As(err, &unavailable) || errors.As(err, &deadline) || errors.As(err, &exhausted) || errors.Is(err, context.DeadlineExceeded) {
		return models.Coded(models.EUNAVAILABLE, "workflow_unavailable", "the workflow service is unavailable, retry shortly")
	}
	return err
}
