package server

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/coffer-kms/coffer/internal/byok"
	"github.com/coffer-kms/coffer/internal/provider/providertest"
)

// Wycheproof through the HTTPS API (SECURITY-NOTES §4 "Wycheproof"). Every one of the 62
// vector files the project copied (15,163 cases) is accounted for, twice: once for software
// keys and once for HSM keys (SoftHSM2). A file that maps to a Key Vault operation runs
// through it over HTTPS: the vector's key is imported (PUT /keys/{name} with the JWK for
// software keys; BYOK, kty RSA-HSM or oct-HSM, for keys in the token), then decrypt,
// unwrapkey, sign, verify, encrypt or wrapkey is called as the file calls for, and every
// valid case must be accepted with the vector's bytes, every invalid one refused with a 4xx
// in Key Vault's error shape ({"error":{"code","message"}}, no PKCS #11 return value in it).
// Cases the API cannot run are counted under a named skip class; where the reason is that
// Coffer refuses something (a key size, a label, a multi-prime key, a GCM IV length), the
// refusal itself is checked over HTTPS. The per-file and per-class counts are logged
// (go test -run TestWycheproofThroughHTTPS -v ./internal/server).
//
// Verify vectors (rsa_signature_*, rsa_pss_*, ecdsa_*) give only a public key, and Key
// Vault's import takes only private keys (a JWK without d is refused), so they cannot reach
// verify on a key of the vault; they run at the provider, whose Verify the API calls
// (soft.TestWycheproof). The signing vectors that do carry a private key (rsa_pkcs1_*_sig_gen)
// run sign and verify here.

// The vector file format (providertest.LoadWycheproof reads it).
type (
	wpDoc   = providertest.WycheproofFile
	wpGroup = providertest.WycheproofGroup
	wpCase  = providertest.WycheproofTest
)

// Where the repository keeps its copies (relative to this package); the files it does not
// copy are those no Key Vault operation takes.
const (
	wpSoftDir  = "../provider/soft/testdata/wycheproof"
	wpAESDir   = "../keywrap/testdata/wycheproof"
	wpTokenDir = "../identity/token/testdata/wycheproof"
)

// wpEntry is one vector file: where it is, how it runs, or the skip class of all its cases.
type wpEntry struct {
	file string
	dir  string // "" when the repository holds no copy; cases is then the upstream count
	// cases is the number of vectors of a file not copied (SOURCE.md of the shared set);
	// for a copied file it is read from the file and checked against numberOfTests.
	cases int
	run   func(r *wpRun, f *wpDoc)
	skip  string // the class of every case when run is nil
}

// Skip classes of whole files.
const (
	skipPublicOnly = "verify vector with a public key only: Key Vault imports private keys only (runs at the provider: soft.TestWycheproof)"
	skipPairECDSA  = "ECDSA hash/curve pair Key Vault does not offer (P-256+SHA-512, P-384+SHA-256/512, P-256K+SHA-512)"
	skipDER        = "ECDSA DER signature: Key Vault signatures are IEEE P1363 r‖s, and the key is public only"
	skipHMAC       = "HMAC: no Key Vault operation"
	skipHKDF       = "HKDF: no Key Vault operation"
	skipJOSE       = "JOSE: no Key Vault operation (bearer tokens: identity/token.TestWycheproofJWS runs the JWS and JWK files)"
)

// wpCatalogue is every file of the shared Wycheproof set (SOURCE.md: 62 files, 15,163 cases).
func wpCatalogue() []wpEntry {
	var cat []wpEntry
	add := func(e wpEntry) { cat = append(cat, e) }
	for _, f := range []string{"aes_cbc_pkcs5_test.json", "aes_gcm_test.json", "aes_kwp_test.json", "aes_wrap_test.json"} {
		add(wpEntry{file: f, dir: wpAESDir, run: wpAES})
	}
	for _, c := range []string{"secp256k1", "secp256r1", "secp384r1", "secp521r1"} {
		add(wpEntry{file: "ecdh_" + c + "_webcrypto_test.json", dir: wpSoftDir, run: wpECImport})
	}
	for _, f := range []string{"secp256k1_sha256", "secp256r1_sha256", "secp384r1_sha384", "secp521r1_sha512"} {
		add(wpEntry{file: "ecdsa_" + f + "_p1363_test.json", dir: wpSoftDir, skip: skipPublicOnly})
	}
	for _, f := range []string{"secp256k1_sha512", "secp256r1_sha512", "secp384r1_sha512"} {
		add(wpEntry{file: "ecdsa_" + f + "_p1363_test.json", dir: wpSoftDir, skip: skipPairECDSA})
	}
	// The DER twins are not copied: no Key Vault operation takes a DER signature.
	for f, n := range map[string]int{"secp256k1_sha256": 476, "secp256k1_sha512": 546, "secp256r1_sha256": 484, "secp256r1_sha512": 554,
		"secp384r1_sha256": 472, "secp384r1_sha384": 504, "secp384r1_sha512": 542, "secp521r1_sha512": 542} {
		add(wpEntry{file: "ecdsa_" + f + "_test.json", cases: n, skip: skipDER})
	}
	add(wpEntry{file: "hkdf_sha256_test.json", cases: 86, skip: skipHKDF})
	for _, h := range []string{"256", "384", "512"} {
		add(wpEntry{file: "hmac_sha" + h + "_test.json", cases: 174, skip: skipHMAC})
	}
	add(wpEntry{file: "json_web_crypto_test.json", cases: 83, skip: skipJOSE})
	add(wpEntry{file: "json_web_encryption_test.json", cases: 139, skip: skipJOSE})
	add(wpEntry{file: "json_web_key_test.json", dir: wpTokenDir, skip: skipJOSE})
	add(wpEntry{file: "json_web_signature_test.json", dir: wpTokenDir, skip: skipJOSE})
	for _, f := range []string{"rsa_oaep_2048_sha1_mgf1sha1_test.json", "rsa_oaep_2048_sha256_mgf1sha256_test.json",
		"rsa_oaep_3072_sha256_mgf1sha256_test.json", "rsa_oaep_4096_sha256_mgf1sha256_test.json", "rsa_oaep_misc_test.json",
		"rsa_pkcs1_2048_test.json", "rsa_pkcs1_3072_test.json", "rsa_pkcs1_4096_test.json"} {
		add(wpEntry{file: f, dir: wpSoftDir, run: wpRSADecrypt})
	}
	for _, size := range []string{"2048", "3072", "4096"} {
		add(wpEntry{file: "rsa_pkcs1_" + size + "_sig_gen_test.json", dir: wpSoftDir, run: wpRSASign})
	}
	for _, f := range []string{"2048_sha256_mgf1_0", "2048_sha256_mgf1_32", "2048_sha384_mgf1_48", "3072_sha256_mgf1_32",
		"4096_sha256_mgf1_32", "4096_sha384_mgf1_48", "4096_sha512_mgf1_32", "4096_sha512_mgf1_64", "misc"} {
		add(wpEntry{file: "rsa_pss_" + f + "_test.json", dir: wpSoftDir, skip: skipPublicOnly})
	}
	for _, size := range []string{"2048", "3072", "4096"} {
		for _, h := range []string{"256", "384", "512"} {
			add(wpEntry{file: "rsa_signature_" + size + "_sha" + h + "_test.json", dir: wpSoftDir, skip: skipPublicOnly})
		}
	}
	add(wpEntry{file: "rsa_three_primes_oaep_2048_sha1_mgf1sha1_test.json", dir: wpSoftDir, run: wpThreePrimes})
	add(wpEntry{file: "rsa_three_primes_oaep_4096_sha256_mgf1sha256_test.json", dir: wpSoftDir, run: wpThreePrimes})
	sort.Slice(cat, func(i, j int) bool { return cat[i].file < cat[j].file })
	return cat
}

// wpKeys puts vector keys into the vault for one kind of key (software or HSM).
type wpKeys struct {
	name string // "soft" or "HSM"
	// rsa imports an RSA private key (the vector's JWK when it has one, else one built from
	// the PKCS #8 key) and returns the answer.
	rsa func(t *testing.T, name string, jwk json.RawMessage, pkcs8 []byte) answer
	// aes imports a raw AES key as oct-HSM; nil where the kind has no AES keys.
	aes func(t *testing.T, name string, key []byte) answer
	// ec imports a private EC key given as a JWK: the key d on the curve of the private JWK
	// priv, with the public part (crv, x, y) of pub.
	ec func(t *testing.T, name string, priv, pub map[string]any) answer
	// noCurve names the curves the kind does not offer.
	noCurve map[string]bool
	// noOAEP256 is set where the keys do not offer RSA-OAEP-256 (SoftHSM2 2.6.1).
	noOAEP256 bool
	// stored counts the imports that were accepted.
	stored int
}

// wpRun is the state of one file's run for one kind of key.
type wpRun struct {
	t     *testing.T
	c     *oracleClient
	keys  *wpKeys
	names map[string]string // key material (as a string) → imported key name, shared by files
	file  string
	tally wpTally
}

// wpTally counts one file's outcomes for one kind of key.
type wpTally struct {
	total, passed, failed         int
	valid, invalid                int
	acceptAccepted, acceptRefused int
	skipped                       map[string]int
	notes                         map[string]int // what was checked differently, for the log
}

func (r *wpRun) skip(class string, n int) { r.tally.skipped[class] += n }

// record compares an outcome with the vector's verdict; a refusal must be a Key Vault error.
func (r *wpRun) record(tc wpCase, accepted bool, a answer) {
	r.t.Helper()
	if !accepted {
		if err := kvRefusal(a); err != nil {
			r.fail(tc, "refused, but %v", err)
			return
		}
	}
	switch tc.Result {
	case "valid":
		if !accepted {
			r.fail(tc, "valid vector refused: %s", a)
			return
		}
		r.tally.valid++
	case "invalid":
		if accepted {
			r.fail(tc, "invalid vector accepted: %s", a)
			return
		}
		r.tally.invalid++
	default:
		if accepted {
			r.tally.acceptAccepted++
		} else {
			r.tally.acceptRefused++
		}
	}
	r.tally.passed++
}

func (r *wpRun) fail(tc wpCase, format string, args ...any) {
	r.t.Helper()
	r.tally.failed++
	r.t.Errorf("%s %s tc%d (%s %v): %s", r.keys.name, r.file, tc.TcID, tc.Comment, tc.Flags, fmt.Sprintf(format, args...))
}

// refused checks that a call the API must refuse was refused, and counts the case under class.
func (r *wpRun) refused(tc wpCase, class string, a answer) {
	r.t.Helper()
	if err := kvRefusal(a); err != nil {
		r.fail(tc, "%s: want a refusal, but %v", class, err)
		return
	}
	r.skip(class, 1)
}

// kvRefusal returns nil for a 4xx answer in Key Vault's error shape that names no PKCS #11
// return value, and says what is wrong otherwise.
func kvRefusal(a answer) error {
	if a.status < 400 || a.status > 499 {
		return fmt.Errorf("status %d, not 4xx: %s", a.status, a.body)
	}
	var e struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(a.body, &e); err != nil || e.Error == nil || e.Error.Code == "" || e.Error.Message == "" {
		return fmt.Errorf("body not in Key Vault's error shape: %s", a.body)
	}
	if strings.Contains(string(a.body), "CKR_") {
		return fmt.Errorf("body names a PKCS #11 return value: %s", a.body)
	}
	return nil
}

// key imports material once per kind of key and returns its name, or "" with the refusal.
func (r *wpRun) key(material string, load func(name string) answer) (string, answer) {
	if n, ok := r.names[material]; ok {
		return n, answer{status: 200}
	}
	n := fmt.Sprintf("wp-%s-%d", strings.ToLower(r.keys.name), len(r.names))
	a := load(n)
	if a.status != 200 {
		return "", a
	}
	r.names[material] = n
	return n, a
}

func unhexT(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in a vector: %v", err)
	}
	return b
}

// post runs a key operation with the given members (byte values base64url-encoded).
func (r *wpRun) post(name, op string, members map[string]any) answer {
	r.t.Helper()
	body := map[string]any{}
	for k, v := range members {
		if b, ok := v.([]byte); ok {
			body[k] = b64u(b)
		} else {
			body[k] = v
		}
	}
	return r.c.do(r.t, "POST", "/keys/"+name+"/"+op, body)
}

// rsaKeyOf returns the group's RSA key: PKCS #8 (always present) and its JWK.
func rsaKeyOf(t *testing.T, g wpGroup) (*rsa.PrivateKey, []byte, json.RawMessage) {
	t.Helper()
	der := unhexT(t, g.PrivateKeyPkcs8)
	k, err := x509.ParsePKCS8PrivateKey(der)
	priv, ok := k.(*rsa.PrivateKey)
	if err != nil || !ok {
		t.Fatalf("group PKCS #8 key: %v", err)
	}
	jwk := g.PrivateKeyJwk
	if len(jwk) == 0 {
		jwk = rsaJWK(priv)
	}
	return priv, der, jwk
}

// rsaJWK is the private JWK of a two-prime RSA key.
func rsaJWK(k *rsa.PrivateKey) json.RawMessage {
	m := map[string]string{"kty": "RSA", "n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes()), "d": b64u(k.D.Bytes()),
		"p": b64u(k.Primes[0].Bytes()), "q": b64u(k.Primes[1].Bytes()),
		"dp": b64u(k.Precomputed.Dp.Bytes()), "dq": b64u(k.Precomputed.Dq.Bytes()), "qi": b64u(k.Precomputed.Qinv.Bytes())}
	b, _ := json.Marshal(m)
	return b
}

// rsaImport imports the group's key, or checks that a key outside Key Vault's sizes is
// refused (returning the skip class).
func (r *wpRun) rsaImport(g wpGroup) (string, string) {
	t := r.t
	priv, der, jwk := rsaKeyOf(t, g)
	bits := priv.N.BitLen()
	name, a := r.key(hex.EncodeToString(der), func(n string) answer { return r.keys.rsa(t, n, jwk, der) })
	outside := ""
	switch {
	case bits != 2048 && bits != 3072 && bits != 4096:
		outside = "RSA key size not 2048/3072/4096 (import refused: checked)"
	case priv.E != 65537:
		outside = "RSA public exponent not 65537 (import refused: checked)"
	}
	switch {
	case outside != "":
		if name != "" {
			t.Errorf("%s %s: an RSA-%d key with e = %d was imported; Key Vault takes 2048, 3072 and 4096 bits with e = 65537", r.keys.name, r.file, bits, priv.E)
		} else if err := kvRefusal(a); err != nil {
			t.Errorf("%s %s: RSA-%d import: %v", r.keys.name, r.file, bits, err)
		}
		return "", outside
	case name == "":
		t.Fatalf("%s %s: import of the group's RSA-%d key: %s", r.keys.name, r.file, bits, a)
	}
	return name, ""
}

// wpRSADecrypt runs RSA1_5 and OAEP decryption vectors through decrypt and unwrapkey: a
// valid case must give the vector's message from both, an invalid one a refusal from both.
func wpRSADecrypt(r *wpRun, f *wpDoc) {
	for _, g := range f.TestGroups {
		alg := "RSA1_5"
		if f.Algorithm == "RSAES-OAEP" {
			switch {
			case g.Sha != g.MgfSha || (g.Sha != "SHA-1" && g.Sha != "SHA-256"):
				r.skip("OAEP hash/MGF1 pair not a Key Vault algorithm (only SHA-1/SHA-1 and SHA-256/SHA-256)", len(g.Tests))
				continue
			case g.Sha == "SHA-256":
				alg = "RSA-OAEP-256"
			default:
				alg = "RSA-OAEP"
			}
		}
		name, skip := r.rsaImport(g)
		if skip != "" {
			r.skip(skip, len(g.Tests))
			continue
		}
		r.decryptCases(name, alg, g.Tests)
	}
}

// decryptCases sends each case's ciphertext to decrypt and unwrapkey on key name with alg.
func (r *wpRun) decryptCases(name, alg string, tests []wpCase) {
	t := r.t
	for _, tc := range tests {
		ct := unhexT(t, tc.Ct)
		d := r.post(name, "decrypt", map[string]any{"alg": alg, "value": ct})
		u := r.post(name, "unwrapkey", map[string]any{"alg": alg, "value": ct})
		dv, _ := d.value()
		uv, _ := u.value()
		if d.status != u.status || !bytes.Equal(dv, uv) {
			r.fail(tc, "decrypt and unwrapkey disagree:\n%s\n%s", d, u)
			continue
		}
		switch {
		case alg == "RSA-OAEP-256" && r.keys.noOAEP256:
			r.refused(tc, "RSA-OAEP-256 on RSA-HSM: SoftHSM2 2.6.1 has no OAEP with SHA-256 (refusal checked)", d)
			continue
		case tc.Label != "":
			r.refused(tc, "OAEP label: Key Vault's decrypt takes none (refusal without the label checked)", d)
			continue
		}
		pt, ok := d.value()
		if ok && !bytes.Equal(pt, unhexT(t, tc.Msg)) {
			r.fail(tc, "decrypt gave %x; want %s", pt, tc.Msg)
			continue
		}
		r.record(tc, ok, d)
	}
}

var rsHashes = map[string]struct {
	alg  string
	hash crypto.Hash
}{"SHA-256": {"RS256", crypto.SHA256}, "SHA-384": {"RS384", crypto.SHA384}, "SHA-512": {"RS512", crypto.SHA512}}

// wpRSASign: PKCS #1 v1.5 signing is deterministic, so sign must give the vector's
// signature byte for byte, and verify must accept it.
func wpRSASign(r *wpRun, f *wpDoc) {
	t := r.t
	for _, g := range f.TestGroups {
		h, ok := rsHashes[g.Sha]
		if !ok {
			r.skip("signature hash SHA-1/SHA-224: not a Key Vault RS* algorithm", len(g.Tests))
			continue
		}
		name, skip := r.rsaImport(g)
		if skip != "" {
			r.skip(skip, len(g.Tests))
			continue
		}
		for _, tc := range g.Tests {
			hh := h.hash.New()
			hh.Write(unhexT(t, tc.Msg))
			digest := hh.Sum(nil)
			want := unhexT(t, tc.Sig)
			s := r.post(name, "sign", map[string]any{"alg": h.alg, "value": digest})
			sig, signed := s.value()
			if signed && !bytes.Equal(sig, want) {
				r.fail(tc, "sign gave another signature than the vector's")
				continue
			}
			v := r.post(name, "verify", map[string]any{"alg": h.alg, "digest": digest, "value": want})
			var out struct{ Value *bool }
			if v.status != 200 || json.Unmarshal(v.body, &out) != nil || out.Value == nil || *out.Value != signed {
				r.fail(tc, "verify of the vector's signature answered %s; sign accepted=%v", v, signed)
				continue
			}
			r.record(tc, signed, s)
		}
	}
}

// wpThreePrimes: a multi-prime key may be refused with a 4xx or accepted, and then must
// work (SOURCE.md, "multi-prime RSA import"). Software keys come as a JWK with "oth", which
// Coffer refuses (SECURITY-NOTES I8); HSM keys come as PKCS #8 through BYOK, unwrapped
// inside the token, where Coffer never sees the primes: SoftHSM2 takes the key, and its
// vectors must then decrypt as for any other key.
func wpThreePrimes(r *wpRun, f *wpDoc) {
	t := r.t
	for gi, g := range f.TestGroups {
		der := unhexT(t, g.PrivateKeyPkcs8)
		k, err := x509.ParsePKCS8PrivateKey(der)
		priv, ok := k.(*rsa.PrivateKey)
		if err != nil || !ok || len(priv.Primes) != 3 {
			t.Fatalf("%s: not a three-prime key: %v", r.file, err)
		}
		var m map[string]any
		if err := json.Unmarshal(rsaJWK(priv), &m); err != nil {
			t.Fatal(err)
		}
		crt := priv.Precomputed.CRTValues[0]
		m["oth"] = []map[string]string{{"r": b64u(priv.Primes[2].Bytes()), "d": b64u(crt.Exp.Bytes()), "t": b64u(crt.Coeff.Bytes())}}
		jwk, _ := json.Marshal(m)
		name := fmt.Sprintf("wp-%s-3p-%d-%d", strings.ToLower(r.keys.name), priv.N.BitLen(), gi)
		a := r.keys.rsa(t, name, jwk, der)
		if a.status == 200 {
			r.tally.notes["multi-prime RSA key accepted at import: its vectors run"] += len(g.Tests)
			alg := map[string]string{"SHA-1": "RSA-OAEP", "SHA-256": "RSA-OAEP-256"}[g.Sha]
			r.decryptCases(name, alg, g.Tests)
			continue
		}
		if err := kvRefusal(a); err != nil {
			t.Errorf("%s %s: import of a three-prime key: %v", r.keys.name, r.file, err)
		}
		r.skip("multi-prime RSA key: import refused with a 4xx (checked)", len(g.Tests))
	}
}

// wpECImport feeds the EC JWKs of the ECDH WebCrypto files to key import (SECURITY-NOTES
// I7): each distinct private JWK must import; each invalid case's public point (off the
// curve, on another curve, an invalid-curve-attack point), presented as the public part of
// the case's private key, must be refused. A valid case's public point has no Key Vault
// operation: Key Vault imports no public key alone and has no ECDH.
func wpECImport(r *wpRun, f *wpDoc) {
	t := r.t
	checkedCurve := false
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			var priv, pub map[string]any
			if err := json.Unmarshal(tc.Private, &priv); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(tc.Public, &pub); err != nil {
				t.Fatal(err)
			}
			if crv, _ := priv["crv"].(string); r.keys.noCurve[crv] {
				if !checkedCurve {
					if err := kvRefusal(r.keys.ec(t, "wp-"+strings.ToLower(r.keys.name)+"-nocurve", priv, priv)); err != nil {
						t.Errorf("%s %s: import of a %s key: %v", r.keys.name, r.file, crv, err)
					}
					checkedCurve = true
				}
				r.skip("EC curve the HSM keys do not offer (P-256K; import refusal checked)", 1)
				continue
			}
			if name, a := r.key(string(tc.Private), func(n string) answer { return r.keys.ec(t, n, priv, priv) }); name == "" {
				r.fail(tc, "the case's private JWK was refused: %s", a)
				continue
			}
			if tc.Result == "valid" {
				r.skip("ECDH valid public point: no Key Vault operation takes a public key alone (the case's private key imported: checked)", 1)
				continue
			}
			a := r.keys.ec(t, fmt.Sprintf("wp-%s-ecbad-%d", strings.ToLower(r.keys.name), tc.TcID), priv, pub)
			r.record(tc, a.status == 200, a)
		}
	}
}

// aesAlgs names Key Vault's algorithm of a file for a key of bits: the operation and alg.
func aesAlg(file string, bits int) (op, alg string) {
	switch {
	case strings.HasPrefix(file, "aes_gcm"):
		return "decrypt", fmt.Sprintf("A%dGCM", bits)
	case strings.HasPrefix(file, "aes_cbc"):
		return "decrypt", fmt.Sprintf("A%dCBCPAD", bits)
	case strings.HasPrefix(file, "aes_wrap"):
		return "unwrapkey", fmt.Sprintf("A%dKW", bits)
	}
	return "unwrapkey", "CKM_AES_KEY_WRAP_PAD"
}

// wpAES runs the AES files on oct-HSM keys: decrypt (GCM with iv, tag and aad; CBC with
// PKCS #7 padding and the iv) or unwrapkey (KW, KWP) must give the vector's message for a
// valid case and a refusal for an invalid one; for a valid case the deterministic forward
// operation (CBC encrypt with the vector's iv, wrapkey) must also give the vector's
// ciphertext. GCM encryption is not deterministic here: the HSM chooses the IV.
func wpAES(r *wpRun, f *wpDoc) {
	t := r.t
	gcm := strings.HasPrefix(r.file, "aes_gcm")
	for _, g := range f.TestGroups {
		if r.keys.aes == nil {
			r.skip("AES key: Key Vault has no software oct keys (oct-HSM only; refusal of an oct JWK checked)", len(g.Tests))
			continue
		}
		// An iv or tag of a length Key Vault's GCM does not take is refused before the key is
		// used, so those cases go to one key of their size rather than each to its own.
		shapeOnly := gcm && (g.IVSize != 96 || g.TagSize != 128)
		for _, tc := range g.Tests {
			key := unhexT(t, tc.Key)
			material := string(key)
			if shapeOnly {
				material = fmt.Sprintf("shape-refusals AES-%d", 8*len(key))
			}
			name, a := r.key(material, func(n string) answer { return r.keys.aes(t, n, key) })
			if name == "" {
				t.Fatalf("%s %s: BYOK import of an AES-%d key: %s", r.keys.name, r.file, 8*len(key), a)
			}
			op, alg := aesAlg(r.file, 8*len(key))
			ct, msg := unhexT(t, tc.Ct), unhexT(t, tc.Msg)
			m := map[string]any{"alg": alg, "value": ct}
			if tc.IV != "" {
				m["iv"] = unhexT(t, tc.IV)
			}
			if gcm {
				m["tag"], m["aad"] = unhexT(t, tc.Tag), unhexT(t, tc.AAD)
				if len(tc.AAD) == 0 {
					delete(m, "aad")
				}
			}
			d := r.post(name, op, m)
			if shapeOnly {
				r.refused(tc, "GCM iv not 96 bits or tag not 128 bits: not Key Vault's form (refusal checked)", d)
				continue
			}
			pt, ok := d.value()
			if ok && !bytes.Equal(pt, msg) {
				r.fail(tc, "%s gave %x; want %s", op, pt, tc.Msg)
				continue
			}
			if ok && !gcm {
				fwd := map[string]any{"alg": alg, "value": msg}
				fop := "wrapkey"
				if op == "decrypt" {
					fwd["iv"], fop = unhexT(t, tc.IV), "encrypt"
				}
				e := r.post(name, fop, fwd)
				if r.keys.name == "HSM" && strings.HasPrefix(r.file, "aes_kwp") && len(msg)%8 != 0 && kvRefusal(e) == nil {
					// SoftHSM2 2.6.1 pads such keys against RFC 5649; Coffer refuses rather
					// than emit a wrapping nobody else can unwrap (pkcs11/aes.go).
					r.tally.notes["KWP wrapkey of a key not a multiple of 8 bytes refused on SoftHSM2 (its padding breaks RFC 5649); unwrapkey checked"]++
				} else if out, good := e.value(); !good || !bytes.Equal(out, ct) {
					r.fail(tc, "%s of the vector's message answered %s; want its ciphertext %s", fop, e, tc.Ct)
					continue
				}
			}
			r.record(tc, ok, d)
		}
	}
}

// wpSoftKeys imports keys as software keys (PUT /keys/{name} with the JWK).
func wpSoftKeys(c *oracleClient) *wpKeys {
	put := func(t *testing.T, name string, jwk any) answer {
		return c.do(t, "PUT", "/keys/"+name, map[string]any{"key": jwk})
	}
	return &wpKeys{
		name: "soft",
		rsa:  func(t *testing.T, name string, jwk json.RawMessage, _ []byte) answer { return put(t, name, jwk) },
		ec: func(t *testing.T, name string, priv, pub map[string]any) answer {
			return put(t, name, map[string]any{"kty": "EC", "crv": pub["crv"], "x": pub["x"], "y": pub["y"], "d": priv["d"]})
		},
	}
}

// wpHSMKeys brings keys into the token through BYOK (CKM_RSA_AES_KEY_WRAP under kek).
func wpHSMKeys(c *oracleClient, kek *rsa.PublicKey, kid string) *wpKeys {
	k := &wpKeys{}
	put := func(t *testing.T, name string, jwk map[string]any) answer {
		a := c.do(t, "PUT", "/keys/"+name, map[string]any{"key": jwk})
		if a.status == 200 {
			k.stored++
		}
		return a
	}
	byokPut := func(t *testing.T, name, kty string, target []byte) answer {
		blob, err := byok.Build(kek, kid, "CKM_RSA_AES_KEY_WRAP", target, "wycheproof")
		if err != nil {
			t.Fatal(err)
		}
		return put(t, name, map[string]any{"kty": kty, "key_hsm": b64u(blob)})
	}
	*k = wpKeys{
		name: "HSM",
		rsa: func(t *testing.T, name string, _ json.RawMessage, pkcs8 []byte) answer {
			return byokPut(t, name, string(azkeys.KeyTypeRSAHSM), pkcs8)
		},
		aes: func(t *testing.T, name string, key []byte) answer {
			return byokPut(t, name, string(azkeys.KeyTypeOctHSM), key)
		},
		// An EC-HSM BYOK request may carry the public point (crv, x, y) beside key_hsm,
		// which must then be the target's (byokec.go).
		ec: func(t *testing.T, name string, priv, pub map[string]any) answer {
			pk8 := randomBytes(40) // P-256K: no PKCS #8 encoder in the standard library; refused by curve first
			if cv, ok := ecdhCurves[priv["crv"].(string)]; ok {
				d, err := base64.RawURLEncoding.DecodeString(priv["d"].(string))
				if err != nil {
					t.Fatal(err)
				}
				k, err := ecdsa.ParseRawPrivateKey(cv, d)
				if err != nil {
					t.Fatalf("private JWK: %v", err)
				}
				if pk8, err = x509.MarshalPKCS8PrivateKey(k); err != nil {
					t.Fatal(err)
				}
			}
			blob, err := byok.Build(kek, kid, "CKM_RSA_AES_KEY_WRAP", pk8, "wycheproof")
			if err != nil {
				t.Fatal(err)
			}
			return put(t, name, map[string]any{"kty": "EC-HSM", "crv": pub["crv"], "x": pub["x"], "y": pub["y"], "key_hsm": b64u(blob)})
		},
		noCurve:   map[string]bool{"P-256K": true},
		noOAEP256: true,
	}
	return k
}

var ecdhCurves = map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}

// wpLoad reads a copied vector file (its count checked).
func wpLoad(t *testing.T, e wpEntry) *wpDoc {
	t.Helper()
	return providertest.LoadWycheproof(t, filepath.Join(e.dir, e.file))
}

// TestWycheproofThroughHTTPS runs the catalogue over HTTPS for software keys and, with
// SoftHSM2 installed, for HSM keys; see the top of this file.
func TestWycheproofThroughHTTPS(t *testing.T) {
	flags := softHSMFlags(t)
	ts := startDev(t, flags...)
	c := newOracleClient(t, ts)
	kinds := []*wpKeys{wpSoftKeys(c)}
	if flags != nil {
		kek, kid := createKEK(t, keysClient(t, ts), "wycheproof-kek")
		kinds = append(kinds, wpHSMKeys(c, kek, kid))
	} else {
		t.Run("HSM", func(t *testing.T) { t.Skip("SoftHSM2 is not installed") })
	}
	// The skip classes of whole files rest on these refusals: a vault has no software AES
	// key, and import takes no public key alone (the verify vectors' keys).
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, jwk := range map[string]map[string]string{
		"oct":        {"kty": "oct", "k": b64u(randomBytes(32))},
		"rsa-public": {"kty": "RSA", "n": b64u(rk.N.Bytes()), "e": "AQAB"},
		"ec-public":  {"kty": "EC", "crv": "P-256", "x": b64u(ek.X.FillBytes(make([]byte, 32))), "y": b64u(ek.Y.FillBytes(make([]byte, 32)))},
	} {
		if err := kvRefusal(c.do(t, "PUT", "/keys/wp-"+name, map[string]any{"key": jwk})); err != nil {
			t.Errorf("import of a %s JWK: %v", name, err)
		}
	}
	cat := wpCatalogue()
	docs := map[string]*wpDoc{}
	for _, e := range cat {
		if e.dir != "" {
			docs[e.file] = wpLoad(t, e)
		}
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) { wpRunAll(t, c, k, cat, docs) })
	}
	if flags != nil {
		// H1 over every key the run brought into the token (BYOK: RSA, multi-prime RSA,
		// EC, AES) and the KEK generated there; a refused import leaves no object behind.
		keys := tokenKeys(t, "coffer", "4321")
		generated, unwrapped := checkTokenKeys(t, keys)
		if hsm := kinds[len(kinds)-1]; unwrapped != hsm.stored {
			t.Errorf("the token holds %d unwrapped keys; %d BYOK imports were accepted (a refused import left an object behind?)", unwrapped, hsm.stored)
		}
		t.Logf("token after the run: %d private/secret keys (%d generated, %d unwrapped), all sensitive, none extractable", len(keys), generated, unwrapped)
	}
}

// wpRunAll runs every file of the catalogue for one kind of key and logs the counts.
func wpRunAll(t *testing.T, c *oracleClient, k *wpKeys, cat []wpEntry, docs map[string]*wpDoc) {
	names := map[string]string{}
	var lines []string
	var total, passed, failed, skipped, acc, ref, files int
	classes, notes := map[string]int{}, map[string]int{}
	for _, e := range cat {
		r := &wpRun{t: t, c: c, keys: k, names: names, file: e.file, tally: wpTally{skipped: map[string]int{}, notes: map[string]int{}}}
		n := e.cases
		began := time.Now()
		if f := docs[e.file]; f != nil {
			n = f.NumberOfTests
			if e.run != nil {
				e.run(r, f)
			}
		}
		if e.run == nil {
			r.skip(e.skip, n)
		}
		tl := &r.tally
		tl.total = n
		s := 0
		for cl, m := range tl.skipped {
			s += m
			classes[cl] += m
		}
		for nt, m := range tl.notes {
			notes[nt] += m
		}
		if tl.passed+tl.failed+s != n {
			t.Errorf("%s: %d passed + %d failed + %d skipped != %d cases", e.file, tl.passed, tl.failed, s, n)
		}
		files++
		total, passed, failed, skipped = total+n, passed+tl.passed, failed+tl.failed, skipped+s
		acc, ref = acc+tl.acceptAccepted, ref+tl.acceptRefused
		lines = append(lines, fmt.Sprintf("%-54s %5d: passed %4d (valid %d, invalid %d, acceptable %d accepted/%d refused), failed %d, skipped %d, %v",
			e.file, n, tl.passed, tl.valid, tl.invalid, tl.acceptAccepted, tl.acceptRefused, tl.failed, s, time.Since(began).Round(time.Millisecond)))
	}
	var cl []string
	for c, n := range classes {
		cl = append(cl, fmt.Sprintf("%6d  %s", n, c))
	}
	sort.Strings(cl)
	t.Logf("%s keys, per file:\n%s", k.name, strings.Join(lines, "\n"))
	t.Logf("%s keys, skip classes:\n%s", k.name, strings.Join(cl, "\n"))
	for nt, n := range notes {
		t.Logf("%s keys, note: %d × %s", k.name, n, nt)
	}
	t.Logf("%s keys: %d files, %d cases: passed %d, failed %d, skipped %d (acceptable: %d accepted, %d refused); %d keys imported",
		k.name, files, total, passed, failed, skipped, acc, ref, len(names))
	if files != 62 || total != 15163 {
		t.Errorf("%d files, %d cases; the shared set has 62 files, 15163 cases", files, total)
	}
}
