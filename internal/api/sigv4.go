package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Signature Version 4 verification. The expected signature is computed
// here rather than with the SDK's signer: a verifier must canonicalize
// exactly the headers the client listed in SignedHeaders, while the SDK's
// signer chooses its own (it adds Content-Length, skips others).

const (
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	amzDateLayout  = "20060102T150405Z"
	emptySHA256    = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// signedRequest is what a request says about its own signature.
type signedRequest struct {
	AccessKeyID   string
	Date          string // yyyymmdd of the credential scope
	Region        string
	Service       string
	SignedHeaders []string
	Signature     string
	AmzDate       time.Time
	SecurityToken string
	Presigned     bool
	Expires       time.Duration // presigned only
}

// parseSignature reads the Authorization header or the presigned query
// parameters. It reports a missing signature as ok == false with no error.
func parseSignature(r *http.Request) (sr signedRequest, ok bool, err error) {
	q := r.URL.Query()
	var credential, signedHeaders, date string
	if auth := r.Header.Get("Authorization"); auth != "" {
		rest, found := strings.CutPrefix(auth, sigV4Algorithm+" ")
		if !found {
			return sr, true, Errorf("IncompleteSignature", "Unsupported authorization type; only %s is accepted", sigV4Algorithm)
		}
		for part := range strings.SplitSeq(rest, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			switch k {
			case "Credential":
				credential = v
			case "SignedHeaders":
				signedHeaders = v
			case "Signature":
				sr.Signature = v
			}
		}
		date = r.Header.Get("X-Amz-Date")
		if date == "" {
			date = r.Header.Get("Date")
		}
		sr.SecurityToken = r.Header.Get("X-Amz-Security-Token")
	} else if q.Has("X-Amz-Signature") || q.Has("X-Amz-Credential") {
		if q.Get("X-Amz-Algorithm") != sigV4Algorithm {
			return sr, true, Errorf("IncompleteSignature", "X-Amz-Algorithm must be %s", sigV4Algorithm)
		}
		sr.Presigned = true
		credential, signedHeaders, sr.Signature, date = q.Get("X-Amz-Credential"), q.Get("X-Amz-SignedHeaders"), q.Get("X-Amz-Signature"), q.Get("X-Amz-Date")
		sr.SecurityToken = q.Get("X-Amz-Security-Token")
		secs, perr := time.ParseDuration(q.Get("X-Amz-Expires") + "s")
		if perr != nil || secs <= 0 || secs > 7*24*time.Hour {
			return sr, true, Errorf("AuthFailure", "X-Amz-Expires must be a number of seconds between 1 and 604800")
		}
		sr.Expires = secs
	} else {
		return sr, false, nil
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || scope[0] == "" {
		return sr, true, Errorf("IncompleteSignature", "Credential must be ACCESS_KEY_ID/DATE/REGION/SERVICE/aws4_request, got %q", credential)
	}
	sr.AccessKeyID, sr.Date, sr.Region, sr.Service = scope[0], scope[1], scope[2], scope[3]
	if signedHeaders == "" || sr.Signature == "" {
		return sr, true, Errorf("IncompleteSignature", "Authorization must name SignedHeaders and Signature")
	}
	sr.SignedHeaders = strings.Split(signedHeaders, ";")
	if !slices.Contains(sr.SignedHeaders, "host") {
		return sr, true, Errorf("IncompleteSignature", "SignedHeaders must include host")
	}
	t, perr := time.Parse(amzDateLayout, date)
	if perr != nil {
		if t, perr = http.ParseTime(date); perr != nil {
			return sr, true, Errorf("IncompleteSignature", "X-Amz-Date %q is not a date in ISO 8601 basic format (yyyyMMddTHHmmssZ)", date)
		}
	}
	sr.AmzDate = t.UTC()
	if sr.AmzDate.Format("20060102") != sr.Date {
		return sr, true, Errorf("SignatureDoesNotMatch", "Date in Credential scope (%s) does not match the request date (%s)", sr.Date, sr.AmzDate.Format("20060102"))
	}
	return sr, true, nil
}

// expectedSignature computes the signature of r over body as the client
// that signed sr must have.
func expectedSignature(r *http.Request, body []byte, sr signedRequest, secret string) string {
	var canon strings.Builder
	canon.WriteString(r.Method)
	canon.WriteByte('\n')
	canon.WriteString(canonicalURI(r.URL))
	canon.WriteByte('\n')
	canon.WriteString(canonicalQuery(r.URL.Query(), sr.Presigned))
	canon.WriteByte('\n')
	for _, h := range sr.SignedHeaders {
		canon.WriteString(h)
		canon.WriteByte(':')
		canon.WriteString(canonicalHeaderValue(r, h))
		canon.WriteByte('\n')
	}
	canon.WriteByte('\n')
	canon.WriteString(strings.Join(sr.SignedHeaders, ";"))
	canon.WriteByte('\n')
	canon.WriteString(payloadHash(r, body, sr.Presigned))

	scope := sr.Date + "/" + sr.Region + "/" + sr.Service + "/aws4_request"
	sum := sha256.Sum256([]byte(canon.String()))
	toSign := sigV4Algorithm + "\n" + sr.AmzDate.Format(amzDateLayout) + "\n" + scope + "\n" + hex.EncodeToString(sum[:])

	key := hmacSHA256([]byte("AWS4"+secret), sr.Date)
	key = hmacSHA256(key, sr.Region)
	key = hmacSHA256(key, sr.Service)
	key = hmacSHA256(key, "aws4_request")
	return hex.EncodeToString(hmacSHA256(key, toSign))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// canonicalURI encodes the already-escaped path once more, as every AWS
// service but S3 expects.
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	return uriEncode(p, false)
}

func canonicalQuery(q url.Values, presigned bool) string {
	type pair struct{ k, v string }
	var pairs []pair
	for k, vs := range q {
		if presigned && k == "X-Amz-Signature" {
			continue
		}
		for _, v := range vs {
			pairs = append(pairs, pair{uriEncode(k, true), uriEncode(v, true)})
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

func canonicalHeaderValue(r *http.Request, name string) string {
	var vals []string
	switch name {
	case "host":
		vals = []string{r.Host}
	case "content-length":
		vals = r.Header.Values("Content-Length")
		if len(vals) == 0 && r.ContentLength >= 0 {
			vals = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	default:
		vals = r.Header.Values(name)
	}
	for i, v := range vals {
		vals[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(vals, ",")
}

func payloadHash(r *http.Request, body []byte, presigned bool) string {
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" {
		return h
	}
	if presigned && len(body) == 0 {
		return emptySHA256
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// uriEncode percent-encodes everything but the unreserved characters of
// RFC 3986 (and '/' unless encodeSlash).
func uriEncode(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' && !encodeSlash {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}
