package analyze

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/sink"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestLayoutSpan(t *testing.T) {
	for _, c := range []struct {
		key      string
		dir      bool
		from, to string // empty: not in the layout
	}{
		{"AWSLogs/123456789012/vpcflowlogs/us-east-1/2024", true, "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"},
		{"p/q/AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/06/", true, "2024-06-01T00:00:00Z", "2024-07-01T00:00:00Z"},
		{"/data/AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/06/20", true, "2024-06-20T00:00:00Z", "2024-06-21T00:00:00Z"},
		{"AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/06/20/16/", true, "2024-06-20T16:00:00Z", "2024-06-20T17:00:00Z"},
		{"AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year=2024/month=06/day=20/hour=16", true, "2024-06-20T16:00:00Z", "2024-06-20T17:00:00Z"},
		{"AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/year=2024", true, "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"},
		{"AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20180620T1620Z_fe123456.log.gz", false, "2018-06-20T16:20:00Z", "2018-06-20T16:25:00Z"},
		// An object whose name does not parse takes its folder's span.
		{"AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/renamed.log.gz", false, "2018-06-20T00:00:00Z", "2018-06-21T00:00:00Z"},
		{"AWSLogs/123456789012/vpcflowlogs/us-east-1", true, "", ""},
		{"AWSLogs/123456789012/vpcflowlogs/us-east-1/latest/", true, "", ""},
		{"logs/2024/06/20", true, "", ""},
		{"AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/extra/x.log", false, "", ""},
	} {
		span, ok := layoutSpan(c.key, c.dir)
		if ok != (c.from != "") {
			t.Errorf("%s: in layout %v, want %v", c.key, ok, c.from != "")
			continue
		}
		if ok && (!span.from.Equal(utc(c.from)) || !span.to.Equal(utc(c.to))) {
			t.Errorf("%s: span %v – %v, want %s – %s", c.key, span.from, span.to, c.from, c.to)
		}
	}
}

func TestKeySpanMayMatch(t *testing.T) {
	obj := keySpan{utc("2024-06-20T16:20:00Z"), utc("2024-06-20T16:25:00Z")}
	for _, c := range []struct {
		since, until string
		want         bool
	}{
		{"", "", true},
		{"2024-06-20T16:29:59Z", "", true}, // records end up to 16:25 + a period
		{"2024-06-20T16:30:00Z", "", false},
		{"", "2024-06-20T15:40:00Z", true}, // publishing lag + a window before the name
		{"", "2024-06-20T15:39:59Z", false},
		{"2024-06-19T00:00:00Z", "2024-06-19T23:59:59Z", false},
	} {
		var tr TimeRange
		if c.since != "" {
			tr.Since = utc(c.since)
		}
		if c.until != "" {
			tr.Until = utc(c.until)
		}
		if got := obj.mayMatch(tr); got != c.want {
			t.Errorf("since %s until %s: %v, want %v", c.since, c.until, got, c.want)
		}
	}
}

// writeObjects writes one record ending at each time with flowlog's own
// directory destination, and returns the root.
func writeObjects(t *testing.T, root string, layout sink.Layout, ends ...string) {
	t.Helper()
	d, err := sink.NewDir(sink.DirConfig{Root: root, Layout: layout, Format: flow.DefaultFormat()})
	if err != nil {
		t.Fatal(err)
	}
	var recs []flow.Record
	for i, e := range ends {
		end := utc(e).Unix()
		recs = append(recs, flow.Record{
			Present: flow.DefaultFormat().Set(), Version: 2, AccountID: layout.AccountID, InterfaceID: "eni-0123456789abcdef0",
			SrcAddr: netip.MustParseAddr("10.0.0.1"), DstAddr: netip.MustParseAddr("10.0.0.2"), SrcPort: uint16(40000 + i), DstPort: 443,
			Protocol: 6, Packets: 1, Bytes: 60, Start: end - 30, End: end, Action: flow.ActionAccept, LogStatus: flow.LogStatusOK,
		})
	}
	slices.SortFunc(recs, func(a, b flow.Record) int { return int(a.Start - b.Start) })
	if err := d.Write(recs); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestListPrunesByKeyTime(t *testing.T) {
	root := t.TempDir()
	ends := []string{"2024-06-18T10:02:00Z", "2024-06-20T15:58:00Z", "2024-06-20T16:03:00Z", "2024-06-20T17:31:00Z", "2024-06-21T00:01:00Z"}
	plain := sink.Layout{AccountID: "123456789012", Region: "us-east-1", FlowLogID: "fl-0123456789abcdef0"}
	hive := plain
	hive.Hive, hive.PerHour, hive.Prefix = true, true, "hive"
	writeObjects(t, root, plain, ends...)
	writeObjects(t, root, hive, ends...)
	// Things a walk must not read: another service's logs, a staging
	// file, a file of another kind.
	trail := filepath.Join(root, "AWSLogs", "123456789012", "CloudTrail", "us-east-1", "2024", "06", "20")
	if err := os.MkdirAll(trail, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(trail, "trail.json.gz"), filepath.Join(root, "AWSLogs", ".tmp-123"), filepath.Join(root, "README.md")} {
		if err := os.WriteFile(p, []byte("not a flow log\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	list := func(tr TimeRange) []string {
		var names []string
		l := &Lister{Range: tr}
		if err := l.List(context.Background(), root, func(in Input) error {
			rel, _ := filepath.Rel(root, in.Name)
			names = append(names, filepath.ToSlash(rel))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return names
	}
	all := list(TimeRange{})
	if len(all) != 10 {
		t.Fatalf("unpruned listing has %d objects, want 10: %q", len(all), all)
	}
	for _, n := range all {
		if strings.Contains(n, "CloudTrail") || strings.Contains(n, ".tmp") || strings.HasSuffix(n, ".md") {
			t.Errorf("listed %s", n)
		}
	}
	// 16:00–16:10: the 15:55 and 16:00 periods can hold such records
	// (and nothing from other days or hours).
	got := list(TimeRange{Since: utc("2024-06-20T16:00:00Z"), Until: utc("2024-06-20T16:10:00Z")})
	want := 0
	for _, n := range got {
		if !strings.Contains(n, "20240620T1555Z") && !strings.Contains(n, "20240620T1600Z") {
			t.Errorf("pruning kept %s", n)
		}
		want++
	}
	if want != 4 {
		t.Errorf("kept %d objects, want 4 (two periods, two layouts): %q", want, got)
	}
	// Records are still filtered one by one: the range decides.
	var ins []Input
	l := &Lister{Range: TimeRange{Since: utc("2024-06-20T16:00:00Z")}}
	_ = l.List(context.Background(), root, func(in Input) error { ins = append(ins, in); return nil })
	v, st := readAll(t, ReadConfig{Range: l.Range}, connFields, ins...)
	// Pruning keeps the 15:55 period (its records may end after 16:00);
	// its record ends at 15:58 and is left out.
	if v.records != 6 || st.Records != 8 || len(ins) != 8 {
		t.Errorf("since 16:00: %d inputs, %d records passed of %d read; want 8 inputs, 6 of 8 records", len(ins), v.records, st.Records)
	}
}
