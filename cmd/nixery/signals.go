package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// caught is the signal that interrupted the command, if any: run turns
// it into the shell's exit status for it (130 for SIGINT, 143 for
// SIGTERM, 141 for SIGPIPE).
var caught struct {
	sync.Mutex
	sig syscall.Signal
}

// catchPipes keeps SIGPIPE caught once a command has started: a write to
// a closed stdout or stderr then fails with EPIPE instead of killing the
// process before it has removed its temporary files.
var catchPipes sync.Once

// interruptContext is cancelled on SIGINT or SIGTERM, or when stdout or
// stderr is a pipe nobody reads any more (`| head`); the signal is
// recorded for the exit status. A second SIGINT or SIGTERM kills the
// process as usual, for when a clean stop takes too long.
func interruptContext() (context.Context, context.CancelFunc) {
	catchPipes.Do(func() { signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE) })
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	stop := func(s os.Signal) {
		caught.Lock()
		caught.sig, _ = s.(syscall.Signal)
		caught.Unlock()
		cancel()
	}
	go func() {
		for {
			select {
			case s := <-ch:
				signal.Stop(ch)
				stop(s)
				return
			case s := <-pipe:
				// A registry's closed connection raises SIGPIPE too: the
				// code writing to it gets EPIPE and deals with it.
				if closedPipe(1) || closedPipe(2) {
					stop(s)
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		signal.Stop(pipe)
		cancel()
	}
}

// closedPipe reports whether writing to fd fails for want of a reader:
// poll says POLLERR (Linux) or POLLHUP (macOS) for such a pipe.
func closedPipe(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0 && fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0
}

// interrupted returns the signal that interrupted the command, or 0.
func interrupted() syscall.Signal {
	caught.Lock()
	defer caught.Unlock()
	return caught.sig
}
