package flow_test

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/flowlog/flowlog/flow"
)

func ExampleParseFormat() {
	f, err := flow.ParseFormat("${version} ${srcaddr} ${dstaddr} ${tcp-flags}")
	if err != nil {
		panic(err)
	}
	fmt.Println(f.Version(), f.Header())

	_, err = flow.ParseFormat("${version} ${srcadr}")
	fmt.Println(err)
	// Output:
	// 3 version srcaddr dstaddr tcp-flags
	// unknown field ${srcadr} at position 2; did you mean ${srcaddr}?
}

func ExampleReader() {
	log := `version srcaddr dstaddr action
2 10.0.0.1 10.0.0.2 ACCEPT
2 10.0.0.2 10.0.0.1 MAYBE
2 10.0.0.2 10.0.0.1 REJECT
`
	rd := flow.NewReader(strings.NewReader(log), flow.ReaderOptions{})
	var r flow.Record
	for {
		err := rd.Next(&r)
		if err == io.EOF {
			break
		}
		var le *flow.LineError
		if errors.As(err, &le) {
			fmt.Println("skipped:", err)
			continue
		}
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s %s\n", rd.Format().AppendJSON(nil, &r), r.Action)
	}
	// Output:
	// {"version":2,"srcaddr":"10.0.0.1","dstaddr":"10.0.0.2","action":"ACCEPT"} ACCEPT
	// skipped: line 3: field action: invalid value "MAYBE": not a known value
	// {"version":2,"srcaddr":"10.0.0.2","dstaddr":"10.0.0.1","action":"REJECT"} REJECT
}
