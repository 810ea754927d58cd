package fleets_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// selfSigned creates a self-signed P-256 certificate (a CA when isCA) and returns it as
// PEM with its key.
func selfSigned(t *testing.T, name string, isCA bool) (certPEM []byte, key *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		BasicConstraintsValid: true,
	}
	if isCA {
		tmpl.IsCA = true
		tmpl.KeyUsage = x509.KeyUsageCertSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key
}

// writeFile writes data to a new file in the test's temporary directory.
func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeSelfSignedCA writes a valid CA certificate that did not sign the emulator's
// certificate and returns its path.
func writeSelfSignedCA(t *testing.T) string {
	t.Helper()
	cert, _ := selfSigned(t, "unrelated test CA", true)
	return writeFile(t, "other-ca.pem", cert)
}

// keyPEM encodes key as PKCS#8 ("PRIVATE KEY") or SEC1 ("EC PRIVATE KEY").
func keyPEM(t *testing.T, key crypto.Signer, sec1 bool) []byte {
	t.Helper()
	if sec1 {
		der, err := x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// serverCertificate returns a CA certificate (PEM file) and a server certificate for
// 127.0.0.1 (and dnsNames) that it signed, for a local HTTPS server that libfleets verifies
// like any other (httptest's own certificate is a CA certificate, which rustls refuses as a
// server's).
func serverCertificate(t *testing.T, dnsNames ...string) (caFile string, cert tls.Certificate) {
	t.Helper()
	caPEM, caKey := selfSigned(t, "fleets test server CA", true)
	block, _ := pem.Decode(caPEM)
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     dnsNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "server-ca.pem", caPEM), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// serverCertificateFiles is serverCertificate with the server certificate and its key
// written as PEM files, for fleets-emulator's --tls-cert and --tls-key.
func serverCertificateFiles(t *testing.T, dnsNames ...string) (caFile, certFile, keyFile string) {
	t.Helper()
	caFile, cert := serverCertificate(t, dnsNames...)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	return caFile, writeFile(t, "server.pem", certPEM), writeFile(t, "server.key", keyPEM(t, cert.PrivateKey.(crypto.Signer), false))
}
