package kafka

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/sink/kafka/kafkatest"
)

// secureSink opens a sink on kafka://ADDR/topic?query with env as the
// environment.
func secureSink(t *testing.T, addr, topic, query string, env map[string]string) (*Sink, Security) {
	t.Helper()
	tg, err := ParseTarget(addr + "/" + topic + "?" + query)
	if err != nil {
		t.Fatal(err)
	}
	sec := tg.Security.FromEnv(kafkatest.Getenv(env))
	s, err := New(Config{Brokers: tg.Brokers, Topic: tg.Topic, Format: flow.DefaultFormat(), DeliveryTimeout: time.Second, Security: sec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Abort(); s.Close() })
	return s, sec
}

// TestSecureProduceReadBack: records produced through TLS and SASL
// (SCRAM-SHA-512 and -256, PLAIN), and mutual TLS, arrive once each,
// read back by a client secured the same way.
func TestSecureProduceReadBack(t *testing.T) {
	p := kafkatest.NewPKI(t)
	for _, c := range []struct {
		name, query string
		tls, mutual bool
		mech        string
	}{
		{"tls+scram-sha-512", "tls=true&sasl=scram-sha-512", true, false, "SCRAM-SHA-512"},
		{"mutual tls", "tls=true", true, true, ""},
		{"scram-sha-256 without tls", "sasl=SCRAM-SHA-256", false, false, "SCRAM-SHA-256"},
		{"tls+plain, server name", "tls=true&tls-server-name=localhost&sasl=plain", true, false, "PLAIN"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var pki *kafkatest.PKI
			if c.tls {
				pki = p
			}
			cl := kafkatest.Cluster(t, pki, c.mutual, c.mech, "flows")
			s, sec := secureSink(t, cl.ListenAddrs()[0], "flows", c.query, p.Env(c.mutual, c.mech != ""))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			recs := window(t0, 40, 4)
			if err := s.Write(recs); err != nil {
				t.Fatal(err)
			}
			if err := s.Advance(t0 + 60); err != nil {
				t.Fatal(err)
			}
			loaded, err := sec.Load()
			if err != nil {
				t.Fatal(err)
			}
			checkMessages(t, consume(t, cl.ListenAddrs(), "flows", len(recs), loaded.Opts()...), lines(recs), false)
		})
	}
}

// TestSecureFailures: a TLS or SASL mistake is an error at once that says
// which (CA, client certificate, password, TLS missing), for certain
// (IsSecurityError), from Ping and from a delivery.
func TestSecureFailures(t *testing.T) {
	p := kafkatest.NewPKI(t)
	for _, c := range []struct {
		name, query string
		tls, mutual bool
		mech        string
		env         map[string]string
		want        string
	}{
		{"wrong password", "tls=true&sasl=scram-sha-512", true, false, "SCRAM-SHA-512",
			map[string]string{EnvCAFile: p.CAFile, EnvUsername: kafkatest.User, EnvPassword: "wrong"},
			`kafka SASL: the broker closed the connection instead of accepting user "flowlog" with sasl=scram-sha-512`},
		{"wrong mechanism", "tls=true&sasl=scram-sha-256", true, false, "SCRAM-SHA-512", p.Env(false, true), "kafka SASL: "},
		{"wrong CA", "tls=true", true, false, "", map[string]string{EnvCAFile: p.OtherCAFile},
			"kafka TLS: the broker's certificate is not signed by a CA in " + p.OtherCAFile + " (FLOWLOG_KAFKA_CA_FILE)"},
		{"system roots", "tls=true", true, false, "", nil, "not signed by a CA in the system's roots"},
		{"plaintext to TLS", "", true, false, "", nil, "add tls=true"},
		{"no client certificate", "tls=true", true, true, "", p.Env(false, false), "kafka TLS: the broker wants a client certificate (mutual TLS): set FLOWLOG_KAFKA_CERT_FILE"},
		{"SASL missing", "tls=true", true, false, "SCRAM-SHA-512", p.Env(false, false), "add sasl="},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // each waits out a 1 s delivery timeout
			var pki *kafkatest.PKI
			if c.tls {
				pki = p
			}
			cl := kafkatest.Cluster(t, pki, c.mutual, c.mech, "flows")
			s, _ := secureSink(t, cl.ListenAddrs()[0], "flows", c.query, c.env)
			began := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := s.Ping(ctx)
			if err == nil || !strings.Contains(err.Error(), c.want) || !IsSecurityError(err) || time.Since(began) > 3*time.Second {
				t.Fatalf("Ping after %v: %v; want an error with %q at once", time.Since(began), err, c.want)
			}
			if strings.Contains(err.Error(), kafkatest.Password) {
				t.Fatalf("the error shows the password: %v", err)
			}
			t.Logf("%v", err)
			// A delivery fails after the delivery timeout (franz-go
			// retries connections), with the same explanation when it
			// names the last error.
			if err := s.Write(window(t0, 3, 1)); err != nil {
				t.Fatal(err)
			}
			if err := s.Advance(t0 + 60); err == nil || strings.Contains(err.Error(), "last err") && !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Advance: %v; want an error with %q", err, c.want)
			}
		})
	}
}

// TestSecureTLSAgainstPlaintext: a TLS client at a plaintext listener
// (which never answers a ClientHello) gets a hint, not for certain.
func TestSecureTLSAgainstPlaintext(t *testing.T) {
	p := kafkatest.NewPKI(t)
	cl := kafkatest.Cluster(t, nil, false, "", "flows")
	s, _ := secureSink(t, cl.ListenAddrs()[0], "flows", "tls=true", p.Env(false, false))
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err := s.Ping(ctx)
	if err == nil || !strings.Contains(err.Error(), "remove tls=true if this port is not TLS") || IsSecurityError(err) {
		t.Fatalf("Ping: %v", err)
	}
}

func TestParseTarget(t *testing.T) {
	tg, err := ParseTarget("b1:9093,b2:9093/flows?tls=true&sasl=SCRAM-SHA-512&tls-server-name=kafka.example.com")
	want := Security{TLS: true, SASL: SASLScramSHA512, ServerName: "kafka.example.com"}
	if err != nil || !slices.Equal(tg.Brokers, []string{"b1:9093", "b2:9093"}) || tg.Topic != "flows" || tg.Security != want {
		t.Fatalf("ParseTarget = %+v, %v", tg, err)
	}
	if q := tg.Security.Query(); q != "tls=true&tls-server-name=kafka.example.com&sasl=scram-sha-512" {
		t.Fatalf("Query = %q", q)
	}
	if tg, err := ParseTarget("b1:9092/flows"); err != nil || tg.Security != (Security{}) {
		t.Fatalf("plain URL: %+v, %v", tg, err)
	}
	if b, topic, err := ParseLocation("b1:9092/flows?tls=false"); err != nil || topic != "flows" || len(b) != 1 {
		t.Fatalf("ParseLocation with a query: %v %q %v", b, topic, err)
	}
	for loc, msg := range map[string]string{
		"b1:9092/flows?tls=yes":                       `parameter tls="yes": want true or false`,
		"b1:9092/flows?ssl=true":                      `unknown parameter "ssl": want tls, tls-server-name, tls-insecure-skip-verify and sasl`,
		"b1:9092/flows?ca-file=/etc/ca.pem":           `unknown parameter "ca-file"`,
		"b1:9092/flows?sasl=gssapi":                   `parameter sasl="gssapi": want plain, scram-sha-256 or scram-sha-512`,
		"b1:9092/flows?sasl=aws-msk-iam":              "AWS MSK IAM is not supported",
		"b1:9092/flows?tls=true&tls=false":            "given 2 times",
		"b1:9092/flows?tls-insecure-skip-verify=true": "need tls=true",
		"b1:9092/flows?sasl=plain&password=hunter2":   "credentials never go in a kafka:// URL",
		"bob:hunter2@b1:9092/flows":                   "credentials never go in a kafka:// URL",
		"b1:9092/flows?tls=true#x":                    "fragment",
		"b1:9092/bad topic?tls=true":                  "kafka topic",
	} {
		_, err := ParseTarget(loc)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseTarget(%q): %v; want an error with %q", loc, err, msg)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseTarget(%q): the error repeats the secret: %v", loc, err)
		}
	}
}

// TestSecurityEnv: the environment completes the URL's settings, only
// those the URL asks for, and mistakes name the variable or file.
func TestSecurityEnv(t *testing.T) {
	p := kafkatest.NewPKI(t)
	env := p.Env(true, true)
	if s := (Security{}).FromEnv(kafkatest.Getenv(env)); s != (Security{}) {
		t.Fatalf("plaintext took %+v from the environment", s)
	}
	s := Security{TLS: true, SASL: SASLPlain}.FromEnv(kafkatest.Getenv(env))
	if s.CAFile != p.CAFile || s.CertFile != p.CertFile || s.Username != kafkatest.User || s.Password != kafkatest.Password {
		t.Fatalf("FromEnv = %+v", s)
	}
	if strings.Contains(s.String(), kafkatest.Password) {
		t.Fatalf("String shows the password: %s", s)
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(kafkatest.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (Security{SASL: SASLScramSHA512, Username: "u", PasswordFile: pwFile}).Load(); err != nil {
		t.Fatalf("password file: %v", err)
	}
	for _, c := range []struct {
		s    Security
		want string
	}{
		{Security{SASL: SASLPlain, Password: "x"}, "no username: set FLOWLOG_KAFKA_USERNAME"},
		{Security{SASL: SASLPlain, Username: "u"}, "no password: set FLOWLOG_KAFKA_PASSWORD or FLOWLOG_KAFKA_PASSWORD_FILE"},
		{Security{SASL: SASLPlain, Username: "u", Password: "x", PasswordFile: pwFile}, "keep one"},
		{Security{TLS: true, CertFile: p.CertFile}, "FLOWLOG_KAFKA_CERT_FILE and FLOWLOG_KAFKA_KEY_FILE go together"},
		{Security{TLS: true, CAFile: "/no/such/ca.pem"}, "read kafka CA file (FLOWLOG_KAFKA_CA_FILE): open /no/such/ca.pem"},
		{Security{TLS: true, CAFile: pwFile}, "kafka CA file " + pwFile + " (FLOWLOG_KAFKA_CA_FILE): no PEM certificate"},
		{Security{TLS: true, CertFile: p.CertFile, KeyFile: p.CAFile}, "load kafka client certificate " + p.CertFile},
		{Security{SASL: SASLPlain, Username: "u", PasswordFile: "/no/pw"}, "read kafka password file (FLOWLOG_KAFKA_PASSWORD_FILE): open /no/pw"},
		{Security{CAFile: p.CAFile}, "need tls=true"},
	} {
		if _, err := c.s.Load(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load(%+v): %v; want an error with %q", c.s, err, c.want)
		}
	}
	if w := (Security{TLS: true, InsecureSkipVerify: true}).Warning(); !strings.Contains(w, "not checked") {
		t.Errorf("Warning = %q", w)
	}
	if w := (Security{SASL: SASLPlain}).Warning(); !strings.Contains(w, "clear text") {
		t.Errorf("Warning = %q", w)
	}
	if w := (Security{TLS: true, SASL: SASLPlain}).Warning(); w != "" {
		t.Errorf("Warning = %q", w)
	}
	if IsSecurityError(errors.New("x")) {
		t.Error("IsSecurityError of a plain error")
	}
}

// FuzzParseTarget: no input panics, and the settings of a parsed URL
// render (Query) to a URL that parses back to them.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"b:9092/t", "b:9092/t?tls=true&sasl=plain", "b:1,c:2/t?tls=1&tls-server-name=x&tls-insecure-skip-verify=true", "u@b:1/t", "b:1/t?%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, loc string) {
		tg, err := ParseTarget(loc)
		if err != nil {
			return
		}
		back, err := ParseTarget(strings.Join(tg.Brokers, ",") + "/" + tg.Topic + "?" + tg.Security.Query())
		if err != nil || back.Security != tg.Security {
			t.Fatalf("%q: settings %+v render to %q, which parses to %+v, %v", loc, tg.Security, tg.Security.Query(), back.Security, err)
		}
	})
}
