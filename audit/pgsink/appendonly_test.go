package pgsink

import (
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/audit/audittest"
)

// TestAppendOnly: the writer role (a real login with a password) cannot change or remove
// anything, for want of privileges; the owner, who has them, is stopped by the trigger.
func TestAppendOnly(t *testing.T) {
	schema := freshSchema(t)
	c := roles(t)
	s := openWriter(t, schema)
	ctx := t.Context()
	if _, _, err := s.Append(ctx, audittest.Record("app-db", "a1", time.Now())); err != nil {
		t.Fatal(err)
	}
	if err := s.AddCheckpoint(ctx, audit.Checkpoint{Time: time.Now(), KeyID: "k"}); err != nil {
		t.Fatal(err)
	}
	tables := []string{schema + ".records", schema + ".checkpoints"}
	stmts := func(table string) map[string]string {
		return map[string]string{
			"update":   `UPDATE ` + table + ` SET body = body || ' '`,
			"delete":   `DELETE FROM ` + table,
			"truncate": `TRUNCATE ` + table,
		}
	}
	for _, who := range []struct {
		name, dsn, code string
	}{
		// 42501: no privilege. P0001: the trigger's exception.
		{"writer", writerDSN(c), "42501"},
		{"owner", ownerDSN(c), "P0001"},
	} {
		conn := connect(t, who.dsn)
		for _, table := range tables {
			for op, stmt := range stmts(table) {
				_, err := conn.Exec(ctx, stmt)
				if err == nil {
					t.Errorf("%s: %s on %s was allowed", who.name, op, table)
					continue
				}
				if got := sqlstate(err); got != who.code {
					t.Errorf("%s: %s on %s refused with %q (%v), want SQLSTATE %s", who.name, op, table, got, err, who.code)
				}
				if who.code == "P0001" && !strings.Contains(err.Error(), "append-only") {
					t.Errorf("%s: %s on %s: %v", who.name, op, table, err)
				}
			}
		}
	}
	all, err := s.Records(ctx, audit.Filter{})
	if err != nil || len(all) != 1 || all[0].ComputeHash() != all[0].Hash {
		t.Fatalf("after the refused changes: %d records, %v", len(all), err)
	}
}

// TestInstallIsIdempotent: installing twice, and concurrently, works and leaves the
// writer with SELECT and INSERT only, even after someone granted it more by hand.
func TestInstallIsIdempotent(t *testing.T) {
	schema := freshSchema(t)
	c := roles(t)
	ctx := t.Context()
	owner := connect(t, ownerDSN(c))
	if _, err := owner.Exec(ctx, `GRANT UPDATE, DELETE, TRUNCATE ON `+schema+`.records TO `+writerRole); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- Install(ctx, ownerDSN(c), schema, writerRole) }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("install again: %v", err)
		}
	}
	var privs []string
	rows, err := owner.Query(ctx, `SELECT table_name || ':' || privilege_type FROM information_schema.role_table_grants
		WHERE grantee = $1 AND table_schema = $2 ORDER BY 1`, writerRole, schema)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		privs = append(privs, p)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	want := "checkpoints:INSERT checkpoints:SELECT records:INSERT records:SELECT"
	if got := strings.Join(privs, " "); got != want {
		t.Fatalf("writer's privileges = %s, want %s", got, want)
	}
}
