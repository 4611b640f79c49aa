package freeswitch

import (
	"net"
	"reflect"
	"sync"
	"unsafe"

	"github.com/percipia/eslgo"
)

// Closing an eslgo v1.5.2 connection without its data race
//
// eslgo's authLoop and disconnectLoop read c.responseChannels without a lock
// (inbound.go: `case <-c.responseChannels[TypeAuthRequest]`, re-read on
// every loop), while Conn.close deletes from that map under the lock. So
// every Close — ours, or eslgo's own when FreeSWITCH disconnects — is a data
// race the race detector reports, and in a build without it a rare
// "concurrent map read and map write" fatal error.
//
// The driver therefore never lets eslgo's close run. Right after Dial,
// disarm uses the Conn's closeOnce up with a no-op, so Close and
// ExitAndClose (from disconnectLoop, authLoop or anyone) do nothing, and
// keeps the raw net.Conn. Tearing down is then: cancel the connection's
// context (eslgo's running context: its event, auth and disconnect loops
// return, and the driver's AfterFunc aborts a waiting command), and close the
// raw socket (its receive loop's Read fails and it returns). The response
// channel map is never written after Dial, so nothing races.
//
// This reaches into two unexported fields. If a later eslgo renames them,
// disarm reports false and the driver falls back to Conn.Close; a test pins
// the layout of the version in go.mod.

// disarm makes c.Close a no-op and returns the raw connection.
func disarm(c *eslgo.Conn) (net.Conn, bool) {
	v := reflect.ValueOf(c).Elem()
	onceF, connF := v.FieldByName("closeOnce"), v.FieldByName("conn")
	if !onceF.IsValid() || !connF.IsValid() ||
		onceF.Type() != reflect.TypeFor[sync.Once]() || connF.Type() != reflect.TypeFor[net.Conn]() {
		return nil, false
	}
	once := (*sync.Once)(unsafe.Pointer(onceF.UnsafeAddr()))
	raw := *(*net.Conn)(unsafe.Pointer(connF.UnsafeAddr()))
	if raw == nil {
		return nil, false
	}
	once.Do(func() {})
	return raw, true
}
