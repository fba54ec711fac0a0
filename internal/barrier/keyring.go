package barrier

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Term is one data-encryption key of the keyring. Terms are numbered from 1; the active term
// seals new records and every term ever created still opens the records it sealed.
type Term struct {
	ID      uint32    `json:"term"`
	Key     []byte    `json:"key"`
	Created time.Time `json:"created"`
}

// keyringDoc is the persisted (and root-key sealed) form of the keyring.
type keyringDoc struct {
	Version int    `json:"version"`
	Active  uint32 `json:"active"`
	Terms   []Term `json:"terms"`
	// StoreState says the store keeps a store state record (state.go): its absence is then
	// tampering, not a store written before store states. Older builds ignore the member.
	StoreState bool `json:"storeState,omitempty"`
}

// keyring is the in-memory keyring: one AEAD per term, indexed by term (terms are numbered
// 1..n without gaps, so a slice lookup replaces a map on the hot path).
type keyring struct {
	active uint32
	terms  []Term
	aeads  []cipher.AEAD // aeads[term]; aeads[0] is nil
	// hashKey keys the store hash (state.go); derived from term 1, so rotation keeps it.
	hashKey []byte
	// storeState mirrors keyringDoc.StoreState.
	storeState bool
	// count counts the active term's seals (sealcount.go); each keyring has its own.
	count *sealCount
}

// aead returns the AEAD of term, or nil if the keyring does not have it.
func (kr *keyring) aead(term uint32) cipher.AEAD {
	if uint64(term) >= uint64(len(kr.aeads)) {
		return nil
	}
	return kr.aeads[term]
}

// newKeyring returns a keyring with a single fresh term 1.
func newKeyring(now time.Time) (*keyring, error) {
	kr := &keyring{aeads: []cipher.AEAD{nil}, storeState: true, count: &sealCount{}}
	if err := kr.addTerm(now); err != nil {
		return nil, err
	}
	return kr, nil
}

// addTerm creates the next term and makes it active.
func (kr *keyring) addTerm(now time.Time) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("keyring: read random key: %w", err)
	}
	id := kr.active + 1
	aead, err := newAEAD(key)
	if err != nil {
		return err
	}
	kr.terms = append(kr.terms, Term{ID: id, Key: key, Created: now.UTC()})
	kr.aeads = append(kr.aeads, aead)
	kr.active = id
	if id == 1 {
		if kr.hashKey, err = deriveHashKey(key); err != nil {
			return fmt.Errorf("keyring: derive the store hash key: %w", err)
		}
	}
	return nil
}

// rotated returns a copy of kr with one more term; kr itself is unchanged, so a failed
// persist leaves the live keyring as it was.
func (kr *keyring) rotated(now time.Time) (*keyring, error) {
	next := &keyring{active: kr.active, terms: append([]Term(nil), kr.terms...), aeads: append([]cipher.AEAD(nil), kr.aeads...), hashKey: kr.hashKey, storeState: kr.storeState, count: &sealCount{}}
	if err := next.addTerm(now); err != nil {
		return nil, err
	}
	return next, nil
}

func (kr *keyring) marshal() ([]byte, error) {
	return json.Marshal(keyringDoc{Version: 1, Active: kr.active, Terms: kr.terms, StoreState: kr.storeState})
}

// parseKeyring checks and loads a decrypted keyring document.
func parseKeyring(b []byte) (*keyring, error) {
	var doc keyringDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("keyring document is not valid JSON: %w", err)
	}
	if doc.Version != 1 {
		return nil, fmt.Errorf("keyring document has unknown version %d", doc.Version)
	}
	if len(doc.Terms) == 0 {
		return nil, errors.New("keyring document has no terms")
	}
	kr := &keyring{active: doc.Active, terms: doc.Terms, aeads: []cipher.AEAD{nil}, storeState: doc.StoreState, count: &sealCount{}}
	for i, t := range doc.Terms {
		if t.ID != uint32(i+1) {
			return nil, fmt.Errorf("keyring document lists term %d where term %d belongs", t.ID, i+1)
		}
		aead, err := newAEAD(t.Key)
		if err != nil {
			return nil, fmt.Errorf("keyring term %d: %w", t.ID, err)
		}
		kr.aeads = append(kr.aeads, aead)
	}
	if doc.Active != uint32(len(doc.Terms)) {
		return nil, fmt.Errorf("keyring document's active term %d is not its newest term %d", doc.Active, len(doc.Terms))
	}
	var err error
	if kr.hashKey, err = deriveHashKey(doc.Terms[0].Key); err != nil {
		return nil, fmt.Errorf("keyring: derive the store hash key: %w", err)
	}
	return kr, nil
}

// wipe overwrites the raw key bytes held by kr (best effort: the AES key schedules inside
// the AEADs stay until collected). Requests already holding kr may still finish with it.
func (kr *keyring) wipe() {
	for _, t := range kr.terms {
		clear(t.Key)
	}
	clear(kr.hashKey)
}
