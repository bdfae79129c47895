//go:build linux

package main

import "github.com/chanmq/chanmq/internal/mqueuefs"

// mqueueFS is the name main_test.go knows the mqueue mount helper by.
var mqueueFS = mqueuefs.Dir

// cmdOrder is the command names in the order the usage lists them.
var cmdOrder = func() []string {
	var names []string
	for _, cmd := range commands {
		names = append(names, cmd.name)
	}
	return names
}()
