package secrets

import "log/slog"

// Value is a secret value. It marshals to JSON as the plain string (that is the wire
// format), but it never prints: String, GoString and LogValue are redacted, so a value that
// reaches a log line or an error by mistake shows as [REDACTED].
type Value string

// String implements fmt.Stringer, redacted.
func (Value) String() string { return "[REDACTED]" }

// GoString implements fmt.GoStringer, redacted.
func (Value) GoString() string { return "[REDACTED]" }

// LogValue implements slog.LogValuer, redacted.
func (Value) LogValue() slog.Value { return slog.StringValue("[REDACTED]") }

// SecretBundle is a secret version as Key Vault returns it (secrets.json SecretBundle). ID is
// <vault URL>/secrets/<name>/<version>. Value is set only by Set and Get; every other
// operation leaves it nil, so it is absent from the JSON.
type SecretBundle struct {
	Value       *Value            `json:"value,omitempty"`
	ID          string            `json:"id,omitempty"`
	ContentType string            `json:"contentType,omitempty"`
	Attributes  SecretAttributes  `json:"attributes"`
	Tags        map[string]string `json:"tags,omitempty"`
	// KID names the key backing a certificate's secret; empty for plain secrets.
	KID string `json:"kid,omitempty"`
	// Managed is true for the secrets of certificates, whose lifetime the certificate manages.
	Managed bool `json:"managed,omitempty"`
}

// SecretAttributes are a secret version's management attributes (secrets.json
// SecretAttributes). Times are unix seconds. On input only Enabled, NotBefore and Expires are
// read; the other fields are read-only and ignored.
type SecretAttributes struct {
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
}

// DeletedSecretBundle is a soft-deleted secret's latest version with its deletion
// information (secrets.json DeletedSecretBundle), without the value. Dates are unix seconds.
type DeletedSecretBundle struct {
	SecretBundle
	// RecoveryID is <vault URL>/deletedsecrets/<name>.
	RecoveryID         string `json:"recoveryId,omitempty"`
	ScheduledPurgeDate *int64 `json:"scheduledPurgeDate,omitempty"`
	DeletedDate        *int64 `json:"deletedDate,omitempty"`
}

// SecretItem is one entry of a secret listing (secrets.json SecretItem); it has no value. In
// List its ID has no version (<vault URL>/secrets/<name>); in ListVersions it names the
// version.
type SecretItem struct {
	ID          string            `json:"id,omitempty"`
	Attributes  SecretAttributes  `json:"attributes"`
	Tags        map[string]string `json:"tags,omitempty"`
	ContentType string            `json:"contentType,omitempty"`
	Managed     bool              `json:"managed,omitempty"`
}

// DeletedSecretItem is one entry of a deleted-secret listing (secrets.json
// DeletedSecretItem).
type DeletedSecretItem struct {
	SecretItem
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

// SetParams are the inputs of Set (secrets.json SecretSetParameters). Value is required.
type SetParams struct {
	Value       *Value            `json:"value"`
	Tags        map[string]string `json:"tags,omitempty"`
	ContentType string            `json:"contentType,omitempty"`
	Attributes  *SecretAttributes `json:"attributes,omitempty"`
}

// UpdateParams are the inputs of Update (secrets.json SecretUpdateParameters). A nil field
// is left unchanged; a non-nil Tags replaces every tag (an empty map removes them all) and a
// non-nil ContentType replaces the content type ("" removes it).
type UpdateParams struct {
	ContentType *string           `json:"contentType,omitempty"`
	Attributes  *SecretAttributes `json:"attributes,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
}

// BackupResult is the answer of Backup (secrets.json BackupSecretResult) and the input of
// Restore (SecretRestoreParameters).
type BackupResult struct {
	// Value is the opaque backup blob, base64url without padding on the wire.
	Value B64 `json:"value"`
}
