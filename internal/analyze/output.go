package analyze

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Output says how a report is printed.
type Output struct {
	W io.Writer
	// Mode is "table" (the default: aligned columns on a terminal,
	// tab-separated values with a header line otherwise), "json" (one
	// JSON object per line) or "csv". Filter also takes "text" (records
	// as flow log lines, its default).
	Mode string
	// Terminal says W is a terminal: tables are aligned and times are
	// written for people (2006-01-02 15:04:05, UTC). Otherwise times are
	// RFC 3339.
	Terminal bool
}

// Output modes.
const (
	ModeTable = "table"
	ModeJSON  = "json"
	ModeCSV   = "csv"
	ModeText  = "text"
)

func (o Output) mode() string {
	if o.Mode == "" {
		return ModeTable
	}
	return o.Mode
}

// CheckMode validates an --output value for a report; filter is the
// filter report, which also prints records as text.
func CheckMode(mode string, filter bool) error {
	switch mode {
	case ModeTable, ModeJSON, ModeCSV:
		if filter && mode == ModeTable {
			return fmt.Errorf("--output %q: want text, json or csv", mode)
		}
		return nil
	case ModeText:
		if filter {
			return nil
		}
	}
	if filter {
		return fmt.Errorf("--output %q: want text, json or csv", mode)
	}
	return fmt.Errorf("--output %q: want table, json or csv", mode)
}

// timeText formats a Unix time for a table cell.
func (o Output) timeText(t time.Time, ok bool) string {
	if !ok {
		return "-"
	}
	if o.Terminal && o.mode() == ModeTable {
		return t.UTC().Format("2006-01-02 15:04:05")
	}
	return t.UTC().Format(time.RFC3339)
}

// table is a report as rows of cells.
type table struct {
	head  []string // snake_case column names
	right []bool   // right-align (numbers) on terminals
	rows  [][]string
}

// write prints t as the output mode says (json is done by each report).
func (o Output) writeTable(t *table) error {
	w := bufio.NewWriterSize(o.W, 64<<10)
	switch o.mode() {
	case ModeCSV:
		cw := csv.NewWriter(w)
		_ = cw.Write(t.head)
		for _, r := range t.rows {
			_ = cw.Write(r)
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
	case ModeTable:
		if o.Terminal {
			writeAligned(w, t)
		} else {
			w.WriteString(strings.Join(t.head, "\t"))
			w.WriteByte('\n')
			for _, r := range t.rows {
				for i, c := range r {
					if i > 0 {
						w.WriteByte('\t')
					}
					w.WriteString(tsvCell(c))
				}
				w.WriteByte('\n')
			}
		}
	}
	return w.Flush()
}

// tsvCell keeps a cell on its line and in its column.
func tsvCell(c string) string {
	if !strings.ContainsAny(c, "\t\n\r") {
		return c
	}
	b := []byte(c)
	for i, x := range b {
		if x == '\t' || x == '\n' || x == '\r' {
			b[i] = ' '
		}
	}
	return string(b)
}

func writeAligned(w *bufio.Writer, t *table) {
	width := make([]int, len(t.head))
	head := make([]string, len(t.head))
	for i, h := range t.head {
		head[i] = strings.ToUpper(strings.ReplaceAll(h, "_", " "))
		width[i] = utf8.RuneCountInString(head[i])
	}
	for _, r := range t.rows {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	line := func(cells []string) {
		for i, c := range cells {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i > 0 {
				w.WriteString("  ")
			}
			if t.right != nil && t.right[i] {
				w.WriteString(pad)
				w.WriteString(c)
			} else if i < len(cells)-1 {
				w.WriteString(c)
				w.WriteString(pad)
			} else {
				w.WriteString(c)
			}
		}
		w.WriteByte('\n')
	}
	line(head)
	for _, r := range t.rows {
		line(r)
	}
}

// writeJSONLines writes one JSON object per value.
func (o Output) writeJSONLines(n int, value func(i int) any) error {
	w := bufio.NewWriterSize(o.W, 64<<10)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i := range n {
		if err := enc.Encode(value(i)); err != nil {
			return err
		}
	}
	return w.Flush()
}

// jsonObject is a JSON object that keeps its keys in the order added.
type jsonObject struct {
	keys []string
	vals []any
}

func (o *jsonObject) add(k string, v any) {
	o.keys = append(o.keys, k)
	o.vals = append(o.vals, v)
}

// MarshalJSON writes the object with its keys in order.
func (o jsonObject) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, k := range o.keys {
		if i > 0 {
			b = append(b, ',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		vb, err := json.Marshal(o.vals[i])
		if err != nil {
			return nil, err
		}
		b = append(append(append(b, kb...), ':'), vb...)
	}
	return append(b, '}'), nil
}
