package fleets_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	fleets "example.invalid/libfleets/bindings/go"
)

// TestTrustOptions: CAPEM, UseSystemRoots and their validation.
func TestTrustOptions(t *testing.T) {
	caPEM, err := os.ReadFile(emu.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	use := func(t *testing.T, cfg fleets.Config) error {
		t.Helper()
		c, err := fleets.NewClient(cfg)
		if err != nil {
			t.Fatalf("NewClient: %v", err)
		}
		defer c.Close()
		_, err = c.ShadowGet("thermostat-001")
		return err
	}
	t.Run("CAPEM", func(t *testing.T) {
		cfg := config()
		cfg.CAFile, cfg.CAPEM = "", string(caPEM)
		if err := use(t, cfg); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("CAPEM of another CA", func(t *testing.T) {
		other, _ := selfSigned(t, "unrelated test CA", true)
		cfg := config()
		cfg.CAFile, cfg.CAPEM = "", string(other)
		if err := use(t, cfg); !errors.Is(err, fleets.ErrTLS) {
			t.Fatalf("err = %v, want ErrTLS", err)
		}
	})
	t.Run("UseSystemRoots", func(t *testing.T) {
		// rustls-native-certs reads SSL_CERT_FILE instead of the distribution's store.
		t.Setenv("SSL_CERT_FILE", emu.CAFile)
		t.Setenv("SSL_CERT_DIR", "")
		os.Unsetenv("SSL_CERT_DIR")
		cfg := config()
		cfg.CAFile, cfg.UseSystemRoots = "", true
		if err := use(t, cfg); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("UseSystemRoots with an empty store", func(t *testing.T) {
		t.Setenv("SSL_CERT_FILE", writeFile(t, "empty.pem", []byte("no certificate\n")))
		t.Setenv("SSL_CERT_DIR", "")
		os.Unsetenv("SSL_CERT_DIR")
		cfg := config()
		cfg.CAFile, cfg.UseSystemRoots = "", true
		if _, err := fleets.NewClient(cfg); !errors.Is(err, fleets.ErrInvalidConfig) {
			t.Fatalf("err = %v, want ErrInvalidConfig", err)
		}
	})
}

// TestClientCertificate: ClientCertFile/ClientKeyFile are accepted with a matching PKCS#8 or
// SEC1 key (the emulator does not ask for one, so calls work as before) and refused
// otherwise.
func TestClientCertificate(t *testing.T) {
	cert, key := selfSigned(t, "thermostat-001", false)
	certFile := writeFile(t, "client.pem", cert)
	for _, sec1 := range []bool{false, true} {
		cfg := config()
		cfg.ClientCertFile, cfg.ClientKeyFile = certFile, writeFile(t, "client.key", keyPEM(t, key, sec1))
		c, err := fleets.NewClient(cfg)
		if err != nil {
			t.Fatalf("SEC1 %v: %v", sec1, err)
		}
		if _, err := c.ShadowGet("thermostat-001"); err != nil {
			t.Errorf("SEC1 %v: %v", sec1, err)
		}
		c.Close()
	}

	_, otherKey := selfSigned(t, "someone else", false)
	otherKeyFile := writeFile(t, "other.key", keyPEM(t, otherKey, false))
	keyFile := writeFile(t, "client.key", keyPEM(t, key, false))
	for _, tc := range []struct {
		name           string
		cert, key      string
		messageContain string
	}{
		{"mismatched key", certFile, otherKeyFile, "does not match"},
		{"certificate without key", certFile, "", "ClientKeyFile"},
		{"key without certificate", "", keyFile, "ClientCertFile"},
		{"missing certificate file", certFile + ".missing", keyFile, "cannot read"},
		{"key file holds a certificate", certFile, certFile, "private key"},
		{"certificate file holds a key", keyFile, keyFile, "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config()
			cfg.ClientCertFile, cfg.ClientKeyFile = tc.cert, tc.key
			c, err := fleets.NewClient(cfg)
			if !errors.Is(err, fleets.ErrInvalidConfig) {
				if c != nil {
					c.Close()
				}
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			mustContain(t, "error", err.Error(), tc.messageContain)
		})
	}
}

// TestConfigOptionErrors: every new option is validated by NewClient, and neither the API
// secret nor the proxy password appears in the error.
func TestConfigOptionErrors(t *testing.T) {
	caPEM, err := os.ReadFile(emu.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	const proxyPassword = "hunter2-proxy-secret"
	for _, tc := range []struct {
		name string
		edit func(*fleets.Config)
		want error
	}{
		{"CA PEM without certificate", func(c *fleets.Config) {
			c.CAFile, c.CAPEM = "", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
		}, fleets.ErrInvalidConfig},
		{"CA PEM of plain text", func(c *fleets.Config) { c.CAFile, c.CAPEM = "", "hello" }, fleets.ErrInvalidConfig},
		{"CA PEM with NUL", func(c *fleets.Config) { c.CAFile, c.CAPEM = "", string(caPEM)+"\x00" }, fleets.ErrInvalidArgument},
		{"CAFile and CAPEM", func(c *fleets.Config) { c.CAPEM = string(caPEM) }, fleets.ErrInvalidConfig},
		{"CAFile and UseSystemRoots", func(c *fleets.Config) { c.UseSystemRoots = true }, fleets.ErrInvalidConfig},
		{"CAPEM and UseSystemRoots", func(c *fleets.Config) { c.CAFile, c.CAPEM, c.UseSystemRoots = "", string(caPEM), true }, fleets.ErrInvalidConfig},
		{"proxy: https scheme", func(c *fleets.Config) { c.ProxyURL = "https://u:" + proxyPassword + "@127.0.0.1:3128" }, fleets.ErrInvalidConfig},
		{"proxy: socks scheme", func(c *fleets.Config) { c.ProxyURL = "socks5://127.0.0.1:1080" }, fleets.ErrInvalidConfig},
		{"proxy: no scheme", func(c *fleets.Config) { c.ProxyURL = "u:" + proxyPassword + "@127.0.0.1:3128" }, fleets.ErrInvalidConfig},
		{"proxy: not a URL", func(c *fleets.Config) { c.ProxyURL = "http://u:" + proxyPassword + "@ bad host:x" }, fleets.ErrInvalidConfig},
		{"proxy: NUL", func(c *fleets.Config) { c.ProxyURL = "http://u:" + proxyPassword + "\x00@127.0.0.1:3128" }, fleets.ErrInvalidArgument},
		{"retry: 11 attempts", func(c *fleets.Config) { c.Retry = &fleets.RetryPolicy{MaxAttempts: 11} }, fleets.ErrInvalidConfig},
		{"retry: negative attempts", func(c *fleets.Config) { c.Retry = &fleets.RetryPolicy{MaxAttempts: -1} }, fleets.ErrInvalidArgument},
		{"retry: initial over max", func(c *fleets.Config) {
			c.Retry = &fleets.RetryPolicy{InitialBackoff: 2 * time.Second, MaxBackoff: time.Second}
		}, fleets.ErrInvalidConfig},
		{"retry: initial over default max", func(c *fleets.Config) { c.Retry = &fleets.RetryPolicy{InitialBackoff: 6 * time.Second} }, fleets.ErrInvalidConfig},
		{"retry: negative backoff", func(c *fleets.Config) { c.Retry = &fleets.RetryPolicy{MaxBackoff: -time.Second} }, fleets.ErrInvalidArgument},
		{"retry: huge backoff", func(c *fleets.Config) { c.Retry = &fleets.RetryPolicy{MaxBackoff: 1 << 62} }, fleets.ErrInvalidArgument},
		{"negative MaxResponseBytes", func(c *fleets.Config) { c.MaxResponseBytes = -1 }, fleets.ErrInvalidArgument},
		{"MaxResponseBytes over 16 MiB", func(c *fleets.Config) { c.MaxResponseBytes = fleets.MaxResponseBytesLimit + 1 }, fleets.ErrInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config()
			cfg.APISecret = "s3cr3t-value-must-not-leak"
			tc.edit(&cfg)
			c, err := fleets.NewClient(cfg)
			if !errors.Is(err, tc.want) {
				if c != nil {
					c.Close()
				}
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if s := fmt.Sprintf("%v %+v %#v", err, err, cfg); strings.Contains(s, "s3cr3t") || strings.Contains(s, proxyPassword) {
				t.Errorf("a secret leaks: %s", s)
			}
		})
	}

	// The accepted forms, and what "default" means.
	for _, tc := range []struct {
		name string
		edit func(*fleets.Config)
	}{
		{"retry: zero policy = defaults", func(c *fleets.Config) { c.Retry = &fleets.RetryPolicy{} }},
		{"retry: 10 attempts", func(c *fleets.Config) {
			c.Retry = &fleets.RetryPolicy{MaxAttempts: 10, InitialBackoff: time.Millisecond, MaxBackoff: time.Minute}
		}},
		{"retry: off", func(c *fleets.Config) { c.Retry = &fleets.RetryPolicy{MaxAttempts: 1} }},
		{"proxy without credentials", func(c *fleets.Config) { c.ProxyURL = "http://127.0.0.1:3128" }},
		{"MaxResponseBytes at the limit", func(c *fleets.Config) { c.MaxResponseBytes = fleets.MaxResponseBytesLimit }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config()
			tc.edit(&cfg)
			c, err := fleets.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		})
	}
}

// TestMaxResponseBytesLimitAgreesWithLibrary: the package refuses what
// fleets_config_set_max_response_bytes refuses, no more.
func TestMaxResponseBytesLimitAgreesWithLibrary(t *testing.T) {
	if got := fleets.SetMaxResponseBytesResult(fleets.MaxResponseBytesLimit); got != fleets.CodeOK {
		t.Errorf("the library answers %v for MaxResponseBytesLimit", got)
	}
	if got := fleets.SetMaxResponseBytesResult(fleets.MaxResponseBytesLimit + 1); got != fleets.CodeInvalidConfig {
		t.Errorf("the library answers %v for MaxResponseBytesLimit+1, want FLEETS_ERR_INVALID_CONFIG", got)
	}
	// The header names the limit; once it defines it (cbindgen), the values must agree.
	header, err := os.ReadFile(filepath.Join("..", "..", "include", "fleets.h"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^#define FLEETS_MAX_RESPONSE_BYTES_LIMIT (\d+)`).FindSubmatch(header); m != nil &&
		string(m[1]) != strconv.Itoa(fleets.MaxResponseBytesLimit) {
		t.Errorf("fleets.h: FLEETS_MAX_RESPONSE_BYTES_LIMIT %s, MaxResponseBytesLimit %d", m[1], fleets.MaxResponseBytesLimit)
	}
}

// TestMaxResponseBytes: the limit applies to response bodies, in both directions.
func TestMaxResponseBytes(t *testing.T) {
	thing := newThing(t, "limit")
	big := map[string]any{}
	for i := 0; i < 600; i++ {
		big[fmt.Sprintf("key%03d", i)] = strings.Repeat("v", 2000)
	}
	cfg := config()
	cfg.MaxResponseBytes = 4 << 20
	c, err := fleets.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ShadowReport(thing, big, nil); err != nil { // ~1.2 MB echoed back
		t.Fatal(err)
	}
	s, err := c.ShadowGet(thing) // over the 1 MiB default, under 4 MiB
	if err != nil || len(s.Reported) != 600 {
		t.Fatalf("1.2 MB shadow with MaxResponseBytes 4 MiB: %v", err)
	}

	cfg.MaxResponseBytes = 1000
	small, err := fleets.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if _, err := small.ShadowGet("thermostat-001"); err != nil {
		t.Fatalf("small shadow under a 1000-byte limit: %v", err)
	}
	if _, err := small.ShadowGet(thing); !errors.Is(err, fleets.ErrBadResponse) {
		t.Fatalf("err = %v, want ErrBadResponse", err)
	}
}

func TestConfigString(t *testing.T) {
	cfg := fleets.Config{
		Endpoint: "https://fleets.example.com", APIKey: "ak_1", APISecret: "top-secret",
		CAPEM: "-----BEGIN CERTIFICATE-----\n", ProxyURL: "http://user:pa55@proxy.local:3128",
		Retry: &fleets.RetryPolicy{MaxAttempts: 5, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second},
	}
	s := fmt.Sprintf("%v|%+v|%#v|%s", cfg, cfg, cfg, &cfg)
	for _, secret := range []string{"top-secret", "pa55"} {
		if strings.Contains(s, secret) {
			t.Errorf("printed Config contains %q: %s", secret, s)
		}
	}
	for _, want := range []string{"ProxyURL:http://user:REDACTED@proxy.local:3128", "CAPEM:(28 bytes)",
		"Retry:{MaxAttempts:5 InitialBackoff:100ms MaxBackoff:2s}", "fleets.Config{"} {
		mustContain(t, "printed Config", s, want)
	}
	for in, want := range map[string]string{
		"":                                "",
		"http://proxy.local:3128":         "http://proxy.local:3128",
		"http://user@proxy.local:3128":    "http://user@proxy.local:3128",
		"user:pa55@proxy.local:3128":      "REDACTED",
		"http://user:pa55@bad host:x":     "http://user:REDACTED@bad host:x",
		"http://user:pa:55@proxy.local":   "http://user:REDACTED@proxy.local",
		"http://user:pa/55@proxy.local":   "http://user:REDACTED@proxy.local",
		"http://user:pa@55@proxy.local":   "http://user:REDACTED@proxy.local",
		"http://user:p#a?55@proxy.local/": "http://user:REDACTED@proxy.local/",
		"http://user:pa%2555@proxy.local": "http://user:REDACTED@proxy.local",
		"http://user:@proxy.local":        "http://user:REDACTED@proxy.local",
		"http://us/er:55@proxy.local":     "http://REDACTED@proxy.local",
		"http://user:pa\x1b55@proxy\r\n":  "http://user:REDACTED@proxy\\x0d\\x0a",
	} {
		cfg := fleets.Config{ProxyURL: in}
		mustContain(t, "printed Config", cfg.String(), "ProxyURL:"+want+" ")
		if strings.Contains(cfg.String(), "pa55") || strings.Contains(cfg.String(), ":55") {
			t.Errorf("%q prints as %s", in, cfg.String())
		}
	}
}
