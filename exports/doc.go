// Package exports writes the Excel files Relief hands to finance teams, banks
// and agencies, and reads the bank result files that come back.
//
// Every workbook is built the same way: NewWorkbook with the export's
// metadata, one or more sheets (streamed row by row, so a 100,000-row payout
// sheet needs no more memory than a 10-row one), then Save, which appends the
// "정보" metadata sheet and returns the byte count and SHA-256 of exactly the
// bytes written, for the audit log.
//
// Rules every sheet follows (DESIGN.md, "Excel"):
//   - Korean headers, frozen header row, autofilter over the data range;
//   - money is int64 won written as numbers with #,##0, never as text or floats;
//   - account numbers, BRNs and bank codes are text cells (leading zeros kept);
//   - every string is neutralised against formula injection (see Neutralize)
//     and written as a string cell; the package never writes a formula;
//   - a control-total row ("합계": row count and the sum of every Amount column)
//     computed in Go, below a blank row so filters and sorts leave it alone.
//
// Storage stays out of this package: exports take iter.Seq2[Row, error]
// streams, so the caller can feed rows straight from a PostgreSQL cursor.
package exports
