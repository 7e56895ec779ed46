package inventory

import "github.com/keyturn/keyturn/internal/yamlfields"

// The sanitizer for text from the file is owned by yamlfields; these names keep the
// inventory code short to read.

// maxValueRunes caps how much of a value from the file a message repeats.
const maxValueRunes = yamlfields.MaxValueRunes

// maxMessageRunes caps a parser's message that may repeat part of the file.
const maxMessageRunes = yamlfields.MaxMessageRunes

// quoteValue renders a value from the file for a problem message (see yamlfields.Quote).
func quoteValue(s string) string { return yamlfields.Quote(s) }

// displayable cleans text from the file and caps it (see yamlfields.Displayable).
func displayable(s string, limit int) string { return yamlfields.Displayable(s, limit) }

// isDisplayable reports whether displayable leaves s as it is (apart from the cap).
func isDisplayable(s string) bool { return yamlfields.IsDisplayable(s) }
