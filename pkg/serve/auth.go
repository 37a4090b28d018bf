package serve

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/nixery-action/nixery-action/internal/limit"
)

// Auth says whether a request may pull. A Server without one serves
// anyone who can reach it (it listens on loopback by default).
type Auth interface {
	// Allow checks the request's Authorization header.
	Allow(r *http.Request) bool
	// Challenge is the WWW-Authenticate header of a refusal of r.
	Challenge() string
}

// maxAuthFile bounds an htpasswd or token file.
const maxAuthFile = 1 << 20

// Htpasswd is basic authentication against an htpasswd file of bcrypt
// entries (htpasswd -B), as the CNCF registry takes them. A pull sends
// the login with every request: a login checked once is taken again for
// a while without bcrypt's cost.
type Htpasswd struct {
	users map[string][]byte
	// ok are the logins checked within okFor, at most maxOK of them:
	// sha256 of user NUL password → time checked. (bcrypt reads 72
	// bytes of a password, so one login has endless spellings.)
	mu    sync.Mutex
	ok    map[[sha256.Size]byte]time.Time
	maxOK int
	// dummy is checked against for an unknown user, at the cost the
	// file's entries have, so that timing does not tell which names
	// exist. It is made on first use: bcrypt's cost is not for every
	// program start.
	dummy func() []byte
	// checks bounds the bcrypt checks running at once, so that logins
	// sent in a flood take no more than the machine's cores.
	checks chan struct{}
}

// okFor is how long a checked login is taken without bcrypt.
const okFor = 5 * time.Minute

// maxOK bounds the logins remembered as checked; past it, expired ones
// go, then the one checked longest ago.
const maxOK = 1024

// usualCost is the bcrypt cost most of hashes have (the higher on a tie).
func usualCost(hashes map[string][]byte) int {
	count := map[int]int{}
	best := bcrypt.DefaultCost
	for _, h := range hashes {
		c, err := bcrypt.Cost(h)
		if err != nil {
			continue
		}
		count[c]++
		if count[c] > count[best] || count[c] == count[best] && c > best {
			best = c
		}
	}
	return best
}

// LoadHtpasswd reads an htpasswd file; only bcrypt entries are taken.
func LoadHtpasswd(path string) (*Htpasswd, error) {
	raw, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	h := &Htpasswd{users: map[string][]byte{}, ok: map[[sha256.Size]byte]time.Time{}, maxOK: maxOK}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" || !strings.HasPrefix(hash, "$2") {
			return nil, fmt.Errorf("%s line %d: not USER:BCRYPT-HASH (make entries with htpasswd -B)", path, n)
		}
		h.users[user] = []byte(hash)
	}
	if len(h.users) == 0 {
		return nil, fmt.Errorf("%s holds no users", path)
	}
	cost := usualCost(h.users)
	h.dummy = sync.OnceValue(func() []byte {
		d, _ := bcrypt.GenerateFromPassword([]byte("nixery"), cost)
		return d
	})
	h.checks = make(chan struct{}, runtime.GOMAXPROCS(0))
	return h, nil
}

func (h *Htpasswd) Allow(r *http.Request) bool {
	user, password, ok := r.BasicAuth()
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(user + "\x00" + password))
	if h.checked(sum) {
		return true
	}
	select {
	case h.checks <- struct{}{}:
		defer func() { <-h.checks }()
	case <-r.Context().Done():
		return false
	}
	hash, known := h.users[user]
	if !known {
		bcrypt.CompareHashAndPassword(h.dummy(), []byte(password))
		return false
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return false
	}
	h.remember(sum)
	return true
}

// checked tells whether the login sum was checked within okFor.
func (h *Htpasswd) checked(sum [sha256.Size]byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.ok[sum]
	return ok && time.Since(t) < okFor
}

// remember notes the login sum as checked now, within maxOK logins.
func (h *Htpasswd) remember(sum [sha256.Size]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.ok[sum]; !ok && len(h.ok) >= h.maxOK {
		oldest, at := [sha256.Size]byte{}, time.Time{}
		for k, t := range h.ok {
			if time.Since(t) >= okFor {
				delete(h.ok, k)
			} else if at.IsZero() || t.Before(at) {
				oldest, at = k, t
			}
		}
		if len(h.ok) >= h.maxOK {
			delete(h.ok, oldest)
		}
	}
	h.ok[sum] = time.Now()
}

func (*Htpasswd) Challenge() string { return basicChallenge }

// Token is one shared secret, sent as a bearer token or as the password
// of basic authentication (any user name). Its challenge is basic: what
// docker and podman login, and skopeo --creds, answer. BearerToken adds
// the bearer challenge that skopeo --registry-token needs.
type Token []byte

// tokenPath is where a Token server trades a login for the token.
const tokenPath = "/token"

// LoadToken reads a token file: its first line.
func LoadToken(path string) (Token, error) {
	raw, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	line, _, _ := bytes.Cut(raw, []byte("\n"))
	line = bytes.TrimSpace(line)
	if len(line) < 16 {
		return nil, fmt.Errorf("%s: the token is shorter than 16 characters", path)
	}
	return Token(line), nil
}

func (t Token) Allow(r *http.Request) bool {
	got := ""
	if _, password, ok := r.BasicAuth(); ok {
		got = password
	} else if scheme, bearer, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		got = strings.TrimSpace(bearer)
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), t) == 1
}

func (Token) Challenge() string { return basicChallenge }

// BearerToken is Token with a bearer challenge whose realm is Realm, the
// public URL of this server's token endpoint (tokenPath), as the
// distribution spec's token flow has it: a client logged in trades the
// login there for the token, and a client given the token sends it as
// is. Realm comes from the configuration, never from the request: a
// client sends its login to the realm, and a Host header that a proxy
// rewrote, or a client chose, would name another server.
type BearerToken struct {
	Token
	Realm string
}

func (b BearerToken) Challenge() string {
	return fmt.Sprintf(`Bearer realm=%q,service="nixery"`, b.Realm)
}

// TokenRealm is the token endpoint's URL under a server's public URL
// (https://nixery.example.com), which must be an absolute http(s) URL.
func TokenRealm(public string) (string, error) {
	u, err := url.Parse(public)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(public, "\"\\ ") {
		return "", fmt.Errorf("%q is no public URL of the server: write its scheme and host, e.g. https://nixery.example.com", public)
	}
	return strings.TrimSuffix(u.String(), "/") + tokenPath, nil
}

// basicChallenge asks for a login (htpasswd, or the token as password).
const basicChallenge = `Basic realm="nixery"`

// tokenServer is an Auth with a token endpoint (Token, and BearerToken,
// which embeds it).
type tokenServer interface {
	serveToken(w http.ResponseWriter, r *http.Request)
}

// serveToken is the token endpoint: a login whose password is the token
// gets it back as the bearer token to send.
func (t Token) serveToken(w http.ResponseWriter, r *http.Request) {
	if !t.Allow(r) {
		w.Header().Set("WWW-Authenticate", basicChallenge)
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", refusal(r, "log in with the server's token as the password"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]string{"token": string(t), "access_token": string(t)})
}

// refusal is the message of a 401 to r: credentials sent but refused are
// told from none sent (where login says what to do). It names neither
// the user nor the secret, and depends only on whether any were sent, so
// it tells nothing a caller did not know.
func refusal(r *http.Request, login string) string {
	if sentCredentials(r) {
		return "wrong user name, password or token"
	}
	return login
}

// sentCredentials tells whether r carries credentials. skopeo with none
// sends an empty basic login ("Basic Og==", ":"), which is none.
func sentCredentials(r *http.Request) bool {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if h == "" {
		return false
	}
	if user, password, ok := r.BasicAuth(); ok {
		return user != "" || password != ""
	}
	scheme, rest, _ := strings.Cut(h, " ")
	return !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(rest) != ""
}

func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := limit.ReadAll(f, maxAuthFile)
	var le *limit.Error
	if errors.As(err, &le) {
		return nil, fmt.Errorf("%s is larger than %s", path, limit.Size(maxAuthFile))
	}
	return raw, err
}
