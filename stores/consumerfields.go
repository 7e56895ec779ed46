package stores

import (
	"fmt"
	"strconv"
)

// FieldPort is the metadata key a version's server port is kept under. Stores that show
// consumers one JSON object per version (Vault KV v2, AWS Secrets Manager) write it as a
// JSON number, because AWS's documented structure for database credentials ("JSON
// structure of AWS Secrets Manager secrets": engine, host, port, dbname, username,
// password) has "port": 5432, and the tools that read that structure (RDS Proxy, AWS's
// JDBC wrapper, the Secrets Manager caching clients' database helpers) expect a number.
//
// Metadata is otherwise text (map[string]string all the way through rotation), so this
// is the one place that knows a field's JSON type differs from string: the rotator that
// produces the port and every store that renders it ask here.
const FieldPort = "port"

// ConsumerMetadataValue is the JSON value a store writes for one metadata field at the
// top level of what consumers read: the port as a number, everything else as the string
// it is. Call CheckConsumerMetadata first; a port that is not a number is written as
// given.
func ConsumerMetadataValue(key, value string) any {
	if key == FieldPort {
		if n, ok := parsePort(value); ok {
			return n
		}
	}
	return value
}

// CheckConsumerMetadata refuses metadata a store could not render as consumers expect:
// a FieldPort that is not a TCP port number. It names the field and the fix and does not
// echo the value.
func CheckConsumerMetadata(metadata map[string]string) error {
	if v, ok := metadata[FieldPort]; ok {
		if _, ok := parsePort(v); !ok {
			return fmt.Errorf("metadata %q is not a TCP port number from 1 to 65535 in plain decimal: consumers read it as a JSON number; give the number or leave the key out", FieldPort)
		}
	}
	return nil
}

// parsePort accepts the decimal form of 1 to 65535 and nothing else (no sign, no leading
// zeros, no spaces), so that writing the number and reading it back gives the same text.
func parsePort(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != s {
		return 0, false
	}
	return n, true
}
