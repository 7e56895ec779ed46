package awsiam

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

func TestMatchesUser(t *testing.T) {
	for arn, ok := range map[string]bool{
		"arn:aws:iam::123456789012:user/app":                          true,
		"arn:aws:iam::123456789012:user/team/payments/app":            true,
		"arn:aws-cn:iam::123456789012:user/app":                       true,
		"arn:aws:iam::123456789012:user/app-2":                        false,
		"arn:aws:iam::123456789012:user/team/app/other":               false,
		"arn:aws:iam::123456789012:role/app":                          false,
		"arn:aws:sts::123456789012:assumed-role/app/app":              false,
		"arn:aws:sts::123456789012:federated-user/app":                false,
		"arn:aws:sts::123456789012:user/moto":                         false,
		"arn:aws:iam::123456789012:user/":                             false,
		"not an arn":                                                  false,
		"arn:aws:iam::123456789012:userapp":                           false,
		"arn:aws:iam::123456789012:group/app":                         false,
		"arn:aws:iam::123456789012:user/team/app/../app-wrong-suffix": false,
	} {
		err := matchesUser(arn, "app")
		if (err == nil) != ok {
			t.Errorf("matchesUser(%q, app) = %v, want ok=%v", arn, err, ok)
		}
	}
}

// moto 5.2.1's STS accepts a deactivated key, even with signatures checked. This pins the
// behaviour that makes Test ask IAM first; if moto starts refusing, the package doc's note
// needs updating (Test stays right either way).
func TestMotoSTSAcceptsAnInactiveKey(t *testing.T) {
	e := startEnforced(t)
	tg := e.target(t, policyFromFile(t))
	s := &steps{t: t, r: tg.rotator(t, nil)}
	v, m := s.mint(nil)
	tg.setStatus(t, keyID(v), types.StatusTypeInactive)

	cfg := tg.admin.Copy()
	cfg.Credentials = credentials.NewStaticCredentialsProvider(m.Get(FieldAccessKeyID).Reveal(), m.Get(FieldSecretAccessKey).Reveal(), "")
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("moto's STS refused an inactive key (%v): it no longer has the quirk the package doc describes", err)
	}
	t.Logf("moto's STS accepts inactive key %s as %s", keyID(v), aws.ToString(out.Arn))

	err = s.test(v, m)
	wantErr(t, err, rotators.ErrCredentialRejected, keyID(v), "Inactive")
}

// A key IAM lists as inactive, or does not list, is a definitive answer: Test does not
// wait out ConsistencyTimeout for it.
func TestTestRejectsInactiveAndDeletedKeysAtOnce(t *testing.T) {
	tg := newTarget(t)
	r := tg.rotator(t, func(c *Config) { c.ConsistencyTimeout = MaxConsistencyTimeout })
	s := &steps{t: t, r: r}
	v, m := s.mint(nil)

	tg.setStatus(t, keyID(v), types.StatusTypeInactive)
	start := time.Now()
	err := s.test(v, m)
	wantErr(t, err, rotators.ErrCredentialRejected, keyID(v), "Inactive")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Test of an inactive key took %s; IAM's answer needs no retries", took)
	}

	if err := r.Purge(t.Context(), rotators.RevokeRequest{Version: v}); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	start = time.Now()
	err = s.test(v, m)
	wantErr(t, err, rotators.ErrCredentialRejected, keyID(v), "has no access key")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Test of a deleted key took %s; IAM's answer needs no retries", took)
	}
	wantNoSecret(t, err, m)
}

// Material for another key than the version's is rejected, even when that key works.
func TestTestRejectsMaterialOfAnotherKey(t *testing.T) {
	tg := newTarget(t)
	s := &steps{t: t, r: tg.rotator(t, nil)}
	v, m := s.mint(nil)
	_, other := s.mint(nil)
	err := s.test(v, other)
	wantErr(t, err, rotators.ErrCredentialRejected, keyID(v), other.Get(FieldAccessKeyID).Reveal())
	wantNoSecret(t, err, m, other)

	err = s.test(v, secret.Material{FieldAccessKeyID: m.Get(FieldAccessKeyID)})
	wantErr(t, err, rotators.ErrCredentialRejected, FieldSecretAccessKey)
}

// A key STS accepts for another principal fails the check, not the login: retrying cannot
// change whom the key belongs to, and a rollback must not re-apply over it.
func TestTestDetectsTheWrongUser(t *testing.T) {
	tg := newTarget(t)
	tg.admin = tg.admin.Copy()
	tg.admin.APIOptions = append(tg.admin.APIOptions, onSTS(otherAccountSTS))
	s := &steps{t: t, r: tg.rotator(t, nil)}
	v, m := s.mint(nil)

	err := s.test(v, m)
	wantErr(t, err, rotators.ErrCheckFailed, keyID(v), "user/moto", tg.user)
	if errors.Is(err, rotators.ErrCredentialRejected) {
		t.Errorf("a key that signs in is reported as rejected: %v", err)
	}
	wantNoSecret(t, err, m)
}

// With signatures checked, a wrong secret is refused by STS every time: Test retries for
// ConsistencyTimeout, using the whole window, and no longer.
func TestTestRetriesForConsistencyTimeoutOnly(t *testing.T) {
	e := startEnforced(t)
	tg := e.target(t, policyFromFile(t))
	var attempts atomic.Int64
	tg.admin.APIOptions = append(tg.admin.APIOptions, onSTS(func(*smithyhttp.Request) { attempts.Add(1) }))
	const timeout = 1500 * time.Millisecond
	s := &steps{t: t, r: tg.rotator(t, func(c *Config) { c.ConsistencyTimeout = timeout })}
	v, m := s.mint(nil)
	const wrongSecret = "wrong-secret-0123456789abcdefghijklmnopq"
	wrong := secret.Material{FieldAccessKeyID: m.Get(FieldAccessKeyID), FieldSecretAccessKey: secret.NewSensitive(wrongSecret)}

	start := time.Now()
	err := s.test(v, wrong)
	took := time.Since(start)
	// moto's refusal is SignatureDoesNotMatch in a shape the SDK cannot read: the status
	// is what shows.
	wantErr(t, err, rotators.ErrCredentialRejected, keyID(v), "403")
	if took < timeout || took > timeout+time.Second {
		t.Errorf("Test took %s, want about ConsistencyTimeout (%s)", took, timeout)
	}
	// 250ms, 500ms, then what is left of the window: four attempts.
	if n := attempts.Load(); n < 3 || n > 5 {
		t.Errorf("%d STS attempts, want 3 to 5 within %s", n, timeout)
	}
	if strings.Contains(err.Error(), wrongSecret) {
		t.Error("the error shows the secret tried")
	}
	t.Logf("after %s and %d attempts: %v", took.Round(time.Millisecond), attempts.Load(), err)

	// The right secret works at once on the same server.
	attempts.Store(0)
	if err := s.test(v, m); err != nil {
		t.Fatalf("Test with the right secret: %v", err)
	}
	if n := attempts.Load(); n != 1 {
		t.Errorf("%d STS attempts for a working key, want 1", n)
	}
}

// A context deadline shorter than ConsistencyTimeout bounds the retries too, leaving time
// to report STS's answer rather than the context's.
func TestTestRetriesStopBeforeTheContextDeadline(t *testing.T) {
	e := startEnforced(t)
	tg := e.target(t, policyFromFile(t))
	s := &steps{t: t, r: tg.rotator(t, nil)} // ConsistencyTimeout 30s
	v, m := s.mint(nil)
	wrong := secret.Material{FieldAccessKeyID: m.Get(FieldAccessKeyID), FieldSecretAccessKey: secret.NewSensitive("wrong")}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	start := time.Now()
	err := s.r.Test(ctx, rotators.TestRequest{Version: v, Material: wrong})
	took := time.Since(start)
	wantErr(t, err, rotators.ErrCredentialRejected, "403")
	if errors.Is(err, context.DeadlineExceeded) || took > 2*time.Second {
		t.Errorf("Test ran into the context deadline (%s): %v", took, err)
	}
}

func TestScrub(t *testing.T) {
	const key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	leaky := errors.Join(context.DeadlineExceeded, errors.New("signing with "+key+" failed"))
	got := scrub(leaky, key)
	if strings.Contains(got.Error(), key) || !strings.Contains(got.Error(), secret.Redacted) {
		t.Errorf("scrub = %q, want the key redacted", got)
	}
	if !errors.Is(got, context.DeadlineExceeded) {
		t.Error("scrub lost context.DeadlineExceeded")
	}
	clean := errors.New("nothing secret")
	if scrub(clean, key) != clean {
		t.Error("scrub rebuilt an error without the secret")
	}
}
