package inventory

import (
	"errors"
	"strings"
	"testing"
)

func TestRefParse(t *testing.T) {
	tests := map[string]struct {
		ref     Ref
		want    RefParts
		wantErr error
	}{
		"file default field":   {ref: "file:admin/orders-db", want: RefParts{Scheme: RefFile, Path: "admin/orders-db", Field: DefaultRefField}},
		"file with field":      {ref: "file:admin/orders-db#secret", want: RefParts{Scheme: RefFile, Path: "admin/orders-db", Field: "secret"}},
		"vault":                {ref: "vault:secret/data/orders#pw", want: RefParts{Scheme: RefVault, Path: "secret/data/orders", Field: "pw"}},
		"awssm":                {ref: "awssm:prod/orders-admin", want: RefParts{Scheme: RefAWSSM, Path: "prod/orders-admin", Field: DefaultRefField}},
		"env":                  {ref: "env:ORDERS_ADMIN_PASSWORD", want: RefParts{Scheme: RefEnv, Path: "ORDERS_ADMIN_PASSWORD"}},
		"literal":              {ref: "correct horse battery staple", wantErr: ErrRefNotReference},
		"unknown scheme":       {ref: "https://vault.example.com", wantErr: ErrRefNotReference},
		"upper-case scheme":    {ref: "FILE:admin/orders-db", wantErr: ErrRefNotReference},
		"empty":                {ref: "", wantErr: ErrRefNotReference},
		"file without id":      {ref: "file:", wantErr: ErrRefMalformed},
		"file bad id":          {ref: "file:Admin/Orders", wantErr: ErrRefMalformed},
		"file empty field":     {ref: "file:admin/orders-db#", wantErr: ErrRefMalformed},
		"vault with space":     {ref: "vault:secret/a b", wantErr: ErrRefMalformed},
		"env bad name":         {ref: "env:1BADNAME", wantErr: ErrRefMalformed},
		"env with field":       {ref: "env:PASSWORD#x", wantErr: ErrRefMalformed},
		"env without a name":   {ref: "env:", wantErr: ErrRefMalformed},
		"awssm without a name": {ref: "awssm:#password", wantErr: ErrRefMalformed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tc.ref.Parse()
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Parse(%q) error = %v, want %v", tc.ref, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("Parse(%q) = %+v, want %+v", tc.ref, got, tc.want)
			}
			// The text after the scheme never shows up in an error: it may be material.
			_, rest, _ := strings.Cut(string(tc.ref), ":")
			if err != nil && len(rest) > 3 && strings.Contains(err.Error(), rest) {
				t.Errorf("error echoes the reference: %v", err)
			}
		})
	}
}

func TestRefValidate(t *testing.T) {
	tests := map[string]struct {
		ref     Ref
		wantErr error
		msg     string
	}{
		"file":           {ref: "file:admin/orders-db"},
		"env":            {ref: "env:ORDERS_ADMIN_PASSWORD"},
		"vault":          {ref: "vault:secret/orders"},
		"vault no mount": {ref: "vault:orders", wantErr: ErrRefMalformed, msg: "must name the mount and the path"},
		"awssm":          {ref: "awssm:orders"},
		"literal":        {ref: "hunter2", wantErr: ErrRefNotReference, msg: "(value hidden): a literal password is never accepted; write where the password is kept instead: file:<secret-id>[#field], vault:<mount>/<path>[#field], awssm:<name>[#field] or env:<VAR_NAME>"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.ref.Validate()
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Validate(%q) = %v, want %v", tc.ref, err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Validate(%q) = %q, want it to contain %q", tc.ref, err, tc.msg)
			}
			if tc.wantErr == ErrRefNotReference && strings.Contains(err.Error(), string(tc.ref)) {
				t.Errorf("error echoes the rejected value: %v", err)
			}
		})
	}
}
