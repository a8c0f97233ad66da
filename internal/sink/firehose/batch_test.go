package firehose

import (
	"slices"
	"strings"
	"testing"
)

func repeat(n, size int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = size
	}
	return s
}

// TestBatches checks the cuts against PutRecordBatch's limits: 500
// records and 4 MiB of data per call; a partial tail waits unless all.
func TestBatches(t *testing.T) {
	for _, tt := range []struct {
		name  string
		sizes []int
		all   bool
		want  [][2]int
	}{
		{"empty", nil, true, nil},
		{"one", []int{100}, true, [][2]int{{0, 1}}},
		{"one, tail waits", []int{100}, false, nil},
		{"500 exactly is full", repeat(500, 100), false, [][2]int{{0, 500}}},
		{"501", repeat(501, 100), true, [][2]int{{0, 500}, {500, 501}}},
		{"501, tail waits", repeat(501, 100), false, [][2]int{{0, 500}}},
		{"1250", repeat(1250, 150), true, [][2]int{{0, 500}, {500, 1000}, {1000, 1250}}},
		// 4 MiB / 10,000 bytes = 419.4: the bytes cut before the count.
		{"bytes cut first", repeat(1000, 10_000), true, [][2]int{{0, 419}, {419, 838}, {838, 1000}}},
		{"bytes cut, tail waits", repeat(1000, 10_000), false, [][2]int{{0, 419}, {419, 838}}},
		// Exactly 4 MiB in 4 records of 1 MiB: full.
		{"exactly 4 MiB", repeat(4, 1<<20), false, [][2]int{{0, 4}}},
		{"max records of max size", repeat(6, MaxRecordBytes), true, [][2]int{{0, 4}, {4, 6}}},
		// A line larger than a call (never rendered) still goes alone.
		{"oversize alone", []int{10, MaxBatchBytes + 1, 10}, true, [][2]int{{0, 1}, {1, 2}, {2, 3}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Batches(tt.sizes, tt.all)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Batches = %v, want %v", got, tt.want)
			}
			for _, b := range got {
				bytes := 0
				for _, s := range tt.sizes[b[0]:b[1]] {
					bytes += s
				}
				if n := b[1] - b[0]; n > MaxBatchRecords || (n > 1 && bytes > MaxBatchBytes) {
					t.Errorf("batch %v: %d records, %d bytes: over the limits", b, n, bytes)
				}
			}
		})
	}
}

func TestParseLocation(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Target
	}{
		{"flows", Target{Stream: "flows"}},
		{"flows?region=eu-west-1", Target{Stream: "flows", Region: "eu-west-1"}},
		{"arn:aws:firehose:us-east-1:123456789012:deliverystream/vpc-flows", Target{Stream: "vpc-flows", Region: "us-east-1", Account: "123456789012"}},
		{"arn:aws-cn:firehose:cn-north-1:123456789012:deliverystream/a.b_c-d", Target{Stream: "a.b_c-d", Region: "cn-north-1", Account: "123456789012"}},
	} {
		got, err := ParseLocation(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseLocation(%q) = %+v %v, want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{
		"", "a b", strings.Repeat("x", 65), "flows?zone=x", "flows?region=", "flows?region=a&region=b", "flows?%zz",
		"arn:aws:firehose:us-east-1:123456789012:stream/x", "arn:aws:firehose::123456789012:deliverystream/x",
		"arn:aws:firehose:us-east-1:123456789012:deliverystream/", "arn:aws:kinesis:us-east-1:1:deliverystream/x",
		"arn:aws:firehose:us-east-1:123456789012:deliverystream/a/b",
	} {
		if got, err := ParseLocation(bad); err == nil {
			t.Errorf("ParseLocation(%q) = %+v, want an error", bad, got)
		}
	}
}

// FuzzParseLocation: any accepted location names a valid stream, and
// the ARN of what it names parses back to the same stream and region.
func FuzzParseLocation(f *testing.F) {
	for _, s := range []string{"flows", "flows?region=eu-west-1", "arn:aws:firehose:us-east-1:123456789012:deliverystream/x", "a?region=%41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseLocation(s)
		if err != nil {
			return
		}
		if !ValidStreamName(got.Stream) {
			t.Fatalf("ParseLocation(%q) = %+v: invalid stream name accepted", s, got)
		}
		if got.Region == "" || strings.Contains(got.Region, ":") {
			return
		}
		back, err := ParseLocation(ARN(got.Region, "123456789012", got.Stream))
		if err != nil || back.Stream != got.Stream || back.Region != got.Region {
			t.Fatalf("ARN of %+v parses as %+v %v", got, back, err)
		}
	})
}
