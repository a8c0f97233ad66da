package analyze

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowlog/flowlog/flow"
	"github.com/parquet-go/parquet-go"
)

func ptr[T any](v T) *T { return &v }

// awsRow is a Parquet row as AWS writes flow logs (spec §5): columns named
// after the fields with '-' as '_', INT32 for version, ports, protocol,
// tcp-flags and traffic-path, INT64 for packets, bytes, start and end,
// strings for the rest; every column optional ("-" is null).
type awsRow struct {
	Version     *int32  `parquet:"version,optional"`
	AccountID   *string `parquet:"account_id,optional"`
	InterfaceID *string `parquet:"interface_id,optional"`
	SrcAddr     *string `parquet:"srcaddr,optional"`
	DstAddr     *string `parquet:"dstaddr,optional"`
	SrcPort     *int32  `parquet:"srcport,optional"`
	DstPort     *int32  `parquet:"dstport,optional"`
	Protocol    *int32  `parquet:"protocol,optional"`
	Packets     *int64  `parquet:"packets,optional"`
	Bytes       *int64  `parquet:"bytes,optional"`
	Start       *int64  `parquet:"start,optional"`
	End         *int64  `parquet:"end,optional"`
	Action      *string `parquet:"action,optional"`
	LogStatus   *string `parquet:"log_status,optional"`
	TCPFlags    *int32  `parquet:"tcp_flags,optional"`
	TrafficPath *int32  `parquet:"traffic_path,optional"`
	FlowDir     *string `parquet:"flow_direction,optional"`
	PktSrc      *string `parquet:"pkt_srcaddr,optional"`
	PktDst      *string `parquet:"pkt_dstaddr,optional"`
	TGWID       *string `parquet:"tgw_id,optional"` // a field flowlog does not know
}

// subsetRow has a few fields in another order, required columns, and a
// column that is no field at all.
type subsetRow struct {
	TCPFlags  int32  `parquet:"tcp_flags"`
	End       int64  `parquet:"end"`
	DstPort   int32  `parquet:"dstport"`
	SrcAddr   string `parquet:"srcaddr"`
	Start     int64  `parquet:"start"`
	DstAddr   string `parquet:"dstaddr"`
	SrcPort   int32  `parquet:"srcport"`
	Protocol  int32  `parquet:"protocol"`
	Interface string `parquet:"interface_id"`
	Comment   string `parquet:"Some Comment"`
}

func parquetBytes[T any](t testing.TB, rows []T, opts ...parquet.WriterOption) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := parquet.Write(&b, rows, opts...); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func awsRows() []awsRow {
	return []awsRow{
		{Version: ptr(int32(5)), AccountID: ptr("123456789010"), InterfaceID: ptr("eni-1"), SrcAddr: ptr("52.213.180.42"), DstAddr: ptr("10.0.0.62"),
			SrcPort: ptr(int32(43416)), DstPort: ptr(int32(5001)), Protocol: ptr(int32(6)), Packets: ptr(int64(8)), Bytes: ptr(int64(568)),
			Start: ptr(int64(1566848875)), End: ptr(int64(1566848933)), Action: ptr("ACCEPT"), LogStatus: ptr("OK"), TCPFlags: ptr(int32(2)),
			FlowDir: ptr("ingress"), PktSrc: ptr("52.213.180.42"), PktDst: ptr("10.0.0.62"), TGWID: ptr("tgw-1")},
		{Version: ptr(int32(5)), AccountID: ptr("123456789010"), InterfaceID: ptr("eni-1"), SrcAddr: ptr("10.0.0.62"), DstAddr: ptr("52.213.180.42"),
			SrcPort: ptr(int32(5001)), DstPort: ptr(int32(43416)), Protocol: ptr(int32(6)), Packets: ptr(int64(7)), Bytes: ptr(int64(376)),
			Start: ptr(int64(1566848875)), End: ptr(int64(1566848933)), Action: ptr("ACCEPT"), LogStatus: ptr("OK"), TCPFlags: ptr(int32(18)),
			TrafficPath: ptr(int32(8)), FlowDir: ptr("egress")},
		// NODATA: only version, account, interface, times and status.
		{Version: ptr(int32(5)), AccountID: ptr("123456789010"), InterfaceID: ptr("eni-2"), Start: ptr(int64(1566848875)), End: ptr(int64(1566848933)), LogStatus: ptr("NODATA")},
	}
}

func TestParquetAWSAndSubsetFilesRead(t *testing.T) {
	dir := t.TempDir()
	aws := filepath.Join(dir, "aws.log.parquet")
	if err := os.WriteFile(aws, parquetBytes(t, awsRows(), parquet.Compression(&parquet.Gzip)), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := []subsetRow{
		{TCPFlags: 3, Start: 1566933133, End: 1566933193, SrcAddr: "52.213.180.42", DstAddr: "10.0.0.62", SrcPort: 43638, DstPort: 5001, Protocol: 6, Interface: "eni-1", Comment: "x"},
		{TCPFlags: 19, Start: 1566933133, End: 1566933193, SrcAddr: "10.0.0.62", DstAddr: "52.213.180.42", SrcPort: 5001, DstPort: 43638, Protocol: 6, Interface: "eni-1", Comment: "y"},
	}
	subset := filepath.Join(dir, "subset.parquet")
	if err := os.WriteFile(subset, parquetBytes(t, sub, parquet.Compression(&parquet.Zstd)), 0o644); err != nil {
		t.Fatal(err)
	}

	got, st := conns(t, ReadConfig{}, ConnOptions{}, aws, subset)
	checkConns(t, got,
		want{"52.213.180.42:43416", "10.0.0.62:5001", "flags", "established", "complete"},
		want{"52.213.180.42:43638", "10.0.0.62:5001", "flags", "closed by FIN by both", "complete"},
	)
	if st.Records != 5 || st.NoData != 1 {
		t.Errorf("stats %+v", st)
	}
	if got[0].ToServer.Bytes != 568 || got[0].ToClient.Packets != 7 {
		t.Errorf("counts %+v %+v", got[0].ToServer, got[0].ToClient)
	}

	// Filter renders Parquet rows in their columns' format, unknown
	// columns included, and as JSON with typed values.
	var out bytes.Buffer
	where, _ := ParseExpr("traffic-path = 8 or tcp-flags = 2")
	if _, err := Filter(context.Background(), listInputs(t, aws), ReadConfig{Where: where}, Output{W: &out, Mode: ModeText}); err != nil {
		t.Fatal(err)
	}
	wantText := "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status tcp-flags traffic-path flow-direction pkt-srcaddr pkt-dstaddr tgw-id\n" +
		"5 123456789010 eni-1 52.213.180.42 10.0.0.62 43416 5001 6 8 568 1566848875 1566848933 ACCEPT OK 2 - ingress 52.213.180.42 10.0.0.62 tgw-1\n" +
		"5 123456789010 eni-1 10.0.0.62 52.213.180.42 5001 43416 6 7 376 1566848875 1566848933 ACCEPT OK 18 8 egress - - -\n"
	if out.String() != wantText {
		t.Errorf("filter text:\n%s\nwant:\n%s", out.String(), wantText)
	}
	out.Reset()
	if _, err := Filter(context.Background(), listInputs(t, subset), ReadConfig{Where: where}, Output{W: &out, Mode: ModeJSON}); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Errorf("subset has no match, got %q", out.String())
	}
	out.Reset()
	if _, err := Filter(context.Background(), listInputs(t, subset), ReadConfig{}, Output{W: &out, Mode: ModeJSON}); err != nil {
		t.Fatal(err)
	}
	if first := strings.SplitN(out.String(), "\n", 2)[0]; first != `{"tcp-flags":3,"end":1566933193,"dstport":5001,"srcaddr":"52.213.180.42","start":1566933133,"dstaddr":"10.0.0.62","srcport":43638,"protocol":6,"interface-id":"eni-1"}` {
		t.Errorf("JSON %s", first)
	}
}

func TestParquetFromStreamAndBadValues(t *testing.T) {
	rows := awsRows()
	rows[1].SrcPort = ptr(int32(70000)) // out of range for a port
	rows[0].SrcAddr = ptr("not-an-address")
	data := parquetBytes(t, rows)
	v, st := readAll(t, ReadConfig{}, connFields, ReaderInput(StdinName, bytes.NewReader(data)))
	if v.records != 1 || st.SkippedLines != 2 {
		t.Fatalf("%d records, %d skipped: %v", v.records, st.SkippedLines, st.LineErrors)
	}
	if !strings.Contains(st.LineErrors[0], "row 1: field srcaddr") || !strings.Contains(st.LineErrors[1], "row 2: field srcport") {
		t.Errorf("errors %q", st.LineErrors)
	}
	// Columns a report does not need are not decoded, so their bad
	// values do not matter to it.
	v, st = readAll(t, ReadConfig{}, flow.FieldSet(0).With(flow.FieldDstPort), ReaderInput(StdinName, bytes.NewReader(data)))
	if v.records != 3 || st.SkippedLines != 0 {
		t.Fatalf("dstport only: %d records, %d skipped", v.records, st.SkippedLines)
	}
}

func TestParquetWithoutFlowLogColumns(t *testing.T) {
	type other struct {
		A int32  `parquet:"a"`
		B string `parquet:"b"`
	}
	data := parquetBytes(t, []other{{1, "x"}})
	_, st := readAll(t, ReadConfig{}, connFields, ReaderInput("x.parquet", bytes.NewReader(data)))
	if len(st.Failed) != 1 || !strings.Contains(st.Failed[0], "no column is named after a flow log field") {
		t.Fatalf("failed %q", st.Failed)
	}
}
