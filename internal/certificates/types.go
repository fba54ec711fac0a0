package certificates

import (
	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/strictb64"
)

// DER is a DER certificate that travels as padded standard base64 (x5c, RFC 7517 §4.7, and
// the SDKs' []byte). It is read strictly (strictb64.Std, SECURITY-NOTES I6): encoding/json
// would skip CR/LF inside it and take other encodings of the same bytes.
type DER []byte

// UnmarshalJSON reads a strict padded standard base64 JSON string; null leaves d unchanged.
func (d *DER) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	b, err := strictb64.Std.DecodeJSON("x5c", data)
	if err != nil {
		return err
	}
	*d = b
	return nil
}

// CertificateBundle is a certificate version as Key Vault returns it (certificates.json
// CertificateBundle). ID is <vault URL>/certificates/<name>/<version>; KID and SID name the
// key and secret versions of the same id. CER is the DER certificate (standard base64 on the
// wire, as encoding/json writes []byte); X5T its SHA-1 thumbprint (base64url).
type CertificateBundle struct {
	ID          string            `json:"id,omitempty"`
	KID         string            `json:"kid,omitempty"`
	SID         string            `json:"sid,omitempty"`
	X5T         provider.B64      `json:"x5t,omitempty"`
	Policy      *Policy           `json:"policy,omitempty"`
	CER         []byte            `json:"cer,omitempty"`
	ContentType string            `json:"contentType,omitempty"`
	Attributes  Attributes        `json:"attributes"`
	Tags        map[string]string `json:"tags,omitempty"`
	// Preserve is preserveCertOrder: the chain in the secret keeps the order it was given in.
	Preserve bool `json:"preserveCertOrder,omitempty"`
}

// Attributes are a certificate version's attributes (CertificateAttributes). NotBefore and
// Expires are the certificate's validity; on input only Enabled is read.
type Attributes struct {
	Enabled         *bool  `json:"enabled,omitempty"`
	NotBefore       *int64 `json:"nbf,omitempty"`
	Expires         *int64 `json:"exp,omitempty"`
	Created         *int64 `json:"created,omitempty"`
	Updated         *int64 `json:"updated,omitempty"`
	RecoverableDays *int   `json:"recoverableDays,omitempty"`
	RecoveryLevel   string `json:"recoveryLevel,omitempty"`
}

// DeletedCertificateBundle is a soft-deleted certificate (DeletedCertificateBundle).
type DeletedCertificateBundle struct {
	CertificateBundle
	RecoveryID         string `json:"recoveryId,omitempty"`
	ScheduledPurgeDate *int64 `json:"scheduledPurgeDate,omitempty"`
	DeletedDate        *int64 `json:"deletedDate,omitempty"`
}

// CertificateItem is one entry of a listing (CertificateItem).
type CertificateItem struct {
	ID         string            `json:"id,omitempty"`
	Attributes Attributes        `json:"attributes"`
	Tags       map[string]string `json:"tags,omitempty"`
	X5T        provider.B64      `json:"x5t,omitempty"`
}

// DeletedCertificateItem is one entry of a deleted-certificate listing.
type DeletedCertificateItem struct {
	CertificateItem
	RecoveryID         string `json:"recoveryId,omitempty"`
	ScheduledPurgeDate *int64 `json:"scheduledPurgeDate,omitempty"`
	DeletedDate        *int64 `json:"deletedDate,omitempty"`
}

// Policy is a certificate's management policy (CertificatePolicy). ID is
// <vault URL>/certificates/<name>/policy.
type Policy struct {
	ID              string           `json:"id,omitempty"`
	KeyProps        *KeyProps        `json:"key_props,omitempty"`
	SecretProps     *SecretProps     `json:"secret_props,omitempty"`
	X509Props       *X509Props       `json:"x509_props,omitempty"`
	LifetimeActions []LifetimeAction `json:"lifetime_actions,omitempty"`
	Issuer          *IssuerParams    `json:"issuer,omitempty"`
	Attributes      *Attributes      `json:"attributes,omitempty"`
}

// KeyProps are the key properties of a policy. Exportable means the certificate's secret
// carries the private key.
type KeyProps struct {
	Exportable *bool  `json:"exportable,omitempty"`
	Kty        string `json:"kty,omitempty"`
	KeySize    *int   `json:"key_size,omitempty"`
	ReuseKey   *bool  `json:"reuse_key,omitempty"`
	Crv        string `json:"crv,omitempty"`
}

// SecretProps are the secret properties of a policy: the content type of the secret.
type SecretProps struct {
	ContentType string `json:"contentType,omitempty"`
}

// X509Props are the X.509 properties of a policy.
type X509Props struct {
	Subject        string   `json:"subject,omitempty"`
	EKUs           []string `json:"ekus,omitempty"`
	SANs           *SANs    `json:"sans,omitempty"`
	KeyUsage       []string `json:"key_usage,omitempty"`
	ValidityMonths *int     `json:"validity_months,omitempty"`
}

// SANs are the subject alternative names of a policy.
type SANs struct {
	Emails      []string `json:"emails,omitempty"`
	DNSNames    []string `json:"dns_names,omitempty"`
	UPNs        []string `json:"upns,omitempty"`
	URIs        []string `json:"uris,omitempty"`
	IPAddresses []string `json:"ipAddresses,omitempty"`
}

// LifetimeAction is an action Coffer performs during a certificate's lifetime.
type LifetimeAction struct {
	Trigger Trigger `json:"trigger"`
	Action  Action  `json:"action"`
}

// Trigger fires at a percentage of the lifetime or a number of days before expiry.
type Trigger struct {
	LifetimePercentage *int `json:"lifetime_percentage,omitempty"`
	DaysBeforeExpiry   *int `json:"days_before_expiry,omitempty"`
}

// Action is AutoRenew or EmailContacts.
type Action struct {
	ActionType string `json:"action_type"`
}

// IssuerParams name the issuer of a policy: "Self", "Unknown", or an issuer object.
type IssuerParams struct {
	Name             string `json:"name,omitempty"`
	CertType         string `json:"cty,omitempty"`
	CertTransparency *bool  `json:"cert_transparency,omitempty"`
}

// Operation is a certificate's pending operation (CertificateOperation). ID is
// <vault URL>/certificates/<name>/pending. Status is inProgress, completed, failed or
// cancelled; Target names the certificate once completed.
type Operation struct {
	ID                    string        `json:"id,omitempty"`
	Issuer                *IssuerParams `json:"issuer,omitempty"`
	CSR                   []byte        `json:"csr,omitempty"`
	CancellationRequested bool          `json:"cancellation_requested"`
	Status                string        `json:"status,omitempty"`
	StatusDetails         string        `json:"status_details,omitempty"`
	Error                 *OpError      `json:"error,omitempty"`
	Target                string        `json:"target,omitempty"`
	RequestID             string        `json:"request_id,omitempty"`
	// Preserve is the preserveCertOrder of the create: a merged chain keeps its order.
	Preserve bool `json:"preserveCertOrder,omitempty"`
}

// OpError is the error of a failed operation.
type OpError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// CreateParams are the inputs of Create (CertificateCreateParameters).
type CreateParams struct {
	Policy     *Policy           `json:"policy,omitempty"`
	Attributes *Attributes       `json:"attributes,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
	// PreserveCertOrder keeps the order of the chain given at the merge (Unknown issuer) in
	// the certificate's secret; without it the leaf comes first.
	PreserveCertOrder *bool `json:"preserveCertOrder,omitempty"`
}

// ImportParams are the inputs of Import (CertificateImportParameters). Value is base64 PFX
// or PEM text; Password opens a PFX.
type ImportParams struct {
	Value      *string           `json:"value"`
	Password   string            `json:"pwd,omitempty"`
	Policy     *Policy           `json:"policy,omitempty"`
	Attributes *Attributes       `json:"attributes,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
	// PreserveCertOrder keeps the order of the imported chain in the certificate's secret;
	// without it the leaf (the certificate of the private key) comes first.
	PreserveCertOrder *bool `json:"preserveCertOrder,omitempty"`
}

// MergeParams are the inputs of Merge (CertificateMergeParameters): the signed certificate
// (and chain) for the pending CSR, DER each (standard base64 on the wire).
type MergeParams struct {
	X5C        []DER             `json:"x5c"`
	Attributes *Attributes       `json:"attributes,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
}

// UpdateParams are the inputs of Update (CertificateUpdateParameters).
type UpdateParams struct {
	Policy     *Policy           `json:"policy,omitempty"`
	Attributes *Attributes       `json:"attributes,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
}

// OperationUpdate is the input of UpdateOperation.
type OperationUpdate struct {
	CancellationRequested *bool `json:"cancellation_requested"`
}

// Contacts are the vault's certificate contacts (Contacts). ID is
// <vault URL>/certificates/contacts.
type Contacts struct {
	ID       string    `json:"id,omitempty"`
	Contacts []Contact `json:"contacts"`
}

// Contact is one certificate contact.
type Contact struct {
	Email string `json:"email,omitempty"`
	Name  string `json:"name,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// Issuer is a certificate issuer object (IssuerBundle). ID is
// <vault URL>/certificates/issuers/<name>. The credentials' password is accepted, kept
// sealed, and never returned.
type Issuer struct {
	ID          string             `json:"id,omitempty"`
	Provider    string             `json:"provider,omitempty"`
	Credentials *IssuerCredentials `json:"credentials,omitempty"`
	OrgDetails  *OrgDetails        `json:"org_details,omitempty"`
	Attributes  *IssuerAttributes  `json:"attributes,omitempty"`
}

// IssuerCredentials are an issuer's account credentials.
type IssuerCredentials struct {
	AccountID string `json:"account_id,omitempty"`
	Password  string `json:"pwd,omitempty"`
}

// OrgDetails are the organisation details given to an issuer.
type OrgDetails struct {
	ID           string         `json:"id,omitempty"`
	AdminDetails []AdminContact `json:"admin_details,omitempty"`
}

// AdminContact is an administrator of the organisation.
type AdminContact struct {
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
	Email     string `json:"email,omitempty"`
	Phone     string `json:"phone,omitempty"`
}

// IssuerAttributes are an issuer's attributes.
type IssuerAttributes struct {
	Enabled *bool  `json:"enabled,omitempty"`
	Created *int64 `json:"created,omitempty"`
	Updated *int64 `json:"updated,omitempty"`
}

// IssuerItem is one entry of the issuer listing.
type IssuerItem struct {
	ID       string `json:"id,omitempty"`
	Provider string `json:"provider,omitempty"`
}

// Page is one page of a listing; NextToken is the opaque $skiptoken of the next page.
type Page[T any] struct {
	Value     []T    `json:"value"`
	NextToken string `json:"-"`
}

// ListOptions selects one page of a listing.
type ListOptions struct {
	MaxResults     int
	SkipToken      string
	IncludePending bool
}

// BackupResult is the answer of Backup and the input of Restore.
type BackupResult struct {
	Value provider.B64 `json:"value"`
}

// Event is a recorded lifetime notification (EmailContacts): Coffer has no mail transport,
// so the notice is stored for the vault and logged.
type Event struct {
	Time        int64    `json:"time"`
	Certificate string   `json:"certificate"`
	Version     string   `json:"version"`
	Expires     int64    `json:"expires"`
	Contacts    []string `json:"contacts"`
	Message     string   `json:"message"`
}
