package certs

import (
	"crypto/x509"
	"fmt"
	"math/big"

	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// VersionSerial returns the serial a version recorded in its metadata. A version without
// one (or with a garbled one) is not a certificate version of this kind: ErrInvalidConfig.
func VersionSerial(v secret.Version) (*big.Int, error) {
	s := v.Metadata[MetadataSerial]
	if s == "" {
		return nil, fmt.Errorf("%w: version %s has no %q in its metadata", rotators.ErrInvalidConfig, v.Token, MetadataSerial)
	}
	n, err := ParseSerial(s)
	if err != nil {
		return nil, fmt.Errorf("%w: version %s: %w", rotators.ErrInvalidConfig, v.Token, err)
	}
	return n, nil
}

// RecordedLeaf returns the leaf certificate of a version under test and its serial, after
// checking it is the certificate the version recorded: material from another version is
// rejected before any other check, since a different valid certificate has the same names.
func RecordedLeaf(req rotators.TestRequest) (*x509.Certificate, *big.Int, error) {
	serial, err := VersionSerial(req.Version)
	if err != nil {
		return nil, nil, err
	}
	if req.Material.Get(FieldCertificate).IsZero() {
		return nil, nil, fmt.Errorf("%w: material has no %q", rotators.ErrInvalidConfig, FieldCertificate)
	}
	leaf, err := Leaf(req.Material)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", rotators.ErrCredentialRejected, err)
	}
	if leaf.SerialNumber.Cmp(serial) != 0 {
		return nil, nil, fmt.Errorf("%w: the material holds certificate %s, but version %s recorded %s",
			rotators.ErrCredentialRejected, FormatSerial(leaf.SerialNumber), req.Version.Token, FormatSerial(serial))
	}
	return leaf, serial, nil
}
