package pkcs11

import (
	"sync/atomic"

	p11 "github.com/miekg/pkcs11"
)

// Object handle epochs: when may a cached object handle name another object?
//
// PKCS #11 (v2.40 §2.4, "Objects") promises that a handle a session can use for an object
// keeps naming that object while the session and the object exist. A handle number can
// only come to name another object after its object stops existing, and the library hands
// it out again only from the calls that return handles (C_CreateObject, C_CopyObject,
// C_GenerateKey, C_GenerateKeyPair, C_UnwrapKey, C_DeriveKey, C_FindObjects) or renumbers
// across session and login changes. Handles belong to the application: another process
// destroying a key invalidates our handle but cannot give its number to an object of ours.
//
// So every call of this process's library that can free, hand out or renumber handles
// goes through lib, which bumps handleEpoch before and after it. An operation with a
// handle seen to name its key (class and CKA_ID, objectCache.check) at epoch e, during
// which the epoch stayed e, used that key; otherwise the handle is checked after the
// operation, whose result is thrown away unless the handle still names the key
// (useObject). The epoch is process-wide, like the library's handle space, which every
// Provider of the process shares (one loaded module). A library user outside this package
// in the same process (none in Coffer) would bypass it.
var handleEpoch atomic.Uint64

// lib is the PKCS #11 module with the handle-changing calls bumping handleEpoch before and
// after; every other call passes through.
type lib struct{ *p11.Ctx }

func bump() func() {
	handleEpoch.Add(1)
	return func() { handleEpoch.Add(1) }
}

func (l lib) Initialize(opts ...p11.InitializeOption) error {
	defer bump()()
	return l.Ctx.Initialize(opts...)
}

func (l lib) Finalize() error {
	defer bump()()
	return l.Ctx.Finalize()
}

func (l lib) OpenSession(slot, flags uint) (p11.SessionHandle, error) {
	defer bump()()
	return l.Ctx.OpenSession(slot, flags)
}

func (l lib) CloseSession(s p11.SessionHandle) error {
	defer bump()()
	return l.Ctx.CloseSession(s)
}

func (l lib) CloseAllSessions(slot uint) error {
	defer bump()()
	return l.Ctx.CloseAllSessions(slot)
}

func (l lib) Login(s p11.SessionHandle, user uint, pin string) error {
	defer bump()()
	return l.Ctx.Login(s, user, pin)
}

func (l lib) Logout(s p11.SessionHandle) error {
	defer bump()()
	return l.Ctx.Logout(s)
}

func (l lib) CreateObject(s p11.SessionHandle, t []*p11.Attribute) (p11.ObjectHandle, error) {
	defer bump()()
	return l.Ctx.CreateObject(s, t)
}

func (l lib) CopyObject(s p11.SessionHandle, o p11.ObjectHandle, t []*p11.Attribute) (p11.ObjectHandle, error) {
	defer bump()()
	return l.Ctx.CopyObject(s, o, t)
}

func (l lib) DestroyObject(s p11.SessionHandle, o p11.ObjectHandle) error {
	defer bump()()
	return l.Ctx.DestroyObject(s, o)
}

func (l lib) FindObjectsInit(s p11.SessionHandle, t []*p11.Attribute) error {
	defer bump()()
	return l.Ctx.FindObjectsInit(s, t)
}

func (l lib) FindObjects(s p11.SessionHandle, max int) ([]p11.ObjectHandle, bool, error) {
	defer bump()()
	return l.Ctx.FindObjects(s, max)
}

func (l lib) GenerateKey(s p11.SessionHandle, m []*p11.Mechanism, t []*p11.Attribute) (p11.ObjectHandle, error) {
	defer bump()()
	return l.Ctx.GenerateKey(s, m, t)
}

func (l lib) GenerateKeyPair(s p11.SessionHandle, m []*p11.Mechanism, pub, priv []*p11.Attribute) (p11.ObjectHandle, p11.ObjectHandle, error) {
	defer bump()()
	return l.Ctx.GenerateKeyPair(s, m, pub, priv)
}

func (l lib) UnwrapKey(s p11.SessionHandle, m []*p11.Mechanism, key p11.ObjectHandle, wrapped []byte, t []*p11.Attribute) (p11.ObjectHandle, error) {
	defer bump()()
	return l.Ctx.UnwrapKey(s, m, key, wrapped, t)
}

func (l lib) DeriveKey(s p11.SessionHandle, m []*p11.Mechanism, base p11.ObjectHandle, t []*p11.Attribute) (p11.ObjectHandle, error) {
	defer bump()()
	return l.Ctx.DeriveKey(s, m, base, t)
}
