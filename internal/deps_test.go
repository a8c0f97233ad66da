// Package internal_test enforces the import rules of the design
// (design.md, "Layout"): which flowlog packages may import which.
package internal_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/flowlog/flowlog"

// rule forbids packages matching From (a prefix of the import path,
// relative to the module) to depend, directly or not, on packages
// matching any of Deny.
type rule struct {
	from   string
	deny   []string
	reason string
}

var rules = []rule{
	{"flow", []string{"internal", "cmd"}, "flow holds the public value types and imports nothing of ours"},
	{"internal/capture", []string{"internal/sink", "internal/api", "internal/pipeline", "internal/analyze"}, "sources know nothing of sinks or the API"},
	{"internal/decode", []string{"internal/sink", "internal/api", "internal/pipeline", "internal/analyze", "internal/capture", "internal/aggregate"}, "decode turns bytes into facts and depends on no other stage"},
	{"internal/aggregate", []string{"internal/sink", "internal/api", "internal/pipeline", "internal/analyze", "internal/capture", "internal/decode"}, "the flow table knows keys, not packets or destinations"},
	{"internal/sink", []string{"internal/capture", "internal/decode", "internal/aggregate", "internal/pipeline"}, "sinks only see records"},
	{"internal/analyze", []string{"internal/capture", "internal/pipeline"}, "the analyzer reads logs, never captures"},
	{"internal/inventory", []string{"internal/pipeline", "internal/sink", "internal/capture"}, "inventory maps ids; it is wired by pipeline"},
	{"internal/policy", []string{"internal/pipeline", "internal/sink", "internal/capture"}, "policy decides about packets; it is wired by pipeline"},
	{"internal/api", []string{"internal/capture", "internal/decode", "internal/aggregate", "internal/pipeline", "internal/agent", "internal/console"}, "the control plane stores definitions and serves APIs; it never touches packets"},
	{"internal/awsconf", []string{"internal", "flow"}, "the AWS configuration every client starts from depends on nothing of ours"},
	{"internal/console", []string{"internal/capture", "internal/decode", "internal/aggregate", "internal/pipeline", "internal/agent"}, "the console shows what the APIs and the analyzer know"},
}

// mustExist keeps the rules from going vacuous when a package is renamed.
var mustExist = []string{"flow", "internal/capture/pcapfile", "internal/capture/afpacket", "internal/agent", "internal/decode", "internal/aggregate", "internal/sink", "internal/inventory", "internal/policy", "internal/pipeline", "internal/api", "internal/awsconf", "cmd/flowlog"}

type listed struct {
	ImportPath string
	Deps       []string
}

func TestImportRules(t *testing.T) {
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	pkgs := map[string][]string{}
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs[strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")] = p.Deps
	}
	for _, want := range mustExist {
		if _, ok := pkgs[want]; !ok {
			t.Errorf("package %s no longer exists: update the import rules", want)
		}
	}
	for rel, deps := range pkgs {
		if strings.HasPrefix(rel, "cmd/") {
			continue
		}
		for _, dep := range deps {
			if !strings.HasPrefix(dep, module+"/") {
				continue
			}
			depRel := strings.TrimPrefix(dep, module+"/")
			if strings.HasPrefix(depRel, "cmd/") {
				t.Errorf("%s imports %s: nothing imports a command", rel, depRel)
			}
			// The agent is the live wiring behind `flowlog agent`: it
			// builds pipelines the way cmd does for `flowlog read`.
			if depRel == "internal/pipeline" && !strings.HasPrefix(rel, "bench") && rel != "internal/agent" {
				t.Errorf("%s imports internal/pipeline: only cmd, the agent (and the benchmarks) wire pipelines", rel)
			}
			for _, r := range rules {
				if rel != r.from && !strings.HasPrefix(rel, r.from+"/") {
					continue
				}
				for _, d := range r.deny {
					if depRel == d || strings.HasPrefix(depRel, d+"/") {
						t.Errorf("%s depends on %s: %s", rel, depRel, r.reason)
					}
				}
			}
		}
	}
}
