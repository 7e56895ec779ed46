package secret_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/secret"
)

func TestSensitiveNeverPrints(t *testing.T) {
	const pw = "hunter2-correct-horse"
	s := secret.NewSensitive(pw)
	m := secret.Material{"password": s}
	holder := struct{ P secret.Sensitive }{s}
	for _, got := range []string{
		s.String(), fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x %X %d", s, s, s, s, s, s, s, s),
		fmt.Sprintf("%v %+v %#v", m, m, m), fmt.Sprintf("%+v %#v", holder, holder),
	} {
		if strings.Contains(got, pw) || !strings.Contains(got, secret.Redacted) {
			t.Errorf("printed %q", got)
		}
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "password", s, "material", m)
	if strings.Contains(buf.String(), pw) {
		t.Errorf("slog printed the value: %s", buf.String())
	}
	if s.Reveal() != pw {
		t.Error("Reveal must return the value")
	}
}

func TestSensitiveRefusesMarshalling(t *testing.T) {
	s := secret.NewSensitive("x")
	for name, v := range map[string]any{"value": s, "material": secret.Material{"password": s}, "struct": struct{ P secret.Sensitive }{s}} {
		if _, err := json.Marshal(v); !errors.Is(err, secret.ErrSensitiveMarshal) {
			t.Errorf("%s: json.Marshal error %v, want ErrSensitiveMarshal", name, err)
		}
	}
	if _, err := s.MarshalText(); !errors.Is(err, secret.ErrSensitiveMarshal) {
		t.Error("MarshalText must refuse")
	}
}

func TestIDValidate(t *testing.T) {
	for id, ok := range map[secret.ID]bool{
		"prod/orders-db/app": true, "a": true, "x1/y.z_w-v": true,
		"": false, "/lead": false, "trail/": false, "a//b": false, "Upper/case": false, "sp ace": false, "a/../b": false,
	} {
		if err := id.Validate(); (err == nil) != ok {
			t.Errorf("Validate(%q) = %v, want ok=%v", id, err, ok)
		}
	}
}

func TestVersionTokenValidate(t *testing.T) {
	for tok, ok := range map[secret.VersionToken]bool{
		"rotate/prod/db/app/0d6f3c1e": true, "": false, "bad\x00byte": false, "\xff": false,
		secret.VersionToken(strings.Repeat("x", secret.MaxTokenLen)):   true,
		secret.VersionToken(strings.Repeat("x", secret.MaxTokenLen+1)): false,
	} {
		if err := tok.Validate(); (err == nil) != ok {
			t.Errorf("Validate(%q) = %v, want ok=%v", tok, err, ok)
		}
	}
}
