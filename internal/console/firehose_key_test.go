package console

import (
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/api/firehose"
)

// TestFirehoseKeys: the prefixes listed for a since (hours, days, or
// everything) and the times read from the keys firehose.ObjectKey makes.
func TestFirehoseKeys(t *testing.T) {
	now := time.Date(2025, 3, 10, 12, 30, 0, 0, time.UTC)
	if got := firehosePrefixes("p/", time.Time{}, now); len(got) != 1 || got[0] != "p/" {
		t.Errorf("no since: %q", got)
	}
	// Since 11:10 less the slack: the hour folders 09 to 12.
	if got := firehosePrefixes("p/", now.Add(-80*time.Minute), now); len(got) != 4 || got[0] != "p/2025/03/10/09/" || got[3] != "p/2025/03/10/12/" {
		t.Errorf("since 80 min: %q", got)
	}
	if got := firehosePrefixes("", now.AddDate(0, 0, -5), now); len(got) != 6 || got[0] != "2025/03/05/" || got[5] != "2025/03/10/" {
		t.Errorf("since 5 days: %q", got)
	}
	if got := firehosePrefixes("p/", now.AddDate(-1, 0, 0), now); len(got) != 1 || got[0] != "p/" {
		t.Errorf("since a year: %q", got)
	}
	if got := firehosePrefixes("p/", now.Add(5*time.Hour), now); len(got) != 1 || got[0] != "p/2025/03/10/15/" {
		t.Errorf("since in the future: %q", got)
	}
	d := firehose.Destination{Stream: "flows", Prefix: "vpc/"}
	at := time.Date(2025, 3, 10, 9, 59, 58, 0, time.UTC)
	for _, gz := range []bool{false, true} {
		key := firehose.ObjectKey(d.Prefix, d.Stream, at, "0b8f4d56-1c55-4a4e-9a3b-2f6a0c1d2e3f", gz)
		if got, ok := firehoseKeyTime(key, d); !ok || !got.Equal(at) {
			t.Errorf("%s: %v %v", key, got, ok)
		}
	}
	for _, key := range []string{
		"vpc/2025/03/10/09/other-1-2025-03-10-09-59-58-0b8f4d56-1c55-4a4e-9a3b-2f6a0c1d2e3f", // another stream
		"vpc/2025/03/10/08/flows-1-2025-03-10-09-59-58-0b8f4d56-1c55-4a4e-9a3b-2f6a0c1d2e3f", // folder and name disagree
		"vpc/2025/03/10/09/flows-1-2025-03-10-09-59-58",
		"x/2025/03/10/09/flows-1-2025-03-10-09-59-58-0b8f4d56-1c55-4a4e-9a3b-2f6a0c1d2e3f",
		"vpc/notes.txt",
	} {
		if _, ok := firehoseKeyTime(key, d); ok {
			t.Errorf("%s: read as an object of stream flows", key)
		}
	}
}
