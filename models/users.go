package models

import (
	"context"
	"errors"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Roles.
const (
	RoleMerchant     = "merchant"
	RoleReviewer     = "reviewer"
	RoleApprover     = "approver"
	RoleProgramAdmin = "program_admin"
	RoleFinance      = "finance"
	RoleAuditor      = "auditor"
)

// AllRoles in display order.
var AllRoles = []string{RoleMerchant, RoleReviewer, RoleApprover, RoleProgramAdmin, RoleFinance, RoleAuditor}

// User is an account. Staff have an agency; merchants do not.
type User struct {
	ID        uuid.UUID `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Phone     string    `json:"-"`
	Roles     []string  `json:"roles"`
	Agency    string    `json:"agency,omitempty"`
	Demo      bool      `json:"-"`
	CreatedAt time.Time `json:"-"`

	passwordHash string
}

// HasRole reports whether u holds role.
func (u *User) HasRole(role string) bool {
	for _, r := range u.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// IsStaff reports whether u works for an agency.
func (u *User) IsStaff() bool { return u.Agency != "" }

// NewUser is the input to CreateUser. Password is plain text; it is hashed here.
type NewUser struct {
	Email, Name, Phone, Password string
	Roles                        []string
	Agency                       string
	Demo                         bool
}

// Validate checks a sign-up or staff account, naming each bad field.
func (n *NewUser) Validate() error {
	fields := map[string]string{}
	n.Email = strings.TrimSpace(n.Email)
	n.Name = strings.TrimSpace(n.Name)
	n.Phone = strings.TrimSpace(n.Phone)
	if a, err := mail.ParseAddress(n.Email); err != nil || a.Address != n.Email || len(n.Email) > 254 {
		fields["email"] = "invalid_email"
	}
	if n.Name == "" || utf8.RuneCountInString(n.Name) > 100 {
		fields["name"] = "required"
	}
	if n.Phone != "" && !validPhone(n.Phone) {
		fields["phone"] = "invalid_phone"
	}
	if l := utf8.RuneCountInString(n.Password); l < 10 || l > 200 {
		fields["password"] = "password_too_short"
	}
	if len(n.Roles) == 0 {
		fields["role"] = "required"
	}
	for _, r := range n.Roles {
		if !validRole(r) {
			fields["role"] = "unknown_role"
		}
	}
	merchant := len(n.Roles) == 1 && n.Roles[0] == RoleMerchant
	if merchant && n.Agency != "" {
		fields["agency"] = "merchants_have_no_agency"
	}
	if !merchant && n.Agency == "" {
		fields["agency"] = "required_for_staff"
	}
	if len(fields) > 0 {
		return &Error{Kind: EINVALID, Code: "validation_failed", Message: "some fields are invalid", Fields: fields}
	}
	return nil
}

func validRole(r string) bool {
	for _, x := range AllRoles {
		if x == r {
			return true
		}
	}
	return false
}

// validPhone accepts Korean numbers like 010-1234-5678, 02-123-4567, 0212345678.
func validPhone(p string) bool {
	digits := 0
	for _, r := range p {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '-' || r == ' ':
		default:
			return false
		}
	}
	return digits >= 9 && digits <= 11 && p[0] == '0'
}

// CreateUser stores a new account. 409 email_taken when the address is in use.
func (s *Store) CreateUser(ctx context.Context, n NewUser) (*User, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	hash, err := HashPassword(n.Password)
	if err != nil {
		return nil, err
	}
	u := &User{ID: uuid.New(), Email: n.Email, Name: n.Name, Phone: n.Phone, Roles: n.Roles, Agency: n.Agency, Demo: n.Demo}
	var agency *string
	if n.Agency != "" {
		agency = &n.Agency
	}
	err = s.Pool.QueryRow(ctx, `INSERT INTO users (id, email, name, phone, password_hash, roles, agency_code, demo)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING created_at`,
		u.ID, u.Email, u.Name, u.Phone, hash, u.Roles, agency, u.Demo).Scan(&u.CreatedAt)
	if isUniqueViolation(err, "users_email_key") {
		return nil, Coded(ECONFLICT, "email_taken", "this email address is already registered")
	}
	if isForeignKeyViolation(err) {
		return nil, FieldError("validation_failed", "agency", "unknown_agency", "unknown agency")
	}
	if err != nil {
		return nil, err
	}
	return u, nil
}

const userColumns = `id, email, name, phone, roles, coalesce(agency_code, ''), demo, created_at, password_hash`

func scanUser(row pgx.Row) (*User, error) {
	u := &User{}
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.Phone, &u.Roles, &u.Agency, &u.Demo, &u.CreatedAt, &u.passwordHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return u, err
}

// UserByID loads a user.
func (s *Store) UserByID(ctx context.Context, id uuid.UUID) (*User, error) {
	return scanUser(s.Pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
}

// Authenticate checks an email and password. Unknown users and wrong passwords
// give the same error after the same amount of hashing work.
func (s *Store) Authenticate(ctx context.Context, email, password string) (*User, error) {
	u, err := scanUser(s.Pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE lower(email) = lower($1)`, strings.TrimSpace(email)))
	invalid := Coded(EUNAUTHORIZED, "invalid_credentials", "email or password is wrong")
	if errors.Is(err, ErrNotFound) {
		_ = CheckPassword(dummyHash, password)
		return nil, invalid
	}
	if err != nil {
		return nil, err
	}
	if !CheckPassword(u.passwordHash, password) {
		return nil, invalid
	}
	return u, nil
}
