package analyze

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestTablesOnTerminals prints conversations as a person at a terminal
// sees them: aligned columns, numbers to the right, readable UTC times.
func TestTablesOnTerminals(t *testing.T) {
	var out bytes.Buffer
	_, err := Connections(context.Background(), listInputs(t, sample(t, "v3-tcp-flags-1-syn-synack.log"), sample(t, "v3-tcp-flags-2-fin.log")),
		ReadConfig{}, ConnOptions{}, Output{W: &out, Terminal: true})
	if err != nil {
		t.Fatal(err)
	}
	want := "" +
		"INTERFACE              PROTO  CLIENT               SERVER          INITIATOR BY  VERDICT                HANDSHAKE  FIRST                LAST                 PACKETS C2S  BYTES C2S  PACKETS S2C  BYTES S2C\n" +
		"eni-1235b8ca123456789  tcp    52.213.180.42:43416  10.0.0.62:5001  flags         established            complete   2019-08-26 19:47:55  2019-08-26 19:48:53            8        568            7        376\n" +
		"eni-1235b8ca123456789  tcp    52.213.180.42:43418  10.0.0.62:5001  flags         closed by FIN by both  complete   2019-08-26 19:47:55  2019-08-26 19:51:53        15844   23395289         1231      64020\n"
	if out.String() != want {
		t.Errorf("terminal table:\n%s\nwant:\n%s", out.String(), want)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if len(line) != len(strings.Split(want, "\n")[0]) {
			t.Errorf("line of %d characters, header of %d: columns not aligned", len(line), len(strings.Split(want, "\n")[0]))
		}
	}
}

func TestCheckMode(t *testing.T) {
	for _, c := range []struct {
		mode   string
		filter bool
		ok     bool
	}{
		{"table", false, true}, {"json", false, true}, {"csv", false, true}, {"text", false, false},
		{"text", true, true}, {"json", true, true}, {"csv", true, true}, {"table", true, false}, {"yaml", false, false},
	} {
		if err := CheckMode(c.mode, c.filter); (err == nil) != c.ok {
			t.Errorf("CheckMode(%q, %v) = %v", c.mode, c.filter, err)
		}
	}
}
