package chanmq

import (
	"fmt"
	"io/fs"
)

// MaxPriority is the highest message priority Linux accepts (MQ_PRIO_MAX-1).
// Higher priorities are received first; equal priorities in FIFO order.
const MaxPriority = 32767

// maxNameLen is NAME_MAX: the longest queue name after its slash.
const maxNameLen = 255

// An Option configures Open and CreateTemp.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

// openOption marks an option as one for Open and returns it.
func openOption(name string, f func(*config) error) Option {
	return optionFunc(func(c *config) error {
		if c.openOpt == "" {
			c.openOpt = name
		}
		return f(c)
	})
}

// pumpOption marks an option as one for pumps and returns it.
func pumpOption(name string, f func(*config) error) Option {
	return optionFunc(func(c *config) error {
		if c.pumpOpt == "" {
			c.pumpOpt = name
		}
		return f(c)
	})
}

// config holds what the options chose; newConfig builds it with defaults.
type config struct {
	create    bool
	perm      fs.FileMode
	exclusive bool
	maxMsgs   int // 0: the system default
	msgSize   int // 0: the system default
	readOnly  bool
	writeOnly bool

	buffer   int  // pump channel capacity
	priority uint // send pump priority

	// The first option of each kind given, by name, so that an option
	// passed where it does nothing is refused with a clear error.
	openOpt, pumpOpt string
}

// newConfig applies opts over the defaults (read-write, no create) and
// rejects invalid values and combinations.
func newConfig(opts []Option) (*config, error) {
	c, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	if c.pumpOpt != "" {
		return nil, fmt.Errorf("%w: %s configures a pump; pass it to Receiver, Sender, OpenReceiver or OpenSender", ErrInvalidOption, c.pumpOpt)
	}
	return c, nil
}

// newPumpConfig is newConfig for Receiver and Sender, which take only
// pump options (Buffer, Priority).
func newPumpConfig(opts []Option) (*config, error) {
	c, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	if c.openOpt != "" {
		return nil, fmt.Errorf("%w: %s configures Open; the Queue is already open", ErrInvalidOption, c.openOpt)
	}
	return c, nil
}

// applyOptions applies opts of both kinds and checks their combination.
func applyOptions(opts []Option) (*config, error) {
	c := &config{perm: 0o600}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.apply(c); err != nil {
			return nil, err
		}
	}
	switch {
	case c.readOnly && c.writeOnly:
		return nil, fmt.Errorf("%w: ReadOnly and WriteOnly together; omit both for read-write", ErrInvalidOption)
	case c.exclusive && !c.create:
		return nil, fmt.Errorf("%w: Exclusive needs Create(perm)", ErrInvalidOption)
	case (c.maxMsgs != 0 || c.msgSize != 0) && !c.create:
		return nil, fmt.Errorf("%w: MaxMessages and MessageSize apply when creating a queue; add Create(perm)", ErrInvalidOption)
	}
	return c, nil
}

// flags returns the mq_open flags for c. Every descriptor is close-on-exec
// and nonblocking (waiting happens on the runtime's netpoller instead).
func (c *config) flags() int {
	f := oRdwr
	switch {
	case c.readOnly:
		f = oRdonly
	case c.writeOnly:
		f = oWronly
	}
	if c.create {
		f |= oCreat
	}
	if c.exclusive {
		f |= oExcl
	}
	return f | oNonblock | oCloexec
}

// Create makes Open create the queue when it does not exist, with the
// permission bits perm (0600 is a good default: owner only). The process
// umask applies, as for files. perm must hold only permission bits.
func Create(perm fs.FileMode) Option {
	return openOption("Create", func(c *config) error {
		if perm&^fs.ModePerm != 0 {
			return fmt.Errorf("%w: Create(%v): only permission bits (0 to 0777) are allowed", ErrInvalidOption, perm)
		}
		c.create, c.perm = true, perm
		return nil
	})
}

// Exclusive makes Open fail with an error matching fs.ErrExist when the
// queue already exists. It needs Create.
func Exclusive() Option {
	return openOption("Exclusive", func(c *config) error { c.exclusive = true; return nil })
}

// MaxMessages sets the capacity of a queue that Open creates. Without CAP_SYS_RESOURCE
// the kernel caps it at /proc/sys/fs/mqueue/msg_max (10 by default). It is
// ignored when the queue already exists.
func MaxMessages(n int) Option {
	return openOption("MaxMessages", func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("%w: MaxMessages(%d): must be at least 1", ErrInvalidOption, n)
		}
		c.maxMsgs = n
		return nil
	})
}

// MessageSize sets the largest message, in bytes, of a queue that Open
// creates. Without CAP_SYS_RESOURCE the kernel caps it at
// /proc/sys/fs/mqueue/msgsize_max (8192 by default). It is ignored when
// the queue already exists.
func MessageSize(n int) Option {
	return openOption("MessageSize", func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("%w: MessageSize(%d): must be at least 1", ErrInvalidOption, n)
		}
		c.msgSize = n
		return nil
	})
}

// ReadOnly opens the queue for receiving only; Send then fails with ErrReadOnly.
func ReadOnly() Option {
	return openOption("ReadOnly", func(c *config) error { c.readOnly = true; return nil })
}

// WriteOnly opens the queue for sending only; Receive then fails with ErrWriteOnly.
func WriteOnly() Option {
	return openOption("WriteOnly", func(c *config) error { c.writeOnly = true; return nil })
}

// Buffer sets the capacity of a pump's channel (default 0: unbuffered, so
// a Sender's C blocks until the message is being queued, and a Receiver
// takes a message from the kernel only when someone is ready for it, plus
// the one in the pump's hand). It applies to Receiver, Sender and their
// variants.
func Buffer(n int) Option {
	return pumpOption("Buffer", func(c *config) error {
		if n < 0 {
			return fmt.Errorf("%w: Buffer(%d): must be 0 or more", ErrInvalidOption, n)
		}
		c.buffer = n
		return nil
	})
}

// Priority sets the priority (0 to MaxPriority) with which a Sender queues
// its messages (default 0). A MessageSender takes each message's own
// priority instead.
func Priority(p uint) Option {
	return pumpOption("Priority", func(c *config) error {
		if p > MaxPriority {
			return fmt.Errorf("%w: Priority(%d): %w (0 to %d)", ErrInvalidOption, p, ErrPriority, MaxPriority)
		}
		c.priority = p
		return nil
	})
}
