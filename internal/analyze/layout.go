package analyze

import (
	"strconv"
	"strings"
	"time"
)

// Time-range pruning by key. In the AWS layout (spec §5)
//
//	…/AWSLogs/ACCOUNT/vpcflowlogs/REGION/YYYY/MM/DD/[HH/]ACCOUNT_vpcflowlogs_REGION_FLOWLOGID_YYYYMMDDTHHmmZ_HASH.log.gz
//
// (or with Hive names: aws-account-id=…/aws-service=vpcflowlogs/aws-region=…/year=…/month=…/day=…/hour=…)
// an object's folders and name say when its records ended: flowlog puts a
// record in the object of the 5-minute period its end falls in; AWS names
// objects up to several minutes after the records in them ended. So the
// object named T holds records with end in [T − publishLag, T + 5 min), and
// their start is at most one aggregation window (600 s) before their end.
const (
	objectPeriod = 5 * time.Minute
	publishLag   = 30 * time.Minute
	maxWindow    = 10 * time.Minute
)

// keySpan is the time span a key's objects are named for: the period of
// an object, or the year, month, day or hour of a folder.
type keySpan struct {
	from, to time.Time // [from, to)
}

// mayMatch reports whether objects named within the span can hold
// records in the range.
func (s keySpan) mayMatch(tr TimeRange) bool {
	// An object named T may hold records that end up to T+5min and start
	// as early as T−publishLag−maxWindow.
	if !tr.Since.IsZero() && !s.to.Add(objectPeriod).After(tr.Since) {
		return false
	}
	if !tr.Until.IsZero() && s.from.Add(-publishLag-maxWindow).After(tr.Until) {
		return false
	}
	return true
}

// layoutSpan returns the span of the folder or object at key (a path or an
// S3 key, '/'-separated) when key lies in the AWS layout deep enough to
// name a time; ok is false otherwise (then nothing is pruned).
func layoutSpan(key string, isDir bool) (keySpan, bool) {
	parts := strings.Split(strings.Trim(key, "/"), "/")
	v := -1
	for i, p := range parts {
		if (p == "vpcflowlogs" || p == "aws-service=vpcflowlogs") && i >= 2 && parts[i-2] == "AWSLogs" {
			v = i
		}
	}
	if v < 0 {
		return keySpan{}, false
	}
	hive := parts[v] == "aws-service=vpcflowlogs"
	// The levels after the region: year, month, day and, optionally, hour.
	levels := []string{"year=", "month=", "day=", "hour="}
	var nums []int
	i := v + 2
	for ; i < len(parts) && len(nums) < len(levels); i++ {
		if !isDir && i == len(parts)-1 {
			break // the object's name
		}
		p := parts[i]
		if hive {
			if !strings.HasPrefix(p, levels[len(nums)]) {
				break
			}
			p = p[len(levels[len(nums)]):]
		}
		width := 2
		if len(nums) == 0 {
			width = 4
		}
		n, err := strconv.Atoi(p)
		if len(p) != width || err != nil {
			break
		}
		nums = append(nums, n)
	}
	if !isDir {
		if t, ok := nameTime(parts[len(parts)-1]); ok {
			return keySpan{t, t.Add(objectPeriod)}, true
		}
	}
	if len(nums) == 0 || (!isDir && i != len(parts)-1) {
		return keySpan{}, false
	}
	depth := len(nums)
	for len(nums) < 4 {
		nums = append(nums, map[int]int{1: 1, 2: 1, 3: 0}[len(nums)])
	}
	from := time.Date(nums[0], time.Month(nums[1]), nums[2], nums[3], 0, 0, 0, time.UTC)
	var to time.Time
	switch {
	case depth >= 4:
		to = from.Add(time.Hour)
	case depth == 3:
		to = from.AddDate(0, 0, 1)
	case depth == 2:
		to = from.AddDate(0, 1, 0)
	default:
		to = from.AddDate(1, 0, 0)
	}
	return keySpan{from, to}, true
}

// nameTime reads the period in an object name
// ACCOUNT_vpcflowlogs_REGION_FLOWLOGID_YYYYMMDDTHHmmZ_HASH.log.gz.
func nameTime(name string) (time.Time, bool) {
	fields := strings.Split(name, "_")
	if len(fields) < 6 || fields[1] != "vpcflowlogs" {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102T1504Z", fields[4])
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// otherAWSService reports whether the folder key is the log tree of
// another AWS service (AWSLogs/ACCOUNT/CloudTrail, …) that shares a bucket
// with flow logs and must not be read as flow logs.
func otherAWSService(key string) bool {
	parts := strings.Split(strings.Trim(key, "/"), "/")
	for i := 0; i+2 < len(parts); i++ {
		if parts[i] != "AWSLogs" {
			continue
		}
		svc := strings.TrimPrefix(parts[i+2], "aws-service=")
		return svc != "vpcflowlogs" && (isAccountPart(parts[i+1]))
	}
	return false
}

func isAccountPart(p string) bool {
	p = strings.TrimPrefix(p, "aws-account-id=")
	if len(p) != 12 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// logFileName reports whether a file found while walking a folder looks
// like a flow log object: AWS's and flowlog's objects end in .log.gz or
// .log.parquet; files people keep are often .log, .txt, .json or .gz.
// Hidden files (flowlog's .tmp- staging files among them) are never read.
func logFileName(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	for _, ext := range []string{".log", ".gz", ".parquet", ".txt", ".json", ".jsonl", ".tsv"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}
