package handlers

import "github.com/relief/relief/models"

// The review, ledger, payout and privacy areas' operations in the OpenAPI
// document (openapi.go). TestOpenAPIDescribesEveryAPIRoute keeps the
// document complete: a route added without an entry here fails it.
func init() {
	merchant := []string{models.RoleMerchant}
	deciders := []string{models.RoleReviewer, models.RoleApprover}
	staff := []string{models.RoleReviewer, models.RoleApprover, models.RoleProgramAdmin, models.RoleFinance, models.RoleAuditor}
	finance := []string{models.RoleFinance}
	financeView := []string{models.RoleFinance, models.RoleAuditor}
	type note struct {
		Note string `json:"note"`
	}
	type reason struct {
		Reason string `json:"reason"`
	}
	type status struct {
		Status string `json:"status"`
	}
	ops := map[string]apiOp{
		"GET /api/v1/programs/:code/offer": {Summary: "The pre-computed offer for a business number (?brn=): baseline, expected, actual, loss and why",
			Tag: "claims", Roles: merchant, Response: models.Offer{}, Status: 200},
		"PUT /api/v1/claims/:id/bank": {Summary: "Correct the payout account after a failed holder check or transfer (the claim's merchant)",
			Tag: "claims", Roles: merchant, Request: models.BankInput{}, Status: 200},
		"POST /api/v1/claims/:id/decision": {Summary: "Approve, reject or request information (an Update of the claim's workflow; four-eyes above the threshold)",
			Tag: "review", Roles: deciders, Request: DecisionBody{}, Response: status{}, Status: 200},
		"POST /api/v1/claims/:id/documents": {Summary: "Upload evidence (size and type checked)", Tag: "claims",
			Roles: merchant, Response: models.Document{}, Status: 201, Multipart: true},
		"GET /api/v1/claims/:id/documents/:doc": {Summary: "Download a document of a claim the caller may see", Tag: "claims",
			Roles: models.AllRoles, Status: 200},
		"POST /api/v1/claims/:id/info": {Summary: "Answer an information request (the claim's merchant)", Tag: "claims",
			Roles: merchant, Request: note{}, Response: status{}, Status: 200},
		"POST /api/v1/claims/:id/appeal": {Summary: "Appeal a rejection or partial approval within the program's window", Tag: "claims",
			Roles: merchant, Request: reason{}, Response: status{}, Status: 200},
		"GET /api/v1/review/queue": {Summary: "The reviewer's queue: filters, sorting, keyset pagination, counts per status",
			Tag: "review", Roles: staff, Response: models.QueuePage{}, Status: 200},
		"GET /api/v1/review/claims/:id": {Summary: "A claim's review file: sales around the outage, documents, flags, decisions (a view of personal data, audited)",
			Tag: "review", Roles: staff, Response: models.ReviewFile{}, Status: 200},
		"POST /api/v1/programs/:code/ledger": {Summary: "Import the platform's sales ledger (.xlsx or .csv; all-or-nothing)", Tag: "programs",
			Roles: []string{models.RoleProgramAdmin}, Status: 202, Multipart: true},
		"GET /api/v1/imports/:id": {Summary: "A ledger import's progress and its errors by row and column", Tag: "programs",
			Roles: []string{models.RoleProgramAdmin}, Response: models.LedgerImport{}, Status: 200},
		"POST /api/v1/payout-batches": {Summary: "Build a payout batch of everything owed and not yet in a batch", Tag: "payouts",
			Roles: finance, Request: models.PayoutBatchInput{}, Response: models.PayoutBatchCreated{}, Status: 201},
		"GET /api/v1/payout-batches": {Summary: "Payout batches (keyset pagination)", Tag: "payouts", Roles: financeView,
			Response: listOf[models.PayoutBatch](), Status: 200},
		"GET /api/v1/payout-batches/:id": {Summary: "A batch with its lines, statuses and failure reasons", Tag: "payouts",
			Roles: financeView, Response: models.PayoutBatch{}, Status: 200},
		"POST /api/v1/payout-batches/:id/approve": {Summary: "Approve the batch (finance, not its creator): transfers start",
			Tag: "payouts", Roles: finance, Status: 202},
		"GET /api/v1/payout-batches/:id/bank-file": {Summary: "The bank's bulk-transfer workbook (?bank=004|088|020|081|011)", Tag: "payouts",
			Roles: finance, Status: 200},
		"POST /api/v1/payout-batches/:id/results": {Summary: "Import the bank's result file; lines reconcile by key, all or nothing",
			Tag: "payouts", Roles: finance, Response: models.PayoutImport{}, Status: 200, Multipart: true},
		"GET /api/v1/payout-batches/:id/reconciliation": {Summary: "Owed, sent, settled and failed by bank, to the won", Tag: "payouts",
			Roles: financeView, Response: models.PayoutRecon{}, Status: 200},
		"GET /api/v1/payout-batches/:id/reconciliation.xlsx": {Summary: "The reconciliation sheet", Tag: "payouts", Roles: financeView, Status: 200},
		"GET /api/v1/audit/personal-data-views": {Summary: "Who viewed whose personal data (auditor; agency-scoped)", Tag: "audit",
			Roles: []string{models.RoleAuditor}, Response: listOf[models.PersonalDataView](), Status: 200},
	}
	for k, v := range ops {
		apiOps[k] = v
	}
}
