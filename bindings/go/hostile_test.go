package fleets_test

// Hostile values and hostile servers: credentials never shown (hostile passwords, a 3-byte
// secret, a server echoing the Authorization header), control characters out of messages,
// and JSON that is too deep, too big or not UTF-8 giving the documented *fleets.Error.

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	fleets "example.invalid/libfleets/bindings/go"
)

// hostileServer is a local HTTPS server answering every request with what the test set:
// for the responses the emulator cannot send. libfleets verifies its certificate (CAFile).
type hostileServer struct {
	*httptest.Server
	caFile string

	mu       sync.Mutex
	status   int
	body     []byte
	header   http.Header
	requests []http.Header
}

func newHostileServer(t *testing.T) *hostileServer {
	t.Helper()
	caFile, cert := serverCertificate(t)
	s := &hostileServer{caFile: caFile, status: 200, body: []byte("{}")}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.Header.Clone())
		status, body, header := s.status, s.body, s.header
		s.mu.Unlock()
		for k, v := range header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *hostileServer) respond(status int, body []byte, header http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body, s.header, s.requests = status, body, header, nil
}

func (s *hostileServer) requestHeaders() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]http.Header(nil), s.requests...)
}

func (s *hostileServer) config(key, secret string) fleets.Config {
	return fleets.Config{Endpoint: s.URL, APIKey: key, APISecret: secret, CAFile: s.caFile,
		Retry: &fleets.RetryPolicy{MaxAttempts: 1}}
}

func (s *hostileServer) client(t *testing.T, key, secret string) *fleets.Client {
	t.Helper()
	c, err := fleets.NewClient(s.config(key, secret))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// hostileChars break naive URL redaction, or are control characters.
var hostileChars = []string{"/", "@", ":", "%", "%41", "%zz", "#", "?", "/@:%#?", "\r", "\n", "\x1b", "\x00", "\x01", "\t", "\x7f", "\u009b"}

// controlChars matches C0, DEL and C1 control characters.
var controlChars = regexp.MustCompile(`[\x00-\x1f\x7f\x{80}-\x{9f}]`)

// shown is everything fmt shows of the values: %v, %+v, %#v and %s.
func shown(values ...any) string {
	var b strings.Builder
	for _, v := range values {
		fmt.Fprintf(&b, "%v|%+v|%#v|%s|", v, v, v, v)
	}
	return b.String()
}

// shownConstructing is what is shown of cfg and of the client NewClient makes of it (or of
// the error it returns).
func shownConstructing(cfg fleets.Config) string {
	text := shown(cfg, &cfg)
	c, err := fleets.NewClient(cfg)
	if err != nil {
		return text + shown(err)
	}
	defer c.Close()
	return text + shown(c)
}

func TestHostileProxyPasswordNeverShown(t *testing.T) {
	srv := newHostileServer(t)
	for _, ch := range hostileChars {
		t.Run(fmt.Sprintf("%q", ch), func(t *testing.T) {
			cfg := srv.config("ak", "sk-secret")
			cfg.ProxyURL = "http://dev:Pw1" + ch + "Pw2@127.0.0.1:3128"
			text := shownConstructing(cfg)
			if strings.Contains(text, "Pw1") || strings.Contains(text, "Pw2") {
				t.Errorf("the proxy password shows: %s", text)
			}
			if controlChars.MatchString(text) {
				t.Errorf("control character shown: %q", text)
			}
		})
	}
}

func TestHostileEndpointPasswordNeverShown(t *testing.T) {
	srv := newHostileServer(t)
	host := strings.TrimPrefix(srv.URL, "https://")
	for _, ch := range hostileChars {
		t.Run(fmt.Sprintf("%q", ch), func(t *testing.T) {
			cfg := srv.config("ak", "sk-secret")
			cfg.Endpoint = "https://ak:Pw1" + ch + "Pw2@" + host
			text := shownConstructing(cfg)
			if strings.Contains(text, "Pw1") || strings.Contains(text, "Pw2") {
				t.Errorf("the endpoint password shows: %s", text)
			}
			if controlChars.MatchString(text) {
				t.Errorf("control character shown: %q", text)
			}
		})
	}
}

func TestHostileSecretEchoedByServerNotShown(t *testing.T) {
	srv := newHostileServer(t)
	const key = "ak_echo"
	for _, secret := range []string{"q7Z", "s3cr3t/with@every:%#?char", "long-" + strings.Repeat("x", 200)} {
		t.Run(secret[:3], func(t *testing.T) {
			basic := base64.StdEncoding.EncodeToString([]byte(key + ":" + secret))
			body, _ := json.Marshal(map[string]string{"code": "Unauthorized", "message": "bad secret " + secret + "; got Basic " + basic})
			srv.respond(401, body, nil)
			cfg := srv.config(key, secret)
			c := srv.client(t, key, secret)
			_, err := c.ShadowGet("thermostat-001")
			if !errors.Is(err, fleets.ErrUnauthorized) {
				t.Fatalf("err = %v, want ErrUnauthorized", err)
			}
			if got := srv.requestHeaders()[0].Get("Authorization"); got != "Basic "+basic {
				t.Fatalf("Authorization = %q, want Basic %s", got, basic)
			}
			text := shown(err, c, cfg, &cfg)
			for _, leak := range []string{secret, basic, strings.TrimRight(basic, "=")} {
				if strings.Contains(text, leak) {
					t.Errorf("%q shows: %s", leak, text)
				}
			}
			// libfleets redacts the secret and base64(key:secret) wherever they appear,
			// whatever their length, in the message and in the error body alike.
			var fe *fleets.Error
			errors.As(err, &fe)
			if want := "HTTP 401 from server: Unauthorized: bad secret <redacted>; got Basic <redacted>"; fe.Message != want {
				t.Errorf("Message = %q, want %q", fe.Message, want)
			}
			if bytes.Contains(fe.Body, []byte(secret)) || bytes.Contains(fe.Body, []byte(basic)) {
				t.Errorf("Body = %q shows the secret", fe.Body)
			}
			if want := `{"code":"Unauthorized","message":"bad secret <redacted>; got Basic <redacted>"}`; string(fe.Body) != want {
				t.Errorf("Body = %s, want %s", fe.Body, want)
			}
		})
	}
}

func TestHostileShortSecretRedactedEvenInsideWord(t *testing.T) {
	// libfleets' rule: every occurrence, whatever its length; hiding a few letters of
	// "Unauthorized" is the price of never showing the secret.
	srv := newHostileServer(t)
	srv.respond(401, []byte(`{"code":"Unauthorized","message":"Unauthorized (aut)"}`), nil)
	_, err := srv.client(t, "ak", "aut").ShadowGet("thermostat-001")
	var fe *fleets.Error
	if !errors.As(err, &fe) || fe.Message != "HTTP 401 from server: Un<redacted>horized: Un<redacted>horized (<redacted>)" {
		t.Errorf("err = %v", err)
	}
	if fe != nil && bytes.Contains(fe.Body, []byte("aut")) {
		t.Errorf("Body = %s", fe.Body)
	}
}

func TestHostileSecretOf3BytesNotPrinted(t *testing.T) {
	srv := newHostileServer(t)
	cfg := srv.config("ak", "q7Z")
	c := srv.client(t, "ak", "q7Z")
	if _, err := c.ShadowGet("thermostat-001"); err != nil {
		t.Fatal(err)
	}
	if text := shown(cfg, &cfg, c); strings.Contains(text, "q7Z") {
		t.Errorf("the secret shows: %s", text)
	}
	c.Close()
	if text := shown(c); strings.Contains(text, "q7Z") || !strings.Contains(text, "closed") {
		t.Errorf("closed client prints as %s", text)
	}
}

func TestHostileServerTextControlCharacters(t *testing.T) {
	srv := newHostileServer(t)
	evil := "line1\r\nFAKE: injected\x00\x07\x1b[2J\x1b]0;title\x07\x7f\u009b31m\tend"
	body, _ := json.Marshal(map[string]string{"code": "NotFound\x1b[31m", "message": evil})
	srv.respond(404, body, nil)
	_, err := srv.client(t, "ak", "sk-secret").ShadowGet("thermostat-001")
	if !errors.Is(err, fleets.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if text := shown(err); controlChars.MatchString(text) {
		t.Errorf("control characters in %q", text)
	}
	// (the C message ends at the NUL)
	mustContain(t, "Error()", err.Error(), `NotFound\x1b[31m: line1\x0d\x0aFAKE: injected`)
}

func nested(open, middle, close string, depth int) []byte {
	return []byte(strings.Repeat(open, depth) + middle + strings.Repeat(close, depth))
}

// TestHostileBad2xxBody: every 2xx body that libfleets or encoding/json refuses is a
// *fleets.Error with CodeBadResponse, a short message without control characters, and
// HTTPStatus 200; nothing panics or hangs.
func TestHostileBad2xxBody(t *testing.T) {
	srv := newHostileServer(t)
	c := srv.client(t, "ak", "sk-secret")
	type call func() error
	calls := map[string]call{
		"ShadowReport": func() error { _, err := c.ShadowReport("t", map[string]any{"a": 1}, nil); return err },
		"ShadowGet":    func() error { _, err := c.ShadowGet("t"); return err },
		"JobsGetPending": func() error {
			_, err := c.JobsGetPending("t", nil)
			return err
		},
		"JobsStartNext": func() error { _, err := c.JobsStartNext("t", nil); return err },
		"JobsDescribe":  func() error { _, err := c.JobsDescribe("t", "j", nil); return err },
		"JobsUpdate": func() error {
			_, err := c.JobsUpdate("t", "j", fleets.ExecutionSucceeded, nil)
			return err
		},
	}
	all := []string{"ShadowReport", "ShadowGet", "JobsGetPending", "JobsStartNext", "JobsDescribe", "JobsUpdate"}
	decoded := all[1:]
	for _, tc := range []struct {
		name     string
		body     []byte
		mustFail []string // calls that must fail with CodeBadResponse; others may succeed
		mustPass []string
	}{
		// Refused by libfleets (not JSON, not UTF-8): every call.
		{"trailing garbage", []byte(`{"version":1} x`), all, nil},
		{"not UTF-8", []byte("{\"reported\":{\"s\":\"\xff\xfe\"}}"), all, nil},
		{"encoded surrogate", []byte("{\"reported\":{\"s\":\"\xed\xa0\x80\"}}"), all, nil},
		{"byte-order mark", []byte("\xef\xbb\xbf{}"), all, nil},
		{"unclosed 5000", []byte(strings.Repeat("[", 5000)), all, nil},
		// Valid JSON that the typed results cannot hold.
		{"arrays 5000", nested("[", "", "]", 5000), decoded, []string{"ShadowReport"}},
		{"member 20000 (over encoding/json's 10000)", append(append([]byte(`{"reported":`), nested(`{"a":`, "1", "}", 20000)...), '}'), decoded, []string{"ShadowReport"}},
		{"version of 5001 digits", []byte(`{"version":1` + strings.Repeat("0", 5000) + `}`), []string{"ShadowGet"}, []string{"ShadowReport"}},
		{"version of 100000 digits", []byte(`{"version":-` + strings.Repeat("9", 100000) + `}`), []string{"ShadowGet"}, []string{"ShadowReport"}},
		{"float overflow", []byte(`{"reported":{"t":1e999999}}`), []string{"ShadowGet"}, []string{"ShadowReport"}},
		{"updatedAt 1e300", []byte(`{"updatedAt":1e300}`), []string{"ShadowGet"}, nil},
		{"updatedAt of 400 digits", []byte(`{"updatedAt":` + strings.Repeat("9", 400) + `}`), []string{"ShadowGet"}, nil},
		{"queuedAt -1e19", []byte(`{"queuedJobs":[{"jobId":"j","queuedAt":-1e19}]}`), []string{"JobsGetPending"}, nil},
		{"timeout 1e300 s", []byte(`{"execution":{"jobId":"j","approximateSecondsBeforeTimedOut":1e300}}`), []string{"JobsStartNext", "JobsDescribe"}, nil},
		{"timestamp with control characters", []byte("{\"updatedAt\":\"2020\\u001b[2J\\r\\n\"}"), []string{"ShadowGet"}, nil},
		// Deep but representable.
		{"reported 5000", append(append([]byte(`{"reported":`), nested(`{"a":`, "1", "}", 5000)...), '}'), nil, []string{"ShadowReport", "ShadowGet", "JobsGetPending"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.respond(200, tc.body, nil)
			for _, name := range all {
				err := calls[name]()
				must := func(list []string) bool {
					for _, n := range list {
						if n == name {
							return true
						}
					}
					return false
				}
				if err == nil {
					if must(tc.mustFail) {
						t.Errorf("%s succeeded, want ErrBadResponse", name)
					}
					continue
				}
				var fe *fleets.Error
				if !errors.As(err, &fe) || fe.Code != fleets.CodeBadResponse || !errors.Is(err, fleets.ErrBadResponse) {
					t.Errorf("%s: err = %#v, want *fleets.Error with CodeBadResponse", name, err)
					continue
				}
				if must(tc.mustPass) {
					t.Errorf("%s: err = %v, want success", name, err)
				}
				if fe.HTTPStatus != 200 {
					t.Errorf("%s: HTTPStatus = %d, want 200", name, fe.HTTPStatus)
				}
				if len(fe.Error()) > 2000 || controlChars.MatchString(fe.Error()) {
					t.Errorf("%s: message of %d bytes: %.300q", name, len(fe.Error()), fe.Error())
				}
			}
		})
	}
}

func TestHostileDeepErrorBody(t *testing.T) {
	srv := newHostileServer(t)
	body := nested(`{"a":`, "1", "}", 5000)
	srv.respond(400, body, nil)
	_, err := srv.client(t, "ak", "sk-secret").ShadowGet("t")
	var fe *fleets.Error
	if !errors.As(err, &fe) || fe.Code != fleets.CodeBadRequest || !bytes.Equal(fe.Body, body) {
		t.Fatalf("err = %#v", err)
	}
	if s := fmt.Sprintf("%#v", err); strings.Contains(s, `{"a":{"a"`) || !strings.Contains(s, fmt.Sprintf("Body:(%d bytes)", len(body))) {
		t.Errorf("%%#v shows the body: %.200s", s)
	}
}

// TestHostileBadCallerJSON: caller values that are not a JSON object libfleets accepts are
// ErrInvalidJSON (or ErrInvalidArgument), and nothing is sent.
func TestHostileBadCallerJSON(t *testing.T) {
	srv := newHostileServer(t)
	c := srv.client(t, "ak", "sk-secret")
	cycle := map[string]any{}
	cycle["self"] = cycle
	for name, v := range map[string]any{
		"cycle":         cycle,
		"+Inf":          map[string]any{"n": math.Inf(1)},
		"NaN":           map[string]any{"n": math.NaN()},
		"channel":       map[string]any{"c": make(chan int)},
		"raw unclosed":  json.RawMessage(`{"a":`),
		"raw array":     json.RawMessage(`[1]`),
		"raw not UTF-8": json.RawMessage("{\"a\":\"\xff\"}"),
		"raw surrogate": json.RawMessage(`{"a":"\ud800"}`),
		"raw deep 5000": json.RawMessage(nested("[", "", "]", 5000)), // not an object
	} {
		t.Run(name, func(t *testing.T) {
			srv.respond(200, []byte("{}"), nil)
			for call, f := range map[string]func() error{
				"ShadowReport": func() error { _, err := c.ShadowReport("t", v, nil); return err },
				"EventPublish": func() error { _, err := c.EventPublish("t", "e", v, nil); return err },
				"CommandRespond": func() error {
					_, err := c.CommandRespond("t", "x1", fleets.ExecutionSucceeded, v, nil)
					return err
				},
				"JobsStartNext": func() error {
					_, err := c.JobsStartNext("t", &fleets.JobsStartNextOptions{StatusDetails: v})
					return err
				},
				"JobsUpdate": func() error {
					_, err := c.JobsUpdate("t", "j", fleets.ExecutionSucceeded, &fleets.JobsUpdateOptions{StatusDetails: v})
					return err
				},
			} {
				err := f()
				if !errors.Is(err, fleets.ErrInvalidJSON) && !errors.Is(err, fleets.ErrInvalidArgument) {
					t.Errorf("%s: err = %v, want ErrInvalidJSON", call, err)
				}
			}
			if n := len(srv.requestHeaders()); n != 0 {
				t.Errorf("%d requests sent", n)
			}
		})
	}
}

// TestHostileBigValidCallerJSON: deep or long-numbered, but valid, JSON is sent.
func TestHostileBigValidCallerJSON(t *testing.T) {
	srv := newHostileServer(t)
	c := srv.client(t, "ak", "sk-secret")
	nest := func(levels int) map[string]any {
		deep := map[string]any{}
		for i := 1; i < levels; i++ {
			deep = map[string]any{"a": deep}
		}
		return deep
	}
	huge := new(big.Int).Exp(big.NewInt(10), big.NewInt(400), nil)
	// Over 100 levels the core refuses the object before sending (the server would too).
	srv.respond(200, []byte("{}"), nil)
	if _, err := c.ShadowReport("t", nest(5000), nil); !errors.Is(err, fleets.ErrInvalidJSON) {
		t.Errorf("depth 5000: %v, want ErrInvalidJSON", err)
	}
	if n := len(srv.requestHeaders()); n != 0 {
		t.Errorf("depth 5000: %d requests sent", n)
	}
	for name, v := range map[string]any{
		"depth 99":              nest(99),
		"integer of 401 digits": map[string]any{"n": huge},
		"raw exponent overflow": json.RawMessage(`{"n":1e999999}`), // valid JSON; the server decides
	} {
		srv.respond(200, []byte("{}"), nil)
		if _, err := c.ShadowReport("t", v, nil); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if n := len(srv.requestHeaders()); n != 1 {
			t.Errorf("%s: %d requests sent", name, n)
		}
	}
}
