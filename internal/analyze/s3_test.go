package analyze

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/flowlog/flowlog/internal/sink"
)

// versitygw starts a real S3 server (versitygw, posix backend) on a free
// loopback port and returns its endpoint URL. Without the binary the test
// skips, except under CI=true, where it fails.
func versitygw(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		if gopath, gerr := exec.Command("go", "env", "GOPATH").Output(); gerr == nil {
			p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "versitygw")
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		msg := "versitygw is not installed (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--access", "K", "--secret", "S", "--port", addr, "posix", t.TempDir())
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(20 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not listen on %s: %s", addr, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Credentials for the SDK's default chain, and nothing from this
	// machine's AWS configuration or instance metadata.
	t.Setenv("AWS_ACCESS_KEY_ID", "K")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "S")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	return "http://" + addr
}

// upload copies every file under root to bucket/prefix with its relative
// path as the key.
func upload(t *testing.T, c *s3.Client, bucket, prefix, root string) int {
	t.Helper()
	n := 0
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, err = c.PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(prefix + filepath.ToSlash(rel)), Body: bytes.NewReader(data),
		})
		n++
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestS3PrefixesReadLikeDirectories(t *testing.T) {
	endpoint := versitygw(t)
	ctx := context.Background()
	s, err := NewS3(ctx, S3Config{EndpointURL: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("flows")}); err != nil {
		t.Fatal(err)
	}

	// The same objects in a local tree and under an S3 prefix: the
	// synthetic conversations (text, gzip'd by sink.Dir), AWS samples
	// with their own headers, and a Parquet object.
	root := t.TempDir()
	ends := []string{"2024-06-20T15:58:00Z", "2024-06-20T16:03:00Z", "2024-06-21T00:01:00Z"}
	writeObjects(t, root, sink.Layout{AccountID: "123456789012", Region: "us-east-1", FlowLogID: "fl-0123456789abcdef0", PerHour: true}, ends...)
	parts := writeSplit(t, t.TempDir(), synthRecords, 3, rand.New(rand.NewPCG(5, 6)))
	for i, p := range parts {
		data, _ := os.ReadFile(p)
		if err := os.WriteFile(filepath.Join(root, "synthetic-"+string(rune('a'+i))+".log"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "aws.log.parquet"), parquetBytes(t, awsRows()), 0o644); err != nil {
		t.Fatal(err)
	}
	trail := filepath.Join(root, "AWSLogs", "123456789012", "CloudTrail", "us-east-1")
	_ = os.MkdirAll(trail, 0o755)
	_ = os.WriteFile(filepath.Join(trail, "x.json.gz"), gz(t, `{"Records":[]}`), 0o644)
	if n := upload(t, s.client, "flows", "vpc/", root); n != 8 {
		t.Fatalf("uploaded %d objects", n)
	}

	listS3 := func(u string, tr TimeRange) []Input {
		var ins []Input
		l := &Lister{S3: s, Range: tr}
		if err := l.List(ctx, u, func(in Input) error { ins = append(ins, in); return nil }); err != nil {
			t.Fatal(err)
		}
		return ins
	}
	ins := listS3("s3://flows/vpc", TimeRange{})
	if len(ins) != 7 {
		t.Fatalf("listed %d objects, want 7 (CloudTrail left out): %v", len(ins), ins)
	}
	var fromS3, fromDir bytes.Buffer
	if _, err := Connections(ctx, ins, ReadConfig{}, ConnOptions{}, Output{W: &fromS3, Mode: ModeJSON}); err != nil {
		t.Fatal(err)
	}
	if _, err := Connections(ctx, listInputs(t, root), ReadConfig{}, ConnOptions{}, Output{W: &fromDir, Mode: ModeJSON}); err != nil {
		t.Fatal(err)
	}
	if fromS3.String() != fromDir.String() || strings.Count(fromS3.String(), "\n") != len(synthWant)+4 {
		t.Fatalf("S3:\n%s\ndirectory:\n%s", fromS3.String(), fromDir.String())
	}

	// Pruning by key time lists only the hour folders and objects that
	// can hold records in the range.
	ins = listS3("s3://flows/vpc/AWSLogs/", TimeRange{Since: utc("2024-06-20T16:00:00Z"), Until: utc("2024-06-20T16:10:00Z")})
	var names []string
	for _, in := range ins {
		names = append(names, filepath.Base(in.Name))
	}
	if len(ins) != 2 || !strings.Contains(names[0], "20240620T1555Z") || !strings.Contains(names[1], "20240620T1600Z") {
		t.Fatalf("pruned listing %q", names)
	}
	// One object by its full key.
	one := listS3(ins[1].Name, TimeRange{})
	if len(one) != 1 || one[0].Name != ins[1].Name || one[0].Size <= 0 {
		t.Fatalf("object URL lists %+v", one)
	}
	v, st := readAll(t, ReadConfig{}, connFields, one...)
	if v.records != 1 || st.Inputs != 1 || st.Bytes != one[0].Size {
		t.Fatalf("read %d records from %d inputs, %d bytes of %d", v.records, st.Inputs, st.Bytes, one[0].Size)
	}

	// Errors name what is wrong.
	l := &Lister{S3: s}
	err = l.List(ctx, "s3://no-such-bucket/x/", func(Input) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "list s3://no-such-bucket/x/") {
		t.Errorf("missing bucket: %v", err)
	}
	err = l.List(ctx, "s3://flows/nothing-here/", func(Input) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "no objects under this prefix") {
		t.Errorf("empty prefix: %v", err)
	}
}
