package handlers

import "github.com/relief/relief/models"

// The exports area's operations in the OpenAPI document (openapi.go).
func init() {
	staff := []string{models.RoleReviewer, models.RoleApprover, models.RoleProgramAdmin, models.RoleFinance, models.RoleAuditor}
	for k, op := range map[string]apiOp{
		"GET /api/v1/programs/:code/exports/:file": {Summary: "A program's workbook, streamed: :file is {kind}.xlsx with kind claims, allocations, " +
			"fee-waivers, payouts or summary (staff of the program's agency; full account numbers for finance only; audited with its SHA-256; " +
			"422 export_too_large above 200,000 rows: use an export job)", Tag: "exports", Roles: staff, Status: 200},
		"POST /api/v1/exports": {Summary: "Start a background export job {program, kind}; Idempotency-Key optional", Tag: "exports", Roles: staff,
			Request: exportJobRequest{}, Response: models.ExportJob{}, Status: 202},
		"GET /api/v1/exports/:id": {Summary: "An export job's progress (the requester only)", Tag: "exports", Roles: staff,
			Response: models.ExportJob{}, Status: 200},
		"GET /api/v1/exports/:id/file": {Summary: "A finished export job's workbook (409 export_not_ready before; audited with its SHA-256)",
			Tag: "exports", Roles: staff, Status: 200},
		"GET /api/v1/programs/:code/dashboard": {Summary: "A program's dashboard figures (staff of the program's agency)", Tag: "exports",
			Roles: staff, Response: models.Dashboard{}, Status: 200},
	} {
		apiOps[k] = op
	}
}
