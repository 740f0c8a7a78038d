package models

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"time"

	"github.com/jackc/pgx/v5"
)

// DemoProgram is the code of the program `relief dev` seeds.
const DemoProgram = "KPOST-2025-NIRS"

// DemoUsers are the dev-mode logins, one per role (DESIGN.md "Demo data").
var DemoUsers = []struct {
	Email, Name string
	Roles       []string
}{
	{"merchant@demo.relief", "김상인", []string{RoleMerchant}},
	{"reviewer@demo.relief", "이심사", []string{RoleReviewer}},
	{"reviewer2@demo.relief", "박심사", []string{RoleReviewer}},
	{"approver@demo.relief", "최승인", []string{RoleApprover}},
	{"approver2@demo.relief", "정승인", []string{RoleApprover}},
	{"admin@demo.relief", "한담당", []string{RoleProgramAdmin}},
	{"finance@demo.relief", "오재무", []string{RoleFinance}},
	{"finance2@demo.relief", "윤재무", []string{RoleFinance}},
	{"auditor@demo.relief", "강감사", []string{RoleAuditor}},
}

// Seed inserts the agencies and the demo program; it is idempotent (a second run
// changes nothing, so the claim window keeps the date of the first run).
func (s *Store) Seed(ctx context.Context) error {
	kst := time.FixedZone("KST", 9*3600)
	now := s.Now()
	return s.inTx(ctx, func(tx pgx.Tx) error {
		for _, a := range [][2]string{{"KPOST", "우정사업본부"}, {"MSS", "중소벤처기업부"}, {"SEMAS", "소상공인시장진흥공단"}} {
			if _, err := tx.Exec(ctx, `INSERT INTO agencies (code, name) VALUES ($1,$2) ON CONFLICT (code) DO NOTHING`, a[0], a[1]); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO programs (code, agency_code, name, platform, outage_starts_at, outage_ends_at,
				window_opens_at, window_closes_at, compensation_rate_bp, compensation_floor, compensation_cap, fast_track_limit,
				four_eyes_threshold, prepurchase_cap, fee_waiver_starts_on, fee_waiver_ends_on, fee_rate_bp)
			VALUES ($1,'KPOST','우체국쇼핑 국가정보자원관리원 화재 피해 지원','우체국쇼핑',$2,$3,$4,$5,10000,0,50000000,3000000,10000000,50000000,$6,$7,600)
			ON CONFLICT (code) DO NOTHING`,
			DemoProgram,
			time.Date(2025, 9, 26, 20, 15, 0, 0, kst), time.Date(2025, 10, 9, 18, 0, 0, 0, kst),
			now, now.AddDate(0, 0, 90),
			time.Date(2025, 10, 21, 0, 0, 0, 0, time.UTC), time.Date(2025, 11, 20, 0, 0, 0, 0, time.UTC))
		return err
	})
}

// SeedDemoUsers creates the demo logins with password (dev mode only); existing
// ones are left alone. It reports which were created.
func (s *Store) SeedDemoUsers(ctx context.Context, password string) (created int, err error) {
	for _, d := range DemoUsers {
		agency := "KPOST"
		if d.Roles[0] == RoleMerchant {
			agency = ""
		}
		_, err := s.CreateUser(ctx, NewUser{Email: d.Email, Name: d.Name, Password: password, Roles: d.Roles, Agency: agency, Demo: true})
		switch {
		case IsKind(err, ECONFLICT):
		case err != nil:
			return created, err
		default:
			created++
		}
	}
	return created, nil
}

// NewPassword returns a random, typeable password.
func NewPassword() string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
