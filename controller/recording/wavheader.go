package recording

import (
	"encoding/binary"
	"errors"
	"io"
)

// wavInfo is what Finish needs from a WAV file's header.
type wavInfo struct {
	Channels   int
	DurationMS int64
}

// readWAVInfo reads the channel count and duration from the RIFF header of
// a WAV file of the given size. A data chunk whose size is unset (0 or
// 0xFFFFFFFF, as a switch that crashed mid-recording leaves it) or larger
// than the file is taken to run to the end of the file.
func readWAVInfo(r io.ReaderAt, size int64) (wavInfo, error) {
	var hdr [12]byte
	if _, err := r.ReadAt(hdr[:], 0); err != nil {
		return wavInfo{}, errors.New("not a WAV file: too short")
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return wavInfo{}, errors.New("not a WAV file: no RIFF/WAVE header")
	}
	var (
		channels int
		byteRate uint32
		haveFmt  bool
	)
	off := int64(12)
	for range 64 { // a WAV header has a handful of chunks
		var ch [8]byte
		if _, err := r.ReadAt(ch[:], off); err != nil {
			return wavInfo{}, errors.New("WAV file has no data chunk")
		}
		id := string(ch[0:4])
		n := int64(binary.LittleEndian.Uint32(ch[4:8]))
		body := off + 8
		switch id {
		case "fmt ":
			var f [16]byte
			if n < 16 {
				return wavInfo{}, errors.New("WAV fmt chunk is too short")
			}
			if _, err := r.ReadAt(f[:], body); err != nil {
				return wavInfo{}, errors.New("WAV fmt chunk is truncated")
			}
			channels = int(binary.LittleEndian.Uint16(f[2:4]))
			byteRate = binary.LittleEndian.Uint32(f[8:12])
			haveFmt = true
		case "data":
			if !haveFmt || channels == 0 || byteRate == 0 {
				return wavInfo{}, errors.New("WAV data chunk comes before a valid fmt chunk")
			}
			if n == 0 || n == 0xFFFFFFFF || body+n > size {
				n = max(size-body, 0)
			}
			return wavInfo{Channels: channels, DurationMS: n * 1000 / int64(byteRate)}, nil
		}
		off = body + n + n%2 // chunks are padded to an even size
	}
	return wavInfo{}, errors.New("WAV file has no data chunk")
}
