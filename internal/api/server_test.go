package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/flowlog/flowlog/internal/api"
	"github.com/flowlog/flowlog/internal/api/apitest"
)

// echoEC2 is a minimal EC2 Query service: DescribeRegions answers the
// region of the request, which proves the call was authenticated and routed.
type echoEC2 struct{}

func (echoEC2) Info() api.ServiceInfo {
	return api.ServiceInfo{SigningName: "ec2", Protocol: api.ProtocolEC2Query, Version: "2016-11-15", XMLNamespace: "http://ec2.amazonaws.com/doc/2016-11-15/"}
}

func (echoEC2) Resources(context.Context, *api.Call) ([]string, error) { return nil, nil }

func (echoEC2) Serve(_ context.Context, c *api.Call) (any, error) {
	if c.Action != "DescribeRegions" {
		return nil, api.Errorf("InvalidAction", "The action %s is not valid for this web service.", c.Action)
	}
	type region struct {
		RegionName string `xml:"regionName"`
		Endpoint   string `xml:"regionEndpoint"`
	}
	return struct {
		XMLName   xml.Name `xml:"DescribeRegionsResponse"`
		Xmlns     string   `xml:"xmlns,attr"`
		RequestID string   `xml:"requestId"`
		Regions   []region `xml:"regionInfo>item"`
	}{Xmlns: "http://ec2.amazonaws.com/doc/2016-11-15/", RequestID: c.RequestID, Regions: []region{{c.Region, c.Principal.ARN}}}, nil
}

func TestAWSCLISignedCallsAreRoutedAndBadKeysRefused(t *testing.T) {
	srv := apitest.Start(t, api.Options{Services: []api.Service{echoEC2{}}})
	cli := srv.NewCLI()
	var out struct {
		Regions []struct{ RegionName, Endpoint string }
	}
	cli.JSON(t, &out, "ec2", "describe-regions", "--region", "eu-west-3")
	if len(out.Regions) != 1 || out.Regions[0].RegionName != "eu-west-3" || out.Regions[0].Endpoint != "arn:aws:iam::123456789012:root" {
		t.Fatalf("describe-regions = %+v", out)
	}

	wrongSecret := cli
	wrongSecret.SecretKey = "not-the-secret-key-of-this-access-key"
	if r := wrongSecret.Run(t, "ec2", "describe-regions"); r.ExitCode == 0 || !strings.Contains(r.Stderr, "SignatureDoesNotMatch") {
		t.Fatalf("wrong secret: exit %d, stderr %q", r.ExitCode, r.Stderr)
	}
	unknownKey := cli
	unknownKey.AccessKey = "AKIAUNKNOWNKEY000001"
	if r := unknownKey.Run(t, "ec2", "describe-regions"); r.ExitCode == 0 || !strings.Contains(r.Stderr, "AuthFailure") {
		t.Fatalf("unknown key: exit %d, stderr %q", r.ExitCode, r.Stderr)
	}
	if r := cli.Run(t, "ec2", "describe-vpcs"); r.ExitCode == 0 || !strings.Contains(r.Stderr, "InvalidAction") {
		t.Fatalf("unknown action: exit %d, stderr %q", r.ExitCode, r.Stderr)
	}
}

func TestUnsignedRequestIsRefused(t *testing.T) {
	srv := apitest.Start(t, api.Options{Services: []api.Service{echoEC2{}}})
	resp, err := http.Post(srv.URL+"/", "application/x-www-form-urlencoded", strings.NewReader("Action=DescribeRegions&Version=2016-11-15"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Errors []struct{ Code, Message string } `xml:"Errors>Error"`
	}
	if err := xml.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnauthorized || len(e.Errors) != 1 || e.Errors[0].Code != "AuthFailure" {
		t.Fatalf("unsigned: status %d, errors %+v", resp.StatusCode, e.Errors)
	}
}

// blockingKeys looks keys up only once the request is over, as a store
// busy with other work might: its lookup fails with the request's end.
type blockingKeys struct{ entered chan struct{} }

func (k blockingKeys) Lookup(ctx context.Context, id, token string) (string, api.Principal, error) {
	close(k.entered)
	<-ctx.Done()
	return "", api.Principal{}, ctx.Err()
}

type auditLog struct {
	mu    sync.Mutex
	codes []string
}

func (a *auditLog) Audit(_ *api.Call, _ []string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	code := "OK"
	if err != nil {
		code = api.AsError(err).Code
	}
	a.codes = append(a.codes, code)
}

// TestClientGoneDuringLookupIsNotARefusal: a request its client cancels
// while the key is looked up is audited as canceled, not as a refused key
// (AuthFailure), which would be a false alarm in `flowlog audit --result
// denied` each time an agent replaces a long poll.
func TestClientGoneDuringLookupIsNotARefusal(t *testing.T) {
	keys := blockingKeys{entered: make(chan struct{})}
	log := &auditLog{}
	srv := apitest.Start(t, api.Options{Services: []api.Service{echoEC2{}}, Credentials: keys, Audit: log})
	ctx, cancel := context.WithCancel(context.Background())
	body := "Action=DescribeRegions&Version=2016-11-15"
	req, err := http.NewRequestWithContext(ctx, "POST", srv.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: apitest.AccessKey, SecretAccessKey: apitest.SecretKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "ec2", apitest.Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	go func() { <-keys.entered; cancel() }()
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("request: %v, want it canceled", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		log.mu.Lock()
		codes := slices.Clone(log.codes)
		log.mu.Unlock()
		if len(codes) > 0 {
			if len(codes) != 1 || codes[0] != "RequestCanceled" {
				t.Fatalf("audited %v, want [RequestCanceled]", codes)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the canceled request was not audited")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
