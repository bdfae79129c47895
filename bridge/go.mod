module github.com/chanmq/chanmq/bridge

go 1.26.0

require (
	github.com/chanmq/chanmq v0.0.0
	github.com/nats-io/nats.go v1.55.0
	golang.org/x/sync v0.25.0
)

require (
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/chanmq/chanmq => ../
