package switchsim

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// job is one api or bgapi command whose result may come later (originate).
type job struct {
	uuid    string // Job-UUID; empty for a blocking api command
	command string
	arg     string
	hasArg  bool
	sync    chan string // blocking api: receives the reply body
}

// api runs "api <cmd> [arg]" and returns its api/response frame. A blocking
// originate keeps the connection's events held until it finishes, like
// FreeSWITCH's single listener thread.
func (c *conn) api(rest string) []byte {
	s := c.s
	name, arg, hasArg := strings.Cut(rest, " ")
	if strings.EqualFold(name, "originate") {
		j := &job{command: name, arg: arg, hasArg: hasArg, sync: make(chan string, 1)}
		s.originate(j)
		select {
		case r := <-j.sync:
			return apiResponse(r)
		case <-s.done:
			return apiResponse("-ERR SYSTEM_SHUTDOWN\n")
		}
	}
	return apiResponse(s.execAPI(name, arg))
}

// bgapi runs "bgapi <cmd> [arg]": the reply carries the Job-UUID and the
// result follows as a BACKGROUND_JOB event.
func (c *conn) bgapi(rest, jobUUID string) []byte {
	s := c.s
	name, arg, hasArg := strings.Cut(rest, " ")
	if jobUUID == "" {
		jobUUID = newUUID()
	}
	j := &job{uuid: jobUUID, command: name, arg: arg, hasArg: hasArg}
	if strings.EqualFold(name, "originate") {
		s.originate(j)
	} else {
		out := s.execAPI(name, arg)
		s.lock()
		s.finishJob(j, out)
		s.unlock()
	}
	return []byte("Content-Type: command/reply\nReply-Text: +OK Job-UUID: " + jobUUID +
		"\nJob-UUID: " + jobUUID + "\n\n")
}

// finishJob delivers a job's result: to the blocked api caller, or as a
// BACKGROUND_JOB event. Caller holds s.mu.
func (s *Sim) finishJob(j *job, body string) {
	if j.sync != nil {
		select {
		case j.sync <- body:
		default:
		}
		return
	}
	if body == "" {
		body = "Command returned no output!"
	}
	e := s.newEvent("BACKGROUND_JOB")
	e.add("Job-UUID", j.uuid)
	e.add("Job-Command", j.command)
	if j.hasArg {
		e.add("Job-Command-Arg", j.arg)
	}
	e.body = body
	s.emit(e)
}

// execAPI runs a non-originate API command and returns its output.
func (s *Sim) execAPI(name, arg string) string {
	switch strings.ToLower(name) {
	case "status":
		return s.status()
	case "show":
		return s.show(arg)
	case "uuid_kill":
		return s.uuidKill(arg)
	case "uuid_exists":
		s.lock()
		defer s.unlock()
		if s.channels[strings.TrimSpace(arg)] != nil {
			return "true"
		}
		return "false"
	case "uuid_record":
		return s.uuidRecord(arg)
	case "uuid_getvar":
		return s.uuidGetvar(arg)
	case "uuid_setvar":
		return s.uuidSetvar(arg)
	case "hupall":
		return s.hupall(arg)
	case "fsctl":
		return s.fsctl(arg)
	case "version":
		return "FreeSWITCH Version " + fsVersion + " (git a88d069 2024-08-02 21:02:27Z 64bit)\n"
	case "hostname":
		return s.cfg.Hostname
	case "sofia":
		return s.sofiaAPI(arg)
	}
	return "-ERR " + name + " Command not found!\n"
}

const fsVersion = "1.10.12-release+git~20240802T210227Z~a88d069d6f~64bit"

func plural(n int64) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// status renders "api status" like FreeSWITCH 1.10.
func (s *Sim) status() string {
	s.lock()
	defer s.unlock()
	up := s.now.Sub(s.started)
	us := up.Microseconds()
	parts := []struct {
		n    int64
		unit string
	}{
		{us / (365 * 86400e6), "year"}, {us / 86400e6 % 365, "day"}, {us / 3600e6 % 24, "hour"},
		{us / 60e6 % 60, "minute"}, {us / 1e6 % 60, "second"}, {us / 1000 % 1000, "millisecond"},
		{us % 1000, "microsecond"},
	}
	var b strings.Builder
	b.WriteString("UP ")
	for i, p := range parts {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d %s%s", p.n, p.unit, plural(p.n))
	}
	b.WriteString("\nFreeSWITCH (Version 1.10.12-release git a88d069 2024-08-02 21:02:27Z 64bit) is ready\n")
	live := len(s.channels)
	s.refillSPS()
	fmt.Fprintf(&b, "%d session(s) since startup\n", s.sessionsTotal)
	fmt.Fprintf(&b, "%d session(s) - peak %d, last 5min %d \n", live, s.peak.max, s.peak.recent(s.now))
	fmt.Fprintf(&b, "%d session(s) per Sec out of max %d, peak %d, last 5min %d \n",
		s.sps.count, s.sps.total, s.spsPeak.max, s.spsPeak.recent(s.now))
	fmt.Fprintf(&b, "%d session(s) max\n", s.maxSessions)
	b.WriteString("min idle cpu 0.00/100.00\nCurrent Stack Size/Max 240K/8192K\n")
	return b.String()
}

var channelColumns = strings.Split("uuid,direction,created,created_epoch,name,state,cid_name,cid_num,"+
	"ip_addr,dest,application,application_data,dialplan,context,read_codec,read_rate,read_bit_rate,"+
	"write_codec,write_rate,write_bit_rate,secure,hostname,presence_id,presence_data,accountcode,"+
	"callstate,callee_name,callee_num,callee_direction,call_uuid,sent_callee_name,sent_callee_num,"+
	"initial_cid_name,initial_cid_num,initial_ip_addr,initial_dest,initial_dialplan,initial_context", ",")

var callColumns = strings.Split("uuid,direction,created,created_epoch,name,state,cid_name,cid_num,"+
	"ip_addr,dest,presence_id,presence_data,accountcode,callstate,callee_name,callee_num,"+
	"callee_direction,call_uuid,hostname,sent_callee_name,sent_callee_num,b_uuid,b_direction,"+
	"b_created,b_created_epoch,b_name,b_state,b_cid_name,b_cid_num,b_ip_addr,b_dest,b_presence_id,"+
	"b_presence_data,b_accountcode,b_callstate,b_callee_name,b_callee_num,b_callee_direction,"+
	"b_sent_callee_name,b_sent_callee_num,call_created_epoch", ",")

const showSyntax = "codec|endpoint|application|api|dialplan|file|timer|calls [count]|channels [count|like <match string>]|calls|detailed_calls|bridged_calls|detailed_bridged_calls|aliases|complete|chat|management|modules|nat_map|say|interfaces|interface_types|tasks|limits|status"

// show handles "show channels|calls [as json]".
func (s *Sim) show(arg string) string {
	f := strings.Fields(arg)
	if len(f) == 0 {
		return "-USAGE: " + showSyntax + "\n"
	}
	format := "delim"
	if len(f) >= 3 && strings.EqualFold(f[len(f)-2], "as") {
		format = strings.ToLower(f[len(f)-1])
	}
	var columns []string
	switch strings.ToLower(f[0]) {
	case "channels":
		columns = channelColumns
	case "calls":
		columns = callColumns
	default:
		return "-USAGE: " + showSyntax + "\n"
	}
	s.lock()
	rows := s.channelRows(columns)
	s.unlock()
	switch format {
	case "json":
		if len(rows) == 0 {
			return "{\"row_count\": 0}\n"
		}
		b := []byte(`{"row_count":` + strconv.Itoa(len(rows)) + `,"rows":[`)
		for i, r := range rows {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			for j, col := range columns {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, col)
				b = append(b, ':')
				b = appendJSONString(b, r[col])
			}
			b = append(b, '}')
		}
		return string(append(b, "]}"...))
	case "delim", "csv":
		var b strings.Builder
		for i, r := range rows {
			if i == 0 {
				b.WriteString(strings.Join(columns, ",") + "\n")
			}
			vals := make([]string, len(columns))
			for j, col := range columns {
				vals[j] = r[col]
			}
			b.WriteString(strings.Join(vals, ",") + "\n")
		}
		fmt.Fprintf(&b, "\n%d total.\n", len(rows))
		return b.String()
	}
	return "-ERR Cannot find format " + format + "\n"
}

// channelRows renders every live channel as FreeSWITCH's channels table
// does, oldest first. Caller holds s.mu.
func (s *Sim) channelRows(columns []string) []map[string]string {
	chans := make([]*channel, 0, len(s.channels))
	for _, ch := range s.channels {
		chans = append(chans, ch)
	}
	sort.Slice(chans, func(i, j int) bool { return chans[i].order < chans[j].order })
	rows := make([]map[string]string, 0, len(chans))
	for _, ch := range chans {
		r := make(map[string]string, len(columns))
		for _, col := range columns {
			r[col] = ""
		}
		p := &ch.prof
		r["uuid"], r["direction"], r["name"], r["state"] = ch.uuid, ch.direction, ch.name, ch.state
		r["created"] = ch.created.UTC().Format("2006-01-02 15:04:05")
		r["created_epoch"] = epoch(ch.created)
		r["cid_name"], r["cid_num"], r["dest"] = p.cidName, p.cidNumber, p.dest
		if top := ch.top(); top != nil {
			r["application"], r["application_data"] = top.name, top.data
		}
		r["dialplan"], r["context"] = p.dialplan, p.context
		if ch.codecName != "" {
			r["read_codec"], r["read_rate"], r["read_bit_rate"] = ch.codecName, ch.codecRate, ch.codecBits
			r["write_codec"], r["write_rate"], r["write_bit_rate"] = ch.codecName, ch.codecRate, ch.codecBits
		}
		r["hostname"], r["callstate"] = s.cfg.Hostname, ch.callState
		r["callee_name"], r["callee_num"] = p.calleeName, p.calleeNumber
		if ch.vars.get("channel_cid_flipped") == "yes" {
			r["callee_direction"] = "RECV"
		}
		if ch.direction == "outbound" {
			r["call_uuid"] = ch.uuid
		}
		r["initial_cid_name"], r["initial_cid_num"] = p.origCidName, p.origCidNumber
		r["initial_dest"], r["initial_dialplan"], r["initial_context"] = p.dest, p.dialplan, p.context
		rows = append(rows, r)
	}
	return rows
}

// parseCause reads a cause name or Q.850 number; unknown means
// NORMAL_CLEARING.
func parseCause(v string) string {
	v = strings.ToUpper(strings.TrimSpace(v))
	if _, ok := causeCodes[v]; ok && v != "" {
		return v
	}
	if n, err := strconv.Atoi(v); err == nil {
		for name, code := range causeCodes {
			if code == n && name != "NONE" {
				return name
			}
		}
	}
	return "NORMAL_CLEARING"
}

func (s *Sim) uuidKill(arg string) string {
	f := strings.Fields(arg)
	if len(f) == 0 {
		return "-USAGE: <uuid> [cause]\n"
	}
	cause := "NORMAL_CLEARING"
	if len(f) > 1 {
		cause = parseCause(f[1])
	}
	s.lock()
	defer s.unlock()
	ch := s.channels[f[0]]
	if ch == nil {
		return "-ERR No such channel!\n"
	}
	s.hangupChannel(ch, cause, false)
	return "+OK\n"
}

func (s *Sim) hupall(arg string) string {
	f := strings.Fields(arg)
	cause := "MANAGER_REQUEST"
	if len(f) > 0 {
		cause = parseCause(f[0])
	}
	s.lock()
	defer s.unlock()
	s.hupalls++
	chans := make([]*channel, 0, len(s.channels))
	for _, ch := range s.channels {
		if len(f) >= 3 && ch.vars.get(f[1]) != f[2] {
			continue
		}
		chans = append(chans, ch)
	}
	sort.Slice(chans, func(i, j int) bool { return chans[i].order > chans[j].order })
	for _, ch := range chans {
		s.hangupChannel(ch, cause, false)
	}
	if len(f) >= 3 {
		return "+OK hangup all channels matching [" + f[1] + "]=[" + f[2] + "] with cause " + cause + "\n"
	}
	return "+OK hangup all channels with cause " + cause + "\n"
}

func (s *Sim) fsctl(arg string) string {
	f := strings.Fields(arg)
	if len(f) == 0 {
		return "-USAGE: [max_sessions|sps|...] [value]\n"
	}
	s.lock()
	defer s.unlock()
	n := 0
	if len(f) > 1 {
		n = leadingInt(f[1])
	}
	switch strings.ToLower(f[0]) {
	case "max_sessions":
		if n > 0 {
			s.maxSessions = n
		}
		return "+OK max sessions: " + strconv.Itoa(s.maxSessions) + "\n"
	case "sps":
		if n > 0 {
			s.sps.total = n
		}
		return "+OK sessions per second: " + strconv.Itoa(s.sps.total) + "\n"
	}
	return "-ERR INVALID COMMAND\n"
}

const recordUsage = "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"

// uuidRecord handles "uuid_record <uuid> start|stop|mask|unmask <path>".
func (s *Sim) uuidRecord(arg string) string {
	f := separate(arg, ' ', 5)
	if len(f) < 3 || f[0] == "" || f[1] == "" || f[2] == "" {
		return recordUsage
	}
	s.lock()
	defer s.unlock()
	ch := s.channels[f[0]]
	if ch == nil {
		return "-ERR Cannot locate session!\n"
	}
	path := f[2]
	switch strings.ToLower(f[1]) {
	case "start":
		if ch.hungup {
			return "-ERR Cannot record session!\n"
		}
		s.startRecording(ch, path)
	case "stop":
		if !s.stopRecording(ch, path) {
			return "-ERR Cannot stop record session!\n"
		}
	case "mask", "unmask":
		mask := strings.EqualFold(f[1], "mask")
		r := s.findRecording(ch, path)
		if r == nil {
			return "-ERR Cannot " + strings.ToLower(f[1]) + " recording session!\n"
		}
		if mask && !r.masking {
			r.masking, r.maskAt = true, s.now
		} else if !mask && r.masking {
			r.masking = false
			r.masked += s.now.Sub(r.maskAt)
		}
	default:
		return recordUsage
	}
	return "+OK Success\n"
}

func (s *Sim) uuidGetvar(arg string) string {
	f := strings.Fields(arg)
	if len(f) < 2 {
		return "-USAGE: <uuid> <var>\n"
	}
	s.lock()
	defer s.unlock()
	ch := s.channels[f[0]]
	if ch == nil {
		return "-ERR No such channel!\n"
	}
	if v := ch.vars.get(f[1]); v != "" {
		return v
	}
	return "_undef_"
}

func (s *Sim) uuidSetvar(arg string) string {
	f := strings.SplitN(strings.TrimSpace(arg), " ", 3)
	if len(f) < 2 {
		return "-USAGE: <uuid> <var> [value]\n"
	}
	s.lock()
	defer s.unlock()
	ch := s.channels[f[0]]
	if ch == nil {
		return "-ERR No such channel!\n"
	}
	value := ""
	if len(f) == 3 {
		value = f[2]
	}
	ch.vars.set(f[1], value)
	return "+OK\n"
}

// windowMax tracks a peak and the peak over the last five minutes (in
// one-minute buckets) for the status command.
type windowMax struct {
	max     int
	buckets [5]struct {
		minute int64
		max    int
	}
}

func (w *windowMax) observe(now time.Time, v int) {
	if v > w.max {
		w.max = v
	}
	m := now.Unix() / 60
	b := &w.buckets[m%5]
	if b.minute != m {
		b.minute, b.max = m, 0
	}
	if v > b.max {
		b.max = v
	}
}

func (w *windowMax) recent(now time.Time) int {
	m, best := now.Unix()/60, 0
	for _, b := range w.buckets {
		if m-b.minute < 5 && b.max > best {
			best = b.max
		}
	}
	return best
}
