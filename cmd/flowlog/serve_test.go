package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/api/apitest"
)

// writeSelfSigned writes a certificate for 127.0.0.1 and its key.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "flowlog test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// writeServeConfig writes dir/server.yaml for a server on a free
// loopback port with its store in dir/data, apitest's account and keys,
// and extra (YAML lines); it returns the file's path.
func writeServeConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	path := filepath.Join(dir, "server.yaml")
	cfg := fmt.Sprintf("listen: 127.0.0.1:0\ndata-dir: %s\naccount-id: %q\n%saccess-keys:\n  - access-key-id: %s\n    secret-access-key: %s\n",
		filepath.Join(dir, "data"), apitest.AccountID, extra, apitest.AccessKey, apitest.SecretKey)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// flowlog serve with tls: in its configuration serves https only; the AWS
// CLI trusting the certificate works, plain http to the same port gets no
// API answer, and the CLI without the CA refuses the server.
func TestServeTLS(t *testing.T) {
	apitest.RequireCLI(t)
	dir := t.TempDir()
	cert, key := writeSelfSigned(t, dir)
	cfgPath := writeServeConfig(t, dir, fmt.Sprintf("tls:\n  cert: %s\n  key: %s\n", cert, key))
	srv := startServe(t, "--config", cfgPath)
	if !strings.HasPrefix(srv.url, "https://127.0.0.1:") {
		t.Fatalf("serve with tls announced %s", srv.url)
	}
	cli := apitest.CLI{URL: srv.url, AccessKey: apitest.AccessKey, SecretKey: apitest.SecretKey, Region: apitest.Region, Env: []string{"AWS_CA_BUNDLE=" + cert}}
	var out struct{ FlowLogs []any }
	cli.JSON(t, &out, "ec2", "describe-flow-logs")
	if out.FlowLogs == nil {
		t.Fatal("describe-flow-logs over https: no FlowLogs member")
	}

	untrusting := cli
	untrusting.Env = nil
	if r := untrusting.Run(t, "ec2", "describe-flow-logs"); r.ExitCode == 0 || !strings.Contains(strings.ToLower(r.Stderr), "certificate") {
		t.Fatalf("a CLI without the CA: exit %d, stderr %q", r.ExitCode, r.Stderr)
	}
	plain := cli
	plain.URL = "http://" + strings.TrimPrefix(srv.url, "https://")
	if r := plain.Run(t, "ec2", "describe-flow-logs"); r.ExitCode == 0 {
		t.Fatalf("plain http to the https port answered: %s", r.Stdout)
	}
	srv.stop(t)
}

// metrics-address serves /metrics, counting the API's answers by service
// and code, and /healthz.
func TestServeMetricsAndHealth(t *testing.T) {
	apitest.RequireCLI(t)
	dir := t.TempDir()
	cfgPath := writeServeConfig(t, dir, "metrics-address: 127.0.0.1:0\n")
	srv := startServe(t, "--config", cfgPath)
	cli := apitest.CLI{URL: srv.url, AccessKey: apitest.AccessKey, SecretKey: apitest.SecretKey, Region: apitest.Region}
	cli.JSON(t, nil, "ec2", "describe-flow-logs")
	cli.JSON(t, nil, "ec2", "describe-flow-logs")
	wrong := cli
	wrong.SecretKey += "x"
	if r := wrong.Run(t, "ec2", "describe-flow-logs"); r.ExitCode == 0 {
		t.Fatal("a wrong secret was accepted")
	}
	metricsURL := srv.metrics
	if metricsURL == "" {
		t.Fatal("serve with metrics-address logged no metrics address")
	}
	body := httpGet(t, metricsURL)
	for _, want := range []string{
		`flowlog_api_requests_total{code="OK",service="ec2"} 2`,
		`flowlog_api_requests_total{code="SignatureDoesNotMatch",service="ec2"} 1`,
		`flowlog_api_calls_total{action="DescribeFlowLogs",service="ec2"} 2`,
		`flowlog_api_request_seconds_count{service="ec2"} 3`,
		`flowlog_api_requests_in_flight 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if h := httpGet(t, strings.TrimSuffix(metricsURL, "/metrics")+"/healthz"); !strings.Contains(h, `"status":"ok"`) {
		t.Errorf("/healthz: %s", h)
	}
	srv.stop(t)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v\n%s", url, res.Status, err, b)
	}
	return string(b)
}
