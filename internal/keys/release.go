package keys

import (
	"context"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/skr"
	"github.com/coffer-kms/coffer/internal/strictb64"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// Secure key release (Key Vault's release operation, docs/ATTESTATION.md): an exportable key
// version goes, wrapped, to a TEE whose attestation token satisfies the version's release
// policy. Decide first, then wrap: nothing is exported on any path that returns an error.

// Release wrapping algorithms (KeyEncryptionAlgorithm).
const (
	EncRSAAESKeyWrap    = "CKM_RSA_AES_KEY_WRAP"
	EncRSAAESKeyWrap256 = "RSA_AES_KEY_WRAP_256"
	EncRSAAESKeyWrap384 = "RSA_AES_KEY_WRAP_384"
)

// Release request limits.
const (
	// MaxReleaseTarget is the longest attestation token accepted, in bytes.
	MaxReleaseTarget = 32 << 10
	// MaxReleaseNonce is the longest nonce accepted, in bytes.
	MaxReleaseNonce = 256
	// releaseLeeway is the clock skew allowed on the token's exp and nbf.
	releaseLeeway = time.Minute
)

// ErrReleaseDenied is the error of a release the policy or the token does not allow (403).
// It wraps ErrForbiddenOp; its message is the decision's reason, which names claims and
// checks but never claim values or key material.
var ErrReleaseDenied = fmt.Errorf("%w: release denied", ErrForbiddenOp)

// ReleaseParams are the inputs of Release (keys.json KeyReleaseParameters).
type ReleaseParams struct {
	// Target is the attestation token (a compact JWS) of the TEE the key goes to.
	Target string `json:"target"`
	// Nonce, if set, must equal the token's nonce claim.
	Nonce string `json:"nonce,omitempty"`
	// Enc is the wrapping: CKM_RSA_AES_KEY_WRAP (default), RSA_AES_KEY_WRAP_256 or _384.
	Enc string `json:"enc,omitempty"`
	// APIVersion (not on the wire) is echoed in the signed result's request section.
	APIVersion string `json:"-"`
}

// ReleaseResult is the answer of Release (keys.json KeyReleaseResult): Value is a JWS
// signed by the vault whose payload carries the key bundle with the wrapped key in key_hsm.
type ReleaseResult struct {
	Value string `json:"value"`
}

// AttestationVerifier checks attestation tokens for the authorities release policies name.
type AttestationVerifier interface {
	// Verify checks that raw is a JWS signed by a key of authority — one of Coffer's own
	// attestation providers, or an external authority the operator trusts — whose iss is that
	// authority, and returns its claims (numbers as json.Number). It does not check the
	// lifetime or the policy. Errors carry a fixed reason, never token content.
	Verify(ctx context.Context, authority, raw string) (map[string]any, error)
}

// Releaser runs secure key release over a keys Service.
type Releaser struct {
	Keys *Service
	// Verifier checks the target token's signature and issuer.
	Verifier AttestationVerifier
	// Sign signs the result's claims as a compact JWS; it adds iat, nbf, exp and jti.
	Sign func(claims map[string]any) (string, error)
}

// Release decides whether the version may go to the TEE of p.Target and, if so, returns it
// wrapped to the TEE's runtime key in a JWS. reason is the decision for the audit record
// (granted or denied), set whenever a decision was made; it never holds claim values or key
// bytes. Denials are ErrReleaseDenied, request mistakes ErrBadParameter.
func (r *Releaser) Release(ctx context.Context, v tenancy.Vault, base, name, version string, p ReleaseParams) (res ReleaseResult, reason string, err error) {
	deny := func(format string, args ...any) (ReleaseResult, string, error) {
		why := fmt.Sprintf(format, args...)
		return ReleaseResult{}, "denied: " + why, fmt.Errorf("%w: %s", ErrReleaseDenied, why)
	}
	enc, err := checkReleaseParams(&p)
	if err != nil {
		return ReleaseResult{}, "", err
	}
	s := r.Keys
	sc, err := newScope(v, base)
	if err != nil {
		return ReleaseResult{}, "", err
	}
	meta, ver, err := s.resolve(ctx, sc, name, version)
	if err != nil {
		return ReleaseResult{}, "", err
	}
	now := s.clock()
	switch {
	case !ver.Enabled:
		return deny("the key version is disabled")
	case ver.NotBefore != nil && now.Unix() < *ver.NotBefore:
		return deny("the key version is not yet valid (nbf)")
	case ver.Expires != nil && now.Unix() >= *ver.Expires:
		return deny("the key version has expired")
	case !ver.Exportable:
		return deny("the key is not exportable: only keys created with exportable true and a release_policy can be released")
	case ver.ReleasePolicy == nil:
		return deny("the key version has no release_policy")
	}
	pol, err := skr.Parse(ver.ReleasePolicy.Data)
	if err != nil {
		return deny("the key's release_policy does not parse (%v): update it", err)
	}
	iss, claims, why := r.verifyTarget(ctx, pol, p.Target)
	if claims == nil {
		return deny("%s", why)
	}
	if why := checkLifetime(claims, now); why != "" {
		return deny("the attestation token %s", why)
	}
	if p.Nonce != "" {
		got, _ := claims["nonce"].(string)
		if subtle.ConstantTimeCompare([]byte(got), []byte(p.Nonce)) != 1 {
			return deny("the attestation token's nonce claim is not the request's nonce")
		}
	}
	d := pol.Evaluate(iss, claims)
	if !d.Allowed {
		return deny("release policy not satisfied: %s", d.Reason)
	}
	wrapTo, runtimeKID, why := runtimeKey(claims)
	if wrapTo == nil {
		return deny("%s", why)
	}
	key, err := s.load(ctx, ver.Handle)
	if err != nil {
		return ReleaseResult{}, "", loadErr(meta.Name, ver.Version, err)
	}
	exp, ok := key.(provider.Exporter)
	if !ok {
		return ReleaseResult{}, "error: provider cannot export", badParam("release of %s keys is not supported by this server's key provider yet", ver.Kty)
	}
	h, _ := provider.TransferHash(enc)
	wrapped, err := exp.ExportWrapped(ctx, wrapTo, h)
	if errors.Is(err, provider.ErrNotExportable) {
		return deny("the key provider refuses to export this key (not made exportable)")
	}
	if err != nil {
		return ReleaseResult{}, "error: wrapping failed", provErr("release", err)
	}
	jws, err := r.signResult(sc, meta, ver, p, enc, runtimeKID, wrapped)
	if err != nil {
		return ReleaseResult{}, "error: signing failed", err
	}
	return ReleaseResult{Value: jws}, fmt.Sprintf("granted: %s; wrapped %s to runtime key %.64q", d.Reason, enc, runtimeKID), nil
}

// checkReleaseParams validates the request and returns the wrapping algorithm.
func checkReleaseParams(p *ReleaseParams) (string, error) {
	if p.Target == "" {
		return "", badParam("target is missing: pass the TEE's attestation token")
	}
	if len(p.Target) > MaxReleaseTarget {
		return "", badParam("target is longer than %d bytes", MaxReleaseTarget)
	}
	if len(p.Nonce) > MaxReleaseNonce {
		return "", badParam("nonce is longer than %d bytes", MaxReleaseNonce)
	}
	enc := p.Enc
	if enc == "" {
		enc = EncRSAAESKeyWrap
	}
	if _, ok := provider.TransferHash(enc); !ok {
		return "", badParam("enc %.40q is not supported: use %s, %s or %s", p.Enc, EncRSAAESKeyWrap, EncRSAAESKeyWrap256, EncRSAAESKeyWrap384)
	}
	return enc, nil
}

// verifyTarget finds the policy authority that signed the token: it returns the issuer and
// the verified claims, or nil claims and why no authority verified it.
func (r *Releaser) verifyTarget(ctx context.Context, pol *skr.Policy, raw string) (string, map[string]any, string) {
	var whys []string
	seen := map[string]bool{}
	for _, a := range pol.Authorities {
		norm := strings.ToLower(strings.TrimSuffix(a.URL, "/"))
		if seen[norm] {
			continue
		}
		seen[norm] = true
		claims, err := r.Verifier.Verify(ctx, a.URL, raw)
		if err != nil {
			whys = append(whys, fmt.Sprintf("%.200s: %v", a.URL, err))
			continue
		}
		iss, _ := claims["iss"].(string)
		if !skr.SameAuthority(a.URL, iss) {
			whys = append(whys, a.URL+": the token's iss is not this authority")
			continue
		}
		return iss, claims, ""
	}
	return "", nil, "the attestation token is not a valid token of any authority of the release policy (" + strings.Join(whys, "; ") + ")"
}

// checkLifetime requires an exp in the future and an nbf (if present) in the past, within
// releaseLeeway; it returns "" or what is wrong.
func checkLifetime(claims map[string]any, now time.Time) string {
	leeway := int64(releaseLeeway / time.Second)
	exp, ok := numericDate(claims["exp"])
	if !ok {
		return "has no exp"
	}
	if now.Unix()-leeway >= exp {
		return "has expired"
	}
	if v, present := claims["nbf"]; present {
		nbf, ok := numericDate(v)
		if !ok || nbf > now.Unix()+leeway {
			return "is not yet valid (nbf)"
		}
	}
	return ""
}

func numericDate(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case float64:
		return int64(n), n == float64(int64(n))
	}
	return 0, false
}

// runtimeKey returns the first RSA key in the token's x-ms-runtime.keys that may encrypt
// (no key_ops, or key_ops with encrypt or wrapKey), with 2048–8192 bits and e = 65537.
func runtimeKey(claims map[string]any) (*rsa.PublicKey, string, string) {
	rt, _ := claims["x-ms-runtime"].(map[string]any)
	list, _ := rt["keys"].([]any)
	why := ""
	for i, item := range list {
		jwk, _ := item.(map[string]any)
		if kty, _ := jwk["kty"].(string); kty != "RSA" && kty != "RSA-HSM" {
			continue
		}
		if ops, present := jwk["key_ops"]; present && !hasOp(ops, "encrypt", "wrapKey") {
			continue
		}
		n, errN := b64Int(jwk, "n")
		e, errE := b64Int(jwk, "e")
		if err := errors.Join(errN, errE); err != nil {
			why = fmt.Sprintf(" (keys[%d]: %v)", i, strings.ReplaceAll(err.Error(), "\n", "; "))
			continue
		}
		if n.BitLen() < 2048 || n.BitLen() > 8192 || e.Cmp(big.NewInt(65537)) != 0 {
			continue
		}
		kid, _ := jwk["kid"].(string)
		return &rsa.PublicKey{N: n, E: 65537}, kid, ""
	}
	return nil, "", "the attestation token's x-ms-runtime.keys holds no RSA key (2048-8192 bits, e=65537, usable for encryption) to wrap the key to" + why
}

func hasOp(ops any, want ...string) bool {
	list, _ := ops.([]any)
	for _, o := range list {
		for _, w := range want {
			if o == w {
				return true
			}
		}
	}
	return false
}

// b64Int decodes the JWK member name: a strict base64url (strictb64.URL) big-endian integer
// without leading zeros.
func b64Int(jwk map[string]any, name string) (*big.Int, error) {
	s, ok := jwk[name].(string)
	if !ok || s == "" {
		return nil, fmt.Errorf("%q is missing or not a non-empty string", name)
	}
	b, err := strictb64.URL.DecodeString(name, s)
	if err != nil {
		return nil, err
	}
	if b[0] == 0 {
		return nil, fmt.Errorf("%q has a leading zero byte", name)
	}
	return new(big.Int).SetBytes(b), nil
}

// KeyHSMSchemaVersion is the schema_version of the key_hsm blob of a released key.
const KeyHSMSchemaVersion = "1.0.0"

// keyHSM is the key_hsm blob of a released key: the shape of a BYOK transfer blob
// (internal/byok.Blob), with the TEE's runtime key in place of the KEK.
type keyHSM struct {
	SchemaVersion string `json:"schema_version"`
	Header        struct {
		KID string `json:"kid"`
		Alg string `json:"alg"`
		Enc string `json:"enc"`
	} `json:"header"`
	Ciphertext string `json:"ciphertext"`
	Generator  string `json:"generator,omitempty"`
}

// signResult builds and signs the release JWS. Its payload:
//
//	{"iss": <vault URL>, "request": {"api-version", "enc", "kid", "nonce"?},
//	 "response": {"key": <KeyBundle whose key JWK (public members only) has
//	   key_hsm = base64url({"schema_version","header":{"kid": runtime kid,"alg":"dir","enc"},
//	                        "ciphertext": base64url(wrapped),"generator"})>}}
func (r *Releaser) signResult(sc scope, meta *keyRecord, ver *versionRecord, p ReleaseParams, enc, runtimeKID string, wrapped []byte) (string, error) {
	var blob keyHSM
	blob.SchemaVersion, blob.Ciphertext, blob.Generator = KeyHSMSchemaVersion, base64.RawURLEncoding.EncodeToString(wrapped), "coffer secure key release"
	blob.Header.KID, blob.Header.Alg, blob.Header.Enc = runtimeKID, "dir", enc
	raw, err := json.Marshal(blob)
	if err != nil {
		return "", err
	}
	b := sc.bundle(meta, ver)
	b.Key.T = raw
	request := map[string]any{"enc": enc, "kid": b.Key.KID}
	if p.APIVersion != "" {
		request["api-version"] = p.APIVersion
	}
	if p.Nonce != "" {
		request["nonce"] = p.Nonce
	}
	return r.Sign(map[string]any{"iss": sc.base, "request": request, "response": map[string]any{"key": b}})
}
