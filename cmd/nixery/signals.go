package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// caught is the signal that interrupted the command, if any: run turns
// it into the shell's exit status for it (130 for SIGINT, 143 for SIGTERM).
var caught struct {
	sync.Mutex
	sig syscall.Signal
}

// interruptContext is cancelled on SIGINT or SIGTERM, which is recorded
// for the exit status. A second signal kills the process as usual, for
// when a clean stop takes too long.
func interruptContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-ch:
			signal.Stop(ch)
			caught.Lock()
			caught.sig, _ = s.(syscall.Signal)
			caught.Unlock()
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel()
	}
}

// interrupted returns the signal that interrupted the command, or 0.
func interrupted() syscall.Signal {
	caught.Lock()
	defer caught.Unlock()
	return caught.sig
}
