package secret

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ScrubError returns err unchanged unless its text, in any form fmt prints it (%v, %+v,
// %#v), holds one of values; then an error whose message has each value replaced by
// Redacted and whose chain keeps only those of keep that err matches (errors.Is) and the
// context errors, since any other link may repeat a value. Empty values are ignored.
// A rotator calls it on every error of a call that carried material.
func ScrubError(err error, values []string, keep ...error) error {
	if err == nil || !holds(fmt.Sprintf("%v %+v %#v", err, err, err), values) {
		return err
	}
	return Scrubbed(RedactAll(err.Error(), values...), Kept(err, keep...)...)
}

// RedactAll returns s with every non-empty value replaced by Redacted, longest first, so
// a value holding another is not left half visible.
func RedactAll(s string, values ...string) string {
	sorted := make([]string, 0, len(values))
	for _, v := range values {
		if v != "" {
			sorted = append(sorted, v)
		}
	}
	slices.SortStableFunc(sorted, func(a, b string) int { return len(b) - len(a) })
	for _, v := range sorted {
		s = strings.ReplaceAll(s, v, Redacted)
	}
	return s
}

// Kept returns those of sentinels that err matches, and context.Canceled and
// context.DeadlineExceeded when err matches them: what a scrubbed error may still
// unwrap to.
func Kept(err error, sentinels ...error) []error {
	var out []error
	for _, s := range append(sentinels, context.Canceled, context.DeadlineExceeded) {
		if errors.Is(err, s) {
			out = append(out, s)
		}
	}
	return out
}

// Scrubbed is an error with an already redacted message that unwraps only to causes.
func Scrubbed(msg string, causes ...error) error { return &scrubbedError{msg: msg, causes: causes} }

type scrubbedError struct {
	msg    string
	causes []error
}

func (e *scrubbedError) Error() string   { return e.msg }
func (e *scrubbedError) Unwrap() []error { return e.causes }

func holds(s string, values []string) bool {
	for _, v := range values {
		if v != "" && strings.Contains(s, v) {
			return true
		}
	}
	return false
}
