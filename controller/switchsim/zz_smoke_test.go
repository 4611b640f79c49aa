package switchsim

import (
	"fmt"
	"testing"
)

func TestSmoke(t *testing.T) {
	s := newSim(t, Config{TimeScale: 0.01, Hostname: "vm"})
	c := dial(t, s, "ClueCon")
	fmt.Println(c.command(allChannelEvents).raw)
	r := c.command("bgapi originate {origination_uuid=50b976a2-5e58-4f1a-bbe1-07766e35f9f6,origination_caller_id_number=4000,originate_timeout=5}loopback/1001/cgcap &park()")
	fmt.Print(r.raw)
	for i := 0; i < 12; i++ {
		f := c.event()
		fmt.Println(f.eventName(), f.field("Channel-Name"), f.field("Application"), f.eventBody())
	}
	fmt.Print(c.command("sendmsg 50b976a2-5e58-4f1a-bbe1-07766e35f9f6\ncall-command: execute\nexecute-app-name: play_and_get_digits\nexecute-app-arg: 1 1 3 5000 # tone_stream://%(500,0,440) tone_stream://%(200,0,300) consent_digit ^[12]$ 3000\nevent-lock: true").raw)
	for {
		f := c.event()
		fmt.Println(f.eventName(), f.field("Channel-Name"), f.field("Application"), f.field("variable_consent_digit"))
		if f.eventName() == "CHANNEL_EXECUTE_COMPLETE" && f.field("Application") == "play_and_get_digits" {
			fmt.Println(f.raw)
			break
		}
	}
	fmt.Println(c.api("show channels as json"))
	fmt.Println(c.api("status"))
	fmt.Println(c.api("uuid_kill 50b976a2-5e58-4f1a-bbe1-07766e35f9f6"))
	for {
		f := c.event()
		fmt.Println(f.eventName(), f.field("Channel-Name"), f.field("Application"), f.field("variable_billsec"))
		if f.eventName() == "CHANNEL_DESTROY" && f.field("Channel-Name") == "loopback/1001-b" {
			fmt.Println(f.raw)
			break
		}
	}
}
