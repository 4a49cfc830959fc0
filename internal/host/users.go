package host

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Users and groups are looked up on the host with getent(1), so that
// names from NSS (LDAP, sssd) resolve as they do for the services there.

// LookupUser returns the uid of the user name on h; a number is taken as
// a uid as it is.
func LookupUser(ctx context.Context, h Host, name string) (int, error) {
	return lookupID(ctx, h, "passwd", name)
}

// LookupGroup returns the gid of the group name on h; a number is taken as
// a gid as it is.
func LookupGroup(ctx context.Context, h Host, name string) (int, error) {
	return lookupID(ctx, h, "group", name)
}

// UserName returns the name of uid on h, or the number when it has none.
func UserName(ctx context.Context, h Host, uid int) string { return lookupName(ctx, h, "passwd", uid) }

// GroupName returns the name of gid on h, or the number when it has none.
func GroupName(ctx context.Context, h Host, gid int) string { return lookupName(ctx, h, "group", gid) }

func lookupID(ctx context.Context, h Host, db, name string) (int, error) {
	if id, err := strconv.Atoi(name); err == nil && id >= 0 {
		return id, nil
	}
	what := map[string]string{"passwd": "user", "group": "group"}[db]
	if name == "" || strings.ContainsAny(name, ": \t\n") {
		return 0, fmt.Errorf("%q is not a %s name", name, what)
	}
	out, err := h.Run(ctx, "getent", db, name)
	if err != nil {
		return 0, fmt.Errorf("%s %q not found on %s (getent %s %s: %v)", what, name, h, db, name, err)
	}
	fields := strings.Split(strings.TrimSpace(string(out)), ":")
	if len(fields) < 3 {
		return 0, fmt.Errorf("getent %s %s on %s printed %q", db, name, h, out)
	}
	return strconv.Atoi(fields[2])
}

func lookupName(ctx context.Context, h Host, db string, id int) string {
	s := strconv.Itoa(id)
	out, err := h.Run(ctx, "getent", db, s)
	if err != nil {
		return s
	}
	if name, _, ok := strings.Cut(strings.TrimSpace(string(out)), ":"); ok && name != "" {
		return name
	}
	return s
}
