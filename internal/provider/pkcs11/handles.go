package pkcs11

import (
	"bytes"
	"errors"
	"sync"

	p11 "github.com/miekg/pkcs11"
)

// objectCache remembers the token object handle of each key (by class and CKA_ID), so that
// an operation does not search the token for its key every time: on SoftHSM2 the search
// (C_FindObjectsInit/C_FindObjects/C_FindObjectsFinal) was ~40% of the CPU of HSM key
// operations. Object handles are valid in every session of the application. Each entry
// records the handle epoch (epoch.go) at which the handle was last seen to name its key:
// keyObject checks it before every use with one C_GetAttributeValue (class and CKA_ID),
// for the operations that create objects themselves; useObject, for sign, decrypt and
// AES encryption, checks it only after an operation during or before which the epoch
// moved (the check on every use was 28-31% of the CPU of those operations on SoftHSM2).
type objectCache struct {
	m sync.Map // objectKey → cachedObject
}

// objectKey names a key object: its class and CKA_ID (idLen bytes).
type objectKey struct {
	class uint
	id    [idLen]byte
}

// cachedObject is a handle and the epoch at which it was last seen to name its key.
type cachedObject struct {
	obj   p11.ObjectHandle
	epoch uint64
}

func keyOf(class uint, id []byte) objectKey {
	k := objectKey{class: class}
	copy(k.id[:], id)
	return k
}

// lookup returns the cached entry of a key, if any.
func (c *objectCache) lookup(class uint, id []byte) (cachedObject, bool) {
	v, ok := c.m.Load(keyOf(class, id))
	if !ok {
		return cachedObject{}, false
	}
	return v.(cachedObject), true
}

// check reports whether obj names the key of class and id now (one C_GetAttributeValue);
// if not, the entry is forgotten.
func (c *objectCache) check(p *Provider, s p11.SessionHandle, class uint, id []byte, obj p11.ObjectHandle) bool {
	attrs, err := p.ctx.GetAttributeValue(s, obj, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, nil), p11.NewAttribute(p11.CKA_ID, nil)})
	if err != nil || len(attrs) != 2 || !bytes.Equal(attrs[1].Value, id) || !sameClass(attrs[0].Value, class) {
		c.forget(class, id)
		return false
	}
	return true
}

// get returns the cached handle of a key if it still names that key, checked now.
func (c *objectCache) get(p *Provider, s p11.SessionHandle, class uint, id []byte) (p11.ObjectHandle, bool) {
	e, ok := c.lookup(class, id)
	if !ok {
		return 0, false
	}
	epoch := handleEpoch.Load()
	if !c.check(p, s, class, id, e.obj) {
		return 0, false
	}
	c.put(class, id, e.obj, epoch)
	return e.obj, true
}

// put records obj as the handle of a key, seen to name it at epoch (read before the
// check or search that found it).
func (c *objectCache) put(class uint, id []byte, obj p11.ObjectHandle, epoch uint64) {
	c.m.Store(keyOf(class, id), cachedObject{obj: obj, epoch: epoch})
}

func (c *objectCache) forget(class uint, id []byte) {
	c.m.Delete(keyOf(class, id))
}

// drop forgets every class of a key (Destroy).
func (c *objectCache) drop(id []byte) {
	for _, class := range []uint{p11.CKO_PRIVATE_KEY, p11.CKO_PUBLIC_KEY, p11.CKO_SECRET_KEY} {
		c.forget(class, id)
	}
}

// sameClass compares a CKA_CLASS value (a CK_ULONG in native byte order) with class.
func sameClass(v []byte, class uint) bool {
	want := p11.NewAttribute(p11.CKA_CLASS, class).Value
	return bytes.Equal(v, want)
}

// handleGone reports whether err says an object handle names nothing (any more).
func handleGone(err error) bool {
	return isRV(err, p11.CKR_OBJECT_HANDLE_INVALID) || isRV(err, p11.CKR_KEY_HANDLE_INVALID)
}

// useObject runs op on the key object of class and id in session s, with the cached
// handle (searched for, and errObjectGone if the key is not in the token, when none is
// cached). If the handle epoch is the one at which the handle was last seen to name the
// key, and is still that after op, nothing could have given the handle to another object
// meanwhile and op's result stands with no token round trip. Otherwise the handle is
// checked after op (one C_GetAttributeValue): if it names the key now it named the key
// throughout, since a handle leaves its object only when the object is destroyed and no
// object is ever made again with a destroyed key's CKA_ID (random, 16 bytes); if not, op's
// result is thrown away and op runs once more on a fresh search. A handle the token
// reports invalid (another application destroyed the key) is searched for again, once.
// op must have no effect on the token beyond its result (sign, decrypt, encrypt).
func (p *Provider) useObject(s p11.SessionHandle, class uint, id []byte, op func(obj p11.ObjectHandle) error) error {
	for attempt := 0; ; attempt++ {
		epoch := handleEpoch.Load()
		e, ok := p.objects.lookup(class, id)
		if !ok {
			obj, found, err := p.findKey(s, class, id)
			if err != nil {
				return err
			}
			if !found {
				return errObjectGone
			}
			e = cachedObject{obj: obj, epoch: epoch}
			p.objects.put(class, id, obj, epoch)
		}
		err := op(e.obj)
		if attempt == 0 && err != nil && handleGone(err) {
			p.objects.forget(class, id)
			continue
		}
		if e.epoch == epoch && handleEpoch.Load() == epoch {
			return err
		}
		now := handleEpoch.Load()
		if p.objects.check(p, s, class, id, e.obj) {
			p.objects.put(class, id, e.obj, now)
			return err
		}
		if attempt > 0 {
			if err == nil {
				err = hsmErr("use key", errHandleMoved)
			}
			return err
		}
	}
}

// errHandleMoved: a key's object handle named another object after an operation twice in
// a row (objects created and destroyed concurrently); the operation's result is not used.
var errHandleMoved = errors.New("the key's object handle changed during the operation")
