package awssm

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// consumerPassword reads the password field of AWSCURRENT, as an application does. ok is
// false when the value has no password (the placeholder before the first promote).
func consumerPassword(t *testing.T, c *secretsmanager.Client, name string) (string, bool) {
	t.Helper()
	out, err := c.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(name), VersionStage: aws.String(LabelCurrent),
	})
	if err != nil {
		t.Fatalf("consumer GetSecretValue: %v", err)
	}
	var v struct {
		Password *string `json:"password"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &v); err != nil {
		t.Fatalf("consumer value is not JSON: %v", err)
	}
	if v.Password == nil {
		return "", false
	}
	return *v.Password, true
}

func TestConsumersSeeOnlyCurrentBeforeAndAfterPromote(t *testing.T) {
	s := newTestStore(t)
	id := uniqueID(t)
	name := testPrefix + string(id)
	c := consumerClient(t)

	// The first version, staged but untested, must not reach consumers.
	m1 := pw(t)
	mustStage(t, s, id, "v1", m1, nil)
	if _, ok := consumerPassword(t, c, name); ok {
		t.Fatal("a consumer sees a password before the first promote")
	}
	mustPromote(t, s, id, "v1")
	if got, _ := consumerPassword(t, c, name); got != m1["password"].Reveal() {
		t.Fatal("after the first promote the consumer does not see v1")
	}

	m2 := pw(t)
	mustStage(t, s, id, "v2", m2, nil)
	if got, _ := consumerPassword(t, c, name); got != m1["password"].Reveal() {
		t.Fatal("staging v2 changed what consumers see")
	}
	mustPromote(t, s, id, "v2")
	if got, _ := consumerPassword(t, c, name); got != m2["password"].Reveal() {
		t.Fatal("after promote the consumer does not see v2")
	}

	// Rollback: promoting previous gives consumers v1 again.
	mustPromote(t, s, id, "v1")
	if got, _ := consumerPassword(t, c, name); got != m1["password"].Reveal() {
		t.Fatal("after rollback the consumer does not see v1")
	}
}

// versionCache follows the algorithm of AWS's caching clients (the Go one,
// aws-secretsmanager-caching-go, is not available through this module proxy): on refresh,
// DescribeSecret, take the VersionId holding AWSCURRENT, and fetch that version by
// VersionId only if it differs from the cached one.
type versionCache struct {
	client    *secretsmanager.Client
	name      string
	versionID string
	value     string
	fetches   int
}

func (c *versionCache) refresh(ctx context.Context) error {
	out, err := c.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(c.name)})
	if err != nil {
		return err
	}
	current := ""
	for vid, labels := range out.VersionIdsToStages {
		for _, l := range labels {
			if l == LabelCurrent {
				current = vid
			}
		}
	}
	if current == "" {
		return errors.New("no version holds AWSCURRENT")
	}
	if current == c.versionID {
		return nil
	}
	got, err := c.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(c.name), VersionId: aws.String(current),
	})
	if err != nil {
		return err
	}
	c.versionID, c.value = current, aws.ToString(got.SecretString)
	c.fetches++
	return nil
}

func (c *versionCache) password(t *testing.T) string {
	t.Helper()
	var v struct {
		Password string `json:"password"`
	}
	if err := json.Unmarshal([]byte(c.value), &v); err != nil {
		t.Fatalf("cached value is not JSON: %v", err)
	}
	return v.Password
}

func TestCachingClientPatternFollowsEachPromote(t *testing.T) {
	s := newTestStore(t)
	id := uniqueID(t)
	cache := &versionCache{client: consumerClient(t), name: testPrefix + string(id)}

	var mats []secret.Material
	for i, token := range []secret.VersionToken{"v1", "v2", "v3"} {
		m := pw(t)
		mats = append(mats, m)
		mustStage(t, s, id, token, m, nil)
		// Staging alone changes nothing for the cache (after the first promote).
		if i > 0 {
			before := cache.fetches
			if err := cache.refresh(t.Context()); err != nil {
				t.Fatal(err)
			}
			if cache.fetches != before || cache.password(t) != mats[i-1]["password"].Reveal() {
				t.Fatalf("after staging %s the cache changed", token)
			}
		}
		mustPromote(t, s, id, token)
		if err := cache.refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		if cache.versionID != VersionID(token) || cache.password(t) != m["password"].Reveal() {
			t.Fatalf("after promoting %s the cache holds VersionId %s, not the current material", token, cache.versionID)
		}
	}
	// A refresh with nothing new fetches nothing.
	before := cache.fetches
	if err := cache.refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if cache.fetches != before {
		t.Fatal("an idle refresh fetched the value again")
	}
	// Rollback is seen the same way.
	mustPromote(t, s, id, "v2")
	if err := cache.refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if cache.password(t) != mats[1]["password"].Reveal() {
		t.Fatal("after rollback the cache does not hold v2")
	}
}

func TestReadField(t *testing.T) {
	s := newTestStore(t)
	id := uniqueID(t)
	name := testPrefix + string(id)
	m := pw(t)
	mustStage(t, s, id, "v1", m, map[string]string{"username": "admin"})

	_, err := s.ReadField(t.Context(), name, "password")
	if !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("ReadField before the first promote: %v, want ErrNotFound", err)
	}
	mustPromote(t, s, id, "v1")
	got, err := s.ReadField(t.Context(), name, "password")
	if err != nil || !got.Equal(m["password"]) {
		t.Fatalf("ReadField(password): err %v, equal %v", err, got.Equal(m["password"]))
	}
	if got, err := s.ReadField(t.Context(), name, "username"); err != nil || got.Reveal() != "admin" {
		t.Fatalf("ReadField(username): %v", err)
	}
	if _, err := s.ReadField(t.Context(), name, "nope"); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("ReadField of a missing field: %v, want ErrNotFound", err)
	}
	if _, err := s.ReadField(t.Context(), name, BookkeepingKey); err == nil {
		t.Fatal("ReadField returned the bookkeeping")
	}
	if _, err := s.ReadField(t.Context(), "awssm-test/missing-secret", "password"); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("ReadField of a missing secret: %v, want ErrNotFound", err)
	}

	// A secret made by hand, RDS style, outside the prefix: the name is used as given.
	c := consumerClient(t)
	hand := "awssm-test/hand-made-" + string(id[len(id)-6:])
	_, err = c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{
		Name: aws.String(hand), SecretString: aws.String(`{"username":"postgres","password":"hand-pw","port":5432,"ssl":true,"tags":["x"]}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string]string{"password": "hand-pw", "port": "5432", "ssl": "true"} {
		got, err := s.ReadField(t.Context(), hand, field)
		if err != nil || got.Reveal() != want {
			t.Fatalf("ReadField(%s): err %v, right value %v", field, err, got.Reveal() == want)
		}
	}
	if _, err := s.ReadField(t.Context(), hand, "tags"); err == nil || errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("ReadField of an array: %v, want a type error", err)
	}
}

func TestForeignVersionsAreReadableAndPromotable(t *testing.T) {
	s := newTestStore(t)
	id := uniqueID(t)
	name := testPrefix + string(id)
	c := consumerClient(t)
	// An existing secret, adopted by Keyturn: its value was put by hand.
	out, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(`{"password":"hand-pw"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	handToken := secret.VersionToken(ForeignTokenPrefix + aws.ToString(out.VersionId))

	v, m, err := s.Read(t.Context(), id, secret.StageCurrent)
	if err != nil || v.Token != handToken || v.Number != 0 || m["password"].Reveal() != "hand-pw" {
		t.Fatalf("Read(current) of a hand-made value gave %+v (err %v)", v, err)
	}
	staged := mustStage(t, s, id, "v1", pw(t), nil)
	if staged.Number != 1 {
		t.Fatalf("first Keyturn version has number %d, want 1", staged.Number)
	}
	mustPromote(t, s, id, "v1")
	list, err := s.ListVersions(t.Context(), id)
	if err != nil || len(list) != 2 || list[0].Token != handToken || list[1].Token != "v1" {
		t.Fatalf("ListVersions gave %+v (err %v)", list, err)
	}
	// Roll back to the hand-made version.
	mustPromote(t, s, id, handToken)
	if got, _ := consumerPassword(t, c, name); got != "hand-pw" {
		t.Fatal("rollback to the hand-made version failed")
	}
	if _, err := s.StagePending(t.Context(), stores.StageRequest{SecretID: id, Token: handToken, Material: pw(t)}); err == nil {
		t.Fatal("staging under a foreign token succeeded")
	}
}

func TestASecretCreatedWithoutAValueGetsThePlaceholderFirst(t *testing.T) {
	s := newTestStore(t)
	id := uniqueID(t)
	name := testPrefix + string(id)
	if _, err := consumerClient(t).CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	v := mustStage(t, s, id, "v1", pw(t), nil)
	if !v.Has(secret.StagePending) || v.Has(secret.StageCurrent) {
		t.Fatalf("staged version has stages %v, want pending only", v.Stages)
	}
	if _, _, err := s.Read(t.Context(), id, secret.StageCurrent); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("Read(current): %v, want ErrNotFound", err)
	}
}
