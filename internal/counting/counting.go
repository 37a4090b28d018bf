// Package counting counts the bytes written through a writer: the size
// of a blob while it streams to its destination.
package counting

import "io"

// Writer passes writes on to W and adds up in N the bytes W took.
type Writer struct {
	W io.Writer
	N int64
}

func (c *Writer) Write(p []byte) (int, error) {
	n, err := c.W.Write(p)
	c.N += int64(n)
	return n, err
}
