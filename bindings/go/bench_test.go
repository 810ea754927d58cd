package fleets_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"runtime"
	"testing"

	fleets "example.invalid/libfleets/bindings/go"
)

// The reported state both benchmarks send, pre-encoded so only the client is measured.
var benchReported = json.RawMessage(`{"temperature":21.5,"humidity":58,"firmware":"2.0.0","uptime":123456}`)

// BenchmarkShadowReport compares ShadowReport through libfleets with Go's net/http posting
// the same body to the same emulator: one shared keep-alive Transport verifying the same CA,
// with as many idle connections per host as libfleets pools (16), reading the whole body.
//
//	go test -run '^$' -bench ShadowReport -benchtime 3s
func BenchmarkShadowReport(b *testing.B) {
	c, err := fleets.NewClient(config())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	thing := newThing(b, "bench")
	body, err := json.Marshal(map[string]any{"thingName": thing, "state": map[string]any{"reported": benchReported}})
	if err != nil {
		b.Fatal(err)
	}
	pem, err := os.ReadFile(emu.CAFile)
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 16}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	url := emu.Endpoint + "/api/v1/thing-datas/shadow/reported"
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(emu.APIKey+":"+emu.APISecret))

	viaLibfleets := func(b *testing.B) {
		if _, err := c.ShadowReport(thing, benchReported, nil); err != nil {
			b.Fatal(err)
		}
	}
	viaNetHTTP := func(b *testing.B) {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("HTTP %d, %v", resp.StatusCode, err)
		}
	}
	for _, impl := range []struct {
		name string
		call func(*testing.B)
	}{{"libfleets", viaLibfleets}, {"net-http", viaNetHTTP}} {
		b.Run(impl.name+"/serial", func(b *testing.B) {
			impl.call(b) // warm up: connect outside the measurement
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				impl.call(b)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
		b.Run(impl.name+"/8-goroutines", func(b *testing.B) {
			b.SetParallelism((8 + testingProcs() - 1) / testingProcs())
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					impl.call(b)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }

// BenchmarkJSONArg: the cost of turning a reported object into the C argument (issue 16:
// run with -benchmem; one allocation for the encoded document and its terminator).
func BenchmarkJSONArg(b *testing.B) {
	state := map[string]any{"temperature": 21.5, "humidity": 58, "firmware": "2.0.0", "uptime": 123456}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := fleets.JSONArg("reported", state, true); err != nil {
			b.Fatal(err)
		}
	}
}
