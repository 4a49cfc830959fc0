package provider

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/terraform-plugin-log/tflogtest"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/runtime/statedir"
)

// What the provider does on a host shows under TF_LOG=DEBUG: installing
// the runtime logs the server's id, the path and whether it copied, and
// the second install, which finds the executable in place, says so.
func TestServerRuntimeLogsWhatItDoes(t *testing.T) {
	var out bytes.Buffer
	ctx := tflogtest.RootLogger(context.Background(), &out)
	dir := t.TempDir()
	src := filepath.Join(dir, "provider")
	if err := os.WriteFile(src, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var h host.Local
	rs := &serverRuntime{name: "mx", dir: statedir.Dir{Host: h, Path: filepath.Join(dir, "state")}, h: h, src: src}
	if err := os.MkdirAll(rs.dir.Path, 0o700); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := rs.install(ctx); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := tflogtest.MultilineJSONDecode(&out)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("log entries %v, want 2", entries)
	}
	for i, copied := range []bool{true, false} {
		e := entries[i]
		if e["@level"] != "debug" || e["id"] != "mx" || e["path"] != rs.exe() || e["copied"] != copied {
			t.Errorf("entry %d: %v", i, e)
		}
	}
}
