// Package rules holds Relief's pure money rules: BRN check digit, won arithmetic and
// formatting, the loss estimate, direct compensation, the pre-purchase allocation and
// the fee waiver. Nothing here does I/O or touches a float: money is int64 won, rates
// are basis points (1 bp = 0.01 %), and every result carries the inputs that explain it.
//
// Every money input is bounded by MaxAmount (1,000조 원) so that sums stay far from
// int64 overflow; products that could leave int64 (amount × rate, amount × seconds,
// cap × weight) are computed in 128 bits.
package rules

import "errors"

// ErrInput marks parameters or inputs a rule cannot work with (negative money,
// unsorted bands, duplicate claims, ...). The wrapped message names the problem.
var ErrInput = errors.New("rules: invalid input")
