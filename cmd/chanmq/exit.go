package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Exit codes: exitHelp says what each means.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitUnfinished  = 3
	exitInterrupted = 130
)

// exitError is an error that ends the command with a given exit code. Its
// message is one line, without the "chanmq: " prefix.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func usageErr(cmd, format string, args ...any) error {
	return &exitError{code: exitUsage, msg: fmt.Sprintf("%s: %s (run 'chanmq %s -h' for usage)", cmd, fmt.Sprintf(format, args...), cmd)}
}

func unfinished(format string, args ...any) error {
	return &exitError{code: exitUnfinished, msg: fmt.Sprintf(format, args...)}
}

func interrupted(format string, args ...any) error {
	return &exitError{code: exitInterrupted, msg: fmt.Sprintf(format, args...)}
}

// report prints err as one line on stderr and returns the exit code.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	code := exitFailure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if msg := strings.ReplaceAll(err.Error(), "\n", " "); msg != "" {
		fmt.Fprintf(stderr, "chanmq: %s\n", msg)
	}
	return code
}
