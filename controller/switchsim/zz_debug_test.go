package switchsim

import (
	"fmt"
	"os"
	"testing"
)

func TestDebugReplay(t *testing.T) {
	name := os.Getenv("FIX")
	if name == "" { t.Skip() }
	recs := loadTranscript(t, name)
	frames := replay(t, recs)
	for _, f := range frames {
		if f.isEvent() {
			fmt.Println("EV", f.field("Event-Sequence"), f.eventName(), f.field("Channel-Name"), f.field("Application"), f.field("Hangup-Cause"), f.eventBody())
		} else {
			fmt.Printf("FR %q %q\n", f.get("Reply-Text")+f.get("Content-Type"), f.body)
		}
	}
}
