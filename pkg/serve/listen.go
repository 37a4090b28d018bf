package serve

import (
	"net"
	"sync"
)

// Listen listens on addr (HOST:PORT) for the server, holding at most
// maxConns connections open at once, or any number when maxConns is 0.
// Each connection holds a file descriptor, which builds and the storage
// need too; connections past the bound wait in the kernel's backlog until
// one closes.
func Listen(addr string, maxConns int) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if maxConns > 0 {
		return &limitListener{TCPListener: ln.(*net.TCPListener), slots: make(chan struct{}, maxConns), closed: make(chan struct{})}, nil
	}
	return ln, nil
}

// limitListener is golang.org/x/net/netutil's LimitListener, but for
// one thing: its connections are *net.TCPConn still, so that net/http
// sends blobs with sendfile (ReadFrom) and closes with CloseWrite, which
// netutil's wrapper hides.
type limitListener struct {
	*net.TCPListener
	slots     chan struct{}
	closed    chan struct{} // closed by Close: an Accept waiting for a place ends
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}: // a place
	case <-l.closed:
		return nil, net.ErrClosed
	}
	c, err := l.AcceptTCP()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{TCPConn: c, release: sync.OnceFunc(func() { <-l.slots })}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.TCPListener.Close()
}

// limitedConn gives its place back when closed, once.
type limitedConn struct {
	*net.TCPConn
	release func()
}

func (c *limitedConn) Close() error {
	err := c.TCPConn.Close()
	c.release()
	return err
}
