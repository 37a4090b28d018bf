package popularity

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
)

// A cache's reason phrase, its own text, never reaches an error: Go's
// words for the status do, for a failure tried again and one not.
func TestGetStatusInGoWords(t *testing.T) {
	for _, line := range []string{"429 \x1b]0;owned\x07", "403 \x1b[2Jgo away"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		assert.NilError(t, err)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			buf := make([]byte, 4096)
			c.Read(buf)
			io.WriteString(c, "HTTP/1.1 "+line+"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		}()
		_, err = get(context.Background(), &http.Client{}, "http://"+ln.Addr().String()+"/x.narinfo")
		ln.Close()
		assert.Assert(t, err != nil)
		code, _, _ := strings.Cut(line, " ")
		assert.Check(t, strings.Contains(err.Error(), "answered "+code+" "+http.StatusText(map[string]int{"429": 429, "403": 403}[code])), err)
		assert.Check(t, !strings.Contains(err.Error(), "\x1b"), "%q", err)
	}
}
