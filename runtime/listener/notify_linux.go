package listener

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dirNotifier wakes certificate sources as soon as their keystore file is
// written or replaced, through inotify on the keystore's folder (a folder,
// because keystore.Update and most tools replace the file by rename, which
// a watch on the file itself would not follow). Polling stays as the
// fallback: where inotify is unavailable or out of watches, or the file
// lives on a network file system, changes are seen at the next poll.
type dirNotifier struct {
	mu    sync.Mutex
	f     *os.File                         // nil until the first watch, and after the last
	dirs  map[string]int                   // folder -> watch descriptor
	files map[int]map[string][]*certSource // watch descriptor -> file name -> sources
}

// watchMask: a file written in place and closed, or one renamed, created,
// removed or re-permissioned in the folder.
const watchMask = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_ATTRIB

// add makes s get kicked on changes to its files. It reports whether
// they are all watched.
func (n *dirNotifier) add(s *certSource) bool {
	ok := true
	for _, p := range s.paths {
		ok = n.addPath(s, p) && ok
	}
	return ok
}

// remove stops kicking s.
func (n *dirNotifier) remove(s *certSource) {
	for _, p := range s.paths {
		n.removePath(s, p)
	}
}

func (n *dirNotifier) addPath(s *certSource, file string) bool {
	path, err := filepath.Abs(file)
	if err != nil {
		return false
	}
	dir, name := filepath.Split(path)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.f == nil {
		fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
		if err != nil {
			return false
		}
		n.f = os.NewFile(uintptr(fd), "inotify")
		n.dirs, n.files = map[string]int{}, map[int]map[string][]*certSource{}
		go n.read(n.f)
	}
	wd, ok := n.dirs[dir]
	if !ok {
		w, err := unix.InotifyAddWatch(int(n.f.Fd()), dir, watchMask)
		if err != nil {
			return false
		}
		wd = w
		n.dirs[dir] = wd
		n.files[wd] = map[string][]*certSource{}
	}
	if !slices.Contains(n.files[wd][name], s) {
		n.files[wd][name] = append(n.files[wd][name], s)
	}
	return true
}

// removePath stops kicking s for file; the last source of a folder
// removes its watch, and the last of all closes inotify.
func (n *dirNotifier) removePath(s *certSource, file string) {
	path, err := filepath.Abs(file)
	if err != nil {
		return
	}
	dir, name := filepath.Split(path)
	n.mu.Lock()
	defer n.mu.Unlock()
	wd, ok := n.dirs[dir]
	if !ok {
		return
	}
	list := n.files[wd][name]
	for i, x := range list {
		if x == s {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) > 0 {
		n.files[wd][name] = list
		return
	}
	delete(n.files[wd], name)
	if len(n.files[wd]) > 0 {
		return
	}
	delete(n.files, wd)
	delete(n.dirs, dir)
	unix.InotifyRmWatch(int(n.f.Fd()), uint32(wd))
	if len(n.dirs) == 0 {
		n.f.Close() // ends read
		n.f = nil
	}
}

// read delivers events until f is closed.
func (n *dirNotifier) read(f *os.File) {
	buf := make([]byte, 16<<10)
	for {
		k, err := f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			continue
		}
		n.dispatch(buf[:k])
	}
}

func (n *dirNotifier) dispatch(events []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for len(events) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&events[0]))
		end := unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(events) {
			return
		}
		name := events[unix.SizeofInotifyEvent:end]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		events = events[end:]
		for _, s := range n.files[int(ev.Wd)][string(name)] {
			s.kick()
		}
	}
}
