-- +goose Up
-- A claim's receipt number: R, the filing day in Korea (YYMMDD), a dash and
-- the receipt sequence in at least six digits. The three statements that file
-- claims wrote lpad(nextval(...), 6, '0'), and lpad also cuts: from the
-- 1,000,000th claim on, the numbers were cut to six characters, collided with
-- earlier ones on claims_receipt_no_key, and every claim of the group
-- statement that drew one was answered 500 (found by a one-minute hold at
-- 4,374 claims/s). Past 999,999 the number simply grows a digit. The function
-- draws the sequence once per call (a FROM clause keeps the planner from
-- inlining it into an expression that might evaluate nextval twice).
-- +goose StatementBegin
CREATE FUNCTION claim_receipt_no(filed_at timestamptz) RETURNS text
LANGUAGE sql VOLATILE PARALLEL UNSAFE AS $$
	SELECT 'R' || to_char(filed_at AT TIME ZONE 'Asia/Seoul', 'YYMMDD') || '-' ||
		CASE WHEN s.n < 1000000 THEN lpad(s.n::text, 6, '0') ELSE s.n::text END
	FROM (SELECT nextval('claim_receipt_seq') AS n) s
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION claim_receipt_no(timestamptz);
