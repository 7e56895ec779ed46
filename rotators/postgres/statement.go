package postgres

import (
	"errors"
	"fmt"
	"strings"
)

// CheckQueryProblem says what is wrong with a check query, or returns "". A check query
// must be exactly one statement: Test runs it in a read-only transaction that it rolls
// back, and a second statement could end that transaction (COMMIT) and write in a new
// one. Test also runs it with the extended query protocol, where the server itself
// refuses more than one statement; this check says so before anything runs, with the
// count. It reads the text the way the server's lexer does, so a semicolon inside a
// string, a quoted identifier, a dollar-quoted body or a comment does not count, and a
// trailing semicolon is fine.
func CheckQueryProblem(sql string) string {
	n, err := countStatements(sql)
	switch {
	case errors.Is(err, errParameter):
		return "uses a parameter such as $1; a check query is sent with none, so write the value into the query"
	case err != nil:
		return err.Error()
	case n == 0:
		return "holds no statement; write one read-only query such as SELECT 1 FROM orders LIMIT 1, or remove it"
	case n > 1:
		return fmt.Sprintf("holds %d statements; a check query must be one read-only statement, such as SELECT 1 FROM orders LIMIT 1", n)
	}
	return ""
}

// countStatements counts the non-empty statements in sql, separated by semicolons
// outside strings, quoted identifiers, dollar quotes and comments.
func countStatements(sql string) (int, error) {
	n, content := 0, false
	for i := 0; i < len(sql); {
		c := sql[i]
		next := byte(0)
		if i+1 < len(sql) {
			next = sql[i+1]
		}
		var end int
		var err error
		switch {
		case c == ';':
			if content {
				n++
			}
			content = false
			i++
			continue
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
			continue
		case c == '-' && next == '-':
			end = strings.IndexByte(sql[i:], '\n')
			if end < 0 {
				return n + b2i(content), nil
			}
			i += end + 1
			continue
		case c == '/' && next == '*':
			end, err = blockCommentEnd(sql, i)
			if err != nil {
				return 0, err
			}
			i = end
			continue
		case c == '\'':
			end, err = quotedEnd(sql, i, '\'', false)
		case c == '"':
			end, err = quotedEnd(sql, i, '"', false)
		case c == '$':
			end, err = dollarEnd(sql, i)
		case isIdentStart(c):
			end = i + 1
			for end < len(sql) && isIdentPart(sql[end]) {
				end++
			}
			// E'...' is a string with backslash escapes, where \' does not end it.
			if end == i+1 && (c == 'E' || c == 'e') && end < len(sql) && sql[end] == '\'' {
				end, err = quotedEnd(sql, end, '\'', true)
			}
		default:
			end = i + 1
		}
		if err != nil {
			return 0, err
		}
		content = true
		i = end
	}
	return n + b2i(content), nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

var (
	errParameter           = errors.New("uses a parameter")
	errUnterminatedString  = errors.New("has a string, quoted identifier or dollar-quoted body that is never closed")
	errUnterminatedComment = errors.New("has a /* comment that is never closed")
)

// quotedEnd returns the index just past the quoted text starting at sql[i] == q, where
// a doubled q stands for itself and, with backslashes, \ escapes the next byte.
func quotedEnd(sql string, i int, q byte, backslashes bool) (int, error) {
	for j := i + 1; j < len(sql); j++ {
		switch sql[j] {
		case '\\':
			if backslashes {
				j++
			}
		case q:
			if j+1 < len(sql) && sql[j+1] == q {
				j++
				continue
			}
			return j + 1, nil
		}
	}
	return 0, errUnterminatedString
}

// blockCommentEnd returns the index just past the comment starting at sql[i:i+2] == "/*";
// PostgreSQL's block comments nest.
func blockCommentEnd(sql string, i int) (int, error) {
	depth := 0
	for j := i; j+1 < len(sql); j++ {
		switch {
		case sql[j] == '/' && sql[j+1] == '*':
			depth++
			j++
		case sql[j] == '*' && sql[j+1] == '/':
			depth--
			j++
			if depth == 0 {
				return j + 1, nil
			}
		}
	}
	return 0, errUnterminatedComment
}

// dollarEnd returns the index just past the token starting at sql[i] == '$': a dollar-
// quoted string ($$...$$ or $tag$...$tag$), or a parameter such as $1.
func dollarEnd(sql string, i int) (int, error) {
	j := i + 1
	if j < len(sql) && isIdentStart(sql[j]) {
		for j < len(sql) && isIdentPart(sql[j]) && sql[j] != '$' {
			j++
		}
	}
	if j >= len(sql) || sql[j] != '$' {
		if j == i+1 && j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
			return 0, errParameter
		}
		return i + 1, nil // a lone $: not a quote
	}
	tag := sql[i : j+1]
	end := strings.Index(sql[j+1:], tag)
	if end < 0 {
		return 0, errUnterminatedString
	}
	return j + 1 + end + len(tag), nil
}

// isIdentStart and isIdentPart follow PostgreSQL's lexer: letters, '_' and any byte of a
// multi-byte character start an identifier; digits and '$' may follow.
func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' || c == '$' }
