package sdblob

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"

	"github.com/coffer-kms/coffer/internal/strictb64"
)

// Version 2 of the security domain is the Azure CLI's format (internal/azsd): the pool's
// domain is one datum of the security-domain file, tagged DomainTag, whose plaintext is the
// JSON of Domain. A restore blob brings it back to a new pool.

// DomainTag tags the datum holding the pool's domain (and is its key's KDF label).
const DomainTag = "coffer-sd/2"

// Domain is what a security domain of version 2 carries: the domain id, the domain key and
// the quorum it was split for.
type Domain struct {
	ID       string `json:"domain_id"`
	Key      []byte `json:"-"`
	Required int    `json:"required"`
}

type domainJSON struct {
	ID       string `json:"domain_id"`
	Key      string `json:"domain_key"` // base64url, 32 bytes
	Required int    `json:"required"`
}

// Marshal is the datum plaintext of d. The caller clears it.
func (d *Domain) Marshal() ([]byte, error) {
	if len(d.Key) != DomainKeyLen || !domainIDRE.MatchString(d.ID) {
		return nil, errors.New("sdblob: a domain needs a uuid and a 32-byte key")
	}
	return json.Marshal(domainJSON{ID: d.ID, Key: b64.EncodeToString(d.Key), Required: d.Required})
}

// ParseDomain parses a datum plaintext strictly. The caller clears d.Key.
func ParseDomain(b []byte) (*Domain, error) {
	var j domainJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil || dec.More() {
		return nil, invalid("the security domain's data is not a Coffer domain")
	}
	key, err := strictb64.URL.DecodeString("domain_key", j.Key)
	if err != nil || len(key) != DomainKeyLen || !domainIDRE.MatchString(j.ID) || j.Required < MinQuorum || j.Required > MaxCustodians {
		clear(key)
		return nil, invalid("the security domain's data is not a Coffer domain")
	}
	return &Domain{ID: j.ID, Key: key, Required: j.Required}, nil
}

// CertThumbprint returns x5t_256 of a custodian key, the base64url SHA-256 of the DER of its
// certificate x5c[0]: the Azure CLI finds a custodian's share by it, so a key without x5c
// is refused. A given x5t#S256 must agree.
func (j JWK) CertThumbprint() (string, error) {
	if len(j.X5c) == 0 {
		return "", invalid("the key has no certificate (x5c): the Azure CLI finds a custodian's share by the SHA-256 of its certificate")
	}
	der, err := strictb64.Std.DecodeString("x5c[0]", j.X5c[0])
	if err != nil {
		return "", invalid("%v", err)
	}
	sum := sha256.Sum256(der)
	tp := b64.EncodeToString(sum[:])
	if j.X5tS256 != "" && j.X5tS256 != tp {
		return "", invalid("x5t#S256 is not the SHA-256 of x5c[0]")
	}
	return tp, nil
}

// TransferJWK is the JWK of a pool's transfer (exchange) key: n/e, its self-signed
// certificate in x5c (from which the Azure CLI writes the exchange-key PEM) and x5t#S256.
func TransferJWK(pub *rsa.PublicKey, certDER []byte) JWK {
	j := PublicJWK(pub)
	j.KeyOps = []string{"wrapKey", "encrypt"}
	j.X5c = []string{base64.StdEncoding.EncodeToString(certDER)}
	sum := sha256.Sum256(certDER)
	j.X5tS256 = b64.EncodeToString(sum[:])
	return j
}

// Certificate returns the certificate x5c[0] of j, checked against n/e (PublicKey).
func (j JWK) Certificate() (*x509.Certificate, error) {
	if _, err := j.PublicKey(); err != nil {
		return nil, err
	}
	if len(j.X5c) == 0 {
		return nil, invalid("the key has no certificate (x5c)")
	}
	der, _ := strictb64.Std.DecodeString("x5c[0]", j.X5c[0]) // PublicKey decoded it
	return x509.ParseCertificate(der)
}
