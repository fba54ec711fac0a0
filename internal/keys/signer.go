package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/coffer-kms/coffer/internal/provider"
	"github.com/coffer-kms/coffer/internal/tenancy"
)

// PrepareManagedGenerate makes a certificate's key inside the provider (the HSM key types,
// whose private key never leaves the token) for CommitManaged; spec names type, size and
// curve. Signer signs the certificate (or CSR) with it.
func (s *Service) PrepareManagedGenerate(ctx context.Context, v tenancy.Vault, base, name string, mk ManagedKey, spec provider.KeySpec) (*PreparedKey, error) {
	sc, lc, err := managedTarget(v, base, name, mk.Version)
	if err != nil {
		return nil, err
	}
	if err := checkKty(sc, spec.Type); err != nil {
		return nil, err
	}
	// A vault's certificate keys may leave the token wrapped by the tenant's certificate
	// wrapping key, for certificate backups (certkeys.go), as a pool's keys by its domain's.
	spec.Store, spec.SecurityDomain = sc.store(), sc.pool() || s.certWrapKey != nil
	key, err := s.generate(ctx, sc.vault, spec)
	if err != nil {
		return nil, provErr("create the certificate's key", err)
	}
	d := draft{ops: managedOps(spec.Type, mk.KeyOps), enabled: mk.Enabled, nbf: cloneI64(mk.NotBefore), exp: cloneI64(mk.Expires)}
	rec := d.record(key, spec.PublicExponent, s.clock().Unix())
	rec.Version = mk.Version
	return &PreparedKey{sc: sc, lc: lc, name: name, rec: rec, key: key}, nil
}

// managedOps narrows the operations a key type supports to those asked for (nil: all).
func managedOps(kty provider.KeyType, want []string) []string {
	if want == nil {
		return defaultOps(kty)
	}
	var ops []string
	for _, op := range want {
		if contains(defaultOps(kty), op) {
			ops = append(ops, op)
		}
	}
	return ops
}

// Signer returns a crypto.Signer over the prepared key, for x509.CreateCertificate and
// x509.CreateCertificateRequest: RSA signs PKCS #1 v1.5 (or PSS when asked), EC signs and
// the raw r‖s is re-encoded as the ASN.1 that crypto.Signer promises.
func (p *PreparedKey) Signer(ctx context.Context) (crypto.Signer, error) {
	pub, err := publicKeyOf((*provider.JWK)(p.rec.Public))
	if err != nil {
		return nil, err
	}
	return &providerSigner{ctx: ctx, key: p.key, pub: pub}, nil
}

type providerSigner struct {
	ctx context.Context
	key provider.Key
	pub crypto.PublicKey
}

func (s *providerSigner) Public() crypto.PublicKey { return s.pub }

func (s *providerSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	bits := map[crypto.Hash]string{crypto.SHA256: "256", crypto.SHA384: "384", crypto.SHA512: "512"}[opts.HashFunc()]
	if bits == "" {
		return nil, fmt.Errorf("keys: hash %v is not offered for signing", opts.HashFunc())
	}
	switch s.pub.(type) {
	case *rsa.PublicKey:
		alg := "RS" + bits
		if _, pss := opts.(*rsa.PSSOptions); pss {
			alg = "PS" + bits
		}
		return s.key.Sign(s.ctx, alg, digest)
	case *ecdsa.PublicKey:
		raw, err := s.key.Sign(s.ctx, "ES"+bits, digest)
		if err != nil {
			return nil, err
		}
		half := len(raw) / 2
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1BigInt(new(big.Int).SetBytes(raw[:half]))
			b.AddASN1BigInt(new(big.Int).SetBytes(raw[half:]))
		})
		return b.Bytes()
	}
	return nil, errors.New("keys: the key cannot sign certificates")
}

// publicKeyOf turns a stored public JWK (RSA or NIST EC) into a crypto.PublicKey.
func publicKeyOf(j *provider.JWK) (crypto.PublicKey, error) {
	if j == nil {
		return nil, errors.New("keys: the key has no public part")
	}
	switch baseType(j.Kty) {
	case provider.RSA:
		e := new(big.Int).SetBytes(j.E)
		if !e.IsInt64() || e.Int64() > 1<<31-1 {
			return nil, errors.New("keys: the RSA exponent is out of range")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(j.N), E: int(e.Int64())}, nil
	case provider.EC:
		curve := map[provider.Curve]elliptic.Curve{provider.P256: elliptic.P256(), provider.P384: elliptic.P384(), provider.P521: elliptic.P521()}[j.Crv]
		if curve == nil {
			return nil, fmt.Errorf("keys: curve %s cannot sign certificates", j.Crv)
		}
		return ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, j.X...), j.Y...))
	}
	return nil, errors.New("keys: only RSA and EC keys sign certificates")
}

// SetAttributes sets the enabled flag and validity window of a prepared key, once the
// certificate it belongs to is issued.
func (p *PreparedKey) SetAttributes(enabled bool, nbf, exp *int64) {
	p.rec.Enabled, p.rec.NotBefore, p.rec.Expires = enabled, cloneI64(nbf), cloneI64(exp)
}
