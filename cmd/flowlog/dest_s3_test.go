package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flowlog/flowlog/internal/sink/s3/s3test"
)

// readArgs are the flags both destinations of a comparison get.
var readArgs = []string{"read", "--interval", "60", "--account-id", "123456789012", "--region", "us-east-1", "--flow-log-id", "fl-1234abcd", "--max-object-bytes", "100000"}

// filesUnder returns the files under root by slash-separated relative path.
func filesUnder(t *testing.T, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReadDestS3 runs `flowlog read` into a bucket of a real S3 server
// (versitygw), with the credentials in the environment as users give
// them, and into a directory: text and Parquet objects, s3:// and ARN
// destinations, Hive partitions; the bucket holds the directory's objects
// under the prefix, byte for byte.
func TestReadDestS3(t *testing.T) {
	srv := s3test.Start(t)
	client := srv.Client(t, s3test.AccessKey, s3test.SecretKey) // also isolates the AWS environment
	s3test.CreateBucket(t, client, "cli-bucket")
	t.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	s3Args := []string{"--endpoint-url", srv.URL, "--s3-path-style"}
	for _, tc := range []struct {
		name   string
		dest   string // with the prefix the keys get
		prefix string
		extra  []string
		ext    string
	}{
		{"text", "s3://cli-bucket/text", "text/", nil, ".log.gz"},
		{"parquet arn", "arn:aws:s3:::cli-bucket/pq/gzip", "pq/gzip/", []string{"--file-format", "parquet"}, ".log.parquet"},
		{"parquet zstd hive", "s3://cli-bucket/pq/zstd/", "pq/zstd/", []string{"--file-format", "parquet", "--parquet-compression", "zstd", "--hive-partitions", "--per-hour-partition"}, ".log.parquet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append(append(append([]string{}, readArgs...), tc.extra...), "--dest", dir, samplePath)
			if code, _, stderr := flowlog(t, nil, args...); code != 0 {
				t.Fatalf("read to a directory: exit %d: %s", code, stderr)
			}
			args = append(append(append(append([]string{}, readArgs...), tc.extra...), s3Args...), "--dest", tc.dest, "--output", "json", samplePath)
			code, stdout, stderr := flowlog(t, nil, args...)
			if code != 0 {
				t.Fatalf("read to s3: exit %d: %s", code, stderr)
			}
			want := filesUnder(t, dir)
			got := s3test.Objects(t, client, "cli-bucket", tc.prefix)
			if len(want) < 2 || len(got) != len(want) {
				t.Fatalf("%d objects in the bucket under %s, %d in the directory", len(got), tc.prefix, len(want))
			}
			for key, b := range want {
				if !strings.HasSuffix(key, tc.ext) {
					t.Errorf("object %s, want %s objects", key, tc.ext)
				}
				if !bytes.Equal(got[tc.prefix+key], b) {
					t.Errorf("s3 object %s%s differs from the directory's", tc.prefix, key)
				}
			}
			var sum readSummary
			if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
				t.Fatalf("summary %q: %v", stdout, err)
			}
			if sum.Objects != len(want) || !strings.HasPrefix(sum.ObjectKeys[0], tc.prefix+"AWSLogs/") {
				t.Errorf("summary lists %d objects, first %q", sum.Objects, sum.ObjectKeys[0])
			}
		})
	}
	if ups := s3test.Uploads(t, client, "cli-bucket"); len(ups) != 0 {
		t.Fatalf("multipart uploads left: %v", ups)
	}
}

// TestReadDestS3Errors: what users get wrong is named, with a usage error
// for flags and a plain error for what the server refuses.
func TestReadDestS3Errors(t *testing.T) {
	srv := s3test.Start(t)
	client := srv.Client(t, s3test.AccessKey, s3test.SecretKey)
	s3test.CreateBucket(t, client, "cli-bucket")
	t.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"wrong secret", []string{"--dest", "s3://cli-bucket/x", "--endpoint-url", srv.URL, "--s3-path-style"}, 1,
			[]string{"s3 PutObject s3://cli-bucket/x/AWSLogs/123456789012/vpcflowlogs/us-east-1/", "access denied", "s3:PutObject on bucket cli-bucket"}},
		{"bad bucket", []string{"--dest", "s3://Cli_Bucket/x", "--endpoint-url", srv.URL}, 2, []string{`s3 bucket "Cli_Bucket"`}},
		{"endpoint with a directory", []string{"--dest", dir, "--endpoint-url", srv.URL}, 2, []string{"--endpoint-url and --s3-path-style need an s3:// --dest"}},
		{"path style on stdout", []string{"--s3-path-style"}, 2, []string{"--endpoint-url and --s3-path-style need an s3:// --dest"}},
		{"bad endpoint", []string{"--dest", "s3://cli-bucket", "--endpoint-url", "127.0.0.1:9"}, 2, []string{"--endpoint-url", "want http://host[:port]"}},
		{"bad file format", []string{"--dest", dir, "--file-format", "orc"}, 2, []string{`--file-format "orc": want plain-text or parquet`}},
		{"parquet on stdout", []string{"--file-format", "parquet"}, 2, []string{"--file-format needs a directory or s3:// --dest"}},
		{"compression without parquet", []string{"--dest", dir, "--parquet-compression", "zstd"}, 2, []string{"--parquet-compression needs --file-format parquet"}},
		{"bad compression", []string{"--dest", dir, "--file-format", "parquet", "--parquet-compression", "lz4"}, 2, []string{`parquet compression "lz4": want gzip or zstd`}},
		{"prefix AWSLogs", []string{"--dest", "s3://cli-bucket/AWSLogs", "--endpoint-url", srv.URL}, 2, []string{"AWSLogs may not be used as a folder name"}},
		{"no region", []string{"--dest", "s3://cli-bucket/x"}, 1, []string{"s3 region: not set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append(append([]string{}, readArgs...), tc.args...), samplePath)
			if !slices.Contains(tc.args, "--dest") {
				args = append(append([]string{"read"}, tc.args...), samplePath)
			}
			code, _, stderr := flowlog(t, nil, args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d: %s", code, tc.code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not say %q", stderr, w)
				}
			}
		})
	}
	if got := s3test.Objects(t, client, "cli-bucket", ""); len(got) != 0 {
		t.Fatalf("%d objects written with a wrong secret", len(got))
	}
}
