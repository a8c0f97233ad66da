package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// The environment variables that complete a kafka:// URL's security
// settings with what must not be in the URL (describe-flow-logs and the
// console show a kafka flow log's URL): credentials, and the files that
// differ per host.
const (
	EnvUsername     = "FLOWLOG_KAFKA_USERNAME"
	EnvPassword     = "FLOWLOG_KAFKA_PASSWORD"
	EnvPasswordFile = "FLOWLOG_KAFKA_PASSWORD_FILE"
	EnvCAFile       = "FLOWLOG_KAFKA_CA_FILE"
	EnvCertFile     = "FLOWLOG_KAFKA_CERT_FILE"
	EnvKeyFile      = "FLOWLOG_KAFKA_KEY_FILE"
)

// SASL mechanisms of Security.SASL, as a kafka:// URL's sasl parameter
// names them (Kafka's names, lowercase).
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// URL query parameters of a kafka:// location.
const (
	paramTLS           = "tls"
	paramTLSServerName = "tls-server-name"
	paramTLSInsecure   = "tls-insecure-skip-verify"
	paramSASL          = "sasl"
	knownParams        = "tls, tls-server-name, tls-insecure-skip-verify and sasl"
	secretsHint        = "credentials never go in a kafka:// URL (describe-flow-logs shows it): set " + EnvUsername + " and " + EnvPassword + " (or " + EnvPasswordFile + ")"
	filesHint          = "files are given by " + EnvCAFile + ", " + EnvCertFile + " and " + EnvKeyFile
)

// Security says how a Kafka client secures its connections: TLS (with an
// optional CA bundle, client certificate and server name) and SASL. The
// settings that are not secret and are the same for every host come from
// the kafka:// URL's query (ParseTarget); FromEnv adds the credentials and
// files from the environment. The zero value is plaintext without
// authentication, what a URL without query means.
type Security struct {
	// TLS connects with TLS (URL: tls=true).
	TLS bool
	// ServerName is the name the brokers' certificates are checked
	// against, instead of the host dialed (URL: tls-server-name=NAME).
	ServerName string
	// InsecureSkipVerify accepts any certificate the brokers present:
	// for labs only (URL: tls-insecure-skip-verify=true); Warning says so.
	InsecureSkipVerify bool
	// CAFile is a PEM bundle of the CAs that sign the brokers'
	// certificates; "" means the system's roots (FLOWLOG_KAFKA_CA_FILE).
	CAFile string
	// CertFile and KeyFile are the PEM client certificate and key for
	// mutual TLS (FLOWLOG_KAFKA_CERT_FILE, FLOWLOG_KAFKA_KEY_FILE).
	CertFile, KeyFile string

	// SASL is the mechanism (URL: sasl=plain|scram-sha-256|scram-sha-512);
	// "" is none.
	SASL string
	// Username and Password authenticate with SASL (FLOWLOG_KAFKA_USERNAME,
	// FLOWLOG_KAFKA_PASSWORD).
	Username, Password string
	// PasswordFile holds the password instead, read at each connection
	// setup, trailing newline dropped (FLOWLOG_KAFKA_PASSWORD_FILE).
	PasswordFile string
}

// parseSecurity reads the query of a kafka:// location. Credentials in it
// are an error that does not repeat them.
func parseSecurity(query string) (Security, error) {
	var s Security
	if query == "" {
		return s, nil
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return s, fmt.Errorf("parse query: %w", err)
	}
	for k, vs := range q {
		if isSecretParam(k) {
			return Security{}, fmt.Errorf("parameter %q: %s", k, secretsHint)
		}
		if len(vs) != 1 {
			return Security{}, fmt.Errorf("parameter %q: given %d times, want once", k, len(vs))
		}
		v := vs[0]
		switch k {
		case paramTLS, paramTLSInsecure:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Security{}, fmt.Errorf("parameter %s=%q: want true or false", k, v)
			}
			if k == paramTLS {
				s.TLS = b
			} else {
				s.InsecureSkipVerify = b
			}
		case paramTLSServerName:
			if v == "" || strings.ContainsAny(v, " /:") {
				return Security{}, fmt.Errorf("parameter %s=%q: want a host name", k, v)
			}
			s.ServerName = v
		case paramSASL:
			m := strings.ToLower(v)
			switch m {
			case SASLPlain, SASLScramSHA256, SASLScramSHA512:
				s.SASL = m
			case "none", "":
			case "aws-msk-iam", "aws_msk_iam":
				return Security{}, fmt.Errorf("parameter sasl=%q: AWS MSK IAM is not supported (only tested mechanisms are): use SCRAM-SHA-512 (MSK's SASL/SCRAM) or mutual TLS", v)
			default:
				return Security{}, fmt.Errorf("parameter sasl=%q: want plain, scram-sha-256 or scram-sha-512", v)
			}
		default:
			return Security{}, fmt.Errorf("unknown parameter %q: want %s (%s)", k, knownParams, filesHint)
		}
	}
	if !s.TLS && (s.ServerName != "" || s.InsecureSkipVerify) {
		return Security{}, errors.New("parameters tls-server-name and tls-insecure-skip-verify need tls=true")
	}
	return s, nil
}

// isSecretParam reports whether a query parameter looks like a credential.
func isSecretParam(k string) bool {
	k = strings.ToLower(k)
	for _, w := range []string{"pass", "secret", "user", "token", "key"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// Query renders the settings that go in a kafka:// URL (ParseTarget reads
// them back): "" for plaintext without SASL.
func (s Security) Query() string {
	var q []string
	if s.TLS {
		q = append(q, paramTLS+"=true")
		if s.ServerName != "" {
			q = append(q, paramTLSServerName+"="+url.QueryEscape(s.ServerName))
		}
		if s.InsecureSkipVerify {
			q = append(q, paramTLSInsecure+"=true")
		}
	}
	if s.SASL != "" {
		q = append(q, paramSASL+"="+s.SASL)
	}
	return strings.Join(q, "&")
}

// FromEnv completes s with the environment (getenv; nil means os.Getenv):
// the CA, certificate and key files when s uses TLS, the username and
// password (or password file) when it uses SASL. What s already holds is
// kept.
func (s Security) FromEnv(getenv func(string) string) Security {
	if getenv == nil {
		getenv = os.Getenv
	}
	set := func(f *string, name string) {
		if *f == "" {
			*f = getenv(name)
		}
	}
	if s.TLS {
		set(&s.CAFile, EnvCAFile)
		set(&s.CertFile, EnvCertFile)
		set(&s.KeyFile, EnvKeyFile)
	}
	if s.SASL != "" {
		set(&s.Username, EnvUsername)
		if s.Password == "" && s.PasswordFile == "" {
			s.Password = getenv(EnvPassword)
			s.PasswordFile = getenv(EnvPasswordFile)
		}
	}
	return s
}

// Validate reports the first setting s cannot be used with, naming the
// URL parameter or environment variable.
func (s Security) Validate() error {
	switch s.SASL {
	case "", SASLPlain, SASLScramSHA256, SASLScramSHA512:
	default:
		return fmt.Errorf("kafka sasl %q: want plain, scram-sha-256 or scram-sha-512", s.SASL)
	}
	if !s.TLS && (s.ServerName != "" || s.InsecureSkipVerify || s.CAFile != "" || s.CertFile != "" || s.KeyFile != "") {
		return errors.New("kafka tls: tls-server-name, tls-insecure-skip-verify and the CA, certificate and key files need tls=true")
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		return fmt.Errorf("kafka tls client certificate: %s and %s go together (mutual TLS): set both or neither", EnvCertFile, EnvKeyFile)
	}
	if s.SASL == "" {
		if s.Username != "" || s.Password != "" || s.PasswordFile != "" {
			return errors.New("kafka sasl: a username or password without a mechanism: add sasl=plain, scram-sha-256 or scram-sha-512 to the kafka:// URL")
		}
		return nil
	}
	if s.Username == "" {
		return fmt.Errorf("kafka sasl=%s: no username: set %s", s.SASL, EnvUsername)
	}
	if s.Password != "" && s.PasswordFile != "" {
		return fmt.Errorf("kafka sasl=%s: both %s and %s are set: keep one", s.SASL, EnvPassword, EnvPasswordFile)
	}
	if s.Password == "" && s.PasswordFile == "" {
		return fmt.Errorf("kafka sasl=%s: no password: set %s or %s", s.SASL, EnvPassword, EnvPasswordFile)
	}
	return nil
}

// Warning is what a user should hear about s before it is used (on
// standard error, or the log), or "" when nothing.
func (s Security) Warning() string {
	var w []string
	if s.TLS && s.InsecureSkipVerify {
		w = append(w, "kafka tls-insecure-skip-verify=true: the brokers' certificates are not checked, anyone on the path can read and change the records (for labs only)")
	}
	if !s.TLS && s.SASL == SASLPlain {
		w = append(w, "kafka sasl=plain without tls=true: the password crosses the network in clear text")
	}
	return strings.Join(w, "; ")
}

// String describes s without secrets, for logs.
func (s Security) String() string {
	if q := s.Query(); q != "" {
		return q
	}
	return "plaintext"
}

// Secured is a Security made ready for franz-go clients: its options,
// with the files read, and what its hooks saw of the logins, to explain
// errors with. One Secured may serve several clients.
type Secured struct {
	Security
	opts []kgo.Opt
	// saslCut is set when a broker closed a connection instead of
	// answering a SASL request (kfake, and brokers that drop a refused
	// login), cleared by an answered one.
	saslCut atomic.Bool
}

// Load validates s and reads its files (CA bundle, client certificate and
// key, password file): what clients connect with until the next Load.
func (s Security) Load() (*Secured, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	c := &Secured{Security: s}
	if s.TLS {
		cfg, err := s.tlsConfig()
		if err != nil {
			return nil, err
		}
		// franz-go clones cfg per dial and sets ServerName to the
		// broker's host when it is empty.
		c.opts = append(c.opts, kgo.DialTLSConfig(cfg))
	}
	if s.SASL != "" {
		password := s.Password
		if s.PasswordFile != "" {
			b, err := os.ReadFile(s.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("read kafka password file (%s): %w", EnvPasswordFile, err)
			}
			password = strings.TrimRight(string(b), "\r\n")
			if password == "" {
				return nil, fmt.Errorf("kafka password file %s (%s): empty", s.PasswordFile, EnvPasswordFile)
			}
		}
		switch s.SASL {
		case SASLPlain:
			c.opts = append(c.opts, kgo.SASL(plain.Auth{User: s.Username, Pass: password}.AsMechanism()))
		case SASLScramSHA256:
			c.opts = append(c.opts, kgo.SASL(scram.Auth{User: s.Username, Pass: password}.AsSha256Mechanism()))
		case SASLScramSHA512:
			c.opts = append(c.opts, kgo.SASL(scram.Auth{User: s.Username, Pass: password}.AsSha512Mechanism()))
		}
		c.opts = append(c.opts, kgo.WithHooks(saslHook{c}))
	}
	return c, nil
}

// Opts are the franz-go options that secure a client's connections: none
// for plaintext without SASL.
func (c *Secured) Opts() []kgo.Opt { return slices.Clip(c.opts) }

// saslHook watches the SASL requests of c's clients.
type saslHook struct{ c *Secured }

// OnBrokerE2E implements kgo.HookBrokerE2E.
func (h saslHook) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if key != saslHandshakeKey && key != saslAuthenticateKey {
		return
	}
	h.c.saslCut.Store(e2e.Err() != nil)
}

// Kafka's API keys of the SASL requests.
const (
	saslHandshakeKey    = 17
	saslAuthenticateKey = 36
)

func (s Security) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.ServerName, InsecureSkipVerify: s.InsecureSkipVerify}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read kafka CA file (%s): %w", EnvCAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka CA file %s (%s): no PEM certificate in it", s.CAFile, EnvCAFile)
		}
		cfg.RootCAs = pool
	}
	if s.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load kafka client certificate %s and key %s (%s, %s): %w", s.CertFile, s.KeyFile, EnvCertFile, EnvKeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Explain adds to err, an error of a client secured by s, what a TLS or
// SASL failure in it means and what to change: a certificate the client
// does not trust, a client certificate the broker refused, TLS spoken to
// a plaintext listener or the reverse, a refused username or password, a
// mechanism the brokers do not offer. Other errors are returned as they
// are.
func (c *Secured) Explain(err error) error {
	if err == nil {
		return nil
	}
	if hint, certain := c.hint(err); hint != "" {
		return &explained{err: err, hint: hint, certain: certain}
	}
	return err
}

// IsSecurityError reports whether err, explained by Secured.Explain, is
// a TLS or SASL failure for certain (a certificate, a refused login, TLS
// against plaintext): settings to change, not brokers that are down.
func IsSecurityError(err error) bool {
	var e *explained
	return errors.As(err, &e) && e.certain
}

// explained is an error with what it means in front.
type explained struct {
	err     error
	hint    string
	certain bool // a security failure, not perhaps one
}

func (e *explained) Error() string { return e.hint + ": " + e.err.Error() }
func (e *explained) Unwrap() error { return e.err }

func (c *Secured) hint(err error) (hint string, certain bool) {
	s := c.Security
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		alert     tls.AlertError
		recHeader tls.RecordHeaderError
		ke        *kerr.Error
	)
	ca := "the system's roots"
	if s.CAFile != "" {
		ca = s.CAFile + " (" + EnvCAFile + ")"
	}
	switch {
	case errors.As(err, &unknownCA):
		return "kafka TLS: the broker's certificate is not signed by a CA in " + ca + ": set " + EnvCAFile + " to the CA bundle that signs the brokers' certificates", true
	case errors.As(err, &hostname):
		return "kafka TLS: the broker's certificate is not for the host dialed: dial a name it is for, or add tls-server-name=NAME to the URL", true
	case errors.As(err, &invalid):
		return "kafka TLS: the broker's certificate is invalid (expired, not yet valid, or not for a server)", true
	case errors.As(err, &verify):
		return "kafka TLS: the broker's certificate was not accepted (CA " + ca + ")", true
	case errors.As(err, &alert):
		return "kafka TLS: the broker ended the handshake", true
	case errors.As(err, &recHeader):
		return "kafka TLS: the broker does not speak TLS on this port: remove tls=true, or use the brokers' TLS listener", true
	case errors.As(err, &ke) && ke.Code == kerr.SaslAuthenticationFailed.Code:
		return "kafka SASL: the brokers refused username " + strconv.Quote(s.Username) + " with sasl=" + s.SASL + ": check " + EnvUsername + ", " + EnvPassword + " and the mechanism", true
	case errors.As(err, &ke) && ke.Code == kerr.UnsupportedSaslMechanism.Code:
		return "kafka SASL: the brokers do not offer sasl=" + s.SASL + ": use one of the mechanisms they enable", true
	case errors.As(err, &ke) && ke.Code == kerr.IllegalSaslState.Code && s.SASL == "":
		return "kafka SASL: the brokers want SASL authentication: add sasl=… to the URL and set " + EnvUsername + " and " + EnvPassword, true
	}
	msg := err.Error()
	switch {
	case s.TLS && (strings.Contains(msg, "remote error: tls: certificate required") || strings.Contains(msg, "remote error: tls: bad certificate")) && s.CertFile == "":
		return "kafka TLS: the broker wants a client certificate (mutual TLS): set " + EnvCertFile + " and " + EnvKeyFile, true
	case s.TLS && (strings.Contains(msg, "remote error: tls: bad certificate") || strings.Contains(msg, "remote error: tls: unknown certificate authority")):
		return "kafka TLS: the broker refused the client certificate " + s.CertFile + " (" + EnvCertFile + "): it is not signed by a CA the broker trusts, or not for a client", true
	case s.TLS && strings.Contains(msg, "remote error: tls: "):
		return "kafka TLS: the broker ended the handshake", true
	case s.SASL != "" && c.saslCut.Load() && isCut(err):
		return "kafka SASL: the broker closed the connection instead of accepting user " + strconv.Quote(s.Username) + " with sasl=" + s.SASL + " (how brokers refuse a login): check " + EnvUsername + ", " + EnvPassword + " and that the user has " + strings.ToUpper(s.SASL) + " credentials", true
	case s.TLS && (errors.Is(err, context.DeadlineExceeded) || isTimeout(err)):
		return "kafka TLS: no answer: a plaintext listener never answers a TLS client (remove tls=true if this port is not TLS), or the brokers are unreachable", false
	case strings.Contains(msg, "tls alert record"):
		return "kafka: the broker speaks TLS on this port and the client does not: add tls=true to the kafka:// URL", true
	case errors.Is(err, io.EOF) && !s.TLS && isFirstReadEOF(err):
		return "kafka: the broker closed the connection at once: if it speaks TLS or wants SASL on this port, add tls=true or sasl=… to the kafka:// URL", true
	case errors.Is(err, io.EOF) && s.TLS && isFirstReadEOF(err):
		return "kafka: the broker closed the connection at once: if it wants SASL, add sasl=… to the kafka:// URL; if this port is not TLS, remove tls=true", true
	}
	return "", false
}

// isCut reports whether err is a connection the broker closed.
func isCut(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isFirstReadEOF(err error) bool {
	var fr *kgo.ErrFirstReadEOF
	return errors.As(err, &fr)
}

// Ping connects cl, a client with c's options, to one of its seed
// brokers (TLS handshake, SASL, an ApiVersions and a Metadata request),
// so that a TLS or SASL error shows at once, explained, instead of when
// the first records time out.
func (c *Secured) Ping(ctx context.Context, cl *kgo.Client) error {
	return c.Explain(cl.Ping(ctx))
}
