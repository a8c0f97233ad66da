//go:build !release

// Package s3test starts a real S3 server for tests: versitygw with its
// posix backend, on a free loopback port, serving a directory the test
// owns. Tests skip when versitygw is not installed, except under CI=true,
// where they fail: CI installs it (InstallCommand).
package s3test

import (
	"context"
	"fmt"
	"go/build"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// InstallCommand installs the server the tests use.
const InstallCommand = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// Credentials of the server's root user.
const (
	AccessKey = "flowlogtest"
	SecretKey = "flowlogtestsecret"
)

// Server is a running versitygw.
type Server struct {
	URL  string // http://127.0.0.1:PORT
	Dir  string // the posix backend's root: buckets are its folders
	addr string
	bin  string
	log  string
	cmd  *exec.Cmd
}

// Binary returns the path of versitygw: on PATH, or in GOBIN or
// GOPATH/bin where go install puts it. Without it the test is skipped,
// or fails under CI=true.
func Binary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	dirs := []string{os.Getenv("GOBIN")}
	for _, gp := range filepath.SplitList(build.Default.GOPATH) {
		dirs = append(dirs, filepath.Join(gp, "bin"))
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		p := filepath.Join(d, "versitygw")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	msg := "versitygw (the S3 server the tests run against) is not installed: " + InstallCommand
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Start runs versitygw on a free loopback port serving a new directory,
// and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{bin: Binary(t), Dir: t.TempDir()}
	s.log = filepath.Join(t.TempDir(), "versitygw.log")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	l.Close()
	s.URL = "http://" + s.addr
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() error {
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.bin, "--access", AccessKey, "--secret", SecretKey, "--port", s.addr, "--quiet", "posix", s.Dir)
	// Only what it needs: no ROOT_ACCESS_KEY or VGW_* from the caller.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start versitygw: %w", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			out, _ := os.ReadFile(s.log)
			return fmt.Errorf("versitygw did not listen on %s within 15 s: %s", s.addr, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the server; its directory stays.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same address and directory.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	var err error
	for range 50 { // the port may linger a moment after the kill
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal(err)
}

// Client returns a client of the server with its root credentials (or
// others, to be refused), path-style, with the standard chain kept away
// from the test's environment.
func (s *Server) Client(t testing.TB, access, secret string) *awss3.Client {
	t.Helper()
	Isolate(t)
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(access, secret, "")))
	if err != nil {
		t.Fatal(err)
	}
	return awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		o.BaseEndpoint = aws.String(s.URL)
		o.UsePathStyle = true
		// Objects uploaded in parts have no whole-object checksum to
		// validate; the tests compare their bytes instead.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
}

// Isolate keeps the AWS configuration of the machine out of a test: no
// shared config or credentials files, no profile, no instance metadata
// (which would be a request to 169.254.169.254).
func Isolate(t testing.TB) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE":                        none,
		"AWS_SHARED_CREDENTIALS_FILE":            none,
		"AWS_EC2_METADATA_DISABLED":              "true",
		"AWS_PROFILE":                            "",
		"AWS_REGION":                             "",
		"AWS_DEFAULT_REGION":                     "",
		"AWS_ENDPOINT_URL":                       "",
		"AWS_ENDPOINT_URL_S3":                    "",
		"AWS_ACCESS_KEY_ID":                      "",
		"AWS_SECRET_ACCESS_KEY":                  "",
		"AWS_SESSION_TOKEN":                      "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_WEB_IDENTITY_TOKEN_FILE":            "",
	} {
		t.Setenv(k, v)
	}
}

// CreateBucket creates a bucket.
func CreateBucket(t testing.TB, c *awss3.Client, bucket string) {
	t.Helper()
	if _, err := c.CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket %s: %v", bucket, err)
	}
}

// Objects returns every object of a bucket under prefix, by key.
func Objects(t testing.TB, c *awss3.Client, bucket, prefix string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
	p := awss3.NewListObjectsV2Paginator(c, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("list s3://%s/%s: %v", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			get, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			if err != nil {
				t.Fatalf("get %s: %v", *o.Key, err)
			}
			b, err := readAll(get)
			if err != nil {
				t.Fatalf("read %s: %v", *o.Key, err)
			}
			if int64(len(b)) != aws.ToInt64(o.Size) {
				t.Fatalf("%s: read %d bytes, listed as %d", *o.Key, len(b), aws.ToInt64(o.Size))
			}
			out[*o.Key] = b
		}
	}
	return out
}

func readAll(get *awss3.GetObjectOutput) ([]byte, error) {
	defer get.Body.Close()
	return io.ReadAll(get.Body)
}

// Uploads returns the multipart uploads in progress in a bucket, as
// "key uploadID".
func Uploads(t testing.TB, c *awss3.Client, bucket string) []string {
	t.Helper()
	out, err := c.ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("list multipart uploads of %s: %v", bucket, err)
	}
	var ups []string
	for _, u := range out.Uploads {
		ups = append(ups, aws.ToString(u.Key)+" "+aws.ToString(u.UploadId))
	}
	return ups
}
