package provider

import "context"

// DomainWrapper is implemented by providers that let the keys of managed HSM pools leave
// their key store only wrapped, inside the store, by the pool's security-domain wrapping
// key (docs/HSM.md): an AES-256 key derived from the pool's domain key, which the
// provider keeps in the store usable only for wrap and unwrap. A key backup carries such
// wrapped keys, and a restore into any pool holding the same security domain unwraps them
// into that pool's store, wherever the key was made.
//
// store names the pool as KeySpec.Store does ("managedhsms/<pool>"); id is the wrapping
// key's identifier (derived from the domain key, not secret), value the key itself.
type DomainWrapper interface {
	// InstallDomainKey makes the wrapping key present in store's key store and checks that
	// the object found there holds value. It is idempotent. A store that cannot hold a
	// trusted wrapping key (no PKCS#11 security officer PIN configured, a software
	// provider) is ErrUnsupported.
	InstallDomainKey(ctx context.Context, store string, id, value []byte) error
	// WrapForDomain wraps the key of handle, inside its key store, with the installed
	// wrapping key id. A key that may not leave its store (made before the store held
	// security-domain keys, or in a vault) is ErrNotExportable; a software key is
	// ErrUnsupported.
	WrapForDomain(ctx context.Context, handle, id []byte) (DomainWrapped, error)
	// UnwrapForDomain unwraps w, inside store's key store, with the installed wrapping key
	// id, into a new key of the kind handle (the key's handle from the backup, possibly of
	// another store) describes, and checks the result is that key (its public key, its
	// size). The new key is protected as a key generated in store is.
	UnwrapForDomain(ctx context.Context, store string, id, handle []byte, w DomainWrapped) (Key, error)
}

// DomainWrapped is a key wrapped under a security domain's wrapping key: Alg names the
// mechanism (CKM_AES_KEY_WRAP_PAD), Value is its output.
type DomainWrapped struct {
	Alg   string
	Value []byte
}
