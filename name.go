package chanmq

import (
	"fmt"
	"strings"
)

// validateName checks a queue name the way Linux does, before any syscall:
// "/" followed by 1 to 255 bytes, no other "/", no NUL, not "/." or "/..".
func validateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty; use a name such as \"/jobs\"", ErrInvalidName)
	case name[0] != '/':
		hint := ""
		if !strings.ContainsAny(name, "/\x00") && len(name) <= maxNameLen {
			hint = fmt.Sprintf("; did you mean %q?", "/"+name)
		}
		return fmt.Errorf("%w: %q must start with \"/\"%s", ErrInvalidName, name, hint)
	case len(name) == 1:
		return fmt.Errorf("%w: \"/\" needs a name after the slash, such as \"/jobs\"", ErrInvalidName)
	case len(name)-1 > maxNameLen:
		return fmt.Errorf("%w: %d bytes after the slash; at most %d are allowed", ErrInvalidName, len(name)-1, maxNameLen)
	case strings.IndexByte(name[1:], '/') >= 0:
		return fmt.Errorf("%w: %q has a \"/\" after the first byte; queue names are flat", ErrInvalidName, name)
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("%w: %q contains a NUL byte", ErrInvalidName, name)
	case name == "/." || name == "/..":
		return fmt.Errorf("%w: %q is reserved", ErrInvalidName, name)
	}
	return nil
}
