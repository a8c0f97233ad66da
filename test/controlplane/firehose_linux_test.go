package controlplane_test

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/agent/netlab"
	"github.com/flowlog/flowlog/internal/api/apitest"
)

// TestFirehoseEndToEnd: `flowlog serve` with its Firehose API, an agent
// following it with keys of its own (the agent calls and
// firehose:PutRecordBatch on the stream, nothing else), real traffic
// between two network namespaces. The stock AWS CLI creates a delivery
// stream and a kinesis-data-firehose flow log on the VPC, with a file
// flow log of the same VPC and format as the reference; both run and
// describe-flow-logs shows them SUCCESS. Deleting them flushes their
// records: the stream's delivered objects then hold, one per line, exactly
// the reference's records, among them the connection made.
func TestFirehoseEndToEnd(t *testing.T) {
	t.Parallel() // own namespaces, servers and directories; mostly waiting
	apitest.RequireCLI(t)
	lab := netlab.New(t)
	bin := buildFlowlog(t)
	began := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(began).Seconds(), what) }

	nsA, nsB := lab.Netns("a"), lab.Netns("b")
	pA, pB := netip.MustParsePrefix("10.79.0.1/24"), netip.MustParsePrefix("10.79.0.2/24")
	lab.Veth(netlab.End{Netns: nsA, Name: "fha", Addrs: []netip.Prefix{pA}, NoIPv6: true},
		netlab.End{Netns: nsB, Name: "fhb", Addrs: []netip.Prefix{pB}, NoIPv6: true})

	dir := t.TempDir()
	server, url, admin := startServer(t, bin, dir)
	step("server up")

	// The delivery stream, delivering at once (IntervalInSeconds 0, as
	// AWS allows since zero buffering; the Debian CLI's older model says
	// at least 60, so its client-side validation is turned off).
	streamARN := "arn:aws:firehose:" + apitest.Region + ":" + apitest.AccountID + ":deliverystream/vpc-flows"
	// The stream's role, as on AWS: trusted by Firehose, allowed to put
	// the bucket's objects (the server delivers as this role).
	admin.JSON(t, nil, "iam", "create-role", "--role-name", "firehose-delivery", "--assume-role-policy-document",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"firehose.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
	admin.JSON(t, nil, "iam", "put-role-policy", "--role-name", "firehose-delivery", "--policy-name", "s3", "--policy-document",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::flow-logs/*"}]}`)
	noValidation := admin
	noValidation.Env = []string{"AWS_CONFIG_FILE=" + writeFile(t, filepath.Join(dir, "aws-config"), "[default]\nparameter_validation = false\n")}
	var created struct{ DeliveryStreamARN string }
	noValidation.JSON(t, &created, "firehose", "create-delivery-stream", "--delivery-stream-name", "vpc-flows", "--delivery-stream-type", "DirectPut",
		"--extended-s3-destination-configuration", `{"RoleARN":"arn:aws:iam::`+apitest.AccountID+`:role/firehose-delivery","BucketARN":"arn:aws:s3:::flow-logs","BufferingHints":{"SizeInMBs":1,"IntervalInSeconds":0}}`)
	if created.DeliveryStreamARN != streamARN {
		t.Fatalf("create-delivery-stream: ARN %q, want %q", created.DeliveryStreamARN, streamARN)
	}
	bucket := filepath.Join(dir, "server", "firehose-buckets", "flow-logs")

	// The agent's own least-privilege key.
	agentKeys := newIAMUser(t, admin, url, "agent-1",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["flowlog:Register","flowlog:WatchFlowLogs","flowlog:ReportStatus","flowlog:GetDeliveryCredentials"],"Resource":"*"},`+
			`{"Effect":"Allow","Action":"firehose:PutRecordBatch","Resource":"`+streamARN+`"}]}`)
	secret := writeFile(t, filepath.Join(dir, "agent.secret"), agentKeys.SecretKey+"\n")
	agentCfg := writeFile(t, filepath.Join(dir, "agent.yaml"), fmt.Sprintf(`account-id: "%s"
region: %s
source: afpacket
netns: [%s, %s]
interfaces:
  include: [fh*]
metrics-address: 127.0.0.1:0
spool:
  dir: %s
server:
  url: %s
  access-key-id: %s
  secret-access-key-file: %s
  status-interval: 2s
  poll-wait: 10s
`, apitest.AccountID, apitest.Region, nsA, nsB, filepath.Join(dir, "spool"), url, agentKeys.AccessKey, secret))
	agent := start(t, "flowlog agent", bin, "agent", "--config", agentCfg)
	agent.wait(t, 20*time.Second, regexp.MustCompile(`msg=registered .*interfaces=2 `))
	vpc := vpcOf(t, admin, "10.79.0.1")
	step("delivery stream created; agent registered with its own keys")

	create := func(args ...string) string {
		t.Helper()
		return createFlowLog(t, admin, append([]string{"--resource-type", "VPC", "--resource-ids", vpc, "--traffic-type", "ALL",
			"--max-aggregation-interval", "60"}, args...)...)
	}
	fh := create("--log-destination-type", "kinesis-data-firehose", "--log-destination", streamARN)
	records := filepath.Join(dir, "records")
	ref := create("--log-destination-type", "file", "--log-destination", records)
	for _, id := range []string{fh, ref} {
		agent.wait(t, 10*time.Second, regexp.MustCompile(`msg="flow log added" flow_log=`+id))
	}
	step("flow logs " + fh + " (kinesis-data-firehose) and " + ref + " (file, the reference) running")

	port := uint16(20000 + rand.IntN(20000))
	src, dst := netip.AddrPortFrom(pA.Addr(), port), netip.AddrPortFrom(pB.Addr(), 8080)
	if err := netlab.TCP(nsA, src, nsB, dst, 2000, 6000, false); err != nil {
		t.Fatal(err)
	}
	step(fmt.Sprintf("connection %s -> %s", src, dst))

	var desc struct {
		FlowLogs []struct{ FlowLogId, LogDestinationType, LogDestination, DeliverLogsStatus, DeliverLogsErrorMessage string }
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		admin.JSON(t, &desc, "ec2", "describe-flow-logs", "--flow-log-ids", fh)
		if len(desc.FlowLogs) == 1 && desc.FlowLogs[0].DeliverLogsStatus == "SUCCESS" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("describe-flow-logs %s: %+v", fh, desc)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if d := desc.FlowLogs[0]; d.LogDestinationType != "kinesis-data-firehose" || d.LogDestination != streamARN {
		t.Fatalf("describe-flow-logs %s: %+v", fh, d)
	}
	step("describe-flow-logs: " + fh + " SUCCESS")

	// Deleting flushes the open records through the spools.
	admin.JSON(t, nil, "ec2", "delete-flow-logs", "--flow-log-ids", fh, ref)
	for _, id := range []string{fh, ref} {
		agent.wait(t, 20*time.Second, regexp.MustCompile(`msg="flow log removed" flow_log=`+id))
	}
	want := objectLines(t, records)
	if len(want) == 0 {
		t.Fatal("no record in the reference flow log's objects")
	}
	slices.Sort(want)
	var got []string
	for wait := time.Now().Add(10 * time.Second); ; {
		got = streamLines(t, bucket)
		if len(got) >= len(want) || time.Now().After(wait) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	step(fmt.Sprintf("deleted and flushed: %d records in the stream's objects, %d in the reference's", len(got), len(want)))
	if !slices.Equal(got, want) {
		t.Fatalf("the stream's objects hold %d lines, the reference %d; differing lines:\n%s", len(got), len(want), diffLines(want, got))
	}
	conn := fmt.Sprintf(" %s %s %d %d 6 ", src.Addr(), dst.Addr(), src.Port(), dst.Port())
	if !slices.ContainsFunc(got, func(l string) bool {
		return strings.Contains(l, conn) && strings.HasPrefix(l, "2 "+apitest.AccountID+" eni-")
	}) {
		t.Fatalf("no record of %s -> %s among the stream's lines:\n%s", src, dst, strings.Join(got, "\n"))
	}
	agent.stop(t)
	server.stop(t)
	step("end to end")
}

// streamLines reads the lines of a delivery stream's objects under the
// bucket's directory (Firehose objects: the records' data concatenated,
// every record a line), sorted; each object must end in a line end.
func streamLines(t *testing.T, bucket string) []string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(bucket, func(path string, d fs.DirEntry, err error) error {
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if len(data) == 0 || data[len(data)-1] != '\n' {
			t.Fatalf("object %s: %d bytes, not ending in a line end", path, len(data))
		}
		lines = append(lines, strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(lines)
	return lines
}
