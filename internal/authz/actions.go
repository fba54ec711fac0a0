package authz

import "strings"

// Action names one operation that can be authorized, in Azure's form
// ("Microsoft.KeyVault/vaults/keys/sign/action") or Coffer's ("Coffer/vaults/write").
// Actions compare case-insensitively, as Azure's do.
type Action string

// Vault data actions for keys. Source: MicrosoftDocs/azure-docs
// articles/role-based-access-control/permissions/security.md, section Microsoft.KeyVault,
// DataAction table (ms.date 03/01/2024). Note that rotation policies have their own
// resource type, "vaults/keyrotationpolicies", not "vaults/keys/rotationpolicy".
const (
	KeysRead               Action = "Microsoft.KeyVault/vaults/keys/read"
	KeysCreate             Action = "Microsoft.KeyVault/vaults/keys/create/action"
	KeysImport             Action = "Microsoft.KeyVault/vaults/keys/import/action"
	KeysUpdate             Action = "Microsoft.KeyVault/vaults/keys/update/action"
	KeysDelete             Action = "Microsoft.KeyVault/vaults/keys/delete"
	KeysBackup             Action = "Microsoft.KeyVault/vaults/keys/backup/action"
	KeysRestore            Action = "Microsoft.KeyVault/vaults/keys/restore/action"
	KeysRecover            Action = "Microsoft.KeyVault/vaults/keys/recover/action"
	KeysPurge              Action = "Microsoft.KeyVault/vaults/keys/purge/action"
	KeysEncrypt            Action = "Microsoft.KeyVault/vaults/keys/encrypt/action"
	KeysDecrypt            Action = "Microsoft.KeyVault/vaults/keys/decrypt/action"
	KeysWrap               Action = "Microsoft.KeyVault/vaults/keys/wrap/action"
	KeysUnwrap             Action = "Microsoft.KeyVault/vaults/keys/unwrap/action"
	KeysSign               Action = "Microsoft.KeyVault/vaults/keys/sign/action"
	KeysVerify             Action = "Microsoft.KeyVault/vaults/keys/verify/action"
	KeysRelease            Action = "Microsoft.KeyVault/vaults/keys/release/action"
	KeysRotate             Action = "Microsoft.KeyVault/vaults/keys/rotate/action"
	KeyRotationPolicyRead  Action = "Microsoft.KeyVault/vaults/keyrotationpolicies/read"
	KeyRotationPolicyWrite Action = "Microsoft.KeyVault/vaults/keyrotationpolicies/write"
)

// Vault data actions for secrets (same source as the key actions).
const (
	SecretsReadMetadata Action = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
	SecretsGetSecret    Action = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
	SecretsSetSecret    Action = "Microsoft.KeyVault/vaults/secrets/setSecret/action"
	SecretsUpdate       Action = "Microsoft.KeyVault/vaults/secrets/update/action"
	SecretsDelete       Action = "Microsoft.KeyVault/vaults/secrets/delete"
	SecretsBackup       Action = "Microsoft.KeyVault/vaults/secrets/backup/action"
	SecretsRestore      Action = "Microsoft.KeyVault/vaults/secrets/restore/action"
	SecretsRecover      Action = "Microsoft.KeyVault/vaults/secrets/recover/action"
	SecretsPurge        Action = "Microsoft.KeyVault/vaults/secrets/purge/action"
)

// Vault data actions for certificates, certificate issuers ("certificatecas") and
// certificate contacts (same source as the key actions). Azure defines no separate read
// action for contacts.
const (
	CertificatesRead         Action = "Microsoft.KeyVault/vaults/certificates/read"
	CertificatesCreate       Action = "Microsoft.KeyVault/vaults/certificates/create/action"
	CertificatesImport       Action = "Microsoft.KeyVault/vaults/certificates/import/action"
	CertificatesUpdate       Action = "Microsoft.KeyVault/vaults/certificates/update/action"
	CertificatesDelete       Action = "Microsoft.KeyVault/vaults/certificates/delete"
	CertificatesBackup       Action = "Microsoft.KeyVault/vaults/certificates/backup/action"
	CertificatesRestore      Action = "Microsoft.KeyVault/vaults/certificates/restore/action"
	CertificatesRecover      Action = "Microsoft.KeyVault/vaults/certificates/recover/action"
	CertificatesPurge        Action = "Microsoft.KeyVault/vaults/certificates/purge/action"
	CertificateIssuersRead   Action = "Microsoft.KeyVault/vaults/certificatecas/read"
	CertificateIssuersWrite  Action = "Microsoft.KeyVault/vaults/certificatecas/write"
	CertificateIssuersDelete Action = "Microsoft.KeyVault/vaults/certificatecas/delete"
	CertificateContactsWrite Action = "Microsoft.KeyVault/vaults/certificatecontacts/write"
)

// Managed HSM data actions: the 34 values of the DataAction enum in the Key Vault
// administration.json swagger (KEYVAULT-NOTES §1.5), plus keys/rotate/action, which the
// service's role definitions and managed-hsm/built-in-roles.md use for POST /keys/{n}/rotate.
const (
	HSMKeysRead                      Action = "Microsoft.KeyVault/managedHsm/keys/read/action"
	HSMKeysWrite                     Action = "Microsoft.KeyVault/managedHsm/keys/write/action"
	HSMKeysCreate                    Action = "Microsoft.KeyVault/managedHsm/keys/create"
	HSMKeysDelete                    Action = "Microsoft.KeyVault/managedHsm/keys/delete"
	HSMKeysImport                    Action = "Microsoft.KeyVault/managedHsm/keys/import/action"
	HSMKeysExport                    Action = "Microsoft.KeyVault/managedHsm/keys/export/action"
	HSMKeysRelease                   Action = "Microsoft.KeyVault/managedHsm/keys/release/action"
	HSMKeysBackup                    Action = "Microsoft.KeyVault/managedHsm/keys/backup/action"
	HSMKeysRestore                   Action = "Microsoft.KeyVault/managedHsm/keys/restore/action"
	HSMKeysRotate                    Action = "Microsoft.KeyVault/managedHsm/keys/rotate/action"
	HSMKeysEncrypt                   Action = "Microsoft.KeyVault/managedHsm/keys/encrypt/action"
	HSMKeysDecrypt                   Action = "Microsoft.KeyVault/managedHsm/keys/decrypt/action"
	HSMKeysWrap                      Action = "Microsoft.KeyVault/managedHsm/keys/wrap/action"
	HSMKeysUnwrap                    Action = "Microsoft.KeyVault/managedHsm/keys/unwrap/action"
	HSMKeysSign                      Action = "Microsoft.KeyVault/managedHsm/keys/sign/action"
	HSMKeysVerify                    Action = "Microsoft.KeyVault/managedHsm/keys/verify/action"
	HSMDeletedKeysRead               Action = "Microsoft.KeyVault/managedHsm/keys/deletedKeys/read/action"
	HSMDeletedKeysRecover            Action = "Microsoft.KeyVault/managedHsm/keys/deletedKeys/recover/action"
	HSMDeletedKeysPurge              Action = "Microsoft.KeyVault/managedHsm/keys/deletedKeys/delete"
	HSMRoleAssignmentsRead           Action = "Microsoft.KeyVault/managedHsm/roleAssignments/read/action"
	HSMRoleAssignmentsWrite          Action = "Microsoft.KeyVault/managedHsm/roleAssignments/write/action"
	HSMRoleAssignmentsDelete         Action = "Microsoft.KeyVault/managedHsm/roleAssignments/delete/action"
	HSMRoleDefinitionsRead           Action = "Microsoft.KeyVault/managedHsm/roleDefinitions/read/action"
	HSMRoleDefinitionsWrite          Action = "Microsoft.KeyVault/managedHsm/roleDefinitions/write/action"
	HSMRoleDefinitionsDelete         Action = "Microsoft.KeyVault/managedHsm/roleDefinitions/delete/action"
	HSMSecurityDomainDownload        Action = "Microsoft.KeyVault/managedHsm/securitydomain/download/action"
	HSMSecurityDomainDownloadRead    Action = "Microsoft.KeyVault/managedHsm/securitydomain/download/read"
	HSMSecurityDomainUpload          Action = "Microsoft.KeyVault/managedHsm/securitydomain/upload/action"
	HSMSecurityDomainUploadRead      Action = "Microsoft.KeyVault/managedHsm/securitydomain/upload/read"
	HSMSecurityDomainTransferKeyRead Action = "Microsoft.KeyVault/managedHsm/securitydomain/transferkey/read"
	HSMBackupStart                   Action = "Microsoft.KeyVault/managedHsm/backup/start/action"
	HSMBackupStatus                  Action = "Microsoft.KeyVault/managedHsm/backup/status/action"
	HSMRestoreStart                  Action = "Microsoft.KeyVault/managedHsm/restore/start/action"
	HSMRestoreStatus                 Action = "Microsoft.KeyVault/managedHsm/restore/status/action"
	HSMRNG                           Action = "Microsoft.KeyVault/managedHsm/rng/action"
)

// Coffer management actions. They are granted through a role's Actions (never its
// DataActions) and decide nothing about keys, secrets or certificates.
const (
	TenantsRead          Action = "Coffer/tenants/read"
	TenantsWrite         Action = "Coffer/tenants/write"
	VaultsRead           Action = "Coffer/vaults/read"
	VaultsWrite          Action = "Coffer/vaults/write"
	VaultsDelete         Action = "Coffer/vaults/delete"
	ManagedHSMsRead      Action = "Coffer/managedHsms/read"
	ManagedHSMsWrite     Action = "Coffer/managedHsms/write"
	ManagedHSMsDelete    Action = "Coffer/managedHsms/delete"
	PrincipalsRead       Action = "Coffer/principals/read"
	PrincipalsWrite      Action = "Coffer/principals/write"
	RoleAssignmentsRead  Action = "Coffer/roleAssignments/read"
	RoleAssignmentsWrite Action = "Coffer/roleAssignments/write"
	RoleDefinitionsRead  Action = "Coffer/roleDefinitions/read"
	RoleDefinitionsWrite Action = "Coffer/roleDefinitions/write"
	IssuersRead          Action = "Coffer/issuers/read"
	IssuersWrite         Action = "Coffer/issuers/write"
	CAsRead              Action = "Coffer/certificateAuthorities/read"
	CAsWrite             Action = "Coffer/certificateAuthorities/write"
	// AttestationRead and AttestationWrite govern a tenant's attestation providers and
	// their attestation policies (internal/attest).
	AttestationRead       Action = "Coffer/attestationProviders/read"
	AttestationWrite      Action = "Coffer/attestationProviders/write"
	AccessRequestsCreate  Action = "Coffer/accessRequests/create"
	AccessRequestsApprove Action = "Coffer/accessRequests/approve"
	AuditRead             Action = "Coffer/audit/read"
	SysSeal               Action = "Coffer/sys/seal"
	SysRotate             Action = "Coffer/sys/rotate"
	SysMetrics            Action = "Coffer/sys/metrics"
)

// family says which scopes an action can be decided on.
type family uint8

const (
	famVaultKeys         family = iota + 1 // a vault, or one of its keys
	famVaultSecrets                        // a vault, or one of its secrets
	famVaultCertificates                   // a vault, or one of its certificates
	famVault                               // a vault only (issuers, contacts)
	famHSMKeys                             // an HSM pool, or one of its keys
	famHSM                                 // an HSM pool only
	famHSMRoles                            // an HSM pool or one of its keys (role assignment scopes)
	famManagement                          // any scope
	famPlatform                            // the platform scope "/" only
)

type actionInfo struct {
	action Action
	fam    family
}

// vocabulary is every action Decide knows, in a fixed order: the index of an action in it
// is its bit in an actionSet. Vault data actions, then Managed HSM data actions, then
// Coffer management actions.
var vocabulary = [...]actionInfo{
	{KeysRead, famVaultKeys},
	{KeysCreate, famVaultKeys},
	{KeysImport, famVaultKeys},
	{KeysUpdate, famVaultKeys},
	{KeysDelete, famVaultKeys},
	{KeysBackup, famVaultKeys},
	{KeysRestore, famVaultKeys},
	{KeysRecover, famVaultKeys},
	{KeysPurge, famVaultKeys},
	{KeysEncrypt, famVaultKeys},
	{KeysDecrypt, famVaultKeys},
	{KeysWrap, famVaultKeys},
	{KeysUnwrap, famVaultKeys},
	{KeysSign, famVaultKeys},
	{KeysVerify, famVaultKeys},
	{KeysRelease, famVaultKeys},
	{KeysRotate, famVaultKeys},
	{KeyRotationPolicyRead, famVaultKeys},
	{KeyRotationPolicyWrite, famVaultKeys},

	{SecretsReadMetadata, famVaultSecrets},
	{SecretsGetSecret, famVaultSecrets},
	{SecretsSetSecret, famVaultSecrets},
	{SecretsUpdate, famVaultSecrets},
	{SecretsDelete, famVaultSecrets},
	{SecretsBackup, famVaultSecrets},
	{SecretsRestore, famVaultSecrets},
	{SecretsRecover, famVaultSecrets},
	{SecretsPurge, famVaultSecrets},

	{CertificatesRead, famVaultCertificates},
	{CertificatesCreate, famVaultCertificates},
	{CertificatesImport, famVaultCertificates},
	{CertificatesUpdate, famVaultCertificates},
	{CertificatesDelete, famVaultCertificates},
	{CertificatesBackup, famVaultCertificates},
	{CertificatesRestore, famVaultCertificates},
	{CertificatesRecover, famVaultCertificates},
	{CertificatesPurge, famVaultCertificates},
	{CertificateIssuersRead, famVault},
	{CertificateIssuersWrite, famVault},
	{CertificateIssuersDelete, famVault},
	{CertificateContactsWrite, famVault},

	{HSMKeysRead, famHSMKeys},
	{HSMKeysWrite, famHSMKeys},
	{HSMKeysCreate, famHSMKeys},
	{HSMKeysDelete, famHSMKeys},
	{HSMKeysImport, famHSMKeys},
	{HSMKeysExport, famHSMKeys},
	{HSMKeysRelease, famHSMKeys},
	{HSMKeysBackup, famHSMKeys},
	{HSMKeysRestore, famHSMKeys},
	{HSMKeysRotate, famHSMKeys},
	{HSMKeysEncrypt, famHSMKeys},
	{HSMKeysDecrypt, famHSMKeys},
	{HSMKeysWrap, famHSMKeys},
	{HSMKeysUnwrap, famHSMKeys},
	{HSMKeysSign, famHSMKeys},
	{HSMKeysVerify, famHSMKeys},
	{HSMDeletedKeysRead, famHSMKeys},
	{HSMDeletedKeysRecover, famHSMKeys},
	{HSMDeletedKeysPurge, famHSMKeys},
	{HSMRoleAssignmentsRead, famHSMRoles},
	{HSMRoleAssignmentsWrite, famHSMRoles},
	{HSMRoleAssignmentsDelete, famHSMRoles},
	{HSMRoleDefinitionsRead, famHSM},   // role definitions live at the pool's "/" only
	{HSMRoleDefinitionsWrite, famHSM},  // role definitions live at the pool's "/" only
	{HSMRoleDefinitionsDelete, famHSM}, // role definitions live at the pool's "/" only
	{HSMSecurityDomainDownload, famHSM},
	{HSMSecurityDomainDownloadRead, famHSM},
	{HSMSecurityDomainUpload, famHSM},
	{HSMSecurityDomainUploadRead, famHSM},
	{HSMSecurityDomainTransferKeyRead, famHSM},
	{HSMBackupStart, famHSM},
	{HSMBackupStatus, famHSM},
	{HSMRestoreStart, famHSM},
	{HSMRestoreStatus, famHSM},
	{HSMRNG, famHSM},

	{TenantsRead, famManagement},
	{TenantsWrite, famManagement},
	{VaultsRead, famManagement},
	{VaultsWrite, famManagement},
	{VaultsDelete, famManagement},
	{ManagedHSMsRead, famManagement},
	{ManagedHSMsWrite, famManagement},
	{ManagedHSMsDelete, famManagement},
	{PrincipalsRead, famManagement},
	{PrincipalsWrite, famManagement},
	{RoleAssignmentsRead, famManagement},
	{RoleAssignmentsWrite, famManagement},
	{RoleDefinitionsRead, famManagement},
	{RoleDefinitionsWrite, famManagement},
	{IssuersRead, famManagement},
	{IssuersWrite, famManagement},
	{CAsRead, famManagement},
	{CAsWrite, famManagement},
	{AttestationRead, famManagement},
	{AttestationWrite, famManagement},
	{AccessRequestsCreate, famManagement},
	{AccessRequestsApprove, famManagement},
	{AuditRead, famManagement},
	{SysSeal, famPlatform},
	{SysRotate, famPlatform},
	{SysMetrics, famPlatform},
}

// actionSet is a bit set over vocabulary.
type actionSet [(len(vocabulary) + 63) / 64]uint64

func (s *actionSet) add(i int)             { s[i/64] |= 1 << (uint(i) % 64) }
func (s *actionSet) has(i int) bool        { return s[i/64]&(1<<(uint(i)%64)) != 0 }
func (f family) isData() bool              { return f != famManagement && f != famPlatform }
func (a actionInfo) isData() bool          { return a.fam.isData() }
func (a actionInfo) matches(b Action) bool { return strings.EqualFold(string(a.action), string(b)) }

// actionIndex maps the canonical spelling of every action to its index in vocabulary.
var actionIndex = func() map[Action]int {
	m := make(map[Action]int, len(vocabulary))
	for i, v := range vocabulary {
		m[v.action] = i
	}
	return m
}()

// lookup returns the index of a in vocabulary, comparing case-insensitively, or -1. The
// canonical spelling is found by one map look-up; any other spelling by a scan, which
// allocates nothing.
func lookup(a Action) int {
	if i, ok := actionIndex[a]; ok {
		return i
	}
	for i, v := range vocabulary {
		if v.matches(a) {
			return i
		}
	}
	return -1
}

// AllDataActions returns every data action Coffer authorizes: the vault actions for keys,
// secrets and certificates, then the Managed HSM actions. The caller owns the slice.
func AllDataActions() []Action {
	var out []Action
	for _, v := range vocabulary {
		if v.isData() {
			out = append(out, v.action)
		}
	}
	return out
}

// AllManagementActions returns every Coffer management action ("Coffer/…"). The caller
// owns the slice.
func AllManagementActions() []Action {
	var out []Action
	for _, v := range vocabulary {
		if !v.isData() {
			out = append(out, v.action)
		}
	}
	return out
}

// IsDataAction reports whether a is one of the data actions of AllDataActions, compared
// case-insensitively. Data actions are granted by a role's DataActions; management
// actions by its Actions.
func IsDataAction(a Action) bool {
	i := lookup(a)
	return i >= 0 && vocabulary[i].isData()
}

// IsKnownAction reports whether a is in Coffer's vocabulary (a data or management action).
// Decide denies any other action.
func IsKnownAction(a Action) bool { return lookup(a) >= 0 }
