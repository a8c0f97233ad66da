package api

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// inventory-expiry: a duration of at least 1m, 0 or never (off); unset
// is 1h; anything else is refused naming the key.
func TestConfigInventoryExpiry(t *testing.T) {
	for body, want := range map[string]time.Duration{
		"":                             time.Hour,
		"inventory-expiry: 30m\n":      30 * time.Minute,
		"inventory-expiry: 24h\n":      24 * time.Hour,
		"inventory-expiry: 0\n":        0,
		"inventory-expiry: \"0\"\n":    0,
		"inventory-expiry: 0s\n":       0,
		"inventory-expiry: never\n":    0,
		"inventory-expiry: 1m\n":       time.Minute,
		"inventory-expiry: 1h30m\n":    90 * time.Minute,
		"listen: 127.0.0.1:9\n":        time.Hour,
		"inventory-expiry: \"2h\"\n":   2 * time.Hour,
		"inventory-expiry: 86400s\n":   24 * time.Hour,
		"inventory-expiry: 1000000h\n": 1000000 * time.Hour,
	} {
		c, err := LoadConfig(writeConfig(t, body, 0o600))
		if err != nil {
			t.Errorf("%q: %v", body, err)
			continue
		}
		if got := c.InventoryExpiryDuration(); got != want {
			t.Errorf("%q: %v, want %v", body, got, want)
		}
	}
	for _, body := range []string{
		"inventory-expiry: 30s\n",
		"inventory-expiry: -1h\n",
		"inventory-expiry: sometimes\n",
		"inventory-expiry: 60\n",
		"inventory-expiry: forever\n",
	} {
		_, err := LoadConfig(writeConfig(t, body, 0o600))
		if err == nil || !strings.Contains(err.Error(), "inventory-expiry:") {
			t.Errorf("%q: %v, want an error naming inventory-expiry", body, err)
		}
	}
	// A Config built in code without the key gets the default.
	if d := (Config{}).InventoryExpiryDuration(); d != time.Hour {
		t.Errorf("zero Config: %v", d)
	}
}
