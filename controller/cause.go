package controller

// HangupCauses maps the Q.850 cause names FreeSWITCH uses to their codes.
// Hangup requests accept only these names.
var HangupCauses = map[string]int{
	"UNALLOCATED_NUMBER":        1,
	"NO_ROUTE_DESTINATION":      3,
	"NORMAL_CLEARING":           16,
	"USER_BUSY":                 17,
	"NO_USER_RESPONSE":          18,
	"NO_ANSWER":                 19,
	"SUBSCRIBER_ABSENT":         20,
	"CALL_REJECTED":             21,
	"NUMBER_CHANGED":            22,
	"DESTINATION_OUT_OF_ORDER":  27,
	"INVALID_NUMBER_FORMAT":     28,
	"NORMAL_UNSPECIFIED":        31,
	"NORMAL_CIRCUIT_CONGESTION": 34,
	"NETWORK_OUT_OF_ORDER":      38,
	"NORMAL_TEMPORARY_FAILURE":  41,
	"SWITCH_CONGESTION":         42,
	"REQUESTED_CHAN_UNAVAIL":    44,
	"BEARERCAPABILITY_NOTAVAIL": 58,
	"SERVICE_UNAVAILABLE":       63,
	"CHAN_NOT_IMPLEMENTED":      66,
	"RECOVERY_ON_TIMER_EXPIRE":  102,
	"INTERWORKING":              127,
	"ORIGINATOR_CANCEL":         487,
	"ALLOTTED_TIMEOUT":          602,
	"MANAGER_REQUEST":           503,
	"MEDIA_TIMEOUT":             604,
	"LOSE_RACE":                 502,
}

// ValidHangupCause reports whether name is a cause callgate may send.
func ValidHangupCause(name string) bool {
	_, ok := HangupCauses[name]
	return ok
}
