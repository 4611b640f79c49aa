// Package audio reads and writes the WAV files callgate records and plays:
// 16-bit PCM, mono or stereo, at the telephony and studio sample rates
// FreeSWITCH uses. It parses headers only and never trusts a declared size
// to allocate memory.
package audio

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"
)

// Audio format tags of the WAVE "fmt " chunk.
const (
	FormatPCM        uint16 = 1
	FormatExtensible uint16 = 0xFFFE
)

// MaxHeaderBytes bounds how far ParseWAV reads looking for the data chunk:
// chunks (LIST, bext, JUNK…) that push "data" beyond it are refused.
const MaxHeaderBytes = 1 << 20

// headerSize is the size of the canonical header WriteWAVHeader writes.
const headerSize = 44

// maxDataBytes is the largest data chunk a RIFF file can describe: its
// size field is 32 bits and must also count the 36 header bytes after it.
// 0xFFFFFFFF itself is the "size unknown" placeholder and is never written.
const maxDataBytes = 0xFFFFFFFE - (headerSize - 8)

// Errors ParseWAV and ParseWAVFile wrap, to tell why a file was refused.
var (
	// ErrNotWAV: the input is not a RIFF/WAVE file at all.
	ErrNotWAV = errors.New("not a WAV file")
	// ErrUnsupported: a WAV file in a coding, channel count, rate or sample
	// width callgate does not handle.
	ErrUnsupported = errors.New("unsupported WAV file")
	// ErrMalformed: the chunks contradict each other or the RIFF rules.
	ErrMalformed = errors.New("malformed WAV file")
	// ErrIncomplete: the file is truncated or was never finalised, e.g. a
	// recorder that stopped mid-write left placeholder sizes.
	ErrIncomplete = errors.New("incomplete WAV file")
)

// wavError is a parse error with a precise message that matches one of the
// Err* kinds with errors.Is.
type wavError struct {
	kind error
	msg  string
}

func (e *wavError) Error() string { return e.msg }
func (e *wavError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &wavError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// Format describes a 16-bit PCM WAV stream and where its samples are.
type Format struct {
	// AudioFormat is 1 (PCM). WAVE_FORMAT_EXTENSIBLE files with the PCM
	// subformat are reported as 1 too. 0 means PCM when writing.
	AudioFormat uint16
	// Channels is 1 (mono) or 2 (stereo: left, right interleaved).
	Channels int
	// SampleRate in Hz: 8000, 16000, 22050, 24000, 32000, 44100 or 48000.
	SampleRate int
	// BitsPerSample is 16. 0 means 16 when writing.
	BitsPerSample int
	// DataBytes is the size the data chunk declares (the sample bytes).
	DataBytes int64
	// DataOffset is where the first sample byte is, from the file start.
	DataOffset int64
}

// Duration is how long DataBytes of audio plays, truncated to the
// nanosecond; 0 for a Format without a sample rate or frame size.
func (f Format) Duration() time.Duration {
	frame := int64(f.blockAlign())
	if frame <= 0 || f.SampleRate <= 0 || f.DataBytes <= 0 {
		return 0
	}
	frames := f.DataBytes / frame
	rate := int64(f.SampleRate)
	return time.Duration(frames/rate)*time.Second + time.Duration(frames%rate)*time.Second/time.Duration(rate)
}

// blockAlign is the size of one frame (a sample of every channel).
func (f Format) blockAlign() int { return f.Channels * f.bits() / 8 }

func (f Format) bits() int {
	if f.BitsPerSample == 0 {
		return 16
	}
	return f.BitsPerSample
}

func supportedRate(hz int) bool {
	switch hz {
	case 8000, 16000, 22050, 24000, 32000, 44100, 48000:
		return true
	}
	return false
}

// checkWritable reports a Format WriteWAVHeader cannot write.
func (f Format) checkWritable() error {
	switch {
	case f.AudioFormat != 0 && f.AudioFormat != FormatPCM:
		return errorf(ErrUnsupported, "unsupported audio format %d: only PCM (1) is written", f.AudioFormat)
	case f.Channels < 1 || f.Channels > 2:
		return errorf(ErrUnsupported, "unsupported channel count %d: want 1 or 2", f.Channels)
	case !supportedRate(f.SampleRate):
		return errorf(ErrUnsupported, "unsupported sample rate %d Hz", f.SampleRate)
	case f.bits() != 16:
		return errorf(ErrUnsupported, "unsupported bits per sample %d: only 16-bit PCM", f.BitsPerSample)
	}
	return nil
}

// formatName names the common non-PCM codings in errors.
func formatName(tag uint16) string {
	switch tag {
	case 2:
		return " (MS ADPCM)"
	case 3:
		return " (IEEE float)"
	case 6:
		return " (A-law)"
	case 7:
		return " (mu-law)"
	case 0x11:
		return " (IMA ADPCM)"
	case 0x31:
		return " (GSM 6.10)"
	case 0x55:
		return " (MP3)"
	}
	return ""
}

// ParseWAV reads a RIFF/WAVE header from r up to the first sample byte and
// describes the audio. On success r has been read exactly to DataOffset,
// so the samples can be read from r next.
//
// It walks the chunks in order, skipping unknown ones (LIST, bext, JUNK…)
// and their odd-size pad byte, needs "fmt " before "data", and accepts
// only 16-bit PCM (or WAVE_FORMAT_EXTENSIBLE with the PCM subformat), 1 or
// 2 channels, at 8000, 16000, 22050, 24000, 32000, 44100 or 48000 Hz, with
// a consistent block align and byte rate. It reads at most MaxHeaderBytes
// before the data chunk and allocates nothing based on declared sizes.
//
// A RIFF size of 0 or 0xFFFFFFFF, or a data size of 0xFFFFFFFF, is what a
// recorder leaves when it stops before finalising the header (or when it
// streams to a pipe); such files are refused with ErrIncomplete rather
// than guessed at. A declared data size of 0 is an empty recording here;
// ParseWAVFile, which knows the file size, refuses it when audio follows.
//
// Returns an error wrapping ErrNotWAV, ErrUnsupported, ErrMalformed or
// ErrIncomplete that says what is wrong, or the reader's own error.
func ParseWAV(r io.Reader) (Format, error) {
	return parse(r, -1)
}

// ParseWAVFile parses the header of the WAV file at path like ParseWAV and
// also checks that the data chunk fits inside the file. Returns an error
// wrapping ErrIncomplete if the file is shorter than its header says or its
// header was never finalised (a data size of 0 with audio after it).
func ParseWAVFile(path string) (Format, error) {
	fh, err := os.Open(path)
	if err != nil {
		return Format{}, fmt.Errorf("parsing WAV file: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return Format{}, fmt.Errorf("parsing WAV file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return Format{}, fmt.Errorf("parsing WAV file %s: not a regular file", path)
	}
	f, err := parse(bufio.NewReaderSize(fh, 4096), st.Size())
	if err != nil {
		return Format{}, fmt.Errorf("parsing WAV file %s: %w", path, err)
	}
	return f, nil
}

// parse reads a header; size is the input's total length, or -1 if unknown.
func parse(r io.Reader, size int64) (Format, error) {
	var hdr [12]byte
	n, err := io.ReadFull(r, hdr[:])
	if err := readErr(err); err != nil {
		return Format{}, err
	}
	if n < 4 {
		return Format{}, errorf(ErrNotWAV, "not a WAV file: missing RIFF header")
	}
	switch string(hdr[0:4]) {
	case "RIFF":
	case "RIFX":
		return Format{}, errorf(ErrUnsupported, "unsupported WAV file: big-endian RIFX")
	case "RF64", "BW64":
		return Format{}, errorf(ErrUnsupported, "unsupported WAV file: 64-bit %s", hdr[0:4])
	default:
		return Format{}, errorf(ErrNotWAV, "not a WAV file: missing RIFF header")
	}
	if n < len(hdr) {
		return Format{}, errorf(ErrNotWAV, "not a WAV file: input ends inside the RIFF header")
	}
	if string(hdr[8:12]) != "WAVE" {
		return Format{}, errorf(ErrNotWAV, "not a WAV file: RIFF form type is %q, want \"WAVE\"", hdr[8:12])
	}
	riffSize := binary.LittleEndian.Uint32(hdr[4:8])
	if riffSize == 0 || riffSize == math.MaxUint32 {
		return Format{}, errorf(ErrIncomplete, "RIFF size is 0x%08X: the file was never finalised (recorder stopped mid-write?)", riffSize)
	}
	riffEnd := int64(riffSize) + 8

	var (
		f      Format
		fmtOK  bool
		off    = int64(len(hdr))
		chunk  [8]byte
		fmtBuf [40]byte
	)
	for {
		if off+8 > riffEnd {
			if !fmtOK {
				return Format{}, errorf(ErrMalformed, "no fmt chunk before the end of the RIFF chunk")
			}
			return Format{}, errorf(ErrMalformed, "no data chunk before the end of the RIFF chunk")
		}
		if off+8 > MaxHeaderBytes {
			return Format{}, errorf(ErrUnsupported, "no data chunk within the first %d bytes", MaxHeaderBytes)
		}
		n, err := io.ReadFull(r, chunk[:])
		if err := readErr(err); err != nil {
			return Format{}, err
		}
		if n < len(chunk) {
			what := "data"
			if !fmtOK {
				what = "fmt"
			}
			return Format{}, errorf(ErrIncomplete, "input ends at byte %d, before the %s chunk", off+int64(n), what)
		}
		id := string(chunk[0:4])
		sz := int64(binary.LittleEndian.Uint32(chunk[4:8]))
		if !validChunkID(chunk[0:4]) {
			return Format{}, errorf(ErrMalformed, "malformed chunk id %q at byte %d", id, off)
		}
		off += 8

		if id == "data" {
			if !fmtOK {
				return Format{}, errorf(ErrMalformed, "data chunk before fmt chunk")
			}
			if sz == math.MaxUint32 {
				return Format{}, errorf(ErrIncomplete, "data size is 0xFFFFFFFF: the file was never finalised (recorder stopped mid-write?)")
			}
			if off+sz > riffEnd {
				return Format{}, errorf(ErrMalformed, "data chunk larger than the file: %d bytes at byte %d but the RIFF chunk ends at byte %d", sz, off, riffEnd)
			}
			if size >= 0 && off+sz > size {
				return Format{}, errorf(ErrIncomplete, "data chunk larger than the file: %d bytes at byte %d but the file is %d bytes (truncated?)", sz, off, size)
			}
			if sz == 0 && size > off {
				return Format{}, errorf(ErrIncomplete, "data size is 0 but %d bytes follow: the file was never finalised (recorder stopped mid-write?)", size-off)
			}
			if ba := int64(f.blockAlign()); sz%ba != 0 {
				return Format{}, errorf(ErrMalformed, "data size %d is not a whole number of %d-byte frames", sz, ba)
			}
			f.DataBytes, f.DataOffset = sz, off
			return f, nil
		}

		padded := sz + sz&1
		if off+sz > riffEnd {
			return Format{}, errorf(ErrMalformed, "chunk %q (%d bytes) runs past the end of the RIFF chunk at byte %d", id, sz, riffEnd)
		}
		if off+padded+8 > MaxHeaderBytes {
			return Format{}, errorf(ErrUnsupported, "no data chunk within the first %d bytes", MaxHeaderBytes)
		}
		if size >= 0 && off+sz > size {
			return Format{}, errorf(ErrIncomplete, "chunk %q larger than the file: %d bytes at byte %d but the file is %d bytes", id, sz, off, size)
		}
		skip := padded
		if id == "fmt " {
			if fmtOK {
				return Format{}, errorf(ErrMalformed, "duplicate fmt chunk")
			}
			if sz < 16 {
				return Format{}, errorf(ErrMalformed, "fmt chunk is %d bytes, want at least 16", sz)
			}
			body := fmtBuf[:min(sz, int64(len(fmtBuf)))]
			if _, err := io.ReadFull(r, body); err != nil {
				if err := readErr(err); err != nil {
					return Format{}, err
				}
				return Format{}, errorf(ErrIncomplete, "input ends inside the fmt chunk")
			}
			if f, err = parseFmt(body, sz); err != nil {
				return Format{}, err
			}
			fmtOK = true
			skip -= int64(len(body))
		}
		if skip > 0 {
			copied, err := io.CopyN(io.Discard, r, skip)
			if err := readErr(err); err != nil {
				return Format{}, err
			}
			if copied < skip {
				// A missing pad byte after the last chunk is common and
				// harmless, but there is no data chunk after it either.
				return Format{}, errorf(ErrIncomplete, "input ends inside chunk %q, before the data chunk", id)
			}
		}
		off += padded
	}
}

// readErr passes through a reader's own failure; running out of input is
// reported by the caller, which knows what it was reading.
func readErr(err error) error {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil
	}
	return fmt.Errorf("reading WAV header: %w", err)
}

// validChunkID reports whether id is four printable ASCII characters, as
// RIFF chunk ids are; anything else means the walk lost its alignment.
func validChunkID(id []byte) bool {
	for _, c := range id {
		if c < 0x20 || c > 0x7E {
			return false
		}
	}
	return true
}

// pcmSubformat is KSDATAFORMAT_SUBTYPE_PCM after its first two bytes
// (the format tag, 0x0001).
var pcmSubformat = [14]byte{0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71}

// parseFmt checks a "fmt " chunk body (its first up to 40 bytes; sz is the
// declared size) and returns the Format it describes.
func parseFmt(b []byte, sz int64) (Format, error) {
	le := binary.LittleEndian
	tag := le.Uint16(b[0:2])
	channels := int(le.Uint16(b[2:4]))
	rate := le.Uint32(b[4:8])
	byteRate := le.Uint32(b[8:12])
	blockAlign := int(le.Uint16(b[12:14]))
	bits := int(le.Uint16(b[14:16]))
	switch tag {
	case FormatPCM:
	case FormatExtensible:
		if sz < 40 {
			return Format{}, errorf(ErrMalformed, "WAVE_FORMAT_EXTENSIBLE fmt chunk is %d bytes, want 40", sz)
		}
		if cb := le.Uint16(b[16:18]); cb < 22 {
			return Format{}, errorf(ErrMalformed, "WAVE_FORMAT_EXTENSIBLE extension is %d bytes, want 22", cb)
		}
		if sub := le.Uint16(b[24:26]); sub != FormatPCM || [14]byte(b[26:40]) != pcmSubformat {
			return Format{}, errorf(ErrUnsupported, "unsupported WAVE_FORMAT_EXTENSIBLE subformat %d%s: only PCM", sub, formatName(sub))
		}
		if valid := int(le.Uint16(b[18:20])); valid != 0 && valid != bits {
			return Format{}, errorf(ErrUnsupported, "unsupported %d valid bits in %d-bit samples: only 16-bit PCM", valid, bits)
		}
	default:
		return Format{}, errorf(ErrUnsupported, "unsupported audio format %d%s: only PCM", tag, formatName(tag))
	}
	f := Format{AudioFormat: FormatPCM, Channels: channels, SampleRate: int(rate), BitsPerSample: bits}
	switch {
	case channels < 1 || channels > 2:
		return Format{}, errorf(ErrUnsupported, "unsupported channel count %d: want 1 or 2", channels)
	case rate > math.MaxInt32 || !supportedRate(int(rate)):
		return Format{}, errorf(ErrUnsupported, "unsupported sample rate %d Hz", rate)
	case bits != 16:
		return Format{}, errorf(ErrUnsupported, "unsupported bits per sample %d: only 16-bit PCM", bits)
	case blockAlign != f.blockAlign():
		return Format{}, errorf(ErrMalformed, "block align %d does not match %d channels of 16 bits (want %d)", blockAlign, channels, f.blockAlign())
	case int64(byteRate) != int64(rate)*int64(blockAlign):
		return Format{}, errorf(ErrMalformed, "byte rate %d does not match %d Hz × %d-byte frames (want %d)", byteRate, rate, blockAlign, int64(rate)*int64(blockAlign))
	}
	return f, nil
}

// WriteWAVHeader writes the canonical 44-byte header of a 16-bit PCM WAV
// file whose data chunk holds dataBytes bytes; the samples must follow.
// f.DataBytes and f.DataOffset are ignored; AudioFormat and BitsPerSample
// may be 0 (PCM, 16). Returns an error wrapping ErrUnsupported for a format
// ParseWAV would refuse, an error if dataBytes is negative, not whole
// frames or too large for a RIFF file (4 GiB), or w's error.
func WriteWAVHeader(w io.Writer, f Format, dataBytes int64) error {
	if err := f.checkWritable(); err != nil {
		return err
	}
	ba := int64(f.blockAlign())
	switch {
	case dataBytes < 0 || dataBytes%ba != 0:
		return fmt.Errorf("writing WAV header: %d data bytes is not a whole number of %d-byte frames", dataBytes, ba)
	case dataBytes > maxDataBytes:
		return fmt.Errorf("writing WAV header: %d data bytes is more than a WAV file holds (%d)", dataBytes, int64(maxDataBytes))
	}
	var b [headerSize]byte
	le := binary.LittleEndian
	copy(b[0:4], "RIFF")
	le.PutUint32(b[4:8], uint32(headerSize-8+dataBytes))
	copy(b[8:16], "WAVEfmt ")
	le.PutUint32(b[16:20], 16)
	le.PutUint16(b[20:22], FormatPCM)
	le.PutUint16(b[22:24], uint16(f.Channels))
	le.PutUint32(b[24:28], uint32(f.SampleRate))
	le.PutUint32(b[28:32], uint32(int64(f.SampleRate)*ba))
	le.PutUint16(b[32:34], uint16(ba))
	le.PutUint16(b[34:36], 16)
	copy(b[36:40], "data")
	le.PutUint32(b[40:44], uint32(dataBytes))
	if _, err := w.Write(b[:]); err != nil {
		return fmt.Errorf("writing WAV header: %w", err)
	}
	return nil
}

// ToneAmplitude is the peak of WriteToneWAV's sines, as a fraction of full
// scale.
const ToneAmplitude = 0.3

// WriteToneWAV writes a complete 16-bit PCM WAV file (canonical header and
// samples) lasting d, rounded down to whole samples, in format f (see
// WriteWAVHeader). Channel i plays a sine at freqs[i%len(freqs)] Hz
// starting at phase 0 with amplitude ToneAmplitude; a frequency of 0, or
// no freqs, is silence. The output depends only on the arguments.
// Returns an error for a negative d, a frequency that is not finite or
// above the Nyquist limit (SampleRate/2), anything WriteWAVHeader refuses,
// or w's error.
func WriteToneWAV(w io.Writer, f Format, d time.Duration, freqs []float64) error {
	if err := f.checkWritable(); err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("writing WAV tone: negative duration %s", d)
	}
	for _, hz := range freqs {
		if math.IsNaN(hz) || hz < 0 || hz > float64(f.SampleRate)/2 {
			return fmt.Errorf("writing WAV tone: frequency %g Hz outside 0..%d Hz", hz, f.SampleRate/2)
		}
	}
	rate := int64(f.SampleRate)
	frames := int64(d/time.Second)*rate + int64(d%time.Second)*rate/int64(time.Second)
	ba := int64(f.blockAlign())
	if frames > maxDataBytes/ba {
		return fmt.Errorf("writing WAV tone: %s is longer than a WAV file holds", d)
	}
	if err := WriteWAVHeader(w, f, frames*ba); err != nil {
		return err
	}
	step := make([]float64, f.Channels) // radians per sample, per channel
	for i := range step {
		if len(freqs) > 0 {
			step[i] = 2 * math.Pi * freqs[i%len(freqs)] / float64(rate)
		}
	}
	const peak = ToneAmplitude * math.MaxInt16
	var buf [8192]byte
	n := 0
	for i := int64(0); i < frames; i++ {
		for _, s := range step {
			var v int16
			if s != 0 {
				v = int16(math.Round(peak * math.Sin(s*float64(i))))
			}
			binary.LittleEndian.PutUint16(buf[n:], uint16(v))
			n += 2
		}
		if n+4 > len(buf) {
			if _, err := w.Write(buf[:n]); err != nil {
				return fmt.Errorf("writing WAV samples: %w", err)
			}
			n = 0
		}
	}
	if n > 0 {
		if _, err := w.Write(buf[:n]); err != nil {
			return fmt.Errorf("writing WAV samples: %w", err)
		}
	}
	return nil
}
