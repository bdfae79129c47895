//go:build linux

package main

// cmdOrder is the command names in the order the usage lists them.
var cmdOrder = func() []string {
	var names []string
	for _, cmd := range commands {
		names = append(names, cmd.name)
	}
	return names
}()
