package yamlfields

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxValueRunes caps how much of a value from the file a message repeats: enough to
// recognise it, too little for a pasted key or a 10 KB line to flood a terminal or a log.
const MaxValueRunes = 64

// MaxMessageRunes caps a parser's message that may repeat part of the file (a YAML or
// cron error): longer than one value, since the message around it is the useful part.
const MaxMessageRunes = 200

// Quote renders a value read from the file for a problem message: cleaned by
// Displayable, capped at MaxValueRunes, in double quotes. Every value from the file that
// a message repeats goes through here, so a hostile file cannot move the cursor, rewrite
// a line with a carriage return or colour the output of whoever reads the problems.
func Quote(s string) string {
	return strconv.Quote(Displayable(s, MaxValueRunes))
}

// Displayable returns s without terminal escape sequences (ESC followed by a CSI, OSC or
// two-byte sequence), without control and other non-printing characters (C0, C1, DEL,
// bidirectional overrides and other format characters), with invalid UTF-8 replaced by
// U+FFFD, and cut to at most limit runes followed by "…". It is the one sanitizer for
// text from the file; Quote is how messages use it, and text that is not a single
// value (a parser's message that may quote the file) uses it with a longer limit.
func Displayable(s string, limit int) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == 0x1b:
			i += escapeLen(s[i:])
			continue
		case r == utf8.RuneError && size == 1:
			r = unicode.ReplacementChar
		case r == ' ':
		case !unicode.IsPrint(r):
			i += size
			continue
		}
		if n == limit {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
		n++
		i += size
	}
	return b.String()
}

// escapeLen is the length in bytes of the escape sequence at the start of s, which
// starts with ESC: a CSI sequence (ESC [ parameters intermediates final), an OSC string
// (ESC ] ... ended by BEL or ESC \), or ESC and one more character.
func escapeLen(s string) int {
	if len(s) < 2 {
		return len(s)
	}
	switch s[1] {
	case '[':
		i := 2
		for i < len(s) && s[i] >= 0x20 && s[i] <= 0x3f {
			i++ // parameter and intermediate bytes
		}
		if i < len(s) && s[i] >= 0x40 && s[i] <= 0x7e {
			i++ // final byte
		}
		return i
	case ']', 'P', '_', '^':
		// OSC, DCS, APC and PM strings run to BEL or the string terminator ESC \.
		for i := 2; i < len(s); i++ {
			if s[i] == 0x07 {
				return i + 1
			}
			if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
		}
		return len(s)
	}
	_, size := utf8.DecodeRuneInString(s[1:])
	return 1 + size
}

// plainField matches a key that can stand in a field path as written.
var plainField = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// FieldName is name for a field path, or "?" when the key is not a plain name: the path
// is printed unquoted, so a hostile key is shown only in the message, through Quote.
func FieldName(name string) string {
	if plainField.MatchString(name) {
		return name
	}
	return "?"
}

// IsDisplayable reports whether Displayable leaves s as it is (apart from the cap).
func IsDisplayable(s string) bool {
	return Displayable(s, len(s)) == s
}
