// Package certificates implements the Key Vault certificates operations (certificates.json):
// certificate policies, issuance (self-signed, by the tenant's certificate authority, or by
// an outside CA through a CSR and merge), import of PFX and PEM content, versions, soft
// delete, backup, contacts, issuers and the lifetime actions (auto-renewal, expiry
// notices). It follows Key Vault's object model: each certificate version has a key version
// under /keys/<name> and a secret version under /secrets/<name> with the same id, written
// through the keys and secrets services' managed seams in the certificate's own
// transaction. X.509 and PKCS#12/PEM encoding live in package pki; the wire layer is
// internal/api.
package certificates
