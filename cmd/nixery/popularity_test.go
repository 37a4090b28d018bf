package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// A FIFO with no writer (a process substitution whose command has not
// started writing) is waited for until the context ends, not forever; one
// whose writer writes, as <(...) does, is read.
func TestReadPopularityFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "pop")
	assert.NilError(t, syscall.Mkfifo(fifo, 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := readPopularity(ctx, fifo)
	assert.Check(t, errors.Is(err, context.Canceled), "%v", err)
	assert.Check(t, time.Since(start) < 2*time.Second, "gave up %s after the cancel", time.Since(start)-100*time.Millisecond)
	// The abandoned open gets its writer, so that no goroutine is left.
	if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		w.Close()
	}

	fifo = filepath.Join(t.TempDir(), "pop2")
	assert.NilError(t, syscall.Mkfifo(fifo, 0o600))
	go func() {
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer w.Close()
		time.Sleep(50 * time.Millisecond)
		w.WriteString(`{"glibc": 3}`)
	}()
	d, err := readPopularity(context.Background(), fifo)
	assert.NilError(t, err)
	assert.Equal(t, len(d), 1)
}
