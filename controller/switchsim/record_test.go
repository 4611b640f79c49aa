package switchsim

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller/audio"
)

// recordSetup starts a manual-clock simulator with cfg, originates a
// loopback call to number with the extra origination variables (e.g.
// "RECORD_STEREO=true") and waits until the a-leg is parked.
func recordSetup(t *testing.T, cfg Config, number, vars string) (*ManualClock, *client, string) {
	t.Helper()
	s, clock := manualSim(t, cfg)
	c := dial(t, s, "ClueCon")
	c.command(allChannelEvents)
	uuid := newUUID()
	if vars != "" {
		vars = "," + vars
	}
	f := c.command("bgapi originate {origination_uuid=" + uuid + ",origination_caller_id_number=4000" + vars + "}loopback/" + number + " &park()")
	job := f.get("Job-UUID")
	require.NotEmpty(t, job, f.raw)
	require.Equal(t, "+OK "+uuid+"\n", c.waitEvent(isJob(job)).eventBody())
	c.waitEvent(isEvent("CHANNEL_PARK", uuid))
	return clock, c, uuid
}

// recordFor records path on uuid for the given spans of simulated time,
// masking every second span, and returns the RECORD_STOP event.
func (c *client) recordFor(clock *ManualClock, uuid, path string, spans ...time.Duration) wireFrame {
	c.t.Helper()
	require.Equal(c.t, "+OK Success\n", c.api("uuid_record "+uuid+" start "+path))
	c.waitEvent(isEvent("RECORD_START", uuid))
	for i, d := range spans {
		if i > 0 {
			verb := map[bool]string{true: "mask", false: "unmask"}[i%2 == 1]
			require.Equal(c.t, "+OK Success\n", c.api("uuid_record "+uuid+" "+verb+" "+path))
		}
		clock.Advance(d)
	}
	require.Equal(c.t, "+OK Success\n", c.api("uuid_record "+uuid+" stop "+path))
	return c.waitEvent(isEvent("RECORD_STOP", uuid))
}

// requireRecording checks the WAV file at path against the RECORD_STOP
// event that reported it.
func requireRecording(t *testing.T, path string, stop wireFrame, channels int) audio.Format {
	t.Helper()
	f, err := audio.ParseWAVFile(path)
	require.NoError(t, err)
	require.Equal(t, channels, f.Channels)
	require.Equal(t, 8000, f.SampleRate)
	require.Equal(t, 16, f.BitsPerSample)
	ms, err := strconv.ParseInt(stop.field("variable_record_ms"), 10, 64)
	require.NoError(t, err)
	require.Equal(t, time.Duration(ms)*time.Millisecond, f.Duration(), "header duration == record_ms")
	require.Equal(t, stop.field("variable_record_samples"), strconv.FormatInt(f.DataBytes/int64(2*channels), 10))
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, stop.field("variable_record_file_size"), strconv.FormatInt(st.Size(), 10))
	require.Equal(t, os.FileMode(0o640), st.Mode().Perm())
	return f
}

func TestRecordingWritesWAV(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, vars, setvar string
		channels           int
	}{
		{"mono", "", "", 1},
		{"stereo origination variable", "RECORD_STEREO=true", "", 2},
		{"stereo uuid_setvar", "", "RECORD_STEREO true", 2},
		{"not quite true", "RECORD_STEREO=yes", "", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			clock, c, uuid := recordSetup(t, Config{RecordDir: dir}, "1005", tc.vars)
			if tc.setvar != "" {
				require.Equal(t, "+OK\n", c.api("uuid_setvar "+uuid+" "+tc.setvar))
			}
			path := filepath.Join(dir, uuid+".wav")
			// 1000 ms recorded, 500 ms masked, 521 ms recorded: as the
			// capture, 1521 ms.
			stop := c.recordFor(clock, uuid, path, 1000*time.Millisecond, 500*time.Millisecond, 521*time.Millisecond)
			require.Equal(t, "1521", stop.field("variable_record_ms"))
			require.Equal(t, "success-maxtime", stop.field("Record-Completion-Cause"))
			f := requireRecording(t, path, stop, tc.channels)
			require.Equal(t, 1521*time.Millisecond, f.Duration())

			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Len(t, entries, 1, "no temporary file left behind")
		})
	}
}

func TestRecordingCreatesDirectories(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "recordings") // does not exist yet
	clock, c, uuid := recordSetup(t, Config{RecordDir: dir}, "1001", "RECORD_STEREO=true")
	path := dir + "/2026/01/02/../02/" + uuid + ".wav" // cleaned inside dir
	stop := c.recordFor(clock, uuid, path, 250*time.Millisecond)
	requireRecording(t, filepath.Join(dir, "2026", "01", "02", uuid+".wav"), stop, 2)
	for _, d := range []string{dir, filepath.Join(dir, "2026"), filepath.Join(dir, "2026", "01")} {
		st, err := os.Stat(d)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o750), st.Mode().Perm(), d)
	}
}

func TestRecordingOnHangupWritesWAV(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock, c, uuid := recordSetup(t, Config{RecordDir: dir}, "1006", "")
	path := filepath.Join(dir, "session.wav")
	c.sendmsg(uuid, "record_session", path)
	c.waitEvent(isEvent("RECORD_START", uuid))
	clock.Advance(3 * time.Second) // 1006 hangs up
	stop := c.waitEvent(isEvent("RECORD_STOP", uuid))
	requireRecording(t, path, stop, 1)
}

func TestRecordingPathsNotWritten(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "rec")
	require.NoError(t, os.Mkdir(dir, 0o750))
	clock, c, uuid := recordSetup(t, Config{RecordDir: dir}, "1005", "")
	paths := []string{
		filepath.Join(parent, "beside.wav"), // outside
		dir + "/../escape.wav",              // ".." escape
		dir + "/a/../../escape2.wav",        // ".." escape after cleaning
		dir + "2/prefix.wav",                // shares the prefix only
		dir,                                 // the directory itself
		"relative-" + uuid + ".wav",         // not absolute
		"/tmp/cgcap-" + uuid + "/consent-" + uuid + ".wav", // as the fixtures record
	}
	for _, p := range paths {
		stop := c.recordFor(clock, uuid, p, 100*time.Millisecond)
		require.Equal(t, "100", stop.field("variable_record_ms"), p)
		if p != dir {
			require.NoFileExists(t, p)
		}
	}
	entries, err := os.ReadDir(parent)
	require.NoError(t, err)
	require.Len(t, entries, 1, "only rec/ in the parent")
	entries, err = os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries)

	// Without RecordDir nothing is written, even a path in a real directory.
	other := t.TempDir()
	clock, c, uuid = recordSetup(t, Config{}, "1005", "")
	c.recordFor(clock, uuid, filepath.Join(other, "x.wav"), 100*time.Millisecond)
	require.NoFileExists(t, filepath.Join(other, "x.wav"))
}

// syncBuffer is a log destination safe to read while the simulator writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestRecordingWriteFailureStillStops(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "blocker"), nil, 0o600))
	var logs syncBuffer
	cfg := Config{RecordDir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	clock, c, uuid := recordSetup(t, cfg, "1005", "")
	path := filepath.Join(dir, "blocker", "x.wav") // its parent is a file
	stop := c.recordFor(clock, uuid, path, 700*time.Millisecond)
	require.Equal(t, "success-maxtime", stop.field("Record-Completion-Cause"))
	require.Equal(t, "success-maxtime", stop.field("variable_record_completion_cause"))
	require.Equal(t, "700", stop.field("variable_record_ms"))
	require.NoFileExists(t, path)
	require.Contains(t, logs.String(), "switchsim: writing recording failed")
	require.Contains(t, logs.String(), uuid)

	// A symbolic link out of RecordDir is not followed.
	outside := t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "link")))
	c.recordFor(clock, uuid, filepath.Join(dir, "link", "y.wav"), 100*time.Millisecond)
	require.NoFileExists(t, filepath.Join(outside, "y.wav"))
}

func TestRecordFileName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		dir, path, rel string
	}{
		{"/rec", "/rec/a.wav", "a.wav"},
		{"/rec/", "/rec//b/./a.wav", "b/a.wav"},
		{"/rec", "/rec/b/../a.wav", "a.wav"},
		{"/rec", "/rec/..a.wav", "..a.wav"},
		{"/rec", "/rec/../rec/a.wav", "a.wav"},
		{"/rec", "/rec/../a.wav", ""},
		{"/rec", "/recx/a.wav", ""},
		{"/rec", "/rec", ""},
		{"/rec", "/rec/", ""},
		{"/rec", "rec/a.wav", ""},
		{"", "/rec/a.wav", ""},
	} {
		rel, ok := recordFileName(tc.dir, tc.path)
		require.Equal(t, tc.rel != "", ok, tc.path)
		require.Equal(t, tc.rel, rel, tc.path)
	}
}
