package freeswitch

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// A Go port of the FreeSWITCH 1.10 code that parses `bgapi originate`, used
// to prove that no user input changes a built command's structure:
//
//   - mod_event_socket: the command is the line before the first newline;
//     "bgapi " then the API name up to the first space, the rest its argument.
//   - mod_commands originate_function: switch_separate_string(arg, ' ', argv, 10).
//   - switch_ivr_originate / switch_event_create_brackets: switch_find_end_paren
//     for the {…} block, switch_separate_string(vars, ',', …) and for each
//     pair switch_separate_string(pair, '=', inner, 2); a pair with no value
//     is ignored. The enterprise separator ":_:" anywhere switches parsers.
//
// src/switch_utils.c: switch_separate_string, separate_string_char_delim,
// separate_string_blank_delim, cleanup_separated_string, unescape_char,
// switch_find_end_paren.

const escapeMeta = '\\'

func fsUnescapeChar(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 's':
		return ' '
	}
	return c
}

// cstr returns b up to its first NUL, as C sees it.
func cstr(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

func fsCleanup(str []byte, delim byte) string {
	s := cstr(str)
	ptr := 0
	for ptr < len(s) && s[ptr] == ' ' {
		ptr++
	}
	var dest []byte
	end := -1
	inside := false
	at := func(i int) byte {
		if i < len(s) {
			return s[i]
		}
		return 0
	}
	for ; ptr < len(s); ptr++ {
		esc := false
		if s[ptr] == escapeMeta {
			e := at(ptr + 1)
			if e == '\'' || e == '"' || (delim != 0 && e == delim) || e == escapeMeta || fsUnescapeChar(e) != e {
				if !(e == '\'' || e == '"' || (delim != 0 && e == delim) || e == escapeMeta) {
					e = fsUnescapeChar(e)
				}
				ptr++
				dest = append(dest, e)
				end = len(dest)
				esc = true
			}
		}
		if !esc {
			if s[ptr] == '\'' && (inside || bytes.IndexByte(s[ptr+1:], '\'') >= 0) {
				inside = !inside
				if inside {
					end = len(dest)
				}
			} else {
				dest = append(dest, s[ptr])
				if s[ptr] != ' ' || inside {
					end = len(dest)
				}
			}
		}
	}
	if end >= 0 {
		dest = dest[:end]
	}
	return string(dest)
}

func fsSeparateString(in string, delim byte, max int) []string {
	b := []byte(in)
	if len(b) >= 4 && b[0] == '^' && b[1] == '^' {
		delim = b[2]
		b = b[3:]
	}
	if delim == ' ' {
		return fsBlankDelim(b, max)
	}
	return fsCharDelim(b, delim, max)
}

func fsCharDelim(b []byte, delim byte, max int) []string {
	var starts []int
	start := true
	inside := false
	for ptr := 0; ptr < len(b) && len(starts) < max; {
		if start {
			starts = append(starts, ptr)
			start = false
			continue
		}
		switch {
		case b[ptr] == escapeMeta:
			ptr++
		case b[ptr] == '\'' && (inside || bytes.IndexByte(cstr(b[ptr+1:]), '\'') >= 0):
			inside = !inside
		case b[ptr] == delim && !inside:
			b[ptr] = 0
			start = true
		}
		ptr++
	}
	out := make([]string, len(starts))
	for i, s := range starts {
		out[i] = fsCleanup(b[s:], delim)
	}
	return out
}

func fsBlankDelim(b []byte, max int) []string {
	const (
		stStart = iota
		stSkipInitial
		stFind
		stSkipEnding
	)
	var starts []int
	state := stStart
	inside := false
	for ptr := 0; ptr < len(b) && len(starts) < max; {
		switch state {
		case stStart:
			starts = append(starts, ptr)
			state = stSkipInitial
		case stSkipInitial:
			if b[ptr] == ' ' {
				ptr++
			} else {
				state = stFind
			}
		case stFind:
			switch {
			case b[ptr] == escapeMeta:
				ptr++
			case b[ptr] == '\'':
				inside = !inside
			case b[ptr] == ' ' && !inside:
				b[ptr] = 0
				state = stSkipEnding
			}
			ptr++
		case stSkipEnding:
			if b[ptr] == ' ' {
				ptr++
			} else {
				state = stStart
			}
		}
	}
	out := make([]string, len(starts))
	for i, s := range starts {
		out[i] = fsCleanup(b[s:], 0)
	}
	return out
}

// fsFindEndParen returns the index of the brace closing s's first one, -1 if
// none. Quotes are not honoured, as in FreeSWITCH.
func fsFindEndParen(s string, open, close byte) int {
	i := 0
	for i < len(s) && s[i] == ' ' {
		i++
	}
	if i >= len(s) || s[i] != open {
		return -1
	}
	depth := 1
	for e := i + 1; e < len(s); e++ {
		if s[e] == open && open != close {
			depth++
		} else if s[e] == close {
			depth--
			if depth == 0 {
				return e
			}
		}
	}
	return -1
}

// parsedOriginate is what FreeSWITCH makes of a bgapi originate line.
type parsedOriginate struct {
	vars     [][2]string
	endpoint string
	exten    string
}

// fsParseOriginate parses an ESL command line the way FreeSWITCH would and
// fails if it is not a single `bgapi originate {vars}<endpoint> &park()`
// with one endpoint.
func fsParseOriginate(line string) (parsedOriginate, error) {
	var p parsedOriginate
	if strings.ContainsAny(line, "\r\n\x00") {
		return p, errors.New("line holds CR, LF or NUL: a second command")
	}
	rest, ok := strings.CutPrefix(line, "bgapi ")
	if !ok {
		return p, errors.New("not bgapi")
	}
	api, arg, _ := strings.Cut(rest, " ")
	if api != "originate" {
		return p, fmt.Errorf("api %q", api)
	}
	argv := fsSeparateString(arg, ' ', 10)
	if len(argv) != 2 {
		return p, fmt.Errorf("originate has %d arguments: %q", len(argv), argv)
	}
	aleg := argv[0]
	p.exten = argv[1]
	if strings.Contains(aleg, ":_:") {
		return p, errors.New("enterprise originate separator")
	}
	end := fsFindEndParen(aleg, '{', '}')
	if !strings.HasPrefix(aleg, "{") || end < 0 {
		return p, errors.New("no {} block")
	}
	vars := aleg[1:end]
	p.endpoint = strings.TrimLeft(aleg[end+1:], " ")
	if strings.HasPrefix(vars, "^^") {
		return p, errors.New("delimiter change")
	}
	for _, pair := range fsSeparateString(vars, ',', 1024) {
		kv := fsSeparateString(pair, '=', 2)
		if len(kv) == 2 {
			p.vars = append(p.vars, [2]string{kv[0], kv[1]})
		}
	}
	if strings.ContainsAny(p.endpoint, "{}[]<>|, '\\") {
		return p, fmt.Errorf("endpoint %q holds a dial-string separator", p.endpoint)
	}
	return p, nil
}
