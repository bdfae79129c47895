package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// reconnectWait is the pause between reconnection attempts (the env var
// is for tests that restart the server).
var reconnectWait = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("CHANMQ_BRIDGE_RECONNECT_WAIT")); err == nil {
		return d
	}
	return time.Second
}()

// natsOptions builds the connection's options from the flags: reconnect
// forever, log the connection's events to log, close closed once the
// connection is closed and its event handlers have run, and authenticate
// as the flags say.
func (c *config) natsOptions(log *slog.Logger, closed chan<- struct{}) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(c.name),
		// Keep reconnecting for as long as the process lives: while the
		// server is away the out window fills and local senders block, and
		// the in direction waits; both resume on reconnect.
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			// Close, the command's own, fires it too: that is no outage.
			if !nc.IsClosed() {
				log.Warn("disconnected; reconnecting", "err", err)
			}
		}),
		// nats.go runs the handlers in order on one goroutine: once this
		// one runs, every earlier event has been logged.
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("reconnected", "server", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("the NATS connection reported an error", "err", err)
		}),
	}
	if c.creds != "" {
		opts = append(opts, nats.UserCredentials(c.creds))
	}
	if c.nkey != "" {
		o, err := nats.NkeyOptionFromSeed(c.nkey)
		if err != nil {
			return nil, fmt.Errorf("-nkey %s: %w", c.nkey, err)
		}
		opts = append(opts, o)
	}
	if c.user != "" {
		opts = append(opts, nats.UserInfo(c.user, os.Getenv("NATS_PASSWORD")))
	}
	if c.tlsCert != "" || c.tlsKey != "" {
		opts = append(opts, nats.ClientCert(c.tlsCert, c.tlsKey))
	}
	if c.tlsCA != "" {
		opts = append(opts, nats.RootCAs(c.tlsCA))
	}
	return opts, nil
}

// explainConnect adds what to do to the usual first-connection failures.
func explainConnect(servers string, err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, nats.ErrAuthorization) || strings.Contains(strings.ToLower(msg), "authorization"):
		return fmt.Errorf("connect to %s: %w: the server refused the credentials; check -creds/-nkey/-user and $NATS_PASSWORD (or the token in the URL)", servers, err)
	case errors.Is(err, nats.ErrNoServers):
		return fmt.Errorf("connect to %s: %w: no server answered; check -server/$NATS_URL and that the server is up (the bridge exits so that the pod restarts it)", servers, err)
	case errors.Is(err, nats.ErrSecureConnWanted):
		return fmt.Errorf("connect to %s: %w: the bridge asked for TLS (a tls:// URL, or -tlscert, -tlskey or -tlsca) "+
			"and the server does not offer it: use a nats:// URL without the TLS flags, or enable TLS on the server", servers, err)
	case strings.Contains(msg, "tls") || strings.Contains(msg, "x509") || strings.Contains(msg, "certificate"):
		return fmt.Errorf("connect to %s: %w: check -tlscert, -tlskey and -tlsca", servers, err)
	}
	return fmt.Errorf("connect to %s: %w", servers, err)
}
