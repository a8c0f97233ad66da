package awsconf

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
)

func TestLoad(t *testing.T) {
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_REGION", "eu-west-3")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	ctx := context.Background()

	std, err := Load(ctx, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if std.Region != "eu-west-3" {
		t.Errorf("standard region %q, want AWS_REGION's eu-west-3", std.Region)
	}
	if c, err := std.Credentials.Retrieve(ctx); err != nil || c.AccessKeyID != "AKIAENVIRONMENT" {
		t.Errorf("standard credentials %q, %v: want the environment's", c.AccessKeyID, err)
	}

	cfg, err := Load(ctx, Overrides{Region: "ap-south-2", Credentials: credentials.NewStaticCredentialsProvider("AKIAOVERRIDE", "s", "")})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "ap-south-2" {
		t.Errorf("region %q, want the override", cfg.Region)
	}
	if c, err := cfg.Credentials.Retrieve(ctx); err != nil || c.AccessKeyID != "AKIAOVERRIDE" {
		t.Errorf("credentials %q, %v: want the override", c.AccessKeyID, err)
	}

	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/config")
	t.Setenv("AWS_PROFILE", "missing")
	if _, err := Load(ctx, Overrides{}); err == nil || !strings.HasPrefix(err.Error(), "load AWS configuration: ") {
		t.Errorf("a missing profile: err %v, want it named as loading the configuration", err)
	}
}

func TestCheckEndpoint(t *testing.T) {
	for _, ok := range []string{"", "http://127.0.0.1:9000", "https://s3.example.com"} {
		if err := CheckEndpoint("s3 endpoint url", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"127.0.0.1:9000", "ftp://host", "http://", "http://[::1"} {
		err := CheckEndpoint("s3 endpoint url", bad)
		if err == nil || !strings.Contains(err.Error(), `s3 endpoint url "`+bad+`"`) {
			t.Errorf("%q: err %v, want one naming the setting and the value", bad, err)
		}
	}
}
