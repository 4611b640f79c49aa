// Package recording encrypts call recordings as soon as the switch finishes
// writing them, serves them decrypted, rotates the master keys that wrap
// their data keys and crypto-shreds them past retention.
//
// Each recording is sealed under its own random 32-byte data key (see Seal);
// the data key is wrapped by a master key from a Keyring file that never
// enters the database, and the wrapped key is stored with the recording's
// metadata. Destroying a wrapped key (ShredRecording) or the master key that
// wrapped it (Keyring.Retire) makes the ciphertext unreadable for good.
package recording

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callgate/callgate/controller"
)

// KeySize is the size in bytes of master keys and data keys (AES-256).
const KeySize = 32

// maxKeyringFile bounds how much of a keyring file LoadKeyring reads.
const maxKeyringFile = 1 << 20

// wrapAADPrefix separates data-key wrapping from any other use of a master key.
const wrapAADPrefix = "callgate/recording-data-key/v1\x00"

// Keyring holds the master keys that wrap recording data keys. It is loaded
// from and saved to one JSON file (mode 0600):
//
//	{"current": "k2", "keys": [{"id": "k1", "key": "<base64 32 bytes>",
//	  "created_at": "...", "retired_at": null}, ...]}
//
// A retired key has an empty "key": its material was destroyed, and every
// data key it wrapped is gone with it. A Keyring is safe for concurrent use.
// Its String and GoString never reveal key material.
type Keyring struct {
	mu      sync.Mutex
	path    string
	index   []byte    // the blind-index key (personal data lookups); nil if the file has none
	macs    sync.Pool // hash.Hash keyed with index, ready for use
	current string
	keys    []*masterKey // in file order; pointers so that printing a Keyring shows addresses, not bytes
	stamp   fileStamp    // of the file as last loaded or saved, for Refresh
}

// fileStamp identifies a version of the keyring file.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) fileStamp {
	info, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{mod: info.ModTime(), size: info.Size()}
}

// Refresh reloads the keyring if its file changed since it was loaded or
// saved (another process ran a rotation), so a running controller never
// wraps a data key with a key another process has retired. A file that no
// longer loads is an error and the keys in memory are kept.
func (kr *Keyring) Refresh() error {
	if kr.path == "" {
		return nil
	}
	kr.mu.Lock()
	same := stampOf(kr.path) == kr.stamp
	kr.mu.Unlock()
	if same {
		return nil
	}
	fresh, err := LoadKeyring(kr.path)
	if err != nil {
		return fmt.Errorf("reloading the changed recording keyring: %w", err)
	}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	for _, k := range kr.keys {
		clear(k.key)
	}
	if kr.index != nil {
		// A running process keeps its index key: another one would make
		// every stored number unfindable.
		if !bytes.Equal(fresh.index, kr.index) {
			clear(fresh.index)
		}
		fresh.index = kr.index
	}
	kr.current, kr.keys, kr.stamp, kr.index = fresh.current, fresh.keys, fresh.stamp, fresh.index
	return nil
}

// masterKey is one key of a Keyring; key is nil once it has been retired.
type masterKey struct {
	id        string
	key       []byte
	createdAt time.Time
	retiredAt *time.Time
}

func (k *masterKey) String() string {
	if k.retiredAt != nil {
		return k.id + "(retired)"
	}
	return k.id
}

// GoString keeps %#v from printing the key.
func (k *masterKey) GoString() string { return "recording.masterKey{" + k.String() + "}" }

// keyringFile is the JSON form of a Keyring.
type keyringFile struct {
	Current string         `json:"current"`
	Keys    []keyringEntry `json:"keys"`
	// IndexKey keys the blind index of personal data (HMAC-SHA256 of a
	// phone number, how stored numbers are looked up). Unlike the master
	// keys it is never rotated: every controller of a database needs the
	// same one. Base64 of 32 bytes; absent in keyrings made before it.
	IndexKey string `json:"index_key,omitempty"`
}

type keyringEntry struct {
	ID        string     `json:"id"`
	Key       string     `json:"key"`
	CreatedAt time.Time  `json:"created_at"`
	RetiredAt *time.Time `json:"retired_at"`
}

// LoadKeyring reads the keyring file at path. It returns an error for a
// missing or unreadable file, a file readable or writable by group or others
// (chmod 600 it), malformed JSON, a key that is not 32 bytes of base64, a
// duplicate key ID, or a current key that is missing, retired or destroyed.
func LoadKeyring(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("loading recording keyring: %s does not exist (create one with GenerateKeyring)", path)
	} else if err != nil {
		return nil, fmt.Errorf("loading recording keyring: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("loading recording keyring %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("loading recording keyring: %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("loading recording keyring: %s has mode %04o and is open to group or others; run chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyringFile+1))
	if err != nil {
		return nil, fmt.Errorf("loading recording keyring %s: %w", path, err)
	}
	defer clear(data)
	if len(data) > maxKeyringFile {
		return nil, fmt.Errorf("loading recording keyring: %s is larger than %d bytes", path, maxKeyringFile)
	}
	kr, err := parseKeyring(data)
	if err != nil {
		return nil, fmt.Errorf("loading recording keyring %s: %w", path, err)
	}
	kr.path = path
	kr.stamp = fileStamp{mod: info.ModTime(), size: info.Size()}
	return kr, nil
}

func parseKeyring(data []byte) (*Keyring, error) {
	var file keyringFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("bad JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("bad JSON: trailing data after the keyring object")
	}
	if len(file.Keys) == 0 {
		return nil, errors.New("no keys")
	}
	kr := &Keyring{current: file.Current}
	if file.IndexKey != "" {
		raw, err := base64.StdEncoding.DecodeString(file.IndexKey)
		if err != nil || len(raw) != KeySize {
			clear(raw)
			return nil, fmt.Errorf("index_key: must be %d bytes in standard base64", KeySize)
		}
		kr.index = raw
	}
	for i := range file.Keys {
		e := &file.Keys[i]
		if !validKeyID(e.ID) {
			return nil, fmt.Errorf("key #%d: id %q must be 1-64 characters of [A-Za-z0-9._-]", i+1, e.ID)
		}
		if kr.find(e.ID) != nil {
			return nil, fmt.Errorf("duplicate key id %q", e.ID)
		}
		k := &masterKey{id: e.ID, createdAt: e.CreatedAt, retiredAt: e.RetiredAt}
		switch {
		case e.Key != "":
			raw, err := base64.StdEncoding.DecodeString(e.Key)
			if err != nil || len(raw) != KeySize {
				clear(raw)
				return nil, fmt.Errorf("key %q: must be %d bytes in standard base64", e.ID, KeySize)
			}
			k.key = raw
		case e.RetiredAt == nil:
			return nil, fmt.Errorf("key %q: has no material but is not retired", e.ID)
		}
		kr.keys = append(kr.keys, k)
	}
	cur := kr.find(file.Current)
	switch {
	case file.Current == "":
		return nil, errors.New(`"current" is not set`)
	case cur == nil:
		return nil, fmt.Errorf("current key %q not found", file.Current)
	case cur.retiredAt != nil || cur.key == nil:
		return nil, fmt.Errorf("current key %q is retired", file.Current)
	}
	return kr, nil
}

// GenerateKeyring creates a new keyring file at path (mode 0600) holding one
// fresh key, and returns it. It refuses to overwrite an existing file.
func GenerateKeyring(path string) (*Keyring, error) {
	kr := &Keyring{path: path}
	kr.current = kr.addKey()
	kr.index = make([]byte, KeySize)
	rand.Read(kr.index)
	data, err := kr.marshal()
	if err != nil {
		return nil, err
	}
	defer clear(data)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("generating recording keyring: %s already exists; refusing to overwrite it", path)
	} else if err != nil {
		return nil, fmt.Errorf("generating recording keyring: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("generating recording keyring %s: %w", path, err)
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("generating recording keyring %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("generating recording keyring %s: %w", path, err)
	}
	return kr, nil
}

// Path returns the file the keyring is saved to.
func (kr *Keyring) Path() string { return kr.path }

// CurrentID returns the ID of the key Wrap uses.
func (kr *Keyring) CurrentID() string {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	return kr.current
}

// IDs returns the IDs of all keys, retired ones included, in file order.
func (kr *Keyring) IDs() []string {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	ids := make([]string, len(kr.keys))
	for i, k := range kr.keys {
		ids[i] = k.id
	}
	return ids
}

// Retired reports whether key id is retired (its material destroyed).
// Returns false for an unknown key.
func (kr *Keyring) Retired(id string) bool {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	k := kr.find(id)
	return k != nil && k.retiredAt != nil
}

// String describes the keyring without key material.
func (kr *Keyring) String() string {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	names := make([]string, len(kr.keys))
	for i, k := range kr.keys {
		names[i] = k.String()
	}
	return fmt.Sprintf("Keyring(%s, current=%s, keys=[%s])", kr.path, kr.current, strings.Join(names, " "))
}

// GoString keeps %#v from printing key material.
func (kr *Keyring) GoString() string { return "&recording." + kr.String() }

// Wrap encrypts dataKey under the current master key (AES-256-GCM, random
// nonce prepended to the result), bound to aad (the recording ID): it only
// unwraps with the same aad. Returns the ID of the key used.
func (kr *Keyring) Wrap(dataKey []byte, aad string) (keyID string, wrapped []byte, err error) {
	if len(dataKey) != KeySize {
		return "", nil, controller.Errorf(controller.EINVALID, "data key must be %d bytes, not %d", KeySize, len(dataKey))
	}
	kr.mu.Lock()
	k := kr.find(kr.current)
	var aead cipher.AEAD
	if k != nil && k.key != nil {
		aead, err = NewGCM(k.key)
	}
	kr.mu.Unlock()
	if k == nil || k.key == nil {
		return "", nil, controller.Errorf(controller.EINTERNAL, "current master key %q has no material", kr.CurrentID())
	}
	if err != nil {
		return "", nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(dataKey)+aead.Overhead())
	rand.Read(nonce)
	return k.id, aead.Seal(nonce, nonce, dataKey, []byte(wrapAADPrefix+aad)), nil
}

// Unwrap decrypts a data key wrapped by Wrap with master key keyID and the
// same aad. It returns an error if the key is unknown, was retired (its
// material destroyed: the data key is unrecoverable), or if wrapped does not
// authenticate.
func (kr *Keyring) Unwrap(keyID string, wrapped []byte, aad string) ([]byte, error) {
	kr.mu.Lock()
	k := kr.find(keyID)
	var aead cipher.AEAD
	var err error
	if k != nil && k.key != nil {
		aead, err = NewGCM(k.key)
	}
	kr.mu.Unlock()
	switch {
	case k == nil:
		return nil, controller.Errorf(controller.EINTERNAL, "master key %q is not in the recording keyring", keyID)
	case k.key == nil:
		return nil, controller.Errorf(controller.EINTERNAL, "master key %q was retired and its material destroyed; data keys it wrapped cannot be recovered", keyID)
	case err != nil:
		return nil, err
	case len(wrapped) < aead.NonceSize()+aead.Overhead():
		return nil, controller.Errorf(controller.EINTERNAL, "wrapped data key is too short")
	}
	n := aead.NonceSize()
	dk, err := aead.Open(nil, wrapped[:n], wrapped[n:], []byte(wrapAADPrefix+aad))
	if err != nil {
		return nil, controller.Errorf(controller.EINTERNAL, "wrapped data key does not authenticate under master key %q", keyID)
	}
	return dk, nil
}

// NewMemoryKeyring returns a keyring with one fresh master key and an index
// key that lives only in memory (it cannot be saved), for tests and tools.
func NewMemoryKeyring() *Keyring {
	kr := &Keyring{index: make([]byte, KeySize)}
	rand.Read(kr.index)
	kr.current = kr.addKey()
	return kr
}

// HasIndexKey reports whether the keyring holds a blind-index key.
func (kr *Keyring) HasIndexKey() bool {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	return kr.index != nil
}

// AddIndexKey gives a keyring made before index keys one, in memory until
// Save, and reports whether it did (false: it had one, kept as it is).
func (kr *Keyring) AddIndexKey() bool {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if kr.index != nil {
		return false
	}
	kr.index = make([]byte, KeySize)
	rand.Read(kr.index)
	return true
}

// IndexMAC returns HMAC-SHA256 under the index key of domain, a zero byte
// and msg. Returns EINTERNAL if the keyring has no index key.
func (kr *Keyring) IndexMAC(domain string, msg []byte) ([]byte, error) {
	m, err := kr.indexMAC()
	if err != nil {
		return nil, err
	}
	m.Write([]byte(domain))
	m.Write([]byte{0})
	m.Write(msg)
	sum := m.Sum(nil)
	m.Reset()
	kr.macs.Put(m)
	return sum, nil
}

// indexMAC returns an HMAC keyed with the index key, reset, from the pool
// (keying one costs more than the MAC of a phone number).
func (kr *Keyring) indexMAC() (hash.Hash, error) {
	if m, ok := kr.macs.Get().(hash.Hash); ok {
		return m, nil
	}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if kr.index == nil {
		return nil, controller.Errorf(controller.EINTERNAL, "the keyring has no index key: run `callgate keys init --file %s` to add one", kr.path)
	}
	return hmac.New(sha256.New, kr.index), nil
}

// DeriveKey returns a 32-byte key derived (HKDF-SHA256) from master key id
// — the current one if id is empty — with salt and info, and the ID of the
// master key used. Returns EINTERNAL for an unknown or retired key.
func (kr *Keyring) DeriveKey(id string, salt []byte, info string) (string, []byte, error) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if id == "" {
		id = kr.current
	}
	k := kr.find(id)
	switch {
	case k == nil:
		return id, nil, controller.Errorf(controller.EINTERNAL, "master key %q is not in the keyring", id)
	case k.key == nil:
		return id, nil, controller.Errorf(controller.EINTERNAL, "master key %q was retired and its material destroyed", id)
	}
	key, err := hkdf.Key(sha256.New, k.key, salt, info, KeySize)
	if err != nil {
		return id, nil, controller.Errorf(controller.EINTERNAL, "deriving a key: %v", err)
	}
	return id, key, nil
}

// Rotate adds a fresh key, makes it current and returns its ID. The change
// is in memory only until Save.
func (kr *Keyring) Rotate() (newID string) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	kr.current = kr.addKey()
	return kr.current
}

// Retire marks key id retired and destroys its material, in memory until
// Save: data keys it wrapped can no longer be unwrapped. Retiring a retired
// key does nothing. Returns ENOTFOUND for an unknown key and ECONFLICT for
// the current key.
func (kr *Keyring) Retire(id string) error {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	k := kr.find(id)
	switch {
	case k == nil:
		return controller.Errorf(controller.ENOTFOUND, "master key %q is not in the recording keyring", id)
	case id == kr.current:
		return controller.Errorf(controller.ECONFLICT, "master key %q is current and cannot be retired; rotate first", id)
	case k.retiredAt != nil && k.key == nil:
		return nil
	}
	clear(k.key)
	k.key = nil
	if k.retiredAt == nil {
		now := time.Now().UTC()
		k.retiredAt = &now
	}
	return nil
}

// Save writes the keyring to its file atomically (a temporary file in the
// same directory, fsync, rename, fsync of the directory), with mode 0600.
func (kr *Keyring) Save() error {
	if kr.path == "" {
		return controller.Errorf(controller.EINTERNAL, "recording keyring has no file to save to")
	}
	kr.mu.Lock()
	data, err := kr.marshal()
	kr.mu.Unlock()
	if err != nil {
		return err
	}
	defer clear(data)
	if err := writeFileAtomic(kr.path, data); err != nil {
		return fmt.Errorf("saving recording keyring: %w", err)
	}
	kr.mu.Lock()
	kr.stamp = stampOf(kr.path)
	kr.mu.Unlock()
	return nil
}

// marshal returns the JSON form of the keyring; the caller holds kr.mu (or
// owns kr) and clears the result after use.
func (kr *Keyring) marshal() ([]byte, error) {
	file := keyringFile{Current: kr.current, Keys: make([]keyringEntry, len(kr.keys))}
	if kr.index != nil {
		file.IndexKey = base64.StdEncoding.EncodeToString(kr.index)
	}
	for i, k := range kr.keys {
		e := keyringEntry{ID: k.id, CreatedAt: k.createdAt, RetiredAt: k.retiredAt}
		if k.key != nil {
			e.Key = base64.StdEncoding.EncodeToString(k.key)
		}
		file.Keys[i] = e
	}
	data, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding recording keyring: %w", err)
	}
	return append(data, '\n'), nil
}

// addKey appends a fresh key with an unused ID "k<n>" and returns the ID;
// the caller holds kr.mu (or owns kr).
func (kr *Keyring) addKey() string {
	n := len(kr.keys) + 1
	for _, k := range kr.keys {
		if v, err := strconv.Atoi(strings.TrimPrefix(k.id, "k")); err == nil && strings.HasPrefix(k.id, "k") && v >= n {
			n = v + 1
		}
	}
	id := "k" + strconv.Itoa(n)
	for kr.find(id) != nil {
		n++
		id = "k" + strconv.Itoa(n)
	}
	key := make([]byte, KeySize)
	rand.Read(key)
	kr.keys = append(kr.keys, &masterKey{id: id, key: key, createdAt: time.Now().UTC()})
	return id
}

func (kr *Keyring) find(id string) *masterKey {
	i := slices.IndexFunc(kr.keys, func(k *masterKey) bool { return k.id == id })
	if i < 0 {
		return nil
	}
	return kr.keys[i]
}

func validKeyID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !isSafeByte(c) || c == '/' {
			return false
		}
	}
	return true
}

// isSafeByte reports whether c is one of [A-Za-z0-9._/-].
func isSafeByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-' || c == '/'
}

// NewGCM returns AES-256-GCM (or AES-128/192 for shorter keys) with key,
// its errors as EINTERNAL.
func NewGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, controller.Errorf(controller.EINTERNAL, "creating AES cipher: %v", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, controller.Errorf(controller.EINTERNAL, "creating AES-GCM: %v", err)
	}
	return aead, nil
}

// writeFileAtomic replaces path with data: temporary file in the same
// directory (mode 0600), fsync, rename, fsync of the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

// syncDir fsyncs a directory so that a rename or removal in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil && runtime.GOOS == "windows" {
		return nil // directories cannot be fsynced there
	}
	return err
}

// undoRotate removes key newID added by Rotate and makes prev current again
// (used when the rotated keyring could not be saved).
func (kr *Keyring) undoRotate(prev, newID string) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if k := kr.find(newID); k != nil {
		clear(k.key)
	}
	kr.keys = slices.DeleteFunc(kr.keys, func(k *masterKey) bool { return k.id == newID })
	kr.current = prev
}
