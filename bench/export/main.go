// Command export measures the exports writer on a payout sheet against a
// plain excelize StreamWriter writing the same cells, and reports both
// durations, their ratio (goal ≤ 1.3) and the peak RSS (goal < 250 MB).
// It exits 1 when a goal is missed, so CI can gate on it.
//
//	go run ./bench/export [-rows 100000] [-rounds 5] [-cpuprofile file]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"iter"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/relief/relief/exports"
	"github.com/xuri/excelize/v2"
)

const (
	maxRatio = 1.3
	maxRSSMB = 250
)

func main() {
	rows := flag.Int("rows", 100_000, "payout rows per sheet")
	rounds := flag.Int("rounds", 5, "timed runs of each writer; the fastest counts")
	profile := flag.String("cpuprofile", "", "write a CPU profile of our writer's runs to this file")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		check(err)
		check(pprof.StartCPUProfile(f))
		for range *rounds {
			runOurs(*rows)
		}
		pprof.StopCPUProfile()
		check(f.Close())
		return
	}

	base := vmHWM()
	// VmHWM is a process-wide high-water mark, so our writer runs first and
	// the mark is read before the plain writer (which buffers its whole zip
	// in memory) can raise it.
	ours := runOurs(*rows)
	peakOurs := vmHWM()
	plain := runPlain(*rows)
	for range *rounds - 1 {
		ours = ours.best(runOurs(*rows))
		plain = plain.best(runPlain(*rows))
	}
	peakAll := vmHWM()

	ratio := float64(ours.total) / float64(plain.total)
	fmt.Printf("rows: %d × %d columns (%d data cells), best of %d round(s), GOMAXPROCS=%d\n",
		*rows, len(header), *rows*len(header), *rounds, runtime.GOMAXPROCS(0))
	fmt.Printf("ours : %v total, %v writing rows  (%.1f MB, sha256 %s)\n",
		ms(ours.total), ms(ours.rows), mb(ours.size), ours.sum)
	fmt.Printf("plain: %v total, %v writing rows  (%.1f MB)\n", ms(plain.total), ms(plain.rows), mb(plain.size))
	fmt.Printf("ratio ours/plain: %.2f total (goal ≤ %.1f) %s; %.2f for the row phase alone\n",
		ratio, maxRatio, verdict(ratio <= maxRatio), float64(ours.rows)/float64(plain.rows))
	fmt.Printf("peak RSS (VmHWM): %.1f MB after our writer (goal < %d MB) %s; %.1f MB after both; %.1f MB at start\n",
		mb(peakOurs), maxRSSMB, verdict(mb(peakOurs) < maxRSSMB), mb(peakAll), mb(base))
	if ratio > maxRatio || mb(peakOurs) >= maxRSSMB {
		os.Exit(1)
	}
}

// run is one timed write: total includes the archive; rows is the time to
// stream the rows into the sheet, where per-cell overhead shows.
type run struct {
	total, rows time.Duration
	size        int64
	sum         string
}

func (r run) best(o run) run {
	r.total, r.rows = min(r.total, o.total), min(r.rows, o.rows)
	return r
}

var header = []string{"지급차수", "접수번호", "사업자등록번호", "상호", "은행코드", "은행명", "계좌번호",
	"예금주", "지급액", "상태", "실패사유", "이체키", "지급일시"}

var (
	names = []string{"대전 농산", "강원 수산", "제주 감귤농원", "전주 한과", "부산 어묵", "안동 식품", "여수 건어물"}
	banks = []string{"004", "088", "020", "081", "011", "090", "071"}
	paid  = time.Date(2025, 11, 3, 9, 0, 0, 0, exports.KST)
)

// payouts generates n deterministic payout rows without fmt, one at a time,
// as a database cursor would deliver them.
func payouts(n int) iter.Seq2[exports.PayoutRow, error] {
	return func(yield func(exports.PayoutRow, error) bool) {
		for i := range n {
			id := strconv.Itoa(i + 1)
			p := exports.PayoutRow{
				BatchID:      "PB-2025-11-03-01",
				ReceiptNo:    "R-2025-" + pad(id, 7),
				BRN:          pad(strconv.Itoa(1_000_000_000+i*7), 10),
				BusinessName: names[i%len(names)] + " " + id,
				BankCode:     banks[i%len(banks)],
				Account:      "0" + pad(strconv.Itoa(i*7919), 12),
				Holder:       names[(i+3)%len(names)][:6],
				Amount:       30_000 + int64(i*7919%500_000)*10,
				Status:       "지급 완료",
				TransferKey:  "PB-2025-11-03-01-" + pad(id, 7),
				PaidAt:       paid.Add(time.Duration(i) * time.Second),
			}
			if i%50 == 49 {
				p.Status, p.FailureReason = "실패", "계좌 오류"
			}
			if !yield(p, nil) {
				return
			}
		}
	}
}

func pad(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return strings.Repeat("0", n-len(s)) + s
}

func runOurs(rows int) run {
	runtime.GC()
	start := time.Now()
	wb, err := exports.NewWorkbook(exports.Meta{
		Title:       "지급내역",
		Program:     exports.Program{Code: "KPOST-2025-NIRS", Name: "우체국쇼핑 국가정보자원관리원 화재 피해 지원"},
		GeneratedAt: time.Now(),
		GeneratedBy: "bench",
		RuleVersion: "bench",
	})
	check(err)
	defer wb.Close()
	check(exports.WritePayouts(wb, exports.FullAccounts, payouts(rows)))
	rowsDone := time.Since(start)
	n, sum, err := wb.Save(io.Discard)
	check(err)
	return run{time.Since(start), rowsDone, n, sum}
}

// runPlain writes the same cells with excelize's StreamWriter the way one
// would by hand: a date style for the time column (without it excelize makes
// a style per time cell), no neutralising, totals, metadata or hash.
func runPlain(rows int) run {
	runtime.GC()
	start := time.Now()
	f := excelize.NewFile()
	defer f.Close()
	sw, err := f.NewStreamWriter("Sheet1")
	check(err)
	dateFmt := "yyyy-mm-dd hh:mm:ss"
	style, err := f.NewStyle(&excelize.Style{CustomNumFmt: &dateFmt})
	check(err)
	check(sw.SetColStyle(len(header), len(header), style))
	row := make([]any, len(header))
	for i, h := range header {
		row[i] = h
	}
	check(sw.SetRow("A1", row))
	r := 2
	for p := range payouts(rows) {
		row[0], row[1], row[2], row[3], row[4], row[5] = p.BatchID, p.ReceiptNo, p.BRN, p.BusinessName, p.BankCode, exports.BankName(p.BankCode)
		row[6], row[7], row[8], row[9], row[10], row[11], row[12] = p.Account, p.Holder, p.Amount, p.Status, p.FailureReason, p.TransferKey, p.PaidAt
		cell, err := excelize.CoordinatesToCellName(1, r)
		check(err)
		check(sw.SetRow(cell, row))
		r++
	}
	check(sw.Flush())
	rowsDone := time.Since(start)
	n, err := f.WriteTo(io.Discard)
	check(err)
	return run{time.Since(start), rowsDone, n, ""}
}

// vmHWM reads the peak resident set size in bytes from /proc/self/status.
func vmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	check(err)
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			check(err)
			return kb << 10
		}
	}
	check(fmt.Errorf("no VmHWM in /proc/self/status"))
	return 0
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

func verdict(ok bool) string {
	if ok {
		return "OK"
	}
	return "MISSED"
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "export bench:", err)
		os.Exit(2)
	}
}
