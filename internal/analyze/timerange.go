package analyze

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/flowlog/flowlog/flow"
)

// TimeRange selects records by time: a record is in the range when its
// window [start, end] overlaps [Since, Until]. A zero bound is open. A
// record without start or end is never left out by the bound it lacks.
type TimeRange struct {
	Since, Until time.Time
}

// IsZero reports whether the range is open on both sides.
func (tr TimeRange) IsZero() bool { return tr.Since.IsZero() && tr.Until.IsZero() }

// String describes the range for messages.
func (tr TimeRange) String() string {
	f := func(t time.Time) string {
		if t.IsZero() {
			return "…"
		}
		return t.UTC().Format(time.RFC3339)
	}
	return f(tr.Since) + " – " + f(tr.Until)
}

// fields returns the fields the range needs to test a record.
func (tr TimeRange) fields() flow.FieldSet {
	var s flow.FieldSet
	if !tr.Since.IsZero() {
		s = s.With(flow.FieldEnd)
	}
	if !tr.Until.IsZero() {
		s = s.With(flow.FieldStart)
	}
	return s
}

// bounds returns the range in Unix seconds; open sides are the extremes.
func (tr TimeRange) bounds() (since, until int64) {
	since, until = -1<<63, 1<<63-1
	if !tr.Since.IsZero() {
		since = tr.Since.Unix()
	}
	if !tr.Until.IsZero() {
		until = tr.Until.Unix()
	}
	return since, until
}

// ParseTime reads a --since or --until value relative to now: a duration
// back from now ("2h", "90m", "1h30m", "3d", "1w"), an RFC 3339 time
// ("2024-06-20T16:20:00Z"), a date ("2024-06-20", midnight UTC), a time
// without zone ("2024-06-20T16:20" or "2024-06-20 16:20:00", UTC) or Unix
// seconds ("1718900400").
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, fmt.Errorf("empty time: want a duration such as 2h, an RFC 3339 time or Unix seconds")
	}
	if d, ok := parseAge(s); ok {
		return now.Add(-d), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	if t, ok := parseAbsTime(s); ok {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("time %q: want a duration back from now (2h, 30m, 3d), an RFC 3339 time (2024-06-20T16:20:00Z), a date (2024-06-20) or Unix seconds", s)
}

// parseAge parses a Go duration, also with d (24h) and w (7d) units, as a
// positive age.
func parseAge(s string) (time.Duration, bool) {
	rest, total := s, time.Duration(0)
	// Split off leading day and week terms, then hand the rest to Go.
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9') {
			i++
		}
		if i == 0 || i == len(rest) || (rest[i] != 'd' && rest[i] != 'w') {
			break
		}
		n, err := strconv.ParseInt(rest[:i], 10, 32)
		if err != nil {
			return 0, false
		}
		unit := 24 * time.Hour
		if rest[i] == 'w' {
			unit *= 7
		}
		total += time.Duration(n) * unit
		rest = rest[i+1:]
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil || d < 0 {
			return 0, false
		}
		total += d
	} else if total == 0 && s != "0d" && s != "0w" {
		return 0, false
	}
	return total, true
}

// parseAbsTime reads an RFC 3339 time, a date, or a time without zone
// (UTC).
func parseAbsTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
