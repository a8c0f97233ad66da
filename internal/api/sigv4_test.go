package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	testKey    = "AKIAFLOWLOGSIGV40001"
	testSecret = "sigv4TestSecret000000000000000000000000001"
)

var signTime = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

// newSigned builds a request as it arrives at the server, signed by the
// AWS SDK's own signer.
func newSigned(t *testing.T, method, target string, body string, token string, mutate func(*http.Request)) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if mutate != nil {
		mutate(r)
	}
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret, SessionToken: token}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), "ec2", "eu-west-1", signTime); err != nil {
		t.Fatal(err)
	}
	return r
}

func verify(r *http.Request, body string) (signedRequest, bool, error) {
	sr, ok, err := parseSignature(r)
	if !ok || err != nil {
		return sr, ok, err
	}
	if got := expectedSignature(r, []byte(body), sr, testSecret); got != sr.Signature {
		return sr, true, Errorf("SignatureDoesNotMatch", "got %s want %s", sr.Signature, got)
	}
	return sr, true, nil
}

func TestSignaturesOfTheSDKSignerVerify(t *testing.T) {
	cases := []struct {
		name, method, target, body, token string
		mutate                            func(*http.Request)
	}{
		{"form post", "POST", "http://127.0.0.1:8080/", "Action=DescribeFlowLogs&Version=2016-11-15", "", nil},
		{"query with escapes and repeats", "GET", "http://127.0.0.1:8080/a%20b/c?b=2&a=1&a=0&x=%2F+%7E", "", "", nil},
		{"session token", "POST", "http://h/", "Action=X", "session-token/with+chars=", nil},
		{"extra signed header with spaces", "POST", "http://h/", "{}", "", func(r *http.Request) {
			r.Header.Set("X-Amz-Target", "Logs_20140328.PutLogEvents")
			r.Header.Set("X-Custom", "  a   b  ")
		}},
		{"unicode body", "POST", "http://h/flowlog/v1/Register", `{"hostname":"hôte"}`, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newSigned(t, c.method, c.target, c.body, c.token, c.mutate)
			sr, ok, err := verify(r, c.body)
			if !ok || err != nil {
				t.Fatalf("verify: ok=%v err=%v (Authorization %q)", ok, err, r.Header.Get("Authorization"))
			}
			if sr.AccessKeyID != testKey || sr.Region != "eu-west-1" || sr.Service != "ec2" || !sr.AmzDate.Equal(signTime) || sr.SecurityToken != c.token {
				t.Fatalf("parsed %+v", sr)
			}
		})
	}
}

func TestAlteredRequestsDoNotVerify(t *testing.T) {
	body := "Action=DeleteFlowLogs&FlowLogId.1=fl-00000000000000001"
	for name, alter := range map[string]func(*http.Request) string{
		"body":          func(*http.Request) string { return strings.Replace(body, "1", "2", 1) },
		"path":          func(r *http.Request) string { r.URL.Path = "/other"; return body },
		"query":         func(r *http.Request) string { r.URL.RawQuery = "a=1"; return body },
		"host":          func(r *http.Request) string { r.Host = "evil.example"; return body },
		"signed header": func(r *http.Request) string { r.Header.Set("Content-Type", "text/plain"); return body },
		"date":          func(r *http.Request) string { r.Header.Set("X-Amz-Date", "20261126T090001Z"); return body },
	} {
		t.Run(name, func(t *testing.T) {
			r := newSigned(t, "POST", "http://127.0.0.1:8080/", body, "", nil)
			got := alter(r)
			if _, _, err := verify(r, got); err == nil {
				t.Fatal("altered request verified")
			}
		})
	}
}

func TestPresignedURLVerifies(t *testing.T) {
	r := httptest.NewRequest("GET", "http://127.0.0.1:8080/?Action=DescribeFlowLogs&Version=2016-11-15", nil)
	q := r.URL.Query()
	q.Set("X-Amz-Expires", "300")
	r.URL.RawQuery = q.Encode()
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}, r, emptySHA256, "ec2", "us-east-1", signTime)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(signed)
	in := httptest.NewRequest("GET", u.String(), nil)
	sr, ok, err := verify(in, "")
	if !ok || err != nil || !sr.Presigned || sr.Expires != 5*time.Minute {
		t.Fatalf("presigned: ok=%v err=%v %+v", ok, err, sr)
	}
}

func TestMalformedAuthorizationIsNamed(t *testing.T) {
	for auth, want := range map[string]string{
		"AWS4-HMAC-SHA256 Credential=K/20261126/us-east-1/ec2, SignedHeaders=host, Signature=ab":                    "Credential must be",
		"AWS4-HMAC-SHA256 Credential=K/20261126/us-east-1/ec2/aws4_request, Signature=ab":                           "SignedHeaders",
		"AWS4-HMAC-SHA256 Credential=K/20261126/us-east-1/ec2/aws4_request, SignedHeaders=x-amz-date, Signature=ab": "include host",
		"AWS AKID:sig": "only AWS4-HMAC-SHA256",
	} {
		r := httptest.NewRequest("POST", "http://h/", nil)
		r.Header.Set("Authorization", auth)
		r.Header.Set("X-Amz-Date", "20261126T090000Z")
		_, ok, err := parseSignature(r)
		if !ok || err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: ok=%v err=%v, want an error containing %q", auth, ok, err, want)
		}
	}
}

func TestClockSkewIsRefused(t *testing.T) {
	srv, err := New(Options{
		Credentials: StaticKeys{AccountID: "123456789012", Keys: []AccessKey{{AccessKeyID: testKey, SecretAccessKey: testSecret}}},
		Now:         func() time.Time { return signTime.Add(6 * time.Minute) },
	})
	if err != nil {
		t.Fatal(err)
	}
	body := "Action=DescribeFlowLogs&Version=2016-11-15"
	r := newSigned(t, "POST", "http://127.0.0.1:8080/", body, "", nil)
	r.Body = readCloser{bytes.NewReader([]byte(body))}
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "SignatureDoesNotMatch") || !strings.Contains(w.Body.String(), "Signature expired") {
		t.Fatalf("skewed request: %d %s", w.Code, w.Body.String())
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func FuzzVerifySignature(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIAFLOWLOGSIGV40001/20261126/us-east-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=00", "20261126T090000Z", "/", "a=1", "Action=X")
	f.Add("AWS4-HMAC-SHA256 Credential=/////, SignedHeaders=;;, Signature=", "", "/%zz", "X-Amz-Signature=1&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=9", "")
	f.Fuzz(func(t *testing.T, auth, date, path, query, body string) {
		r := httptest.NewRequest("POST", "http://h/", strings.NewReader(body))
		r.URL.RawPath, r.URL.RawQuery = path, query
		r.Header.Set("Authorization", auth)
		r.Header.Set("X-Amz-Date", date)
		sr, ok, err := parseSignature(r)
		if ok && err == nil {
			if expectedSignature(r, []byte(body), sr, testSecret) == "" {
				t.Fatal("empty signature")
			}
		}
	})
}
