//go:build !linux

package listener

// dirNotifier has no file system notifications here: keystore changes are
// seen by polling alone.
type dirNotifier struct{}

func (*dirNotifier) add(*certSource) bool { return false }
func (*dirNotifier) remove(*certSource)   {}
