package ivr

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/egress"
)

// Problem severities.
const (
	SeverityError   = "error"   // the flow must not be saved
	SeverityWarning = "warning" // worth a look; the flow may be saved
)

// Problem is one finding of Validate, pointing at a node ("" for the flow
// itself) and the field at fault.
type Problem struct {
	Node     string `json:"node,omitempty"`
	Field    string `json:"field,omitempty"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Node != "" {
		fmt.Fprintf(&b, "node %q: ", p.Node)
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is what Validate found.
type Problems []Problem

// Errors returns the problems of severity error.
func (ps Problems) Errors() Problems {
	var out Problems
	for _, p := range ps {
		if p.Severity == SeverityError {
			out = append(out, p)
		}
	}
	return out
}

// Err returns an EINVALID error summarising the errors, nil if there are
// none (warnings never fail a flow).
func (ps Problems) Err() error {
	errs := ps.Errors()
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, 0, len(errs))
	for i, p := range errs {
		if i == 10 {
			msgs = append(msgs, fmt.Sprintf("and %d more", len(errs)-i))
			break
		}
		msgs = append(msgs, p.String())
	}
	noun := "errors"
	if len(errs) == 1 {
		noun = "error"
	}
	e := controller.Errorf(controller.EINVALID, "flow has %d %s: %s", len(errs), noun, strings.Join(msgs, "; "))
	if errs[0].Node != "" {
		e.Field = "nodes." + errs[0].Node
		if errs[0].Field != "" {
			e.Field += "." + errs[0].Field
		}
	} else {
		e.Field = errs[0].Field
	}
	return e
}

// Env is what Validate checks a flow against.
type Env struct {
	// Prompt returns the newest version of an uploaded prompt of the
	// flow's tenant. Nil skips the prompt checks (names, forbidden
	// phrases, the opening's length).
	Prompt func(name string) (controller.Prompt, bool)
	// ForbiddenPhrases are matched in prompt texts, case-insensitively and
	// on word boundaries (any boundary in scripts written without spaces,
	// such as Chinese); blanks in a phrase match any run of white space.
	ForbiddenPhrases []string
	// Egress checks webhook URLs and prompt URLs: one it refuses is an
	// error on the node's url or prompt_url. Nil skips the check (the
	// Runner refuses every outbound URL without a guard).
	Egress *egress.Guard
}

// Validate checks a decoded flow before it is saved: every reference names a
// node, consent nodes have on_yes and on_no, every node is reachable from
// start, no loop lacks an exit, prompts exist and say no forbidden phrase,
// recording never starts on a path that has not passed a consent's on_yes,
// the opening prompt is not too long, and webhook and prompt URLs are
// allowed by env.Egress. A webhook node may jump to any
// node, so nodes after one count as reachable.
func Validate(f *Flow, env Env) Problems { return validate(f, env, false) }

// validate is Validate; consented says the run already holds a consent (a
// webhook's sub-flow), so recording may start at once.
func validate(f *Flow, env Env, consented bool) Problems {
	v := &validator{f: f, env: env, ids: sortedIDs(f)}
	if f.Start == "" || f.Nodes[f.Start] == nil {
		v.add("", "start", SeverityError, "names unknown node %s", quoteShort(f.Start))
	}
	v.checkRefs()
	v.checkURLs()
	v.checkPrompts()
	if f.Nodes[f.Start] != nil {
		v.checkReachable()
		v.checkLoops()
		if !consented {
			v.checkConsentBeforeRecording()
		}
		v.checkOpening()
	}
	return v.problems
}

type validator struct {
	f        *Flow
	env      Env
	ids      []string
	problems Problems
}

func (v *validator) add(node, field, severity, format string, args ...any) {
	v.problems = append(v.problems, Problem{Node: node, Field: field, Severity: severity, Message: fmt.Sprintf(format, args...)})
}

// node returns a node, nil for a missing ID.
func (v *validator) node(id string) *Node { return v.f.Nodes[id] }

func (v *validator) checkRefs() {
	for _, id := range v.ids {
		n := v.node(id)
		if n == nil {
			continue
		}
		refs := n.refs()
		for _, field := range slices.Sorted(maps.Keys(refs)) {
			if ref := refs[field]; ref != "" && v.node(ref) == nil {
				v.add(id, field, SeverityError, "names unknown node %s", quoteShort(ref))
			}
		}
		switch n.Type {
		case TypeConsent:
			for _, field := range []string{"on_yes", "on_no"} {
				if refs[field] == "" {
					v.add(id, field, SeverityError, "is required: a consent node must say where each answer goes")
				}
			}
			for _, field := range []string{"on_timeout", "on_invalid"} {
				if refs[field] == "" {
					v.add(id, field, SeverityWarning, "is omitted, so the flow ends there: no consent, no recording")
				}
			}
		case TypeGather:
			if len(n.Branches) == 0 && n.Next == "" {
				v.add(id, "branches", SeverityWarning, "no branches and no next: every input follows on_invalid")
			}
		}
	}
}

// edges returns the nodes a node may go to next (existing ones only) and
// whether the flow may end at it. A webhook's reply may name any node
// (dynamic edges, added by the callers that need them) or end the call.
func (v *validator) edges(n *Node) (next []string, ends bool) {
	refs := n.refs()
	for _, field := range slices.Sorted(maps.Keys(refs)) {
		ref := refs[field]
		switch {
		case ref == "" && n.Type == TypeGather && field == "next":
			// unmatched input follows on_invalid instead
		case ref == "":
			ends = true
		case v.node(ref) != nil:
			next = append(next, ref)
		}
	}
	switch n.Type {
	case TypeHangup, TypeTransfer, TypeWebhook, TypeAgent:
		ends = true
	}
	return next, ends
}

// reach returns the nodes reachable from start; skip says which edges not to
// follow (from, field); dynamic follows webhooks' jumps to any node.
func (v *validator) reach(start string, dynamic bool, skip func(n *Node, to string) bool) map[string]bool {
	seen := map[string]bool{start: true}
	queue := []string{start}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		n := v.node(id)
		if n == nil {
			continue
		}
		next, _ := v.edges(n)
		if skip != nil {
			next = slices.DeleteFunc(next, func(to string) bool { return skip(n, to) })
		}
		if dynamic && n.Type == TypeWebhook {
			next = v.ids
		}
		for _, to := range next {
			if !seen[to] && v.node(to) != nil {
				seen[to] = true
				queue = append(queue, to)
			}
		}
	}
	return seen
}

func (v *validator) checkReachable() {
	seen := v.reach(v.f.Start, true, nil)
	for _, id := range v.ids {
		if !seen[id] {
			v.add(id, "", SeverityError, "is unreachable from start %q", v.f.Start)
		}
	}
}

// checkLoops reports every loop from which no path ends the flow: the
// strongly connected components, among nodes that cannot reach an end, that
// hold a cycle.
func (v *validator) checkLoops() {
	reachable := v.reach(v.f.Start, true, nil)
	succ := map[string][]string{}
	pred := map[string][]string{}
	canEnd := map[string]bool{}
	var queue []string
	for _, id := range v.ids {
		n := v.node(id)
		if n == nil {
			continue
		}
		next, ends := v.edges(n)
		succ[id] = next
		for _, to := range next {
			pred[to] = append(pred[to], id)
		}
		if ends {
			canEnd[id] = true
			queue = append(queue, id)
		}
	}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		for _, p := range pred[id] {
			if !canEnd[p] {
				canEnd[p] = true
				queue = append(queue, p)
			}
		}
	}
	var trapped []string
	for _, id := range v.ids {
		if reachable[id] && !canEnd[id] && v.node(id) != nil {
			trapped = append(trapped, id)
		}
	}
	for _, scc := range components(trapped, succ) {
		cyclic := len(scc) > 1 || slices.Contains(succ[scc[0]], scc[0])
		if cyclic {
			v.add(scc[0], "", SeverityError, "loop with no exit: no path from %s ends the flow", strings.Join(quoteAll(scc), ", "))
		}
	}
}

// components returns the strongly connected components of the subgraph on
// nodes (Tarjan), each sorted, in order of their first node.
func components(nodes []string, succ map[string][]string) [][]string {
	in := map[string]bool{}
	for _, id := range nodes {
		in[id] = true
	}
	index := map[string]int{}
	low := map[string]int{}
	onStack := map[string]bool{}
	var stack []string
	var out [][]string
	var strong func(id string)
	strong = func(id string) {
		index[id] = len(index)
		low[id] = index[id]
		stack = append(stack, id)
		onStack[id] = true
		for _, to := range succ[id] {
			if !in[to] {
				continue
			}
			if _, seen := index[to]; !seen {
				strong(to)
				low[id] = min(low[id], low[to])
			} else if onStack[to] {
				low[id] = min(low[id], index[to])
			}
		}
		if low[id] == index[id] {
			var scc []string
			for {
				top := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[top] = false
				scc = append(scc, top)
				if top == id {
					break
				}
			}
			slices.Sort(scc)
			out = append(out, scc)
		}
	}
	for _, id := range nodes {
		if _, seen := index[id]; !seen {
			strong(id)
		}
	}
	slices.SortFunc(out, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	return out
}

// checkConsentBeforeRecording follows every path from start that has not
// taken a consent node's on_yes: a record start on one is an error. A
// webhook on such a path may jump to any node: a warning (the runner
// refuses to record without consent all the same).
func (v *validator) checkConsentBeforeRecording() {
	notOnYes := func(n *Node, to string) bool { return n.Type == TypeConsent && n.OnYes == to }
	unconsented := v.reach(v.f.Start, false, func(n *Node, to string) bool {
		// An edge is skipped only when on_yes is the sole way to it.
		if !notOnYes(n, to) {
			return false
		}
		return n.OnNo != to && n.OnTimeout != to && n.OnInvalid != to
	})
	var hooks []string
	for _, id := range v.ids {
		if unconsented[id] && v.node(id) != nil && v.node(id).Type == TypeWebhook {
			hooks = append(hooks, id)
		}
	}
	for _, id := range v.ids {
		n := v.node(id)
		if n == nil || n.Type != TypeRecord || n.Action != RecordStart {
			continue
		}
		switch {
		case unconsented[id]:
			v.add(id, "action", SeverityError, "recording may start before consent: a path from start reaches it without passing a consent node's on_yes")
		case len(hooks) > 0:
			v.add(id, "action", SeverityWarning, "recording may start before consent if webhook %q replies with this node (the runner refuses to record without consent)", hooks[0])
		}
	}
}

// checkPrompts checks prompt names and their texts.
func (v *validator) checkPrompts() {
	phrases := compilePhrases(v.env.ForbiddenPhrases)
	for _, id := range v.ids {
		n := v.node(id)
		if n == nil {
			continue
		}
		if n.PromptURL != "" && len(phrases) > 0 {
			v.add(id, "prompt_url", SeverityWarning, "the text of a prompt URL is unknown: it was not checked for forbidden phrases")
		}
		if v.env.Prompt == nil {
			continue
		}
		for _, ref := range [][2]string{{"prompt", n.Prompt}, {"invalid_prompt", n.InvalidPrompt}} {
			field, name := ref[0], ref[1]
			if name == "" {
				continue
			}
			p, ok := v.env.Prompt(name)
			if !ok {
				v.add(id, field, SeverityError, "names unknown prompt %q", name)
				continue
			}
			for _, ph := range phrases {
				if ph.in(p.Text) {
					v.add(id, field, SeverityError, "prompt %q says forbidden phrase %q", name, ph.phrase)
				}
			}
		}
	}
}

// checkOpening warns when the first prompt reached from start (through
// set and record nodes) is longer than the flow's opening limit.
func (v *validator) checkOpening() {
	if v.env.Prompt == nil {
		return
	}
	limit := v.f.OpeningMSMax
	if limit == 0 {
		limit = DefaultOpeningMSMax
	}
	seen := map[string]bool{}
	for id := v.f.Start; id != "" && !seen[id]; {
		seen[id] = true
		n := v.node(id)
		if n == nil {
			return
		}
		switch n.Type {
		case TypeSet, TypeRecord:
			id = n.Next
			continue
		case TypePlay, TypeGather, TypeConsent:
			if n.Prompt == "" {
				return
			}
			if p, ok := v.env.Prompt(n.Prompt); ok && p.DurationMS > limit {
				v.add(id, "prompt", SeverityWarning, "the opening prompt %q lasts %.1f s, longer than %.1f s", n.Prompt,
					float64(p.DurationMS)/1000, float64(limit)/1000)
			}
		}
		return
	}
}

// phrase is a compiled forbidden phrase.
type phrase struct {
	phrase string
	re     *regexp.Regexp
}

func compilePhrases(list []string) []phrase {
	var out []phrase
	for _, s := range list {
		words := strings.Fields(s)
		if len(words) == 0 {
			continue
		}
		for i, w := range words {
			words[i] = regexp.QuoteMeta(w)
		}
		out = append(out, phrase{phrase: s, re: regexp.MustCompile(`(?i)` + strings.Join(words, `\s+`))})
	}
	return out
}

// in reports whether the phrase occurs in text on word boundaries.
func (p phrase) in(text string) bool {
	for _, m := range p.re.FindAllStringIndex(text, -1) {
		first, _ := utf8.DecodeRuneInString(text[m[0]:])
		last, _ := utf8.DecodeLastRuneInString(text[:m[1]])
		before, _ := utf8.DecodeLastRuneInString(text[:m[0]])
		after, _ := utf8.DecodeRuneInString(text[m[1]:])
		okBefore := m[0] == 0 || !isWordRune(before) || !isWordRune(first) || unspaced(first) || unspaced(before)
		okAfter := m[1] == len(text) || !isWordRune(after) || !isWordRune(last) || unspaced(last) || unspaced(after)
		if okBefore && okAfter {
			return true
		}
	}
	return false
}

func isWordRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// unspaced reports whether r belongs to a script written without spaces
// between words, where any position is a word boundary.
func unspaced(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Thai, unicode.Lao, unicode.Khmer, unicode.Myanmar)
}

func quoteAll(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = fmt.Sprintf("%q", id)
	}
	return out
}
