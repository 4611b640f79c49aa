package audio

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// FuzzParseWAV checks that no input makes the parser panic, read past a
// data chunk, accept a format it promises to refuse, or, when it knows the
// input size, report audio the input does not hold. The committed corpus in
// testdata/fuzz/FuzzParseWAV adds a crashed recording, an extensible
// header, a LIST chunk with odd padding and a truncated file.
func FuzzParseWAV(f *testing.F) {
	var b bytes.Buffer
	_ = WriteToneWAV(&b, Format{Channels: 2, SampleRate: 8000}, 5*time.Millisecond, []float64{440, 660})
	f.Add(b.Bytes())
	f.Add(riff(-1, ck("fmt ", mono8k), ck("LIST", []byte("INFOx")), ck("data", make([]byte, 8))))
	f.Add(riff(-1, ck("fmt ", extensibleBody(1, 16000, 1)), ck("data", make([]byte, 4))))
	f.Add([]byte("RIFF\xff\xff\xff\xffWAVE"))

	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		got, err := ParseWAV(r)
		if err != nil {
			if !errors.Is(err, ErrNotWAV) && !errors.Is(err, ErrUnsupported) &&
				!errors.Is(err, ErrMalformed) && !errors.Is(err, ErrIncomplete) {
				t.Fatalf("error of no kind: %v", err)
			}
		} else {
			checkFormat(t, got)
			if int64(len(data))-int64(r.Len()) != got.DataOffset {
				t.Fatalf("read %d bytes, DataOffset %d", len(data)-r.Len(), got.DataOffset)
			}
		}

		sized, serr := parse(bytes.NewReader(data), int64(len(data)))
		if serr != nil {
			return
		}
		if err != nil {
			t.Fatalf("sized parse accepted what ParseWAV refused (%v): %+v", err, sized)
		}
		if sized != got {
			t.Fatalf("sized parse %+v, ParseWAV %+v", sized, got)
		}
		if sized.DataOffset+sized.DataBytes > int64(len(data)) {
			t.Fatalf("data %d bytes at %d beyond a %d-byte input", sized.DataBytes, sized.DataOffset, len(data))
		}
	})
}

func checkFormat(t *testing.T, f Format) {
	t.Helper()
	if f.AudioFormat != FormatPCM || f.Channels < 1 || f.Channels > 2 || !supportedRate(f.SampleRate) ||
		f.BitsPerSample != 16 || f.DataBytes < 0 || f.DataBytes%int64(f.blockAlign()) != 0 ||
		f.DataOffset < 44 || f.DataOffset > MaxHeaderBytes || f.Duration() < 0 {
		t.Fatalf("accepted an invalid format: %+v", f)
	}
}
