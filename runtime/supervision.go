package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"sync"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
	"github.com/mailstack/terraform-provider-mailstack/runtime/supervise"
)

// observedRuntime is the runtime as the control API serves it: the status
// also says which executable runs and how the supervisor sees it, so the
// provider can plan an upgrade and report a crash loop.
type observedRuntime struct{ *mailRuntime }

var (
	_ control.Backend         = observedRuntime{}
	_ control.PasswordChecker = observedRuntime{}
)

func (o observedRuntime) Status() control.Status {
	st := o.mailRuntime.Status()
	st.ExecutableSHA256 = executableSHA256()
	st.Supervisor = supervisorOf(o.dir)
	return st
}

// supervisorOf returns the status of the live builtin supervisor that
// runs this process, or nil.
func supervisorOf(dir string) *supervise.Status {
	s, err := supervise.ReadStatus(dir)
	if err != nil || s.ServePID != os.Getpid() || !(host.Local{}).Alive(s.PID) {
		return nil
	}
	return &s
}

// executableSHA256 hashes the executable this process runs, once. It reads
// /proc/self/exe where there is one, which stays the running binary after
// an upgrade has replaced the file at its path.
var executableSHA256 = sync.OnceValue(func() string {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		exe, err := os.Executable()
		if err != nil {
			return ""
		}
		if f, err = os.Open(exe); err != nil {
			return ""
		}
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
})
