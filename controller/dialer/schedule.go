package dialer

import (
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/robfig/cron/v3"
)

// cronParser reads standard five-field cron expressions and descriptors
// such as @daily.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// window is a campaign's parsed schedule.
type window struct {
	start, stop cron.Schedule // nil start: always open
	loc         *time.Location
}

// parseSchedule checks a schedule. Returns EINVALID naming the field.
func parseSchedule(s controller.Schedule) (window, error) {
	w := window{loc: time.UTC}
	if s.TimeZone != "" {
		loc, err := time.LoadLocation(s.TimeZone)
		if err != nil || s.TimeZone == "Local" {
			return w, controller.FieldError("schedule.time_zone", "unknown time zone %q", s.TimeZone)
		}
		w.loc = loc
	}
	if s.Start == "" && s.Stop == "" {
		return w, nil
	}
	if s.Start == "" || s.Stop == "" {
		return w, controller.FieldError("schedule", "give both start and stop, or neither")
	}
	var err error
	if w.start, err = cronParser.Parse(s.Start); err != nil {
		return w, controller.FieldError("schedule.start", "%v", err)
	}
	if w.stop, err = cronParser.Parse(s.Stop); err != nil {
		return w, controller.FieldError("schedule.stop", "%v", err)
	}
	return w, nil
}

// open reports whether the window is open at t, and when it next changes.
// The window is open when the next event after t is a stop: cron only
// looks forward, and this needs nothing else.
func (w window) open(t time.Time) (bool, time.Time) {
	if w.start == nil {
		return true, time.Time{}
	}
	t = t.In(w.loc)
	nextStart, nextStop := w.start.Next(t), w.stop.Next(t)
	if nextStop.IsZero() {
		return false, nextStart
	}
	if nextStart.IsZero() || nextStop.Before(nextStart) {
		return true, nextStop
	}
	return false, nextStart
}
