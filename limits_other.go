//go:build !linux

package chanmq

func defaultAttr() (maxMsgs, msgSize int) { return 10, 8192 }

func explainErrno(op, name string, err error, c *config) error { return err }
