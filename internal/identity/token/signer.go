package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coffer-kms/coffer/internal/storage"
)

// Signer lifetimes.
const (
	// DefaultLifetime is the token lifetime when NewSigner is given 0.
	DefaultLifetime = time.Hour
	// MaxLifetime is the longest token lifetime a Signer issues (SECURITY-NOTES A14).
	MaxLifetime = time.Hour
	// RetireSkew is how long past its last token's expiry a retired key stays published, to
	// cover validators' clock leeway (at most MaxLeeway).
	RetireSkew = 5 * time.Minute
)

// keyFileVersion is the version of the persisted key set document.
const keyFileVersion = 1

// keyFile is the key set as persisted (through the barrier) at the Signer's path.
type keyFile struct {
	Version int         `json:"version"`
	Keys    []keyRecord `json:"keys"`
}

// keyRecord is one persisted key. The current key has PKCS8 and no Retired; a retired key
// keeps only its public key (SPKI), so it can be published but never sign again.
type keyRecord struct {
	KID     string    `json:"kid"`
	PKCS8   []byte    `json:"pkcs8,omitempty"`
	SPKI    []byte    `json:"spki"`
	Created time.Time `json:"created"`
	Retired time.Time `json:"retired,omitzero"`
}

// signingKey is a loaded keyRecord.
type signingKey struct {
	rec    keyRecord
	priv   *ecdsa.PrivateKey // nil once retired
	key    Key
	header string // encoded protected header, current key only
}

// Signer issues ES256 access tokens and publishes its public keys. It is safe for concurrent
// use. Keys are rotated with Rotate; a retired key stays published until every token it
// signed has expired (retirement + lifetime + RetireSkew).
type Signer struct {
	store    storage.Backend
	path     string
	now      func() time.Time
	lifetime time.Duration

	mu   sync.RWMutex
	keys []*signingKey // keys[0] is current; the rest are retired, newest first
}

// NewSigner loads the key set stored at path in store, or creates one with a fresh P-256 key
// if there is none. store is meant to be the barrier, which encrypts the private key. now is
// the clock (nil means time.Now); lifetime is the longest token lifetime, 0 meaning
// DefaultLifetime and more than MaxLifetime refused. A stored key set that is malformed,
// names a key whose kid does not match it, or has no current key is an error: NewSigner
// never replaces keys it cannot read.
func NewSigner(store storage.Backend, path string, now func() time.Time, lifetime time.Duration) (*Signer, error) {
	switch {
	case store == nil || path == "":
		return nil, errors.New("token signer: store and path are required")
	case lifetime < 0 || lifetime > MaxLifetime:
		return nil, fmt.Errorf("token signer: lifetime %v not in (0, %v]", lifetime, MaxLifetime)
	case lifetime == 0:
		lifetime = DefaultLifetime
	}
	if now == nil {
		now = time.Now
	}
	s := &Signer{store: store, path: path, now: now, lifetime: lifetime}
	ctx := context.Background()
	b, err := store.Get(ctx, path)
	if errors.Is(err, storage.ErrNotFound) {
		var doc []byte
		doc, err = newKeyFile(now())
		if err != nil {
			return nil, err
		}
		// Create only if still absent, so two processes starting at once agree on one key.
		err = store.Txn(ctx, func(tx storage.Tx) error {
			cur, err := tx.Get(ctx, path)
			switch {
			case err == nil:
				b = cur
				return nil
			case errors.Is(err, storage.ErrNotFound):
				b = doc
				return tx.Put(ctx, path, doc)
			}
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("token signer: load keys: %w", err)
	}
	if s.keys, err = decodeKeyFile(b); err != nil {
		return nil, fmt.Errorf("token signer: keys at %q: %w", path, err)
	}
	return s, nil
}

// newKeyFile returns a persisted key set holding one fresh key.
func newKeyFile(now time.Time) ([]byte, error) {
	fresh, err := newRecord(now)
	if err != nil {
		return nil, err
	}
	return json.Marshal(keyFile{Version: keyFileVersion, Keys: []keyRecord{fresh}})
}

// newRecord generates a P-256 key.
func newRecord(created time.Time) (keyRecord, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keyRecord{}, fmt.Errorf("token signer: generate key: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return keyRecord{}, err
	}
	spki, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return keyRecord{}, err
	}
	return keyRecord{KID: kidOf(spki), PKCS8: pkcs8, SPKI: spki, Created: created.UTC()}, nil
}

// kidOf is the key id: base64url of the first 16 bytes of SHA-256 over the SPKI.
func kidOf(spki []byte) string {
	sum := sha256.Sum256(spki)
	return b64.EncodeToString(sum[:16])
}

func decodeKeyFile(b []byte) ([]*signingKey, error) {
	var f keyFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	if f.Version != keyFileVersion {
		return nil, fmt.Errorf("unsupported version %d", f.Version)
	}
	if len(f.Keys) == 0 || !f.Keys[0].Retired.IsZero() {
		return nil, errors.New("no current key")
	}
	keys := make([]*signingKey, 0, len(f.Keys))
	for i, rec := range f.Keys {
		k, err := loadRecord(rec, i == 0)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func loadRecord(rec keyRecord, current bool) (*signingKey, error) {
	if kidOf(rec.SPKI) != rec.KID {
		return nil, errors.New("kid does not match the public key")
	}
	p, err := x509.ParsePKIXPublicKey(rec.SPKI)
	if err != nil {
		return nil, err
	}
	pub, ok := p.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("not a P-256 key")
	}
	k := &signingKey{rec: rec, key: Key{KID: rec.KID, Public: pub, Algs: []string{"ES256"}}}
	if !current {
		if rec.Retired.IsZero() || rec.PKCS8 != nil {
			return nil, errors.New("a key other than the first is not retired")
		}
		return k, nil
	}
	sk, err := x509.ParsePKCS8PrivateKey(rec.PKCS8)
	if err != nil {
		return nil, err
	}
	priv, ok := sk.(*ecdsa.PrivateKey)
	if !ok || !priv.PublicKey.Equal(pub) {
		return nil, errors.New("private key does not match the public key")
	}
	k.priv = priv
	k.header = b64.EncodeToString([]byte(`{"alg":"ES256","kid":"` + rec.KID + `","typ":"JWT"}`))
	return k, nil
}

// Sign returns a signed compact JWS for c. It fills iat and nbf with now, exp with now plus
// the lifetime, jti with 16 random bytes and ver with "2.0" where c leaves them zero. It
// refuses claims without iss or aud, and an exp later than now plus the lifetime, because
// the key that signed a token is published only that long after its retirement.
func (s *Signer) Sign(c Claims) (string, error) {
	now := s.now()
	if c.Issuer == "" || len(c.Audience) == 0 {
		return "", errors.New("token signer: iss and aud are required")
	}
	latest := now.Add(s.lifetime).Unix()
	if c.IssuedAt == 0 {
		c.IssuedAt = now.Unix()
	}
	if c.NotBefore == 0 {
		c.NotBefore = now.Unix()
	}
	if c.ExpiresAt == 0 {
		c.ExpiresAt = latest
	}
	if c.ExpiresAt > latest {
		return "", fmt.Errorf("token signer: exp is more than %v away", s.lifetime)
	}
	if c.ID == "" {
		var id [16]byte
		if _, err := rand.Read(id[:]); err != nil {
			return "", err
		}
		c.ID = b64.EncodeToString(id[:])
	}
	if c.Version == "" {
		c.Version = "2.0"
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	return s.signPayload(payload)
}

// signPayload signs payload (a JSON object) with the current key as a compact JWS.
func (s *Signer) signPayload(payload []byte) (string, error) {
	s.mu.RLock()
	cur := s.keys[0]
	s.mu.RUnlock()
	input := cur.header + "." + b64.EncodeToString(payload)
	d := sha256.Sum256([]byte(input))
	r, sv, err := ecdsa.Sign(rand.Reader, cur.priv, d[:])
	if err != nil {
		return "", fmt.Errorf("token signer: %w", err)
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	return input + "." + b64.EncodeToString(sig[:]), nil
}

// published reports whether k's public key must still be offered at now.
func (s *Signer) published(k *signingKey, now time.Time) bool {
	return k.rec.Retired.IsZero() || !now.After(k.rec.Retired.Add(s.lifetime+RetireSkew))
}

// Rotate makes a fresh key current, retires the current one (keeping only its public key)
// and drops keys whose publication period is over. It persists the new set before using it:
// if the store fails, nothing changes.
func (s *Signer) Rotate() error {
	now := s.now()
	fresh, err := newRecord(now)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	recs := []keyRecord{fresh}
	for i, k := range s.keys {
		rec := k.rec
		if i == 0 {
			rec.PKCS8, rec.Retired = nil, now.UTC()
		}
		recs = append(recs, rec)
	}
	return s.persistLocked(recs, now)
}

// CurrentCreated returns when the current signing key was made (to schedule rotation).
func (s *Signer) CurrentCreated() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keys[0].rec.Created
}

// Prune drops retired keys whose publication period is over from the stored key set. JWKS
// and KeySet already leave them out; Prune also removes them from storage.
func (s *Signer) Prune() error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	recs := make([]keyRecord, 0, len(s.keys))
	for _, k := range s.keys {
		recs = append(recs, k.rec)
	}
	if len(recs) == len(s.publishedLocked(now)) {
		return nil
	}
	return s.persistLocked(recs, now)
}

// persistLocked stores recs without the keys unpublished at now, then loads them.
func (s *Signer) persistLocked(recs []keyRecord, now time.Time) error {
	kept := recs[:0]
	for _, rec := range recs {
		if s.published(&signingKey{rec: rec}, now) {
			kept = append(kept, rec)
		}
	}
	b, err := json.Marshal(keyFile{Version: keyFileVersion, Keys: kept})
	if err != nil {
		return err
	}
	keys, err := decodeKeyFile(b)
	if err != nil {
		return fmt.Errorf("token signer: %w", err)
	}
	if err := s.store.Put(context.Background(), s.path, b); err != nil {
		return fmt.Errorf("token signer: store keys: %w", err)
	}
	s.keys = keys
	return nil
}

func (s *Signer) publishedLocked(now time.Time) []*signingKey {
	out := make([]*signingKey, 0, len(s.keys))
	for _, k := range s.keys {
		if s.published(k, now) {
			out = append(out, k)
		}
	}
	return out
}

// JWKS returns the published public keys as a JWKS document: the current key first, then
// retired keys still within their publication period.
func (s *Signer) JWKS() ([]byte, error) {
	now := s.now()
	s.mu.RLock()
	keys := s.publishedLocked(now)
	s.mu.RUnlock()
	doc := struct {
		Keys []jwkJSON `json:"keys"`
	}{Keys: make([]jwkJSON, 0, len(keys))}
	for _, k := range keys {
		j, err := ecJWK(k.rec.KID, k.key.Public.(*ecdsa.PublicKey))
		if err != nil {
			return nil, err
		}
		doc.Keys = append(doc.Keys, j)
	}
	return json.Marshal(doc)
}

// KeySet returns a live view of the published keys, for validating the Signer's own tokens:
// it follows rotations and stops finding a retired key when its publication period ends.
func (s *Signer) KeySet() KeySet { return signerKeySet{s} }

type signerKeySet struct{ s *Signer }

// Lookup returns the published key with id kid.
func (v signerKeySet) Lookup(kid string) (Key, bool) {
	now := v.s.now()
	v.s.mu.RLock()
	defer v.s.mu.RUnlock()
	for _, k := range v.s.keys {
		if k.rec.KID == kid && v.s.published(k, now) {
			return k.key, true
		}
	}
	return Key{}, false
}
