package fleets_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	fleets "example.invalid/libfleets/bindings/go"
)

// readyLine is what fleets-emulator prints on stdout once it serves.
type readyLine struct {
	Event      string `json:"event"`
	Endpoint   string `json:"endpoint"`
	CAFile     string `json:"ca_file"`
	APIKey     string `json:"api_key"`
	APISecret  string `json:"api_secret"`
	AdminToken string `json:"admin_token"`
}

// emu describes the fleets-emulator started by TestMain.
var emu struct {
	readyLine
	http *http.Client // trusts the emulator's CA; used for the admin API
}

// emulatorProcess is a running fleets-emulator.
type emulatorProcess struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
}

// startEmulator starts fleets-emulator on a free loopback port with extra arguments and
// waits for its ready line.
func startEmulator(extra ...string) (*emulatorProcess, readyLine, error) {
	var ready readyLine
	bin, err := emulatorPath()
	if err != nil {
		return nil, ready, err
	}
	p := &emulatorProcess{}
	p.cmd = exec.Command(bin, append([]string{"--listen", "127.0.0.1:0", "--max-body-bytes", fmt.Sprint(maxBody)}, extra...)...)
	p.cmd.Stderr = &p.stderr
	p.cmd.SysProcAttr = sysProcAttr()
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, ready, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, ready, fmt.Errorf("starting fleets-emulator: %w", err)
	}
	done := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadBytes('\n')
		if err == nil {
			err = json.Unmarshal(line, &ready)
		}
		if err == nil && ready.Event != "ready" {
			err = fmt.Errorf("unexpected first line %q", line)
		}
		done <- err
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		err = fmt.Errorf("no ready line within 60 s")
	}
	if err != nil {
		p.stop()
		return nil, ready, fmt.Errorf("fleets-emulator: %v\n%s", err, p.stderr.String())
	}
	return p, ready, nil
}

// stop ends the emulator with SIGTERM (SIGKILL after 10 s).
func (p *emulatorProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// maxBody is the emulator's request body limit in these tests (the default is 256 KiB).
const maxBody = 4 << 20

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func emulatorPath() (string, error) {
	if p := os.Getenv("FLEETS_EMULATOR"); p != "" {
		return p, nil
	}
	target := os.Getenv("CARGO_TARGET_DIR")
	if target == "" {
		target = filepath.Join("..", "..", "target")
	}
	p := filepath.Join(target, "debug", "fleets-emulator")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("fleets-emulator not found at %s: run `cargo build -p fleets-emulator` "+
			"in the repository (or bindings/go/run_tests.sh), or set FLEETS_EMULATOR", p)
	}
	return p, nil
}

func run(m *testing.M) int {
	proc, ready, err := startEmulator()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer proc.stop()
	emu.readyLine = ready
	pem, err := os.ReadFile(emu.CAFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		fmt.Fprintln(os.Stderr, "no certificate in", emu.CAFile)
		return 1
	}
	emu.http = &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	// For NewClientFromEnv and the examples.
	os.Setenv("FLEETS_ENDPOINT", emu.Endpoint)
	os.Setenv("FLEETS_API_KEY", emu.APIKey)
	os.Setenv("FLEETS_API_SECRET", emu.APISecret)
	os.Setenv("FLEETS_CA_FILE", emu.CAFile)
	for _, name := range []string{"thermostat-001"} {
		if _, err := admin("PUT", "/things/"+name, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	code := m.Run()
	if code != 0 && proc.stderr.Len() > 0 {
		fmt.Fprintf(os.Stderr, "--- fleets-emulator stderr:\n%s", proc.stderr.String())
	}
	return code
}

// config is a Config for the emulator.
func config() fleets.Config {
	return fleets.Config{Endpoint: emu.Endpoint, APIKey: emu.APIKey, APISecret: emu.APISecret, CAFile: emu.CAFile}
}

func newClient(t testing.TB) *fleets.Client {
	t.Helper()
	c, err := fleets.NewClient(config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newClientNoRetry is newClient with retries disabled.
func newClientNoRetry(t testing.TB) *fleets.Client {
	t.Helper()
	cfg := config()
	cfg.Retry = &fleets.RetryPolicy{MaxAttempts: 1}
	c, err := fleets.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// generatedToken matches the client token libfleets generates when retries are on and the
// caller gives none.
var generatedToken = regexp.MustCompile(`^fleets-[0-9a-f]{16}$`)

var thingSeq atomic.Int64

// newThing registers a fresh thing and returns its name.
func newThing(t testing.TB, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), thingSeq.Add(1))
	mustAdmin(t, "PUT", "/things/"+name, nil)
	return name
}

// admin calls the emulator's admin API and returns the decoded JSON response.
func admin(method, path string, body any) (map[string]any, error) {
	return adminAt(emu.Endpoint, emu.http, emu.AdminToken, method, path, body)
}

// adminAt calls the admin API of the emulator at base (https://127.0.0.1:PORT).
func adminAt(base string, client *http.Client, token, method, path string, body any) (map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+"/admin/v1"+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("admin %s %s: HTTP %d: %s", method, path, resp.StatusCode, raw)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("admin %s %s: %v: %s", method, path, err, raw)
	}
	return out, nil
}

func mustAdmin(t testing.TB, method, path string, body any) map[string]any {
	t.Helper()
	out, err := admin(method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fault installs a fault rule and removes every rule when the test ends.
func fault(t *testing.T, rule map[string]any) {
	t.Helper()
	mustAdmin(t, "POST", "/faults", rule)
	t.Cleanup(func() { mustAdmin(t, "DELETE", "/faults", nil) })
}

// requestCount is the emulator's count of device-API requests so far.
func requestCount(t *testing.T) int {
	t.Helper()
	return int(mustAdmin(t, "GET", "/stats", nil)["total"].(float64))
}

func mustContain(t *testing.T, what, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%s = %q, want it to contain %q", what, s, sub)
	}
}
