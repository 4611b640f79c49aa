package switchsim

import (
	"fmt"
	"testing"
)

func TestDebugStats(t *testing.T) {
	for _, name := range replayedTranscripts {
		recs := loadTranscript(t, name)
		var sends []string
		for _, r := range recs { if r.Dir == "send" { sends = append(sends, r.Data) } }
		want, _ := normalize(recvFrames(t, recs), sends)
		ev := want.byRole()
		n := 0
		for _, e := range ev { n += len(e) }
		fmt.Printf("%-35s replies=%d events=%d roles=%d", name, len(want.replies), n, len(ev))
		for _, r := range want.roles() { fmt.Printf(" %s:%d", r, len(want.projection(r))) }
		fmt.Println()
		if name == "03-answer-consent-press1-record" {
			for _, r := range want.roles() { fmt.Println(r, want.projection(r)) }
		}
	}
}
