package recording_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/callgate/callgate/controller/recording"
)

// FuzzOpen feeds arbitrary ciphertext to Open under a fixed key: it must
// never panic, and must either fail or return exactly what the stream's
// reader returns. Seeds (valid files, truncations) are in testdata/fuzz.
func FuzzOpen(f *testing.F) {
	key := testKey(1)
	for _, size := range []int{0, 5, 300} {
		var buf bytes.Buffer
		if _, _, err := recording.Seal(&buf, bytes.NewReader(make([]byte, size)), key); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, sealed []byte) {
		var out bytes.Buffer
		n, err := recording.Open(&out, bytes.NewReader(sealed), key)
		if int64(out.Len()) != n {
			t.Fatalf("Open reported %d bytes but wrote %d", n, out.Len())
		}
		if err == nil && len(sealed) < 15+16 {
			t.Fatalf("Open accepted %d bytes, shorter than a header and a tag", len(sealed))
		}
		r, rerr := recording.NewOpener(bytes.NewReader(sealed), key)
		if rerr == nil {
			got, rerr := io.ReadAll(r)
			if (rerr == nil) != (err == nil) || !bytes.Equal(got, out.Bytes()) {
				t.Fatalf("NewOpener and Open disagree: %v vs %v", rerr, err)
			}
		}
	})
}
