package ec2_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"net/url"
	"os"
	"strconv"
	"testing"

	"github.com/flowlog/flowlog/internal/api/apitest"
	"github.com/flowlog/flowlog/internal/api/control"
	"github.com/flowlog/flowlog/internal/api/ec2"
)

// botocoreEC2 is the EC2 model the Debian awscli package ships: the
// truth for the answers' XML names.
const botocoreEC2 = "/usr/lib/python3/dist-packages/awscli/botocore/data/ec2/2016-11-15/service-2.json"

type model struct {
	Operations map[string]struct {
		Output struct{ Shape string }
	}
	Shapes map[string]shape
}

type shape struct {
	Type    string
	Members map[string]struct {
		Shape        string
		LocationName string
	}
	Member struct {
		Shape        string
		LocationName string
	}
}

// node is an XML element as a tree.
type node struct {
	XMLName  xml.Name
	Children []node `xml:",any"`
	Text     string `xml:",chardata"`
}

// check walks n against shape name, reporting every element the model
// does not have (which an SDK would silently drop) and every boolean or
// integer it could not parse.
func (m *model) check(t *testing.T, path string, n node, name string) {
	s := m.Shapes[name]
	switch s.Type {
	case "structure":
		for _, c := range n.Children {
			found := false
			for member, ms := range s.Members {
				loc := ms.LocationName
				if loc == "" {
					loc = member
				}
				if loc == c.XMLName.Local {
					m.check(t, path+"/"+loc, c, ms.Shape)
					found = true
					break
				}
			}
			if !found {
				t.Errorf("%s/%s: not in botocore's %s", path, c.XMLName.Local, name)
			}
		}
	case "list":
		want := s.Member.LocationName
		if want == "" {
			want = "member"
		}
		for _, c := range n.Children {
			if c.XMLName.Local != want {
				t.Errorf("%s/%s: list member, botocore wants <%s>", path, c.XMLName.Local, want)
				continue
			}
			m.check(t, path+"/"+want, c, s.Member.Shape)
		}
	case "boolean":
		if n.Text != "true" && n.Text != "false" {
			t.Errorf("%s: boolean %q", path, n.Text)
		}
	case "integer", "long":
		if _, err := strconv.ParseInt(n.Text, 10, 64); err != nil {
			t.Errorf("%s: integer %q", path, n.Text)
		}
	default:
		if len(n.Children) > 0 {
			t.Errorf("%s: a %s with child elements", path, s.Type)
		}
	}
}

// Every element of every answer is where botocore's model of EC2 puts
// it, so SDKs and the CLI read all of it.
func TestAnswersMatchBotocoreModel(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(botocoreEC2)
	if err != nil {
		apitest.RequireCLI(t)
		t.Fatalf("the AWS CLI is installed but its EC2 model is not where expected: %v", err)
	}
	var m model
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	e := start(t, ec2.Options{})
	e.register(t, registration("a1", "vpc-0a1b2c3d", 3))
	sg := newSigner(e.srv.URL)
	ctx := context.Background()
	var created xmlCreate
	calls := []struct {
		action string
		params url.Values
	}{
		{"CreateFlowLogs", url.Values{"ResourceType": {"VPC"}, "ResourceId.1": {"vpc-0a1b2c3d"}, "ResourceId.2": {"vpc-nothere"}, "TrafficType": {"ALL"},
			"LogDestinationType": {"s3"}, "LogDestination": {"arn:aws:s3:::bucket/p"}, "ClientToken": {"tok"}, "DestinationOptions.FileFormat": {"parquet"},
			"TagSpecification.1.ResourceType": {"vpc-flow-log"}, "TagSpecification.1.Tag.1.Key": {"k"}, "TagSpecification.1.Tag.1.Value": {"v"}}},
		{"CreateFlowLogs", url.Values{"ResourceType": {"Subnet"}, "ResourceId.1": {"subnet-a1a"}, "TrafficType": {"REJECT"},
			"LogGroupName": {"g"}, "DeliverLogsPermissionArn": {"arn:aws:iam::123456789012:role/r"}}},
		{"DescribeFlowLogs", url.Values{"MaxResults": {"5"}}},
		{"DeleteFlowLogs", url.Values{"FlowLogId.1": {"fl-00000000000000000"}}},
		{"DescribeVpcs", url.Values{}},
		{"DescribeSubnets", url.Values{}},
		{"DescribeNetworkInterfaces", url.Values{"MaxResults": {"5"}}},
	}
	for i, c := range calls {
		c.params.Set("Action", c.action)
		c.params.Set("Version", ec2.Version)
		status, body, err := sg.do(ctx, "ec2", "/", "application/x-www-form-urlencoded", []byte(c.params.Encode()))
		if err != nil || status != 200 {
			t.Fatalf("%s: %d %s %v", c.action, status, body, err)
		}
		if i == 1 {
			// Make the next describe show a FAILED flow log too.
			if err := xml.Unmarshal(body, &created); err != nil || len(created.FlowLogIDs) != 1 {
				t.Fatal(created, err)
			}
			if err := e.svc.ReportStatus(ctx, control.StatusReport{AgentID: "a1", FlowLogs: []control.FlowLogStatus{{FlowLogID: created.FlowLogIDs[0], Status: "FAILED", Message: "m"}}}); err != nil {
				t.Fatal(err)
			}
		}
		var root node
		if err := xml.Unmarshal(body, &root); err != nil {
			t.Fatal(err)
		}
		if root.XMLName.Local != c.action+"Response" || root.XMLName.Space != ec2.XMLNamespace {
			t.Errorf("%s: root %v", c.action, root.XMLName)
		}
		var rest []node
		for _, n := range root.Children {
			if n.XMLName.Local != "requestId" {
				rest = append(rest, n)
			}
		}
		m.check(t, c.action, node{Children: rest}, m.Operations[c.action].Output.Shape)
	}
}
