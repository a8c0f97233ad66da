package sink

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// PeriodSeconds is the length of the periods records are grouped into for
// S3-style objects: 5 minutes, as AWS does (spec §5).
const PeriodSeconds = 300

// Layout names objects exactly like AWS names the objects of a flow log that
// delivers to S3 (spec §5):
//
//	[prefix/]AWSLogs/ACCOUNT/vpcflowlogs/REGION/YYYY/MM/DD/[HH/]ACCOUNT_vpcflowlogs_REGION_FLOWLOGID_YYYYMMDDTHHmmZ_HASH.log.gz
//
// and with Hive-compatible partitions
//
//	[prefix/]AWSLogs/aws-account-id=ACCOUNT/aws-service=vpcflowlogs/aws-region=REGION/year=YYYY/month=MM/day=DD/[hour=HH/]…
type Layout struct {
	// Prefix is the optional folder the AWSLogs tree lies in ("a/b").
	// Leading and trailing slashes are ignored. It may not contain an
	// "AWSLogs" element, as AWS refuses it, nor empty, "." or ".." elements.
	Prefix    string
	AccountID string // 12 digits
	Region    string // lowercase letters, digits and '-', e.g. us-east-1 or local
	// FlowLogID is fl- followed by 17 lowercase hex digits (8 are accepted
	// too, as in AWS's documentation examples such as fl-1234abcd).
	FlowLogID string
	Hive      bool // Hive-compatible partitions: name= folders and an aws-service=vpcflowlogs level
	PerHour   bool // an hour folder below the day
	Parquet   bool // objects end in .log.parquet instead of .log.gz
}

// Validate reports the first field of l that cannot form an AWS-style key.
func (l Layout) Validate() error {
	if !isDigits(l.AccountID, 12) {
		return fmt.Errorf("invalid account id %q: want 12 digits", l.AccountID)
	}
	if !isRegion(l.Region) {
		return fmt.Errorf("invalid region %q: want lowercase letters, digits and '-', e.g. us-east-1", l.Region)
	}
	if !isFlowLogID(l.FlowLogID) {
		return fmt.Errorf("invalid flow log id %q: want fl- and 17 (or 8) lowercase hex digits", l.FlowLogID)
	}
	if err := validatePrefix(l.Prefix); err != nil {
		return fmt.Errorf("invalid prefix %q: %w", l.Prefix, err)
	}
	return nil
}

func validatePrefix(prefix string) error {
	p := strings.Trim(prefix, "/")
	if p == "" {
		return nil
	}
	for elem := range strings.SplitSeq(p, "/") {
		switch {
		case elem == "":
			return errors.New("empty folder name")
		case elem == "." || elem == "..":
			return fmt.Errorf("folder name %q", elem)
		case elem == "AWSLogs":
			return errors.New("AWSLogs may not be used as a folder name")
		case strings.ContainsAny(elem, "\x00\\"):
			return fmt.Errorf("folder name %q contains NUL or backslash", elem)
		}
	}
	return nil
}

// Folder returns the folder part of the keys of objects of the period that
// starts at period (no leading or trailing slash): everything Key returns
// before the last '/'. It is known before an object's content, so a
// destination can stage the object next to where it will be published.
func (l Layout) Folder(period time.Time) string {
	return string(l.appendFolder(make([]byte, 0, 128), periodStart(period)))
}

// Key returns the key of an object of the period that starts at period, with
// the name hash hash (8 lowercase hex digits). period is taken in UTC and
// truncated to the start of its 5-minute period.
func (l Layout) Key(period time.Time, hash string) string {
	t := periodStart(period)
	b := l.appendFolder(make([]byte, 0, 192), t)
	b = append(b, '/')
	b = append(b, l.AccountID...)
	b = append(b, "_vpcflowlogs_"...)
	b = append(b, l.Region...)
	b = append(b, '_')
	b = append(b, l.FlowLogID...)
	b = append(b, '_')
	b = t.AppendFormat(b, "20060102T1504Z")
	b = append(b, '_')
	b = append(b, hash...)
	if l.Parquet {
		b = append(b, ".log.parquet"...)
	} else {
		b = append(b, ".log.gz"...)
	}
	return string(b)
}

func (l Layout) appendFolder(b []byte, t time.Time) []byte {
	if p := strings.Trim(l.Prefix, "/"); p != "" {
		b = append(b, p...)
		b = append(b, '/')
	}
	b = append(b, "AWSLogs/"...)
	if l.Hive {
		b = append(b, "aws-account-id="...)
		b = append(b, l.AccountID...)
		b = append(b, "/aws-service=vpcflowlogs/aws-region="...)
		b = append(b, l.Region...)
		b = t.AppendFormat(append(b, "/year="...), "2006")
		b = t.AppendFormat(append(b, "/month="...), "01")
		b = t.AppendFormat(append(b, "/day="...), "02")
		if l.PerHour {
			b = t.AppendFormat(append(b, "/hour="...), "15")
		}
		return b
	}
	b = append(b, l.AccountID...)
	b = append(b, "/vpcflowlogs/"...)
	b = append(b, l.Region...)
	b = t.AppendFormat(append(b, '/'), "2006/01/02")
	if l.PerHour {
		b = t.AppendFormat(append(b, '/'), "15")
	}
	return b
}

// PeriodOf returns the start (Unix seconds) of the 5-minute period that holds
// a record whose end is end (Unix seconds): records are grouped into objects
// by their end time (spec §5).
func PeriodOf(end int64) int64 {
	p := end - end%PeriodSeconds
	if end < 0 && end%PeriodSeconds != 0 {
		p -= PeriodSeconds // floor, not truncation toward zero
	}
	return p
}

func periodStart(t time.Time) time.Time {
	return time.Unix(PeriodOf(t.Unix()), 0).UTC()
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isRegion(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func isFlowLogID(s string) bool {
	hex, ok := strings.CutPrefix(s, "fl-")
	if !ok || len(hex) != 17 && len(hex) != 8 {
		return false
	}
	for i := 0; i < len(hex); i++ {
		c := hex[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
