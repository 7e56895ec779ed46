package mysqlconsumer

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/keyturn/keyturn/consumer"
	"github.com/keyturn/keyturn/internal/harness/mariadbtest"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/rotators/mariadb"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/stores/file"
)

var server *mariadbtest.Server

func TestMain(m *testing.M) { os.Exit(mariadbtest.Main(m, &server)) }

func TestNamesMatchTheRotator(t *testing.T) {
	if FieldPassword != mariadb.FieldPassword || MetadataUsername != mariadb.MetadataUsername {
		t.Fatal("the field or metadata key differs from rotators/mariadb's")
	}
}

// TestPoolFollowsTheRotation rotates twin accounts with the mariadb rotator while a
// database/sql pool logs in through the connector: within the grace the pool needs no
// retry; once the old twin is locked, a new connection is refused once with the cached
// twin, retried with a fresh read, and logs in as the new twin.
func TestPoolFollowsTheRotation(t *testing.T) {
	s := mariadbtest.Need(t, server)
	const adminPass = "Consumer-Admin-Password-7e2a"
	if err := s.Exec(t.Context(), "CREATE DATABASE shop", "CREATE TABLE shop.items (x int)", "CREATE ROLE shop", "GRANT SELECT ON shop.* TO shop"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAdmin(t.Context(), "keyturn", adminPass, "shop"); err != nil {
		t.Fatal(err)
	}
	rot, err := mariadb.New(mariadb.Config{Host: s.Host, Port: s.Port, TLS: mariadb.TLSDisable, Role: "shop", AdminUser: "keyturn", AdminPassword: secret.NewSensitive(adminPass)})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "store")
	st, err := file.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	src, err := consumer.OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := consumer.New(src, consumer.Options{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	const id = secret.ID("prod/shop/db")
	var made []string
	rotate := func(n int, current *secret.Version) secret.Version {
		t.Helper()
		g, err := rot.Generate(t.Context(), rotators.GenerateRequest{SecretID: id, Current: current})
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, g.Material.Get(FieldPassword).Reveal())
		token := secret.VersionToken(fmt.Sprintf("v%d", n))
		v, err := st.StagePending(t.Context(), stores.StageRequest{SecretID: id, Token: token, Material: g.Material, Metadata: g.Metadata})
		if err != nil {
			t.Fatal(err)
		}
		if err := rot.Apply(t.Context(), rotators.ApplyRequest{Version: v, Material: g.Material}); err != nil {
			t.Fatal(err)
		}
		if err := st.Promote(t.Context(), id, token); err != nil {
			t.Fatal(err)
		}
		return v
	}
	v1 := rotate(1, nil)

	var retries atomic.Int64
	var retryErrs []string
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr = "tcp", s.Addr()
	connector, err := NewConnector(cfg, cache, id, Options{OnRetry: func(got secret.ID, err error) {
		retries.Add(1)
		retryErrs = append(retryErrs, fmt.Sprintf("%v %+v", err, err))
	}})
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	whoami := func() string {
		t.Helper()
		var user string
		if err := db.QueryRowContext(t.Context(), "SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1) FROM shop.items RIGHT JOIN (SELECT 1) one ON true LIMIT 1").Scan(&user); err != nil {
			t.Fatalf("a query through the connector: %v", err)
		}
		return user
	}
	if got := whoami(); got != v1.Metadata[MetadataUsername] {
		t.Fatalf("logged in as %q, want %q", got, v1.Metadata[MetadataUsername])
	}
	// A rotation within the grace: the cache still holds v1, which still works.
	v2 := rotate(2, &v1)
	db.SetMaxIdleConns(0) // every query takes a new connection from here on
	if whoami(); retries.Load() != 0 {
		t.Fatalf("%d retries while the old twin still works, want 0", retries.Load())
	}
	// The revoke locks the old twin: the next connection is refused once, then logs in
	// as the new twin.
	if err := rot.Revoke(t.Context(), rotators.RevokeRequest{Version: v1, Keep: &v2}); err != nil {
		t.Fatal(err)
	}
	if got := whoami(); got != v2.Metadata[MetadataUsername] || retries.Load() != 1 {
		t.Fatalf("after the revoke: logged in as %q with %d retries, want %q with 1", got, retries.Load(), v2.Metadata[MetadataUsername])
	}
	for _, msg := range retryErrs {
		for _, p := range append(made, adminPass) {
			if strings.Contains(msg, p) {
				t.Fatal("an error given to OnRetry holds a password")
			}
		}
	}
}
