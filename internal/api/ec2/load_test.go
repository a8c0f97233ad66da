package ec2_test

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/api/ec2"
)

// 1,000 flow logs created, described and deleted by 20 concurrent
// clients over signed HTTP, as SDKs send them: no error, no lost row.
func TestLoad1000FlowLogs20Clients(t *testing.T) {
	if testing.Short() {
		t.Skip("load test: not in -short")
	}
	const clients, perClient = 20, 50
	e := start(t, ec2.Options{})
	for c := range clients {
		e.register(t, registration(fmt.Sprintf("h%02d", c), fmt.Sprintf("vpc-%08d", c), perClient))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sg := newSigner(e.srv.URL)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	ids := make([][]string, clients)
	var mu sync.Mutex
	var createLat, describeLat, deleteLat []time.Duration
	t0 := time.Now()
	for c := range clients {
		wg.Go(func() {
			agent := fmt.Sprintf("h%02d", c)
			for i := range perClient {
				p := url.Values{"ResourceType": {"NetworkInterface"}, "ResourceId.1": {fmt.Sprintf("eni-%s%04d", agent, i)}, "TrafficType": {"ALL"},
					"LogDestinationType": {"file"}, "LogDestination": {"/var/log/flows"}, "ClientToken": {fmt.Sprintf("%s-%d", agent, i)},
					"TagSpecification.1.ResourceType": {"vpc-flow-log"}, "TagSpecification.1.Tag.1.Key": {"client"}, "TagSpecification.1.Tag.1.Value": {agent}}
				var out xmlCreate
				s := time.Now()
				if err := sg.query(ctx, "CreateFlowLogs", p, &out); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				createLat = append(createLat, time.Since(s))
				mu.Unlock()
				if len(out.FlowLogIDs) != 1 || len(out.Unsuccessful) != 0 {
					errs <- fmt.Errorf("create on %s: %+v", agent, out)
					return
				}
				ids[c] = append(ids[c], out.FlowLogIDs[0])
				if i%10 == 9 {
					// Describe this client's flow logs by tag, every page.
					s := time.Now()
					seen, token := 0, ""
					for {
						q := url.Values{"Filter.1.Name": {"tag:client"}, "Filter.1.Value.1": {agent}, "MaxResults": {"20"}}
						if token != "" {
							q.Set("NextToken", token)
						}
						var d xmlDescribe
						if err := sg.query(ctx, "DescribeFlowLogs", q, &d); err != nil {
							errs <- err
							return
						}
						seen += len(d.FlowLogs)
						if token = d.NextToken; token == "" {
							break
						}
					}
					mu.Lock()
					describeLat = append(describeLat, time.Since(s))
					mu.Unlock()
					if seen != i+1 {
						errs <- fmt.Errorf("%s described %d flow logs after creating %d", agent, seen, i+1)
						return
					}
				}
			}
			// Every one of this client's flow logs is there, with its tag,
			// while others still create and delete theirs.
			var d xmlDescribe
			if err := sg.query(ctx, "DescribeFlowLogs", url.Values{"Filter.1.Name": {"tag:client"}, "Filter.1.Value.1": {agent}}, &d); err != nil {
				errs <- err
				return
			}
			if len(d.FlowLogs) != perClient {
				errs <- fmt.Errorf("%s: %d of its %d flow logs described", agent, len(d.FlowLogs), perClient)
				return
			}
			for i := 0; i < len(ids[c]); i += 10 {
				p := url.Values{}
				for j, id := range ids[c][i:min(i+10, len(ids[c]))] {
					p.Set(fmt.Sprintf("FlowLogId.%d", j+1), id)
				}
				var out xmlCreate
				s := time.Now()
				if err := sg.query(ctx, "DeleteFlowLogs", p, &out); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				deleteLat = append(deleteLat, time.Since(s))
				mu.Unlock()
				if len(out.Unsuccessful) != 0 {
					errs <- fmt.Errorf("delete: %+v", out.Unsuccessful)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all, err := e.svc.DescribeFlowLogs(ctx, ec2.DescribeFlowLogsInput{})
	if err != nil || len(all.FlowLogs) != 0 {
		t.Fatalf("after deleting all: %d left, %v", len(all.FlowLogs), err)
	}
	var n int
	if err := openRO(t, e.dir).QueryRow(`SELECT count(*) FROM ec2_flow_log_tags`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("tags left: %d, %v", n, err)
	}
	// Every write committed exactly once: 20 registrations, 1,000
	// creates and 100 deletes each bumped the revision agents watch.
	var rev int
	if err := openRO(t, e.dir).QueryRow(`SELECT value FROM ec2_meta WHERE key = 'revision'`).Scan(&rev); err != nil || rev != clients+clients*perClient+clients*perClient/10 {
		t.Fatalf("revision %d (%v), want %d", rev, err, clients+clients*perClient+clients*perClient/10)
	}
	t.Logf("20 clients, each: 50 creates, 5 paged describes by tag, a full describe, 5 deletes of 10; all in %v: create p50 %v p99 %v, describe p50 %v, delete p50 %v",
		elapsed.Round(time.Millisecond), pct(createLat, 50), pct(createLat, 99), pct(describeLat, 50), pct(deleteLat, 50))
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[min(len(s)-1, len(s)*p/100)].Round(time.Millisecond)
}
