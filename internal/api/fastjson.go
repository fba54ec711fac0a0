package api

import (
	"github.com/coffer-kms/coffer/internal/jsonenc"
	"github.com/coffer-kms/coffer/internal/keys"
	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/secrets"
)

// appendFastJSON appends what json.NewEncoder(w).Encode(v) writes (the value and a
// newline) for the answers of the hottest routes — a key or secret read and a key
// operation — without reflection; ok is false for every other type.
// TestFastJSONMatchesEncodingJSON holds each encoder byte for byte to encoding/json with
// every field of each type filled, so a field added to one of these types and not here
// fails that test.
func appendFastJSON(dst []byte, v any) (out []byte, ok bool) {
	switch v := v.(type) {
	case keys.KeyBundle:
		dst = appendKeyBundle(dst, &v)
	case keys.OperationResult:
		dst = appendOperationResult(dst, &v)
	case secrets.SecretBundle:
		dst = appendSecretBundle(dst, &v)
	default:
		return dst, false
	}
	return append(dst, '\n'), true
}

func appendKeyBundle(dst []byte, b *keys.KeyBundle) []byte {
	o := jsonenc.Begin(dst)
	if b.Key != nil {
		o.Key("key")
		o.B = appendJWK(o.B, b.Key)
	}
	o.Key("attributes")
	o.B = appendKeyAttributes(o.B, &b.Attributes)
	o.StringMap("tags", b.Tags)
	o.True("managed", b.Managed)
	if p := b.ReleasePolicy; p != nil {
		o.Key("release_policy")
		po := jsonenc.Begin(o.B)
		po.String("contentType", p.ContentType, true)
		po.True("immutable", p.Immutable)
		po.Base64URL("data", p.Data)
		o.B = po.End()
	}
	return o.End()
}

func appendJWK(dst []byte, j *provider.JWK) []byte {
	o := jsonenc.Begin(dst)
	o.String("kid", j.KID, true)
	o.String("kty", string(j.Kty), false)
	o.Strings("key_ops", j.KeyOps)
	o.Base64URL("n", j.N)
	o.Base64URL("e", j.E)
	o.Base64URL("d", j.D)
	o.Base64URL("dp", j.DP)
	o.Base64URL("dq", j.DQ)
	o.Base64URL("qi", j.QI)
	o.Base64URL("p", j.P)
	o.Base64URL("q", j.Q)
	o.Base64URL("k", j.K)
	o.Base64URL("key_hsm", j.T)
	o.String("crv", string(j.Crv), true)
	o.Base64URL("x", j.X)
	o.Base64URL("y", j.Y)
	return o.End()
}

func appendKeyAttributes(dst []byte, a *keys.KeyAttributes) []byte {
	o := jsonenc.Begin(dst)
	o.Bool("enabled", a.Enabled)
	o.Int64("nbf", a.NotBefore)
	o.Int64("exp", a.Expires)
	o.Int64("created", a.Created)
	o.Int64("updated", a.Updated)
	o.Int("recoverableDays", a.RecoverableDays)
	o.String("recoveryLevel", a.RecoveryLevel, true)
	o.Bool("exportable", a.Exportable)
	o.String("hsmPlatform", a.HSMPlatform, true)
	o.Int("key_size", a.KeySize)
	return o.End()
}

func appendOperationResult(dst []byte, r *keys.OperationResult) []byte {
	o := jsonenc.Begin(dst)
	o.String("kid", r.KID, true)
	o.Base64URL("value", r.Value)
	o.Base64URL("iv", r.IV)
	o.Base64URL("tag", r.Tag)
	o.Base64URL("aad", r.AAD)
	return o.End()
}

func appendSecretBundle(dst []byte, b *secrets.SecretBundle) []byte {
	o := jsonenc.Begin(dst)
	if b.Value != nil {
		o.Key("value")
		o.B = jsonenc.String(o.B, string(*b.Value))
	}
	o.String("id", b.ID, true)
	o.String("contentType", b.ContentType, true)
	o.Key("attributes")
	a := &b.Attributes
	ao := jsonenc.Begin(o.B)
	ao.Bool("enabled", a.Enabled)
	ao.Int64("nbf", a.NotBefore)
	ao.Int64("exp", a.Expires)
	ao.Int64("created", a.Created)
	ao.Int64("updated", a.Updated)
	ao.Int("recoverableDays", a.RecoverableDays)
	ao.String("recoveryLevel", a.RecoveryLevel, true)
	o.B = ao.End()
	o.StringMap("tags", b.Tags)
	o.String("kid", b.KID, true)
	o.True("managed", b.Managed)
	return o.End()
}
