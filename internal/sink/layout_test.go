package sink

import (
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLayoutKey(t *testing.T) {
	period := time.Date(2018, 6, 20, 16, 20, 0, 0, time.UTC)
	const name = "123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20180620T1620Z_fe123456.log.gz"
	tests := []struct {
		name   string
		layout func(*Layout)
		want   string
	}{
		// The spec's example, verbatim (spec §5).
		{"plain", func(*Layout) {},
			"AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/" + name},
		{"per-hour", func(l *Layout) { l.PerHour = true },
			"AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/16/" + name},
		{"hive", func(l *Layout) { l.Hive = true },
			"AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year=2018/month=06/day=20/" + name},
		{"hive per-hour", func(l *Layout) { l.Hive, l.PerHour = true, true },
			"AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year=2018/month=06/day=20/hour=16/" + name},
		{"prefix", func(l *Layout) { l.Prefix = "flow/logs" },
			"flow/logs/AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/" + name},
		{"prefix slashes", func(l *Layout) { l.Prefix = "/flow/logs/" },
			"flow/logs/AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/" + name},
		{"prefix hive per-hour", func(l *Layout) { l.Prefix, l.Hive, l.PerHour = "p", true, true },
			"p/AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year=2018/month=06/day=20/hour=16/" + name},
		{"parquet", func(l *Layout) { l.Parquet = true },
			"AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/" + strings.TrimSuffix(name, ".gz") + ".parquet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := testLayout()
			tt.layout(&l)
			if err := l.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if got := l.Key(period, "fe123456"); got != tt.want {
				t.Errorf("Key:\n got %s\nwant %s", got, tt.want)
			}
			if got, want := l.Folder(period), path.Dir(tt.want); got != want {
				t.Errorf("Folder:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestLayoutKeyTime(t *testing.T) {
	l := testLayout()
	l.PerHour = true
	// A period given in another zone or not at its start still names the
	// UTC period that holds it: the folders follow the name's time, which
	// here crosses into the next day in UTC.
	zone := time.FixedZone("UTC-5", -5*3600)
	in := time.Date(2024, 12, 31, 19, 7, 42, 0, zone) // 2025-01-01T00:07:42Z
	want := "AWSLogs/123456789012/vpcflowlogs/us-east-1/2025/01/01/00/123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20250101T0005Z_00000000.log.gz"
	if got := l.Key(in, "00000000"); got != want {
		t.Errorf("Key:\n got %s\nwant %s", got, want)
	}
}

func TestLayoutValidate(t *testing.T) {
	tests := []struct {
		name    string
		layout  func(*Layout)
		wantErr string // "" for valid
	}{
		{"example", func(*Layout) {}, ""},
		{"17 hex id", func(l *Layout) { l.FlowLogID = "fl-0123456789abcdef0" }, ""},
		{"region local", func(l *Layout) { l.Region = "local" }, ""},
		{"prefix AWSLogsX", func(l *Layout) { l.Prefix = "AWSLogsX/awslogs" }, ""},
		{"prefix trailing slash", func(l *Layout) { l.Prefix = "logs/" }, ""},
		{"short account", func(l *Layout) { l.AccountID = "12345678901" }, `account id "12345678901"`},
		{"letters in account", func(l *Layout) { l.AccountID = "12345678901a" }, "account id"},
		{"unknown account", func(l *Layout) { l.AccountID = "unknown" }, "account id"},
		{"empty region", func(l *Layout) { l.Region = "" }, "region"},
		{"region with underscore", func(l *Layout) { l.Region = "us_east_1" }, "region"},
		{"region with slash", func(l *Layout) { l.Region = "us/east" }, "region"},
		{"uppercase region", func(l *Layout) { l.Region = "US-EAST-1" }, "region"},
		{"id without fl-", func(l *Layout) { l.FlowLogID = "1234abcd" }, "flow log id"},
		{"id of 9 hex", func(l *Layout) { l.FlowLogID = "fl-1234abcde" }, "flow log id"},
		{"uppercase id", func(l *Layout) { l.FlowLogID = "fl-1234ABCD" }, "flow log id"},
		{"prefix AWSLogs", func(l *Layout) { l.Prefix = "AWSLogs" }, "AWSLogs"},
		{"prefix with AWSLogs inside", func(l *Layout) { l.Prefix = "a/AWSLogs/b" }, "AWSLogs"},
		{"prefix ending in AWSLogs", func(l *Layout) { l.Prefix = "a/AWSLogs/" }, "AWSLogs"},
		{"prefix with ..", func(l *Layout) { l.Prefix = "a/../../etc" }, `".."`},
		{"prefix with empty folder", func(l *Layout) { l.Prefix = "a//b" }, "empty folder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := testLayout()
			tt.layout(&l)
			err := l.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("Validate accepted %+v", l)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("Validate: %v, want it to mention %s", err, tt.wantErr)
			}
		})
	}
}

func TestPeriodOf(t *testing.T) {
	at := func(h, m, s int) int64 { return time.Date(2018, 6, 20, h, m, s, 0, time.UTC).Unix() }
	tests := []struct {
		end, want int64
	}{
		{at(16, 19, 59), at(16, 15, 0)},
		{at(16, 20, 0), at(16, 20, 0)},
		{at(16, 24, 59), at(16, 20, 0)},
		{at(16, 25, 0), at(16, 25, 0)},
		{at(23, 59, 59), at(23, 55, 0)},
		{0, 0},
		{299, 0},
		{-1, -300},
		{-300, -300},
		{-301, -600},
	}
	for _, tt := range tests {
		if got := PeriodOf(tt.end); got != tt.want {
			t.Errorf("PeriodOf(%d) = %d, want %d", tt.end, got, tt.want)
		}
	}
	// The spec's example: records ending 16:20:00 to 16:24:59 make the
	// object named 20180620T1620Z.
	l := testLayout()
	for _, end := range []int64{at(16, 20, 0), at(16, 24, 59)} {
		key := l.Key(time.Unix(PeriodOf(end), 0), "fe123456")
		if !strings.Contains(key, "_20180620T1620Z_") {
			t.Errorf("record ending %s is in %s", time.Unix(end, 0).UTC(), key)
		}
	}
}

func TestParseDestination(t *testing.T) {
	tests := []struct {
		in       string
		kind     DestinationKind
		location string
		wantErr  bool
	}{
		{in: "/var/log/flows", kind: DestinationFile, location: "/var/log/flows"},
		{in: "/var/log/flows/", kind: DestinationFile, location: "/var/log/flows"},
		{in: "flows", kind: DestinationFile, location: "flows"},
		{in: "./a/../flows", kind: DestinationFile, location: "flows"},
		{in: "file:///var/log/flows", kind: DestinationFile, location: "/var/log/flows"},
		{in: "file://localhost/var/log/flows", kind: DestinationFile, location: "/var/log/flows"},
		{in: "file:///var/log/my%20flows", kind: DestinationFile, location: "/var/log/my flows"},
		{in: "s3://bucket", kind: DestinationS3, location: "bucket"},
		{in: "s3://bucket/prefix/", kind: DestinationS3, location: "bucket/prefix"},
		{in: "arn:aws:s3:::bucket/prefix", kind: DestinationS3, location: "bucket/prefix"},
		{in: "", wantErr: true},
		{in: "file://", wantErr: true},
		{in: "file://otherhost/x", wantErr: true},
		{in: "file:relative", wantErr: true},
		{in: "s3://", wantErr: true},
		{in: "s3:///prefix", wantErr: true},
		{in: "arn:aws:s3:::", wantErr: true},
		{in: "kafka://broker:9092/topic", kind: DestinationKafka, location: "broker:9092/topic"},
		{in: "http://example.com/x", wantErr: true},
	}
	for _, tt := range tests {
		kind, location, err := ParseDestination(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParseDestination(%q) = %s %q, want an error", tt.in, kind, location)
			} else if tt.in != "" && !strings.Contains(err.Error(), tt.in) {
				t.Errorf("ParseDestination(%q): error %q does not name the destination", tt.in, err)
			}
			continue
		}
		if err != nil || kind != tt.kind || location != tt.location {
			t.Errorf("ParseDestination(%q) = %s %q %v, want %s %q", tt.in, kind, location, err, tt.kind, tt.location)
		}
	}
}

// FuzzLayoutKey checks that every layout Validate accepts gives keys that
// stay inside the destination: the prefix's folders, then exactly one
// AWSLogs folder, and no element that could climb out of a root directory.
func FuzzLayoutKey(f *testing.F) {
	// Account ids, regions and flow log ids as they appear in AWS's samples
	// (../shared/corpora/aws-samples) and prefixes people use.
	f.Add("", "123456789010", "us-east-1", "fl-1234abcd", false, false, int64(1418530070))
	f.Add("logs/", "123456789012", "us-west-2", "fl-0123456789abcdef0", true, true, int64(1620140661))
	f.Add("a/AWSLogs", "000000000000", "local", "fl-00000000", false, true, int64(0))
	f.Add("../x", "111111111111", "eu-central-1", "fl-aaaaaaaa", true, false, int64(-1))
	f.Fuzz(func(t *testing.T, prefix, account, region, id string, hive, perHour bool, end int64) {
		l := Layout{Prefix: prefix, AccountID: account, Region: region, FlowLogID: id, Hive: hive, PerHour: perHour}
		if l.Validate() != nil {
			return
		}
		period := time.Unix(PeriodOf(end), 0)
		key := l.Key(period, "0123abcd")
		if path.Dir(key) != l.Folder(period) {
			t.Fatalf("key %s is not in folder %s", key, l.Folder(period))
		}
		elems := strings.Split(key, "/")
		awsLogs := 0
		for _, e := range elems {
			if e == "" || e == "." || e == ".." {
				t.Fatalf("key %s has element %q", key, e)
			}
			if e == "AWSLogs" {
				awsLogs++
			}
		}
		if awsLogs != 1 {
			t.Fatalf("key %s has %d AWSLogs folders", key, awsLogs)
		}
		root := "/srv/flows"
		if p := filepath.Join(root, key); !strings.HasPrefix(p, root+"/") {
			t.Fatalf("key %s escapes the root: %s", key, p)
		}
		if !strings.HasSuffix(key, "_vpcflowlogs_"+region+"_"+id+"_"+period.UTC().Format("20060102T1504Z")+"_0123abcd.log.gz") {
			t.Fatalf("key %s does not end in the object name", key)
		}
	})
}
