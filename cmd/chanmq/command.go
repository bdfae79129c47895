package main

import (
	"errors"
	"flag"
	"io"
)

// A command is one subcommand. Its text is written once, here: -h prints
// it, and the package documentation is generated from it (doc_test.go).
type command struct {
	name    string
	args    string // synopsis after the name
	summary string // one line for the top-level usage
	help    string // what -h prints after the synopsis and before the flags
	// bind defines the command's flags on fs, bound to a fresh options
	// value of the command's own type, and returns the command's work:
	// run it, after fs has parsed the arguments, with the positional ones.
	bind func(fs *flag.FlagSet) (run func(c *cli, args []string) error)
}

// withOptions makes a command's bind from define, which defines flags
// bound to the fields of an options struct O, and run, which does the work
// with them: the compiler checks that both speak of the same O.
func withOptions[O any](define func(*flag.FlagSet, *O), run func(*cli, *O, []string) error) func(*flag.FlagSet) func(*cli, []string) error {
	return func(fs *flag.FlagSet) func(*cli, []string) error {
		o := new(O)
		define(fs, o)
		return func(c *cli, args []string) error { return run(c, o, args) }
	}
}

// noOpts are the options of a command that has no flags.
type noOpts struct{}

func noFlags(*flag.FlagSet, *noOpts) {}

func newFlagSet(cmd *command) *flag.FlagSet {
	fs := flag.NewFlagSet("chanmq "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // we report errors ourselves, on one line
	return fs
}

func (c *cli) runCommand(cmd *command, args []string) error {
	fs := newFlagSet(cmd)
	runWith := cmd.bind(fs)
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		cmdUsage(c.stdout, cmd)
		return nil
	}
	if err != nil {
		return usageErr(cmd.name, "%v", err)
	}
	c.given = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { c.given[f.Name] = true })
	return runWith(c, pos)
}

// parseInterspersed parses flags that may come before, between or after
// positional arguments (the flag package stops at the first positional
// one), and returns the positional ones. After "--" everything is
// positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
