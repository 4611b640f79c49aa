package api

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/callgate/callgate/controller"
)

// TestCampaignViewsMaskNumbers checks the campaign views directly: every
// campaign route is admin only today, so no request can see them masked.
func TestCampaignViewsMaskNumbers(t *testing.T) {
	t.Parallel()
	masked, full := numberView{}, numberView{full: true}
	lead := controller.CampaignLead{
		Lead: controller.Lead{Phone: "+15557770300", Name: "call +15557770301 after six",
			Tags:   map[string]string{"alt": "+15557770302", "region": "north"},
			Fields: map[string]string{"mobile": "15557770303", "ref": "A-42"}},
		Disposition: "callback 15557770304",
	}
	c := controller.Campaign{CallerIDs: []string{"+15557770305", "+15557770306"}, CallerIDName: "+15557770307"}
	st := controller.CampaignStatus{Campaign: c, Detail: "switch for +15557770308 is not connected"}
	im := controller.LeadImport{Rejects: []controller.LeadReject{{Line: 2, Reason: "15557770309 is not a number"}},
		Error: "row +15557770310"}

	got := masked.campaignLead(lead)
	require.Equal(t, "****0300", got.Phone)
	require.Equal(t, "call ****0301 after six", got.Name)
	require.Equal(t, map[string]string{"alt": "****0302", "region": "north"}, got.Tags)
	require.Equal(t, map[string]string{"mobile": "****0303", "ref": "A-42"}, got.Fields)
	require.Equal(t, []string{"****0305", "****0306"}, masked.campaign(c).CallerIDs)

	raw, err := json.Marshal([]any{masked.campaignLeads([]controller.CampaignLead{lead}), masked.campaigns([]controller.Campaign{c}),
		masked.campaignStatus(st), masked.leadImport(im)})
	require.NoError(t, err)
	require.NotContains(t, string(raw), "5557770")

	// Admin sees everything whole; masking works on copies.
	require.Equal(t, lead, full.campaignLead(lead))
	require.Equal(t, im, full.leadImport(im))
	require.Equal(t, "+15557770302", lead.Tags["alt"])
	require.Equal(t, "+15557770305", c.CallerIDs[0])
	require.Equal(t, "15557770309 is not a number", im.Rejects[0].Reason)
}
