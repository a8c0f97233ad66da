package flow

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestNextLineReturnsRecordLinesWithTheirFormat(t *testing.T) {
	in := "version srcaddr\n2 10.0.0.1  \r\n\n{\"logEvents\":[{\"message\":\" 3 10.0.0.2 \"}]}\nversion dstaddr action\n2 10.0.0.3 ACCEPT\n"
	rd := NewReader(strings.NewReader(in), ReaderOptions{})
	type got struct {
		line, header string
		lineNo       int64
	}
	var gots []got
	for {
		line, f, err := rd.NextLine()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		gots = append(gots, got{string(line), f.Header(), rd.Line()})
	}
	want := []got{
		{"2 10.0.0.1", "version srcaddr", 2},
		{"3 10.0.0.2", "version srcaddr", 4},
		{"2 10.0.0.3 ACCEPT", "version dstaddr action", 6},
	}
	if len(gots) != len(want) {
		t.Fatalf("got %+v, want %+v", gots, want)
	}
	for i := range want {
		if gots[i] != want[i] {
			t.Errorf("line %d: got %+v, want %+v", i, gots[i], want[i])
		}
	}
}

func TestNextLineWithoutFormatIsNil(t *testing.T) {
	rd := NewReader(strings.NewReader("2 a b\n"), ReaderOptions{})
	line, f, err := rd.NextLine()
	if err != nil || f != nil || string(line) != "2 a b" {
		t.Fatalf("NextLine = %q, %v, %v", line, f, err)
	}
}

func TestSetFieldDashClearsAndBadValueErrs(t *testing.T) {
	var r Record
	if err := r.SetField(FieldSrcPort, []byte("443")); err != nil || r.SrcPort != 443 || !r.Present.Has(FieldSrcPort) {
		t.Fatalf("SetField srcport 443: %v %+v", err, r)
	}
	if err := r.SetField(FieldSrcPort, []byte("-")); err != nil || r.SrcPort != 0 || r.Present.Has(FieldSrcPort) {
		t.Fatalf("SetField srcport -: %v %+v", err, r)
	}
	err := r.SetField(FieldSrcPort, []byte("65536"))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "srcport" {
		t.Fatalf("SetField srcport 65536: %v", err)
	}
	if err := r.SetField(FieldID(200), []byte("1")); err == nil {
		t.Fatal("SetField of an unknown id: no error")
	}
}
