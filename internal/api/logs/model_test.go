package logs_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/logs"
)

// botocoreModel is the CloudWatch Logs model the Debian AWS CLI ships.
const botocoreModel = "/usr/lib/python3/dist-packages/awscli/botocore/data/logs/2014-03-28/service-2.json"

// newerMembers are members AWS answers with that the Debian CLI's model
// predates (added in 2023); SDKs that know them read them.
var newerMembers = map[string]bool{"LogGroup.logGroupArn": true, "LogGroup.logGroupClass": true}

type shape struct {
	Type    string
	Members map[string]struct{ Shape string }
	Member  struct{ Shape string }
	Value   struct{ Shape string }
}

type model struct {
	Operations map[string]struct {
		Output struct{ Shape string }
		Errors []struct{ Shape string }
	}
	Shapes map[string]shape
}

func loadModel(t *testing.T) model {
	t.Helper()
	b, err := os.ReadFile(botocoreModel)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("botocore's logs model is required under CI (apt-get install awscli): %v", err)
		}
		t.Skipf("botocore's logs model is not installed (apt-get install awscli): %v", err)
	}
	var m model
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// check reports every member of v (a decoded JSON answer) that shape
// name does not have, and values of the wrong JSON type.
func (m model) check(t *testing.T, where, name string, v any) {
	t.Helper()
	sh, ok := m.Shapes[name]
	if !ok {
		t.Errorf("%s: no shape %s in the model", where, name)
		return
	}
	switch sh.Type {
	case "structure":
		obj, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s: %T, want an object (%s)", where, v, name)
			return
		}
		for k, val := range obj {
			mem, ok := sh.Members[k]
			if !ok {
				if !newerMembers[name+"."+k] {
					t.Errorf("%s: member %q is not in shape %s", where, k, name)
				}
				continue
			}
			m.check(t, where+"."+k, mem.Shape, val)
		}
	case "list":
		arr, ok := v.([]any)
		if !ok {
			t.Errorf("%s: %T, want a list (%s)", where, v, name)
			return
		}
		for _, e := range arr {
			m.check(t, where+"[]", sh.Member.Shape, e)
		}
	case "map":
		obj, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s: %T, want a map (%s)", where, v, name)
			return
		}
		for _, e := range obj {
			m.check(t, where+"{}", sh.Value.Shape, e)
		}
	case "string":
		if _, ok := v.(string); !ok {
			t.Errorf("%s: %T, want a string (%s)", where, v, name)
		}
	case "integer", "long":
		if _, ok := v.(float64); !ok {
			t.Errorf("%s: %T, want a number (%s)", where, v, name)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			t.Errorf("%s: %T, want a boolean (%s)", where, v, name)
		}
	}
}

// TestAnswersMatchBotocore checks every element of every answer against
// botocore's logs model (an element an SDK would silently drop fails),
// and that each error code is one the operation's model lists.
func TestAnswersMatchBotocore(t *testing.T) {
	m := loadModel(t)
	svc, _ := newService(t, logs.Options{})
	now := time.Now().UnixMilli()
	answer := func(op string, in any) {
		t.Helper()
		out := must(t, svc, op, in)
		m.check(t, op, m.Operations[op].Output.Shape, out)
	}
	refused := func(op string, in any) {
		t.Helper()
		_, err := call(t, svc, op, in)
		var e *api.Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: %v, want an error", op, err)
		}
		for _, listed := range m.Operations[op].Errors {
			if listed.Shape == e.Code {
				return
			}
		}
		t.Errorf("%s: error code %s is not among the operation's errors %v", op, e.Code, m.Operations[op].Errors)
	}
	must(t, svc, "CreateLogGroup", map[string]any{"logGroupName": "g", "tags": map[string]string{"a": "b"}, "kmsKeyId": "k"})
	refused("CreateLogGroup", map[string]any{"logGroupName": "g"})
	refused("CreateLogGroup", map[string]any{"logGroupName": "bad name"})
	must(t, svc, "PutRetentionPolicy", map[string]any{"logGroupName": "g", "retentionInDays": 30})
	refused("PutRetentionPolicy", map[string]any{"logGroupName": "g", "retentionInDays": 31})
	refused("PutRetentionPolicy", map[string]any{"logGroupName": "nope", "retentionInDays": 30})
	must(t, svc, "CreateLogStream", map[string]any{"logGroupName": "g", "logStreamName": "s"})
	must(t, svc, "CreateLogStream", map[string]any{"logGroupName": "g", "logStreamName": "empty"})
	refused("CreateLogStream", map[string]any{"logGroupName": "g", "logStreamName": "s"})
	refused("CreateLogStream", map[string]any{"logGroupName": "nope", "logStreamName": "s"})
	must(t, svc, "PutRetentionPolicy", map[string]any{"logGroupName": "g", "retentionInDays": 1})
	answer("PutLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "s", "logEvents": []map[string]any{
		{"timestamp": now - 24*3600*1000 - 60_000, "message": "expired"}, {"timestamp": now - 24*3600*1000 + 60_000, "message": "kept"}}})
	answer("PutLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "s", "logEvents": []map[string]any{
		{"timestamp": now, "message": "kept"}, {"timestamp": now + 3*3600*1000, "message": "future"}}})
	answer("PutLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "s", "logEvents": []map[string]any{
		{"timestamp": now - 20*24*3600*1000, "message": "too old"}, {"timestamp": now - 20*24*3600*1000 + 1, "message": "too old"}}})
	refused("PutLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "nope", "logEvents": []map[string]any{{"timestamp": now, "message": "x"}}})
	refused("PutLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "s", "logEvents": []map[string]any{}})
	answer("DescribeLogGroups", map[string]any{"limit": 1})
	must(t, svc, "CreateLogGroup", map[string]any{"logGroupName": "h"})
	answer("DescribeLogGroups", map[string]any{"limit": 1})
	refused("DescribeLogGroups", map[string]any{"limit": 51})
	answer("DescribeLogStreams", map[string]any{"logGroupName": "g", "limit": 1})
	answer("DescribeLogStreams", map[string]any{"logGroupName": "g", "orderBy": "LastEventTime", "descending": true})
	refused("DescribeLogStreams", map[string]any{"logGroupName": "nope"})
	answer("GetLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "s", "startFromHead": true})
	answer("GetLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "empty"})
	refused("GetLogEvents", map[string]any{"logGroupName": "g", "logStreamName": "nope"})
	answer("FilterLogEvents", map[string]any{"logGroupName": "g", "filterPattern": "kept", "limit": 1})
	answer("FilterLogEvents", map[string]any{"logGroupIdentifier": "arn:aws:logs:us-east-1:123456789012:log-group:g", "logStreamNamePrefix": "s"})
	refused("FilterLogEvents", map[string]any{"logGroupName": "g", "filterPattern": "{ $.a = 1 }"})
	refused("FilterLogEvents", map[string]any{"logGroupName": "nope"})
	answer("ListTagsLogGroup", map[string]any{"logGroupName": "g"})
	answer("ListTagsForResource", map[string]any{"resourceArn": "arn:aws:logs:us-east-1:123456789012:log-group:g"})
	must(t, svc, "TagResource", map[string]any{"resourceArn": "arn:aws:logs:us-east-1:123456789012:log-group:g", "tags": map[string]string{"c": "d"}})
	refused("TagResource", map[string]any{"resourceArn": "arn:aws:logs:us-east-1:123456789012:log-group:nope", "tags": map[string]string{"c": "d"}})
	must(t, svc, "DeleteRetentionPolicy", map[string]any{"logGroupName": "g"})
	must(t, svc, "DeleteLogStream", map[string]any{"logGroupName": "g", "logStreamName": "s"})
	refused("DeleteLogStream", map[string]any{"logGroupName": "g", "logStreamName": "s"})
	must(t, svc, "DeleteLogGroup", map[string]any{"logGroupName": "g"})
	refused("DeleteLogGroup", map[string]any{"logGroupName": "g"})
	if _, err := svc.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
}
