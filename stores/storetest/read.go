package storetest

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/stores"
)

func readCases() []testCase {
	return []testCase{
		{"current of a new secret is not found", func(f *fixture) {
			for _, stage := range []secret.Stage{secret.StageCurrent, secret.StagePending, secret.StagePrevious} {
				f.expectNoStage(stage)
			}
			_, _, err := f.store.ReadVersion(f.ctx, f.id, "v1")
			expectErr(f.t, err, stores.ErrNotFound, "ReadVersion on a new secret")
		}},
		{"an unknown token is not found", func(f *fixture) {
			f.rotate("v1", material("v1"))
			_, _, err := f.store.ReadVersion(f.ctx, f.id, "nope")
			expectErr(f.t, err, stores.ErrNotFound, "ReadVersion of an unknown token")
		}},
		{"an unknown stage is an error", func(f *fixture) {
			f.rotate("v1", material("v1"))
			if _, _, err := f.store.Read(f.ctx, f.id, "latest"); err == nil {
				f.t.Fatal(`Read("latest") succeeded`)
			}
		}},
		{"a version by token after it left pending", func(f *fixture) {
			m1 := material("v1")
			f.rotate("v1", m1)
			f.rotate("v2", material("v2"))
			v, got, err := f.store.ReadVersion(f.ctx, f.id, "v1")
			if err != nil {
				f.t.Fatalf("ReadVersion: %v", err)
			}
			if !slices.Equal(v.Stages, []secret.Stage{secret.StagePrevious}) {
				f.t.Fatalf("ReadVersion gave stages %v, want [previous]", v.Stages)
			}
			expectMaterial(f.t, got, m1)
		}},
	}
}

func listCases() []testCase {
	return []testCase{
		{"a new secret is not found", func(f *fixture) {
			_, err := f.store.ListVersions(f.ctx, f.id)
			expectErr(f.t, err, stores.ErrNotFound, "ListVersions on a new secret")
		}},
		{"oldest first with their stages", func(f *fixture) {
			f.rotate("v1", material("v1"))
			f.rotate("v2", material("v2"))
			f.stage("v3", material("v3"), map[string]string{"role": "blue"})
			got := f.list()
			want := []struct {
				token secret.VersionToken
				stage secret.Stage
			}{{"v1", secret.StagePrevious}, {"v2", secret.StageCurrent}, {"v3", secret.StagePending}}
			if len(got) != len(want) {
				f.t.Fatalf("ListVersions gave %d versions, want %d: %+v", len(got), len(want), got)
			}
			for i, w := range want {
				v := got[i]
				if v.Token != w.token || !slices.Equal(v.Stages, []secret.Stage{w.stage}) {
					f.t.Fatalf("version %d is %s with %v, want %s with [%s]", i, v.Token, v.Stages, w.token, w.stage)
				}
				if v.SecretID != f.id {
					f.t.Fatalf("version %d has secret id %q, want %q", i, v.SecretID, f.id)
				}
				if i > 0 && v.Number <= got[i-1].Number {
					f.t.Fatalf("version numbers %d then %d are not oldest first", got[i-1].Number, v.Number)
				}
			}
			if got[2].Metadata["role"] != "blue" {
				f.t.Fatalf("listed metadata is %v", got[2].Metadata)
			}
		}},
	}
}

func redactionCases() []testCase {
	return []testCase{
		{"material never appears in versions, material or errors", func(f *fixture) {
			canary := "canary-" + randomHex(12)
			m := secret.Material{"password": secret.NewSensitive(canary)}
			var seen []any
			check := func(label string, values ...any) {
				f.t.Helper()
				seen = append(seen, values...)
				for _, v := range values {
					for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
						if s := fmt.Sprintf(verb, v); strings.Contains(s, canary) || strings.Contains(s, fmt.Sprintf("%x", canary)) {
							f.t.Fatalf("%s printed with %s shows the material", label, verb)
						}
					}
				}
			}

			v1 := f.stage("v1", m, nil)
			v1again := f.stage("v1", m, nil)
			check("StagePending", v1, v1again)
			f.promote("v1")
			v, got := f.read(secret.StageCurrent)
			check("Read", v, got)
			v, got, err := f.store.ReadVersion(f.ctx, f.id, "v1")
			if err != nil {
				f.t.Fatalf("ReadVersion: %v", err)
			}
			check("ReadVersion", v, got)
			check("ListVersions", f.list())

			err = f.store.DiscardPending(f.ctx, f.id, "v1")
			check("DiscardPending error", err)
			check("Promote error", f.store.Promote(f.ctx, f.id, "nope"))
			_, _, err = f.store.Read(f.ctx, f.id, secret.StagePrevious)
			check("Read error", err)
			_, err = f.store.StagePending(f.ctx, stores.StageRequest{SecretID: "Bad/ID", Token: "v2", Material: m})
			check("StagePending error", err)

			// The same through slog and JSON, the other ways a value leaves the process.
			var logged strings.Builder
			logger := slog.New(slog.NewJSONHandler(&logged, nil))
			for i, value := range seen {
				logger.Info("value", "i", i, "v", value)
				if data, err := json.Marshal(value); err == nil && strings.Contains(string(data), canary) {
					f.t.Fatalf("value %d marshals with the material", i)
				}
			}
			if strings.Contains(logged.String(), canary) {
				f.t.Fatal("slog output shows the material")
			}
		}},
	}
}
