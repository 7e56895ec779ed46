package postgres

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// usageConfig is newConfig with an admin that may see every session's details.
func usageConfig(t *testing.T, strategy string) Config {
	t.Helper()
	cfg := newConfig(t, strategy)
	cfg.AdminUser, cfg.AdminPassword = createAdmin(t, "CREATEROLE", statsRole)
	return cfg
}

// openSession logs in as the version's role with its password, as a consumer would, and
// names itself app.
func openSession(t *testing.T, v secret.Version, m secret.Material, app string) *pgx.Conn {
	t.Helper()
	return connectDSN(t, cluster.DSN(v.Metadata[MetadataRole], m.Get(FieldPassword).Reveal(), "postgres")+"&application_name="+app)
}

// backendStart returns conn's backend PID and when its session began, by the server's
// clock. It asks as the superuser: a twin's session acts as the group role (ALTER ROLE
// ... SET role), which may not see its own login's details in pg_stat_activity.
func backendStart(t *testing.T, conn *pgx.Conn) (int32, time.Time) {
	t.Helper()
	pid := conn.PgConn().PID()
	var start time.Time
	if err := superConn(t).QueryRow(t.Context(), "SELECT backend_start FROM pg_stat_activity WHERE pid = $1", int32(pid)).Scan(&start); err != nil {
		t.Fatal(err)
	}
	return int32(pid), start
}

func inUse(t *testing.T, r *Rotator, old secret.Version, keep *secret.Version, since time.Time) rotators.Usage {
	t.Helper()
	u, err := r.InUse(t.Context(), rotators.UsageRequest{Version: old, Keep: keep, Since: since})
	if err != nil {
		t.Fatalf("InUse: %v", err)
	}
	return u
}

// waitIdle asks until the target shows the version idle: a closed session's backend
// leaves pg_stat_activity a moment after the client's goodbye.
func waitIdle(t *testing.T, r *Rotator, old secret.Version, keep *secret.Version, since time.Time) rotators.Usage {
	t.Helper()
	var u rotators.Usage
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if u = inUse(t, r, old, keep, since); !u.InUse() {
			return u
		}
	}
	t.Fatalf("the version still shows in use after its session closed: %+v", u)
	return u
}

// TestInUseAlternating opens a real session with the old twin's password: InUse names it
// (role, application, client, start, pid) until it closes, and never counts the new twin's
// sessions or the admin's own.
func TestInUseAlternating(t *testing.T) {
	cfg := usageConfig(t, StrategyAlternating)
	s := &step{t: t, r: mustNew(t, cfg)}
	v1, m1 := s.rotate(nil)
	old := openSession(t, v1, m1, "orders-api")
	pid, start := backendStart(t, old)
	v2, m2 := s.rotate(&v1)
	promoted := time.Now()
	// A consumer that has moved: its session is the new twin's and must not count.
	openSession(t, v2, m2, "moved-consumer")

	u := inUse(t, s.r, v1, &v2, promoted)
	if len(u.Uses) != 1 {
		t.Fatalf("InUse = %+v, want exactly the old twin's session", u)
	}
	got := u.Uses[0]
	if got.User != v1.Metadata[MetadataRole] || got.Application != "orders-api" ||
		!strings.HasPrefix(got.Client, "127.0.0.1:") || !got.Since.Equal(start) ||
		!strings.Contains(got.Detail, fmt.Sprintf("backend pid %d", pid)) {
		t.Errorf("use = %+v; want user %s, application orders-api, client 127.0.0.1:<port>, since %v, pid %d",
			got, v1.Metadata[MetadataRole], start, pid)
	}
	if !strings.Contains(u.Checked, v1.Metadata[MetadataRole]) || strings.Contains(u.Checked, "before") {
		t.Errorf("Checked = %q; want the old twin named and every session counted", u.Checked)
	}
	// Nothing that is secret reaches the result.
	wantNoSecrets(t, fmt.Errorf("%+v", u), m1.Get(FieldPassword).Reveal(), m2.Get(FieldPassword).Reveal(), cfg.AdminPassword.Reveal())

	// The new twin is in use by the moved consumer: the check is about the role asked.
	if u := inUse(t, s.r, v2, nil, promoted); len(u.Uses) != 1 || u.Uses[0].Application != "moved-consumer" {
		t.Errorf("InUse of the new version = %+v, want the moved consumer's session", u)
	}

	if err := old.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	u = waitIdle(t, s.r, v1, &v2, promoted)
	if u.Checked == "" {
		t.Error("an idle Usage does not say what was checked")
	}
	// InUse only read: the old twin still logs in until Revoke.
	if err := tryLogin(t, v1.Metadata[MetadataRole], m1.Get(FieldPassword).Reveal()); err != nil {
		t.Errorf("the old twin no longer logs in after InUse: %v", err)
	}
}

// TestInUseSingle: the role is shared with the new version, so only sessions that began
// before the promotion (plus the server clock's offset and SessionStartMargin) count, and
// Checked says so. A server clock ahead of the worker's does not make an old session
// look new; a session opened within the margin after the promotion counts too.
func TestInUseSingle(t *testing.T) {
	cfg := usageConfig(t, StrategySingle)
	super := superConn(t)
	exec(t, super, fmt.Sprintf("ALTER ROLE %s WITH LOGIN", ident(cfg.Role)))
	s := &step{t: t, r: mustNew(t, cfg)}
	v1, m1 := s.rotate(nil)
	early := openSession(t, v1, m1, "read-once")
	_, earlyStart := backendStart(t, early)

	v2, m2 := s.rotate(&v1)
	var promoted time.Time // by the server's clock, so the test does not depend on skew
	if err := super.QueryRow(t.Context(), "SELECT clock_timestamp()").Scan(&promoted); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // well past the offset's measuring error
	late := openSession(t, v2, m2, "rereads")
	if _, lateStart := backendStart(t, late); !lateStart.After(promoted) {
		t.Fatalf("the late session began at %v, not after the promotion at %v", lateStart, promoted)
	}

	// The line is the promotion plus the margin: the late session, opened with the new
	// password right after the promotion, counts as well (towards holding).
	u := inUse(t, s.r, v1, &v2, promoted)
	if len(u.Uses) != 2 || u.Uses[0].Application != "read-once" || !u.Uses[0].Since.Equal(earlyStart) || u.Uses[1].Application != "rereads" {
		t.Fatalf("InUse = %+v, want the session opened before the promotion and the one within the margin after it", u)
	}
	if !strings.Contains(u.Checked, "the promotion at "+promoted.UTC().Format(time.RFC3339)) || !strings.Contains(u.Checked, "same role") ||
		!strings.Contains(u.Checked, "margin of "+SessionStartMargin.String()) {
		t.Errorf("Checked = %q; want it to say only sessions begun before the promotion and the margin count, and why", u.Checked)
	}

	// A promotion a margin earlier puts the line between the two sessions.
	sinceMargin := promoted.Add(-SessionStartMargin)
	u = inUse(t, s.r, v1, &v2, sinceMargin)
	if len(u.Uses) != 1 || u.Uses[0].Application != "read-once" {
		t.Fatalf("InUse with the line between the sessions = %+v, want only the early one", u)
	}

	// A worker whose clock is 10 minutes behind the server's records the promotion 10
	// minutes early. Without the measured offset the line would fall before the early
	// session, which would read as new, and the old password as idle.
	behind := 10 * time.Minute
	workerClock = func() time.Time { return time.Now().Add(-behind) }
	t.Cleanup(func() { workerClock = time.Now })
	u = inUse(t, s.r, v1, &v2, sinceMargin.Add(-behind))
	if len(u.Uses) != 1 || u.Uses[0].Application != "read-once" {
		t.Fatalf("InUse with the server's clock 10m ahead = %+v, want the early session still counted, and only it", u)
	}
	workerClock = time.Now

	if err := early.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, s.r, v1, &v2, sinceMargin)

	// Without a promotion time a shared role's sessions cannot be told apart.
	_, err := s.r.InUse(t.Context(), rotators.UsageRequest{Version: v1, Keep: &v2})
	if !errors.Is(err, rotators.ErrInvalidConfig) {
		t.Errorf("InUse of a shared role without Since = %v, want ErrInvalidConfig", err)
	}
}

// TestInUseNeedsReadAllStats: on this server an admin without pg_read_all_stats sees
// another role's sessions with their details hidden; InUse says which grant is missing
// instead of reporting the role idle or its callers unknown.
func TestInUseNeedsReadAllStats(t *testing.T) {
	cfg := newConfig(t, StrategyAlternating) // the shared admin: CREATEROLE only
	s := &step{t: t, r: mustNew(t, cfg)}
	v1, m1 := s.rotate(nil)
	openSession(t, v1, m1, "orders-api")
	v2, _ := s.rotate(&v1)

	// What the server shows this admin, so the test proves the privilege matters here.
	admin := connectDSN(t, cluster.DSN(cfg.AdminUser, cfg.AdminPassword.Reveal(), "postgres"))
	var listed int
	var hidden bool
	err := admin.QueryRow(t.Context(), `
		SELECT count(*), bool_and(backend_start IS NULL AND client_addr IS NULL)
		FROM pg_stat_activity WHERE usename = $1`, v1.Metadata[MetadataRole]).Scan(&listed, &hidden)
	if err != nil {
		t.Fatal(err)
	}
	if listed != 1 || !hidden {
		t.Fatalf("without %s the admin sees %d session(s), details hidden %v; expected 1 with hidden details", statsRole, listed, hidden)
	}

	_, err = s.r.InUse(t.Context(), rotators.UsageRequest{Version: v1, Keep: &v2, Since: time.Now()})
	if !errors.Is(err, rotators.ErrPermissionDenied) || !strings.Contains(err.Error(), "GRANT pg_read_all_stats TO") {
		t.Fatalf("InUse = %v, want ErrPermissionDenied naming the grant of pg_read_all_stats", err)
	}
	wantNoSecrets(t, err, m1.Get(FieldPassword).Reveal(), cfg.AdminPassword.Reveal())
}

// TestInUseOfRoleThatIsGone: a role that does not exist has no sessions; metadata naming
// a role the rotator does not manage is refused.
func TestInUseOfRoleThatIsGone(t *testing.T) {
	cfg := usageConfig(t, StrategyAlternating)
	r := mustNew(t, cfg)
	gone := secret.Version{Token: "test/gone", Metadata: map[string]string{MetadataRole: r.cfg.Twins[1]}}
	u := inUse(t, r, gone, nil, time.Now())
	if u.InUse() || !strings.Contains(u.Checked, "does not exist") {
		t.Errorf("InUse of a role that does not exist = %+v, want idle, saying the role does not exist", u)
	}
	other := secret.Version{Token: "test/other", Metadata: map[string]string{MetadataRole: "postgres"}}
	if _, err := r.InUse(t.Context(), rotators.UsageRequest{Version: other}); !errors.Is(err, rotators.ErrInvalidConfig) {
		t.Errorf("InUse of an unmanaged role = %v, want ErrInvalidConfig", err)
	}
}
