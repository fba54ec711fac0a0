package keys

import (
	"github.com/coffer-kms/coffer/internal/provider"
)

// KeyBundle is a key version as Key Vault returns it (keys.json KeyBundle): the public JWK
// (kid = <vault URL>/keys/<name>/<version>), its attributes, tags and release policy.
type KeyBundle struct {
	Key        *provider.JWK     `json:"key,omitempty"`
	Attributes KeyAttributes     `json:"attributes"`
	Tags       map[string]string `json:"tags,omitempty"`
	// Managed is true for the keys of certificates, whose lifetime the certificate manages.
	Managed       bool           `json:"managed,omitempty"`
	ReleasePolicy *ReleasePolicy `json:"release_policy,omitempty"`
}

// KeyAttributes are a key version's management attributes (keys.json KeyAttributes).
// Times are unix seconds. On input only Enabled, NotBefore, Expires and Exportable are read;
// the other fields are read-only and ignored.
type KeyAttributes struct {
	Enabled   *bool  `json:"enabled,omitempty"`
	NotBefore *int64 `json:"nbf,omitempty"`
	Expires   *int64 `json:"exp,omitempty"`
	Created   *int64 `json:"created,omitempty"`
	Updated   *int64 `json:"updated,omitempty"`
	// RecoverableDays is the vault's soft-delete retention in days.
	RecoverableDays *int `json:"recoverableDays,omitempty"`
	// RecoveryLevel is Recoverable+Purgeable, or Recoverable with purge protection, each
	// prefixed with Customized when the retention is shorter than 90 days.
	RecoveryLevel string `json:"recoveryLevel,omitempty"`
	// Exportable marks a key that secure key release may export; it requires a release
	// policy and cannot be changed after the version is created.
	Exportable *bool `json:"exportable,omitempty"`
	// HSMPlatform is the HSM generation of HSM-backed keys; empty for software keys.
	HSMPlatform string `json:"hsmPlatform,omitempty"`
	// KeySize is the size in bits of symmetric (oct) keys.
	KeySize *int `json:"key_size,omitempty"`
}

// ReleasePolicy is the secure-key-release policy of a key version (keys.json
// KeyReleasePolicy). Once Immutable is set the policy can never change.
type ReleasePolicy struct {
	// ContentType defaults to "application/json; charset=utf-8".
	ContentType string `json:"contentType,omitempty"`
	Immutable   bool   `json:"immutable,omitempty"`
	// Data is the policy document (JSON), base64url on the wire.
	Data provider.B64 `json:"data,omitempty"`
}

// DeletedKeyBundle is a soft-deleted key's latest version with its deletion information
// (keys.json DeletedKeyBundle). Dates are unix seconds.
type DeletedKeyBundle struct {
	KeyBundle
	// RecoveryID is <vault URL>/deletedkeys/<name>.
	RecoveryID         string `json:"recoveryId,omitempty"`
	ScheduledPurgeDate *int64 `json:"scheduledPurgeDate,omitempty"`
	DeletedDate        *int64 `json:"deletedDate,omitempty"`
}

// KeyItem is one entry of a key listing (keys.json KeyItem). In List its KID has no version
// (<vault URL>/keys/<name>); in ListVersions it names the version.
type KeyItem struct {
	KID        string            `json:"kid,omitempty"`
	Attributes KeyAttributes     `json:"attributes"`
	Tags       map[string]string `json:"tags,omitempty"`
	Managed    bool              `json:"managed,omitempty"`
}

// DeletedKeyItem is one entry of a deleted-key listing (keys.json DeletedKeyItem).
type DeletedKeyItem struct {
	KeyItem
	RecoveryID         string `json:"recoveryId,omitempty"`
	ScheduledPurgeDate *int64 `json:"scheduledPurgeDate,omitempty"`
	DeletedDate        *int64 `json:"deletedDate,omitempty"`
}

// Page is one page of a listing. Value marshals as Key Vault's "value"; NextToken is the
// opaque $skiptoken of the following page ("" on the last page), which the api layer turns
// into nextLink and hands back unchanged.
type Page[T any] struct {
	Value     []T    `json:"value"`
	NextToken string `json:"-"`
}

// ListOptions selects one page of a listing.
type ListOptions struct {
	// MaxResults is Key Vault's maxresults, 1–25; 0 means 25.
	MaxResults int
	// SkipToken is the NextToken of the previous page, or "" for the first page.
	SkipToken string
}

// CreateParams are the inputs of Create (keys.json KeyCreateParameters). Exportable is
// Attributes.Exportable, as on the wire.
type CreateParams struct {
	Kty provider.KeyType `json:"kty"`
	// KeySize is the RSA modulus (2048, 3072, 4096; default 2048) or oct size (128, 192,
	// 256; default 256) in bits.
	KeySize        int               `json:"key_size,omitempty"`
	PublicExponent int               `json:"public_exponent,omitempty"`
	KeyOps         []string          `json:"key_ops,omitempty"`
	Attributes     *KeyAttributes    `json:"attributes,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
	// Curve is the EC curve (default P-256).
	Curve         provider.Curve `json:"crv,omitempty"`
	ReleasePolicy *ReleasePolicy `json:"release_policy,omitempty"`
}

// ImportParams are the inputs of Import (keys.json KeyImportParameters). Key is a private
// JWK; only its public part is ever returned.
type ImportParams struct {
	// HSM asks for an HSM-protected key (kty becomes RSA-HSM, EC-HSM or oct-HSM); only an
	// HSM-backed provider accepts it.
	HSM           bool              `json:"Hsm,omitempty"`
	Key           *provider.JWK     `json:"key"`
	Attributes    *KeyAttributes    `json:"attributes,omitempty"`
	Tags          map[string]string `json:"tags,omitempty"`
	ReleasePolicy *ReleasePolicy    `json:"release_policy,omitempty"`
}

// UpdateParams are the inputs of Update (keys.json KeyUpdateParameters). A nil field is
// left unchanged; a non-nil Tags replaces every tag (an empty map removes them all).
type UpdateParams struct {
	KeyOps        []string          `json:"key_ops,omitempty"`
	Attributes    *KeyAttributes    `json:"attributes,omitempty"`
	Tags          map[string]string `json:"tags,omitempty"`
	ReleasePolicy *ReleasePolicy    `json:"release_policy,omitempty"`
}

// BackupResult is the answer of Backup (keys.json BackupKeyResult).
type BackupResult struct {
	// Value is the opaque backup blob, base64url on the wire.
	Value provider.B64 `json:"value"`
}

// SignParams are the inputs of Sign (keys.json KeySignParameters): Value is the digest.
type SignParams struct {
	Algorithm string       `json:"alg"`
	Value     provider.B64 `json:"value"`
}

// VerifyParams are the inputs of Verify (keys.json KeyVerifyParameters).
type VerifyParams struct {
	Algorithm string       `json:"alg"`
	Digest    provider.B64 `json:"digest"`
	Signature provider.B64 `json:"value"`
}

// OperationParams are the inputs of Encrypt, Decrypt, WrapKey and UnwrapKey (keys.json
// KeyOperationsParameters).
type OperationParams struct {
	Algorithm string       `json:"alg"`
	Value     provider.B64 `json:"value"`
	IV        provider.B64 `json:"iv,omitempty"`
	AAD       provider.B64 `json:"aad,omitempty"`
	Tag       provider.B64 `json:"tag,omitempty"`
}

// OperationResult is the answer of Sign, Encrypt, Decrypt, WrapKey and UnwrapKey (keys.json
// KeyOperationResult). KID names the version that did the work.
type OperationResult struct {
	KID   string       `json:"kid,omitempty"`
	Value provider.B64 `json:"value,omitempty"`
	IV    provider.B64 `json:"iv,omitempty"`
	Tag   provider.B64 `json:"tag,omitempty"`
	AAD   provider.B64 `json:"aad,omitempty"`
}

// VerifyResult is the answer of Verify (keys.json KeyVerifyResult). KID (not on the wire)
// names the version that checked the signature, for the audit record.
type VerifyResult struct {
	Value bool   `json:"value"`
	KID   string `json:"-"`
}

// KeyRotationPolicy is a key's rotation policy (keys.json KeyRotationPolicy).
type KeyRotationPolicy struct {
	// ID is <vault URL>/keys/<name>/rotationpolicy.
	ID              string                    `json:"id,omitempty"`
	LifetimeActions []LifetimeAction          `json:"lifetimeActions"`
	Attributes      *RotationPolicyAttributes `json:"attributes,omitempty"`
}

// LifetimeAction is one action of a rotation policy and the trigger that fires it.
type LifetimeAction struct {
	Trigger LifetimeTrigger    `json:"trigger"`
	Action  LifetimeActionType `json:"action"`
}

// LifetimeTrigger fires an action a duration after the latest version was created or before
// it expires. Both are ISO 8601 durations (P90D, P1Y2M, PT48H); exactly one is set.
type LifetimeTrigger struct {
	TimeAfterCreate  string `json:"timeAfterCreate,omitempty"`
	TimeBeforeExpiry string `json:"timeBeforeExpiry,omitempty"`
}

// LifetimeActionType names the action: Rotate or Notify (compared case-insensitively on
// input, returned in this casing).
type LifetimeActionType struct {
	Type string `json:"type"`
}

// Lifetime action types.
const (
	ActionRotate = "Rotate"
	ActionNotify = "Notify"
)

// RotationPolicyAttributes are a rotation policy's attributes. ExpiryTime (ISO 8601, at
// least 28 days) is the expiry set on each version the policy's rotation creates.
type RotationPolicyAttributes struct {
	ExpiryTime string `json:"expiryTime,omitempty"`
	Created    *int64 `json:"created,omitempty"`
	Updated    *int64 `json:"updated,omitempty"`
}
