//go:build !race

package chanmq

const raceEnabled = false
