// Package httpstatus words an HTTP answer's status for an error message.
package httpstatus

import (
	"fmt"
	"net/http"
	"strings"
)

// Text is an answer's status code with Go's own words for it ("404 Not
// Found"), never the reason phrase the server sent, which is its own
// text: unbounded, and free to hold terminal escapes.
func Text(code int) string {
	return strings.TrimSpace(fmt.Sprintf("%d %s", code, http.StatusText(code)))
}
