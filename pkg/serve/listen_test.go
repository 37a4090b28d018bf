package serve

import (
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// With a bound of 2, two connections held open (one silent, one partway
// through its request) leave a third client unanswered until one of
// them closes.
func TestListenBound(t *testing.T) {
	ln, err := Listen("127.0.0.1:0", 2)
	assert.NilError(t, err)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	addr := ln.Addr().String()

	silent, err := net.Dial("tcp", addr)
	assert.NilError(t, err)
	defer silent.Close()
	partial, err := net.Dial("tcp", addr)
	assert.NilError(t, err)
	defer partial.Close()
	_, err = io.WriteString(partial, "GET /v2/ HTTP/1.1\r\nHost: x\r\n")
	assert.NilError(t, err)

	answered := make(chan error, 1)
	go func() {
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		res, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			res.Body.Close()
		}
		answered <- err
	}()
	select {
	case err := <-answered:
		t.Fatalf("a third connection was answered (%v) while two were held open", err)
	case <-time.After(300 * time.Millisecond):
	}
	silent.Close()
	select {
	case err := <-answered:
		assert.NilError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the third connection was not answered after one of the two closed")
	}
}

// A bounded listener's connections are TCP connections still: net/http
// sends files with sendfile through ReadFrom, and half-closes with
// CloseWrite. A connection closed twice gives back one place.
func TestListenKeepsTCP(t *testing.T) {
	ln, err := Listen("127.0.0.1:0", 1)
	assert.NilError(t, err)
	defer ln.Close()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		assert.NilError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	c, err := ln.Accept()
	assert.NilError(t, err)
	_, sendfile := c.(io.ReaderFrom)
	_, halfClose := c.(interface{ CloseWrite() error })
	assert.Check(t, sendfile && halfClose, "%T hides the TCP connection", c)
	c.Close()
	c.Close()

	dial()
	dial()
	first, err := ln.Accept()
	assert.NilError(t, err)
	defer first.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	select {
	case err := <-accepted:
		t.Fatalf("a second connection was accepted (%v) past a bound of 1", err)
	case <-time.After(200 * time.Millisecond):
	}
	// Closing the listener ends an Accept waiting for a place.
	ln.Close()
	select {
	case err := <-accepted:
		assert.Check(t, errors.Is(err, net.ErrClosed), "%v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still waits after the listener closed")
	}
}
