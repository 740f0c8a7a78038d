package exports

import (
	"fmt"
	"strconv"

	"github.com/xuri/excelize/v2"
)

// Tally is one line of a summary table.
type Tally struct {
	Label  string
	Count  int64
	Amount int64 // won
}

// Summary is a program's overview. Each table is small (one line per status,
// region, category or instrument), so the sheet is written in memory, which
// native charts require anyway.
type Summary struct {
	ByStatus     []Tally // claims and claimed amount per status code (shown as Korean labels)
	ByRegion     []Tally // claims and owed amount per region
	ByCategory   []Tally // claims and owed amount per business category
	ByInstrument []Tally // merchants and amount per relief instrument
}

// SummarySheet is the name of the program summary sheet.
const SummarySheet = "요약"

// WriteSummary adds the program summary sheet "요약": four tables, each with
// a "합계" row of plain values, and a native Excel chart per non-empty table.
func WriteSummary(wb *Workbook, s Summary) error {
	if err := wb.usable(); err != nil {
		return err
	}
	if err := wb.addSheet(SummarySheet); err != nil {
		return err
	}
	n, err := writeSummary(wb, s)
	if err != nil {
		return wb.fail(fmt.Errorf("exports: summary: %w", err))
	}
	wb.sheets[len(wb.sheets)-1].rows = n
	return nil
}

func writeSummary(wb *Workbook, s Summary) (rows int, err error) {
	f, st, sheet := wb.f, wb.st, SummarySheet
	set := func(cell string, v any, style int) error {
		if str, ok := v.(string); ok {
			v = Neutralize(str) // labels are user data: regions, categories
		}
		if err := f.SetCellValue(sheet, cell, v); err != nil {
			return err
		}
		return f.SetCellStyle(sheet, cell, cell, style)
	}
	if err := set("A1", wb.meta.Title, st.title); err != nil {
		return 0, err
	}
	if err := set("A2", wb.meta.Program.Code+" "+wb.meta.Program.Name, st.label); err != nil {
		return 0, err
	}
	statuses := make([]Tally, len(s.ByStatus))
	for i, t := range s.ByStatus {
		statuses[i] = Tally{StatusLabel(t.Label), t.Count, t.Amount}
	}
	tables := []struct {
		title, countHeader, amountHeader string
		rows                             []Tally
		chart                            excelize.ChartType
		chartValues                      string // "B" charts counts, "C" amounts
	}{
		{"상태별 현황", "건수", "신청금액", statuses, excelize.Col, "B"},
		{"지역별 현황", "건수", "지급예정액", s.ByRegion, excelize.Bar, "C"},
		{"업종별 현황", "건수", "지급예정액", s.ByCategory, excelize.Col, "C"},
		{"지원수단별 현황", "업체 수", "금액", s.ByInstrument, excelize.Pie, "C"},
	}
	row, chartRow := 4, 4
	for _, t := range tables {
		r := strconv.Itoa(row)
		if err := set("A"+r, t.title, st.label); err != nil {
			return 0, err
		}
		head := row + 1
		for col, h := range []string{"구분", t.countHeader, t.amountHeader + "(원)"} {
			cell, _ := excelize.CoordinatesToCellName(col+1, head)
			if err := set(cell, h, st.header); err != nil {
				return 0, err
			}
		}
		var count, amount int64
		for i, l := range t.rows {
			r := strconv.Itoa(head + 1 + i)
			if err := set("A"+r, l.Label, st.text); err != nil {
				return 0, err
			}
			if err := set("B"+r, l.Count, st.integer); err != nil {
				return 0, err
			}
			if err := set("C"+r, l.Amount, st.amount); err != nil {
				return 0, err
			}
			var ok1, ok2 bool
			count, ok1 = addInt64(count, l.Count)
			amount, ok2 = addInt64(amount, l.Amount)
			if !ok1 || !ok2 {
				return 0, fmt.Errorf("%s: total overflows int64", t.title)
			}
		}
		total := strconv.Itoa(head + 1 + len(t.rows))
		for _, c := range []struct {
			cell  string
			v     any
			style int
		}{{"A" + total, "합계", st.totalLabel}, {"B" + total, count, st.totalAmount}, {"C" + total, amount, st.totalAmount}} {
			if err := set(c.cell, c.v, c.style); err != nil {
				return 0, err
			}
		}
		if len(t.rows) > 0 {
			if err := addTableChart(f, "E"+strconv.Itoa(chartRow), t.title, t.chart, head, len(t.rows), t.chartValues); err != nil {
				return 0, err
			}
			chartRow += 18
		}
		rows += len(t.rows)
		row = head + len(t.rows) + 3
	}
	if err := f.SetColWidth(sheet, "A", "A", 20); err != nil {
		return 0, err
	}
	return rows, f.SetColWidth(sheet, "B", "C", 16)
}

// addTableChart charts column valueCol of the table whose header is on row
// head against its labels. The chart references cells; it has no formulas in
// the worksheet, so nothing user-supplied is ever evaluated.
func addTableChart(f *excelize.File, cell, title string, typ excelize.ChartType, head, n int, valueCol string) error {
	first, last := strconv.Itoa(head+1), strconv.Itoa(head+n)
	ref := "'" + SummarySheet + "'!$"
	return f.AddChart(SummarySheet, cell, &excelize.Chart{
		Type: typ,
		Series: []excelize.ChartSeries{{
			Name:       ref + valueCol + "$" + strconv.Itoa(head),
			Categories: ref + "A$" + first + ":$A$" + last,
			Values:     ref + valueCol + "$" + first + ":$" + valueCol + "$" + last,
		}},
		Title:     excelize.ChartTitle{Paragraph: []excelize.RichTextRun{{Text: title}}},
		Legend:    excelize.ChartLegend{Position: "bottom"},
		PlotArea:  excelize.ChartPlotArea{ShowVal: typ != excelize.Pie, ShowPercent: typ == excelize.Pie},
		Dimension: excelize.ChartDimension{Width: 560, Height: 320},
	})
}
