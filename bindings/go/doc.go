// Package fleets is the Go binding of libfleets, the device SDK for the EMQX Fleets
// ThingDatas HTTPS API: report and read the device shadow, publish events, answer commands
// and take part in jobs, over HTTPS with keep-alive connection pooling.
//
// The package calls the libfleets C library through cgo, so it needs CGO_ENABLED=1, a C
// compiler, and libfleets installed where pkg-config finds it (fleets.pc); see the README
// for building against a source checkout instead.
//
// A [Client] is safe for concurrent use by many goroutines and should be shared: it owns a
// pool of keep-alive TLS connections. Close it when done:
//
//	c, err := fleets.NewClient(fleets.Config{
//		Endpoint:  "https://fleets.example.com",
//		APIKey:    "ak_...",
//		APISecret: secret,
//	})
//	if err != nil { ... }
//	defer c.Close()
//	_, err = c.ShadowReport("thermostat-001", map[string]any{"temperature": 21.5}, nil)
//
// Every failure is an [*Error] carrying the libfleets result code, the HTTP status and the
// response body; match the kind of failure with [errors.Is] and the sentinel errors
// ([ErrNotFound], [ErrConflict], [ErrTimeout], ...). No error message ever contains the API
// secret.
//
// Transient failures (connection failures, timeouts before a response, HTTP 429, 502, 503,
// 504) of the calls that are safe to repeat are retried with backoff by libfleets itself;
// see [RetryPolicy] and [Config.Retry]. EventPublish and CommandRespond are never repeated.
//
// Names follow the C API, noun first (fleets_shadow_report is ShadowReport,
// fleets_jobs_update is JobsUpdate), with the same parameters (thingName; JSON parameters
// take Go values); durations are time.Duration where C takes milliseconds. Nothing is logged
// unless [SetLogger] routes libfleets' messages to log/slog; [Client.Stats] returns the
// client's counters.
//
// Calls block until the response arrives or the request deadline ([Config.Timeout]) expires;
// they cannot be canceled midway, so there are no context.Context parameters: set the
// deadline in the Config instead.
package fleets
