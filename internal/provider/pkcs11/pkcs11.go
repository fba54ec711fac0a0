// Package pkcs11 is the HSM crypto provider: RSA (2048, 3072, 4096 bits, e = 65537) and EC
// (P-256, P-384, P-521) key pairs generated inside a PKCS#11 token, with signing and
// decryption done by the token (C_Sign, C_Decrypt), and oct-HSM AES keys (128, 192, 256
// bits) whose every operation runs in the token (aes.go). Private keys are created sensitive and
// non-extractable (SECURITY-NOTES H1) and never leave the token; a key's handle holds only
// the object's CKA_ID and the public key (handle.go). Verify, Encrypt and WrapKey are
// public-key operations and run in software (crypto/rsa, crypto/ecdsa) on the public key
// from the handle.
//
// Keys come into the token by BYOK (ImportTransfer: a key_hsm transfer blob unwrapped
// inside the token, F10) and by Import of a private RSA or EC JWK, which is wrapped here
// under a one-use AES key and unwrapped in the token (import.go). Not offered
// (provider.ErrUnsupported): HMAC with oct-HSM keys, P-256K, plain AES keys by Import, RSNULL
// (H4: raw PKCS #1 v1.5 signing of caller-built input is never exposed) and, of course,
// CKM_RSA_X_509 (raw RSA), which this package never uses.
//
// Errors: token failures during Decrypt and UnwrapKey are exactly provider.ErrDecrypt
// (no padding oracle, C1/C2), and during a BYOK import exactly provider.ErrTransfer, except
// a token, session or login that is gone (tokenGone), which no ciphertext can cause; that
// and every other token failure wraps ErrHSM, whose text is the generic "HSM operation
// failed" (H2: the api layer answers 503 and shows no CKR_* text; the pkcs11.Error with
// the return value stays in the chain for logs). A key whose object is not in the token
// (destroyed behind Coffer's back) is provider.ErrKeyGone in every operation, Decrypt
// included: that is found before any input reaches the token, and is no outage.
//
// This package must not import net/http, a storage backend or another Coffer package than
// provider and keywrap (the RFC 5649 reference its token probe compares with).
package pkcs11

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/provider"
)

// ErrLibrary is wrapped by Open's error when the library cannot be loaded; ErrPINRefused
// when the token refuses the user PIN (wrong, or locked after too many tries). They let a
// caller name the setting at fault.
var (
	ErrLibrary    = errors.New("cannot load the PKCS#11 library")
	ErrPINRefused = errors.New("user login refused (wrong or locked PIN): check the PIN file; a locked PIN needs the token's security officer")
)

// ErrHSM is wrapped by every error caused by the token or the library outside decryption:
// token gone, session or login lost, library failure. The server maps it to 503 and never
// falls back to software keys.
var ErrHSM = fmt.Errorf("%w: HSM operation failed", provider.ErrUnavailable)

// hsmError carries the failed operation and the library's error for logs; its text is only
// the operation and the generic ErrHSM text.
type hsmError struct {
	op  string
	err error
}

func (e *hsmError) Error() string   { return "pkcs11: " + e.op + ": " + ErrHSM.Error() }
func (e *hsmError) Unwrap() []error { return []error{ErrHSM, e.err} }

func hsmErr(op string, err error) error { return &hsmError{op: op, err: err} }

// DefaultSessions is the session pool size when Config.Sessions is 0.
const DefaultSessions = 4

// DefaultSessionWait is how long an operation waits for a free session by default: longer
// than a token takes for its slowest operation here (an RSA-4096 generation, ~1–3 s in
// SoftHSM2), short enough that a hung token answers 503 rather than piling up requests.
const DefaultSessionWait = 5 * time.Second

// maxSessions bounds the pool (tokens limit sessions; more would not add throughput).
const maxSessions = 256

// Config says which token to use.
type Config struct {
	// Library is the path of the PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so.
	Library string
	// TokenLabel selects the slot whose token has this label (exactly one must match).
	TokenLabel string
	// PIN is the user PIN. The caller resolves it from a reference (env, file); it is never
	// written in an error.
	PIN string
	// Sessions is the size of the session pool; 0 means DefaultSessions.
	Sessions int
	// SessionWait bounds how long an operation waits for a free session before it fails
	// with ErrHSM (503): a token that hangs rather than fails holds every session, and
	// without a bound requests would pile up behind it. 0 means DefaultSessionWait.
	SessionWait time.Duration
	// SOPIN is the token's security officer PIN, optional: only the SO can mark a key
	// CKA_TRUSTED, which security-domain wrapping keys need (sdwrap.go). Without it keys of
	// managed HSM pools stay non-extractable and backups carry only their handles. Like
	// the PIN it is never written in an error.
	SOPIN string
}

// session is one pool entry; ok is false when the session was dropped after a failure and
// must be reopened before use.
type session struct {
	h  p11.SessionHandle
	ok bool
}

// Provider is the PKCS#11 provider: one initialized library, one token logged in as user,
// and a bounded pool of sessions. It is safe for concurrent use.
type Provider struct {
	ctx   lib // the module; its handle-changing calls move handleEpoch (epoch.go)
	slot  uint
	pin   string
	sopin string // "" without a security officer PIN (sdwrap.go)
	label string // the token's label, recorded in every handle (token.go)
	pool  chan session
	size  int
	wait  time.Duration // Config.SessionWait
	done  chan struct{}
	once  sync.Once
	owned bool // this Provider initialized the library and finalizes it on Close
	// oaep256 says the token decrypts RSA-OAEP-256 (probeOAEP256); if not, the algorithm
	// is refused with ErrUnsupported on every operation.
	oaep256 bool
	// kwp says the token's CKM_AES_KEY_WRAP_PAD wraps keys of any length as RFC 5649
	// does (probeKWP); if not, such wraps are refused with ErrUnsupported.
	kwp bool
	// objects caches key object handles (handles.go).
	objects objectCache
	// soMu serialises security officer logins (asSO); domainKeys holds the hex CKA_IDs of
	// the security-domain wrapping keys checked in this token since Open (sdwrap.go).
	soMu       sync.Mutex
	soRefused  bool // the token refused the SO PIN: asSO does not try it again
	domainKeys sync.Map
}

var _ provider.Provider = (*Provider)(nil)

// Open loads the library, finds the token by label, logs in as user and opens
// cfg.Sessions sessions. Errors name the library path and token label, never the PIN.
func Open(cfg Config) (*Provider, error) {
	if cfg.Library == "" {
		return nil, errors.New("pkcs11: no library path configured")
	}
	if cfg.TokenLabel == "" {
		return nil, errors.New("pkcs11: no token label configured")
	}
	if cfg.PIN == "" {
		return nil, errors.New("pkcs11: no user PIN configured")
	}
	n := cfg.Sessions
	if n == 0 {
		n = DefaultSessions
	}
	if n < 1 || n > maxSessions {
		return nil, fmt.Errorf("pkcs11: sessions = %d: use 1 to %d", cfg.Sessions, maxSessions)
	}
	c := p11.New(cfg.Library)
	if c == nil {
		return nil, fmt.Errorf("pkcs11: %w %q: the path must name a PKCS#11 module (a shared library exporting C_GetFunctionList)", ErrLibrary, cfg.Library)
	}
	p := &Provider{ctx: lib{c}, pin: cfg.PIN, sopin: cfg.SOPIN, label: cfg.TokenLabel, size: n, wait: cmp.Or(cfg.SessionWait, DefaultSessionWait), pool: make(chan session, n), done: make(chan struct{}), owned: true}
	if err := c.Initialize(); err != nil {
		if !isRV(err, p11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
			c.Destroy()
			return nil, fmt.Errorf("pkcs11: initializing %q: %w", cfg.Library, hsmErr("initialize", err))
		}
		p.owned = false
	}
	fail := func(err error) (*Provider, error) {
		p.shutdown()
		return nil, err
	}
	slot, err := findSlot(c, cfg.TokenLabel)
	if err != nil {
		return fail(err)
	}
	p.slot = slot
	for i := 0; i < n; i++ {
		h, err := p.openSession()
		if err != nil {
			return fail(fmt.Errorf("pkcs11: token %q: %w", cfg.TokenLabel, err))
		}
		if i == 0 {
			p.oaep256 = p.probeOAEP256(h)
			p.kwp = p.probeKWP(h)
		}
		p.pool <- session{h: h, ok: true}
	}
	return p, nil
}

// findSlot returns the one slot whose token has label.
func findSlot(c *p11.Ctx, label string) (uint, error) {
	slots, err := c.GetSlotList(true)
	if err != nil {
		return 0, hsmErr("list slots", err)
	}
	var found []uint
	for _, s := range slots {
		ti, err := c.GetTokenInfo(s)
		if err != nil {
			continue
		}
		if strings.TrimRight(ti.Label, " \x00") == label {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("pkcs11: no token labelled %q: check the token label (softhsm2-util --show-slots)", label)
	case 1:
		return found[0], nil
	default:
		return 0, fmt.Errorf("pkcs11: %d tokens are labelled %q: labels must be unique", len(found), label)
	}
}

// openSession opens a read-write session and logs in as user. Login state is shared by
// the application's sessions, so "already logged in" is success.
func (p *Provider) openSession() (p11.SessionHandle, error) {
	h, err := p.ctx.OpenSession(p.slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		return 0, hsmErr("open session", err)
	}
	if err := p.ctx.Login(h, p11.CKU_USER, p.pin); err != nil && !isRV(err, p11.CKR_USER_ALREADY_LOGGED_IN) {
		_ = p.ctx.CloseSession(h)
		if isRV(err, p11.CKR_PIN_INCORRECT) || isRV(err, p11.CKR_PIN_LOCKED) {
			return 0, fmt.Errorf("%w: %w", ErrPINRefused, hsmErr("login", err))
		}
		return 0, hsmErr("login", err)
	}
	return h, nil
}

// sessionBroken reports whether err means the session is unusable (closed, logged out,
// device gone), so put replaces it. Failed operations do not break a session: a failed
// C_Sign or C_Decrypt ends the operation (PKCS#11 §5.2). Closing sessions needlessly would
// be harmful too: once every session is closed the token logs out.
func sessionBroken(err error) bool {
	for _, rv := range []uint{p11.CKR_SESSION_HANDLE_INVALID, p11.CKR_SESSION_CLOSED, p11.CKR_USER_NOT_LOGGED_IN,
		p11.CKR_DEVICE_REMOVED, p11.CKR_DEVICE_ERROR, p11.CKR_TOKEN_NOT_PRESENT, p11.CKR_OPERATION_ACTIVE} {
		if isRV(err, rv) {
			return true
		}
	}
	return false
}

// errNoSession wraps every failure to get a working session (open or log in): it happens
// before an operation's data reaches the token.
var errNoSession = errors.New("pkcs11: no session with the token")

// tokenGone reports whether err says the token, the session or the login is gone (or the
// provider is closed). Such a failure says nothing about the data of an operation, so
// decrypt, unwrap and BYOK import report it as ErrHSM (503) instead of their one
// data error. Return values a token might give for bad data (CKR_GENERAL_ERROR,
// CKR_DEVICE_ERROR, ...) are deliberately not in the list: those stay ErrDecrypt, so an
// outage that only shows as them answers 400, never an oracle.
func tokenGone(err error) bool {
	if errors.Is(err, errClosed) || errors.Is(err, errNoSession) {
		return true
	}
	for _, rv := range []uint{p11.CKR_SESSION_HANDLE_INVALID, p11.CKR_SESSION_CLOSED, p11.CKR_USER_NOT_LOGGED_IN,
		p11.CKR_DEVICE_REMOVED, p11.CKR_TOKEN_NOT_PRESENT, p11.CKR_TOKEN_NOT_RECOGNIZED, p11.CKR_CRYPTOKI_NOT_INITIALIZED} {
		if isRV(err, rv) {
			return true
		}
	}
	return false
}

// isRV reports whether err is the PKCS#11 return value rv.
func isRV(err error, rv uint) bool {
	var e p11.Error
	return errors.As(err, &e) && uint(e) == rv
}

// errClosed is returned by operations after Close.
var errClosed = fmt.Errorf("pkcs11: provider is closed: %w", ErrHSM)

// get takes a session from the pool, waiting for one (bounded pool) until ctx ends. A
// session dropped after a failure is reopened here.
func (p *Provider) get(ctx context.Context) (p11.SessionHandle, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var s session
	select {
	case s = <-p.pool: // a free session: no timer
	default:
		t := time.NewTimer(p.wait)
		select {
		case <-p.done:
			t.Stop()
			return 0, errClosed
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case s = <-p.pool:
			t.Stop()
		case <-t.C:
			return 0, fmt.Errorf("pkcs11: every session of token %q stayed busy for %s (pkcs11-session-wait): the token is overloaded or not answering: %w", p.label, p.wait, ErrHSM)
		}
	}
	if s.ok {
		return s.h, nil
	}
	h, err := p.openSession()
	if err != nil {
		p.pool <- session{}
		return 0, fmt.Errorf("%w: %w", errNoSession, err)
	}
	return h, nil
}

// put returns a session to the pool. After a failed operation (failed true) the session
// is closed and replaced by a placeholder that get reopens: it may hold an unfinished
// operation or be broken.
func (p *Provider) put(h p11.SessionHandle, failed bool) {
	if failed {
		_ = p.ctx.CloseSession(h)
		p.pool <- session{}
		return
	}
	p.pool <- session{h: h, ok: true}
}

// Close waits for the sessions in use, closes them, logs out and unloads the library.
func (p *Provider) Close() error {
	p.once.Do(func() {
		close(p.done)
		p.shutdown()
	})
	return nil
}

// shutdown drains the pool (len(pool) entries when Open fails half-way, size otherwise).
func (p *Provider) shutdown() {
	n := len(p.pool)
	select {
	case <-p.done:
		n = p.size
	default:
	}
	loggedOut := false
	for i := 0; i < n; i++ {
		s := <-p.pool
		if !s.ok {
			continue
		}
		if !loggedOut {
			_ = p.ctx.Logout(s.h)
			loggedOut = true
		}
		_ = p.ctx.CloseSession(s.h)
	}
	if p.owned {
		_ = p.ctx.Finalize()
	}
	p.ctx.Destroy()
}

// OffersOAEP256 reports whether this token decrypts RSA-OAEP-256 (see probeOAEP256).
func (p *Provider) OffersOAEP256() bool { return p.oaep256 }

// Name returns "pkcs11".
func (*Provider) Name() string { return "pkcs11" }

// findKey returns the private key object with CKA_ID id, or ok false if there is none.
func (p *Provider) findKey(s p11.SessionHandle, class uint, id []byte) (p11.ObjectHandle, bool, error) {
	return p.findOne(s, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, class),
		p11.NewAttribute(p11.CKA_ID, id),
	})
}

// findOne returns the one object matching tmpl, or ok false if there is none; more than one
// is ErrHSM (CKA_IDs are unique).
func (p *Provider) findOne(s p11.SessionHandle, tmpl []*p11.Attribute) (p11.ObjectHandle, bool, error) {
	if err := p.ctx.FindObjectsInit(s, tmpl); err != nil {
		return 0, false, hsmErr("find object", err)
	}
	objs, _, err := p.ctx.FindObjects(s, 2)
	if ferr := p.ctx.FindObjectsFinal(s); err == nil {
		err = ferr
	}
	if err != nil {
		return 0, false, hsmErr("find object", err)
	}
	switch len(objs) {
	case 0:
		return 0, false, nil
	case 1:
		return objs[0], true, nil
	default:
		return 0, false, fmt.Errorf("pkcs11: %d objects share one CKA_ID: %w", len(objs), ErrHSM)
	}
}

// errObjectGone is the error of a key whose object is not in the token: it wraps
// provider.ErrKeyGone (the domain's 404) and provider.ErrInvalidKey (what Load has always
// reported for it), never ErrHSM: the token answered, and retrying cannot bring it back.
var errObjectGone = fmt.Errorf("pkcs11: the key's object is not in the token (destroyed outside Coffer, or by the purge of a key that shared it): %w: %w", provider.ErrKeyGone, provider.ErrInvalidKey)

// keyObject finds the key object of class with CKA_ID id; a key that is gone is
// errObjectGone.
func (p *Provider) keyObject(s p11.SessionHandle, class uint, id []byte) (p11.ObjectHandle, error) {
	if obj, ok := p.objects.get(p, s, class, id); ok {
		return obj, nil
	}
	epoch := handleEpoch.Load()
	obj, ok, err := p.findKey(s, class, id)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, errObjectGone
	}
	// Recorded at the epoch before the search (which moves it, epoch.go): the next
	// useObject checks the handle once more rather than trust a later epoch.
	p.objects.put(class, id, obj, epoch)
	return obj, nil
}

// Load parses the handle and finds the private key object by its CKA_ID. A malformed
// handle gives provider.ErrInvalidKey, one whose object is not in the token
// errObjectGone (provider.ErrKeyGone and ErrInvalidKey); token failures give ErrHSM.
func (p *Provider) Load(ctx context.Context, handle []byte) (provider.Key, error) {
	doc, pub, err := p.ownHandle(handle)
	if err != nil {
		return nil, err
	}
	s, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	if doc.AESBits != 0 {
		_, err = p.checkAESObject(s, doc.ID, doc.AESBits)
	} else {
		_, err = p.checkObject(s, doc.ID, pub)
	}
	p.put(s, sessionBroken(err))
	if err != nil {
		return nil, err
	}
	if doc.AESBits != 0 {
		return newAESKeyOf(p, doc.ID, doc.AESBits, doc.Exportable), nil
	}
	return newKeyOf(p, pub, doc.ID, doc.Exportable), nil
}

// Destroy removes the private and public key objects (or the secret key object) of handle
// from the token. A key
// already gone is not an error (purge is idempotent).
func (p *Provider) Destroy(ctx context.Context, handle []byte) error {
	doc, _, err := p.ownHandle(handle)
	if err != nil {
		return err
	}
	s, err := p.get(ctx)
	if err != nil {
		return err
	}
	classes := []uint{p11.CKO_PRIVATE_KEY, p11.CKO_PUBLIC_KEY}
	if doc.AESBits != 0 {
		classes = []uint{p11.CKO_SECRET_KEY}
	}
	p.objects.drop(doc.ID)
	for _, class := range classes {
		obj, ok, err := p.findKey(s, class, doc.ID)
		if err == nil && ok {
			if derr := p.ctx.DestroyObject(s, obj); derr != nil {
				err = hsmErr("destroy object", derr)
			}
		}
		if err != nil {
			p.put(s, sessionBroken(err))
			return err
		}
	}
	p.put(s, false)
	return nil
}

// checkObject finds the private key object of id and checks it is the handle's key: for
// RSA, the token's CKA_MODULUS must be the handle's modulus, so a handle cannot pair one
// key's public half with another key's private object. (For EC the private object has no
// public point; the CKA_ID is random and unique.)
func (p *Provider) checkObject(s p11.SessionHandle, id []byte, pub *publicKey) (p11.ObjectHandle, error) {
	obj, ok, err := p.findKey(s, p11.CKO_PRIVATE_KEY, id)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, errObjectGone
	}
	if !pub.isRSA() {
		return obj, nil
	}
	attrs, err := p.ctx.GetAttributeValue(s, obj, []*p11.Attribute{p11.NewAttribute(p11.CKA_MODULUS, nil)})
	if err != nil || len(attrs) != 1 {
		return 0, hsmErr("read modulus", err)
	}
	if new(big.Int).SetBytes(attrs[0].Value).Cmp(pub.rsa.N) != 0 {
		return 0, fmt.Errorf("%w: the handle's public key is not the token key's", provider.ErrInvalidKey)
	}
	return obj, nil
}
