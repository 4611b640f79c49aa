package ivr

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/callgate/callgate/controller"
)

// check verifies and completes a decoded flow: limits, one prompt per
// playing node, digits, regexes, timeouts and defaults.
func (f *Flow) check() error {
	if err := checkText("name", f.Name); err != nil {
		return err
	}
	if f.Start == "" {
		return controller.FieldError("start", "is required")
	}
	if len(f.Nodes) == 0 {
		return controller.FieldError("nodes", "a flow needs at least one node")
	}
	if len(f.Nodes) > MaxNodes {
		return controller.FieldError("nodes", "a flow has at most %d nodes", MaxNodes)
	}
	if f.OpeningMSMax < 0 || f.OpeningMSMax > 10*MaxTimeoutMS {
		return controller.FieldError("opening_ms_max", "must be 0 to %d", 10*MaxTimeoutMS)
	}
	for _, id := range sortedIDs(f) {
		if !nodeIDRE.MatchString(id) {
			return controller.FieldError("nodes", "node ID %s must be 1 to 64 letters, digits, '_' or '-'", quoteShort(id))
		}
		n := f.Nodes[id]
		if n == nil {
			return controller.FieldError("nodes."+id, "must be an object")
		}
		if err := n.check("nodes." + id); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) check(path string) error {
	for field, ref := range n.refs() {
		if ref != "" && !nodeIDRE.MatchString(ref) {
			return controller.FieldError(path+"."+field, "must be a node ID")
		}
	}
	switch n.Type {
	case TypePlay, TypeGather, TypeConsent, TypeAgent:
		if err := n.checkPrompt(path); err != nil {
			if n.Type == TypeAgent {
				return controller.FieldError(path+".prompt",
					"the identification message a call hears when no agent is free is required (prompt, prompt_url or tone)")
			}
			return err
		}
	}
	switch n.Type {
	case TypeGather:
		return n.checkGather(path)
	case TypeConsent:
		return n.checkConsent(path)
	case TypeRecord:
		switch n.Action {
		case RecordStart, RecordStop, RecordPause, RecordResume:
		default:
			return controller.FieldError(path+".action", "must be start, stop, pause or resume")
		}
	case TypeAgent:
		if n.TimeoutMS == 0 {
			n.TimeoutMS = DefaultAgentWaitMS
		}
		if err := checkMS(path+".timeout_ms", n.TimeoutMS); err != nil {
			return err
		}
	case TypeTransfer:
		if n.To == "" {
			return controller.FieldError(path+".to", "is required")
		}
		if err := checkSwitchText(path+".to", n.To); err != nil {
			return err
		}
	case TypeWebhook:
		u, err := url.Parse(n.URL)
		if n.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(n.URL) > maxTextLen {
			return controller.FieldError(path+".url", "must be an http or https URL")
		}
		if n.TimeoutMS == 0 {
			n.TimeoutMS = defaultWebhookMS
		}
		if err := checkMS(path+".timeout_ms", n.TimeoutMS); err != nil {
			return err
		}
	case TypeSet:
		if len(n.Tags) == 0 && n.Disposition == "" {
			return controller.FieldError(path, "a set node needs tags or a disposition")
		}
		if len(n.Tags) > MaxTags {
			return controller.FieldError(path+".tags", "at most %d tags", MaxTags)
		}
		for _, k := range slices.Sorted(maps.Keys(n.Tags)) {
			if !tagRE.MatchString(k) {
				return controller.FieldError(path+".tags", "tag name %s must be 1 to 64 letters, digits, '_', '.' or '-'", quoteShort(k))
			}
			if err := checkText(path+".tags."+k, n.Tags[k]); err != nil {
				return err
			}
		}
		if n.Disposition != "" && !tagRE.MatchString(n.Disposition) {
			return controller.FieldError(path+".disposition", "must be 1 to 64 letters, digits, '_', '.' or '-'")
		}
	case TypeHangup:
		if n.Cause == "" {
			n.Cause = DefaultHangupCause
		}
		if !causeRE.MatchString(n.Cause) || !controller.ValidHangupCause(n.Cause) {
			return controller.FieldError(path+".cause", "must be a Q.850 cause name such as NORMAL_CLEARING")
		}
	}
	return nil
}

func (n *Node) checkPrompt(path string) error {
	set := 0
	for _, s := range []string{n.Prompt, n.PromptURL, n.Tone} {
		if s != "" {
			set++
		}
	}
	if set != 1 {
		if n.Type == TypeConsent {
			return controller.FieldError(path+".prompt", "is required")
		}
		return controller.FieldError(path+".prompt", "exactly one of prompt, prompt_url and tone is required")
	}
	switch {
	case n.Prompt != "" && !promptNameRE.MatchString(n.Prompt):
		return controller.FieldError(path+".prompt", "must be a prompt name")
	case n.PromptURL != "":
		u, err := url.Parse(n.PromptURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(n.PromptURL) > maxTextLen {
			return controller.FieldError(path+".prompt_url", "must be an http or https URL")
		}
		if err := checkSwitchText(path+".prompt_url", n.PromptURL); err != nil {
			return err
		}
	case n.Tone != "":
		if !strings.HasPrefix(n.Tone, "tone_stream://") && !strings.HasPrefix(n.Tone, "silence_stream://") {
			return controller.FieldError(path+".tone", "must start with tone_stream:// or silence_stream://")
		}
		if err := checkSwitchText(path+".tone", n.Tone); err != nil {
			return err
		}
	}
	if n.InvalidPrompt != "" && !promptNameRE.MatchString(n.InvalidPrompt) {
		return controller.FieldError(path+".invalid_prompt", "must be a prompt name")
	}
	return nil
}

func (n *Node) checkTries(path string) error {
	if n.Tries == 0 {
		n.Tries = defaultTries
	}
	if n.Tries < 1 || n.Tries > MaxTries {
		return controller.FieldError(path+".tries", "must be 1 to %d", MaxTries)
	}
	if n.TimeoutMS != 0 {
		return checkMS(path+".timeout_ms", n.TimeoutMS)
	}
	return nil
}

func (n *Node) checkGather(path string) error {
	if err := n.checkTries(path); err != nil {
		return err
	}
	if n.DigitTimeoutMS != 0 {
		if err := checkMS(path+".digit_timeout_ms", n.DigitTimeoutMS); err != nil {
			return err
		}
	}
	if n.Terminators != "" && (!digitsRE.MatchString(n.Terminators) || len(n.Terminators) > 8) {
		return controller.FieldError(path+".terminators", "must be 1 to 8 of 0-9, * and #")
	}
	if n.MinDigits == 0 {
		n.MinDigits = 1
	}
	if n.MinDigits < 1 || n.MinDigits > MaxDigits {
		return controller.FieldError(path+".min_digits", "must be 1 to %d", MaxDigits)
	}
	longest := 0
	for i := range n.Branches {
		b := &n.Branches[i]
		bp := fmt.Sprintf("%s.branches[%d]", path, i)
		switch {
		case (b.Digits == "") == (b.Regex == ""):
			return controller.FieldError(bp, "exactly one of digits and regex is required")
		case b.Digits != "":
			if !digitsRE.MatchString(b.Digits) || len(b.Digits) > MaxDigits {
				return controller.FieldError(bp+".digits", "must be 1 to %d of 0-9, * and #", MaxDigits)
			}
			longest = max(longest, len(b.Digits))
		default:
			if len(b.Regex) > maxRegexLen {
				return controller.FieldError(bp+".regex", "must be at most %d bytes", maxRegexLen)
			}
			re, err := regexp.Compile(anchor(b.Regex))
			if err != nil {
				return controller.FieldError(bp+".regex", "does not compile: %v", err)
			}
			b.re = re
		}
		if b.Next == "" {
			return controller.FieldError(bp+".next", "is required")
		}
	}
	if n.MaxDigits == 0 {
		n.MaxDigits = max(n.MinDigits, longest)
	}
	if n.MaxDigits < n.MinDigits || n.MaxDigits > MaxDigits {
		return controller.FieldError(path+".max_digits", "must be min_digits to %d", MaxDigits)
	}
	if longest > n.MaxDigits {
		return controller.FieldError(path+".branches", "digits longer than max_digits (%d) can never be entered", n.MaxDigits)
	}
	return nil
}

func (n *Node) checkConsent(path string) error {
	if err := n.checkTries(path); err != nil {
		return err
	}
	if n.Yes == "" {
		n.Yes = "1"
	}
	if n.No == "" {
		n.No = "2"
	}
	if len(n.Yes) != 1 || !digitsRE.MatchString(n.Yes) {
		return controller.FieldError(path+".yes", "must be one of 0-9, * and #")
	}
	if len(n.No) != 1 || !digitsRE.MatchString(n.No) {
		return controller.FieldError(path+".no", "must be one of 0-9, * and #")
	}
	if n.Yes == n.No {
		return controller.FieldError(path+".no", "must differ from yes")
	}
	switch n.Purpose {
	case controller.PurposeMarketing, controller.PurposeService, controller.PurposeTransactional:
	default:
		return controller.FieldError(path+".purpose", "must be marketing, service or transactional")
	}
	return nil
}

func checkMS(field string, ms int64) error {
	if ms < 1 || ms > MaxTimeoutMS {
		return controller.FieldError(field, "must be 1 to %d ms", MaxTimeoutMS)
	}
	return nil
}

// checkText accepts short valid UTF-8 without control characters.
func checkText(field, s string) error {
	if len(s) > maxTextLen || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return controller.FieldError(field, "must be at most %d bytes of text without control characters", maxTextLen)
	}
	return nil
}

// checkSwitchText accepts what a switch command can carry (controller.CheckText).
func checkSwitchText(field, s string) error {
	if len(s) > maxTextLen {
		return controller.FieldError(field, "must be at most %d bytes", maxTextLen)
	}
	return controller.CheckText(field, s)
}
