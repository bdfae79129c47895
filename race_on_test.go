//go:build linux && race

package chanmq

// raceEnabled is true when the tests run under -race, which makes them
// slower: stress tests use smaller counts then.
const raceEnabled = true
