package cloudwatch

import (
	"regexp"
	"strings"
	"testing"
)

// TestValidGroupNameIsTheRegexp checks the loop against the regexp it
// replaced, on names of every byte and at the length limits.
func TestValidGroupNameIsTheRegexp(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9_/.#-]{1,512}$`)
	names := []string{"", "a", "flow-logs", "/aws/vpc/flow_logs.#1", "has space", "tab\t", "é", "a:b",
		strings.Repeat("g", 511), strings.Repeat("g", 512), strings.Repeat("g", 513), strings.Repeat("g", 511) + "é"}
	for c := range 256 {
		names = append(names, string([]byte{byte(c)}), "x"+string([]byte{byte(c)})+"y")
	}
	for _, n := range names {
		if got, want := validGroupName(n), re.MatchString(n); got != want {
			t.Errorf("validGroupName(%q) = %v, the regexp says %v", n, got, want)
		}
	}
}
