// Package mqbridge carries the messages of a Linux POSIX message queue
// (opened with github.com/chanmq/chanmq) over NATS JetStream, so that a
// producer and a consumer on different hosts keep talking through a local
// queue each:
//
//	producer --mq--> Out --JetStream subject--> stream --durable--> In --mq--> consumer
//
// [Out] journals each message it receives, publishes it with a message ID
// that JetStream de-duplicates, and republishes what was not acknowledged
// after a crash: no duplicates, and at most the one message in hand lost
// per crash. [In] acknowledges a stream message only after the kernel
// accepted it and journals the stream sequences it sent: no loss, and at
// most one duplicate per crash. Priorities travel in the Chanmq-Priority
// header. [Run] runs both directions. The chanmq-bridge command wraps all of
// it for a sidecar; see the module's README for the guarantees in full.
package mqbridge
