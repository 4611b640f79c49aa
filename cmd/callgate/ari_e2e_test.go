package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/audio"
	"github.com/callgate/callgate/controller/ivr"
)

// TestE2EAsteriskSameRecords: the same requests to a FreeSWITCH and to an
// Asterisk (switch named in POST /v1/calls) end in the same call records.
func TestE2EAsteriskSameRecords(t *testing.T) {
	t.Parallel()
	e := setupE2E(t, simOptions{timeScale: 1, ari: true})
	type outcome struct {
		State    controller.CallState
		Cause    string
		Answered bool
	}
	for _, suffix := range []string{"1003", "1006", "1007", "1008"} {
		t.Run(suffix, func(t *testing.T) {
			t.Parallel()
			got := map[string]outcome{}
			for _, sw := range []string{"fs1", "ast1"} {
				var c controller.Call
				require.Equal(t, http.StatusAccepted, e.do(t, "POST", "/v1/calls", nil, map[string]any{
					"to": "+1212555" + suffix, "from": "+12125550100", "purpose": "service", "switch": sw}, &c))
				final := e.w.WaitTerminal(t, c.ID)
				require.Equal(t, sw, final.Switch)
				got[sw] = outcome{final.State, final.HangupCause, final.AnsweredAt != nil}
			}
			require.Equal(t, got["fs1"], got["ast1"])
		})
	}
}

// TestE2EAsteriskConsentRecording: the consent flow on an Asterisk writes
// the same ledger row and the same kind of encrypted stereo recording as on
// FreeSWITCH.
func TestE2EAsteriskConsentRecording(t *testing.T) {
	t.Parallel()
	x := setupIVRWith(t, simOptions{timeScale: 1, ari: true})
	x.uploadPrompt(t, "consent-q", consentText)
	x.putFlow(t, "consent", consentFlow)
	const to = "+12125551001" // answers and presses 1
	var c controller.Call
	require.Equal(t, http.StatusAccepted, x.do(t, "POST", "/v1/calls", nil, map[string]any{"to": to,
		"from": "+12125550100", "purpose": "marketing", "flow_id": "consent", "switch": "ast1"}, &c))
	run, res := x.waitRun(t, c.ID)
	require.Equal(t, ivr.OutcomeCompleted, run.Outcome, "%+v", res)
	require.NotEmpty(t, res.ConsentID)
	require.Len(t, res.RecordingIDs, 1)
	require.NoError(t, <-x.sealed(c.ID))
	require.Equal(t, controller.CallCompleted, x.w.WaitTerminal(t, c.ID).State)

	var consents struct{ Consents []controller.Consent }
	require.Equal(t, http.StatusOK, x.do(t, "GET", "/v1/consents?number="+url.QueryEscape(to), nil, nil, &consents))
	require.Len(t, consents.Consents, 1)
	require.Equal(t, "1", consents.Consents[0].Digit)
	require.Equal(t, "consent-q.v1", consents.Consents[0].PromptID)

	var rec controller.Recording
	require.Equal(t, http.StatusOK, x.do(t, "GET", "/v1/recordings/"+res.RecordingIDs[0], nil, nil, &rec))
	require.Equal(t, controller.RecordingStored, rec.Status)
	require.Equal(t, 2, rec.Channels)
	resp, err := x.client.Get(x.base + "/v1/recordings/" + rec.ID + "/audio")
	require.NoError(t, err)
	defer resp.Body.Close()
	plain, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	sum := sha256.Sum256(plain)
	require.Equal(t, rec.SHA256, hex.EncodeToString(sum[:]))
	f, err := audio.ParseWAV(bytes.NewReader(plain))
	require.NoError(t, err)
	require.Equal(t, 2, f.Channels)
	requireNoWAV(t, x.dirs.spool)
}
