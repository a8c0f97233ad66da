package flow

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultFormatText is the default log format of the spec (§3), exactly as
// AWS documents it.
const DefaultFormatText = "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}"

// defaultFormat is parsed once; a Format is immutable, so sharing it is safe.
var defaultFormat = mustParseFormat(DefaultFormatText)

// DefaultFormat returns the default format (DefaultFormatText). Every call
// returns the same immutable *Format.
func DefaultFormat() *Format { return defaultFormat }

func mustParseFormat(s string) *Format {
	f, err := ParseFormat(s)
	if err != nil {
		panic(err)
	}
	return f
}

// fieldExtra marks a column whose field flowlog does not know (lenient
// formats only); its values go to Record.Extra.
const fieldExtra FieldID = 255

// column is one value position of a record line.
type column struct {
	id    FieldID // fieldExtra for an unknown field
	kind  valueKind
	extra int // index into Record.Extra when id == fieldExtra
	name  string
}

// valueKind says how ParseRecord reads a column's values.
type valueKind uint8

const (
	kindOther    valueKind = iota // strings, enums, unknown fields
	kindUnsigned                  // decimal numbers
	kindAddr                      // IP addresses
)

// Format is a log format: the ordered list of fields of a record line. A
// Format is immutable once parsed and safe for concurrent use.
//
// Formats from ParseFormat hold known fields only. Formats from ParseHeader
// may also hold fields flowlog does not know (Unknown); their values are
// kept as strings in Record.Extra.
type Format struct {
	cols    []column
	fields  []FieldID // known fields in format order
	unknown []string  // names of unknown fields in format order
	set     FieldSet
	version int
	isDef   bool
	text    string // ${} form
	header  string // bare names

	// jsonKeys[i] is what precedes column i's value in AppendJSON:
	// `{"version":` for the first column, `,"srcaddr":` for the others.
	jsonKeys []string
}

// FormatError reports a bad token of a log format.
type FormatError struct {
	Position   int    // 1-based position of the token among the format's tokens; 0 when the format is empty
	Token      string // the offending token as written
	Suggestion string // a valid token the user probably meant (e.g. "${srcaddr}"), or ""
	msg        string
}

func (e *FormatError) Error() string { return e.msg }

func formatError(pos int, tok, suggestion, msg string) *FormatError {
	if suggestion != "" {
		msg += "; did you mean " + suggestion + "?"
	}
	return &FormatError{Position: pos, Token: tok, Suggestion: suggestion, msg: msg}
}

// FieldByName returns the known field named name (as written inside
// ${…}, e.g. "srcaddr").
func FieldByName(name string) (FieldID, bool) {
	for i := range Fields {
		if Fields[i].Name == name {
			return Fields[i].ID, true
		}
	}
	return 0, false
}

// isFormatSpace reports whether c separates tokens of a format or values
// of a record line. AWS writes single spaces; tabs, CR and LF are accepted
// so that pasted or CRLF input still reads.
func isFormatSpace(c byte) bool {
	return c <= ' ' && (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f')
}

// tokens splits s on runs of whitespace.
func tokens(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		for i < len(s) && isFormatSpace(s[i]) {
			i++
		}
		j := i
		for j < len(s) && !isFormatSpace(s[j]) {
			j++
		}
		if j > i {
			toks = append(toks, s[i:j])
		}
		i = j
	}
	return toks
}

// ParseFormat parses a user-supplied format the way CreateFlowLogs
// validates LogFormat: `${field}` tokens separated by spaces or tabs, every
// field known, none twice, at least one. Errors are *FormatError and name
// the offending token and its position, with a suggestion where one fits.
func ParseFormat(s string) (*Format, error) {
	toks := tokens(s)
	if len(toks) == 0 {
		return nil, formatError(0, "", "", "empty format: a format needs at least one ${field}")
	}
	cols := make([]column, 0, len(toks))
	first := make(map[FieldID]int, len(toks))
	for i, tok := range toks {
		pos := i + 1
		name, ok := fieldToken(tok)
		if !ok {
			return nil, notFieldToken(pos, tok)
		}
		if name == "" {
			return nil, formatError(pos, tok, "", fmt.Sprintf("empty field name ${} at position %d", pos))
		}
		id, known := FieldByName(name)
		if !known {
			return nil, formatError(pos, tok, suggestField(name),
				fmt.Sprintf("unknown field %s at position %d", tok, pos))
		}
		if at, dup := first[id]; dup {
			return nil, formatError(pos, tok, "",
				fmt.Sprintf("duplicate field %s at position %d (already at position %d)", tok, pos, at))
		}
		first[id] = pos
		cols = append(cols, column{id: id, name: name})
	}
	return newFormat(cols), nil
}

// fieldToken returns the name inside a `${name}` token.
func fieldToken(tok string) (string, bool) {
	if len(tok) < 3 || !strings.HasPrefix(tok, "${") || !strings.HasSuffix(tok, "}") {
		return "", false
	}
	name := tok[2 : len(tok)-1]
	if strings.ContainsAny(name, "${}") {
		return "", false
	}
	return name, true
}

// notFieldToken explains why tok is not a single ${field} token.
func notFieldToken(pos int, tok string) *FormatError {
	if strings.Count(tok, "${") > 1 || (strings.Contains(tok, "${") && !strings.HasPrefix(tok, "${")) ||
		(strings.HasPrefix(tok, "${") && strings.Contains(tok, "}") && !strings.HasSuffix(tok, "}")) {
		return formatError(pos, tok, "", fmt.Sprintf(
			"text between fields in %q at position %d: separate ${field} tokens with spaces and nothing else", tok, pos))
	}
	suggestion := ""
	bare := strings.Trim(tok, "${}")
	if _, ok := FieldByName(bare); ok {
		suggestion = "${" + bare + "}"
	} else if bare != "" {
		suggestion = suggestField(bare)
	}
	return formatError(pos, tok, suggestion, fmt.Sprintf("%q at position %d is not a ${field} token", tok, pos))
}

// suggestField returns "${name}" for the known field closest to name by
// edit distance, or "" when nothing is close enough to be a plausible typo.
// The comparison ignores case and treats '_' as '-' (Parquet column names).
func suggestField(name string) string {
	best, bestDist := ClosestField(name)
	// A suggestion more different than similar is noise.
	if bestDist > 2 && bestDist*2 > len(name) {
		return ""
	}
	return "${" + best + "}"
}

// ClosestField returns the known field whose name is nearest to name (by
// edit distance, ignoring case and reading '_' as '-', as Parquet column
// names and hand-typed queries spell them) and that distance.
func ClosestField(name string) (field string, distance int) {
	norm := strings.ReplaceAll(strings.ToLower(name), "_", "-")
	distance = -1
	for i := range Fields {
		if d := editDistance(norm, Fields[i].Name); distance < 0 || d < distance {
			field, distance = Fields[i].Name, d
		}
	}
	return field, distance
}

// editDistance is the Levenshtein distance between a and b in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// plausibleFieldName reports whether s could be the name of a flow log
// field, known or not: lowercase letters, digits and dashes, starting with
// a letter. Record values never look like that and contain a known name.
func plausibleFieldName(s string) bool {
	if s == "" || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ParseHeader parses the header line of a flow log text object (bare field
// names: "version account-id interface-id …") or a `${field}` line, for
// reading logs rather than creating them: fields flowlog does not know
// (transit gateway fields such as tgw-id, later versions' fields) are
// allowed and kept as unknown columns (Unknown), as long as each looks like
// a field name (lowercase letters, digits, dashes) and at least one known
// field is among them. Duplicates are errors.
func ParseHeader(line string) (*Format, error) {
	toks := tokens(line)
	if len(toks) == 0 {
		return nil, formatError(0, "", "", "empty header: no field names")
	}
	dollar := strings.HasPrefix(toks[0], "${")
	cols := make([]column, 0, len(toks))
	first := make(map[string]int, len(toks))
	known := 0
	for i, tok := range toks {
		pos := i + 1
		name := tok
		if dollar {
			n, ok := fieldToken(tok)
			if !ok {
				return nil, notFieldToken(pos, tok)
			}
			name = n
		}
		if !plausibleFieldName(name) {
			return nil, formatError(pos, tok, "", fmt.Sprintf(
				"%q at position %d is not a field name (lowercase letters, digits and dashes)", tok, pos))
		}
		if at, dup := first[name]; dup {
			return nil, formatError(pos, tok, "",
				fmt.Sprintf("duplicate field %s at position %d (already at position %d)", tok, pos, at))
		}
		first[name] = pos
		if id, ok := FieldByName(name); ok {
			cols = append(cols, column{id: id, name: name})
			known++
		} else {
			cols = append(cols, column{id: fieldExtra, name: name})
		}
	}
	if known == 0 {
		return nil, formatError(1, toks[0], "", "header names no known field")
	}
	return newFormat(cols), nil
}

func newFormat(cols []column) *Format {
	f := &Format{cols: cols, version: 2}
	var text, header strings.Builder
	for i := range f.cols {
		c := &f.cols[i]
		if c.id == fieldExtra {
			c.extra = len(f.unknown)
			f.unknown = append(f.unknown, c.name)
		} else {
			switch {
			case numericFields.Has(c.id):
				c.kind = kindUnsigned
			case addrFields.Has(c.id):
				c.kind = kindAddr
			}
			f.fields = append(f.fields, c.id)
			f.set = f.set.With(c.id)
			f.version = max(f.version, Fields[c.id].Version)
		}
		sep := ","
		if i > 0 {
			text.WriteByte(' ')
			header.WriteByte(' ')
		} else {
			sep = "{"
		}
		text.WriteString("${" + c.name + "}")
		header.WriteString(c.name)
		f.jsonKeys = append(f.jsonKeys, sep+strconv.Quote(c.name)+":")
	}
	f.text, f.header = text.String(), header.String()
	f.isDef = f.text == DefaultFormatText
	return f
}

// Fields returns the known fields of the format in the order a record line
// lists them. Unknown columns of a lenient format (Unknown) are left out,
// so for such formats len(Fields()) < Len(). The slice is a copy.
func (f *Format) Fields() []FieldID { return append([]FieldID(nil), f.fields...) }

// Unknown returns the names of the fields flowlog does not know, in format
// order; a record's values for them are in Record.Extra in the same order.
// Always empty for formats from ParseFormat. The slice is a copy.
func (f *Format) Unknown() []string { return append([]string(nil), f.unknown...) }

// Len is the number of values in a record line: known and unknown fields.
func (f *Format) Len() int { return len(f.cols) }

// Has reports whether the format includes the known field id.
func (f *Format) Has(id FieldID) bool { return f.set.Has(id) }

// Set returns the known fields of the format as a set.
func (f *Format) Set() FieldSet { return f.set }

// Version is the record version of the format: the highest version among
// its known fields (the default format: 2). It is the value flowlog writes
// in ${version}.
func (f *Format) Version() int { return f.version }

// IsDefault reports whether the format is exactly the default format.
func (f *Format) IsDefault() bool { return f.isDef }

// String returns the format in `${field}` syntax, single spaces between
// tokens; ParseFormat(f.String()) gives the same fields back.
func (f *Format) String() string { return f.text }

// Header returns the header line of text objects in this format: the bare
// field names separated by single spaces, without a line end.
func (f *Format) Header() string { return f.header }

// AppendHeader appends Header() to b.
func (f *Format) AppendHeader(b []byte) []byte { return append(b, f.header...) }
