package controller

// MaskNumber hides all but the last four characters of a phone number:
// "+15551234567" → "****4567". Shorter values are masked whole.
func MaskNumber(n string) string {
	if len(n) <= 4 {
		return "****"
	}
	return "****" + n[len(n)-4:]
}
