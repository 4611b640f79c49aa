// Package pii seals personal data for storage: values are encrypted with
// AES-256-GCM under keys derived from the master keyring, and looked up
// through a keyed hash (a blind index), so the database never holds a phone
// number in the clear nor any key that would reveal one.
//
// A sealed value is
//
//	0x01 | len(keyID) | keyID | salt (16) | nonce (12) | ciphertext and tag
//
// Its AES key is derived (HKDF-SHA256) from master key keyID with the
// random salt. A process seals with one derived key (one salt) for at most
// maxUses values, then draws a new salt, so GCM's random-nonce limit (2^32
// messages per key) is never approached; opening caches the keys of recent
// salts. The field name is the additional data: a value
// sealed as one field does not open as another. Rotating the master key
// re-seals every value (see the store's ResealPersonalData); the index key
// is never rotated, since every controller of a database must compute the
// same index.
package pii

import (
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/callgate/callgate/controller"
	"github.com/callgate/callgate/controller/recording"
)

// version is the first byte of every sealed value.
const version = 1

const (
	saltSize  = 16
	nonceSize = 12
	// maxSealed bounds what Open accepts: personal data fields are short.
	maxSealed = 64 << 10
)

// Domains of the keyed hashes, so that an index never equals another use of
// the key.
const (
	numberDomain = "callgate/pii/number-index/v1"
	checkDomain  = "callgate/pii/index-key-check/v1"
	sealInfo     = "callgate/pii/seal/v1"
	aadPrefix    = "callgate/pii/v1\x00"
)

var _ controller.PersonalData = (*Keys)(nil)

// maxUses bounds the values one derived key seals.
const maxUses = 1 << 28

// refreshEvery is how often Seal checks the keyring file for a rotation by
// another process; the rotation waits longer than this (recording.
// RotateGrace) before it moves values to the new key.
const refreshEvery = 200 * time.Millisecond

// openCacheSize bounds the derived keys Open keeps.
const openCacheSize = 4096

// Keys seals and indexes personal data with a keyring's keys. It is safe for
// concurrent use and follows the keyring's rotations (Refresh).
type Keys struct {
	kr *recording.Keyring

	mu        sync.Mutex
	checked   time.Time // keyring file last checked for a rotation
	sealer    *derived  // the derived key Seal uses
	sealUses  int
	openCache map[string]cipher.AEAD // keyID + salt → derived key
}

// derived is a key derived from a master key with a salt.
type derived struct {
	keyID string
	salt  []byte
	aead  cipher.AEAD
}

// New returns Keys on kr, which must hold an index key.
func New(kr *recording.Keyring) (*Keys, error) {
	if kr == nil {
		return nil, controller.Errorf(controller.EINVALID, "no keyring")
	}
	if !kr.HasIndexKey() {
		return nil, controller.Errorf(controller.EINVALID,
			"the keyring %s has no index key: run `callgate keys init --file %s` once and give every controller the updated file", kr.Path(), kr.Path())
	}
	return &Keys{kr: kr, openCache: map[string]cipher.AEAD{}}, nil
}

// Keyring returns the keyring the keys come from.
func (k *Keys) Keyring() *recording.Keyring { return k.kr }

// IndexSize is the length of a blind index: HMAC-SHA256 truncated to 128
// bits (small, randomly ordered keys are what the database indexes; a
// collision is as likely as guessing a 128-bit key).
const IndexSize = 16

// NumberIndex returns the blind index of a phone number (E.164): the same
// number always gives the same IndexSize bytes, with every controller that
// has the same index key.
func (k *Keys) NumberIndex(number string) ([]byte, error) {
	mac, err := k.kr.IndexMAC(numberDomain, []byte(number))
	if err != nil {
		return nil, err
	}
	return mac[:IndexSize], nil
}

// Fingerprint identifies the index key without revealing it; a database
// records it so that a controller with another index key is refused.
func (k *Keys) Fingerprint() ([]byte, error) {
	return k.kr.IndexMAC(checkDomain, nil)
}

// CurrentKeyID returns the master key new values are sealed under.
func (k *Keys) CurrentKeyID() string { return k.kr.CurrentID() }

// SealedPrefix returns the bytes every value sealed under master key id
// starts with (for finding the values a rotation must re-seal).
func SealedPrefix(id string) []byte {
	return append([]byte{version, byte(len(id))}, id...)
}

// Seal encrypts value as field under the current master key. It reloads
// the keyring file first if it changed (a rotation by another process; the
// file is checked every refreshEvery), so no value is sealed under a key
// that a rotation is about to retire.
func (k *Keys) Seal(field, value string) ([]byte, error) {
	d, err := k.sealKey()
	if err != nil {
		return nil, fmt.Errorf("sealing %s: %w", field, err)
	}
	out := make([]byte, 0, 2+len(d.keyID)+saltSize+nonceSize+len(value)+d.aead.Overhead())
	out = append(out, SealedPrefix(d.keyID)...)
	out = append(out, d.salt...)
	nonce := make([]byte, nonceSize)
	rand.Read(nonce)
	out = append(out, nonce...)
	return d.aead.Seal(out, nonce, []byte(value), []byte(aadPrefix+field)), nil
}

// sealKey returns the derived key to seal the next value with.
func (k *Keys) sealKey() (*derived, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now := time.Now(); now.Sub(k.checked) >= refreshEvery {
		if err := k.kr.Refresh(); err != nil {
			return nil, err
		}
		k.checked = now
	}
	if d := k.sealer; d != nil && d.keyID == k.kr.CurrentID() && k.sealUses < maxUses {
		k.sealUses++
		return d, nil
	}
	salt := make([]byte, saltSize)
	rand.Read(salt)
	id, key, err := k.kr.DeriveKey("", salt, sealInfo)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	aead, err := recording.NewGCM(key)
	if err != nil {
		return nil, err
	}
	k.sealer, k.sealUses = &derived{keyID: id, salt: salt, aead: aead}, 1
	return k.sealer, nil
}

// Open decrypts a value Seal sealed as field. Returns EINTERNAL for a
// malformed value, an unknown or retired key, or a value that does not
// authenticate (altered, or sealed as another field).
func (k *Keys) Open(field string, sealed []byte) (string, error) {
	id, salt, nonce, ct, err := parse(sealed)
	if err != nil {
		return "", fmt.Errorf("opening %s: %w", field, err)
	}
	aead, err := k.openKey(id, salt)
	if err != nil {
		return "", fmt.Errorf("opening %s: %w", field, err)
	}
	plain, err := aead.Open(nil, nonce, ct, []byte(aadPrefix+field))
	if err != nil {
		return "", fmt.Errorf("opening %s: %w", field,
			controller.Errorf(controller.EINTERNAL, "the sealed value does not authenticate under master key %q", id))
	}
	return string(plain), nil
}

// openKey returns the key derived from master key id with salt, cached.
func (k *Keys) openKey(id string, salt []byte) (cipher.AEAD, error) {
	cacheKey := id + "\x00" + string(salt)
	k.mu.Lock()
	aead, ok := k.openCache[cacheKey]
	k.mu.Unlock()
	if ok && !k.kr.Retired(id) {
		return aead, nil
	}
	_, key, err := k.kr.DeriveKey(id, salt, sealInfo)
	if err != nil {
		// Sealed under a key another process added since we loaded the file?
		if rerr := k.kr.Refresh(); rerr == nil {
			_, key, err = k.kr.DeriveKey(id, salt, sealInfo)
		}
		if err != nil {
			return nil, err
		}
	}
	defer clear(key)
	if aead, err = recording.NewGCM(key); err != nil {
		return nil, err
	}
	k.mu.Lock()
	if len(k.openCache) >= openCacheSize {
		clear(k.openCache)
	}
	k.openCache[cacheKey] = aead
	k.mu.Unlock()
	return aead, nil
}

// KeyIDOf returns the master key a sealed value was sealed under.
func KeyIDOf(sealed []byte) (string, error) {
	id, _, _, _, err := parse(sealed)
	return id, err
}

// parse splits a sealed value into its parts.
func parse(b []byte) (id string, salt, nonce, ct []byte, err error) {
	bad := func(why string) error {
		return controller.Errorf(controller.EINTERNAL, "malformed sealed value: %s", why)
	}
	switch {
	case len(b) > maxSealed:
		return "", nil, nil, nil, bad("too long")
	case len(b) < 2:
		return "", nil, nil, nil, bad("too short")
	case b[0] != version:
		return "", nil, nil, nil, bad(fmt.Sprintf("unknown version %d", b[0]))
	}
	n := int(b[1])
	if n == 0 || len(b) < 2+n+saltSize+nonceSize+16 {
		return "", nil, nil, nil, bad("too short")
	}
	rest := b[2+n:]
	return string(b[2 : 2+n]), rest[:saltSize], rest[saltSize : saltSize+nonceSize], rest[saltSize+nonceSize:], nil
}
