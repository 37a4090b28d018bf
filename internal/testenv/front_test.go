package testenv

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"gotest.tools/v3/assert"
)

// TestFront: the hook answers the requests it takes, the proxy forwards
// the others to upstream, and a nil hook forwards everything.
func TestFront(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream "+r.URL.Path)
	}))
	defer upstream.Close()
	host := upstream.Listener.Addr().String()
	refusing := Front(t, host, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/refused" {
			return false
		}
		RegistryError(w, http.StatusForbidden, "DENIED", `no "tags" here`)
		return true
	})

	status, header, body := fetchFront(t, "http://"+refusing+"/refused")
	assert.Equal(t, status, http.StatusForbidden)
	assert.Equal(t, header.Get("Content-Type"), "application/json")
	var e struct {
		Errors []struct{ Code, Message string }
	}
	assert.NilError(t, json.Unmarshal([]byte(body), &e), body)
	assert.Equal(t, len(e.Errors), 1, body)
	assert.Equal(t, e.Errors[0].Code, "DENIED")
	assert.Equal(t, e.Errors[0].Message, `no "tags" here`)

	status, _, body = fetchFront(t, "http://"+refusing+"/v2/")
	assert.Equal(t, status, http.StatusOK)
	assert.Equal(t, body, "upstream /v2/")

	status, _, body = fetchFront(t, "http://"+Front(t, host, nil)+"/refused")
	assert.Equal(t, status, http.StatusOK)
	assert.Equal(t, body, "upstream /refused")
}

func fetchFront(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	assert.NilError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	assert.NilError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}
