package agent

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the config goldens in testdata/config")

// TestConfigGoldens parses testdata/config/<case>/in.yaml: a valid file
// must render (defaults filled in) as expected.yaml, an invalid one
// (err-*) must fail with the message in error.txt.
func TestConfigGoldens(t *testing.T) {
	dirs, err := filepath.Glob("testdata/config/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no goldens: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			in := filepath.Join(dir, "in.yaml")
			cfg, err := Load(in)
			wantErr := strings.HasPrefix(filepath.Base(dir), "err-")
			var got, golden string
			if wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				got, golden = err.Error()+"\n", filepath.Join(dir, "error.txt")
			} else {
				if err != nil {
					t.Fatal(err)
				}
				b, err := cfg.Dump()
				if err != nil {
					t.Fatal(err)
				}
				got, golden = string(b), filepath.Join(dir, "expected.yaml")
				// The rendered configuration reads back as itself.
				again, err := Parse("expected.yaml", b)
				if err != nil {
					t.Fatalf("dumped config does not parse: %v", err)
				}
				b2, _ := again.Dump()
				if string(b2) != got {
					t.Errorf("dump is not stable:\n%s\nvs\n%s", got, b2)
				}
			}
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant (%s):\n%s", got, golden, want)
			}
		})
	}
}

func TestDefaultConfigValid(t *testing.T) {
	c := Config{FlowLogs: []FlowLog{{Destination: "/var/log/flowlogs"}}}.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Source != "ebpf" || c.FlowLogs[0].Interval != 600 || c.FlowLogs[0].Resource != "vpc" ||
		c.FlowLogs[0].TrafficType != "ALL" || !*c.Exclusions || c.Interfaces.Exclude[0] != "lo" {
		t.Errorf("defaults: %+v", c)
	}
	// Defaults does not touch its receiver.
	var empty Config
	_ = empty.Defaults()
	if empty.Source != "" {
		t.Error("Defaults changed its receiver")
	}
	if err := (Config{}).Defaults().Validate(); err == nil || !strings.Contains(err.Error(), "flow-logs") {
		t.Errorf("no flow log: %v", err)
	}
}

func TestParseResource(t *testing.T) {
	for _, c := range []struct {
		in          string
		kind        resourceKind
		netns, want string
		ok          bool
	}{
		{"vpc", resourceAll, "", "", true},
		{"vpc-01234567", resourceVPC, "", "vpc-01234567", true},
		{"subnet-0123456789abcdef0", resourceSubnet, "", "subnet-0123456789abcdef0", true},
		{"eni-01234567", resourceInterfaceID, "", "eni-01234567", true},
		{"eth0", resourceLink, "", "eth0", true},
		{"blue/veth1", resourceLink, "blue", "veth1", true},
		{"eni-XYZ", resourceInterfaceID, "", "eni-XYZ", false},
		{"a/b/c", resourceLink, "a", "b/c", false},
		{"averylonginterfacename0", resourceLink, "", "averylonginterfacename0", false},
	} {
		kind, ns, v := parseResource(c.in)
		if kind != c.kind || ns != c.netns || v != c.want || (validResource(c.in) == nil) != c.ok {
			t.Errorf("%s: %v %q %q valid=%v", c.in, kind, ns, v, validResource(c.in))
		}
	}
}

// TestDestinationErrors: a destination sink.ParseDestination refuses is an
// error at its key (the message is the sink package's).
func TestDestinationErrors(t *testing.T) {
	_, err := Parse("agent.yaml", []byte("flow-logs:\n  - destination: ftp://example.com/flows\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2: flow-logs[0].destination: ") || !strings.Contains(err.Error(), `"ftp"`) {
		t.Errorf("ftp destination: %v", err)
	}
}

// FuzzParseConfig: any input either fails with an error or parses into a
// valid configuration whose dump parses back to itself.
func FuzzParseConfig(f *testing.F) {
	files, _ := filepath.Glob("testdata/config/*/in.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed but invalid: %v", err)
		}
		b, err := c.Dump()
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse("dump.yaml", b)
		if err != nil {
			t.Fatalf("dump does not parse: %v\n%s", err, b)
		}
		b2, _ := again.Dump()
		if string(b) != string(b2) {
			t.Fatalf("dump not stable:\n%s\nvs\n%s", b, b2)
		}
	})
}
