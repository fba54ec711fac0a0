package pkcs11

import (
	"bytes"
	"encoding/hex"
	"strconv"
	"sync"

	p11 "github.com/miekg/pkcs11"
)

// objectCache remembers the token object handle of each key (by class and CKA_ID), so that
// an operation does not search the token for its key every time: on SoftHSM2 the search
// (C_FindObjectsInit/C_FindObjects/C_FindObjectsFinal) was ~40% of the CPU of HSM key
// operations. Object handles are valid in every session of the application; a cached
// handle is still checked on each use with one cheap C_GetAttributeValue (class and
// CKA_ID), so a key destroyed or replaced behind Coffer's back is searched for again rather
// than used.
type objectCache struct {
	m sync.Map // string(class:id) → p11.ObjectHandle
}

func cacheKey(class uint, id []byte) string {
	return strconv.FormatUint(uint64(class), 10) + ":" + hex.EncodeToString(id)
}

// get returns the cached handle of a key if it still names that key.
func (c *objectCache) get(p *Provider, s p11.SessionHandle, class uint, id []byte) (p11.ObjectHandle, bool) {
	v, ok := c.m.Load(cacheKey(class, id))
	if !ok {
		return 0, false
	}
	obj := v.(p11.ObjectHandle)
	attrs, err := p.ctx.GetAttributeValue(s, obj, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, nil), p11.NewAttribute(p11.CKA_ID, nil)})
	if err != nil || len(attrs) != 2 || !bytes.Equal(attrs[1].Value, id) || !sameClass(attrs[0].Value, class) {
		c.m.Delete(cacheKey(class, id))
		return 0, false
	}
	return obj, true
}

func (c *objectCache) put(class uint, id []byte, obj p11.ObjectHandle) {
	c.m.Store(cacheKey(class, id), obj)
}

// drop forgets every class of a key (Destroy).
func (c *objectCache) drop(id []byte) {
	for _, class := range []uint{p11.CKO_PRIVATE_KEY, p11.CKO_PUBLIC_KEY, p11.CKO_SECRET_KEY} {
		c.m.Delete(cacheKey(class, id))
	}
}

// sameClass compares a CKA_CLASS value (a CK_ULONG in native byte order) with class.
func sameClass(v []byte, class uint) bool {
	want := p11.NewAttribute(p11.CKA_CLASS, class).Value
	return bytes.Equal(v, want)
}
