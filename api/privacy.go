package api

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/callgate/callgate/controller"
)

// Phone numbers in responses.
//
// Every handler shapes what it answers through a numberView before it is
// encoded: one function per resource type, each naming the fields that hold
// a number (masked to ****1234) or free text that may quote one (every
// phone-number-like run masked). A role that sees full numbers
// (controller.Role.SeesFullNumbers: admin, where the policy allows, which
// is always today) gets everything whole; agent, QA and auditor get the
// masked view. Requests carry full numbers (an agent places a call to a
// whole number); only what comes back is masked.
//
// Not masked: flow documents and prompts (configuration, not personal data)
// and audit entries (masked when written).

// numberView shows numbers as the request's principal may see them. The
// functions return masked copies; the values passed in are never changed.
type numberView struct{ full bool }

// viewOf returns the view of the request's principal: masked for every
// role but those that see full numbers, and for a request without one.
func viewOf(c echo.Context) numberView {
	p, ok := principalOf(c)
	return numberView{full: ok && p.Role.SeesFullNumbers()}
}

// number masks a phone number field; empty stays empty.
func (v numberView) number(n string) string {
	if v.full || n == "" {
		return n
	}
	return maskPhone(n)
}

// numbers masks a list of numbers.
func (v numberView) numbers(ns []string) []string {
	if v.full || ns == nil {
		return ns
	}
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = v.number(n)
	}
	return out
}

// text masks every phone-number-like run in free text.
func (v numberView) text(s string) string {
	if v.full {
		return s
	}
	return redact(s)
}

// call masks a call's numbers: to, from, its decision, and a caller ID
// name or variable whose value is a number. Its events are masked too.
func (v numberView) call(r CallResource) CallResource {
	if v.full {
		return r
	}
	r.To, r.From = v.number(r.To), v.number(r.From)
	r.CallerIDName = maskIfNumber(r.CallerIDName)
	r.Decision = v.decision(r.Decision)
	if r.Variables != nil {
		vars := maps.Clone(r.Variables)
		for k, val := range vars {
			vars[k] = maskIfNumber(val)
		}
		r.Variables = vars
	}
	if r.Tags != nil {
		tags := maps.Clone(r.Tags)
		for k, val := range tags {
			tags[k] = redact(val)
		}
		r.Tags = tags
	}
	if r.Events != nil {
		r.Events = v.events(r.Events)
	}
	return r
}

// decision masks the number a decision was about and its verdicts' details
// (which rules promise never to hold a full number: belt and braces).
func (v numberView) decision(d *controller.Decision) *controller.Decision {
	if v.full || d == nil {
		return d
	}
	out := *d
	out.Number = v.number(d.Number)
	out.Verdicts = slices.Clone(d.Verdicts)
	for i := range out.Verdicts {
		out.Verdicts[i].Detail = v.text(out.Verdicts[i].Detail)
	}
	return &out
}

// events masks the switch's free text on each event (a raw -ERR line or a
// dial string can quote the number).
func (v numberView) events(evs []controller.CallEventRecord) []controller.CallEventRecord {
	if v.full {
		return evs
	}
	out := slices.Clone(evs)
	for i := range out {
		out[i].Event.Detail = v.text(out[i].Event.Detail)
	}
	return out
}

// attempt masks an attempt's number and both decisions.
func (v numberView) attempt(a controller.Attempt) controller.Attempt {
	if v.full {
		return a
	}
	a.ToNumber = v.number(a.ToNumber)
	a.Decision, a.DialDecision = v.decision(a.Decision), v.decision(a.DialDecision)
	return a
}

func (v numberView) consent(c controller.Consent) controller.Consent {
	c.Number = v.number(c.Number)
	return c
}

func (v numberView) consents(cs []controller.Consent) []controller.Consent {
	return mapAll(cs, v.consent)
}

func (v numberView) refusal(r controller.Refusal) controller.Refusal {
	r.Number = v.number(r.Number)
	return r
}

func (v numberView) refusals(rs []controller.Refusal) []controller.Refusal {
	return mapAll(rs, v.refusal)
}

// importResult masks the rejected rows' errors, which may quote the row.
func (v numberView) importResult(r controller.DNCImportResult) controller.DNCImportResult {
	if v.full {
		return r
	}
	r.RejectedRows = slices.Clone(r.RejectedRows)
	for i := range r.RejectedRows {
		r.RejectedRows[i].Error = v.text(r.RejectedRows[i].Error)
	}
	return r
}

// recording masks the free text of a failed recording.
func (v numberView) recording(r controller.Recording) controller.Recording {
	r.Error = v.text(r.Error)
	return r
}

func (v numberView) recordings(rs []controller.Recording) []controller.Recording {
	return mapAll(rs, v.recording)
}

// flowRunText are the members of a flow run's path (controller/ivr's Result
// and its steps) that may quote a number: digits a caller keyed, an
// integrator's webhook reply, errors, and tag values.
var flowRunText = []string{"digits", "webhook", "error"}

// flowRun masks what the path of a run may quote: keyed digits, webhook
// replies, errors and tag values. A path that is not the expected JSON is
// replaced by null rather than shown unmasked.
func (v numberView) flowRun(r controller.FlowRun) controller.FlowRun {
	if v.full || len(r.Path) == 0 {
		return r
	}
	dec := json.NewDecoder(bytes.NewReader(r.Path))
	dec.UseNumber() // keep numbers as written
	var doc any
	if err := dec.Decode(&doc); err != nil {
		r.Path = json.RawMessage("null")
		return r
	}
	out, err := json.Marshal(v.maskRunNode(doc))
	if err != nil {
		r.Path = json.RawMessage("null")
		return r
	}
	r.Path = out
	return r
}

// maskRunNode walks a decoded run path, masking the flowRunText members and
// the values under "tags" wherever they appear.
func (v numberView) maskRunNode(n any) any {
	switch n := n.(type) {
	case map[string]any:
		for k, child := range n {
			switch s, isString := child.(string); {
			case isString && slices.Contains(flowRunText, k):
				n[k] = v.text(s)
			case k == "tags":
				if tags, ok := child.(map[string]any); ok {
					for tk, tv := range tags {
						if ts, ok := tv.(string); ok {
							tags[tk] = v.text(ts)
						}
					}
				}
			default:
				n[k] = v.maskRunNode(child)
			}
		}
	case []any:
		for i, child := range n {
			n[i] = v.maskRunNode(child)
		}
	}
	return n
}

// campaign masks the caller IDs a campaign presents (and a caller ID name
// that is a number).
func (v numberView) campaign(c controller.Campaign) controller.Campaign {
	if v.full {
		return c
	}
	c.CallerIDs = v.numbers(c.CallerIDs)
	c.CallerIDName = maskIfNumber(c.CallerIDName)
	return c
}

func (v numberView) campaigns(cs []controller.Campaign) []controller.Campaign {
	return mapAll(cs, v.campaign)
}

// campaignStatus masks the campaign and the free text of why it is idle.
func (v numberView) campaignStatus(st controller.CampaignStatus) controller.CampaignStatus {
	st.Campaign = v.campaign(st.Campaign)
	st.Detail = v.text(st.Detail)
	return st
}

// campaignLead masks a lead's number, and its name, tags, custom fields and
// disposition where they quote one (a CSV can carry a second number in any
// column).
func (v numberView) campaignLead(l controller.CampaignLead) controller.CampaignLead {
	if v.full {
		return l
	}
	l.Phone = v.number(l.Phone)
	l.Name, l.Disposition = v.text(l.Name), v.text(l.Disposition)
	l.Tags, l.Fields = v.textValues(l.Tags), v.textValues(l.Fields)
	return l
}

func (v numberView) campaignLeads(ls []controller.CampaignLead) []controller.CampaignLead {
	return mapAll(ls, v.campaignLead)
}

// leadImport masks the rejected rows' reasons and the failure, which
// promise never to hold a full number: belt and braces.
func (v numberView) leadImport(im controller.LeadImport) controller.LeadImport {
	if v.full {
		return im
	}
	im.Rejects = slices.Clone(im.Rejects)
	for i := range im.Rejects {
		im.Rejects[i].Reason = v.text(im.Rejects[i].Reason)
	}
	im.Error = v.text(im.Error)
	return im
}

// agent masks a number in an agent's endpoint, a dial string that can hold
// one (sofia/gateway/carrier/+15551234567). Nothing else of an agent is
// personal data.
func (v numberView) agent(a controller.Agent) controller.Agent {
	a.Endpoint = v.text(a.Endpoint)
	return a
}

// textValues masks every phone-number-like run in a map's values, in a copy.
func (v numberView) textValues(m map[string]string) map[string]string {
	if v.full || m == nil {
		return m
	}
	out := maps.Clone(m)
	for k, val := range out {
		out[k] = v.text(val)
	}
	return out
}

// mapAll applies f to every element of a copy of xs; nil stays nil.
func mapAll[T any](xs []T, f func(T) T) []T {
	if xs == nil {
		return nil
	}
	out := make([]T, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}
