package workflows

import (
	"context"
	"errors"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows/claim"
)

// SearchAttributes are the custom search attributes Relief's workflows use.
// They hold program codes and statuses only: never personal data.
var SearchAttributes = map[string]enums.IndexedValueType{
	claim.SearchProgram.GetName(): enums.INDEXED_VALUE_TYPE_KEYWORD,
	claim.SearchStatus.GetName():  enums.INDEXED_VALUE_TYPE_KEYWORD,
}

// EnsureSearchAttributes registers SearchAttributes in namespace; already
// registered ones are fine, so every worker may call it at start.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	_, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        namespace,
		SearchAttributes: SearchAttributes,
	})
	var exists *serviceerror.AlreadyExists
	if errors.As(err, &exists) {
		return nil
	}
	return err
}

// Register adds every workflow and activity to w.
func Register(w worker.Registry, store *models.Store) {
	w.RegisterWorkflowWithOptions(claim.ClaimWorkflow, workflow.RegisterOptions{Name: claim.WorkflowName})
	w.RegisterActivity(&claim.Activities{Store: store})
}

// NewWorker builds the claim worker (not started).
func NewWorker(c client.Client, store *models.Store) worker.Worker {
	w := worker.New(c, claim.TaskQueue, worker.Options{})
	Register(w, store)
	return w
}
