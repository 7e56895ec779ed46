package awssm

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

// uniqueID gives each test its own secret on the shared server.
func uniqueID(t *testing.T) secret.ID {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return secret.ID("awssm-test/" + hex.EncodeToString(b))
}

func pw(t *testing.T) secret.Material {
	t.Helper()
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return secret.Material{"password": secret.NewSensitive("pw-" + hex.EncodeToString(b))}
}

// consumerClient is a plain SDK client, as an application reading the secret has.
func consumerClient(t *testing.T) *secretsmanager.Client {
	t.Helper()
	return secretsmanager.NewFromConfig(moto.AWSConfig(t.Context()))
}

func mustStage(t *testing.T, s *Store, id secret.ID, token secret.VersionToken, m secret.Material, meta map[string]string) secret.Version {
	t.Helper()
	v, err := s.StagePending(t.Context(), stores.StageRequest{SecretID: id, Token: token, Material: m, Metadata: meta})
	if err != nil {
		t.Fatalf("StagePending(%s): %v", token, err)
	}
	return v
}

func mustPromote(t *testing.T, s *Store, id secret.ID, token secret.VersionToken) {
	t.Helper()
	if err := s.Promote(t.Context(), id, token); err != nil {
		t.Fatalf("Promote(%s): %v", token, err)
	}
}

// awsLabels returns what AWS itself says: VersionId to staging labels, from DescribeSecret.
func awsLabels(t *testing.T, s *Store, id secret.ID) map[string][]string {
	t.Helper()
	out, err := consumerClient(t).DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{
		SecretId: aws.String(testPrefix + string(id)),
	})
	if err != nil {
		t.Fatalf("DescribeSecret: %v", err)
	}
	return out.VersionIdsToStages
}

// expectNoPendingLabel checks that no version, whatever its other labels, holds AWSPENDING.
func expectNoPendingLabel(t *testing.T, s *Store, id secret.ID) {
	t.Helper()
	for vid, labels := range awsLabels(t, s, id) {
		if slices.Contains(labels, LabelPending) {
			t.Fatalf("version %s still holds AWSPENDING (labels %v)", vid, labels)
		}
	}
}

func TestNoPendingLabelRemainsAfterDiscardPromoteOrFailedRotation(t *testing.T) {
	s := newTestStore(t)
	id := uniqueID(t)

	// A first rotation that fails its test: discard leaves the placeholder alone.
	mustStage(t, s, id, "first-try", pw(t), nil)
	if err := s.DiscardPending(t.Context(), id, "first-try"); err != nil {
		t.Fatalf("DiscardPending: %v", err)
	}
	expectNoPendingLabel(t, s, id)

	// A successful rotation: promote takes AWSPENDING off the new current.
	mustStage(t, s, id, "v1", pw(t), nil)
	mustPromote(t, s, id, "v1")
	expectNoPendingLabel(t, s, id)

	// A failed rotation after that: current stays, no pending label stays.
	mustStage(t, s, id, "v2", pw(t), nil)
	if err := s.DiscardPending(t.Context(), id, "v2"); err != nil {
		t.Fatalf("DiscardPending: %v", err)
	}
	expectNoPendingLabel(t, s, id)
	if v, _, err := s.Read(t.Context(), id, secret.StageCurrent); err != nil || v.Token != "v1" {
		t.Fatalf("current after a failed rotation is %v (err %v), want v1", v.Token, err)
	}

	// Superseded by a newer stage: only the newer one holds the label.
	mustStage(t, s, id, "v3", pw(t), nil)
	mustStage(t, s, id, "v4", pw(t), nil)
	var pending []string
	for vid, labels := range awsLabels(t, s, id) {
		if slices.Contains(labels, LabelPending) {
			pending = append(pending, vid)
		}
	}
	if !slices.Equal(pending, []string{VersionID("v4")}) {
		t.Fatalf("AWSPENDING is on %v, want only v4's version %s", pending, VersionID("v4"))
	}
}

func TestStagedRetryMakesOneAWSVersion(t *testing.T) {
	s := newTestStore(t)
	id := uniqueID(t)
	first := pw(t)
	v1 := mustStage(t, s, id, "rotate/x/run-1", first, map[string]string{"username": "app_a"})
	// A retry from another worker process: a Store of its own, so no shared lock.
	other := newTestStore(t)
	v2 := mustStage(t, other, id, "rotate/x/run-1", pw(t), map[string]string{"username": "app_b"})
	if v2.Number != v1.Number || v2.Metadata["username"] != "app_a" {
		t.Fatalf("retry gave %+v, first gave %+v", v2, v1)
	}

	var vids []string
	pages := secretsmanager.NewListSecretVersionIdsPaginator(consumerClient(t), &secretsmanager.ListSecretVersionIdsInput{
		SecretId: aws.String(testPrefix + string(id)), IncludeDeprecated: aws.Bool(true),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(t.Context())
		if err != nil {
			t.Fatalf("ListSecretVersionIds: %v", err)
		}
		for _, v := range page.Versions {
			if vid := aws.ToString(v.VersionId); vid != placeholderVersionID {
				vids = append(vids, vid)
			}
		}
	}
	if !slices.Equal(vids, []string{VersionID("rotate/x/run-1")}) {
		t.Fatalf("AWS holds versions %v, want one: %s", vids, VersionID("rotate/x/run-1"))
	}
	_, got, err := s.Read(t.Context(), id, secret.StagePending)
	if err != nil || !got["password"].Equal(first["password"]) {
		t.Fatalf("pending material is not the first attempt's (err %v)", err)
	}
}

func TestRestagingADiscardedTokenRevivesItsFirstVersion(t *testing.T) {
	s := newTestStore(t)
	id := uniqueID(t)
	first := pw(t)
	v1 := mustStage(t, s, id, "late", first, nil)
	mustStage(t, s, id, "newer", pw(t), nil) // supersedes "late"
	again := mustStage(t, s, id, "late", pw(t), nil)
	if again.Number != v1.Number || !slices.Equal(again.Stages, []secret.Stage{secret.StagePending}) {
		t.Fatalf("restage gave %+v, want number %d pending", again, v1.Number)
	}
	v, got, err := s.Read(t.Context(), id, secret.StagePending)
	if err != nil || v.Token != "late" || !got["password"].Equal(first["password"]) {
		t.Fatalf("pending is %q (err %v), want late with its first material", v.Token, err)
	}
}

func TestRacingPromotesFromTwoProcesses(t *testing.T) {
	// Two Stores stand for two worker processes; many rounds, since a round may or may
	// not interleave.
	a, b := newTestStore(t), newTestStore(t)
	conflicts := 0
	defer func() { t.Logf("%d of 10 rounds ended in ErrConflict for the loser", conflicts) }()
	for round := range 10 {
		id := uniqueID(t)
		mustStage(t, a, id, "old", pw(t), nil)
		mustPromote(t, a, id, "old")
		mustStage(t, a, id, "new", pw(t), nil)

		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, s := range []*Store{a, b} {
			wg.Go(func() {
				<-start
				errs[i] = s.Promote(t.Context(), id, "new")
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil && !errors.Is(err, stores.ErrConflict) {
				t.Fatalf("round %d: promote %d: %v; want nil or ErrConflict", round, i, err)
			}
			if err != nil {
				conflicts++
			}
		}
		if errs[0] != nil && errs[1] != nil {
			t.Fatalf("round %d: both promotes failed: %v; %v", round, errs[0], errs[1])
		}
		want := map[string][]string{VersionID("new"): {LabelCurrent}, VersionID("old"): {LabelPrevious}}
		got := awsLabels(t, a, id)
		maps.DeleteFunc(got, func(vid string, labels []string) bool { return len(labels) == 0 || vid == placeholderVersionID })
		if !maps.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("round %d: labels %v, want %v (promoted once)", round, got, want)
		}
	}
}

func TestPromoteWithAStaleViewIsAConflict(t *testing.T) {
	a, b := newTestStore(t), newTestStore(t)
	id := uniqueID(t)
	name := testPrefix + string(id)
	mustStage(t, a, id, "v1", pw(t), nil)
	mustPromote(t, a, id, "v1")
	mustStage(t, a, id, "v2", pw(t), nil)

	stale, err := a.describe(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	// Another process promotes between a's read and a's write.
	mustPromote(t, b, id, "v2")
	mustStage(t, b, id, "v3", pw(t), nil)
	mustPromote(t, b, id, "v3")

	err = a.promoteFrom(t.Context(), name, VersionID("v2"), stale)
	if !errors.Is(err, stores.ErrConflict) {
		t.Fatalf("promote from a stale view: %v, want ErrConflict", err)
	}
	if v, _, err := a.Read(t.Context(), id, secret.StageCurrent); err != nil || v.Token != "v3" {
		t.Fatalf("current is %q (err %v), want v3: the other writer's change stands", v.Token, err)
	}
}

func TestSecretStringIsJSONWithMaterialMetadataAndBookkeeping(t *testing.T) {
	s := newTestStore(t)
	id := uniqueID(t)
	m := secret.Material{"password": secret.NewSensitive("s3cret-pw"), "private_key": secret.NewSensitive("k3y")}
	staged := mustStage(t, s, id, "rotate/prod/db/app/run-1", m, map[string]string{"username": "app_a"})
	mustPromote(t, s, id, "rotate/prod/db/app/run-1")

	out, err := consumerClient(t).GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(testPrefix + string(id)), VersionStage: aws.String(LabelCurrent),
	})
	if err != nil {
		t.Fatalf("GetSecretValue: %v", err)
	}
	if aws.ToString(out.VersionId) != VersionID("rotate/prod/db/app/run-1") {
		t.Fatalf("VersionId is %s, want %s", aws.ToString(out.VersionId), VersionID("rotate/prod/db/app/run-1"))
	}
	var doc struct {
		Password   string `json:"password"`
		PrivateKey string `json:"private_key"`
		Username   string `json:"username"`
		Keyturn    struct {
			Token    string            `json:"token"`
			Number   int               `json:"number"`
			Metadata map[string]string `json:"metadata"`
		} `json:"keyturn"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &doc); err != nil {
		t.Fatalf("SecretString is not JSON: %v", err)
	}
	if doc.Password != "s3cret-pw" || doc.PrivateKey != "k3y" || doc.Username != "app_a" {
		t.Fatalf("consumer fields are password ok=%v, private_key ok=%v, username=%q",
			doc.Password == "s3cret-pw", doc.PrivateKey == "k3y", doc.Username)
	}
	if doc.Keyturn.Token != "rotate/prod/db/app/run-1" || doc.Keyturn.Number != staged.Number || doc.Keyturn.Metadata["username"] != "app_a" {
		t.Fatalf("bookkeeping is %+v", doc.Keyturn)
	}
	_, got, err := s.Read(t.Context(), id, secret.StageCurrent)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["username"]; ok {
		t.Fatal("metadata came back as material")
	}
	if !maps.EqualFunc(got, m, secret.Sensitive.Equal) {
		t.Fatalf("material fields %v", slices.Sorted(maps.Keys(got)))
	}
}

func TestNumbersContinueAcrossStoresFromTheTag(t *testing.T) {
	a, b := newTestStore(t), newTestStore(t)
	id := uniqueID(t)
	n1 := mustStage(t, a, id, "a", pw(t), nil).Number
	mustStage(t, b, id, "b", pw(t), nil)
	if err := b.DiscardPending(t.Context(), id, "b"); err != nil {
		t.Fatal(err)
	}
	n3 := mustStage(t, a, id, "c", pw(t), nil).Number
	if n1 != 1 || n3 != 3 {
		t.Fatalf("numbers %d then %d, want 1 then 3 (2 went to the discarded version)", n1, n3)
	}
}

func TestARefusedPutReturnsTheStoredVersion(t *testing.T) {
	// AWS does not list unlabelled versions, so there a restaged, superseded token goes
	// to PutSecretValue and is refused; moto lists them and takes the short way. This
	// drives the AWS path directly.
	s := newTestStore(t)
	id := uniqueID(t)
	name := testPrefix + string(id)
	first := pw(t)
	v1 := mustStage(t, s, id, "late", first, nil)
	mustStage(t, s, id, "newer", pw(t), nil)

	_, err := consumerClient(t).PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(name), ClientRequestToken: aws.String(VersionID("late")),
		SecretString: aws.String(`{"password":"other"}`), VersionStages: []string{LabelPending},
	})
	if !isCode(err, "ResourceExistsException") {
		t.Fatalf("a second value under one ClientRequestToken: %v, want ResourceExistsException", err)
	}
	req := stores.StageRequest{SecretID: id, Token: "late", Material: pw(t)}
	v, ok := s.afterRefusedPut(t.Context(), req, name, VersionID("late"))
	if !ok || v.Number != v1.Number || !v.Has(secret.StagePending) {
		t.Fatalf("afterRefusedPut gave %+v, %v; want version %d, pending", v, ok, v1.Number)
	}
	_, got, err := s.ReadVersion(t.Context(), id, "late")
	if err != nil || !got["password"].Equal(first["password"]) {
		t.Fatalf("material is not the first attempt's (err %v)", err)
	}
	if _, ok := s.afterRefusedPut(t.Context(), stores.StageRequest{SecretID: id, Token: "never"}, name, VersionID("never")); ok {
		t.Fatal("afterRefusedPut found a version that was never stored")
	}
}
