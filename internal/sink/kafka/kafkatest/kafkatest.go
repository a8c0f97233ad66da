// Package kafkatest owns what tests of flowlog's Kafka users share to
// reach a broker that needs TLS or SASL: a throwaway certificate
// authority with server and client certificates written to PEM files,
// and kfake clusters (franz-go's Kafka wire-protocol server, in process)
// that require them; and a topic of record lines for the readers'
// benchmarks.
package kafkatest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// User and Password are the SASL superuser of clusters started by Cluster.
const (
	User     = "flowlog"
	Password = "s3cret-Passw0rd"
)

// PKI is a throwaway CA, a server certificate for 127.0.0.1 and
// localhost, and a client certificate, all signed by the CA, with their
// PEM files in a test's temporary directory.
type PKI struct {
	// CAFile is the CA certificate; CertFile and KeyFile the client's.
	CAFile, CertFile, KeyFile string
	// OtherCAFile is a second CA's certificate, which signed nothing
	// the servers present (a wrong CA bundle).
	OtherCAFile string
	// Server is the brokers' certificate and key.
	Server tls.Certificate
	// Pool holds the CA, to check client certificates with.
	Pool *x509.CertPool
}

// NewPKI creates the certificates and writes their files.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	ca, caKey := newCA(t, "flowlog test CA")
	other, _ := newCA(t, "another CA")
	p := &PKI{
		CAFile:      writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw),
		OtherCAFile: writePEM(t, dir, "other-ca.pem", "CERTIFICATE", other.Raw),
		Pool:        x509.NewCertPool(),
	}
	p.Pool.AddCert(ca)
	srvDER, srvKey := sign(t, ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kafka broker"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	p.Server = tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
	cliDER, cliKey := sign(t, ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "flowlog-client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	p.CertFile = writePEM(t, dir, "client.pem", "CERTIFICATE", cliDER)
	keyDER, err := x509.MarshalPKCS8PrivateKey(cliKey)
	if err != nil {
		t.Fatal(err)
	}
	p.KeyFile = writePEM(t, dir, "client-key.pem", "PRIVATE KEY", keyDER)
	return p
}

// ServerTLS is the brokers' TLS configuration; mutual requires a client
// certificate signed by the CA.
func (p *PKI) ServerTLS(mutual bool) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{p.Server}, MinVersion: tls.VersionTLS12}
	if mutual {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = p.Pool
	}
	return c
}

// Env returns the environment of a client of a Cluster (for
// Security.FromEnv): the CA file, with mutual the client certificate and
// key, and with sasl the user and password.
func (p *PKI) Env(mutual, sasl bool) map[string]string {
	env := map[string]string{"FLOWLOG_KAFKA_CA_FILE": p.CAFile}
	if mutual {
		env["FLOWLOG_KAFKA_CERT_FILE"] = p.CertFile
		env["FLOWLOG_KAFKA_KEY_FILE"] = p.KeyFile
	}
	if sasl {
		env["FLOWLOG_KAFKA_USERNAME"] = User
		env["FLOWLOG_KAFKA_PASSWORD"] = Password
	}
	return env
}

// Getenv looks names up in env, for Security.FromEnv.
func Getenv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// Cluster starts a one-broker kfake cluster with topics (3 partitions
// each): over TLS with p's server certificate when p is not nil (mutual:
// requiring a client certificate), and with SASL when mechanism is not ""
// ("PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512"), for User and Password.
func Cluster(t testing.TB, p *PKI, mutual bool, mechanism string, topics ...string) *kfake.Cluster {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, topics...)}
	if p != nil {
		opts = append(opts, kfake.TLS(p.ServerTLS(mutual)))
	}
	if mechanism != "" {
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser(mechanism, User, Password))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func newCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func sign(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = sn
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// RecordTopic is a kfake cluster (one broker, in process) whose topic
// flows holds n default-format record lines in three partitions, keyed by
// interface like the sink's: what the readers' benchmarks read. The
// records start within the last hour, so a since of two hours keeps them.
func RecordTopic(tb testing.TB, n int) *kfake.Cluster {
	tb.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "flows"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("flows"))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	start := time.Now().Add(-time.Hour).Unix()
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		eni := fmt.Sprintf("eni-0%d", i%7)
		recs = append(recs, &kgo.Record{Key: []byte(eni), Value: fmt.Appendf(nil, "2 123456789012 %s 10.0.%d.%d 10.0.9.9 %d 443 6 3 180 %d %d ACCEPT OK",
			eni, i%5, i%200, 40000+i%20000, start+int64(i/100), start+int64(i/100)+30)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		tb.Fatal(err)
	}
	return c
}
