package main

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// fsInfo is what the mqueue filesystem says about a queue.
type fsInfo struct {
	mode     fs.FileMode
	owner    string // "root (uid 0), group root (gid 0)", or "" if unknown
	user     string // the owner's name, or uid
	queued   int64  // bytes queued (QSIZE), or -1 if unknown
	hasOwner bool
}

// statFS reads name's entry in the mqueue filesystem mounted on dir.
func statFS(dir, name string) (fsInfo, error) {
	path := filepath.Join(dir, strings.TrimPrefix(name, "/"))
	fi, err := os.Stat(path)
	if err != nil {
		return fsInfo{}, err
	}
	info := fsInfo{mode: fi.Mode().Perm(), queued: -1}
	if uid, gid, ok := ownerOf(fi); ok {
		info.hasOwner = true
		info.user = strconv.FormatUint(uint64(uid), 10)
		if u, err := user.LookupId(info.user); err == nil {
			info.user = u.Username
		}
		group := strconv.FormatUint(uint64(gid), 10)
		if g, err := user.LookupGroupId(group); err == nil {
			group = g.Name
		}
		info.owner = fmt.Sprintf("%s (uid %d), group %s (gid %d)", info.user, uid, group, gid)
	}
	// Reading the file gives "QSIZE:129 NOTIFY:0 SIGNO:0 NOTIFY_PID:0".
	if b, err := os.ReadFile(path); err == nil {
		for _, field := range strings.Fields(string(b)) {
			if v, ok := strings.CutPrefix(field, "QSIZE:"); ok {
				if n, err := strconv.ParseInt(v, 10, 64); err == nil {
					info.queued = n
				}
			}
		}
	}
	return info, nil
}
