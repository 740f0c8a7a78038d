package workflows

import (
	"context"
	"errors"
	"log/slog"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/relief/relief/models"
	"github.com/relief/relief/workflows/allocation"
	"github.com/relief/relief/workflows/claim"
	"github.com/relief/relief/workflows/feewaiver"
	"github.com/relief/relief/workflows/payout"
	"github.com/relief/relief/workflows/payout/bank"
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

// ProgramsTaskQueue runs program-level processes: pre-purchase tranches, fee
// waivers and payout batches.
const ProgramsTaskQueue = "relief-programs"

// Deps are what activities need.
type Deps struct {
	Store *models.Store
	Bank  bank.Bank // nil when no bank is configured
	Log   *slog.Logger
}

// NewWorkers returns one worker per task queue, registered and not started.
func NewWorkers(c client.Client, d Deps) []worker.Worker {
	claims := worker.New(c, claim.TaskQueue, worker.Options{})
	claims.RegisterWorkflowWithOptions(claim.ClaimWorkflow, workflow.RegisterOptions{Name: claim.WorkflowName})
	claims.RegisterActivity(&claim.Activities{Store: d.Store})

	programs := worker.New(c, ProgramsTaskQueue, worker.Options{})
	// Program-level features register here, one line each.
	allocation.Register(programs, d.Store) // pre-purchase tranches (AllocationWorkflow)
	feewaiver.Register(programs, d.Store)  // fee waivers (FeeWaiverWorkflow)
	payout.Register(programs, &payout.Activities{Store: d.Store, Bank: d.Bank, Log: d.Log})

	return []worker.Worker{claims, programs}
}
