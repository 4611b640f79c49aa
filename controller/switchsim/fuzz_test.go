package switchsim

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// fixtureSends returns every command the captured sessions sent, as seeds.
func fixtureSends(f *testing.F) []string {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "freeswitch", "*.jsonl"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no transcripts: %v", err)
	}
	var out []string
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			var r record
			if err := json.Unmarshal(line, &r); err != nil {
				f.Fatal(err)
			}
			if r.Dir == "send" {
				out = append(out, latin1(r.Data))
			}
		}
	}
	return out
}

// FuzzParseCommand checks the command framer never panics, never claims
// more than it was given, and is stable: a complete frame parses the same
// with or without what follows it, and one byte less is incomplete.
func FuzzParseCommand(f *testing.F) {
	for _, s := range fixtureSends(f) {
		f.Add([]byte(s))
		f.Add([]byte(bytes.ReplaceAll([]byte(s), []byte("\n"), []byte("\r\n"))))
	}
	f.Add([]byte("sendmsg u\r\nContent-Length: 3\r\n\r\nabc\r\n\r\n"))
	f.Add([]byte("\r\n\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, n, err := ParseCommand(data)
		if err != nil {
			if n != 0 {
				t.Fatalf("error with n=%d", n)
			}
			return
		}
		if n < 0 || n > len(data) {
			t.Fatalf("n=%d outside input of %d bytes", n, len(data))
		}
		if n == 0 || cmd.Line == "" {
			return
		}
		again, n2, err := ParseCommand(data[:n])
		if err != nil || n2 != n || again.Line != cmd.Line || again.Body != cmd.Body || len(again.Headers) != len(cmd.Headers) {
			t.Fatalf("frame not self-contained: %q vs %q (%d/%d, %v)", again.Line, cmd.Line, n2, n, err)
		}
		if _, short, err := ParseCommand(data[:n-1]); err == nil && short != 0 {
			t.Fatalf("a frame one byte short parsed as %d bytes", short)
		}
	})
}

// FuzzParseOriginate checks originate argument parsing never panics, is
// deterministic, and that whatever it accepts plans to at least one session
// or a clean failure.
func FuzzParseOriginate(f *testing.F) {
	for _, s := range fixtureSends(f) {
		if bytes.Contains([]byte(s), []byte("originate ")) {
			f.Add(string(bytes.TrimSpace([]byte(s[bytes.Index([]byte(s), []byte("originate "))+len("originate "):]))))
		}
	}
	f.Add(`{a='x\,y',b=\'1,2\'}[c=d]sofia/gateway/gw/+1555 &playback(/tmp/a b.wav) XML default 'A B' 123 30`)
	f.Add(`^^:a:b`)
	f.Fuzz(func(t *testing.T, arg string) {
		o, fail := ParseOriginate(arg)
		o2, fail2 := ParseOriginate(arg)
		if fail != fail2 || o.Endpoint != o2.Endpoint || len(o.Vars) != len(o2.Vars) {
			t.Fatalf("not deterministic for %q", arg)
		}
		if fail != "" {
			return
		}
		sp, failure := planOriginate(o)
		if (sp == nil) == (failure == "") {
			t.Fatalf("planOriginate(%q) gave neither a plan nor a failure", arg)
		}
		if sp != nil && (sp.sessions() < 1 || sp.uuid == "" || sp.timeout <= 0) {
			t.Fatalf("bad plan for %q: %+v", arg, sp)
		}
	})
}
