package pgxconsumer_test

import (
	"context"
	"log"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyturn/keyturn/consumer"
	"github.com/keyturn/keyturn/consumer/pgxconsumer"
	"github.com/keyturn/keyturn/secret"
)

// A pgxpool whose connections log in with the rotated password (and, with the
// alternating strategy, the twin role) of prod/orders-db/app. It needs a server, so it is
// compiled, not run.
func ExampleNewPool() {
	ctx := context.Background()
	src, err := consumer.OpenFile("/var/lib/keyturn/store")
	if err != nil {
		log.Fatal(err)
	}
	// With a 1h grace period: the cache re-reads every 5 minutes...
	cache, err := consumer.New(src, consumer.Options{TTL: 5 * time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	hook := pgxconsumer.New(cache, "prod/orders-db/app", pgxconsumer.Options{
		OnRetry: func(id secret.ID, err error) { log.Printf("login with %s refused, read again: %v", id, err) },
	})

	// No user or password in the DSN: both come from the secret.
	cfg, err := pgxpool.ParseConfig("postgres://db.internal:5432/orders?sslmode=verify-full")
	if err != nil {
		log.Fatal(err)
	}
	// ...and no connection lives past half the grace period, so none still uses the
	// old password when it is revoked.
	cfg.MaxConnLifetime = 30 * time.Minute
	cfg.MaxConnLifetimeJitter = 5 * time.Minute
	pool, err := pgxconsumer.NewPool(ctx, cfg, hook)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil {
		log.Fatal(err)
	}
}

// One connection, for a program that needs no pool.
func ExampleHook_Connect() {
	ctx := context.Background()
	src, err := consumer.OpenFile("/var/lib/keyturn/store")
	if err != nil {
		log.Fatal(err)
	}
	cache, err := consumer.New(src, consumer.Options{TTL: 5 * time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := pgx.ParseConfig("postgres://db.internal:5432/orders?sslmode=verify-full")
	if err != nil {
		log.Fatal(err)
	}
	conn, err := pgxconsumer.New(cache, "prod/orders-db/app", pgxconsumer.Options{}).Connect(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)
}
