//go:build !linux

package mqbridge

// localHost is "" where POSIX message queues are not Linux's: the bridge
// runs on Linux only (chanmq.Open reports errors.ErrUnsupported
// elsewhere), so there is no origin to tell and no loop to look for.
func localHost() string { return "" }
