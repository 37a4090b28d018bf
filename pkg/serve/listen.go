package serve

import (
	"net"

	"golang.org/x/net/netutil"
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
		ln = netutil.LimitListener(ln, maxConns)
	}
	return ln, nil
}
