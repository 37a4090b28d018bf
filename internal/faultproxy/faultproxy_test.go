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

// TestStreakBounded: a proxy failing every request still answers each
// one by its (MaxStreak+1)th try, and fails it before that.
func TestStreakBounded(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	t.Cleanup(backend.Close)
	p := Start(t, strings.TrimPrefix(backend.URL, "http://"), 1, 7)
	// No connection is reused: net/http would send a request again
	// itself after a drop on a reused one.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	failedFirst := 0
	for i := range 20 {
		url := fmt.Sprintf("http://%s/v2/r/blobs/sha256:%d", p.Host, i)
		tries := 0
		for {
			tries++
			assert.Assert(t, tries <= MaxStreak+1, "%s failed %d times in a row", url, tries)
			resp, err := client.Get(url)
			if err != nil {
				continue
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK && string(body) == "ok" {
				break
			}
		}
		if tries > 1 {
			failedFirst++
		}
	}
	// Only a stall (1 in 7 faults) lets a first try through.
	assert.Assert(t, failedFirst >= 10, "only %d of 20 requests failed their first try: %s", failedFirst, p.Report())
}
