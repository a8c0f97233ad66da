package ec2_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/api/control"
	"github.com/flowlog/flowlog/internal/api/ec2"
)

const issueFormat = "${version} ${vpc-id} ${subnet-id} ${instance-id} ${interface-id} ${account-id} ${type} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${pkt-srcaddr} ${pkt-dstaddr} ${protocol} ${bytes} ${packets} ${start} ${end} ${action} ${tcp-flags} ${log-status}"

// The issue's commands, run with the real AWS CLI: create (one known and
// one unknown resource), describe by filter, delete (one known, one
// unknown id), each checked in the CLI's parsed output.
func TestCLICreateDescribeDelete(t *testing.T) {
	t.Parallel()
	e := start(t, ec2.Options{})
	e.register(t, registration("a1", "vpc-0a1b2c3d", 2))
	before := time.Now().Add(-time.Second)

	var c cliCreate
	c = cliCreate{}
	e.cli.JSON(t, &c, "ec2", "create-flow-logs", "--resource-type", "VPC", "--resource-ids", "vpc-0a1b2c3d", "vpc-00000000",
		"--traffic-type", "ALL", "--log-destination-type", "s3", "--log-destination", "arn:aws:s3:::my-bucket/prefix",
		"--log-format", issueFormat, "--max-aggregation-interval", "60",
		"--destination-options", "FileFormat=parquet,HiveCompatiblePartitions=true,PerHourPartition=true",
		"--tag-specifications", "ResourceType=vpc-flow-log,Tags=[{Key=team,Value=net},{Key=env,Value=prod}]")
	if len(c.FlowLogIds) != 1 || !validID(c.FlowLogIds[0]) {
		t.Fatalf("FlowLogIds = %v, want one fl- id", c.FlowLogIds)
	}
	if len(c.Unsuccessful) != 1 || c.Unsuccessful[0].ResourceId != "vpc-00000000" || c.Unsuccessful[0].Error.Code != "InvalidVpcID.NotFound" ||
		!strings.Contains(c.Unsuccessful[0].Error.Message, "vpc-00000000") {
		t.Fatalf("Unsuccessful = %+v", c.Unsuccessful)
	}
	id := c.FlowLogIds[0]

	var d cliDescribe
	d = cliDescribe{}
	e.cli.JSON(t, &d, "ec2", "describe-flow-logs", "--filter", "Name=resource-id,Values=vpc-0a1b2c3d")
	if len(d.FlowLogs) != 1 {
		t.Fatalf("describe: %+v", d)
	}
	fl := d.FlowLogs[0]
	created, err := time.Parse(time.RFC3339, fl.CreationTime)
	if err != nil || created.Before(before) || created.After(time.Now().Add(time.Second)) {
		t.Errorf("CreationTime %q: %v", fl.CreationTime, err)
	}
	if fl.FlowLogId != id || fl.ResourceId != "vpc-0a1b2c3d" || fl.TrafficType != "ALL" || fl.LogDestinationType != "s3" ||
		fl.LogDestination != "arn:aws:s3:::my-bucket/prefix" || fl.LogFormat != issueFormat || fl.MaxAggregationInterval != 60 ||
		fl.FlowLogStatus != "ACTIVE" || fl.DeliverLogsStatus != "SUCCESS" || fl.LogGroupName != "" {
		t.Errorf("flow log = %+v", fl)
	}
	if o := fl.DestinationOptions; o == nil || o.FileFormat != "parquet" || !o.HiveCompatiblePartitions || !o.PerHourPartition {
		t.Errorf("DestinationOptions = %+v", o)
	}
	if fmt.Sprint(fl.Tags) != "[{team net} {env prod}]" {
		t.Errorf("Tags = %v", fl.Tags)
	}

	// The same resource, traffic type and destination again.
	c = cliCreate{}
	e.cli.JSON(t, &c, "ec2", "create-flow-logs", "--resource-type", "VPC", "--resource-ids", "vpc-0a1b2c3d",
		"--traffic-type", "ALL", "--log-destination-type", "s3", "--log-destination", "arn:aws:s3:::my-bucket/prefix")
	if len(c.FlowLogIds) != 0 || len(c.Unsuccessful) != 1 || c.Unsuccessful[0].Error.Code != "FlowLogAlreadyExists" {
		t.Fatalf("duplicate: %+v", c)
	}
	// A second one (another traffic type) fits; a third is over AWS's
	// two per resource.
	c = cliCreate{}
	e.cli.JSON(t, &c, "ec2", "create-flow-logs", "--resource-type", "VPC", "--resource-ids", "vpc-0a1b2c3d",
		"--traffic-type", "REJECT", "--log-destination-type", "file", "--log-destination", "/var/log/flowlog")
	if len(c.FlowLogIds) != 1 {
		t.Fatalf("second flow log: %+v", c)
	}
	second := c.FlowLogIds[0]
	c = cliCreate{}
	e.cli.JSON(t, &c, "ec2", "create-flow-logs", "--resource-type", "VPC", "--resource-ids", "vpc-0a1b2c3d",
		"--traffic-type", "ACCEPT", "--log-destination-type", "kafka", "--log-destination", "kafka://127.0.0.1:9092/flows")
	if len(c.Unsuccessful) != 1 || c.Unsuccessful[0].Error.Code != "FlowLogsLimitExceeded" {
		t.Fatalf("third flow log: %+v", c)
	}
	// Default format and interval, file destination options default.
	d = cliDescribe{}
	e.cli.JSON(t, &d, "ec2", "describe-flow-logs", "--flow-log-ids", second)
	if len(d.FlowLogs) != 1 || d.FlowLogs[0].LogFormat != flow.DefaultFormatText || d.FlowLogs[0].MaxAggregationInterval != 600 ||
		d.FlowLogs[0].DestinationOptions == nil || d.FlowLogs[0].DestinationOptions.FileFormat != "plain-text" || d.FlowLogs[0].Tags == nil {
		t.Fatalf("defaults: %+v", d.FlowLogs)
	}

	var del struct{ Unsuccessful []cliUnsuccessful }
	e.cli.JSON(t, &del, "ec2", "delete-flow-logs", "--flow-log-ids", id, "fl-0123456789abcdef0")
	if len(del.Unsuccessful) != 1 || del.Unsuccessful[0].ResourceId != "fl-0123456789abcdef0" || del.Unsuccessful[0].Error.Code != "InvalidFlowLogId.NotFound" {
		t.Fatalf("delete: %+v", del)
	}
	d = cliDescribe{}
	e.cli.JSON(t, &d, "ec2", "describe-flow-logs")
	if len(d.FlowLogs) != 1 || d.FlowLogs[0].FlowLogId != second {
		t.Fatalf("after delete: %+v", d.FlowLogs)
	}
}

func validID(id string) bool {
	hex, ok := strings.CutPrefix(id, "fl-")
	if !ok || len(hex) != 17 {
		return false
	}
	return strings.Trim(hex, "0123456789abcdef") == ""
}

// Every parameter error of CreateFlowLogs, with EC2's code, through the CLI.
func TestCLICreateErrors(t *testing.T) {
	t.Parallel()
	e := start(t, ec2.Options{})
	e.register(t, registration("a1", "vpc-0a1b2c3d", 1))
	base := []string{"ec2", "create-flow-logs", "--resource-type", "VPC", "--resource-ids", "vpc-0a1b2c3d", "--traffic-type", "ALL"}
	s3 := []string{"--log-destination-type", "s3", "--log-destination", "arn:aws:s3:::bucket"}
	role := "arn:aws:iam::123456789012:role/flow-logs"
	// Through the CLI: the errors people meet first.
	cliCases := []struct {
		name string
		args []string
		code string
		msg  string
	}{
		{"bad format", append(slices.Clone(s3), "--log-format", "${version} ${srcadr}"), "InvalidParameter", "did you mean ${srcaddr}?"},
		{"interval", append(slices.Clone(s3), "--max-aggregation-interval", "120"), "InvalidParameterValue", "MaxAggregationInterval"},
		{"s3 arn", []string{"--log-destination-type", "s3", "--log-destination", "s3://bucket"}, "InvalidParameter", "S3 ARN"},
		{"cwl without role", []string{"--log-group-name", "g"}, "InvalidParameter", "DeliverLogsPermissionArn is required"},
		{"tag resource type", append(slices.Clone(s3), "--tag-specifications", "ResourceType=vpc,Tags=[{Key=a,Value=b}]"), "InvalidParameterValue", "vpc-flow-log"},
	}
	for _, c := range cliCases {
		stderr := e.cliFail(t, append(slices.Clone(base), c.args...)...)
		if !strings.Contains(stderr, "("+c.code+")") || !strings.Contains(stderr, c.msg) {
			t.Errorf("%s: stderr %q, want code %s and %q", c.name, stderr, c.code, c.msg)
		}
	}
	// The rest as an SDK sends them (signed Query requests): the CLI
	// adds nothing to these but its start-up time.
	sg := newSigner(e.srv.URL)
	queryCases := []struct {
		name   string
		params []string
		code   string
		msg    string
	}{
		{"format with text", []string{"LogDestinationType", "s3", "LogDestination", "arn:aws:s3:::bucket", "LogFormat", "${version} x"}, "InvalidParameter", "LogFormat"},
		{"traffic type", []string{"TrafficType", "SOME", "LogDestinationType", "s3", "LogDestination", "arn:aws:s3:::bucket"}, "InvalidParameterValue", "TrafficType"},
		{"destination type", []string{"LogDestinationType", "ftp", "LogDestination", "x"}, "InvalidParameterValue", "LogDestinationType"},
		{"s3 no destination", []string{"LogDestinationType", "s3"}, "MissingParameter", "LogDestination"},
		{"s3 with role", []string{"LogDestinationType", "s3", "LogDestination", "arn:aws:s3:::bucket", "DeliverLogsPermissionArn", role}, "InvalidParameter", "DeliverLogsPermissionArn"},
		{"cwl both", []string{"LogGroupName", "g", "LogDestination", "arn:aws:logs:us-east-1:123456789012:log-group:g", "DeliverLogsPermissionArn", role}, "InvalidParameter", "only provide"},
		{"cwl none", []string{"DeliverLogsPermissionArn", role}, "MissingParameter", "LogGroupName"},
		{"cwl bad arn", []string{"LogDestination", "arn:aws:s3:::bucket", "DeliverLogsPermissionArn", role}, "InvalidParameter", "log group ARN"},
		{"bad role", []string{"LogGroupName", "g", "DeliverLogsPermissionArn", "role"}, "InvalidParameterValue", "DeliverLogsPermissionArn"},
		{"file relative", []string{"LogDestinationType", "file", "LogDestination", "var/log"}, "InvalidParameter", "absolute"},
		{"kafka url", []string{"LogDestinationType", "kafka", "LogDestination", "kafka://broker"}, "InvalidParameter", "kafka://"},
		{"kafka parameter", []string{"LogDestinationType", "kafka", "LogDestination", "kafka://b:9093/t?tls=true&ssl=1"}, "InvalidParameter", `unknown parameter "ssl"`},
		{"kafka password", []string{"LogDestinationType", "kafka", "LogDestination", "kafka://b:9093/t?sasl=plain&password=x"}, "InvalidParameter", "credentials never go in a kafka:// URL"},
		{"firehose arn", []string{"LogDestinationType", "kinesis-data-firehose", "LogDestination", "arn:aws:s3:::bucket"}, "InvalidParameter", "Firehose"},
		{"options on cwl", []string{"LogGroupName", "g", "DeliverLogsPermissionArn", role, "DestinationOptions.FileFormat", "parquet"}, "InvalidParameter", "DestinationOptions"},
		{"file format", []string{"LogDestinationType", "s3", "LogDestination", "arn:aws:s3:::bucket", "DestinationOptions.FileFormat", "csv"}, "InvalidParameterValue", "FileFormat"},
		{"aws tag", []string{"LogDestinationType", "s3", "LogDestination", "arn:aws:s3:::bucket", "TagSpecification.1.ResourceType", "vpc-flow-log", "TagSpecification.1.Tag.1.Key", "aws:x"}, "InvalidParameterValue", "aws:"},
		{"unknown parameter", []string{"LogDestinationType", "s3", "LogDestination", "arn:aws:s3:::bucket", "LogFromat", "x"}, "UnknownParameter", "LogFromat"},
		{"bad index", []string{"LogDestinationType", "s3", "LogDestination", "arn:aws:s3:::bucket", "ResourceId.x", "vpc-1"}, "InvalidParameterValue", "ResourceId.x"},
		{"no resource type", []string{"ResourceType", "", "LogDestinationType", "s3", "LogDestination", "arn:aws:s3:::bucket"}, "MissingParameter", "ResourceType"},
		{"bad resource type", []string{"ResourceType", "Instance", "LogDestinationType", "s3", "LogDestination", "arn:aws:s3:::bucket"}, "InvalidParameterValue", "ResourceType"},
		{"no traffic type", []string{"TrafficType", "", "LogDestinationType", "s3", "LogDestination", "arn:aws:s3:::bucket"}, "MissingParameter", "TrafficType"},
		{"no resource", []string{"ResourceId.1", "", "LogDestinationType", "s3", "LogDestination", "arn:aws:s3:::bucket"}, "MissingParameter", "ResourceId"},
		{"dry run value", []string{"LogDestinationType", "s3", "LogDestination", "arn:aws:s3:::bucket", "DryRun", "yes"}, "InvalidParameterValue", "DryRun"},
		{"cross account", []string{"LogDestinationType", "s3", "LogDestination", "arn:aws:s3:::bucket", "DeliverCrossAccountRole", role}, "InvalidParameter", "DeliverCrossAccountRole"},
	}
	for _, c := range queryCases {
		p := url.Values{"ResourceType": {"VPC"}, "ResourceId.1": {"vpc-0a1b2c3d"}, "TrafficType": {"ALL"}}
		for i := 0; i < len(c.params); i += 2 {
			if c.params[i+1] == "" {
				p.Del(c.params[i])
			} else {
				p.Set(c.params[i], c.params[i+1])
			}
		}
		err := sg.query(context.Background(), "CreateFlowLogs", p, &struct{}{})
		if err == nil || !strings.Contains(err.Error(), " 400 "+c.code+":") || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want HTTP 400 %s and %q", c.name, err, c.code, c.msg)
		}
	}
	// DryRun: HTTP 412 DryRunOperation, and nothing created.
	if stderr := e.cliFail(t, append(slices.Clone(base), append(slices.Clone(s3), "--dry-run")...)...); !strings.Contains(stderr, "(DryRunOperation)") ||
		!strings.Contains(stderr, "Request would have succeeded, but DryRun flag is set.") {
		t.Errorf("dry run: %q", stderr)
	}
	if stderr := e.cliFail(t, "ec2", "delete-flow-logs", "--flow-log-ids", "fl-0123456789abcdef0", "--dry-run"); !strings.Contains(stderr, "(DryRunOperation)") {
		t.Errorf("delete dry run: %q", stderr)
	}
	for _, action := range []string{"DescribeFlowLogs", "DescribeVpcs", "DescribeSubnets", "DescribeNetworkInterfaces"} {
		err := sg.query(context.Background(), action, url.Values{"DryRun": {"true"}}, &struct{}{})
		if err == nil || !strings.Contains(err.Error(), " 412 DryRunOperation:") {
			t.Errorf("%s dry run: %v", action, err)
		}
	}
	var d cliDescribe
	d = cliDescribe{}
	e.cli.JSON(t, &d, "ec2", "describe-flow-logs")
	if len(d.FlowLogs) != 0 {
		t.Fatalf("errors created flow logs: %+v", d.FlowLogs)
	}
	// A cloud-watch-logs flow log by name shows its ARN too, and by ARN
	// its name.
	var c cliCreate
	c = cliCreate{}
	e.cli.JSON(t, &c, append(slices.Clone(base), "--log-group-name", "my-group", "--deliver-logs-permission-arn", role)...)
	c = cliCreate{}
	e.cli.JSON(t, &c, "ec2", "create-flow-logs", "--resource-type", "Subnet", "--resource-ids", "subnet-a1a", "--traffic-type", "REJECT",
		"--log-destination", "arn:aws:logs:us-east-1:123456789012:log-group:other-group:*", "--deliver-logs-permission-arn", role)
	d = cliDescribe{}
	e.cli.JSON(t, &d, "ec2", "describe-flow-logs", "--filter", "Name=log-destination-type,Values=cloud-watch-logs")
	if len(d.FlowLogs) != 2 || d.FlowLogs[0].LogGroupName != "my-group" || d.FlowLogs[0].LogDestination != "arn:aws:logs:us-east-1:123456789012:log-group:my-group" ||
		d.FlowLogs[0].DeliverLogsPermissionArn != role || d.FlowLogs[1].LogGroupName != "other-group" || d.FlowLogs[0].DestinationOptions != nil {
		t.Fatalf("cloud-watch-logs: %+v", d.FlowLogs)
	}
}

// A ClientToken makes a retry return the first answer without creating
// again; the same token with other parameters is refused.
func TestCLIClientToken(t *testing.T) {
	t.Parallel()
	e := start(t, ec2.Options{})
	e.register(t, registration("a1", "vpc-0a1b2c3d", 2))
	args := []string{"ec2", "create-flow-logs", "--resource-type", "NetworkInterface", "--resource-ids", "eni-a10000", "eni-a10001", "eni-nothere",
		"--traffic-type", "ALL", "--log-destination-type", "file", "--log-destination", "/var/log/flows", "--client-token", "token-1"}
	var first, again cliCreate
	e.cli.JSON(t, &first, args...)
	e.cli.JSON(t, &again, args...)
	if first.ClientToken != "token-1" || len(first.FlowLogIds) != 2 || len(first.Unsuccessful) != 1 ||
		fmt.Sprint(first) != fmt.Sprint(again) {
		t.Fatalf("first %+v, retry %+v", first, again)
	}
	var d cliDescribe
	d = cliDescribe{}
	e.cli.JSON(t, &d, "ec2", "describe-flow-logs")
	if len(d.FlowLogs) != 2 {
		t.Fatalf("retry created again: %d flow logs", len(d.FlowLogs))
	}
	other := slices.Clone(args)
	other[9] = "REJECT"
	if stderr := e.cliFail(t, other...); !strings.Contains(stderr, "(IdempotentParameterMismatch)") {
		t.Fatalf("mismatch: %q", stderr)
	}
}

// Pagination three ways: the CLI's own (--page-size), the CLI's
// --max-items/--starting-token, and NextToken followed by hand.
func TestCLIPagination(t *testing.T) {
	t.Parallel()
	e := start(t, ec2.Options{})
	e.register(t, registration("a1", "vpc-0a1b2c3d", 23))
	var ids []string
	for i := range 23 {
		out, err := e.svc.CreateFlowLogs(context.Background(), nil, ec2.CreateFlowLogsInput{ResourceIDs: []string{fmt.Sprintf("eni-a1%04d", i)},
			ResourceType: "NetworkInterface", TrafficType: "ALL", LogDestinationType: "file", LogDestination: "/var/log/flows"})
		if err != nil || len(out.FlowLogIDs) != 1 {
			t.Fatal(out, err)
		}
		ids = append(ids, out.FlowLogIDs...)
	}
	got := func(d cliDescribe) (l []string) {
		for _, fl := range d.FlowLogs {
			l = append(l, fl.FlowLogId)
		}
		return l
	}
	var d cliDescribe
	d = cliDescribe{}
	e.cli.JSON(t, &d, "ec2", "describe-flow-logs", "--page-size", "5")
	if !slices.Equal(got(d), ids) {
		t.Fatalf("--page-size 5: %v, want %v", got(d), ids)
	}
	var all []string
	token := ""
	for range 10 {
		args := []string{"ec2", "describe-flow-logs", "--max-items", "7", "--page-size", "5"}
		if token != "" {
			args = append(args, "--starting-token", token)
		}
		d = cliDescribe{}
		d = cliDescribe{}
		e.cli.JSON(t, &d, args...)
		all = append(all, got(d)...)
		if token = d.NextToken; token == "" {
			break
		}
	}
	if !slices.Equal(all, ids) {
		t.Fatalf("--max-items 7: %v, want %v", all, ids)
	}
	all, token = nil, ""
	pages := 0
	for range 10 {
		args := []string{"ec2", "describe-flow-logs", "--no-paginate", "--max-results", "5"}
		if token != "" {
			args = append(args, "--next-token", token)
		}
		d = cliDescribe{}
		d = cliDescribe{}
		e.cli.JSON(t, &d, args...)
		if len(d.FlowLogs) > 5 {
			t.Fatalf("page of %d", len(d.FlowLogs))
		}
		pages++
		all = append(all, got(d)...)
		// A create between pages lands after the listing's position.
		if pages == 2 {
			out, err := e.svc.CreateFlowLogs(context.Background(), nil, ec2.CreateFlowLogsInput{ResourceIDs: []string{"eni-a10000"},
				ResourceType: "NetworkInterface", TrafficType: "REJECT", LogDestinationType: "file", LogDestination: "/var/log/flows"})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, out.FlowLogIDs...)
		}
		if token = d.NextToken; token == "" {
			break
		}
	}
	if !slices.Equal(all, ids) || pages != 5 {
		t.Fatalf("NextToken by hand: %d pages, %v, want %v", pages, all, ids)
	}
	if stderr := e.cliFail(t, "ec2", "describe-flow-logs", "--no-paginate", "--max-results", "4"); !strings.Contains(stderr, "(InvalidParameterValue)") {
		t.Errorf("max-results 4: %q", stderr)
	}
	if stderr := e.cliFail(t, "ec2", "describe-flow-logs", "--no-paginate", "--next-token", "garbage"); !strings.Contains(stderr, "(InvalidPaginationToken)") {
		t.Errorf("bad token: %q", stderr)
	}
}

// DescribeFlowLogs' filters and tags, and the delivery status agents
// report.
func TestCLIFilters(t *testing.T) {
	t.Parallel()
	e := start(t, ec2.Options{})
	e.register(t, registration("a1", "vpc-0a1b2c3d", 4))
	ctx := context.Background()
	mk := func(eni, traffic, dtype, dest, group string, tags ...ec2.Tag) string {
		in := ec2.CreateFlowLogsInput{ResourceIDs: []string{eni}, ResourceType: "NetworkInterface", TrafficType: traffic,
			LogDestinationType: dtype, LogDestination: dest, LogGroupName: group}
		if group != "" {
			in.DeliverLogsPermissionArn = "arn:aws:iam::123456789012:role/r"
		}
		if len(tags) > 0 {
			in.TagSpecifications = []ec2.TagSpecification{{ResourceType: "vpc-flow-log", Tags: tags}}
		}
		out, err := e.svc.CreateFlowLogs(ctx, nil, in)
		if err != nil || len(out.FlowLogIDs) != 1 {
			t.Fatal(out, err)
		}
		return out.FlowLogIDs[0]
	}
	a := mk("eni-a10000", "ALL", "s3", "arn:aws:s3:::bucket-b", "", ec2.Tag{Key: "team", Value: "net"}, ec2.Tag{Key: "env", Value: "prod"})
	b := mk("eni-a10001", "REJECT", "cloud-watch-logs", "", "group-b", ec2.Tag{Key: "team", Value: "sec"})
	c := mk("eni-a10002", "ACCEPT", "file", "/srv/flows", "")
	if err := e.svc.ReportStatus(ctx, control.StatusReport{AgentID: "a1", FlowLogs: []control.FlowLogStatus{
		{FlowLogID: a, Status: "SUCCESS", Records: 10, LastRecordEnd: time.Unix(1700000000, 0)},
		{FlowLogID: b, Status: "FAILED", Message: "log group group-b: ResourceNotFoundException"},
	}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		filter []string
		want   []string
	}{
		{[]string{"Name=flow-log-id,Values=" + b}, []string{b}},
		{[]string{"Name=resource-id,Values=eni-a10000,eni-a10002"}, []string{a, c}},
		{[]string{"Name=resource-id,Values=eni-a1000*"}, []string{a, b, c}},
		{[]string{"Name=traffic-type,Values=REJECT"}, []string{b}},
		{[]string{"Name=log-destination-type,Values=file"}, []string{c}},
		{[]string{"Name=log-group-name,Values=group-?"}, []string{b}},
		{[]string{"Name=deliver-log-status,Values=FAILED"}, []string{b}},
		{[]string{"Name=deliver-log-status,Values=SUCCESS"}, []string{a, c}},
		{[]string{"Name=tag:team,Values=net,sec"}, []string{a, b}},
		{[]string{"Name=tag-key,Values=env"}, []string{a}},
		{[]string{"Name=tag:team,Values=*", "Name=traffic-type,Values=ALL"}, []string{a}},
		{[]string{"Name=tag:nope,Values=*"}, nil},
	}
	sg := newSigner(e.srv.URL)
	for i, tc := range cases {
		var got []string
		if i%3 == 0 {
			// Every third through the CLI, the rest as an SDK sends them.
			var d cliDescribe
			e.cli.JSON(t, &d, append([]string{"ec2", "describe-flow-logs", "--filter"}, tc.filter...)...)
			for _, fl := range d.FlowLogs {
				got = append(got, fl.FlowLogId)
			}
		} else {
			var d xmlDescribe
			if err := sg.query(ctx, "DescribeFlowLogs", filterParams(tc.filter), &d); err != nil {
				t.Fatal(err)
			}
			for _, fl := range d.FlowLogs {
				got = append(got, fl.ID)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("filter %v: %v, want %v", tc.filter, got, tc.want)
		}
	}
	var d cliDescribe
	d = cliDescribe{}
	e.cli.JSON(t, &d, "ec2", "describe-flow-logs", "--flow-log-ids", b)
	if len(d.FlowLogs) != 1 || d.FlowLogs[0].DeliverLogsStatus != "FAILED" || d.FlowLogs[0].DeliverLogsErrorMessage != "log group group-b: ResourceNotFoundException" {
		t.Fatalf("failed status: %+v", d.FlowLogs)
	}
	// The agent recovers: SUCCESS again clears the message.
	if err := e.svc.ReportStatus(ctx, control.StatusReport{AgentID: "a1", FlowLogs: []control.FlowLogStatus{{FlowLogID: b, Status: "SUCCESS"}}}); err != nil {
		t.Fatal(err)
	}
	d = cliDescribe{}
	e.cli.JSON(t, &d, "ec2", "describe-flow-logs", "--flow-log-ids", b)
	if d.FlowLogs[0].DeliverLogsStatus != "SUCCESS" || d.FlowLogs[0].DeliverLogsErrorMessage != "" {
		t.Fatalf("recovered status: %+v", d.FlowLogs)
	}
	if stderr := e.cliFail(t, "ec2", "describe-flow-logs", "--filter", "Name=resource-type,Values=VPC"); !strings.Contains(stderr, "(InvalidParameterValue)") ||
		!strings.Contains(stderr, "resource-type") {
		t.Errorf("unknown filter: %q", stderr)
	}
	// The inventory shows coverage and the last record time.
	inv, err := e.svc.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Interfaces) != 4 || !slices.Equal(inv.Interfaces[0].FlowLogIDs, []string{a}) || !inv.Interfaces[0].LastRecordTime.Equal(time.Unix(1700000000, 0)) ||
		inv.Interfaces[0].Hostname != "host-a1" || len(inv.Interfaces[3].FlowLogIDs) != 0 || len(inv.VPCs) != 1 || len(inv.Subnets) != 2 {
		t.Fatalf("inventory: %+v", inv)
	}
}

// DescribeVpcs, DescribeSubnets and DescribeNetworkInterfaces serve what
// agents registered, with ids, filters and pagination.
func TestCLIInventory(t *testing.T) {
	t.Parallel()
	e := start(t, ec2.Options{})
	e.register(t, registration("a1", "vpc-0a1b2c3d", 7))
	e.register(t, registration("b2", "vpc-0a1b2c3d", 2)) // same VPC, another host
	e.register(t, registration("c3", "vpc-0ffff000", 1))

	var vpcs struct {
		Vpcs []struct {
			VpcId, CidrBlock, State, OwnerId string
			CidrBlockAssociationSet          []struct{ CidrBlock string }
			Ipv6CidrBlockAssociationSet      []struct{ Ipv6CidrBlock string }
			IsDefault                        bool
		}
	}
	e.cli.JSON(t, &vpcs, "ec2", "describe-vpcs")
	if len(vpcs.Vpcs) != 2 || vpcs.Vpcs[0].VpcId != "vpc-0a1b2c3d" || vpcs.Vpcs[0].CidrBlock != "10.0.0.0/16" || vpcs.Vpcs[0].State != "available" ||
		vpcs.Vpcs[0].OwnerId != "123456789012" || len(vpcs.Vpcs[0].Ipv6CidrBlockAssociationSet) != 1 || vpcs.Vpcs[0].Ipv6CidrBlockAssociationSet[0].Ipv6CidrBlock != "fd00:1::/56" {
		t.Fatalf("describe-vpcs: %+v", vpcs)
	}
	e.cli.JSON(t, &vpcs, "ec2", "describe-vpcs", "--vpc-ids", "vpc-0ffff000")
	if len(vpcs.Vpcs) != 1 || vpcs.Vpcs[0].VpcId != "vpc-0ffff000" {
		t.Fatalf("by id: %+v", vpcs)
	}
	e.cli.JSON(t, &vpcs, "ec2", "describe-vpcs", "--filters", "Name=cidr,Values=10.0.0.0/16", "Name=vpc-id,Values=vpc-0a*")
	if len(vpcs.Vpcs) != 1 {
		t.Fatalf("by filter: %+v", vpcs)
	}
	if stderr := e.cliFail(t, "ec2", "describe-vpcs", "--vpc-ids", "vpc-0a1b2c3d", "vpc-12345678"); !strings.Contains(stderr, "(InvalidVpcID.NotFound)") ||
		!strings.Contains(stderr, "vpc-12345678") {
		t.Errorf("unknown vpc: %q", stderr)
	}

	var subnets struct {
		Subnets []struct {
			SubnetId, VpcId, CidrBlock, AvailabilityZoneId, SubnetArn string
			AvailableIpAddressCount                                   int
		}
	}
	e.cli.JSON(t, &subnets, "ec2", "describe-subnets", "--filters", "Name=vpc-id,Values=vpc-0a1b2c3d")
	if len(subnets.Subnets) != 4 || subnets.Subnets[0].SubnetId != "subnet-a1a" || subnets.Subnets[0].CidrBlock != "10.0.1.0/24" ||
		subnets.Subnets[0].AvailableIpAddressCount != 251 || subnets.Subnets[0].AvailabilityZoneId != "use1-az1" ||
		subnets.Subnets[0].SubnetArn != "arn:aws:ec2:us-east-1:123456789012:subnet/subnet-a1a" {
		t.Fatalf("describe-subnets: %+v", subnets)
	}
	e.cli.JSON(t, &subnets, "ec2", "describe-subnets", "--subnet-ids", "subnet-c3b", "--filters", "Name=cidr-block,Values=10.0.2.0/24")
	if len(subnets.Subnets) != 1 {
		t.Fatalf("subnet by id: %+v", subnets)
	}
	if stderr := e.cliFail(t, "ec2", "describe-subnets", "--subnet-ids", "subnet-zz"); !strings.Contains(stderr, "(InvalidSubnetID.NotFound)") {
		t.Errorf("unknown subnet: %q", stderr)
	}

	type eni struct {
		NetworkInterfaceId, SubnetId, VpcId, MacAddress, PrivateIpAddress, Status string
		Attachment                                                                struct{ InstanceId, Status string }
		PrivateIpAddresses                                                        []struct {
			Primary          bool
			PrivateIpAddress string
		}
		Ipv6Addresses []struct{ Ipv6Address string }
		TagSet        []struct{ Key, Value string }
	}
	var enis struct {
		NetworkInterfaces []eni
		NextToken         string
	}
	e.cli.JSON(t, &enis, "ec2", "describe-network-interfaces")
	if len(enis.NetworkInterfaces) != 10 {
		t.Fatalf("describe-network-interfaces: %d", len(enis.NetworkInterfaces))
	}
	n := enis.NetworkInterfaces[0]
	if n.NetworkInterfaceId != "eni-a10000" || n.SubnetId != "subnet-a1a" || n.MacAddress != "02:00:00:00:00:00" || n.PrivateIpAddress != "10.0.1.10" ||
		n.Attachment.InstanceId != "i-a1" || len(n.PrivateIpAddresses) != 1 || !n.PrivateIpAddresses[0].Primary || len(n.Ipv6Addresses) != 1 ||
		n.Ipv6Addresses[0].Ipv6Address != "fd00:1::1" || n.Status != "in-use" || fmt.Sprint(n.TagSet) != "[{flowlog:hostname host-a1} {flowlog:link veth0} {flowlog:netns ns-a1} {flowlog:agent-id a1}]" {
		t.Fatalf("interface: %+v", n)
	}
	sg := newSigner(e.srv.URL)
	for i, tc := range []struct {
		filter string
		want   int
	}{
		{"Name=attachment.instance-id,Values=i-b2", 2},
		{"Name=addresses.private-ip-address,Values=10.0.2.11", 2}, // a1 and b2 both have it
		{"Name=mac-address,Values=02:00:00:00:00:06", 1},
		{"Name=subnet-id,Values=subnet-a1b", 3},
		{"Name=network-interface-id,Values=eni-c3*", 1},
		{"Name=tag:flowlog:link,Values=veth1", 2},
		{"Name=vpc-id,Values=vpc-0ffff000", 1},
	} {
		n := 0
		if i == 0 {
			enis.NetworkInterfaces = nil
			e.cli.JSON(t, &enis, "ec2", "describe-network-interfaces", "--filters", tc.filter)
			n = len(enis.NetworkInterfaces)
		} else {
			var x struct {
				IDs []string `xml:"networkInterfaceSet>item>networkInterfaceId"`
			}
			if err := sg.query(context.Background(), "DescribeNetworkInterfaces", filterParams([]string{tc.filter}), &x); err != nil {
				t.Fatal(err)
			}
			n = len(x.IDs)
		}
		if n != tc.want {
			t.Errorf("filter %s: %d interfaces, want %d", tc.filter, n, tc.want)
		}
	}
	var pages, total int
	token := ""
	for range 5 {
		args := []string{"ec2", "describe-network-interfaces", "--no-paginate", "--max-results", "5"}
		if token != "" {
			args = append(args, "--next-token", token)
		}
		enis.NextToken = ""
		e.cli.JSON(t, &enis, args...)
		pages++
		total += len(enis.NetworkInterfaces)
		if token = enis.NextToken; token == "" {
			break
		}
	}
	if pages != 2 || total != 10 {
		t.Errorf("paging interfaces: %d pages, %d interfaces", pages, total)
	}
	if stderr := e.cliFail(t, "ec2", "describe-network-interfaces", "--network-interface-ids", "eni-nope"); !strings.Contains(stderr, "(InvalidNetworkInterfaceID.NotFound)") {
		t.Errorf("unknown interface: %q", stderr)
	}
	// Re-registering replaces an agent's inventory.
	e.register(t, registration("b2", "vpc-0a1b2c3d", 1))
	e.cli.JSON(t, &enis, "ec2", "describe-network-interfaces", "--filters", "Name=attachment.instance-id,Values=i-b2")
	if len(enis.NetworkInterfaces) != 1 {
		t.Errorf("after re-registration: %d interfaces of b2", len(enis.NetworkInterfaces))
	}
}

// The agent protocol over signed HTTP: register, watch (at once on a new
// revision, woken by a create while waiting), only the agent's own flow
// logs, status back into DescribeFlowLogs.
func TestAgentProtocol(t *testing.T) {
	t.Parallel()
	e := start(t, ec2.Options{})
	sg := newSigner(e.srv.URL)
	ctx := context.Background()
	var rr control.RegisterResult
	if err := sg.agent(ctx, control.OpRegister, registration("a1", "vpc-0a1b2c3d", 2), &rr); err != nil {
		t.Fatal(err)
	}
	if rr.PollWait != 5*time.Second {
		t.Fatalf("PollWait = %v", rr.PollWait)
	}
	if err := sg.agent(ctx, control.OpRegister, registration("b2", "vpc-0b000000", 1), &rr); err != nil {
		t.Fatal(err)
	}
	var set control.FlowLogSet
	if err := sg.agent(ctx, control.OpWatchFlowLogs, control.WatchRequest{AgentID: "a1"}, &set); err != nil {
		t.Fatal(err)
	}
	if set.Revision == 0 || len(set.FlowLogs) != 0 {
		t.Fatalf("first watch: %+v", set)
	}
	// Nothing changes: the watch is held for its wait.
	t0 := time.Now()
	rev := set.Revision
	if err := sg.agent(ctx, control.OpWatchFlowLogs, control.WatchRequest{AgentID: "a1", Revision: rev, Wait: 300 * time.Millisecond}, &set); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 250*time.Millisecond || set.Revision != rev {
		t.Fatalf("idle watch returned after %v with %+v", d, set)
	}
	// A create while the agent waits wakes it.
	type result struct {
		set control.FlowLogSet
		at  time.Time
		err error
	}
	done := make(chan result, 1)
	go func() {
		var s control.FlowLogSet
		err := sg.agent(ctx, control.OpWatchFlowLogs, control.WatchRequest{AgentID: "a1", Revision: rev, Wait: 10 * time.Second}, &s)
		done <- result{s, time.Now(), err}
	}()
	time.Sleep(200 * time.Millisecond)
	var c cliCreate
	c = cliCreate{}
	e.cli.JSON(t, &c, "ec2", "create-flow-logs", "--resource-type", "Subnet", "--resource-ids", "subnet-a1b", "--traffic-type", "ALL",
		"--log-destination-type", "file", "--log-destination", "/var/log/flows", "--max-aggregation-interval", "60", "--log-format", "${srcaddr} ${dstaddr}")
	created := time.Now()
	var other cliCreate
	e.cli.JSON(t, &other, "ec2", "create-flow-logs", "--resource-type", "VPC", "--resource-ids", "vpc-0b000000", "--traffic-type", "ALL",
		"--log-destination-type", "file", "--log-destination", "/var/log/flows")
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.at.Sub(created) > 2*time.Second {
		t.Errorf("watch woke %v after the create", r.at.Sub(created))
	}
	if r.set.Revision == rev || len(r.set.FlowLogs) != 1 {
		t.Fatalf("woken watch: %+v", r.set)
	}
	fl := r.set.FlowLogs[0]
	if fl.FlowLogID != c.FlowLogIds[0] || fl.ResourceID != "subnet-a1b" || fl.TrafficType != "ALL" || fl.LogDestinationType != "file" ||
		fl.LogDestination != "/var/log/flows" || fl.LogFormat != "${srcaddr} ${dstaddr}" || fl.MaxAggregationInterval != 60 || fl.FileFormat != "plain-text" {
		t.Fatalf("flow log: %+v", fl)
	}
	var status struct{}
	if err := sg.agent(ctx, control.OpReportStatus, control.StatusReport{AgentID: "a1", FlowLogs: []control.FlowLogStatus{
		{FlowLogID: fl.FlowLogID, Status: "FAILED", Message: "open /var/log/flows: permission denied"}}}, &status); err != nil {
		t.Fatal(err)
	}
	var d cliDescribe
	d = cliDescribe{}
	e.cli.JSON(t, &d, "ec2", "describe-flow-logs", "--flow-log-ids", fl.FlowLogID)
	if len(d.FlowLogs) != 1 || d.FlowLogs[0].DeliverLogsStatus != "FAILED" || d.FlowLogs[0].DeliverLogsErrorMessage != "open /var/log/flows: permission denied" {
		t.Fatalf("status: %+v", d.FlowLogs)
	}
	// Deleting: the next watch answers at once without it.
	e.cli.JSON(t, nil, "ec2", "delete-flow-logs", "--flow-log-ids", fl.FlowLogID)
	if err := sg.agent(ctx, control.OpWatchFlowLogs, control.WatchRequest{AgentID: "a1", Revision: r.set.Revision, Wait: 10 * time.Second}, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.FlowLogs) != 0 {
		t.Fatalf("after delete: %+v", set)
	}
	// Bad bodies are client errors in the protocol's JSON shape.
	var bad struct{}
	if err := sg.agent(ctx, control.OpRegister, control.Registration{AgentID: "x", Interfaces: []control.Interface{{InterfaceID: "eth0"}}}, &bad); err == nil ||
		!strings.Contains(err.Error(), "HTTP 400") || !strings.Contains(err.Error(), "InvalidParameterValue") {
		t.Fatalf("bad registration: %v", err)
	}
	if err := sg.agent(ctx, "Nope", struct{}{}, &bad); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("unknown operation: %v", err)
	}
	b, _ := json.Marshal(set)
	_ = b
}

// filterParams turns CLI filter shorthands (Name=x,Values=a,b) into the
// Query parameters the CLI sends.
func filterParams(filters []string) url.Values {
	p := url.Values{}
	for i, f := range filters {
		name, values, _ := strings.Cut(strings.TrimPrefix(f, "Name="), ",Values=")
		p.Set(fmt.Sprintf("Filter.%d.Name", i+1), name)
		for j, v := range strings.Split(values, ",") {
			p.Set(fmt.Sprintf("Filter.%d.Value.%d", i+1, j+1), v)
		}
	}
	return p
}
