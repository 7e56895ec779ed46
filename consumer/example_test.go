package consumer_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keyturn/keyturn/consumer"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators/certs"
	"github.com/keyturn/keyturn/rotators/localca"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
	"github.com/keyturn/keyturn/stores/file"
)

// rotate writes a version the way Keyturn's worker does: staged as pending, then promoted
// to current.
func rotate(ctx context.Context, st stores.Store, id secret.ID, token, password string) error {
	_, err := st.StagePending(ctx, stores.StageRequest{
		SecretID: id,
		Token:    secret.VersionToken(token),
		Material: secret.Material{"password": secret.NewSensitive(password)},
		Metadata: map[string]string{"username": "orders_app"},
	})
	if err != nil {
		return err
	}
	return st.Promote(ctx, id, secret.VersionToken(token))
}

// Read the current version of a secret from the dev file store through a cache.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "keyturn-example")
	defer os.RemoveAll(dir)

	// Keyturn's side: the worker rotates dev/orders-db into the file store.
	worker, _ := file.Open(dir)
	if err := rotate(ctx, worker, "dev/orders-db", "v1", "first-password"); err != nil {
		fmt.Println(err)
		return
	}

	// The application's side.
	src, err := consumer.OpenFile(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	cache, err := consumer.New(src, consumer.Options{TTL: time.Minute})
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := cache.Get(ctx, "dev/orders-db")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("version:", v.Version.Number, v.Version.Token)
	fmt.Println("user:", v.Version.Metadata["username"])
	fmt.Println("password:", v.Field("password")) // Sensitive prints redacted
	fmt.Println("is the first one:", v.Field("password").Reveal() == "first-password")
	// Output:
	// version: 1 v1
	// user: orders_app
	// password: [REDACTED]
	// is the first one: true
}

// After a rotation, a consumer whose credential is refused invalidates the cached value
// and reads the new version at once, without waiting for the TTL.
func ExampleCache_Invalidate() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "keyturn-example")
	defer os.RemoveAll(dir)
	worker, _ := file.Open(dir)
	_ = rotate(ctx, worker, "dev/orders-db", "v1", "first-password")

	src, _ := consumer.OpenFile(dir)
	cache, _ := consumer.New(src, consumer.Options{TTL: time.Hour})
	v, _ := cache.Get(ctx, "dev/orders-db")
	fmt.Println("before:", v.Version.Number)

	_ = rotate(ctx, worker, "dev/orders-db", "v2", "second-password")
	v, _ = cache.Get(ctx, "dev/orders-db")
	fmt.Println("cached within the TTL:", v.Version.Number)

	// e.g. Postgres answered 28P01 (invalid password) to a new connection.
	cache.Invalidate("dev/orders-db")
	v, _ = cache.Get(ctx, "dev/orders-db")
	fmt.Println("after Invalidate:", v.Version.Number)
	// Output:
	// before: 1
	// cached within the TTL: 1
	// after Invalidate: 2
}

// outage is a Source that fails while down is set, standing in for a store that cannot
// be reached.
type outage struct {
	consumer.Source
	down bool
}

func (o *outage) Current(ctx context.Context, id secret.ID) (consumer.Value, error) {
	if o.down {
		return consumer.Value{}, fmt.Errorf("read %s: connection refused", id)
	}
	return o.Source.Current(ctx, id)
}

// The store is unreachable: the cache serves the last good value while it is younger
// than MaxStale and says so through OnStale; after that Get fails, naming the secret.
func ExampleOptions_stale() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "keyturn-example")
	defer os.RemoveAll(dir)
	worker, _ := file.Open(dir)
	_ = rotate(ctx, worker, "dev/orders-db", "v1", "first-password")
	src, _ := consumer.OpenFile(dir)
	store := &outage{Source: src}

	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) // a clock the example moves
	cache, _ := consumer.New(store, consumer.Options{
		TTL:      time.Minute,
		MaxStale: 10 * time.Minute,
		Now:      func() time.Time { return now },
		OnStale: func(id secret.ID, age time.Duration, err error) {
			fmt.Printf("serving %s stale, %s old (%v)\n", id, age, err)
		},
	})
	_, _ = cache.Get(ctx, "dev/orders-db")

	store.down = true
	now = now.Add(5 * time.Minute)
	v, err := cache.Get(ctx, "dev/orders-db")
	fmt.Println("got version", v.Version.Number, "error:", err)

	now = now.Add(10 * time.Minute)
	_, err = cache.Get(ctx, "dev/orders-db")
	fmt.Println(err)
	// Output:
	// serving dev/orders-db stale, 5m0s old (read dev/orders-db: connection refused)
	// got version 1 error: <nil>
	// get dev/orders-db: the last good value, read 15m0s ago, is older than MaxStale 10m0s: read dev/orders-db: connection refused
}

// An AWS SDK client signing with an IAM access key Keyturn rotates (fields
// access_key_id and secret_access_key). It needs AWS, so it is compiled, not run.
func ExampleNewAWSCredentials() {
	ctx := context.Background()
	src, err := consumer.OpenFile("/var/lib/keyturn/store")
	if err != nil {
		log.Fatal(err)
	}
	// The SDK's credentials expire when the cache re-reads: keep the TTL well under the
	// rotation's grace period.
	cache, err := consumer.New(src, consumer.Options{TTL: 5 * time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	creds := consumer.NewAWSCredentials(cache, "prod/billing/aws")
	cfg, err := config.LoadDefaultConfig(ctx, config.WithCredentialsProvider(aws.NewCredentialsCache(creds)))
	if err != nil {
		log.Fatal(err)
	}
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		log.Fatal(err)
	}
	log.Println(aws.ToString(out.Arn))
}

// Serve HTTPS with a certificate Keyturn rotates: every handshake takes the current
// certificate from the cache, so the server presents a new one as soon as the cache has
// read it, with no restart. Here the worker's side rotates a certificate signed by a
// local CA into the dev file store.
func ExampleNewTLSCertificates() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "keyturn-example")
	defer os.RemoveAll(dir)
	storeDir := filepath.Join(dir, "store")

	// Keyturn's side: the localca rotator, run through the rotation steps.
	caPEM, caKey, _ := localca.NewCA("Example CA", time.Hour)
	rotator, _ := localca.New(localca.Config{
		CACertPEM: caPEM, CAKeyPEM: caKey, CRLFile: filepath.Join(dir, "ca.crl"),
		Request: certs.Request{CommonName: "api.example.test", IPAddresses: []string{"127.0.0.1"}, TTL: time.Hour},
	})
	worker, _ := file.Open(storeDir)
	steps := rotation.Steps{SecretID: "prod/api/tls", Rotator: rotator, Store: worker}
	rotateCertificate := func(token secret.VersionToken) string {
		created, err := steps.Create(ctx, token)
		if err == nil {
			_, err = steps.Promote(ctx, token)
		}
		if err != nil {
			fmt.Println(err)
		}
		return created.Version.Metadata[certs.MetadataSerial]
	}
	first := rotateCertificate("run-1")

	// The application's side: an HTTPS server whose certificate comes from the cache.
	src, _ := consumer.OpenFile(storeDir)
	cache, _ := consumer.New(src, consumer.Options{TTL: 5 * time.Minute})
	serverCerts := consumer.NewTLSCertificates(cache, "prod/api/tls", consumer.TLSOptions{})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{
		TLSConfig:         &tls.Config{GetCertificate: serverCerts.GetCertificate, MinVersion: tls.VersionTLS12},
		Handler:           http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	defer srv.Close()

	// A client trusting the CA; each request is a new connection, so a new handshake.
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
	}}
	served := func() string {
		resp, err := client.Get("https://" + ln.Addr().String())
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		return certs.FormatSerial(resp.TLS.PeerCertificates[0].SerialNumber)
	}

	fmt.Println("presents the first certificate:", served() == first)
	second := rotateCertificate("run-2")
	// The cache reads the new version after its TTL; Invalidate makes that now.
	cache.Invalidate("prod/api/tls")
	fmt.Println("presents the second certificate:", served() == second)
	// Output:
	// presents the first certificate: true
	// presents the second certificate: true
}

// A client presenting a certificate Keyturn rotates to a server that requires one
// (mutual TLS). It needs that server, so it is compiled, not run.
func ExampleTLSCertificates_GetClientCertificate() {
	src, err := consumer.OpenFile("/var/lib/keyturn/store")
	if err != nil {
		log.Fatal(err)
	}
	cache, err := consumer.New(src, consumer.Options{TTL: 5 * time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	clientCerts := consumer.NewTLSCertificates(cache, "prod/billing/client-tls", consumer.TLSOptions{})
	roots, err := x509.SystemCertPool()
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs:              roots,
		GetClientCertificate: clientCerts.GetClientCertificate, // asked on every new connection
		MinVersion:           tls.VersionTLS12,
	}}}
	resp, err := client.Get("https://payments.internal/health")
	if err != nil {
		// A refused certificate: read the secret again before the next connection.
		cache.Invalidate("prod/billing/client-tls")
		log.Fatal(err)
	}
	defer resp.Body.Close()
	log.Println(resp.Status)
}
