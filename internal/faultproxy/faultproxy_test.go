package faultproxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

// startAlwaysFailing is a proxy failing every request it may, in front
// of a server that answers "ok", and a client that never sends a request
// again by itself (net/http would, after a drop on a reused connection).
func startAlwaysFailing(t *testing.T) (*Proxy, func(method, path string) bool) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	t.Cleanup(backend.Close)
	p := Start(t, strings.TrimPrefix(backend.URL, "http://"), 1, 7)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	ok := func(method, path string) bool {
		req, err := http.NewRequest(method, "http://"+p.Host+path, nil)
		assert.NilError(t, err)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return err == nil && resp.StatusCode == http.StatusOK && string(body) == "ok"
	}
	return p, ok
}

// A proxy failing every request still answers each one by its
// (MaxFaults+1)th try, and fails it before that.
func TestFaultsBounded(t *testing.T) {
	p, ok := startAlwaysFailing(t)
	failedFirst := 0
	for i := range 20 {
		path := fmt.Sprintf("/v2/r/blobs/sha256:%d", i)
		tries := 1
		for ; !ok(http.MethodGet, path); tries++ {
			assert.Assert(t, tries <= MaxFaults, "%s failed %d times in a row", path, tries)
		}
		if tries > 1 {
			failedFirst++
		}
	}
	// Only a stall (1 in 7 faults) lets a first try through.
	assert.Assert(t, failedFirst >= 10, "only %d of 20 requests failed their first try: %s", failedFirst, p.Report())
}

// Two clients trying one request by turns are failed MaxFaults times in
// all, not each.
func TestFaultsBoundedAcrossClients(t *testing.T) {
	_, ok := startAlwaysFailing(t)
	failed := 0
	for range 2 * (MaxFaults + 1) {
		if !ok(http.MethodPost, "/v2/r/blobs/uploads/") {
			failed++
		}
	}
	assert.Assert(t, failed <= MaxFaults, "one request failed %d times", failed)
}
