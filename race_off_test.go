//go:build linux && !race

package chanmq

const raceEnabled = false
