package inventory

import (
	"regexp"
	"strings"
	"testing"
)

// TestValidateIDIsTheRegexps checks ValidateID against the regexps it
// replaced, on every byte in every position class and at the length limits.
func TestValidateIDIsTheRegexps(t *testing.T) {
	res := map[string]*regexp.Regexp{
		"account-id":   regexp.MustCompile(`^[0-9]{12}$`),
		"vpc-id":       regexp.MustCompile(`^vpc-([0-9a-f]{8}|[0-9a-f]{17})$`),
		"subnet-id":    regexp.MustCompile(`^subnet-([0-9a-f]{8}|[0-9a-f]{17})$`),
		"instance-id":  regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`),
		"interface-id": regexp.MustCompile(`^eni-([0-9a-f]{8}|[0-9a-f]{17})$`),
	}
	prefixes := []string{"", "vpc-", "subnet-", "i-", "eni-", "VPC-", "vpc"}
	var ids []string
	for _, p := range prefixes {
		for _, n := range []int{7, 8, 9, 12, 16, 17, 18} {
			ids = append(ids, p+strings.Repeat("a", n), p+strings.Repeat("0", n))
		}
		for c := range 256 {
			b := string([]byte{byte(c)})
			ids = append(ids, p+"0123456"+b, p+b+"0123456789abcdef", p+"0123456789abcdef"+b, strings.Repeat("1", 11)+b)
		}
	}
	for field, re := range res {
		for _, id := range ids {
			if id == "" {
				continue
			}
			if got, want := ValidateID(field, id) == nil, re.MatchString(id); got != want {
				t.Errorf("ValidateID(%q, %q) accepts = %v, the regexp says %v", field, id, got, want)
			}
		}
	}
	if err := ValidateID("vpc-id", "vpc-12"); err == nil || !strings.Contains(err.Error(), "want vpc- followed by 8 or 17 lowercase hex digits") {
		t.Errorf("ValidateID(vpc-id, vpc-12) = %v", err)
	}
	if err := ValidateID("cidr", "x"); err == nil || err.Error() != "unknown id field cidr" {
		t.Errorf("ValidateID(cidr, x) = %v", err)
	}
}
