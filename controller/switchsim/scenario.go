package switchsim

// Step is one dialplan application a callee runs, as in
// dialplans/callgate-test.xml: answer, ring_ready, sleep <ms>,
// send_dtmf <digits>, hangup [<cause>] or park.
type Step struct {
	App  string
	Data string
}

// Scenario is how a callee behaves. The last four digits of the dialled
// number choose it; dialplans/SCENARIOS.md documents the same table and
// dialplans/callgate-test.xml implements it on a real FreeSWITCH.
type Scenario struct {
	Suffix      string // last four digits; "" for the default
	Name        string
	Description string
	Steps       []Step
}

var scenarios = []Scenario{
	{"1001", "press1", "answers, presses 1 after 1.5 s, hangs up 20 s later",
		[]Step{{"answer", ""}, {"sleep", "1500"}, {"send_dtmf", "1"}, {"sleep", "20000"}, {"hangup", ""}}},
	{"1002", "press2", "answers, presses 2 after 1.5 s, hangs up 20 s later",
		[]Step{{"answer", ""}, {"sleep", "1500"}, {"send_dtmf", "2"}, {"sleep", "20000"}, {"hangup", ""}}},
	{"1003", "busy", "busy: USER_BUSY, never answers",
		[]Step{{"hangup", "USER_BUSY"}}},
	{"1004", "noanswer", "rings (CHANNEL_PROGRESS) for 60 s and never answers: NO_ANSWER at the originate timeout (60 s by default)",
		[]Step{{"ring_ready", ""}, {"sleep", "60000"}}},
	{"1005", "silence", "answers and stays silent until hung up",
		[]Step{{"answer", ""}, {"park", ""}}},
	{"1006", "hangup2s", "answers and hangs up after 2 s",
		[]Step{{"answer", ""}, {"sleep", "2000"}, {"hangup", ""}}},
	{"1007", "reject", "rejects: CALL_REJECTED",
		[]Step{{"hangup", "CALL_REJECTED"}}},
	{"1008", "unallocated", "unallocated number: UNALLOCATED_NUMBER",
		[]Step{{"hangup", "UNALLOCATED_NUMBER"}}},
	{"1009", "ringthenanswer", "rings 1 s, answers, hangs up after 3 s",
		[]Step{{"ring_ready", ""}, {"sleep", "1000"}, {"answer", ""}, {"sleep", "3000"}, {"hangup", ""}}},
	{"1010", "hangup-mid-prompt", "answers and hangs up 1.2 s later (during a prompt)",
		[]Step{{"answer", ""}, {"sleep", "1200"}, {"hangup", ""}}},
}

var defaultScenario = Scenario{"", "default", "any other number: answers, stays 1 s, hangs up NORMAL_CLEARING",
	[]Step{{"answer", ""}, {"sleep", "1000"}, {"hangup", ""}}}

// Scenarios returns the callee behaviours by number suffix, the default
// last.
func Scenarios() []Scenario {
	out := make([]Scenario, 0, len(scenarios)+1)
	out = append(out, scenarios...)
	return append(out, defaultScenario)
}

// ScenarioFor returns the behaviour of a callee at number: the last four
// of its digits decide, anything else gets the default.
func ScenarioFor(number string) Scenario {
	digits := make([]byte, 0, len(number))
	for i := 0; i < len(number); i++ {
		if c := number[i]; c >= '0' && c <= '9' {
			digits = append(digits, c)
		}
	}
	if len(digits) >= 4 {
		suffix := string(digits[len(digits)-4:])
		for _, sc := range scenarios {
			if sc.Suffix == suffix {
				return sc
			}
		}
	}
	return defaultScenario
}
