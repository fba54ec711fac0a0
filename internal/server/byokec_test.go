package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	p11 "github.com/miekg/pkcs11"

	"github.com/coffer-kms/coffer/internal/byok"
)

// tokenPrivateKeys counts the private key objects of the SoftHSM2 token labelled label
// (an imported EC key has no public object, so tokenObjects does not fit).
func tokenPrivateKeys(t *testing.T, label string) int {
	t.Helper()
	c, s := userSession(t, label, "4321")
	if err := c.FindObjectsInit(s, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY)}); err != nil {
		t.Fatal(err)
	}
	defer c.FindObjectsFinal(s)
	objs, _, err := c.FindObjects(s, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(objs)
}

// opensslECKey makes an EC key with OpenSSL (genpkey, then pkcs8 -topk8 to DER) and
// returns it parsed and as the PKCS #8 DER OpenSSL wrote.
func opensslECKey(t *testing.T, curve string) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed: the Go-built blobs still run")
	}
	dir := t.TempDir()
	pemFile, derFile := filepath.Join(dir, "ec.pem"), filepath.Join(dir, "ec.der")
	for _, args := range [][]string{
		{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:" + curve, "-out", pemFile},
		{"pkcs8", "-topk8", "-nocrypt", "-in", pemFile, "-outform", "DER", "-out", derFile},
	} {
		if out, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	der, err := os.ReadFile(derFile)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*ecdsa.PrivateKey), der
}

// ecPoint returns the JWK x and y of k.
func ecPoint(t *testing.T, k *ecdsa.PublicKey) (x, y []byte) {
	t.Helper()
	pt, err := k.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	n := (len(pt) - 1) / 2
	return pt[1 : 1+n], pt[1+n:]
}

// TestBYOKEC: EC P-256 and P-384 keys come in with Go-built and OpenSSL-built blobs, with
// their public point or (as Key Vault's own BYOK request) without it, sign in the token, and
// the signatures verify under the original key; a point that is wrong, half missing or another
// key's, or a curve that is not the key's, is a 400 with nothing imported and no object left
// in the token.
func TestBYOKEC(t *testing.T) {
	ts := startDev(t, softHSMToken(t)...)
	ctx := context.Background()
	c := keysClient(t, ts)
	kek, kid := createKEK(t, c, "kek")
	type curve struct {
		crv     azkeys.CurveName
		openssl string
		curve   elliptic.Curve
		alg     azkeys.SignatureAlgorithm
		hash    crypto.Hash
	}
	for _, cv := range []curve{
		{azkeys.CurveNameP256, "P-256", elliptic.P256(), azkeys.SignatureAlgorithmES256, crypto.SHA256},
		{azkeys.CurveNameP384, "P-384", elliptic.P384(), azkeys.SignatureAlgorithmES384, crypto.SHA384},
	} {
		for _, builder := range []string{"go", "openssl", "keyvault"} {
			t.Run(string(cv.crv)+"-"+builder, func(t *testing.T) {
				var target *ecdsa.PrivateKey
				var blob, x, y []byte
				kty := azkeys.KeyTypeECHSM
				if builder == "go" {
					// The import key `coffer byok --jwk` writes: x and y come from it.
					target, _ = ecdsa.GenerateKey(cv.curve, rand.Reader)
					pk8, _ := x509.MarshalPKCS8PrivateKey(target)
					var err error
					if blob, err = byok.Build(kek, kid, "CKM_RSA_AES_KEY_WRAP", pk8, "test"); err != nil {
						t.Fatal(err)
					}
					ik, err := byok.NewImportKey(blob, "EC-HSM", pk8)
					if err != nil || ik.Crv != string(cv.crv) {
						t.Fatalf("NewImportKey = %+v, %v", ik, err)
					}
					x, _ = base64.RawURLEncoding.DecodeString(ik.X)
					y, _ = base64.RawURLEncoding.DecodeString(ik.Y)
					kty = azkeys.KeyTypeEC // the server makes it EC-HSM, as for RSA
				} else { // openssl, and keyvault: the same blob
					var pk8 []byte
					target, pk8 = opensslECKey(t, cv.openssl)
					blob = blobJSON(kid, "CKM_RSA_AES_KEY_WRAP", opensslCiphertext(t, kek, "sha1", pk8))
					x, y = ecPoint(t, &target.PublicKey)
				}
				req := azkeys.JSONWebKey{Kty: to.Ptr(kty), Crv: to.Ptr(cv.crv), X: x, Y: y, T: blob}
				if builder == "keyvault" {
					req.X, req.Y = nil, nil // Key Vault's BYOK request: kty, crv and key_hsm only
				}
				name := "ec-" + builder + "-" + cv.openssl[2:]
				k, err := c.ImportKey(ctx, name, azkeys.ImportKeyParameters{Key: &req}, nil)
				if err != nil {
					t.Fatalf("ImportKey(%s) = %v", name, err)
				}
				if *k.Key.Kty != azkeys.KeyTypeECHSM || *k.Key.Crv != cv.crv || string(k.Key.X) != string(x) || string(k.Key.Y) != string(y) || k.Key.D != nil || k.Key.T != nil {
					t.Fatalf("imported key = %+v; want EC-HSM %s with the target's public point only", k.Key, cv.crv)
				}
				h := cv.hash.New()
				h.Write([]byte("moved into the HSM"))
				digest := h.Sum(nil)
				sig, err := c.Sign(ctx, name, "", azkeys.SignParameters{Algorithm: to.Ptr(cv.alg), Value: digest}, nil)
				if err != nil {
					t.Fatalf("Sign(%s) = %v", cv.alg, err)
				}
				n := len(sig.Result) / 2
				if !ecdsa.Verify(&target.PublicKey, digest, new(big.Int).SetBytes(sig.Result[:n]), new(big.Int).SetBytes(sig.Result[n:])) {
					t.Errorf("%s signature of the imported key does not verify under the original", cv.alg)
				}
			})
		}
	}

	target, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pk8, _ := x509.MarshalPKCS8PrivateKey(target)
	x, y := ecPoint(t, &target.PublicKey)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ox, oy := ecPoint(t, &other.PublicKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	x384, y384 := ecPoint(t, &p384.PublicKey)
	flipped := append([]byte(nil), y...)
	flipped[3] ^= 1
	negY := new(big.Int).Sub(elliptic.P256().Params().P, new(big.Int).SetBytes(y)).FillBytes(make([]byte, 32))
	ec, p256, p384c := azkeys.KeyTypeECHSM, azkeys.CurveNameP256, azkeys.CurveNameP384
	before := tokenPrivateKeys(t, "coffer")
	for name, jwk := range map[string]azkeys.JSONWebKey{
		"wrong-y-off-curve":  {Kty: &ec, Crv: &p256, X: x, Y: flipped},
		"negated-point":      {Kty: &ec, Crv: &p256, X: x, Y: negY},
		"other-keys-point":   {Kty: &ec, Crv: &p256, X: ox, Y: oy},
		"missing-y":          {Kty: &ec, Crv: &p256, X: x},
		"missing-crv":        {Kty: &ec, X: x, Y: y},
		"crv-p384-own-point": {Kty: &ec, Crv: &p384c, X: x, Y: y},
		"crv-p384-its-point": {Kty: &ec, Crv: &p384c, X: x384, Y: y384},
		"rsa-with-point":     {Kty: to.Ptr(azkeys.KeyTypeRSAHSM), X: x, Y: y},
	} {
		blob, err := byok.Build(kek, kid, "CKM_RSA_AES_KEY_WRAP", pk8, "test")
		if err != nil {
			t.Fatal(err)
		}
		jwk.T = blob
		if _, err := c.ImportKey(ctx, "victim", azkeys.ImportKeyParameters{Key: &jwk}, nil); err == nil {
			t.Fatalf("%s: ImportKey succeeded", name)
		} else {
			wantCode(t, err, 400, "BadParameter")
			t.Logf("%s: %s", name, errorBody(t, err))
		}
		if _, err := c.GetKey(ctx, "victim", "", nil); err == nil {
			t.Fatalf("%s: a key was imported", name)
		} else {
			wantCode(t, err, 404, "KeyNotFound")
		}
	}
	if after := tokenPrivateKeys(t, "coffer"); after != before {
		t.Errorf("the token holds %d private keys after the refused imports, %d before", after, before)
	}
}
