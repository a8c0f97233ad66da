// Package sinktest generates flow records for the destinations' tests
// and starts the spool they are delivered through.
package sinktest

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"

	"github.com/flowlog/flowlog/flow"
)

// Window returns one 60-second window's batch as a flow table closes it:
// n default-format records over ifaces interfaces, sorted by start. The
// same seed and start give the same records.
func Window(seed uint64, start int64, n, ifaces int) []flow.Record {
	rng := rand.New(rand.NewPCG(uint64(start), seed))
	recs := make([]flow.Record, n)
	for i := range recs {
		s := start + rng.Int64N(60)
		recs[i] = flow.Record{
			Present:     flow.FieldSet(1)<<14 - 1,
			Version:     2,
			AccountID:   "123456789012",
			InterfaceID: fmt.Sprintf("eni-%017x", rng.IntN(ifaces)),
			SrcAddr:     netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(256)), byte(rng.IntN(256))}),
			DstAddr:     netip.AddrFrom4([4]byte{172, 31, byte(rng.IntN(256)), byte(rng.IntN(256))}),
			SrcPort:     uint16(rng.IntN(65536)),
			DstPort:     443,
			Protocol:    6,
			Packets:     1 + rng.Uint64N(100),
			Bytes:       40 + rng.Uint64N(150000),
			Start:       s,
			End:         s + rng.Int64N(start+60-s),
			Action:      flow.ActionAccept,
			LogStatus:   flow.LogStatusOK,
		}
	}
	slices.SortStableFunc(recs, func(a, b flow.Record) int { return int(a.Start - b.Start) })
	return recs
}
