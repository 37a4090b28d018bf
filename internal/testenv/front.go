package testenv

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
)

// Front starts a proxy to upstream (host:port) and returns the proxy's
// host:port; it stops when the test ends. hook sees each request first
// and answers it itself when it returns true; the proxy forwards the
// others. A nil hook forwards everything.
func Front(t testing.TB, upstream string, hook func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	target, err := url.Parse("http://" + upstream)
	check(t, err)
	forward := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hook != nil && hook(w, r) {
			return
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// RegistryError answers with status and the error body of the OCI
// distribution spec, {"errors":[{"code":code,"message":message}]}.
func RegistryError(w http.ResponseWriter, status int, code, message string) {
	type entry struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	body, _ := json.Marshal(struct {
		Errors []entry `json:"errors"`
	}{[]entry{{code, message}}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}
