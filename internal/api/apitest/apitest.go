// Package apitest starts a real `flowlog serve` API server on loopback
// for tests and runs the real AWS CLI (Debian's awscli, /usr/bin/aws)
// against it.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/internal/api"
)

// Test keys of the account's administrator.
const (
	AccountID = "123456789012"
	Region    = "us-east-1"
	AccessKey = "AKIAFLOWLOGTEST00001"
	SecretKey = "flowlogTestSecretKey0000000000000000000001"
)

// Server is a running API server.
type Server struct {
	URL string
	API *api.Server
}

// Start serves opts on 127.0.0.1 (a free port) until the test ends.
// Credentials default to the test administrator key.
func Start(t testing.TB, opts api.Options) *Server {
	t.Helper()
	if opts.Credentials == nil {
		opts.Credentials = api.StaticKeys{AccountID: AccountID, Keys: []api.AccessKey{{AccessKeyID: AccessKey, SecretAccessKey: SecretKey}}}
	}
	srv, err := api.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// The grace outlasts net/http's 5 s allowance for connections an SDK
	// client opened ahead and never used.
	go func() { done <- api.ListenAndServe(ctx, ln, srv, 10*time.Second, "", "") }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && err != http.ErrServerClosed {
			t.Errorf("api server: %v", err)
		}
	})
	return &Server{URL: "http://" + ln.Addr().String(), API: srv}
}

// AWSCLI is the Debian awscli the tests run.
const AWSCLI = "/usr/bin/aws"

// RequireCLI fails the test (skips it outside CI) when the AWS CLI is
// not installed.
func RequireCLI(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(AWSCLI); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the AWS CLI is required under CI (apt-get install awscli): %v", err)
		}
		t.Skipf("the AWS CLI is not installed (apt-get install awscli): %v", err)
	}
}

// CLI runs the AWS CLI against a server.
type CLI struct {
	URL       string
	AccessKey string
	SecretKey string
	Region    string
	// Env adds environment variables (KEY=VALUE).
	Env []string
}

// NewCLI is the CLI with the administrator's keys.
func (s *Server) NewCLI() CLI {
	return CLI{URL: s.URL, AccessKey: AccessKey, SecretKey: SecretKey, Region: Region}
}

// Result is one run of the CLI.
type Result struct {
	Stdout, Stderr string
	ExitCode       int
}

// Run runs `aws --endpoint-url URL --output json args…` with a clean
// configuration (no ~/.aws, no retries, no pager).
func (c CLI) Run(t testing.TB, args ...string) Result {
	t.Helper()
	RequireCLI(t)
	home := t.TempDir()
	full := append([]string{"--endpoint-url", c.URL, "--output", "json", "--no-cli-pager"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, AWSCLI, full...)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"AWS_CONFIG_FILE=" + filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"),
		"AWS_ACCESS_KEY_ID=" + c.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + c.SecretKey,
		"AWS_DEFAULT_REGION=" + c.Region,
		"AWS_MAX_ATTEMPTS=1",
		"AWS_RETRY_MODE=standard",
		"AWS_EC2_METADATA_DISABLED=true",
	}, c.Env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := Result{Stdout: out.String(), Stderr: errb.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("aws %s: %v", strings.Join(args, " "), err)
		}
		res.ExitCode = ee.ExitCode()
	}
	return res
}

// JSON runs the CLI, requires success, and decodes its JSON output into v.
func (c CLI) JSON(t testing.TB, v any, args ...string) {
	t.Helper()
	r := c.Run(t, args...)
	if r.ExitCode != 0 {
		t.Fatalf("aws %s: exit %d: %s", strings.Join(args, " "), r.ExitCode, r.Stderr)
	}
	if v == nil {
		return
	}
	if err := json.Unmarshal([]byte(r.Stdout), v); err != nil {
		t.Fatalf("aws %s: decode output: %v\n%s", strings.Join(args, " "), err, r.Stdout)
	}
}
