package analyze

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const synthHeader = "version interface-id srcaddr dstaddr srcport dstport protocol tcp-flags packets bytes start end action log-status"

// synthRecords are records of conversations whose story is known, on a
// 60-second window grid. Each entry is one record line.
var synthRecords = []string{
	// A: SYN-ACK record listed before the SYN record; still open.
	"3 eni-a 10.0.0.5 10.0.0.9 443 50001 6 18 1 60 1000 1000 ACCEPT OK",
	"3 eni-a 10.0.0.9 10.0.0.5 50001 443 6 2 1 60 1000 1000 ACCEPT OK",
	"3 eni-a 10.0.0.9 10.0.0.5 50001 443 6 0 10 5000 1000 1050 ACCEPT OK",
	// B: split across three windows (and, below, two files): handshake
	// in the first, the client's FIN in the second, the server's FIN in
	// the third. The client closed first.
	"3 eni-a 10.0.0.9 10.0.0.6 50002 80 6 2 3 180 1000 1059 ACCEPT OK",
	"3 eni-a 10.0.0.6 10.0.0.9 80 50002 6 18 2 120 1000 1059 ACCEPT OK",
	"3 eni-a 10.0.0.9 10.0.0.6 50002 80 6 1 5 300 1060 1110 ACCEPT OK",
	"3 eni-a 10.0.0.6 10.0.0.9 80 50002 6 0 9 9000 1060 1119 ACCEPT OK",
	"3 eni-a 10.0.0.6 10.0.0.9 80 50002 6 1 1 40 1120 1121 ACCEPT OK",
	// C: the server answers the SYN with a RST (closed port).
	"3 eni-a 10.0.0.9 10.0.0.7 50003 25 6 2 1 60 1000 1000 ACCEPT OK",
	"3 eni-a 10.0.0.7 10.0.0.9 25 50003 6 4 1 40 1000 1000 ACCEPT OK",
	// D: established, then reset by the server a window later.
	"3 eni-a 10.0.0.9 10.0.0.8 50004 5432 6 2 4 400 1000 1050 ACCEPT OK",
	"3 eni-a 10.0.0.8 10.0.0.9 5432 50004 6 18 3 300 1000 1050 ACCEPT OK",
	"3 eni-a 10.0.0.8 10.0.0.9 5432 50004 6 4 1 40 1100 1100 ACCEPT OK",
	// E: a SYN nobody answers (three tries).
	"3 eni-a 10.0.0.9 192.0.2.1 50005 8443 6 2 3 180 1000 1007 ACCEPT OK",
	// F: the SYN is rejected by a security group.
	"3 eni-a 198.51.100.7 10.0.0.9 40000 22 6 2 2 120 1000 1003 REJECT OK",
	// G: the same 5-tuple on another interface is another conversation;
	// IPv6, SYN+FIN from the client, SYN-ACK+FIN from the server.
	"3 eni-b 2001:db8::1 2001:db8::2 50006 443 6 3 12 1200 1000 1030 ACCEPT OK",
	"3 eni-b 2001:db8::2 2001:db8::1 443 50006 6 19 10 9000 1000 1030 ACCEPT OK",
	// H: mid-connection window only: no SYN, FIN or RST anywhere; the
	// ports make the initiator a guess.
	"3 eni-a 10.0.0.9 10.0.0.10 51000 8080 6 0 10 1000 1000 1059 ACCEPT OK",
	"3 eni-a 10.0.0.10 10.0.0.9 8080 51000 6 0 10 1000 1000 1059 ACCEPT OK",
	// I: the client sends SYN, the server's SYN-ACK is rejected on the
	// way back (an outbound rule).
	"3 eni-a 203.0.113.50 10.0.0.9 41000 3306 6 2 1 60 1000 1000 ACCEPT OK",
	"3 eni-a 10.0.0.9 203.0.113.50 3306 41000 6 18 1 60 1000 1000 REJECT OK",
	// Not conversations: NODATA and SKIPDATA windows.
	"3 eni-c - - - - - - - - 1000 1059 - NODATA",
	"3 eni-c - - - - - - - - 1060 1119 - SKIPDATA",
}

var synthWant = []want{
	{"10.0.0.9:50001", "10.0.0.5:443", "flags", "established", "complete"},
	{"10.0.0.9:50002", "10.0.0.6:80", "flags", "closed by FIN by client", "complete"},
	{"10.0.0.9:50003", "10.0.0.7:25", "flags", "answered by RST", "SYN only"},
	{"10.0.0.9:50004", "10.0.0.8:5432", "flags", "reset by server", "complete"},
	{"10.0.0.9:50005", "192.0.2.1:8443", "flags", "no answer to SYN", "SYN only"},
	{"10.0.0.9:51000", "10.0.0.10:8080", "ports", "still open", "not seen"},
	{"198.51.100.7:40000", "10.0.0.9:22", "flags", "rejected", "SYN only"},
	{"203.0.113.50:41000", "10.0.0.9:3306", "flags", "reply rejected", "complete"},
	{"[2001:db8::1]:50006", "[2001:db8::2]:443", "flags", "closed by FIN by both", "complete"},
}

// writeSplit writes the records to n files in dir, in a shuffled order,
// each file with the header, and returns their paths.
func writeSplit(t *testing.T, dir string, records []string, n int, rng *rand.Rand) []string {
	t.Helper()
	lines := append([]string(nil), records...)
	rng.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	files := make([][]string, n)
	for i, l := range lines {
		files[i%n] = append(files[i%n], l)
	}
	var paths []string
	for i, f := range files {
		p := filepath.Join(dir, fmt.Sprintf("part-%d.log", i))
		if err := os.WriteFile(p, []byte(synthHeader+"\n"+strings.Join(f, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// TestConnectionsOutOfOrder reads the same records in many orders and
// splits — one file, two files, several, one worker or several — and
// wants the same conversations every time.
func TestConnectionsOutOfOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var first []connJSON
	for i, n := range []int{1, 2, 2, 3, 5, 7} {
		dir := t.TempDir()
		paths := writeSplit(t, dir, synthRecords, n, rng)
		got, st := conns(t, ReadConfig{Workers: 1 + i%3}, ConnOptions{}, paths...)
		checkConns(t, got, synthWant...)
		if st.NoData != 1 || st.SkipData != 1 {
			t.Errorf("NODATA %d, SKIPDATA %d", st.NoData, st.SkipData)
		}
		if first == nil {
			first = got
		} else if !reflect.DeepEqual(first, got) {
			t.Fatalf("split %d: conversations differ from the first reading:\n%+v\n%+v", n, got, first)
		}
	}
	// Window B's totals come from all three windows.
	b := first[1]
	if b.ToServer.Packets != 8 || b.ToClient.Packets != 12 || b.ToClient.Bytes != 9160 || b.First != "1970-01-01T00:16:40Z" || b.Last != "1970-01-01T00:18:41Z" {
		t.Errorf("conversation B: %+v", b)
	}
}

func TestConnectionsHostPortProtocolFilters(t *testing.T) {
	paths := writeSplit(t, t.TempDir(), synthRecords, 2, rand.New(rand.NewPCG(3, 4)))
	got, _ := conns(t, ReadConfig{}, ConnOptions{Hosts: []netip.Prefix{netip.MustParsePrefix("10.0.0.6/32")}}, paths...)
	checkConns(t, got, synthWant[1])
	got, _ = conns(t, ReadConfig{}, ConnOptions{Ports: []uint16{5432, 25}}, paths...)
	checkConns(t, got, synthWant[2], synthWant[3])
	got, _ = conns(t, ReadConfig{}, ConnOptions{Hosts: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}, Ports: []uint16{443}}, paths...)
	checkConns(t, got, synthWant[8])
	got, _ = conns(t, ReadConfig{}, ConnOptions{Protocol: 17}, paths...)
	checkConns(t, got)
	where, _ := ParseExpr("action = REJECT")
	got, _ = conns(t, ReadConfig{Where: where}, ConnOptions{}, paths...)
	// Only the rejected records are read: F is rejected, and of I only
	// its rejected SYN-ACK remains.
	checkConns(t, got,
		want{"198.51.100.7:40000", "10.0.0.9:22", "flags", "rejected", "SYN only"},
		want{"203.0.113.50:41000", "10.0.0.9:3306", "flags", "rejected", "SYN-ACK only"},
	)
}

// TestConnectionsWithoutFlagsGuess reads conversations in the default
// format, which has no tcp-flags: verdicts come from the shape of the
// traffic and say they are guesses.
func TestConnectionsWithoutFlagsGuess(t *testing.T) {
	lines := strings.Join([]string{
		"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status",
		// A SYN tried three times, no reply.
		"2 123456789012 eni-a 10.0.0.9 192.0.2.1 50005 8443 6 3 180 1000 1007 ACCEPT OK",
		// One SYN, one bare segment back: a RST.
		"2 123456789012 eni-a 10.0.0.9 10.0.0.7 50003 25 6 1 60 1000 1000 ACCEPT OK",
		"2 123456789012 eni-a 10.0.0.7 10.0.0.9 25 50003 6 1 40 1000 1000 ACCEPT OK",
		// Data both ways.
		"2 123456789012 eni-a 10.0.0.9 10.0.0.5 50001 443 6 20 4000 1000 1059 ACCEPT OK",
		"2 123456789012 eni-a 10.0.0.5 10.0.0.9 443 50001 6 30 40000 1000 1059 ACCEPT OK",
		// A lot one way, nothing back in these logs.
		"2 123456789012 eni-a 10.0.0.9 10.0.0.6 50002 80 6 50 60000 1000 1059 ACCEPT OK",
	}, "\n") + "\n"
	p := filepath.Join(t.TempDir(), "default.log")
	if err := os.WriteFile(p, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	got, st := conns(t, ReadConfig{}, ConnOptions{}, p)
	checkConns(t, got,
		want{"10.0.0.9:50001", "10.0.0.5:443", "ports", "two-way, state unknown", ""},
		want{"10.0.0.9:50002", "10.0.0.6:80", "ports", "one-way (reply not logged)", ""},
		want{"10.0.0.9:50003", "10.0.0.7:25", "ports", "answered by RST (guess)", ""},
		want{"10.0.0.9:50005", "192.0.2.1:8443", "ports", "no answer (guess)", ""},
	)
	if !hasNote(st, "no tcp-flags field") {
		t.Errorf("notes %q", st.Notes)
	}
}
