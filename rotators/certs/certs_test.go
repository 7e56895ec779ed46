package certs

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

var validRequest = Request{
	CommonName:  "app.keyturn.test",
	DNSNames:    []string{"api.keyturn.test"},
	IPAddresses: []string{"127.0.0.1"},
	TTL:         time.Hour,
}

func TestValidate(t *testing.T) {
	for name, c := range map[string]struct {
		mutate func(*Request)
		want   []string // substrings of the error; none means valid
	}{
		"valid":               {func(*Request) {}, nil},
		"only SANs":           {func(r *Request) { r.CommonName = "" }, nil},
		"rsa default bits":    {func(r *Request) { r.KeyType = KeyTypeRSA }, nil},
		"rsa 4096":            {func(r *Request) { r.KeyType, r.KeyBits = KeyTypeRSA, 4096 }, nil},
		"ec 256":              {func(r *Request) { r.KeyBits = 256 }, nil},
		"wildcard":            {func(r *Request) { r.DNSNames = []string{"*.keyturn.test"} }, nil},
		"IP common name":      {func(r *Request) { r.CommonName = "10.0.0.1" }, nil},
		"no names":            {func(r *Request) { r.CommonName, r.DNSNames, r.IPAddresses = "", nil, nil }, []string{"common_name, alt_names and ip_sans are all empty"}},
		"long common name":    {func(r *Request) { r.CommonName = strings.Repeat("a", 65) + ".test" }, []string{"common_name", "longer than 64"}},
		"URL alt name":        {func(r *Request) { r.DNSNames = []string{"https://x.test"} }, []string{"alt_names", "is a URL"}},
		"bad IP":              {func(r *Request) { r.IPAddresses = []string{"host.test"} }, []string{"ip_sans", "not an IP address"}},
		"no ttl":              {func(r *Request) { r.TTL = 0 }, []string{"ttl", "720h"}},
		"tiny ttl":            {func(r *Request) { r.TTL = time.Second }, []string{"ttl", "shorter than a minute"}},
		"unknown key type":    {func(r *Request) { r.KeyType = "ed25519" }, []string{"key_type", `"ec" or "rsa"`}},
		"small rsa":           {func(r *Request) { r.KeyType, r.KeyBits = KeyTypeRSA, 1024 }, []string{"key_bits", "minimum of 2048"}},
		"odd rsa":             {func(r *Request) { r.KeyType, r.KeyBits = KeyTypeRSA, 2500 }, []string{"key_bits", "not a supported"}},
		"ec with bits":        {func(r *Request) { r.KeyBits = 384 }, []string{"key_bits 384", "key_type ec"}},
		"renew_at 1":          {func(r *Request) { r.RenewAt = 1 }, []string{"renew_at 1"}},
		"renew_at negative":   {func(r *Request) { r.RenewAt = -0.5 }, []string{"renew_at -0.5"}},
		"two problems":        {func(r *Request) { r.TTL, r.KeyType = 0, "dsa" }, []string{"ttl", "key_type"}},
		"embedded wildcard":   {func(r *Request) { r.DNSNames = []string{"a.*.test"} }, []string{"wildcard"}},
		"empty label":         {func(r *Request) { r.DNSNames = []string{"a..test"} }, []string{"empty label"}},
		"space in name":       {func(r *Request) { r.CommonName = "my host" }, []string{"common_name", "cannot"}},
		"empty alt name":      {func(r *Request) { r.DNSNames = []string{""} }, []string{"alt_names", "is empty"}},
		"renew_at just in":    {func(r *Request) { r.RenewAt = 0.01 }, nil},
		"renew_at just below": {func(r *Request) { r.RenewAt = 0.99 }, nil},
	} {
		t.Run(name, func(t *testing.T) {
			r := validRequest
			r.DNSNames = append([]string(nil), validRequest.DNSNames...)
			c.mutate(&r)
			err := r.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, rotators.ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestApplyDefaults(t *testing.T) {
	r := Request{KeyType: KeyTypeRSA}
	r.ApplyDefaults()
	if r.KeyBits != DefaultRSABits || r.RenewAt != DefaultRenewAt {
		t.Errorf("rsa defaults: %+v", r)
	}
	var e Request
	e.ApplyDefaults()
	if e.KeyType != KeyTypeEC || e.KeyBits != 0 {
		t.Errorf("ec defaults: %+v", e)
	}
}

func TestNewKey(t *testing.T) {
	key, keyPEM, err := NewKey("", 0)
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve.Params().Name != "P-256" {
		t.Fatalf("default key is %T, want ECDSA P-256", key)
	}
	if block, _ := pem.Decode([]byte(keyPEM.Reveal())); block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("key PEM is not PKCS#8")
	}
	back, err := ParsePrivateKey(keyPEM.Reveal())
	if err != nil || !back.Public().(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Fatalf("key does not round-trip: %v", err)
	}
	if fmt.Sprint(keyPEM) != secret.Redacted {
		t.Error("key PEM prints")
	}

	key, _, err = NewKey(KeyTypeRSA, 3072)
	if err != nil {
		t.Fatal(err)
	}
	if rk, ok := key.(*rsa.PrivateKey); !ok || rk.N.BitLen() != 3072 {
		t.Fatalf("rsa key is %T", key)
	}
	for _, bad := range []struct {
		typ  string
		bits int
	}{{KeyTypeRSA, 1024}, {KeyTypeEC, 384}, {"dsa", 0}} {
		if _, _, err := NewKey(bad.typ, bad.bits); !errors.Is(err, rotators.ErrInvalidConfig) {
			t.Errorf("NewKey(%q, %d) = %v, want ErrInvalidConfig", bad.typ, bad.bits, err)
		}
	}
}

func TestNewCSR(t *testing.T) {
	key, _, err := NewKey(KeyTypeEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	csrPEM, err := NewCSR(validRequest, key)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("CSR PEM type wrong")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatalf("CSR signature: %v", err)
	}
	if csr.Subject.CommonName != validRequest.CommonName {
		t.Errorf("CN %q", csr.Subject.CommonName)
	}
	if got := strings.Join(csr.DNSNames, ","); got != "app.keyturn.test,api.keyturn.test" {
		t.Errorf("DNS SANs %q, want the CN then the alt names", got)
	}
	if len(csr.IPAddresses) != 1 || !csr.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("IP SANs %v", csr.IPAddresses)
	}
	if !csr.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Error("CSR carries another key")
	}
}

func TestSerialFormat(t *testing.T) {
	for _, c := range []struct {
		n    *big.Int
		want string
	}{
		{big.NewInt(0x0a0bff), "0a:0b:ff"},
		{big.NewInt(1), "01"},
		{big.NewInt(0), "00"},
		{new(big.Int).SetBytes([]byte{0x7f, 0, 0x10}), "7f:00:10"},
	} {
		if got := FormatSerial(c.n); got != c.want {
			t.Errorf("FormatSerial(%x) = %q, want %q", c.n, got, c.want)
		}
		back, err := ParseSerial(c.want)
		if err != nil || back.Cmp(c.n) != 0 {
			t.Errorf("ParseSerial(%q) = %v, %v", c.want, back, err)
		}
	}
	if !SameSerial("0a:0b:ff", "0A-0B-FF") || !SameSerial("0a0bff", "a:0b:ff") || SameSerial("01", "02") || SameSerial("", "") || SameSerial("zz", "zz") {
		t.Error("SameSerial")
	}
}

func TestMetadata(t *testing.T) {
	ca := newTestCA(t, "meta CA")
	m := ca.issue(t, validRequest, leafOpts{})
	leaf, err := Leaf(m)
	if err != nil {
		t.Fatal(err)
	}
	md := Metadata(leaf)
	if md[MetadataSerial] != FormatSerial(leaf.SerialNumber) || md[MetadataCommonName] != "app.keyturn.test" {
		t.Errorf("metadata %v", md)
	}
	if md[MetadataNotAfter] != leaf.NotAfter.UTC().Format(time.RFC3339) || !strings.HasSuffix(md[MetadataNotBefore], "Z") {
		t.Errorf("times %v", md)
	}
	for k, v := range md {
		if strings.Contains(v, "PRIVATE") || strings.Contains(v, m.Get(FieldPrivateKey).Reveal()) {
			t.Errorf("metadata %q holds the key", k)
		}
	}
}
