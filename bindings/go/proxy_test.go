package fleets_test

// HTTP CONNECT proxies. A loopback endpoint never goes through a proxy (as curl's default
// NO_PROXY), so the proxied tests reach a second emulator by a name, fleets.proxy.test, that
// only the test proxy resolves (to 127.0.0.1); that emulator presents a certificate for it.

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	fleets "example.invalid/libfleets/bindings/go"
)

// proxiedHost is the proxied emulator's name: the test proxy resolves it, nothing else does.
const proxiedHost = "fleets.proxy.test"

// proxiedEmulator is a fleets-emulator reached as https://fleets.proxy.test:PORT.
type proxiedEmulator struct {
	readyLine // Endpoint is https://fleets.proxy.test:PORT, CAFile the CA of its certificate
	adminBase string
	http      *http.Client
}

// startProxiedEmulator starts an emulator with a certificate for fleets.proxy.test and
// 127.0.0.1 (the admin calls use the address), stopped when the test ends.
func startProxiedEmulator(t *testing.T) *proxiedEmulator {
	t.Helper()
	caFile, certFile, keyFile := serverCertificateFiles(t, proxiedHost)
	proc, ready, err := startEmulator("--tls-cert", certFile, "--tls-key", keyFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proc.stop)
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(ready.Endpoint, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	p := &proxiedEmulator{readyLine: ready, adminBase: ready.Endpoint,
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
	p.Endpoint, p.CAFile = "https://"+net.JoinHostPort(proxiedHost, port), caFile
	return p
}

func (p *proxiedEmulator) admin(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	out, err := adminAt(p.adminBase, p.http, p.AdminToken, method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (p *proxiedEmulator) config() fleets.Config {
	return fleets.Config{Endpoint: p.Endpoint, APIKey: p.APIKey, APISecret: p.APISecret, CAFile: p.CAFile}
}

func (p *proxiedEmulator) requests(t *testing.T) int {
	t.Helper()
	return int(p.admin(t, "GET", "/stats", nil)["total"].(float64))
}

// connectProxy is a minimal HTTP CONNECT proxy with optional Basic authentication, for
// ProxyURL. It resolves the target itself, as real proxies do.
type connectProxy struct {
	addr     string
	connects atomic.Int64 // CONNECT requests received
	tunnels  atomic.Int64 // CONNECT requests authenticated and tunneled

	mu      sync.Mutex
	targets []string
	conns   []net.Conn
}

// startConnectProxy starts a proxy asking for user:password ("" user: no authentication).
func startConnectProxy(t *testing.T, user, password string) *connectProxy {
	t.Helper()
	p := &connectProxy{}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
	track := func(c net.Conn) {
		p.mu.Lock()
		p.conns = append(p.conns, c)
		p.mu.Unlock()
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		p.connects.Add(1)
		p.mu.Lock()
		p.targets = append(p.targets, r.Host)
		p.mu.Unlock()
		if user != "" && r.Header.Get("Proxy-Authorization") != want {
			w.Header().Set("Proxy-Authenticate", `Basic realm="test"`)
			http.Error(w, "proxy authentication required", http.StatusProxyAuthRequired)
			return
		}
		target := r.Host
		if host, port, err := net.SplitHostPort(target); err == nil && host == proxiedHost {
			target = net.JoinHostPort("127.0.0.1", port)
		}
		upstream, err := net.Dial("tcp", target)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		track(upstream)
		conn, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			upstream.Close()
			return
		}
		track(conn)
		p.tunnels.Add(1)
		if _, err := conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
			conn.Close()
			upstream.Close()
			return
		}
		go func() { _, _ = io.Copy(upstream, rw.Reader); upstream.Close() }()
		go func() { _, _ = io.Copy(conn, upstream); conn.Close() }()
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

func (p *connectProxy) targetList() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...)
}

// TestProxy: ProxyURL tunnels through an HTTP CONNECT proxy with Basic authentication; the
// password shows neither in errors nor in the printed Config.
func TestProxy(t *testing.T) {
	pe := startProxiedEmulator(t)
	const password = "pr0xy-pa55word-must-not-leak"
	p := startConnectProxy(t, "device", password)
	cfg := pe.config()
	cfg.ProxyURL = "http://device:" + password + "@" + p.addr
	c, err := fleets.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const thing = "proxied-001"
	pe.admin(t, "PUT", "/things/"+thing, nil)
	for i := 0; i < 3; i++ {
		if _, err := c.ShadowReport(thing, map[string]any{"i": i}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.tunnels.Load(); n != 1 {
		t.Errorf("%d tunnels for 3 calls, want 1 (keep-alive through the proxy)", n)
	}
	if targets := p.targetList(); len(targets) != 1 || "https://"+targets[0] != pe.Endpoint {
		t.Errorf("CONNECT %v, endpoint %s", targets, pe.Endpoint)
	}
	if n := pe.requests(t); n != 3 {
		t.Errorf("the emulator saw %d requests, want 3", n)
	}
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), cfg.String()} {
		if strings.Contains(s, password) {
			t.Errorf("Config prints the proxy password: %s", s)
		}
		mustContain(t, "Config", s, "http://device:REDACTED@"+p.addr)
	}

	t.Run("wrong proxy password", func(t *testing.T) {
		const wrong = "wr0ng-pa55word-must-not-leak"
		cfg := pe.config()
		cfg.ProxyURL = "http://device:" + wrong + "@" + p.addr
		cfg.Retry = &fleets.RetryPolicy{MaxAttempts: 1}
		c, err := fleets.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		before := p.connects.Load()
		_, err = c.ShadowGet(thing)
		var fe *fleets.Error
		if !errors.As(err, &fe) {
			t.Fatalf("call through a proxy refusing the credentials: err = %v", err)
		}
		if strings.Contains(fmt.Sprintf("%v %+v %#v", err, err, cfg), wrong) {
			t.Errorf("the proxy password leaks: %v", err)
		}
		if p.connects.Load() == before {
			t.Error("the proxy was not asked")
		}
		if fe.RequestSent() {
			t.Errorf("RequestSent() for a tunnel the proxy refused: %v", err)
		}
		t.Logf("407 from the proxy: %v", err)
	})
	t.Run("proxy down", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		cfg := pe.config()
		cfg.ProxyURL = "http://device:" + password + "@" + addr
		cfg.Retry = &fleets.RetryPolicy{MaxAttempts: 1}
		c, err := fleets.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.ShadowGet(thing)
		if !errors.Is(err, fleets.ErrConnect) {
			t.Errorf("err = %v, want ErrConnect", err)
		}
		if err != nil && strings.Contains(err.Error(), password) {
			t.Errorf("the proxy password leaks: %v", err)
		}
	})
	if n := pe.requests(t); n != 3 {
		t.Errorf("the emulator saw %d requests, want still 3", n)
	}
}

// TestProxyFromEnv: NewClientFromEnv takes the proxy from HTTPS_PROXY unless NO_PROXY names
// the endpoint's host.
func TestProxyFromEnv(t *testing.T) {
	pe := startProxiedEmulator(t)
	p := startConnectProxy(t, "", "")
	const thing = "proxied-env"
	pe.admin(t, "PUT", "/things/"+thing, nil)
	t.Setenv("FLEETS_ENDPOINT", pe.Endpoint)
	t.Setenv("FLEETS_CA_FILE", pe.CAFile)
	t.Setenv("HTTPS_PROXY", "http://"+p.addr)
	t.Setenv("https_proxy", "")
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	c, err := fleets.NewClientFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ShadowGet(thing); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if n := p.connects.Load(); n != 1 {
		t.Fatalf("%d CONNECTs, want 1", n)
	}
	// NO_PROXY names the host: the client goes direct, and cannot resolve the name itself.
	t.Setenv("NO_PROXY", "localhost,"+proxiedHost)
	c, err = fleets.NewClientFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ShadowGet(thing); !errors.Is(err, fleets.ErrConnect) {
		t.Errorf("direct to %s: err = %v, want ErrConnect (the name resolves only at the proxy)", proxiedHost, err)
	}
	if n := p.connects.Load(); n != 1 {
		t.Errorf("%d CONNECTs with NO_PROXY naming the host, want still 1", n)
	}
}

// TestLoopbackEndpointNeverUsesProxy: a loopback endpoint goes direct whatever proxy is
// configured (ProxyURL or HTTPS_PROXY), as with curl's default NO_PROXY: the proxy would
// resolve 127.0.0.1 on its own host.
func TestLoopbackEndpointNeverUsesProxy(t *testing.T) {
	p := startConnectProxy(t, "", "")
	thing := newThing(t, "loopback")
	before := requestCount(t)
	cfg := config()
	cfg.ProxyURL = "http://" + p.addr
	c, err := fleets.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ShadowReport(thing, map[string]any{"t": 1}, nil); err != nil {
		t.Fatal(err)
	}
	// A proxy that is not even there changes nothing either.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	cfg.ProxyURL, cfg.Retry = "http://"+dead, &fleets.RetryPolicy{MaxAttempts: 1}
	direct, err := fleets.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	if _, err := direct.ShadowGet(thing); err != nil {
		t.Fatalf("loopback endpoint with a dead proxy: %v", err)
	}
	t.Setenv("HTTPS_PROXY", "http://"+p.addr)
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	fromEnv, err := fleets.NewClientFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	defer fromEnv.Close()
	if _, err := fromEnv.ShadowGet(thing); err != nil {
		t.Fatal(err)
	}
	if n := p.connects.Load(); n != 0 {
		t.Errorf("the proxy got %d CONNECTs (%v) for a loopback endpoint, want 0", n, p.targetList())
	}
	if n := requestCount(t) - before; n != 3 {
		t.Errorf("the emulator saw %d requests, want 3", n)
	}
}
