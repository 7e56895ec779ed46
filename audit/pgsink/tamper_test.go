package pgsink

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/audit/audittest"
	"github.com/keyturn/keyturn/secret"
)

// Chains of the tamper test: a holds 5 records, b 3, all under a signed checkpoint.
const (
	chainA = "secret/svc-a"
	chainB = "secret/svc-b"
)

// TestTamperDetected: a superuser bypasses the append-only trigger (replica mode, or
// disabling it) and changes history in each way an insider could; Verify, with a
// checkpoint signed before, must report each one, with the right finding.
func TestTamperDetected(t *testing.T) {
	cases := []struct {
		name string
		// disableTrigger bypasses with ALTER TABLE ... DISABLE TRIGGER instead of
		// session_replication_role = replica.
		disableTrigger bool
		tamper         func(ctx context.Context, conn *pgx.Conn, tbl string) error
		// want is a phrase of the problem Verify must report; "" means no problem.
		want string
	}{
		{name: "untouched", tamper: func(context.Context, *pgx.Conn, string) error { return nil }},
		{
			name: "field edited in a body",
			tamper: func(ctx context.Context, conn *pgx.Conn, tbl string) error {
				return exec1(ctx, conn, `UPDATE `+tbl+` SET body = replace(body, '"reason":"routine"', '"reason":"forged"') WHERE chain = $1 AND seq = 3`, chainA)
			},
			want: "a field was changed",
		},
		{
			name: "body replaced by garbage",
			tamper: func(ctx context.Context, conn *pgx.Conn, tbl string) error {
				return exec1(ctx, conn, `UPDATE `+tbl+` SET body = 'not json' WHERE chain = $1 AND seq = 2`, chainA)
			},
			want: "a field was changed",
		},
		{
			name:           "record deleted",
			disableTrigger: true,
			tamper: func(ctx context.Context, conn *pgx.Conn, tbl string) error {
				return exec1(ctx, conn, `DELETE FROM `+tbl+` WHERE chain = $1 AND seq = 2`, chainA)
			},
			want: "a record before it was removed",
		},
		{
			name: "two records' seq swapped",
			tamper: func(ctx context.Context, conn *pgx.Conn, tbl string) error {
				for _, s := range [][2]int{{2, 1000}, {3, 2}, {1000, 3}} {
					if err := exec1(ctx, conn, `UPDATE `+tbl+` SET seq = $2 WHERE chain = $1 AND seq = $3`, chainA, s[1], s[0]); err != nil {
						return err
					}
				}
				return nil
			},
			want: "records were reordered",
		},
		{
			name: "tail deleted after a signed checkpoint",
			tamper: func(ctx context.Context, conn *pgx.Conn, tbl string) error {
				_, err := conn.Exec(ctx, `DELETE FROM `+tbl+` WHERE chain = $1 AND seq >= 4`, chainA)
				return err
			},
			want: "records were removed from the end",
		},
		{
			name:           "whole chain deleted",
			disableTrigger: true,
			tamper: func(ctx context.Context, conn *pgx.Conn, tbl string) error {
				_, err := conn.Exec(ctx, `DELETE FROM `+tbl+` WHERE chain = $1`, chainB)
				return err
			},
			want: "(or the whole chain)",
		},
		{name: "chain rewritten and rehashed", tamper: rewriteChain, want: "the chain was rewritten"},
		{
			name: "checkpoint edited",
			tamper: func(ctx context.Context, conn *pgx.Conn, tbl string) error {
				cps := strings.TrimSuffix(tbl, `"records"`) + `"checkpoints"`
				return exec1(ctx, conn, `UPDATE `+cps+` SET body = replace(body, '"count":5', '"count":4')`)
			},
			want: "has a signature no trusted key verifies",
		},
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer := audit.NewSigner(priv)
	keys := []ed25519.PublicKey{signer.Public()}
	c := roles(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			schema := freshSchema(t)
			s := openWriter(t, schema)
			t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
			for i := range 5 {
				must(t, append1(ctx, s, "svc-a", fmt.Sprintf("a%d", i), t0.Add(time.Duration(i)*time.Minute)))
			}
			for i := range 3 {
				must(t, append1(ctx, s, "svc-b", fmt.Sprintf("b%d", i), t0.Add(time.Duration(i)*time.Minute)))
			}
			if _, signed, err := (audit.Checkpointer{Sink: s, Signer: signer}).Checkpoint(ctx, t0.Add(time.Hour)); err != nil || !signed {
				t.Fatalf("checkpoint: signed=%v err=%v", signed, err)
			}

			super := connect(t, c.SuperDSN())
			tbl := pgx.Identifier{schema, "records"}.Sanitize()
			bypass, restore := `SET session_replication_role = replica`, `RESET session_replication_role`
			if tc.disableTrigger {
				bypass = `ALTER TABLE ` + tbl + ` DISABLE TRIGGER append_only`
				restore = `ALTER TABLE ` + tbl + ` ENABLE TRIGGER append_only`
			}
			must(t, exec0(ctx, super, bypass))
			must(t, tc.tamper(ctx, super, tbl))
			must(t, exec0(ctx, super, restore))

			all, err := s.Records(ctx, audit.Filter{})
			must(t, err)
			cps, err := s.Checkpoints(ctx)
			must(t, err)
			rep := audit.Verify(all, cps, keys, nil)
			var found []string
			for _, p := range rep.Problems {
				found = append(found, p.String())
			}
			t.Logf("verify: %d problems: %s", len(found), strings.Join(found, "; "))
			if tc.want == "" {
				if !rep.OK() {
					t.Fatal("untouched records do not verify")
				}
				return
			}
			if rep.OK() {
				t.Fatalf("%s went unnoticed", tc.name)
			}
			if !strings.Contains(strings.Join(found, "\n"), tc.want) {
				t.Fatalf("no problem says %q", tc.want)
			}
		})
	}
}

// rewriteChain changes record 2 of chain a and reseals it and every record after it, so
// the chain links and every hash matches: only the signed checkpoint can tell.
func rewriteChain(ctx context.Context, conn *pgx.Conn, tbl string) error {
	rows, err := conn.Query(ctx, `SELECT body FROM `+tbl+` WHERE chain = $1 ORDER BY seq`, chainA)
	if err != nil {
		return err
	}
	bodies, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	prev := ""
	for i, body := range bodies {
		r, err := decode(body)
		if err != nil {
			return err
		}
		if i == 1 {
			r.Reason = "rewritten"
		}
		if i >= 1 {
			r = r.Seal(r.Chain, r.Seq, prev)
			line, err := r.MarshalLine()
			if err != nil {
				return err
			}
			if err := exec1(ctx, conn, `UPDATE `+tbl+` SET body = $3 WHERE chain = $1 AND seq = $2`, r.Chain, r.Seq, strings.TrimSuffix(string(line), "\n")); err != nil {
				return err
			}
		}
		prev = r.Hash
	}
	return nil
}

func append1(ctx context.Context, s *Sink, id, eid string, at time.Time) error {
	_, _, err := s.Append(ctx, audittest.Record(secret.ID(id), eid, at))
	return err
}

// exec1 runs a statement that must change exactly one row.
func exec1(ctx context.Context, conn *pgx.Conn, sql string, args ...any) error {
	tag, err := conn.Exec(ctx, sql, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("%d rows changed, want 1", tag.RowsAffected())
	}
	return nil
}

func exec0(ctx context.Context, conn *pgx.Conn, sql string) error {
	_, err := conn.Exec(ctx, sql)
	return err
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
