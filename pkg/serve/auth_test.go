package serve

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// With Auth, every registry request needs the credentials: refused ones
// get 401 with the challenge docker and podman answer with a login;
// /healthz and /metrics stay open.
func TestServeAuth(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "htpasswd"), []byte("# team\nalice:"+string(hash)+"\n"), 0o600))
	h, err := LoadHtpasswd(filepath.Join(dir, "htpasswd"))
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "token"), []byte("0123456789abcdef-token\n"), 0o600))
	tok, err := LoadToken(filepath.Join(dir, "token"))
	assert.NilError(t, err)

	for _, tc := range []struct {
		auth Auth
		set  func(*http.Request)
		ok   bool
	}{
		{h, func(r *http.Request) { r.SetBasicAuth("alice", "s3cret") }, true},
		{h, func(r *http.Request) { r.SetBasicAuth("alice", "guess1") }, false},
		{h, func(r *http.Request) { r.SetBasicAuth("bob", "s3cret") }, false},
		{h, func(*http.Request) {}, false},
		// skopeo's way of sending no login: an empty one.
		{h, func(r *http.Request) { r.SetBasicAuth("", "") }, false},
		{tok, func(r *http.Request) { r.SetBasicAuth("anyone", "0123456789abcdef-token") }, true},
		{tok, func(r *http.Request) { r.Header.Set("Authorization", "Bearer 0123456789abcdef-token") }, true},
		{tok, func(r *http.Request) { r.Header.Set("Authorization", "Bearer 0123456789abcdef") }, false},
		// The scheme is case-insensitive (RFC 7235).
		{tok, func(r *http.Request) { r.Header.Set("Authorization", "bearer 0123456789abcdef-token") }, true},
		{tok, func(r *http.Request) { r.Header.Set("Authorization", "BEARER 0123456789abcdef-token") }, true},
		{tok, func(r *http.Request) { r.Header.Set("Authorization", "Bearer0123456789abcdef-token") }, false},
		{tok, func(*http.Request) {}, false},
	} {
		s, err := New(Options{Lock: fakeLock, Nixpkgs: "path:/x", Storage: t.TempDir(), Auth: tc.auth})
		assert.NilError(t, err)
		req := httptest.NewRequest(http.MethodGet, "/v2/", nil)
		tc.set(req)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if tc.ok {
			assert.Check(t, is.Equal(rec.Code, http.StatusOK))
			continue
		}
		assert.Check(t, is.Equal(rec.Code, http.StatusUnauthorized))
		// Credentials sent but refused are told from none sent; the
		// answer names neither the user nor the secret.
		body := rec.Body.String()
		if user, password, _ := req.BasicAuth(); user+password != "" || strings.HasPrefix(req.Header.Get("Authorization"), "Bearer") {
			assert.Check(t, is.Contains(body, "wrong user name, password or token"))
		} else {
			assert.Check(t, is.Contains(body, "log in to this registry first (docker login / podman login)"))
		}
		for _, secret := range []string{"alice", "bob", "s3cret", "guess1", "0123456789abcdef"} {
			assert.Check(t, !strings.Contains(body, secret), body)
		}
		// A token's challenge is basic: the realm of a bearer one is
		// the configuration's, never the request's Host.
		assert.Check(t, is.Equal(rec.Header().Get("WWW-Authenticate"), `Basic realm="nixery"`))
		// Every registry route asks, before anything is read or built.
		for _, path := range []string{"/v2/hello/manifests/latest", "/v2/hello/tags/list", "/v2/hello/blobs/sha256:" + strings.Repeat("0", 64), "/v2/x/manifests/sha256:" + strings.Repeat("0", 64)} {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				req := httptest.NewRequest(method, path, nil)
				tc.set(req)
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, req)
				assert.Check(t, is.Equal(rec.Code, http.StatusUnauthorized), "%s %s", method, path)
			}
		}
		for _, open := range []string{"/healthz", "/metrics"} {
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, open, nil))
			assert.Check(t, is.Equal(rec.Code, http.StatusOK), open)
		}
	}

	// The token endpoint of the bearer challenge trades a login whose
	// password is the token for the token; nothing else gets it.
	s, err := New(Options{Lock: fakeLock, Nixpkgs: "path:/x", Storage: t.TempDir(), Auth: tok})
	assert.NilError(t, err)
	for _, tc := range []struct {
		user, password string
		status         int
	}{
		{"anyone", "0123456789abcdef-token", http.StatusOK},
		{"anyone", "wrong", http.StatusUnauthorized},
		{"", "", http.StatusUnauthorized},
	} {
		req := httptest.NewRequest(http.MethodGet, "/token?service=nixery&scope=repository:hello:pull", nil)
		if tc.password != "" {
			req.SetBasicAuth(tc.user, tc.password)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		assert.Check(t, is.Equal(rec.Code, tc.status), tc.password)
		if tc.status == http.StatusOK {
			assert.Check(t, is.Equal(strings.TrimSpace(rec.Body.String()), `{"access_token":"0123456789abcdef-token","token":"0123456789abcdef-token"}`))
		} else {
			assert.Check(t, !strings.Contains(rec.Body.String(), "0123456789abcdef-token"))
		}
		if tc.password == "wrong" {
			assert.Check(t, is.Contains(rec.Body.String(), "wrong user name, password or token"))
			assert.Check(t, !strings.Contains(rec.Body.String(), "anyone"))
		}
	}
	// With htpasswd there is no token endpoint.
	s, err = New(Options{Lock: fakeLock, Nixpkgs: "path:/x", Storage: t.TempDir(), Auth: h})
	assert.NilError(t, err)
	req := httptest.NewRequest(http.MethodGet, "/token", nil)
	req.SetBasicAuth("alice", "s3cret")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	assert.Check(t, is.Equal(rec.Code, http.StatusNotFound))

	assert.NilError(t, os.WriteFile(filepath.Join(dir, "md5"), []byte("alice:$apr1$x$y\n"), 0o600))
	_, err = LoadHtpasswd(filepath.Join(dir, "md5"))
	assert.ErrorContains(t, err, "htpasswd -B")
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "short"), []byte("abc\n"), 0o600))
	_, err = LoadToken(filepath.Join(dir, "short"))
	assert.ErrorContains(t, err, "shorter than 16")
}

// /metrics counts manifest requests and bytes served, in Prometheus'
// text format.
func TestServeMetrics(t *testing.T) {
	storage, _ := storageHolding(t, "hello")
	s := newServer(t, Options{Storage: storage}) // reads what is stored
	for range 2 {
		res, _ := get(t, s, http.MethodGet, "/v2/hello/manifests/latest")
		assert.Equal(t, res.StatusCode, http.StatusOK)
	}
	_, body := get(t, s, http.MethodGet, "/metrics")
	assert.Check(t, is.Contains(body, `nixery_serve_manifest_requests_total{cache="hit"} 2`))
	assert.Check(t, is.Contains(body, "nixery_serve_builds_running 0"))
	var served string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "nixery_serve_bytes_served_total ") {
			served = l
		}
	}
	assert.Check(t, served != "" && served != "nixery_serve_bytes_served_total 0", served)
}

// An unknown user costs what a known one does: the dummy hash checked
// for it has the cost most of the file's entries have (htpasswd -B
// makes cost 5; bcrypt's default is 10, 32 times as slow).
func TestHtpasswdUnknownUserCost(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	for i, cost := range []int{5, 5, 6} {
		hash, err := bcrypt.GenerateFromPassword([]byte("pw"), cost)
		assert.NilError(t, err)
		lines = append(lines, fmt.Sprintf("user%d:%s", i, hash))
	}
	file := filepath.Join(dir, "htpasswd")
	assert.NilError(t, os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o600))
	h, err := LoadHtpasswd(file)
	assert.NilError(t, err)
	cost, err := bcrypt.Cost(h.dummy())
	assert.NilError(t, err)
	assert.Equal(t, cost, 5)
}

// The logins remembered as checked are bounded: bcrypt reads only 72
// bytes of a password, so a client can send one good login in endless
// spellings, each of which is checked and remembered. Past the bound the
// expired go first, then the oldest; every spelling is still let in.
func TestHtpasswdLoginCacheBound(t *testing.T) {
	dir := t.TempDir()
	password := strings.Repeat("p", 72)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "htpasswd"), []byte("alice:"+string(hash)+"\n"), 0o600))
	h, err := LoadHtpasswd(filepath.Join(dir, "htpasswd"))
	assert.NilError(t, err)
	assert.Equal(t, h.maxOK, maxOK)
	h.maxOK = 4
	login := func(suffix int) bool {
		req := httptest.NewRequest(http.MethodGet, "/v2/", nil)
		req.SetBasicAuth("alice", fmt.Sprint(password, suffix))
		return h.Allow(req)
	}
	for i := range 20 {
		assert.Check(t, login(i), "spelling %d", i)
		assert.Assert(t, len(h.ok) <= 4, "%d logins remembered after %d", len(h.ok), i+1)
	}
	// The latest are those kept.
	for i := 16; i < 20; i++ {
		assert.Check(t, h.checked(sha(fmt.Sprint("alice\x00", password, i))), "spelling %d was dropped", i)
	}
	// Logins checked longer than okFor ago are no longer taken, and go.
	h.mu.Lock()
	for k := range h.ok {
		h.ok[k] = time.Now().Add(-okFor - time.Second)
	}
	h.mu.Unlock()
	assert.Check(t, !h.checked(sha(fmt.Sprint("alice\x00", password, 19))))
	assert.Check(t, login(100))
	assert.Check(t, is.Len(h.ok, 1))
}

func sha(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }

// A bearer challenge names the configured public URL's token endpoint,
// whatever Host the request says; the endpoint trades a login for the
// token. A public URL must be an absolute http(s) URL.
func TestBearerTokenRealm(t *testing.T) {
	realm, err := TokenRealm("https://nixery.example.com/")
	assert.NilError(t, err)
	assert.Equal(t, realm, "https://nixery.example.com/token")
	for _, bad := range []string{"nixery.example.com", "ftp://x", "https://", "https://u:p@x", `https://x/"a`, "https://x?q=1"} {
		_, err := TokenRealm(bad)
		assert.Check(t, err != nil, bad)
	}
	auth := BearerToken{Token: Token("0123456789abcdef-token"), Realm: realm}
	s, err := New(Options{Lock: fakeLock, Nixpkgs: "path:/x", Storage: t.TempDir(), Auth: auth})
	assert.NilError(t, err)
	req := httptest.NewRequest(http.MethodGet, "/v2/", nil)
	req.Host = "attacker.example:8080"
	req.Header.Set("X-Forwarded-Proto", "http")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	assert.Equal(t, rec.Code, http.StatusUnauthorized)
	assert.Equal(t, rec.Header().Get("WWW-Authenticate"), `Bearer realm="https://nixery.example.com/token",service="nixery"`)

	req = httptest.NewRequest(http.MethodGet, "/token", nil)
	req.SetBasicAuth("team", "0123456789abcdef-token")
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	assert.Equal(t, rec.Code, http.StatusOK)
	assert.Check(t, is.Contains(rec.Body.String(), `"token":"0123456789abcdef-token"`))
}
