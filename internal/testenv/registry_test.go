//go:build integration

package testenv

import (
	"net/http"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

func get(t *testing.T, url, user, password string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	assert.NilError(t, err)
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	assert.NilError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func TestStartRegistry(t *testing.T) {
	var host string
	t.Run("running", func(t *testing.T) {
		host = StartRegistry(t)
		assert.Assert(t, strings.HasPrefix(host, "127.0.0.1:"), host)
		assert.Equal(t, get(t, "http://"+host+"/v2/", "", ""), http.StatusOK)
		// An empty registry lists no repositories.
		assert.Equal(t, get(t, "http://"+host+"/v2/_catalog", "", ""), http.StatusOK)
	})
	// The subtest's cleanup stopped it.
	_, err := http.Get("http://" + host + "/v2/")
	assert.ErrorContains(t, err, "connection refused")
}

func TestStartAuthRegistry(t *testing.T) {
	host, user, password := StartAuthRegistry(t)
	url := "http://" + host + "/v2/"
	cases := []struct {
		name, user, password string
		want                 int
	}{
		{"anonymous", "", "", http.StatusUnauthorized},
		{"wrong password", user, password + "x", http.StatusUnauthorized},
		{"right password", user, password, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, get(t, url, tc.user, tc.password), tc.want)
		})
	}
	// Two registries at once get two ports.
	other := StartRegistry(t)
	assert.Assert(t, other != host)
}
