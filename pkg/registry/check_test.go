package registry

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/nixery-action/nixery-action/internal/testenv"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// uploadServer is a registry whose /v2/ anyone may read (or, with login
// set, only after a basic challenge), that lets only a logged-in client
// start an upload, and that records the requests it was sent.
type uploadServer struct {
	login bool
	mu    sync.Mutex
	seen  []string
}

func (s *uploadServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.seen = append(s.seen, r.Method+" "+r.URL.Path)
	s.mu.Unlock()
	_, _, authed := r.BasicAuth()
	switch {
	case r.URL.Path == "/v2/" && s.login && !authed:
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		testenv.RegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "log in")
	case r.URL.Path == "/v2/":
	case r.Method == http.MethodPost && !authed:
		testenv.RegistryError(w, http.StatusForbidden, "DENIED", "requested access to the resource is denied")
	case r.Method == http.MethodPost:
		w.Header().Set("Location", "/v2/team/app/blobs/uploads/session-1?_state=x")
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

// CheckUpload finds a repository that anyone may read but only some may
// push to, which CheckPush's read of /v2/ cannot; an upload it may
// start, it cancels.
func TestCheckUpload(t *testing.T) {
	anon := &uploadServer{}
	srv := httptest.NewServer(anon)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	repo, err := name.NewRepository(host+"/team/app", name.Insecure)
	assert.NilError(t, err)
	ctx := context.Background()
	o := Options{Credentials: Credentials{Keychain: authn.NewMultiKeychain()}}
	l, err := o.Credentials.Login(ctx, repo, true)
	assert.NilError(t, err)
	assert.NilError(t, o.CheckPush(ctx, repo, l), "CheckPush reads /v2/ alone")
	err = o.CheckUpload(ctx, repo, l)
	var re *RegistryError
	assert.Assert(t, errors.As(err, &re), "%v", err)
	assert.Check(t, is.Equal(re.Kind, Denied))
	assert.Check(t, is.ErrorContains(err, "registry "+host+" denied anonymous users the right to push to team/app"))

	logged := &uploadServer{login: true}
	srv = httptest.NewServer(logged)
	t.Cleanup(srv.Close)
	host = strings.TrimPrefix(srv.URL, "http://")
	repo, err = name.NewRepository(host+"/team/app", name.Insecure)
	assert.NilError(t, err)
	o = Options{Credentials: Credentials{Username: "team", Password: "secret"}}
	l, err = o.Credentials.Login(ctx, repo, true)
	assert.NilError(t, err)
	assert.NilError(t, o.CheckUpload(ctx, repo, l))
	logged.mu.Lock()
	defer logged.mu.Unlock()
	assert.Check(t, is.Contains(logged.seen, "POST /v2/team/app/blobs/uploads/"))
	assert.Check(t, is.Contains(logged.seen, "DELETE /v2/team/app/blobs/uploads/session-1"), "the upload was not cancelled: %v", logged.seen)
}
