package mqbridge

import (
	"os"
	"strings"
	"sync"
)

// localHost names this host's boot and this process's IPC namespace:
// "<boot id>/<ipc namespace>" (for example
// "3f1c…/ipc:[4026531839]"), or "" if either cannot be read.
var localHost = sync.OnceValue(func() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/ipc")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(boot)) + "/" + ns
})
