package fleets_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	fleets "example.invalid/libfleets/bindings/go"
)

// A device reports its state, reads its shadow and tells a missing thing apart from other
// failures. The configuration comes from FLEETS_ENDPOINT, FLEETS_API_KEY, FLEETS_API_SECRET
// and FLEETS_CA_FILE (set by this package's tests for a local fleets-emulator).
func Example() {
	c, err := fleets.NewClientFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if _, err := c.ShadowReport("thermostat-001", map[string]any{"temperature": 21.5}, nil); err != nil {
		log.Fatal(err)
	}
	shadow, err := c.ShadowGet("thermostat-001")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("reported temperature:", shadow.Reported["temperature"])
	for key, want := range shadow.Delta {
		fmt.Println("to apply:", key, want)
	}

	_, err = c.ShadowGet("thermostat-999")
	var fe *fleets.Error
	if errors.As(err, &fe) {
		fmt.Println("not found:", errors.Is(err, fleets.ErrNotFound), fe.HTTPStatus)
	}
	// Output:
	// reported temperature: 21.5
	// not found: true 404
}

// A device polls for jobs over HTTPS: it starts the next pending job, does the work and
// reports the outcome, guarding the update with the execution's version.
func ExampleClient_JobsStartNext() {
	c, err := fleets.NewClient(fleets.Config{
		Endpoint:  "https://fleets.example.com",
		APIKey:    "ak_yourApiKey",
		APISecret: "your-api-secret",
		Timeout:   15 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for {
		next, err := c.JobsStartNext("thermostat-001", &fleets.JobsStartNextOptions{StepTimeout: 10 * time.Minute})
		if err != nil {
			log.Fatal(err)
		}
		if next.Execution == nil {
			return // nothing pending
		}
		var doc struct {
			Operation string `json:"operation"`
			Version   string `json:"version"`
		}
		status, details := fleets.ExecutionRejected, map[string]any{"reason": "unreadable job document"}
		if err := json.Unmarshal(next.Execution.JobDocument, &doc); err == nil {
			// ... install doc.Version ...
			status, details = fleets.ExecutionSucceeded, map[string]any{"installedVersion": doc.Version}
		}
		_, err = c.JobsUpdate("thermostat-001", next.Execution.JobID, status, &fleets.JobsUpdateOptions{
			StatusDetails:   details,
			ExpectedVersion: uint64(next.Execution.VersionNumber),
		})
		if errors.Is(err, fleets.ErrConflict) {
			continue // changed meanwhile (e.g. canceled): look again
		}
		if err != nil {
			log.Fatal(err)
		}
	}
}

// Errors carry the result code, the HTTP status and the server's body; errors.Is matches
// the kind of failure.
func ExampleError() {
	var c *fleets.Client // a client from NewClient
	_, err := c.ShadowReport("thermostat-001", map[string]any{"temperature": 22}, &fleets.ReportOptions{Version: 5})
	switch {
	case errors.Is(err, fleets.ErrConflict):
		// someone else updated the shadow: read it again and retry
	case errors.Is(err, fleets.ErrUnauthorized):
		log.Fatal("check the API key and secret")
	case err != nil:
		var fe *fleets.Error
		if errors.As(err, &fe) && fe.Temporary() {
			// connection problem, 429 or 5xx: retry later, after fe.RetryAfter when set
		}
		if errors.As(err, &fe) && !fe.RequestSent() {
			// the server never saw it (no connection, TLS failure): sending it again is safe
		}
	}
}

// libfleets logs nothing by default. SetLogger routes its messages to log/slog: here
// retries, new connections and failed calls (slog.LevelInfo and above) to stderr.
func ExampleSetLogger() {
	fleets.SetLogger(slog.New(slog.NewTextHandler(os.Stderr, nil)), slog.LevelInfo)
	defer fleets.SetLogger(nil, 0) // off again
	// level=INFO msg="connected to 203.0.113.7:443 in 41.2 ms"
	// level=INFO msg="GET /api/v1/thing-datas/thermostat-001/shadow: FLEETS_ERR_SERVER: HTTP 503 ...; attempt 2 in 173 ms"
}

// The client's counters, e.g. for a status page.
func ExampleClient_Stats() {
	c, err := fleets.NewClientFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 3; i++ {
		if _, err := c.ShadowReport("thermostat-001", map[string]any{"uptime": i}, nil); err != nil {
			log.Fatal(err)
		}
	}
	s := c.Stats()
	fmt.Printf("%d calls, %d requests, %d connection(s), %d failures\n", s.Calls, s.Requests, s.Connections, s.Failures)
	// Output:
	// 3 calls, 3 requests, 1 connection(s), 0 failures
}
