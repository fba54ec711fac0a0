package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// canarySet holds the secret values a test planted (SECURITY-NOTES C9) and finds them, in
// any encoding, in what the server wrote.
type canarySet struct {
	mu sync.Mutex
	m  map[string][]byte // name → bytes
}

func (c *canarySet) add(what string, b []byte) {
	if len(b) < 16 {
		panic("canary " + what + " is too short to search for without false alarms")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string][]byte{}
	}
	c.m[what] = append([]byte(nil), b...)
}

// addToken adds an access token (its signature, see jwtSignature) under a numbered name.
func (c *canarySet) addToken(tok string) {
	sig := []byte(jwtSignature(tok))
	if len(sig) < 16 {
		return // no token, or a made-up one too short to be a secret
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, v := range c.m {
		if bytes.Equal(v, sig) {
			return
		}
		if strings.HasPrefix(k, "access token ") {
			n++
		}
	}
	if c.m == nil {
		c.m = map[string][]byte{}
	}
	c.m[fmt.Sprintf("access token %d", n+1)] = sig
}

func (c *canarySet) names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k := range c.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// canaryEncodings names the encodings canaryProbes searches for.
var canaryEncodings = []string{"raw", "hex", "HEX", "base64", "base64url", "base64 (3 alignments)", "base64url (3 alignments)", "JSON-escaped"}

// canaryProbes returns, for each encoding of b, a piece of it that only b's bytes decide:
// the raw bytes, hex in either case, standard and URL base64 (padded or not: the padding
// is left out) at each of the three alignments b can have inside a longer encoded string,
// and b as a JSON string. Each probe is the last 32 characters (24 bytes raw), so that a
// canary found cut short at its start is still found.
func canaryProbes(b []byte) [][]byte {
	tail := func(s []byte, n int) []byte {
		if len(s) > n {
			return s[len(s)-n:]
		}
		return s
	}
	probes := [][]byte{tail(b, 24), tail([]byte(hex.EncodeToString(b)), 32), tail([]byte(strings.ToUpper(hex.EncodeToString(b))), 32)}
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for shift := 0; shift < 3; shift++ {
			// Encoded after shift other bytes, b's bits fill the characters from
			// ceil(8·shift/6) to floor(8·(shift+len)/6).
			e := enc.EncodeToString(append(make([]byte, shift), b...))
			from, to := (8*shift+5)/6, 8*(shift+len(b))/6
			if to-from >= 16 {
				probes = append(probes, tail([]byte(e[from:to]), 32))
			}
		}
	}
	if j, _ := json.Marshal(string(b)); len(j) > 2 && !bytes.Equal(j[1:len(j)-1], b) {
		probes = append(probes, tail(j[1:len(j)-1], 32))
	}
	return probes
}

// find returns the names of the canaries found in content.
func (c *canarySet) find(content []byte) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var found []string
	for what, b := range c.m {
		for _, p := range canaryProbes(b) {
			if bytes.Contains(content, p) {
				found = append(found, what)
				break
			}
		}
	}
	sort.Strings(found)
	return found
}

// c9Record is what the C9 scan of one top-level test knows: the canaries its requests
// planted or received, and the bodies of the error answers they got. canaryValue adds to
// it, and so does every client of loopbackClient and clientFor (recordingTransport), so
// that every server test — the Azure SDK suites among them — is scanned when its server
// stops (scanServer, run by startWithClock).
type c9Record struct {
	canaries canarySet
	mu       sync.Mutex
	// errorBodies are the bodies of all answers with a status ≥ 400.
	errorBodies [][]byte
	requests    int
}

var c9Records = struct {
	mu sync.Mutex
	m  map[string]*c9Record
}{m: map[string]*c9Record{}}

// c9For returns the record of t's top-level test.
func c9For(t testing.TB) *c9Record {
	name, _, _ := strings.Cut(t.Name(), "/")
	c9Records.mu.Lock()
	defer c9Records.mu.Unlock()
	r := c9Records.m[name]
	if r == nil {
		r = &c9Record{}
		c9Records.m[name] = r
	}
	return r
}

func (r *c9Record) keepError(body []byte) {
	r.mu.Lock()
	r.errorBodies = append(r.errorBodies, body)
	r.mu.Unlock()
}

// recordingTransport sends requests and keeps what C9 needs: every bearer token sent and
// access token received becomes a canary, every error body is kept for the scan.
type recordingTransport struct {
	next http.RoundTripper
	rec  *c9Record
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
		r.rec.canaries.addToken(tok)
	}
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	r.rec.mu.Lock()
	r.rec.requests++
	r.rec.mu.Unlock()
	token := strings.HasSuffix(req.URL.Path, "/oauth2/v2.0/token")
	if resp.StatusCode < 400 && !token {
		return resp, nil
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if token && json.Unmarshal(b, &tok) == nil && tok.AccessToken != "" {
		r.rec.canaries.addToken(tok.AccessToken)
	}
	if resp.StatusCode >= 400 {
		r.rec.keepError(b)
	}
	return resp, nil
}

// jwtSignature is the part of a token that only its signer could make (header and claims
// are the same, or guessable, for every token); the whole string if it is not a JWT.
func jwtSignature(tok string) string {
	if i := strings.LastIndexByte(tok, '.'); i >= 0 && len(tok)-i > 20 {
		return tok[i+1:]
	}
	return tok
}

// devSecretFiles hold secrets in the clear by design in dev mode (dev.go): the only unseal
// share, the operator token and the dev client secret. The scan leaves them out.
var devSecretFiles = map[string]bool{devShareFile: true, devTokenFile: true, "dev-credentials.json": true}

// TestCanaryHygiene (SECURITY-NOTES C9, L2, T7): plants canaries — secret values, the
// private parts of imported RSA and EC keys and of an imported certificate's key, the
// plaintext given to encrypt and the key given to wrapKey, the dev client secret and a wrong
// one, every access token the SDK obtained and a forged one, the operator token, the unseal
// share and a wrong one — runs azsecrets, azkeys and azcertificates flows through the real
// server, including requests that fail while carrying a canary, seals and unseals it, and
// then searches the server's log (at debug level), the audit log and the --audit-stdout
// sink, /metrics, every error
// body, every file of the data directory (the store included: it holds only ciphertext)
// and the server's temporary directory for each canary in every encoding of canaryProbes.
// It must find none; a control canary that the test writes into the log itself must be
// found, or the search proves nothing.
func TestCanaryHygiene(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	stdout := &lockedWriter{}
	cfg := loadConfig(t, "--dev", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-level", "debug", "--audit-stdout")
	ts := startWithClock(t, cfg, "", nil, func(s *Server) { s.out = stdout })
	ctx := context.Background()
	dev := ts.Dev.Credentials
	rec := c9For(t)
	cs := &rec.canaries
	hc := loopbackClient(t, ts.caFile) // records tokens and error bodies (recordingTransport)
	canary := func(what string) string { return canaryValue(t, strings.ReplaceAll(what, " ", "-")) }
	share := c9DevCanaries(t, ts.Server)

	cred, err := azidentity.NewClientSecretCredential(dev.TenantID, dev.ClientID, dev.ClientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: dev.AuthorityHost}, Transport: hc},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := azcore.ClientOptions{Transport: hc}
	sc, err := azsecrets.NewClient(dev.VaultURL, cred, &azsecrets.ClientOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	kc, err := azkeys.NewClient(dev.VaultURL, cred, &azkeys.ClientOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := azcertificates.NewClient(dev.VaultURL, cred, &azcertificates.ClientOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s = %v", what, err)
		}
	}
	refused := 0
	mustFail := func(what string, err error) {
		t.Helper()
		var re *azcore.ResponseError
		if !errors.As(err, &re) || re.StatusCode < 400 || re.StatusCode >= 500 {
			t.Fatalf("%s = %v; want a 4xx", what, err)
		}
		refused++
	}

	// Secrets.
	v1, v2 := canary("secret value 1"), canary("secret value 2")
	_, err = sc.SetSecret(ctx, "c9-secret", azsecrets.SetSecretParameters{Value: to.Ptr(v1), ContentType: to.Ptr("text/plain")}, nil)
	must("SetSecret", err)
	_, err = sc.SetSecret(ctx, "c9-secret", azsecrets.SetSecretParameters{Value: to.Ptr(v2)}, nil)
	must("SetSecret", err)
	got, err := sc.GetSecret(ctx, "c9-secret", "", nil)
	must("GetSecret", err)
	if *got.Value != v2 {
		t.Fatalf("GetSecret = %q; want the second value", *got.Value)
	}
	for p := sc.NewListSecretPropertiesVersionsPager("c9-secret", nil); p.More(); {
		_, err := p.NextPage(ctx)
		must("list versions", err)
	}
	bk, err := sc.BackupSecret(ctx, "c9-secret", nil)
	must("BackupSecret", err)
	_, err = sc.SetSecret(ctx, "c9_bad_name", azsecrets.SetSecretParameters{Value: to.Ptr(canary("secret value with a bad name"))}, nil)
	mustFail("SetSecret(bad name)", err)
	_, err = sc.SetSecret(ctx, "c9-big", azsecrets.SetSecretParameters{Value: to.Ptr(strings.Repeat("y", 26<<10) + canary("secret value too big"))}, nil)
	mustFail("SetSecret(26 KiB)", err)
	_, err = sc.UpdateSecretProperties(ctx, "c9-secret", "", azsecrets.UpdateSecretPropertiesParameters{SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(false)}}, nil)
	must("UpdateSecretProperties", err)
	_, err = sc.GetSecret(ctx, "c9-secret", "", nil)
	mustFail("GetSecret(disabled)", err)
	_, err = sc.DeleteSecret(ctx, "c9-secret", nil)
	must("DeleteSecret", err)
	_, err = sc.PurgeDeletedSecret(ctx, "c9-secret", nil)
	must("PurgeDeletedSecret", err)
	_, err = sc.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: bk.Value}, nil)
	must("RestoreSecret", err)

	// Keys: imported with known private parts, then used.
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	must("rsa.GenerateKey", err)
	rsaKey.Precompute()
	cs.add("RSA d", rsaKey.D.Bytes())
	cs.add("RSA p", rsaKey.Primes[0].Bytes())
	cs.add("RSA q", rsaKey.Primes[1].Bytes())
	cs.add("RSA dp", rsaKey.Precomputed.Dp.Bytes())
	cs.add("RSA qi", rsaKey.Precomputed.Qinv.Bytes())
	rsaJWK := &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeRSA), N: rsaKey.N.Bytes(), E: []byte{1, 0, 1}, D: rsaKey.D.Bytes(),
		P: rsaKey.Primes[0].Bytes(), Q: rsaKey.Primes[1].Bytes(), DP: rsaKey.Precomputed.Dp.Bytes(), DQ: rsaKey.Precomputed.Dq.Bytes(), QI: rsaKey.Precomputed.Qinv.Bytes()}
	_, err = kc.ImportKey(ctx, "c9-rsa", azkeys.ImportKeyParameters{Key: rsaJWK}, nil)
	must("ImportKey(RSA)", err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must("ecdsa.GenerateKey", err)
	ecD := ecKey.D.FillBytes(make([]byte, 32))
	cs.add("EC d", ecD)
	_, err = kc.ImportKey(ctx, "c9-ec", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeEC), Crv: to.Ptr(azkeys.CurveNameP256),
		X: ecKey.X.FillBytes(make([]byte, 32)), Y: ecKey.Y.FillBytes(make([]byte, 32)), D: ecD}}, nil)
	must("ImportKey(EC)", err)
	badD := make([]byte, 32)
	_, _ = rand.Read(badD)
	cs.add("EC d of a refused import", badD)
	_, err = kc.ImportKey(ctx, "c9-ec-bad", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeEC), Crv: to.Ptr(azkeys.CurveNameP256),
		X: ecKey.X.FillBytes(make([]byte, 32)), Y: ecKey.Y.FillBytes(make([]byte, 32)), D: badD}}, nil)
	mustFail("ImportKey(EC, d not the public key's)", err)
	plain := []byte(canary("plaintext"))
	enc, err := kc.Encrypt(ctx, "c9-rsa", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: plain}, nil)
	must("Encrypt", err)
	dec, err := kc.Decrypt(ctx, "c9-rsa", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: enc.Result}, nil)
	must("Decrypt", err)
	if !bytes.Equal(dec.Result, plain) {
		t.Fatal("Decrypt did not give the plaintext back")
	}
	_, err = kc.Decrypt(ctx, "c9-rsa", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: plain[:16]}, nil)
	mustFail("Decrypt(garbage)", err)
	wrapped := make([]byte, 32)
	_, _ = rand.Read(wrapped)
	cs.add("key given to wrapKey", wrapped)
	wr, err := kc.WrapKey(ctx, "c9-rsa", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP), Value: wrapped}, nil)
	must("WrapKey", err)
	_, err = kc.UnwrapKey(ctx, "c9-rsa", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP), Value: wr.Result}, nil)
	must("UnwrapKey", err)
	digest := sha256.Sum256(plain)
	_, err = kc.Sign(ctx, "c9-ec", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:]}, nil)
	must("Sign", err)
	_, err = kc.GetKey(ctx, "c9-rsa", "", nil)
	must("GetKey", err)
	_, err = kc.BackupKey(ctx, "c9-rsa", nil)
	must("BackupKey", err)
	_, err = kc.ImportKey(ctx, "c9-rsa", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeRSA), N: rsaKey.N.Bytes(), E: []byte{1, 0, 1}, D: rsaKey.D.Bytes()}}, nil)
	mustFail("ImportKey(RSA without primes)", err)

	// Certificates: imported with a known key; its secret holds the key by design.
	certPEM, certKey := ecPEM(t, elliptic.P256())
	pemPolicy := importPolicy("application/x-pem-file", &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeEC), Curve: to.Ptr(azcertificates.CurveNameP256), Exportable: to.Ptr(true)})
	cs.add("certificate EC d", certKey.D.FillBytes(make([]byte, 32)))
	_, err = cc.ImportCertificate(ctx, "c9-cert", azcertificates.ImportCertificateParameters{Base64EncodedCertificate: to.Ptr(certPEM),
		CertificatePolicy: pemPolicy}, nil)
	must("ImportCertificate", err)
	_, err = cc.GetCertificate(ctx, "c9-cert", "", nil)
	must("GetCertificate", err)
	cs2, err := sc.GetSecret(ctx, "c9-cert", "", nil)
	must("GetSecret(certificate)", err)
	if !strings.Contains(*cs2.Value, "PRIVATE KEY") {
		t.Errorf("the certificate's secret holds no private key")
	}
	otherPEM, otherKey := ecPEM(t, elliptic.P256())
	cs.add("EC d of a refused certificate import", otherKey.D.FillBytes(make([]byte, 32)))
	mismatched := otherPEM[:strings.Index(otherPEM, "-----BEGIN CERTIFICATE")] + certPEM[strings.Index(certPEM, "-----BEGIN CERTIFICATE"):]
	_, err = cc.ImportCertificate(ctx, "c9-cert-bad", azcertificates.ImportCertificateParameters{Base64EncodedCertificate: to.Ptr(mismatched),
		CertificatePolicy: pemPolicy}, nil)
	mustFail("ImportCertificate(key not the certificate's)", err)
	_, err = cc.CreateCertificate(ctx, "c9-made", azcertificates.CreateCertificateParameters{CertificatePolicy: &azcertificates.CertificatePolicy{
		IssuerParameters:          &azcertificates.IssuerParameters{Name: to.Ptr("Self")},
		X509CertificateProperties: &azcertificates.X509CertificateProperties{Subject: to.Ptr("CN=c9.example.test")},
		KeyProperties:             &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeEC), Curve: to.Ptr(azcertificates.CurveNameP256)},
	}}, nil)
	must("CreateCertificate", err)

	// Credentials that are refused: a wrong client secret, a forged bearer token, a wrong
	// unseal share.
	wrongSecret := canary("wrong client secret")
	if status, tok := rawToken(t, ts, hc, dev.TenantID, dev.ClientID, wrongSecret, ts.resources().Base()); status != 401 || tok != "" {
		t.Fatalf("token with a wrong client secret = %d", status)
	}
	forged := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0." + base64.RawURLEncoding.EncodeToString([]byte(canary("forged token")))
	cs.add("forged token", []byte(jwtSignature(forged)))
	if status, raw := kvCall(t, hc, forged, "GET", dev.VaultURL+"secrets/c9-secret"+kvVersion, ""); status != 401 {
		t.Fatalf("GET with a forged token = %d %s", status, raw)
	}
	refused += 2
	sys := func(path, token, body string) (int, []byte) {
		t.Helper()
		return ts.mcall(t, "POST", path, token, body) // ts.client records too (clientFor)
	}
	if status, raw := sys("/v1/sys/seal", ts.Dev.Token, ""); status != 200 {
		t.Fatalf("seal = %d %s", status, raw)
	}
	wrongShare := canary("wrong unseal share")
	if status, _ := sys("/v1/sys/unseal", "", `{"share":"`+wrongShare+`"}`); status/100 != 4 {
		t.Fatalf("unseal with a wrong share = %d; want a 4xx", status)
	}
	refused++
	if status, raw := sys("/v1/sys/unseal", "", `{"share":"`+share+`"}`); status != 200 {
		t.Fatalf("unseal = %d %s", status, raw)
	}
	_, err = sc.GetSecret(ctx, "c9-secret", "", nil)
	must("GetSecret after unseal", err)

	// Where to look: what every server test is searched in (c9Places), and /metrics, the
	// --audit-stdout sink and the temporary directory.
	const nReqMin = 30 // records the flows above leave at the least
	places, files := c9Places(t, ts.Server, ts.logs)
	places["/metrics"] = ts.get(t, ts.URL()+"/metrics")
	// Standard output holds the dev banner, which shows the dev client secret by design,
	// and the --audit-stdout sink's records: its JSON lines.
	var auditOut []string
	for _, l := range strings.Split(stdout.String(), "\n") {
		if strings.HasPrefix(l, "{") {
			auditOut = append(auditOut, l)
		}
	}
	if len(auditOut) < nReqMin {
		t.Fatalf("the stdout audit sink holds %d records; want at least %d", len(auditOut), nReqMin)
	}
	places["stdout audit sink"] = []byte(strings.Join(auditOut, "\n"))
	files += c9Files(t, tmp, places, nil)
	rec.mu.Lock()
	nErr, nReq := len(rec.errorBodies), rec.requests
	rec.mu.Unlock()
	if _, ok := places[filepath.Base(ts.cfg.DataDir)+"/"+AuditFile]; !ok {
		t.Fatalf("no audit log among %d files of the data directory", files)
	}

	// The controls: the dev files hold the client secret, the share and the operator token
	// in the clear by design, and the search must find them there; and a canary written
	// into a line by the test must be found in each encoding.
	for name, what := range map[string]string{"dev-credentials.json": "dev client secret", devShareFile: "unseal share", devTokenFile: "operator token"} {
		b, err := os.ReadFile(filepath.Join(ts.cfg.DataDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(cs.find(b), what) {
			t.Fatalf("control: the %s is not found in %s; the search proves nothing", what, name)
		}
	}
	if nErr < refused || len(places["server log"]) == 0 {
		t.Fatalf("control: %d error bodies kept for %d refused requests, server log of %d bytes", nErr, refused, len(places["server log"]))
	}
	control := &canarySet{}
	control.add("control", rsaKey.D.Bytes())
	for _, p := range canaryProbes(rsaKey.D.Bytes()) {
		if got := control.find(append([]byte("log line: "), p...)); len(got) != 1 {
			t.Fatalf("control: probe %q not found; the search proves nothing", p)
		}
	}
	leaks := c9Leaks(t, cs, places)
	names := cs.names()
	t.Logf("C9: %d canaries (%s) × %d encodings (%s) searched in %d places (server log %d bytes, /metrics, %d error bodies of %d requests, %d files of the data and temporary directories); %d requests refused carrying a canary; %d leaks",
		len(names), strings.Join(names, ", "), len(canaryEncodings), strings.Join(canaryEncodings, ", "), len(places), len(places["server log"]), nErr, nReq, files, refused, leaks)
}

// c9DevCanaries adds the dev server's own secrets — its client secret, operator token and
// unseal share — to the canaries of t and returns the share.
func c9DevCanaries(t testing.TB, s *Server) string {
	t.Helper()
	cs := &c9For(t).canaries
	cs.add("dev client secret", []byte(s.Dev.Credentials.ClientSecret))
	cs.add("operator token", []byte(s.Dev.Token))
	share, err := os.ReadFile(filepath.Join(s.cfg.DataDir, devShareFile))
	if err != nil {
		t.Fatalf("read the dev unseal share: %v", err)
	}
	cs.add("unseal share", bytes.TrimSpace(share))
	return string(bytes.TrimSpace(share))
}

// c9Places returns what a server wrote that a canary must never be in — its log, the error
// bodies its clients got, every file of its data directory but the dev files that hold
// secrets by design (the store and the audit logs among them) — and the number of files.
func c9Places(t testing.TB, s *Server, logs *lockedWriter) (map[string][]byte, int) {
	t.Helper()
	rec := c9For(t)
	places := map[string][]byte{"server log": []byte(logs.String())}
	rec.mu.Lock()
	places["error bodies"] = bytes.Join(rec.errorBodies, []byte("\n"))
	rec.mu.Unlock()
	return places, c9Files(t, s.cfg.DataDir, places, devSecretFiles)
}

// c9Files adds every file below dir but those named in skip to places and counts them.
func c9Files(t testing.TB, dir string, places map[string][]byte, skip map[string]bool) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // gone while walking (a temporary file)
		}
		if err != nil || d.IsDir() || skip[d.Name()] || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		places[filepath.Base(dir)+"/"+rel] = b
		n++
		return nil
	})
	if err != nil {
		t.Fatalf("C9 scan of %s: %v", dir, err)
	}
	return n
}

// c9Leaks reports each canary of cs found in places and returns how many were.
func c9Leaks(t testing.TB, cs *canarySet, places map[string][]byte) int {
	t.Helper()
	leaks := 0
	for where, content := range places {
		for _, what := range cs.find(content) {
			t.Errorf("C9: %s found in %s", what, where)
			leaks++
		}
	}
	return leaks
}

// c9Check is the C9 scan of every test server, run when it has stopped: no canary of its
// test (canaryValue, tokens, the dev server's secrets) in its log, error bodies or files.
func c9Check(t testing.TB, s *Server, logs *lockedWriter) {
	t.Helper()
	if s.Dev != nil && s.Dev.Token != "" {
		c9DevCanaries(t, s)
	}
	places, files := c9Places(t, s, logs)
	cs := &c9For(t).canaries
	leaks := c9Leaks(t, cs, places)
	c9Totals.mu.Lock()
	defer c9Totals.mu.Unlock()
	c9Totals.servers++
	c9Totals.canaries += len(cs.names())
	c9Totals.files += files
	c9Totals.leaks += leaks
	for _, p := range places {
		c9Totals.bytes += len(p)
	}
}

// c9Totals sums the scans of c9Check over the package's tests; TestMain prints them.
var c9Totals struct {
	mu                                     sync.Mutex
	servers, canaries, files, leaks, bytes int
}

// TestMain prints the totals of the C9 scans after the tests (docs/SECURITY.md, "Audit log
// and secret hygiene").
func TestMain(m *testing.M) {
	code := m.Run()
	c9Totals.mu.Lock()
	if c9Totals.servers > 0 {
		fmt.Printf("C9 scan: %d test servers, %d canaries (summed over the servers), %d files and %d bytes searched, %d leaks\n",
			c9Totals.servers, c9Totals.canaries, c9Totals.files, c9Totals.bytes, c9Totals.leaks)
	}
	c9Totals.mu.Unlock()
	os.Exit(code)
}

// TestDataPlanePanicKeepsItsValue (SECURITY-NOTES C9, panics): a data-plane handler that
// panics with a value holding a canary is answered 500 in Key Vault's error shape, counted
// in coffer_http_panics_total, and logged with the value's type and stack only — as the
// other routes' panics are (wrap). Left to net/http, the value would be logged in full
// ("http: panic serving …: <value>", at the debug level) and the client would get no answer.
func TestDataPlanePanicKeepsItsValue(t *testing.T) {
	ts := startDev(t) // --log-level debug
	value := canaryValue(t, "panic")
	h := ts.metricsByPattern(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic(errors.New("bad state near " + value))
	}))
	rec := httptest.NewRecorder()
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("the panic %q left the data plane's handler: net/http logs its value and answers nothing", p)
			}
		}()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "https://vault1.localhost/secrets/x?api-version=7.6", nil))
	}()
	var e struct {
		Error struct{ Code, Message string }
	}
	if rec.Code != http.StatusInternalServerError || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error.Code == "" {
		t.Errorf("answer to a panic = %d %s; want a 500 in Key Vault's error shape", rec.Code, rec.Body)
	}
	log := ts.logs.String()
	if !strings.Contains(log, "handler panic") || !strings.Contains(log, "*errors.errorString") {
		t.Errorf("the server log does not record the panic's type:\n%s", log)
	}
	if strings.Contains(log, value) || strings.Contains(rec.Body.String(), value) {
		t.Errorf("the panic's value is in the server log or the answer")
	}
	if m := ts.get(t, ts.URL()+"/metrics"); !bytes.Contains(m, []byte("coffer_http_panics_total 1")) {
		t.Errorf("coffer_http_panics_total does not count the panic")
	}
}
