package recording

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestReadWAVInfo(t *testing.T) {
	t.Parallel()
	wav := func(dataSize uint32, data int, extra ...byte) []byte {
		var b bytes.Buffer
		le := binary.LittleEndian
		b.WriteString("RIFF")
		binary.Write(&b, le, uint32(0))
		b.WriteString("WAVE")
		if len(extra) > 0 { // an odd-sized LIST chunk before fmt, padded
			b.WriteString("LIST")
			binary.Write(&b, le, uint32(len(extra)))
			b.Write(extra)
			if len(extra)%2 == 1 {
				b.WriteByte(0)
			}
		}
		b.WriteString("fmt ")
		binary.Write(&b, le, uint32(16))
		for _, v := range []any{uint16(1), uint16(1), uint32(8000), uint32(16000), uint16(2), uint16(16)} {
			binary.Write(&b, le, v)
		}
		b.WriteString("data")
		binary.Write(&b, le, dataSize)
		b.Write(make([]byte, data))
		return b.Bytes()
	}
	for name, tc := range map[string]struct {
		file []byte
		ms   int64
		bad  bool
	}{
		"complete":         {file: wav(16000, 16000), ms: 1000},
		"unset size":       {file: wav(0, 8000), ms: 500},
		"streaming size":   {file: wav(0xFFFFFFFF, 24000), ms: 1500},
		"size beyond file": {file: wav(1<<30, 1600), ms: 100},
		"odd LIST chunk":   {file: wav(16000, 16000, 'a', 'b', 'c'), ms: 1000},
		"not RIFF":         {file: []byte("hello world, not audio"), bad: true},
		"no data":          {file: wav(16000, 16000)[:36], bad: true},
		"empty":            {file: nil, bad: true},
	} {
		info, err := readWAVInfo(bytes.NewReader(tc.file), int64(len(tc.file)))
		if tc.bad {
			if err == nil {
				t.Errorf("%s: want an error", name)
			}
			continue
		}
		if err != nil || info.Channels != 1 || info.DurationMS != tc.ms {
			t.Errorf("%s: got %+v, %v; want 1 channel, %d ms", name, info, err, tc.ms)
		}
	}
}
