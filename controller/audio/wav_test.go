package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// chunk is one RIFF chunk for building test files; size overrides the
// declared size when not -1.
type chunk struct {
	id   string
	body []byte
	size int64
}

func ck(id string, body []byte) chunk { return chunk{id: id, body: body, size: -1} }

// riff builds a RIFF/WAVE file from chunks, padding odd bodies, with the
// RIFF size computed unless riffSize is not -1.
func riff(riffSize int64, chunks ...chunk) []byte {
	var body bytes.Buffer
	body.WriteString("WAVE")
	for _, c := range chunks {
		body.WriteString(c.id)
		size := int64(len(c.body))
		if c.size >= 0 {
			size = c.size
		}
		_ = binary.Write(&body, binary.LittleEndian, uint32(size))
		body.Write(c.body)
		if len(c.body)%2 == 1 {
			body.WriteByte(0)
		}
	}
	if riffSize < 0 {
		riffSize = int64(body.Len())
	}
	out := []byte("RIFF")
	out = binary.LittleEndian.AppendUint32(out, uint32(riffSize))
	return append(out, body.Bytes()...)
}

// fmtBody is a 16-byte PCM "fmt " body; blockAlign and byteRate of 0 are
// computed.
func fmtBody(tag uint16, channels, rate, bits, blockAlign, byteRate int) []byte {
	if blockAlign == 0 {
		blockAlign = channels * bits / 8
	}
	if byteRate == 0 {
		byteRate = rate * blockAlign
	}
	b := binary.LittleEndian.AppendUint16(nil, tag)
	b = binary.LittleEndian.AppendUint16(b, uint16(channels))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate))
	b = binary.LittleEndian.AppendUint32(b, uint32(byteRate))
	b = binary.LittleEndian.AppendUint16(b, uint16(blockAlign))
	return binary.LittleEndian.AppendUint16(b, uint16(bits))
}

// extensibleBody is a 40-byte WAVE_FORMAT_EXTENSIBLE body for subformat sub.
func extensibleBody(channels, rate int, sub uint16) []byte {
	b := fmtBody(FormatExtensible, channels, rate, 16, 0, 0)
	b = binary.LittleEndian.AppendUint16(b, 22) // cbSize
	b = binary.LittleEndian.AppendUint16(b, 16) // valid bits
	b = binary.LittleEndian.AppendUint32(b, 3)  // channel mask FL|FR
	b = binary.LittleEndian.AppendUint16(b, sub)
	return append(b, pcmSubformat[:]...)
}

var mono8k = fmtBody(FormatPCM, 1, 8000, 16, 0, 0)

func toneWAV(t *testing.T, f Format, d time.Duration, freqs ...float64) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, WriteToneWAV(&b, f, d, freqs))
	return b.Bytes()
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	cases := []struct {
		channels, rate int
		d              time.Duration
		frames         int64
	}{
		{1, 8000, 0, 0},
		{1, 8000, 1500 * time.Millisecond, 12000},
		{2, 8000, 2345 * time.Millisecond, 18760},
		{2, 8000, 125 * time.Microsecond, 1},
		{1, 8000, 124 * time.Microsecond, 0}, // less than a sample
		{2, 16000, time.Second, 16000},
		{1, 22050, time.Second + time.Millisecond, 22072}, // 22072.05 samples
		{2, 44100, 3 * time.Second, 132300},
		{1, 48000, 10 * time.Millisecond, 480},
	}
	dir := t.TempDir()
	for i, tc := range cases {
		in := Format{Channels: tc.channels, SampleRate: tc.rate}
		b := toneWAV(t, in, tc.d, 440, 660)
		f, err := ParseWAV(bytes.NewReader(b))
		require.NoError(t, err)
		want := Format{AudioFormat: FormatPCM, Channels: tc.channels, SampleRate: tc.rate, BitsPerSample: 16,
			DataBytes: tc.frames * int64(2*tc.channels), DataOffset: 44}
		require.Equal(t, want, f, "case %d", i)
		require.Equal(t, int64(len(b)), f.DataOffset+f.DataBytes)
		// Exact to the sample: the duration is that of the whole samples
		// written, within one sample period of d.
		require.Equal(t, time.Duration(tc.frames)*time.Second/time.Duration(tc.rate), f.Duration())
		require.Less(t, tc.d-f.Duration(), time.Second/time.Duration(tc.rate))
		require.GreaterOrEqual(t, tc.d, f.Duration())

		path := filepath.Join(dir, "rt.wav")
		require.NoError(t, os.WriteFile(path, b, 0o600))
		ff, err := ParseWAVFile(path)
		require.NoError(t, err)
		require.Equal(t, want, ff)
	}
}

func TestRoundTripMillisecondsExact(t *testing.T) {
	t.Parallel()
	for _, ms := range []int64{1, 7, 999, 1000, 61234} {
		for _, rate := range []int{8000, 16000, 32000, 48000} {
			d := time.Duration(ms) * time.Millisecond
			f, err := ParseWAV(bytes.NewReader(toneWAV(t, Format{Channels: 2, SampleRate: rate}, d, 440)))
			require.NoError(t, err)
			require.Equal(t, d, f.Duration(), "%d ms at %d Hz", ms, rate)
		}
	}
}

func samples(b []byte) []int16 {
	out := make([]int16, len(b)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

func TestToneContent(t *testing.T) {
	t.Parallel()
	stereo := toneWAV(t, Format{Channels: 2, SampleRate: 8000}, time.Second, 440, 660)
	require.Equal(t, stereo, toneWAV(t, Format{Channels: 2, SampleRate: 8000}, time.Second, 440, 660), "deterministic")
	mono := toneWAV(t, Format{Channels: 1, SampleRate: 8000}, time.Second, 440)
	s, m := samples(stereo[44:]), samples(mono[44:])
	require.Len(t, m, 8000)
	require.Len(t, s, 16000)
	var peakL, peakR int16
	for i := range m {
		require.Equal(t, m[i], s[2*i], "left channel is the mono 440 Hz tone")
		peakL, peakR = max(peakL, s[2*i]), max(peakR, s[2*i+1])
	}
	require.Zero(t, m[0], "phase 0")
	want := int16(math.Round(ToneAmplitude * math.MaxInt16))
	require.InDelta(t, want, peakL, 5)
	require.InDelta(t, want, peakR, 5)
	// 660 Hz differs from 440 Hz.
	require.NotEqual(t, s[2], s[3])
	// No freqs is silence.
	silent := toneWAV(t, Format{Channels: 1, SampleRate: 8000}, 10*time.Millisecond)
	require.Equal(t, make([]byte, 160), silent[44:])
}

func TestWriteRejections(t *testing.T) {
	t.Parallel()
	ok := Format{Channels: 1, SampleRate: 8000}
	var b bytes.Buffer
	for _, tc := range []struct {
		f    Format
		want string
	}{
		{Format{Channels: 3, SampleRate: 8000}, "unsupported channel count 3"},
		{Format{Channels: 1, SampleRate: 11025}, "unsupported sample rate 11025 Hz"},
		{Format{Channels: 1, SampleRate: 8000, BitsPerSample: 8}, "unsupported bits per sample 8"},
		{Format{Channels: 1, SampleRate: 8000, AudioFormat: 3}, "unsupported audio format 3"},
	} {
		require.ErrorContains(t, WriteWAVHeader(&b, tc.f, 0), tc.want)
		require.ErrorIs(t, WriteToneWAV(&b, tc.f, time.Second, nil), ErrUnsupported)
	}
	require.ErrorContains(t, WriteWAVHeader(&b, ok, 3), "whole number of 2-byte frames")
	require.ErrorContains(t, WriteWAVHeader(&b, ok, -2), "whole number")
	require.ErrorContains(t, WriteWAVHeader(&b, ok, 1<<32), "more than a WAV file holds")
	require.ErrorContains(t, WriteToneWAV(&b, ok, -time.Second, nil), "negative duration")
	require.ErrorContains(t, WriteToneWAV(&b, ok, time.Second, []float64{math.NaN()}), "frequency NaN Hz")
	require.ErrorContains(t, WriteToneWAV(&b, ok, time.Second, []float64{4001}), "outside 0..4000 Hz")
	require.ErrorContains(t, WriteToneWAV(&b, Format{Channels: 2, SampleRate: 48000}, 100*time.Hour, nil), "longer than a WAV file holds")
	require.Zero(t, b.Len(), "nothing written on error")

	// The largest header still parses.
	largest := int64(maxDataBytes / 4 * 4)
	require.NoError(t, WriteWAVHeader(&b, Format{Channels: 2, SampleRate: 8000}, largest))
	f, err := ParseWAV(&b)
	require.NoError(t, err)
	require.Equal(t, largest, f.DataBytes)
}

func TestParseRejections(t *testing.T) {
	t.Parallel()
	data := ck("data", make([]byte, 16))
	ext := extensibleBody(2, 8000, 3)
	crashedData := chunk{id: "data", body: make([]byte, 8), size: math.MaxUint32}
	cases := []struct {
		name string
		in   []byte
		kind error
		msg  string
	}{
		{"empty", nil, ErrNotWAV, "not a WAV file: missing RIFF header"},
		{"text", []byte("hello, world"), ErrNotWAV, "not a WAV file: missing RIFF header"},
		{"short", []byte("RIFF\x10\x00"), ErrNotWAV, "input ends inside the RIFF header"},
		{"rifx", []byte("RIFX\x10\x00\x00\x00WAVE"), ErrUnsupported, "big-endian RIFX"},
		{"rf64", []byte("RF64\xff\xff\xff\xffWAVE"), ErrUnsupported, "64-bit RF64"},
		{"avi", []byte("RIFF\x10\x00\x00\x00AVI "), ErrNotWAV, `RIFF form type is "AVI "`},
		{"riff size 0", riff(0, ck("fmt ", mono8k), data), ErrIncomplete, "RIFF size is 0x00000000"},
		{"riff size unset", riff(math.MaxUint32, ck("fmt ", mono8k), data), ErrIncomplete, "RIFF size is 0xFFFFFFFF"},
		{"data size unset", riff(-1, ck("fmt ", mono8k), crashedData), ErrIncomplete, "data size is 0xFFFFFFFF"},
		{"data before fmt", riff(-1, data, ck("fmt ", mono8k)), ErrMalformed, "data chunk before fmt chunk"},
		{"no fmt", riff(-1, ck("LIST", []byte("INFO"))), ErrMalformed, "no fmt chunk"},
		{"no data", riff(-1, ck("fmt ", mono8k)), ErrMalformed, "no data chunk"},
		{"float", riff(-1, ck("fmt ", fmtBody(3, 1, 8000, 32, 0, 0)), data), ErrUnsupported, "unsupported audio format 3 (IEEE float)"},
		{"mu-law", riff(-1, ck("fmt ", fmtBody(7, 1, 8000, 8, 0, 0)), data), ErrUnsupported, "unsupported audio format 7 (mu-law)"},
		{"extensible float", riff(-1, ck("fmt ", ext), data), ErrUnsupported, "unsupported WAVE_FORMAT_EXTENSIBLE subformat 3"},
		{"extensible short", riff(-1, ck("fmt ", ext[:18]), data), ErrMalformed, "WAVE_FORMAT_EXTENSIBLE fmt chunk is 18 bytes"},
		{"6 channels", riff(-1, ck("fmt ", fmtBody(1, 6, 8000, 16, 0, 0)), data), ErrUnsupported, "unsupported channel count 6"},
		{"0 channels", riff(-1, ck("fmt ", fmtBody(1, 0, 8000, 16, 2, 16000)), data), ErrUnsupported, "unsupported channel count 0"},
		{"11025 Hz", riff(-1, ck("fmt ", fmtBody(1, 1, 11025, 16, 0, 0)), data), ErrUnsupported, "unsupported sample rate 11025 Hz"},
		{"huge rate", riff(-1, ck("fmt ", fmtBody(1, 1, math.MaxUint32, 16, 2, 0)), data), ErrUnsupported, "unsupported sample rate 4294967295 Hz"},
		{"8 bit", riff(-1, ck("fmt ", fmtBody(1, 1, 8000, 8, 0, 0)), data), ErrUnsupported, "unsupported bits per sample 8"},
		{"24 bit", riff(-1, ck("fmt ", fmtBody(1, 2, 48000, 24, 0, 0)), data), ErrUnsupported, "unsupported bits per sample 24"},
		{"block align", riff(-1, ck("fmt ", fmtBody(1, 2, 8000, 16, 2, 16000)), data), ErrMalformed, "block align 2 does not match 2 channels of 16 bits (want 4)"},
		{"byte rate", riff(-1, ck("fmt ", fmtBody(1, 1, 8000, 16, 2, 8000)), data), ErrMalformed, "byte rate 8000 does not match"},
		{"fmt short", riff(-1, ck("fmt ", mono8k[:14]), data), ErrMalformed, "fmt chunk is 14 bytes, want at least 16"},
		{"two fmt", riff(-1, ck("fmt ", mono8k), ck("fmt ", mono8k), data), ErrMalformed, "duplicate fmt chunk"},
		{"data past riff", riff(44, ck("fmt ", mono8k), chunk{id: "data", body: make([]byte, 16), size: 64}), ErrMalformed, "data chunk larger than the file"},
		{"partial frame", riff(-1, ck("fmt ", fmtBody(1, 2, 8000, 16, 0, 0)), ck("data", make([]byte, 6))), ErrMalformed, "data size 6 is not a whole number of 4-byte frames"},
		{"list past riff", riff(40, ck("fmt ", mono8k), ck("LIST", make([]byte, 20)), data), ErrMalformed, `chunk "LIST" (20 bytes) runs past the end of the RIFF chunk`},
		{"bad chunk id", riff(-1, ck("fmt ", mono8k), ck("\x00\x01ab", nil), data), ErrMalformed, "malformed chunk id"},
		{"truncated list", riff(-1, ck("fmt ", mono8k), ck("LIST", make([]byte, 100)), data)[:60], ErrIncomplete, `input ends inside chunk "LIST"`},
		{"truncated fmt", riff(-1, ck("fmt ", mono8k), data)[:30], ErrIncomplete, "input ends inside the fmt chunk"},
		{"ends before data", riff(-1, ck("fmt ", mono8k), data)[:40], ErrIncomplete, "before the data chunk"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseWAV(bytes.NewReader(tc.in))
			require.ErrorIs(t, err, tc.kind)
			require.ErrorContains(t, err, tc.msg)
			// A file of the same bytes is refused too.
			path := filepath.Join(t.TempDir(), "x.wav")
			require.NoError(t, os.WriteFile(path, tc.in, 0o600))
			_, err = ParseWAVFile(path)
			require.Error(t, err)
			require.ErrorContains(t, err, path)
		})
	}
}

func TestListAndOddPadding(t *testing.T) {
	t.Parallel()
	list := append([]byte("INFOISFT"), 0x05, 0, 0, 0)
	list = append(list, "sox\x00\x00"...) // 17 bytes: odd, padded
	in := riff(-1,
		ck("JUNK", make([]byte, 28)),
		ck("fmt ", fmtBody(1, 2, 16000, 16, 0, 0)),
		ck("LIST", list),
		ck("note", []byte("x")), // 1 byte + pad
		ck("data", make([]byte, 64)),
	)
	r := bytes.NewReader(in)
	f, err := ParseWAV(r)
	require.NoError(t, err)
	require.Equal(t, Format{AudioFormat: 1, Channels: 2, SampleRate: 16000, BitsPerSample: 16, DataBytes: 64,
		DataOffset: int64(12 + 8 + 28 + 8 + 16 + 8 + 18 + 8 + 2 + 8)}, f)
	require.Equal(t, 64, r.Len(), "the reader stops at the first sample")
	require.Equal(t, time.Millisecond, f.Duration())

	// Without the pad byte the walk loses alignment and says so.
	bad := bytes.Replace(in, []byte("note\x01\x00\x00\x00x\x00"), []byte("note\x01\x00\x00\x00x"), 1)
	_, err = ParseWAV(bytes.NewReader(bad))
	require.ErrorIs(t, err, ErrMalformed)
}

func TestExtensiblePCM(t *testing.T) {
	t.Parallel()
	f, err := ParseWAV(bytes.NewReader(riff(-1, ck("fmt ", extensibleBody(2, 48000, 1)), ck("data", make([]byte, 192)))))
	require.NoError(t, err)
	require.Equal(t, Format{AudioFormat: FormatPCM, Channels: 2, SampleRate: 48000, BitsPerSample: 16, DataBytes: 192, DataOffset: 68}, f)
	require.Equal(t, time.Millisecond, f.Duration())
}

func TestEmptyRecording(t *testing.T) {
	t.Parallel()
	b := toneWAV(t, Format{Channels: 1, SampleRate: 8000}, 0)
	path := filepath.Join(t.TempDir(), "empty.wav")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	f, err := ParseWAVFile(path)
	require.NoError(t, err)
	require.Zero(t, f.DataBytes)
	require.Zero(t, f.Duration())
}

func TestParseWAVFileSizes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	full := toneWAV(t, Format{Channels: 2, SampleRate: 8000}, time.Second, 440, 660)

	truncated := filepath.Join(dir, "truncated.wav")
	require.NoError(t, os.WriteFile(truncated, full[:len(full)-100], 0o600))
	_, err := ParseWAVFile(truncated)
	require.ErrorIs(t, err, ErrIncomplete)
	require.ErrorContains(t, err, "data chunk larger than the file: 32000 bytes at byte 44 but the file is 31944 bytes")
	// The stream parser cannot know; it reports the declared size.
	f, err := ParseWAV(bytes.NewReader(full[:len(full)-100]))
	require.NoError(t, err)
	require.Equal(t, int64(32000), f.DataBytes)

	// A recorder that crashed after writing audio but before finalising
	// its header: sizes still say "no audio".
	crashed := append([]byte(nil), full...)
	binary.LittleEndian.PutUint32(crashed[4:], 36)
	binary.LittleEndian.PutUint32(crashed[40:], 0)
	path := filepath.Join(dir, "crashed.wav")
	require.NoError(t, os.WriteFile(path, crashed, 0o600))
	_, err = ParseWAVFile(path)
	require.ErrorIs(t, err, ErrIncomplete)
	require.ErrorContains(t, err, "data size is 0 but 32000 bytes follow")

	// Trailing chunks after the data are fine.
	trailing := append(append([]byte(nil), full...), "LIST\x04\x00\x00\x00INFO"...)
	binary.LittleEndian.PutUint32(trailing[4:], uint32(len(trailing)-8))
	path = filepath.Join(dir, "trailing.wav")
	require.NoError(t, os.WriteFile(path, trailing, 0o600))
	f, err = ParseWAVFile(path)
	require.NoError(t, err)
	require.Equal(t, time.Second, f.Duration())

	_, err = ParseWAVFile(filepath.Join(dir, "missing.wav"))
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = ParseWAVFile(dir)
	require.ErrorContains(t, err, "not a regular file")
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestHeaderReadBound(t *testing.T) {
	t.Parallel()
	// Many JUNK chunks pushing data past MaxHeaderBytes: refused after
	// reading no more than the bound.
	head := riff(math.MaxUint32-1, ck("fmt ", mono8k))
	var junk []byte
	for range 40 {
		junk = append(junk, "JUNK\x00\x00\x01\x00"...) // 64 KiB each
		junk = append(junk, make([]byte, 1<<16)...)
	}
	cr := &countingReader{r: io.MultiReader(bytes.NewReader(head), bytes.NewReader(junk), zeros{})}
	_, err := ParseWAV(cr)
	require.ErrorIs(t, err, ErrUnsupported)
	require.ErrorContains(t, err, "no data chunk within the first 1048576 bytes")
	require.LessOrEqual(t, cr.n, int64(MaxHeaderBytes))

	// One chunk declaring 4 GiB: refused without reading it.
	huge := append(head, "LIST\x00\x00\x00\xf0"...)
	cr = &countingReader{r: io.MultiReader(bytes.NewReader(huge), zeros{})}
	_, err = ParseWAV(cr)
	require.ErrorIs(t, err, ErrUnsupported)
	require.Equal(t, int64(len(huge)), cr.n)

	// A huge fmt chunk is read only as far as needed and then skipped
	// within the bound.
	bigFmt := append(append([]byte(nil), mono8k...), make([]byte, 4000)...)
	f, err := ParseWAV(bytes.NewReader(riff(-1, ck("fmt ", bigFmt), ck("data", make([]byte, 2)))))
	require.NoError(t, err)
	require.Equal(t, int64(2), f.DataBytes)
}

var errBoom = errors.New("boom")

type failingReader struct{ after []byte }

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.after) == 0 {
		return 0, errBoom
	}
	n := copy(p, f.after)
	f.after = f.after[n:]
	return n, nil
}

func TestReaderErrorPassesThrough(t *testing.T) {
	t.Parallel()
	full := riff(-1, ck("fmt ", mono8k), ck("LIST", make([]byte, 100)), ck("data", make([]byte, 2)))
	for _, n := range []int{0, 6, 20, 30, 50} {
		_, err := ParseWAV(&failingReader{after: full[:n]})
		require.ErrorIs(t, err, errBoom, "after %d bytes", n)
		require.True(t, strings.HasPrefix(err.Error(), "reading WAV header: "), err.Error())
	}
}

func TestDurationOfOddFormats(t *testing.T) {
	t.Parallel()
	require.Zero(t, Format{}.Duration())
	require.Zero(t, Format{Channels: 1, SampleRate: 8000, DataBytes: -4}.Duration())
	// Large sizes do not overflow.
	f := Format{Channels: 1, SampleRate: 8000, DataBytes: 1 << 40}
	require.Equal(t, 68719476*time.Second+736*time.Millisecond, f.Duration()) // 2^39 frames
}
