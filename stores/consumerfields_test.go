package stores

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestConsumerMetadataValueWritesThePortAsANumber(t *testing.T) {
	for _, c := range []struct {
		key, value string
		want       string // the JSON a store writes
	}{
		{"port", "5432", `5432`},
		{"port", "1", `1`},
		{"port", "65535", `65535`},
		{"username", "5432", `"5432"`}, // only the port changes type: a numeric user name stays text
		{"host", "db.internal", `"db.internal"`},
		{"dbname", "", `""`},
	} {
		b, err := json.Marshal(ConsumerMetadataValue(c.key, c.value))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != c.want {
			t.Errorf("%s=%q is written as %s, want %s", c.key, c.value, b, c.want)
		}
	}
}

func TestCheckConsumerMetadataRefusesAPortThatIsNotANumber(t *testing.T) {
	first := ""
	for _, bad := range []string{"", "abc", "0", "65536", "-1", "+5432", "05432", " 5432", "5432.0", "1e3"} {
		err := CheckConsumerMetadata(map[string]string{"port": bad, "username": "app_a"})
		if err == nil {
			t.Errorf("port %q accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), `"port"`) || !strings.Contains(err.Error(), "1 to 65535") {
			t.Errorf("port %q: the error does not name the field and the range: %v", bad, err)
		}
		// One message whatever the value: nothing of the input is echoed.
		if first == "" {
			first = err.Error()
		} else if err.Error() != first {
			t.Errorf("port %q: the message depends on the value: %v", bad, err)
		}
	}
	for _, good := range []map[string]string{nil, {"username": "app_a"}, {"port": "5432", "host": "db"}} {
		if err := CheckConsumerMetadata(good); err != nil {
			t.Errorf("%v refused: %v", good, err)
		}
	}
}
