package handlers

import "github.com/relief/relief/models"

// The instruments area's operations in the OpenAPI document (openapi.go).
func init() {
	staff := []string{models.RoleReviewer, models.RoleApprover, models.RoleProgramAdmin, models.RoleFinance, models.RoleAuditor}
	admin := []string{models.RoleProgramAdmin}
	ops := map[string]apiOp{
		"PUT /api/v1/claims/:id/goods": {Summary: "Replace the goods offered for pre-purchase (the claim's merchant, until the claim is decided)",
			Tag: "instruments", Roles: []string{models.RoleMerchant}, Request: instGoodsBody{}, Response: instGoodsBody{}, Status: 200},
		"GET /api/v1/programs/:code/budgets": {Summary: "The program's budgets per instrument: funded, entitled, available",
			Tag: "instruments", Roles: staff, Response: struct {
				Items []models.Budget `json:"items"`
			}{}, Status: 200},
		"GET /api/v1/programs/:code/tranches": {Summary: "The program's pre-purchase tranches", Tag: "instruments", Roles: staff,
			Response: listOf[models.Tranche](), Status: 200},
		"POST /api/v1/programs/:code/tranches": {Summary: "Create a tranche and fund its budget", Tag: "instruments", Roles: admin,
			Request: models.TrancheInput{}, Response: models.Tranche{}, Status: 201},
		"GET /api/v1/tranches/:id": {Summary: "A tranche", Tag: "instruments", Roles: staff, Response: models.Tranche{}, Status: 200},
		"GET /api/v1/tranches/:id/preview": {Summary: "The tranche's stored draft allocation", Tag: "instruments", Roles: staff,
			Response: tranchePreviewResponse{}, Status: 200},
		"POST /api/v1/tranches/:id/preview": {Summary: "Compute the allocation and store it as the draft (changes nothing else)",
			Tag: "instruments", Roles: []string{models.RoleProgramAdmin, models.RoleApprover}, Response: tranchePreviewResponse{}, Status: 200},
		"POST /api/v1/tranches/:id/approve": {Summary: "Approve the draft (an approver other than the creator): writes the purchase orders",
			Tag: "instruments", Roles: []string{models.RoleApprover}, Request: trancheApproveBody{}, Response: models.ApproveResult{}, Status: 200},
		"GET /api/v1/tranches/:id/purchase-orders": {Summary: "The tranche's purchase orders (keyset pagination)", Tag: "instruments", Roles: staff,
			Response: listOf[models.PurchaseOrder](), Status: 200},
		"GET /api/v1/tranches/:id/sheet.xlsx": {Summary: "The tranche's allocation sheet (Excel)", Tag: "instruments", Roles: staff, Status: 200},
		"POST /api/v1/purchase-orders/:id/receive": {Summary: "Goods received: the order's amount (truncated to 10 won) becomes owed",
			Tag: "instruments", Roles: admin, Response: models.PurchaseOrder{}, Status: 200},
		"POST /api/v1/programs/:code/fee-waivers/run": {Summary: "Run the fee waiver now (after the promotion period; never duplicates)",
			Tag: "instruments", Roles: admin, Response: feeWaiverRunAccepted{}, Status: 202},
		"GET /api/v1/programs/:code/fee-waivers": {Summary: "Per-merchant fee-waiver lines (keyset pagination), the period and the last run",
			Tag: "instruments", Roles: staff, Response: feeWaiverList{}, Status: 200},
	}
	for k, v := range ops {
		apiOps[k] = v
	}
}
