package main

import "github.com/chanmq/chanmq/internal/mqueuefs"

// mqueueFS is the name main_test.go knows the mqueue mount helper by.
var mqueueFS = mqueuefs.Dir
