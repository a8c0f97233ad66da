package api

import (
	"regexp"
	"strings"
	"testing"
)

// TestShapesAreTheRegexps checks isAccountID and isAccessKeyID against the
// regexps they replaced, on every byte and at the length limits.
func TestShapesAreTheRegexps(t *testing.T) {
	account := regexp.MustCompile(`^[0-9]{12}$`)
	key := regexp.MustCompile(`^[A-Z0-9]{16,128}$`)
	in := []string{"", "000000000000", "123456789012", "12345678901", "1234567890123", "12345678901a", "١٢٣٤٥٦٧٨٩٠١٢",
		"AKIAIOSFODNN7EXAMPLE", "akiaiosfodnn7example", "AKIA-IOSFODNN7EXAMPLE",
		strings.Repeat("A", 15), strings.Repeat("A", 16), strings.Repeat("9", 128), strings.Repeat("Z", 129)}
	for c := range 256 {
		b := string([]byte{byte(c)})
		in = append(in, "12345678901"+b, b+"12345678901", strings.Repeat("A", 15)+b, b+strings.Repeat("A", 16))
	}
	for _, s := range in {
		if got, want := isAccountID(s), account.MatchString(s); got != want {
			t.Errorf("isAccountID(%q) = %v, the regexp says %v", s, got, want)
		}
		if got, want := isAccessKeyID(s), key.MatchString(s); got != want {
			t.Errorf("isAccessKeyID(%q) = %v, the regexp says %v", s, got, want)
		}
	}
}
