package main

import (
	"context"
	"flag"
	"time"
)

// formatFlags are -0, -raw and -json, which choose how send reads
// standard input and how recv prints messages: one at most.
type formatFlags struct{ nul, raw, json bool }

// define defines the three flags on fs with the command's help for each.
func (f *formatFlags) define(fs *flag.FlagSet, nulHelp, rawHelp, jsonHelp string) {
	fs.BoolVar(&f.nul, "0", false, nulHelp)
	fs.BoolVar(&f.raw, "raw", false, rawHelp)
	fs.BoolVar(&f.json, "json", false, jsonHelp)
}

// given reports whether one of the flags is given.
func (f formatFlags) given() bool { return f.nul || f.raw || f.json }

// check refuses more than one of the flags; they choose what (such as
// "the output format") for cmd.
func (f formatFlags) check(cmd, what string) error {
	n := 0
	for _, b := range []bool{f.nul, f.raw, f.json} {
		if b {
			n++
		}
	}
	if n > 1 {
		return usageErr(cmd, "-0, -raw and -json choose %s; give at most one", what)
	}
	return nil
}

// waitFlags are -timeout and -nonblock: how long send waits for room and
// recv for a message. Without them, they wait until a signal.
type waitFlags struct {
	timeout  time.Duration
	nonblock bool
}

// define defines the two flags on fs with the command's help for each.
func (w *waitFlags) define(fs *flag.FlagSet, timeoutHelp, nonblockHelp string) {
	fs.DurationVar(&w.timeout, "timeout", 0, timeoutHelp)
	fs.BoolVar(&w.nonblock, "nonblock", false, nonblockHelp)
}

// check refuses both flags together, and a negative -timeout, for cmd.
func (w waitFlags) check(cmd string) error {
	switch {
	case w.nonblock && w.timeout != 0:
		return usageErr(cmd, "-nonblock and -timeout conflict; give one")
	case w.timeout < 0:
		return usageErr(cmd, "-timeout must be positive, such as 5s")
	}
	return nil
}

// do calls try with -nonblock, and otherwise wait with ctx, bounded by
// -timeout when it is given.
func (w waitFlags) do(ctx context.Context, wait func(context.Context) error, try func() error) error {
	if w.nonblock {
		return try()
	}
	if w.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.timeout)
		defer cancel()
	}
	return wait(ctx)
}
