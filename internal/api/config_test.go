package api

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "server.yaml")
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask
		t.Fatal(err)
	}
	return p
}

const keysYAML = "access-keys:\n  - access-key-id: AKIAEXAMPLEROOT00001\n    secret-access-key: abcdefghijklmnopqrstuvwxyz0123456789ABCD\n"

func TestConfigDefaultsBindToLoopback(t *testing.T) {
	c, err := LoadConfig(writeConfig(t, keysYAML, 0o600))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.DataDir != DefaultDataDir || c.AccountID != DefaultAccountID || c.Region != DefaultRegion || c.MaxClockSkew != DefaultMaxClockSkew {
		t.Fatalf("defaults: %+v", c)
	}
	if len(c.AccessKeys) != 1 || c.AccessKeys[0].AccessKeyID != "AKIAEXAMPLEROOT00001" {
		t.Fatalf("keys: %+v", c.AccessKeys)
	}
}

func TestConfigWithReadableSecretsIsRefused(t *testing.T) {
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		_, err := LoadConfig(writeConfig(t, keysYAML, mode))
		if err == nil || !strings.Contains(err.Error(), "other users can read it") || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %#o: %v", mode, err)
		}
	}
	// Without secrets the mode does not matter.
	if _, err := LoadConfig(writeConfig(t, "listen: 127.0.0.1:9\n", 0o644)); err != nil {
		t.Errorf("no keys, mode 0644: %v", err)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for body, want := range map[string]string{
		"listen: nowhere\n":     "listen:",
		"account-id: \"12\"\n":  "account-id:",
		"tls:\n  cert: a.pem\n": "tls:",
		"max-clock-skew: -1m\n": "max-clock-skew:",
		"listn: 127.0.0.1:1\n":  "listn",
		keysYAML + "  - access-key-id: lower\n    secret-access-key: abcdefghijklmnopqrstuvwxyz\n": "access-keys[1].access-key-id",
		"access-keys:\n  - access-key-id: AKIAEXAMPLEROOT00001\n    secret-access-key: short\n":    "access-keys[0].secret-access-key",
		keysYAML + keysYAML[len("access-keys:\n"):]:                                                "given twice",
	} {
		_, err := LoadConfig(writeConfig(t, body, 0o600))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one naming %q", body, err, want)
		}
	}
}
